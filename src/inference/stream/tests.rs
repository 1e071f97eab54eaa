//! The policy's decisions that need no decoder.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;

/// A 220 Hz tone at -13 dBFS (voiced level), `seconds` long.
fn tone(seconds: f64) -> Vec<f32> {
    (0..(seconds * SAMPLE_RATE_HZ as f64) as usize)
        .map(|i| 0.3 * (i as f32 * std::f32::consts::TAU * 220.0 / SAMPLE_RATE_HZ as f32).sin())
        .collect()
}

#[test]
fn no_partial_starts_while_the_voice_may_be_pausing() {
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    stream.push(VadEvent::SpeechStart { start: 0 });
    let voice = tone(1.5);
    let mut at = voice.len() as u64;
    stream.push(VadEvent::Audio {
        start: 0,
        samples: voice,
    });
    assert_eq!(stream.next_action(), Action::Decode, "1.5 s of voice");

    // 64 ms of quiet: the VAD may report a pause 48 ms later.
    stream.push(VadEvent::Audio {
        start: at,
        samples: vec![0.0; 1024],
    });
    at += 1024;
    assert_eq!(
        stream.next_action(),
        Action::Wait,
        "the voice may be pausing"
    );

    // 256 ms of quiet and no pause (the detector still hears a voice): the
    // partial runs.
    stream.push(VadEvent::Audio {
        start: at,
        samples: vec![0.0; 3072],
    });
    assert_eq!(stream.next_action(), Action::Decode, "no pause came");
}

#[test]
fn a_pause_is_read_even_in_the_quiet() {
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    stream.push(VadEvent::SpeechStart { start: 0 });
    let voice = tone(1.0);
    let at = voice.len() as u64;
    stream.push(VadEvent::Audio {
        start: 0,
        samples: voice,
    });
    stream.push(VadEvent::Audio {
        start: at,
        samples: vec![0.0; 1792],
    });
    stream.push(VadEvent::Pause {
        voiced_end: at,
        cut: at + 1792,
        tail: false,
    });
    assert_eq!(
        stream.next_action(),
        Action::Decode,
        "the pass that commits"
    );
}

/// Whisper ending its text at the lead's end: any pass over 3 s or more of
/// audio (the first piece alone, or the lead and the second piece) hears
/// the first piece's words only.
struct StopsAtTheLead;

impl Decode for StopsAtTheLead {
    fn decode(
        &mut self,
        audio: &[f32],
        _request: &crate::inference::engine::DecodeRequest,
    ) -> Result<crate::inference::engine::Hypothesis, InferenceError> {
        let text = if audio.len() >= 3 * SAMPLE_RATE_HZ as usize {
            "The order number is 317."
        } else {
            "and the total comes to $99."
        };
        let words = text
            .split_whitespace()
            .enumerate()
            .map(|(i, t)| crate::inference::engine::Word {
                text: t.to_string(),
                start: 0.3 * i as f64,
                end: 0.3 * i as f64 + 0.2,
                probability: 0.9,
            })
            .collect();
        Ok(crate::inference::engine::Hypothesis {
            segments: Vec::new(),
            words,
            no_speech: 0.01,
            elapsed: Duration::from_millis(100),
        })
    }
}

#[test]
fn a_pass_that_stops_at_the_lead_does_not_lose_the_piece() {
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    let mut decoder = StopsAtTheLead;
    let audio = |stream: &mut Stream, start: u64, samples: Vec<f32>| {
        let end = start + samples.len() as u64;
        stream.push(VadEvent::Audio { start, samples });
        end
    };
    stream.push(VadEvent::SpeechStart { start: 0 });
    // The first piece: 3.2 s of voice and a pause.
    let voiced_end = audio(&mut stream, 0, tone(3.2));
    let cut = audio(&mut stream, voiced_end, vec![0.0; 2560]);
    stream.push(VadEvent::Pause {
        voiced_end,
        cut,
        tail: false,
    });
    let first = stream.step(&mut decoder).unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].text, "The order number is 317.");
    // The second: 2 s of voice, then the utterance's end; its pass has the
    // first piece as its lead.
    let voiced_end = audio(&mut stream, cut, tone(2.0));
    let end = audio(&mut stream, voiced_end, vec![0.0; 4800]);
    stream.push(VadEvent::SpeechEnd { end, voiced_end });
    let second = stream.finish(&mut decoder).unwrap();
    let finals: Vec<&str> = second
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.text.as_str())
        .collect();
    assert_eq!(finals, ["and the total comes to $99."]);
    assert_eq!(stream.stats().lead_mismatches.load(Ordering::Relaxed), 1);
}
