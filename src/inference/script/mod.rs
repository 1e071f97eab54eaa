//! Property tests of the streaming policy against a scripted decoder that
//! fails the way Whisper does on real speech, over many generated scripts,
//! without a model and at any speed.
//!
//! A script is a sequence of words, each a burst of samples of one constant
//! value (the word's id) with silence around it; the test plays the VAD's
//! part from the script's known layout, and the scripted decoder reads the
//! bursts back out of whatever audio the policy hands it, then distorts the
//! result: a word cut off at the end of the audio comes out as another word
//! ("the" -> "then"), word times are off by up to a second, a pass sometimes
//! repeats an n-gram, a pass over silence invents text, and passes take
//! random times while the driver keeps pushing audio (a slow worker).

use std::time::{Duration, Instant};

use super::decode::Decode;
use super::engine::{DecodeRequest, Hypothesis, Word, SAMPLE_RATE_HZ};
use super::load::Partials;
use super::stream::{Action, Stream, StreamConfig};
use super::InferenceError;
use crate::event::{Event, EventKind, Source};
use crate::vad::VadEvent;

mod pace;

const RATE: f64 = SAMPLE_RATE_HZ as f64;
/// The VAD's pause and hangover, as the pipeline configures them.
const PAUSE_S: f64 = 0.16;
const HANGOVER_S: f64 = 0.3;
const PRE_ROLL_S: f64 = 0.3;
/// Samples the pump hands on at a time (30 ms).
const CHUNK: usize = 480;

/// xorshift64*: a small, seeded, reproducible generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }
}

/// Word `id`'s sample value: distinct per id, never digital silence.
fn level(id: usize) -> f32 {
    (id + 1) as f32 / 2048.0
}

fn id_of(level: f32) -> usize {
    (level * 2048.0).round() as usize - 1
}

/// A generated session: word extents in samples, and its length.
struct Script {
    words: Vec<(u64, u64)>,
    total: u64,
}

impl Script {
    fn generate(rng: &mut Rng) -> Script {
        let mut words = Vec::new();
        let mut t = rng.range(0.2, 2.0);
        let count = 40 + (rng.next() % 160) as usize;
        // Now and then an unbroken stretch: gaps under the VAD's pause, so
        // only a forced cut can end a piece.
        let mut unbroken_left = 0;
        let mut since_breath = 0;
        for _ in 0..count {
            let len = rng.range(0.15, 0.5);
            words.push(((t * RATE) as u64, ((t + len) * RATE) as u64));
            t += len;
            if unbroken_left == 0 && rng.unit() < 0.03 {
                unbroken_left = 30 + (rng.next() % 30) as usize;
            }
            let gap = if unbroken_left > 0 {
                unbroken_left -= 1;
                since_breath += 1;
                // Inside words' flow, with a breath now and then (at
                // least every twelfth word: people breathe).
                if rng.unit() < 0.2 || since_breath >= 12 {
                    since_breath = 0;
                    rng.range(0.11, 0.15)
                } else {
                    rng.range(0.02, 0.08)
                }
            } else {
                match rng.unit() {
                    u if u < 0.55 => rng.range(0.02, 0.08),
                    u if u < 0.8 => rng.range(0.17, 0.29),
                    _ => rng.range(0.4, 2.0),
                }
            };
            t += gap;
        }
        Script {
            words,
            total: ((t + 0.5) * RATE) as u64,
        }
    }

    fn audio(&self) -> Vec<f32> {
        let mut audio = vec![0.0; self.total as usize];
        for (id, &(s, e)) in self.words.iter().enumerate() {
            audio[s as usize..e as usize].fill(level(id));
        }
        audio
    }

    /// What the VAD would say, from the known layout.
    fn vad_events(&self, audio: &[f32]) -> Vec<VadEvent> {
        let s = |x: f64| (x * RATE) as u64;
        let mut events = Vec::new();
        let mut last_end = 0u64;
        let mut i = 0;
        while i < self.words.len() {
            let start = self.words[i].0.saturating_sub(s(PRE_ROLL_S)).max(last_end);
            events.push(VadEvent::SpeechStart { start });
            let mut pos = start;
            let push_to = |events: &mut Vec<VadEvent>, pos: &mut u64, to: u64| {
                while *pos < to {
                    let end = (*pos + CHUNK as u64).min(to);
                    events.push(VadEvent::Audio {
                        start: *pos,
                        samples: audio[*pos as usize..end as usize].to_vec(),
                    });
                    *pos = end;
                }
            };
            loop {
                let voiced_end = self.words[i].1;
                let next = self.words.get(i + 1).map_or(self.total, |w| w.0);
                let gap = (next - voiced_end) as f64 / RATE;
                i += 1;
                if gap >= PAUSE_S {
                    // The real VAD reports the pause before the hangover
                    // closes the utterance.
                    let cut = (voiced_end + s(PAUSE_S)).min(self.total);
                    push_to(&mut events, &mut pos, cut);
                    events.push(VadEvent::Pause {
                        voiced_end,
                        cut,
                        tail: false,
                    });
                }
                if gap >= HANGOVER_S || i == self.words.len() {
                    let end = (voiced_end + s(HANGOVER_S)).min(self.total);
                    push_to(&mut events, &mut pos, end);
                    events.push(VadEvent::SpeechEnd { end, voiced_end });
                    last_end = end;
                    break;
                }
            }
        }
        events
    }
}

/// Reads the bursts back out of the audio, then fails like Whisper.
struct ScriptedDecoder {
    rng: Rng,
    /// The next pass returns `Aborted` (the worker's relay cut it short).
    abort_next: bool,
    /// Quiet (samples) the last word needs after it in the audio, or it is
    /// misheard like a cut-off word: a soft ending ("-s", "-th") that the
    /// VAD counts as quiet but Whisper needs to hear out. 0: none needed.
    soft_ending: usize,
}

impl ScriptedDecoder {
    /// The decoder every player uses for the script of `seed`.
    fn new(seed: u64, soft_ending: usize) -> Self {
        ScriptedDecoder {
            rng: Rng(seed ^ 0x9E37),
            abort_next: false,
            soft_ending,
        }
    }
}

impl Decode for ScriptedDecoder {
    fn decode(
        &mut self,
        audio: &[f32],
        _request: &DecodeRequest,
    ) -> Result<Hypothesis, InferenceError> {
        if std::mem::take(&mut self.abort_next) {
            return Err(InferenceError::Aborted);
        }
        let mut words = Vec::new();
        let mut i = 0;
        while i < audio.len() {
            if audio[i] == 0.0 {
                i += 1;
                continue;
            }
            let value = audio[i];
            let start = i;
            while i < audio.len() && audio[i] == value {
                i += 1;
            }
            let cut_off = i == audio.len()
                || (audio[i..].iter().all(|&x| x == 0.0) && audio.len() - i < self.soft_ending);
            let jitter = self.rng.range(-1.0, 1.0);
            words.push(Word {
                // A word cut off by the end of the audio is misheard.
                text: format!("w{}{}", id_of(value), if cut_off { "n" } else { "" }),
                start: (start as f64 / RATE + jitter).max(0.0),
                end: (i as f64 / RATE + jitter).max(0.0),
                probability: 0.9,
            });
        }
        let mut no_speech = 0.05;
        if words.is_empty() && !audio.is_empty() {
            // Whisper on silence: "Thank you." it says, unsure.
            no_speech = 0.9;
            for text in ["Thank", "you."] {
                words.push(Word {
                    text: text.into(),
                    start: 0.0,
                    end: audio.len() as f64 / RATE,
                    probability: 0.3,
                });
            }
        } else if words.len() >= 2 && self.rng.unit() < 0.1 {
            // A repetition loop on the last two words.
            let tail = words[words.len() - 2..].to_vec();
            for _ in 0..3 {
                words.extend(tail.iter().cloned());
            }
        }
        Ok(Hypothesis {
            segments: Vec::new(),
            words,
            no_speech,
            elapsed: Duration::from_millis(50 + self.rng.next() % 750),
        })
    }
}

/// Plays a script through the policy, stepping at random moments (a slow
/// or busy worker lets audio pile up), and stops at `stop` samples.
fn play(script: &Script, seed: u64, stop: Option<u64>) -> Vec<Event> {
    play_adapting(script, seed, stop, false)
}

/// [`play`], and with `adapt` the worker's load-adaptive levers pulled at
/// random: the partials level changes before each step, and a third of the
/// partial passes are aborted (a pause or the end arrived meanwhile).
fn play_adapting(script: &Script, seed: u64, stop: Option<u64>, adapt: bool) -> Vec<Event> {
    let audio = script.audio();
    let mut rng = Rng(seed);
    let mut decoder = ScriptedDecoder::new(seed, 0);
    let mut stream = Stream::new(StreamConfig::new(Source::Mic), Instant::now());
    let mut events = Vec::new();
    for event in script.vad_events(&audio) {
        let at = match &event {
            VadEvent::Audio { start, .. } => *start,
            _ => 0,
        };
        if stop.is_some_and(|stop| at >= stop) {
            break;
        }
        stream.push(event);
        if rng.unit() < 0.3 {
            loop {
                if adapt {
                    stream.set_partials(match rng.next() % 3 {
                        0 => Partials::Every,
                        1 => Partials::Sparse,
                        _ => Partials::Off,
                    });
                    decoder.abort_next = stream.next_pass_is_partial() && rng.unit() < 0.33;
                }
                if stream.next_action() == Action::Wait {
                    break;
                }
                events.extend(stream.step(&mut decoder).unwrap());
            }
        }
    }
    events.extend(stream.finish(&mut decoder).unwrap());
    events
}

/// Word ids of the final events, in order; panics on a word no script said.
fn committed_ids(events: &[Event]) -> Vec<usize> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .flat_map(|e| e.text.split_whitespace())
        .map(|w| {
            w.strip_prefix('w')
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("committed a word never said: {w:?}"))
        })
        .collect()
}

fn check(script: &Script, events: &[Event], heard: usize, seed: u64) {
    let ids = committed_ids(events);
    // No word twice, none out of order: committed text is never revised.
    for pair in ids.windows(2) {
        assert!(
            pair[0] < pair[1],
            "seed {seed}: {pair:?} repeated or reordered"
        );
    }
    // Everything heard is committed.
    assert_eq!(ids, (0..heard).collect::<Vec<_>>(), "seed {seed}");
    // Final times never go backwards and stay inside the audio.
    let total_s = script.total as f64 / RATE;
    let mut last_end = 0.0;
    for e in events.iter().filter(|e| e.kind == EventKind::Final) {
        assert!(
            e.start >= last_end - 1e-9,
            "seed {seed}: {e:?} starts before {last_end}"
        );
        assert!(
            e.end >= e.start && e.end <= total_s + 1e-9,
            "seed {seed}: {e:?}"
        );
        last_end = e.end;
    }
}

#[test]
fn generated_scripts_commit_every_word_once_in_order() {
    for seed in 1..=120u64 {
        let script = Script::generate(&mut Rng(seed));
        let events = play(&script, seed, None);
        if std::env::var("SCRIPT_DEBUG").is_ok() {
            for e in events.iter().filter(|e| e.kind == EventKind::Final) {
                eprintln!("seed {seed} {:.3}-{:.3} {}", e.start, e.end, e.text);
            }
        }
        check(&script, &events, script.words.len(), seed);
    }
}

#[test]
fn fewer_partials_and_aborted_partials_lose_nothing() {
    for seed in 500..=560u64 {
        let script = Script::generate(&mut Rng(seed));
        let events = play_adapting(&script, seed, None, true);
        check(&script, &events, script.words.len(), seed);
    }
}

#[test]
fn a_stop_commits_everything_heard() {
    for seed in 1000..1040u64 {
        let script = Script::generate(&mut Rng(seed));
        let stop = script.total / 2;
        let events = play(&script, seed, Some(stop));
        // Words wholly before the last chunk pushed were heard; the one the
        // stop cut through may come out misheard, so it is left out here.
        let stop_at = stop.div_ceil(CHUNK as u64) * CHUNK as u64;
        let heard = script
            .words
            .iter()
            .filter(|w| w.1 < stop_at - CHUNK as u64)
            .count();
        let ids = committed_ids_lenient(&events);
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "seed {seed}: {pair:?}");
        }
        assert!(
            ids.len() >= heard && ids[..heard] == (0..heard).collect::<Vec<_>>()[..],
            "seed {seed}: {} of {heard} heard words committed",
            ids.len()
        );
    }
}

/// Like [`committed_ids`], but a word misheard because the stop cut it off
/// ("w12n") counts as its id.
fn committed_ids_lenient(events: &[Event]) -> Vec<usize> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .flat_map(|e| e.text.split_whitespace())
        .map(|w| {
            w.trim_start_matches('w')
                .trim_end_matches('n')
                .parse()
                .unwrap()
        })
        .collect()
}

#[test]
fn silence_after_the_voice_is_never_decoded_into_text() {
    // One word, then a long pause inside the utterance's hangover: the
    // scripted decoder invents "Thank you." on any silence it is given.
    let script = Script {
        words: vec![(16_000, 40_000)],
        total: 100_000,
    };
    let events = play(&script, 7, None);
    assert_eq!(committed_ids(&events), [0]);
}

#[test]
fn a_long_unbroken_stretch_is_cut_into_pieces_of_bounded_length() {
    // 40 s of words 50 ms apart, with a 120 ms breath every ten words.
    let mut words = Vec::new();
    let mut t = 16_000u64;
    for i in 0..120 {
        words.push((t, t + 4_800));
        t += 4_800 + if i % 10 == 9 { 1_920 } else { 800 };
    }
    let script = Script {
        words,
        total: t + 16_000,
    };
    let events = play(&script, 11, None);
    check(&script, &events, 120, 11);
    let finals: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .collect();
    assert!(finals.len() >= 3, "{} pieces", finals.len());
    for e in finals {
        assert!(e.end - e.start <= 12.0 + 1e-6, "{e:?}");
    }
}
