//! The admin listener: health, readiness, Prometheus metrics and operator JSON.
//!
//! Loopback by default and unauthenticated, so it must never expose tokens or secrets.
//! One request per connection, answered and closed.
//!
//! - `GET /healthz`: the process is alive.
//! - `GET /readyz`: 200 while accepting players, 503 while starting or draining.
//! - `GET /metrics`: Prometheus/OpenMetrics text.
//! - `GET /admin/rooms`: every room, its players and tick.
//! - `GET /admin/assets`: asset version in force, load time, last problems.
//! - `POST /admin/reload`: reload assets now.
//! - `GET /admin/maps/<name>.svg`: a loaded map, drawn to scale.
//! - `POST /admin/kick?sub=<id>`: close that account's session with 4002.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, oneshot, watch};
use tracing::{debug, warn};

use crate::http::{Response, read_head, respond_and_close};
use crate::reload::ReloadOutcome;
use crate::room::Command;
use crate::server::State;

/// Admin requests served at once; more wait in the accept queue.
const MAX_ADMIN_CONNECTIONS: usize = 64;

/// Serves the admin port until `stop`.
pub async fn serve(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    let permits = Arc::new(Semaphore::new(MAX_ADMIN_CONNECTIONS));
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
                let state = Arc::clone(&state);
                tokio::spawn(async move {
                    handle(stream, &state).await;
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

async fn handle(mut stream: TcpStream, state: &State) {
    let Ok(Ok((req, _))) =
        tokio::time::timeout(Duration::from_secs(5), read_head(&mut stream)).await
    else {
        return;
    };
    let response = route(&req.method, &req.path, req.query_param("sub"), state).await;
    debug!(method = %req.method, path = %req.path, status = response.status, "admin request");
    respond_and_close(&mut stream, &response).await;
}

async fn route(method: &str, path: &str, sub: Option<String>, state: &State) -> Response {
    match (method, path) {
        ("GET", "/healthz") => Response::json(200, &serde_json::json!({ "status": "ok" })),
        ("GET", "/readyz") => {
            if state.ready.load(Ordering::Acquire) {
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
            state.metrics.encode(),
        ),
        ("GET", "/admin/rooms") => Response::json(200, &rooms(state).await),
        ("GET", "/admin/assets") => Response::json(200, &state.assets.describe()),
        ("POST", "/admin/reload") => {
            let store = Arc::clone(&state.assets);
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
            Some(sub) => kick(state, &sub).await,
            None => Response::error(400, "bad_request", "name the account with ?sub="),
        },
        ("GET", p) if p.starts_with("/admin/maps/") && p.ends_with(".svg") => {
            let name = &p["/admin/maps/".len()..p.len() - ".svg".len()];
            match state.assets.render_map(name) {
                Some(svg) => {
                    Response::new(200, "image/svg+xml", svg).header("Cache-Control", "no-store")
                }
                None => Response::error(404, "not_found", "no such map"),
            }
        }
        (_, "/healthz" | "/readyz" | "/metrics" | "/admin/rooms" | "/admin/assets") => {
            Response::error(405, "method_not_allowed", "use GET").header("Allow", "GET")
        }
        (_, "/admin/reload" | "/admin/kick") => {
            Response::error(405, "method_not_allowed", "use POST").header("Allow", "POST")
        }
        _ => Response::error(404, "not_found", "no such admin endpoint"),
    }
}

async fn rooms(state: &State) -> serde_json::Value {
    let mut out = Vec::new();
    for room in state.directory.rooms() {
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

async fn kick(state: &State, sub: &str) -> Response {
    let Some(room) = state.directory.room_of(sub) else {
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
