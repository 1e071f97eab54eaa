//! Bounded shutdown: with a transcript target that blocks (a FIFO whose
//! reader never reads, so hark's first write into it never returns), the
//! first SIGINT still ends `hark live`, `hark transcribe` and `hark soak`,
//! with exit code 5 and the count of events not written. Real processes,
//! a real FIFO, real signals, the real model and a private sound server.
//!
//! The stop is bounded by design (the drain, then at most
//! `hark::session::WRITER_STOP_GRACE` for the writer): the time from the
//! signal to the exit is held to README's bound ([`STOP_BOUND`]), and the
//! measured time is printed. The other deadlines are hang detectors.

use crate::support::fifo;
use crate::support::{asset, root, STOP_BOUND};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hark::soundserver::{self, SoundServer};

use fifo::{blocked_writing_pipe, events_not_written, FullFifo};

/// Until hark has started and blocked in its first write (model load,
/// speech, a final committed, a flush).
const BLOCK_TIMEOUT: Duration = Duration::from_secs(240);
/// Hang detector after the signal (far above the design bound).
const EXIT_TIMEOUT: Duration = Duration::from_secs(120);
/// Hang detector for a refusal that takes well under a second.
const NO_READER_TIMEOUT: Duration = Duration::from_secs(60);

fn hark(env: &[(String, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hark"));
    command
        .current_dir(root())
        .env_remove("HARK_MODEL")
        .env_remove("HARK_LOG")
        .env("HARK_MODELS_DIR", root().join("models"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Waits until hark's writer thread is stuck in the FIFO, sends SIGINT,
/// and checks the exit: code 5, one error line counting the events lost.
fn interrupt_when_blocked(mut child: Child, what: &str) {
    let pid = child.id();
    let deadline = Instant::now() + BLOCK_TIMEOUT;
    while !blocked_writing_pipe(pid, "hark-writer") {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what}: hark ended before it blocked: {status:?}");
        }
        assert!(Instant::now() < deadline, "{what}: hark never wrote");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, took) = crate::support::interrupt(&mut child, EXIT_TIMEOUT, what);
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    eprintln!("{what}: exit {status:?} {took:.2?} after SIGINT\n{stderr}");
    assert_eq!(status.code(), Some(5), "{what}: {stderr}");
    assert!(took <= STOP_BOUND, "{what}: {took:.2?} from SIGINT to exit");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("hark: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{what}: {stderr}");
    let lost = events_not_written(errors[0]).expect("the count of events not written");
    assert!(lost >= 1, "{what}: {}", errors[0]);
}

#[test]
fn transcribe_into_a_blocked_fifo_ends_on_the_first_interrupt() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let fifo = FullFifo::new(&dir.path().join("out.jsonl"));
    let child = hark(&[])
        .args(["transcribe", "-f", "jsonl", "-o"])
        .arg(&fifo.path)
        .arg(asset("weather.wav"))
        .spawn()
        .unwrap();
    interrupt_when_blocked(child, "transcribe");
}

#[test]
fn live_into_a_blocked_fifo_ends_on_the_first_interrupt() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    let dir = tempfile::tempdir().unwrap();
    let fifo = FullFifo::new(&dir.path().join("out.jsonl"));
    let child = hark(&server.env())
        .args(["live", "--source", "loopback", "-o"])
        .arg(&fifo.path)
        .spawn()
        .unwrap();
    let mut player = server
        .play(soundserver::SPEAKER_SINK, &asset("weather.wav"))
        .unwrap();
    interrupt_when_blocked(child, "live");
    let _ = player.kill();
    let _ = player.wait();
}

#[test]
fn soak_into_a_blocked_fifo_ends_on_the_first_interrupt() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    std::fs::create_dir(&out).unwrap();
    // The soak's transcript is out/transcript.jsonl: make it the FIFO.
    let _fifo = FullFifo::new(&out.join("transcript.jsonl"));
    let child = hark(&[])
        .args(["soak", "--duration", "600", "--threads", "1", "--out"])
        .arg(&out)
        .spawn()
        .unwrap();
    interrupt_when_blocked(child, "soak");
}

/// A FIFO nobody has open: opening it for writing would wait for a reader
/// forever, on the main thread, where no signal could end hark. It is
/// refused at once instead, with exit 5 naming it, before the model loads.
#[test]
fn a_fifo_with_no_reader_is_refused_not_waited_for() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nobody.jsonl");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let mut child = hark(&[])
        .args(["transcribe", "-o"])
        .arg(&path)
        .arg(asset("weather.wav"))
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > NO_READER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hark still waiting for a reader after {NO_READER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(5), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(&path.display().to_string()), "{stderr}");
    assert!(stderr.contains("no reader"), "{stderr}");
}
