//! Compile tests of `#[traced]`; everything is under `tests/`.

/// The workspace README's Rust snippets, compiled and run as doctests
/// (`cargo test -p test-macros-ui --doc`), so none of them can rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;

/// `docs/ARCHITECTURE.md`'s Rust snippets, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../docs/ARCHITECTURE.md")]
pub struct ArchitectureDoctests;

/// `ops-core/README.md`'s Rust snippets, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../ops-core/README.md")]
pub struct OpsCoreReadmeDoctests;

/// `ops-macros/README.md`'s Rust snippets, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../ops-macros/README.md")]
pub struct OpsMacrosReadmeDoctests;

/// `ops-providers/README.md`'s Rust snippets, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../ops-providers/README.md")]
pub struct OpsProvidersReadmeDoctests;

/// `ops-testkit/README.md`'s Rust snippets, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../ops-testkit/README.md")]
pub struct OpsTestkitReadmeDoctests;

/// `ops-config/README.md`'s Rust snippets, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../ops-config/README.md")]
pub struct OpsConfigReadmeDoctests;

/// `ops-http/README.md`'s Rust snippets, as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../ops-http/README.md")]
pub struct OpsHttpReadmeDoctests;
