//! Connecting to a provider never stops the gateway from watching the
//! client: one that leaves while the connect is still in progress is
//! noticed at once (its call ends as cancelled and its connection slot is
//! freed), not when the connect timeout runs out.

use std::io::{ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use arouter_e2e::{Options, Server, MASTER_KEY};

/// A loopback listener whose accept queue is full: a new connect to it
/// gets no answer (the kernel drops its SYNs) until the caller gives up.
struct Blackhole {
    listener: TcpListener,
    _queued: Vec<TcpStream>,
}

fn blackhole() -> Blackhole {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    // SAFETY: `listen` on a socket we own only changes its backlog.
    let rc = unsafe { libc::listen(listener.as_raw_fd(), 0) };
    assert_eq!(rc, 0, "listen(0)");
    let addr = listener.local_addr().unwrap();
    // With a backlog of 0 the queue holds one connection; a few more make
    // sure it is full whatever the kernel's rounding.
    let queued = (0..4)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    Blackhole {
        listener,
        _queued: queued,
    }
}

#[test]
fn a_client_leaving_during_the_upstream_connect_is_noticed_at_once() {
    let hole = blackhole();
    let port = hole.listener.local_addr().unwrap().port();
    // Only the one client connection fits: the next request is served
    // only once the gateway has let the departed one go.
    let server = Server::start_with(Options {
        env: vec![
            (
                "OPENAI_BASE_URL".into(),
                format!("http://127.0.0.1:{port}/v1"),
            ),
            ("OPENAI_API_KEY".into(), "sk-provider".into()),
        ],
        config_toml: Some(
            "[limits]\nupstream_connect_timeout_ms = 30000\nmax_connections = 1\n".into(),
        ),
    });
    let body = br#"{"model":"openai/gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {MASTER_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The start-up probe's connection may still hold the one slot for a
    // moment: a refused connection is closed at once, so try again.
    let started = Instant::now();
    let client = loop {
        let mut client = server.connect();
        let sent = client
            .write_all(head.as_bytes())
            .and_then(|()| client.write_all(body));
        client
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let waiting = match sent.and_then(|()| client.peek(&mut [0u8; 1])) {
            Ok(0) => false,
            Ok(_) => panic!(
                "answered while the connect should hang:\n{}",
                server.stderr()
            ),
            Err(e) => matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        };
        if waiting {
            break client;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never admitted");
        std::thread::sleep(Duration::from_millis(50));
    };
    // The gateway is now connecting to the blackhole.
    std::thread::sleep(Duration::from_millis(100));
    let left = Instant::now();
    drop(client);

    let deadline = left + Duration::from_secs(3);
    let line = loop {
        let log = server.stderr();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains(" access]") && l.contains("/v1/chat/completions"))
        {
            break line.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the gateway did not notice the client leave during the connect:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(line.contains(" 499 "), "a cancelled call: {line}");
    // The connection slot is free again. The access line is written just
    // before the connection is let go, so a request racing it may still
    // find the one slot taken (and be closed at once): try until the bound.
    let health = loop {
        match server.try_get("/healthz", "") {
            Ok(health) => break health,
            Err(e) => assert!(
                left.elapsed() < Duration::from_secs(3),
                "the slot was not freed: {e}\n{}",
                server.stderr()
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(health.status, 200);
    assert!(
        left.elapsed() < Duration::from_secs(3),
        "noticed only after {:?}",
        left.elapsed()
    );
}
