//! Dify's display rule as a table, and the masked-merge rule (including the case Dify gets
//! wrong: a masked value with nothing stored).

use ops_config::obfuscate::{
    MaskedWithoutStored, SecretUpdate, is_obfuscated, merge_secret, obfuscate,
};

const STARS20: &str = "********************";

#[test]
fn difys_rule_as_a_table() {
    // (input, expected): Dify's `obfuscated_token`: falsy -> as is; len <= 8 -> 20 '*';
    // else first 6 + 12 '*' + last 2. Lengths are in characters, as Python slices strings.
    let table: &[(&str, &str)] = &[
        ("", ""),
        ("a", STARS20),
        ("ab", STARS20),
        ("1234567", STARS20),
        ("12345678", STARS20),
        ("123456789", "123456************89"),
        ("1234567890", "123456************90"),
        ("sk-lf-1234567890", "sk-lf-************90"),
        ("pk-lf-0000-1111-2222", "pk-lf-************22"),
        ("ls__abcdefghijklmnopqrstuvwxyz", "ls__ab************yz"),
        ("        ", STARS20),
        ("ééééééééé", "éééééé************éé"),
        ("🔑🔑🔑🔑🔑🔑🔑🔑", STARS20),
        ("🔑🔑🔑🔑🔑🔑🔑🔑🔒", "🔑🔑🔑🔑🔑🔑************🔑🔒"),
        ("*********", STARS20),
    ];
    for (input, expected) in table {
        let got = obfuscate(input);
        assert_eq!(&got, expected, "obfuscate({input:?})");
        if !input.is_empty() {
            assert_eq!(
                got.chars().count(),
                20,
                "{input:?}: every mask is 20 characters"
            );
            assert!(is_obfuscated(&got), "{got:?} must be recognised as masked");
        }
    }
    // Long secrets still give 20 characters.
    let long = "x".repeat(4096);
    assert_eq!(obfuscate(&long), format!("xxxxxx{}xx", "*".repeat(12)));
}

#[test]
fn only_the_exact_mask_shape_counts_as_masked() {
    for (value, masked) in [
        (STARS20, true),
        ("sk-lf-************90", true),
        ("abcdef************gh", true),
        ("", false),
        ("*", false),
        ("*******************", false),   // 19
        ("*********************", false), // 21
        ("sk-lf-***********x90", false),  // a non-* inside the 12
        ("sk-lf-************901", false), // 21 characters
        ("pass*word", false),             // Dify would treat this real secret as masked
        ("my-secret-with-*-inside-it", false),
    ] {
        assert_eq!(is_obfuscated(value), masked, "{value:?}");
    }
}

#[test]
fn masked_merge_table() {
    let stored = "sk-lf-1234567890";
    let shown = obfuscate(stored);
    let other_mask = obfuscate("sk-lf-another-secret");
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Result<SecretUpdate, ()>,
    );
    let cases: Vec<Case<'_>> = vec![
        // (what, submitted, stored, expected)
        (
            "left out, stored",
            None,
            Some(stored),
            Ok(SecretUpdate::Keep),
        ),
        (
            "left out, nothing stored",
            None,
            None,
            Ok(SecretUpdate::Keep),
        ),
        (
            "echoed mask keeps the secret",
            Some(&shown),
            Some(stored),
            Ok(SecretUpdate::Keep),
        ),
        (
            "stale mask keeps the secret",
            Some(&other_mask),
            Some(stored),
            Ok(SecretUpdate::Keep),
        ),
        (
            "short secret's mask",
            Some(STARS20),
            Some("short"),
            Ok(SecretUpdate::Keep),
        ),
        (
            "new value replaces",
            Some("sk-lf-new-value"),
            Some(stored),
            Ok(SecretUpdate::Replace("sk-lf-new-value".into())),
        ),
        (
            "new value, nothing stored",
            Some("sk-lf-new-value"),
            None,
            Ok(SecretUpdate::Replace("sk-lf-new-value".into())),
        ),
        (
            "a real secret with '*' is stored (Dify drops it)",
            Some("pa*ss"),
            Some(stored),
            Ok(SecretUpdate::Replace("pa*ss".into())),
        ),
        (
            "empty clears",
            Some(""),
            Some(stored),
            Ok(SecretUpdate::Clear),
        ),
        (
            "blank clears",
            Some("   "),
            Some(stored),
            Ok(SecretUpdate::Clear),
        ),
        // Dify's bug: with no config yet it stores the mask, in plaintext. Refused here.
        ("mask with nothing stored", Some(&shown), None, Err(())),
        ("20 stars with nothing stored", Some(STARS20), None, Err(())),
        (
            "mask with an empty stored value",
            Some(&shown),
            Some(""),
            Err(()),
        ),
    ];
    for (what, submitted, stored_value, expected) in cases {
        let got = merge_secret("langfuse", "secret_key", submitted, stored_value);
        match (got, expected) {
            (Ok(got), Ok(expected)) => assert_eq!(got, expected, "{what}"),
            (Err(e), Err(())) => {
                assert_eq!(
                    e,
                    MaskedWithoutStored {
                        provider: "langfuse".into(),
                        field: "secret_key".into(),
                        shown: submitted.unwrap().into(),
                    },
                    "{what}"
                );
                let msg = e.to_string();
                assert!(
                    msg.contains("`secret_key`") && msg.contains("no secret_key is stored"),
                    "{what}: {msg}"
                );
            }
            (got, expected) => panic!("{what}: got {got:?}, expected {expected:?}"),
        }
    }
}
