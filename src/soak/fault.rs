//! Fault injection: remove a device by unloading its module from the
//! private sound server, and bring it back.

use super::SoakError;
use crate::soundserver::{self, SoundServer};

/// A device the soak can remove and restore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removable {
    /// The `spk` null sink (its monitor is the loopback source).
    Speaker,
    /// The `vmic` remapped source (the microphone).
    Mic,
}

impl Removable {
    /// The sink the programme plays into for this device.
    pub fn sink(self) -> &'static str {
        match self {
            Removable::Speaker => soundserver::SPEAKER_SINK,
            Removable::Mic => soundserver::MIC_FEED_SINK,
        }
    }

    /// The capture device name.
    pub fn device(self) -> &'static str {
        match self {
            Removable::Speaker => soundserver::SPEAKER_MONITOR,
            Removable::Mic => soundserver::MIC_SOURCE,
        }
    }

    fn module_marker(self) -> String {
        match self {
            Removable::Speaker => format!("sink_name={}", soundserver::SPEAKER_SINK),
            Removable::Mic => format!("source_name={}", soundserver::MIC_SOURCE),
        }
    }
}

/// Unloads the module providing `device` (streams on it die).
pub fn remove(server: &SoundServer, device: Removable) -> Result<(), SoakError> {
    let modules = server.pactl(&["list", "short", "modules"])?;
    let marker = device.module_marker();
    let index = modules
        .lines()
        .find(|l| l.contains(&marker))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|i| i.parse::<u32>().ok())
        .ok_or_else(|| SoakError::Fault(format!("no module with {marker} to unload")))?;
    server.unload_module(index)?;
    Ok(())
}

/// Loads the device again as [`SoundServer::start`] made it.
pub fn restore(server: &SoundServer, device: Removable) -> Result<(), SoakError> {
    match device {
        Removable::Speaker => {
            let sink = soundserver::SPEAKER_SINK;
            server.load_module(
                "module-null-sink",
                &[
                    &format!("sink_name={sink}"),
                    "sink_properties=device.description=Speaker",
                ],
            )?;
            server.load_module(
                "module-loopback",
                &["source=keeper", &format!("sink={sink}"), "latency_msec=10"],
            )?;
            server.pactl(&["set-default-sink", sink])?;
        }
        Removable::Mic => {
            let source = soundserver::MIC_SOURCE;
            server.load_module(
                "module-remap-source",
                &[
                    &format!("master={}.monitor", soundserver::MIC_FEED_SINK),
                    &format!("source_name={source}"),
                    "source_properties=device.description=VirtualMic",
                ],
            )?;
            server.pactl(&["set-default-source", source])?;
        }
    }
    Ok(())
}
