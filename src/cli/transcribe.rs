//! `hark transcribe`: offline (and paced) transcription of WAV files.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// WAV files to transcribe.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::bail!("transcribe {:?}: not built yet", args.files)
}
