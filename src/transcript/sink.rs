//! The fallback ladder: where formatted records go, and what happens when a
//! write fails. Owned by the writer's I/O thread; not real-time safe.
//!
//! batched -> (write or sync fails) -> direct on the primary file
//!         -> (primary still fails) -> emergency file (configured, beside the
//!            primary, then the temp dir) -> (none writable) -> held in memory,
//!            retried every flush interval.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::format::{Format, VTT_HEADER};
use super::metrics::{Shared, WriteMode};
use super::target::{Failure, Target};

/// In direct mode, go back to batching after this long without a failure.
pub const DIRECT_MODE_HOLD: Duration = Duration::from_secs(10);

/// Formatted bytes of one event (or a rescued copy of a removed file).
#[derive(Debug)]
struct Record {
    bytes: Vec<u8>,
    /// Events in it not yet counted as written (0 for a rescued copy).
    events: u64,
}

#[derive(Debug)]
pub(crate) struct Sink {
    format: Format,
    primary_path: PathBuf,
    /// None once the primary was removed or given up for the session.
    primary: Option<Target>,
    abandoned_primary: bool,
    candidates: Vec<PathBuf>,
    next_candidate: usize,
    emergency: Option<Target>,
    mode: WriteMode,
    pending: VecDeque<Record>,
    pending_bytes: usize,
    oldest: Option<Instant>,
    last_failure: Option<Instant>,
    last_attempt: Option<Instant>,
    batch_bytes: usize,
    flush_interval: Duration,
    scratch: Vec<u8>,
    ends: Vec<usize>,
    shared: Arc<Shared>,
}

impl Sink {
    pub fn new(
        primary: Target,
        format: Format,
        candidates: Vec<PathBuf>,
        batch_bytes: usize,
        flush_interval: Duration,
        shared: Arc<Shared>,
    ) -> Self {
        Sink {
            format,
            primary_path: primary.path.clone(),
            primary: Some(primary),
            abandoned_primary: false,
            candidates,
            next_candidate: 0,
            emergency: None,
            mode: WriteMode::Batched,
            pending: VecDeque::new(),
            pending_bytes: 0,
            oldest: None,
            last_failure: None,
            last_attempt: None,
            batch_bytes,
            flush_interval,
            scratch: Vec::with_capacity(batch_bytes * 2),
            ends: Vec::new(),
            shared,
        }
    }

    /// Queues one formatted event.
    pub fn push(&mut self, bytes: Vec<u8>, now: Instant) {
        self.pending_bytes += bytes.len();
        self.pending.push_back(Record { bytes, events: 1 });
        self.oldest.get_or_insert(now);
        self.shared.pending_events.fetch_add(1, Ordering::Relaxed);
    }

    pub fn pending_events(&self) -> u64 {
        self.pending.iter().map(|r| r.events).sum()
    }

    /// When the pending records must be written, if there are any.
    pub fn deadline(&self) -> Option<Instant> {
        let oldest = self.oldest?;
        Some(match self.mode {
            WriteMode::Batched => oldest + self.flush_interval,
            WriteMode::Direct | WriteMode::Emergency => oldest,
            WriteMode::Unwritable => self.last_attempt.unwrap_or(oldest) + self.flush_interval,
        })
    }

    /// True if the pending records should be written now.
    pub fn due(&self, now: Instant) -> bool {
        (self.mode == WriteMode::Batched && self.pending_bytes >= self.batch_bytes)
            || self.deadline().is_some_and(|d| d <= now)
    }

    /// Writes every pending record wherever the ladder says, making it durable.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let started = Instant::now();
        self.last_attempt = Some(started);
        let before = self.shared.events_written.load(Ordering::Relaxed);
        match self.mode {
            WriteMode::Batched => self.write_batch(),
            WriteMode::Direct => self.write_direct(),
            WriteMode::Emergency | WriteMode::Unwritable => self.write_emergency(),
        }
        if self.shared.events_written.load(Ordering::Relaxed) != before {
            self.shared.record_flush(started.elapsed());
        }
        if self.pending.is_empty() {
            self.oldest = None;
        }
    }

    fn write_batch(&mut self) {
        self.scratch.clear();
        self.ends.clear();
        for record in &self.pending {
            self.scratch.extend_from_slice(&record.bytes);
            self.ends.push(self.scratch.len());
        }
        let Some(primary) = self.primary.as_mut() else {
            return self.write_direct();
        };
        match primary.write_records(&self.scratch, &self.ends) {
            Ok(()) => self.commit(self.pending.len()),
            Err(failure) => {
                self.commit(failure.records_durable);
                self.primary_failed(failure);
                self.write_direct();
            }
        }
    }

    /// Direct mode: each record written and synced on its own.
    fn write_direct(&mut self) {
        if self.primary.is_none() {
            match Target::open(&self.primary_path, self.format) {
                Ok(opened) => {
                    tracing::warn!(
                        "{}: re-created the transcript file",
                        self.primary_path.display()
                    );
                    self.primary = Some(opened.target);
                }
                Err(e) => return self.enter_emergency(e.to_string()),
            }
        }
        while let Some(record) = self.pending.front() {
            let primary = self.primary.as_mut().expect("primary open in direct mode");
            let len = record.bytes.len();
            if let Err(failure) = primary.write_records(&record.bytes, &[len]) {
                let error = failure.error.to_string();
                self.primary_failed(failure);
                return self.enter_emergency(error);
            }
            self.commit(1);
        }
        if self
            .last_failure
            .is_some_and(|at| at.elapsed() >= DIRECT_MODE_HOLD)
        {
            tracing::info!(
                "{}: writes succeed again; back to batched writes",
                self.primary_path.display()
            );
            self.set_mode(WriteMode::Batched);
        }
    }

    /// Records a failure of the primary and switches to direct mode.
    fn primary_failed(&mut self, failure: Failure) {
        let path = self.primary_path.display().to_string();
        self.shared.set_error(format!("{path}: {}", failure.error));
        self.last_failure = Some(Instant::now());
        if failure.removed {
            if let Some(orphan) = self.primary.take() {
                self.rescue(&orphan);
            }
        }
        if self.mode == WriteMode::Batched {
            tracing::warn!(
                "writing transcript {path} failed ({}); switching to direct writes (each event synced on its own)",
                failure.error
            );
            self.set_mode(WriteMode::Direct);
        }
    }

    /// A file was removed while open: put what it held back in front of the
    /// pending records so it is written again wherever they go.
    fn rescue(&mut self, orphan: &Target) {
        match orphan.read_durable() {
            Ok(mut bytes) => {
                if self.format == Format::Vtt && bytes.starts_with(VTT_HEADER.as_bytes()) {
                    bytes.drain(..VTT_HEADER.len());
                }
                tracing::warn!(
                    "{} was removed while being written; its {} bytes will be written again",
                    orphan.path.display(),
                    bytes.len()
                );
                self.pending_bytes += bytes.len();
                self.pending.push_front(Record { bytes, events: 0 });
            }
            Err(e) => tracing::error!(
                "{} was removed and its content could not be read back: {e}",
                orphan.path.display()
            ),
        }
    }

    /// Gives up the primary for the rest of the session.
    fn enter_emergency(&mut self, error: String) {
        if !self.abandoned_primary {
            self.abandoned_primary = true;
            self.primary = None;
            self.shared
                .set_error(format!("{}: {error}", self.primary_path.display()));
        }
        self.set_mode(WriteMode::Emergency);
        self.write_emergency();
    }

    fn write_emergency(&mut self) {
        if self.mode == WriteMode::Unwritable {
            self.next_candidate = 0;
        }
        loop {
            if self.emergency.is_none() && !self.open_next_candidate() {
                if self.mode != WriteMode::Unwritable {
                    tracing::error!(
                        "transcript {} and every emergency file failed (last: {}); \
                         {} events held in memory, retrying every {:?}",
                        self.primary_path.display(),
                        self.shared.last_error().unwrap_or_default(),
                        self.pending_events(),
                        self.flush_interval
                    );
                    self.set_mode(WriteMode::Unwritable);
                }
                return;
            }
            let mut failed = None;
            while let Some(record) = self.pending.front() {
                let target = self.emergency.as_mut().expect("emergency open");
                let len = record.bytes.len();
                if let Err(failure) = target.write_records(&record.bytes, &[len]) {
                    failed = Some(failure);
                    break;
                }
                self.commit(1);
            }
            let Some(failure) = failed else {
                self.set_mode(WriteMode::Emergency);
                return;
            };
            let target = self.emergency.take().expect("emergency open");
            self.shared
                .set_error(format!("{}: {}", target.path.display(), failure.error));
            if failure.removed {
                self.rescue(&target);
            }
        }
    }

    /// Opens the next emergency candidate that works; tells the user where
    /// the transcript now goes.
    fn open_next_candidate(&mut self) -> bool {
        while self.next_candidate < self.candidates.len() {
            let path = self.candidates[self.next_candidate].clone();
            self.next_candidate += 1;
            match Target::open_private(&path, self.format) {
                Ok(opened) => {
                    tracing::error!(
                        "transcript {} cannot be written ({}); the rest of the transcript goes to {}",
                        self.primary_path.display(),
                        self.shared.last_error().unwrap_or_default(),
                        path.display()
                    );
                    self.shared.set_emergency_path(Some(path));
                    self.emergency = Some(opened.target);
                    return true;
                }
                Err(e) => self.shared.set_error(e.to_string()),
            }
        }
        false
    }

    /// Marks the first `n` pending records durable.
    fn commit(&mut self, n: usize) {
        for _ in 0..n {
            let record = self.pending.pop_front().expect("committed record exists");
            self.count(record);
        }
    }

    fn count(&mut self, record: Record) {
        self.pending_bytes -= record.bytes.len();
        if record.events > 0 {
            self.shared
                .bytes_written
                .fetch_add(record.bytes.len() as u64, Ordering::Relaxed);
            self.shared
                .events_written
                .fetch_add(record.events, Ordering::Relaxed);
            self.shared
                .pending_events
                .fetch_sub(record.events, Ordering::Relaxed);
        }
    }

    fn set_mode(&mut self, mode: WriteMode) {
        self.mode = mode;
        self.shared.set_mode(mode);
    }
}

/// The emergency files tried, in order: the configured one, one beside the
/// primary (`name.emergency.ext`), one in hark's private temp directory
/// ([`private_temp_dir`]: `hark-PID-name.emergency.ext`).
pub fn emergency_candidates(primary: &Path, configured: Option<&Path>) -> Vec<PathBuf> {
    let name = primary
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "transcript".into());
    let emergency_name = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}.emergency.{ext}"),
        _ => format!("{name}.emergency"),
    };
    let beside = primary.with_file_name(&emergency_name);
    let temp = match private_temp_dir() {
        Ok(dir) => Some(dir.join(format!("hark-{}-{emergency_name}", std::process::id()))),
        Err(e) => {
            tracing::warn!("no emergency file in the temp dir: {e}");
            None
        }
    };
    let mut out: Vec<PathBuf> = configured.map(Path::to_path_buf).into_iter().collect();
    for path in std::iter::once(beside).chain(temp) {
        if !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// `$TMPDIR/hark-UID`: a directory only this user can enter (mode 0700),
/// created if missing. One that exists but is a symlink, another user's, or
/// open to others is refused: nobody else can plant a file or link in it.
pub fn private_temp_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("hark-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    let refuse = |why: &str| {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{} {why}", dir.display()),
        ))
    };
    if !meta.is_dir() {
        return refuse("is not a directory");
    }
    if meta.uid() != uid {
        return refuse("belongs to another user");
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return refuse("is open to other users (its mode is not 0700)");
    }
    Ok(dir)
}
