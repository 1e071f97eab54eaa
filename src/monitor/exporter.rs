//! The Prometheus exporter: a registry of gauges updated from each
//! [`Sample`], served as text on a loopback HTTP listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
    #[error("metrics address {addr}: only loopback addresses are served (127.0.0.1 or ::1)")]
    NotLoopback { addr: SocketAddr },
    #[error("metrics address {addr}: cannot listen: {detail}")]
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
    threads: Family<SourceLabel, FloatGauge>,
    degraded: Family<SourceLabel, FloatGauge>,
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
        let threads = family(
            "inference_threads",
            "Threads of the last pass (load-adaptive: fewer on busy cores)",
        );
        let degraded = family(
            "inference_degraded",
            "0 nominal, 1 cores busy (fewer threads), 2 behind (fewer partials), 3 both",
        );
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
            threads,
            degraded,
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
            set(&self.threads, s.inference_threads as f64);
            set(&self.degraded, f64::from(s.degraded_code));
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

/// Connections served at once (one thread each); the listener itself is one
/// more thread.
pub const WORKERS: usize = 2;
/// Accepted connections waiting for a worker; past this a new connection is
/// closed at once, so idle clients cannot pile up threads, sockets or memory.
pub const QUEUE: usize = 16;
/// Longest request head read (request line and headers); a longer one gets
/// 431 and the connection is closed.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// A request must arrive whole within this, and the response be taken within
/// this again; then the connection is closed. Bounds shutdown too.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A running metrics listener; dropping it stops it (within about
/// [`IO_TIMEOUT`] twice, whatever the clients do).
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
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
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Serves `metrics` as Prometheus text on `addr` (loopback only; port 0
/// picks a free port) at any path: one listener thread and [`WORKERS`]
/// workers, one request per connection, bounded as the constants above say.
pub fn serve(
    addr: SocketAddr,
    metrics: Arc<Mutex<Metrics>>,
) -> Result<MetricsServer, ExporterError> {
    if !addr.ip().is_loopback() {
        return Err(ExporterError::NotLoopback { addr });
    }
    let bind_err = |e: std::io::Error| ExporterError::Bind {
        addr,
        detail: e.to_string(),
    };
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let bound = listener.local_addr().map_err(bind_err)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = crossbeam_channel::bounded::<TcpStream>(QUEUE);
    let mut threads = Vec::new();
    for n in 0..WORKERS {
        let (rx, worker_stop, metrics) = (rx.clone(), Arc::clone(&stop), Arc::clone(&metrics));
        let worker = std::thread::Builder::new()
            .name(format!("hark-metrics-{n}"))
            .spawn(move || {
                while !worker_stop.load(Ordering::Acquire) {
                    if let Ok(stream) = rx.recv_timeout(POLL_INTERVAL) {
                        if let Err(e) = respond(stream, &metrics) {
                            tracing::debug!("metrics connection: {e}");
                        }
                    }
                }
            });
        match worker {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop.store(true, Ordering::Release);
                return Err(ExporterError::Thread(e));
            }
        }
    }
    let thread_stop = Arc::clone(&stop);
    let accept = std::thread::Builder::new()
        .name("hark-metrics".into())
        .spawn(move || {
            while !thread_stop.load(Ordering::Acquire) {
                match listener.accept() {
                    // A full queue drops (closes) the connection at once.
                    Ok((stream, _)) => drop(tx.try_send(stream)),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(POLL_INTERVAL)
                    }
                    Err(e) => {
                        tracing::debug!("metrics accept: {e}");
                        std::thread::sleep(POLL_INTERVAL)
                    }
                }
            }
        });
    match accept {
        Ok(handle) => threads.push(handle),
        Err(e) => {
            stop.store(true, Ordering::Release);
            return Err(ExporterError::Thread(e));
        }
    }
    Ok(MetricsServer {
        addr: bound,
        stop,
        threads,
    })
}

/// Reads one request head (bounded in size and time) and answers it with
/// the metrics, or 431 / 400; the connection is then closed.
fn respond(mut stream: TcpStream, metrics: &Mutex<Metrics>) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let status = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(()); // too slow: just close
        }
        stream.set_read_timeout(Some(left))?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break if head.starts_with(b"GET ") || head.starts_with(b"HEAD ") {
                "200 OK"
            } else {
                "400 Bad Request"
            };
        }
        if head.len() > MAX_HEADER_BYTES {
            break "431 Request Header Fields Too Large";
        }
    };
    let body = if status.starts_with("200") {
        metrics.lock().map(|m| m.encode()).unwrap_or_default()
    } else {
        String::new()
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}
