//! `wss://` with a certificate generated for the test.

use std::sync::Arc;

use rallypoint_protocol::Subprotocol;
use rallypoint_tests::{Connect, TestCert};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server;

#[tokio::test]
async fn wss_with_a_generated_certificate() {
    let cert = TestCert::generate();
    let s = server().tls(&cert).start();

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(cert.der.clone())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(s.game).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let mut c = Connect::new(&s)
        .protocol(Subprotocol::V1MsgPack.name())
        .header_token(&s.token("secure"))
        .connect_over(Box::new(tls))
        .await
        .unwrap();
    let w = c.expect_welcome().await;
    assert_eq!(w.protocol, "rallypoint.v1.msgpack");

    // Plain HTTP on the TLS port never reaches a session: the TLS layer refuses it.
    let mut tcp = tokio::net::TcpStream::connect(s.game).await.unwrap();
    tcp.write_all(b"GET /play HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tcp.read_to_end(&mut buf),
    )
    .await
    .expect("closed");
    assert!(
        !buf.starts_with(b"HTTP/1.1 101"),
        "plaintext got an upgrade"
    );
    assert!(
        s.metric("rallypoint_handshakes_total", "outcome=\"tls_error\"")
            .await
            >= 1.0
    );
}
