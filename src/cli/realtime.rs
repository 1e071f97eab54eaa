//! `hark transcribe --realtime`: WAV files paced at 1x through the live
//! pipeline (ring, pump, VAD, streaming workers), events printed as they
//! happen, partials included, each with the wall-clock time since the start
//! at which it was emitted.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::event::Source;
use crate::inference::Model;
use crate::pipeline::{Feed, Pipeline, PipelineConfig, SourceConfig};
use crate::transcript::{Format, Formatter};

/// Plays each file in turn; prints events on stdout in `format` (partials
/// only where the format can carry them: txt and jsonl).
pub fn run(files: &[PathBuf], model: &Model, threads: usize, format: Format) -> anyhow::Result<()> {
    let mut formatter = Formatter::new(format).with_partials(true);
    let mut text = String::new();
    formatter.header(&mut text);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    out.write_all(text.as_bytes())
        .context("writing to stdout")?;
    for file in files {
        let (tx, rx) = crossbeam_channel::unbounded();
        let sources = [SourceConfig {
            source: Source::File,
            feed: Feed::File(file.clone()),
            record: None,
        }];
        let config = PipelineConfig {
            threads,
            ..PipelineConfig::default()
        };
        let pipeline = Pipeline::start(model, &config, &sources, tx)?;
        let mut print = |event: crate::event::Event| -> anyhow::Result<()> {
            text.clear();
            if formatter.event(&event, &mut text) {
                out.write_all(text.as_bytes())
                    .context("writing to stdout")?;
                out.flush().context("writing to stdout")?;
            }
            Ok(())
        };
        while !pipeline.files_done() {
            if let Ok(event) = rx.recv_timeout(Duration::from_millis(50)) {
                print(event)?;
            }
        }
        let reports = pipeline.stop();
        for event in rx.try_iter() {
            print(event)?;
        }
        for r in reports {
            tracing::info!(
                "{}: offered {} samples, pumped {}, overflowed {}; {} passes, {} words committed",
                file.display(),
                r.offered,
                r.pumped,
                r.overflowed,
                r.worker.passes,
                r.worker.committed_words
            );
        }
    }
    Ok(())
}
