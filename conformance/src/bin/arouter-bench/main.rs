//! `arouter-bench`: the load-side pieces the shared nginx rig cannot play.
//!
//! - `mock`: an OpenAI-compatible upstream that waits before answering
//!   (the "On the Bench" 20 ms mock) and paces its streams (a chunk every
//!   N ms), on one thread, so it holds thousands of open streams.
//! - `streams`: a load client that holds N concurrent SSE streams through
//!   a gateway and reports the longest stall between chunks any client saw.
//!
//! Benchmark tooling only (README.md, "Benchmark"); tests never use it.

mod mock;
mod streams;

use std::process::ExitCode;

const USAGE: &str = "\
usage: arouter-bench mock --listen ADDR [--delay-ms 20] [--chunk-ms 20] [--chunks 100]
       arouter-bench streams --url URL --key KEY [--streams 500] [--ramp-per-sec 2000]
                             [--model openai/gpt-4o-mini] [--pace-ms 20]

mock      POST */chat/completions: a body with \"stream\":true gets an SSE stream of
          --chunks content chunks, one every --chunk-ms, then usage and [DONE];
          any other body gets one chat.completion after --delay-ms. Keep-alive.
streams   opens --streams connections (round-robin over a comma-separated --url list) (--ramp-per-sec new ones a second), each
          one streaming chat request; reports completed streams, errors, and the
          longest gap between two reads of one stream (limit: 10 x --pace-ms).";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("mock") => mock::main(&args[1..]),
        Some("streams") => streams::main(&args[1..]),
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

/// `--name value` pairs into a lookup; unknown names are errors.
pub(crate) struct Flags(Vec<(String, String)>);

impl Flags {
    pub(crate) fn parse(args: &[String], known: &[&str]) -> Result<Flags, String> {
        let mut pairs = Vec::new();
        let mut it = args.iter();
        while let Some(name) = it.next() {
            let bare = name.trim_start_matches("--");
            if !name.starts_with("--") || !known.contains(&bare) {
                return Err(format!("unknown argument {name}\n{USAGE}"));
            }
            let value = it.next().ok_or(format!("{name} needs a value"))?;
            pairs.push((bare.to_string(), value.clone()));
        }
        Ok(Flags(pairs))
    }

    pub(crate) fn text(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        self.text(name).map_or(Ok(default), |v| {
            v.parse().map_err(|e| format!("--{name} {v}: {e}"))
        })
    }
}
