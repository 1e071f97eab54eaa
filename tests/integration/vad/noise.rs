//! Silence, noise and real speech: nothing found in noise, speech in noise
//! found whole, the cost of a chunk, pauses of unbroken real speech.

use super::*;

#[test]
fn two_minutes_of_silence_and_noise_give_no_segment() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let seconds = 120;
    let cases = [
        ("digital silence", silence(seconds as f32)),
        (
            "white noise -40 dBFS",
            noise(dir.path(), "whitenoise", seconds, -40.0),
        ),
        (
            "white noise -30 dBFS",
            noise(dir.path(), "whitenoise", seconds, -30.0),
        ),
        (
            "pink noise -30 dBFS",
            noise(dir.path(), "pinknoise", seconds, -30.0),
        ),
        (
            "brown noise -30 dBFS",
            noise(dir.path(), "brownnoise", seconds, -30.0),
        ),
    ];
    for (name, noise) in cases {
        // Starts from digital silence and goes quiet once more in the middle,
        // like a muted microphone being unmuted.
        let half = noise.len() / 2;
        let input = [
            silence(1.0),
            noise[..half].to_vec(),
            silence(1.0),
            noise[half..].to_vec(),
        ]
        .concat();
        let mut segmenter = Segmenter::new(VadConfig::default());
        let mut events = Vec::new();
        let cpu_before = thread_cpu();
        for part in input.chunks(160) {
            segmenter.push(part, &mut events);
        }
        segmenter.finish(&mut events);
        let cpu = thread_cpu() - cpu_before;
        println!(
            "{name}: {} events, {:.5} s CPU per s of audio",
            events.len(),
            cpu.as_secs_f64() / (input.len() as f64 / RATE_HZ as f64)
        );
        assert!(
            events.is_empty(),
            "{name} gave {} events: {:?}",
            events.len(),
            events.first()
        );
    }
}

#[test]
fn speech_in_noise_is_found_whole() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let phrase = speak(
        dir.path(),
        "noisy",
        "Please call Stella and ask her to bring these things.",
    );
    let (first, last) = extent(&phrase);
    let speech_rms = rms(&phrase[first..last]);
    for kind in ["whitenoise", "pinknoise", "brownnoise"] {
        for snr_db in [20.0, 10.0, 5.0] {
            let noise_dbfs = 20.0 * (speech_rms / 10f32.powf(snr_db / 20.0)).log10();
            let mut input = noise(dir.path(), kind, 7, noise_dbfs);
            let at = 2 * RATE_HZ;
            for (i, s) in phrase.iter().enumerate() {
                input[at + i] += s;
            }
            let found = utterances(&run(VadConfig::default(), &input, 160));
            let spans: Vec<_> = found.iter().map(|u| (u.start, u.end)).collect();
            assert_eq!(found.len(), 1, "{kind} at {snr_db} dB SNR: {spans:?}");
            assert!(
                found[0].start <= (at + first) as u64,
                "{kind} {snr_db} dB: first word cut"
            );
            assert!(
                found[0].end > (at + last) as u64,
                "{kind} {snr_db} dB: last word cut"
            );
        }
    }
}

#[test]
fn cost_of_speech() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let phrase = speak(
        dir.path(),
        "cost",
        "The rain in Spain stays mainly in the plain.",
    );
    let input: Vec<f32> = phrase.repeat(10);
    let mut segmenter = Segmenter::new(VadConfig::default());
    let mut events = Vec::new();
    let cpu_before = thread_cpu();
    for part in input.chunks(160) {
        segmenter.push(part, &mut events);
    }
    segmenter.finish(&mut events);
    let cpu = thread_cpu() - cpu_before;
    let seconds = input.len() as f64 / RATE_HZ as f64;
    println!(
        "speech: {:.5} s CPU per s of audio",
        cpu.as_secs_f64() / seconds
    );
    assert!(!utterances(&events).is_empty());
}

/// Phrase boundaries of the real unbroken reading (assets/real/, made by
/// scripts/real-speech.sh): (end of one phrase, start of the next).
fn real_boundaries() -> (Vec<f32>, Vec<(f64, f64)>) {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/real");
    let audio = dsp::wav::read_16k_mono(real.join("unbroken-16k.wav"))
        .expect("assets/real/ (scripts/real-speech.sh, run by scripts/setup.sh)")
        .samples;
    let phrases: Vec<(f64, f64)> = std::fs::read_to_string(real.join("unbroken.tsv"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.split('\t');
            let mut num = || f.next().unwrap().parse::<f64>().unwrap();
            (num(), num())
        })
        .collect();
    let boundaries = phrases.windows(2).map(|w| (w[0].1, w[1].0)).collect();
    (audio, boundaries)
}

#[test]
fn pauses_of_unbroken_real_speech_are_found_between_phrases() {
    let _serial = crate::support::serial();
    // 0.1-0.2 s between phrases: shorter than the hangover, so the VAD
    // keeps one utterance, but each gap should be reported as a pause (or
    // end the utterance), or the streaming policy has nowhere to cut.
    let (audio, boundaries) = real_boundaries();
    let config = VadConfig {
        hangover: Duration::from_millis(300),
        ..VadConfig::default()
    };
    let events = run(config, &audio, 480);
    let cuts: Vec<f64> = events
        .iter()
        .filter_map(|e| match e {
            VadEvent::Pause { cut, .. } | VadEvent::SpeechEnd { end: cut, .. } => {
                Some(*cut as f64 / RATE_HZ as f64)
            }
            _ => None,
        })
        .collect();
    let found = boundaries
        .iter()
        .filter(|(end, next)| {
            let hit = cuts.iter().any(|c| *c >= end - 0.25 && *c <= next + 0.2);
            if !hit {
                eprintln!("no cut between {end} and {next}");
            }
            hit
        })
        .count();
    eprintln!("{found} of {} boundaries have a cut", boundaries.len());
    assert!(
        found * 10 >= boundaries.len() * 8,
        "{found} of {} boundaries",
        boundaries.len()
    );
    // A pause is never reported inside the first 100 ms after the voice.
    for e in &events {
        if let VadEvent::Pause {
            voiced_end, cut, ..
        } = e
        {
            assert!(cut - voiced_end >= 100 * RATE_HZ as u64 / 1000);
        }
    }
}
