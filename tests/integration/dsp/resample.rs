//! The resampler and downmix: lengths, frequency, amplitude, alignment,
//! state, and no allocation on the hot path.

use super::*;

#[test]
fn downmix_averages_channels_without_allocating() {
    let _serial = crate::support::serial();
    let stereo = [0.5, -0.5, 1.0, 0.0, -1.0, -0.5];
    let mut mono = [9.0; 4];
    let frames = assert_no_alloc(|| downmix(&stereo, 2, &mut mono));
    assert_eq!(frames, 3);
    assert_eq!(mono, [0.0, 0.5, -0.75, 9.0]);

    let quad = [0.4, 0.4, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0];
    let mut mono = [0.0; 2];
    assert_eq!(assert_no_alloc(|| downmix(&quad, 4, &mut mono)), 2);
    assert!((mono[0] - 0.2).abs() < 1e-7 && (mono[1] - 1.0).abs() < 1e-7);

    // Mono is a copy; output shorter than input caps the frames.
    let mut short = [0.0; 2];
    assert_eq!(
        assert_no_alloc(|| downmix(&[0.1, 0.2, 0.3], 1, &mut short)),
        2
    );
    assert_eq!(short, [0.1, 0.2]);
    // A trailing partial frame and zero channels write nothing extra.
    assert_eq!(
        assert_no_alloc(|| downmix(&[0.1, 0.2, 0.3], 2, &mut short)),
        1
    );
    assert_eq!(assert_no_alloc(|| downmix(&[0.1, 0.2], 0, &mut short)), 0);
}

// ---------------------------------------------------------------- Resampler

#[test]
fn rate_zero_is_rejected() {
    let _serial = crate::support::serial();
    assert!(matches!(
        Resampler::new(0),
        Err(DspError::InvalidRate { rate_hz: 0 })
    ));
}

#[test]
fn output_length_is_exact_for_every_rate_and_chunking() {
    let _serial = crate::support::serial();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for rate_hz in RATES_HZ {
        for n_in in [0, 1, 7, 160, 441, 1000, 4801, rate_hz as usize * 3 + 17] {
            let input: Vec<f32> = (0..n_in)
                .map(|i| ((i * 7919) % 200) as f32 / 400.0)
                .collect();
            for chunk in [
                1,
                10,
                rate_hz as usize / 100,
                rate_hz as usize / 10,
                100_000,
            ] {
                let out = resample_all(rate_hz, &input, chunk);
                assert_eq!(
                    out.len(),
                    expected_len(n_in, rate_hz),
                    "rate {rate_hz}, n_in {n_in}, chunk {chunk}"
                );
            }
            // Random chunk sizes, several sessions on one resampler.
            let mut resampler = Resampler::new(rate_hz).unwrap();
            for _session in 0..3 {
                let mut out = Vec::new();
                let mut rest = &input[..];
                while !rest.is_empty() {
                    let take = (1 + rng.below(3000) as usize).min(rest.len());
                    resampler.push(&rest[..take], &mut out);
                    rest = &rest[take..];
                }
                resampler.finish(&mut out);
                assert_eq!(
                    out.len(),
                    expected_len(n_in, rate_hz),
                    "rate {rate_hz} n {n_in}"
                );
            }
        }
    }
}

#[test]
fn tones_keep_frequency_and_amplitude() {
    let _serial = crate::support::serial();
    for rate_hz in RATES_HZ {
        for freq_hz in [440.0, 1000.0, 3000.0] {
            let input = tone(freq_hz, 0.5, rate_hz, rate_hz as usize * 2);
            let out = resample_all(rate_hz, &input, rate_hz as usize / 50);
            assert_eq!(out.len(), 32_000);
            // Steady middle second (edges carry the zero padding of the tail).
            let middle = &out[8000..24_000];
            let crossings = zero_crossings(middle);
            let expected = 2.0 * freq_hz;
            assert!(
                (crossings as f32 - expected).abs() <= 2.0,
                "{rate_hz} Hz, {freq_hz} Hz tone: {crossings} crossings per second"
            );
            let amplitude = amplitude_at(middle, freq_hz, 16_000);
            assert!(
                (amplitude - 0.5).abs() < 0.005,
                "{rate_hz} Hz, {freq_hz} Hz tone: amplitude {amplitude}"
            );
            // The waveform itself matches the ideal 16 kHz tone.
            let ideal = tone(freq_hz, 0.5, 16_000, 32_000);
            let error: Vec<f32> = middle
                .iter()
                .zip(&ideal[8000..24_000])
                .map(|(a, b)| a - b)
                .collect();
            assert!(
                rms(&error) < 2e-3,
                "{rate_hz} Hz, {freq_hz} Hz: error rms {}",
                rms(&error)
            );
        }
    }
}

#[test]
fn content_above_8khz_is_filtered_not_aliased() {
    let _serial = crate::support::serial();
    for rate_hz in [22_050, 44_100, 48_000, 96_000] {
        let input = tone(10_000.0, 0.5, rate_hz, rate_hz as usize);
        let out = resample_all(rate_hz, &input, rate_hz as usize / 100);
        let level = rms(&out[2000..14_000]);
        let rejection_db = 20.0 * (0.5 / std::f32::consts::SQRT_2 / level).log10();
        println!("{rate_hz} Hz: a 10 kHz tone is rejected by {rejection_db:.1} dB");
        assert!(
            rejection_db > 55.0,
            "{rate_hz} Hz: 10 kHz leaks, only {rejection_db:.1} dB down"
        );
    }
}

#[test]
fn random_chunking_equals_one_push() {
    let _serial = crate::support::serial();
    let mut rng = Rng(12_345);
    for rate_hz in RATES_HZ {
        let input: Vec<f32> = (0..rate_hz as usize * 2)
            .map(|_| (rng.below(2001) as f32 - 1000.0) / 2000.0)
            .collect();
        let whole = resample_all(rate_hz, &input, input.len());
        let mut resampler = Resampler::new(rate_hz).unwrap();
        let mut pieces = Vec::new();
        let mut rest = &input[..];
        while !rest.is_empty() {
            let take = (1 + rng.below(rate_hz as u64 / 8) as usize).min(rest.len());
            resampler.push(&rest[..take], &mut pieces);
            rest = &rest[take..];
        }
        resampler.finish(&mut pieces);
        assert_eq!(whole.len(), pieces.len());
        let worst = whole
            .iter()
            .zip(&pieces)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(
            worst < 1e-5,
            "{rate_hz} Hz: chunked output differs by {worst}"
        );
    }
}

#[test]
fn impulse_lands_at_its_time() {
    let _serial = crate::support::serial();
    for rate_hz in RATES_HZ {
        for at_in in [0usize, 5, rate_hz as usize / 4 + 3, rate_hz as usize - 9] {
            let mut input = vec![0.0; rate_hz as usize];
            input[at_in] = 1.0;
            let out = resample_all(rate_hz, &input, rate_hz as usize / 100);
            let peak = out
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
                .unwrap()
                .0;
            let expected = at_in as f64 * 16_000.0 / f64::from(rate_hz);
            assert!(
                (peak as f64 - expected).abs() <= 1.0,
                "{rate_hz} Hz: impulse at input {at_in} (t = {expected} out) peaks at {peak}"
            );
        }
    }
}

#[test]
fn reset_leaves_nothing_of_the_previous_session() {
    let _serial = crate::support::serial();
    for rate_hz in RATES_HZ {
        let mut resampler = Resampler::new(rate_hz).unwrap();
        let mut out = Vec::new();
        // A loud session cut mid-block, then reset.
        resampler.push(
            &tone(1000.0, 0.9, rate_hz, rate_hz as usize / 3 + 11),
            &mut out,
        );
        resampler.reset();
        out.clear();
        let silence = vec![0.0; rate_hz as usize / 2];
        for part in silence.chunks(rate_hz as usize / 100) {
            resampler.push(part, &mut out);
        }
        resampler.finish(&mut out);
        assert_eq!(out.len(), expected_len(silence.len(), rate_hz));
        assert!(
            out.iter().all(|&s| s == 0.0),
            "{rate_hz} Hz: leakage after reset"
        );
        // finish() also starts a new session.
        resampler.push(&tone(1000.0, 0.9, rate_hz, 1234), &mut out);
        resampler.finish(&mut out);
        out.clear();
        resampler.push(&silence, &mut out);
        resampler.finish(&mut out);
        assert!(
            out.iter().all(|&s| s == 0.0),
            "{rate_hz} Hz: leakage after finish"
        );
    }
}

#[test]
fn sixteen_khz_passes_through() {
    let _serial = crate::support::serial();
    let input = tone(440.0, 0.5, 16_000, 3210);
    assert_eq!(resample_all(16_000, &input, 100), input);
    assert_eq!(Resampler::new(16_000).unwrap().block_frames(), 0);
}
