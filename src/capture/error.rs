//! Why a capture device could not be opened or kept running.

/// A capture failure, phrased so the user knows what to do next.
/// [`DeviceError::retryable`] tells recovery logic whether trying again
/// later may help.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No sound server (PulseAudio / PipeWire) or audio host is reachable.
    #[error(
        "no sound server reachable ({host}: {detail}); start PulseAudio or PipeWire, \
         or point PULSE_SERVER at a running server"
    )]
    NoSoundServer { host: String, detail: String },
    /// Nothing matches the requested device name.
    #[error(
        "no capture device matches '{name}'; available: {}",
        list_or_none(available)
    )]
    NoSuchDevice {
        name: String,
        available: Vec<String>,
    },
    /// The name matches more than one device.
    #[error(
        "device name '{name}' matches several devices: {}; give the full name",
        matches.join(", ")
    )]
    AmbiguousDevice { name: String, matches: Vec<String> },
    /// The device exists but another program holds it.
    #[error("device '{device}' is busy ({detail}); close the program using it or pick another")]
    DeviceBusy { device: String, detail: String },
    /// The OS or sound server refused access.
    #[error(
        "no permission to open device '{device}' ({detail}); check microphone permissions \
         or audio group membership"
    )]
    PermissionDenied { device: String, detail: String },
    /// The host or device cannot do what was asked (e.g. loopback on ALSA).
    #[error("device '{device}' cannot be captured this way: {detail}")]
    Unsupported { device: String, detail: String },
    /// Anything else the audio backend reported.
    #[error("audio device '{device}' failed: {detail}")]
    Other { device: String, detail: String },
}

impl DeviceError {
    /// Whether retrying later may succeed: a server can be restarted, a
    /// device plugged in or released, a transient backend error pass. Bad
    /// permissions, unsupported requests and ambiguous names need the user.
    pub fn retryable(&self) -> bool {
        match self {
            DeviceError::NoSoundServer { .. }
            | DeviceError::NoSuchDevice { .. }
            | DeviceError::DeviceBusy { .. }
            | DeviceError::Other { .. } => true,
            DeviceError::AmbiguousDevice { .. }
            | DeviceError::PermissionDenied { .. }
            | DeviceError::Unsupported { .. } => false,
        }
    }

    /// Maps a cpal error met while opening `device` on `host`.
    pub(crate) fn from_cpal(err: &cpal::Error, host: &str, device: &str) -> Self {
        use cpal::ErrorKind as K;
        let detail = err.to_string();
        let device = device.to_owned();
        match err.kind() {
            K::HostUnavailable => DeviceError::NoSoundServer {
                host: host.to_owned(),
                detail,
            },
            K::DeviceNotAvailable => DeviceError::NoSuchDevice {
                name: device,
                available: Vec::new(),
            },
            K::DeviceBusy => DeviceError::DeviceBusy { device, detail },
            K::PermissionDenied | K::RealtimeDenied => {
                DeviceError::PermissionDenied { device, detail }
            }
            K::UnsupportedConfig | K::UnsupportedOperation | K::InvalidInput => {
                DeviceError::Unsupported { device, detail }
            }
            _ => DeviceError::Other { device, detail },
        }
    }
}

/// The names, or "none".
pub fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
