//! One output file: opened for appending (torn tail cut, VTT header written
//! if new), written record by record at the length known to be durable, and
//! synced. Not real-time safe: every call here does file I/O.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::error::WriteError;
use super::format::{Format, VTT_HEADER};
use super::recover;

/// An open output file and the length of its durable, whole-record prefix.
#[derive(Debug)]
pub(crate) struct Target {
    pub path: PathBuf,
    file: File,
    /// Bytes known written and synced; every write starts here.
    pub good_len: u64,
    /// A regular file (seekable, syncable). Pipes and devices are written in
    /// order and never synced or truncated.
    regular: bool,
}

/// What went wrong in [`Target::write_records`].
#[derive(Debug)]
pub(crate) struct Failure {
    /// How many of the records (from the first) are durable in spite of it.
    pub records_durable: usize,
    pub error: io::Error,
    /// The file was unlinked (its directory removed?): what it held is only
    /// reachable through our descriptor.
    pub removed: bool,
}

/// An existing file as found on open.
#[derive(Debug)]
pub(crate) struct Opened {
    pub target: Target,
    /// Bytes of a torn tail that were cut.
    pub torn_bytes: usize,
    /// The last SRT cue number in the file (0 if none).
    pub last_cue: u64,
}

impl Target {
    /// Opens `path` for appending `format` records, creating it if missing.
    /// A torn tail (a crash mid-write) is cut back to the last whole record
    /// and logged; an empty VTT file gets its header.
    pub fn open(path: &Path, format: Format) -> Result<Opened, WriteError> {
        Target::open_with(path, format, false)
    }

    /// Like [`Target::open`], for a file hark names itself (an emergency
    /// file): a symlink at `path` is refused, not followed.
    pub fn open_private(path: &Path, format: Format) -> Result<Opened, WriteError> {
        Target::open_with(path, format, true)
    }

    fn open_with(path: &Path, format: Format, no_follow: bool) -> Result<Opened, WriteError> {
        let open_err = |source| WriteError::Open {
            path: path.to_path_buf(),
            source,
        };
        let recover_err = |source| WriteError::Recover {
            path: path.to_path_buf(),
            source,
        };
        let meta = if no_follow {
            std::fs::symlink_metadata(path)
        } else {
            std::fs::metadata(path)
        };
        match meta {
            Ok(meta) if meta.is_dir() => {
                return Err(WriteError::IsDirectory {
                    path: path.to_path_buf(),
                })
            }
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(open_err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is a symbolic link (an emergency file is never written through one)",
                )))
            }
            Ok(meta) if !meta.is_file() && !no_follow => {
                // A FIFO or device: write in order, nothing to recover.
                let file = open_stream(path)?;
                return Ok(Opened {
                    target: Target {
                        path: path.to_path_buf(),
                        file,
                        good_len: 0,
                        regular: false,
                    },
                    torn_bytes: 0,
                    last_cue: 0,
                });
            }
            _ => {}
        }
        let mut options = OpenOptions::new();
        options
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE);
        if no_follow {
            options.custom_flags(libc::O_NOFOLLOW);
        }
        let file = options.open(path).map_err(open_err)?;
        if no_follow && !file.metadata().map_err(open_err)?.is_file() {
            return Err(open_err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is not a regular file",
            )));
        }
        lock(&file).map_err(|e| match e.kind() {
            io::ErrorKind::WouldBlock => WriteError::Busy {
                path: path.to_path_buf(),
            },
            _ => open_err(e),
        })?;
        let scan = scan_file(&file, format).map_err(recover_err)?;
        if let Some(reason) = scan.foreign {
            return Err(WriteError::WrongFormat {
                path: path.to_path_buf(),
                format,
                reason,
            });
        }
        let len = file.metadata().map_err(recover_err)?.len();
        let torn_bytes = (len - scan.whole_len) as usize;
        if torn_bytes > 0 {
            file.set_len(scan.whole_len).map_err(recover_err)?;
            file.sync_data().map_err(recover_err)?;
            tracing::warn!(
                "{}: cut {torn_bytes} bytes of a torn last record (left by a crash mid-write)",
                path.display()
            );
        }
        let mut target = Target {
            path: path.to_path_buf(),
            file,
            good_len: scan.whole_len,
            regular: true,
        };
        if !scan.complete_with.is_empty() {
            let end = scan.complete_with.as_bytes();
            target
                .write_records(end, &[end.len()])
                .map_err(|f| recover_err(f.error))?;
        }
        if format == Format::Vtt {
            if target.good_len == 0 {
                let header = VTT_HEADER.as_bytes();
                target
                    .write_records(header, &[header.len()])
                    .map_err(|f| open_err(f.error))?;
            } else if !scan.has_vtt_header {
                return Err(WriteError::WrongFormat {
                    path: path.to_path_buf(),
                    format,
                    reason: "it does not start with the WEBVTT header".into(),
                });
            }
        }
        Ok(Opened {
            target,
            torn_bytes,
            last_cue: scan.last_cue,
        })
    }

    /// Writes `bytes` (whole records ending at the offsets in `ends`) after
    /// the durable prefix and syncs them (fdatasync). On success they are all
    /// durable. On failure the file is cut back to the last whole record that
    /// was written, which is synced if possible, so no torn record is left
    /// behind and a retry writes only what is not yet durable.
    pub fn write_records(&mut self, bytes: &[u8], ends: &[usize]) -> Result<(), Failure> {
        let mut written = 0usize;
        while written < bytes.len() {
            let result = if self.regular {
                self.file
                    .write_at(&bytes[written..], self.good_len + written as u64)
            } else {
                (&self.file).write(&bytes[written..])
            };
            match result {
                Ok(0) => return Err(self.salvage(ends, written, io::ErrorKind::WriteZero.into())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.salvage(ends, written, e)),
            }
        }
        if self.regular {
            if let Err(e) = self.file.sync_data() {
                // After a failed sync the page cache state is unknown: nothing
                // since the last good sync is trusted.
                let _ = self.file.set_len(self.good_len);
                return Err(Failure {
                    records_durable: 0,
                    error: e,
                    removed: false,
                });
            }
            if self.removed() {
                return Err(Failure {
                    records_durable: 0,
                    error: io::Error::new(io::ErrorKind::NotFound, "the file was removed"),
                    removed: true,
                });
            }
        }
        self.good_len += written as u64;
        Ok(())
    }

    /// After a write failed with `written` bytes in: keep the whole records
    /// among them if they can be synced, cut the rest.
    fn salvage(&mut self, ends: &[usize], written: usize, error: io::Error) -> Failure {
        let whole = ends.iter().take_while(|&&end| end <= written).count();
        let whole_bytes = if whole == 0 { 0 } else { ends[whole - 1] };
        if !self.regular {
            self.good_len += written as u64;
            return Failure {
                records_durable: whole,
                error,
                removed: false,
            };
        }
        let keep = self.good_len + whole_bytes as u64;
        let records_durable = if self.file.set_len(keep).is_ok() && self.file.sync_data().is_ok() {
            self.good_len = keep;
            whole
        } else {
            let _ = self.file.set_len(self.good_len);
            0
        };
        Failure {
            records_durable,
            error,
            removed: self.removed(),
        }
    }

    /// True if the file no longer has a name (unlinked, directory removed).
    pub fn removed(&self) -> bool {
        self.regular && self.file.metadata().is_ok_and(|m| m.nlink() == 0)
    }

    /// The durable prefix, read back through our descriptor (used to rescue
    /// the content of a file that was removed while open).
    pub fn read_durable(&self) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; self.good_len as usize];
        self.file.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
}

/// Opens a FIFO or device for writing without waiting: a blocking open(2)
/// of a FIFO waits until a reader comes, forever if none does, where no
/// signal could stop hark. With no reader it is refused instead
/// ([`WriteError::NoReader`]). Writes then block as usual (the writer's
/// stop grace bounds them).
fn open_stream(path: &Path) -> Result<File, WriteError> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENXIO) => WriteError::NoReader {
                path: path.to_path_buf(),
            },
            _ => WriteError::Open {
                path: path.to_path_buf(),
                source,
            },
        })?;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own; no memory is passed.
    let cleared = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) == 0
    };
    if !cleared {
        return Err(WriteError::Open {
            path: path.to_path_buf(),
            source: io::Error::last_os_error(),
        });
    }
    Ok(file)
}

/// Mode of the files hark creates: transcripts are private to their owner.
pub const FILE_MODE: u32 = 0o600;

/// How much of an existing file's start and end is read to check it and find
/// its torn tail: the file is never read whole (it may be large, or not a
/// transcript at all).
const SCAN_WINDOW: u64 = 1 << 20;

/// What an existing file's content says about appending to it, with
/// `whole_len` as an offset into the file.
struct FileScan {
    whole_len: u64,
    last_cue: u64,
    has_vtt_header: bool,
    complete_with: &'static str,
    foreign: Option<String>,
}

/// Reads the start and the end of `file` (each at most [`SCAN_WINDOW`]) and
/// scans them: the start must be this format's records, and the end says
/// where the last whole record ends.
fn scan_file(file: &File, format: Format) -> io::Result<FileScan> {
    let len = file.metadata()?.len();
    let read = |offset: u64, size: u64| -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; size as usize];
        file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    };
    if len <= 2 * SCAN_WINDOW {
        let scan = recover::scan(format, &read(0, len)?);
        return Ok(FileScan {
            whole_len: scan.whole_len as u64,
            last_cue: scan.last_cue,
            has_vtt_header: scan.has_vtt_header,
            complete_with: scan.complete_with,
            foreign: scan.foreign,
        });
    }
    let head = read(0, SCAN_WINDOW)?;
    let terminator = format.record_terminator().as_bytes();
    let head_end = head
        .windows(terminator.len())
        .rposition(|w| w == terminator)
        .map_or(0, |i| i + terminator.len());
    let head_scan = recover::scan(format, &head[..head_end]);
    let tail_offset = len - SCAN_WINDOW;
    let tail_scan = recover::scan_from(format, &read(tail_offset, SCAN_WINDOW)?, false);
    let foreign = match (head_end, head_scan.foreign, tail_scan.foreign) {
        (0, _, _) => Some(format!(
            "no {format} record ends in its first {SCAN_WINDOW} bytes"
        )),
        (_, Some(reason), _) | (_, None, Some(reason)) => Some(reason),
        _ => None,
    };
    Ok(FileScan {
        whole_len: tail_offset + tail_scan.whole_len as u64,
        last_cue: tail_scan.last_cue,
        has_vtt_header: head_scan.has_vtt_header,
        complete_with: tail_scan.complete_with,
        foreign,
    })
}

/// How long to wait for another holder of the file lock before calling the
/// file busy. A lock can outlive its writer briefly when a child process was
/// forked while the file was open (the child holds the descriptor until exec).
const LOCK_WAIT: Duration = Duration::from_millis(500);
const LOCK_RETRY: Duration = Duration::from_millis(10);

/// Takes an exclusive advisory lock so two writers never interleave one file.
fn lock(file: &File) -> io::Result<()> {
    let give_up = Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: flock on a descriptor we own; no memory is passed.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::WouldBlock || Instant::now() >= give_up {
            return Err(err);
        }
        std::thread::sleep(LOCK_RETRY);
    }
}
