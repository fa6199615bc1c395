//! Replays the fuzz targets' committed inputs on stable Rust: every file in
//! `fuzz/corpus/<target>/` (and in `fuzz/regressions/<target>/`, inputs that
//! once broke something) goes through the same check the fuzz target runs
//! (`webcall_core::fuzzing`). A missing or empty corpus fails, so a target
//! cannot lose its corpus unnoticed.

use std::path::{Path, PathBuf};

use webcall_core::fuzzing;

/// The fuzz crate's folder.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; empty when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every corpus and regression input of `target` through `check`;
/// fails naming each input that panicked.
fn replay(target: &str, check: fn(&[u8])) {
    assert!(
        fuzzing::TARGETS.contains(&target),
        "{target} is no fuzz target"
    );
    let corpus = files(&fuzz_dir().join("corpus").join(target));
    assert!(
        !corpus.is_empty(),
        "fuzz/corpus/{target}/ is missing or empty: seed it and run `cargo +nightly fuzz cmin {target}` (see README.md, Fuzzing)"
    );
    let regressions = files(&fuzz_dir().join("regressions").join(target));
    let mut failed = Vec::new();
    for path in corpus.iter().chain(&regressions) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} inputs of {target} fail (reproduce with `cargo +nightly fuzz run {target} FILE`):\n{}",
        failed.len(),
        corpus.len() + regressions.len(),
        failed.join("\n")
    );
}

#[test]
fn signaling_corpus() {
    replay("signaling", fuzzing::signaling);
}

#[test]
fn room_corpus() {
    replay("room", fuzzing::room);
}

#[test]
fn create_body_corpus() {
    replay("create_body", fuzzing::create_body);
}

/// Without the `client` feature the target checks tokens only; the
/// workspace's build (the server and the CLI need `client`) checks links.
#[test]
fn link_corpus() {
    replay("link", fuzzing::link);
}

#[test]
fn every_target_has_a_binary_and_a_test() {
    let source = include_str!("fuzz_corpus.rs");
    for target in fuzzing::TARGETS {
        let binary = fuzz_dir().join("fuzz_targets").join(format!("{target}.rs"));
        assert!(binary.is_file(), "{} is missing", binary.display());
        assert!(
            source.contains(&format!("replay(\"{target}\"")),
            "no test replays {target}"
        );
    }
}
