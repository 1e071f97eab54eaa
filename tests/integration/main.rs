//! hark's integration tests, one binary: each module below was its own
//! test binary, each linking all of whisper.cpp; now they share one link
//! and the set-up in [`support`]. Two tests keep their own binaries:
//! `tests/realtime.rs` (the no-allocation proof, with nothing else in its
//! process) and `tests/capture.rs` (sets the sound server's environment
//! before any thread starts).
//!
//! Every test takes [`support::serial`] first: most run Whisper at real
//! time, play audio through a private sound server or count this process's
//! threads, and must not share the cores or the process with another one
//! (as separate binaries they never did).

mod support;

/// The downmix test checks, inside `assert_no_alloc`, that the hot path
/// allocates nothing; outside such a block this is the system allocator.
#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

mod dsp;
mod echo;
mod install;
mod live;
mod metrics_port;
mod model;
mod monitor;
mod orphans;
mod output;
mod refusals;
mod reopen;
mod shutdown;
mod soak;
mod streaming;
mod transcribe;
mod vad;
mod writer;
