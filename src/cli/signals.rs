//! SIGINT and SIGTERM for every command that runs for a while (`live`,
//! `transcribe`, `soak`): the first one asks for a clean stop (capture ends,
//! what was captured is transcribed and written), a second one exits at once
//! with 130.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;

/// Exit code after a second signal (128 + SIGINT).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Installs the handlers; the flag turns true on the first signal.
pub fn install() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Registered first, so it sees the flag before this signal sets it:
        // only a second signal exits at once.
        signal_hook::flag::register_conditional_shutdown(
            signal,
            EXIT_INTERRUPTED,
            Arc::clone(&stop),
        )
        .context("cannot install the signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("cannot install the signal handler")?;
    }
    Ok(stop)
}
