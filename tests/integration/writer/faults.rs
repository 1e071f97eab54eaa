//! The writer when the disk fails: full, read-only, over the file-size
//! limit, removed under it, killed, stalled.

use super::*;

/// 300 events of about 600 bytes of JSON each.
fn disk_filling_events() -> Vec<Event> {
    (0..300).map(|i| big_event(i, 500)).collect()
}

/// Sends events to a primary on a full disk and checks that the primary
/// followed by the emergency files holds each event exactly once, in order.
fn check_full_disk(primary: &Path, emergency_files: &[PathBuf], configured: Option<PathBuf>) {
    let sent = disk_filling_events();
    let mut config = WriterConfig::new(primary, Format::Jsonl);
    config.emergency_path = configured;
    let report = write_all(config, &sent);
    let m = &report.metrics;
    assert_eq!(m.mode, WriteMode::Emergency, "{m:?}");
    assert_eq!(m.events_written, sent.len() as u64);
    assert_eq!(m.emergency_path.as_ref(), emergency_files.last());
    let last_error = m.last_error.clone().unwrap_or_default();
    assert!(last_error.contains("No space left"), "{last_error}");
    let mut all = jsonl_events(primary);
    assert!(!all.is_empty() && all.len() < sent.len());
    for path in emergency_files {
        all.extend(jsonl_events(path));
    }
    assert_eq!(all, sent, "every event exactly once, in order");
}

#[test]
fn full_tmpfs_falls_back_to_the_emergency_file() {
    let _serial = crate::support::serial();
    let disk = tempfile::tempdir().unwrap();
    let Some(_mount) = Mount::tmpfs(disk.path(), "64k") else {
        skip("full disk: mount refused here (the file-size limit test covers the ladder)");
        return;
    };
    let elsewhere = tempfile::tempdir().unwrap();
    let emergency = elsewhere.path().join("rescue.jsonl");
    check_full_disk(
        &disk.path().join("t.jsonl"),
        std::slice::from_ref(&emergency),
        Some(emergency.clone()),
    );
}

#[test]
fn read_only_emergency_is_skipped_for_the_next_one() {
    let _serial = crate::support::serial();
    let disk = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    let (Some(_full), Some(ro_mount)) = (
        Mount::tmpfs(disk.path(), "64k"),
        Mount::tmpfs(ro.path(), "64k"),
    ) else {
        skip("read-only emergency: mount refused here");
        return;
    };
    assert!(ro_mount.remount_ro());
    let primary = disk.path().join("t.jsonl");
    let beside = disk.path().join("t.emergency.jsonl");
    let temp = hark::transcript::private_temp_dir()
        .unwrap()
        .join(format!("hark-{}-t.emergency.jsonl", std::process::id()));
    let _ = fs::remove_file(&temp);
    check_full_disk(
        &primary,
        &[beside, temp.clone()],
        Some(ro.path().join("rescue.jsonl")),
    );
    fs::remove_file(&temp).unwrap();
}

fn child(role: &str, path: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "writer::faults::child_process_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, role)
    .env("HARK_CHILD_PATH", path);
    cmd
}

/// The file-size limit applied to every file the child writes.
const CHILD_FILE_LIMIT_BYTES: u64 = 128 * 1024;

#[test]
fn file_size_limit_efbig_falls_back_in_a_child() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let primary = dir.path().join("t.jsonl");
    let emergency = dir.path().join("rescue.jsonl");
    let out = child("efbig", &primary)
        .env("HARK_CHILD_EMERGENCY", &emergency)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let sent = disk_filling_events();
    let mut all = jsonl_events(&primary);
    let primary_len = fs::metadata(&primary).unwrap().len();
    assert!(primary_len <= CHILD_FILE_LIMIT_BYTES);
    assert!(all.len() < sent.len());
    all.extend(jsonl_events(&emergency));
    assert_eq!(all, sent, "every event exactly once, in order");
}

#[test]
fn removed_directory_moves_everything_to_the_emergency_file() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let doomed = dir.path().join("doomed");
    fs::create_dir(&doomed).unwrap();
    let emergency = dir.path().join("rescue.jsonl");
    let mut config = WriterConfig::new(doomed.join("t.jsonl"), Format::Jsonl);
    config.emergency_path = Some(emergency.clone());
    config.flush_interval = Duration::from_millis(50);
    let writer = Writer::spawn(config).unwrap();
    let tx = writer.sender();
    let sent: Vec<Event> = (0..40).map(event).collect();
    for e in &sent[..20] {
        tx.send(e.clone()).unwrap();
    }
    wait_for(|| writer.metrics().events_written == 20);
    fs::remove_dir_all(&doomed).unwrap();
    for e in &sent[20..] {
        tx.send(e.clone()).unwrap();
    }
    let report = writer.finish().unwrap();
    assert_eq!(report.metrics.mode, WriteMode::Emergency);
    assert_eq!(
        report.metrics.emergency_path.as_deref(),
        Some(emergency.as_path())
    );
    assert_eq!(jsonl_events(&emergency), sent, "rescued content + the rest");
    assert!(!doomed.exists());
}

#[test]
fn removed_file_is_recreated_with_its_content() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.srt");
    let mut config = WriterConfig::new(&path, Format::Srt);
    config.flush_interval = Duration::from_millis(50);
    let writer = Writer::spawn(config).unwrap();
    let tx = writer.sender();
    let sent: Vec<Event> = (0..8).map(event).collect();
    for e in &sent[..5] {
        tx.send(e.clone()).unwrap();
    }
    wait_for(|| writer.metrics().events_written == 5);
    fs::remove_file(&path).unwrap();
    for e in &sent[5..] {
        tx.send(e.clone()).unwrap();
    }
    let report = writer.finish().unwrap();
    assert_eq!(report.metrics.mode, WriteMode::Direct);
    let text = fs::read_to_string(&path).unwrap();
    let numbers: Vec<u64> = srt_cues(&text).iter().map(|c| c.0).collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<_>>());
    assert_eq!(events_in(&path, Format::Srt), texts(&sent));
}

#[test]
fn kill_9_loses_nothing_before_the_last_flush() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    for (round, format) in Format::ALL.into_iter().enumerate() {
        let path = dir.path().join(format!("k.{format}"));
        let mut proc = child("stream", &path)
            .env("HARK_CHILD_FORMAT", format.name())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(proc.stdout.take().unwrap());
        // Kill at a different point each round, after a few flushes.
        let kill_after_flushes = 3 + round * 2;
        let mut durable = 0usize;
        let mut flushes_seen = 0;
        for line in stdout.lines() {
            let line = line.unwrap();
            let Some(n) = line.strip_prefix("durable ") else {
                continue;
            };
            durable = n.parse().unwrap();
            flushes_seen += 1;
            if flushes_seen == kill_after_flushes {
                break;
            }
        }
        proc.kill().unwrap(); // SIGKILL
        proc.wait().unwrap();
        assert!(durable > 0, "{format}: child reported no flush");
        let found = events_in(&path, format);
        assert!(
            found.len() >= durable,
            "{format}: {} events in file, {durable} reported durable",
            found.len()
        );
        let expected: Vec<String> = (0..found.len()).map(|i| event(i).text).collect();
        assert_eq!(
            found, expected,
            "{format}: whole events in order, none missing"
        );
        // Restarting appends cleanly after whatever the kill left.
        let report = write_all(WriterConfig::new(&path, format), &[event(found.len())]);
        let again = events_in(&path, format);
        assert_eq!(
            again.len(),
            found.len() + 1,
            "{format}: torn {}",
            report.torn_bytes_cut
        );
        if format == Format::Srt {
            let text = fs::read_to_string(&path).unwrap();
            let numbers: Vec<u64> = srt_cues(&text).iter().map(|c| c.0).collect();
            assert_eq!(numbers, (1..=again.len() as u64).collect::<Vec<_>>());
        }
    }
}

#[test]
fn stalled_disk_queues_without_blocking_and_loses_nothing() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("stalled.jsonl");
    let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    // A reader that does not read yet: the writer's write() blocks once the
    // pipe buffer is full, a real blocking point like a stalled disk.
    let mut reader = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let capacity = 64;
    let mut config = WriterConfig::new(&fifo, Format::Jsonl);
    config.queue_capacity = capacity;
    config.flush_interval = Duration::from_millis(20);
    let writer = Writer::spawn(config).unwrap();
    let tx = writer.sender();
    let mut accepted = Vec::new();
    let mut rejected = None;
    for i in 0..100_000 {
        match tx.try_send(big_event(i, 1000)) {
            Ok(()) => accepted.push(big_event(i, 1000)),
            Err(SendError::Full(back)) => {
                rejected = Some(back);
                break;
            }
            Err(e) => panic!("{e}"),
        }
        // Let the writer reach the full pipe before the queue fills.
        if i < 200 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let back = rejected.expect("try_send gave the event back instead of blocking");
    assert_eq!(back, big_event(accepted.len(), 1000));
    let m = writer.metrics();
    assert_eq!(m.queue_depth, capacity, "{m:?}");
    assert_eq!(m.queue_capacity, capacity);
    assert_eq!(m.queue_peak, capacity);
    assert_eq!(m.events_rejected, 1);
    assert!(m.events_written < accepted.len() as u64);

    let drain = std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    let report = writer.finish().unwrap();
    let got = String::from_utf8(drain.join().unwrap()).unwrap();
    let events: Vec<Event> = got
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events, accepted);
    assert_eq!(report.metrics.events_written, accepted.len() as u64);
}

/// The child side of the kill -9 and file-size-limit tests; does nothing in
/// a normal test run.
#[test]
fn child_process_entry() {
    let _serial = crate::support::serial();
    let Ok(role) = std::env::var(CHILD_ENV) else {
        return;
    };
    let path = PathBuf::from(std::env::var("HARK_CHILD_PATH").unwrap());
    match role.as_str() {
        "efbig" => {
            // SAFETY: plain libc calls on this process's own limits and signals.
            unsafe {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let limit = libc::rlimit {
                    rlim_cur: CHILD_FILE_LIMIT_BYTES,
                    rlim_max: CHILD_FILE_LIMIT_BYTES,
                };
                assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
            }
            let mut config = WriterConfig::new(&path, Format::Jsonl);
            config.emergency_path = Some(std::env::var("HARK_CHILD_EMERGENCY").unwrap().into());
            let report = write_all(config, &disk_filling_events());
            assert_eq!(report.metrics.mode, WriteMode::Emergency);
            let error = report.metrics.last_error.unwrap_or_default();
            assert!(error.contains("File too large"), "{error}");
        }
        "stream" => {
            let format: Format = std::env::var("HARK_CHILD_FORMAT").unwrap().parse().unwrap();
            let mut config = WriterConfig::new(&path, format);
            config.flush_interval = Duration::from_millis(100);
            let writer = Writer::spawn(config).unwrap();
            let tx = writer.sender();
            let mut reported = 0;
            let stdout = std::io::stdout();
            for i in 0.. {
                tx.send(event(i)).unwrap();
                let durable = writer.metrics().events_written;
                if durable != reported {
                    reported = durable;
                    let mut out = stdout.lock();
                    writeln!(out, "durable {durable}").unwrap();
                    out.flush().unwrap();
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        other => panic!("unknown child role {other}"),
    }
}
