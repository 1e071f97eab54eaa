//! Memory and latency of the real `hark` binary, measured from outside the
//! process: RSS sampled from `/proc/PID/status` every 50 ms, wall time from
//! the parent, committed lines timed as they arrive on the child's stdout.
//!
//! Prints, each with the machine's load average (the machine may be shared):
//! 1. `hark live --demo`: peak and steady RSS, and whether it raised a
//!    memory alert;
//! 2. `hark live`, one source (loopback) and both (mic + loopback), real
//!    speech (`assets/real/`, scripts/real-speech.sh) played through a
//!    private PulseAudio server: peak and steady RSS;
//! 3. offline `hark transcribe` of the 112 s monologue: peak RSS and wall
//!    time, and the same for each `whisper-cli` listed in `$WHISPER_CLI`
//!    (same model file, greedy, 2 threads, timestamps), with the ratios and
//!    the word difference between the transcripts;
//! 4. live loopback latency (final line on stdout minus the end of its
//!    audio) p50/p90/max and WER against the known text of the `known`
//!    phrases (and against hark's offline transcript), with 0, 1 and 2
//!    competing busy processes; offline WER against the known text beside.
//!
//! `cargo bench --bench memory` runs everything on the whole files; under
//! `cargo test --benches` each live run plays only its first 20 s.
//! `cargo bench --bench memory -- --soak MINUTES` runs only a soak of the
//! real `hark live` (one source, the monologue played over and over): RSS
//! every 5 minutes and its least-squares slope after the first 5, in MB/h;
//! `-- --offline` runs only part 3.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hark::score;
use hark::soundserver::{self, SoundServer};

mod side_by_side;
mod soak;

const SAMPLE_EVERY: Duration = Duration::from_millis(50);
const QUICK_PLAY: Duration = Duration::from_secs(20);
/// Captured after the clip ends, so its last words are committed.
const TAIL: Duration = Duration::from_secs(6);
const MIB: f64 = 1024.0 * 1024.0;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn hark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hark"))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// RSS of a running child, sampled until it exits.
struct Rss {
    samples: Vec<(f64, u64)>,
}

impl Rss {
    fn watch(child: &mut Child, started: Instant) -> Rss {
        let mut samples = Vec::new();
        while child.try_wait().expect("wait").is_none() {
            if let Some(rss) = rss_bytes(child.id()) {
                samples.push((started.elapsed().as_secs_f64(), rss));
            }
            std::thread::sleep(SAMPLE_EVERY);
        }
        Rss { samples }
    }

    fn peak_mib(&self) -> f64 {
        self.samples.iter().map(|s| s.1).max().unwrap_or(0) as f64 / MIB
    }

    /// Median of the second half of the run.
    fn steady_mib(&self) -> f64 {
        let mut half: Vec<u64> = self.samples[self.samples.len() / 2..]
            .iter()
            .map(|s| s.1)
            .collect();
        half.sort_unstable();
        half.get(half.len() / 2).copied().unwrap_or(0) as f64 / MIB
    }
}

/// A clip cut to `length` (or whole), as a 16 kHz WAV in `dir`.
fn clip(dir: &Path, name: &str, length: Option<Duration>) -> (PathBuf, f64) {
    let source = root().join("assets/real").join(format!("{name}-16k.wav"));
    assert!(
        source.exists(),
        "{} missing: run scripts/real-speech.sh",
        source.display()
    );
    let mut reader = hound::WavReader::open(&source).expect("real-speech clip");
    let spec = reader.spec();
    let all: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let keep = length.map_or(all.len(), |l| {
        (l.as_secs_f64() * f64::from(spec.sample_rate)) as usize
    });
    let keep = keep.min(all.len());
    let path = dir.join(format!("{name}.wav"));
    let mut writer = hound::WavWriter::create(&path, spec).expect("write clip");
    for s in &all[..keep] {
        writer.write_sample(*s).expect("write sample");
    }
    writer.finalize().expect("finalize clip");
    (path, keep as f64 / f64::from(spec.sample_rate))
}

/// A live run's results: RSS, and every final line with the wall time it
/// arrived, relative to when hark said it was listening.
struct LiveRun {
    rss: Rss,
    finals: Vec<(f64, f64, String)>,
    stderr: String,
}

fn live(server: &SoundServer, args: &[&str], plays: &[(&str, &Path)], seconds: f64) -> LiveRun {
    let duration = format!("{:.1}", seconds + TAIL.as_secs_f64());
    let started = Instant::now();
    let mut child = hark()
        .args(["live", "--format", "jsonl", "--duration", &duration])
        .args(args)
        .envs(server.env())
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hark live");
    let listening: Arc<Mutex<Option<Instant>>> = Arc::default();
    let stderr = child.stderr.take().expect("stderr");
    let heard = listening.clone();
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("listening") {
                heard.lock().unwrap().get_or_insert_with(Instant::now);
            }
            text.push_str(&line);
            text.push('\n');
        }
        text
    });
    let stdout = child.stdout.take().expect("stdout");
    let out_reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            lines.push((Instant::now(), line));
        }
        lines
    });
    // Play once hark listens.
    let wait_from = Instant::now();
    while listening.lock().unwrap().is_none() && wait_from.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mut players: Vec<Child> = plays
        .iter()
        .map(|(sink, wav)| server.play(sink, wav).expect("paplay"))
        .collect();
    let rss = Rss::watch(&mut child, started);
    for p in &mut players {
        let _ = p.wait();
    }
    let stderr = err_reader.join().expect("stderr reader");
    let origin = listening.lock().unwrap().unwrap_or(started);
    let finals = out_reader
        .join()
        .expect("stdout reader")
        .into_iter()
        .filter_map(|(at, line)| {
            let v: serde_json::Value = serde_json::from_str(&line).ok()?;
            (v["kind"] == "final").then(|| {
                (
                    at.duration_since(origin).as_secs_f64(),
                    v["end"].as_f64().unwrap_or(0.0),
                    v["text"].as_str().unwrap_or("").to_owned(),
                )
            })
        })
        .collect();
    LiveRun {
        rss,
        finals,
        stderr,
    }
}

/// Runs a command to its end; peak RSS and wall time.
fn offline(mut command: Command) -> (Rss, f64, String) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let rss = Rss::watch(&mut child, started);
    let wall = started.elapsed().as_secs_f64();
    (rss, wall, reader.join().expect("reader"))
}

fn text_of_jsonl(out: &str) -> String {
    out.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .collect::<Vec<_>>()
        .join(" ")
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn busy(n: usize) -> Vec<Child> {
    (0..n)
        .map(|_| {
            Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("busy process")
        })
        .collect()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let soak_minutes = std::env::args()
        .skip_while(|a| a != "--soak")
        .nth(1)
        .map(|m| m.parse::<f64>().expect("--soak MINUTES"));
    let length = (!full).then_some(QUICK_PLAY);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = SoundServer::start().expect("private sound server (pulseaudio, pulseaudio-utils)");
    let model = root().join("models/tiny.en-q8_0.bin");
    println!(
        "memory bench ({}), model {}",
        if full { "full" } else { "quick" },
        model.display()
    );
    if let Some(minutes) = soak_minutes {
        soak::run(&server, minutes);
        return;
    }
    if std::env::args().any(|a| a == "--offline") {
        side_by_side::run(&model, full);
        return;
    }

    // 1. The demo.
    let la = load_average();
    let started = Instant::now();
    let mut demo = hark()
        .args(["live", "--demo"])
        .envs(server.env())
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn hark live --demo");
    let stderr = demo.stderr.take().expect("stderr");
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let rss = Rss::watch(&mut demo, started);
    let err = err.join().expect("stderr");
    println!(
        "demo: peak RSS {:.1} MiB, steady {:.1} MiB, memory alert: {} (load {la})",
        rss.peak_mib(),
        rss.steady_mib(),
        if err.contains("memory above") {
            "yes"
        } else {
            "no"
        }
    );

    // 2. Live, one source and both.
    let (monologue, mono_s) = clip(dir.path(), "monologue", length);
    let (phrases, phrases_s) = clip(dir.path(), "phrases", length);
    let la = load_average();
    let run = live(
        &server,
        &[
            "--source",
            "loopback",
            "--loopback-device",
            soundserver::SPEAKER_MONITOR,
        ],
        &[(soundserver::SPEAKER_SINK, &monologue)],
        mono_s,
    );
    println!(
        "live one source ({mono_s:.0} s monologue): peak RSS {:.1} MiB, steady {:.1} MiB, {} finals (load {la})",
        run.rss.peak_mib(),
        run.rss.steady_mib(),
        run.finals.len()
    );
    let la = load_average();
    let run = live(
        &server,
        &[
            "--source",
            "both",
            "--loopback-device",
            soundserver::SPEAKER_MONITOR,
            "--mic-device",
            soundserver::MIC_SOURCE,
        ],
        &[
            (soundserver::SPEAKER_SINK, &monologue),
            (soundserver::MIC_FEED_SINK, &phrases),
        ],
        mono_s.max(phrases_s),
    );
    println!(
        "live both sources: peak RSS {:.1} MiB, steady {:.1} MiB, {} finals (load {la})",
        run.rss.peak_mib(),
        run.rss.steady_mib(),
        run.finals.len()
    );

    // 3. Offline, beside whisper-cli: interleaved runs, each tool's best.
    side_by_side::run(&model, full);

    // 4. Latency under competing load, on the phrases whose words are known.
    let (known, known_s) = clip(dir.path(), "known", length);
    let known_text = std::fs::read_to_string(root().join("assets/real/known.txt"))
        .expect("assets/real/known.txt: run scripts/real-speech.sh");
    let mut command = hark();
    command
        .args(["transcribe", "-f", "jsonl", "-m"])
        .arg(&model)
        .arg(&known);
    let (_, _, out) = offline(command);
    let reference = text_of_jsonl(&out);
    // A quick run plays only the start: score against the words it holds.
    let known_words = if full {
        known_text.clone()
    } else {
        reference.clone()
    };
    println!(
        "offline hark transcribe of the known phrases: WER {:.1}% against the known text{}",
        score::wer(&known_words, &reference).rate() * 100.0,
        if full { "" } else { " (quick: against itself)" }
    );
    for competitors in [0, 1, 2] {
        let mut hogs = busy(competitors);
        std::thread::sleep(Duration::from_secs(1));
        let la = load_average();
        let run = live(
            &server,
            &[
                "--source",
                "loopback",
                "--loopback-device",
                soundserver::SPEAKER_MONITOR,
            ],
            &[(soundserver::SPEAKER_SINK, &known)],
            known_s,
        );
        for hog in &mut hogs {
            let _ = hog.kill();
            let _ = hog.wait();
        }
        let mut latencies: Vec<f64> = run.finals.iter().map(|(at, end, _)| at - end).collect();
        latencies.sort_by(f64::total_cmp);
        let text = run
            .finals
            .iter()
            .map(|f| f.2.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let wer = score::wer(&reference, &text);
        let wer_known = score::wer(&known_words, &text);
        let lost = run
            .stderr
            .lines()
            .find(|l| l.contains("lost to overflow"))
            .unwrap_or("")
            .trim()
            .to_owned();
        println!(
            "latency, {competitors} busy: p50 {:.2} s, p90 {:.2} s, max {:.2} s over {} finals; \
             WER vs known text {:.1}%, vs offline {:.1}%; peak RSS {:.1} MiB (load {la}); {lost}",
            percentile(&latencies, 50.0),
            percentile(&latencies, 90.0),
            latencies.last().copied().unwrap_or(f64::NAN),
            latencies.len(),
            wer_known.rate() * 100.0,
            wer.rate() * 100.0,
            run.rss.peak_mib()
        );
    }
}
