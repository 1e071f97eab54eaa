//! The writer's typed errors. Each names the file it is about.

use std::path::PathBuf;

use super::format::Format;

/// Why the transcript could not be opened or fully written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The output file could not be opened or created (no such directory,
    /// permission denied, read-only file system, ...).
    #[error("cannot open transcript file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The output is a FIFO (named pipe) that no process has open for
    /// reading: opening it would wait for one forever.
    #[error("transcript {path} is a pipe with no reader (start the reader first)")]
    NoReader { path: PathBuf },
    /// The output path is a directory.
    #[error("transcript path {path} is a directory, not a file")]
    IsDirectory { path: PathBuf },
    /// Another process holds the file open for writing (it is locked).
    #[error("transcript file {path} is being written by another process")]
    Busy { path: PathBuf },
    /// The existing file could not be read or its torn tail cut before appending.
    #[error("cannot prepare existing transcript file {path} for appending: {source}")]
    Recover {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The existing file is not in the format asked for.
    #[error("existing file {path} is not a {format} transcript ({reason}); it was left untouched")]
    WrongFormat {
        path: PathBuf,
        format: Format,
        reason: String,
    },
    /// The output file is one of the inputs: writing it would destroy them.
    #[error("transcript file {path} is also an input; refusing to write over it")]
    IsInput { path: PathBuf },
    /// The writer thread could not be started.
    #[error("cannot start the transcript writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The writer thread panicked; what it had made durable stays on disk.
    #[error("the transcript writer thread for {path} panicked")]
    Panicked { path: PathBuf },
    /// At the end the file did not take what was queued (a pipe nobody
    /// reads, a hung mount) and hark stopped waiting for it.
    #[error(
        "transcript {path} stopped taking writes (a pipe nobody reads? a hung mount?); \
         gave up waiting: {events} events were not written"
    )]
    Stalled { path: PathBuf, events: u64 },
    /// At the end, some events could be written neither to the transcript
    /// nor to any emergency file.
    #[error(
        "{events} transcript events could not be written to {path} nor to any emergency file \
         (last error: {last_error})"
    )]
    Unwritable {
        path: PathBuf,
        events: u64,
        last_error: String,
    },
}
