//! Transcript events: what inference hands to the writer and the live view.
//!
//! This is the one type every floor below the CLI agrees on. It sits beside
//! the pipeline rather than in it: inference produces events, the transcript
//! writer consumes them, neither imports the other.

use serde::{Deserialize, Serialize};

/// Where audio came from. Serialised as the label a reader of the transcript
/// sees on each line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The microphone: "you" in a meeting.
    Mic,
    /// System audio captured as loopback: "them" in a meeting.
    Loopback,
    /// A file fed through the pipeline (`hark transcribe`).
    File,
}

impl Source {
    /// Short label for a transcript line.
    pub fn label(self) -> &'static str {
        match self {
            Source::Mic => "mic",
            Source::Loopback => "loopback",
            Source::File => "file",
        }
    }

    /// The speaker as a meeting user reads it: "you" for the microphone,
    /// "them" for system audio.
    pub fn speaker(self) -> &'static str {
        match self {
            Source::Mic => "you",
            Source::Loopback => "them",
            Source::File => "file",
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// What an event says about its text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A hypothesis that may still change; shown live, not written to files
    /// unless asked.
    Partial,
    /// Committed text: never changes again.
    Final,
    /// Audio that was not captured (device lost, recovery under way) between
    /// `start` and `end`; `text` says why.
    Gap,
}

/// One transcript event. Times are seconds of source audio since the session
/// started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub source: Source,
    pub kind: EventKind,
    /// Start of the audio this event covers, seconds since session start.
    pub start: f64,
    /// End of the audio this event covers, seconds since session start.
    pub end: f64,
    pub text: String,
    /// Wall-clock seconds since the session started at which the event was
    /// emitted (live and paced sessions only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub emitted: Option<f64>,
}

impl Event {
    /// A committed segment.
    pub fn final_text(source: Source, start: f64, end: f64, text: impl Into<String>) -> Self {
        Event {
            source,
            kind: EventKind::Final,
            start,
            end,
            text: text.into(),
            emitted: None,
        }
    }
}
