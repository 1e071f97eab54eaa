//! Library errors about a value the user gave with a flag, told with the
//! flag's name. The library's errors carry the value and what is wrong with
//! it; only the CLI knows which flag the value came from.

use crate::capture::error::list_or_none;
use crate::capture::DeviceError;
use crate::class::ErrorClass;
use crate::monitor::{ExporterError, MonitorError};
use crate::pipeline::PipelineError;
use crate::session::SessionError;
use crate::soak::SoakError;

/// An error that names the flag whose value caused it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FlagError {
    message: String,
    class: ErrorClass,
}

impl FlagError {
    /// The class of the error it was made from.
    pub fn class(&self) -> ErrorClass {
        self.class
    }
}

/// Which flag gave which device name, and the metrics address flag.
#[derive(Debug, Default)]
pub struct Flags<'a> {
    /// `(flag, name)` pairs, e.g. `("--mic-device", "USB")`.
    pub devices: Vec<(&'static str, &'a str)>,
    /// Whether `--metrics-addr` was given.
    pub metrics_addr: bool,
}

impl Flags<'_> {
    /// `err` with the flag named, if one of its causes is about a flag's
    /// value; else `err` unchanged. The pipeline's wrappers are transparent
    /// (a chain walk never sees what they wrap), so they are opened here.
    pub fn name_in(&self, err: anyhow::Error) -> anyhow::Error {
        let named = err.chain().find_map(|cause| self.named(cause));
        match named {
            Some(named) => anyhow::Error::new(named),
            None => err,
        }
    }

    fn named(&self, cause: &(dyn std::error::Error + 'static)) -> Option<FlagError> {
        if let Some(e) = cause.downcast_ref::<SoakError>() {
            return match e {
                SoakError::Pipeline(e) => self.named(e),
                SoakError::Session(e) => self.named(e),
                SoakError::Monitor(e) => self.named(e),
                _ => None,
            };
        }
        if let Some(e) = cause.downcast_ref::<SessionError>() {
            return match e {
                SessionError::Pipeline(e) => self.named(e),
                SessionError::Monitor(e) => self.named(e),
            };
        }
        if let Some(PipelineError::Device(e)) = cause.downcast_ref::<PipelineError>() {
            return self.device(e);
        }
        if let Some(MonitorError::Exporter(e)) = cause.downcast_ref::<MonitorError>() {
            return self.named(e);
        }
        if let Some(e) = cause.downcast_ref::<DeviceError>() {
            return self.device(e);
        }
        if let Some(e) = cause.downcast_ref::<ExporterError>() {
            return self.metrics_addr.then(|| metrics(e)).flatten();
        }
        None
    }

    fn flag_of(&self, name: &str) -> Option<&'static str> {
        self.devices
            .iter()
            .find(|(_, given)| *given == name)
            .map(|(flag, _)| *flag)
    }

    fn device(&self, err: &DeviceError) -> Option<FlagError> {
        let message = match err {
            DeviceError::NoSuchDevice { name, available } => format!(
                "no capture device matches {} '{name}'; available: {}; see `hark devices`",
                self.flag_of(name)?,
                list_or_none(available)
            ),
            DeviceError::AmbiguousDevice { name, matches } => format!(
                "{} '{name}' matches several devices: {}; give the full name",
                self.flag_of(name)?,
                matches.join(", ")
            ),
            _ => return None,
        };
        Some(FlagError {
            message,
            class: ErrorClass::Device,
        })
    }
}

fn metrics(err: &ExporterError) -> Option<FlagError> {
    let message = match err {
        ExporterError::NotLoopback { addr } => {
            format!("--metrics-addr {addr}: only loopback addresses are served (127.0.0.1 or ::1)")
        }
        ExporterError::Bind { addr, detail } => {
            format!("--metrics-addr {addr}: cannot listen: {detail}")
        }
        _ => return None,
    };
    Some(FlagError {
        message,
        class: ErrorClass::Usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_errors_name_the_flag_the_name_came_from() {
        let flags = Flags {
            devices: vec![("--mic-device", "usb"), ("--loopback-device", "hdmi")],
            metrics_addr: false,
        };
        let err = flags.name_in(anyhow::Error::new(DeviceError::NoSuchDevice {
            name: "hdmi".into(),
            available: vec!["a.monitor".into()],
        }));
        assert_eq!(
            err.to_string(),
            "no capture device matches --loopback-device 'hdmi'; available: a.monitor; \
             see `hark devices`"
        );
        assert_eq!(crate::cli::exit_code(&err), crate::cli::EXIT_DEVICE);
        let err = flags.name_in(anyhow::Error::new(DeviceError::AmbiguousDevice {
            name: "usb".into(),
            matches: vec!["usb 1".into(), "usb 2".into()],
        }));
        assert_eq!(
            err.to_string(),
            "--mic-device 'usb' matches several devices: usb 1, usb 2; give the full name"
        );
        // A name no flag gave (the default device) keeps the library's text.
        let err = flags.name_in(anyhow::Error::new(DeviceError::NoSuchDevice {
            name: "default".into(),
            available: Vec::new(),
        }));
        assert_eq!(
            err.to_string(),
            "no capture device matches 'default'; available: none"
        );
    }

    #[test]
    fn metrics_errors_name_the_flag_and_stay_usage_errors() {
        let flags = Flags {
            devices: Vec::new(),
            metrics_addr: true,
        };
        let addr = "0.0.0.0:9".parse().unwrap();
        let err = flags
            .name_in(anyhow::Error::new(ExporterError::NotLoopback { addr }).context("starting"));
        assert_eq!(
            err.to_string(),
            "--metrics-addr 0.0.0.0:9: only loopback addresses are served (127.0.0.1 or ::1)"
        );
        assert_eq!(crate::cli::exit_code(&err), crate::cli::EXIT_USAGE);
        let plain = ExporterError::NotLoopback { addr }.to_string();
        assert!(!plain.contains("--"), "{plain}");
    }
}
