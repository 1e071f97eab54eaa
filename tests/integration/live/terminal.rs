//! `hark live` on a real terminal. `script` (util-linux) runs hark on a
//! pseudo-terminal for stdin, stdout and stderr and copies every byte hark
//! writes to it; the test replays that byte stream on a small screen model
//! (the escapes hark writes: cursor up, erase line, colours) and checks what
//! a user would see: each committed line and each log line is written with
//! no live-area line (status or partial) left above it, nothing written
//! above the live area is erased, and at exit no live-area line is left.
//!
//! With the sound server client's debug log on (a line every 100 ms from
//! its own thread) hark logs while the live area is on screen; the test
//! checks that it did, so the case it guards is exercised.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hark::score;
use hark::soundserver::SoundServer;

use super::{reference, MAX_WER, STOP_TIMEOUT};

/// A screen of rows; the cursor's row and column.
#[derive(Default)]
struct Screen {
    rows: Vec<Vec<char>>,
    row: usize,
    col: usize,
    /// The rows that hold a completed live-area line.
    live_rows: std::collections::BTreeSet<usize>,
}

/// What was seen while replaying the stream.
#[derive(Default)]
struct Replay {
    screen: Screen,
    /// Committed transcript lines, in the order written.
    committed: Vec<String>,
    /// Lines other than the live area's, completed, in order.
    kept: Vec<String>,
    /// Log lines completed while a live area had been drawn before.
    logs_during_live_area: usize,
    /// Live-area lines drawn.
    live_lines_drawn: usize,
    /// Lines completed while a live-area line stood above them.
    stale: Vec<(String, String)>,
}

/// A live-area line: the status line or a source's partial.
fn is_live_area(row: &str) -> bool {
    row.starts_with("buf ") || row.starts_with("them ... ") || row.starts_with("you ... ")
}

fn is_log(row: &str) -> bool {
    [" TRACE ", " DEBUG ", "  INFO ", "  WARN ", " ERROR "]
        .iter()
        .any(|level| row.contains(level))
}

/// A committed txt record: `[00:00:01.230 --> 00:00:03.400] them: text`.
fn committed_text(row: &str) -> Option<&str> {
    if !row.starts_with('[') || !row.contains(" --> ") {
        return None;
    }
    row.split_once("] them: ").map(|(_, text)| text)
}

impl Screen {
    fn text(&self, row: usize) -> String {
        self.rows
            .get(row)
            .map(|r| r.iter().collect::<String>().trim_end().to_owned())
            .unwrap_or_default()
    }

    fn put(&mut self, c: char) {
        if self.rows.len() <= self.row {
            self.rows.resize(self.row + 1, Vec::new());
        }
        let line = &mut self.rows[self.row];
        if line.len() <= self.col {
            line.resize(self.col + 1, ' ');
        }
        line[self.col] = c;
        self.col += 1;
    }

    /// A row other than the cursor's that holds a live-area line.
    fn live_area_row_except_cursor(&self) -> Option<String> {
        self.live_rows
            .iter()
            .find(|&&r| r != self.row)
            .map(|&r| self.text(r))
    }
}

impl Replay {
    fn feed(&mut self, stream: &str) {
        let mut chars = stream.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\x1b' => {
                    assert_eq!(chars.next(), Some('['), "only CSI escapes are written");
                    let mut params = String::new();
                    let command = loop {
                        match chars.next() {
                            Some(p) if p.is_ascii_digit() || p == ';' => params.push(p),
                            Some(command) => break command,
                            None => panic!("escape cut off"),
                        }
                    };
                    self.escape(&params, command);
                }
                '\r' => self.screen.col = 0,
                '\n' => self.newline(),
                c => self.screen.put(c),
            }
        }
    }

    fn escape(&mut self, params: &str, command: char) {
        let n = params.parse::<usize>().unwrap_or(1);
        match command {
            'A' => self.screen.row = self.screen.row.saturating_sub(n),
            'K' => {
                assert_eq!(params, "2", "hark erases whole lines");
                if let Some(row) = self.screen.rows.get_mut(self.screen.row) {
                    row.clear();
                }
                self.screen.live_rows.remove(&self.screen.row);
            }
            'm' => {} // colours
            other => panic!("unexpected escape {params}{other}"),
        }
    }

    /// A line is complete: check what stands above it, then move down.
    fn newline(&mut self) {
        let text = self.screen.text(self.screen.row);
        if is_live_area(&text) {
            self.live_lines_drawn += 1;
            self.screen.live_rows.insert(self.screen.row);
        } else {
            self.screen.live_rows.remove(&self.screen.row);
            if let Some(stale) = self.screen.live_area_row_except_cursor() {
                self.stale.push((stale, text.clone()));
            }
            if let Some(committed) = committed_text(&text) {
                self.committed.push(committed.to_owned());
            }
            if is_log(&text) && self.live_lines_drawn > 0 {
                self.logs_during_live_area += 1;
            }
            self.kept.push(text);
        }
        self.screen.row += 1;
    }
}

#[test]
fn live_area_never_stays_above_committed_or_logged_lines() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let mut command = Command::new("script");
    // -q no banner, -f flush each write, -e hark's exit code; the
    // typescript file is not needed (script's stdout carries the same).
    command
        .args([
            "-qfec",
            r#"exec "$HARK_BIN" live --demo --model "$HARK_TEST_MODEL""#,
        ])
        .arg("/dev/null")
        .env("HARK_BIN", env!("CARGO_BIN_EXE_hark"))
        .env("HARK_TEST_MODEL", crate::support::default_model())
        .env("HARK_LOG", "info,whisper_rs=off,pulseaudio=debug")
        .env_remove("HARK_MODEL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in server.env() {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("run script (util-linux)");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let deadline = Instant::now() + STOP_TIMEOUT * 2;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("hark live --demo did not end under script");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let bytes = reader.join().unwrap();
    let stream = String::from_utf8_lossy(&bytes);
    let mut replay = Replay::default();
    replay.feed(&stream);
    let screen: Vec<String> = (0..replay.screen.rows.len())
        .map(|r| replay.screen.text(r))
        .filter(|t| !t.is_empty())
        .collect();
    let summary: Vec<&String> = screen.iter().filter(|t| t.starts_with("hark:")).collect();
    eprintln!(
        "exit {status:?}; {} bytes; {} live-area lines drawn; {} log lines during the live \
         area; committed {:?}; end of screen {summary:?}",
        bytes.len(),
        replay.live_lines_drawn,
        replay.logs_during_live_area,
        replay.committed
    );
    assert_eq!(status.code(), Some(0), "{summary:?}");
    assert!(
        replay.stale.is_empty(),
        "{} lines were written below a live-area line, first: {:?}",
        replay.stale.len(),
        replay.stale.first()
    );
    assert!(replay.live_lines_drawn > 0, "no live area was drawn");
    assert!(
        replay.logs_during_live_area > 0,
        "no log line came while the live area was on screen"
    );
    // Nothing above the live area was erased: every completed line is on
    // the final screen, in order; no live-area line is left.
    let kept: Vec<&String> = replay.kept.iter().filter(|t| !t.is_empty()).collect();
    let on_screen: Vec<&String> = screen.iter().collect();
    assert_eq!(
        kept.len(),
        on_screen.len(),
        "lines erased or live area left"
    );
    assert_eq!(kept, on_screen);
    assert!(!screen.iter().any(|t| is_live_area(t)));
    let text = replay.committed.join(" ");
    let wer = score::wer(&reference("weather.txt"), &text).rate();
    assert!(wer <= MAX_WER, "WER {wer:.3}: {text:?}");
}
