//! Paced properties: the same scripted decoder driven like a real worker,
//! with passes that take a set time while audio keeps arriving (idle, busy,
//! slower than the audio), so the policy's waiting, its lag signal and its
//! cut points are checked against wall-clock pacing.

use std::time::{Duration, Instant};

use super::{check, Rng, Script, ScriptedDecoder, RATE};
use crate::event::{Event, EventKind, Source};
use crate::inference::decode::Decode;
use crate::inference::engine::{DecodeRequest, Hypothesis, Word};
use crate::inference::load::{self, Partials};
use crate::inference::stream::{Action, Stream, StreamConfig};
use crate::inference::InferenceError;
use crate::vad::VadEvent;

/// Word extents (samples) of `count` words with the gaps of ordinary speech
/// (inside a phrase, short pauses, long pauses; no unbroken stretches, so
/// every piece ends at a pause or the utterance's end).
fn phrased_words(rng: &mut Rng, count: usize) -> Script {
    let mut words = Vec::new();
    let mut t = rng.range(0.2, 2.0);
    for _ in 0..count {
        let len = rng.range(0.15, 0.5);
        words.push(((t * RATE) as u64, ((t + len) * RATE) as u64));
        t += len;
        t += match rng.unit() {
            u if u < 0.55 => rng.range(0.02, 0.08),
            u if u < 0.8 => rng.range(0.17, 0.29),
            _ => rng.range(0.4, 2.0),
        };
    }
    Script {
        words,
        total: ((t + 0.5) * RATE) as u64,
    }
}

/// An idle worker: every pass runs the moment it is due, and takes
/// `pass_ms`. Returns the events and the largest lag the stream reported.
fn play_idle(script: &Script, seed: u64, pass_ms: u64, soft_ending: usize) -> (Vec<Event>, f64) {
    struct Timed(ScriptedDecoder, Duration);
    impl Decode for Timed {
        fn decode(
            &mut self,
            audio: &[f32],
            request: &DecodeRequest,
        ) -> Result<Hypothesis, InferenceError> {
            let mut h = self.0.decode(audio, request)?;
            h.elapsed = self.1;
            Ok(h)
        }
    }
    let audio = script.audio();
    let mut decoder = Timed(
        ScriptedDecoder::new(seed, soft_ending),
        Duration::from_millis(pass_ms),
    );
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    let mut events = Vec::new();
    let mut max_lag: f64 = 0.0;
    for event in script.vad_events(&audio) {
        stream.push(event);
        max_lag = max_lag.max(stream.lag_s());
        while stream.next_action() != Action::Wait {
            events.extend(stream.step(&mut decoder).unwrap());
            max_lag = max_lag.max(stream.lag_s());
        }
    }
    events.extend(stream.finish(&mut decoder).unwrap());
    (events, max_lag)
}

#[test]
fn an_idle_worker_waiting_on_purpose_is_not_behind() {
    // The policy waits for a second of audio before a piece's first pass,
    // and for twice the last pass's time between passes: none of that is
    // falling behind, so the lag stays under the bound for sparser
    // partials with passes of 50 ms (an idle machine) up to 300 ms.
    let sparse_at = load::LoadPolicy::default().sparse_at_s;
    for (seed, pass_ms) in [(1, 50), (2, 150), (3, 300)] {
        let script = phrased_words(&mut Rng(seed), 120);
        let (events, max_lag) = play_idle(&script, seed, pass_ms, 0);
        check(&script, &events, script.words.len(), seed);
        assert!(
            max_lag < sparse_at,
            "seed {seed}, {pass_ms} ms passes: lag {max_lag:.2} s reaches {sparse_at} s"
        );
    }
}

#[test]
fn committed_text_comes_only_from_passes_that_end_where_the_vad_cut() {
    // Partial passes run as often as the policy allows, so many end in the
    // quiet while the VAD waits to close a pause or the utterance, some as
    // little as 64 ms past the voice. A last word needs 150 ms of quiet to
    // be heard right here (the VAD's pause is 160 ms): committing such a
    // partial pass would commit a misheard word ("w12n", which `check`
    // rejects as never said).
    for seed in 2000..2040u64 {
        let script = phrased_words(&mut Rng(seed), 80);
        let (events, _) = play_idle(&script, seed, 50, (0.15 * RATE) as usize);
        check(&script, &events, script.words.len(), seed);
    }
}

/// The text of each final event, in order: where pieces ended.
fn pieces(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.text.clone())
        .collect()
}

#[test]
fn a_slow_worker_commits_the_same_pieces_as_an_idle_one() {
    // Where a piece ends decides what Whisper hears and so which words it
    // commits: a worker that let events pile up during a pass must cut
    // where an idle one does (it once took the latest waiting pause, or the
    // whole utterance once its end had arrived: other words on a slower
    // machine, which failed a real-speech test on CI).
    for seed in 3000..3060u64 {
        let script = Script::generate(&mut Rng(seed));
        let (idle, _) = play_idle(&script, seed, 50, 0);
        let (slow, _) = play_busy(&script, seed, 4);
        check(&script, &slow, script.words.len(), seed);
        assert_eq!(pieces(&slow), pieces(&idle), "seed {seed}");
    }
}

/// A worker whose passes take `slowdown` times the scripted decoder's
/// 50-800 ms, in audio time: events pile up while a pass runs, and the
/// next decision sees all of them at once. Partials follow the lag as the
/// worker's load policy sets them. Returns the events and the largest lag.
fn play_busy(script: &Script, seed: u64, slowdown: u32) -> (Vec<Event>, f64) {
    struct Slow(ScriptedDecoder, u32);
    impl Decode for Slow {
        fn decode(
            &mut self,
            audio: &[f32],
            request: &DecodeRequest,
        ) -> Result<Hypothesis, InferenceError> {
            let mut h = self.0.decode(audio, request)?;
            h.elapsed *= self.1;
            Ok(h)
        }
    }
    let audio = script.audio();
    let mut decoder = Slow(ScriptedDecoder::new(seed, 0), slowdown);
    let policy = load::LoadPolicy::default();
    let mut plan = policy.nominal();
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    let mut events = Vec::new();
    let mut busy_until = 0u64;
    let mut now = 0u64;
    let mut max_lag: f64 = 0.0;
    for event in script.vad_events(&audio) {
        if let VadEvent::Audio { start, samples } = &event {
            now = start + samples.len() as u64;
        }
        stream.push(event);
        max_lag = max_lag.max(stream.lag_s());
        if now < busy_until {
            continue;
        }
        let signal = load::LoadSignal {
            cores: 2,
            others_runnable: 0.0,
            lag_s: stream.lag_s(),
        };
        plan = policy.decide(signal, &plan);
        stream.set_partials(plan.partials);
        if stream.next_action() == Action::Wait {
            continue;
        }
        let stats = stream.stats();
        let passes = || stats.passes.load(std::sync::atomic::Ordering::Relaxed);
        let before = passes();
        events.extend(stream.step(&mut decoder).unwrap());
        if passes() > before {
            busy_until = now + (stream.last_pass().as_secs_f64() * RATE) as u64;
        }
    }
    events.extend(stream.finish(&mut decoder).unwrap());
    (events, max_lag)
}

/// Plays a script with every due pass run at once, partial passes at
/// `partials`; every hypothesis ends with a word naming how many samples
/// its pass read, so the finals tell which audio each piece was decoded
/// from.
fn play_marking_reads(script: &Script, seed: u64, partials: Partials) -> Vec<Event> {
    struct Marking(ScriptedDecoder);
    impl Decode for Marking {
        fn decode(
            &mut self,
            audio: &[f32],
            request: &DecodeRequest,
        ) -> Result<Hypothesis, InferenceError> {
            let mut h = self.0.decode(audio, request)?;
            if !h.words.is_empty() {
                let end = h.words[h.words.len() - 1].end;
                h.words.push(Word {
                    text: format!("read{}", audio.len()),
                    start: end,
                    end,
                    probability: 0.9,
                });
            }
            Ok(h)
        }
    }
    let audio = script.audio();
    let mut decoder = Marking(ScriptedDecoder::new(seed, 0));
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    stream.set_partials(partials);
    let mut events = Vec::new();
    for event in script.vad_events(&audio) {
        stream.push(event);
        while stream.next_action() != Action::Wait {
            events.extend(stream.step(&mut decoder).unwrap());
        }
    }
    events.extend(stream.finish(&mut decoder).unwrap());
    events
}

#[test]
fn a_piece_is_decoded_from_the_same_audio_with_or_without_partials() {
    // Under load partials stop, and with them the pass at a pause whose
    // words commit the utterance; the pass that commits it then must read
    // the same audio (up to the pause's cut, not the hangover's quiet too),
    // or what is committed would depend on the load.
    for seed in 4000..4040u64 {
        let script = phrased_words(&mut Rng(seed), 80);
        let every = play_marking_reads(&script, seed, Partials::Every);
        let off = play_marking_reads(&script, seed, Partials::Off);
        assert_eq!(pieces(&off), pieces(&every), "seed {seed}");
    }
}

#[test]
fn a_worker_slower_than_the_audio_sees_that_it_is_behind() {
    // Passes 4x slower than the scripted 50-800 ms: the policy's own
    // waiting grows with the pass time (twice the last pass between
    // partials), but the worker must still see itself behind and shed
    // partials; once the allowance grew with the passes, a loaded machine
    // never did, and its latency grew without bound.
    let off_at = load::LoadPolicy::default().off_at_s;
    for seed in 5000..5010u64 {
        let script = Script::generate(&mut Rng(seed));
        let (events, max_lag) = play_busy(&script, seed, 4);
        check(&script, &events, script.words.len(), seed);
        assert!(max_lag >= off_at, "seed {seed}: lag at most {max_lag:.2} s");
    }
}
