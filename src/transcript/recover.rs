//! Reading an existing transcript before appending to it: where its last
//! whole record ends (a crash mid-write leaves a torn tail), the last SRT cue
//! number, and whether a VTT file already has its header.

use super::format::{Format, VTT_HEADER};

/// What an existing file's bytes say about appending to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Length of the prefix made of whole records; anything after it is torn.
    pub whole_len: usize,
    /// The highest SRT cue number in the whole records (0 if none).
    pub last_cue: u64,
    /// The file is a VTT file whose header is intact.
    pub has_vtt_header: bool,
}

impl Scan {
    /// Bytes past the last whole record (a crash's torn tail).
    pub fn torn_len(&self, total: usize) -> usize {
        total - self.whole_len
    }
}

/// Scans `bytes` (an existing file's content) as `format`.
///
/// A record is whole when it ends with the format's terminator (a newline
/// for txt/jsonl, a blank line for srt/vtt); the writer never writes a record
/// without it, so bytes after the last terminator are a torn tail. For JSONL
/// the last line must also parse as JSON, else it is treated as torn too.
pub fn scan(format: Format, bytes: &[u8]) -> Scan {
    let terminator = format.record_terminator().as_bytes();
    let mut whole_len = last_end_of(bytes, terminator);
    if format == Format::Jsonl {
        while whole_len > 0 {
            let body = &bytes[..whole_len - 1];
            let line_start = body.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let line = &body[line_start..];
            if line.is_empty() || serde_json::from_slice::<serde_json::Value>(line).is_ok() {
                break;
            }
            whole_len = line_start;
        }
    }
    let whole = &bytes[..whole_len];
    let last_cue = if format == Format::Srt {
        last_srt_cue(whole)
    } else {
        0
    };
    Scan {
        whole_len,
        last_cue,
        has_vtt_header: format == Format::Vtt && whole.starts_with(VTT_HEADER.as_bytes()),
    }
}

/// The end of the last occurrence of `terminator` in `bytes` (0 if none).
fn last_end_of(bytes: &[u8], terminator: &[u8]) -> usize {
    bytes
        .windows(terminator.len())
        .rposition(|w| w == terminator)
        .map_or(0, |i| i + terminator.len())
}

/// The highest number found as the first line of a blank-line-separated block.
fn last_srt_cue(whole: &[u8]) -> u64 {
    String::from_utf8_lossy(whole)
        .split("\n\n")
        .filter_map(|block| {
            let first = block.trim_start_matches('\n').lines().next()?;
            first.trim().parse::<u64>().ok()
        })
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_json_line_is_cut() {
        let bytes = b"{\"a\":1}\n{\"a\":2}\n{\"a\":";
        let s = scan(Format::Jsonl, bytes);
        assert_eq!(s.whole_len, 16);
        assert_eq!(s.torn_len(bytes.len()), 5);
    }

    #[test]
    fn jsonl_line_that_does_not_parse_is_cut() {
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
    }

    #[test]
    fn vtt_header_seen_and_torn_header_cut() {
        assert!(scan(Format::Vtt, b"WEBVTT\n\n").has_vtt_header);
        let s = scan(Format::Vtt, b"WEBV");
        assert_eq!((s.whole_len, s.has_vtt_header), (0, false));
    }
}
