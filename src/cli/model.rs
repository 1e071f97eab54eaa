//! `hark model`: import a CTranslate2 Whisper model into ggml, quantize it,
//! check a ggml file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;

use crate::model::{self, GgmlInfo, QuantType};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Convert a CTranslate2 Whisper model directory (model.bin, config.json,
    /// tokenizer.json) into a whisper.cpp ggml file (float16).
    ImportCt2 {
        /// The CTranslate2 model directory.
        dir: PathBuf,
        /// The ggml file to write.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Quantize a float16/float32 ggml Whisper model.
    Quantize {
        /// The float16 or float32 ggml file.
        input: PathBuf,
        /// The quantized ggml file to write.
        output: PathBuf,
        /// Quantization type: q8_0, q5_1, q5_0 or q4_0.
        #[arg(long = "type", value_name = "TYPE")]
        qtype: QuantType,
    },
    /// Check a ggml Whisper model completely and print what it holds.
    Check {
        /// The ggml file.
        file: PathBuf,
    },
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::ImportCt2 { dir, output } => {
            let start = Instant::now();
            let info = model::import_ct2(&dir, &output).with_context(|| {
                format!("importing {} into {}", dir.display(), output.display())
            })?;
            report(&output, &info, start)
        }
        Command::Quantize {
            input,
            output,
            qtype,
        } => {
            let start = Instant::now();
            let info = model::quantize(&input, &output, qtype)
                .with_context(|| format!("quantizing {} to {qtype}", input.display()))?;
            report(&output, &info, start)
        }
        Command::Check { file } => {
            let start = Instant::now();
            let info = model::validate(&file)?;
            report(&file, &info, start)
        }
    }
}

fn report(path: &Path, info: &GgmlInfo, start: Instant) -> anyhow::Result<()> {
    let h = &info.hparams;
    let sha256 = model::sha256_file(path)?;
    println!("{}", path.display());
    println!(
        "  {} weights (ftype {}), {} tensors, {} tokens, {} bytes",
        info.weight_type, h.ftype, info.n_tensors, info.n_tokens, info.file_bytes
    );
    println!(
        "  vocab {}, audio ctx {} state {} heads {} layers {}, text ctx {} state {} heads {} layers {}, mels {}",
        h.n_vocab,
        h.n_audio_ctx,
        h.n_audio_state,
        h.n_audio_head,
        h.n_audio_layer,
        h.n_text_ctx,
        h.n_text_state,
        h.n_text_head,
        h.n_text_layer,
        h.n_mels
    );
    println!("  sha256 {sha256}");
    println!("  took {:.2} s", start.elapsed().as_secs_f64());
    Ok(())
}
