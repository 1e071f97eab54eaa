//! The echo scene shared by tests/echo.rs and benches/echo.rs: real speech
//! for the far end (the radio monologue) and the local talker (the phrases,
//! other speakers), a simulated speaker-to-microphone path rendered with sox
//! (delay, attenuation under the local talker, reverb, low-pass speaker),
//! and `hark live --source both` on the private PulseAudio server: the far
//! end is played into the speaker sink (captured as loopback), the bleed
//! plus the local talker into the mic feed sink (captured as the mic).
//!
//! Timeline of a scene, from the far end's first sample: far end alone
//! 0-14 s, both talking 14-30 s, the local talker alone 30-41 s.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hark::event::{Event, EventKind, Source};
use hark::score;
use hark::soundserver::{self, SoundServer};

/// Seconds of the far end played.
pub const FAR_S: f64 = 30.0;
/// When the local talker starts.
pub const LOCAL_AT_S: f64 = 14.0;
/// Seconds of the local talker (phrases hts1a..kristoff).
pub const LOCAL_S: f64 = 27.0;
const START_TIMEOUT: Duration = Duration::from_secs(180);
const STOP_TIMEOUT: Duration = Duration::from_secs(180);

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn model() -> PathBuf {
    let model = root().join("models/tiny.en-q8_0.bin");
    assert!(
        model.is_file(),
        "run scripts/setup.sh first: {}",
        model.display()
    );
    model
}

pub fn real(name: &str) -> PathBuf {
    let path = root().join("assets/real").join(name);
    assert!(
        path.is_file(),
        "run scripts/real-speech.sh first: {}",
        path.display()
    );
    path
}

/// How the far end reaches the microphone.
#[derive(Debug, Clone, Copy)]
pub struct Bleed {
    pub delay_ms: u32,
    /// Peak level under the local talker's peak, dB.
    pub under_db: f64,
    pub reverb: bool,
    pub lowpass: bool,
}

impl std::fmt::Display for Bleed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ms, -{} dB", self.delay_ms, self.under_db)?;
        if self.reverb {
            f.write_str(", reverb")?;
        }
        if self.lowpass {
            f.write_str(", low-pass")?;
        }
        Ok(())
    }
}

/// The rendered files of one scene.
pub struct Scene {
    pub far: PathBuf,
    pub local: PathBuf,
    pub mic: PathBuf,
}

pub fn sox(args: &[&str]) {
    let out = Command::new("sox").args(args).output().expect("run sox");
    assert!(
        out.status.success(),
        "sox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Renders the scene into `dir`; `bleed: None` is the headphones case (the
/// mic hears the local talker only).
pub fn render(dir: &Path, bleed: Option<Bleed>) -> Scene {
    render_at(dir, bleed, LOCAL_AT_S)
}

/// [`render`] with the local talker starting `local_at_s` after the far end
/// (0: both from the first second, as on a call picked up mid-sentence).
pub fn render_at(dir: &Path, bleed: Option<Bleed>, local_at_s: f64) -> Scene {
    let far = dir.join("far.wav");
    let local = dir.join("local.wav");
    let local_placed = dir.join("local-placed.wav");
    let mic = dir.join("mic.wav");
    let end = format!("{}", (local_at_s + LOCAL_S).max(FAR_S) + 1.0);
    let far_s = FAR_S.to_string();
    sox(&[
        real("monologue-16k.wav").to_str().unwrap(),
        far.to_str().unwrap(),
        "trim",
        "0",
        &far_s,
        "gain",
        "-n",
        "-3",
    ]);
    let local_s = LOCAL_S.to_string();
    sox(&[
        real("phrases-16k.wav").to_str().unwrap(),
        local.to_str().unwrap(),
        "trim",
        "0",
        &local_s,
        "gain",
        "-n",
        "-3",
    ]);
    let at = local_at_s.to_string();
    sox(&[
        local.to_str().unwrap(),
        local_placed.to_str().unwrap(),
        "pad",
        &at,
        "0",
        "trim",
        "0",
        &end,
    ]);
    match bleed {
        None => std::fs::copy(&local_placed, &mic)
            .map(|_| ())
            .expect("copy"),
        Some(b) => {
            let path = dir.join("bleed.wav");
            let delay = format!("{:.3}", f64::from(b.delay_ms) / 1000.0);
            let gain = format!("-{}", b.under_db);
            let mut args: Vec<&str> = vec![
                far.to_str().unwrap(),
                path.to_str().unwrap(),
                "delay",
                &delay,
            ];
            if b.lowpass {
                args.extend(["lowpass", "3500"]);
            }
            if b.reverb {
                // reverb makes a second channel: `delay` alone would move one.
                args.extend(["reverb", "40", "50", "60", "channels", "1"]);
            }
            args.extend([
                "gain", "-n", "-3", "gain", &gain, "pad", "0", "15", "trim", "0", &end,
            ]);
            sox(&args);
            sox(&[
                "-m",
                "-v",
                "1",
                path.to_str().unwrap(),
                "-v",
                "1",
                local_placed.to_str().unwrap(),
                mic.to_str().unwrap(),
            ]);
        }
    }
    Scene { far, local, mic }
}

/// What one `hark live --source both` run left.
pub struct Run {
    pub events: Vec<Event>,
    pub stderr: String,
    /// User+system CPU seconds of the hark process (from /proc).
    pub cpu_s: f64,
}

fn proc_cpu_s(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs hark on the scene: far end into the speaker, mic signal into the
/// mic feed, both started together once hark listens.
pub fn run_live(server: &SoundServer, scene: &Scene, echo: bool) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["live", "--source", "both", "--format", "jsonl", "--echo"])
        .arg(if echo { "on" } else { "off" })
        .arg("--model")
        .arg(model())
        .env_remove("HARK_MODEL")
        .envs(server.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run hark");
    let (out_tx, out_rx) = mpsc::channel();
    let mut out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        let _ = out_tx.send(text);
    });
    let (err_tx, err_rx) = mpsc::channel();
    let err = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if err_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        assert!(Instant::now() < deadline, "hark did not start: {lines:?}");
        match err_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let listening = line.starts_with("hark: listening");
                lines.push(line);
                if listening {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("hark exited: {lines:?}"),
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut far = server
        .play(soundserver::SPEAKER_SINK, &scene.far)
        .expect("paplay far");
    let mut mic = server
        .play(soundserver::MIC_FEED_SINK, &scene.mic)
        .expect("paplay mic");
    assert!(
        far.wait().unwrap().success() && mic.wait().unwrap().success(),
        "paplay failed"
    );
    std::thread::sleep(Duration::from_millis(2000));
    let cpu_s = proc_cpu_s(child.id()).unwrap_or(f64::NAN);
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let status = wait(&mut child);
    let stdout = out_rx
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_default();
    while let Ok(line) = err_rx.recv_timeout(Duration::from_secs(2)) {
        lines.push(line);
    }
    let stderr = lines.join("\n");
    assert_eq!(status, Some(0), "hark failed: {stderr}");
    let events = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL {l:?}: {e}")))
        .collect();
    Run {
        events,
        stderr,
        cpu_s,
    }
}

fn wait(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().expect("wait hark") {
            return status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hark did not stop");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The local talker's words as hark transcribes the clip alone, offline:
/// the reference its words in the scene are scored against.
pub fn local_reference(scene: &Scene) -> String {
    transcribe(&scene.local)
}

/// hark's offline transcript of a file: its finals' text, joined.
pub fn transcribe(path: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hark"))
        .arg("transcribe")
        .arg(path)
        .args(["--format", "jsonl", "--model"])
        .arg(model())
        .output()
        .expect("hark transcribe");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Event> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSONL {l:?}: {e}")))
        .collect();
    let texts: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.text.trim())
        .collect();
    texts.join(" ")
}

/// What a run did to the microphone's transcript.
#[derive(Debug, Clone)]
pub struct Measures {
    /// Mic words in utterances inside the far-end-only stretch.
    pub far_only_mic_words: usize,
    /// Loopback words in the same stretch.
    pub far_only_far_words: usize,
    /// WER of the mic transcript against the local talker's reference.
    pub local_wer: f64,
    pub mic_text: String,
    /// Where the far end's first sample was placed on the timeline (the
    /// loopback's first final's start), seconds.
    pub t0_s: f64,
    /// The mic finals counted in the far-end-only stretch: (start, end,
    /// words counted, text); what leaked, to diagnose a failure.
    pub far_only_mic: Vec<(f64, f64, usize, String)>,
    /// Every mic final's (start, end), seconds: where the local talker's
    /// first utterance fell against the stretch.
    pub mic_spans: Vec<(f64, f64)>,
    /// Mic finals' latency (emitted minus end of audio), seconds.
    pub mic_latency_s: Vec<f64>,
    pub summary: Option<String>,
}

fn words(text: &str) -> usize {
    score::normalize(text).len()
}

pub fn measure(run: &Run, reference: &str) -> Measures {
    let finals = |s: Source| {
        run.events
            .iter()
            .filter(move |e| e.kind == EventKind::Final && e.source == s)
    };
    // The far end's speech starts with its first sample: its first final's
    // start (minus the resampler's few ms) places the scene on the timeline.
    let t0 = finals(Source::Loopback)
        .map(|e| e.start)
        .fold(f64::INFINITY, f64::min);
    let far_only_end = t0 + LOCAL_AT_S - 0.3;
    // Words of an utterance in the stretch, in proportion to its overlap
    // (utterances of continuous speech run past the stretch's end).
    let inside = |e: &Event| {
        let overlap = (e.end.min(far_only_end) - e.start.max(t0 - 1.0)).max(0.0);
        let share = if e.end > e.start {
            overlap / (e.end - e.start)
        } else {
            0.0
        };
        (words(&e.text) as f64 * share).round() as usize
    };
    // A mic utterance that runs from the stretch into the local talker's
    // time holds the talker's first words: of its share only the words the
    // talker never says count (a live run opened the local talker's first
    // phrase 1.2 s early on the canceller's residue, and counted two of its
    // own words as leaked).
    let local_words: std::collections::HashSet<String> =
        score::normalize(reference).into_iter().collect();
    let leaked = |e: &Event| {
        let n = inside(e);
        if e.end <= far_only_end + 0.3 {
            return n;
        }
        let foreign = score::normalize(&e.text)
            .iter()
            .filter(|w| !local_words.contains(*w))
            .count();
        n.min(foreign)
    };
    let far_only_mic: Vec<(f64, f64, usize, String)> = finals(Source::Mic)
        .map(|e| (e.start, e.end, leaked(e), e.text.trim().to_owned()))
        .filter(|(_, _, n, _)| *n > 0)
        .collect();
    let far_only_mic_words = far_only_mic.iter().map(|(_, _, n, _)| n).sum();
    let far_only_far_words = finals(Source::Loopback).map(inside).sum();
    let mic_text: Vec<&str> = finals(Source::Mic).map(|e| e.text.trim()).collect();
    let mic_text = mic_text.join(" ");
    let local_wer = score::wer(reference, &mic_text).rate();
    let mic_latency_s = finals(Source::Mic)
        .filter_map(|e| e.emitted.map(|t| t - e.end))
        .collect();
    let summary = run
        .stderr
        .lines()
        .find(|l| l.starts_with("hark: echo:"))
        .map(str::to_owned);
    Measures {
        far_only_mic_words,
        far_only_far_words,
        local_wer,
        mic_text,
        t0_s: t0,
        far_only_mic,
        mic_spans: finals(Source::Mic).map(|e| (e.start, e.end)).collect(),
        mic_latency_s,
        summary,
    }
}

impl Measures {
    /// The numbers a failed assertion must show, on one line: far-only
    /// words (and which leaked), the local WER, latency and the summary.
    pub fn brief(&self) -> String {
        let max_latency = self.mic_latency_s.iter().copied().fold(0.0, f64::max);
        format!(
            "far-only mic words {}/{} (t0 {:.2} s, counted {:?}), local WER {:.3}, \
             max mic latency {max_latency:.1} s, {}",
            self.far_only_mic_words,
            self.far_only_far_words,
            self.t0_s,
            self.far_only_mic,
            self.local_wer,
            self.summary.as_deref().unwrap_or("no echo summary"),
        )
    }
}
