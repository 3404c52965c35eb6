//! The seam between the engine and a game: what a game implements so that the engine can
//! serve it.
//!
//! The engine owns everything around the game — the handshake and tokens, sessions,
//! subprotocols and the message envelope (`t`, `seq`, `ack`), rate limits, chat, the
//! fixed tick with bounded catch-up, snapshot framing and encode-once sharing, outboxes,
//! resume and replacement, spectators, hot reload at a tick boundary, map rotation and
//! metrics — and never looks inside the game. A game owns its rules, its input fields,
//! its events, the fields of its entity rows after `id, kind, x, y`, and its assets.
//!
//! The engine drives a game from one room task, one call at a time, with time only ever
//! given as the fixed step `dt`: a game must be deterministic for a given seed and call
//! sequence (no IO, no clock, no threads, no hash-order iteration), which is what makes
//! [`Game::state_hash`], [`Game::checkpoint`] and replays meaningful.
//!
//! `server/GAME.md` is the guide to writing one; [`crate::arena`] is the reference game
//! and `server/examples/tag.rs` a second, small one. Must not depend on any game.

use std::fmt::Debug;
use std::path::Path;

use rallypoint_protocol::inbound::InputFields;
use rallypoint_protocol::rows::{RowSchema, Rows};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::assets::{Assets, Check, Files, Loaded, Report};

/// A player's wire id: its entity id in snapshot rows and the `you` of its session. The
/// game chooses it (small integers keep rows short) and keeps it for the player's life.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
pub struct PlayerId(pub u32);

/// What the engine knows about an input besides its fields, for rules that depend on
/// what the player had been shown (the arena's lag compensation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputContext {
    /// The tick of the newest snapshot the engine handed this player's connection before
    /// the input arrived; `None` before its first. A client cannot have drawn a newer
    /// world than this, whatever its input claims.
    pub latest_sent: Option<u32>,
}

/// Why a checkpoint could not be restored.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The bytes are not a checkpoint of this game (or of this version of it).
    #[error("not a checkpoint of this game: {0}")]
    Corrupt(String),
    /// The checkpoint names a map the assets in force do not have.
    #[error("the checkpoint's map `{0}` is not in the assets")]
    UnknownMap(String),
}

/// A game the engine can serve. See the module docs for the division of labour.
pub trait Game: Sized + Send + 'static {
    /// The game's name, sent to clients in `welcome.game`.
    const NAME: &'static str;

    /// The game's validated assets (its settings and levels), loaded beside the engine's.
    type Assets: GameAssets;

    /// The fields of an `input` message beyond the engine's `t` and `seq`, decoded with
    /// the same size and depth limits as every client message and validated by
    /// [`InputFields::validate`] (a failure closes the session with 1007 and the
    /// validation's message).
    type Input: InputFields + Send + 'static;

    /// A game event: serializes as a map whose first key is the tag `e`; the engine wraps
    /// it as `{"t":"event", ...}` and delivers it to every member in order.
    type Event: Serialize + Clone + Send + 'static;

    /// What the fields of each entity kind's rows are, so the engine can encode, quantize
    /// and filter them without knowing what they mean.
    fn schema() -> RowSchema;

    /// A new game on `map` (one of `assets`' maps, from the engine's rotation), with no
    /// players, seeded with `seed`, that will be stepped by `dt` seconds at a time.
    fn new(assets: &Self::Assets, map: &str, seed: u64, dt: f32) -> Self;

    /// A new asset version, applied at a tick boundary (the game decides what takes
    /// effect at once and what at its next round).
    fn reload(&mut self, assets: &Self::Assets);

    /// The map the next round is played on (the engine's rotation advanced, or the map
    /// files changed).
    fn queue_map(&mut self, assets: &Self::Assets, map: &str);

    /// The map in play (`welcome.map`).
    fn map_name(&self) -> &str;

    /// Steps taken so far: snapshots and `welcome` are stamped with it, so it must be the
    /// same clock the game's own events use.
    fn tick(&self) -> u32;

    /// A new player, present and controllable from the next step.
    fn add_player(&mut self) -> PlayerId;

    /// The player leaves for good.
    fn remove_player(&mut self, id: PlayerId);

    /// The player's connection dropped (`away = true`; the engine keeps the player for the
    /// resume grace period and sends it no input meanwhile) or it came back.
    fn set_away(&mut self, id: PlayerId, away: bool);

    /// One accepted input of the player, in `seq` order; several may arrive between two
    /// steps. `context` says what the engine had sent the player by then.
    fn apply_input(&mut self, id: PlayerId, input: &Self::Input, context: InputContext);

    /// Advances the game by one fixed step.
    fn step(&mut self, dt: f32);

    /// Moves the events produced since the last call into `out`, in order.
    fn drain_events(&mut self, out: &mut Vec<Self::Event>);

    /// Whether `event` ends a round: the engine then advances its map rotation and calls
    /// [`Game::queue_map`].
    fn ends_round(event: &Self::Event) -> bool;

    /// What a newcomer must learn right after `welcome` and before anything else (the
    /// arena: the map's geometry and the current round).
    fn intro(&self, out: &mut Vec<Self::Event>);

    /// The game's own `welcome` keys (the arena: player radius, health, movement tuning).
    fn welcome_info(&self) -> serde_json::Map<String, serde_json::Value>;

    /// Appends one row per entity, following [`Game::schema`]. A player's row must have
    /// the player's id.
    fn write_rows(&self, rows: &mut Rows);

    /// What an operator sees of a player in `/admin/rooms` (the arena: score, health).
    fn describe_player(&self, id: PlayerId) -> serde_json::Value;

    /// A hash of the whole game state: equal hashes after the same calls mean the games
    /// have not diverged.
    fn state_hash(&self) -> u64;

    /// The whole game state as bytes, to [`Game::restore`] on this or another machine.
    fn checkpoint(&self) -> Vec<u8>;

    /// A game from a [`Game::checkpoint`]; it continues exactly as the original would.
    fn restore(assets: &Self::Assets, bytes: &[u8]) -> Result<Self, RestoreError>;
}

/// A game's assets: its settings (its tables of `game.toml`) and its own files, loaded
/// and validated beside the engine's settings from one directory.
///
/// The engine reads `game.toml` once for both: it parses it keeping positions, reads the
/// engine's keys and [`GameAssets::Settings`] with serde, reports keys neither knows
/// (with did-you-mean, or the table a misplaced key belongs in), runs both validation
/// passes, then hands the game its settings to load its own files through [`Files`],
/// checks the rotation against the game's maps, hashes every file and reports every
/// problem at once. `server/GAME.md` walks through it.
pub trait GameAssets: Sized + Clone + Debug + PartialEq + Send + Sync + 'static {
    /// The game's tables of `game.toml`, read with serde. Every field needs a default
    /// (`#[serde(default)]`; whether a key must be written is the validation pass's
    /// call), and the type must serialize back to the same keys: that is how the engine
    /// knows which keys there are.
    type Settings: Serialize + DeserializeOwned + Default;

    /// The map the rotation plays when `game.toml` does not set `maps`.
    const DEFAULT_MAP: &'static str;

    /// The validation pass over the settings serde read: ranges with units, rules
    /// between keys. `check` is at the top level of `game.toml`.
    fn check_settings(settings: &Self::Settings, check: &mut Check<'_>);

    /// The game's data from its settings (defaults standing in for anything invalid)
    /// and its own files, read through `files`, which reports their problems.
    fn load(settings: Self::Settings, files: &mut Files<'_>) -> Loaded<Self>;

    /// "map `name` not found" for a rotation naming a map the game does not have, with
    /// where it was looked for (the arena: "there is no `maps/name.toml`").
    fn missing_map(name: &str) -> String {
        format!("map `{name}` not found")
    }

    /// Loads and validates an assets directory: the engine's settings (the top-level keys
    /// of `game.toml`) and the game's own data, every problem reported at once.
    fn load_dir(dir: &Path) -> Result<Assets<Self>, Report> {
        crate::assets::load_dir(dir)
    }

    /// Whether the game has a map by this name (the engine's rotation names maps).
    fn has_map(&self, name: &str) -> bool;

    /// The map as an SVG drawing (`render-map`, `/admin/maps/<name>.svg`), for games with
    /// maps worth drawing.
    fn render_map(&self, _name: &str) -> Option<String> {
        None
    }

    /// One line for `rallypoint check`'s verdict (the arena: "2 maps").
    fn summary(&self) -> String;

    /// What an operator sees of the game's assets in `/admin/assets`.
    fn describe(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}
