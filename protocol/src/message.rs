//! Every v1 message as a serde type.
//!
//! Each message is a map whose string key `t` names its type; MessagePack and JSON carry
//! the same shapes. Unknown extra keys are ignored, missing required keys are an error.
//! Events carry a second tag, `e`, naming the event. Semantic checks that serde cannot
//! express (finite numbers, text length) live in [`ClientMessage::validate`].

use serde::{Deserialize, Serialize};

use crate::entity::Entity;
use crate::rows::RowSchema;

/// A message from a client to the server.
///
/// Decoded only through [`crate::codec::decode_client`] (strict: `t` must be a string,
/// no binary values), never by serde directly.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ClientMessage {
    /// One sample of the player's controls.
    Input(Input),
    /// Application-level ping, answered with `pong`.
    Ping(Ping),
    /// A chat line for the room.
    Chat(ChatSend),
    /// v2 only: asks the server for a keyframe (the client's state is not what the server
    /// thinks it is).
    Resync,
}

/// The arena's `input`: the engine's `seq` and the arena's fields
/// `{"t":"input","seq":u32,"mx":f32,"my":f32,"aim":f32,"fire":bool}`, plus `"view":u32`
/// when the client says which tick it was drawing (lag compensation).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Input {
    /// Strictly increasing per session; stale or repeated values are ignored.
    pub seq: u32,
    /// Desired move direction, x component. The vector `(mx, my)` is clamped to length 1.
    pub mx: f32,
    /// Desired move direction, y component (y grows downwards, as on a canvas).
    pub my: f32,
    /// Aim angle in radians, 0 = +x, counter-clockwise towards +y.
    pub aim: f32,
    /// Trigger held.
    pub fire: bool,
    /// The tick of the world the client was drawing when it made this input (its render
    /// time, rounded to a tick): a shot is judged against the world as it was then,
    /// within the server's lag-compensation window. Absent: judged against the present
    /// (older clients). Written only when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub view: Option<u32>,
}

impl Input {
    /// The move vector clamped to length 1. Call only on validated input.
    pub fn clamped_move(&self) -> (f32, f32) {
        let len2 = self.mx * self.mx + self.my * self.my;
        if len2 > 1.0 {
            let len = len2.sqrt();
            (self.mx / len, self.my / len)
        } else {
            (self.mx, self.my)
        }
    }
}

/// `{"t":"ping","id":u32}`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    /// Echoed back in the `pong`.
    pub id: u32,
}

/// `{"t":"chat","text":str}` from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatSend {
    /// At most [`crate::DecodeLimits::max_chat_chars`] characters.
    pub text: String,
}

/// Why a client message that decoded is still not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidMessage {
    /// A float field of `input` is NaN or infinite.
    #[error("input.{0}: not a finite number")]
    NotFinite(&'static str),
    /// Chat text over the limit.
    #[error("chat.text: {chars} characters, limit {limit}")]
    ChatTooLong {
        /// Characters sent.
        chars: usize,
        /// Characters allowed.
        limit: usize,
    },
}

impl ClientMessage {
    /// The rate-limit class this message belongs to.
    pub fn kind(&self) -> MessageKind {
        match self {
            ClientMessage::Input(_) => MessageKind::Input,
            ClientMessage::Ping(_) => MessageKind::Ping,
            ClientMessage::Chat(_) => MessageKind::Chat,
            ClientMessage::Resync => MessageKind::Resync,
        }
    }
}

/// Client message kinds, each with its own rate-limit quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `input`
    Input,
    /// `chat`
    Chat,
    /// `ping`
    Ping,
    /// `resync`
    Resync,
}

impl MessageKind {
    /// The value of `t`.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageKind::Input => "input",
            MessageKind::Chat => "chat",
            MessageKind::Ping => "ping",
            MessageKind::Resync => "resync",
        }
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum ServerMessage {
    /// Always the first message of a session.
    Welcome(Welcome),
    /// A state snapshot.
    Snap(Snap),
    /// Answer to a `ping`.
    Pong(Pong),
    /// A chat line relayed to the room.
    Chat(ChatRelay),
    /// Something happened in the game.
    Event(Event),
    /// Sent right before a close that has a reason.
    Error(ErrorMessage),
    /// Cluster only: the room now lives on another node; reconnect there (the session
    /// then closes with 1012).
    Moved(Moved),
}

/// `{"t":"welcome",...}`: the engine's keys, then the game's own (flattened into the same
/// map; the arena's are the keys of [`TuningInfo`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Welcome {
    /// The player's wire id (also its entity id in snapshots). For spectators, an id that
    /// never appears among entities.
    pub you: u32,
    /// Room name.
    pub room: String,
    /// Current simulation tick.
    pub tick: u32,
    /// Simulation ticks per second.
    pub tick_rate: u16,
    /// Current map name.
    pub map: String,
    /// The negotiated subprotocol.
    pub protocol: String,
    /// Snapshots per second.
    #[serde(default)]
    pub snap_rate: u16,
    /// `player` or `spectator`.
    #[serde(default)]
    pub role: String,
    /// True when this connection re-attached to an entity kept after a dropped connection.
    #[serde(default)]
    pub resumed: bool,
    /// The game the room plays (`arena` for the reference game).
    #[serde(default)]
    pub game: String,
    /// v2 only: what the fields of each entity kind are, so a client can decode any
    /// game's rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<RowSchema>,
    /// The game's own keys.
    #[serde(flatten)]
    pub info: serde_json::Map<String, serde_json::Value>,
}

impl Welcome {
    /// A number among the game's keys (`player_radius`, say), if present.
    pub fn info_f64(&self, key: &str) -> Option<f64> {
        self.info.get(key).and_then(serde_json::Value::as_f64)
    }
}

/// `{"t":"snap","tick":u32,"ack":u32,"ents":[[id,kind,x,y,...],...]}`
///
/// The server writes the keys in exactly this order, so a client can read `tick` and
/// `ack` without decoding `ents` (see [`crate::codec::peek_snap_header`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snap {
    /// Simulation tick the snapshot was taken at.
    pub tick: u32,
    /// Last input `seq` of this player the simulation has applied (0 before any).
    pub ack: u32,
    /// Every entity in the room.
    pub ents: Vec<Entity>,
}

/// `{"t":"pong","id":u32,"tick":u32}`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pong {
    /// The `id` of the `ping`.
    pub id: u32,
    /// The room's current tick.
    pub tick: u32,
}

/// `{"t":"chat","from":u32,"name":str,"text":str}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatRelay {
    /// Sender's wire id.
    pub from: u32,
    /// Sender's display name.
    pub name: String,
    /// The text, as sent.
    pub text: String,
}

/// `{"t":"error","code":str,"message":str}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// Machine-readable code, see [`crate::CloseReason::error_code`].
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

/// `{"t":"moved","url":str}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Moved {
    /// Where the room lives now: `ws[s]://HOST:PORT/play?room=NAME`. Reconnect there with
    /// the same account to resume.
    pub url: String,
}

/// `{"t":"event","e":...}`: the game's discrete happenings, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
pub enum Event {
    /// A player is in the room (sent for every present player after `welcome`, then on
    /// each join). Carries what snapshots do not: the display name.
    Player {
        /// Wire id.
        id: u32,
        /// Display name.
        name: String,
    },
    /// A player left for good (normal close, or resume grace expired).
    Leave {
        /// Wire id.
        id: u32,
    },
    /// `victim` died; `killer` scored.
    Kill {
        /// Shooter's wire id.
        killer: u32,
        /// Victim's wire id.
        victim: u32,
    },
    /// A dead player is back at a spawn point.
    Respawn {
        /// Wire id.
        id: u32,
        /// Spawn x.
        x: f32,
        /// Spawn y.
        y: f32,
    },
    /// A pickup was taken.
    Pickup {
        /// The pickup's entity id.
        id: u32,
        /// The player who took it.
        by: u32,
    },
    /// The map in play, with its geometry (sent after `welcome` and on every map change).
    Map(MapInfo),
    /// A round began. Scores are zero.
    RoundStart {
        /// Round number in this room, from 1.
        round: u32,
        /// Map name.
        map: String,
        /// Tick at which the round ends by time.
        end_tick: u32,
        /// Kills that win the round.
        score_limit: u32,
    },
    /// A round ended.
    RoundEnd {
        /// Round number.
        round: u32,
        /// Winner's wire id, absent on a draw or an empty room.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        winner: Option<u32>,
        /// `[id, score]` for every player, best first.
        scores: Vec<(u32, i32)>,
        /// Tick at which the next round starts.
        next_tick: u32,
    },
    /// The arena's tuning that clients use changed (a hot reload): the same keys as the
    /// arena's `welcome`, so a client that predicts its own movement uses the new values
    /// from the step this event follows.
    Tuning(TuningInfo),
    /// An event this decoder does not know (another game's, or a newer version's).
    #[serde(other)]
    Unknown,
}

/// The arena's tuning as clients see it: its `welcome` keys and its `tuning` event.
/// Enough to draw players and health bars, and to run the movement rules (acceleration
/// towards `max_speed` times the input direction, collisions of a `player_radius` circle
/// with the map's walls and bounds) for client-side prediction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TuningInfo {
    /// A player's collision radius, units.
    pub player_radius: f32,
    /// Health at spawn.
    pub max_hp: u16,
    /// Top speed, units per second.
    pub max_speed: f32,
    /// Acceleration towards the input direction (and braking without input), units/s².
    pub acceleration: f32,
}

/// Geometry of a map, in world units (y grows downwards).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapInfo {
    /// Map name (file stem).
    pub name: String,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
    /// Axis-aligned walls as `[x, y, w, h]` (top-left corner and size).
    pub walls: Vec<[f32; 4]>,
}
