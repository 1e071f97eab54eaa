//! The policy's decisions that need no decoder.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::*;
use crate::inference::engine::{DecodeRequest, Hypothesis, Word};

/// A sure pass that heard `text`, one word per 0.3 s.
fn hypothesis(text: &str) -> Hypothesis {
    let words = text
        .split_whitespace()
        .enumerate()
        .map(|(i, t)| Word {
            text: t.to_string(),
            start: 0.3 * i as f64,
            end: 0.3 * i as f64 + 0.2,
            probability: 0.9,
        })
        .collect();
    Hypothesis {
        segments: Vec::new(),
        words,
        no_speech: 0.01,
        elapsed: Duration::from_millis(100),
    }
}

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
        _request: &DecodeRequest,
    ) -> Result<Hypothesis, InferenceError> {
        let text = if audio.len() >= 3 * SAMPLE_RATE_HZ as usize {
            "The order number is 317."
        } else {
            "and the total comes to $99."
        };
        Ok(hypothesis(text))
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

/// A decoder whose text depends only on how much audio it hears: the first
/// entry whose length (samples) is at least the audio's.
struct ByLength(Vec<(usize, &'static str)>);

impl Decode for ByLength {
    fn decode(
        &mut self,
        audio: &[f32],
        _request: &DecodeRequest,
    ) -> Result<Hypothesis, InferenceError> {
        let text = self
            .0
            .iter()
            .find(|(len, _)| audio.len() <= *len)
            .map_or("", |(_, text)| text);
        Ok(hypothesis(text))
    }
}

/// A 3.36 s piece ("one two three four five", committed: the lead), then
/// 0.5 s of voice and a pause (0.66 s: shorter than a piece after a lead
/// may be), then `more` seconds of voice. Returns the stream and the events
/// of every step until nothing is left to do.
fn short_piece_after_a_lead(decoder: &mut ByLength, more: f64) -> (Stream, Vec<Event>) {
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    let audio = |stream: &mut Stream, start: u64, samples: Vec<f32>| {
        let end = start + samples.len() as u64;
        stream.push(VadEvent::Audio { start, samples });
        end
    };
    let mut events = Vec::new();
    let mut run = |stream: &mut Stream, events: &mut Vec<Event>| {
        while stream.next_action() != Action::Wait {
            events.extend(stream.step(decoder).unwrap());
        }
    };
    stream.push(VadEvent::SpeechStart { start: 0 });
    let voiced_end = audio(&mut stream, 0, tone(3.2));
    let cut = audio(&mut stream, voiced_end, vec![0.0; 2560]);
    stream.push(VadEvent::Pause {
        voiced_end,
        cut,
        tail: false,
    });
    run(&mut stream, &mut events);
    let voiced_end = audio(&mut stream, cut, tone(0.5));
    let cut = audio(&mut stream, voiced_end, vec![0.0; 2560]);
    stream.push(VadEvent::Pause {
        voiced_end,
        cut,
        tail: false,
    });
    run(&mut stream, &mut events);
    audio(&mut stream, cut, tone(more));
    run(&mut stream, &mut events);
    (stream, events)
}

fn finals(events: &[Event]) -> Vec<&str> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.text.as_str())
        .collect()
}

#[test]
fn a_short_piece_after_a_lead_is_committed_once_the_pass_reading_on_agrees() {
    let mut decoder = ByLength(vec![
        (54_000, "one two three four five"),
        (65_000, "one two three four five right."),
        (usize::MAX, "one two three four five right. The"),
    ]);
    let (stream, events) = short_piece_after_a_lead(&mut decoder, 0.2);
    assert_eq!(
        finals(&events),
        ["one two three four five"],
        "still waiting"
    );
    let (stream2, events2) = short_piece_after_a_lead(&mut decoder, 0.4);
    assert_eq!(finals(&events2), ["one two three four five", "right."]);
    let last = events2.last().unwrap();
    assert_eq!(
        (last.kind, last.text.as_str()),
        (EventKind::Partial, "The"),
        "the words read on are the next piece's partial"
    );
    assert_eq!(stream.stats().confirmed_cuts.load(Ordering::Relaxed), 0);
    assert_eq!(stream2.stats().confirmed_cuts.load(Ordering::Relaxed), 1);
}

#[test]
fn a_short_piece_the_pass_reading_on_hears_otherwise_is_not_cut() {
    // "right" was half of "righteous": the pause fell inside the word.
    let mut decoder = ByLength(vec![
        (54_000, "one two three four five"),
        (65_000, "one two three four five right."),
        (usize::MAX, "one two three four five righteous men"),
    ]);
    let (mut stream, events) = short_piece_after_a_lead(&mut decoder, 0.4);
    assert_eq!(finals(&events), ["one two three four five"]);
    assert_eq!(stream.stats().refused_cuts.load(Ordering::Relaxed), 1);
    // Not tried again: the piece goes on to the utterance's end.
    let end = stream.window_end();
    stream.push(VadEvent::SpeechEnd {
        end,
        voiced_end: end,
    });
    let rest = stream.finish(&mut decoder).unwrap();
    assert_eq!(finals(&rest), ["righteous men"]);
    assert_eq!(stream.stats().refused_cuts.load(Ordering::Relaxed), 1);
}
