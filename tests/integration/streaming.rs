//! The live pipeline on paced files with the real model: streaming final
//! text against the offline transcript, on synthetic clips and on real
//! human recordings (assets/real/, scripts/real-speech.sh); no text
//! committed twice, no timestamps running backwards, nothing invented on
//! silence, and a stop mid-phrase still commits that phrase.

use crate::support::{asset, root};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hark::dsp::wav;
use hark::event::{Event, EventKind, Source};
use hark::inference::{DecodeRequest, Model};
use hark::pipeline::{Feed, PipelineConfig, SourceConfig};
use hark::score;
use hark::session::{Session, SessionConfig};

/// The model as `hark live` loads it (whisper's windows cut to live passes).
fn model() -> Model {
    let path = crate::support::default_model();
    Model::load_live(&path).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh first)"))
}

/// Plays `file` through the pipeline at 1x; stops after `stop_after` if
/// given, else when the file has played. Returns every event.
fn stream_file(
    model: &Model,
    file: &Path,
    stop_after: Option<Duration>,
) -> (Vec<Event>, Vec<hark::pipeline::SourceReport>) {
    stream_with(model, file, stop_after, &PipelineConfig::default())
}

fn stream_with(
    model: &Model,
    file: &Path,
    stop_after: Option<Duration>,
    config: &PipelineConfig,
) -> (Vec<Event>, Vec<hark::pipeline::SourceReport>) {
    let sources = vec![SourceConfig {
        source: Source::File,
        feed: Feed::File(file.to_path_buf()),
        record: None,
    }];
    let mut session = Session::start(model, SessionConfig::new(sources, config.clone()), None)
        .expect("session starts");
    let started = Instant::now();
    let mut events = Vec::new();
    loop {
        session.poll(Duration::from_millis(50), &mut events);
        match stop_after {
            Some(limit) if started.elapsed() >= limit => break,
            None if session.files_done() => break,
            _ => {}
        }
    }
    let report = session.stop(&mut events);
    (events, report.sources)
}

fn finals(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The offline transcript, with the whole model as `hark transcribe` loads it.
fn offline(file: &Path) -> String {
    let audio = wav::read_16k_mono(file).unwrap();
    let path = crate::support::default_model();
    let model = Model::load(&path).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh first)"));
    let mut decoder = model.decoder(2).unwrap();
    decoder
        .decode(&audio.samples, &DecodeRequest::default(), None)
        .unwrap()
        .text()
}

#[test]
fn streaming_final_text_matches_offline() {
    let _serial = crate::support::serial();
    let model = model();
    let file = asset("weather.wav");
    let reference = std::fs::read_to_string(asset("weather.txt")).unwrap();
    let (events, reports) = stream_file(&model, &file, None);
    let streamed = finals(&events);
    let offline = offline(&file);
    let wer_stream = score::wer(&reference, &streamed).rate();
    let wer_offline = score::wer(&reference, &offline).rate();
    eprintln!("streamed: {streamed}\noffline:  {offline}\nWER stream {wer_stream:.3} offline {wer_offline:.3}");
    for e in &events {
        eprintln!(
            "{:?} {:.2}-{:.2} @{:.2}: {}",
            e.kind,
            e.start,
            e.end,
            e.emitted.unwrap_or(0.0),
            e.text
        );
    }
    assert!(
        wer_stream <= wer_offline + 0.08,
        "streaming WER {wer_stream} vs offline {wer_offline}"
    );
    let r = &reports[0];
    assert_eq!(r.overflowed, 0);
    assert_eq!(r.offered, r.pumped, "every sample fed was pumped");
}

fn write_wav(path: &Path, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
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

/// Normalised words of the committed events, and the words at each boundary
/// between two consecutive committed events.
fn committed_words(events: &[Event]) -> Vec<Vec<String>> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| score::normalize(&e.text))
        .collect()
}

#[test]
fn a_long_utterance_is_committed_in_pieces_without_duplicated_or_lost_words() {
    let _serial = crate::support::serial();
    // Three clips back to back with a hangover long enough that the VAD
    // never closes the utterance: about 33 s of continuous speech, so the
    // policy must commit early, trim its window and carry on.
    let model = model();
    let mut samples = Vec::new();
    let mut reference = String::new();
    for name in ["meeting", "weather", "numbers"] {
        samples.extend(
            wav::read_16k_mono(asset(&format!("{name}.wav")))
                .unwrap()
                .samples,
        );
        reference.push_str(&std::fs::read_to_string(asset(&format!("{name}.txt"))).unwrap());
        reference.push(' ');
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.wav");
    write_wav(&file, &samples);
    let mut config = PipelineConfig::default();
    config.vad.hangover = Duration::from_millis(1500);
    config.vad.max_utterance = None;
    let (events, _) = stream_with(&model, &file, None, &config);
    let pieces = committed_words(&events);
    for e in events.iter().filter(|e| e.kind != EventKind::Partial) {
        eprintln!(
            "{:?} {:.2}-{:.2} @{:.2}: {}",
            e.kind,
            e.start,
            e.end,
            e.emitted.unwrap_or(0.0),
            e.text
        );
    }
    assert!(
        pieces.len() >= 2,
        "a 33 s utterance is committed in more than one piece: {pieces:?}"
    );
    // No boundary repeats the words just committed before it.
    for pair in pieces.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        for n in 1..=a.len().min(b.len()).min(3) {
            assert_ne!(
                a[a.len() - n..],
                b[..n],
                "words repeated across a commit boundary: {a:?} | {b:?}"
            );
        }
    }
    let streamed: Vec<String> = pieces.concat();
    let errors = score::wer(&reference, &streamed.join(" "));
    eprintln!("long utterance WER {:.3} {errors:?}", errors.rate());
    // 0.120 in ten runs in a row (7 substitutions, 3 deletions, 1
    // insertion of 92 words); the margin is four words.
    assert!(errors.rate() <= 0.165, "WER {:.3}", errors.rate());
}

#[test]
fn stopping_mid_phrase_commits_that_phrase() {
    let _serial = crate::support::serial();
    let model = model();
    // weather.wav is one 10 s sentence; stop after 5 s of it.
    let (events, reports) =
        stream_file(&model, &asset("weather.wav"), Some(Duration::from_secs(5)));
    let text = finals(&events);
    eprintln!("committed at stop: {text}");
    let words = score::normalize(&text);
    // tiny.en sometimes hears "The weather" as "But whenever" on this clip,
    // so ask for most, not all, of the words spoken in the first 5 s.
    let spoken = [
        "weather", "today", "mostly", "sunny", "light", "breeze", "west",
    ];
    let heard = spoken
        .iter()
        .filter(|s| words.iter().any(|w| w == *s))
        .count();
    assert!(heard >= 5, "only {heard} of {spoken:?} in {text:?}");
    let r = &reports[0];
    assert_eq!(r.offered, r.pumped, "the ring was drained on stop");
}

#[test]
fn silence_and_low_noise_produce_no_text() {
    let _serial = crate::support::serial();
    let model = model();
    let mut seed: u32 = 7;
    let samples: Vec<f32> = (0..16_000 * 20)
        .map(|i| {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let white = (seed >> 8) as f32 / (1 << 24) as f32 * 2.0 - 1.0;
            // 5 s digital silence, then white noise at about -45 dBFS.
            if i < 16_000 * 5 {
                0.0
            } else {
                white * 0.01
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("quiet.wav");
    write_wav(&file, &samples);
    let (events, _) = stream_file(&model, &file, None);
    let text: Vec<&Event> = events.iter().filter(|e| e.kind != EventKind::Gap).collect();
    assert!(text.is_empty(), "text on silence: {text:?}");
}

/// The first `seconds` of a real-speech file (assets/real/), as a 16 kHz WAV
/// in `dir`.
fn real_excerpt(dir: &Path, name: &str, seconds: f64) -> (PathBuf, f64) {
    let path = root().join("assets/real").join(name);
    let audio = wav::read_16k_mono(&path)
        .unwrap_or_else(|e| panic!("{e} (scripts/real-speech.sh, run by scripts/setup.sh)"));
    let n = ((seconds * 16_000.0) as usize).min(audio.samples.len());
    let file = dir.join(name);
    write_wav(&file, &audio.samples[..n]);
    (file, n as f64 / 16_000.0)
}

/// Streams a real-speech excerpt and checks what must hold on any speech:
/// nothing committed twice beyond what the offline transcript repeats, no
/// final event's times backwards or outside the audio, nothing lost from
/// the ring; returns the WER against the offline transcript.
fn real_speech_holds(name: &str, seconds: f64) -> f64 {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let (file, duration) = real_excerpt(dir.path(), name, seconds);
    let (events, reports) = stream_file(&model, &file, None);
    let streamed = finals(&events);
    let offline = offline(&file);
    for e in events.iter().filter(|e| e.kind == EventKind::Final) {
        eprintln!(
            "{:.2}-{:.2} @{:.2}: {}",
            e.start,
            e.end,
            e.emitted.unwrap_or(0.0),
            e.text
        );
    }
    eprintln!("offline: {offline}");
    let repeats = score::extra_repeats(&offline, &streamed);
    assert_eq!(repeats, 0, "4-word spans committed twice");
    let times = events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| (e.start, e.end));
    assert_eq!(
        score::time_faults(times, duration),
        0,
        "final times backwards or outside"
    );
    let r = &reports[0];
    assert_eq!((r.overflowed, r.offered), (0, r.pumped));
    let wer = score::wer(&offline, &streamed).rate();
    eprintln!("{name}: WER against offline {wer:.3}");
    wer
}

#[test]
fn real_unbroken_reading_is_committed_once_in_order() {
    let _serial = crate::support::serial();
    // Phrases of real speakers 0.1-0.2 s apart: one long utterance for the
    // VAD, cut into pieces at its pauses. It ends before the countdown at
    // 25.5 s ("1 2 3 4 5 5 4 3 2 1 golf 3 papa lima"), which the offline
    // reference wrote as "12345, 5 4 3 2 1", "One two three ..." or
    // "1234554321g" from one copy of the audio to the next (the copies
    // differed only by sox's dither, -90 dB): up to 0.17 of WER that
    // measured the reference's number formatting, not the streaming.
    let wer = real_speech_holds("unbroken-16k.wav", 25.5);
    assert!(wer <= UNBROKEN_MAX_WER, "WER against offline {wer:.3}");
}

#[test]
fn real_monologue_is_committed_once_in_order() {
    let _serial = crate::support::serial();
    // The opening of a ham-radio operator's 112 s message: natural speech,
    // where the earlier policy committed whole sentences two or three times.
    let wer = real_speech_holds("monologue-16k.wav", 40.0);
    assert!(wer <= MONOLOGUE_MAX_WER, "WER against offline {wer:.3}");
}

/// Agreement with the offline transcript (itself wrong in places). Pieces
/// end where they would on an idle machine whatever the load (the policy's
/// property tests). With the lead, ten runs in a row: unbroken 30 s 0.116
/// every time (0.140 before the lead); monologue 40 s 0.096-0.157 (0.108 in
/// six of ten). On the audio built with a fixed dither seed (session 10):
/// unbroken 25.5 s 0.082, one run. The margin is for Whisper's float
/// results on another CPU's vector units, which can flip a word or two.
const UNBROKEN_MAX_WER: f64 = 0.16;
const MONOLOGUE_MAX_WER: f64 = 0.20;
