//! `--runtime`: the start-up log says which runtime serves and why, a
//! limit glommio cannot live with makes `auto` fall back to smol with the
//! reason, and makes an explicit `--runtime glommio` fail saying what to
//! change. (The whole suite runs on each runtime through AROUTER_RUNTIME;
//! these tests choose their own.)
#![cfg(target_os = "linux")]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn binary() -> PathBuf {
    std::env::var_os("AROUTER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/arouter")
        })
}

/// Starts `arouter serve` (under `prefix`, e.g. `prlimit`), waits until its
/// log shows it listening or it exits; returns the log and whether it was
/// still running (then it is stopped).
fn start(prefix: &[&str], runtime: &str) -> (String, bool) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let mut cmd = match prefix.split_first() {
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(binary());
            cmd
        }
        None => Command::new(binary()),
    };
    let mut child = cmd
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--runtime",
            runtime,
            "--data-dir",
        ])
        .arg(dir.path().join("data"))
        .env_remove("AROUTER_RUNTIME")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("spawn arouter");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Ok(Some(_)) = child.try_wait() {
            return (text, false);
        }
        if text.contains("listening on") || Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (text, true);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has_prlimit() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_log_names_the_runtime_and_why() {
    let (log, running) = start(&[], "smol");
    assert!(running, "{log}");
    assert!(log.contains("runtime: smol (--runtime smol)"), "{log}");
    let (log, running) = start(&[], "auto");
    assert!(running, "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("runtime: "))
        .unwrap_or_else(|| panic!("no runtime line:\n{log}"));
    assert!(
        line.contains("runtime: glommio (io_uring is usable)")
            || line.contains("runtime: smol, because glommio cannot run here: "),
        "{line}"
    );
}

#[test]
fn a_locked_memory_limit_too_low_for_glommio_falls_back_or_is_explained() {
    assert!(
        has_prlimit(),
        "prlimit (util-linux) is needed for this test"
    );
    // Where io_uring itself is off, that is the reason given instead.
    let (log, _) = start(&[], "auto");
    let glommio_here = log.contains("runtime: glommio");
    // A hard limit of 0 cannot be raised by the gateway.
    let low = ["prlimit", "--memlock=0:0", "--"];
    let (log, running) = start(&low, "auto");
    assert!(running, "auto must fall back to smol:\n{log}");
    assert!(
        log.contains("runtime: smol, because glommio cannot run here: ")
            && (log.contains("RLIMIT_MEMLOCK") || !glommio_here),
        "{log}"
    );
    let (log, running) = start(&low, "glommio");
    assert!(!running, "--runtime glommio must refuse to start:\n{log}");
    assert!(log.contains("--runtime glommio cannot run here"), "{log}");
    assert!(log.contains("ulimit -l") || !glommio_here, "{log}");
}
