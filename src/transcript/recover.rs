//! Reading an existing transcript before appending to it: whether it is made
//! of this format's records at all (a file of another kind is never touched),
//! where its last whole record ends (a crash mid-write leaves a torn tail),
//! the last SRT cue number, and whether a VTT file already has its header.

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
    /// The last record is whole but its terminator is short (a subtitle file
    /// from another tool ending in one newline, a JSONL file without its last
    /// newline): these bytes complete it, and nothing is cut.
    pub complete_with: &'static str,
    /// Why the bytes are not this format's records, if they are not: such a
    /// file must be neither cut nor appended to.
    pub foreign: Option<String>,
}

impl Scan {
    /// Bytes past the last whole record (a crash's torn tail).
    pub fn torn_len(&self, total: usize) -> usize {
        total - self.whole_len
    }
}

/// Scans `bytes` (an existing file's whole content) as `format`.
///
/// A record is whole when it ends with the format's terminator (a newline
/// for txt/jsonl, a blank line for srt/vtt); the writer never writes a record
/// without it, so bytes after the last terminator are a torn tail, but only
/// if they look like the start of a record of this format (or are the zeros
/// a power loss leaves). Every whole record must be one of this format
/// (txt: `[time --> time] ...` or a `# name` line; jsonl: a JSON object;
/// srt: number, timing, text; vtt: the `WEBVTT` header, then cues or
/// blocks), else the file is [`Scan::foreign`] and nothing may be cut.
pub fn scan(format: Format, bytes: &[u8]) -> Scan {
    scan_from(format, bytes, true)
}

/// Like [`scan`], for bytes that may start in the middle of the file
/// (`at_start` false): everything up to the first terminator is skipped and
/// the VTT header is not looked for.
pub fn scan_from(format: Format, bytes: &[u8], at_start: bool) -> Scan {
    // Cutting a torn tail can leave zeros at the new end (a record whose end
    // a power loss zeroed, then a torn one after it): those are cut too, so
    // that the next scan of the repaired file finds nothing more to cut.
    // Each pass cuts at least one record; crafted files of many such records
    // cost one pass each.
    let mut len = bytes.len();
    loop {
        let scan = scan_once(format, &bytes[..len], at_start);
        let whole = scan.whole_len;
        if scan.foreign.is_some() || whole == len || zero_tail_start(&bytes[..whole]) == whole {
            return scan;
        }
        len = whole;
    }
}

/// One pass of [`scan_from`].
fn scan_once(format: Format, bytes: &[u8], at_start: bool) -> Scan {
    let terminator = format.record_terminator().as_bytes();
    let zeros = zero_tail_start(bytes);
    let body = &bytes[..zeros];
    let mut whole_len = last_end_of(body, terminator);
    let skip = if at_start {
        0
    } else {
        first_end_of(body, terminator).min(whole_len)
    };
    let mut scan = Scan {
        whole_len,
        last_cue: 0,
        has_vtt_header: false,
        complete_with: "",
        foreign: None,
    };
    let records = &bytes[skip..whole_len];
    let tail = &body[whole_len..];
    scan.foreign = match format {
        Format::Txt | Format::Jsonl => check_lines(format, records, skip),
        Format::Srt | Format::Vtt => check_blocks(format, records, at_start),
    };
    if scan.foreign.is_none() && !tail.is_empty() {
        let header_start = format == Format::Vtt && at_start && whole_len == 0;
        match tail_kind(format, tail, header_start) {
            Tail::Whole(complete_with) => {
                whole_len = zeros;
                scan.complete_with = complete_with;
            }
            Tail::Torn => {}
            Tail::Foreign => {
                scan.foreign = Some(format!(
                    "its last {} bytes are not the start of a {format} record",
                    tail.len()
                ));
            }
        }
    }
    if format == Format::Jsonl && scan.foreign.is_none() && zeros < bytes.len() {
        // A whole line of zeros is torn too: cut back to the last good line.
        whole_len = whole_len.min(zeros);
    }
    scan.whole_len = whole_len;
    let whole = &bytes[..whole_len];
    if format == Format::Srt {
        scan.last_cue = last_srt_cue(&whole[skip.min(whole.len())..]);
    }
    scan.has_vtt_header = format == Format::Vtt && at_start && starts_with_vtt_header(whole);
    scan
}

/// Where a trailing run of zero bytes (and newlines among them) starts: a
/// file system can leave a crashed file's last blocks zero-filled.
fn zero_tail_start(bytes: &[u8]) -> usize {
    let start = bytes
        .iter()
        .rposition(|&b| b != 0 && b != b'\n')
        .map_or(0, |i| i + 1);
    match bytes[start..].iter().position(|&b| b == 0) {
        Some(first_zero) => start + first_zero,
        None => bytes.len(),
    }
}

/// The end of the last occurrence of `terminator` in `bytes` (0 if none).
fn last_end_of(bytes: &[u8], terminator: &[u8]) -> usize {
    bytes
        .windows(terminator.len())
        .rposition(|w| w == terminator)
        .map_or(0, |i| i + terminator.len())
}

/// The end of the first occurrence of `terminator` in `bytes` (0 if none).
fn first_end_of(bytes: &[u8], terminator: &[u8]) -> usize {
    bytes
        .windows(terminator.len())
        .position(|w| w == terminator)
        .map_or(0, |i| i + terminator.len())
}

/// txt and jsonl: every line must be a record. `offset` numbers lines.
fn check_lines(format: Format, records: &[u8], offset: usize) -> Option<String> {
    let at = if offset == 0 { "line" } else { "a line" };
    for (i, line) in records.split(|&b| b == b'\n').enumerate() {
        if i == 0 && line.is_empty() && records.is_empty() {
            break;
        }
        let ok = match format {
            Format::Txt => line.is_empty() || txt_line(line) || line.starts_with(b"# "),
            _ => line.is_empty() || json_object(line),
        };
        if !ok {
            return Some(format!(
                "{at} {} is not a {format} transcript record",
                i + 1
            ));
        }
    }
    None
}

/// srt and vtt: every blank-line-separated block must be a cue (or, in vtt,
/// the header or a NOTE/STYLE/REGION block).
fn check_blocks(format: Format, records: &[u8], at_start: bool) -> Option<String> {
    let text = match std::str::from_utf8(records) {
        Ok(text) => text,
        Err(_) => return Some("it is not UTF-8 text".into()),
    };
    let mut blocks = text
        .split("\n\n")
        .map(|b| b.trim_start_matches('\n'))
        .filter(|b| !b.is_empty());
    if format == Format::Vtt && at_start && !text.is_empty() {
        match blocks.next() {
            Some(first) if starts_with_vtt_header(first.as_bytes()) => {}
            _ => return Some("it does not start with the WEBVTT header".into()),
        }
    }
    for (i, block) in blocks.enumerate() {
        let ok = match format {
            Format::Srt => srt_cue(block),
            _ => vtt_block(block),
        };
        if !ok {
            let what = if format == Format::Srt {
                "cue"
            } else {
                "block"
            };
            return Some(format!("{what} {} is not a {format} {what}", i + 1));
        }
    }
    None
}

enum Tail {
    /// A whole record that only lacks (part of) its terminator.
    Whole(&'static str),
    /// The start of a record: a crash's torn tail, safe to cut.
    Torn,
    /// Something else: the file is not this format's.
    Foreign,
}

/// What the bytes after the last terminator are.
fn tail_kind(format: Format, tail: &[u8], header_start: bool) -> Tail {
    if header_start {
        // Where a VTT file's header belongs, nothing else is a record.
        if VTT_HEADER.as_bytes().starts_with(tail) {
            return Tail::Torn;
        }
        // A header block missing its blank line is completed; anything
        // else here is not a torn write of hark's.
        let header_block = starts_with_vtt_header(tail)
            && tail.ends_with(b"\n")
            && std::str::from_utf8(tail).is_ok();
        return if header_block {
            Tail::Whole("\n")
        } else {
            Tail::Foreign
        };
    }
    match format {
        Format::Txt => match prefix(&txt_pattern(), tail) {
            Match::No => Tail::Foreign,
            _ => Tail::Torn,
        },
        Format::Jsonl => {
            if json_object(tail) {
                Tail::Whole("\n")
            } else if tail.starts_with(b"{") {
                Tail::Torn
            } else {
                Tail::Foreign
            }
        }
        Format::Srt | Format::Vtt => {
            let Ok(text) = std::str::from_utf8(tail) else {
                // A crash can cut a multi-byte character in two.
                return block_prefix(format, &String::from_utf8_lossy(tail));
            };
            let block = text.trim_start_matches('\n');
            if block.is_empty() {
                return Tail::Whole("");
            }
            let whole = if format == Format::Srt {
                srt_cue(block.trim_end_matches('\n'))
            } else {
                vtt_block(block.trim_end_matches('\n'))
            };
            if whole && block.ends_with('\n') {
                Tail::Whole("\n")
            } else {
                block_prefix(format, block)
            }
        }
    }
}

/// Is `block` the start of an srt cue or vtt block hark writes?
fn block_prefix(format: Format, block: &str) -> Tail {
    let block = block.trim_start_matches('\n');
    let mut lines = block.split('\n');
    let first = lines.next().unwrap_or("");
    let ok = if format == Format::Srt {
        let number_ok = first.bytes().all(|b| b.is_ascii_digit());
        let timing_ok = lines
            .next()
            .is_none_or(|l| prefix(&timing_pattern(b','), l.as_bytes()) != Match::No);
        number_ok && timing_ok
    } else {
        prefix(&timing_pattern(b'.'), first.as_bytes()) != Match::No
            || "NOTE ".starts_with(first)
            || first.starts_with("NOTE ")
    };
    if ok {
        Tail::Torn
    } else {
        Tail::Foreign
    }
}

fn json_object(line: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<serde_json::Value>(line),
        Ok(serde_json::Value::Object(_))
    )
}

/// `[time --> time] ...`, as hark writes txt records.
fn txt_line(line: &[u8]) -> bool {
    matches!(prefix(&txt_pattern(), line), Match::Full(_))
}

fn srt_cue(block: &str) -> bool {
    let mut lines = block.lines();
    let number = lines.next().unwrap_or("").trim_start_matches('\u{feff}');
    let timing = lines.next().unwrap_or("");
    !number.is_empty()
        && number.trim().bytes().all(|b| b.is_ascii_digit())
        && (matches!(
            prefix(&timing_pattern(b','), timing.as_bytes()),
            Match::Full(_)
        ) || matches!(
            prefix(&timing_pattern(b'.'), timing.as_bytes()),
            Match::Full(_)
        ))
}

fn vtt_block(block: &str) -> bool {
    let mut lines = block.lines();
    let first = lines.next().unwrap_or("");
    ["NOTE", "STYLE", "REGION"]
        .iter()
        .any(|k| first == *k || first.starts_with(&format!("{k} ")))
        || first.contains("-->")
        || lines.next().is_some_and(|second| second.contains("-->"))
}

fn starts_with_vtt_header(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let header = VTT_HEADER.trim_end().as_bytes();
    bytes.starts_with(header)
        && matches!(bytes.get(header.len()), None | Some(b'\n' | b' ' | b'\t'))
}

/// One element of a record's fixed start.
#[derive(Clone, Copy)]
enum Tok {
    Digits,
    Lit(&'static [u8]),
    Byte(u8),
}

#[derive(Debug, PartialEq, Eq)]
enum Match {
    /// The whole pattern matched; the rest starts at this index.
    Full(usize),
    /// The bytes ended while they still matched.
    Partial,
    No,
}

/// `H:MM:SS<sep>mmm --> H:MM:SS<sep>mmm` (hours one or more digits).
fn timing_pattern(sep: u8) -> Vec<Tok> {
    let clock = [
        Tok::Digits,
        Tok::Byte(b':'),
        Tok::Digits,
        Tok::Byte(b':'),
        Tok::Digits,
        Tok::Byte(sep),
        Tok::Digits,
    ];
    let mut out = clock.to_vec();
    out.push(Tok::Lit(b" --> "));
    out.extend(clock);
    out
}

fn txt_pattern() -> Vec<Tok> {
    let mut out = vec![Tok::Byte(b'[')];
    out.extend(timing_pattern(b'.'));
    out.push(Tok::Lit(b"] "));
    out
}

/// Matches `bytes` against the start pattern `pattern`.
fn prefix(pattern: &[Tok], bytes: &[u8]) -> Match {
    let mut at = 0;
    for (i, tok) in pattern.iter().enumerate() {
        match *tok {
            Tok::Digits => {
                let n = bytes[at..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                at += n;
                let last = i + 1 == pattern.len();
                if at == bytes.len() && !(last && n > 0) {
                    return Match::Partial;
                }
                if n == 0 {
                    return Match::No;
                }
            }
            Tok::Byte(b) => match bytes.get(at) {
                None => return Match::Partial,
                Some(&x) if x == b => at += 1,
                Some(_) => return Match::No,
            },
            Tok::Lit(lit) => {
                let rest = &bytes[at..];
                let n = rest.len().min(lit.len());
                if rest[..n] != lit[..n] {
                    return Match::No;
                }
                if n < lit.len() {
                    return Match::Partial;
                }
                at += n;
            }
        }
    }
    Match::Full(at)
}

/// The number of the last cue in the whole records.
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
#[path = "recover_tests.rs"]
mod tests;
