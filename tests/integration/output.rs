//! A user's files are never damaged by `-o`: files of another kind or
//! format are refused and left byte for byte as they were, an output that is
//! one of the inputs is refused before anything is opened, subtitle files of
//! other tools keep their last cue, emergency files never follow a planted
//! symlink and live in a private directory, and what hark creates is 0600.
//! Real files, and the real `hark` binary for the command-line cases.

use crate::support::asset;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;
use std::time::Duration;

use hark::event::{Event, Source};
use hark::transcript::{Format, WriteError, WriteMode, Writer, WriterConfig, FILE_MODE};

fn event(i: usize) -> Event {
    Event::final_text(Source::Mic, i as f64, i as f64 + 0.5, format!("word {i}"))
}

fn hark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hark"))
}

#[test]
fn files_of_another_kind_are_refused_and_untouched() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let notes = "my own notes\nsecond line\nno newline at the end";
    let wav = fs::read(asset("weather.wav")).unwrap();
    let srt = "1\n00:00:00,000 --> 00:00:01,000\nyou: a\n\n";
    let cases: Vec<(&str, Vec<u8>, Format)> = vec![
        ("notes.txt", notes.into(), Format::Jsonl),
        ("notes2.txt", notes.into(), Format::Txt),
        ("notes3.txt", "my own notes".into(), Format::Txt),
        ("talk.wav", wav, Format::Txt),
        ("cues.srt", srt.into(), Format::Jsonl),
        ("cues2.srt", srt.into(), Format::Vtt),
        ("cues3.srt", srt.into(), Format::Txt),
        ("other.vtt", "hello\n\n".into(), Format::Vtt),
    ];
    for (name, bytes, format) in cases {
        let path = dir.path().join(name);
        fs::write(&path, &bytes).unwrap();
        let err = Writer::spawn(WriterConfig::new(&path, format)).unwrap_err();
        assert!(
            matches!(err, WriteError::WrongFormat { .. }),
            "{name} as {format}: {err}"
        );
        assert!(err.to_string().contains(name), "{err}");
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "{name} as {format} changed"
        );
    }
}

#[test]
fn subtitles_from_another_tool_keep_their_last_cue() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.srt");
    let theirs = "1\n00:00:00,000 --> 00:00:01,000\nHello\nthere\n\n\
                  2\n00:00:01,000 --> 00:00:02,000\nWorld\n";
    fs::write(&path, theirs).unwrap();
    let writer = Writer::spawn(WriterConfig::new(&path, Format::Srt)).unwrap();
    assert_eq!(writer.torn_bytes_cut(), 0);
    writer.sender().send(event(3)).unwrap();
    writer.finish().unwrap();
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        format!("{theirs}\n3\n00:00:03,000 --> 00:00:03,500\nyou: word 3\n\n")
    );

    // JSONL written by another tool without its last newline.
    let path = dir.path().join("other.jsonl");
    fs::write(&path, "{\"x\":1}\n{\"x\":2}").unwrap();
    let writer = Writer::spawn(WriterConfig::new(&path, Format::Jsonl)).unwrap();
    assert_eq!(writer.torn_bytes_cut(), 0);
    writer.finish().unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "{\"x\":1}\n{\"x\":2}\n");
}

#[test]
fn files_hark_creates_are_private() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    for format in Format::ALL {
        let path = dir.path().join(format!("t.{format}"));
        let writer = Writer::spawn(WriterConfig::new(&path, format)).unwrap();
        writer.sender().send(event(0)).unwrap();
        writer.finish().unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, FILE_MODE, "{format}: mode {mode:o}");
    }
    let temp = hark::transcript::private_temp_dir().unwrap();
    let meta = fs::symlink_metadata(&temp).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    // SAFETY: geteuid has no preconditions.
    assert_eq!(meta.uid(), unsafe { libc::geteuid() });
}

/// The primary's directory is removed mid-session; the configured emergency
/// file is a symlink planted at a victim. The victim is not touched: the
/// transcript continues in hark's private temp directory.
#[test]
fn planted_symlink_is_not_followed_by_the_emergency_file() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let doomed = dir.path().join("doomed");
    fs::create_dir(&doomed).unwrap();
    let victim = dir.path().join("victim.jsonl");
    let victim_bytes = b"{\"precious\":true}\n{\"torn\":";
    fs::write(&victim, victim_bytes).unwrap();
    let planted = dir.path().join("planted.jsonl");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();

    let mut config = WriterConfig::new(doomed.join("t.jsonl"), Format::Jsonl);
    config.emergency_path = Some(planted);
    config.flush_interval = Duration::from_millis(20);
    let writer = Writer::spawn(config).unwrap();
    let tx = writer.sender();
    tx.send(event(0)).unwrap();
    while writer.metrics().events_written < 1 {
        std::thread::sleep(Duration::from_millis(5));
    }
    fs::remove_dir_all(&doomed).unwrap();
    for i in 1..5 {
        tx.send(event(i)).unwrap();
    }
    let report = writer.finish().unwrap();
    assert_eq!(report.metrics.mode, WriteMode::Emergency);
    let used = report.metrics.emergency_path.clone().unwrap();
    let private = hark::transcript::private_temp_dir().unwrap();
    assert_eq!(used.parent(), Some(private.as_path()), "{}", used.display());
    assert_eq!(fs::read(&victim).unwrap(), victim_bytes, "victim changed");
    let text = fs::read_to_string(&used).unwrap();
    let events: Vec<Event> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events, (0..5).map(event).collect::<Vec<_>>());
    assert_eq!(
        fs::metadata(&used).unwrap().permissions().mode() & 0o777,
        FILE_MODE
    );
    fs::remove_file(&used).unwrap();
}

#[test]
fn output_that_is_an_input_is_refused_before_opening() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let talk = dir.path().join("talk.wav");
    fs::copy(asset("weather.wav"), &talk).unwrap();
    let before = fs::read(&talk).unwrap();
    // The same file by another name too (a hard link).
    let alias = dir.path().join("alias.txt");
    fs::hard_link(&talk, &alias).unwrap();
    for out in [&talk, &alias] {
        let run = hark()
            .arg("transcribe")
            .arg(&talk)
            .arg("-o")
            .arg(out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(5), "{stderr}");
        assert!(stderr.contains("also an input"), "{stderr}");
        assert!(stderr.contains(&*out.to_string_lossy()), "{stderr}");
        assert_eq!(fs::read(&talk).unwrap(), before, "input changed");
    }
}

#[test]
fn notes_given_as_output_are_refused_with_exit_5() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.txt");
    let mine = "my own notes\n...and more\n";
    fs::write(&notes, mine).unwrap();
    let run = hark()
        .arg("transcribe")
        .arg(asset("weather.wav"))
        .args(["-f", "jsonl", "-o"])
        .arg(&notes)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert!(stderr.contains("left untouched"), "{stderr}");
    assert_eq!(fs::read_to_string(&notes).unwrap(), mine);
}

/// Every truncation of a file hark wrote (a crash can stop a write at any
/// byte) is recognised as its own format, cut back exactly to the last
/// whole record, and never called foreign; a line of the user's own among
/// the records makes the file foreign instead of being cut.
#[test]
fn every_truncation_of_a_hark_file_cuts_to_the_last_whole_record() {
    let _serial = crate::support::serial();
    use hark::event::EventKind;
    use hark::transcript::{scan, Formatter};
    let mut events: Vec<Event> = (0..6).map(event).collect();
    events[2].kind = EventKind::Gap;
    events[4].text = "héllo --> <b> & \"quotes\"".into();
    for format in Format::ALL {
        let mut f = Formatter::new(format);
        let mut text = String::new();
        f.header(&mut text);
        let mut ends = vec![text.len()];
        for e in &events {
            f.event(e, &mut text);
            ends.push(text.len());
        }
        let bytes = text.as_bytes();
        for cut in 0..=bytes.len() {
            let s = scan(format, &bytes[..cut]);
            assert_eq!(s.foreign, None, "{format} cut at {cut}");
            let whole = ends
                .iter()
                .copied()
                .filter(|&e| e <= cut)
                .max()
                .unwrap_or(0);
            let kept = s.whole_len;
            // Either cut to the last whole record, or (a subtitle cue that
            // only lacks its final newline) kept whole and completed.
            let completed = !s.complete_with.is_empty() && kept == cut;
            assert!(
                kept == whole || completed || (cut < ends[0] && kept == 0),
                "{format} cut at {cut}: kept {kept}, last whole record ends at {whole}"
            );
        }
        let mut bad = bytes[..ends[1]].to_vec();
        bad.extend_from_slice(b"my own notes");
        bad.extend_from_slice(format.record_terminator().as_bytes());
        bad.extend_from_slice(&bytes[ends[1]..]);
        assert!(
            scan(format, &bad).foreign.is_some(),
            "{format}: {:?}",
            String::from_utf8_lossy(&bad)
        );
    }
}

/// Existing transcripts larger than the two 1 MiB windows the torn-tail
/// scan reads (its head and its tail), in every format, whole and torn:
/// hark appends after the last whole record, cuts only the torn record,
/// leaves every byte before it as it was, and numbers SRT cues on from the
/// last one (found in the tail window).
#[test]
fn transcripts_over_two_mib_are_appended_to_after_their_last_whole_record() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    // Texts of varied length, so records straddle the windows' edges at
    // no particular place.
    let events: Vec<Event> = (0..12_000)
        .map(|i| {
            let text = format!("line {i} {}", "abc ".repeat(40 + i % 23));
            Event::final_text(Source::Mic, i as f64, i as f64 + 0.5, text)
        })
        .collect();
    let (old, new) = events.split_at(events.len() - 1);
    for format in Format::ALL {
        let mut formatter = hark::transcript::Formatter::new(format);
        let mut whole = String::new();
        formatter.header(&mut whole);
        for e in old {
            formatter.event(e, &mut whole);
        }
        let mut expected = whole.clone();
        formatter.event(&new[0], &mut expected);
        assert!(whole.len() > 2 << 20, "{format}: {} bytes", whole.len());
        let next_record = &expected[whole.len()..];
        let torn = format!("{whole}{}", &next_record[..next_record.len() / 2]);
        for (kind, existing) in [("whole", &whole), ("torn", &torn)] {
            let path = dir.path().join(format!("{kind}.{format}"));
            fs::write(&path, existing).unwrap();
            let writer = Writer::spawn(WriterConfig::new(&path, format))
                .unwrap_or_else(|e| panic!("{kind} {format}: {e}"));
            assert_eq!(
                writer.torn_bytes_cut(),
                existing.len() - whole.len(),
                "{kind} {format}"
            );
            writer.sender().send(new[0].clone()).unwrap();
            writer.finish().unwrap();
            let after = fs::read(&path).unwrap();
            assert!(
                after[..whole.len()] == *whole.as_bytes(),
                "{kind} {format}: bytes before the torn tail changed"
            );
            assert!(
                after == expected.as_bytes(),
                "{kind} {format}: appended {:?}, expected {:?}",
                String::from_utf8_lossy(&after[whole.len()..]),
                next_record
            );
        }
    }
}

/// `hark transcribe` whose `-o` file stops taking writes (a file-size limit
/// just past its existing records: EFBIG) goes on in an emergency file and
/// names it once on stderr, not once when it switches and again at the end.
#[test]
fn transcribe_names_its_emergency_file_once() {
    use std::os::unix::process::CommandExt;
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.jsonl");
    // Records enough that the limit leaves an emergency file room for the
    // clip's whole transcript.
    let existing =
        "{\"source\":\"file\",\"kind\":\"final\",\"start\":0,\"end\":1,\"text\":\"x\"}\n"
            .repeat(100);
    fs::write(&out, &existing).unwrap();
    let limit = existing.len() as u64 + 8;
    let mut command = hark();
    command
        .arg("transcribe")
        .arg(asset("weather.wav"))
        .arg("-o")
        .arg(&out)
        .env_remove("HARK_LOG");
    // SAFETY: signal and setrlimit are async-signal-safe; nothing else runs
    // in the child between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let run = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        existing,
        "primary changed"
    );
    let emergency: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("emergency"))
        .collect();
    assert_eq!(emergency.len(), 1, "{emergency:?}\n{stderr}");
    let text = fs::read_to_string(&emergency[0]).unwrap().to_lowercase();
    assert!(text.contains("sunny"), "{text}");
    let named = stderr.matches(&*emergency[0].to_string_lossy()).count();
    assert_eq!(named, 1, "named {named} times:\n{stderr}");
}
