//! Keeping a device source alive: notice that its stream died, reopen it,
//! fall back to the default device of the same kind, and come back to the
//! device asked for once it reappears.
//!
//! The policy, run on the source's pump thread (never on the callback):
//!
//! 1. A stream is dead when the backend reported an error other than an
//!    xrun, when no frame arrived for [`STALL_TIMEOUT`], or when the named
//!    device it was opened on is no longer listed (checked every
//!    [`PRESENCE_CHECK_INTERVAL`]; PulseAudio silently moves the streams of
//!    a removed source elsewhere, so up to that long of the other device's
//!    audio may be captured before the swap).
//! 2. Reopen the same device up to [`FAST_ATTEMPTS`] times, waiting
//!    [`SETTLE`] before each attempt for the device to settle.
//! 3. Then open the default device of the same kind (if a named device was
//!    asked for).
//! 4. Then keep trying both every [`SLOW_RETRY_INTERVAL`] until one opens or
//!    the pipeline stops.
//! 5. While on the fallback, probe the device asked for every
//!    [`HOME_CHECK_INTERVAL`]; once it is listed again, swap back to it.
//!
//! Every stream of the source counts into one [`CaptureStats`] (and one set
//! of ring counters), so totals run on across swaps. The pump accounts for
//! the time without audio (see [`super`]).
//!
//! Not real-time safe.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::capture::{device, CaptureSpec, CaptureStats, CaptureStream, DeviceError};
use crate::handoff::Consumer;

/// Pause before each reopen attempt, for the device to settle.
pub const SETTLE: Duration = Duration::from_millis(500);
/// Reopen attempts on the device asked for before falling back.
pub const FAST_ATTEMPTS: u32 = 3;
/// Pause between attempts once the fast ones and the fallback failed.
pub const SLOW_RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// No frame for this long means the stream is dead.
pub const STALL_TIMEOUT: Duration = Duration::from_millis(1500);
/// How often a named device is looked for in the device list while it runs.
/// PulseAudio moves the streams of a removed source to another one
/// ("rescue") without telling the client, so frames keep flowing from the
/// wrong device: only the list shows that the device is gone.
pub const PRESENCE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How often a source on its fallback device looks for the device asked for.
pub const HOME_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// One stretch of session time without captured audio.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GapRecord {
    /// Session seconds (the source's timeline) where audio stopped.
    pub start: f64,
    /// Session seconds where audio resumed (digital silence fills between).
    pub end: f64,
    /// Why: the stream's failure and what it was swapped to.
    pub reason: String,
}

/// Recovery counters of one source, read by the monitor and the soak.
#[derive(Debug, Default)]
pub struct RecoveryStats {
    /// Times a stream was found dead.
    pub failures: AtomicU64,
    /// Reopen attempts (each device open tried).
    pub attempts: AtomicU64,
    /// Attempts that failed.
    pub failed_attempts: AtomicU64,
    /// Failed attempts since the last success (the alert reads this).
    pub consecutive_failed_attempts: AtomicU64,
    /// Streams reopened (on any device).
    pub recoveries: AtomicU64,
    /// Swaps to the default device.
    pub fallbacks: AtomicU64,
    /// Swaps back to the device asked for.
    pub returns: AtomicU64,
    /// Total silence inserted for gaps, in 16 kHz samples.
    pub gap_samples_16k: AtomicU64,
    /// True while the source is without a stream.
    pub recovering: AtomicBool,
    /// True while the source runs on the fallback device.
    pub on_fallback: AtomicBool,
    gaps: Mutex<Vec<GapRecord>>,
    device: Mutex<String>,
}

impl RecoveryStats {
    /// Every gap so far.
    pub fn gaps(&self) -> Vec<GapRecord> {
        self.gaps.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The device the source captures from now (empty while recovering).
    pub fn device(&self) -> String {
        self.device.lock().map(|d| d.clone()).unwrap_or_default()
    }

    pub(crate) fn push_gap(&self, gap: GapRecord) {
        if let Ok(mut gaps) = self.gaps.lock() {
            gaps.push(gap);
        }
    }

    fn set_device(&self, name: &str) {
        if let Ok(mut device) = self.device.lock() {
            name.clone_into(&mut device);
        }
    }
}

/// A freshly opened stream's ring and rate.
pub struct Opened {
    pub consumer: Consumer,
    pub rate_hz: u32,
    /// What happened, for the gap's reason.
    pub note: String,
}

/// A device source's current stream and what is needed to replace it.
pub struct DeviceFeed {
    spec: CaptureSpec,
    capacity: usize,
    stats: Arc<CaptureStats>,
    recovery: Arc<RecoveryStats>,
    stream: Option<CaptureStream>,
    fatal_errors_at_open: u64,
    frames_seen: u64,
    last_progress: Instant,
    on_fallback: bool,
    next_home_check: Instant,
    next_presence_check: Instant,
    /// The host that presence checks list devices on, kept between checks:
    /// each cpal PulseAudio host holds a server connection and a thread that
    /// outlive it, so a new host per check leaked one of each per second
    /// until the server refused clients (found by a 30-minute soak).
    presence_host: Option<std::sync::Arc<cpal::Host>>,
}

impl DeviceFeed {
    /// Opens the device `spec` names. Not real-time safe.
    pub fn open(
        spec: &CaptureSpec,
        capacity: usize,
        stats: Arc<CaptureStats>,
        recovery: Arc<RecoveryStats>,
    ) -> Result<(DeviceFeed, Opened), DeviceError> {
        let mut feed = DeviceFeed {
            spec: spec.clone(),
            capacity,
            stats,
            recovery,
            stream: None,
            fatal_errors_at_open: 0,
            frames_seen: 0,
            last_progress: Instant::now(),
            on_fallback: false,
            next_home_check: Instant::now(),
            next_presence_check: Instant::now() + PRESENCE_CHECK_INTERVAL,
            presence_host: None,
        };
        let opened = feed.open_spec(&spec.clone())?;
        Ok((feed, opened))
    }

    /// The counters every stream of this source counts into.
    pub fn capture_stats(&self) -> Arc<CaptureStats> {
        Arc::clone(&self.stats)
    }

    /// The running stream (none while recovering).
    pub fn stream(&self) -> Option<&CaptureStream> {
        self.stream.as_ref()
    }

    fn fatal_errors(&self) -> u64 {
        let errors = self.stats.stream_errors.load(Ordering::Acquire);
        errors.saturating_sub(self.stats.xruns.load(Ordering::Acquire))
    }

    fn open_spec(&mut self, spec: &CaptureSpec) -> Result<Opened, DeviceError> {
        self.recovery.attempts.fetch_add(1, Ordering::Relaxed);
        let result =
            CaptureStream::start_counting_into(spec, self.capacity, Arc::clone(&self.stats));
        match result {
            Ok((stream, consumer)) => {
                let rate_hz = stream.rate_hz();
                let note = format!("capturing from '{}'", stream.device_name());
                self.recovery.set_device(stream.device_name());
                self.fatal_errors_at_open = self.fatal_errors();
                self.frames_seen = self.stats.frames_captured.load(Ordering::Acquire);
                self.last_progress = Instant::now();
                self.next_presence_check = self.last_progress + PRESENCE_CHECK_INTERVAL;
                self.stream = Some(stream);
                self.recovery
                    .consecutive_failed_attempts
                    .store(0, Ordering::Relaxed);
                Ok(Opened {
                    consumer,
                    rate_hz,
                    note,
                })
            }
            Err(e) => {
                self.recovery
                    .failed_attempts
                    .fetch_add(1, Ordering::Relaxed);
                self.recovery
                    .consecutive_failed_attempts
                    .fetch_add(1, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Why the running stream is dead, if it is. Call it from the pump loop.
    pub fn check(&mut self, now: Instant) -> Option<String> {
        let stream = self.stream.as_ref()?;
        if self.fatal_errors() > self.fatal_errors_at_open {
            let code = self.stats.last_error_code.load(Ordering::Acquire);
            return Some(format!(
                "'{}' failed (stream error code {code})",
                stream.device_name()
            ));
        }
        let frames = self.stats.frames_captured.load(Ordering::Acquire);
        if frames != self.frames_seen {
            self.frames_seen = frames;
            self.last_progress = now;
        } else if now.duration_since(self.last_progress) > STALL_TIMEOUT {
            return Some(format!(
                "'{}' delivered nothing for {} ms",
                stream.device_name(),
                STALL_TIMEOUT.as_millis()
            ));
        }
        if self.on_fallback || self.spec.device.is_none() || now < self.next_presence_check {
            return None;
        }
        self.next_presence_check = now + PRESENCE_CHECK_INTERVAL;
        let name = stream.device_name().to_owned();
        let listed = self.is_listed();
        tracing::debug!(device = name, listed, "presence check");
        (!listed).then(|| format!("'{name}' is no longer listed"))
    }

    /// Whether the device asked for is in the host's device list. The host
    /// is kept unless it can no longer list devices (a broken connection).
    fn is_listed(&mut self) -> bool {
        use cpal::traits::HostTrait as _;
        let host = match self.presence_host.take() {
            Some(host) => host,
            None => match device::open_host(self.spec.host) {
                Ok(host) => host,
                Err(_) => return false,
            },
        };
        let listed = device::select(&host, self.spec.kind, self.spec.device.as_deref()).is_ok();
        if listed || host.devices().is_ok() {
            self.presence_host = Some(host);
        }
        listed
    }

    /// Stops the running stream (its ring stays readable).
    pub fn stop_stream(&mut self) {
        if let Some(stream) = self.stream.take() {
            stream.stop();
        }
    }

    /// Replaces a dead stream, following the policy in the module docs.
    /// Blocks until a stream runs or `stop` is set (then `None`). Stop the
    /// old stream and drain its ring first.
    pub fn reopen(&mut self, stop: &AtomicBool) -> Option<Opened> {
        self.stop_stream();
        self.recovery.failures.fetch_add(1, Ordering::Relaxed);
        self.recovery.recovering.store(true, Ordering::Release);
        let asked = self.spec.clone();
        let fallback = asked.device.is_some().then(|| CaptureSpec {
            device: None,
            ..asked.clone()
        });
        let mut attempt = 0u32;
        let opened = loop {
            let wait = if attempt < FAST_ATTEMPTS {
                SETTLE
            } else {
                SLOW_RETRY_INTERVAL
            };
            if !sleep_unless_stopped(wait, stop) {
                break None;
            }
            attempt += 1;
            match self.open_spec(&asked) {
                Ok(opened) => {
                    self.set_fallback(false);
                    break Some(opened);
                }
                Err(e) => tracing::warn!(attempt, "reopening capture failed: {e}"),
            }
            if let (true, Some(fallback)) = (attempt >= FAST_ATTEMPTS, &fallback) {
                match self.open_spec(fallback) {
                    Ok(mut opened) => {
                        self.set_fallback(true);
                        self.recovery.fallbacks.fetch_add(1, Ordering::Relaxed);
                        opened.note = format!("fell back to the default: {}", opened.note);
                        break Some(opened);
                    }
                    Err(e) => tracing::warn!(attempt, "opening the default device failed: {e}"),
                }
            }
        };
        self.recovery.recovering.store(false, Ordering::Release);
        if let Some(opened) = &opened {
            self.recovery.recoveries.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(attempt, "capture recovered: {}", opened.note);
        }
        opened
    }

    fn set_fallback(&mut self, on: bool) {
        self.on_fallback = on;
        self.recovery.on_fallback.store(on, Ordering::Release);
        self.next_home_check = Instant::now() + HOME_CHECK_INTERVAL;
    }

    /// On the fallback device: whether the device asked for is listed again
    /// (checked every [`HOME_CHECK_INTERVAL`]). Cheap when not due.
    pub fn home_is_back(&mut self, now: Instant) -> bool {
        if !self.on_fallback || now < self.next_home_check {
            return false;
        }
        self.next_home_check = now + HOME_CHECK_INTERVAL;
        self.is_listed()
    }

    /// Swaps from the fallback to the device asked for. Stop the old stream
    /// and drain its ring first (see [`DeviceFeed::stop_stream`]). If the
    /// device fails to open after all, the fallback is reopened; `None` only
    /// when neither opens (then call [`DeviceFeed::reopen`]).
    pub fn go_home(&mut self) -> Option<Opened> {
        self.stop_stream();
        let asked = self.spec.clone();
        match self.open_spec(&asked) {
            Ok(mut opened) => {
                self.set_fallback(false);
                self.recovery.returns.fetch_add(1, Ordering::Relaxed);
                opened.note = format!("back on the device asked for: {}", opened.note);
                tracing::info!("{}", opened.note);
                Some(opened)
            }
            Err(e) => {
                tracing::warn!("the device asked for is listed but did not open: {e}");
                let fallback = CaptureSpec {
                    device: None,
                    ..asked
                };
                let opened = self.open_spec(&fallback).ok();
                self.set_fallback(opened.is_some());
                opened
            }
        }
    }
}

/// Sleeps `total` in short steps; false if `stop` was set meanwhile.
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) -> bool {
    const STEP: Duration = Duration::from_millis(20);
    let until = Instant::now() + total;
    loop {
        if stop.load(Ordering::Acquire) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(STEP.min(until - now));
    }
}
