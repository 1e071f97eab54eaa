//! Capture against a private PulseAudio server (real server, real cpal
//! streams, real audio played with paplay).
//!
//! Runs without the libtest harness: cpal finds the server through the
//! process environment, which must be set before any thread starts.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hark::capture::{CaptureSpec, CaptureStream, DeviceError, SourceKind};
use hark::handoff::{self, Consumer};
use hark::soundserver::{self, SoundServer};

const TONE_HZ: f64 = 1000.0;
const TONE_RATE_HZ: u32 = 44_100;
const TONE: Duration = Duration::from_secs(2);
const RING: Duration = Duration::from_secs(10);
const DRAIN_INTERVAL: Duration = Duration::from_millis(20);
/// Silence recorded before playback starts and after it ends.
const LEAD_IN: Duration = Duration::from_millis(300);
const TAIL: Duration = Duration::from_millis(700);

fn main() {
    let mut failed = 0;
    // Before the server exists: no server reachable must be a clean error.
    failed += run("no_server_gives_no_sound_server", no_server);

    let server = SoundServer::start().expect("start the private sound server");
    // SAFETY: single-threaded so far (cpal starts its threads only later).
    unsafe { server.export_env() };
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = dir.path().join("tone.wav");
    write_tone(&tone);

    failed += run("loopback_captures_what_plays_on_spk", || {
        capture_tone(
            &server,
            &tone,
            SourceKind::Loopback,
            soundserver::SPEAKER_MONITOR,
            soundserver::SPEAKER_SINK,
        )
    });
    failed += run("mic_captures_what_feeds_vmic", || {
        capture_tone(
            &server,
            &tone,
            SourceKind::Mic,
            soundserver::MIC_SOURCE,
            soundserver::MIC_FEED_SINK,
        )
    });
    failed += run("default_loopback_is_the_default_sinks_monitor", || {
        let spec = CaptureSpec::new(SourceKind::Loopback);
        let (stream, _consumer) =
            CaptureStream::start(&spec, 48_000).expect("open default loopback");
        assert_eq!(stream.device_name(), soundserver::SPEAKER_MONITOR);
        let spec = CaptureSpec::new(SourceKind::Mic);
        let (stream, _consumer) = CaptureStream::start(&spec, 48_000).expect("open default mic");
        assert_eq!(stream.device_name(), soundserver::MIC_SOURCE);
    });
    failed += run("missing_device_lists_what_exists", || {
        let spec = CaptureSpec::new(SourceKind::Mic).with_device("no-such-mic");
        match CaptureStream::start(&spec, 1024) {
            Err(err @ DeviceError::NoSuchDevice { .. }) => {
                let DeviceError::NoSuchDevice { name, available } = &err else {
                    unreachable!()
                };
                assert_eq!(name, "no-such-mic");
                assert!(
                    available.iter().any(|d| d == soundserver::MIC_SOURCE),
                    "{available:?}"
                );
                // Mic candidates exclude monitors; loopback ones are only monitors.
                assert!(
                    !available.iter().any(|d| d.ends_with(".monitor")),
                    "{available:?}"
                );
                assert!(err.retryable());
                assert!(err.to_string().contains("vmic"), "{err}");
            }
            Err(other) => panic!("expected NoSuchDevice, got {other:?}"),
            Ok(_) => panic!("a missing device opened"),
        }
    });
    failed += run("substring_names_select_and_ambiguity_is_reported", || {
        let spec = CaptureSpec::new(SourceKind::Loopback).with_device("SPK");
        let (stream, _c) = CaptureStream::start(&spec, 1024).expect("substring match");
        assert_eq!(stream.device_name(), soundserver::SPEAKER_MONITOR);
        let spec = CaptureSpec::new(SourceKind::Loopback).with_device("monitor");
        match CaptureStream::start(&spec, 1024) {
            Err(DeviceError::AmbiguousDevice { matches, .. }) => assert!(matches.len() >= 2),
            other => panic!("expected AmbiguousDevice, got {:?}", other.err()),
        }
    });
    failed += run("device_listing_marks_defaults_and_loopback", || {
        let hosts = hark::capture::device::list();
        let pulse = hosts
            .iter()
            .find(|h| h.host == cpal::HostId::PulseAudio)
            .expect("pulseaudio host listed");
        let devices = pulse.devices.as_ref().expect("pulse devices");
        let vmic = devices
            .iter()
            .find(|d| d.name == soundserver::MIC_SOURCE)
            .unwrap();
        assert!(vmic.input && vmic.default_input && !vmic.loopback);
        let monitor = devices
            .iter()
            .find(|d| d.name == soundserver::SPEAKER_MONITOR)
            .unwrap();
        assert!(monitor.input && monitor.loopback);
        let spk = devices
            .iter()
            .find(|d| d.name == soundserver::SPEAKER_SINK)
            .unwrap();
        assert!(spk.output && spk.default_output);
    });

    drop(server);
    if failed > 0 {
        eprintln!("{failed} capture test(s) failed");
        std::process::exit(1);
    }
    println!("all capture tests passed");
}

fn run(name: &str, test: impl FnOnce() + std::panic::UnwindSafe) -> usize {
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(test);
    let verdict = if outcome.is_ok() { "ok" } else { "FAILED" };
    println!(
        "test {name} ... {verdict} ({:.2} s)",
        started.elapsed().as_secs_f64()
    );
    usize::from(outcome.is_err())
}

fn no_server() {
    // Point every client at a socket that does not exist (no thread runs yet).
    // SAFETY: single-threaded at this point.
    unsafe {
        std::env::set_var("PULSE_SERVER", "unix:/nonexistent/hark/native");
        std::env::set_var("XDG_RUNTIME_DIR", "/nonexistent/hark");
    }
    let mut spec = CaptureSpec::new(SourceKind::Mic);
    spec.host = Some(cpal::HostId::PulseAudio);
    match CaptureStream::start(&spec, 1024) {
        Err(err @ DeviceError::NoSoundServer { .. }) => {
            assert!(err.retryable());
            assert!(err.to_string().contains("PULSE_SERVER"), "{err}");
        }
        Err(other) => panic!("expected NoSoundServer, got {other:?}"),
        Ok(_) => panic!("opened a stream with no server"),
    }
}

fn write_tone(path: &Path) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: TONE_RATE_HZ,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).expect("create tone wav");
    let frames = (TONE.as_secs_f64() * f64::from(TONE_RATE_HZ)) as usize;
    for i in 0..frames {
        let t = i as f64 / f64::from(TONE_RATE_HZ);
        let s = 0.5 * (2.0 * std::f64::consts::PI * TONE_HZ * t).sin();
        writer
            .write_sample((s * f64::from(i16::MAX)) as i16)
            .unwrap();
    }
    writer.finalize().unwrap();
}

/// Pops everything available into `out`.
fn drain(consumer: &mut Consumer, out: &mut Vec<f32>, scratch: &mut [f32]) {
    loop {
        let n = consumer.pop(scratch);
        out.extend_from_slice(&scratch[..n]);
        if n < scratch.len() {
            return;
        }
    }
}

fn capture_tone(server: &SoundServer, tone: &Path, kind: SourceKind, device: &str, sink: &str) {
    let spec = CaptureSpec::new(kind).with_device(device);
    let opening = Instant::now();
    let probe_rate = 48_000;
    let capacity = handoff::capacity_for(RING, probe_rate, 1);
    let (stream, mut consumer) = CaptureStream::start(&spec, capacity).expect("open stream");
    // cpal's PulseAudio `play()` returns once the source delivered data.
    let open_time = opening.elapsed();
    let started = Instant::now();
    let rate = stream.rate_hz();
    assert_eq!(stream.device_name(), device);
    let stats = stream.stats();

    let mut captured = Vec::new();
    let mut scratch = vec![0.0f32; 4096];
    let pump =
        |until: Instant, captured: &mut Vec<f32>, consumer: &mut Consumer, scratch: &mut [f32]| {
            while Instant::now() < until {
                drain(consumer, captured, scratch);
                std::thread::sleep(DRAIN_INTERVAL);
            }
        };
    pump(
        Instant::now() + LEAD_IN,
        &mut captured,
        &mut consumer,
        &mut scratch,
    );
    let mut player = server.play(sink, tone).expect("paplay");
    while player.try_wait().expect("paplay status").is_none() {
        drain(&mut consumer, &mut captured, &mut scratch);
        std::thread::sleep(DRAIN_INTERVAL);
    }
    assert!(player.wait().unwrap().success(), "paplay failed");
    pump(
        Instant::now() + TAIL,
        &mut captured,
        &mut consumer,
        &mut scratch,
    );
    stream.log_realtime_status();
    let wall = started.elapsed();
    let snapshot = stats.snapshot();
    stream.stop();
    drain(&mut consumer, &mut captured, &mut scratch);

    // Gapless accounting: every delivered frame was popped, none overflowed.
    assert_eq!(snapshot.overflowed_samples, 0, "{snapshot:?}");
    let after = stats.snapshot();
    assert_eq!(
        after.frames_captured,
        captured.len() as u64 + after.overflowed_samples
    );
    assert_eq!(after.popped_samples, captured.len() as u64);
    assert_eq!(after.stream_errors, 0, "{after:?}");

    // The tone: where it is loud, how long, which frequency.
    let loud: Vec<usize> = captured
        .iter()
        .enumerate()
        .filter(|(_, s)| s.abs() > 0.05)
        .map(|(i, _)| i)
        .collect();
    let (first, last) = (*loud.first().expect("tone captured"), *loud.last().unwrap());
    let span_s = (last - first) as f64 / f64::from(rate);
    let crossings = captured[first..=last]
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    let frequency_hz = crossings as f64 / 2.0 / span_s;
    let peak = captured.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    println!(
        "  {device}: opened in {:.3} s, rate {rate} Hz, {} frames in {:.3} s wall, tone span {span_s:.3} s \
         (played {:.3} s), {frequency_hz:.1} Hz, peak {peak:.3}, callbacks {}, max callback \
         {} ns, priority {:?}, pinned {:?}, overflow {}",
        open_time.as_secs_f64(),
        after.frames_captured,
        wall.as_secs_f64(),
        TONE.as_secs_f64(),
        after.callbacks,
        after.max_callback_ns,
        after.priority,
        after.pinned_core,
        after.overflowed_samples,
    );
    assert!((span_s - TONE.as_secs_f64()).abs() < 0.02, "span {span_s}");
    assert!(
        (frequency_hz - TONE_HZ).abs() < 5.0,
        "frequency {frequency_hz}"
    );
    assert!((peak - 0.5).abs() < 0.05, "peak {peak}");
    // The device clock delivered as many frames as wall time allows, minus
    // at most what still sat in the server's record buffer at stop.
    let expected = wall.as_secs_f64() * f64::from(rate);
    let ratio = after.frames_captured as f64 / expected;
    println!("  frames captured / wall time x rate = {ratio:.4}");
    assert!((0.95..=1.02).contains(&ratio), "frames/expected {ratio}");
    assert_eq!(stats.callbacks.load(Ordering::Acquire), after.callbacks);
}
