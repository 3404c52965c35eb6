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
//! Its shape is the real server's minus the game, and it sends the way the server does:
//! one ticker task per room writes each tick's snapshot straight to every member's socket
//! in one non-blocking vectored write (frame header and per-connection `snap` header,
//! then the body encoded once and shared as `Bytes`); a connection whose socket would not
//! take it misses that snapshot (the server keeps the newest for its session instead).
//! One task per connection reads its socket through tungstenite (same settings,
//! `TCP_NODELAY`, 64 KiB send buffer) and writes its pongs through the same lock the
//! ticker writes under, so frames never interleave. No authentication, simulation, rate
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
use rallypoint::handshake;
use rallypoint::http::{Response, read_head};
use rallypoint::room::outbox::{Gone, Outbox, PendingSnapshot, Pushed};
use rallypoint::socket::SessionStream;
use rallypoint::stream::ClientStream;
use rallypoint_protocol::codec::{decode_client, encode_ents, encode_server};
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::{ClientMessage, Pong, ServerMessage, Welcome};
use rallypoint_protocol::{DecodeLimits, Encoding, Subprotocol};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

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

/// One connection as its room's ticker sees it: its outbox (the server's, so the same
/// direct writes and fallback) and the last input `seq` read.
struct Member {
    outbox: Arc<Outbox>,
    ack: Arc<AtomicU32>,
}

/// Shared state: each room's members and its tick, its ticker started on first join.
struct Floor {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    body: Bytes,
    tick_rate: u16,
    next_id: AtomicU32,
}

#[derive(Default)]
struct Room {
    members: Mutex<Vec<Member>>,
    tick: AtomicU32,
}

impl Floor {
    /// The room, starting its ticker on first use.
    fn join(&self, name: &str) -> Arc<Room> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(room) = rooms.get(name) {
            return Arc::clone(room);
        }
        let room = Arc::new(Room::default());
        rooms.insert(name.to_owned(), Arc::clone(&room));
        let (body, rate) = (self.body.clone(), self.tick_rate);
        let ticking = Arc::clone(&room);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
            ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                ticker.tick().await;
                let tick = ticking.tick.fetch_add(1, Ordering::Relaxed) + 1;
                let mut members = ticking.members.lock().unwrap_or_else(|p| p.into_inner());
                members.retain(|m| {
                    let ack = m.ack.load(Ordering::Relaxed);
                    let snap = PendingSnapshot::v1(Encoding::MsgPack, tick, ack, body.clone());
                    !matches!(m.outbox.push_snapshot(snap), Pushed::Gone(_))
                });
            }
        });
        room
    }
}

/// The server's session settings (`server::session::websocket_config` with its defaults).
fn websocket_config() -> WebSocketConfig {
    rallypoint::session::websocket_config(&rallypoint::config::Limits::default())
}

async fn connection(tcp: TcpStream, floor: Arc<Floor>) {
    let _ = tcp.set_nodelay(true);
    let mut stream = ClientStream::Plain(tcp);
    let Ok(Ok((req, leftover))) =
        tokio::time::timeout(Duration::from_secs(5), read_head(&mut stream)).await
    else {
        return;
    };
    let upgrade = match handshake::check_request(&req, &[]) {
        Ok(u) if req.path == "/play" && u.subprotocol == Subprotocol::V1MsgPack => u,
        _ => {
            let r = Response::error(400, "bad_request", "the floor speaks v1 msgpack on /play");
            let _ = stream.write_all(&r.to_bytes()).await;
            return;
        }
    };
    if stream
        .write_all(&handshake::switching_protocols(&upgrade).to_bytes())
        .await
        .is_err()
    {
        return;
    }
    let name = req.query_param("room").unwrap_or_else(|| "floor".into());
    let (stream, outbox) = SessionStream::upgrade(stream, 256, Encoding::MsgPack);
    let mut ws = WebSocketStream::from_partially_read(
        stream,
        leftover,
        Role::Server,
        Some(websocket_config()),
    )
    .await;
    let room = floor.join(&name);
    let tick_rate = floor.tick_rate;
    let welcome = ServerMessage::Welcome(Welcome {
        you: floor.next_id.fetch_add(1, Ordering::Relaxed),
        room: name,
        tick: room.tick.load(Ordering::Relaxed),
        tick_rate,
        map: "floor".into(),
        protocol: upgrade.subprotocol.name().into(),
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
    let ack = Arc::new(AtomicU32::new(0));
    room.members
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Member {
            outbox: Arc::clone(&outbox),
            ack: Arc::clone(&ack),
        });
    session(&mut ws, &outbox, &room, &ack).await;
    outbox.mark_gone(Gone::Left);
}

/// The connection's session: inputs and pings in, and what the ticker could not write
/// directly out.
async fn session(
    ws: &mut WebSocketStream<SessionStream>,
    outbox: &Outbox,
    room: &Room,
    ack: &AtomicU32,
) {
    let limits = DecodeLimits::default();
    let mut frame = BytesMut::new();
    loop {
        tokio::select! {
            biased;
            () = outbox.ready() => {
                let batch = outbox.take();
                let sent = match batch.snapshot {
                    Some(snap) => {
                        snap.write_to(&mut frame);
                        ws.send(Message::Binary(frame.split().freeze())).await
                    }
                    None => ws.flush().await,
                };
                if sent.is_err() {
                    return;
                }
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Binary(b))) => match decode_client(Encoding::MsgPack, &b, &limits) {
                    Ok(ClientMessage::Input(input)) => {
                        ack.fetch_max(input.seq, Ordering::Relaxed);
                    }
                    Ok(ClientMessage::Ping(ping)) => {
                        let tick = room.tick.load(Ordering::Relaxed);
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
