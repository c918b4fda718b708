use ops_core::traced;
use std::borrow::Cow;

type Outcome = Result<Vec<u8>, std::io::Error>;

#[traced]
fn aliased(n: u8) -> Outcome {
    Ok(vec![n])
}

#[traced]
fn io_result(path: &std::path::Path) -> std::io::Result<String> {
    Ok(path.display().to_string())
}

#[traced]
fn borrowed<'a>(name: Option<&'a str>, words: Vec<&'a str>, text: Cow<'a, str>) -> Option<&'a str> {
    let _ = (words, text);
    name
}

#[traced]
fn slice(items: &[String], nested: &&str, bytes: &mut Vec<u8>) -> usize {
    bytes.push(1);
    items.len() + nested.len()
}

fn main() {
    assert_eq!(aliased(1).unwrap(), vec![1]);
    assert_eq!(io_result(std::path::Path::new("/x")).unwrap(), "/x");
    assert_eq!(borrowed(Some("a"), vec!["b"], Cow::Borrowed("c")), Some("a"));
    assert_eq!(slice(&["a".to_owned()], &"bc", &mut Vec::new()), 3);
}
