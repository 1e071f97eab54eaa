//! The policy's decisions that need no decoder.

use std::time::Instant;

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
