use ops_core::traced;

#[traced]
fn parse(text: &str) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let n: u32 = text.parse()?;
    Ok(n)
}

#[traced]
async fn parse_async(text: String) -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    if text == "none" {
        return Ok(0);
    }
    Ok(parse(&text)?)
}

#[traced]
fn anyhow_like() -> Result<(), String> {
    Err("nope".to_owned())?;
    Ok(())
}

#[tokio::main]
async fn main() {
    assert_eq!(parse("4"), Ok(4));
    assert_eq!(parse("").unwrap(), 0);
    assert!(parse("x").is_err());
    assert_eq!(parse_async("none".into()).await.unwrap(), 0);
    assert!(anyhow_like().is_err());
}
