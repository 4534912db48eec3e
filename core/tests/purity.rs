//! The core stays sans-IO: no clock, no sockets, no threads, no async
//! runtime, in its source or in its dependency tree.

use std::path::Path;
use std::process::Command;

fn sources(dir: &Path, out: &mut Vec<(String, String)>) {
    for entry in std::fs::read_dir(dir).expect("read core/src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).expect("read source");
            out.push((path.display().to_string(), text));
        }
    }
}

#[test]
fn no_clock_io_or_threads_in_core_source() {
    let mut files = Vec::new();
    sources(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    assert!(files.len() > 5);
    let forbidden = [
        "Instant::now",
        "SystemTime::now",
        "std::thread",
        "std::net",
        "std::fs",
        "std::process",
        "tokio",
        "smol",
        "glommio",
        "async fn",
        ".await",
    ];
    for (path, text) in &files {
        for word in forbidden {
            assert!(
                !text.contains(word),
                "{path} uses `{word}`; the core must stay sans-IO"
            );
        }
    }
}

#[test]
fn no_runtime_in_core_dependency_tree() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "-p",
            "arouter-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(tree.contains("httparse"), "unexpected tree:\n{tree}");
    for runtime in [
        "tokio",
        "smol",
        "async-io",
        "glommio",
        "async-std",
        "mio",
        "futures",
        "socket2",
        "rustls",
    ] {
        assert!(
            !tree
                .lines()
                .any(|l| l.split_whitespace().next() == Some(runtime)),
            "arouter-core depends on {runtime}:\n{tree}"
        );
    }
}
