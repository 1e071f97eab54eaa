//! The monitor thread on a real pipeline (a paced WAV file and the real
//! model) with a real transcript writer: its Prometheus endpoint is scraped
//! over loopback with a plain HTTP GET and the numbers are checked against
//! the pipeline, the process and the monitor's own state.

use crate::support::root;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use hark::event::Source;
use hark::inference::Model;
use hark::monitor::exporter::ExporterError;
use hark::monitor::{Monitor, MonitorConfig, MonitorError};
use hark::pipeline::{Feed, PipelineConfig, SourceConfig};
use hark::session::{Session, SessionConfig};
use hark::transcript::{Format, Writer, WriterConfig};

const SAMPLE_INTERVAL: Duration = Duration::from_millis(100);

/// GETs `/metrics` with a bare TcpStream; returns the body.
fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the metrics listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").expect("headers end");
    body.to_owned()
}

/// The value of the metric line that starts with `name` (labels included),
/// e.g. `hark_ring_fill_ratio{source="file"}`.
fn value(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            (key == name).then(|| value.parse::<f64>().expect("a number"))
        })
        .unwrap_or_else(|| panic!("no metric {name} in:\n{body}"))
}

#[test]
fn monitor_serves_pipeline_numbers_over_loopback() {
    let _serial = crate::support::serial();
    let model_path = crate::support::default_model();
    let model = Model::load(&model_path).expect("model (run scripts/setup.sh first)");
    let dir = tempfile::tempdir().unwrap();
    let writer =
        Writer::spawn(WriterConfig::new(dir.path().join("t.jsonl"), Format::Jsonl)).unwrap();
    let sources = vec![SourceConfig {
        source: Source::File,
        feed: Feed::File(root().join("assets/weather.wav")),
        record: None,
    }];
    let config = PipelineConfig {
        threads: 1,
        ..PipelineConfig::default()
    };
    let mut config = SessionConfig::new(sources, config);
    config.monitor = Some(MonitorConfig {
        interval: SAMPLE_INTERVAL,
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        keep_history: true,
    });
    let mut session = Session::start(&model, config, Some(writer)).unwrap();
    let monitor = session.monitor().expect("monitor running");
    let addr = monitor.metrics_addr().expect("serving");
    assert!(addr.ip().is_loopback() && addr.port() != 0);

    let mut events = Vec::new();
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    while std::time::Instant::now() < until {
        session.poll(Duration::from_millis(50), &mut events);
    }
    let monitor = session.monitor().expect("monitor running");
    let alerts_before = monitor.alerts();
    let body = scrape(addr);
    let alerts_after = monitor.alerts();
    let latest = monitor.latest();

    // Sampling on the timer, off the caller's thread.
    assert!(latest.t_s >= 1.0, "latest sample at {} s", latest.t_s);
    assert_eq!(latest.sources.len(), 1);
    assert_eq!(latest.sources[0].source, "file");

    // The buffer size is the pipeline's own.
    assert_eq!(
        value(&body, "hark_buffer_ms"),
        f64::from(session.chunk_ms())
    );
    assert!(session.chunk_ms() > 0);
    let fill = value(&body, r#"hark_ring_fill_ratio{source="file"}"#);
    assert!((0.0..=1.0).contains(&fill), "ring fill {fill}");
    assert_eq!(
        value(&body, r#"hark_overflowed_samples{source="file"}"#),
        0.0
    );
    // The model is loaded in this process, so it is resident.
    let model_bytes = std::fs::metadata(&model_path).unwrap().len() as f64;
    let rss = value(&body, "hark_process_resident_bytes");
    assert!(rss > model_bytes, "RSS {rss} vs model file {model_bytes}");
    assert!(value(&body, "hark_cpu_total_percent") >= 0.0);
    // Alert gauges are the monitor's counts at scrape time.
    for (name, before, after) in [
        ("cpu", alerts_before.cpu, alerts_after.cpu),
        ("memory", alerts_before.memory, alerts_after.memory),
        ("ring", alerts_before.ring, alerts_after.ring),
        ("recovery", alerts_before.recovery, alerts_after.recovery),
    ] {
        let scraped = value(&body, &format!(r#"hark_alerts{{alert="{name}"}}"#)) as u64;
        assert!(
            (before..=after).contains(&scraped),
            "{name} alerts {scraped}, monitor {before}..{after}"
        );
    }
    assert_eq!(alerts_after.ring, 0, "a 1x file never fills the ring");
    // The writer is batching into a healthy file.
    assert_eq!(value(&body, "hark_writer_mode"), 0.0);

    let session_report = session.stop(&mut events);
    let report = session_report.monitor.expect("the monitor's report");
    assert!(report.alerts.ring == 0 && report.alerts.memory >= alerts_after.memory);
    let history = report.samples;
    assert!(
        history.len() >= 10,
        "{} samples in 1.5 s at 100 ms",
        history.len()
    );
    assert!(history.windows(2).all(|w| w[0].t_s < w[1].t_s));
    // The listener is gone with the monitor.
    assert!(TcpStream::connect(addr).is_err(), "still listening");
    assert_eq!(session_report.sources[0].overflowed, 0);
    session_report
        .transcript
        .expect("a transcript")
        .expect("written");
}

#[test]
fn monitor_refuses_a_non_loopback_address() {
    let _serial = crate::support::serial();
    let result = Monitor::spawn(
        MonitorConfig {
            metrics_addr: Some("0.0.0.0:0".parse().unwrap()),
            ..MonitorConfig::default()
        },
        Vec::new(),
        Arc::new(std::sync::atomic::AtomicU32::new(0)),
        None,
    );
    match result {
        Err(MonitorError::Exporter(ExporterError::NotLoopback { addr })) => {
            assert_eq!(addr.to_string(), "0.0.0.0:0");
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("served on 0.0.0.0"),
    }
}
