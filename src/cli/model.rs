//! `hark model`: import a CTranslate2 Whisper model into ggml, quantize it.

use std::path::PathBuf;

use clap::Subcommand;

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
}

pub fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::ImportCt2 { dir, output } => {
            anyhow::bail!(
                "import-ct2 {} -> {}: not built yet",
                dir.display(),
                output.display()
            )
        }
    }
}
