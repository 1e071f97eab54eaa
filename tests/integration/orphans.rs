//! No orphans: `kill -9` of `hark live --demo` (which starts its own
//! private sound server and plays a clip into it with paplay) takes the
//! server and the player with it. The server's directory is private (0700).
//! Real processes, watched through /proc.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Children of `pid` (from /proc/*/stat), with their command names.
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let comm = head.split_once(" (").map_or("", |h| h.1).to_owned();
        let ppid: u32 = rest
            .split(' ')
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        if ppid == pid {
            out.push((child, comm));
        }
    }
    out
}

/// True while `pid` exists and is not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|r| !r.1.starts_with('Z')))
        .unwrap_or(false)
}

#[test]
fn kill_9_of_live_demo_leaves_no_sound_server_or_player() {
    let _serial = crate::support::serial();
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("none");
    let mut hark = Command::new(env!("CARGO_BIN_EXE_hark"))
        .args(["live", "--demo", "--duration", "120", "--format", "jsonl"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env(
            "PULSE_SERVER",
            format!("unix:{}", nowhere.join("native").display()),
        )
        .env("XDG_RUNTIME_DIR", &nowhere)
        .env_remove("HARK_MODEL")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(hark.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let playing = line.contains("demo: playing");
        seen.push(line);
        if playing {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("started a private sound server")),
        "{seen:#?}"
    );
    // paplay is spawned just before "playing" is printed... or just after.
    let give_up = Instant::now() + Duration::from_secs(20);
    let kids = loop {
        let kids = children(hark.id());
        let names: Vec<&str> = kids.iter().map(|k| k.1.as_str()).collect();
        if names.contains(&"pulseaudio") && names.contains(&"paplay") {
            break kids;
        }
        assert!(
            Instant::now() < give_up,
            "children: {kids:?}, log {seen:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // The server's directory (its -F script's folder) is private.
    let server = kids.iter().find(|k| k.1 == "pulseaudio").unwrap().0;
    let cmdline = std::fs::read(format!("/proc/{server}/cmdline")).unwrap();
    let script: PathBuf = cmdline
        .split(|&b| b == 0)
        .map(|a| PathBuf::from(String::from_utf8_lossy(a).into_owned()))
        .find(|a| a.extension().is_some_and(|e| e == "pa"))
        .expect("server script in the command line");
    let server_dir = script.parent().unwrap().to_path_buf();
    let mode = std::fs::metadata(&server_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "{}", server_dir.display());

    hark.kill().unwrap(); // SIGKILL: no destructor runs in hark
    hark.wait().unwrap();
    let give_up = Instant::now() + Duration::from_secs(20);
    while kids.iter().any(|k| alive(k.0)) {
        if Instant::now() > give_up {
            for k in &kids {
                // SAFETY: plain kill(2) of processes this test saw started.
                unsafe { libc::kill(k.0 as i32, libc::SIGKILL) };
            }
            panic!("orphans still running 20 s after kill -9: {kids:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_dir_all(&server_dir);
}
