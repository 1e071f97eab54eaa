//! A private PulseAudio server for tests, demos and soak runs: no sound
//! card, no user session, nothing shared with a server already running.
//!
//! Layout (see [`SoundServer::start`]):
//! - `spk`: a null sink, the default output; `spk.monitor` is the loopback
//!   source (records what plays into `spk`).
//! - `micfeed`: a null sink feeding `vmic`, a remapped, non-monitor source
//!   that behaves like a real microphone (default input). Play into it with
//!   `play("micfeed", wav)`.
//! - keepers: an idle null sink renders in 2 s blocks, so a new recorder
//!   would wait up to 2 s for its first data; a null source looped into each
//!   sink (`module-loopback latency_msec=10`) keeps them rendering in ~10 ms
//!   steps.
//!
//! Clients find it through `PULSE_SERVER=unix:DIR/native` (the pure-Rust
//! client cpal uses needs the `unix:` prefix), `XDG_RUNTIME_DIR` and
//! `PULSE_COOKIE` (a 256-byte cookie must be sent even to an anonymous
//! server). Give
//! [`SoundServer::env`] to child processes; for cpal in this process set
//! them once before any thread starts ([`SoundServer::export_env`]).
//!
//! Needs the `pulseaudio` and `pulseaudio-utils` system packages.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The loopback sink (default output).
pub const SPEAKER_SINK: &str = "spk";
/// Its monitor: the loopback capture source.
pub const SPEAKER_MONITOR: &str = "spk.monitor";
/// The sink that feeds the virtual microphone.
pub const MIC_FEED_SINK: &str = "micfeed";
/// The virtual microphone (default input).
pub const MIC_SOURCE: &str = "vmic";
/// How long [`SoundServer::start`] waits for the server to answer.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Set this variable to keep the server's directory (and its log,
/// `server.log`) after it stops, for debugging.
pub const KEEP_ENV: &str = "HARK_SOUNDSERVER_KEEP";
const COOKIE_FILE: &str = "cookie";
const COOKIE_LEN: usize = 256;
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Why the private server could not be started or driven.
#[derive(Debug, thiserror::Error)]
pub enum SoundServerError {
    #[error(
        "cannot run `{program}` ({source}); install the pulseaudio and pulseaudio-utils packages"
    )]
    Missing {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the server's directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the private PulseAudio server did not answer within {waited:?}; its log: {log}")]
    NotReady { waited: Duration, log: String },
    #[error("`pactl {args}` failed: {stderr}")]
    Pactl { args: String, stderr: String },
}

/// A running private PulseAudio server. Drop stops it and removes its files.
pub struct SoundServer {
    daemon: Child,
    dir: PathBuf,
}

impl SoundServer {
    /// Starts the server in a fresh temporary directory and waits until it
    /// answers and both sinks are running.
    ///
    /// Not real-time safe.
    pub fn start() -> Result<SoundServer, SoundServerError> {
        let dir = make_temp_dir()?;
        let script = dir.join("server.pa");
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SoundServerError::Io { path, source }
        };
        for sub in ["runtime", "config", "home"] {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(dir.join(sub))
                .map_err(io_err(&dir.join(sub)))?;
        }
        std::fs::write(&script, server_script(&dir)).map_err(io_err(&script))?;
        // The server accepts anyone (auth-anonymous), but the protocol still
        // needs a 256-byte cookie: the pure-Rust client sends an empty one
        // when it finds none and is kicked out with a protocol error.
        let cookie = dir.join(COOKIE_FILE);
        std::fs::write(&cookie, [0x5a_u8; COOKIE_LEN]).map_err(io_err(&cookie))?;
        let log_path = dir.join("server.log");
        let log = std::fs::File::create(&log_path).map_err(io_err(&log_path))?;
        let log_err = log.try_clone().map_err(io_err(&log_path))?;

        let mut command = Command::new("pulseaudio");
        command
            .args(["-n", "-F"])
            .arg(&script)
            .args([
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--use-pid-file=no",
                "--log-target=stderr",
            ])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        apply_env(&mut command, &dir);
        die_with_this_process(&mut command);
        let daemon = command
            .spawn()
            .map_err(|source| SoundServerError::Missing {
                program: "pulseaudio".to_owned(),
                source,
            })?;
        let mut server = SoundServer { daemon, dir };
        server.wait_ready(&log_path)?;
        Ok(server)
    }

    fn wait_ready(&mut self, log_path: &Path) -> Result<(), SoundServerError> {
        let started = Instant::now();
        loop {
            let exited = matches!(self.daemon.try_wait(), Ok(Some(_)));
            if !exited && self.socket().exists() {
                // Ready once both sinks render (the keepers run): a recorder
                // opened earlier would wait for a 2 s block.
                if let Ok(out) = self.pactl_output(&["list", "short", "sinks"]) {
                    let listing = String::from_utf8_lossy(&out.stdout);
                    let running = listing.lines().filter(|l| l.contains("RUNNING")).count();
                    if out.status.success() && running >= 2 {
                        return Ok(());
                    }
                }
            }
            if exited || started.elapsed() > START_TIMEOUT {
                return Err(SoundServerError::NotReady {
                    waited: started.elapsed(),
                    log: std::fs::read_to_string(log_path).unwrap_or_default(),
                });
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The server's socket path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("native")
    }

    /// The server's private directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Environment a client (child process or this one) needs to reach it.
    pub fn env(&self) -> Vec<(String, String)> {
        env_for(&self.dir)
    }

    /// Sets [`SoundServer::env`] in this process so cpal's PulseAudio host
    /// finds the server.
    ///
    /// # Safety
    /// Changing the environment races with any other thread reading it:
    /// call this before starting threads (e.g. first thing in `main`).
    pub unsafe fn export_env(&self) {
        for (key, value) in self.env() {
            std::env::set_var(key, value);
        }
    }

    /// Plays `wav` into `sink` with `paplay`; wait on the child to know when
    /// it has been handed to the server.
    ///
    /// Not real-time safe.
    pub fn play(&self, sink: &str, wav: &Path) -> Result<Child, SoundServerError> {
        let mut command = Command::new("paplay");
        command
            .arg("-d")
            .arg(sink)
            .arg(wav)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        apply_env(&mut command, &self.dir);
        die_with_this_process(&mut command);
        command.spawn().map_err(|source| SoundServerError::Missing {
            program: "paplay".to_owned(),
            source,
        })
    }

    /// Runs `pactl args...` against this server and returns its stdout.
    ///
    /// Not real-time safe.
    pub fn pactl(&self, args: &[&str]) -> Result<String, SoundServerError> {
        let out = self.pactl_output(args)?;
        if !out.status.success() {
            return Err(SoundServerError::Pactl {
                args: args.join(" "),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn pactl_output(&self, args: &[&str]) -> Result<Output, SoundServerError> {
        let mut command = Command::new("pactl");
        command.args(args).stdin(Stdio::null());
        apply_env(&mut command, &self.dir);
        command
            .output()
            .map_err(|source| SoundServerError::Missing {
                program: "pactl".to_owned(),
                source,
            })
    }

    /// Loads a module (`pactl load-module NAME ARGS`); returns its index.
    pub fn load_module(&self, name: &str, args: &[&str]) -> Result<u32, SoundServerError> {
        let mut all = vec!["load-module", name];
        all.extend_from_slice(args);
        let out = self.pactl(&all)?;
        out.trim().parse().map_err(|_| SoundServerError::Pactl {
            args: all.join(" "),
            stderr: format!("unexpected module index {out:?}"),
        })
    }

    /// Unloads a module by index.
    pub fn unload_module(&self, index: u32) -> Result<(), SoundServerError> {
        self.pactl(&["unload-module", &index.to_string()])
            .map(|_| ())
    }

    /// Whether a sound server other than a private one is reachable with
    /// this process's environment (`PULSE_SERVER`, the user's session).
    ///
    /// Not real-time safe.
    pub fn running_elsewhere() -> bool {
        Command::new("pactl")
            .arg("info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }
}

impl Drop for SoundServer {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        if std::env::var_os(KEEP_ENV).is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn env_for(dir: &Path) -> Vec<(String, String)> {
    let path = |sub: &str| dir.join(sub).to_string_lossy().into_owned();
    vec![
        (
            "PULSE_SERVER".to_owned(),
            format!("unix:{}", dir.join("native").display()),
        ),
        ("PULSE_COOKIE".to_owned(), path(COOKIE_FILE)),
        ("XDG_RUNTIME_DIR".to_owned(), path("runtime")),
        ("XDG_CONFIG_HOME".to_owned(), path("config")),
        ("HOME".to_owned(), path("home")),
    ]
}

fn apply_env(command: &mut Command, dir: &Path) {
    for (key, value) in env_for(dir) {
        command.env(key, value);
    }
}

/// The server's directory: a new one (never one that exists), mode 0700, so
/// only this user reaches its socket (the server itself lets in any client
/// that can connect: `auth-anonymous=1`).
fn make_temp_dir() -> Result<PathBuf, SoundServerError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = base.join(format!("hark-pulse-{}-{stamp}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|source| SoundServerError::Io {
            path: dir.clone(),
            source,
        })?;
    Ok(dir)
}

/// Children started from the main thread die with this process, even after
/// `kill -9` (Linux's parent-death signal: SIGTERM when the process ends).
/// The signal follows the thread that forked, so from any other thread (a
/// test harness's) nothing is set: the child would die with that thread.
fn die_with_this_process(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid and gettid have no preconditions and cannot fail.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    if pid != tid {
        return;
    }
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe calls (prctl, getppid, _exit); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != pid {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

fn server_script(dir: &Path) -> String {
    let socket = dir.join("native");
    format!(
        "\
load-module module-native-protocol-unix auth-anonymous=1 socket={socket}
load-module module-null-sink sink_name={SPEAKER_SINK} sink_properties=device.description=Speaker
load-module module-null-sink sink_name={MIC_FEED_SINK} sink_properties=device.description=MicFeed
load-module module-remap-source master={MIC_FEED_SINK}.monitor source_name={MIC_SOURCE} source_properties=device.description=VirtualMic
load-module module-null-source source_name=keeper
load-module module-loopback source=keeper sink={SPEAKER_SINK} latency_msec=10 source_dont_move=true sink_dont_move=true
load-module module-loopback source=keeper sink={MIC_FEED_SINK} latency_msec=10 source_dont_move=true sink_dont_move=true
set-default-sink {SPEAKER_SINK}
set-default-source {MIC_SOURCE}
",
        socket = socket.display()
    )
}
