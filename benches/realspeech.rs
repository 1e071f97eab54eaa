//! Streaming benchmark on real human speech (assets/real/, made by
//! scripts/real-speech.sh from Debian's codec2-examples and alsa-utils).
//!
//! Each file is played through the live pipeline at 1x with default
//! settings, and compared with the offline transcript of the same file.
//! Per file and run it prints:
//! - `wer/offline`: streaming WER with the offline transcript as reference
//!   (agreement: the only reference for files whose exact words are not
//!   known); for the files whose words are known (`known*`, NAME.txt),
//!   `wer/ref` of streaming and of offline against that text;
//! - `dup4`: duplicated 4-word spans beyond those the offline transcript has;
//! - `tfaults`: final events whose times go backwards or leave the audio;
//! - latency from the end of each phrase (known times for the joined
//!   phrases; the VAD's end of speech for the monologue) to its committed
//!   text: p50 / p90 / max;
//! - the process's CPU (share of one core) and the passes' real-time factor.
//!
//! Then the spread over runs. `cargo bench --bench realspeech` runs every
//! file at 16 kHz three times, and each 8/44.1/48 kHz copy once
//! (`-- --runs N`, `-- --rates 16k,8k`, `-- --files unbroken` narrow it);
//! under `cargo test --benches` it runs one short file once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hark::dsp::wav;
use hark::event::{Event, EventKind, Source};
use hark::inference::stream::{Action, Stream, StreamConfig};
use hark::inference::{DecodeRequest, Model};
use hark::pipeline::{Feed, Pipeline, PipelineConfig, SourceConfig};
use hark::score;
use hark::vad::{Segmenter, VadEvent};

/// The shortest word, seconds.
const MIN_WORD_S: f64 = 0.1;

struct Phrase {
    start: f64,
    end: f64,
}

struct Outcome {
    wer_offline: f64,
    /// Streaming and offline WER against the known text.
    wer_ref: Option<(f64, f64)>,
    dup4: usize,
    faults: usize,
    latencies: Vec<f64>,
    cpu: f64,
    rtf: f64,
    /// Share of the wall time the worker spent in passes.
    busy: f64,
    lost: u64,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let full = args.iter().any(|a| a == "--bench");
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let runs: usize = value("--runs").map_or(3, |v| v.parse().expect("--runs N"));
    // --replay: the policy over the file as fast as the CPU goes, every
    // pass run the moment it is due (an infinitely fast machine's
    // schedule): what the policy commits, free of timing; its latency is
    // the audio the policy waits for before a commit, without pass time.
    let replay = args.iter().any(|a| a == "--replay");
    let dump = value("--dump").map(PathBuf::from);
    let rates: Vec<String> = value("--rates")
        .unwrap_or_else(|| "16k,8k,44k,48k".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let files: Vec<String> = value("--files")
        .unwrap_or_else(|| "known,known-unbroken,phrases,unbroken,monologue".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let real = root.join("assets/real");
    assert!(
        real.join(".done").exists(),
        "assets/real/ is missing: run scripts/real-speech.sh (scripts/setup.sh does)"
    );
    let model_path = std::env::var_os("HARK_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/tiny.en-q8_0.bin"));
    // Streaming with the model as `hark live` loads it, offline with the whole one.
    let model = Model::load_live(&model_path).expect("model (run scripts/setup.sh first)");
    let whole = Model::load(&model_path).expect("model (run scripts/setup.sh first)");
    println!("model {} (default pipeline settings)", model_path.display());

    let mut plan: Vec<(String, String, usize)> = Vec::new();
    if full {
        for name in &files {
            for rate in &rates {
                plan.push((
                    name.clone(),
                    rate.clone(),
                    if rate == "16k" { runs } else { 1 },
                ));
            }
        }
    } else {
        plan.push(("short".into(), "16k".into(), 1));
    }
    let mut all: HashMap<String, Vec<Outcome>> = HashMap::new();
    let tmp = tempfile::tempdir().unwrap();
    for (name, rate, n) in &plan {
        let (file, phrases) = if name == "short" {
            short_file(&real, tmp.path())
        } else {
            let file = real.join(format!("{name}-{rate}.wav"));
            (file, read_phrases(&real.join(format!("{name}.tsv"))))
        };
        let audio16 = wav::read_16k_mono(&file).unwrap();
        let duration = audio16.samples.len() as f64 / 16_000.0;
        let phrases = if phrases.len() == 1 {
            // One long recording: its phrases end where the VAD hears speech end.
            vad_phrases(&audio16.samples)
        } else {
            phrases
        };
        let offline = offline_text(&whole, &audio16.samples);
        let reference = std::fs::read_to_string(real.join(format!("{name}.txt"))).ok();
        if replay {
            let events = replay_policy(&model, &audio16.samples);
            let o = score_events(
                &events,
                &phrases,
                &offline,
                reference.as_deref(),
                duration,
                (0.0, 0.0, 0.0, 0),
            );
            dump_events(
                dump.as_deref(),
                &format!("{name}-{rate}-replay"),
                &events,
                &offline,
            );
            print_outcome(&format!("{name}-{rate} replay"), &o);
            continue;
        }
        for run_index in 0..*n {
            let (events, cpu, rtf, busy, lost) = run_once(&model, &file);
            dump_events(
                dump.as_deref(),
                &format!("{name}-{rate}-{}", run_index + 1),
                &events,
                &offline,
            );
            let o = score_events(
                &events,
                &phrases,
                &offline,
                reference.as_deref(),
                duration,
                (cpu, rtf, busy, lost),
            );
            print_outcome(&format!("{name}-{rate} #{}", run_index + 1), &o);
            all.entry(format!("{name}-{rate}")).or_default().push(o);
        }
    }
    println!("\nspread over runs (min .. max):");
    let mut keys: Vec<_> = all.keys().cloned().collect();
    keys.sort();
    for key in keys {
        let v = &all[&key];
        let span = |f: &dyn Fn(&Outcome) -> f64| {
            let xs: Vec<f64> = v.iter().map(f).collect();
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            format!("{lo:.3}..{hi:.3}")
        };
        println!(
            "  {key:<22} runs {}  wer/offline {}  wer/ref {}  dup4 {}  tfaults {}  p50 {}  p90 {}  max {}",
            v.len(),
            span(&|o| o.wer_offline),
            span(&|o| o.wer_ref.map_or(f64::NAN, |w| w.0)),
            span(&|o| o.dup4 as f64),
            span(&|o| o.faults as f64),
            span(&|o| percentile(&o.latencies, 0.5)),
            span(&|o| percentile(&o.latencies, 0.9)),
            span(&|o| o.latencies.last().copied().unwrap_or(f64::NAN)),
        );
    }
}

fn print_outcome(label: &str, o: &Outcome) {
    println!(
        "{label:<20} wer/offline {:.3}  wer/ref {}  dup4 {}  tfaults {}  latency p50 {:.2} p90 {:.2} max {:.2} s (n={})  cpu {:.0}%  pass rtf {:.3}  passes busy {:.0}%  lost {}",
        o.wer_offline,
        o.wer_ref
            .map_or("-".into(), |(s, f)| format!("{s:.3} (offline {f:.3})")),
        o.dup4,
        o.faults,
        percentile(&o.latencies, 0.5),
        percentile(&o.latencies, 0.9),
        o.latencies.last().copied().unwrap_or(f64::NAN),
        o.latencies.len(),
        o.cpu * 100.0,
        o.rtf,
        o.busy * 100.0,
        o.lost,
    );
}

/// Writes the events of a run and the offline transcript to `dir`.
fn dump_events(dir: Option<&Path>, label: &str, events: &[Event], offline: &str) {
    let Some(dir) = dir else { return };
    std::fs::create_dir_all(dir).unwrap();
    let lines: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(dir.join(format!("{label}.jsonl")), lines).unwrap();
    std::fs::write(dir.join(format!("{label}.offline.txt")), offline).unwrap();
}

/// The VAD and the streaming policy over `samples` in 30 ms chunks, every
/// due pass run at once. Each event's `emitted` is the audio time it was
/// produced at, so its latency is what the policy waits for (the VAD, the
/// piece's cut) with no pass time: timing-free.
fn replay_policy(model: &Model, samples: &[f32]) -> Vec<Event> {
    let mut decoder = model.decoder(2).unwrap();
    let mut vad = Segmenter::new(PipelineConfig::default().vad);
    // Partial passes only show text; every 2 s keeps the replay quick (a
    // piece is still committed from a pass that ends at its pause).
    let mut config = StreamConfig::new(Source::File);
    config.min_step = Duration::from_secs(2);
    let mut stream = Stream::new(config, Instant::now());
    let mut out = Vec::new();
    let mut vad_events = Vec::new();
    let at = |fed: usize, events: Vec<Event>| {
        events.into_iter().map(move |e| Event {
            emitted: Some(fed as f64 / 16_000.0),
            ..e
        })
    };
    let mut fed = 0;
    for chunk in samples.chunks(480) {
        fed += chunk.len();
        vad.push(chunk, &mut vad_events);
        for e in vad_events.drain(..) {
            stream.push(e);
        }
        while stream.next_action() != Action::Wait {
            out.extend(at(fed, stream.step(&mut decoder).unwrap()));
        }
    }
    vad.finish(&mut vad_events);
    for e in vad_events.drain(..) {
        stream.push(e);
    }
    out.extend(at(fed, stream.finish(&mut decoder).unwrap()));
    out
}

/// Plays `file` through the pipeline at 1x: events, CPU share, pass RTF,
/// the worker's share of time in passes, samples lost.
fn run_once(model: &Model, file: &Path) -> (Vec<Event>, f64, f64, f64, u64) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let sources = [SourceConfig {
        source: Source::File,
        feed: Feed::File(file.to_path_buf()),
        record: None,
    }];
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let pipeline = Pipeline::start(model, &PipelineConfig::default(), &sources, tx).unwrap();
    let stats = pipeline.stats();
    while !pipeline.files_done() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let reports = pipeline.stop();
    let wall = wall.elapsed().as_secs_f64();
    let cpu = (cpu_seconds() - cpu0) / wall;
    let busy = stats[0].stream.decode_us.load(Ordering::Relaxed) as f64 / 1e6 / wall;
    let events: Vec<Event> = rx.try_iter().collect();
    (
        events,
        cpu,
        stats[0].stream.pass_rtf(),
        busy,
        reports[0].overflowed,
    )
}

fn score_events(
    events: &[Event],
    phrases: &[Phrase],
    offline: &str,
    reference: Option<&str>,
    duration: f64,
    (cpu, rtf, busy, lost): (f64, f64, f64, u64),
) -> Outcome {
    let finals: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .collect();
    let streamed = join(finals.iter().map(|e| e.text.as_str()));

    let mut latencies = Vec::new();
    for p in phrases {
        // The phrase is committed by the last final event that overlaps it
        // by a word's length or more: a piece cut in the quiet the phrase's
        // clip ends with starts a few ms before the phrase's end and holds
        // none of its words (it counted the next phrase's commit, 1-3 s
        // later, as this one's).
        if let Some(t) = finals
            .iter()
            .filter(|e| e.start < p.end - MIN_WORD_S && e.end > p.start - 0.3)
            .filter_map(|e| e.emitted)
            .reduce(f64::max)
        {
            latencies.push(t - p.end);
        }
    }
    latencies.sort_by(f64::total_cmp);
    let faults = score::time_faults(finals.iter().map(|e| (e.start, e.end)), duration + 0.05);
    Outcome {
        wer_offline: score::wer(offline, &streamed).rate(),
        wer_ref: reference.map(|r| {
            (
                score::wer(r, &streamed).rate(),
                score::wer(r, offline).rate(),
            )
        }),
        dup4: score::extra_repeats(offline, &streamed),
        faults,
        latencies,
        cpu,
        rtf,
        busy,
        lost,
    }
}

/// Where the VAD (default settings) hears speech end: (start, end) of each
/// utterance's voice, for a recording without known phrase times.
fn vad_phrases(samples: &[f32]) -> Vec<Phrase> {
    let mut vad = Segmenter::new(PipelineConfig::default().vad);
    let mut events = Vec::new();
    for chunk in samples.chunks(480) {
        vad.push(chunk, &mut events);
    }
    vad.finish(&mut events);
    let mut phrases = Vec::new();
    let mut start = 0u64;
    for e in events {
        match e {
            VadEvent::SpeechStart { start: s } => start = s,
            VadEvent::SpeechEnd { voiced_end, .. } => phrases.push(Phrase {
                start: start as f64 / 16_000.0,
                end: voiced_end as f64 / 16_000.0,
            }),
            _ => {}
        }
    }
    phrases
}

fn offline_text(model: &Model, samples: &[f32]) -> String {
    let mut decoder = model.decoder(2).unwrap();
    decoder
        .decode(samples, &DecodeRequest::default(), None)
        .unwrap()
        .text()
}

/// The first 20 s of the unbroken reading, for the short run.
fn short_file(real: &Path, dir: &Path) -> (PathBuf, Vec<Phrase>) {
    let audio = wav::read(real.join("unbroken-16k.wav")).unwrap();
    let phrases: Vec<Phrase> = read_phrases(&real.join("unbroken.tsv"))
        .into_iter()
        .filter(|p| p.end < 20.0)
        .collect();
    let end = ((phrases.last().unwrap().end + 0.5) * 16_000.0) as usize;
    let path = dir.join("short.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for &s in &audio.samples[..end.min(audio.samples.len())] {
        w.write_sample((s.clamp(-1.0, 1.0) * i16::MAX as f32) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
    (path, phrases)
}

fn read_phrases(path: &Path) -> Vec<Phrase> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some(Phrase {
                start: f.next()?.parse().ok()?,
                end: f.next()?.parse().ok()?,
            })
        })
        .collect()
}

fn join<'a>(parts: impl Iterator<Item = &'a str>) -> String {
    parts.collect::<Vec<_>>().join(" ")
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
