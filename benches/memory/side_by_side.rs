//! Offline `hark transcribe` beside `whisper-cli` builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{hark, load_average, offline, root, text_of_jsonl};
use hark::score;

/// `hark transcribe` and each `whisper-cli` in `$WHISPER_CLI` (paths joined
/// by `:`) on the whole monologue, same model file, greedy, 2 threads, with
/// timestamps (hark's output has them, and whisper.cpp decodes differently
/// without: `-nt` skips the timestamp tokens and slides a whole 30 s window
/// each time, 4 encoder passes here instead of 5). Runs are interleaved and
/// the fastest of each is compared, so a busy moment does not decide it.
pub fn run(model: &Path, full: bool) {
    let whole = root().join("assets/real/monologue-16k.wav");
    let clis: Vec<PathBuf> = std::env::var_os("WHISPER_CLI")
        .map(|v| std::env::split_paths(&v).collect())
        .unwrap_or_default();
    let runs = if full { 3 } else { 1 };
    let mut best: Vec<(f64, f64, String)> = vec![(f64::MAX, 0.0, String::new()); 1 + clis.len()];
    let la = load_average();
    for _ in 0..runs {
        for (i, slot) in best.iter_mut().enumerate() {
            let mut command;
            if i == 0 {
                command = hark();
                command
                    .args(["transcribe", "-f", "jsonl", "-t", "2", "-m"])
                    .arg(model)
                    .arg(&whole);
            } else {
                command = Command::new(&clis[i - 1]);
                command
                    .args(["-t", "2", "-bo", "1", "-bs", "1", "-np", "-m"])
                    .arg(model)
                    .arg("-f")
                    .arg(&whole);
            }
            let (rss, wall, out) = offline(command);
            let text = if i == 0 {
                text_of_jsonl(&out)
            } else {
                // "[00:00:00.000 --> 00:00:07.620]   text"
                out.lines()
                    .filter_map(|l| l.split_once(']').map(|(_, t)| t.trim().to_owned()))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            if wall < slot.0 {
                *slot = (wall, rss.peak_mib(), text);
            }
        }
    }
    let (hark_wall, hark_rss, hark_text) = &best[0];
    println!(
        "offline hark transcribe (112 s monologue): peak RSS {hark_rss:.1} MiB, wall {hark_wall:.2} s \
         (best of {runs}, load at start {la})"
    );
    if clis.is_empty() {
        println!("offline whisper-cli: skipped ($WHISPER_CLI not set)");
    }
    for (cli, (wall, rss, text)) in clis.iter().zip(&best[1..]) {
        println!(
            "offline {}: peak RSS {rss:.1} MiB, wall {wall:.2} s; hark / it: RSS {:.2}x, \
             wall {:.2}x; transcripts differ by {:.1}% of words",
            cli.display(),
            hark_rss / rss,
            hark_wall / wall,
            score::wer(text, hark_text).rate() * 100.0
        );
    }
}
