//! The bodies of hark's fuzz targets, one function per parser.
//!
//! Each takes the fuzzer's bytes, hands them to the parser the way hark does
//! (files go through a real file on disk), and checks what the project
//! promises for bad input: no panic, no unbounded allocation, and an error
//! that is one line naming the file. `tests/fuzz_corpus.rs` replays every
//! committed corpus file through these same functions in `cargo test`.

use std::io::Write;
use std::path::{Path, PathBuf};

use hark::dsp::wav;
use hark::model::ct2::Ct2Model;
use hark::model::{ggml, import, vocab};
use hark::transcript::{self, Format};

/// A fuzz target: a directory for scratch files (private to the caller), and
/// the input.
pub type Target = fn(&Path, &[u8]);

/// The fuzz targets, by name: the corpus directory of each is `corpus/<name>`.
pub const TARGETS: [(&str, Target); 5] = [
    ("wav", wav_file),
    ("ggml", ggml_file),
    ("ct2", ct2_model),
    ("tokenizer", tokenizer_json),
    ("recover", transcript_tail),
];

/// Writes `data` to the file `name` in the directory `scratch` (replacing
/// it; the process id keeps parallel fuzz jobs apart) and returns its path.
fn scratch_file(scratch: &Path, name: &str, data: &[u8]) -> PathBuf {
    let path = scratch.join(format!("{}-{name}", std::process::id()));
    let mut file = std::fs::File::create(&path).expect("create the scratch file");
    file.write_all(data).expect("write the scratch file");
    path
}

/// An error hark prints must be one line and name the file it is about.
fn check_message(error: &dyn std::fmt::Display, path: &Path) {
    let message = error.to_string();
    assert!(
        !message.contains('\n'),
        "error is not one line: {message:?}"
    );
    assert!(
        message.contains(&path.display().to_string()),
        "error does not name {}: {message:?}",
        path.display()
    );
}

/// A WAV file, read whole and as 16 kHz mono (the two ways hark reads files).
pub fn wav_file(scratch: &Path, data: &[u8]) {
    let path = scratch_file(scratch, "input.wav", data);
    let audio = match wav::read(&path) {
        Ok(audio) => audio,
        Err(err) => return check_message(&err, &path),
    };
    let channels = usize::from(audio.channels);
    assert!((1..=usize::from(wav::MAX_CHANNELS)).contains(&channels));
    assert!((wav::MIN_RATE_HZ..=wav::MAX_RATE_HZ).contains(&audio.rate_hz));
    assert_eq!(
        audio.samples.len() % channels,
        0,
        "a partial frame was kept"
    );
    // Every sample takes at least one byte of the file.
    assert!(audio.samples.len() <= data.len());
    assert!(audio.samples.iter().all(|s| (-1.0..=1.0).contains(s)));
    match wav::read_16k_mono(&path) {
        Ok(mono) => {
            assert_eq!((mono.rate_hz, mono.channels), (16_000, 1));
            assert!(mono.samples.iter().all(|s| s.is_finite()));
            // Resampling to 16 kHz from at least 1 kHz: at most 16 samples
            // per frame read, plus the resampler's flush.
            assert!(mono.samples.len() <= 16 * audio.frames() + 16_384);
        }
        Err(err) => check_message(&err, &path),
    }
}

/// Bytes before a ggml file's mel filterbank: magic, 11 hyperparameters,
/// n_mel, n_fft.
const GGML_MEL_AT: usize = 4 + 11 * 4 + 8;

/// The file a ggml input stands for. The first byte picks the form: odd, the
/// rest is the file itself; even, the rest is the file without its mel
/// filterbank (n_mel x 201 f32, 64 KB and more), which is put back as zeros
/// when n_mel is 80 or 128, so small inputs reach the vocabulary and tensors.
pub fn ggml_bytes(data: &[u8]) -> Vec<u8> {
    let Some((&form, rest)) = data.split_first() else {
        return Vec::new();
    };
    if form & 1 == 1 || rest.len() < GGML_MEL_AT {
        return rest.to_vec();
    }
    let n_mel = i32::from_le_bytes(rest[48..52].try_into().expect("4 bytes"));
    if n_mel != 80 && n_mel != 128 {
        return rest.to_vec();
    }
    let mel_bytes = n_mel as usize * ggml::MEL_BINS * 4;
    let mut file = Vec::with_capacity(rest.len() + mel_bytes);
    file.extend_from_slice(&rest[..GGML_MEL_AT]);
    file.resize(GGML_MEL_AT + mel_bytes, 0);
    file.extend_from_slice(&rest[GGML_MEL_AT..]);
    file
}

/// A ggml model file (see [`ggml_bytes`]): [`ggml::validate`], and the
/// reader walked over every tensor header whatever its name (validate stops
/// at the first unknown one).
pub fn ggml_file(scratch: &Path, data: &[u8]) {
    let file = ggml_bytes(data);
    let path = scratch_file(scratch, "model.bin", &file);
    match ggml::validate(&path) {
        Ok(info) => assert_eq!(info.file_bytes, file.len() as u64),
        Err(err) => check_message(&err, &path),
    }
    let (mut reader, preamble) = match ggml::GgmlReader::open(&path) {
        Ok(opened) => opened,
        Err(err) => return check_message(&err, &path),
    };
    assert!(preamble.tokens.len() <= preamble.hparams.n_vocab as usize);
    loop {
        match reader.next_tensor() {
            Ok(None) => break,
            Ok(Some(tensor)) => {
                if let Err(err) = reader.skip_data(&tensor) {
                    return check_message(&err, &path);
                }
            }
            Err(err) => return check_message(&err, &path),
        }
    }
}

/// A CTranslate2 `model.bin`: parsed, every variable read as floats and as a
/// scalar, and the hyperparameters the importer derives from it.
pub fn ct2_model(_scratch: &Path, data: &[u8]) {
    let path = Path::new("fuzz/model.bin");
    let model = match Ct2Model::parse(path, data) {
        Ok(model) => model,
        Err(err) => return check_message(&err, path),
    };
    for name in model.variables.keys().chain(model.aliases.keys()) {
        for result in [
            model.floats(name).map(drop),
            model.scalar(name).map(drop),
            model.shape(name, 2).map(drop),
        ] {
            if let Err(err) = result {
                check_message(&err, path);
            }
        }
    }
    match import::ct2_hparams(&model) {
        Ok(hparams) => {
            let weight_type = hparams.weight_type().expect("checked hyperparameters");
            assert!(!ggml::expected_tensors(&hparams, weight_type).is_empty());
        }
        Err(err) => check_message(&err, path),
    }
}

/// A `tokenizer.json`, read from a file as the importer does.
pub fn tokenizer_json(scratch: &Path, data: &[u8]) {
    let path = scratch_file(scratch, "tokenizer.json", data);
    match vocab::read_tokens(&path) {
        Ok(tokens) => assert!(tokens.len() <= vocab::MAX_ORDINARY_TOKENS),
        Err(err) => check_message(&err, &path),
    }
}

/// The torn-tail scan of an existing transcript, in every format. The first
/// byte picks the format and whether the bytes start at the file's start.
///
/// Checked: the whole part is within the bytes; and repairing is idempotent:
/// after cutting the torn tail (and adding what completes the last record),
/// the same scan finds nothing to cut, nothing foreign, nothing to complete.
pub fn transcript_tail(_scratch: &Path, data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else {
        return;
    };
    let format = Format::ALL[usize::from(selector) % Format::ALL.len()];
    let at_start = selector & 0x80 == 0;
    let scan = transcript::scan_from(format, bytes, at_start);
    assert!(scan.whole_len <= bytes.len(), "{format}: {scan:?}");
    if scan.foreign.is_some() {
        assert_eq!(scan.complete_with, "", "{format}: {scan:?}");
        return;
    }
    if !at_start {
        return;
    }
    let mut repaired = bytes[..scan.whole_len].to_vec();
    repaired.extend_from_slice(scan.complete_with.as_bytes());
    let again = transcript::scan(format, &repaired);
    assert_eq!(
        (again.whole_len, again.complete_with, &again.foreign),
        (repaired.len(), "", &None),
        "{format}: repairing {bytes:?} gave {repaired:?}, which scans as {again:?}"
    );
    assert_eq!(again.last_cue, scan.last_cue, "{format}: {repaired:?}");
    assert_eq!(again.has_vtt_header, scan.has_vtt_header, "{format}");
}

/// Where fuzz targets write their scratch files: inside the fuzz crate's
/// build directory (never a shared temp directory), created once.
pub fn fuzz_scratch_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scratch");
        std::fs::create_dir_all(&dir).expect("create fuzz/target/scratch");
        dir
    })
}
