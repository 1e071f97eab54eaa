//! A running capture stream: device callback -> hand-off ring.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cpal::traits::{DeviceTrait, StreamTrait};

use super::callback::CallbackBody;
use super::device::{self, Selected};
use super::error::DeviceError;
use super::stats::{CaptureStats, PriorityState};
use super::CaptureSpec;
use crate::handoff::{self, Consumer};

/// How long opening a stream may take before it counts as failed.
pub const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// ALSA period asked for: the ALSA host (through the PulseAudio plugin)
/// measured here delivers 2/3 of the request, so 45 ms gives 30 ms periods.
pub const ALSA_REQUEST: Duration = Duration::from_millis(45);

/// An open, running input stream. Dropping it (or [`CaptureStream::stop`])
/// stops the device.
pub struct CaptureStream {
    stream: cpal::Stream,
    stats: Arc<CaptureStats>,
    rate_hz: u32,
    channels: u16,
    device_name: String,
    host: cpal::HostId,
    realtime_logged: AtomicBool,
}

impl CaptureStream {
    /// Opens the device `spec` names and starts it. Mono `f32` samples at
    /// [`CaptureStream::rate_hz`] arrive in the returned consumer, whose ring
    /// holds `ring_capacity_samples` (see [`handoff::capacity_for`]).
    ///
    /// Buffer sizes: the PulseAudio host runs with `BufferSize::Default`
    /// because fixed sizes there were measured to drop samples silently;
    /// latency is then set by the pump's chunk size (see [`crate::sizer`]).
    ///
    /// Not real-time safe.
    pub fn start(
        spec: &CaptureSpec,
        ring_capacity_samples: usize,
    ) -> Result<(CaptureStream, Consumer), DeviceError> {
        let stats = Arc::new(CaptureStats::new(Arc::default()));
        Self::start_counting_into(spec, ring_capacity_samples, stats)
    }

    /// Like [`CaptureStream::start`], but counts into `stats` (and its ring
    /// counters), which earlier streams of the same source may have counted
    /// into: totals run on across a device swap. Stop the previous stream
    /// first; two live streams must not share counters.
    ///
    /// Not real-time safe.
    pub fn start_counting_into(
        spec: &CaptureSpec,
        ring_capacity_samples: usize,
        stats: Arc<CaptureStats>,
    ) -> Result<(CaptureStream, Consumer), DeviceError> {
        let host = device::open_host(spec.host)?;
        let host_name = host.id().name();
        let Selected {
            device,
            name,
            output_loopback,
        } = device::select(&host, spec.kind, spec.device.as_deref())?;
        let open_err = |e: cpal::Error| DeviceError::from_cpal(&e, host_name, &name);
        let supported = if output_loopback {
            device.default_output_config()
        } else {
            device.default_input_config()
        }
        .map_err(open_err)?;
        let mut config = supported.config();
        config.buffer_size = buffer_size_for(host.id(), &supported);

        let (producer, consumer) =
            handoff::ring_counting_into(ring_capacity_samples, Arc::clone(&stats.ring));
        let mut body =
            CallbackBody::new(config.channels, producer, Arc::clone(&stats), spec.realtime);
        let error_stats = Arc::clone(&stats);
        let stream = device
            .build_input_stream_raw(
                config,
                supported.sample_format(),
                move |data: &cpal::Data, _: &cpal::InputCallbackInfo| body.on_data(data),
                // cpal hands over an owned error; we keep only its kind.
                // Real-time safe except for dropping `err` (the contract's
                // second exception, src/lib.rs).
                move |err: cpal::Error| error_stats.record_error(err.kind()),
                Some(OPEN_TIMEOUT),
            )
            .map_err(open_err)?;
        stream.play().map_err(open_err)?;
        tracing::info!(
            host = host_name,
            device = %name,
            rate_hz = config.sample_rate,
            channels = config.channels,
            format = %supported.sample_format(),
            buffer = ?config.buffer_size,
            "capture started"
        );
        Ok((
            CaptureStream {
                stream,
                stats,
                rate_hz: config.sample_rate,
                channels: config.channels,
                device_name: name,
                host: host.id(),
                realtime_logged: AtomicBool::new(false),
            },
            consumer,
        ))
    }

    /// Sample rate of the samples in the ring (the device's rate).
    pub fn rate_hz(&self) -> u32 {
        self.rate_hz
    }

    /// Channels the device delivers (downmixed to mono before the ring).
    pub fn device_channels(&self) -> u16 {
        self.channels
    }

    /// The device's name as `--device` accepts it.
    pub fn device_name(&self) -> &str {
        &self.device_name
    }

    /// The audio host in use.
    pub fn host(&self) -> cpal::HostId {
        self.host
    }

    /// The live counters.
    pub fn stats(&self) -> Arc<CaptureStats> {
        Arc::clone(&self.stats)
    }

    /// Logs, once, whether the callback thread got real-time priority and a
    /// pinned core. Returns true when it logged. Call it from the pump loop.
    ///
    /// Not real-time safe.
    pub fn log_realtime_status(&self) -> bool {
        let priority = self.stats.priority();
        if priority == PriorityState::Pending || self.realtime_logged.swap(true, Ordering::AcqRel) {
            return false;
        }
        let core = self.stats.pinned_core();
        match priority {
            PriorityState::Refused => tracing::warn!(
                os_error = self.stats.priority_os_error.load(Ordering::Acquire),
                pinned_core = ?core,
                "capture thread runs without real-time priority (OS refused)"
            ),
            _ => tracing::info!(?priority, pinned_core = ?core, "capture thread scheduling"),
        }
        true
    }

    /// Stops the device. Samples already in the ring stay readable.
    ///
    /// Not real-time safe.
    pub fn stop(self) {
        let _ = self.stream.pause();
        drop(self.stream);
    }
}

fn buffer_size_for(
    host: cpal::HostId,
    supported: &cpal::SupportedStreamConfig,
) -> cpal::BufferSize {
    #[cfg(target_os = "linux")]
    if host == cpal::HostId::Alsa {
        let frames = (ALSA_REQUEST.as_secs_f64() * f64::from(supported.sample_rate())) as u32;
        if let cpal::SupportedBufferSize::Range { min, max } = supported.buffer_size() {
            if (*min..=*max).contains(&frames) {
                return cpal::BufferSize::Fixed(frames);
            }
        }
    }
    let _ = (host, supported);
    cpal::BufferSize::Default
}
