//! Finding hosts and devices by name, and listing them for `hark devices`.
//!
//! Device names are the host's own identifiers (`DeviceId::id`): on the
//! PulseAudio host the source/sink name (`spk.monitor`, `vmic`), on ALSA the
//! PCM name. `--device` takes such a name, or a unique substring of a name
//! or description (case-insensitive).

use std::sync::{Arc, Mutex, MutexGuard};

use cpal::traits::{DeviceTrait, HostTrait};

use super::error::DeviceError;
use super::SourceKind;

/// Suffix PulseAudio gives the source that records what a sink plays.
pub const MONITOR_SUFFIX: &str = ".monitor";

/// One device as listed by [`list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The name `--device` accepts.
    pub name: String,
    /// Human-readable description.
    pub description: String,
    pub input: bool,
    pub output: bool,
    pub default_input: bool,
    pub default_output: bool,
    /// Can be captured with `--source loopback` (records what plays).
    pub loopback: bool,
}

/// The devices of one host, or why they could not be listed.
#[derive(Debug, Clone)]
pub struct HostEntry {
    pub host: cpal::HostId,
    pub devices: Result<Vec<DeviceEntry>, String>,
}

/// Parses a host name as printed by `hark devices` (case-insensitive).
pub fn parse_host(name: &str) -> Result<cpal::HostId, DeviceError> {
    let hosts = cpal::ALL_HOSTS;
    hosts
        .iter()
        .copied()
        .find(|h| h.name().eq_ignore_ascii_case(name))
        .ok_or_else(|| DeviceError::Unsupported {
            device: name.to_owned(),
            detail: format!(
                "unknown audio host; this build knows: {}",
                hosts
                    .iter()
                    .map(|h| h.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// Opens the host `choice`, or picks one: on Linux the PulseAudio host
/// (PulseAudio or PipeWire's pulse server) when a server is reachable, else
/// ALSA; elsewhere the platform default.
///
/// Hosts are opened once per process and shared: a PulseAudio host is a
/// client connection with a reactor thread that never ends once opened
/// (cpal 0.18), so opening one per device reopen leaked a client, a thread
/// and a socket each time (the server refuses clients past 64, desktop-wide).
/// A shared host whose connection broke (it can no longer list devices) is
/// replaced.
///
/// Not real-time safe.
pub fn open_host(choice: Option<cpal::HostId>) -> Result<Arc<cpal::Host>, DeviceError> {
    let id = match choice {
        Some(id) => id,
        None => return Ok(auto_host()),
    };
    shared_host(id).map_err(|e| DeviceError::NoSoundServer {
        host: id.name().to_owned(),
        detail: e.to_string(),
    })
}

/// The hosts opened so far, one per id.
fn hosts() -> MutexGuard<'static, Vec<Arc<cpal::Host>>> {
    static HOSTS: Mutex<Vec<Arc<cpal::Host>>> = Mutex::new(Vec::new());
    HOSTS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared host `id`, opened if there is none or its connection broke.
fn shared_host(id: cpal::HostId) -> Result<Arc<cpal::Host>, cpal::Error> {
    use cpal::traits::HostTrait as _;
    let mut hosts = hosts();
    if let Some(at) = hosts.iter().position(|h| h.id() == id) {
        if hosts[at].devices().is_ok() {
            return Ok(hosts[at].clone());
        }
        hosts.remove(at);
    }
    let host = Arc::new(cpal::host_from_id(id)?);
    hosts.push(host.clone());
    Ok(host)
}

#[cfg(target_os = "linux")]
fn auto_host() -> Arc<cpal::Host> {
    if cpal::available_hosts().contains(&cpal::HostId::PulseAudio) {
        if let Ok(host) = shared_host(cpal::HostId::PulseAudio) {
            return host;
        }
    }
    shared_host(cpal::HostId::Alsa).unwrap_or_else(|_| Arc::new(cpal::default_host()))
}

#[cfg(not(target_os = "linux"))]
fn auto_host() -> Arc<cpal::Host> {
    let id = cpal::default_host().id();
    shared_host(id).unwrap_or_else(|_| Arc::new(cpal::default_host()))
}

/// The name of a device (its host identifier), or its description.
pub fn device_name(device: &cpal::Device) -> String {
    device
        .id()
        .map(|id| id.id().to_owned())
        .or_else(|_| device.description().map(|d| d.name().to_owned()))
        .unwrap_or_else(|_| "<unnamed>".to_owned())
}

fn device_description(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_owned())
        .unwrap_or_default()
}

fn is_pulse(host: &cpal::Host) -> bool {
    #[cfg(target_os = "linux")]
    {
        host.id() == cpal::HostId::PulseAudio
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = host;
        false
    }
}

fn is_alsa_like(host: &cpal::Host) -> bool {
    #[cfg(target_os = "linux")]
    {
        host.id() == cpal::HostId::Alsa
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = host;
        false
    }
}

/// How a chosen device is to be opened.
pub struct Selected {
    pub device: cpal::Device,
    pub name: String,
    /// True when the device is an output captured as loopback (WASAPI,
    /// CoreAudio): its config comes from `default_output_config`.
    pub output_loopback: bool,
}

/// Finds the device for `kind` and the optional `--device` name on `host`.
///
/// Not real-time safe.
pub fn select(
    host: &cpal::Host,
    kind: SourceKind,
    wanted: Option<&str>,
) -> Result<Selected, DeviceError> {
    let host_name = host.id().name();
    let list_err = |e: cpal::Error| DeviceError::from_cpal(&e, host_name, wanted.unwrap_or(""));
    let output_loopback = kind == SourceKind::Loopback && !is_pulse(host) && !is_alsa_like(host);
    let candidates: Vec<cpal::Device> = if output_loopback {
        host.output_devices().map_err(list_err)?.collect()
    } else {
        let inputs = host.input_devices().map_err(list_err)?;
        inputs
            .filter(|d| {
                !is_pulse(host) || {
                    let monitor = device_name(d).ends_with(MONITOR_SUFFIX);
                    monitor == (kind == SourceKind::Loopback)
                }
            })
            .collect()
    };
    let names: Vec<String> = candidates.iter().map(device_name).collect();

    let Some(wanted) = wanted else {
        let default = match kind {
            SourceKind::Mic => host.default_input_device(),
            SourceKind::Loopback if output_loopback => host.default_output_device(),
            SourceKind::Loopback if is_pulse(host) => {
                // The monitor of the default sink records what plays there.
                let sink = host.default_output_device().map(|d| device_name(&d));
                sink.and_then(|sink| {
                    let monitor = format!("{sink}{MONITOR_SUFFIX}");
                    candidates
                        .iter()
                        .find(|d| device_name(d) == monitor)
                        .cloned()
                })
            }
            SourceKind::Loopback => {
                return Err(DeviceError::Unsupported {
                    device: "default".to_owned(),
                    detail: format!(
                        "the {host_name} host has no loopback; use the PulseAudio host or name \
                         a loopback device"
                    ),
                })
            }
        };
        return match default {
            Some(device) => Ok(Selected {
                name: device_name(&device),
                device,
                output_loopback,
            }),
            None => Err(DeviceError::NoSuchDevice {
                name: "default".to_owned(),
                available: names,
            }),
        };
    };

    let lower = wanted.to_lowercase();
    let exact = candidates.iter().position(|d| {
        device_name(d).eq_ignore_ascii_case(wanted)
            || device_description(d).eq_ignore_ascii_case(wanted)
    });
    let index = match exact {
        Some(i) => i,
        None => {
            let matches: Vec<usize> = candidates
                .iter()
                .enumerate()
                .filter(|(_, d)| {
                    device_name(d).to_lowercase().contains(&lower)
                        || device_description(d).to_lowercase().contains(&lower)
                })
                .map(|(i, _)| i)
                .collect();
            match matches.as_slice() {
                [i] => *i,
                [] => {
                    return Err(DeviceError::NoSuchDevice {
                        name: wanted.to_owned(),
                        available: names,
                    })
                }
                many => {
                    return Err(DeviceError::AmbiguousDevice {
                        name: wanted.to_owned(),
                        matches: many.iter().map(|&i| names[i].clone()).collect(),
                    })
                }
            }
        }
    };
    Ok(Selected {
        device: candidates[index].clone(),
        name: names[index].clone(),
        output_loopback,
    })
}

/// Lists every available host's devices.
///
/// Not real-time safe.
pub fn list() -> Vec<HostEntry> {
    cpal::available_hosts()
        .into_iter()
        .map(|id| HostEntry {
            host: id,
            devices: cpal::host_from_id(id)
                .map_err(|e| e.to_string())
                .and_then(|host| list_host(&host)),
        })
        .collect()
}

fn list_host(host: &cpal::Host) -> Result<Vec<DeviceEntry>, String> {
    let default_in = host.default_input_device().map(|d| device_name(&d));
    let default_out = host.default_output_device().map(|d| device_name(&d));
    let pulse = is_pulse(host);
    let outputs_loop = !pulse && !is_alsa_like(host);
    let devices = host.devices().map_err(|e| e.to_string())?;
    Ok(devices
        .map(|d| {
            let name = device_name(&d);
            let input = d.supports_input();
            let output = d.supports_output();
            DeviceEntry {
                description: device_description(&d),
                default_input: input && default_in.as_deref() == Some(name.as_str()),
                default_output: output && default_out.as_deref() == Some(name.as_str()),
                loopback: (pulse && input && name.ends_with(MONITOR_SUFFIX))
                    || (outputs_loop && output),
                input,
                output,
                name,
            }
        })
        .collect())
}
