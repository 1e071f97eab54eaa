//! Offline transcription's way into the transcript file: however many
//! events a file gives, each waits for room in the writer's bounded queue
//! (none dropped, order kept), and once a signal came a file that stops
//! taking writes ends the wait after the grace, with every event not
//! written counted. Real writer threads, a real file and a real FIFO; the
//! queue is made small so a few thousand events overrun it.

use std::fs;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use hark::cli::options::Output;
use hark::event::{Event, Source};
use hark::transcript::{Format, WriteError, Writer, WriterConfig};

fn event(i: usize, text_len: usize) -> Event {
    let text = format!("{i} {}", "x".repeat(text_len));
    Event::final_text(Source::File, i as f64, i as f64 + 0.5, text)
}

fn jsonl_events(text: &str) -> Vec<Event> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn many_more_events_than_the_queue_holds_all_arrive_in_order() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.jsonl");
    let mut config = WriterConfig::new(&path, Format::Jsonl);
    config.queue_capacity = 2;
    let writer = Writer::spawn(config).unwrap();
    let watch = writer.watch();
    let mut out = Output::file(writer, Arc::new(AtomicBool::new(false)));
    let sent: Vec<Event> = (0..20_000).map(|i| event(i, 40)).collect();
    out.events(sent.clone()).expect("every event queued");
    let peak = watch.metrics().queue_peak;
    drop(watch);
    out.finish().expect("written and synced");
    let written = jsonl_events(&fs::read_to_string(&path).unwrap());
    eprintln!(
        "{} events through a queue of 2 (peak {peak})",
        written.len()
    );
    assert_eq!(written, sent);
    assert!(peak <= 2, "{peak}");
}

#[test]
fn a_stalled_file_ends_the_wait_after_a_signal_and_counts_what_is_lost() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stalled.jsonl");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // A reader that reads nothing yet: once the pipe's buffer is full the
    // writer thread's write() blocks, like a hung mount.
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut config = WriterConfig::new(&fifo, Format::Jsonl);
    config.queue_capacity = 2;
    let writer = Writer::spawn(config).unwrap();
    let watch = writer.watch();
    // Interrupted from the start: the waits get the grace, then give up.
    let mut out = Output::file(writer, Arc::new(AtomicBool::new(true)));
    let total = 2_000;
    let sent: Vec<Event> = (0..total).map(|i| event(i, 1000)).collect();
    let err = out
        .events(sent.clone())
        .expect_err("a blocked FIFO cannot take 2 MB");
    let written_then = watch.metrics().events_written;
    let Some(WriteError::Stalled { events: lost, .. }) = err.downcast_ref::<WriteError>() else {
        panic!("not a stall: {err:#}");
    };
    eprintln!("{err}; {written_then} written before");
    // Every event is either in the pipe or counted as not written.
    assert_eq!(*lost + written_then, total as u64);
    assert!(*lost > 0 && written_then > 0);
    // The finish does not wait again: the grace is used up.
    match out.finish() {
        Err(e) => assert!(
            matches!(e.downcast_ref(), Some(WriteError::Stalled { .. })),
            "{e:#}"
        ),
        Ok(()) => panic!("finish claimed the stalled file was written"),
    }
    drop(watch);
    // Now read the pipe: the writer left behind writes what it had taken,
    // in order, then ends (every sender is gone).
    let mut got = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(std::time::Duration::from_millis(1))
            }
            Err(e) => panic!("{e}"),
        }
    }
    let drained = jsonl_events(&String::from_utf8(got).unwrap());
    assert!(drained.len() as u64 >= written_then);
    assert_eq!(drained[..], sent[..drained.len()]);
}
