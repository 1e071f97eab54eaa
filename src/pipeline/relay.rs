//! The one writer of the pipeline's event channel: a thread that takes the
//! workers' events and the pumps' gap events and hands them on, per source
//! in timeline order.
//!
//! Two threads produce a source's events: its worker (text, and a gap when
//! inference gives a window up) and its pump (a gap when the device was
//! lost). The pump sends a gap as soon as the new stream runs, while the
//! worker may still be decoding speech that ended before it, so arrival
//! order says nothing. The relay holds each pump gap until the first
//! worker event of that source whose audio starts at or after the gap's
//! start (everything the worker made of audio before the gap has then been
//! handed on, since a worker emits in timeline order), or until the workers
//! have ended. Guarantee: no text event of a source follows a gap event of
//! that source whose `start` is after the text's `start`.
//!
//! Not real-time safe.

use std::collections::VecDeque;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use crate::event::Event;

/// The running relay.
pub(super) struct Relay {
    thread: JoinHandle<()>,
}

impl Relay {
    /// Starts the thread: `text` from the workers, `gaps` from the pumps,
    /// both into `out`. It ends once every worker has ended.
    pub fn spawn(
        text: Receiver<Event>,
        gaps: Receiver<Event>,
        out: Sender<Event>,
    ) -> std::io::Result<Relay> {
        let thread = std::thread::Builder::new()
            .name("hark-relay".into())
            .spawn(move || run(&text, &gaps, &out))?;
        Ok(Relay { thread })
    }

    /// Waits for the relay to hand on the last event.
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

fn run(text: &Receiver<Event>, gaps: &Receiver<Event>, out: &Sender<Event>) {
    let mut order = Order::default();
    let never = crossbeam_channel::never();
    let mut gaps_open = true;
    loop {
        crossbeam_channel::select! {
            recv(text) -> event => match event {
                Ok(event) => {
                    // A gap sent before this event's audio reached the
                    // worker is in `gaps` by now: take it first.
                    order.hold_all(gaps.try_iter());
                    order.pass(event, &mut |e| {
                        let _ = out.send(e);
                    });
                }
                Err(_) => break,
            },
            recv(if gaps_open { gaps } else { &never }) -> gap => match gap {
                Ok(gap) => order.hold(gap),
                Err(_) => gaps_open = false,
            },
        }
    }
    order.hold_all(gaps.try_iter());
    order.release(&mut |e| {
        let _ = out.send(e);
    });
}

/// The ordering rule, apart from the threads.
#[derive(Default)]
pub(super) struct Order {
    held: VecDeque<Event>,
}

impl Order {
    /// Holds a pump's gap event.
    pub fn hold(&mut self, gap: Event) {
        self.held.push_back(gap);
    }

    pub fn hold_all(&mut self, gaps: impl Iterator<Item = Event>) {
        for gap in gaps {
            self.hold(gap);
        }
    }

    /// Hands on a worker event, after the held gaps of its source that start
    /// at or before it.
    pub fn pass(&mut self, event: Event, out: &mut impl FnMut(Event)) {
        let mut i = 0;
        while i < self.held.len() {
            let gap = &self.held[i];
            if gap.source == event.source && event.start >= gap.start {
                if let Some(gap) = self.held.remove(i) {
                    out(gap);
                }
            } else {
                i += 1;
            }
        }
        out(event);
    }

    /// Hands on every held gap (the workers have ended).
    pub fn release(&mut self, out: &mut impl FnMut(Event)) {
        for gap in self.held.drain(..) {
            out(gap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventKind, Source};

    fn event(source: Source, kind: EventKind, start: f64, end: f64) -> Event {
        Event {
            source,
            kind,
            start,
            end,
            text: format!("{kind:?} {start}"),
            emitted: None,
        }
    }

    #[test]
    fn a_gap_waits_for_the_text_before_it() {
        let mut order = Order::default();
        let mut out = Vec::new();
        // The pump's gap (10-13 s) arrives while the worker still decodes
        // the phrase that ended at 9.8 s.
        order.hold(event(Source::Mic, EventKind::Gap, 10.0, 13.0));
        let mut push = |e| out.push(e);
        order.pass(event(Source::Mic, EventKind::Partial, 8.0, 9.5), &mut push);
        order.pass(event(Source::Mic, EventKind::Final, 8.0, 9.8), &mut push);
        // The other source is not held up by this source's gap.
        order.pass(
            event(Source::Loopback, EventKind::Final, 12.0, 12.5),
            &mut push,
        );
        order.pass(event(Source::Mic, EventKind::Final, 13.5, 15.0), &mut push);
        let kinds: Vec<(Source, EventKind, f64)> =
            out.iter().map(|e| (e.source, e.kind, e.start)).collect();
        assert_eq!(
            kinds,
            vec![
                (Source::Mic, EventKind::Partial, 8.0),
                (Source::Mic, EventKind::Final, 8.0),
                (Source::Loopback, EventKind::Final, 12.0),
                (Source::Mic, EventKind::Gap, 10.0),
                (Source::Mic, EventKind::Final, 13.5),
            ]
        );
    }

    #[test]
    fn held_gaps_are_released_when_the_workers_end() {
        let mut order = Order::default();
        let mut out = Vec::new();
        order.hold(event(Source::Loopback, EventKind::Gap, 4.0, 6.0));
        order.pass(
            event(Source::Loopback, EventKind::Final, 1.0, 3.9),
            &mut |e| out.push(e),
        );
        assert_eq!(out.len(), 1);
        order.release(&mut |e| out.push(e));
        assert_eq!(out[1].kind, EventKind::Gap);
    }

    #[test]
    fn the_relay_thread_orders_what_arrives_out_of_order() {
        let (text_tx, text) = crossbeam_channel::unbounded();
        let (gap_tx, gaps) = crossbeam_channel::unbounded();
        let (out, all) = crossbeam_channel::unbounded();
        let relay = Relay::spawn(text, gaps, out).unwrap();
        gap_tx
            .send(event(Source::Mic, EventKind::Gap, 10.0, 13.0))
            .unwrap();
        text_tx
            .send(event(Source::Mic, EventKind::Final, 8.0, 9.8))
            .unwrap();
        text_tx
            .send(event(Source::Mic, EventKind::Final, 13.5, 15.0))
            .unwrap();
        drop(text_tx);
        relay.join();
        drop(gap_tx);
        let starts: Vec<f64> = all.try_iter().map(|e| e.start).collect();
        assert_eq!(starts, vec![8.0, 10.0, 13.5]);
    }
}
