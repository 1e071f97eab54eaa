//! The writer: one I/O thread that owns the transcript file, fed by a
//! bounded channel. Senders never write, flush or wait on the disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender};

use super::error::WriteError;
use super::format::{Format, Formatter};
use super::metrics::{Shared, WriterMetrics};
use super::sink::{emergency_candidates, Sink};
use super::target::Target;
use crate::event::Event;

/// Write when this many bytes are waiting.
pub const BATCH_BYTES: usize = 32 * 1024;
/// Write when the oldest waiting byte is this old.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Events the channel holds before `try_send` gives them back (about ten
/// minutes of speech at a few events per second per source).
pub const QUEUE_CAPACITY_EVENTS: usize = 4096;
/// How often [`Writer::finish_within`] checks whether to give up.
const FINISH_POLL: Duration = Duration::from_millis(20);

/// How to write a transcript.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    pub path: PathBuf,
    pub format: Format,
    /// Also write partial events (txt and jsonl only).
    pub include_partials: bool,
    /// First emergency file to try if `path` cannot be written; after it,
    /// `name.emergency.ext` beside `path`, then the temp dir.
    pub emergency_path: Option<PathBuf>,
    pub batch_bytes: usize,
    pub flush_interval: Duration,
    pub queue_capacity: usize,
}

impl WriterConfig {
    /// The defaults: 32 KB batches, one-second flushes, no partials.
    pub fn new(path: impl Into<PathBuf>, format: Format) -> Self {
        WriterConfig {
            path: path.into(),
            format,
            include_partials: false,
            emergency_path: None,
            batch_bytes: BATCH_BYTES,
            flush_interval: FLUSH_INTERVAL,
            queue_capacity: QUEUE_CAPACITY_EVENTS,
        }
    }
}

enum Message {
    Event(Event),
    Finish,
}

/// Why `try_send` gave an event back.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The queue is at its bound (the disk is slow or stalled).
    #[error("transcript queue is full")]
    Full(Event),
    /// The writer has finished.
    #[error("transcript writer has finished")]
    Closed(Event),
}

impl SendError {
    /// The event that was not sent.
    pub fn into_event(self) -> Event {
        match self {
            SendError::Full(e) | SendError::Closed(e) => e,
        }
    }
}

/// Hands events to the writer. Cheap to clone: one per worker.
#[derive(Debug, Clone)]
pub struct EventSender {
    tx: Sender<Message>,
    shared: Arc<Shared>,
    /// Events taken into the queue (written, skipped or still waiting).
    accepted: Arc<AtomicU64>,
}

impl EventSender {
    /// Queues an event without ever blocking; gives it back if the queue is
    /// full or the writer has finished. Not real-time safe (it may wake the
    /// writer thread), but it never waits on the disk.
    pub fn try_send(&self, event: Event) -> Result<(), SendError> {
        match self.tx.try_send(Message::Event(event)) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .queue_peak
                    .fetch_max(self.tx.len(), Ordering::Relaxed);
                Ok(())
            }
            Err(crossbeam_channel::TrySendError::Full(Message::Event(e))) => {
                self.shared.events_rejected.fetch_add(1, Ordering::Relaxed);
                Err(SendError::Full(e))
            }
            Err(crossbeam_channel::TrySendError::Disconnected(Message::Event(e))) => {
                Err(SendError::Closed(e))
            }
            Err(_) => unreachable!("only events are sent here"),
        }
    }

    /// Queues an event, waiting for room if the queue is full (offline use).
    /// Not real-time safe.
    pub fn send(&self, event: Event) -> Result<(), SendError> {
        match self.tx.send(Message::Event(event)) {
            Ok(()) => {
                self.accepted.fetch_add(1, Ordering::Relaxed);
                self.shared
                    .queue_peak
                    .fetch_max(self.tx.len(), Ordering::Relaxed);
                Ok(())
            }
            Err(crossbeam_channel::SendError(Message::Event(e))) => Err(SendError::Closed(e)),
            Err(_) => unreachable!("only events are sent here"),
        }
    }
}

/// What a finished writer did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WriterReport {
    /// The counters at the end; `emergency_path` says where the transcript
    /// continued if the primary file failed.
    pub metrics: WriterMetrics,
    /// Bytes of a torn tail cut from the existing file on open.
    pub torn_bytes_cut: usize,
}

/// Reads a writer's counters without owning it (for the monitor, which may
/// outlive nothing: it is stopped before the writer finishes).
#[derive(Debug, Clone)]
pub struct WriterWatch {
    tx: Sender<Message>,
    shared: Arc<Shared>,
    path: PathBuf,
    queue_capacity: usize,
}

impl WriterWatch {
    /// A snapshot of the counters.
    pub fn metrics(&self) -> WriterMetrics {
        self.shared
            .snapshot(self.path.clone(), self.tx.len(), self.queue_capacity)
    }
}

/// A running transcript writer. Dropping it finishes it (errors are logged).
#[derive(Debug)]
pub struct Writer {
    sender: EventSender,
    shared: Arc<Shared>,
    path: PathBuf,
    queue_capacity: usize,
    torn_bytes_cut: usize,
    thread: Option<JoinHandle<Result<(), WriteError>>>,
}

impl Writer {
    /// Opens (or creates) the output file, cuts a torn tail left by a crash,
    /// and starts the I/O thread. A bad path fails here, before any capture
    /// starts, with an error naming it. Not real-time safe.
    pub fn spawn(config: WriterConfig) -> Result<Writer, WriteError> {
        let opened = Target::open(&config.path, config.format)?;
        let mut formatter = Formatter::new(config.format).with_partials(config.include_partials);
        formatter.continue_after_cue(opened.last_cue);
        let shared = Arc::new(Shared::new());
        let candidates = emergency_candidates(&config.path, config.emergency_path.as_deref());
        let sink = Sink::new(
            opened.target,
            config.format,
            candidates,
            config.batch_bytes.max(1),
            config.flush_interval,
            shared.clone(),
        );
        let (tx, rx) = crossbeam_channel::bounded(config.queue_capacity.max(1));
        let path = config.path.clone();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hark-writer".into())
            .spawn(move || run(rx, sink, formatter, thread_shared, path))
            .map_err(WriteError::Thread)?;
        Ok(Writer {
            sender: EventSender {
                tx,
                shared: shared.clone(),
                accepted: Arc::default(),
            },
            shared,
            path: config.path,
            queue_capacity: config.queue_capacity.max(1),
            torn_bytes_cut: opened.torn_bytes,
            thread: Some(thread),
        })
    }

    /// A sender for a worker.
    pub fn sender(&self) -> EventSender {
        self.sender.clone()
    }

    /// Bytes of a torn tail cut from the existing file on open.
    pub fn torn_bytes_cut(&self) -> usize {
        self.torn_bytes_cut
    }

    /// A snapshot of the counters.
    pub fn metrics(&self) -> WriterMetrics {
        self.watch().metrics()
    }

    /// A handle on the counters that does not keep the writer alive.
    pub fn watch(&self) -> WriterWatch {
        WriterWatch {
            tx: self.sender.tx.clone(),
            shared: Arc::clone(&self.shared),
            path: self.path.clone(),
            queue_capacity: self.queue_capacity,
        }
    }

    /// Events taken into the queue that are not (yet) in the file: queued,
    /// batched, or stuck in a write that does not return.
    pub fn unwritten(&self) -> u64 {
        let done = self.shared.events_written.load(Ordering::Acquire)
            + self.shared.events_skipped.load(Ordering::Acquire);
        self.sender
            .accepted
            .load(Ordering::Acquire)
            .saturating_sub(done)
    }

    /// Like [`Writer::finish`], but stops waiting once `give_up()` says so
    /// (it is asked every 20 ms): a target that blocks (a pipe nobody reads,
    /// a hung network mount) then ends in [`WriteError::Stalled`] with the
    /// count of events not written, and the I/O thread is left behind (it
    /// ends with the process). Not real-time safe.
    pub fn finish_within(
        mut self,
        mut give_up: impl FnMut() -> bool,
    ) -> Result<WriterReport, WriteError> {
        let mut finish = Message::Finish;
        loop {
            match self.sender.tx.send_timeout(finish, FINISH_POLL) {
                Ok(()) | Err(SendTimeoutError::Disconnected(_)) => break,
                Err(SendTimeoutError::Timeout(message)) if !give_up() => finish = message,
                Err(SendTimeoutError::Timeout(_)) => return Err(self.stalled()),
            }
        }
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) {
            if give_up() {
                return Err(self.stalled());
            }
            std::thread::sleep(FINISH_POLL);
        }
        self.finish()
    }

    /// Queues an event, waiting while the queue is full (offline use: the
    /// producer slows to the disk's pace, nothing is dropped). Stops waiting
    /// once `give_up()` says so (it is asked every 20 ms while waiting): a
    /// target that blocks then ends in [`WriteError::Stalled`] counting the
    /// events not written, this one included, instead of hanging. Not
    /// real-time safe.
    pub fn send_within(
        &self,
        event: Event,
        mut give_up: impl FnMut() -> bool,
    ) -> Result<(), WriteError> {
        let mut message = Message::Event(event);
        loop {
            match self.sender.tx.send_timeout(message, FINISH_POLL) {
                Ok(()) => {
                    self.sender.accepted.fetch_add(1, Ordering::Relaxed);
                    self.shared
                        .queue_peak
                        .fetch_max(self.sender.tx.len(), Ordering::Relaxed);
                    return Ok(());
                }
                Err(SendTimeoutError::Timeout(back)) if !give_up() => message = back,
                Err(SendTimeoutError::Timeout(_)) => {
                    return Err(WriteError::Stalled {
                        path: self.path.clone(),
                        events: self.unwritten() + 1,
                    })
                }
                // The I/O thread ended before it was asked to: it panicked.
                Err(SendTimeoutError::Disconnected(_)) => {
                    return Err(WriteError::Panicked {
                        path: self.path.clone(),
                    })
                }
            }
        }
    }

    /// Gives up on the I/O thread (it stays blocked) and says what is lost.
    fn stalled(&mut self) -> WriteError {
        drop(self.thread.take());
        WriteError::Stalled {
            path: self.path.clone(),
            events: self.unwritten(),
        }
    }

    /// Writes everything queued so far, syncs, and stops the I/O thread.
    /// Events sent after this are given back as `Closed`. Not real-time safe.
    pub fn finish(mut self) -> Result<WriterReport, WriteError> {
        self.stop()?;
        Ok(WriterReport {
            metrics: self.metrics(),
            torn_bytes_cut: self.torn_bytes_cut,
        })
    }

    fn stop(&mut self) -> Result<(), WriteError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.sender.tx.send(Message::Finish);
        thread.join().map_err(|_| WriteError::Panicked {
            path: self.path.clone(),
        })?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!("{e}");
        }
    }
}

/// The I/O thread: formats events, batches them, writes when due.
fn run(
    rx: Receiver<Message>,
    mut sink: Sink,
    mut formatter: Formatter,
    shared: Arc<Shared>,
    path: PathBuf,
) -> Result<(), WriteError> {
    let mut text = String::new();
    let mut accept = |event: Event, sink: &mut Sink| {
        text.clear();
        if formatter.event(&event, &mut text) {
            sink.push(text.as_bytes().to_vec(), Instant::now());
        } else {
            shared.events_skipped.fetch_add(1, Ordering::Relaxed);
        }
    };
    loop {
        let message = match sink.deadline() {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(deadline) => rx.recv_deadline(deadline),
        };
        match message {
            Ok(Message::Event(event)) => accept(event, &mut sink),
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Message::Finish) | Err(RecvTimeoutError::Disconnected) => break,
        }
        if sink.due(Instant::now()) {
            sink.flush();
        }
    }
    // Anything a sender managed to queue behind the finish request.
    while let Ok(Message::Event(event)) = rx.try_recv() {
        accept(event, &mut sink);
    }
    drop(rx);
    sink.flush();
    let left = sink.pending_events();
    if left > 0 {
        return Err(WriteError::Unwritable {
            path,
            events: left,
            last_error: shared.last_error().unwrap_or_default(),
        });
    }
    Ok(())
}
