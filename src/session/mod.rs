//! One live session, owned in one place: the pipeline (feeds, rings, pumps,
//! workers), the monitor, and the delivery of events to the transcript
//! writer. `hark live`, `hark transcribe --realtime`, `hark soak` and the
//! tests all run through [`Session`]; the CLI only parses flags, shows what
//! [`Session::poll`] hands it, and maps the [`SessionReport`] to output.
//!
//! # Events
//!
//! One channel carries every event out of the pipeline, and each source has
//! one writer of it (its pump, which relays its worker's text and its own
//! gap events in timeline order, see [`crate::pipeline`]). The session reads
//! it on the caller's thread, passes each event through the echo filter
//! (when on), queues it for the transcript with `try_send` (never blocking;
//! what does not fit waits in a bounded backlog, in order) and hands it to
//! the caller.
//!
//! # Stop order
//!
//! [`Session::stop`] does, in this order:
//!
//! 1. stops the pipeline: capture ends, each pump drains its ring to the
//!    last sample, each worker commits what is left; the event channel then
//!    closes;
//! 2. delivers the events still in the channel (and those the echo filter
//!    holds) to the transcript and the caller;
//! 3. stops the monitor (its last samples include the drain);
//! 4. finishes the writer: everything queued is written and synced. Once
//!    the stop flag is set (the first SIGINT or SIGTERM), this waits at most
//!    [`WRITER_STOP_GRACE`]; a target that blocks (a pipe nobody reads, a
//!    hung mount) then ends the session with
//!    [`crate::transcript::WriteError::Stalled`] and the count of events not
//!    written, instead of hanging.
//!
//! Not real-time safe.

mod delivery;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::echo::EchoStats;
use crate::event::Event;
use crate::inference::Model;
use crate::monitor::{Monitor, MonitorConfig, MonitorError, MonitorReport, WriterProbe};
use crate::pipeline::SourceStats;
use crate::pipeline::{Pipeline, PipelineConfig, PipelineError, SourceConfig, SourceReport};
use crate::transcript::{WriteError, Writer, WriterReport};

use delivery::Delivery;

/// How long, once stopping was asked for by a signal, the writer may take
/// to write what it holds before hark gives up on it.
pub const WRITER_STOP_GRACE: Duration = Duration::from_secs(3);

/// What to run.
pub struct SessionConfig {
    pub sources: Vec<SourceConfig>,
    pub pipeline: PipelineConfig,
    /// Sample, raise alerts and (with an address) serve metrics.
    pub monitor: Option<MonitorConfig>,
    /// Drop microphone utterances that repeat the loopback's words (needs
    /// both sources and echo cancellation on).
    pub echo_filter: bool,
    /// Set by the first SIGINT/SIGTERM: from then on the writer's last
    /// flush is waited for at most [`WRITER_STOP_GRACE`].
    pub interrupted: Arc<AtomicBool>,
}

impl SessionConfig {
    /// A session of `sources`, no monitor, no echo filter, no signal flag.
    pub fn new(sources: Vec<SourceConfig>, pipeline: PipelineConfig) -> SessionConfig {
        SessionConfig {
            sources,
            pipeline,
            monitor: None,
            echo_filter: false,
            interrupted: Arc::default(),
        }
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Monitor(#[from] MonitorError),
}

/// What a session did, once stopped.
#[derive(Debug)]
pub struct SessionReport {
    pub sources: Vec<SourceReport>,
    pub echo: Option<Arc<EchoStats>>,
    pub monitor: Option<MonitorReport>,
    /// The writer's end (none without a transcript file).
    pub transcript: Option<Result<WriterReport, WriteError>>,
}

/// A running session.
pub struct Session {
    pipeline: Pipeline,
    monitor: Option<Monitor>,
    events: Receiver<Event>,
    delivery: Delivery,
    interrupted: Arc<AtomicBool>,
}

impl Session {
    /// Starts the pipeline, then the monitor; events go to `writer` (opened
    /// by the caller, so a bad path fails before the model loads) and to
    /// [`Session::poll`]'s caller.
    pub fn start(
        model: &Model,
        config: SessionConfig,
        writer: Option<Writer>,
    ) -> Result<Session, SessionError> {
        let (tx, events) = crossbeam_channel::unbounded();
        let pipeline = Pipeline::start(model, &config.pipeline, &config.sources, tx)?;
        let monitor = match config.monitor {
            Some(monitor_config) => {
                let probe = writer.as_ref().map(|w| {
                    let watch = w.watch();
                    Box::new(move || watch.metrics()) as WriterProbe
                });
                let monitor = Monitor::spawn(
                    monitor_config,
                    pipeline.stats(),
                    pipeline.chunk_ms_handle(),
                    probe,
                );
                match monitor {
                    Ok(monitor) => Some(monitor),
                    Err(e) => {
                        pipeline.stop();
                        return Err(e.into());
                    }
                }
            }
            None => None,
        };
        let filter = config.echo_filter.then(|| pipeline.echo_stats()).flatten();
        Ok(Session {
            delivery: Delivery::new(writer, filter),
            pipeline,
            monitor,
            events,
            interrupted: config.interrupted,
        })
    }

    /// Waits up to `timeout` for the next event, then takes every event that
    /// is waiting; each goes to the transcript and onto `out`. False once
    /// every source has ended (file feeds played out, workers done).
    pub fn poll(&mut self, timeout: Duration, out: &mut Vec<Event>) -> bool {
        let open = match self.events.recv_timeout(timeout) {
            Ok(event) => {
                self.delivery.push(event, out);
                true
            }
            Err(RecvTimeoutError::Timeout) => true,
            Err(RecvTimeoutError::Disconnected) => false,
        };
        for event in self.events.try_iter() {
            self.delivery.push(event, out);
        }
        self.delivery.tick(out);
        open
    }

    /// Live numbers of every source.
    pub fn stats(&self) -> Vec<Arc<SourceStats>> {
        self.pipeline.stats()
    }

    /// The buffer size the sizer chose, ms.
    pub fn chunk_ms(&self) -> u32 {
        self.pipeline.chunk_ms()
    }

    /// The session clock (timestamps count from here).
    pub fn clock(&self) -> Instant {
        self.pipeline.clock()
    }

    /// Whether every file feed has been played to its end.
    pub fn files_done(&self) -> bool {
        self.pipeline.files_done()
    }

    /// The monitor, when running.
    pub fn monitor(&self) -> Option<&Monitor> {
        self.monitor.as_ref()
    }

    /// Events the transcript did not take yet because its queue was full.
    pub fn backlog(&self) -> usize {
        self.delivery.backlog()
    }

    /// Stops everything in the order the module documents; the events
    /// delivered on the way go onto `out`.
    pub fn stop(mut self, out: &mut Vec<Event>) -> SessionReport {
        let echo = self.pipeline.echo_stats();
        let sources = self.pipeline.stop();
        for event in self.events.try_iter() {
            self.delivery.push(event, out);
        }
        self.delivery.finish_filter(out);
        let monitor = self.monitor.take().map(Monitor::stop);
        let interrupted = Arc::clone(&self.interrupted);
        let mut since: Option<Instant> = None;
        let give_up = move || {
            if interrupted.load(Ordering::Acquire) {
                let at = *since.get_or_insert_with(Instant::now);
                at.elapsed() >= WRITER_STOP_GRACE
            } else {
                false
            }
        };
        let transcript = self.delivery.finish(give_up);
        SessionReport {
            sources,
            echo,
            monitor,
            transcript,
        }
    }
}
