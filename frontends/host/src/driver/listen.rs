//! The listening sockets of the serving threads. On Linux each thread gets
//! its own socket on the shared port (`SO_REUSEPORT`), so the kernel
//! spreads new connections over the threads by their addresses. With one
//! socket shared by all threads, whichever thread was awake took them: in
//! half of the measured c=64 runs on 2 cores, all 64 keep-alive
//! connections landed on one thread of two and stayed there. Elsewhere
//! (where `SO_REUSEPORT` does not balance) all threads share one socket.

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

/// The sockets listening on `listen` (`host:port`) for `threads` serving
/// threads: one each where the kernel balances `SO_REUSEPORT`, otherwise
/// one for all. Port 0 picks one free port for all of them. Each address
/// the name resolves to is tried in turn, as `TcpListener::bind` does
/// (`localhost` may give `::1` first on a host without IPv6).
pub fn listeners(listen: &str, threads: usize) -> io::Result<Vec<TcpListener>> {
    let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
    for addr in listen.to_socket_addrs()? {
        match bind(addr, threads) {
            Ok(listeners) => return Ok(listeners),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// `threads` sockets bound to `addr` with `SO_REUSEPORT`. A plain bind
/// first: any process may join a port whose sockets all have the option
/// (and the same owner), so without it a second gateway started on a busy
/// port would not fail but silently take part of its connections. (Two
/// gateways started within the same few microseconds could still both
/// pass it, and a port 0 pick could be taken in that gap by another
/// process; the second bind then fails.)
#[cfg(target_os = "linux")]
fn bind(addr: SocketAddr, threads: usize) -> io::Result<Vec<TcpListener>> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = TcpListener::bind(addr)?.local_addr()?;
    let mut listeners: Vec<TcpListener> = Vec::with_capacity(threads.max(1));
    for _ in 0..threads.max(1) {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.set_reuse_port(true)?;
        socket.bind(&addr.into())?;
        socket.listen(1024)?;
        listeners.push(socket.into());
    }
    Ok(listeners)
}

/// One socket for all threads.
#[cfg(not(target_os = "linux"))]
fn bind(addr: SocketAddr, _threads: usize) -> io::Result<Vec<TcpListener>> {
    TcpListener::bind(addr).map(|listener| vec![listener])
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::net::TcpStream;

    #[test]
    fn each_thread_gets_a_socket_on_one_port_and_connections_reach_both() {
        let listeners = listeners("127.0.0.1:0", 2).unwrap();
        assert_eq!(listeners.len(), 2);
        let port = listeners[0].local_addr().unwrap().port();
        assert_eq!(listeners[1].local_addr().unwrap().port(), port);
        // The kernel picks a socket by hashing each connection's
        // addresses: 64 connections all on one of two sockets has a
        // chance of 2^-63.
        let clients: Vec<TcpStream> = (0..64)
            .map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap())
            .collect();
        // Accepted until all have arrived (a handshake's last step may
        // still be on its way when `connect` returns), or 10 s.
        let mut accepted = [0; 2];
        for listener in &listeners {
            listener.set_nonblocking(true).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while accepted[0] + accepted[1] < clients.len() && std::time::Instant::now() < deadline {
            for (n, listener) in accepted.iter_mut().zip(&listeners) {
                while listener.accept().is_ok() {
                    *n += 1;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(accepted[0] + accepted[1], clients.len());
        assert!(accepted[0] > 0 && accepted[1] > 0, "{accepted:?}");
    }

    #[test]
    fn a_port_in_use_is_refused_even_by_a_second_gateway() {
        let first = listeners("127.0.0.1:0", 2).unwrap();
        let port = first[0].local_addr().unwrap().port();
        let second = listeners(&format!("127.0.0.1:{port}"), 2);
        assert_eq!(second.unwrap_err().kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn an_address_without_a_port_is_an_error() {
        assert!(listeners("127.0.0.1", 1).is_err());
    }
}
