//! `--soak MINUTES`: the real `hark live` on one source for as long as
//! asked, RSS from /proc, its slope after warm-up.

use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use super::{live, load_average, root, MIB};
use hark::soundserver::{self, SoundServer};

/// One source for `minutes`, the monologue played in a loop; prints RSS
/// every 5 minutes and the slope after the first 5 (warm-up).
pub fn run(server: &SoundServer, minutes: f64) {
    const WARM_UP_S: f64 = 300.0;
    let wav = root().join("assets/real/monologue-16k.wav");
    let seconds = minutes * 60.0;
    let la = load_average();
    let player: Mutex<Option<Child>> = Mutex::new(None);
    let done = AtomicBool::new(false);
    let run = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut plays = 0u32;
            while !done.load(Ordering::SeqCst) {
                let child = server
                    .play(soundserver::SPEAKER_SINK, &wav)
                    .expect("paplay");
                *player.lock().unwrap() = Some(child);
                loop {
                    let finished = player.lock().unwrap().as_mut().map(|c| c.try_wait());
                    if !matches!(finished, Some(Ok(None))) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                plays += 1;
            }
            println!("soak: monologue played {plays} times");
        });
        let run = live(
            server,
            &[
                "--source",
                "loopback",
                "--loopback-device",
                soundserver::SPEAKER_MONITOR,
            ],
            &[],
            seconds,
        );
        done.store(true, Ordering::SeqCst);
        if let Some(child) = player.lock().unwrap().as_mut() {
            let _ = child.kill();
        }
        run
    });
    let samples = &run.rss.samples;
    for minute in (0..=minutes as u64).step_by(5) {
        let at = minute as f64 * 60.0;
        if let Some(s) = samples.iter().find(|s| s.0 >= at) {
            println!("soak: {minute:>3} min RSS {:.1} MiB", s.1 as f64 / MIB);
        }
    }
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.0 >= WARM_UP_S)
        .map(|s| (s.0, s.1 as f64 / 1e6))
        .collect();
    println!(
        "soak {minutes:.0} min, one source: peak RSS {:.1} MiB, steady {:.1} MiB, \
         slope after 5 min {:+.2} MB/h over {} samples, {} finals (load at start {la}, at end {})",
        run.rss.peak_mib(),
        run.rss.steady_mib(),
        hark::soak::checks::slope(&points) * 3600.0,
        points.len(),
        run.finals.len(),
        load_average()
    );
}
