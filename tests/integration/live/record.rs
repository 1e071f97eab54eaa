//! `--record` never overwrites a file unless asked (`--record-overwrite`),
//! and leaves no empty WAV behind: with `--source both`, when the second
//! recording is refused the first one (created at once to claim its name)
//! is removed, not left as a 44-byte header. Real binary, private server.

use super::*;

#[test]
fn record_refuses_an_existing_file_and_leaves_no_empty_wav() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("call.wav");
    let mine = dir.path().join("call-loopback.wav");
    std::fs::write(&mine, b"precious, not a WAV").unwrap();
    let done = Live::start(
        &server.env(),
        &["--source", "both", "--record", base.to_str().unwrap()],
    )
    .wait();
    assert_eq!(done.status.code(), Some(5), "{}", done.stderr);
    let error = done
        .stderr
        .lines()
        .find(|l| l.starts_with("hark: error:"))
        .unwrap_or_else(|| panic!("no error line: {}", done.stderr));
    assert!(error.contains(&mine.display().to_string()), "{error}");
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(std::fs::read(&mine).unwrap(), b"precious, not a WAV");
    let mic = dir.path().join("call-mic.wav");
    assert!(!mic.exists(), "an empty {} was left behind", mic.display());
}

#[test]
fn record_overwrite_replaces_an_existing_recording() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("take.wav");
    std::fs::write(&record, b"an earlier take").unwrap();
    let done = Live::start(
        &server.env(),
        &[
            "--source",
            "loopback",
            "--duration",
            "2",
            "--record",
            record.to_str().unwrap(),
            "--record-overwrite",
        ],
    )
    .wait();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    let (offered, _) = captured(&done.stderr, Source::Loopback);
    let frames = hound::WavReader::open(&record)
        .expect("a new recording")
        .duration();
    assert!(offered > 0, "{}", done.stderr);
    assert_eq!(u64::from(frames), offered, "recording vs captured");
}
