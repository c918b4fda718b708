//! Encryption at rest: round trips, binding to tenant/app/provider/field, tampering, key
//! rotation, and master key parsing errors.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ops_config::crypto::{
    CryptoError, KEY_ENV, KEY_FILE_ENV, KeyError, Keyring, MasterKey, SecretContext, is_sealed,
    key_version_of,
};

const HEX_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

fn ctx<'a>(tenant: &'a str, app: &'a str, provider: &'a str, field: &'a str) -> SecretContext<'a> {
    SecretContext {
        tenant_id: tenant,
        app_id: app,
        provider,
        field,
    }
}

fn keyring() -> Keyring {
    Keyring::parse(HEX_KEY, "test").unwrap()
}

#[test]
fn round_trip_and_format() {
    let keys = keyring();
    let c = ctx("t1", "app1", "langfuse", "secret_key");
    let sealed = keys.seal(&c, "sk-lf-1234567890").unwrap();
    assert!(sealed.starts_with("enc:v1:k1:"), "{sealed}");
    assert!(!sealed.contains("1234567890"));
    assert_eq!(key_version_of(&sealed), Some(1));
    assert!(is_sealed(&sealed));
    assert_eq!(keys.open(&c, &sealed).unwrap().as_str(), "sk-lf-1234567890");

    // Random nonces: the same secret seals differently each time, and both open.
    let again = keys.seal(&c, "sk-lf-1234567890").unwrap();
    assert_ne!(sealed, again);
    assert_eq!(keys.open(&c, &again).unwrap().as_str(), "sk-lf-1234567890");

    // Empty and non-ASCII values survive.
    for value in ["", "clé-🔑-ü", &"x".repeat(10_000)] {
        let s = keys.seal(&c, value).unwrap();
        assert_eq!(keys.open(&c, &s).unwrap().as_str(), value);
    }
}

#[test]
fn a_ciphertext_moved_elsewhere_does_not_decrypt() {
    let keys = keyring();
    let home = ctx("t1", "app1", "langfuse", "secret_key");
    let sealed = keys.seal(&home, "sk-lf-1234567890").unwrap();
    for (what, other) in [
        ("tenant", ctx("t2", "app1", "langfuse", "secret_key")),
        ("app", ctx("t1", "app2", "langfuse", "secret_key")),
        ("provider", ctx("t1", "app1", "langsmith", "secret_key")),
        ("field", ctx("t1", "app1", "langfuse", "public_key")),
        // Length-prefixed associated data: shifting a boundary is not the same context.
        ("boundary", ctx("t1a", "pp1", "langfuse", "secret_key")),
    ] {
        let err = keys.open(&other, &sealed).unwrap_err();
        assert!(
            matches!(err, CryptoError::Decrypt { .. }),
            "{what}: expected a decryption failure, got {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("cannot decrypt"), "{what}: {msg}");
        assert!(
            !msg.contains("1234567890"),
            "{what}: the message leaks the secret"
        );
    }
}

#[test]
fn tampered_ciphertexts_fail() {
    let keys = keyring();
    let c = ctx("t1", "app1", "langfuse", "secret_key");
    let sealed = keys.seal(&c, "sk-lf-1234567890").unwrap();
    let (head, payload) = sealed.rsplit_once(':').unwrap();
    let blob = URL_SAFE_NO_PAD.decode(payload).unwrap();
    // Flip one bit in every position: nonce, ciphertext and tag are all authenticated.
    for i in 0..blob.len() {
        let mut bad = blob.clone();
        bad[i] ^= 0x01;
        let tampered = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&bad));
        assert!(
            matches!(keys.open(&c, &tampered), Err(CryptoError::Decrypt { .. })),
            "bit flip at byte {i} was not detected"
        );
    }
    // Truncated, extended, garbage.
    let truncated = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&blob[..blob.len() - 1]));
    assert!(matches!(
        keys.open(&c, &truncated),
        Err(CryptoError::Decrypt { .. })
    ));
    let mut longer = blob.clone();
    longer.push(0);
    let longer = format!("{head}:{}", URL_SAFE_NO_PAD.encode(&longer));
    assert!(matches!(
        keys.open(&c, &longer),
        Err(CryptoError::Decrypt { .. })
    ));
    for garbage in [
        "",
        "sk-lf-1234567890",
        "enc:v1:k1:",
        "enc:v1:k1:!!!",
        "enc:v1:kx:AAAA",
        "enc:v1:k1:AAAA",
    ] {
        assert!(
            matches!(keys.open(&c, garbage), Err(CryptoError::Malformed { .. })),
            "{garbage:?} should be malformed"
        );
    }
    // Relabelling the key version is detected even when that version exists.
    let two = Keyring::parse(&format!("1:{HEX_KEY} 2:{HEX_KEY}"), "test").unwrap();
    let v1 = {
        let only_one = Keyring::parse(&format!("1:{HEX_KEY}"), "test").unwrap();
        only_one.seal(&c, "secret-value").unwrap()
    };
    let relabelled = v1.replacen("enc:v1:k1:", "enc:v1:k2:", 1);
    assert!(matches!(
        two.open(&c, &relabelled),
        Err(CryptoError::Decrypt { .. })
    ));
}

#[test]
fn tenants_get_different_keys() {
    // Same secret, same app/provider/field names, different tenant: different keys, so even
    // with the associated data forged to match, the other tenant's key does not open it.
    let keys = keyring();
    let a = keys.seal(&ctx("t1", "app", "p", "f"), "v").unwrap();
    let b = keys.seal(&ctx("t2", "app", "p", "f"), "v").unwrap();
    assert_ne!(a, b);
    assert!(keys.open(&ctx("t2", "app", "p", "f"), &a).is_err());
    assert!(keys.open(&ctx("t1", "app", "p", "f"), &b).is_err());
}

#[test]
fn rotation_reseals_under_the_new_version() {
    let old = Keyring::parse(&format!("1:{HEX_KEY}"), "test").unwrap();
    let c = ctx("t1", "app1", "langfuse", "secret_key");
    let sealed_v1 = old.seal(&c, "sk-lf-rotate-me").unwrap();
    assert_eq!(key_version_of(&sealed_v1), Some(1));

    let new_key = MasterKey::generate(2).unwrap();
    let mut both = old.clone();
    both.insert(new_key.clone());
    assert_eq!(both.current_version(), 2);
    assert_eq!(both.versions(), vec![1, 2]);
    // Old ciphertexts still open with the old version present.
    assert_eq!(
        both.open(&c, &sealed_v1).unwrap().as_str(),
        "sk-lf-rotate-me"
    );
    // New seals use version 2.
    assert_eq!(key_version_of(&both.seal(&c, "x").unwrap()), Some(2));

    let resealed = both
        .reseal(&c, &sealed_v1)
        .unwrap()
        .expect("v1 is resealed");
    assert_eq!(key_version_of(&resealed), Some(2));
    assert_eq!(
        both.open(&c, &resealed).unwrap().as_str(),
        "sk-lf-rotate-me"
    );
    // Already current: nothing to do.
    assert_eq!(both.reseal(&c, &resealed).unwrap(), None);

    // After retiring version 1, only the resealed value opens; the old one names its version.
    let only_new = Keyring::new([new_key]).unwrap();
    assert_eq!(
        only_new.open(&c, &resealed).unwrap().as_str(),
        "sk-lf-rotate-me"
    );
    let err = only_new.open(&c, &sealed_v1).unwrap_err();
    assert!(
        matches!(err, CryptoError::UnknownKeyVersion { version: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("key version 1"), "{err}");
    // Rotation refuses to bless a corrupted current-version value.
    let broken = resealed.replacen("enc:v1:k2:A", "enc:v1:k2:B", 1);
    if broken != resealed {
        assert!(both.reseal(&c, &broken).is_err());
    }
}

#[test]
fn master_key_formats() {
    let bytes: [u8; 32] = core::array::from_fn(|i| i as u8);
    let from_hex = Keyring::parse(HEX_KEY, "x").unwrap();
    let b64 = STANDARD.encode(bytes);
    let from_b64 = Keyring::parse(&b64, "x").unwrap();
    let from_b64_nopad = Keyring::parse(b64.trim_end_matches('='), "x").unwrap();
    let from_urlsafe = Keyring::parse(&URL_SAFE_NO_PAD.encode(bytes), "x").unwrap();
    let c = ctx("t", "a", "p", "f");
    let sealed = from_hex.seal(&c, "same key").unwrap();
    for k in [&from_b64, &from_b64_nopad, &from_urlsafe] {
        assert_eq!(k.open(&c, &sealed).unwrap().as_str(), "same key");
    }
    // Several versions, comments, commas and newlines.
    let text = format!(
        "# keys\n2:{b64}\n\n1:{HEX_KEY}, 3:{}\n",
        STANDARD.encode([7u8; 32])
    );
    let ring = Keyring::parse(&text, "x").unwrap();
    assert_eq!(ring.versions(), vec![1, 2, 3]);
    assert_eq!(ring.current_version(), 3);
    // The entry round-trips.
    let generated = MasterKey::generate(9).unwrap();
    let reparsed = Keyring::parse(&generated.to_entry(), "x").unwrap();
    assert_eq!(reparsed.versions(), vec![9]);
    let s = Keyring::new([generated.clone()])
        .unwrap()
        .seal(&c, "v")
        .unwrap();
    assert_eq!(reparsed.open(&c, &s).unwrap().as_str(), "v");
    assert_eq!(
        Keyring::parse(&generated.to_base64(), "x")
            .unwrap()
            .versions(),
        vec![1]
    );
    // Debug never shows key material.
    let dbg = format!("{generated:?} {reparsed:?}");
    assert!(!dbg.contains(generated.to_base64().as_str()), "{dbg}");
}

#[test]
fn missing_and_malformed_keys_are_clear_errors() {
    let missing = Keyring::from_sources(None, None).unwrap_err();
    assert_eq!(missing, KeyError::Missing);
    let msg = missing.to_string();
    assert!(
        msg.contains(KEY_ENV) && msg.contains(KEY_FILE_ENV) && msg.contains("ops keygen"),
        "{msg}"
    );

    let both = Keyring::from_sources(Some(HEX_KEY), Some(std::path::Path::new("/k"))).unwrap_err();
    assert_eq!(both, KeyError::Ambiguous);

    let secretish = "c2hvcnQta2V5LXRoYXQtaXMtbm90LTMyLWJ5dGVz"; // base64 of 30 bytes
    for (text, expect) in [
        ("   ", "holds no key"),
        ("# only a comment", "holds no key"),
        ("zz", "neither 64 hex digits nor base64"),
        (secretish, "decodes to 30 bytes"),
        (&HEX_KEY[..62], "neither 64 hex digits nor base64"),
        (
            &format!("0:{HEX_KEY}"),
            "must be a whole number of 1 or more",
        ),
        (
            &format!("v2:{HEX_KEY}"),
            "must be a whole number of 1 or more",
        ),
        (&format!("{HEX_KEY} {HEX_KEY}"), "each needs a version"),
        (&format!("1:{HEX_KEY} 1:{HEX_KEY}"), "listed twice"),
    ] {
        let err = Keyring::parse(text, KEY_ENV).unwrap_err().to_string();
        assert!(err.contains(expect), "{text:?}: {err}");
        assert!(
            err.contains(KEY_ENV),
            "{text:?}: the error names the source: {err}"
        );
        if text.len() > 8 {
            assert!(
                !err.contains(text.trim()),
                "the error echoes the key: {err}"
            );
        }
    }

    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("absent.key");
    let err = Keyring::from_sources(None, Some(&absent)).unwrap_err();
    assert!(matches!(err, KeyError::File { .. }), "{err:?}");
    assert!(err.to_string().contains("absent.key"), "{err}");
    let file = dir.path().join("ops.key");
    std::fs::write(&file, format!("# ops key\n1:{HEX_KEY}\n")).unwrap();
    let ring = Keyring::from_sources(None, Some(&file)).unwrap();
    assert_eq!(ring.versions(), vec![1]);
    std::fs::write(&file, "garbage").unwrap();
    let err = Keyring::from_sources(None, Some(&file))
        .unwrap_err()
        .to_string();
    assert!(err.contains("key file") && err.contains("ops.key"), "{err}");
}
