use ops_core::traced;

#[traced]
fn join(parts: impl IntoIterator<Item = String> + serde::Serialize + Clone) -> String {
    parts.into_iter().collect()
}

#[traced(skip(f))]
fn apply(f: impl Fn(u8) -> u8, x: u8) -> u8 {
    f(x)
}

fn main() {
    assert_eq!(join(vec!["a".to_owned(), "b".to_owned()]), "ab");
    assert_eq!(apply(|x| x + 1, 1), 2);
}
