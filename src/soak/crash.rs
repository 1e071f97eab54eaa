//! Crash and restart: a child hark streams a file through the live pipeline
//! into a transcript, is killed with SIGKILL after it has flushed, and a
//! second child is started on the same transcript and killed the same way.
//! A last restart (a writer opened on the file, as hark does) must leave a
//! valid file that still holds every byte seen flushed before each kill.
//!
//! Not real-time safe.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::SoakError;
use crate::event::{Event, Source};
use crate::inference::Model;
use crate::pipeline::{Feed, Pipeline, PipelineConfig, SourceConfig};
use crate::transcript::{Format, Writer, WriterConfig};

/// Flushes a child must be seen making before it is killed.
pub const FLUSHES_BEFORE_KILL: usize = 2;
/// How long a child may take to make them.
pub const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// How to start a child hark that runs [`run_child`] on a transcript path
/// (appended as the last argument).
#[derive(Debug, Clone)]
pub struct ChildCommand {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
}

/// What the kills left.
#[derive(Debug, Clone, Serialize)]
pub struct CrashResult {
    pub kills: usize,
    /// File length last seen before each kill (all flushed by then).
    pub flushed_bytes_at_kill: Vec<u64>,
    /// Torn bytes each restart found and cut.
    pub torn_bytes_cut: Vec<usize>,
    pub final_bytes: u64,
    pub final_records: usize,
    pub unparsable_lines: usize,
    /// The whole records in the file at each kill are still in the final
    /// file, byte for byte.
    pub flushed_prefix_kept: bool,
    /// The second child appended after the first one's records.
    pub appended_after_restart: bool,
}

impl CrashResult {
    pub fn pass(&self) -> bool {
        self.flushed_prefix_kept && self.appended_after_restart && self.unparsable_lines == 0
    }
}

/// The child: streams `audio` at 1x through the pipeline into `transcript`
/// (JSONL) until the file has played or the process is killed.
pub fn run_child(model: &Path, audio: &Path, transcript: &Path) -> Result<(), SoakError> {
    let model = Model::load(model)?;
    let writer = Writer::spawn(WriterConfig::new(transcript, Format::Jsonl))?;
    let sender = writer.sender();
    let (tx, rx) = crossbeam_channel::unbounded::<Event>();
    let forward = std::thread::Builder::new()
        .name("crash-child-events".into())
        .spawn(move || {
            for event in rx {
                let _ = sender.send(event);
            }
        })
        .map_err(SoakError::Thread)?;
    let config = PipelineConfig {
        threads: 1,
        ..PipelineConfig::default()
    };
    let sources = [SourceConfig {
        source: Source::File,
        feed: Feed::File(audio.to_path_buf()),
        record: None,
    }];
    let pipeline = Pipeline::start(&model, &config, &sources, tx)?;
    while !pipeline.files_done() {
        std::thread::sleep(Duration::from_millis(50));
    }
    pipeline.stop();
    let _ = forward.join();
    writer.finish()?;
    Ok(())
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// Starts a child on `transcript`, waits for [`FLUSHES_BEFORE_KILL`] growths
/// of the file, kills it with SIGKILL; returns the length last seen.
fn kill_after_flushes(child: &ChildCommand, transcript: &Path) -> Result<u64, SoakError> {
    let mut process = Command::new(&child.exe)
        .args(&child.args)
        .arg(transcript)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| SoakError::Fault(format!("cannot start {}: {e}", child.exe.display())))?;
    let started = Instant::now();
    let mut seen = file_len(transcript);
    let mut growths = 0;
    while growths < FLUSHES_BEFORE_KILL {
        if started.elapsed() > CHILD_TIMEOUT {
            let _ = process.kill();
            let _ = process.wait();
            return Err(SoakError::Fault(format!(
                "the crash child flushed {growths} time(s) in {CHILD_TIMEOUT:?}"
            )));
        }
        if let Ok(Some(status)) = process.try_wait() {
            return Err(SoakError::Fault(format!(
                "the crash child exited ({status}) before it was killed"
            )));
        }
        let len = file_len(transcript);
        if len > seen {
            seen = len;
            growths += 1;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    // Child::kill sends SIGKILL on Unix.
    process
        .kill()
        .map_err(|e| SoakError::Fault(format!("cannot kill the crash child: {e}")))?;
    let _ = process.wait();
    Ok(seen)
}

/// Kills a child twice on the same `transcript` (restarting it in
/// between), then opens the file once more as a restart would and checks
/// it.
pub fn kill_and_restart(child: &ChildCommand, transcript: &Path) -> Result<CrashResult, SoakError> {
    let _ = std::fs::remove_file(transcript);
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| SoakError::Output {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })
    };
    let first = kill_after_flushes(child, transcript)?;
    let after_first = read(transcript)?;
    let second = kill_after_flushes(child, transcript)?;
    let after_second = read(transcript)?;
    // The last restart: the writer cuts a torn tail on open.
    let writer = Writer::spawn(WriterConfig::new(transcript, Format::Jsonl))?;
    let last_cut = writer.torn_bytes_cut();
    writer.finish()?;
    let bytes = read(transcript)?;
    let scan = crate::transcript::scan(Format::Jsonl, &bytes);
    let whole = |b: &[u8]| crate::transcript::scan(Format::Jsonl, b).whole_len;
    let (first_whole, second_whole) = (whole(&after_first), whole(&after_second));
    // The whole records present at each kill are still there, unchanged.
    let kept = |at_kill: &[u8], whole_len: usize| {
        bytes.len() >= whole_len && at_kill[..whole_len] == bytes[..whole_len]
    };
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let unparsable = lines
        .iter()
        .filter(|l| serde_json::from_str::<Event>(l).is_err())
        .count();
    Ok(CrashResult {
        kills: 2,
        flushed_bytes_at_kill: vec![first, second],
        torn_bytes_cut: vec![after_first.len() - first_whole, last_cut],
        final_bytes: bytes.len() as u64,
        final_records: lines.len(),
        unparsable_lines: unparsable + scan.torn_len(bytes.len()),
        flushed_prefix_kept: kept(&after_first, first_whole) && kept(&after_second, second_whole),
        appended_after_restart: second_whole > first_whole,
    })
}
