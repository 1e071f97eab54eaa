//! Transcript file formats: turning [`Event`]s into text, one record each.
//!
//! Usable without the writer: `hark transcribe` prints to stdout through a
//! [`Formatter`]. Every record ends with its format's terminator
//! ([`Format::record_terminator`]), which is how a torn tail is recognised
//! after a crash.
//!
//! What each format writes:
//!
//! | format | final                                | partial (only if asked)         | gap                                  |
//! |--------|--------------------------------------|---------------------------------|--------------------------------------|
//! | txt    | `[00:00:01.230 --> 00:00:03.400] you: text` | same line, `you (partial):` | `[.. --> ..] -- gap (mic): why --`   |
//! | jsonl  | the event as one JSON object a line  | same, `"kind":"partial"`        | same, `"kind":"gap"`                 |
//! | srt    | a numbered cue, `you: text`          | never                           | skipped (SRT has no comments)        |
//! | vtt    | a cue, `<v you>text`                 | never                           | a `NOTE` block (a comment, no cue)   |
//!
//! Text is made safe for its format: line breaks become spaces in txt, srt
//! and vtt (a blank line would end a cue), `-->` is broken up in srt/vtt cue
//! text, and `&`, `<`, `>` are escaped in vtt.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;

use crate::event::{Event, EventKind};

/// The header a WebVTT file starts with; written only into a new or empty file.
pub const VTT_HEADER: &str = "WEBVTT\n\n";

/// A transcript file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text, one line per event with times and speaker.
    Txt,
    /// JSON Lines: one event object per line.
    Jsonl,
    /// SubRip subtitles: committed text only, numbered cues.
    Srt,
    /// WebVTT subtitles: committed text only.
    Vtt,
}

impl Format {
    /// Every format, in the order `--help` lists them.
    pub const ALL: [Format; 4] = [Format::Txt, Format::Jsonl, Format::Srt, Format::Vtt];

    /// The name used on the command line and as the file extension.
    pub fn name(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Jsonl => "jsonl",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
        }
    }

    /// The format a path's extension names, if any (`.txt`, `.jsonl`, `.srt`, `.vtt`).
    pub fn from_path(path: &std::path::Path) -> Option<Format> {
        let ext = path.extension()?.to_str()?;
        ext.to_ascii_lowercase().parse().ok()
    }

    /// The bytes every record of this format ends with: a newline for line
    /// formats, a blank line for subtitle cues (and the VTT header).
    pub fn record_terminator(self) -> &'static str {
        match self {
            Format::Txt | Format::Jsonl => "\n",
            Format::Srt | Format::Vtt => "\n\n",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A format name that is not one of txt, jsonl, srt, vtt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown transcript format {0:?}: expected one of txt, jsonl, srt, vtt")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| UnknownFormat(s.to_string()))
    }
}

/// Serialises events in one format. Keeps the SRT cue counter, so one
/// formatter must see every event of a file, in order.
#[derive(Debug, Clone)]
pub struct Formatter {
    format: Format,
    include_partials: bool,
    next_cue: u64,
}

impl Formatter {
    /// A formatter that skips partial events and numbers SRT cues from 1.
    pub fn new(format: Format) -> Self {
        Formatter {
            format,
            include_partials: false,
            next_cue: 1,
        }
    }

    /// Also write partial events (txt and jsonl only; srt/vtt never do).
    pub fn with_partials(mut self, include: bool) -> Self {
        self.include_partials = include;
        self
    }

    /// Continue SRT numbering after cue `last` (as read from an existing file).
    pub fn continue_after_cue(&mut self, last: u64) {
        self.next_cue = last + 1;
    }

    /// The number the next SRT cue will get.
    pub fn next_cue(&self) -> u64 {
        self.next_cue
    }

    pub fn format(&self) -> Format {
        self.format
    }

    /// Appends the file header: `WEBVTT` and a blank line for VTT, nothing
    /// for the others. Call only for a new or empty file.
    pub fn header(&self, out: &mut String) {
        if self.format == Format::Vtt {
            out.push_str(VTT_HEADER);
        }
    }

    /// Appends `event` as one whole record to `out`. Returns false (and
    /// appends nothing) if this format skips the event.
    pub fn event(&mut self, event: &Event, out: &mut String) -> bool {
        if event.kind == EventKind::Partial && !self.writes_partials() {
            return false;
        }
        match self.format {
            Format::Txt => txt(event, out),
            Format::Jsonl => jsonl(event, out),
            Format::Srt => {
                if event.kind == EventKind::Gap {
                    return false;
                }
                let _ = write!(
                    out,
                    "{}\n{} --> {}\n{}: {}\n\n",
                    self.next_cue,
                    Clock(event.start, ','),
                    Clock(event.end, ','),
                    event.source.speaker(),
                    cue_text(&event.text)
                );
                self.next_cue += 1;
            }
            Format::Vtt => vtt(event, out),
        }
        true
    }

    fn writes_partials(&self) -> bool {
        self.include_partials && matches!(self.format, Format::Txt | Format::Jsonl)
    }
}

fn txt(event: &Event, out: &mut String) {
    let start = Clock(event.start, '.');
    let end = Clock(event.end, '.');
    let text = one_line(&event.text);
    let who = event.source.speaker();
    let _ = match event.kind {
        EventKind::Final => writeln!(out, "[{start} --> {end}] {who}: {text}"),
        EventKind::Partial => writeln!(out, "[{start} --> {end}] {who} (partial): {text}"),
        EventKind::Gap => writeln!(
            out,
            "[{start} --> {end}] -- gap ({}): {text} --",
            event.source
        ),
    };
}

fn jsonl(event: &Event, out: &mut String) {
    // Serialising a struct of strings and floats into a String cannot fail.
    let line = serde_json::to_string(event).expect("event serialises to JSON");
    out.push_str(&line);
    out.push('\n');
}

fn vtt(event: &Event, out: &mut String) {
    let start = Clock(event.start, '.');
    let end = Clock(event.end, '.');
    let _ = match event.kind {
        // A NOTE block may not contain "-->", so the span is written in words.
        EventKind::Gap => write!(
            out,
            "NOTE gap ({}) from {start} to {end}: {}\n\n",
            event.source,
            cue_text(&event.text)
        ),
        _ => write!(
            out,
            "{start} --> {end}\n<v {}>{}\n\n",
            event.source.speaker(),
            vtt_escape(&cue_text(&event.text))
        ),
    };
}

/// Text on one line: any line break becomes a space.
fn one_line(text: &str) -> String {
    text.trim()
        .split(['\r', '\n'])
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Text safe inside a subtitle cue: one line, no `-->`.
fn cue_text(text: &str) -> String {
    one_line(text).replace("-->", "->")
}

fn vtt_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Seconds shown as `HH:MM:SS.mmm` (with `,` before the milliseconds for SRT).
/// Negative or non-finite times show as zero.
struct Clock(f64, char);

impl std::fmt::Display for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = if self.0.is_finite() && self.0 > 0.0 {
            self.0
        } else {
            0.0
        };
        let total_ms = (secs * 1000.0).round() as u64;
        let (h, rest) = (total_ms / 3_600_000, total_ms % 3_600_000);
        let (m, rest) = (rest / 60_000, rest % 60_000);
        let (s, ms) = (rest / 1000, rest % 1000);
        write!(f, "{h:02}:{m:02}:{s:02}{}{ms:03}", self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Source;

    fn render(format: Format, events: &[Event]) -> String {
        let mut f = Formatter::new(format);
        let mut out = String::new();
        f.header(&mut out);
        for e in events {
            f.event(e, &mut out);
        }
        out
    }

    #[test]
    fn txt_line_has_times_and_speaker() {
        let e = Event::final_text(Source::Mic, 1.23, 3.4, "hello\nthere");
        assert_eq!(
            render(Format::Txt, &[e]),
            "[00:00:01.230 --> 00:00:03.400] you: hello there\n"
        );
    }

    #[test]
    fn srt_numbers_cues_and_skips_gaps() {
        let gap = Event {
            kind: EventKind::Gap,
            ..Event::final_text(Source::Mic, 2.0, 3.0, "device lost")
        };
        let out = render(
            Format::Srt,
            &[
                Event::final_text(Source::Loopback, 0.0, 1.0, "a --> b"),
                gap,
                Event::final_text(Source::Mic, 3661.5, 3662.0, "b"),
            ],
        );
        assert_eq!(
            out,
            "1\n00:00:00,000 --> 00:00:01,000\nthem: a -> b\n\n\
             2\n01:01:01,500 --> 01:01:02,000\nyou: b\n\n"
        );
    }

    #[test]
    fn vtt_header_escape_and_gap_note() {
        let gap = Event {
            kind: EventKind::Gap,
            ..Event::final_text(Source::Mic, 2.0, 3.0, "device lost")
        };
        let out = render(
            Format::Vtt,
            &[Event::final_text(Source::Mic, 0.5, 1.0, "<b> & c"), gap],
        );
        assert_eq!(
            out,
            "WEBVTT\n\n00:00:00.500 --> 00:00:01.000\n<v you>&lt;b&gt; &amp; c\n\n\
             NOTE gap (mic) from 00:00:02.000 to 00:00:03.000: device lost\n\n"
        );
    }

    #[test]
    fn partials_only_when_asked_and_never_in_subtitles() {
        let p = Event {
            kind: EventKind::Partial,
            ..Event::final_text(Source::Mic, 0.0, 1.0, "hel")
        };
        let mut out = String::new();
        assert!(!Formatter::new(Format::Jsonl).event(&p, &mut out));
        assert!(!Formatter::new(Format::Srt)
            .with_partials(true)
            .event(&p, &mut out));
        assert!(out.is_empty());
        assert!(Formatter::new(Format::Jsonl)
            .with_partials(true)
            .event(&p, &mut out));
        let back: Event = serde_json::from_str(out.trim_end()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn names_parse_both_ways() {
        for f in Format::ALL {
            assert_eq!(f.name().parse::<Format>().unwrap(), f);
        }
        let err = "docx".parse::<Format>().unwrap_err();
        assert!(err.to_string().contains("docx"));
        assert_eq!(Format::from_path("a/b.SRT".as_ref()), Some(Format::Srt));
    }
}
