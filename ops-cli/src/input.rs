//! Collecting a config update from `--set`, `--unset`, `OPS_SECRET_<KEY>` and stdin, without
//! ever accepting a secret on the command line.

use std::collections::BTreeMap;

use ops_config::ConfigUpdate;
use ops_core::ProviderFactory;
use ops_core::env::EnvError;

use crate::{Failure, exit};

/// The prefix of the environment variables that carry secrets: `OPS_SECRET_SECRET_KEY` for
/// the key `secret_key`.
pub(crate) const SECRET_ENV_PREFIX: &str = "OPS_SECRET_";

/// The environment variable carrying secret `key`.
pub(crate) fn secret_env(key: &str) -> String {
    format!("{SECRET_ENV_PREFIX}{}", key.to_ascii_uppercase())
}

/// An update and where its values came from (key names only).
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub(crate) update: ConfigUpdate,
    pub(crate) from_env: Vec<String>,
    pub(crate) from_stdin: Vec<String>,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure::new(exit::USAGE, message)
}

/// Builds the update for `factory` from the command line, the environment (`env` looks a
/// variable up; one that is not UTF-8 is a usage error naming it, never skipped) and, when
/// given, stdin's text.
pub(crate) fn collect(
    factory: &ProviderFactory,
    set: &[String],
    unset: &[String],
    stdin: Option<&str>,
    env: impl Fn(&str) -> Result<Option<String>, EnvError>,
) -> Result<Collected, Failure> {
    let mut out = Collected::default();
    let mut origin: BTreeMap<String, &'static str> = BTreeMap::new();
    let mut claim = |key: &str, from: &'static str| -> Result<(), Failure> {
        match origin.insert(key.to_owned(), from) {
            Some(before) if before == from => Err(usage(format!(
                "`{key}` is given twice in {from}; give it once"
            ))),
            Some(before) => Err(usage(format!(
                "`{key}` is given twice ({before} and {from}); give it once"
            ))),
            None => Ok(()),
        }
    };
    let is_secret = |key: &str| factory.fields.iter().any(|f| f.name == key && f.secret);

    for item in set {
        let Some((key, value)) = item.split_once('=') else {
            return Err(usage(format!(
                "--set expects KEY=VALUE, got {:?}",
                item.chars().take(40).collect::<String>()
            )));
        };
        let key = key.trim();
        if is_secret(key) {
            return Err(usage(format!(
                "`{key}` is a secret of {} and is not accepted on the command line (it would \
                 show in the process list and shell history); set {} or pass --stdin with \
                 `{key}=...` on stdin",
                factory.name,
                secret_env(key)
            )));
        }
        claim(key, "--set")?;
        out.update.insert(key, value);
    }
    for key in unset {
        let key = key.trim();
        claim(key, "--unset")?;
        out.update.insert(key, "");
    }
    for field in factory.fields.iter().filter(|f| f.secret) {
        let var = secret_env(field.name);
        let value = env(&var).map_err(|e| usage(format!("{e}; nothing was saved")))?;
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            claim(field.name, "the environment")?;
            out.update.insert(field.name, value);
            out.from_env.push(field.name.to_owned());
        }
    }
    if let Some(text) = stdin {
        for (key, value) in parse_stdin(text)? {
            claim(&key, "stdin")?;
            out.from_stdin.push(key.clone());
            out.update.insert(key, value);
        }
    }
    Ok(out)
}

/// `KEY=VALUE` lines (blank lines and `#` comments skipped; keys and values trimmed) or one
/// JSON object of strings. Errors never quote values.
pub(crate) fn parse_stdin(text: &str) -> Result<Vec<(String, String)>, Failure> {
    if text.trim_start().starts_with('{') {
        let map: BTreeMap<String, String> = serde_json::from_str(text).map_err(|e| {
            usage(format!(
                "stdin is not a JSON object of strings (line {}, column {}); write KEY=VALUE \
                 lines or {{\"key\": \"value\"}}",
                e.line(),
                e.column()
            ))
        })?;
        return Ok(map.into_iter().collect());
    }
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(usage(format!(
                "stdin line {}: expected KEY=VALUE (the value is not shown)",
                n + 1
            )));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(usage(format!(
                "stdin line {}: the key before `=` is empty",
                n + 1
            )));
        }
        out.push((key.to_owned(), value.trim().to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ops_core::provider::ConfigField;

    fn factory() -> &'static ProviderFactory {
        static FIELDS: &[ConfigField] = &[
            ConfigField::secret("public_key"),
            ConfigField::secret("secret_key"),
            ConfigField::with_default("host", "https://h"),
        ];
        static FACTORY: ProviderFactory = ProviderFactory::new("t", "T", FIELDS, |_| {
            Err(ops_core::provider::ConfigError::Build {
                provider: "t".into(),
                message: "not built in tests".into(),
            })
        });
        &FACTORY
    }

    #[test]
    fn secrets_are_refused_on_argv() {
        let err = collect(
            factory(),
            &["secret_key=sk-123456789".into()],
            &[],
            None,
            |_| Ok(None),
        )
        .unwrap_err();
        assert_eq!(err.code, exit::USAGE);
        assert!(
            err.message.contains("OPS_SECRET_SECRET_KEY"),
            "{}",
            err.message
        );
        assert!(!err.message.contains("sk-123456789"), "{}", err.message);
    }

    #[test]
    fn sources_combine_and_conflicts_are_errors() {
        let env = |v: &str| Ok((v == "OPS_SECRET_PUBLIC_KEY").then(|| "pk-1".to_owned()));
        let got = collect(
            factory(),
            &["host=https://x".into()],
            &[],
            Some("# c\n\nsecret_key = sk-2 \n"),
            env,
        )
        .unwrap();
        assert_eq!(got.update.get("host"), Some("https://x"));
        assert_eq!(got.update.get("public_key"), Some("pk-1"));
        assert_eq!(got.update.get("secret_key"), Some("sk-2"));
        assert_eq!(got.from_env, ["public_key"]);
        assert_eq!(got.from_stdin, ["secret_key"]);

        let err = collect(factory(), &[], &[], Some("public_key=x"), env).unwrap_err();
        assert!(err.message.contains("given twice"), "{}", err.message);
        let err = collect(
            factory(),
            &["host=a".into()],
            &["host".into()],
            None,
            |_| Ok(None),
        )
        .unwrap_err();
        assert!(err.message.contains("given twice"), "{}", err.message);
        let err = collect(factory(), &[], &[], Some("a=1\na=2"), |_| Ok(None)).unwrap_err();
        assert!(err.message.contains("twice in stdin"), "{}", err.message);
        let err = collect(factory(), &["novalue".into()], &[], None, |_| Ok(None)).unwrap_err();
        assert!(err.message.contains("KEY=VALUE"), "{}", err.message);
    }

    #[test]
    fn a_secret_variable_that_is_not_utf8_is_an_error() {
        let env = |v: &str| {
            if v == "OPS_SECRET_SECRET_KEY" {
                Err(EnvError::NotUnicode { var: v.to_owned() })
            } else {
                Ok(None)
            }
        };
        let err = collect(factory(), &[], &[], None, env).unwrap_err();
        assert_eq!(err.code, exit::USAGE);
        assert!(
            err.message.contains("OPS_SECRET_SECRET_KEY") && err.message.contains("UTF-8"),
            "{}",
            err.message
        );
    }

    #[test]
    fn stdin_formats() {
        assert_eq!(
            parse_stdin("{\"secret_key\": \"sk\", \"host\": \"h\"}").unwrap(),
            [
                ("host".into(), "h".into()),
                ("secret_key".into(), "sk".into())
            ]
        );
        let err = parse_stdin("{\"secret_key\": 12345}").unwrap_err();
        assert!(err.message.contains("JSON object of strings") && !err.message.contains("12345"));
        let err = parse_stdin("ok=1\nsk-no-equals-sign").unwrap_err();
        assert!(
            err.message.contains("line 2") && !err.message.contains("sk-no"),
            "{}",
            err.message
        );
        assert!(parse_stdin("=v").is_err());
    }
}
