//! The `/play` handshake on arbitrary bytes: the request head parser, then everything
//! decided before the `101`: subprotocol negotiation, token extraction from each carriage
//! (header, `bearer.` entry, query) and JWT verification (a fixed HS256 secret and a fixed
//! P-256 key by `kid`), the room name, the seat, and the client address behind a proxy.
//!
//! Every header value is also fed to the pure pieces directly (negotiation, verification,
//! `X-Forwarded-For`), so mutations of any header reach them.
//!
//! Properties: no panic; a rejection is one of the documented statuses with a JSON body
//! whose `error` is a string; a 401 names a check, never echoes input; no response header
//! can carry CR or LF (no response splitting); a request's `Debug` shows only its method
//! and path (tokens travel in the query and headers); an accepted handshake echoes exactly one
//! supported subprotocol and the right `Sec-WebSocket-Accept`; the client address is the
//! peer or an untrusted forwarded address.
//!
//! The directory may open one room (whose task is spawned on a runtime that never runs);
//! every other new room is refused as `server_full`, so nothing grows across runs.

#![no_main]

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rallypoint::arena::Arena;
use rallypoint::config::Limits;
use rallypoint::connection::Rejection;
use rallypoint::handshake::{authenticate, check_request, placement, switching_protocols};
use rallypoint::http::read_head;
use rallypoint::metrics::Metrics;
use rallypoint::room::task::opener;
use rallypoint::room::{Directory, RoomContext};
use rallypoint::server::client_ip;
use rallypoint_fuzz::{assets, ready, verifier};
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::subprotocol::{BEARER_PREFIX, negotiate};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

struct World {
    runtime: tokio::runtime::Runtime,
    directory: Arc<Directory>,
    origins: Vec<String>,
    trusted: Vec<IpAddr>,
    // The other ends of the room context's channels, kept open.
    _assets: watch::Sender<Arc<rallypoint::assets::Assets<rallypoint::arena::assets::ArenaAssets>>>,
    _shutdown: watch::Sender<bool>,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let (assets_tx, assets_rx) = watch::channel(Arc::new(assets().clone()));
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let ctx = RoomContext {
            limits: Limits {
                max_rooms: 1,
                ..Limits::default()
            },
            metrics: Arc::new(Metrics::new()),
            shutdown: shutdown_rx,
        };
        let directory = Directory::new(1, opener::<Arena>(ctx, assets_rx));
        World {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a current-thread runtime"),
            directory,
            origins: vec!["https://play.example".into()],
            trusted: ["10.0.0.1", "10.0.0.2", "fd00::1"]
                .iter()
                .map(|a| a.parse().expect("address"))
                .collect(),
            _assets: assets_tx,
            _shutdown: shutdown_tx,
        }
    })
}

/// Every `message` a 401 may carry: fixed texts naming a check, never token material.
fn known_401_message(m: &str) -> bool {
    const CHECKS: [&str; 9] = [
        "malformed",
        "unsupported_crit",
        "algorithm_not_allowed",
        "unknown_kid",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "wrong_audience",
        "wrong_issuer",
    ];
    const CLAIMS: [&str; 8] = ["sub", "exp", "aud", "iss", "nbf", "name", "room", "role"];
    CHECKS.contains(&m)
        || m.starts_with("no token: ")
        || ["missing_claim: ", "invalid_claim: "]
            .iter()
            .any(|p| m.strip_prefix(p).is_some_and(|c| CLAIMS.contains(&c)))
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Ok((req, _after_head)) = ready(read_head(&mut &data[..])) else {
        return;
    };

    // The pure pieces, on every header value.
    let proxy = SocketAddr::new(w.trusted[0], 443);
    let direct = SocketAddr::from(([192, 0, 2, 7], 50_000));
    for (_, value) in &req.headers {
        let n = negotiate([value.as_str()]);
        assert!(n.offered >= usize::from(n.chosen.is_some()) + usize::from(n.bearer.is_some()));
        assert!(n.bearer.is_none_or(|t| !t.is_empty()));
        let _ = verifier().verify(value.trim());
    }
    let forwarded: Vec<IpAddr> = req
        .header_values("x-forwarded-for")
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let ip = client_ip(proxy, &req, &w.trusted);
    assert!(
        ip == proxy.ip() || (forwarded.contains(&ip) && !w.trusted.contains(&ip)),
        "{ip} is neither the proxy nor an untrusted forwarded address"
    );
    assert_eq!(
        client_ip(direct, &req, &w.trusted),
        direct.ip(),
        "only proxies are trusted"
    );
    let _ = (req.query_param("access_token"), req.query_param("room"));
    // Debug output (what ends up in logs) names the method and path, nothing else: the
    // query and the headers carry tokens.
    assert_eq!(
        format!("{req:?}"),
        format!(
            "Request {{ method: {:?}, path: {:?}, .. }}",
            req.method, req.path
        )
    );

    // The whole decision, phase by phase as the edge makes it.
    let _runtime = w.runtime.enter();
    let decided = (|| -> Result<_, Rejection> {
        let upgrade = check_request(&req, &w.origins)?;
        let identity = authenticate(&req, &upgrade, verifier())?;
        let placement = placement(&req, &identity)?;
        let reservation = w
            .directory
            .reserve(&identity.sub, identity.role, &placement)?;
        Ok((
            switching_protocols(&upgrade),
            upgrade.subprotocol,
            identity,
            reservation,
        ))
    })();
    let (response, accepted) = match decided {
        Ok((response, subprotocol, identity, _seat)) => (response, Some((subprotocol, identity))),
        Err(e) => (e.response().expect("a handshake refusal is answered"), None),
    };
    let _ = response.to_bytes();
    for (name, value) in &response.headers {
        assert!(
            !value.contains(['\r', '\n']),
            "header {name} would split the response: {value:?}"
        );
    }
    match accepted {
        Some((subprotocol, identity)) => {
            assert_eq!(response.status, 101);
            let echoed: Vec<&str> = response
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
                .map(|(_, v)| v.as_str())
                .collect();
            assert_eq!(
                echoed,
                [subprotocol.name()],
                "exactly the chosen subprotocol"
            );
            assert!(!echoed[0].starts_with(BEARER_PREFIX));
            assert!(Subprotocol::from_name(echoed[0]).is_some());
            let key = req.header("sec-websocket-key").unwrap_or_default().trim();
            let accept = response
                .headers
                .iter()
                .find(|(n, _)| *n == "Sec-WebSocket-Accept")
                .map(|(_, v)| v.clone());
            assert_eq!(accept, Some(derive_accept_key(key.as_bytes())));
            let id = &identity;
            assert!((1..=rallypoint::auth::MAX_SUB_BYTES).contains(&id.sub.len()));
            assert!(!id.sub.chars().any(char::is_control));
            assert!(id.name.chars().count() <= rallypoint::auth::MAX_NAME_CHARS);
        }
        None => {
            assert!(
                [400, 401, 403, 405, 503].contains(&response.status),
                "undocumented status {}",
                response.status
            );
            let body: serde_json::Value =
                serde_json::from_slice(&response.body).expect("rejections are JSON");
            assert!(body["error"].is_string(), "{body}");
            if response.status == 401 {
                let message = body["message"].as_str().unwrap_or_default();
                assert!(known_401_message(message), "401 message {message:?}");
                assert!(
                    response
                        .headers
                        .iter()
                        .any(|(n, _)| *n == "WWW-Authenticate"),
                    "401 without a challenge"
                );
            }
        }
    }
});
