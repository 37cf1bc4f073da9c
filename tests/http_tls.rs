//! The REST client over TLS: HTTP/2 when the server offers it through
//! ALPN (one multiplexed connection for many requests), HTTP/1.1 when it
//! does not, and a typed error for a certificate it does not trust.
//!
//! The server is a small hyper server behind tokio-rustls with a
//! certificate made for the test (rcgen); the sim speaks plain HTTP/1.1.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use shardbus::http::{Client, HttpError};
use shardbus::model::ChannelId;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the server saw: connections accepted, and each request's version
/// and `Authorization` header.
#[derive(Default)]
struct Seen {
    connections: AtomicUsize,
    requests: Mutex<Vec<(Version, String)>>,
}

/// A TLS server on 127.0.0.1 for `localhost`, offering `alpn`, answering
/// `GET /api/v10/users/@me` with a bot user
/// and `GET /api/v10/channels/{id}` with a text channel. Returns its port,
/// the certificate to trust, and what it saw.
async fn tls_server(alpn: &[&[u8]]) -> (u16, CertificateDer<'static>, Arc<Seen>) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let der = cert.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![der.clone()], key)
    .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let server_seen = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            server_seen.connections.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let seen = server_seen.clone();
            tokio::spawn(async move {
                // A handshake the client abandons (an untrusted
                // certificate) ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let authorization = request
                            .headers()
                            .get(http::header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned();
                        seen.requests
                            .lock()
                            .unwrap()
                            .push((request.version(), authorization));
                        let path = request.uri().path();
                        let (status, body) = if path == "/api/v10/users/@me" {
                            (
                                200,
                                r#"{"id":"42","username":"tls","discriminator":"0","bot":true}"#
                                    .to_owned(),
                            )
                        } else if let Some(id) = path.strip_prefix("/api/v10/channels/") {
                            (200, format!(r#"{{"id":"{id}","type":0}}"#))
                        } else {
                            (404, r#"{"message":"404: Not Found","code":0}"#.to_owned())
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header(http::header::CONTENT_TYPE, "application/json")
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    }
                });
                let io = TokioIo::new(tls);
                if h2 {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    (port, der, seen)
}

/// A client for the server on `port` that trusts `cert`.
fn client(port: u16, cert: CertificateDer<'static>) -> Client {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Client::new("tls.test.token")
        .unwrap()
        .tls_config(tls)
        .api_base(format!("https://localhost:{port}/api/v10"))
}

#[tokio::test]
async fn http2_is_negotiated_and_one_connection_carries_every_request() {
    let (port, cert, seen) = tls_server(&[b"h2", b"http/1.1"]).await;
    let http = client(port, cert);
    let me = http.current_user().await.unwrap();
    assert_eq!((me.id.0, me.username.as_str(), me.bot), (42, "tls", true));
    // Twenty at once, each of its own route and major parameter so the
    // limiter sends them together: HTTP/2 multiplexes them on the
    // connection the first request opened, where HTTP/1.1 would open one
    // per request in flight.
    let concurrent =
        futures::future::join_all((0..20).map(|i| http.channel(ChannelId(100 + i)))).await;
    assert!(concurrent.iter().all(Result::is_ok));
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 21);
    assert!(
        requests.iter().all(|(v, _)| *v == Version::HTTP_2),
        "{requests:?}"
    );
    assert!(requests.iter().all(|(_, a)| a == "Bot tls.test.token"));
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_server_without_h2_gets_http1_over_tls() {
    let (port, cert, seen) = tls_server(&[b"http/1.1"]).await;
    let http = client(port, cert);
    for _ in 0..3 {
        http.current_user().await.unwrap();
    }
    let requests = seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    assert!(
        requests.iter().all(|(v, _)| *v == Version::HTTP_11),
        "{requests:?}"
    );
    // Sequential requests reuse the kept-alive connection.
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_transport_error_without_the_token() {
    let (port, _cert, seen) = tls_server(&[b"h2", b"http/1.1"]).await;
    // The default roots (webpki) do not hold the test certificate.
    let http = Client::new("tls.secret.token")
        .unwrap()
        .api_base(format!("https://localhost:{port}/api/v10"));
    let error = http.current_user().await.unwrap_err();
    assert!(
        matches!(error, HttpError::Transport { route, .. } if route == "GET /users/@me"),
        "{error:?}"
    );
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("tls.secret.token"), "{shown}");
    // The handshake failed, so no request reached the server.
    assert!(seen.requests.lock().unwrap().is_empty());
}
