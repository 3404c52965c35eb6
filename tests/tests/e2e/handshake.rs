//! The `/play` handshake: subprotocols, token carriage and checks, Origin, timeouts and
//! per-IP limits. Each test asserts the HTTP status and JSON body a client receives.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use rallypoint_protocol::Subprotocol;
use rallypoint_tests::{Connect, Rejected, claims, fixture, now};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server;

const MSGPACK: &str = "rallypoint.v1.msgpack";
const JSON: &str = "rallypoint.v1.json";

fn assert_401(r: &Rejected, message: &str) {
    assert_eq!(r.status, 401, "{r:?}");
    let challenge = r
        .headers
        .iter()
        .find(|(n, _)| n == "www-authenticate")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    assert!(
        challenge.starts_with("Bearer") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert!(
        r.body["message"]
            .as_str()
            .unwrap_or("")
            .starts_with(message),
        "wanted `{message}`: {}",
        r.body
    );
}

#[tokio::test]
async fn each_subprotocol_is_accepted_and_echoed() {
    let s = server().start();
    for p in Subprotocol::ALL {
        let mut c = Connect::new(&s)
            .protocol(p.name())
            .header_token(&s.token("ana"))
            .connect()
            .await
            .unwrap();
        assert_eq!(c.protocol.as_deref(), Some(p.name()));
        let w = c.expect_welcome().await;
        assert_eq!(w.protocol, p.name());
        assert_eq!(w.tick_rate, 30);
    }
}

#[tokio::test]
async fn the_client_order_decides() {
    let s = server().start();
    let t = s.token("ana");
    for (offer, chosen) in [
        (vec![JSON, MSGPACK], JSON),
        (vec![MSGPACK, JSON], MSGPACK),
        (vec!["rallypoint.v9.cbor", "chat", JSON], JSON),
    ] {
        let mut c = Connect::new(&s).header_token(&t);
        for p in &offer {
            c = c.protocol(p);
        }
        let c = c.connect().await.unwrap();
        assert_eq!(c.protocol.as_deref(), Some(chosen), "offer {offer:?}");
    }
}

#[tokio::test]
async fn no_or_unsupported_subprotocol_is_400_with_the_list() {
    let s = server().start();
    let t = s.token("ana");
    for c in [
        Connect::new(&s).header_token(&t),
        Connect::new(&s)
            .header_token(&t)
            .protocol("rallypoint.v9.cbor"),
    ] {
        let r = c.connect().await.unwrap_err();
        assert_eq!(r.status, 400);
        assert_eq!(r.body["error"], "unsupported_subprotocol");
        assert_eq!(
            r.body["supported"],
            json!([MSGPACK, JSON, "rallypoint.v2.msgpack"])
        );
    }
}

#[tokio::test]
async fn every_token_carriage_works_and_bearer_is_never_echoed() {
    let s = server().start();
    let t = s.token("ana");
    let mut via_header = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&t)
        .connect()
        .await
        .unwrap();
    via_header.expect_welcome().await;
    let bearer = format!("bearer.{t}");
    let mut via_protocol = Connect::new(&s)
        .protocol(&bearer)
        .protocol(JSON)
        .connect()
        .await
        .unwrap();
    assert_eq!(via_protocol.protocol.as_deref(), Some(JSON));
    via_protocol.expect_welcome().await;
    let mut via_query = Connect::new(&s)
        .protocol(MSGPACK)
        .query(&format!("access_token={t}"))
        .connect()
        .await
        .unwrap();
    via_query.expect_welcome().await;
    // The header wins over the others: a bad header token is not rescued by a good query.
    let r = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token("x.y.z")
        .query(&format!("access_token={t}"))
        .connect()
        .await
        .unwrap_err();
    assert_eq!(r.status, 401);
}

#[tokio::test]
async fn bad_tokens_are_401_naming_the_check() {
    let s = server()
        .args(["--jwt-issuer", "https://auth.example"])
        .start();
    let good = || {
        let mut c = claims("ana");
        c["iss"] = json!("https://auth.example");
        c
    };
    let with = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = good();
        f(&mut c);
        s.token_with(&c)
    };
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing", None, "no token"),
        (
            "expired",
            Some(with(&|c| c["exp"] = json!(now() - 3600))),
            "expired",
        ),
        (
            "not yet valid",
            Some(with(&|c| c["nbf"] = json!(now() + 3600))),
            "not_yet_valid",
        ),
        (
            "wrong signature",
            Some(rallypoint_tests::sign_hs256(
                b"some other secret that is long enough!!",
                &good(),
            )),
            "bad_signature",
        ),
        (
            "wrong aud",
            Some(with(&|c| c["aud"] = json!("other-game"))),
            "wrong_audience",
        ),
        (
            "wrong iss",
            Some(with(&|c| c["iss"] = json!("https://evil.example"))),
            "wrong_issuer",
        ),
        (
            "missing iss",
            Some(with(&|c| {
                c.as_object_mut().unwrap().remove("iss");
            })),
            "missing_claim: iss",
        ),
        (
            "missing sub",
            Some(with(&|c| {
                c.as_object_mut().unwrap().remove("sub");
            })),
            "missing_claim: sub",
        ),
        (
            "missing exp",
            Some(with(&|c| {
                c.as_object_mut().unwrap().remove("exp");
            })),
            "missing_claim: exp",
        ),
        ("garbage", Some("not-a-jwt".into()), "malformed"),
    ];
    for (name, token, message) in cases {
        let mut c = Connect::new(&s).protocol(MSGPACK);
        if let Some(t) = &token {
            c = c.header_token(t);
        }
        let r = c.connect().await.unwrap_err();
        assert_401(&r, message);
        assert_eq!(
            r.body["error"],
            if token.is_some() {
                "invalid_token"
            } else {
                "missing_token"
            },
            "{name}"
        );
        if let Some(t) = &token {
            assert!(
                !r.body.to_string().contains(t.as_str()),
                "{name}: the token is echoed"
            );
        }
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[tokio::test]
async fn public_keys_by_kid_and_algorithm_confusion() {
    let ec = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let ed = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let dir = rallypoint_tests::TempDir::new("keys");
    std::fs::write(dir.join("ec.pem"), ec.public_key_pem()).unwrap();
    std::fs::write(dir.join("ed.pem"), ed.public_key_pem()).unwrap();
    let rsa_pub = fixture("rsa-public.pem");
    let s = server()
        .args([
            "--jwt-public-key",
            &format!("rsa-2025={}", rsa_pub.display()),
        ])
        .args([
            "--jwt-public-key",
            &format!("ec-1={}", dir.join("ec.pem").display()),
        ])
        .args([
            "--jwt-public-key",
            &format!("ed-1={}", dir.join("ed.pem").display()),
        ])
        .start();
    let sign = |alg: Algorithm, kid: Option<&str>, key: &EncodingKey| {
        let mut h = Header::new(alg);
        h.kid = kid.map(str::to_owned);
        jsonwebtoken::encode(&h, &claims("kid-user"), key).unwrap()
    };
    let rsa_key =
        EncodingKey::from_rsa_pem(&std::fs::read(fixture("rsa-private.pem")).unwrap()).unwrap();
    let ec_key = EncodingKey::from_ec_pem(ec.serialize_pem().as_bytes()).unwrap();
    let ed_key = EncodingKey::from_ed_pem(ed.serialize_pem().as_bytes()).unwrap();
    for (what, token) in [
        ("RS256", sign(Algorithm::RS256, Some("rsa-2025"), &rsa_key)),
        ("ES256", sign(Algorithm::ES256, Some("ec-1"), &ec_key)),
        ("EdDSA", sign(Algorithm::EdDSA, Some("ed-1"), &ed_key)),
        ("HS256 with the shared secret", s.token("kid-user")),
    ] {
        let mut c = Connect::new(&s)
            .protocol(MSGPACK)
            .header_token(&token)
            .connect()
            .await
            .unwrap_or_else(|r| panic!("{what}: {r:?}"));
        c.expect_welcome().await;
    }
    // A key is bound to its algorithm and its kid.
    let rejected = [
        (
            "unknown kid",
            sign(Algorithm::RS256, Some("rsa-2019"), &rsa_key),
            "unknown_kid",
        ),
        (
            "public-key token without kid",
            sign(Algorithm::RS256, None, &rsa_key),
            "unknown_kid",
        ),
        (
            "ES256 token under the RSA kid",
            sign(Algorithm::ES256, Some("rsa-2025"), &ec_key),
            "algorithm_not_allowed",
        ),
        (
            "HS256 signed with the RSA public key as secret",
            sign(
                Algorithm::HS256,
                Some("rsa-2025"),
                &EncodingKey::from_secret(&std::fs::read(&rsa_pub).unwrap()),
            ),
            "algorithm_not_allowed",
        ),
        (
            "the same without kid",
            sign(
                Algorithm::HS256,
                None,
                &EncodingKey::from_secret(&std::fs::read(&rsa_pub).unwrap()),
            ),
            "bad_signature",
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(r#"{"alg":"none","typ":"JWT"}"#),
                b64(&claims("x").to_string())
            ),
            "algorithm_not_allowed",
        ),
    ];
    for (what, token, message) in rejected {
        let r = Connect::new(&s)
            .protocol(MSGPACK)
            .header_token(&token)
            .connect()
            .await
            .unwrap_err();
        assert_eq!(r.status, 401, "{what}");
        assert_401(&r, message);
    }
}

#[tokio::test]
async fn foreign_origin_is_403() {
    let s = server()
        .args(["--allowed-origin", "https://play.example"])
        .start();
    let t = s.token("ana");
    let r = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&t)
        .header("Origin", "https://evil.example")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(r.status, 403);
    assert_eq!(r.body["error"], "origin_not_allowed");
    Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&t)
        .header("Origin", "https://play.example")
        .connect()
        .await
        .unwrap();
    // Native clients send no Origin.
    Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&t)
        .connect()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stalled_handshake_is_closed_within_the_timeout() {
    let s = server().args(["--handshake-timeout", "1s"]).start();
    let mut tcp = tokio::net::TcpStream::connect(s.game).await.unwrap();
    tcp.write_all(b"GET /play HTTP/1.1\r\n").await.unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut buf))
        .await
        .expect("closed in time")
        .unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed too early: {waited:?}"
    );
    let resp = rallypoint_tests::parse_http(&buf);
    assert_eq!(resp.status, 408);
    assert_eq!(resp.json()["error"], "handshake_timeout");
    assert!(
        s.metric(
            "rallypoint_handshakes_total",
            "outcome=\"handshake_timeout\""
        )
        .await
            >= 1.0
    );
}

#[tokio::test]
async fn a_handshake_flood_from_one_ip_gets_429() {
    let s = server().args(["--handshake-rate", "5/5"]).start();
    let t = s.token("flood");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = Connect::new(&s)
            .protocol(MSGPACK)
            .header_token(&t)
            .connect()
            .await;
        statuses.push(match r {
            Ok(_) => 101,
            Err(r) => {
                if r.status == 429 {
                    assert_eq!(r.body["error"], "too_many_handshakes");
                    let retry: u64 = r
                        .headers
                        .iter()
                        .find(|(n, _)| n == "retry-after")
                        .unwrap()
                        .1
                        .parse()
                        .unwrap();
                    assert!((1..=5).contains(&retry));
                }
                r.status
            }
        });
    }
    assert_eq!(
        statuses.iter().filter(|&&c| c == 101).count(),
        5,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().filter(|&&c| c == 429).count() >= 6,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn connection_caps_per_ip_and_global() {
    let s = server().args(["--max-connections-per-ip", "2"]).start();
    let _a = s.connect("a").await.unwrap();
    let _b = s.connect("b").await.unwrap();
    let r = s.connect("c").await.unwrap_err();
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (429, Some("too_many_connections"))
    );
    drop(_a);

    let s = server().args(["--max-connections", "2"]).start();
    let _a = s.connect("a").await.unwrap();
    let _b = s.connect("b").await.unwrap();
    let r = s.connect("c").await.unwrap_err();
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (503, Some("server_full"))
    );
    assert!(r.headers.iter().any(|(n, _)| n == "retry-after"));
}

#[tokio::test]
async fn malformed_upgrades_and_other_paths() {
    let s = server().start();
    let plain = rallypoint_tests::http(s.game, "GET /play HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(plain.status, 400);
    assert_eq!(plain.json()["error"], "bad_request");
    let v8 = rallypoint_tests::http(
        s.game,
        "GET /play HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await;
    assert_eq!(v8.status, 400);
    assert_eq!(v8.header("sec-websocket-version"), Some("13"));
    let missing = rallypoint_tests::http(s.game, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");
    let garbage = rallypoint_tests::http(s.game, "\x16\x03\x01\x02\x00garbage\r\n\r\n").await;
    assert_eq!(garbage.status, 400);
    let bad_room = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&s.token("a"))
        .query("room=no%20spaces")
        .connect()
        .await
        .unwrap_err();
    assert_eq!(bad_room.status, 400);
}

#[tokio::test]
async fn tokens_in_the_query_never_reach_the_logs() {
    let s = server().env("RUST_LOG", "trace").start();
    let t = s.token("secretive");
    let mut c = Connect::new(&s)
        .protocol(MSGPACK)
        .query(&format!("access_token={t}&room=logs"))
        .connect()
        .await
        .unwrap();
    c.expect_welcome().await;
    // A rejected one too, and one in the header.
    let _ = Connect::new(&s)
        .protocol("nope")
        .query(&format!("access_token={t}"))
        .connect()
        .await;
    let _ = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&t)
        .connect()
        .await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let logs = s.logs().join("\n");
    assert!(
        logs.contains("session started"),
        "the session was logged at all"
    );
    let signature = t.rsplit('.').next().unwrap();
    assert!(!logs.contains(signature), "a token reached the logs");
    assert!(
        !logs.contains("access_token"),
        "a query string reached the logs"
    );
}

/// A raw `/play` upgrade request with extra header lines.
fn upgrade_with(headers: &str) -> String {
    format!(
        "GET /play HTTP/1.1\r\n{headers}Upgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Protocol: {MSGPACK}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_missing_or_repeated_host_origin_or_authorization_is_400() {
    let s = server()
        .args(["--allowed-origin", "https://play.example"])
        .start();
    let host = format!("Host: {}\r\n", s.game);
    let bearer = format!("Authorization: Bearer {}\r\n", s.token("ana"));
    // The same request with one of each is accepted.
    let tcp = tokio::net::TcpStream::connect(s.game).await.unwrap();
    let ok = upgrade_with(&format!("{host}Origin: https://play.example\r\n{bearer}"));
    rallypoint_tests::raw::RawWs::upgrade(tcp, &ok)
        .await
        .expect("one of each is accepted");
    for (headers, why) in [
        (bearer.clone(), "HTTP/1.1 needs a Host header"),
        (format!("{host}{host}{bearer}"), "more than one host header"),
        (
            format!(
                "{host}Origin: https://play.example\r\nOrigin: https://attacker.example\r\n{bearer}"
            ),
            "more than one origin header",
        ),
        (
            format!("{host}{bearer}Authorization: Bearer {}\r\n", s.token("eve")),
            "more than one authorization header",
        ),
    ] {
        let r = rallypoint_tests::http(s.game, &upgrade_with(&headers)).await;
        assert_eq!(
            (
                r.status,
                r.json()["error"].as_str(),
                r.json()["message"].as_str()
            ),
            (400, Some("bad_request"), Some(why)),
            "{headers:?}"
        );
    }
}

#[tokio::test]
async fn dev_tokens_go_only_to_loopback_clients_behind_a_trusted_proxy_too() {
    let s = server()
        .dev_mode()
        .args(["--trusted-proxy", "127.0.0.1"])
        .start();
    let game = s.game;
    let get = |xff: &'static str| async move {
        rallypoint_tests::http(
            game,
            &format!("GET /dev/token?name=x HTTP/1.1\r\nHost: x\r\n{xff}\r\n"),
        )
        .await
    };
    let remote = get("X-Forwarded-For: 203.0.113.5\r\n").await;
    assert_eq!(
        (remote.status, remote.json()["error"].as_str()),
        (403, Some("forbidden")),
        "the proxy's address is not the client's"
    );
    assert_eq!(get("X-Forwarded-For: 127.0.0.1\r\n").await.status, 200);
    assert_eq!(get("").await.status, 200, "the proxy itself, on loopback");
}

#[tokio::test]
async fn a_refused_token_logs_the_check_that_failed_never_the_token() {
    let s = server().start();
    let mut c = claims("late");
    c["exp"] = json!(now() - 3600);
    c["iat"] = json!(now() - 7200);
    let expired = s.token_with(&c);
    let r = Connect::new(&s)
        .protocol(MSGPACK)
        .header_token(&expired)
        .connect()
        .await
        .unwrap_err();
    assert_401(&r, "expired");
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let logs = s.logs();
        assert!(
            !logs.iter().any(|l| l.contains(&expired)),
            "the token was logged"
        );
        if let Some(l) = logs
            .iter()
            .find(|l| l.contains("request refused") && l.contains("invalid_token"))
        {
            break l.clone();
        }
        assert!(Instant::now() < deadline, "no refusal logged: {logs:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["fields"]["check"], "expired", "{line}");
}
