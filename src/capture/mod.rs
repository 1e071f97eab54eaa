//! Capture: opens a microphone or system-audio (loopback) input with cpal
//! and runs the device callback, the one real-time thread of the pipeline.
//!
//! The callback ([`CallbackBody`]) converts any sample format to `f32`,
//! downmixes to mono in preallocated scratch and pushes into the hand-off
//! ring ([`crate::handoff`]); it counts frames, overflow, errors and its own
//! worst-case duration in atomics ([`CaptureStats`]) and does nothing else.
//! On its first call it pins and raises its own thread ([`priority`]).
//!
//! Loopback per platform: on Linux the PulseAudio host's `.monitor` source
//! of a sink (PipeWire's pulse server offers the same); on Windows (WASAPI)
//! and macOS (CoreAudio, 14.6+) an input stream built on an output device
//! with its output config. Only Linux is tested here.

pub mod callback;
pub mod device;
pub mod error;
pub mod priority;
pub mod stats;
pub mod stream;

pub use callback::CallbackBody;
pub use device::{DeviceEntry, HostEntry};
pub use error::DeviceError;
pub use priority::RealtimeRequest;
pub use stats::{CaptureSnapshot, CaptureStats, PriorityState};
pub use stream::CaptureStream;

/// What to capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A microphone (a real input, not a monitor).
    Mic,
    /// What the system plays (a sink's monitor / an output device).
    Loopback,
}

/// Which device to open, on which host, with which thread scheduling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    pub kind: SourceKind,
    /// A name or unique substring as listed by `hark devices`; `None` for
    /// the default (for loopback: the monitor of the default output).
    pub device: Option<String>,
    /// The audio host; `None` picks one (see [`device::open_host`]).
    pub host: Option<cpal::HostId>,
    /// Pinning and priority for the callback thread.
    pub realtime: RealtimeRequest,
}

impl CaptureSpec {
    /// The default device of `kind` on the automatically chosen host.
    pub fn new(kind: SourceKind) -> Self {
        CaptureSpec {
            kind,
            device: None,
            host: None,
            realtime: RealtimeRequest::default(),
        }
    }

    /// The same spec naming a device.
    pub fn with_device(mut self, name: impl Into<String>) -> Self {
        self.device = Some(name.into());
        self
    }
}
