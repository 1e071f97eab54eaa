//! The terminal view of `hark live`: committed lines on stdout, and on
//! stderr (when it is a terminal) a live area rewritten in place: the
//! current partial of each source and a status line.
//!
//! | stdout      | stderr      | stdout gets                         | stderr gets                        |
//! |-------------|-------------|-------------------------------------|------------------------------------|
//! | terminal    | terminal    | committed records (default txt)     | live area (partials + status)      |
//! | pipe / file | terminal    | records, no escape codes (default jsonl) | live area                     |
//! | any         | not a tty   | records                             | nothing but logs (status with -v)  |
//!
//! `--quiet` hides the live area. The live area is cleared before each
//! committed record is printed and redrawn after it, so committed text
//! scrolls above it and the partials stay at the bottom. Log lines (any
//! thread's, through [`LogWriter`]) erase the live area first too, so they
//! scroll above it like committed text; it is redrawn at the next status
//! tick. The count of live-area lines on screen is one shared number, read
//! and changed only while holding the stderr lock.
//!
//! Not real-time safe.

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::event::{Event, EventKind, Source};
use crate::transcript::Formatter;

/// Erase the line above the cursor: up one line, clear it.
const ERASE_LINE_ABOVE: &str = "\x1b[1A\x1b[2K";
/// Used when the terminal's width cannot be read.
const DEFAULT_WIDTH_COLUMNS: usize = 80;

/// Lines of the live area now on screen, just above the cursor. Shared by
/// the view and the log writer; read and changed under the stderr lock.
static LIVE_AREA_LINES: AtomicUsize = AtomicUsize::new(0);

/// Erases the live area (the cursor ends where its first line was). The
/// caller holds the stderr lock.
fn erase_live_area(err: &mut impl Write) -> io::Result<()> {
    let lines = LIVE_AREA_LINES.swap(0, Ordering::AcqRel);
    for _ in 0..lines {
        err.write_all(ERASE_LINE_ABOVE.as_bytes())?;
    }
    Ok(())
}

/// Standard error for `tracing`: each log line first erases the live area,
/// so it lands where the live area was and scrolls above the next one
/// (instead of being written below it and erased as one of its lines).
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

/// One log line's hold on stderr.
pub struct LogLine(io::StderrLock<'static>);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        let mut err = io::stderr().lock();
        // Best effort: a failed erase must not lose the log line.
        let _ = erase_live_area(&mut err);
        LogLine(err)
    }
}

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// One source's numbers on the status line.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceStatus {
    pub source: Source,
    /// Input level of the last chunk, dBFS.
    pub level_db: f32,
    /// Ring fill, 0..1.
    pub ring_fill: f32,
    /// Samples lost to ring overflow.
    pub overflowed: u64,
    /// Device overruns/underruns and stream errors.
    pub xruns: u64,
    /// Newest audio minus audio the last pass covered.
    pub lag_ms: u64,
    /// Decode time over decoded audio.
    pub rtf: f64,
    /// What load-adaptive inference degrades right now, and the threads of
    /// the last pass.
    pub degraded: Option<&'static str>,
    pub threads: u64,
}

/// Everything the status line shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub sources: Vec<SourceStatus>,
    /// The pump's buffer size.
    pub chunk_ms: u32,
    /// Process CPU, percent of one core (can pass 100 with several threads).
    pub cpu_percent: Option<f32>,
    /// The last final's emitted time minus its audio end, seconds.
    pub latency_s: Option<f64>,
}

/// The status line, plain text (no escape codes): the shared numbers
/// first (they survive a narrow terminal), then one group per source.
pub fn status_line(status: &Status) -> String {
    let mut parts = Vec::new();
    let mut shared = format!("buf {} ms", status.chunk_ms);
    if let Some(cpu) = status.cpu_percent {
        shared.push_str(&format!(" cpu {cpu:.0}%"));
    }
    match status.latency_s {
        Some(latency) => shared.push_str(&format!(" latency {latency:.1} s")),
        None => shared.push_str(" latency -"),
    }
    parts.push(shared);
    for s in &status.sources {
        parts.push(format!(
            "{} {:.0} dBFS ring {:.0}% rtf {:.2} lag {:.1} s drops {} xruns {}",
            s.source.speaker(),
            s.level_db,
            s.ring_fill * 100.0,
            s.rtf,
            s.lag_ms as f64 / 1000.0,
            s.overflowed,
            s.xruns
        ));
        if let Some(why) = s.degraded {
            parts.push(format!(
                "{} degraded: {why}, {} thread(s)",
                s.source.speaker(),
                s.threads
            ));
        }
    }
    parts.join(" | ")
}

/// Where the view writes, decided once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    pub stdout_tty: bool,
    pub stderr_tty: bool,
    /// `--quiet`: no live area.
    pub quiet: bool,
}

impl Terminal {
    /// Reads whether stdout and stderr are terminals.
    pub fn detect(quiet: bool) -> Terminal {
        use std::io::IsTerminal;
        Terminal {
            stdout_tty: io::stdout().is_terminal(),
            stderr_tty: io::stderr().is_terminal(),
            quiet,
        }
    }

    /// Whether the live area (partials, status) is drawn on stderr.
    pub fn live_area(self) -> bool {
        self.stderr_tty && !self.quiet
    }
}

/// The running view.
pub struct View {
    terminal: Terminal,
    /// Formats the records printed on stdout.
    records: Formatter,
    /// Current partial per source, in the order sources appeared.
    partials: Vec<(Source, String)>,
    status: String,
}

impl View {
    /// A view printing records with `records` (which decides whether
    /// partials go to stdout).
    pub fn new(terminal: Terminal, records: Formatter) -> View {
        View {
            terminal,
            records,
            partials: Vec::new(),
            status: String::new(),
        }
    }

    /// Shows one event: a committed record on stdout, a partial in the live
    /// area (and on stdout if the formatter writes partials).
    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        let mut record = String::new();
        self.records.event(event, &mut record);
        match event.kind {
            EventKind::Partial => self.set_partial(event.source, &event.text),
            EventKind::Final | EventKind::Gap => self.set_partial(event.source, ""),
        }
        // Under one stderr lock: no log line can come between the erase,
        // the record and the redraw.
        let mut err = io::stderr().lock();
        if !record.is_empty() {
            erase_live_area(&mut err)?;
            err.flush()?;
            let mut out = io::stdout().lock();
            out.write_all(record.as_bytes())?;
            out.flush()?;
        }
        self.draw(&mut err)
    }

    /// Replaces the status line.
    pub fn status(&mut self, status: &Status) -> io::Result<()> {
        self.status = status_line(status);
        self.draw(&mut io::stderr().lock())
    }

    /// Writes the header of the stdout format (VTT) once, at start.
    pub fn header(&mut self) -> io::Result<()> {
        let mut header = String::new();
        self.records.header(&mut header);
        if !header.is_empty() {
            let mut out = io::stdout().lock();
            out.write_all(header.as_bytes())?;
            out.flush()?;
        }
        Ok(())
    }

    /// Removes the live area, leaving only committed text on screen.
    pub fn finish(&mut self) -> io::Result<()> {
        let mut err = io::stderr().lock();
        erase_live_area(&mut err)?;
        err.flush()
    }

    fn set_partial(&mut self, source: Source, text: &str) {
        match self.partials.iter_mut().find(|(s, _)| *s == source) {
            Some((_, current)) => {
                current.clear();
                current.push_str(text);
            }
            None => self.partials.push((source, text.to_owned())),
        }
    }

    /// Replaces the live area; `err` is the held stderr lock.
    fn draw(&self, err: &mut io::StderrLock<'static>) -> io::Result<()> {
        if !self.terminal.live_area() {
            return Ok(());
        }
        erase_live_area(err)?;
        let width = terminal_width().saturating_sub(1).max(10);
        let mut lines = Vec::new();
        for (source, text) in &self.partials {
            if !text.is_empty() {
                let prefix = format!("{} ... ", source.speaker());
                let room = width.saturating_sub(prefix.chars().count());
                lines.push(format!("{prefix}{}", newest(text, room)));
            }
        }
        if !self.status.is_empty() {
            lines.push(fit(&self.status, width));
        }
        for line in &lines {
            // Dim the live area so it reads as provisional.
            writeln!(err, "\x1b[2m{line}\x1b[0m")?;
            LIVE_AREA_LINES.fetch_add(1, Ordering::AcqRel);
        }
        err.flush()
    }
}

/// The first `width` characters of a line: a wrapped line would break the
/// redraw.
fn fit(line: &str, width: usize) -> String {
    let count = line.chars().count();
    if count <= width {
        return line.to_owned();
    }
    line.chars().take(width).collect()
}

/// The last `width` characters of a long partial: its newest words.
fn newest(text: &str, width: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(width)).collect()
}

/// Columns of the terminal on stderr.
fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ only writes into the winsize we pass.
    unsafe {
        let mut size: libc::winsize = std::mem::zeroed();
        if libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) == 0 && size.ws_col > 0 {
            return size.ws_col as usize;
        }
    }
    DEFAULT_WIDTH_COLUMNS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_names_every_number() {
        let status = Status {
            sources: vec![
                SourceStatus {
                    source: Source::Mic,
                    level_db: -23.4,
                    ring_fill: 0.05,
                    overflowed: 0,
                    xruns: 1,
                    lag_ms: 120,
                    rtf: 0.31,
                    degraded: None,
                    threads: 2,
                },
                SourceStatus {
                    source: Source::Loopback,
                    level_db: -120.0,
                    ring_fill: 0.0,
                    overflowed: 480,
                    xruns: 0,
                    lag_ms: 0,
                    rtf: 0.0,
                    degraded: Some("cores busy: fewer threads"),
                    threads: 1,
                },
            ],
            chunk_ms: 30,
            cpu_percent: Some(87.0),
            latency_s: Some(0.84),
        };
        let line = status_line(&status);
        assert_eq!(
            line,
            "buf 30 ms cpu 87% latency 0.8 s | \
             you -23 dBFS ring 5% rtf 0.31 lag 0.1 s drops 0 xruns 1 | \
             them -120 dBFS ring 0% rtf 0.00 lag 0.0 s drops 480 xruns 0 | \
             them degraded: cores busy: fewer threads, 1 thread(s)"
        );
        assert!(!line.contains('\x1b'));
    }

    #[test]
    fn long_lines_are_cut_to_the_width() {
        assert_eq!(fit("abcdef", 4), "abcd");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit("ééééé", 3), "ééé");
        assert_eq!(newest("one two three", 5), "three");
        assert_eq!(newest("two", 5), "two");
    }
}
