//! Echo in `--source both`, on the private PulseAudio server with real
//! speech (tests/support/echo.rs): far end = the radio monologue, local
//! talker = the phrases, the far end bleeding into the microphone late,
//! attenuated, with reverb and a low-pass speaker.
//!
//! Part 1, the canceller alone on the rendered files (10 ms frames, as the
//! mic pump feeds it), with each of AEC3's outputs hark can give (gated,
//! what hark uses; linear; suppressed, what a call would use): ERLE over the far end
//! alone (the first 3 s, while the filter converges, and after), the local talker's level through it, hark's offline transcript
//! of the output against the local talker's (WER; far-end words the mic
//! kept show as insertions), AEC3's delay estimate, the output's lag
//! behind the input, and CPU (thread CPU time) per second of audio.
//!
//! Part 2, `hark live --source both` per bleed case: mic words in the far-end
//! -only stretch over the far end's words there, the local talker's WER
//! (double talk included) against hark's offline transcript of the local
//! clip alone, beside the no-echo (headphones) case with --echo on and off,
//! and mic finals' latency.
//!
//! `cargo test` runs one offline case only.
//! `cargo bench --bench echo` runs a representative subset (delays 20 and
//! 200 ms at 10 and 20 dB under); HARK_ECHO_BENCH=full runs delays 10, 50,
//! 100, 150, 200, 250 ms at 0, 10, 20 dB. HARK_ECHO_BENCH_OFFLINE_ONLY=1
//! runs part 1 only, HARK_ECHO_BENCH_LIVE_ONLY=1 part 2 only.

#[path = "../tests/integration/support/echo.rs"]
mod scene;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use hark::echo::{self, EchoStats, Stage};
use hark::score;
use hark::soundserver::SoundServer;
use scene::Bleed;

fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn read16k(path: &std::path::Path) -> Vec<f32> {
    hark::dsp::wav::read(path).expect("read wav").samples
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum::<f64>() + 1e-12
}

fn db(x: f64) -> f64 {
    10.0 * x.log10()
}

/// Lag (samples) of `out` behind `input` over a stretch, by cross-correlation.
fn lag(input: &[f32], out: &[f32], a: usize, b: usize) -> usize {
    (0..1600)
        .max_by(|&x, &y| {
            let c = |l: usize| {
                (a..b)
                    .step_by(2)
                    .map(|i| f64::from(input[i]) * f64::from(out[i + l]))
                    .sum::<f64>()
            };
            c(x).total_cmp(&c(y))
        })
        .unwrap_or(0)
}

fn write16k(path: &std::path::Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &v in samples {
        w.write_sample((v.clamp(-1.0, 1.0) * 32_767.0) as i16)
            .expect("write wav");
    }
    w.finalize().expect("finish wav");
}

/// The canceller alone on the scene's files, with AEC3's `stage` output;
/// then hark's offline transcript of what came out, against the local
/// talker's own.
fn offline(label: &str, bleed: Option<Bleed>, stage: Stage) {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render(dir.path(), bleed);
    let reference = scene::local_reference(&scene);
    let far = read16k(&scene.far);
    let mic = read16k(&scene.mic);
    let stats = Arc::new(EchoStats::new());
    let (mut tap, mut canceller) = echo::link_stage(Instant::now(), Arc::clone(&stats), stage);
    let mut out = Vec::with_capacity(mic.len());
    let cpu0 = thread_cpu_s();
    for (i, m) in mic.chunks(320).enumerate() {
        let s = i * 320;
        let mut r = far
            .get(s..(s + m.len()).min(far.len()))
            .unwrap_or(&[])
            .to_vec();
        r.resize(m.len(), 0.0);
        tap.push(&r);
        canceller.process(m, &mut out);
    }
    canceller.finish(&mut out);
    let cpu = thread_cpu_s() - cpu0;
    let cancelled = dir.path().join("cancelled.wav");
    write16k(&cancelled, &out);
    let errors = score::wer(&reference, &scene::transcribe(&cancelled));
    let s = |t: f64| (t * 16_000.0) as usize;
    let erle_over = |a: f64, b: f64| db(energy(&mic[s(a)..s(b)]) / energy(&out[s(a)..s(b)]));
    // The first 3 s of far end, while the linear filter converges, and
    // after (output 4 ms late: a 64-sample shift is noise at these lengths).
    let early = erle_over(0.0, 3.0);
    let erle = erle_over(3.0, scene::LOCAL_AT_S - 0.5);
    let (a, b) = (
        s(scene::FAR_S + 2.0),
        s(scene::LOCAL_AT_S + scene::LOCAL_S - 0.2),
    );
    let kept = db(energy(&out[a..b]) / energy(&mic[a..b]));
    let l = lag(&mic, &out, a, b);
    let untouched = (0..mic.len() - 64).all(|i| out[i + 64] == mic[i]);
    println!(
        "offline  {label:<32} {stage:<10} ERLE 0-3 s {early:5.1} dB, 3-13.5 s {erle:5.1} dB, session {:5.1} dB; local alone {kept:+.1} dB; \
         WER {:5.1}% ({} sub, {} del, {} ins of {}); delay est {} ms; output lag {:.1} ms{}; CPU {:.1}% of a core",
        stats.erle_db().unwrap_or(f64::NAN),
        100.0 * errors.rate(),
        errors.substitutions,
        errors.deletions,
        errors.insertions,
        errors.reference_words,
        stats.delay_ms.load(Ordering::Relaxed),
        l as f64 / 16.0,
        if untouched { " (the input untouched)" } else { "" },
        100.0 * cpu / (mic.len() as f64 / 16_000.0),
        stage = format!("{stage:?}"),
    );
}

/// `--echo off` offline: hark's transcript of the microphone as it is.
fn offline_echo_off(label: &str, bleed: Option<Bleed>) {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render(dir.path(), bleed);
    let reference = scene::local_reference(&scene);
    let errors = score::wer(&reference, &scene::transcribe(&scene.mic));
    println!(
        "offline  {label:<32} echo off   WER {:5.1}% ({} sub, {} del, {} ins of {})",
        100.0 * errors.rate(),
        errors.substitutions,
        errors.deletions,
        errors.insertions,
        errors.reference_words,
    );
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn live(server: &SoundServer, label: &str, bleed: Option<Bleed>, echo: bool) {
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render(dir.path(), bleed);
    let reference = scene::local_reference(&scene);
    let run = scene::run_live(server, &scene, echo);
    let mut m = scene::measure(&run, &reference);
    let share = m.far_only_mic_words as f64 / m.far_only_far_words.max(1) as f64;
    println!(
        "live     {label:<32} echo {:<3} far-only mic words {:>3}/{:<3} far words ({:5.1}%), local WER {:5.1}%, \
         mic final latency p50 {:.2} s p95 {:.2} s, hark CPU {:.1} s",
        if echo { "on" } else { "off" },
        m.far_only_mic_words,
        m.far_only_far_words,
        100.0 * share,
        100.0 * m.local_wer,
        pct(&mut m.mic_latency_s, 0.5),
        pct(&mut m.mic_latency_s, 0.95),
        run.cpu_s
    );
    if let Some(s) = &m.summary {
        println!("         {s}");
    }
    if std::env::var_os("HARK_ECHO_BENCH_TEXT").is_some() {
        println!("         mic: {}", m.mic_text);
    }
}

fn main() {
    let full = std::env::var("HARK_ECHO_BENCH").is_ok_and(|v| v == "full");
    let (delays, unders): (&[u32], &[f64]) = if full {
        (&[10, 50, 100, 150, 200, 250], &[0.0, 10.0, 20.0])
    } else {
        (&[20, 200], &[10.0, 20.0])
    };
    let bleed = |delay_ms, under_db| Bleed {
        delay_ms,
        under_db,
        reverb: true,
        lowpass: true,
    };
    println!("echo bench: far end = monologue 0-30 s, local talker = phrases from 14 s (double talk 14-30 s)");
    if !std::env::args().any(|a| a == "--bench") {
        // `cargo test` runs benches once without --bench: one case, to
        // show the bench still works (the live cases are tests/integration/echo.rs).
        offline(
            &bleed(100, 12.0).to_string(),
            Some(bleed(100, 12.0)),
            Stage::Gated,
        );
        return;
    }
    let live_only = std::env::var_os("HARK_ECHO_BENCH_LIVE_ONLY").is_some();
    if !live_only {
        offline_echo_off("no echo (headphones)", None);
    }
    for stage in [Stage::Gated, Stage::Linear, Stage::Suppressed] {
        if live_only {
            break;
        }
        offline("no echo (headphones)", None, stage);
        for &d in delays {
            for &u in unders {
                offline(&bleed(d, u).to_string(), Some(bleed(d, u)), stage);
            }
        }
    }
    if std::env::var_os("HARK_ECHO_BENCH_OFFLINE_ONLY").is_some() {
        return;
    }
    let server = SoundServer::start().expect("private sound server");
    live(&server, "no echo (headphones)", None, false);
    live(&server, "no echo (headphones)", None, true);
    live(
        &server,
        &bleed(100, 12.0).to_string(),
        Some(bleed(100, 12.0)),
        false,
    );
    for &d in delays {
        for &u in unders {
            live(&server, &bleed(d, u).to_string(), Some(bleed(d, u)), true);
        }
    }
}
