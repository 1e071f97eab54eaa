//! Inference workers: one thread per source, running the streaming policy
//! over what the VAD sends, and handing events on.
//!
//! A worker owns its decoding state (one per thread over the shared model),
//! receives VAD output on a bounded channel and drains everything that
//! arrived before each pass, so a pass that falls behind takes more audio
//! rather than skipping any. A panic inside inference is caught, reported as
//! an error, and the worker goes on with a fresh state; it never takes the
//! process down.
//!
//! Not real-time safe.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::engine::Model;
use super::stream::{Action, Stream, StreamConfig, StreamStats};
use super::InferenceError;
use crate::event::Event;
use crate::vad::VadEvent;

/// How long a worker waits for input before checking again.
const IDLE_WAIT: Duration = Duration::from_millis(20);

/// What a worker did, once it stopped.
#[derive(Debug, Default, Clone)]
pub struct WorkerReport {
    pub passes: u64,
    pub committed_words: u64,
    /// Panics caught inside inference (each reported and recovered).
    pub panics: u64,
    /// Decode errors (each reported; the audio of that pass is retried once
    /// with a fresh state, then given up and counted here).
    pub errors: u64,
}

/// A running worker.
pub struct Worker {
    handle: JoinHandle<WorkerReport>,
    stats: Arc<StreamStats>,
}

impl Worker {
    /// Starts a worker thread for one source. Events go to `output`; when
    /// `input` closes (the source stopped) the worker commits what is left
    /// and ends.
    pub fn spawn(
        model: &Model,
        threads: usize,
        config: StreamConfig,
        clock: Instant,
        input: Receiver<VadEvent>,
        output: Sender<Event>,
    ) -> Result<Worker, InferenceError> {
        let decoder = model.decoder(threads)?;
        let stream = Stream::new(config, clock);
        let stats = stream.stats();
        let model = model.clone();
        let name = format!("hark-infer-{}", stream.source());
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || run(model, threads, decoder, stream, input, output))
            .map_err(|e| InferenceError::State(format!("cannot start worker thread: {e}")))?;
        Ok(Worker { handle, stats })
    }

    pub fn stats(&self) -> Arc<StreamStats> {
        Arc::clone(&self.stats)
    }

    /// Waits for the worker to drain and stop.
    pub fn join(self) -> WorkerReport {
        self.handle.join().unwrap_or_else(|_| WorkerReport {
            panics: 1,
            ..WorkerReport::default()
        })
    }
}

fn run(
    model: Model,
    threads: usize,
    mut decoder: super::Decoder,
    mut stream: Stream,
    input: Receiver<VadEvent>,
    output: Sender<Event>,
) -> WorkerReport {
    let mut report = WorkerReport::default();
    let mut open = true;
    while open {
        // Take everything that is waiting before deciding on a pass.
        match input.recv_timeout(IDLE_WAIT) {
            Ok(event) => stream.push(event),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        while let Ok(event) = input.try_recv() {
            stream.push(event);
        }
        let mut failures = 0;
        while stream.next_action() != Action::Wait {
            let events = match guarded(&mut report, &model, threads, &mut decoder, |d| {
                stream.step(d)
            }) {
                Some(events) => {
                    failures = 0;
                    events
                }
                // Retry once with the fresh state, then give the window up
                // and say so in the transcript rather than loop forever.
                None if failures == 0 => {
                    failures += 1;
                    Vec::new()
                }
                None => {
                    failures = 0;
                    stream.abandon("inference failed on this audio")
                }
            };
            if !send_all(&output, events) {
                return report;
            }
            // New input may have arrived during the pass: take it before the
            // next decision, so a slow pass batches it instead of lagging.
            while let Ok(event) = input.try_recv() {
                stream.push(event);
            }
        }
    }
    let events = guarded(&mut report, &model, threads, &mut decoder, |d| {
        stream.finish(d)
    })
    .unwrap_or_else(|| stream.abandon("inference failed on this audio"));
    send_all(&output, events);
    let stats = stream.stats();
    report.passes = stats.passes.load(std::sync::atomic::Ordering::Relaxed);
    report.committed_words = stats
        .committed_words
        .load(std::sync::atomic::Ordering::Relaxed);
    report
}

/// Runs one step with panics caught; on a panic or error the decoding state
/// is replaced, the error logged, and `None` returned.
fn guarded(
    report: &mut WorkerReport,
    model: &Model,
    threads: usize,
    decoder: &mut super::Decoder,
    step: impl FnOnce(&mut super::Decoder) -> Result<Vec<Event>, InferenceError>,
) -> Option<Vec<Event>> {
    let outcome = catch_unwind(AssertUnwindSafe(|| step(decoder)));
    let error = match outcome {
        Ok(Ok(events)) => return Some(events),
        Ok(Err(e)) => {
            report.errors += 1;
            e
        }
        Err(panic) => {
            report.panics += 1;
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            InferenceError::Panic(what)
        }
    };
    tracing::error!("inference failed, continuing with a fresh state: {error}");
    if let Ok(fresh) = model.decoder(threads) {
        *decoder = fresh;
    }
    None
}

fn send_all(output: &Sender<Event>, events: Vec<Event>) -> bool {
    for event in events {
        if output.send(event).is_err() {
            return false;
        }
    }
    true
}
