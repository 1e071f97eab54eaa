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

/// Names of the threads of process `pid` that start with `prefix`.
fn threads_of(pid: u32, prefix: &str) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

/// The real `hark live` with its metrics port under attack: hundreds of
/// idle connections, heads sent a byte at a time that never end (each
/// would hold a worker but for the head's deadline), one endless fast
/// head, and a client that pipelines requests and never reads, all still
/// connected when SIGINT comes. hark keeps its threads, exits 0, and does
/// so within README's stop bound, measured from the signal.
#[test]
fn live_with_hostile_metrics_clients_stops_cleanly_on_sigint() {
    use crate::support::STOP_BOUND;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    let _serial = crate::support::serial();
    let server = hark::soundserver::SoundServer::start().expect("private sound server");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args([
            "-v",
            "live",
            "--source",
            "loopback",
            "--metrics-addr",
            "127.0.0.1:0",
        ])
        .arg("--model")
        .arg(crate::support::default_model())
        .env_remove("HARK_MODEL")
        .env_remove("HARK_LOG")
        .envs(server.env())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The port hark picked, from its "metrics on http://ADDR/metrics" line,
    // then the "listening" line.
    let mut log = Vec::new();
    let mut addr: Option<SocketAddr> = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !log
        .iter()
        .any(|l: &String| l.starts_with("hark: listening"))
    {
        assert!(Instant::now() < deadline, "hark did not start: {log:?}");
        let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) else {
            assert!(child.try_wait().unwrap().is_none(), "hark ended: {log:?}");
            continue;
        };
        if let Some(at) = line.find("metrics on http://") {
            let rest = &line[at + "metrics on http://".len()..];
            addr = rest.split('/').next().and_then(|a| a.parse().ok());
        }
        log.push(line);
    }
    let addr = addr.unwrap_or_else(|| panic!("no metrics address logged: {log:?}"));
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    assert!(scrape_eventually(addr).contains("hark_"));

    let idle: Vec<TcpStream> = (0..500)
        .filter_map(|_| TcpStream::connect(addr).ok())
        .collect();
    assert!(idle.len() >= 400, "only {} connections", idle.len());
    let attacking = Arc::new(AtomicBool::new(true));
    let mut attackers = Vec::new();
    for _ in 0..WORKERS + 1 {
        let attacking = Arc::clone(&attacking);
        attackers.push(std::thread::spawn(move || {
            // A byte every 100 ms, reconnecting whenever hark hangs up.
            while attacking.load(Ordering::Acquire) {
                let Ok(mut slow) = TcpStream::connect(addr) else {
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                };
                let _ = slow.write_all(b"GET / HTTP/1.1\r\nX-Slow: ");
                while attacking.load(Ordering::Acquire) && slow.write_all(b"s").is_ok() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }));
    }
    let mut endless = TcpStream::connect(addr).unwrap();
    endless
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = endless.write_all(b"GET / HTTP/1.1\r\nX-Long: ");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..64 {
        if endless.write_all(&chunk).is_err() {
            break;
        }
    }
    let mut pipeliner = TcpStream::connect(addr).unwrap();
    pipeliner
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = pipeliner.write_all(&b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000));
    std::thread::sleep(Duration::from_secs(3));
    let metrics_threads = threads_of(pid, "hark-metrics");
    assert!(
        metrics_threads <= WORKERS + 1,
        "{metrics_threads} metrics threads under attack"
    );

    let (status, took) =
        crate::support::interrupt(&mut child, Duration::from_secs(120), "hostile clients");
    attacking.store(false, Ordering::Release);
    for attacker in attackers {
        attacker.join().unwrap();
    }
    drop((idle, endless, pipeliner));
    reader.join().unwrap();
    log.extend(lines.try_iter());
    let log = log.join("\n");
    eprintln!("exit {status:?} {took:.2?} after SIGINT\n{log}");
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(took <= STOP_BOUND, "{took:.2?} from SIGINT to exit");
}
