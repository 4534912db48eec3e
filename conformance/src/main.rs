//! `arouter-replay`: the replay upstream server as a process.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use arouter_conformance::{default_transcript_dirs, try_spawn, ReplayConfig};

const USAGE: &str = "\
usage: arouter-replay [--transcripts DIR]... [--listen ADDR] [--addr-file PATH]
                      [--chunk-delay-ms N] [--verbose]

  --transcripts DIR    load every *.json under DIR (recursively); repeatable.
                       Default: <repo>/conformance/transcripts
  --listen ADDR        address to bind (default 127.0.0.1:0 = a free port)
  --addr-file PATH     write the bound HOST:PORT to PATH once listening
  --chunk-delay-ms N   pause between streamed events (default 2)
  -v, --verbose        log every request to stderr (misses are always logged)

On start prints `listening on http://HOST:PORT` to stdout.
Control API under /_replay/ (see conformance/README.md).";

struct Args {
    config: ReplayConfig,
    addr_file: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut config = ReplayConfig::default();
    let mut dirs = Vec::new();
    let mut addr_file = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{what} needs a value"))
        };
        match name.as_str() {
            "--transcripts" => dirs.push(PathBuf::from(value("--transcripts")?)),
            "--listen" => {
                let v = value("--listen")?;
                config.listen = v
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--addr-file" => addr_file = Some(PathBuf::from(value("--addr-file")?)),
            "--chunk-delay-ms" => {
                let v = value("--chunk-delay-ms")?;
                let ms: u64 = v
                    .parse()
                    .map_err(|e| format!("--chunk-delay-ms {v}: {e}"))?;
                config.chunk_delay = Duration::from_millis(ms);
            }
            "-v" | "--verbose" => config.verbose = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    config.transcript_dirs = if dirs.is_empty() {
        default_transcript_dirs()
    } else {
        dirs
    };
    Ok(Args { config, addr_file })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("arouter-replay: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let handle = match try_spawn(args.config.clone()) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("arouter-replay: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "arouter-replay: {} transcripts from {}",
        handle.transcripts().len(),
        args.config
            .transcript_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(path) = &args.addr_file {
        // Write then rename, so a reader never sees a partial address.
        let tmp = path.with_extension("tmp");
        let res = std::fs::write(&tmp, handle.addr.to_string())
            .and_then(|()| std::fs::rename(&tmp, path));
        if let Err(e) = res {
            eprintln!("arouter-replay: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on {}", handle.url());
    let _ = out.flush();
    drop(out);
    loop {
        std::thread::park();
    }
}
