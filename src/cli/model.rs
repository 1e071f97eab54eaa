//! `hark model`: install the models of `models/manifest.toml`, import a
//! CTranslate2 Whisper model into ggml, quantize it, check a ggml file.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::Subcommand;

use crate::model::manifest::{self, Manifest, Step};
use crate::model::{self, GgmlInfo, ModelError, QuantType};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch, convert and quantize the models listed in models/manifest.toml
    /// (the default one unless names or --all are given), skipping every
    /// file already present with its pinned SHA-256.
    Install {
        /// Models to install, by manifest name (e.g. tiny.en-q5_1).
        #[arg(conflicts_with = "all")]
        names: Vec<String>,
        /// Install every model in the manifest.
        #[arg(long)]
        all: bool,
    },
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
        Command::Install { names, all } => install(&names, all),
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

fn install(names: &[String], all: bool) -> anyhow::Result<()> {
    let dir = manifest::models_dir().ok_or_else(|| ModelError::Manifest {
        path: manifest::MANIFEST_PATH.into(),
        detail: "not found above the current directory nor the executable; \
                 run from a checkout or set HARK_MODELS_DIR"
            .into(),
    })?;
    let manifest = Manifest::read(&dir.join(manifest::MANIFEST_FILE))?;
    let mut steps = Vec::new();
    let started = Instant::now();
    let outcome = if all {
        manifest::install_all(&manifest, &dir, &mut steps).map(|_| ())
    } else if names.is_empty() {
        manifest::install(&manifest, &dir, &manifest.default, &mut steps).map(|_| ())
    } else {
        names
            .iter()
            .try_for_each(|name| manifest::install(&manifest, &dir, name, &mut steps).map(|_| ()))
    };
    // Say what was done even when a later step failed.
    let mut seen = std::collections::HashSet::new();
    for step in &steps {
        match step {
            Step::AlreadyThere(path) if seen.insert(path.clone()) => {
                println!("have  {}", path.display())
            }
            Step::AlreadyThere(_) => {}
            Step::Made { path, took } => {
                seen.insert(path.clone());
                println!("made  {} ({:.1} s)", path.display(), took.as_secs_f64())
            }
        }
    }
    outcome.context("installing models")?;
    println!("models ready in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
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
