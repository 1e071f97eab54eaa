//! `hark live` end to end: the real binary, the real model, a private
//! PulseAudio server (one per test), speech played into its virtual speaker
//! and microphone with paplay, and the transcript scored against the clips'
//! reference text.
//!
//! The server's address reaches the child through its environment only, so
//! these tests use the normal harness; they run one at a time (a lock) since
//! each one runs Whisper on the shared cores at real time.

use crate::support::asset;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hark::dsp::wav;
use hark::event::{Event, EventKind, Source};
use hark::score;
use hark::soundserver::{self, SoundServer};

/// How long a start (model load, device open) may take under load.
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the drain after SIGINT may take (inference finishing).
const STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// Capture kept after a clip was handed over (server buffers, VAD hangover).
const TAIL: Duration = Duration::from_millis(1500);
/// Silence captured before playing.
const LEAD_IN: Duration = Duration::from_millis(500);
/// Word error rate allowed over the clips' reference text (tiny.en, q8_0,
/// espeak-ng speech; live runs here scored 0.03-0.20 on these clips, the
/// spread coming from where utterances are cut).
const MAX_WER: f64 = 0.30;

fn reference(name: &str) -> String {
    std::fs::read_to_string(asset(name)).expect("reference text")
}

/// A running `hark live` child: stdout collected, stderr scanned for the
/// "listening" line.
struct Live {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    stderr_lines: Vec<String>,
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Live {
    fn start(env: &[(String, String)], args: &[&str]) -> Live {
        let model = crate::support::default_model();
        let mut command = Command::new(env!("CARGO_BIN_EXE_hark"));
        command
            .arg("live")
            .args(args)
            .arg("--model")
            .arg(&model)
            .env_remove("HARK_MODEL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("run hark");
        let (out_tx, stdout) = mpsc::channel();
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = out.read_to_string(&mut text);
            let _ = out_tx.send(text);
        });
        let (err_tx, stderr) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if err_tx.send(line).is_err() {
                    break;
                }
            }
        });
        Live {
            child,
            stdout,
            stderr,
            stderr_lines: Vec::new(),
        }
    }

    /// Waits until capture runs (the "listening" line).
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            match self.stderr.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    let listening = line.starts_with("hark: listening");
                    self.stderr_lines.push(line);
                    if listening {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        panic!("hark did not start listening: {:?}", self.stderr_lines);
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0, "kill");
    }

    /// Sends SIGINT and waits for the drain and exit.
    fn interrupt(self) -> Finished {
        self.signal(libc::SIGINT);
        self.wait()
    }

    fn wait(mut self) -> Finished {
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait hark") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("hark did not stop: {:?}", self.stderr_lines);
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stdout = self
            .stdout
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        let mut lines = self.stderr_lines;
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            lines.push(line);
        }
        let finished = Finished {
            status,
            stdout,
            stderr: lines.join("\n"),
        };
        eprintln!(
            "--- hark stderr ---\n{}\n--- stdout ---\n{}",
            finished.stderr, finished.stdout
        );
        finished
    }
}

/// Plays `clip` into `sink` and waits until the server has it all.
fn play(server: &SoundServer, sink: &str, clip: &Path) {
    let mut player = server.play(sink, clip).expect("paplay");
    assert!(player.wait().expect("paplay").success(), "paplay failed");
}

fn events(jsonl: &str) -> Vec<Event> {
    jsonl
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad JSONL line {line:?}: {e}"))
        })
        .collect()
}

fn finals(events: &[Event], source: Source) -> String {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final && e.source == source)
        .map(|e| e.text.trim())
        .collect::<Vec<_>>()
        .join(" ")
}

fn assert_transcribed(events: &[Event], source: Source, reference_file: &str) {
    let text = finals(events, source);
    let wer = score::wer(&reference(reference_file), &text).rate();
    eprintln!("{source}: WER {wer:.3}: {text}");
    assert!(
        wer <= MAX_WER,
        "{source}: WER {wer:.3} > {MAX_WER}: {text:?}"
    );
}

/// `captured N samples at R Hz` from hark's summary line for `source`.
fn captured(stderr: &str, source: Source) -> (u64, u32) {
    let line = stderr
        .lines()
        .find(|l| l.contains(&format!("({source}): captured")))
        .unwrap_or_else(|| panic!("no summary for {source}: {stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "captured").unwrap();
    (
        words[at + 1].parse().unwrap(),
        words[at + 4].parse().unwrap(),
    )
}

#[test]
fn loopback_speech_is_transcribed_and_written() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("call.jsonl");
    let mut live = Live::start(
        &server.env(),
        &["--source", "loopback", "-o", out.to_str().unwrap()],
    );
    live.wait_listening();
    std::thread::sleep(LEAD_IN);
    play(&server, soundserver::SPEAKER_SINK, &asset("weather.wav"));
    std::thread::sleep(TAIL);
    let done = live.interrupt();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    // Piped stdout: JSONL by default, no escape codes.
    assert!(!done.stdout.contains('\x1b'));
    let printed = events(&done.stdout);
    assert!(printed.iter().all(|e| e.source == Source::Loopback));
    assert_transcribed(&printed, Source::Loopback, "weather.txt");
    // The file holds the same committed events (no partials without --partials).
    let written = events(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(
        written,
        printed
            .iter()
            .filter(|e| e.kind == EventKind::Final)
            .cloned()
            .collect::<Vec<_>>()
    );
}

#[test]
fn mic_speech_is_transcribed_and_recorded_gaplessly() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("mic.wav");
    let out = dir.path().join("mic.jsonl");
    let mut live = Live::start(
        &server.env(),
        &[
            "--source",
            "mic",
            "--record",
            record.to_str().unwrap(),
            "--partials",
            "-o",
            out.to_str().unwrap(),
        ],
    );
    live.wait_listening();
    std::thread::sleep(LEAD_IN);
    let clip = asset("numbers.wav");
    play(&server, soundserver::MIC_FEED_SINK, &clip);
    std::thread::sleep(TAIL);
    let done = live.interrupt();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    let printed = events(&done.stdout);
    assert_transcribed(&printed, Source::Mic, "numbers.txt");
    // --partials: the file carries what piped stdout got, partials
    // included. Whether a partial pass runs at all depends on the load (the
    // load-adaptive policy drops partial passes first when the cores are
    // busy: this failed once with 2 passes, both finals, at load average 5),
    // so their count is reported, not required.
    let written = events(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(written, printed);
    let partials = written
        .iter()
        .filter(|e| e.kind == EventKind::Partial)
        .count();
    eprintln!("{partials} partials written to the file and stdout");

    // The recording holds every captured sample, at the device's rate.
    let (offered, rate) = captured(&done.stderr, Source::Mic);
    let reader = hound::WavReader::open(&record).expect("recording");
    assert_eq!(reader.spec().sample_rate, rate);
    assert_eq!(
        u64::from(reader.duration()),
        offered,
        "recording frames vs captured samples"
    );
    // ... and matches what was played, with no gap inside the clip.
    let recorded = wav::read_16k_mono(&record).unwrap().samples;
    let played = wav::read_16k_mono(&clip).unwrap().samples;
    let (lag, correlation) = align(&played, &recorded);
    eprintln!(
        "recording: {:.3} s, clip at {:.3} s, correlation {correlation:.4}",
        recorded.len() as f64 / 16_000.0,
        lag as f64 / 16_000.0
    );
    assert!(correlation > 0.9, "correlation {correlation}");
    assert!(
        lag + played.len() <= recorded.len(),
        "clip cut off in the recording"
    );
}

#[test]
fn both_sources_are_labelled_and_recorded_apart() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("call.wav");
    let mut live = Live::start(
        &server.env(),
        &[
            "--source",
            "both",
            "--format",
            "jsonl",
            "--record",
            record.to_str().unwrap(),
        ],
    );
    live.wait_listening();
    std::thread::sleep(LEAD_IN);
    let mut them = server
        .play(soundserver::SPEAKER_SINK, &asset("weather.wav"))
        .unwrap();
    let mut you = server
        .play(soundserver::MIC_FEED_SINK, &asset("meeting.wav"))
        .unwrap();
    assert!(them.wait().unwrap().success() && you.wait().unwrap().success());
    std::thread::sleep(TAIL);
    // SIGTERM (a service manager's stop) drains like Ctrl-C.
    live.signal(libc::SIGTERM);
    let done = live.wait();
    assert_eq!(done.status.code(), Some(0), "{}", done.stderr);
    let printed = events(&done.stdout);
    assert_transcribed(&printed, Source::Loopback, "weather.txt");
    assert_transcribed(&printed, Source::Mic, "meeting.txt");
    for source in [Source::Mic, Source::Loopback] {
        let path = dir.path().join(format!("call-{source}.wav"));
        let (offered, _) = captured(&done.stderr, source);
        let frames = hound::WavReader::open(&path)
            .expect("per-source recording")
            .duration();
        assert_eq!(u64::from(frames), offered, "{}", path.display());
    }
}

fn align(clip: &[f32], recording: &[f32]) -> (usize, f64) {
    let onset = |x: &[f32]| {
        x.iter()
            .position(|s| s.abs() > 0.05)
            .expect("sound present")
    };
    let guess = onset(recording) as i64 - onset(clip) as i64;
    let search = 800_i64;
    let mut best = (0usize, f64::MIN);
    for lag in (guess - search).max(0)..=(guess + search) {
        let lag = lag as usize;
        if lag + clip.len() > recording.len() {
            break;
        }
        let c = correlation(clip, &recording[lag..lag + clip.len()]);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

fn correlation(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        ab += f64::from(x) * f64::from(y);
        aa += f64::from(x) * f64::from(x);
        bb += f64::from(y) * f64::from(y);
    }
    ab / (aa * bb).sqrt().max(f64::MIN_POSITIVE)
}

mod lifecycle;
mod record;
mod terminal;
