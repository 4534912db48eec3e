//! Start-up and graceful shutdown.

use std::io::Write;
use std::time::Duration;

use arouter_e2e::{closed_within, read_response, Server};

#[test]
fn sigterm_stops_cleanly_and_closes_idle_connections() {
    let mut s = Server::start();
    let mut idle = s.connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut idle).unwrap().status, 200);
    let status = s.terminate().expect("exited within the grace period");
    assert!(status.success(), "{status}\n{}", s.stderr());
    assert!(closed_within(&mut idle, Duration::from_secs(2)));
    assert!(
        std::net::TcpStream::connect(s.addr).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn bad_config_fails_fast_with_a_message() {
    let bin = std::env::var_os("AROUTER_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/arouter")
        });
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[providers.x]\nkind = \"nope\"\n").unwrap();
    let out = std::process::Command::new(bin)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("d"))
        .output()
        .expect("run arouter");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown kind"));
}

#[test]
fn help_documents_the_contract() {
    let bin = std::env::var_os("AROUTER_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug/arouter")
        });
    let out = std::process::Command::new(&bin)
        .args(["serve", "--help"])
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--listen",
        "AROUTER_LISTEN",
        "--data-dir",
        "AROUTER_DATA_DIR",
        "--config",
        "AROUTER_CONFIG",
        "--body-timeout-ms",
        "AROUTER_BODY_TIMEOUT_MS",
        "--upstream-pool-idle-ms",
        "AROUTER_UPSTREAM_POOL_IDLE_MS",
        // The config file's [limits] keys are the flags in snake case.
        "body_timeout_ms",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from serve --help:\n{text}"
        );
    }
    let out = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "AROUTER_MASTER_KEY",
        "OPENAI_API_KEY",
        "ANTHROPIC_BASE_URL",
        "GEMINI_API_KEY",
        "AROUTER_DEFAULT_MODEL",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from --help:\n{text}"
        );
    }
}

/// A second gateway started on a port that one already serves exits
/// saying the address is in use, on either runtime. Listening with
/// `SO_REUSEPORT` let it join the port instead and take part of the first
/// one's connections.
#[test]
fn a_second_gateway_on_a_busy_port_exits_saying_it_is_in_use() {
    let mut first = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(arouter_e2e::binary());
    arouter_e2e::without_settings_from_env(&mut cmd);
    cmd.args(["serve", "--listen", &first.addr.to_string(), "--data-dir"])
        .arg(dir.path().join("d"))
        .env("AROUTER_MASTER_KEY", arouter_e2e::MASTER_KEY)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    if let Ok(runtime) = std::env::var("AROUTER_RUNTIME") {
        cmd.args(["--runtime", &runtime]);
    }
    let mut second = cmd.spawn().expect("spawn arouter");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second gateway kept running on {}", first.addr);
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {}", first.addr)) && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(first.alive());
    assert_eq!(first.get("/healthz", "").status, 200);
}
