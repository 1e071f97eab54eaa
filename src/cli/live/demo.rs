//! `--demo`: a bundled clip played into the speaker and transcribed as
//! loopback; with no sound server reachable, a private one is started.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

use crate::soundserver::{self, SoundServer};

/// The clip `--demo` plays.
pub const DEMO_CLIP: &str = "assets/weather.wav";
/// Audio `--demo` keeps capturing after the clip has been handed over: the
/// server's buffers and the VAD's hangover.
pub(super) const DEMO_TAIL: Duration = Duration::from_millis(1500);
/// Silence captured before `--demo` starts playing.
pub(super) const DEMO_LEAD_IN: Duration = Duration::from_millis(300);

/// `--demo`: a sound server (the user's, or a private one) and a clip to
/// play into its default output.
pub(super) struct Demo {
    /// The private server, when none was running; dropping it stops it.
    server: Option<SoundServer>,
    clip: PathBuf,
}

impl Demo {
    /// Finds the clip and, with no server reachable, starts a private one
    /// and points this process at it. Call before any thread starts.
    pub(super) fn prepare() -> anyhow::Result<Demo> {
        let clip = find_upwards(Path::new(DEMO_CLIP)).with_context(|| {
            format!("--demo: {DEMO_CLIP} not found above the current directory or the executable")
        })?;
        let server = if SoundServer::running_elsewhere() {
            tracing::info!("demo: using the running sound server");
            None
        } else {
            let server =
                SoundServer::start().context("--demo: cannot start a private sound server")?;
            // SAFETY: called at the start of `run`, before this process has
            // started any thread.
            unsafe { server.export_env() };
            eprintln!("hark: demo: started a private sound server (no sound server was running)");
            Some(server)
        };
        Ok(Demo { server, clip })
    }

    /// Starts playing the clip into the speaker the loopback records.
    pub(super) fn play(&self) -> anyhow::Result<Child> {
        eprintln!("hark: demo: playing {}", self.clip.display());
        match &self.server {
            Some(server) => Ok(server.play(soundserver::SPEAKER_SINK, &self.clip)?),
            None => Command::new("paplay")
                .arg(&self.clip)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .context("--demo: cannot run paplay (install pulseaudio-utils)"),
        }
    }
}

/// `relative` under the current directory or the executable's directory,
/// or under one of their parents.
fn find_upwards(relative: &Path) -> Option<PathBuf> {
    let starts = [
        std::env::current_dir().ok(),
        std::env::current_exe()
            .ok()
            .and_then(|e| e.parent().map(Path::to_path_buf)),
    ];
    starts
        .into_iter()
        .flatten()
        .flat_map(|start| {
            start
                .ancestors()
                .map(|dir| dir.join(relative))
                .collect::<Vec<_>>()
        })
        .find(|candidate| candidate.is_file())
}
