//! A room driven by arbitrary operations through the in-memory harness: players and
//! spectators of both encodings joining (again, to resume or replace), leaving, dropping;
//! inputs with any `seq` and any float bits; chat with any text; ticks; clients that stop
//! reading; asset reloads.
//!
//! Inputs and chat pass the session's validation first, as they do in the server (the
//! session is the only producer of room commands); what fails it is skipped.
//!
//! Input layout, one operation after another (`op = byte % 8`; a missing operand ends the
//! run; `c` picks a client modulo how many have joined):
//!
//! | op | operands | meaning |
//! |---|---|---|
//! | 0 | `sub flags` | join as `p{sub % 4}`; flags bit 0 spectator, bit 1 JSON |
//! | 1 | `c` | the client leaves |
//! | 2 | `c` | the client's connection drops (it may resume) |
//! | 3 | `c seq:u32 mx:u32 my:u32 aim:u32 fire` | an input (little endian, floats as bits); `fire` bit 0 fires, bit 1 adds `view` = `mx ^ my` (any claimed tick) |
//! | 4 | `c len text[len]` | a chat line (lossy UTF-8) |
//! | 5 | `n` | `n % 4 + 1` ticks |
//! | 6 | `c` | the client stops (or resumes) reading its outbox |
//! | 7 | | the assets are republished (a hot reload) |
//!
//! After every tick each reading client takes its outbox as a session would (a close
//! request ends that client), and these must hold: everything decodes (the harness
//! panics otherwise); a client's first message is `welcome`; snapshot entities have finite
//! coordinates; a client's `ack` never goes backwards and never passes the highest `seq`
//! it sent; player seats equal the world's players, spectator seats equal the room's
//! spectators.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rallypoint::auth::Role;
use rallypoint::config::Limits;
use rallypoint::room::Gone;
use rallypoint::room::harness::{Delivered, RoomHarness, TestClient};
use rallypoint_fuzz::assets;
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::inbound::InputFields;
use rallypoint_protocol::message::{Input, ServerMessage};
use rallypoint_protocol::{CloseReason, DecodeLimits, Encoding};
use std::sync::atomic::Ordering;

/// Bounds per run, so one input cannot take seconds.
const MAX_CLIENTS: usize = 24;
const MAX_TICKS: u32 = 200;

struct Client {
    c: TestClient,
    reading: bool,
    /// The session has ended (left, dropped, or closed by the room).
    ended: bool,
    welcomed: bool,
    max_seq: u32,
    last_ack: u32,
}

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_le_bytes(*head))
    }

    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
}

fn pick(clients: &mut [Client], b: u8) -> Option<&mut Client> {
    let n = clients.len();
    (n > 0).then(|| &mut clients[usize::from(b) % n])
}

/// What a session does with its outbox after a tick, plus the checks.
fn serve(client: &mut Client) {
    if client.ended || !client.reading {
        return;
    }
    for d in client.c.take() {
        match d {
            Delivered::Close(reason) => {
                // The session closes; a stuck client may resume, any other reason is final.
                client.c.outbox.mark_gone(match reason {
                    CloseReason::SlowConsumer | CloseReason::HeartbeatTimeout => Gone::Dropped,
                    _ => Gone::Left,
                });
                client.ended = true;
                return;
            }
            Delivered::Message(m) => {
                if !client.welcomed {
                    assert!(
                        matches!(m, ServerMessage::Welcome(_)),
                        "first message {m:?}"
                    );
                    client.welcomed = true;
                }
                if let ServerMessage::Snap(s) = &m {
                    assert!(
                        s.ack >= client.last_ack,
                        "ack went back {} -> {}",
                        client.last_ack,
                        s.ack
                    );
                    assert!(
                        s.ack <= client.max_seq,
                        "ack {} beyond seq {}",
                        s.ack,
                        client.max_seq
                    );
                    client.last_ack = s.ack;
                    for e in &s.ents {
                        let (x, y) = e.pos();
                        assert!(x.is_finite() && y.is_finite(), "{e:?}");
                        if let Entity::Player { aim, .. } = e {
                            assert!(aim.is_finite(), "{e:?}");
                        }
                    }
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut h = RoomHarness::new(assets().clone(), Limits::default(), 7);
    let mut clients: Vec<Client> = Vec::new();
    let mut ticks = 0u32;
    let mut spectator_joins = 0u32;
    let limits = DecodeLimits::default();
    let mut b = Bytes(data);
    while let Some(op) = b.u8() {
        match op % 8 {
            0 => {
                let (Some(sub), Some(flags)) = (b.u8(), b.u8()) else {
                    break;
                };
                if clients.len() >= MAX_CLIENTS {
                    continue;
                }
                let role = if flags & 1 == 1 {
                    Role::Spectator
                } else {
                    Role::Player
                };
                spectator_joins += u32::from(role == Role::Spectator);
                let encoding = if flags & 2 == 2 {
                    Encoding::Json
                } else {
                    Encoding::MsgPack
                };
                let c = h.join(&format!("p{}", sub % 4), role, encoding);
                clients.push(Client {
                    c,
                    reading: true,
                    ended: false,
                    welcomed: false,
                    max_seq: 0,
                    last_ack: 0,
                });
            }
            1 | 2 => {
                let Some(i) = b.u8() else { break };
                if let Some(c) = pick(&mut clients, i) {
                    if op % 8 == 1 {
                        c.c.leave()
                    } else {
                        c.c.drop_connection()
                    }
                    c.ended = true;
                }
            }
            3 => {
                let (Some(i), Some(seq), Some(mx), Some(my), Some(aim), Some(fire)) =
                    (b.u8(), b.u32(), b.u32(), b.u32(), b.u32(), b.u8())
                else {
                    break;
                };
                let input = Input {
                    seq,
                    mx: f32::from_bits(mx),
                    my: f32::from_bits(my),
                    aim: f32::from_bits(aim),
                    fire: fire & 1 == 1,
                    view: (fire & 2 == 2).then_some(mx ^ my),
                };
                if InputFields::validate(&input).is_err() {
                    continue;
                }
                if let Some(c) = pick(&mut clients, i)
                    && !c.ended
                    && h.input(&c.c, input)
                {
                    c.max_seq = c.max_seq.max(seq);
                }
            }
            4 => {
                let (Some(i), Some(len)) = (b.u8(), b.u8()) else {
                    break;
                };
                let Some(text) = b.take(usize::from(len)) else {
                    break;
                };
                let text = String::from_utf8_lossy(text).into_owned();
                if text.chars().count() > limits.max_chat_chars {
                    continue;
                }
                if let Some(c) = pick(&mut clients, i)
                    && !c.ended
                {
                    h.chat(&c.c, &text);
                }
            }
            5 => {
                let Some(n) = b.u8() else { break };
                for _ in 0..(n % 4 + 1) {
                    if ticks >= MAX_TICKS {
                        break;
                    }
                    ticks += 1;
                    h.tick();
                    clients.iter_mut().for_each(serve);
                    let shared = &h.handle().shared;
                    assert_eq!(
                        shared.players.load(Ordering::Acquire) as usize,
                        h.world().player_count(),
                        "player seats"
                    );
                    let spectators = shared.spectators.load(Ordering::Acquire);
                    assert_eq!(
                        i64::from(spectators),
                        h.metrics().spectators.get(),
                        "spectator seats"
                    );
                    assert!(spectators <= spectator_joins);
                }
            }
            6 => {
                let Some(i) = b.u8() else { break };
                if let Some(c) = pick(&mut clients, i) {
                    c.reading = !c.reading;
                }
            }
            _ => h.publish_assets(assets().clone()),
        }
    }
});
