//! Offline `hark transcribe` beside `whisper-cli` builds.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{hark, load_average, offline, root, text_of_jsonl};
use hark::score;

/// One tool: `None` is hark, `Some(path)` a `whisper-cli`.
type Tool = Option<PathBuf>;

/// Runs `tool` on `wav` (same model file, greedy, 2 threads, timestamps);
/// peak RSS (MiB), wall time (s) and the transcript's text.
fn transcribe(tool: &Tool, model: &Path, wav: &Path) -> (f64, f64, String) {
    let mut command = match tool {
        None => {
            let mut c = hark();
            c.args(["transcribe", "-f", "jsonl", "-t", "2", "-m"]);
            c
        }
        Some(cli) => {
            let mut c = Command::new(cli);
            c.args(["-t", "2", "-bo", "1", "-bs", "1", "-np", "-m"]);
            c
        }
    };
    command.arg(model);
    if tool.is_some() {
        command.arg("-f");
    }
    command.arg(wav);
    let (rss, wall, out) = offline(command);
    let text = match tool {
        None => text_of_jsonl(&out),
        // "[00:00:00.000 --> 00:00:07.620]   text"
        Some(_) => out
            .lines()
            .filter_map(|l| l.split_once(']').map(|(_, t)| t.trim().to_owned()))
            .collect::<Vec<_>>()
            .join(" "),
    };
    (rss.peak_mib(), wall, text)
}

fn name(tool: &Tool) -> String {
    tool.as_ref()
        .map_or("hark transcribe".into(), |p| p.display().to_string())
}

/// `hark transcribe` and each `whisper-cli` in `$WHISPER_CLI` (paths joined
/// by `:`) on the whole monologue, same model file, greedy, 2 threads, with
/// timestamps (hark's output has them, and whisper.cpp decodes differently
/// without: `-nt` skips the timestamp tokens and slides a whole 30 s window
/// each time, 4 encoder passes here instead of 5). Runs are interleaved and
/// the fastest of each is compared, so a busy moment does not decide it.
/// Then each tool's WER on the two files whose words are known.
pub fn run(model: &Path, full: bool) {
    let whole = root().join("assets/real/monologue-16k.wav");
    let tools: Vec<Tool> = std::iter::once(None)
        .chain(
            std::env::var_os("WHISPER_CLI")
                .map(|v| std::env::split_paths(&v).map(Some).collect::<Vec<_>>())
                .unwrap_or_default(),
        )
        .collect();
    let runs = if full { 3 } else { 1 };
    let mut best = vec![(0.0, f64::MAX, String::new()); tools.len()];
    let la = load_average();
    for _ in 0..runs {
        for (tool, slot) in tools.iter().zip(best.iter_mut()) {
            let run = transcribe(tool, model, &whole);
            if run.1 < slot.1 {
                *slot = run;
            }
        }
    }
    let (hark_rss, hark_wall, hark_text) = &best[0];
    println!(
        "offline hark transcribe (112 s monologue): peak RSS {hark_rss:.1} MiB, wall {hark_wall:.2} s \
         (best of {runs}, load at start {la})"
    );
    if tools.len() == 1 {
        println!("offline whisper-cli: skipped ($WHISPER_CLI not set)");
    }
    for (tool, (rss, wall, text)) in tools.iter().zip(&best).skip(1) {
        println!(
            "offline {}: peak RSS {rss:.1} MiB, wall {wall:.2} s; hark / it: RSS {:.2}x, \
             wall {:.2}x; transcripts differ by {:.1}% of words",
            name(tool),
            hark_rss / rss,
            hark_wall / wall,
            score::wer(text, hark_text).rate() * 100.0
        );
    }
    for file in ["known", "known-unbroken"] {
        let Ok(words) = std::fs::read_to_string(root().join(format!("assets/real/{file}.txt")))
        else {
            continue;
        };
        let wav = root().join(format!("assets/real/{file}-16k.wav"));
        for tool in &tools {
            let (_, _, text) = transcribe(tool, model, &wav);
            println!(
                "offline {} on {file}: WER {:.1}% against the known text",
                name(tool),
                score::wer(&words, &text).rate() * 100.0
            );
        }
    }
}
