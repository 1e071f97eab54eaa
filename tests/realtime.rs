//! The no-allocation proof: the real callback body (the function the cpal
//! callback calls), with real scratch and a real ring, run under an
//! allocator that aborts the process on any allocation or free inside
//! `assert_no_alloc`.
//!
//! assert_no_alloc is a no-op in builds without debug assertions (its
//! default `disable_release` feature), so run these in the default test
//! profile. `deliberate_allocation_aborts` proves the checker is live: it
//! runs a child that allocates inside `assert_no_alloc` and expects it to
//! abort; under `--release` that test fails instead of passing silently.

use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use assert_no_alloc::assert_no_alloc;
use hark::capture::stats::{CaptureStats, ERROR_BACKEND, ERROR_XRUN};
use hark::capture::{CallbackBody, PriorityState, RealtimeRequest};
use hark::handoff::{self, Consumer};

#[global_allocator]
static ALLOCATOR: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

const BUFFER_FRAMES: [usize; 7] = [1, 2, 53, 480, 1024, 1440, 5000];
const CHANNEL_COUNTS: [u16; 3] = [1, 2, 6];
const ROUNDS: usize = 20;
const CHILD_ENV: &str = "HARK_REALTIME_ALLOC_CHILD";

fn body(channels: u16, ring_capacity: usize, request: RealtimeRequest) -> (CallbackBody, Consumer) {
    let (producer, consumer) = handoff::ring(ring_capacity);
    let stats = Arc::new(CaptureStats::new(producer.counters()));
    (
        CallbackBody::new(channels, producer, stats, request),
        consumer,
    )
}

/// Wraps `samples` in a real `cpal::Data` of `format`, as a host would.
fn data<T>(samples: &mut [T], format: cpal::SampleFormat) -> cpal::Data {
    // SAFETY: the pointer and length describe `samples`, whose element type
    // matches `format`, and the Data does not outlive the borrow in use.
    unsafe { cpal::Data::from_parts(samples.as_mut_ptr().cast(), samples.len(), format) }
}

/// Buffers of every size and channel count in one sample type, built
/// before the no-allocation region.
fn buffers<T: Copy>(value: T, channels: u16) -> Vec<Vec<T>> {
    BUFFER_FRAMES
        .iter()
        .map(|&frames| vec![value; frames * usize::from(channels)])
        .collect()
}

fn run_format<T: Copy>(value: T, format: cpal::SampleFormat, expect: f32) {
    for channels in CHANNEL_COUNTS {
        let (mut body, mut consumer) = body(channels, 1 << 16, RealtimeRequest::default());
        let stats = body.stats();
        let mut bufs = buffers(value, channels);
        let mut out = vec![0.0f32; 1 << 16];
        let mut frames_total = 0u64;
        for _ in 0..ROUNDS {
            for buf in bufs.iter_mut() {
                let d = data(buf, format);
                // The first call also pins and raises the thread.
                assert_no_alloc(|| body.on_data(&d));
                frames_total += (buf.len() / usize::from(channels)) as u64;
                let n = consumer.pop(&mut out);
                assert!(out[..n].iter().all(|&s| (s - expect).abs() < 1e-3));
            }
        }
        assert_eq!(stats.frames_captured.load(Ordering::Acquire), frames_total);
        assert_eq!(stats.overflowed_samples(), 0);
        assert_ne!(stats.priority(), PriorityState::Pending);
    }
}

#[test]
fn callback_never_allocates_f32() {
    run_format(0.25f32, cpal::SampleFormat::F32, 0.25);
}

#[test]
fn callback_never_allocates_i16() {
    run_format(i16::MAX / 2 + 1, cpal::SampleFormat::I16, 0.5);
}

#[test]
fn callback_never_allocates_i32_u16_u8_i24_f64() {
    run_format(1i32 << 30, cpal::SampleFormat::I32, 0.5);
    run_format(u16::MAX / 4 * 3 + 1, cpal::SampleFormat::U16, 0.5);
    run_format(192u8, cpal::SampleFormat::U8, 0.5);
    run_format(
        cpal::I24::new(1 << 22).unwrap(),
        cpal::SampleFormat::I24,
        0.5,
    );
    run_format(-0.5f64, cpal::SampleFormat::F64, -0.5);
}

#[test]
fn overflow_path_never_allocates_and_counts_every_sample() {
    let (mut body, _consumer) = body(2, 100, RealtimeRequest::default());
    let stats = body.stats();
    let mut buf = vec![0.1f32; 480 * 2];
    let d = data(&mut buf, cpal::SampleFormat::F32);
    for _ in 0..ROUNDS {
        assert_no_alloc(|| body.on_data(&d)); // nobody pops: the ring stays full
    }
    let offered = (480 * ROUNDS) as u64;
    assert_eq!(stats.frames_captured.load(Ordering::Acquire), offered);
    assert_eq!(stats.overflowed_samples(), offered - 100);
    assert_eq!(stats.ring.pushed.load(Ordering::Acquire), 100);
}

#[test]
fn error_path_never_allocates() {
    let (body, _consumer) = body(1, 16, RealtimeRequest::default());
    let stats = body.stats();
    assert_no_alloc(|| {
        stats.record_error(cpal::ErrorKind::Xrun);
        stats.record_error(cpal::ErrorKind::BackendError);
    });
    assert_eq!(stats.stream_errors.load(Ordering::Acquire), 2);
    assert_eq!(stats.xruns.load(Ordering::Acquire), 1);
    assert_eq!(stats.last_error_code.load(Ordering::Acquire), ERROR_BACKEND);
    assert_ne!(ERROR_XRUN, ERROR_BACKEND);
}

#[test]
fn u32_dispatch_never_allocates() {
    let (mut body, _consumer) = body(1, 16, RealtimeRequest::default());
    let stats = body.stats();
    let mut buf = [0u32; 4];
    // Data claiming U32 is handled; this checks the dispatch does not allocate.
    let d = data(&mut buf, cpal::SampleFormat::U32);
    assert_no_alloc(|| body.on_data(&d));
    assert_eq!(stats.frames_captured.load(Ordering::Acquire), 4);
}

/// Run only as a child of `deliberate_allocation_aborts`.
#[test]
#[ignore = "run by deliberate_allocation_aborts in a child process"]
fn child_allocates_inside_the_guard() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let v = assert_no_alloc(|| vec![1u8; 64]);
    println!("allocation went unnoticed: {}", v.len());
}

#[test]
fn deliberate_allocation_aborts() {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new(exe)
        .args([
            "--ignored",
            "--exact",
            "child_allocates_inside_the_guard",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && !stdout.contains("went unnoticed"),
        "the allocation checker is not active (release build?): {:?}\n{stdout}",
        out.status
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGABRT), "{:?}", out.status);
    }
}
