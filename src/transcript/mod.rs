//! The transcript writer: events in, durable files out.
//!
//! One I/O thread owns the output file ([`Writer`]). Workers hand it events
//! through a bounded channel ([`EventSender::try_send`] never blocks and gives
//! the event back when the queue is full; [`EventSender::send`] waits, for
//! offline use). The thread serialises each event as one whole record
//! ([`Formatter`]), gathers records into a batch, and writes the batch when it
//! reaches 32 KB or its oldest byte is one second old, whichever comes first.
//! A batch counts as flushed only after `fdatasync` returns.
//!
//! # Crash consistency
//!
//! Records are written at the end of the prefix known to be durable, never
//! past a torn one. After `kill -9` the file holds whole records up to the
//! last flush, plus possibly some of the next batch; a crash mid-write can
//! leave a torn last record, which the next [`Writer::spawn`] on the same file
//! cuts back (and logs). Only a file made of this format's records is ever
//! cut, and only the bytes after its last whole record that look like the
//! start of one: any other file (notes, a WAV, a transcript in another
//! format) is refused with [`WriteError::WrongFormat`] and left untouched. A
//! last record that is whole but lacks (part of) its terminator (a subtitle
//! file from another tool ending in one newline) is completed, not cut.
//! Files hark creates have mode 0600 ([`FILE_MODE`]): transcripts are private. Appending then continues cleanly: SRT numbering goes
//! on from the last cue in the file, a VTT header is written only into an
//! empty file, JSONL stays one object per line. At most one flush interval of
//! text is lost.
//!
//! # When writing fails
//!
//! 1. A failed write or sync of a batch (disk full, I/O error, file too
//!    large, read-only file system) cuts the file back to the last whole
//!    record that is durable, and the writer switches to **direct** mode: each
//!    remaining record is written and synced on its own, starting with the
//!    ones that failed (never writing again what is already durable).
//! 2. If the primary file still cannot be written, it is given up for the
//!    rest of the session and the writer goes to **emergency** mode: records
//!    go, each synced on its own, to the first emergency file that works: the
//!    configured one, then `name.emergency.ext` beside the primary, then
//!    `hark-PID-name.emergency.ext` in hark's private temp directory
//!    (`$TMPDIR/hark-UID`, mode 0700, refused if anyone else could write
//!    it); emergency files are never opened through a symlink. The user is told once per
//!    file, with `error!`, where the transcript now continues, and
//!    [`WriterMetrics::emergency_path`] says it too.
//! 3. If no file can be written, records are held in memory (**unwritable**
//!    mode) and the emergency files are tried again every flush interval;
//!    [`Writer::finish`] returns [`WriteError::Unwritable`] with the count of
//!    events never written.
//!
//! A file removed while open (for example its directory deleted) is noticed
//! after each sync (its link count drops to zero): what it held is read back
//! through the open descriptor and written again, with the pending records,
//! first to a re-created file at the same path, else to an emergency file.
//!
//! Recovery: in direct mode, after ten seconds without a failure
//! ([`DIRECT_MODE_HOLD`]) the writer goes back to batching. Once in emergency
//! mode it stays there for the session, even if the primary becomes writable
//! again: the transcript is then the primary (up to the failure) followed by
//! the emergency file, each made only of whole records, with SRT numbering
//! continuing across the two. Nothing is merged automatically, because merging
//! would mean writing to the file that just failed; concatenating the two
//! files gives the whole transcript (for VTT, drop the emergency file's
//! `WEBVTT` header line).
//!
//! Pipes and devices (a FIFO, `/dev/stdout`) can be outputs too: they are
//! written in order but cannot be synced or cut back.

mod error;
pub mod format;
mod metrics;
mod recover;
mod sink;
mod target;
mod writer;

pub use error::WriteError;
pub use format::{Format, Formatter, UnknownFormat};
pub use metrics::{WriteMode, WriterMetrics};
pub use recover::{scan, scan_from, Scan};
pub use sink::{private_temp_dir, DIRECT_MODE_HOLD};
pub use target::FILE_MODE;
pub use writer::{
    EventSender, SendError, Writer, WriterConfig, WriterReport, WriterWatch, BATCH_BYTES,
    FLUSH_INTERVAL, QUEUE_CAPACITY_EVENTS,
};
