//! A transcript target that blocks: a FIFO whose only reader (this test
//! process) never reads, its pipe shrunk to one page and filled, so the
//! first write hark makes into it never returns. And a check, through
//! /proc, that a thread of a process is blocked writing a pipe.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A FIFO that takes no more writes until it is dropped.
pub struct FullFifo {
    pub path: PathBuf,
    _reader: OwnedFd,
}

impl FullFifo {
    pub fn new(path: &Path) -> FullFifo {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: plain libc calls on a path and a descriptor we own.
        unsafe {
            assert_eq!(libc::mkfifo(c.as_ptr(), 0o600), 0, "mkfifo");
            // Read-write: a reader exists (hark's open does not wait) and
            // this process can fill the pipe.
            let fd = libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK);
            assert!(fd >= 0, "open fifo");
            let fd = OwnedFd::from_raw_fd(fd);
            libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 4096);
            let block = [b'#'; 512];
            loop {
                let n = libc::write(fd.as_raw_fd(), block.as_ptr().cast(), block.len());
                if n <= 0 {
                    break;
                }
            }
            FullFifo {
                path: path.to_path_buf(),
                _reader: fd,
            }
        }
    }
}

/// Whether the thread named `thread` of process `pid` is blocked in a
/// write to a pipe.
pub fn blocked_writing_pipe(pid: u32, thread: &str) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        let read = |name: &str| std::fs::read_to_string(task.path().join(name)).unwrap_or_default();
        read("comm").trim() == thread && read("wchan").contains("pipe_write")
    })
}

/// The count in hark's "N events were not written" line, if any.
pub fn events_not_written(stderr: &str) -> Option<u64> {
    let at = stderr.find(" events were not written")?;
    let before = &stderr[..at];
    let start = before.rfind(|c: char| !c.is_ascii_digit())? + 1;
    before[start..].parse().ok()
}
