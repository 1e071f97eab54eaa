//! A short soak through the real `hark soak` command: private sound server,
//! programme played as loopback, one stress thread, one device removal, and
//! a child hark killed with SIGKILL and restarted on one transcript.
//! Asserts the report it writes.

use crate::support::root;
use std::process::Command;

use serde_json::Value;

#[test]
fn short_soak_with_stress_and_a_device_removal() {
    let _serial = crate::support::serial();
    let out = tempfile::tempdir().expect("temp dir");
    let report_dir = out.path().join("report");
    let status = Command::new(env!("CARGO_BIN_EXE_hark"))
        .current_dir(root())
        .args([
            "soak",
            "--duration",
            "60",
            "--stress",
            "1",
            "--faults",
            // One whisper thread: with a stress thread on 2 cores, two
            // spinning whisper threads slow each other several fold.
            "--threads",
            "1",
            "--out",
        ])
        .arg(&report_dir)
        // The shared 2-core build machine is loaded by other jobs besides
        // the stress thread; latency is reported, and bounded loosely here
        // (p95 measured 7.5 s and 14.0 s in two runs at 1 thread). WER keeps
        // its default bound (0.25; measured 0.17 and 0.19).
        .args(["--max-latency-p95", "15"])
        // This is the debug build (unoptimised code, larger stacks and
        // buffers): one run measured 116.2 MB against the design's 100 MB,
        // which benches/memory.rs measures on the release build.
        .args(["--max-rss-mb", "130"])
        .status()
        .expect("run hark soak");
    let text = std::fs::read_to_string(report_dir.join("report.json")).expect("report.json");
    let report: Value = serde_json::from_str(&text).expect("report.json parses");
    let summary = std::fs::read_to_string(report_dir.join("summary.txt")).expect("summary.txt");
    eprintln!("{summary}");

    let source = &report["sources"][0];
    assert_eq!(source["source"], "loopback");
    assert_eq!(source["samples_lost"], 0, "no sample lost");
    assert!(
        source["unaccounted_ms"].as_f64().unwrap().abs() <= 500.0,
        "wall time covered by audio plus gap fill"
    );
    let gaps = source["gaps"].as_array().unwrap();
    assert!(!gaps.is_empty(), "the removal left a gap");
    assert_eq!(
        source["gap_events_in_transcript"].as_u64().unwrap() as usize,
        gaps.len()
    );
    assert!(source["recoveries"].as_u64().unwrap() >= 1);
    // The relay's guarantee, in the file: no text of a source comes after
    // a gap of that source that starts later than the text.
    let lines = std::fs::read_to_string(report_dir.join("transcript.jsonl")).unwrap();
    let events: Vec<hark::event::Event> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("one event per line"))
        .collect();
    let mut gaps_seen: Vec<&hark::event::Event> = Vec::new();
    for event in &events {
        if event.kind == hark::event::EventKind::Gap {
            gaps_seen.push(event);
            continue;
        }
        for gap in gaps_seen.iter().filter(|g| g.source == event.source) {
            assert!(
                event.start >= gap.start,
                "text at {} s written after the gap at {} s: {:?}",
                event.start,
                gap.start,
                event.text
            );
        }
    }
    assert!(!gaps_seen.is_empty(), "the gap is in the transcript");
    let fault = &report["faults"][0];
    let back_after = fault["home_at_s"].as_f64().expect("back on the device")
        - fault["restored_at_s"].as_f64().unwrap();
    assert!(
        back_after <= 10.0,
        "back on spk.monitor {back_after} s after it returned"
    );
    let transcript = &report["transcript"];
    assert_eq!(transcript["torn_bytes"], 0);
    assert_eq!(transcript["unparsable_lines"], 0);
    assert_eq!(transcript["finals_in_file"], transcript["finals_received"]);
    assert!(source["wer"]["phrases_counted"].as_u64().unwrap() >= 5);
    assert!(source["wer"]["wer"].as_f64().unwrap() <= 0.25, "WER");
    // A child hark killed with SIGKILL twice on one transcript, restarted
    // in between: every whole record at each kill is kept, byte for byte.
    let crash = &report["crash"];
    assert_eq!(crash["kills"], 2);
    assert_eq!(crash["flushed_prefix_kept"], true);
    assert_eq!(crash["appended_after_restart"], true);
    assert_eq!(crash["unparsable_lines"], 0);
    assert!(crash["final_records"].as_u64().unwrap() >= 2);
    assert!(
        status.success(),
        "hark soak exit status {status}: {summary}"
    );
}
