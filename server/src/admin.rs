//! The admin listener: health, readiness, Prometheus metrics and operator JSON.
//!
//! Loopback by default. Every request passes three checks before it is routed:
//!
//! - `Host` must name this listener (its address, `localhost`, or an `--admin-host`):
//!   421 otherwise, so a DNS-rebinding page cannot read it;
//! - a request that changes something (any method but `GET`/`HEAD`) must not carry
//!   `Origin` or `Sec-Fetch-Site: cross-site|same-site`: 403 otherwise, so a page in an
//!   operator's browser cannot post to it (CSRF);
//! - with `--admin-token-file`, everything but `/healthz`, `/readyz` and `/metrics` needs
//!   `Authorization: Bearer <token>`, compared in constant time: 401 otherwise.
//!
//! It must never expose tokens or secrets. One request per connection, answered and
//! closed.
//!
//! - `GET /healthz`: the process is alive.
//! - `GET /readyz`: 200 while accepting players, 503 while starting or draining.
//! - `GET /metrics`: Prometheus/OpenMetrics text.
//! - `GET /admin/rooms`: every room, its players and tick.
//! - `GET /admin/assets`: asset version in force, load time, last problems.
//! - `POST /admin/reload`: reload assets now.
//! - `GET /admin/maps/<name>.svg`: a loaded map, drawn to scale.
//! - `POST /admin/kick?sub=<id>`: close that account's session with 4002.
//! - `GET /admin/cluster` (cluster mode): this node, the claims it holds, and the whole
//!   directory (live nodes with their leases, rooms with owner, members, checkpoint).
//! - `POST /admin/drain` (cluster mode): hand every room to other nodes, as SIGTERM
//!   does, but keep the process running (drained, taking nothing).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use subtle::ConstantTimeEq as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tracing::{debug, warn};

use crate::http::{HeadError, Request, Response, read_head, respond_and_close};
use crate::metrics::Metrics;
use crate::node::ClusterNode;
use crate::reload::{AssetControl, ReloadOutcome};
use crate::room::{Command, Directory};

/// Admin requests served at once; more wait in the accept queue.
const MAX_ADMIN_CONNECTIONS: usize = 64;
/// Endpoints a token never guards: probes and scrapers rarely carry one.
const OPEN_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

/// Who may use the admin port.
#[derive(Clone, Default)]
pub struct AdminAuth {
    /// The bearer token every guarded endpoint needs, when configured.
    pub token: Option<Vec<u8>>,
    /// Extra names the port answers to in `Host` (a DNS name it is reached by).
    pub hosts: Vec<String>,
}

impl std::fmt::Debug for AdminAuth {
    // Never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminAuth")
            .field("token", &self.token.is_some())
            .field("hosts", &self.hosts)
            .finish()
    }
}

/// What the admin port serves from, and nothing more.
#[derive(Debug)]
pub struct AdminContext {
    /// Metrics to render.
    pub metrics: Arc<Metrics>,
    /// Assets to describe and reload.
    pub assets: Arc<dyn AssetControl>,
    /// Rooms to list and kick from.
    pub directory: Arc<Directory>,
    /// Readiness, shared with the game edge.
    pub ready: Arc<AtomicBool>,
    /// Access checks.
    pub auth: AdminAuth,
    /// This node in its cluster, in cluster mode.
    pub cluster: Option<Arc<ClusterNode>>,
    /// How long a drain may take.
    pub drain_timeout: Duration,
}

/// Serves the admin port until `stop`.
pub async fn serve(listener: TcpListener, ctx: Arc<AdminContext>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
    let own = listener.local_addr().ok().map(|a| a.ip());
    loop {
        let permit = tokio::select! {
            () = crate::shutdown::signalled(&mut stop) => return,
            p = Arc::clone(&permits).acquire_owned() => match p { Ok(p) => p, Err(_) => return },
        };
        let accepted = tokio::select! {
            () = crate::shutdown::signalled(&mut stop) => return,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((stream, _)) => {
                let ctx = Arc::clone(&ctx);
                tokio::spawn(async move {
                    handle(stream, own, &ctx).await;
                    drop(permit);
                });
            }
            Err(e) => {
                warn!(error = %e, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, listener_ip: Option<IpAddr>, ctx: &AdminContext) {
    let req = match tokio::time::timeout(Duration::from_secs(5), read_head(&mut stream)).await {
        Ok(Ok((req, _))) => req,
        Ok(Err(HeadError::Malformed(why))) => {
            let r = Response::error(400, "bad_request", &why);
            return respond_and_close(&mut stream, &r).await;
        }
        Ok(Err(HeadError::TooLarge)) => {
            let r = Response::error(431, "request_too_large", "request head too large");
            return respond_and_close(&mut stream, &r).await;
        }
        _ => return,
    };
    let own: Vec<IpAddr> = [stream.local_addr().ok().map(|a| a.ip()), listener_ip]
        .into_iter()
        .flatten()
        .collect();
    let response = match check_access(&req, &own, &ctx.auth) {
        Ok(()) => route(&req.method, &req.path, req.query_param("sub"), ctx).await,
        Err(refused) => refused,
    };
    debug!(method = %req.method, path = %req.path, status = response.status, "admin request");
    respond_and_close(&mut stream, &response).await;
}

/// The three checks every admin request passes, in order: `Host` (421), cross-site
/// writes (403), the token (401). `own` are the addresses this listener is reached at.
pub fn check_access(req: &Request, own: &[IpAddr], auth: &AdminAuth) -> Result<(), Response> {
    let host = req.header("host").unwrap_or_default();
    if !host_is_ours(host, own, &auth.hosts) {
        return Err(Response::error(
            421,
            "misdirected_request",
            "this admin port does not answer to that Host; add it with --admin-host",
        ));
    }
    let writes = !matches!(req.method.as_str(), "GET" | "HEAD");
    let cross_site = req.header("origin").is_some()
        || req
            .header("sec-fetch-site")
            .is_some_and(|v| matches!(v.trim(), "cross-site" | "same-site"));
    if writes && cross_site {
        return Err(Response::error(
            403,
            "forbidden",
            "the admin port takes no changes from web pages",
        ));
    }
    if let Some(token) = &auth.token
        && !OPEN_PATHS.contains(&req.path.as_str())
        && !bearer_matches(req, token)
    {
        return Err(Response::error(
            401,
            "unauthorized",
            "send Authorization: Bearer <the --admin-token-file token>",
        )
        .header("WWW-Authenticate", "Bearer realm=\"rallypoint-admin\""));
    }
    Ok(())
}

/// Whether `Host` names this listener: one of its addresses, `localhost`, or a
/// configured name, with or without a port.
fn host_is_ours(host: &str, own: &[IpAddr], names: &[String]) -> bool {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => match host.rsplit_once(':') {
            Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
            _ => host,
        },
    };
    if name.is_empty() {
        return false;
    }
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| own.contains(&ip))
        || names
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name) || n.eq_ignore_ascii_case(host))
}

/// `Authorization: Bearer <token>` with exactly this token, compared in constant time.
fn bearer_matches(req: &Request, token: &[u8]) -> bool {
    let Some((scheme, given)) = req
        .header("authorization")
        .and_then(|v| v.trim().split_once(' '))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && bool::from(given.trim().as_bytes().ct_eq(token))
}

async fn route(method: &str, path: &str, sub: Option<String>, ctx: &AdminContext) -> Response {
    match (method, path) {
        ("GET", "/healthz") => Response::json(200, &serde_json::json!({ "status": "ok" })),
        ("GET", "/readyz") => {
            if ctx.ready.load(Ordering::Acquire) {
                Response::json(200, &serde_json::json!({ "ready": true }))
            } else {
                Response::json(
                    503,
                    &serde_json::json!({ "ready": false, "reason": "draining" }),
                )
            }
        }
        ("GET", "/metrics") => Response::new(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            ctx.metrics.encode(),
        ),
        ("GET", "/admin/rooms") => Response::json(200, &rooms(ctx).await),
        ("GET", "/admin/assets") => Response::json(200, &ctx.assets.describe()),
        ("POST", "/admin/reload") => {
            let store = Arc::clone(&ctx.assets);
            match tokio::task::spawn_blocking(move || store.reload()).await {
                Ok(ReloadOutcome::Applied(v)) => Response::json(
                    200,
                    &serde_json::json!({ "outcome": "applied", "version": v }),
                ),
                Ok(ReloadOutcome::Unchanged(v)) => Response::json(
                    200,
                    &serde_json::json!({ "outcome": "unchanged", "version": v }),
                ),
                Ok(ReloadOutcome::Rejected(report)) => {
                    let problems: serde_json::Value =
                        serde_json::from_str(&report.render_json()).unwrap_or_default();
                    Response::json(
                        422,
                        &serde_json::json!({ "outcome": "rejected", "report": problems }),
                    )
                }
                Err(_) => Response::error(500, "internal_error", "reload failed"),
            }
        }
        ("POST", "/admin/kick") => match sub {
            Some(sub) => kick(ctx, &sub).await,
            None => Response::error(400, "bad_request", "name the account with ?sub="),
        },
        ("GET", "/admin/cluster") => match &ctx.cluster {
            Some(node) => match node.describe().await {
                Ok(view) => Response::json(200, &view),
                Err(e) => Response::error(503, e.code(), &e.to_string()).header("Retry-After", "2"),
            },
            None => not_clustered(),
        },
        ("POST", "/admin/drain") => match &ctx.cluster {
            Some(node) => {
                let d = node
                    .drain(&ctx.directory, &ctx.ready, ctx.drain_timeout)
                    .await;
                Response::json(
                    200,
                    &serde_json::json!({ "draining": true, "rooms": d.rooms, "remaining": d.remaining }),
                )
            }
            None => not_clustered(),
        },
        ("GET", p) if p.starts_with("/admin/maps/") && p.ends_with(".svg") => {
            let name = &p["/admin/maps/".len()..p.len() - ".svg".len()];
            match ctx.assets.render_map(name) {
                Some(svg) => {
                    Response::new(200, "image/svg+xml", svg).header("Cache-Control", "no-store")
                }
                None => Response::error(404, "not_found", "no such map"),
            }
        }
        (
            _,
            "/healthz" | "/readyz" | "/metrics" | "/admin/rooms" | "/admin/assets"
            | "/admin/cluster",
        ) => Response::error(405, "method_not_allowed", "use GET").header("Allow", "GET"),
        (_, "/admin/reload" | "/admin/kick" | "/admin/drain") => {
            Response::error(405, "method_not_allowed", "use POST").header("Allow", "POST")
        }
        _ => Response::error(404, "not_found", "no such admin endpoint"),
    }
}

fn not_clustered() -> Response {
    Response::error(
        409,
        "not_clustered",
        "cluster mode is off (no --redis-url); a single node drains on SIGTERM",
    )
}

async fn rooms(ctx: &AdminContext) -> serde_json::Value {
    let mut out = Vec::new();
    for room in ctx.directory.rooms() {
        let (tx, rx) = oneshot::channel();
        let described = match room.tx.try_send(Command::Describe(tx)) {
            Ok(()) => tokio::time::timeout(Duration::from_secs(1), rx)
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        out.push(
            described
                .unwrap_or_else(|| serde_json::json!({ "name": &*room.name, "status": "busy" })),
        );
    }
    serde_json::json!({ "rooms": out })
}

async fn kick(ctx: &AdminContext, sub: &str) -> Response {
    let Some(room) = ctx.directory.room_of(sub) else {
        return Response::error(404, "not_found", "no session for this account");
    };
    let (tx, rx) = oneshot::channel();
    if room
        .tx
        .send(Command::Kick {
            sub: sub.to_owned(),
            reply: tx,
        })
        .await
        .is_err()
    {
        return Response::error(404, "not_found", "the room has closed");
    }
    match tokio::time::timeout(Duration::from_secs(2), rx).await {
        Ok(Ok(true)) => Response::json(
            200,
            &serde_json::json!({ "kicked": sub, "room": &*room.name }),
        ),
        Ok(Ok(false)) => Response::error(404, "not_found", "the account is not connected"),
        _ => Response::error(503, "busy", "the room did not answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: method.into(),
            path: path.into(),
            query: None,
            minor_version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), (*v).to_owned()))
                .collect(),
        }
    }

    fn own() -> Vec<IpAddr> {
        vec!["127.0.0.1".parse().unwrap()]
    }

    fn status(r: Result<(), Response>) -> u16 {
        r.map_or_else(|r| r.status, |()| 200)
    }

    #[test]
    fn host_must_name_this_listener() {
        let auth = AdminAuth {
            token: None,
            hosts: vec!["ops.internal".into()],
        };
        for (host, expected) in [
            ("127.0.0.1:7778", 200),
            ("127.0.0.1", 200),
            ("localhost:7778", 200),
            ("LOCALHOST", 200),
            ("ops.internal:7778", 200),
            ("attacker.example:7778", 421),
            ("127.0.0.2:7778", 421),
            ("", 421),
            (":7778", 421),
        ] {
            let r = req("GET", "/admin/rooms", &[("host", host)]);
            assert_eq!(status(check_access(&r, &own(), &auth)), expected, "{host}");
        }
        let v6: Vec<IpAddr> = vec!["::1".parse().unwrap()];
        let r = req("GET", "/metrics", &[("host", "[::1]:7778")]);
        assert_eq!(status(check_access(&r, &v6, &AdminAuth::default())), 200);
    }

    #[test]
    fn web_pages_cannot_change_anything() {
        let host = ("host", "127.0.0.1:7778");
        let auth = AdminAuth::default();
        for (method, headers, expected) in [
            (
                "POST",
                vec![host, ("origin", "https://attacker.example")],
                403,
            ),
            ("POST", vec![host, ("sec-fetch-site", "cross-site")], 403),
            ("POST", vec![host, ("sec-fetch-site", "same-site")], 403),
            ("POST", vec![host, ("sec-fetch-site", "same-origin")], 200),
            ("POST", vec![host, ("sec-fetch-site", "none")], 200),
            ("POST", vec![host], 200),
            (
                "GET",
                vec![host, ("origin", "https://attacker.example")],
                200,
            ),
        ] {
            let r = req(method, "/admin/kick", &headers);
            assert_eq!(
                status(check_access(&r, &own(), &auth)),
                expected,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn the_token_guards_everything_but_the_probes() {
        let auth = AdminAuth {
            token: Some(b"s3cret-admin-token".to_vec()),
            hosts: Vec::new(),
        };
        let host = ("host", "localhost");
        for (path, headers, expected) in [
            ("/admin/rooms", vec![host], 401),
            (
                "/admin/rooms",
                vec![host, ("authorization", "Bearer wrong")],
                401,
            ),
            (
                "/admin/rooms",
                vec![host, ("authorization", "Bearer s3cret-admin-tok")],
                401,
            ),
            (
                "/admin/rooms",
                vec![host, ("authorization", "Basic s3cret-admin-token")],
                401,
            ),
            (
                "/admin/rooms",
                vec![host, ("authorization", "Bearer s3cret-admin-token")],
                200,
            ),
            (
                "/admin/rooms",
                vec![host, ("authorization", "bearer  s3cret-admin-token ")],
                200,
            ),
            ("/nope", vec![host], 401),
            ("/healthz", vec![host], 200),
            ("/readyz", vec![host], 200),
            ("/metrics", vec![host], 200),
        ] {
            let r = req("GET", path, &headers);
            let got = check_access(&r, &own(), &auth);
            if expected == 401 {
                let r = got.as_ref().unwrap_err();
                assert_eq!(r.error_code().as_deref(), Some("unauthorized"));
                assert!(r.headers.iter().any(|(n, _)| *n == "WWW-Authenticate"));
            }
            assert_eq!(status(got), expected, "{path} {headers:?}");
        }
    }
}
