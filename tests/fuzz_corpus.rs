//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`, what
//! `cargo fuzz cmin` kept) and the inputs of past findings
//! (`fuzz/regressions/<target>/`) through the fuzz targets' own bodies
//! (`fuzz/src/lib.rs`): every parser returns a value or a typed error that is
//! one line naming the file, and never panics. `scripts/fuzz.sh` runs the
//! fuzzers themselves.

#[allow(dead_code)] // `fuzz_scratch_dir` is for the fuzz binaries only.
#[path = "../fuzz/src/lib.rs"]
mod harness;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("read a corpus directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs every input of `target` from both directories; returns how many ran.
fn replay(name: &str, target: harness::Target) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let scratch = tempfile::tempdir().expect("scratch directory");
    let mut files = inputs(&root.join("corpus").join(name));
    files.extend(inputs(&root.join("regressions").join(name)));
    let mut failures = Vec::new();
    for file in &files {
        let data = std::fs::read(file).expect("read a corpus file");
        if catch_unwind(AssertUnwindSafe(|| target(scratch.path(), &data))).is_err() {
            failures.push(file.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "{name}: {} of {} inputs panicked: {failures:?}",
        failures.len(),
        files.len()
    );
    files.len()
}

fn target(name: &str) -> harness::Target {
    harness::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, t)| *t)
        .expect("a known fuzz target")
}

/// Each target's corpus is committed and not empty, so a replay that finds
/// no files fails instead of passing silently.
fn replay_all_of(name: &str) {
    let ran = replay(name, target(name));
    assert!(ran > 0, "fuzz/corpus/{name} holds no inputs");
}

#[test]
fn wav_corpus_replays() {
    replay_all_of("wav");
}

#[test]
fn ggml_corpus_replays() {
    replay_all_of("ggml");
}

#[test]
fn ct2_corpus_replays() {
    replay_all_of("ct2");
}

#[test]
fn tokenizer_corpus_replays() {
    replay_all_of("tokenizer");
}

#[test]
fn recover_corpus_replays() {
    replay_all_of("recover");
}

#[test]
fn every_target_has_a_test() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["wav", "ggml", "ct2", "tokenizer", "recover"]);
}
