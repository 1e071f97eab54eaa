//! The metrics port stays bounded whatever its clients do: hundreds of idle
//! connections, a request head that never ends, and a client that pipelines
//! requests and never reads. Threads stay at the listener and its workers,
//! a normal scrape still gets its answer once the idle clients time out,
//! and stopping the server returns (it would hang the test otherwise; the
//! wait is bounded so a hang fails instead). Real sockets on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hark::monitor::exporter::{self, Metrics, MAX_HEADER_BYTES, WORKERS};

/// Threads of this process named as the metrics server names its own
/// (`hark-metrics`, `hark-metrics-N`). Counting every thread of the test
/// process failed once: the other tests of this binary start and end
/// their own threads meanwhile (6 threads counted against a bound of 5).
fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with("hark-metrics"))
        .count()
}

fn scrape(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// Scrapes until an answer comes (idle clients ahead of it time out first).
fn scrape_eventually(addr: SocketAddr) -> String {
    for _ in 0..200 {
        let text = scrape(addr);
        if text.starts_with("HTTP/1.1 200") {
            return text;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no scrape answered");
}

#[test]
fn idle_endless_and_pipelining_clients_stay_bounded() {
    let _serial = crate::support::serial();
    let before = threads();
    let server = exporter::serve(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Mutex::new(Metrics::new())),
    )
    .unwrap();
    let addr = server.addr();
    assert!(scrape(addr).contains("hark_"), "a normal scrape works");

    // 500 idle connections: no thread per connection.
    let idle: Vec<TcpStream> = (0..500)
        .map(|_| TcpStream::connect(addr).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        threads() <= before + WORKERS + 1,
        "{} threads, {before} before serving",
        threads()
    );

    // A request head with no end: hark stops reading after its limit.
    let mut endless = TcpStream::connect(addr).unwrap();
    endless
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    endless.write_all(b"GET / HTTP/1.1\r\nX-Long: ").unwrap();
    let chunk = vec![b'a'; 64 * 1024];
    let mut sent = 0usize;
    let refused = loop {
        match endless.write(&chunk) {
            Ok(n) => sent += n,
            Err(_) => break true,
        }
        if sent > 256 << 20 {
            break false;
        }
    };
    assert!(refused, "256 MB of header were accepted");
    drop(idle);

    // Pipelined requests, never read: one answer, then the connection closes.
    let mut pipeliner = TcpStream::connect(addr).unwrap();
    let many = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    let _ = pipeliner.write_all(&many);

    let text = scrape_eventually(addr);
    assert!(text.contains("hark_"), "{text}");
    assert!(threads() <= before + WORKERS + 1);

    // A head over the limit gets 431 (when the client is still there to read).
    let mut big = TcpStream::connect(addr).unwrap();
    let mut head = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    head.extend(std::iter::repeat_n(b'b', MAX_HEADER_BYTES + 10));
    let _ = big.write_all(&head);
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "{answer}"
    );

    // Stopping returns even with a pipelining client still connected.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(server);
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the metrics server stops");
    drop(pipeliner);
}
