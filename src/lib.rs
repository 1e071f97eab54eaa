//! hark: real-time audio capture and transcription.
//!
//! The pipeline, one floor each; data flows down this list and nothing below
//! imports what sits above it:
//!
//! | floor        | module        | thread                                   |
//! |--------------|---------------|------------------------------------------|
//! | capture      | [`capture`]   | the device callback (real-time)          |
//! | handoff      | [`handoff`]   | lock-free SPSC ring, callback -> pump    |
//! | dsp          | [`dsp`]       | pump thread: downmix, resample to 16 kHz |
//! | vad          | [`vad`]       | pump thread: speech / silence segments   |
//! | inference    | [`inference`] | one worker per source, Whisper + policy  |
//! | events       | [`event`]     | the type handed from inference onwards   |
//! | transcript   | [`transcript`]| one writer thread: batched, durable      |
//!
//! Beside them: [`sizer`] and [`monitor`] read metrics, [`model`] imports and
//! quantizes models, [`score`] measures word error rate, [`class`] says what
//! kind of failure each error is. [`session`] owns a running session
//! (pipeline, monitor, transcript writer, one stop order); the CLI ([`cli`])
//! and the soak harness ([`soak`]) sit on top of it.
//!
//! # The real-time contract
//!
//! Code that runs on the audio device's callback thread must return in a
//! bounded time whatever the rest of the process is doing. Such code:
//!
//! - never allocates or frees memory (every buffer is preallocated before the
//!   stream starts),
//! - never takes a lock (only atomics and the wait-free SPSC ring),
//! - never logs, prints or does I/O, and makes no syscall beyond what the
//!   audio backend itself does,
//! - never loops without a bound known before the call (loops run over the
//!   frames of the buffer it was handed, nothing else),
//! - reports trouble by counting it in atomics that other threads read.
//!
//! Every function that runs there says **"Real-time safe."** in its docs and
//! is exercised under an allocator that aborts on allocation
//! (`tests/realtime.rs`). Functions that must never be called there say
//! **"Not real-time safe."**.
//!
//! Two bounded exceptions, each labelled where it happens:
//!
//! - the first callback of a stream pins its thread to a core and asks for
//!   `SCHED_FIFO` (`capture::priority::apply`): two syscalls, once per
//!   stream, never again on that stream;
//! - the stream's error callback (`capture::stream`) receives an owned
//!   `cpal::Error` from the backend and drops it after counting its kind, a
//!   free of memory the backend allocated; backends call it on their own
//!   thread, and the data path never does.

pub mod capture;
pub mod class;
pub mod cli;
pub mod dsp;
pub mod echo;
pub mod event;
pub mod handoff;
pub mod inference;
pub mod model;
pub mod monitor;
pub mod pipeline;
pub mod score;
pub mod session;
pub mod sizer;
pub mod soak;
pub mod soundserver;
pub mod transcript;
pub mod vad;
