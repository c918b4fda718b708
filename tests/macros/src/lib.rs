//! Compile tests of `#[traced]`; everything is under `tests/`.
