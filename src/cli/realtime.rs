//! `hark transcribe --realtime`: WAV files paced at 1x through the live
//! pipeline (ring, pump, VAD, streaming workers), events written as they
//! happen, partials included, each with the wall-clock time since the start
//! at which it was emitted.

use std::path::PathBuf;
use std::time::Duration;

use super::options::Output;
use crate::event::Source;
use crate::inference::Model;
use crate::pipeline::{Feed, Pipeline, PipelineConfig, SourceConfig};

/// Plays each file in turn into `out`.
pub fn run(
    files: &[PathBuf],
    model: &Model,
    threads: usize,
    out: &mut Output,
) -> anyhow::Result<()> {
    for file in files {
        out.source_heading(file)?;
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
        while !pipeline.files_done() {
            if let Ok(event) = rx.recv_timeout(Duration::from_millis(50)) {
                out.event(event)?;
            }
        }
        let reports = pipeline.stop();
        for event in rx.try_iter() {
            out.event(event)?;
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
