//! Harness for end-to-end tests: starts the real `arouter` binary on a free
//! loopback port with a fresh data directory, and speaks raw HTTP/1.1 to it
//! so malformed input can be sent byte for byte.
//!
//! The binary is `$AROUTER_BIN`, else `target/debug/arouter` of this
//! workspace (the test script builds it first). `$AROUTER_RUNTIME` picks the
//! frontend (`smol` by default) so one suite covers every frontend.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MASTER_KEY: &str = "sk-test-master-0123456789";

/// The header line that authenticates as the master key.
pub fn master_bearer() -> String {
    format!("Authorization: Bearer {MASTER_KEY}\r\n")
}

pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: tempfile::TempDir,
    stderr_path: PathBuf,
}

/// Extra settings for one server.
#[derive(Default, Clone)]
pub struct Options {
    pub env: Vec<(String, String)>,
    pub config_toml: Option<String>,
}

/// The `arouter` binary under test.
pub fn binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("AROUTER_BIN") {
        return PathBuf::from(bin);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("debug/arouter")
}

/// Clears the settings a developer's environment could pass to a gateway
/// under test (providers, config file, listen address, data dir).
pub fn without_settings_from_env(cmd: &mut Command) {
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "AROUTER_CONFIG",
        "AROUTER_DEFAULT_MODEL",
        "AROUTER_LISTEN",
        "AROUTER_DATA_DIR",
    ] {
        cmd.env_remove(var);
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Server {
    pub fn start() -> Server {
        Server::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Server {
        Server::start_in(opts, tempfile::tempdir().expect("tempdir"))
    }

    /// A server whose store is `data_dir/data`, which may be prepared
    /// beforehand (by `arouter keys`, say).
    pub fn start_in(opts: Options, data_dir: tempfile::TempDir) -> Server {
        let bin = binary();
        assert!(
            bin.exists(),
            "{} not found: build it first (`cargo build --bins`) or set AROUTER_BIN",
            bin.display()
        );
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let stderr_path = data_dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--data-dir")
            .arg(data_dir.path().join("data"));
        if let Ok(runtime) = std::env::var("AROUTER_RUNTIME") {
            cmd.arg("--runtime").arg(runtime);
        }
        if let Some(toml) = &opts.config_toml {
            let path = data_dir.path().join("arouter.toml");
            std::fs::write(&path, toml).expect("write config");
            cmd.arg("--config").arg(path);
        }
        without_settings_from_env(&mut cmd);
        cmd.env("AROUTER_MASTER_KEY", MASTER_KEY)
            .env("OPENAI_API_KEY", "sk-upstream-not-used")
            .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
            .env("RUST_LOG", "debug");
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn arouter");
        let mut server = Server {
            child: Some(child),
            addr,
            data_dir,
            stderr_path,
        };
        server.wait_ready();
        if let Ok(runtime) = std::env::var("AROUTER_RUNTIME") {
            // The suite is run once per runtime: make sure it is the one asked for.
            let log = server.stderr();
            assert!(
                log.contains(&format!("runtime: {runtime} (--runtime {runtime})")),
                "not served by the {runtime} runtime:\n{log}"
            );
        }
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("arouter exited early ({status}):\n{}", self.stderr());
                }
            }
            if let Ok(resp) =
                self.try_request(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            {
                if resp.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("arouter did not become ready:\n{}", self.stderr());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s
    }

    fn try_request(&self, raw: &[u8]) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(raw)?;
        read_response(&mut s)
    }

    /// Sends raw bytes on a new connection and reads one response.
    pub fn request(&self, raw: &[u8]) -> Response {
        self.try_request(raw)
            .unwrap_or_else(|e| panic!("request failed: {e}\n{}", self.stderr()))
    }

    /// A GET with the given extra header lines (each ending in CRLF).
    pub fn get(&self, target: &str, headers: &str) -> Response {
        self.try_get(target, headers)
            .unwrap_or_else(|e| panic!("request failed: {e}\n{}", self.stderr()))
    }

    /// [`Server::get`], with a refused or reset connection as an error
    /// (a gateway at its connection cap closes new ones at once).
    pub fn try_get(&self, target: &str, headers: &str) -> std::io::Result<Response> {
        self.try_request(
            format!("GET {target} HTTP/1.1\r\nHost: t\r\n{headers}Connection: close\r\n\r\n")
                .as_bytes(),
        )
    }

    /// A POST of a JSON body with the given extra header lines (each ending
    /// in CRLF; credentials included, so a test can send none or wrong ones).
    pub fn post_json(&self, path: &str, headers: &str, body: &serde_json::Value) -> Response {
        let body = serde_json::to_vec(body).expect("a Value serializes");
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nHost: t\r\n{headers}Content-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        self.request(&raw)
    }

    /// A request with a bearer key and an optional JSON body, on a
    /// connection of its own.
    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&serde_json::Value>,
    ) -> Response {
        let body = body
            .map(|b| serde_json::to_vec(b).expect("a Value serializes"))
            .unwrap_or_default();
        let mut raw = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(&body);
        self.request(&raw)
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The process id, while it runs (for `/proc/PID/...`).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// Reads one response (Content-Length or close-delimited; chunked decoded).
/// Bytes after it are lost: use `Reader` for several responses on one
/// connection.
pub fn read_response(s: &mut impl Read) -> std::io::Result<Response> {
    Reader::new(s).next_response()
}

/// Reads consecutive responses from one connection, keeping bytes that
/// arrive early for the next one (pipelining).
pub struct Reader<R> {
    inner: R,
    buf: Vec<u8>,
}

impl<R: Read> Reader<R> {
    pub fn new(inner: R) -> Reader<R> {
        Reader {
            inner,
            buf: Vec::new(),
        }
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = self.inner.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    pub fn next_response(&mut self) -> std::io::Result<Response> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Response::new(&mut headers);
            let Ok(httparse::Status::Complete(len)) = parsed.parse(&self.buf) else {
                if self.fill()? == 0 {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!(
                            "connection closed before a response; got {:?}",
                            String::from_utf8_lossy(&self.buf)
                        ),
                    ));
                }
                continue;
            };
            let status = parsed.code.unwrap_or(0);
            let headers: Vec<(String, String)> = parsed
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            self.buf.drain(..len);
            if (100..200).contains(&status) {
                continue;
            }
            let find = |name: &str| {
                headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let body = if let Some(cl) = find("content-length") {
                let cl: usize = cl.trim().parse().unwrap_or(0);
                while self.buf.len() < cl {
                    if self.fill()? == 0 {
                        break;
                    }
                }
                let take = cl.min(self.buf.len());
                self.buf.drain(..take).collect()
            } else if find("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                loop {
                    if let Some((body, used)) = dechunk(&self.buf) {
                        self.buf.drain(..used);
                        break body;
                    }
                    if self.fill()? == 0 {
                        let body = dechunk_partial(&self.buf);
                        self.buf.clear();
                        break body;
                    }
                }
            } else {
                while self.fill()? > 0 {}
                std::mem::take(&mut self.buf)
            };
            return Ok(Response {
                status,
                headers,
                body,
            });
        }
    }
}

/// Decodes a complete chunked body: `(body, bytes used)`, or `None` if
/// the terminating chunk has not arrived yet.
fn dechunk(data: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let line_end = data[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
        let size_line = String::from_utf8_lossy(&data[pos..line_end]);
        let size =
            usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).ok()?;
        pos = line_end + 2;
        if size == 0 {
            // Skip trailers up to the blank line.
            let end = data[pos..].windows(2).position(|w| w == b"\r\n")? + pos;
            return Some((out, end + 2));
        }
        if data.len() < pos + size + 2 {
            return None;
        }
        out.extend_from_slice(&data[pos..pos + size]);
        pos += size + 2;
    }
}

/// What a cut-off chunked body delivered before the cut.
fn dechunk_partial(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size_line = String::from_utf8_lossy(&data[..pos]);
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .unwrap_or(0);
        data = &data[pos + 2..];
        if size == 0 || data.len() < size {
            break;
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
    out
}

/// Reads until the peer closes or `timeout` passes; true if it closed.
pub fn closed_within(s: &mut TcpStream, timeout: Duration) -> bool {
    let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    let deadline = Instant::now() + timeout;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match s.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

impl Server {
    /// The rows of `query` over the server's store once it returns at least
    /// `n` (the recorder writes in the background), each as its columns
    /// joined by `, `. Read with Python's sqlite3, as the Python tests do.
    pub fn wait_for_rows(&self, query: &str, n: usize) -> Vec<String> {
        let db = self.data_dir.path().join("data/arouter.sqlite3");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let out = Command::new("python3")
                .arg("-c")
                .arg(
                    "import sqlite3,sys\n\
                     try:\n    rows=sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall()\n\
                     except sqlite3.OperationalError:\n    rows=[]\n\
                     print('\\n'.join(', '.join(map(str, r)) for r in rows))",
                )
                .arg(&db)
                .arg(query)
                .output()
                .expect("python3");
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let rows: Vec<String> = text.lines().map(str::to_owned).collect();
            if rows.len() >= n && !text.is_empty() {
                return rows;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} rows for {query}",
                rows.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
