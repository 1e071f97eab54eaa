//! The known audio programme (`programme.wav` + `programme.tsv`) and a
//! player that loops it into a sink of the private sound server.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::SoakError;
use crate::soundserver::SoundServer;

/// Pause before replaying after paplay failed (e.g. its sink is gone).
const REPLAY_BACKOFF: Duration = Duration::from_millis(200);

/// One phrase: where it lies in the programme file, and its text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Phrase {
    pub start_s: f64,
    pub end_s: f64,
    pub text: String,
}

/// The programme: a WAV file and its phrases.
#[derive(Debug, Clone)]
pub struct Programme {
    pub wav: PathBuf,
    pub duration_s: f64,
    pub phrases: Vec<Phrase>,
}

impl Programme {
    /// Loads `name.wav` and `name.tsv` (start, end, text per line).
    pub fn load(wav: &Path) -> Result<Programme, SoakError> {
        let tsv = wav.with_extension("tsv");
        let bad = |detail: String| SoakError::Programme {
            path: tsv.clone(),
            detail,
        };
        let text = std::fs::read_to_string(&tsv).map_err(|e| bad(e.to_string()))?;
        let mut phrases = Vec::new();
        for (n, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let mut cols = line.splitn(3, '\t');
            let mut num = |what: &str| {
                cols.next()
                    .and_then(|c| c.trim().parse::<f64>().ok())
                    .ok_or_else(|| bad(format!("line {}: no {what} time", n + 1)))
            };
            let (start_s, end_s) = (num("start")?, num("end")?);
            let text = cols
                .next()
                .ok_or_else(|| bad(format!("line {}: no text", n + 1)))?;
            phrases.push(Phrase {
                start_s,
                end_s,
                text: text.trim().to_owned(),
            });
        }
        let reader = hound::WavReader::open(wav).map_err(|e| SoakError::Programme {
            path: wav.to_path_buf(),
            detail: e.to_string(),
        })?;
        let spec = reader.spec();
        let duration_s = f64::from(reader.duration()) / f64::from(spec.sample_rate);
        if phrases.is_empty() {
            return Err(bad("no phrases".to_owned()));
        }
        Ok(Programme {
            wav: wav.to_path_buf(),
            duration_s,
            phrases,
        })
    }
}

/// One play of the programme, in session seconds (the pipeline clock).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Play {
    pub sink: String,
    pub start_s: f64,
    pub end_s: f64,
    /// paplay played it to the end.
    pub complete: bool,
}

/// Loops the programme into a sink until stopped.
pub struct Player {
    stop: Arc<AtomicBool>,
    plays: Arc<Mutex<Vec<Play>>>,
    thread: Option<JoinHandle<()>>,
}

impl Player {
    /// Starts looping `programme` into `sink`; times are measured from `clock`.
    pub fn start(
        server: Arc<SoundServer>,
        sink: &str,
        programme: &Programme,
        clock: Instant,
    ) -> Result<Player, SoakError> {
        let stop = Arc::new(AtomicBool::new(false));
        let plays = Arc::new(Mutex::new(Vec::new()));
        let (thread_stop, thread_plays) = (Arc::clone(&stop), Arc::clone(&plays));
        let (sink, wav) = (sink.to_owned(), programme.wav.clone());
        let thread = std::thread::Builder::new()
            .name(format!("soak-play-{sink}"))
            .spawn(move || play_loop(&server, &sink, &wav, clock, &thread_stop, &thread_plays))
            .map_err(SoakError::Thread)?;
        Ok(Player {
            stop,
            plays,
            thread: Some(thread),
        })
    }

    /// Stops playing (the current play is cut, and counted incomplete).
    pub fn stop(mut self) -> Vec<Play> {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.plays.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

fn play_loop(
    server: &SoundServer,
    sink: &str,
    wav: &Path,
    clock: Instant,
    stop: &AtomicBool,
    plays: &Mutex<Vec<Play>>,
) {
    while !stop.load(Ordering::Acquire) {
        let start_s = clock.elapsed().as_secs_f64();
        let mut child = match server.play(sink, wav) {
            Ok(child) => child,
            Err(e) => {
                tracing::error!("soak player: {e}");
                return;
            }
        };
        let complete = loop {
            if stop.load(Ordering::Acquire) {
                let _ = child.kill();
                let _ = child.wait();
                break false;
            }
            match child.try_wait() {
                Ok(Some(status)) => break status.success(),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break false,
            }
        };
        let end_s = clock.elapsed().as_secs_f64();
        if let Ok(mut plays) = plays.lock() {
            plays.push(Play {
                sink: sink.to_owned(),
                start_s,
                end_s,
                complete,
            });
        }
        if !complete {
            std::thread::sleep(REPLAY_BACKOFF);
        }
    }
}
