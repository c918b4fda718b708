//! Helpers for the native-API providers' tests: multipart bodies, UUIDv7 checks, captures.

use std::path::PathBuf;

use serde_json::Value;
use uuid::Uuid;

/// One part of a `multipart/form-data` body.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("part {} is not JSON: {e}", self.name))
    }
}

/// The boundary of a `multipart/form-data; boundary=...` content type.
pub fn boundary(content_type: &str) -> String {
    let (kind, rest) = content_type.split_once(';').expect("a boundary parameter");
    assert_eq!(kind.trim(), "multipart/form-data");
    rest.trim()
        .strip_prefix("boundary=")
        .expect("boundary=")
        .trim_matches('"')
        .to_owned()
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Parses a multipart body strictly: CRLF framing, a closing delimiter, and each part's
/// `Content-Length` equal to its body's length.
pub fn parse_multipart(body: &[u8], boundary: &str) -> Vec<Part> {
    let delim = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut at = find(body, delim.as_bytes(), 0).expect("a first delimiter");
    assert_eq!(at, 0, "the body starts with the delimiter");
    loop {
        at += delim.len();
        if body[at..].starts_with(b"--") {
            assert_eq!(
                &body[at..],
                b"--\r\n",
                "the body ends after the closing delimiter"
            );
            break;
        }
        assert!(body[at..].starts_with(b"\r\n"));
        at += 2;
        let head_end = find(body, b"\r\n\r\n", at).expect("part headers end");
        let head = std::str::from_utf8(&body[at..head_end]).unwrap();
        let headers: Vec<(String, String)> = head
            .split("\r\n")
            .map(|l| {
                let (k, v) = l.split_once(':').expect("header line");
                (k.trim().to_owned(), v.trim().to_owned())
            })
            .collect();
        let next =
            find(body, format!("\r\n{delim}").as_bytes(), head_end + 4).expect("a next delimiter");
        let content = body[head_end + 4..next].to_vec();
        let disposition = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-disposition"))
            .map(|(_, v)| v.clone())
            .expect("content-disposition");
        let name = disposition
            .split("name=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .expect("a part name")
            .to_owned();
        let part = Part {
            name,
            headers,
            body: content,
        };
        let len: usize = part
            .header("content-length")
            .expect("every part has a Content-Length")
            .parse()
            .unwrap();
        assert_eq!(len, part.body.len(), "Content-Length of {}", part.name);
        parts.push(part);
        at = next + 2;
    }
    parts
}

/// Whether `s` is a hyphenated lowercase UUID of version 7.
pub fn is_v7(s: &str) -> bool {
    Uuid::try_parse(s).is_ok_and(|u| u.get_version_num() == 7 && u.hyphenated().to_string() == s)
}

/// The directory of the golden captures.
pub fn captures(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/captures")
        .join(dir)
}

/// A capture's JSON record.
pub fn capture(dir: &str, file: &str) -> Value {
    let path = captures(dir).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the golden capture {}: {e}; the shared/ folder must sit beside the workspace",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

/// The keys of a JSON object, sorted.
pub fn object_keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect();
    k.sort();
    k
}
