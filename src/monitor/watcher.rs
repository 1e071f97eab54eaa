//! The monitor thread: samples the process and the pipeline on a timer, off
//! the real-time thread, raises alerts, keeps the Prometheus gauges current
//! and serves them when an address is given.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender};

use super::exporter::{self, ExporterError, Metrics, MetricsServer};
use super::{AlertCounts, Alerts, Sample, Sampler};
use crate::pipeline::SourceStats;
use crate::transcript::WriterMetrics;

/// The default time between samples.
pub const DEFAULT_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);

/// Reads the transcript writer's counters (e.g. `move || writer.metrics()`
/// over an `Arc<Writer>`).
pub type WriterProbe = Box<dyn Fn() -> WriterMetrics + Send>;

/// How the monitor runs.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Time between samples.
    pub interval: Duration,
    /// Serve Prometheus text here (loopback only; port 0 picks one).
    pub metrics_addr: Option<SocketAddr>,
    /// Keep every sample, returned by [`Monitor::stop`] (the soak plots
    /// them); otherwise only the latest is kept.
    pub keep_history: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            interval: DEFAULT_SAMPLE_INTERVAL,
            metrics_addr: None,
            keep_history: false,
        }
    }
}

/// Why the monitor could not start.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Exporter(#[from] ExporterError),
    #[error("cannot start the monitor thread: {0}")]
    Thread(std::io::Error),
}

/// What a monitor saw, given back by [`Monitor::stop`].
#[derive(Debug, Clone, Default)]
pub struct MonitorReport {
    /// Every sample when `keep_history` was set, else none.
    pub samples: Vec<Sample>,
    /// Alert episodes, the last sample included.
    pub alerts: AlertCounts,
}

/// What the sampling thread and its readers share.
struct Shared {
    latest: Mutex<Sample>,
    alerts: Mutex<AlertCounts>,
}

/// A running monitor; [`Monitor::stop`] (or dropping it) ends the thread
/// and the metrics listener.
pub struct Monitor {
    shared: Arc<Shared>,
    sampler_started: Instant,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<Vec<Sample>>>,
    server: Option<MetricsServer>,
}

impl Monitor {
    /// Takes a first sample at once, then one every `config.interval` on
    /// its own thread. `buffer_ms` is the pump's chunk as the pipeline
    /// shares it ([`crate::pipeline::Pipeline::chunk_ms_handle`]).
    /// Not real-time safe.
    pub fn spawn(
        config: MonitorConfig,
        sources: Vec<Arc<SourceStats>>,
        buffer_ms: Arc<AtomicU32>,
        writer: Option<WriterProbe>,
    ) -> Result<Monitor, MonitorError> {
        let mut sampler = Sampler::new();
        let sampler_started = sampler.started();
        let metrics = Arc::new(Mutex::new(Metrics::new()));
        let mut alerts = Alerts::default();
        let first = sampler.sample(&sources, buffer_ms.load(Ordering::Relaxed));
        alerts.observe(&first);
        publish(&metrics, &first, alerts.counts(), writer.as_ref());
        let shared = Arc::new(Shared {
            latest: Mutex::new(first.clone()),
            alerts: Mutex::new(alerts.counts()),
        });
        let server = match config.metrics_addr {
            Some(addr) => Some(exporter::serve(addr, Arc::clone(&metrics))?),
            None => None,
        };
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("hark-monitor".into())
            .spawn(move || {
                let mut history = Vec::new();
                if config.keep_history {
                    history.push(first);
                }
                let mut next = Instant::now() + config.interval;
                loop {
                    let wait = next.saturating_duration_since(Instant::now());
                    // A stop (the sender dropped) still takes a last sample.
                    let stopping =
                        !matches!(stopped.recv_timeout(wait), Err(RecvTimeoutError::Timeout));
                    let sample = sampler.sample(&sources, buffer_ms.load(Ordering::Relaxed));
                    alerts.observe(&sample);
                    record(&thread_shared, &sample, alerts.counts());
                    publish(&metrics, &sample, alerts.counts(), writer.as_ref());
                    lock(&metrics).update_echo(&sources);
                    if config.keep_history {
                        history.push(sample);
                    }
                    if stopping {
                        return history;
                    }
                    // After a stall, carry on from now rather than catch up.
                    next = (next + config.interval).max(Instant::now());
                }
            })
            .map_err(MonitorError::Thread)?;
        Ok(Monitor {
            shared,
            sampler_started,
            stop: Some(stop),
            thread: Some(thread),
            server,
        })
    }

    /// The most recent sample (for a status line). Not real-time safe (it
    /// locks and clones).
    pub fn latest(&self) -> Sample {
        lock(&self.shared.latest).clone()
    }

    /// Alert episodes so far. Not real-time safe (it locks).
    pub fn alerts(&self) -> AlertCounts {
        *lock(&self.shared.alerts)
    }

    /// Where the metrics are served, with the port resolved.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(MetricsServer::addr)
    }

    /// When the sampler started: [`Sample::t_s`] counts from here.
    pub fn started(&self) -> Instant {
        self.sampler_started
    }

    /// Takes a last sample, stops the thread and the listener, and returns
    /// the samples (when `keep_history` was set) and the alert counts.
    pub fn stop(mut self) -> MonitorReport {
        let samples = self.halt();
        MonitorReport {
            samples,
            alerts: self.alerts(),
        }
    }

    fn halt(&mut self) -> Vec<Sample> {
        drop(self.stop.take());
        let history = match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| {
                tracing::error!("the monitor thread panicked");
                Vec::new()
            }),
            None => Vec::new(),
        };
        drop(self.server.take());
        history
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn record(shared: &Shared, sample: &Sample, alerts: AlertCounts) {
    *lock(&shared.latest) = sample.clone();
    *lock(&shared.alerts) = alerts;
}

fn publish(
    metrics: &Mutex<Metrics>,
    sample: &Sample,
    alerts: AlertCounts,
    writer: Option<&WriterProbe>,
) {
    let metrics = lock(metrics);
    metrics.update(sample, alerts);
    if let Some(probe) = writer {
        metrics.update_writer(&probe());
    }
}
