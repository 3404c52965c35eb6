//! The floor: the least a server must do to give the same bots the same bytes, with no
//! game. It is the yardstick the real server's CPU per player-tick is compared with.
//!
//! It speaks just enough of the protocol: the `/play` upgrade choosing
//! `rallypoint.v1.msgpack` (tokens are not checked), a `welcome` with the tick and
//! snapshot rates, then on every tick of the connection's room a `snap` frame whose shared
//! entity body has the size the real server's snapshots had in the same configuration
//! (filler player rows), behind a per-connection header carrying `ack` = the last input
//! `seq` read. Inputs are decoded (for their `seq`) and dropped; pings get a pong.
//!
//! Its shape is the real server's minus the game: one task per connection owning its
//! socket (same tungstenite settings, `TCP_NODELAY`, 64 KiB send buffer), one ticker
//! task per room that publishes `(tick, body)` through a `watch` channel, the body
//! encoded once and shared as `Bytes`. No authentication, rooms, simulation, rate
//! limits, outboxes, heartbeats, metrics or logs.
//!
//! Runs as `rallypoint-bench floor` (hidden), started and pinned by [`crate::rooms`].

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt as _, StreamExt as _};
use rallypoint_protocol::codec::{decode_client, encode_ents, encode_server, write_snap};
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::{ClientMessage, Pong, ServerMessage, Welcome};
use rallypoint_protocol::{DecodeLimits, Encoding, Subprotocol};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How the floor runs.
#[derive(Debug, Clone, clap::Args)]
pub struct FloorArgs {
    /// Size of the shared entity body of every snapshot, bytes.
    #[arg(long)]
    pub ents_bytes: usize,
    /// Ticks (and snapshots) per second.
    #[arg(long, default_value_t = 30)]
    pub tick_rate: u16,
    /// Kernel send buffer per connection (the server's default).
    #[arg(long, default_value_t = 65_536)]
    pub send_buffer: u32,
}

impl FloorArgs {
    /// The flags that reproduce these arguments.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--ents-bytes".into(),
            self.ents_bytes.to_string(),
            "--tick-rate".into(),
            self.tick_rate.to_string(),
            "--send-buffer".into(),
            self.send_buffer.to_string(),
        ]
    }
}

/// Entry point of `rallypoint-bench floor`: serves until killed.
pub fn main(args: &FloorArgs) -> ExitCode {
    // The same runtime as the server's: multi-threaded, one worker per allowed CPU.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("floor: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args.clone())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: FloorArgs) -> anyhow::Result<()> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    if args.send_buffer > 0 {
        socket.set_send_buffer_size(args.send_buffer)?;
    }
    socket.bind(([127, 0, 0, 1], 0).into())?;
    let listener = socket.listen(1024)?;
    let body = encode_ents(Encoding::MsgPack, &filler(args.ents_bytes));
    println!(
        "{}",
        serde_json::json!({"fields": {
            "message": "listening",
            "game": listener.local_addr()?.to_string(),
            "ents_bytes": body.len(),
        }})
    );
    let floor = Arc::new(Floor {
        rooms: Mutex::new(HashMap::new()),
        body,
        tick_rate: args.tick_rate.max(1),
        next_id: AtomicU32::new(1),
    });
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(connection(tcp, Arc::clone(&floor)));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Player rows (the kind real snapshots are made of) until the encoded list reaches
/// `target` bytes, topped up with smaller pickup rows to land within a few bytes.
pub fn filler(target: usize) -> Vec<Entity> {
    let mut ents = Vec::new();
    let player = |i: u32| Entity::Player {
        id: i + 1,
        x: 10.0 + i as f32 * 0.37,
        y: 20.0 - i as f32 * 0.11,
        aim: 0.5,
        hp: 100,
        score: 0,
        flags: 0,
    };
    let pickup = |i: u32| Entity::Pickup {
        id: 1000 + i,
        x: 5.5,
        y: 6.5,
        flags: 1,
    };
    let size = |e: &[Entity]| encode_ents(Encoding::MsgPack, e).len();
    let mut i = 0;
    while size(&ents) < target {
        ents.push(player(i));
        i += 1;
    }
    if size(&ents) > target {
        ents.pop();
        let mut j = 0;
        while size(&ents) < target {
            ents.push(pickup(j));
            j += 1;
        }
    }
    ents
}

/// Shared state: one `watch` per room name.
struct Floor {
    rooms: Mutex<HashMap<String, watch::Receiver<(u32, Bytes)>>>,
    body: Bytes,
    tick_rate: u16,
    next_id: AtomicU32,
}

impl Floor {
    /// The room's channel, starting its ticker on first use.
    fn join(&self, room: &str) -> watch::Receiver<(u32, Bytes)> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rx) = rooms.get(room) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel((0, self.body.clone()));
        rooms.insert(room.to_owned(), rx.clone());
        let (body, rate) = (self.body.clone(), self.tick_rate);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            let mut tick = 0u32;
            loop {
                ticker.tick().await;
                tick = tick.wrapping_add(1);
                tx.send_replace((tick, body.clone()));
            }
        });
        rx
    }
}

/// The server's session settings (`server::session::websocket_config` with its defaults).
fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20)
        .max_message_size(Some(4096))
        .max_frame_size(Some(4096))
}

// The `Err` type is tungstenite's callback contract, not ours to box.
#[allow(clippy::result_large_err)]
async fn connection(tcp: TcpStream, floor: Arc<Floor>) {
    let _ = tcp.set_nodelay(true);
    let mut room = String::from("floor");
    let protocol = Subprotocol::V1MsgPack.name();
    let callback = |req: &Request, mut resp: Response| -> Result<Response, ErrorResponse> {
        let reject = |status: StatusCode| {
            let mut r = ErrorResponse::new(None);
            *r.status_mut() = status;
            Err(r)
        };
        if req.uri().path() != "/play" {
            return reject(StatusCode::NOT_FOUND);
        }
        let offered = req
            .headers()
            .get_all("sec-websocket-protocol")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|p| p.trim() == protocol);
        if !offered {
            return reject(StatusCode::BAD_REQUEST);
        }
        if let Some(name) = req
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("room=")))
        {
            room = name.to_owned();
        }
        resp.headers_mut()
            .insert("sec-websocket-protocol", HeaderValue::from_static(protocol));
        Ok(resp)
    };
    let Ok(mut ws) =
        tokio_tungstenite::accept_hdr_async_with_config(tcp, callback, Some(websocket_config()))
            .await
    else {
        return;
    };
    let mut snaps = floor.join(&room);
    let tick_rate = floor.tick_rate;
    let welcome = ServerMessage::Welcome(Welcome {
        you: floor.next_id.fetch_add(1, Ordering::Relaxed),
        room,
        tick: snaps.borrow().0,
        tick_rate,
        map: "floor".into(),
        protocol: protocol.into(),
        snap_rate: tick_rate,
        role: "player".into(),
        resumed: false,
        game: "arena".into(),
        schema: None,
        info: serde_json::json!({"player_radius": 0.5, "max_hp": 100})
            .as_object()
            .cloned()
            .unwrap_or_default(),
    });
    if ws
        .send(Message::Binary(encode_server(Encoding::MsgPack, &welcome)))
        .await
        .is_err()
    {
        return;
    }
    let limits = DecodeLimits::default();
    let mut ack = 0u32;
    let mut frame = BytesMut::new();
    loop {
        tokio::select! {
            biased;
            changed = snaps.changed() => {
                if changed.is_err() {
                    return;
                }
                let (tick, body) = snaps.borrow_and_update().clone();
                write_snap(Encoding::MsgPack, tick, ack, &body, &mut frame);
                if ws.send(Message::Binary(frame.split().freeze())).await.is_err() {
                    return;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => match decode_client(Encoding::MsgPack, &b, &limits) {
                    Ok(ClientMessage::Input(input)) => ack = ack.max(input.seq),
                    Ok(ClientMessage::Ping(ping)) => {
                        let tick = snaps.borrow().0;
                        let pong = encode_server(
                            Encoding::MsgPack,
                            &ServerMessage::Pong(Pong { id: ping.id, tick }),
                        );
                        if ws.send(Message::Binary(pong)).await.is_err() {
                            return;
                        }
                    }
                    _ => {}
                },
                Some(Ok(Message::Close(_))) => {
                    // tungstenite has queued its answer: drive it out, then wait for EOF.
                    let _ = tokio::time::timeout(Duration::from_secs(2), async {
                        while let Some(Ok(_)) = ws.next().await {}
                    })
                    .await;
                    return;
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_hits_the_target_size() {
        for target in [1usize, 40, 333, 2300, 5000] {
            let got = encode_ents(Encoding::MsgPack, &filler(target)).len();
            assert!(got >= target && got <= target + 24, "{target} → {got}");
        }
    }
}
