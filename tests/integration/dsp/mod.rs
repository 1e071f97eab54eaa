//! dsp: WAV reading, downmix and resampling, checked on real files and on
//! signal properties (lengths, frequency, amplitude, alignment, state).

use std::f32::consts::TAU;
use std::io::Write;
use std::path::Path;

use assert_no_alloc::assert_no_alloc;
use hark::dsp::{self, downmix, AudioFileError, DspError, Resampler};

const RATES_HZ: [u32; 7] = [8000, 11025, 16000, 22050, 44100, 48000, 96000];

// ---------------------------------------------------------------- helpers

fn tone(freq_hz: f32, amplitude: f32, rate_hz: u32, frames: usize) -> Vec<f32> {
    (0..frames)
        .map(|i| amplitude * (TAU * freq_hz * i as f32 / rate_hz as f32).sin())
        .collect()
}

/// Amplitude of the `freq_hz` component of `x` (Goertzel / single DFT bin).
fn amplitude_at(x: &[f32], freq_hz: f32, rate_hz: u32) -> f32 {
    let (mut re, mut im) = (0.0f64, 0.0f64);
    for (i, &s) in x.iter().enumerate() {
        let phase = f64::from(TAU) * f64::from(freq_hz) * i as f64 / f64::from(rate_hz);
        re += f64::from(s) * phase.cos();
        im -= f64::from(s) * phase.sin();
    }
    (2.0 * (re * re + im * im).sqrt() / x.len() as f64) as f32
}

fn zero_crossings(x: &[f32]) -> usize {
    x.windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count()
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|s| s * s).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

fn resample_all(rate_hz: u32, input: &[f32], chunk: usize) -> Vec<f32> {
    let mut resampler = Resampler::new(rate_hz).unwrap();
    let mut out = Vec::new();
    for part in input.chunks(chunk.max(1)) {
        resampler.push(part, &mut out);
    }
    resampler.finish(&mut out);
    out
}

fn expected_len(n_in: usize, rate_hz: u32) -> usize {
    (n_in as f64 * 16_000.0 / f64::from(rate_hz)).round() as usize
}

/// A small deterministic generator (xorshift) for chunk sizes and noise.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn write_wav(path: &Path, spec: hound::WavSpec, frames: usize) {
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let channels = usize::from(spec.channels);
    for i in 0..frames * channels {
        // A ramp per channel so channel order and scaling are checkable.
        let v = ((i / channels) as f64 / frames as f64) * 1.6 - 0.8;
        let v = if i % channels == 0 { v } else { -v };
        match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, _) => writer.write_sample(v as f32).unwrap(),
            (_, 8) => writer.write_sample((v * 127.0).round() as i8).unwrap(),
            (_, 16) => writer.write_sample((v * 32767.0).round() as i16).unwrap(),
            (_, 24) => writer
                .write_sample((v * 8_388_607.0).round() as i32)
                .unwrap(),
            (_, _) => writer
                .write_sample((v * 2_147_483_647.0).round() as i32)
                .unwrap(),
        }
    }
    writer.finalize().unwrap();
}

// ---------------------------------------------------------------- wav::read

#[test]
fn reads_every_integer_width_and_float() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let formats = [
        (hound::SampleFormat::Int, 8, 1.0 / 64.0),
        (hound::SampleFormat::Int, 16, 1e-4),
        (hound::SampleFormat::Int, 24, 1e-6),
        (hound::SampleFormat::Int, 32, 1e-6),
        (hound::SampleFormat::Float, 32, 1e-7),
    ];
    for (format, bits, tolerance) in formats {
        for (rate_hz, channels) in [(8000, 1), (44_100, 2), (48_000, 6)] {
            let path = dir
                .path()
                .join(format!("{format:?}{bits}-{rate_hz}-{channels}.wav"));
            let spec = hound::WavSpec {
                channels,
                sample_rate: rate_hz,
                bits_per_sample: bits,
                sample_format: format,
            };
            let frames = 1000;
            write_wav(&path, spec, frames);
            let audio = dsp::wav::read(&path).unwrap();
            assert_eq!((audio.rate_hz, audio.channels), (rate_hz, channels));
            assert_eq!(audio.frames(), frames);
            let duration = audio.duration().as_secs_f64();
            assert!((duration - frames as f64 / f64::from(rate_hz)).abs() < 1e-9);
            for (i, &s) in audio.samples.iter().enumerate() {
                let v = ((i / usize::from(channels)) as f64 / frames as f64) * 1.6 - 0.8;
                let v = if i % usize::from(channels) == 0 {
                    v
                } else {
                    -v
                };
                assert!(
                    (f64::from(s) - v).abs() < tolerance,
                    "{format:?}{bits} sample {i}: {s} vs {v}"
                );
                assert!((-1.0..=1.0).contains(&s));
            }
        }
    }
}

#[test]
fn read_16k_mono_downmixes_and_resamples() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stereo48k.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(&path, spec).unwrap();
    // Left: 440 Hz at 0.6; right: silence. Mono must be 440 Hz at 0.3.
    for s in tone(440.0, 0.6, 48_000, 48_000) {
        writer.write_sample((s * 32767.0) as i16).unwrap();
        writer.write_sample(0i16).unwrap();
    }
    writer.finalize().unwrap();
    let audio = dsp::wav::read_16k_mono(&path).unwrap();
    assert_eq!((audio.rate_hz, audio.channels), (16_000, 1));
    assert_eq!(audio.samples.len(), 16_000);
    let amplitude = amplitude_at(&audio.samples[1600..14_400], 440.0, 16_000);
    assert!((amplitude - 0.3).abs() < 0.005, "amplitude {amplitude}");
}

#[test]
fn missing_file_is_an_open_error_naming_it() {
    let _serial = crate::support::serial();
    let err = dsp::wav::read("/nonexistent/dir/speech.wav").unwrap_err();
    assert!(matches!(err, AudioFileError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/dir/speech.wav"),
        "{err}"
    );
}

#[test]
fn text_file_is_not_a_wav() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wav");
    std::fs::write(&path, "these are not the samples you are looking for").unwrap();
    let err = dsp::wav::read(&path).unwrap_err();
    assert!(matches!(err, AudioFileError::NotWav { .. }), "{err:?}");
    assert!(err.to_string().contains("notes.wav"), "{err}");
    // Shorter than a header too.
    std::fs::write(&path, "RIFF").unwrap();
    let err = dsp::wav::read(&path).unwrap_err();
    assert!(matches!(err, AudioFileError::NotWav { .. }), "{err:?}");
}

#[test]
fn wav_without_frames_is_empty() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(&path, spec)
        .unwrap()
        .finalize()
        .unwrap();
    let err = dsp::wav::read(&path).unwrap_err();
    assert!(matches!(err, AudioFileError::Empty { .. }), "{err:?}");
    assert!(err.to_string().contains("empty.wav"), "{err}");
    let err = dsp::wav::read_16k_mono(&path).unwrap_err();
    assert!(matches!(err, AudioFileError::Empty { .. }), "{err:?}");
}

/// A canonical 44-byte-header WAV with the given format tag and width.
fn raw_wav(format_tag: u16, bits: u16, data: &[u8]) -> Vec<u8> {
    let channels = 1u16;
    let rate = 16_000u32;
    let block_align = channels * bits / 8;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&format_tag.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&bits.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(data);
    v
}

#[test]
fn float64_and_compressed_are_unsupported() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f64.wav");
    let data: Vec<u8> = [0.25f64, -0.5, 0.75]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    std::fs::write(&path, raw_wav(3, 64, &data)).unwrap();
    let err = dsp::wav::read(&path).unwrap_err();
    assert!(matches!(err, AudioFileError::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("64-bit float"), "{err}");
    assert!(err.to_string().contains("f64.wav"), "{err}");

    let path = dir.path().join("alaw.wav");
    std::fs::write(&path, raw_wav(6, 8, &[1, 2, 3, 4])).unwrap();
    let err = dsp::wav::read(&path).unwrap_err();
    assert!(matches!(err, AudioFileError::Unsupported { .. }), "{err:?}");
}

#[test]
fn truncated_data_is_read_up_to_the_cut() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    write_wav(&path, spec, 1000);
    let whole = dsp::wav::read(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // Cut in the middle of frame 600 (44-byte header, 4 bytes per frame).
    let cut = 44 + 600 * 4 + 3;
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&bytes[..cut]).unwrap();
    drop(file);
    let audio = dsp::wav::read(&path).unwrap();
    assert_eq!(audio.frames(), 600);
    assert_eq!(audio.samples[..], whole.samples[..1200]);

    // Cut before the first whole frame: nothing to use.
    std::fs::write(&path, &bytes[..44 + 3]).unwrap();
    let err = dsp::wav::read(&path).unwrap_err();
    assert!(matches!(err, AudioFileError::Empty { .. }), "{err:?}");
}

// ---------------------------------------------------------------- downmix

/// A 44-byte-header 16-bit PCM WAV with any header fields, crafted: the
/// rate, channel count and data length are written as given.
fn crafted_wav(rate: u32, channels: u16, declared_data_len: u32, data: &[u8]) -> Vec<u8> {
    let block_align = channels.wrapping_mul(2);
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&declared_data_len.wrapping_add(36).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&rate.wrapping_mul(u32::from(block_align)).to_le_bytes());
    v.extend_from_slice(&block_align.to_le_bytes());
    v.extend_from_slice(&16u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&declared_data_len.to_le_bytes());
    v.extend_from_slice(data);
    v
}

/// One second of a 440 Hz tone at 16 kHz, 16-bit little-endian.
fn one_second_tone() -> Vec<u8> {
    (0..16_000)
        .flat_map(|i| {
            let v = (i as f64 * 440.0 * std::f64::consts::TAU / 16_000.0).sin() * 0.5;
            ((v * 32767.0) as i16).to_le_bytes()
        })
        .collect()
}

#[test]
fn rates_and_channel_counts_out_of_bounds_are_unsupported() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let data = one_second_tone();
    for (rate, channels, needle) in [
        (999, 1, "999 Hz"),
        (384_001, 1, "384001 Hz"),
        (2_000_000, 1, "2000000 Hz"),
        (16_000, 33, "33 channels"),
        (16_000, 1000, "1000 channels"),
    ] {
        let path = dir.path().join(format!("crafted-{rate}-{channels}.wav"));
        let len = data.len() as u32 / u32::from(channels) / 2 * u32::from(channels) * 2;
        std::fs::write(
            &path,
            crafted_wav(rate, channels, len, &data[..len as usize]),
        )
        .unwrap();
        for err in [
            dsp::wav::read(&path).unwrap_err(),
            dsp::wav::read_16k_mono(&path).unwrap_err(),
        ] {
            assert!(matches!(err, AudioFileError::Unsupported { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(needle), "{message}");
            assert!(message.contains("crafted-"), "{message}");
        }
    }
    // The bounds themselves are read.
    for (rate, channels) in [(1_000, 1), (384_000, 1), (16_000, 32)] {
        let path = dir.path().join(format!("edge-{rate}-{channels}.wav"));
        let frames = 100 * usize::from(channels);
        std::fs::write(
            &path,
            crafted_wav(rate, channels, frames as u32 * 2, &data[..frames * 2]),
        )
        .unwrap();
        let audio = dsp::wav::read(&path).unwrap();
        assert_eq!(
            (audio.rate_hz, audio.channels, audio.frames()),
            (rate, channels, 100)
        );
    }
}

#[test]
fn a_data_length_beyond_the_file_is_not_trusted() {
    let _serial = crate::support::serial();
    // The header claims 4 GiB of data; the file holds 1 s. Reading must not
    // try to reserve the claimed size (that aborts the process), and reads
    // the second that is there.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("liar.wav");
    let data = one_second_tone();
    std::fs::write(&path, crafted_wav(16_000, 1, 0xFFFF_FFFE, &data)).unwrap();
    let stream = dsp::wav::Stream::open(&path).unwrap();
    assert!(
        stream.declared_frames() <= 16_000 + 22,
        "{}",
        stream.declared_frames()
    );
    let audio = dsp::wav::read(&path).unwrap();
    assert_eq!(audio.frames(), 16_000);
    let mono = dsp::wav::read_16k_mono(&path).unwrap();
    assert_eq!(mono.samples.len(), 16_000);
    assert_eq!(mono.samples, audio.samples);
}

#[test]
fn streaming_blocks_give_the_whole_file_read() {
    let _serial = crate::support::serial();
    // 48 kHz stereo, longer than one streaming block: read_16k_mono (block
    // by block) equals downmix + resample over the whole file at once.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    write_wav(&path, spec, 100_000);
    let whole = dsp::wav::read(&path).unwrap();
    let mut mono = vec![0.0; whole.frames()];
    dsp::downmix(&whole.samples, 2, &mut mono);
    let mut resampler = dsp::Resampler::new(48_000).unwrap();
    let mut expected = Vec::new();
    resampler.push(&mono, &mut expected);
    resampler.finish(&mut expected);
    let streamed = dsp::wav::read_16k_mono(&path).unwrap();
    assert_eq!(streamed.samples.len(), expected.len());
    let worst = streamed
        .samples
        .iter()
        .zip(&expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst < 1e-5,
        "streamed and whole-file resampling differ by {worst}"
    );
}

mod resample;
