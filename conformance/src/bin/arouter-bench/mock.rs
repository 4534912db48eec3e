//! The delayed and paced upstream.

use std::io;
use std::net::TcpListener;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::{Duration, Instant};

use smol::io::{AsyncReadExt, AsyncWriteExt};
use smol::{Async, LocalExecutor, Timer};

use crate::Flags;

struct Plan {
    delay: Duration,
    chunk_every: Duration,
    chunks: u64,
}

const COMPLETION: &str = r#"{"id":"chatcmpl-bench","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"fixed response from the bench mock"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":6,"total_tokens":15}}"#;
const CHUNK: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":" tok"},"finish_reason":null}]}"#;
const FINISH: &str = r#"data: {"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;

pub(crate) fn main(args: &[String]) -> Result<ExitCode, String> {
    let flags = Flags::parse(args, &["listen", "delay-ms", "chunk-ms", "chunks"])?;
    let listen = flags.text("listen").ok_or("mock needs --listen ADDR")?;
    let plan = Rc::new(Plan {
        delay: Duration::from_millis(flags.number("delay-ms", 20)?),
        chunk_every: Duration::from_millis(flags.number("chunk-ms", 20)?),
        chunks: flags.number("chunks", 100)?,
    });
    let listener = TcpListener::bind(listen).map_err(|e| format!("bind {listen}: {e}"))?;
    let listener = Async::new(listener).map_err(|e| e.to_string())?;
    println!("mock listening on http://{listen}");
    let ex = LocalExecutor::new();
    smol::block_on(ex.run(async {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let plan = plan.clone();
                    ex.spawn(async move {
                        let _ = serve(stream, &plan).await;
                    })
                    .detach();
                }
                // Out of descriptors: back off instead of spinning.
                Err(_) => {
                    Timer::after(Duration::from_millis(10)).await;
                }
            }
        }
    }))
}

/// One keep-alive connection: requests in, answers out, until the peer
/// closes.
async fn serve(mut stream: Async<std::net::TcpStream>, plan: &Plan) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let (used, wants_stream) = loop {
            if let Some(request) = complete_request(&buf)? {
                break request;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        buf.drain(..used);
        if wants_stream {
            stream_answer(&mut stream, plan).await?;
        } else {
            Timer::after(plan.delay).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                COMPLETION.len()
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(COMPLETION.as_bytes()).await?;
        }
    }
}

/// If `buf` holds a whole request: its length and whether it asks for a
/// stream.
fn complete_request(buf: &[u8]) -> io::Result<Option<(usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
    };
    let length = request
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .and_then(|h| {
            std::str::from_utf8(h.value)
                .ok()?
                .trim()
                .parse::<usize>()
                .ok()
        })
        .unwrap_or(0);
    if buf.len() < head + length {
        return Ok(None);
    }
    let body = &buf[head..head + length];
    let wants_stream = memchr::memmem::find(body, b"\"stream\":true").is_some();
    Ok(Some((head + length, wants_stream)))
}

/// A chunked SSE answer: `chunks` content events on a fixed grid (so a
/// late tick does not push the later ones back), then finish, usage, [DONE].
async fn stream_answer(stream: &mut Async<std::net::TcpStream>, plan: &Plan) -> io::Result<()> {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n")
        .await?;
    let start = Instant::now();
    let mut frame = Vec::with_capacity(512);
    for i in 1..=plan.chunks {
        Timer::at(start + plan.chunk_every * i as u32).await;
        frame.clear();
        chunk(&mut frame, CHUNK);
        stream.write_all(&frame).await?;
    }
    frame.clear();
    chunk(&mut frame, FINISH);
    let usage = format!(
        r#"data: {{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-mini","choices":[],"usage":{{"prompt_tokens":9,"completion_tokens":{},"total_tokens":{}}}}}"#,
        plan.chunks,
        plan.chunks + 9
    );
    chunk(&mut frame, &usage);
    chunk(&mut frame, "data: [DONE]");
    frame.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&frame).await
}

/// One SSE event as one HTTP chunk.
fn chunk(out: &mut Vec<u8>, event: &str) {
    let len = event.len() + 2;
    out.extend_from_slice(format!("{len:x}\r\n").as_bytes());
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\n\n\r\n");
}
