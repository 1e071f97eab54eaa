//! Offline transcription per model type (f16, q8_0, q5_1, q5_0, q4_0) on the
//! bundled clips (weather, meeting, numbers), 2 decoding threads. Prints, per
//! type: model load time (validate + whisper.cpp load), real-time factor
//! (decode time / audio time, over all clips) and word error rate, for the
//! encoder window fitted to the audio (what `hark transcribe` uses for audio
//! up to 28 s) and for the full 30 s window. Times are p50 over the runs.
//! Prints numbers; no pass/fail.
//!
//! Under `cargo bench --bench offline`: 5 runs each. Under `cargo test
//! --benches` (no `--bench` argument): one quick run, fitted window only.
//!
//! Needs the models made by `hark model install --all` (scripts/setup.sh).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hark::dsp::wav;
use hark::inference::{DecodeRequest, Decoder, Model};
use hark::score;

const TYPES: [&str; 5] = ["f16", "q8_0", "q5_1", "q5_0", "q4_0"];
const CLIPS: [&str; 3] = ["weather", "meeting", "numbers"];
const THREADS: usize = 2;
const RUNS_FULL: usize = 5;

struct Clip {
    samples: Vec<f32>,
    duration: Duration,
    reference: String,
}

fn p50(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Decodes every clip once; returns (decode seconds, errors, reference words).
fn pass(decoder: &mut Decoder, clips: &[Clip], fit: bool) -> (f64, usize, usize) {
    let request = DecodeRequest {
        fit_audio_ctx: fit,
        ..DecodeRequest::default()
    };
    let (mut decode_s, mut errors, mut words) = (0.0, 0, 0);
    for clip in clips {
        let h = decoder
            .decode(&clip.samples, &request, None)
            .expect("decode");
        decode_s += h.elapsed.as_secs_f64();
        let e = score::wer(&clip.reference, &h.text());
        errors += e.substitutions + e.deletions + e.insertions;
        words += e.reference_words;
    }
    (decode_s, errors, words)
}

/// What was measured for one model type.
#[derive(Default)]
struct Row {
    load_ms: Vec<f64>,
    /// Real-time factors per run, fitted window then full window.
    rtf: [Vec<f64>; 2],
    /// Word error rate (deterministic: the first run's), fitted then full.
    wer: [Option<f64>; 2],
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let runs = if full { RUNS_FULL } else { 1 };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clips: Vec<Clip> = CLIPS
        .iter()
        .map(|name| {
            let audio = wav::read_16k_mono(root.join(format!("assets/{name}.wav"))).expect("clip");
            Clip {
                duration: audio.duration(),
                samples: audio.samples,
                reference: std::fs::read_to_string(root.join(format!("assets/{name}.txt")))
                    .expect("reference"),
            }
        })
        .collect();
    let audio_s: f64 = clips.iter().map(|c| c.duration.as_secs_f64()).sum();
    println!(
        "offline: {} clips, {audio_s:.1} s of audio, {THREADS} threads, p50 of {runs} run(s)",
        clips.len()
    );
    println!(
        "{:<6} {:>10} {:>9} {:>12} {:>9} {:>12} {:>9}",
        "type", "MB", "load ms", "RTF fitted", "WER", "RTF 30 s", "WER"
    );
    let present: Vec<(&str, PathBuf)> = TYPES
        .iter()
        .map(|kind| (*kind, root.join(format!("models/tiny.en-{kind}.bin"))))
        .filter(|(kind, path)| {
            let ok = path.is_file();
            if !ok {
                println!("{kind:<6} missing {}: run scripts/setup.sh", path.display());
            }
            ok
        })
        .collect();
    let modes: &[bool] = if full { &[true, false] } else { &[true] };
    let mut rows: Vec<Row> = present.iter().map(|_| Row::default()).collect();
    // Runs outermost, types inside: load from the rest of the machine drifts
    // over minutes and so hits every type alike.
    for _ in 0..runs {
        for ((_, path), row) in present.iter().zip(&mut rows) {
            let model = Model::load(path).expect("load");
            row.load_ms.push(model.load_time().as_secs_f64() * 1e3);
            let mut decoder = model.decoder(THREADS).expect("decoder");
            for (mode, &fit) in modes.iter().enumerate() {
                let (decode_s, errors, words) = pass(&mut decoder, &clips, fit);
                row.rtf[mode].push(decode_s / audio_s);
                row.wer[mode].get_or_insert(errors as f64 / words.max(1) as f64);
            }
        }
    }
    let cell = |values: &Vec<f64>| {
        if values.is_empty() {
            "-".to_string()
        } else {
            format!("{:.3}", p50(values.clone()))
        }
    };
    let wer = |w: Option<f64>| w.map_or("-".to_string(), |w| format!("{w:.3}"));
    for ((kind, path), row) in present.iter().zip(&rows) {
        let bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        println!(
            "{kind:<6} {:>10.1} {:>9.0} {:>12} {:>9} {:>12} {:>9}",
            bytes as f64 / 1e6,
            p50(row.load_ms.clone()),
            cell(&row.rtf[0]),
            wer(row.wer[0]),
            cell(&row.rtf[1]),
            wer(row.wer[1]),
        );
    }
}
