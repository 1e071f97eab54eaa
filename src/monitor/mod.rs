//! Monitoring: samples the process and the pipeline on a timer, off the
//! real-time thread, raises alerts, and serves the numbers in Prometheus'
//! text format.
//!
//! - [`sample`]: one [`Sample`] (sysinfo for CPU, memory and temperature;
//!   the pipeline's own atomics for rings, xruns, inference and recovery).
//! - [`alert`]: thresholds over samples, logged as `warn!` and counted.
//! - [`exporter`]: the Prometheus registry and a loopback HTTP listener
//!   ([`serve`]).
//! - [`watcher`]: [`Monitor`], the thread that ties them together on a
//!   timer, for `hark live` and the soak.
//!
//! Everything here is not real-time safe.

pub mod alert;
pub mod exporter;
pub mod sample;
pub mod watcher;

pub use alert::{AlertCounts, Alerts, CPU_SUSTAIN, CPU_THRESHOLD_PERCENT, MEMORY_THRESHOLD_BYTES};
pub use exporter::{serve, MetricsServer};
pub use exporter::{ExporterError, Metrics};
pub use sample::{Sample, Sampler, SourceSample};
pub use watcher::{
    Monitor, MonitorConfig, MonitorError, MonitorReport, WriterProbe, DEFAULT_SAMPLE_INTERVAL,
};
