//! vad: utterance segmentation on real synthesized speech (espeak-ng) and
//! real generated noise (sox), through the real resampler and earshot.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hark::dsp;
use hark::vad::{Segmenter, VadConfig, VadEvent, FRAME_SAMPLES};

const RATE_HZ: usize = 16_000;

// ---------------------------------------------------------------- helpers

/// `text` spoken by espeak-ng, as 16 kHz mono through `read_16k_mono`.
fn speak(dir: &Path, name: &str, text: &str) -> Vec<f32> {
    let path = dir.join(format!("{name}.wav"));
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-w"])
        .arg(&path)
        .arg(text)
        .status()
        .expect("espeak-ng must be installed for the vad tests");
    assert!(status.success(), "espeak-ng failed on {text:?}");
    dsp::wav::read_16k_mono(&path).unwrap().samples
}

/// `seconds` of sox's `kind` noise (whitenoise, pinknoise, brownnoise),
/// scaled to an RMS level of `dbfs`.
fn noise(dir: &Path, kind: &str, seconds: u32, dbfs: f32) -> Vec<f32> {
    let path = dir.join(format!("{kind}.wav"));
    let status = Command::new("sox")
        .args([
            "-R", "-n", "-r", "16000", "-c", "1", "-b", "32", "-e", "float",
        ])
        .arg(&path)
        .args(["synth", &seconds.to_string(), kind])
        .status()
        .expect("sox must be installed for the vad tests");
    assert!(status.success(), "sox failed making {kind}");
    let mut samples = dsp::wav::read(&path).unwrap().samples;
    let gain = 10f32.powf(dbfs / 20.0) / rms(&samples);
    samples.iter_mut().for_each(|s| *s *= gain);
    samples
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

fn silence(seconds: f32) -> Vec<f32> {
    vec![0.0; (seconds * RATE_HZ as f32) as usize]
}

/// First and last sample of `x` above -40 dBFS: where the speech really is.
fn extent(x: &[f32]) -> (usize, usize) {
    let first = x.iter().position(|s| s.abs() > 0.01).unwrap();
    let last = x.iter().rposition(|s| s.abs() > 0.01).unwrap();
    (first, last)
}

/// Feeds `input` in `chunk`-sample pushes, then finishes.
fn run(config: VadConfig, input: &[f32], chunk: usize) -> Vec<VadEvent> {
    let mut segmenter = Segmenter::new(config);
    let mut events = Vec::new();
    for part in input.chunks(chunk) {
        segmenter.push(part, &mut events);
    }
    assert_eq!(segmenter.position(), input.len() as u64);
    segmenter.finish(&mut events);
    assert!(!segmenter.is_speaking());
    events
}

#[derive(Debug, PartialEq)]
struct Utterance {
    start: u64,
    end: u64,
    audio: Vec<f32>,
}

/// Groups events into utterances, checking the event grammar: Start, Audio
/// chunks that tile start..end exactly, End; utterances in order.
fn utterances(events: &[VadEvent]) -> Vec<Utterance> {
    let mut done: Vec<Utterance> = Vec::new();
    let mut open: Option<Utterance> = None;
    for event in events {
        match event {
            VadEvent::SpeechStart { start } => {
                assert!(open.is_none(), "SpeechStart inside an utterance");
                if let Some(last) = done.last() {
                    assert!(*start >= last.end, "utterances overlap");
                }
                open = Some(Utterance {
                    start: *start,
                    end: 0,
                    audio: Vec::new(),
                });
            }
            VadEvent::Audio { start, samples } => {
                let u = open.as_mut().expect("Audio outside an utterance");
                assert_eq!(
                    *start,
                    u.start + u.audio.len() as u64,
                    "Audio not contiguous"
                );
                assert!(!samples.is_empty());
                u.audio.extend_from_slice(samples);
            }
            VadEvent::Pause {
                voiced_end, cut, ..
            } => {
                let u = open.as_ref().expect("Pause outside an utterance");
                assert!(voiced_end < cut, "a pause has a length");
                assert!(*voiced_end >= u.start, "pause before its utterance");
                assert_eq!(
                    *cut,
                    u.start + u.audio.len() as u64,
                    "a Pause comes right after the audio up to its cut"
                );
            }
            VadEvent::SpeechEnd { end, .. } => {
                let mut u = open.take().expect("SpeechEnd without SpeechStart");
                assert_eq!(
                    u.start + u.audio.len() as u64,
                    *end,
                    "Audio does not reach end"
                );
                u.end = *end;
                done.push(u);
            }
        }
    }
    assert!(open.is_none(), "utterance left open after finish()");
    done
}

/// This thread's CPU time.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

// ---------------------------------------------------------------- tests

#[test]
fn one_phrase_is_one_utterance_with_its_first_word_intact() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let phrase = speak(
        dir.path(),
        "phrase",
        "Please call Stella and ask her to bring these things.",
    );
    let lead = silence(1.0);
    let input = [lead.clone(), phrase.clone(), silence(1.0)].concat();
    let (first, last) = extent(&phrase);
    let (onset, offset) = ((lead.len() + first) as u64, (lead.len() + last) as u64);

    let config = VadConfig::default();
    let found = utterances(&run(config.clone(), &input, 160));
    println!(
        "speech {onset}..{offset}; utterances {:?}",
        found.iter().map(|u| (u.start, u.end)).collect::<Vec<_>>()
    );
    assert_eq!(found.len(), 1, "one phrase gives one utterance");
    let u = &found[0];
    assert!(
        u.start <= onset,
        "first word cut: starts {} after onset {onset}",
        u.start
    );
    let pre_roll = (config.pre_roll.as_secs_f64() * RATE_HZ as f64) as u64;
    let slack = (0.2 * RATE_HZ as f64) as u64;
    assert!(
        u.start + pre_roll + slack >= onset,
        "starts too early: {} vs onset {onset}",
        u.start
    );
    assert!(
        u.end > offset,
        "last word cut: ends {} before {offset}",
        u.end
    );
    let hangover = (config.hangover.as_secs_f64() * RATE_HZ as f64) as u64;
    assert!(
        u.end <= offset + hangover + slack,
        "ends too late: {} vs {offset}",
        u.end
    );
    // The utterance audio is the input audio, sample for sample.
    assert_eq!(u.audio[..], input[u.start as usize..u.end as usize]);
}

#[test]
fn phrases_apart_by_one_and_a_half_seconds_are_two_utterances() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let one = speak(
        dir.path(),
        "one",
        "The quick brown fox jumps over the lazy dog.",
    );
    let two = speak(
        dir.path(),
        "two",
        "Seven silver swans swam silently seaward.",
    );
    let gap = silence(1.5);
    let input = [
        silence(0.7),
        one.clone(),
        gap.clone(),
        two.clone(),
        silence(1.0),
    ]
    .concat();
    let one_at = (0.7 * RATE_HZ as f32) as usize;
    let two_at = one_at + one.len() + gap.len();
    let found = utterances(&run(VadConfig::default(), &input, 480));
    println!(
        "utterances {:?}",
        found.iter().map(|u| (u.start, u.end)).collect::<Vec<_>>()
    );
    assert_eq!(found.len(), 2);
    for (u, (at, clip)) in found.iter().zip([(one_at, &one), (two_at, &two)]) {
        let (first, last) = extent(clip);
        assert!(u.start <= (at + first) as u64, "first word cut");
        assert!(u.end > (at + last) as u64, "last word cut");
        assert_eq!(u.audio[..], input[u.start as usize..u.end as usize]);
    }
}

#[test]
fn chunk_size_does_not_change_the_segments() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let a = speak(dir.path(), "a", "Hello there. How are you today?");
    let b = speak(dir.path(), "b", "I am fine, thank you.");
    let input = [silence(0.5), a, silence(1.2), b, silence(0.3)].concat();
    let reference = utterances(&run(VadConfig::default(), &input, 160)); // 10 ms
    assert!(!reference.is_empty());
    for chunk in [1600, 100, 256, 4093, input.len()] {
        assert_eq!(
            utterances(&run(VadConfig::default(), &input, chunk)),
            reference,
            "{chunk}-sample chunks"
        );
    }
}

#[test]
fn finish_closes_an_open_utterance() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let phrase = speak(dir.path(), "open", "This sentence is cut off in the mid");
    // Stop inside the speech: drop espeak's trailing silence and then some.
    let (_, last) = extent(&phrase);
    let input = [silence(0.5), phrase[..last - 1000].to_vec()].concat();
    let mut segmenter = Segmenter::new(VadConfig::default());
    let mut events = Vec::new();
    segmenter.push(&input, &mut events);
    assert!(
        segmenter.is_speaking(),
        "speech still going at the end of input"
    );
    assert!(!events
        .iter()
        .any(|e| matches!(e, VadEvent::SpeechEnd { .. })));
    segmenter.finish(&mut events);
    assert!(!segmenter.is_speaking());
    assert_eq!(
        events.last(),
        Some(&VadEvent::SpeechEnd {
            end: input.len() as u64,
            voiced_end: input.len() as u64
        })
    );
    let found = utterances(&events);
    assert_eq!(found.len(), 1);
    // Includes the unfinished last frame.
    assert_eq!(found[0].audio[..], input[found[0].start as usize..]);
    assert_ne!(
        input.len() % FRAME_SAMPLES,
        0,
        "test wants a partial frame at the end"
    );
}

#[test]
fn audio_is_emitted_while_speaking_not_only_at_the_end() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let phrase = speak(
        dir.path(),
        "long",
        "One two three four five six seven eight nine ten.",
    );
    let input = [silence(0.5), phrase, silence(1.0)].concat();
    let mut segmenter = Segmenter::new(VadConfig::default());
    let mut chunks_before_end = 0;
    let mut events = Vec::new();
    for part in input.chunks(1600) {
        events.clear();
        segmenter.push(part, &mut events);
        if segmenter.is_speaking() {
            chunks_before_end += events
                .iter()
                .filter(|e| matches!(e, VadEvent::Audio { .. }))
                .count();
        }
    }
    assert!(
        chunks_before_end > 10,
        "only {chunks_before_end} partial Audio events"
    );
}

#[test]
fn max_utterance_cuts_long_speech_without_losing_samples() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let phrase = speak(
        dir.path(),
        "max",
        "Now is the time for all good men to come to the aid of the party, and then some more.",
    );
    let input = [silence(0.5), phrase, silence(1.0)].concat();
    let config = VadConfig {
        max_utterance: Some(Duration::from_secs(1)),
        ..VadConfig::default()
    };
    let found = utterances(&run(config, &input, 160));
    assert!(found.len() >= 3, "{} utterances", found.len());
    for u in &found {
        assert!(u.end - u.start <= RATE_HZ as u64 + FRAME_SAMPLES as u64);
        assert_eq!(u.audio[..], input[u.start as usize..u.end as usize]);
    }
    // Cut-and-continue keeps the audio contiguous.
    assert!(found.windows(2).any(|w| w[0].end == w[1].start));
}

#[test]
fn reset_starts_a_new_session_at_zero() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let phrase = speak(dir.path(), "reset", "Testing, one, two.");
    let input = [silence(0.4), phrase].concat();
    let mut segmenter = Segmenter::new(VadConfig::default());
    let mut first = Vec::new();
    segmenter.push(&input, &mut first);
    segmenter.finish(&mut first);
    segmenter.push(&input[..5000], &mut Vec::new());
    segmenter.reset();
    assert_eq!(segmenter.position(), 0);
    assert!(!segmenter.is_speaking());
    let mut second = Vec::new();
    segmenter.push(&input, &mut second);
    segmenter.finish(&mut second);
    assert_eq!(first, second);
}

mod noise;

/// On real speech the detector may still score a soft word ending or a
/// breath as voice after the level has dropped and a pause was reported.
/// The last pause of an utterance must come after all of it: the streaming
/// policy commits the utterance's last piece from the pass at that pause
/// (reading less would clip the tail, waiting for the hangover and a pass
/// of its own costs latency).
#[test]
fn the_last_pause_of_an_utterance_follows_its_last_voiced_frame() {
    let path = crate::support::root().join("assets/real/phrases-16k.wav");
    let audio = dsp::wav::read_16k_mono(&path)
        .expect("run scripts/real-speech.sh first")
        .samples;
    let config = hark::pipeline::PipelineConfig::default().vad;
    let events = run(config.clone(), &audio, 480);
    let mut last_pause = None;
    let (mut closed, mut tails) = (0, 0);
    for e in &events {
        match *e {
            VadEvent::SpeechStart { .. } => last_pause = None,
            VadEvent::Pause {
                voiced_end, tail, ..
            } => {
                last_pause = Some(voiced_end);
                tails += usize::from(tail);
            }
            VadEvent::SpeechEnd { end, voiced_end } if end > voiced_end => {
                closed += 1;
                assert_eq!(
                    last_pause,
                    Some(voiced_end),
                    "utterance ending at {:.3} s: its last pause is not after its voice",
                    end as f64 / RATE_HZ as f64
                );
            }
            _ => {}
        }
    }
    eprintln!("{closed} utterances closed by the hangover, {tails} tail pauses");
    assert!(closed >= 15, "{closed} utterances");
    // The file has such tails (this is what the test is about).
    assert!(tails >= 3, "{tails} tail pauses");
}
