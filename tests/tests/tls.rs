//! Providers behind TLS: the gateway's rustls client against a local TLS
//! server whose certificate a test CA signed, trusted through the
//! provider's `ca_file`. The TLS server terminates in front of the replay
//! upstream, so the answer is a recorded one.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use arouter_conformance::{spawn, ReplayConfig};
use arouter_e2e::{Options, Server, MASTER_KEY};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{json, Value};

struct Pki {
    ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "ARouter test CA");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let server_key = rcgen::KeyPair::generate().expect("server key");
    let server_params =
        rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("server params");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .expect("server cert");
    Pki {
        ca_pem: ca_cert.pem(),
        server_cert: server_cert.der().clone(),
        server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
    }
}

/// Accepts TLS on a loopback port and relays each connection, decrypted,
/// to `backend`. Returns the port.
fn tls_terminator(pki: &Pki, backend: std::net::SocketAddr) -> u16 {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![pki.server_cert.clone()], pki.server_key.clone_key())
        .expect("server config");
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || relay(tcp, config, backend));
        }
    });
    port
}

fn relay(tcp: TcpStream, config: Arc<rustls::ServerConfig>, backend: std::net::SocketAddr) {
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let _ = tcp.set_read_timeout(Some(Duration::from_millis(5)));
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let Ok(mut plain) = TcpStream::connect(backend) else {
        return;
    };
    let _ = plain.set_read_timeout(Some(Duration::from_millis(5)));
    let mut buf = [0u8; 16 * 1024];
    let idle_limit = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < idle_limit {
        match tls.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if plain.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
        match plain.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if tls.write_all(&buf[..n]).is_err() || tls.flush().is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn chat(server: &Server, body: &Value) -> arouter_e2e::Response {
    let body = serde_json::to_vec(body).unwrap();
    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {MASTER_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    server.request(&raw)
}

#[test]
fn an_https_provider_is_reached_over_tls_with_a_configured_ca() {
    let replay = spawn(ReplayConfig::default());
    let pki = pki();
    let port = tls_terminator(&pki, replay.addr);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let server = Server::start_with(Options {
        env: vec![("SECURE_KEY".into(), "sk-tls-provider".into())],
        config_toml: Some(format!(
            "[providers.secure]\nkind = \"openai\"\nbase_url = \"https://localhost:{port}/v1\"\napi_key_env = \"SECURE_KEY\"\nca_file = \"{}\"\n",
            ca.display()
        )),
    });
    let t = replay
        .transcript("openai/chat_nonstream_user_id.json")
        .unwrap();
    let mut body = t.request.body.clone();
    body["model"] = json!(format!("secure/{}", body["model"].as_str().unwrap()));
    let r = chat(&server, &body);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.json()["model"].as_str().unwrap().starts_with("secure/"));
    let seen = replay.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers.get("authorization").map(String::as_str),
        Some("Bearer sk-tls-provider")
    );
    assert_eq!(
        seen[0].headers.get("host").map(String::as_str),
        Some(&*format!("localhost:{port}"))
    );
}

#[test]
fn an_untrusted_certificate_is_a_502_not_a_silent_success() {
    let replay = spawn(ReplayConfig::default());
    let pki = pki();
    let port = tls_terminator(&pki, replay.addr);
    let server = Server::start_with(Options {
        env: vec![("SECURE_KEY".into(), "sk-tls-provider".into())],
        config_toml: Some(format!(
            "[providers.secure]\nkind = \"openai\"\nbase_url = \"https://localhost:{port}/v1\"\napi_key_env = \"SECURE_KEY\"\n"
        )),
    });
    let r = chat(
        &server,
        &json!({"model": "secure/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    );
    assert_eq!(r.status, 502, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        replay.requests().is_empty(),
        "nothing may pass an untrusted certificate"
    );
}
