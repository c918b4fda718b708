//! The `baggage` header (W3C Baggage): the user and session a request is for, and every other
//! member passed on unchanged.

use std::fmt::{self, Write as _};

use super::InvalidHeader;
use super::traceparent::trim;

/// The baggage key for the end user: OpenTelemetry's `user.id` attribute (also
/// OpenInference's, which Phoenix and Arize show).
pub const USER_ID_KEY: &str = "user.id";
/// The baggage key for the session: OpenTelemetry's `session.id` attribute (also
/// OpenInference's).
pub const SESSION_ID_KEY: &str = "session.id";
/// The user key Langfuse's SDKs propagate (`propagate_attributes(..., as_baggage=True)`):
/// read when [`USER_ID_KEY`] is absent, passed on unchanged.
pub const LANGFUSE_USER_ID_KEY: &str = "langfuse_user_id";
/// The session key Langfuse's SDKs propagate: read when [`SESSION_ID_KEY`] is absent.
pub const LANGFUSE_SESSION_ID_KEY: &str = "langfuse_session_id";

/// The longest raw `baggage` read (all its header lines together), the spec's 8192 bytes:
/// longer is invalid without being parsed.
pub const BAGGAGE_MAX_LEN: usize = 8192;
/// The most list-members kept (the spec's minimum to propagate); the rest are dropped and
/// counted.
pub const BAGGAGE_MAX_MEMBERS: usize = 64;
/// The longest user or session id taken from baggage (decoded, in bytes); a longer one is
/// dropped and counted.
pub const BAGGAGE_MAX_ID_LEN: usize = 256;

/// A validated `baggage`: the user and session (percent-decoded), and the other
/// list-members as received, to pass on.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Baggage {
    user_id: Option<String>,
    session_id: Option<String>,
    /// Every member but `user.id` and `session.id`, as received (properties included).
    others: Vec<Box<str>>,
}

impl Baggage {
    /// Parses the `baggage` header lines (combined as one comma-separated list). Returns it
    /// and how many members were dropped (past [`BAGGAGE_MAX_MEMBERS`], or an id longer than
    /// [`BAGGAGE_MAX_ID_LEN`]). Invalid: more than [`BAGGAGE_MAX_LEN`] bytes, an empty
    /// member, a key that is not an HTTP token, or a value with a byte outside the spec's
    /// `baggage-octet` (space, `"`, `,`, `;`, `\` and non-ASCII must be percent-encoded).
    /// Values are percent-decoded as UTF-8, with U+FFFD for invalid sequences (spec §3.2.1.1).
    pub fn parse<'a>(
        lines: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<(Self, usize), InvalidHeader> {
        let bad = |reason| Err(InvalidHeader::new(super::BAGGAGE, reason));
        let mut baggage = Baggage::default();
        let mut dropped = 0usize;
        let mut kept = 0usize;
        let mut raw_len = 0usize;
        for line in lines {
            raw_len += line.len() + 1;
            if raw_len > BAGGAGE_MAX_LEN + 1 {
                return bad("longer than 8192 bytes");
            }
            for member in line.split(|b| *b == b',') {
                let member = trim(member);
                if member.is_empty() {
                    return bad("an empty member");
                }
                let (pair, properties) = match member.iter().position(|b| *b == b';') {
                    Some(at) => (&member[..at], Some(&member[at + 1..])),
                    None => (member, None),
                };
                let Some(eq) = pair.iter().position(|b| *b == b'=') else {
                    return bad("a member has no '='");
                };
                let key = trim(&pair[..eq]);
                let value = trim(&pair[eq + 1..]);
                if key.is_empty() || !key.iter().all(|&c| is_tchar(c)) {
                    return bad("a key is not an HTTP token");
                }
                if !value.iter().all(|&c| is_baggage_octet(c)) {
                    return bad("a value has a byte that must be percent-encoded");
                }
                if let Some(properties) = properties
                    && !properties.split(|b| *b == b';').all(valid_property)
                {
                    return bad("a property is outside the spec's grammar");
                }
                if kept == BAGGAGE_MAX_MEMBERS {
                    dropped += 1;
                    continue;
                }
                kept += 1;
                // Checked above: every byte is printable ASCII.
                let (Ok(key), Ok(text)) = (std::str::from_utf8(key), std::str::from_utf8(member))
                else {
                    return bad("not ASCII");
                };
                let slot = match key {
                    USER_ID_KEY => Some((&mut baggage.user_id, true)),
                    SESSION_ID_KEY => Some((&mut baggage.session_id, true)),
                    LANGFUSE_USER_ID_KEY => Some((&mut baggage.user_id, false)),
                    LANGFUSE_SESSION_ID_KEY => Some((&mut baggage.session_id, false)),
                    _ => None,
                };
                if let Some((slot, ours)) = slot {
                    let decoded = percent_decode(value);
                    if decoded.len() > BAGGAGE_MAX_ID_LEN || decoded.is_empty() {
                        dropped += 1;
                    } else if ours || slot.is_none() {
                        // `user.id` wins over Langfuse's key, whichever comes first.
                        *slot = Some(decoded);
                    }
                    if ours {
                        continue;
                    }
                }
                baggage.others.push(text.into());
            }
        }
        Ok((baggage, dropped))
    }

    /// The user the request is for (`user.id`, else `langfuse_user_id`).
    pub fn user_id(&self) -> Option<&str> {
        self.user_id.as_deref()
    }

    /// The session the request belongs to (`session.id`, else `langfuse_session_id`).
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// The other members, as received (`key=value;properties`).
    pub fn others(&self) -> impl Iterator<Item = &str> {
        self.others.iter().map(|m| &**m)
    }

    /// Whether it carries nothing (then no `baggage` is sent).
    pub fn is_empty(&self) -> bool {
        self.user_id.is_none() && self.session_id.is_none() && self.others.is_empty()
    }

    /// This baggage with the user and session replaced where `user` and `session` are set,
    /// and how many of them were left out (empty, or longer than [`BAGGAGE_MAX_ID_LEN`]).
    pub(crate) fn with_ids(&self, user: Option<&str>, session: Option<&str>) -> (Self, usize) {
        let mut left_out = 0;
        let mut pick = |new: Option<&str>, old: &Option<String>| match new {
            Some(s) if !s.is_empty() && s.len() <= BAGGAGE_MAX_ID_LEN => Some(s.to_owned()),
            Some(_) => {
                left_out += 1;
                old.clone()
            }
            None => old.clone(),
        };
        let baggage = Self {
            user_id: pick(user, &self.user_id),
            session_id: pick(session, &self.session_id),
            others: self.others.clone(),
        };
        (baggage, left_out)
    }

    /// The header value: `user.id` and `session.id` (percent-encoded) first, then the other
    /// members, within [`BAGGAGE_MAX_LEN`] (members that would pass it are left out, and
    /// counted by the caller through the returned number).
    pub(crate) fn to_header(&self) -> (String, usize) {
        let mut out = String::new();
        let mut left_out = 0;
        let mut push = |member: &str, out: &mut String| {
            let extra = member.len() + usize::from(!out.is_empty());
            if out.len() + extra > BAGGAGE_MAX_LEN {
                left_out += 1;
                return;
            }
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(member);
        };
        for (key, value) in [
            (USER_ID_KEY, &self.user_id),
            (SESSION_ID_KEY, &self.session_id),
        ] {
            if let Some(v) = value {
                push(&format!("{key}={}", percent_encode(v)), &mut out);
            }
        }
        for m in &self.others {
            push(m, &mut out);
        }
        (out, left_out)
    }
}

impl fmt::Debug for Baggage {
    /// Baggage may hold anything an app put in it: only its keys are shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Baggage")
            .field("user_id", &self.user_id.as_ref().map(|_| "<set>"))
            .field("session_id", &self.session_id.as_ref().map(|_| "<set>"))
            .field(
                "other_keys",
                &self
                    .others
                    .iter()
                    .map(|m| m.split(['=', ';']).next().unwrap_or_default().trim())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// RFC 9110 `tchar`.
fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// W3C Baggage `baggage-octet`: `%x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E`.
fn is_baggage_octet(c: u8) -> bool {
    matches!(c, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

/// `key OWS [ "=" OWS value ]`, a property of a member.
fn valid_property(property: &[u8]) -> bool {
    let (key, value) = match property.iter().position(|b| *b == b'=') {
        Some(at) => (trim(&property[..at]), Some(trim(&property[at + 1..]))),
        None => (trim(property), None),
    };
    !key.is_empty()
        && key.iter().all(|&c| is_tchar(c))
        && value.is_none_or(|v| v.iter().all(|&c| is_baggage_octet(c)))
}

/// Percent-decodes `value` as UTF-8 (U+FFFD for invalid sequences); a `%` not followed by
/// two hex digits is kept as it is.
fn percent_decode(value: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let decoded = (value[i] == b'%')
            .then(|| value.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match decoded {
            Some(b) => {
                bytes.push(b);
                i += 3;
            }
            None => {
                bytes.push(value[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Percent-encodes every byte of `value` that is not a `baggage-octet`, and `%`.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if is_baggage_octet(b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_coding_round_trips() {
        for s in ["plain", "with space", "ünï,;\"\\%", "a%2"] {
            assert_eq!(percent_decode(percent_encode(s).as_bytes()), s);
        }
        assert_eq!(percent_decode(b"%ZZ%4%+1"), "%ZZ%4%+1");
        assert_eq!(percent_decode(b"%ff"), "\u{fffd}");
    }
}
