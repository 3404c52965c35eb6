//! What a room's checkpoint holds: the game's own checkpoint plus the engine's side of the
//! room — each player's account (`sub`), display name, wire id and last applied input
//! `seq`, connected or away — and the map rotation, as one MessagePack document.
//!
//! The document is checked as it is read (format, game, player ids and accounts unique,
//! accounts within the token limits), so a restore never builds a room the engine could
//! not have built itself. Checkpoints come from the cluster directory, which only the
//! room's owners write; the checks bound what a damaged one can do, they are not a
//! defence against a hostile writer.
//!
//! Pure data and its encoding: the core ([`super::core`]) builds and applies it. Must not
//! read a clock or look inside the game's bytes.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::auth::MAX_SUB_BYTES;
use crate::game::RestoreError;

/// The format this version writes and reads. A document of another format is refused
/// (the room then opens afresh) rather than misread.
const FORMAT: u32 = 1;

/// Longest display name kept from a checkpoint, bytes (names are cleaned to far less
/// when they are first set).
const MAX_NAME_BYTES: usize = 256;

/// A room as its checkpoint holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct SavedRoom {
    /// [`FORMAT`].
    pub(super) format: u32,
    /// The game's name (`Game::NAME`): a checkpoint of another game is refused.
    pub(super) game: String,
    /// Index of the map in play in the engine's rotation.
    pub(super) rotation: u32,
    /// Every player entity, connected or away.
    pub(super) players: Vec<SavedPlayer>,
    /// The game's checkpoint (`Game::checkpoint`).
    #[serde(with = "serde_bytes")]
    pub(super) state: Vec<u8>,
}

/// One player entity and who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct SavedPlayer {
    /// Wire id (the entity's id in the game).
    pub(super) id: u32,
    /// Account.
    pub(super) sub: String,
    /// Display name.
    pub(super) name: String,
    /// Last input `seq` applied for its session.
    pub(super) last_seq: u32,
    /// A session controlled it when the checkpoint was taken (else it was away).
    pub(super) connected: bool,
}

impl SavedRoom {
    /// A document of the current format.
    pub(super) fn new(
        game: &str,
        rotation: usize,
        players: Vec<SavedPlayer>,
        state: Vec<u8>,
    ) -> Self {
        SavedRoom {
            format: FORMAT,
            game: game.to_owned(),
            rotation: u32::try_from(rotation).unwrap_or(u32::MAX),
            players,
            state,
        }
    }

    /// The document as bytes.
    pub(super) fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a room checkpoint always serializes")
    }

    /// Reads and checks a document written for game `game`.
    pub(super) fn decode(bytes: &[u8], game: &str) -> Result<SavedRoom, RestoreError> {
        let saved: SavedRoom = rmp_serde::from_slice(bytes)
            .map_err(|e| RestoreError::Corrupt(format!("room checkpoint: {e}")))?;
        if saved.format != FORMAT {
            return Err(corrupt(format!(
                "room checkpoint format {} (this server reads {FORMAT})",
                saved.format
            )));
        }
        if saved.game != game {
            return Err(corrupt(format!(
                "a checkpoint of `{}`, not `{game}`",
                saved.game
            )));
        }
        let mut ids = HashSet::new();
        let mut subs = HashSet::new();
        for p in &saved.players {
            if p.sub.is_empty() || p.sub.len() > MAX_SUB_BYTES || p.name.len() > MAX_NAME_BYTES {
                return Err(corrupt(format!(
                    "player {}: account or name out of bounds",
                    p.id
                )));
            }
            if !ids.insert(p.id) || !subs.insert(p.sub.as_str()) {
                return Err(corrupt(format!(
                    "player {} or its account appears twice",
                    p.id
                )));
            }
        }
        Ok(saved)
    }
}

fn corrupt(why: String) -> RestoreError {
    RestoreError::Corrupt(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(id: u32, sub: &str) -> SavedPlayer {
        SavedPlayer {
            id,
            sub: sub.into(),
            name: sub.into(),
            last_seq: 9,
            connected: true,
        }
    }

    #[test]
    fn a_document_reads_back_as_written() {
        let saved = SavedRoom::new("arena", 1, vec![player(1, "a"), player(2, "b")], vec![1, 2]);
        assert_eq!(SavedRoom::decode(&saved.encode(), "arena").unwrap(), saved);
    }

    #[test]
    fn other_games_formats_and_damage_are_refused() {
        let ok = SavedRoom::new("arena", 0, vec![player(1, "a")], Vec::new());
        assert!(SavedRoom::decode(&ok.encode(), "tag").is_err());
        let newer = SavedRoom {
            format: FORMAT + 1,
            ..ok.clone()
        };
        assert!(SavedRoom::decode(&newer.encode(), "arena").is_err());
        let twice = SavedRoom::new("arena", 0, vec![player(1, "a"), player(2, "a")], Vec::new());
        assert!(SavedRoom::decode(&twice.encode(), "arena").is_err());
        let nobody = SavedRoom::new("arena", 0, vec![player(1, "")], Vec::new());
        assert!(SavedRoom::decode(&nobody.encode(), "arena").is_err());
        let bytes = ok.encode();
        assert!(SavedRoom::decode(&bytes[..bytes.len() / 2], "arena").is_err());
        assert!(SavedRoom::decode(b"\xc1", "arena").is_err());
    }
}
