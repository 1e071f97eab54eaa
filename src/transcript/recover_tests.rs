//! Unit tests of the torn-tail scan (`recover.rs`).

use super::*;

#[test]
fn torn_json_line_is_cut() {
    let bytes = b"{\"a\":1}\n{\"a\":2}\n{\"a\":";
    let s = scan(Format::Jsonl, bytes);
    assert_eq!(s.whole_len, 16);
    assert_eq!(s.torn_len(bytes.len()), 5);
    assert_eq!(s.foreign, None);
}

#[test]
fn zeros_after_a_power_loss_are_cut() {
    let bytes = b"{\"a\":1}\n\0\0\0\n";
    assert_eq!(scan(Format::Jsonl, bytes).whole_len, 8);
}

#[test]
fn half_srt_cue_is_cut_and_number_read() {
    let bytes = b"1\n00:00:00,000 --> 00:00:01,000\nyou: a\n\n\
                  7\n00:00:01,000 --> 00:00:02,000\nyou: b\n\n\
                  8\n00:00:02,000 --> 00:00:0";
    let s = scan(Format::Srt, bytes);
    assert_eq!(s.last_cue, 7);
    assert_eq!(&bytes[s.whole_len - 3..s.whole_len], b"b\n\n");
    assert_eq!(s.foreign, None);
}

#[test]
fn srt_ending_in_one_newline_keeps_its_last_cue() {
    let bytes = b"1\n00:00:00,000 --> 00:00:01,000\nHello\n\n\
                  2\n00:00:01,000 --> 00:00:02,000\nWorld\n";
    let s = scan(Format::Srt, bytes);
    assert_eq!((s.whole_len, s.complete_with), (bytes.len(), "\n"));
    assert_eq!(s.last_cue, 2);
}

#[test]
fn other_kinds_of_file_are_foreign() {
    let notes = b"my own notes\nsecond line\n";
    for format in Format::ALL {
        assert!(scan(format, notes).foreign.is_some(), "{format}");
    }
    assert!(scan(Format::Jsonl, b"my own notes").foreign.is_some());
    assert!(scan(Format::Txt, b"RIFF\x24\0\0\0WAVEfmt ")
        .foreign
        .is_some());
}

/// Found by `fuzz/recover`: a cue ending in zeros, then a torn cue. The
/// first repair cut only the torn cue, and the next scan then cut the
/// zeroed one: a repaired file must scan as whole.
#[test]
fn repair_leaves_nothing_for_the_next_scan_to_cut() {
    let bytes = b"1\n00:00:00,000 --> 00:00:01,500\nyou: hel\0\0\0\0\n\n\
                  2\n00:00:01,500 --> 00:00:0";
    let first = scan(Format::Srt, bytes);
    assert_eq!(first.foreign, None);
    let repaired = &bytes[..first.whole_len];
    let again = scan(Format::Srt, repaired);
    assert_eq!((again.whole_len, again.foreign), (repaired.len(), None));
    assert_eq!(
        first.whole_len, 0,
        "the zeroed cue is cut with the torn one"
    );
}

/// Found by `fuzz/recover`: a headerless `NOTE` block was taken for a
/// whole record and completed, and the next scan refused the file.
#[test]
fn vtt_without_header_is_foreign_from_the_first_scan() {
    for bytes in [
        &b"NOTE \n"[..],
        b"00:00:00.000 --> 00:00:01.000\nhi\n",
        b"\n",
    ] {
        assert!(scan(Format::Vtt, bytes).foreign.is_some(), "{bytes:?}");
    }
    let s = scan(Format::Vtt, b"WEBVTT Kind: captions\n");
    assert_eq!((s.whole_len, s.complete_with, s.foreign), (22, "\n", None));
    let s = scan(Format::Vtt, b"WEBVTT Kind: captions\n\n");
    assert_eq!((s.whole_len, s.has_vtt_header), (23, true));
}

#[test]
fn vtt_header_seen_and_torn_header_cut() {
    assert!(scan(Format::Vtt, b"WEBVTT\n\n").has_vtt_header);
    let s = scan(Format::Vtt, b"WEBV");
    assert_eq!((s.whole_len, s.has_vtt_header), (0, false));
}
