//! Loopback end to end through a private PulseAudio server: the bundled
//! programme (ten phrases with known ends, `assets/programme.tsv`) played
//! into the virtual speaker, captured from its monitor by the live
//! pipeline, transcribed by the real model.
//!
//! Prints: samples captured vs played and every loss counted (ring
//! overflow, stream errors), the recording aligned against the clip
//! (correlation, offset), phrase latency p50/p95 (final event emitted minus
//! the phrase's end in captured audio), word error rate, process CPU, peak
//! RSS and the machine's load average (the machine may be shared).
//!
//! `cargo bench --bench loopback` plays the programme three times (about
//! 2.8 minutes); under `cargo test --benches` it plays its first 15 s.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hark::capture::{CaptureSpec, SourceKind};
use hark::dsp::wav;
use hark::event::{Event, EventKind, Source};
use hark::inference::Model;
use hark::pipeline::{Feed, PipelineConfig, SourceConfig};
use hark::score;
use hark::session::{Session, SessionConfig};
use hark::soundserver::{self, SoundServer};

const CLIP_RATE_HZ: u32 = 16_000;
/// Full run: the programme this many times.
const FULL_REPEATS: usize = 3;
/// Quick run (`cargo test --benches`): this much of the programme.
const QUICK_LENGTH: Duration = Duration::from_secs(15);
/// Captured before playing and after the clip was handed over.
const LEAD_IN: Duration = Duration::from_millis(500);
const TAIL: Duration = Duration::from_millis(2500);
/// How long one wait for the session's events lasts.
const POLL: Duration = Duration::from_millis(50);
/// Alignment search around the onset guess, in 16 kHz samples (25 ms).
const ALIGN_SEARCH_SAMPLES: i64 = 400;

struct Phrase {
    end_s: f64,
    text: String,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let server = SoundServer::start().expect("private sound server (pulseaudio, pulseaudio-utils)");
    // SAFETY: no thread has started yet.
    unsafe { server.export_env() };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");

    let (clip, phrases) = programme(root, dir.path(), full);
    let played = wav::read_16k_mono(&clip).expect("clip").samples;
    let played_s = played.len() as f64 / f64::from(CLIP_RATE_HZ);
    let model =
        Model::load(&root.join("models/tiny.en-q8_0.bin")).expect("model (run scripts/setup.sh)");
    let record = dir.path().join("captured.wav");
    let mut spec = CaptureSpec::new(SourceKind::Loopback);
    spec.device = Some(soundserver::SPEAKER_MONITOR.to_owned());
    let sources = vec![SourceConfig {
        source: Source::Loopback,
        feed: Feed::Device(spec),
        record: Some(record.clone()),
    }];
    let load_before = load_average();
    let usage_before = rusage();
    // The same session owner as `hark live` (no monitor, no transcript file).
    let config = SessionConfig::new(sources, PipelineConfig::default());
    let mut session = Session::start(&model, config, None).expect("session");
    let started = Instant::now();
    let mut events = Vec::new();
    let poll_for = |session: &mut Session, events: &mut Vec<Event>, how_long: Duration| {
        let until = Instant::now() + how_long;
        while Instant::now() < until {
            session.poll(POLL, events);
        }
    };
    poll_for(&mut session, &mut events, LEAD_IN);
    let mut player = server
        .play(soundserver::SPEAKER_SINK, &clip)
        .expect("paplay");
    let played_ok = loop {
        if let Some(status) = player.try_wait().expect("paplay") {
            break status.success();
        }
        session.poll(POLL, &mut events);
    };
    assert!(played_ok, "paplay failed");
    poll_for(&mut session, &mut events, TAIL);
    let stats = session.stats();
    let max_lag_ms = stats[0]
        .stream
        .max_lag_ms
        .load(std::sync::atomic::Ordering::Relaxed);
    let xruns = stats[0].capture.as_ref().map_or(0, |c| {
        c.stream_errors.load(std::sync::atomic::Ordering::Relaxed)
    });
    let wall_s = started.elapsed().as_secs_f64();
    let reports = session.stop(&mut events).sources;
    let usage_after = rusage();
    let load_after = load_average();
    let report = &reports[0];

    // Accounting: every sample the device delivered was pumped or counted.
    let rate = f64::from(report.rate_hz);
    let captured_s = report.offered as f64 / rate;
    println!(
        "loopback bench ({} run): played {played_s:.2} s",
        if full { "full" } else { "quick" }
    );
    println!(
        "  captured {} samples at {} Hz = {captured_s:.3} s in {wall_s:.3} s wall (capture/wall {:.4})",
        report.offered,
        report.rate_hz,
        captured_s / wall_s
    );
    println!(
        "  pumped {} overflowed {} stream errors {xruns} (offered - pumped - overflowed = {})",
        report.pumped,
        report.overflowed,
        report.offered as i64 - report.pumped as i64 - report.overflowed as i64
    );
    assert_eq!(
        report.offered,
        report.pumped + report.overflowed,
        "uncounted samples"
    );

    // The recording against the clip: where it starts, how alike.
    let recording = wav::read_16k_mono(&record).expect("recording").samples;
    let frames = hound::WavReader::open(&record).unwrap().duration();
    assert_eq!(
        u64::from(frames),
        report.pumped,
        "recording holds every pumped sample"
    );
    let (offset, correlation) = align(&played, &recording);
    let offset_s = offset as f64 / f64::from(CLIP_RATE_HZ);
    println!(
        "  recording {:.3} s, clip found at {offset_s:.3} s, correlation {correlation:.4} (played in full: {})",
        recording.len() as f64 / f64::from(CLIP_RATE_HZ),
        offset + played.len() <= recording.len()
    );

    // Latency: phrase end in captured audio -> the final covering it emitted.
    let finals: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .collect();
    for e in &finals {
        println!(
            "    final {:7.2}-{:7.2} s emitted {:7.2} s: {}",
            e.start,
            e.end,
            e.emitted.unwrap_or(f64::NAN),
            e.text
        );
    }
    let mut latencies = Vec::new();
    let mut missed = 0;
    for phrase in &phrases {
        let end = offset_s + phrase.end_s;
        match finals.iter().find(|e| e.end >= end - 0.25) {
            Some(e) => latencies.push(e.emitted.unwrap_or(f64::NAN) - end),
            None => missed += 1,
        }
    }
    latencies.sort_by(f64::total_cmp);
    println!(
        "  phrase latency (final emitted - phrase end): p50 {:.2} s p95 {:.2} s max {:.2} s over {} phrases ({missed} never committed); max lag {max_lag_ms} ms",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    );
    let reference: Vec<&str> = phrases.iter().map(|p| p.text.as_str()).collect();
    let hypothesis: Vec<&str> = finals.iter().map(|e| e.text.as_str()).collect();
    let errors = score::wer(&reference.join(" "), &hypothesis.join(" "));
    println!(
        "  WER {:.3} ({} passes, {} words committed)",
        errors.rate(),
        report.worker.passes,
        report.worker.committed_words
    );

    let cpu_s = usage_after.cpu_s - usage_before.cpu_s;
    println!(
        "  process CPU {cpu_s:.1} s over {wall_s:.1} s = {:.0}% of one core; peak RSS {:.1} MiB",
        100.0 * cpu_s / wall_s,
        usage_after.max_rss_kib as f64 / 1024.0
    );
    println!(
        "  load average before {load_before} after {load_after} ({} cores)",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    drop(server);
}

/// The clip to play (the programme repeated, or its start) and its phrases.
fn programme(root: &Path, dir: &Path, full: bool) -> (PathBuf, Vec<Phrase>) {
    let source = wav::read_16k_mono(root.join("assets/programme.wav")).expect("programme.wav");
    let tsv = std::fs::read_to_string(root.join("assets/programme.tsv")).expect("programme.tsv");
    let one: Vec<Phrase> = tsv
        .lines()
        .filter_map(|line| {
            let mut fields = line.split('\t');
            let _start = fields.next()?;
            let end_s = fields.next()?.parse().ok()?;
            Some(Phrase {
                end_s,
                text: fields.next()?.to_owned(),
            })
        })
        .collect();
    let one_s = source.samples.len() as f64 / f64::from(CLIP_RATE_HZ);
    let (samples, phrases) = if full {
        let samples = source.samples.repeat(FULL_REPEATS);
        let phrases = (0..FULL_REPEATS)
            .flat_map(|k| {
                one.iter().map(move |p| Phrase {
                    end_s: p.end_s + k as f64 * one_s,
                    text: p.text.clone(),
                })
            })
            .collect();
        (samples, phrases)
    } else {
        let keep = (QUICK_LENGTH.as_secs_f64() * f64::from(CLIP_RATE_HZ)) as usize;
        let samples = source.samples[..keep.min(source.samples.len())].to_vec();
        let phrases = one
            .into_iter()
            .filter(|p| p.end_s <= QUICK_LENGTH.as_secs_f64())
            .collect();
        (samples, phrases)
    };
    let path = dir.join("playlist.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: CLIP_RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).expect("playlist");
    for s in samples {
        writer
            .write_sample((s.clamp(-1.0, 1.0) * f32::from(i16::MAX)).round() as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
    (path, phrases)
}

/// Offset of `clip` in `recording` (onset guess, then the best lag nearby)
/// and the normalised correlation there.
fn align(clip: &[f32], recording: &[f32]) -> (usize, f64) {
    let onset = |x: &[f32]| x.iter().position(|s| s.abs() > 0.05).unwrap_or(0) as i64;
    let guess = onset(recording) - onset(clip);
    let mut best = (0usize, f64::MIN);
    for lag in (guess - ALIGN_SEARCH_SAMPLES).max(0)..=(guess + ALIGN_SEARCH_SAMPLES) {
        let lag = lag as usize;
        let end = (lag + clip.len()).min(recording.len());
        if end <= lag {
            break;
        }
        let (a, b) = (&clip[..end - lag], &recording[lag..end]);
        let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
        for (&x, &y) in a.iter().zip(b) {
            ab += f64::from(x) * f64::from(y);
            aa += f64::from(x) * f64::from(x);
            bb += f64::from(y) * f64::from(y);
        }
        let c = ab / (aa * bb).sqrt().max(f64::MIN_POSITIVE);
        if c > best.1 {
            best = (lag, c);
        }
    }
    best
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

struct Usage {
    cpu_s: f64,
    max_rss_kib: i64,
}

fn rusage() -> Usage {
    // SAFETY: getrusage only writes into the struct we pass.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Usage {
        cpu_s: seconds(usage.ru_utime) + seconds(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_owned())
}
