//! Bearer tokens, each bound to a tenant or to the admin role.
//!
//! Only SHA-256 digests of the tokens are kept; a presented token is hashed and compared with
//! every digest in constant time, so neither the comparison nor the position of a match tells
//! anything about a token.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The environment variable [`Tokens::from_env`] reads.
pub const TOKENS_ENV: &str = "OPS_ADMIN_TOKENS";

/// The shortest token accepted, in characters: a guessable token is a configuration error.
pub const MIN_TOKEN_CHARS: usize = 24;

/// Whom a token acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The apps of one tenant only.
    Tenant(String),
    /// Any tenant's apps (an operator).
    Admin,
}

/// A token list entry that cannot be used; the message never quotes a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: entry {entry}: {reason}")]
pub struct TokenError {
    /// Where the list came from (`OPS_ADMIN_TOKENS`, `config`).
    pub source_name: String,
    /// The entry's position, from 1.
    pub entry: usize,
    /// What is wrong and how to write it.
    pub reason: String,
}

/// The accepted bearer tokens and their roles. `Debug` shows how many there are, never a token
/// or a digest.
#[derive(Clone, Default)]
pub struct Tokens {
    entries: Vec<([u8; 32], Role)>,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.entries.len())
            .finish_non_exhaustive()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Tokens {
    /// No token: every request is refused with 401.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `token` for `role`. A token shorter than [`MIN_TOKEN_CHARS`], with whitespace, or
    /// bound to an invalid tenant id is an error.
    pub fn insert(&mut self, token: &str, role: Role) -> Result<(), TokenError> {
        self.insert_at("config", self.entries.len() + 1, token, role)
    }

    /// Adds `token` for `role`, returning `self` (for building in one expression).
    pub fn with(mut self, token: &str, role: Role) -> Result<Self, TokenError> {
        self.insert(token, role)?;
        Ok(self)
    }

    fn insert_at(
        &mut self,
        source_name: &str,
        entry: usize,
        token: &str,
        role: Role,
    ) -> Result<(), TokenError> {
        let fail = |reason: String| TokenError {
            source_name: source_name.to_owned(),
            entry,
            reason,
        };
        if token.chars().count() < MIN_TOKEN_CHARS || token.chars().any(char::is_whitespace) {
            return Err(fail(format!(
                "a token needs at least {MIN_TOKEN_CHARS} characters and no whitespace (e.g. \
                 `ops keygen` output)"
            )));
        }
        if let Role::Tenant(tenant) = &role {
            ops_config::validate_tenant_id(tenant).map_err(|e| fail(e.to_string()))?;
        }
        self.entries.push((digest(token), role));
        Ok(())
    }

    /// Parses a token list: entries separated by commas or whitespace, each
    /// `tenant:<tenant id>=<token>` or `admin=<token>`. `source_name` names the list in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Self, TokenError> {
        let mut tokens = Self::new();
        let entries = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|e| !e.is_empty());
        for (n, item) in entries.enumerate() {
            let fail = |reason: &str| TokenError {
                source_name: source_name.to_owned(),
                entry: n + 1,
                reason: reason.to_owned(),
            };
            let Some((role, token)) = item.split_once('=') else {
                return Err(fail(
                    "expected `tenant:<tenant id>=<token>` or `admin=<token>` (the token is not \
                     shown)",
                ));
            };
            let role = match role.split_once(':') {
                None if role == "admin" => Role::Admin,
                Some(("tenant", id)) => Role::Tenant(id.to_owned()),
                _ => {
                    return Err(fail(
                        "the role before `=` must be `admin` or `tenant:<tenant id>`",
                    ));
                }
            };
            tokens.insert_at(source_name, n + 1, token, role)?;
        }
        Ok(tokens)
    }

    /// The list in [`TOKENS_ENV`]; empty when it is unset or blank.
    pub fn from_env() -> Result<Self, TokenError> {
        match ops_core::env::non_blank(TOKENS_ENV) {
            Ok(Some(text)) => Self::parse(&text, TOKENS_ENV),
            Ok(None) => Ok(Self::new()),
            Err(e) => Err(TokenError {
                source_name: TOKENS_ENV.to_owned(),
                entry: 0,
                reason: e.to_string(),
            }),
        }
    }

    /// How many tokens are accepted.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no token is accepted.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The role of `token`, comparing its digest with every entry in constant time.
    pub fn role(&self, token: &str) -> Option<&Role> {
        let presented = digest(token);
        let mut found = None;
        for (stored, role) in &self.entries {
            if bool::from(stored.ct_eq(&presented)) && found.is_none() {
                found = Some(role);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "tok-acme-0123456789abcdefgh";
    const T2: &str = "tok-admin-0123456789abcdefg";

    #[test]
    fn a_list_parses_into_roles() {
        let tokens = Tokens::parse(&format!(" tenant:acme={T1},\nadmin={T2} "), "list").unwrap();
        assert_eq!(tokens.len(), 2);
        assert_eq!(tokens.role(T1), Some(&Role::Tenant("acme".into())));
        assert_eq!(tokens.role(T2), Some(&Role::Admin));
        assert_eq!(tokens.role(&T1[..T1.len() - 1]), None);
        assert_eq!(tokens.role(""), None);
        // A token may hold `=` (base64 padding): only the first one splits.
        let padded = Tokens::parse("admin=abcdefghijklmnopqrstuvwx==", "list").unwrap();
        assert_eq!(
            padded.role("abcdefghijklmnopqrstuvwx=="),
            Some(&Role::Admin)
        );
        assert!(Tokens::parse("  ", "list").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_are_errors_that_never_quote_the_token() {
        for (text, want) in [
            ("admin=short-token", "at least 24 characters"),
            (&format!("tenant:../x={T1}") as &str, "invalid tenant id"),
            (&format!("root={T1}"), "`admin` or `tenant:<tenant id>`"),
            (&format!("tenant={T1}"), "`admin` or `tenant:<tenant id>`"),
            (T1, "expected `tenant:<tenant id>=<token>`"),
        ] {
            let e = Tokens::parse(&format!("admin={T2} {text}"), "OPS_ADMIN_TOKENS").unwrap_err();
            let message = e.to_string();
            assert!(
                message.starts_with("OPS_ADMIN_TOKENS: entry 2: "),
                "{message}"
            );
            assert!(message.contains(want), "{text}: {message}");
            assert!(
                !message.contains(T1) && !message.contains("short-token"),
                "{message}"
            );
        }
    }

    #[test]
    fn debug_shows_the_count_only() {
        let tokens = Tokens::new().with(T1, Role::Admin).unwrap();
        let debug = format!("{tokens:?}");
        assert_eq!(debug, "Tokens { count: 1, .. }");
    }
}
