//! The Prometheus exporter: a registry of gauges updated from each
//! [`Sample`], served as text on a loopback HTTP listener.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{AlertCounts, Sample};

/// How often the listener looks at its stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    #[error("--metrics-addr {addr}: only loopback addresses are served (127.0.0.1 or ::1)")]
    NotLoopback { addr: SocketAddr },
    #[error("--metrics-addr {addr}: cannot listen: {detail}")]
    Bind { addr: SocketAddr, detail: String },
    #[error("cannot start the metrics thread: {0}")]
    Thread(std::io::Error),
}

type FloatGauge = Gauge<f64, AtomicU64>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CoreLabel {
    core: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EchoLabel {
    measure: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabel {
    alert: String,
}

/// The gauges, updated with [`Metrics::update`], encoded on each scrape.
pub struct Metrics {
    registry: Registry,
    cpu_total: FloatGauge,
    cpu_core: Family<CoreLabel, FloatGauge>,
    process_cpu: FloatGauge,
    rss: FloatGauge,
    temperature: FloatGauge,
    buffer_ms: FloatGauge,
    ring_fill: Family<SourceLabel, FloatGauge>,
    xruns: Family<SourceLabel, FloatGauge>,
    overflowed: Family<SourceLabel, FloatGauge>,
    rtf: Family<SourceLabel, FloatGauge>,
    lag: Family<SourceLabel, FloatGauge>,
    realtime: Family<SourceLabel, FloatGauge>,
    recovery_attempts: Family<SourceLabel, FloatGauge>,
    recoveries: Family<SourceLabel, FloatGauge>,
    gaps: Family<SourceLabel, FloatGauge>,
    alerts: Family<AlertLabel, FloatGauge>,
    writer_flush_p99_ms: FloatGauge,
    writer_mode: FloatGauge,
    echo: Family<EchoLabel, FloatGauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hark");
        let mut gauge = |name: &str, help: &str| {
            let g = FloatGauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let cpu_total = gauge("cpu_total_percent", "Machine CPU use, percent of all cores");
        let process_cpu = gauge(
            "process_cpu_percent",
            "This process' CPU use, percent of one core",
        );
        let rss = gauge("process_resident_bytes", "Resident memory of this process");
        let temperature = gauge(
            "temperature_celsius",
            "Highest sensor temperature (NaN when none)",
        );
        let buffer_ms = gauge("buffer_ms", "Pump chunk (buffer size) in milliseconds");
        let writer_flush_p99_ms = gauge("writer_flush_p99_ms", "Transcript flush latency p99");
        let writer_mode = gauge(
            "writer_mode",
            "0 batched, 1 direct, 2 emergency, 3 unwritable",
        );
        let mut family = |name: &str, help: &str| {
            let f = Family::<SourceLabel, FloatGauge>::default();
            registry.register(name, help, f.clone());
            f
        };
        let ring_fill = family("ring_fill_ratio", "Hand-off ring fill, 0 to 1");
        let xruns = family("xruns", "Device overruns so far");
        let overflowed = family(
            "overflowed_samples",
            "Samples lost because the ring was full",
        );
        let rtf = family(
            "inference_rtf",
            "Inference real-time factor of the last passes",
        );
        let lag = family("inference_lag_ms", "Audio waiting for inference, ms");
        let realtime = family(
            "realtime_priority",
            "1 when the callback got real-time priority",
        );
        let recovery_attempts = family("recovery_attempts", "Device reopen attempts");
        let recoveries = family("recoveries", "Streams reopened after a loss");
        let gaps = family("gaps", "Gaps in the audio (device lost)");
        let cpu_core = Family::<CoreLabel, FloatGauge>::default();
        registry.register("cpu_core_percent", "CPU use per core", cpu_core.clone());
        let alerts = Family::<AlertLabel, FloatGauge>::default();
        registry.register("alerts", "Alert episodes so far", alerts.clone());
        // Echo handling (--source both): one family, labelled by measure.
        let echo = Family::<EchoLabel, FloatGauge>::default();
        registry.register(
            "echo",
            "Echo handling of the mic: erle_db, delay_ms, suppressed_utterances, \
             frames_without_reference",
            echo.clone(),
        );
        Metrics {
            echo,
            registry,
            cpu_total,
            cpu_core,
            process_cpu,
            rss,
            temperature,
            buffer_ms,
            ring_fill,
            xruns,
            overflowed,
            rtf,
            lag,
            realtime,
            recovery_attempts,
            recoveries,
            gaps,
            alerts,
            writer_flush_p99_ms,
            writer_mode,
        }
    }

    /// Sets the echo gauges from the sources that cancel echo.
    pub fn update_echo(&self, sources: &[std::sync::Arc<crate::pipeline::SourceStats>]) {
        use std::sync::atomic::Ordering::Relaxed;
        for echo in sources.iter().filter_map(|s| s.echo.as_ref()) {
            let set = |measure: &str, value: f64| {
                let label = EchoLabel {
                    measure: measure.to_owned(),
                };
                self.echo.get_or_create(&label).set(value);
            };
            set("erle_db", echo.erle_db().unwrap_or(f64::NAN));
            set("delay_ms", echo.delay_ms.load(Relaxed) as f64);
            set(
                "suppressed_utterances",
                echo.suppressed_utterances.load(Relaxed) as f64,
            );
            set(
                "frames_without_reference",
                echo.frames_without_reference.load(Relaxed) as f64,
            );
        }
    }

    /// Sets every gauge from `sample` and the alert counts.
    pub fn update(&self, sample: &Sample, alerts: AlertCounts) {
        self.cpu_total.set(f64::from(sample.cpu_total_percent));
        for (i, c) in sample.cpu_per_core_percent.iter().enumerate() {
            let label = CoreLabel {
                core: i.to_string(),
            };
            self.cpu_core.get_or_create(&label).set(f64::from(*c));
        }
        self.process_cpu.set(f64::from(sample.process_cpu_percent));
        self.rss.set(sample.rss_bytes as f64);
        self.temperature
            .set(sample.temperature_c.map_or(f64::NAN, f64::from));
        self.buffer_ms.set(f64::from(sample.buffer_ms));
        for s in &sample.sources {
            let label = SourceLabel {
                source: s.source.clone(),
            };
            let set = |family: &Family<SourceLabel, FloatGauge>, value: f64| {
                family.get_or_create(&label).set(value);
            };
            set(&self.ring_fill, f64::from(s.ring_fill));
            set(&self.xruns, s.xruns as f64);
            set(&self.overflowed, s.overflowed_samples as f64);
            set(&self.rtf, s.inference_rtf);
            set(&self.lag, s.lag_ms as f64);
            set(&self.realtime, f64::from(u8::from(s.realtime_priority)));
            set(&self.recovery_attempts, s.recovery_attempts as f64);
            set(&self.recoveries, s.recoveries as f64);
            set(&self.gaps, s.gaps as f64);
        }
        for (name, count) in [
            ("cpu", alerts.cpu),
            ("memory", alerts.memory),
            ("ring", alerts.ring),
            ("recovery", alerts.recovery),
        ] {
            let label = AlertLabel {
                alert: name.to_owned(),
            };
            self.alerts.get_or_create(&label).set(count as f64);
        }
    }

    /// Sets the transcript writer's gauges.
    pub fn update_writer(&self, metrics: &crate::transcript::WriterMetrics) {
        use crate::transcript::WriteMode;
        self.writer_flush_p99_ms.set(metrics.flush_latency_p99_ms);
        let mode = match metrics.mode {
            WriteMode::Batched => 0.0,
            WriteMode::Direct => 1.0,
            WriteMode::Emergency => 2.0,
            WriteMode::Unwritable => 3.0,
        };
        self.writer_mode.set(mode);
    }

    /// The Prometheus text exposition of every gauge.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// A running metrics listener; dropping it stops it.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The address it listens on (the port is resolved when 0 was asked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `metrics` as Prometheus text on `addr` (loopback only; port 0
/// picks a free port) at any path, from its own thread.
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
) -> Result<MetricsServer, ExporterError> {
    if !addr.ip().is_loopback() {
        return Err(ExporterError::NotLoopback { addr });
    }
    let server = tiny_http::Server::http(addr).map_err(|e| ExporterError::Bind {
        addr,
        detail: e.to_string(),
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| ExporterError::Bind {
            addr,
            detail: "not an IP listener".to_owned(),
        })?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("hark-metrics".into())
        .spawn(move || {
            while !thread_stop.load(Ordering::Acquire) {
                let Ok(Some(request)) = server.recv_timeout(POLL_INTERVAL) else {
                    continue;
                };
                let body = metrics.lock().map(|m| m.encode()).unwrap_or_default();
                let header = tiny_http::Header::from_bytes(
                    "Content-Type",
                    "text/plain; version=0.0.4; charset=utf-8",
                )
                .expect("a valid static header");
                let response = tiny_http::Response::from_string(body).with_header(header);
                if let Err(e) = request.respond(response) {
                    tracing::debug!("metrics response failed: {e}");
                }
            }
        })
        .map_err(ExporterError::Thread)?;
    Ok(MetricsServer {
        addr: bound,
        stop,
        thread: Some(thread),
    })
}
