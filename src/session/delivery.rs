//! Where a session's events go: through the echo filter (when on), into the
//! transcript writer's queue without ever blocking, and back to the caller.
//!
//! Not real-time safe.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::echo::{EchoFilter, EchoStats, FilterConfig};
use crate::event::Event;
use crate::transcript::{EventSender, SendError, WriteError, Writer, WriterReport};

/// Events held for a full writer queue before the oldest are given up
/// (counted): about a day of speech behind a queue of ten minutes.
pub const BACKLOG_LIMIT_EVENTS: usize = 65_536;
/// How often the backlog is retried while stopping.
const RETRY: Duration = Duration::from_millis(20);

pub(super) struct Delivery {
    writer: Option<Writer>,
    sender: Option<EventSender>,
    filter: Option<EchoFilter>,
    released: Vec<Event>,
    /// Events the writer's queue refused, in order; sent before newer ones.
    backlog: VecDeque<Event>,
    /// Events given up because the backlog was at its limit.
    dropped: u64,
}

impl Delivery {
    pub fn new(writer: Option<Writer>, echo: Option<Arc<EchoStats>>) -> Delivery {
        Delivery {
            sender: writer.as_ref().map(Writer::sender),
            writer,
            filter: echo.map(|stats| EchoFilter::new(FilterConfig::default(), stats)),
            released: Vec::new(),
            backlog: VecDeque::new(),
            dropped: 0,
        }
    }

    pub fn backlog(&self) -> usize {
        self.backlog.len()
    }

    /// One event from the pipeline.
    pub fn push(&mut self, event: Event, out: &mut Vec<Event>) {
        match &mut self.filter {
            Some(filter) => {
                filter.push(event, Instant::now(), &mut self.released);
                self.deliver_released(out);
            }
            None => self.deliver(event, out),
        }
    }

    /// Releases what the echo filter held long enough; retries the backlog.
    pub fn tick(&mut self, out: &mut Vec<Event>) {
        if let Some(filter) = &mut self.filter {
            filter.tick(Instant::now(), &mut self.released);
            self.deliver_released(out);
        }
        self.retry();
    }

    /// Releases everything the echo filter still holds.
    pub fn finish_filter(&mut self, out: &mut Vec<Event>) {
        if let Some(filter) = &mut self.filter {
            filter.finish(&mut self.released);
            self.deliver_released(out);
        }
    }

    fn deliver_released(&mut self, out: &mut Vec<Event>) {
        let released = std::mem::take(&mut self.released);
        for event in released {
            self.deliver(event, out);
        }
    }

    fn deliver(&mut self, event: Event, out: &mut Vec<Event>) {
        if self.sender.is_some() {
            self.backlog.push_back(event.clone());
            self.retry();
            if self.backlog.len() > BACKLOG_LIMIT_EVENTS {
                self.backlog.pop_front();
                self.dropped += 1;
            }
        }
        out.push(event);
    }

    /// Moves the backlog into the writer's queue while it takes events.
    fn retry(&mut self) {
        let Some(sender) = &self.sender else {
            return;
        };
        while let Some(event) = self.backlog.pop_front() {
            match sender.try_send(event) {
                Ok(()) => {}
                Err(SendError::Full(event)) => {
                    self.backlog.push_front(event);
                    return;
                }
                Err(SendError::Closed(_)) => {
                    tracing::error!("the transcript writer stopped early");
                    self.dropped += 1 + self.backlog.len() as u64;
                    self.backlog.clear();
                    self.sender = None;
                    return;
                }
            }
        }
    }

    /// Queues the backlog, then finishes the writer; both stop waiting when
    /// `give_up()` says so. Events that never reached the file are counted
    /// in the error.
    pub fn finish(
        &mut self,
        mut give_up: impl FnMut() -> bool,
    ) -> Option<Result<WriterReport, WriteError>> {
        let writer = self.writer.take()?;
        loop {
            self.retry();
            if self.backlog.is_empty() || self.sender.is_none() || give_up() {
                break;
            }
            std::thread::sleep(RETRY);
        }
        self.sender = None;
        let lost = self.dropped + self.backlog.len() as u64;
        let mut result = writer.finish_within(give_up);
        match &mut result {
            Err(WriteError::Stalled { events, .. }) => *events += lost,
            Ok(report) if lost > 0 => {
                return Some(Err(WriteError::Stalled {
                    path: report.metrics.path.clone(),
                    events: lost,
                }))
            }
            _ => {}
        }
        Some(result)
    }
}
