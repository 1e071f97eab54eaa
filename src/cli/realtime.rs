//! `hark transcribe --realtime`: WAV files paced at 1x through the live
//! pipeline (ring, pump, VAD, streaming workers), events written as they
//! happen, partials included, each with the wall-clock time since the start
//! at which it was emitted.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::options::Output;
use crate::event::Source;
use crate::inference::Model;
use crate::pipeline::{Feed, PipelineConfig, SourceConfig};
use crate::session::{Session, SessionConfig};

/// How often the main thread looks for events and the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Plays each file in turn into `out`; a first SIGINT/SIGTERM (`stop`)
/// ends the file playing (what was played is transcribed) and skips the
/// rest.
pub fn run(
    files: &[PathBuf],
    model: &Model,
    threads: usize,
    out: &mut Output,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<()> {
    for file in files {
        if stop.load(Ordering::Acquire) {
            break;
        }
        out.source_heading(file)?;
        let sources = vec![SourceConfig {
            source: Source::File,
            feed: Feed::File(file.clone()),
            record: None,
        }];
        let pipeline = PipelineConfig {
            threads,
            ..PipelineConfig::default()
        };
        let mut config = SessionConfig::new(sources, pipeline);
        config.interrupted = Arc::clone(stop);
        let mut session = Session::start(model, config, None)?;
        let mut events = Vec::new();
        while !session.files_done() && !stop.load(Ordering::Acquire) {
            session.poll(POLL, &mut events);
            for event in events.drain(..) {
                out.event(event)?;
            }
        }
        let report = session.stop(&mut events);
        for event in events.drain(..) {
            out.event(event)?;
        }
        for r in report.sources {
            if let Some(err) = r.feed_error {
                // What was fed before the error was transcribed and written.
                return Err(anyhow::Error::new(err));
            }
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
