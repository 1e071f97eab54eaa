//! A WAV file whose header declares almost 4 GiB of audio, made sparse with
//! `File::set_len`: it takes no disk space and reads as zeros, so its
//! length on disk backs the header's claim and nothing may be sized from
//! either without a bound. 8-bit mono at 1 kHz is the worst case: every
//! byte is a frame, and a frame is 16 samples at 16 kHz.
//!
//! The real binary runs under a 6 GiB address-space limit, so a reservation
//! sized from the header fails fast (an abort) instead of pushing the
//! shared machine into swap or the OOM killer: before the fix,
//! `hark transcribe` reserved 256 GiB and `--realtime` 16 GiB (the whole
//! file as f32) and both aborted.

use super::*;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Data bytes the header declares (and the file holds on disk, as a hole).
const DATA_LEN: u32 = 0xFFFF_0000;
/// The child's address-space limit.
const ADDRESS_SPACE: u64 = 6 << 30;
/// Hang detectors: far above what each step takes (a second or two).
const START_TIMEOUT: Duration = Duration::from_secs(120);
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// Resident memory the streamed feed may reach (the model, Whisper's
/// buffers, one block of the file): before the fix the file alone was
/// 16 GiB of samples.
const MAX_RSS_KIB: u64 = 1 << 20;

/// An 8-bit mono 1 kHz WAV header declaring [`DATA_LEN`] bytes, and a hole
/// that long after it.
fn sparse_wav(name: &str) -> PathBuf {
    let path = scratch().join(name);
    let mut header = Vec::new();
    header.extend_from_slice(b"RIFF");
    header.extend_from_slice(&(DATA_LEN + 36).to_le_bytes());
    header.extend_from_slice(b"WAVEfmt ");
    header.extend_from_slice(&16u32.to_le_bytes());
    header.extend_from_slice(&1u16.to_le_bytes()); // PCM
    header.extend_from_slice(&1u16.to_le_bytes()); // mono
    header.extend_from_slice(&1_000u32.to_le_bytes()); // rate
    header.extend_from_slice(&1_000u32.to_le_bytes()); // bytes per second
    header.extend_from_slice(&1u16.to_le_bytes()); // block align
    header.extend_from_slice(&8u16.to_le_bytes()); // bits
    header.extend_from_slice(b"data");
    header.extend_from_slice(&DATA_LEN.to_le_bytes());
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&header).unwrap();
    file.set_len(header.len() as u64 + u64::from(DATA_LEN))
        .unwrap();
    path
}

/// `hark transcribe ARGS` under the address-space limit.
fn limited_hark(args: &[&std::ffi::OsStr]) -> Command {
    let mut command = hark();
    command.arg("transcribe").args(args);
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the
    // child between fork and exec.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE,
                rlim_max: ADDRESS_SPACE,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command
}

#[test]
fn a_sparse_4_gib_wav_is_refused_offline_with_code_3() {
    let _serial = crate::support::serial();
    let path = sparse_wav("sparse-offline.wav");
    let output = run(&mut limited_hark(&[path.as_os_str()]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.starts_with("hark: error: "), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    // 4294901760 frames at 1 kHz: 1193 h.
    assert!(stderr.contains("1193.0 h of audio"), "{stderr}");
}

/// Whether process `pid` has a thread named `name`.
fn has_thread(pid: u32, name: &str) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
}

/// A `VmHWM` (peak resident) figure of process `pid`, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_sparse_4_gib_wav_is_streamed_in_realtime_and_stops_on_sigint() {
    let _serial = crate::support::serial();
    let path = sparse_wav("sparse-realtime.wav");
    let mut child = limited_hark(&["--realtime".as_ref(), "-f".as_ref(), "jsonl".as_ref()])
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The feeder thread starts once the file's header is read (before the
    // fix, only after the whole file was): then 5 s of the file are fed.
    let started = Instant::now();
    while !has_thread(pid, "hark-feed-file") {
        if let Some(status) = child.try_wait().unwrap() {
            let _ = reader.join();
            let log: Vec<String> = lines.try_iter().collect();
            panic!("hark ended before feeding: {status:?}\n{}", log.join("\n"));
        }
        assert!(started.elapsed() < START_TIMEOUT, "no feeder thread");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_secs(5));
    assert!(child.try_wait().unwrap().is_none(), "hark ended early");
    let peak = peak_rss_kib(pid);
    let (status, took) = crate::support::interrupt(&mut child, EXIT_TIMEOUT, "sparse --realtime");
    reader.join().unwrap();
    let log: Vec<String> = lines.try_iter().collect();
    eprintln!(
        "exit {status:?} {:.2?} after SIGINT, peak RSS {peak} KiB\n{}",
        took,
        log.join("\n")
    );
    assert_eq!(status.code(), Some(0), "{}", log.join("\n"));
    assert!(peak < MAX_RSS_KIB, "peak RSS {peak} KiB");
}
