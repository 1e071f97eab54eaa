//! Streaming benchmark: the live pipeline fed real speech at 1x.
//!
//! Prints, for the bundled programme (ten phrases with known boundaries):
//! latency from the end of each phrase to its committed text (p50/p95/max),
//! streaming WER against the offline transcript of the same file, the
//! worker's lag and passes; then, for two minutes of silence and low noise,
//! the words emitted (target 0) and the CPU the pipeline spent (target under
//! 5% of one core).
//!
//! `cargo bench --bench streaming` runs it in full (about four minutes, paced
//! at 1x); under `cargo test --benches` it runs a short version.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hark::dsp::wav;
use hark::event::{Event, EventKind, Source};
use hark::inference::{DecodeRequest, Model};
use hark::pipeline::{Feed, PipelineConfig, SourceConfig, SourceReport};
use hark::score;
use hark::session::{Session, SessionConfig};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model_path = std::env::var_os("HARK_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("models/tiny.en-q8_0.bin"));
    let model = Model::load(&model_path).expect("model (run scripts/setup.sh first)");
    println!("model {} (2 threads)", model_path.display());

    let programme = root.join("assets/programme.wav");
    let phrases = read_phrases(&root.join("assets/programme.tsv"));
    let (file, phrases) = if full {
        (programme, phrases)
    } else {
        // Short run: the first two phrases only.
        let cut = tempfile::Builder::new().suffix(".wav").tempfile().unwrap();
        let audio = wav::read(&programme).unwrap();
        let end = ((phrases[1].1 + 1.0) * audio.rate_hz as f64) as usize;
        write_wav(
            cut.path(),
            &audio.samples[..end.min(audio.samples.len())],
            audio.rate_hz,
        );
        let path = cut.into_temp_path().keep().unwrap();
        (path, phrases[..2].to_vec())
    };

    let (events, reports, cpu) = run(&model, &file);
    let finals: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .collect();
    let mut latencies = Vec::new();
    for (start, end, text) in &phrases {
        // The phrase's text is committed by the last final event that
        // overlaps it.
        let committed = finals
            .iter()
            .filter(|e| e.start < *end && e.end > *start - 0.3)
            .filter_map(|e| e.emitted)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        match committed {
            Some(t) => latencies.push(t - end),
            None => println!("  phrase not committed: {text}"),
        }
    }
    let reference: String = phrases
        .iter()
        .map(|p| p.2.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let streamed: String = finals
        .iter()
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let offline = offline_text(&model, &file);
    let wer_stream = score::wer(&reference, &streamed).rate();
    let wer_offline = score::wer(&reference, &offline).rate();
    latencies.sort_by(f64::total_cmp);
    let r = &reports[0];
    println!(
        "speech: {} phrases, {} committed events",
        phrases.len(),
        finals.len()
    );
    println!(
        "  latency end-of-phrase -> final: p50 {:.2} s  p95 {:.2} s  max {:.2} s  (n={})",
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        latencies.last().copied().unwrap_or(f64::NAN),
        latencies.len()
    );
    println!(
        "  WER streaming {:.3}  offline {:.3}  difference {:+.1} points",
        wer_stream,
        wer_offline,
        (wer_stream - wer_offline) * 100.0
    );
    let stats = &r.worker;
    println!(
        "  passes {}  committed words {}  samples offered {} pumped {} overflowed {}  cpu {:.1}% of one core",
        stats.passes, stats.committed_words, r.offered, r.pumped, r.overflowed, cpu * 100.0
    );

    // Silence and low noise: nothing may be written, and it should be cheap.
    let seconds = if full { 120 } else { 10 };
    let quiet = tempfile::Builder::new().suffix(".wav").tempfile().unwrap();
    write_wav(quiet.path(), &quiet_programme(seconds), 16_000);
    let (events, _, cpu) = run(&model, quiet.path());
    let words: usize = events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.text.split_whitespace().count())
        .sum();
    println!(
        "silence + low noise ({seconds} s): {words} words emitted, cpu {:.1}% of one core",
        cpu * 100.0
    );
}

/// Plays a file at 1x through a session (as `hark transcribe --realtime`
/// does); returns events, reports and the process CPU time over wall time.
fn run(model: &Model, file: &Path) -> (Vec<Event>, Vec<SourceReport>, f64) {
    let sources = vec![SourceConfig {
        source: Source::File,
        feed: Feed::File(file.to_path_buf()),
        record: None,
    }];
    let cpu0 = cpu_seconds();
    let wall = Instant::now();
    let config = SessionConfig::new(sources, PipelineConfig::default());
    let mut session = Session::start(model, config, None).unwrap();
    let mut events = Vec::new();
    while !session.files_done() {
        session.poll(Duration::from_millis(50), &mut events);
    }
    let reports = session.stop(&mut events).sources;
    let cpu = (cpu_seconds() - cpu0) / wall.elapsed().as_secs_f64();
    (events, reports, cpu)
}

fn offline_text(model: &Model, file: &Path) -> String {
    let audio = wav::read_16k_mono(file).unwrap();
    let mut decoder = model.decoder(2).unwrap();
    decoder
        .decode(&audio.samples, &DecodeRequest::default(), None)
        .unwrap()
        .text()
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

fn read_phrases(path: &Path) -> Vec<(f64, f64, String)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some((
                f.next()?.parse().ok()?,
                f.next()?.parse().ok()?,
                f.next()?.to_string(),
            ))
        })
        .collect()
}

/// Digital silence, then white noise at -50 and -40 dBFS, in thirds.
fn quiet_programme(seconds: usize) -> Vec<f32> {
    let n = seconds * 16_000;
    let mut seed: u32 = 0x1234_5678;
    let mut noise = || {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (seed >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0
    };
    // Uniform noise in [-a, a] has RMS a / sqrt(3).
    let amp = |db: f32| 10f32.powf(db / 20.0) * 3f32.sqrt();
    (0..n)
        .map(|i| match i * 3 / n {
            0 => 0.0,
            1 => noise() * amp(-50.0),
            _ => noise() * amp(-40.0),
        })
        .collect()
}

fn write_wav(path: &Path, samples: &[f32], rate_hz: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate_hz,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * i16::MAX as f32) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
