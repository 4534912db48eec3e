//! Holds many SSE streams through a gateway and watches for stalls.

use std::cell::RefCell;
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, LocalExecutor, Timer};

use crate::Flags;

#[derive(Default)]
struct Tally {
    open: usize,
    peak_open: usize,
    done: usize,
    connect_errors: usize,
    bad_status: usize,
    cut_short: usize,
    /// Longest gap between two reads of one stream, per finished stream.
    stalls: Vec<Duration>,
}

pub(crate) fn main(args: &[String]) -> Result<ExitCode, String> {
    let flags = Flags::parse(
        args,
        &["url", "key", "streams", "ramp-per-sec", "model", "pace-ms"],
    )?;
    let urls = flags.text("url").ok_or("streams needs --url")?;
    let key = flags.text("key").ok_or("streams needs --key")?;
    // Several gateways (comma-separated URLs, same path) share the load
    // round-robin, as behind a balancer.
    let mut addrs = Vec::new();
    let mut path = String::new();
    for url in urls.split(',') {
        let (addr, p) = split_url(url)?;
        if !path.is_empty() && p != path {
            return Err(format!("{url}: every --url needs the same path ({path})"));
        }
        addrs.push(addr);
        path = p;
    }
    let host = addrs[0];
    let streams = flags.number("streams", 500)? as usize;
    let ramp = flags.number("ramp-per-sec", 2000)?.max(1);
    let pace = Duration::from_millis(flags.number("pace-ms", 20)?);
    let model = flags.text("model").unwrap_or("openai/gpt-4o-mini");
    let body = format!(
        r#"{{"model":"{model}","stream":true,"messages":[{{"role":"user","content":"Say hello"}}]}}"#
    );
    let request: Rc<[u8]> = format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\nauthorization: Bearer {key}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
    .into();
    let tally = Rc::new(RefCell::new(Tally::default()));
    let ex = LocalExecutor::new();
    let started = Instant::now();
    smol::block_on(ex.run(async {
        let mut tasks = Vec::with_capacity(streams);
        let gap = Duration::from_secs(1) / ramp as u32;
        for i in 0..streams {
            Timer::at(started + gap * i as u32).await;
            let (request, tally) = (request.clone(), tally.clone());
            let addr = addrs[i % addrs.len()];
            tasks.push(ex.spawn(async move { one(addr, &request, &tally).await }));
        }
        for task in tasks {
            task.await;
        }
    }));
    let t = tally.borrow();
    let mut stalls = t.stalls.clone();
    stalls.sort();
    let at = |q: f64| {
        stalls
            .get(((stalls.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let worst = at(1.0);
    let errors = t.connect_errors + t.bad_status + t.cut_short;
    let limit = pace.as_secs_f64() * 1000.0 * 10.0;
    println!(
        "streams {streams}: completed {}, peak open {}, errors {errors} (connect {}, non-200 {}, cut short {}), {:.1} s",
        t.done, t.peak_open, t.connect_errors, t.bad_status, t.cut_short,
        started.elapsed().as_secs_f64()
    );
    println!(
        "longest gap between chunks: max {worst:.1} ms, p99 {:.1} ms, p50 {:.1} ms (of per-stream maxima; limit {limit:.0} ms = 10 x pace)",
        at(0.99),
        at(0.5)
    );
    let pass = errors == 0 && t.done == streams && worst <= limit;
    println!("{}", if pass { "PASS" } else { "FAIL" });
    Ok(if pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn split_url(url: &str) -> Result<(SocketAddr, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs (loopback benchmark)")?;
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let addr = host
        .parse()
        .map_err(|e| format!("{host}: {e} (use IP:PORT)"))?;
    Ok((addr, format!("/{path}")))
}

/// One stream: send, check the status, read to `[DONE]`, noting the
/// longest quiet spell between reads once the answer has started.
async fn one(addr: SocketAddr, request: &[u8], tally: &RefCell<Tally>) {
    let mut stream = match Async::<TcpStream>::connect(addr).await {
        Ok(s) => s,
        Err(_) => {
            tally.borrow_mut().connect_errors += 1;
            return;
        }
    };
    {
        let mut t = tally.borrow_mut();
        t.open += 1;
        t.peak_open = t.peak_open.max(t.open);
    }
    let outcome = read_stream(&mut stream, request).await;
    let mut t = tally.borrow_mut();
    t.open -= 1;
    match outcome {
        Outcome::Done(stall) => {
            t.done += 1;
            t.stalls.push(stall);
        }
        Outcome::BadStatus => t.bad_status += 1,
        Outcome::CutShort => t.cut_short += 1,
    }
}

enum Outcome {
    Done(Duration),
    BadStatus,
    CutShort,
}

async fn read_stream(stream: &mut Async<TcpStream>, request: &[u8]) -> Outcome {
    if stream.write_all(request).await.is_err() {
        return Outcome::CutShort;
    }
    let mut buf = vec![0u8; 16 * 1024];
    // The last bytes of the previous read, so a `[DONE]` split across two
    // reads is still seen.
    let mut tail: Vec<u8> = Vec::with_capacity(32);
    let mut last: Option<Instant> = None;
    let mut stall = Duration::ZERO;
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return Outcome::CutShort,
            Ok(n) => n,
        };
        let now = Instant::now();
        match last {
            None => {
                if !buf[..n].starts_with(b"HTTP/1.1 200") {
                    return Outcome::BadStatus;
                }
            }
            Some(previous) => stall = stall.max(now - previous),
        }
        last = Some(now);
        tail.extend_from_slice(&buf[..n.min(32)]);
        if memchr::memmem::find(&tail, b"[DONE]").is_some()
            || memchr::memmem::find(&buf[..n], b"[DONE]").is_some()
        {
            return Outcome::Done(stall);
        }
        tail.clear();
        tail.extend_from_slice(&buf[n.saturating_sub(8)..n]);
    }
}
