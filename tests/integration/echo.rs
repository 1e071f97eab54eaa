//! Echo in `--source both`: real speech through the canceller and the text
//! filter, and `hark live` on the private PulseAudio server with a simulated
//! speaker-to-microphone path (tests/integration/support/echo.rs). Numbers for the
//! README come from benches/echo.rs; these check the behaviour.

use crate::support::echo as scene;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hark::echo::{self, EchoFilter, EchoStats, FilterConfig};
use hark::event::{Event, EventKind, Source};
use hark::soundserver::SoundServer;
use scene::Bleed;

fn read16k(path: &std::path::Path) -> Vec<f32> {
    let audio = hark::dsp::wav::read(path).expect("read wav");
    assert_eq!(audio.rate_hz, 16_000);
    audio.samples
}

fn energy(x: &[f32]) -> f64 {
    x.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

const BLEED: Bleed = Bleed {
    delay_ms: 100,
    under_db: 12.0,
    reverb: true,
    lowpass: true,
};

/// The canceller on a rendered scene, both streams handed over in 20 ms
/// chunks as the pumps would: (mic in, mic out, stats).
fn cancel(scene: &scene::Scene) -> (Vec<f32>, Vec<f32>, Arc<EchoStats>) {
    let far = read16k(&scene.far);
    let mic = read16k(&scene.mic);
    let stats = Arc::new(EchoStats::new());
    let (mut tap, mut canceller) = echo::link(Instant::now(), Arc::clone(&stats));
    let mut out = Vec::new();
    let chunk = 320;
    for (i, m) in mic.chunks(chunk).enumerate() {
        let start = i * chunk;
        if start < far.len() {
            tap.push(&far[start..(start + chunk).min(far.len())]);
        } else {
            tap.push(&vec![0.0; m.len()]);
        }
        canceller.process(m, &mut out);
    }
    canceller.finish(&mut out);
    assert_eq!(out.len(), mic.len(), "every mic sample comes out once");
    (mic, out, stats)
}

/// [`cancel`] with the loopback delivering `rate` reference samples per
/// microphone sample (its device's clock against the microphone's).
fn cancel_drifting(scene: &scene::Scene, rate: f64) -> (Vec<f32>, Vec<f32>, Arc<EchoStats>) {
    let far = read16k(&scene.far);
    let mic = read16k(&scene.mic);
    let stats = Arc::new(EchoStats::new());
    let (mut tap, mut canceller) = echo::link(Instant::now(), Arc::clone(&stats));
    let mut out = Vec::new();
    let mut fed = 0;
    for (i, m) in mic.chunks(320).enumerate() {
        let due = (((i * 320 + m.len()) as f64 * rate) as usize).min(far.len());
        tap.push(&far[fed..due]);
        fed = due;
        canceller.process(m, &mut out);
    }
    canceller.finish(&mut out);
    assert_eq!(out.len(), mic.len(), "every mic sample comes out once");
    (mic, out, stats)
}

/// The largest difference between the canceller's output and its input
/// 4 ms (one AEC3 block of 64 samples) earlier.
fn max_change(mic: &[f32], out: &[f32]) -> f32 {
    (0..mic.len() - 64)
        .map(|i| (out[i + 64] - mic[i]).abs())
        .fold(0.0, f32::max)
}

/// How close the canceller's output is to its input over samples `a..b`:
/// the input's energy over the difference's, dB (the output is the input
/// 4 ms, one AEC3 block of 64 samples, later).
fn unchanged_db(mic: &[f32], out: &[f32], a: usize, b: usize) -> f64 {
    let b = b.min(out.len() - 64);
    let error: Vec<f32> = (a..b).map(|i| out[i + 64] - mic[i]).collect();
    10.0 * (energy(&mic[a..b]) / energy(&error).max(1e-12)).log10()
}

/// Headphones: the far end plays but the mic hears only the local talker,
/// over the far end (double talk) and alone. The canceller has nothing to
/// take away: until AEC3 finds an echo the microphone passes untouched, so
/// echo on transcribes exactly what `--echo off` would (the linear filter
/// alone changed it a little, 20.3 dB SNR; AEC3's suppressor, which hark
/// does not use, muted much of it).
#[test]
fn canceller_leaves_the_local_talker_alone_without_echo() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render(dir.path(), None);
    let (mic, out, stats) = cancel(&scene);
    let s = |t: f64| (t * 16_000.0) as usize;
    let (a, b) = (s(scene::LOCAL_AT_S), s(scene::LOCAL_AT_S + scene::LOCAL_S));
    let snr = unchanged_db(&mic, &out, a, b);
    eprintln!("local talker through the canceller without echo: SNR {snr:.1} dB");
    assert_eq!(
        max_change(&mic, &out),
        0.0,
        "no echo, yet the microphone was changed: SNR {snr:.1} dB"
    );
    assert!(
        stats.erle_db().is_none_or(|e| e < 3.0),
        "echo reported where there is none: {:?}",
        stats.erle_db()
    );
}

/// Headphones again, but the local talker starts with the far end: the
/// canceller's first seconds, while AEC3 has found no echo, must leave the
/// local talker as it was too. (CI's `--source both` run lost words here
/// when the convergence guard also ran without an echo.)
#[test]
fn canceller_leaves_a_talker_who_starts_with_the_far_end_alone_without_echo() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render_at(dir.path(), None, 0.0);
    let (mic, out, _) = cancel(&scene);
    let s = |t: f64| (t * 16_000.0) as usize;
    for (from, to) in [(0.0, 3.0), (3.0, 6.0), (0.0, scene::LOCAL_S)] {
        let snr = unchanged_db(&mic, &out, s(from), s(to));
        eprintln!("local talker over the far end, {from}-{to} s, no echo: SNR {snr:.1} dB");
    }
    // -1.3 dB in 0-3 s when the convergence guard also ran without an echo;
    // 15.6-16.2 dB with the linear filter's output; now passed untouched.
    assert_eq!(
        max_change(&mic, &out),
        0.0,
        "no echo, yet the microphone was changed"
    );
}

/// The canceller on the real scene: the far end's echo goes, the local
/// talker stays.
#[test]
fn canceller_removes_the_far_end_and_keeps_the_local_talker() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render(dir.path(), Some(BLEED));
    let (mic, out, stats) = cancel(&scene);
    // Far end alone, after 3 s to converge.
    let s = |t: f64| (t * 16_000.0) as usize;
    let (a, b) = (s(3.0), s(scene::LOCAL_AT_S - 0.5));
    let erle = 10.0 * (energy(&mic[a..b]) / energy(&out[a..b]).max(1e-12)).log10();
    eprintln!(
        "ERLE far-end alone: {erle:.1} dB; session: {:?}",
        stats.erle_db()
    );
    // The linear stage alone (no suppressor, see src/echo/aec3.rs) on this
    // reverberant scene: measured 16.4 dB here, 12.4 dB by the session's
    // own estimate (which counts only frames it can tell hold echo alone).
    assert!(erle >= 12.0, "ERLE {erle:.1} dB");
    assert!(
        stats.erle_db().is_some_and(|e| e >= 8.0),
        "session ERLE {:?}",
        stats.erle_db()
    );
    // The local talker alone (after the far end): its energy passes.
    let (a, b) = (s(scene::FAR_S + 2.0), s(scene::LOCAL_AT_S + scene::LOCAL_S));
    let kept = 10.0 * (energy(&out[a..b]) / energy(&mic[a..b])).log10();
    eprintln!("local talker alone: {kept:.1} dB through the canceller");
    assert!(kept > -3.0, "local talker attenuated by {:.1} dB", -kept);
    assert!(
        stats.delay_ms.load(Ordering::Relaxed) >= 0,
        "no delay estimate"
    );
}

/// The two devices' clocks drift apart: here the speaker's runs 0.01% slow
/// (what two sound cards' crystals may differ by), so the echo slides 6 ms
/// later over the minute, and the loopback delivers 0.01% fewer samples
/// than the microphone, as the speaker's device would. The canceller
/// follows it to the end. (Read at the microphone's rate, ERLE fell from
/// 27 dB to 8 dB over the minute.)
#[test]
fn canceller_follows_a_drifting_echo_for_a_minute() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let far = dir.path().join("far.wav");
    let mic = dir.path().join("mic.wav");
    let monologue = scene::real("monologue-16k.wav");
    scene::sox(&[
        monologue.to_str().unwrap(),
        far.to_str().unwrap(),
        "trim",
        "0",
        "60",
        "gain",
        "-n",
        "-3",
    ]);
    scene::sox(&[
        far.to_str().unwrap(),
        mic.to_str().unwrap(),
        "speed",
        "0.9999",
        "rate",
        "16000",
        "delay",
        "0.1",
        "lowpass",
        "3500",
        "reverb",
        "40",
        "50",
        "60",
        "channels",
        "1",
        "gain",
        "-n",
        "-13",
        "trim",
        "0",
        "60",
    ]);
    let scene = scene::Scene {
        far: far.clone(),
        local: far,
        mic,
    };
    let (mic, out, stats) = cancel_drifting(&scene, 0.9999);
    let s = |t: f64| (t * 16_000.0) as usize;
    let erle = |a: f64, b: f64| {
        10.0 * (energy(&mic[s(a)..s(b)]) / energy(&out[s(a)..s(b)]).max(1e-12)).log10()
    };
    let (early, late) = (erle(5.0, 15.0), erle(48.0, 58.0));
    eprintln!(
        "drifting echo: ERLE 5-15 s {early:.1} dB, 48-58 s {late:.1} dB, delay estimate {} ms; {}",
        stats.delay_ms.load(Ordering::Relaxed),
        stats.summary()
    );
    assert!(
        late >= 12.0 && late >= early - 3.0,
        "ERLE {early:.1} -> {late:.1} dB"
    );
}

/// A loopback that stops never holds the microphone back for long: its
/// frames go through without reference after the bounded wait, counted.
#[test]
fn a_stopped_reference_delays_the_mic_by_at_most_the_bounded_wait() {
    let _serial = crate::support::serial();
    let stats = Arc::new(EchoStats::new());
    let (mut tap, mut canceller) = echo::link(Instant::now(), Arc::clone(&stats));
    let mut out = Vec::new();
    let chunk = vec![0.01f32; 320];
    // Half a second in step, then the loopback stops and the mic goes on.
    for _ in 0..25 {
        tap.push(&chunk);
        canceller.process(&chunk, &mut out);
    }
    assert_eq!(stats.frames_without_reference.load(Ordering::Relaxed), 0);
    for _ in 0..50 {
        canceller.process(&chunk, &mut out);
    }
    let fed = 75 * chunk.len();
    let wait = (echo::MAX_WAIT.as_secs_f64() * 16_000.0) as usize;
    assert!(
        fed - out.len() <= wait + echo::FRAME,
        "held {}",
        canceller.held()
    );
    assert!(stats.frames_without_reference.load(Ordering::Relaxed) >= 30);
}

/// The texts the filter let through as the mic, in order.
fn mic_texts(out: &[Event]) -> Vec<&str> {
    out.iter()
        .filter(|e| e.source == Source::Mic)
        .map(|e| e.text.as_str())
        .collect()
}

fn final_event(source: Source, start: f64, end: f64, text: &str) -> Event {
    Event {
        source,
        kind: EventKind::Final,
        start,
        end,
        text: text.to_owned(),
        emitted: None,
    }
}

/// A long far-end utterance is still open (only its partial is out) when
/// the loopback has reached past a mic final's end: the mic final is
/// compared with that partial too. (CI: "This is my" at 7.4-8.2 s, inside
/// the far end's "My name is Bruce ..." of 6.8-11.5 s, went through as the
/// mic because only loopback finals were compared.)
#[test]
fn text_filter_compares_with_the_far_end_utterance_still_open() {
    let _serial = crate::support::serial();
    let stats = Arc::new(EchoStats::new());
    let mut filter = EchoFilter::new(FilterConfig::default(), Arc::clone(&stats));
    let now = Instant::now();
    let mut out = Vec::new();
    filter.push(
        final_event(Source::Mic, 7.38, 8.16, "This is my"),
        now,
        &mut out,
    );
    let partial = Event {
        kind: EventKind::Partial,
        ..final_event(
            Source::Loopback,
            6.79,
            9.4,
            "My name is Bruce, Bravo Romeo Uniform",
        )
    };
    filter.push(partial, now, &mut out);
    assert!(
        out.iter().all(|e| e.source != Source::Mic),
        "echo released as the mic: {out:?}"
    );
    assert_eq!(stats.suppressed_utterances.load(Ordering::Relaxed), 1);
    // The local talker over the same stretch keeps their words.
    filter.push(
        final_event(Source::Mic, 8.5, 10.0, "Front center, front left"),
        now,
        &mut out,
    );
    filter.finish(&mut out);
    let mic = mic_texts(&out);
    assert_eq!(mic, ["Front center, front left"]);
}

/// The text filter drops a mic utterance repeating the loopback's words of
/// the same moment, and keeps double talk and later repeats.
#[test]
fn text_filter_drops_echo_and_keeps_double_talk() {
    let _serial = crate::support::serial();
    let stats = Arc::new(EchoStats::new());
    let mut filter = EchoFilter::new(FilterConfig::default(), Arc::clone(&stats));
    let now = Instant::now();
    let mut out = Vec::new();
    let far = "the birch canoe slid on the smooth planks";
    // The mic's echo arrives first (its worker was quicker), the loopback after.
    filter.push(
        final_event(Source::Mic, 1.1, 3.6, "The birch canoe slid on the planks."),
        now,
        &mut out,
    );
    filter.push(
        final_event(
            Source::Mic,
            4.0,
            7.0,
            "Glue the sheet to the dark blue background, canoe",
        ),
        now,
        &mut out,
    );
    filter.push(final_event(Source::Loopback, 1.0, 3.5, far), now, &mut out);
    filter.push(
        final_event(
            Source::Loopback,
            3.9,
            7.2,
            "it is easy to tell the depth of a well",
        ),
        now,
        &mut out,
    );
    // Much later the local talker quotes the far end: not the same moment.
    filter.push(final_event(Source::Mic, 60.0, 62.0, far), now, &mut out);
    filter.push(
        final_event(Source::Loopback, 70.0, 71.0, "yes"),
        now,
        &mut out,
    );
    filter.finish(&mut out);
    let mic = mic_texts(&out);
    assert_eq!(
        mic,
        ["Glue the sheet to the dark blue background, canoe", far],
        "{out:?}"
    );
    assert_eq!(
        out.iter().filter(|e| e.source == Source::Loopback).count(),
        3
    );
    assert_eq!(stats.suppressed_utterances.load(Ordering::Relaxed), 1);
    assert_eq!(stats.suppressed_words.load(Ordering::Relaxed), 7);
}

/// A mic final waits for the loopback at most the hold time.
#[test]
fn text_filter_releases_a_held_mic_final_after_the_hold() {
    let _serial = crate::support::serial();
    let stats = Arc::new(EchoStats::new());
    let config = FilterConfig::default();
    let hold = config.hold;
    let mut filter = EchoFilter::new(config, stats);
    let now = Instant::now();
    let mut out = Vec::new();
    filter.push(
        final_event(Source::Mic, 1.0, 2.0, "hello there"),
        now,
        &mut out,
    );
    assert!(out.is_empty());
    filter.tick(now + hold + Duration::from_millis(1), &mut out);
    assert_eq!(out.len(), 1);
}

/// `hark live --source both` with the far end bleeding into the mic
/// (100 ms, 12 dB under the local talker, reverb, low-pass): with --echo off
/// the far end's words come out as the mic ("you"); with echo on they do
/// not, the local talker's words stay, and the summary says what was done.
#[test]
fn live_bleed_is_not_transcribed_as_the_mic() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render(dir.path(), Some(BLEED));
    let reference = scene::local_reference(&scene);
    let server = SoundServer::start().expect("private sound server");
    let off = scene::measure(&scene::run_live(&server, &scene, false), &reference);
    let on = scene::measure(&scene::run_live(&server, &scene, true), &reference);
    eprintln!("echo off: {off:?}\necho on: {on:?}");
    // Every message carries both runs' numbers: a CI log that cuts the
    // output above still shows which bound failed and by how much.
    let both = format!("echo on: {}; echo off: {}", on.brief(), off.brief());
    assert!(
        off.far_only_mic_words * 2 >= off.far_only_far_words && off.far_only_far_words >= 10,
        "the scene has no audible echo: {both}"
    );
    assert!(
        on.far_only_mic_words * 20 <= on.far_only_far_words,
        "far-end words in the mic: {both}"
    );
    // The local talker's words: better than with the echo in (the done-when
    // bound against the no-echo case is measured by benches/echo.rs).
    assert!(on.local_wer < off.local_wer, "local words lost: {both}");
    assert!(
        on.summary
            .as_deref()
            .is_some_and(|s| s.contains("dB (ERLE)")),
        "no ERLE in the summary: {both}"
    );
}

/// Headphones: no echo at all. Echo handling must lose nothing: the mic's
/// transcript is as good as with --echo off.
#[test]
fn live_without_echo_loses_nothing() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let scene = scene::render(dir.path(), None);
    let reference = scene::local_reference(&scene);
    let server = SoundServer::start().expect("private sound server");
    let off_run = scene::run_live(&server, &scene, false);
    assert!(
        !off_run.stderr.contains("hark: echo:"),
        "--echo off still cancels"
    );
    let off = scene::measure(&off_run, &reference);
    let on = scene::measure(&scene::run_live(&server, &scene, true), &reference);
    eprintln!("echo off: {off:?}\necho on: {on:?}");
    let both = format!("echo on: {}; echo off: {}", on.brief(), off.brief());
    assert!(off.local_wer <= 0.25, "echo off: {both}");
    // Live decoding moves a few words between runs of the same setting
    // (echo off alone measured 0.098 and 0.137; one CI run had echo on
    // 3 words, 0.059, above echo off from misreadings such as "member 1"
    // for "number one", with no echo found and nothing cancelled), so the
    // bound is 5 of the 51 words. The bug this
    // guards against (the canceller muting a talker with no echo) gave 0.40.
    // Issue 13's within-1-point target is the echo bench's, over more words.
    assert!(
        on.local_wer <= off.local_wer + 0.10,
        "echo on lost words: {both}"
    );
}
