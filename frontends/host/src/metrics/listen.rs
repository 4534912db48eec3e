//! `--metrics-listen`: `/metrics` on an address of its own, without a key,
//! for a scraper on a private network. One plain thread, off the serving
//! threads: a scrape every few seconds needs no event loop, and a slow
//! scraper only delays the next scrape (each read and write is bounded).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use crate::Host;

/// A request head larger than this is refused.
const MAX_HEAD: usize = 8 * 1024;
/// Each read and write of a scrape is bounded by this.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// `--metrics-listen` could not be served.
#[derive(Debug)]
pub struct ListenError {
    pub addr: String,
    pub source: std::io::Error,
}

impl std::fmt::Display for ListenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot serve metrics on {}: {}", self.addr, self.source)
    }
}

impl std::error::Error for ListenError {}

/// Binds `addr` and serves `/metrics` there from a thread of its own;
/// returns the bound address (`addr` may ask for any port).
pub fn spawn(addr: &str, host: Arc<Host>) -> Result<SocketAddr, ListenError> {
    let failed = |source| ListenError {
        addr: addr.to_owned(),
        source,
    };
    let listener = TcpListener::bind(addr).map_err(failed)?;
    let bound = listener.local_addr().map_err(failed)?;
    std::thread::Builder::new()
        .name("arouter-metrics".into())
        .spawn(move || {
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        if let Err(e) = answer(stream, &host) {
                            log::debug!("metrics scrape failed: {e}");
                        }
                    }
                    Err(e) => {
                        log::warn!("metrics listener: accept failed: {e}");
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            }
        })
        .map_err(failed)?;
    Ok(bound)
}

/// Reads one request head and answers it; the connection then closes.
fn answer(mut stream: TcpStream, host: &Host) -> std::io::Result<()> {
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
        if head.len() > MAX_HEAD {
            let status = "431 Request Header Fields Too Large";
            return respond(&mut stream, status, "", "", false);
        }
    }
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next().unwrap_or_default(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    match (method, path) {
        (b"GET" | b"HEAD", Some(b"/metrics")) => {
            let body = host.metrics_text();
            respond(&mut stream, "200 OK", "", &body, method == b"HEAD")
        }
        (_, Some(b"/metrics")) => {
            let allow = "Allow: GET, HEAD\r\n";
            respond(&mut stream, "405 Method Not Allowed", allow, "", false)
        }
        _ => respond(&mut stream, "404 Not Found", "", "", false),
    }
}

/// `extra` is more header lines, each ending in CRLF.
fn respond(
    stream: &mut TcpStream,
    status: &str,
    extra: &str,
    body: &str,
    head_only: bool,
) -> std::io::Result<()> {
    let content_type = arouter_core::manage::METRICS_CONTENT_TYPE;
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()
}
