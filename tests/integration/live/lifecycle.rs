//! Stopping (first and second interrupt), the errors before capture (no
//! server, no such device), and `--demo` with and without a server.

use super::*;

#[test]
fn interrupt_mid_phrase_commits_that_phrase() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("cut.txt");
    let mut live = Live::start(
        &server.env(),
        &["--source", "loopback", "-o", out.to_str().unwrap()],
    );
    live.wait_listening();
    // programme.wav: 1 s of silence, then "The quick brown fox jumps over
    // the lazy dog." until 4.44 s. Interrupt at 3.2 s, mid-phrase.
    let mut player = server
        .play(soundserver::SPEAKER_SINK, &asset("programme.wav"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(3200));
    let done = live.interrupt();
    let _ = player.kill();
    let _ = player.wait();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    let printed = events(&done.stdout);
    let text = finals(&printed, Source::Loopback).to_lowercase();
    // The phrase's words spoken before the cut are committed (a cut word
    // may be misheard, so only whole early words are checked) ...
    assert!(text.contains("the quick"), "{text:?}");
    // ... and the commit reaches the end of what was captured.
    let (offered, rate) = captured(&done.stderr, Source::Loopback);
    let captured_s = offered as f64 / f64::from(rate);
    let last_end = printed
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.end)
        .fold(0.0, f64::max);
    assert!(
        last_end >= captured_s - 0.5,
        "committed to {last_end:.2} s of {captured_s:.2} s"
    );
    // The file got it too, as whole txt lines.
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(file.to_lowercase().contains("the quick"), "{file:?}");
    assert!(file.ends_with('\n'));
}

#[test]
fn second_interrupt_exits_at_once_leaving_whole_records() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("hurry.jsonl");
    let mut live = Live::start(
        &server.env(),
        &["--source", "loopback", "-o", out.to_str().unwrap()],
    );
    live.wait_listening();
    let mut player = server
        .play(soundserver::SPEAKER_SINK, &asset("weather.wav"))
        .unwrap();
    std::thread::sleep(Duration::from_secs(6));
    live.signal(libc::SIGINT);
    std::thread::sleep(Duration::from_millis(100));
    let done = live.interrupt();
    let _ = player.kill();
    let _ = player.wait();
    assert_eq!(done.status.code(), Some(130), "{}", done.stderr);
    let file = std::fs::read_to_string(&out).unwrap();
    assert!(file.is_empty() || file.ends_with('\n'), "{file:?}");
    events(&file);
}

#[test]
fn no_sound_server_is_a_clean_device_error() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none");
    let env = [
        (
            "PULSE_SERVER".to_owned(),
            format!("unix:{}", nowhere.join("native").display()),
        ),
        ("XDG_RUNTIME_DIR".to_owned(), nowhere.display().to_string()),
    ];
    for source in ["loopback", "mic", "both"] {
        let done = Live::start(&env, &["--source", source, "--duration", "2"]).wait();
        assert_eq!(done.status.code(), Some(4), "{source}: {}", done.stderr);
        let error: Vec<&str> = done
            .stderr
            .lines()
            .filter(|l| l.starts_with("hark: error:"))
            .collect();
        assert_eq!(error.len(), 1, "{}", done.stderr);
        assert!(error[0].contains("no sound server"), "{}", error[0]);
        assert!(
            error[0].contains("start PulseAudio or PipeWire"),
            "{}",
            error[0]
        );
    }
}

#[test]
fn a_missing_device_names_what_exists() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let done = Live::start(
        &server.env(),
        &["--source", "mic", "--device", "no-such-mic"],
    )
    .wait();
    assert_eq!(done.status.code(), Some(4), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("no capture device matches --device 'no-such-mic'"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr.contains(soundserver::MIC_SOURCE),
        "{}",
        done.stderr
    );
}

/// The offset of `clip` in `recording` and their normalised correlation
/// there: coarse by onset, then the best lag within 50 ms around it.
#[test]
fn demo_without_a_server_starts_its_own() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none");
    let env = [
        (
            "PULSE_SERVER".to_owned(),
            format!("unix:{}", nowhere.join("native").display()),
        ),
        ("XDG_RUNTIME_DIR".to_owned(), nowhere.display().to_string()),
    ];
    let done = Live::start(&env, &["--demo"]).wait();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert!(
        done.stderr.contains("started a private sound server"),
        "{}",
        done.stderr
    );
    assert_transcribed(&events(&done.stdout), Source::Loopback, "weather.txt");
}

#[test]
fn demo_with_a_running_server_uses_its_default_output() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let done = Live::start(&server.env(), &["--demo"]).wait();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    assert!(
        !done.stderr.contains("started a private sound server"),
        "{}",
        done.stderr
    );
    assert_transcribed(&events(&done.stdout), Source::Loopback, "weather.txt");
}
