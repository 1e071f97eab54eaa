//! Inference workers: one thread per source, running the streaming policy
//! over what the VAD sends, and handing events on.
//!
//! Workers of one model take turns on one decoding state
//! ([`Model::shared_decoder`]). A worker receives VAD output on a bounded
//! channel and drains everything that arrived before each pass, so a pass
//! that falls behind takes more audio rather than skipping any. A panic
//! inside inference is caught, reported as an error, and the worker goes on
//! with a fresh state; it never takes the process down.
//!
//! **Load-adaptive** ([`super::load`]): the worker thread is a batch thread
//! ([`super::load::batch_current_thread`]): it never preempts capture or the
//! pump, yet keeps its share against other processes. Before each pass it reads the
//! load (other processes' runnable threads, its own lag) and decodes with the
//! plan [`LoadPolicy`] gives: fewer threads on busy cores, fewer or no
//! partial passes when behind; the plan is published in [`StreamStats`]
//! (status line, metrics) and logged when it changes. A small relay thread
//! in front of the worker passes events on and, when a pause or the
//! utterance's end arrives while a partial pass runs, aborts that pass
//! (whisper.cpp's abort callback): its words would be stale, and the pass
//! that commits should not wait for it. whisper.cpp checks the callback
//! after the encoder and during decoding only, so an abort saves the
//! decoding part of a pass, not its encoder.
//!
//! Not real-time safe.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::engine::{AbortHandle, Model, SharedDecoder};
use super::load::{batch_current_thread, LoadMeter, LoadPolicy};
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
    /// and ends. `threads` is the most the worker decodes with.
    pub fn spawn(
        model: &Model,
        threads: usize,
        config: StreamConfig,
        clock: Instant,
        input: Receiver<VadEvent>,
        output: Sender<Event>,
    ) -> Result<Worker, InferenceError> {
        let decoder = model.shared_decoder(threads)?;
        let abort = lock(&decoder).abort_handle();
        let stream = Stream::new(config, clock);
        let stats = stream.stats();
        let source = stream.source();
        let partial_running = Arc::new(AtomicBool::new(false));
        let (to_worker, from_relay) = crossbeam_channel::bounded(input.capacity().unwrap_or(64));
        let running = Arc::clone(&partial_running);
        std::thread::Builder::new()
            .name(format!("hark-relay-{source}"))
            .spawn(move || relay(input, to_worker, &running, &abort))
            .map_err(|e| InferenceError::State(format!("cannot start relay thread: {e}")))?;
        let work = Work {
            model: model.clone(),
            policy: LoadPolicy {
                max_threads: threads.max(1),
                ..LoadPolicy::default()
            },
            decoder,
            partial_running,
        };
        let handle = std::thread::Builder::new()
            .name(format!("hark-infer-{source}"))
            .spawn(move || work.run(stream, from_relay, output))
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

/// Passes events on to the worker; aborts the partial pass in flight when
/// one arrives that makes it stale (sent first, so the worker sees it when
/// the aborted pass returns). Ends when the pump closes its channel.
fn relay(
    input: Receiver<VadEvent>,
    output: Sender<VadEvent>,
    partial_running: &AtomicBool,
    abort: &AbortHandle,
) {
    for event in input {
        let stale = matches!(event, VadEvent::Pause { .. } | VadEvent::SpeechEnd { .. });
        if output.send(event).is_err() {
            return;
        }
        if stale && partial_running.load(Ordering::Acquire) {
            abort.abort();
        }
    }
}

fn lock(decoder: &SharedDecoder) -> MutexGuard<'_, super::Decoder> {
    // A panic is caught inside the lock (`guarded`), so poisoning only
    // means a panic escaped elsewhere; the state is replaced on errors.
    decoder.lock().unwrap_or_else(|e| e.into_inner())
}

/// What the worker thread owns.
struct Work {
    model: Model,
    policy: LoadPolicy,
    decoder: SharedDecoder,
    partial_running: Arc<AtomicBool>,
}

impl Work {
    fn run(
        self,
        mut stream: Stream,
        input: Receiver<VadEvent>,
        output: Sender<Event>,
    ) -> WorkerReport {
        if !batch_current_thread() {
            tracing::debug!("could not make the inference thread a batch thread");
        }
        let stats = stream.stats();
        let mut meter = LoadMeter::new();
        let mut plan = self.policy.nominal();
        stats.set_plan(plan.threads, None);
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
                let next = self.policy.decide(meter.signal(stream.lag_s()), &plan);
                if next.degraded != plan.degraded {
                    match next.degraded {
                        Some(why) => {
                            tracing::info!(source = %stream.source(), threads = next.threads, "inference degraded: {}", why.label())
                        }
                        None => {
                            tracing::info!(source = %stream.source(), "inference back to nominal")
                        }
                    }
                }
                plan = next;
                stats.set_plan(plan.threads, plan.degraded);
                stream.set_partials(plan.partials);
                if stream.next_action() == Action::Wait {
                    break;
                }
                if plan.degraded.is_some() {
                    stats.degraded_passes.fetch_add(1, Ordering::Relaxed);
                }
                let events = match self.step(&mut report, &mut stream, plan.threads) {
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
        let events = {
            let mut decoder = lock(&self.decoder);
            decoder.set_threads(self.policy.max_threads);
            decoder.set_abortable(false);
            guarded(&mut report, &self.model, &mut decoder, |d| stream.finish(d))
        }
        .unwrap_or_else(|| stream.abandon("inference failed on this audio"));
        send_all(&output, events);
        report.passes = stats.passes.load(Ordering::Relaxed);
        report.committed_words = stats.committed_words.load(Ordering::Relaxed);
        report
    }

    /// One step of the policy on the shared state, with `threads`; a partial
    /// pass is made abortable for the relay.
    fn step(
        &self,
        report: &mut WorkerReport,
        stream: &mut Stream,
        threads: usize,
    ) -> Option<Vec<Event>> {
        let mut decoder = lock(&self.decoder);
        let partial = stream.next_pass_is_partial();
        decoder.set_threads(threads);
        decoder.set_abortable(partial);
        self.partial_running.store(partial, Ordering::Release);
        let events = guarded(report, &self.model, &mut decoder, |d| stream.step(d));
        self.partial_running.store(false, Ordering::Release);
        events
    }
}

/// Runs one step with panics caught; on a panic or error the decoding state
/// is replaced, the error logged, and `None` returned.
fn guarded(
    report: &mut WorkerReport,
    model: &Model,
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
    // The fresh state keeps the old one's abort flag, which the relays hold.
    let abort = decoder.abort_handle();
    if let Ok(fresh) = model.decoder(decoder.threads()) {
        *decoder = fresh.with_abort(abort);
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
