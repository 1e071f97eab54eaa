//! What the integration tests share: the checkout's paths, the default
//! model, the one-test-at-a-time lock, and the helpers of several modules.

pub mod echo;
pub mod fifo;

use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// README ("Stopping"): the first SIGINT ends hark within this, whatever
/// its transcript target or metrics clients do (measured 3-6 s here). Tests
/// measure from the signal to the exit and hold hark to it.
pub const STOP_BOUND: Duration = Duration::from_secs(20);

static SERIAL: Mutex<()> = Mutex::new(());

/// Sends SIGINT to `child` and waits for it to end, at most `timeout` (then
/// kills it and fails, naming `what`); its exit status and the time from
/// the signal to the exit.
pub fn interrupt(child: &mut Child, timeout: Duration, what: &str) -> (ExitStatus, Duration) {
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let signalled = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (status, signalled.elapsed());
        }
        if signalled.elapsed() > timeout {
            let _ = child.kill();
            panic!("{what}: hark did not end after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One test at a time (see the binary's doc); a failed test does not
/// poison the lock for the others.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The checkout.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A bundled clip or reference text.
pub fn asset(name: &str) -> PathBuf {
    root().join("assets").join(name)
}

/// The default model, made by scripts/setup.sh.
pub fn default_model() -> PathBuf {
    let path = root().join("models/tiny.en-q8_0.bin");
    assert!(
        path.is_file(),
        "run scripts/setup.sh first: {}",
        path.display()
    );
    path
}
