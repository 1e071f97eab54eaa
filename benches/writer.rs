//! Transcript writer throughput and flush latency on the real disk (the temp
//! dir). Prints numbers; no pass/fail.
//!
//! - paced: a realistic rate (10 events/s: two sources at 5/s) for a 5 s
//!   window, default 32 KB / 1 s batching: flushes per second and latency.
//! - flood: as many events as `send` takes, 200 000 of them: throughput,
//!   flushes per second, flush latency.

use std::time::{Duration, Instant};

use hark::event::{Event, Source};
use hark::transcript::{Format, Writer, WriterConfig, WriterMetrics};

const PACED_RATE_EVENTS_PER_S: u32 = 10;
const PACED_WINDOW: Duration = Duration::from_secs(5);
const FLOOD_EVENTS: usize = 200_000;

fn event(i: usize) -> Event {
    let source = if i.is_multiple_of(2) {
        Source::Mic
    } else {
        Source::Loopback
    };
    Event::final_text(
        source,
        i as f64 * 0.1,
        i as f64 * 0.1 + 2.5,
        format!("segment {i}: a typical spoken sentence of about a dozen words or so"),
    )
}

fn print(name: &str, elapsed: Duration, m: &WriterMetrics) {
    let secs = elapsed.as_secs_f64();
    println!(
        "{name:<12} {:>8} events {:>10.0} events/s {:>9.1} KB/s {:>6} flushes {:>7.2} flushes/s \
         flush p50 {:>7.3} ms p99 {:>7.3} ms  queue peak {}/{}",
        m.events_written,
        m.events_written as f64 / secs,
        m.bytes_written as f64 / secs / 1e3,
        m.flushes,
        m.flushes as f64 / secs,
        m.flush_latency_p50_ms,
        m.flush_latency_p99_ms,
        m.queue_peak,
        m.queue_capacity,
    );
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    println!("transcript writer bench in {}", dir.path().display());

    for format in [Format::Jsonl, Format::Srt] {
        let writer = Writer::spawn(WriterConfig::new(
            dir.path().join(format!("paced.{format}")),
            format,
        ))
        .expect("spawn");
        let tx = writer.sender();
        let period = Duration::from_secs(1) / PACED_RATE_EVENTS_PER_S;
        let start = Instant::now();
        let mut i = 0;
        while start.elapsed() < PACED_WINDOW {
            tx.try_send(event(i))
                .expect("queue never fills at this rate");
            i += 1;
            std::thread::sleep(
                (start + period * i as u32).saturating_duration_since(Instant::now()),
            );
        }
        let report = writer.finish().expect("finish");
        print(&format!("paced {format}"), start.elapsed(), &report.metrics);
    }

    for format in [Format::Jsonl, Format::Txt] {
        let writer = Writer::spawn(WriterConfig::new(
            dir.path().join(format!("flood.{format}")),
            format,
        ))
        .expect("spawn");
        let tx = writer.sender();
        let start = Instant::now();
        for i in 0..FLOOD_EVENTS {
            tx.send(event(i)).expect("send");
        }
        let report = writer.finish().expect("finish");
        print(&format!("flood {format}"), start.elapsed(), &report.metrics);
    }
}
