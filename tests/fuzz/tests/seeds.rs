//! Replays the committed seed corpus of every fuzz target (`fuzz/seeds/<target>/`), and the
//! inputs that once found a bug (`fuzz/regressions/<target>/`), through the same harnesses
//! the fuzzer runs: a regression fails here on stable, without cargo-fuzz or nightly.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    files.sort();
    files
}

#[test]
fn every_seed_and_regression_input_passes_its_harness() {
    let mut total = 0;
    for (target, harness) in ops_fuzz::TARGETS {
        let seeds = inputs("seeds", target);
        assert!(
            !seeds.is_empty(),
            "{target}: no seeds in fuzz/seeds/{target}"
        );
        for path in seeds.iter().chain(&inputs("regressions", target)) {
            let data = fs::read(path).unwrap();
            let start = Instant::now();
            harness(&data);
            eprintln!("{target}: {} in {:?}", path.display(), start.elapsed());
            total += 1;
        }
    }
    eprintln!("{total} inputs replayed");
}

#[test]
fn empty_and_tiny_inputs_pass_every_harness() {
    for (_, harness) in ops_fuzz::TARGETS {
        for data in [&b""[..], b"\0", b"\xff\xff", b"{}", b"[]"] {
            harness(data);
        }
    }
}
