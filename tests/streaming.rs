//! The live pipeline on paced files with the real model: streaming final
//! text against the offline transcript, no duplicated words at window
//! boundaries, nothing invented on silence, and a stop mid-phrase still
//! commits that phrase.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hark::dsp::wav;
use hark::event::{Event, EventKind, Source};
use hark::inference::{DecodeRequest, Model};
use hark::pipeline::{Feed, Pipeline, PipelineConfig, SourceConfig};
use hark::score;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn model() -> Model {
    let path = root().join("models/ggml-tiny.en-q8_0.bin");
    Model::load(&path).unwrap_or_else(|e| panic!("{e} (run scripts/setup.sh first)"))
}

/// Plays `file` through the pipeline at 1x; stops after `stop_after` if
/// given, else when the file has played. Returns every event.
fn stream_file(
    model: &Model,
    file: &Path,
    stop_after: Option<Duration>,
) -> (Vec<Event>, Vec<hark::pipeline::SourceReport>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let sources = [SourceConfig {
        source: Source::File,
        feed: Feed::File(file.to_path_buf()),
        record: None,
    }];
    let pipeline =
        Pipeline::start(model, &PipelineConfig::default(), &sources, tx).expect("pipeline starts");
    let started = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(50));
        match stop_after {
            Some(limit) if started.elapsed() >= limit => break,
            None if pipeline.files_done() => break,
            _ => {}
        }
    }
    let reports = pipeline.stop();
    (rx.try_iter().collect(), reports)
}

fn finals(events: &[Event]) -> String {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Final)
        .map(|e| e.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn offline(model: &Model, file: &Path) -> String {
    let audio = wav::read_16k_mono(file).unwrap();
    let mut decoder = model.decoder(2).unwrap();
    decoder
        .decode(&audio.samples, &DecodeRequest::default(), None)
        .unwrap()
        .text()
}

fn asset(name: &str) -> PathBuf {
    root().join("assets").join(name)
}

#[test]
fn streaming_matches_offline_on_the_programme() {
    let model = model();
    let file = asset("weather.wav");
    let reference = std::fs::read_to_string(asset("weather.txt")).unwrap();
    let (events, reports) = stream_file(&model, &file, None);
    let streamed = finals(&events);
    let offline = offline(&model, &file);
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
