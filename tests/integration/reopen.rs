//! Reopening a capture device does not leak: a real private sound server,
//! the virtual microphone opened and stopped 100 times (what device
//! recovery does on each reopen), and the server's client count and this
//! process's threads and file descriptors stay flat. Each open used to make
//! a new PulseAudio client whose reactor thread and socket never ended (the
//! server refuses clients past 64).

use std::time::{Duration, Instant};

use hark::capture::{CaptureSpec, CaptureStream, SourceKind};
use hark::soundserver::{SoundServer, MIC_SOURCE};

const REOPENS: usize = 100;

fn counts(server: &SoundServer) -> (usize, usize, usize) {
    let clients = server
        .pactl(&["list", "short", "clients"])
        .unwrap()
        .lines()
        .count();
    let threads = std::fs::read_dir("/proc/self/task").unwrap().count();
    let fds = std::fs::read_dir("/proc/self/fd").unwrap().count();
    (clients, threads, fds)
}

fn open_and_stop() {
    let spec = CaptureSpec::new(SourceKind::Mic).with_device(MIC_SOURCE);
    let (stream, _ring) = CaptureStream::start(&spec, 16_000).expect("open vmic");
    stream.stop();
}

/// The counts once they settle at or below `bound` (stream threads end
/// asynchronously after stop), or the last seen after 20 s.
fn settled(server: &SoundServer, bound: (usize, usize, usize)) -> (usize, usize, usize) {
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        let now = counts(server);
        if (now.0 <= bound.0 && now.1 <= bound.1 && now.2 <= bound.2) || Instant::now() > give_up {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn hundred_reopens_leave_clients_threads_and_fds_flat() {
    let _serial = crate::support::serial();
    let server = SoundServer::start().expect("private sound server");
    // SAFETY: tests run one at a time (RUST_TEST_THREADS=1 in
    // .cargo/config.toml, and the serial lock), so no other test thread
    // reads the environment while it is set; cpal reads it on the next open.
    unsafe { server.export_env() };
    for _ in 0..3 {
        open_and_stop();
    }
    let before = settled(&server, (usize::MAX, usize::MAX, usize::MAX));
    for _ in 0..REOPENS {
        open_and_stop();
    }
    let after = settled(&server, before);
    assert_eq!(
        after, before,
        "(clients, threads, fds) after {REOPENS} reopens vs before"
    );
}
