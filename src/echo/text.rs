//! The second line of defence, on the event stream: a microphone utterance
//! whose words agree with a loopback utterance of the same moment is the far
//! end again, not the local talker, and is dropped (and counted).
//!
//! A final mic event is held until the loopback has reached past its end
//! (or [`FilterConfig::hold`] has passed), then compared with the loopback
//! finals that overlap it in time and with the loopback's newest partial
//! (a long far-end utterance may still be open when the mic's final is
//! decided: a CI run let "This is my" through, inside the far end's "My
//! name is Bruce ...", whose final came later). It is echo when most of its words
//! ([`FilterConfig::echo_share`]) occur in those loopback utterances and it
//! has at most [`FilterConfig::own_words`] words the far end did not say; a
//! mic utterance with more words of its own (double talk, the local talker
//! speaking over the far end) is kept whole. Partials pass straight through;
//! their finals decide.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::EchoStats;
use crate::event::{Event, EventKind, Source};
use crate::score::normalize;

/// When a mic utterance is echo.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    /// Share of the mic utterance's words found in the overlapping loopback
    /// utterances for it to be echo.
    pub echo_share: f64,
    /// Most words of its own an echo utterance may have (recognition noise).
    pub own_words: usize,
    /// Slack around the loopback utterance's times: the echo arrives late
    /// and the two workers cut utterances at different places.
    pub slack_s: f64,
    /// The longest a mic final waits for the loopback to catch up.
    pub hold: Duration,
}

impl Default for FilterConfig {
    fn default() -> Self {
        FilterConfig {
            echo_share: 0.6,
            own_words: 2,
            slack_s: 1.0,
            hold: Duration::from_secs(4),
        }
    }
}

/// Filters the events of both sources before the view and the writer.
pub struct EchoFilter {
    config: FilterConfig,
    stats: Arc<EchoStats>,
    /// Loopback finals of the last while: (start, end, words).
    loopback: VecDeque<(f64, f64, Vec<String>)>,
    /// End of the newest loopback final or partial seen.
    loopback_until: f64,
    /// The loopback's newest partial since its last final: (start, end,
    /// words).
    partial: Option<(f64, f64, Vec<String>)>,
    /// Mic finals waiting for the loopback, with when they arrived.
    held: VecDeque<(Event, Instant)>,
}

impl EchoFilter {
    pub fn new(config: FilterConfig, stats: Arc<EchoStats>) -> EchoFilter {
        EchoFilter {
            config,
            stats,
            loopback: VecDeque::new(),
            loopback_until: f64::NEG_INFINITY,
            partial: None,
            held: VecDeque::new(),
        }
    }

    /// Takes one event; appends to `out` what may go on now, in order.
    pub fn push(&mut self, event: Event, now: Instant, out: &mut Vec<Event>) {
        match (event.source, event.kind) {
            (Source::Loopback, kind) => {
                if matches!(kind, EventKind::Final | EventKind::Partial) {
                    self.loopback_until = self.loopback_until.max(event.end);
                }
                match kind {
                    EventKind::Final => {
                        self.partial = None;
                        self.loopback
                            .push_back((event.start, event.end, normalize(&event.text)));
                    }
                    EventKind::Partial => {
                        self.partial = Some((event.start, event.end, normalize(&event.text)));
                    }
                    EventKind::Gap => {}
                }
                out.push(event);
            }
            (Source::Mic, EventKind::Final) => self.held.push_back((event, now)),
            _ => out.push(event),
        }
        self.release(now, false, out);
    }

    /// Releases what waited long enough; call now and then (e.g. on the
    /// status tick).
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Event>) {
        self.release(now, false, out);
    }

    /// At the end of the session: decides on everything still held.
    pub fn finish(&mut self, out: &mut Vec<Event>) {
        self.release(Instant::now(), true, out);
    }

    fn release(&mut self, now: Instant, all: bool, out: &mut Vec<Event>) {
        while let Some((event, arrived)) = self.held.front() {
            let caught_up = self.loopback_until >= event.end + self.config.slack_s;
            let waited = now.duration_since(*arrived) >= self.config.hold;
            if !(all || caught_up || waited) {
                break;
            }
            let Some((event, _)) = self.held.pop_front() else {
                break;
            };
            if !self.is_echo(&event) {
                out.push(event);
            }
        }
        // Loopback utterances no held or future mic final can overlap.
        let horizon = self
            .held
            .front()
            .map_or(self.loopback_until, |(e, _)| e.start)
            - 60.0;
        while self
            .loopback
            .front()
            .is_some_and(|(_, end, _)| *end < horizon)
        {
            self.loopback.pop_front();
        }
    }

    /// Counts and says whether the mic final is the far end again.
    fn is_echo(&self, event: &Event) -> bool {
        let words = normalize(&event.text);
        if words.is_empty() {
            return false;
        }
        let slack = self.config.slack_s;
        let far: HashSet<&str> = self
            .loopback
            .iter()
            .chain(self.partial.iter())
            .filter(|(start, end, _)| *start - slack <= event.end && event.start <= *end + slack)
            .flat_map(|(_, _, w)| w.iter().map(String::as_str))
            .collect();
        if far.is_empty() {
            return false;
        }
        let shared = words.iter().filter(|w| far.contains(w.as_str())).count();
        let own = words.len() - shared;
        let echo = shared as f64 >= self.config.echo_share * words.len() as f64
            && own <= self.config.own_words;
        if echo {
            self.stats
                .suppressed_utterances
                .fetch_add(1, Ordering::Relaxed);
            self.stats
                .suppressed_words
                .fetch_add(words.len() as u64, Ordering::Relaxed);
            tracing::debug!(text = %event.text, "mic utterance dropped as echo");
        } else {
            self.stats.kept_overlapping.fetch_add(1, Ordering::Relaxed);
        }
        echo
    }
}
