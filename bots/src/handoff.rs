//! Churn hand-offs: how a churning bot knows what its player looked like when it dropped
//! the connection, and whether the resumed player is the same.
//!
//! The server freezes a dropped player where it stands, with its health and score, for
//! the resume grace period. A client cannot see the exact moment the server notices the
//! drop, so a bot that wants to check the promise first comes to rest: it sends neutral
//! input until every input is acknowledged, its player is alive and has not moved between
//! two snapshots, and none of its shots is still flying (a shot in flight could still
//! score). That [`Standing`] is what the resumed player must show in the first snapshot
//! after the resume, unless a new round started meanwhile (a new round respawns everyone
//! with no score, so there is nothing to compare).
//!
//! Pure: no IO, no clock.

use rallypoint_protocol::entity::{Entity, PLAYER_AWAY, PLAYER_DEAD};

/// A player at rest, as a snapshot showed it just before the bot dropped the connection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    /// Position.
    pub x: f32,
    /// Position.
    pub y: f32,
    /// Kills this round.
    pub score: i32,
    /// Round the bot last heard of.
    pub round: u32,
}

/// What the first snapshot after a resume showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Same position and score.
    Kept,
    /// A new round started while the bot was away: everyone respawned with no score.
    NewRound,
    /// Something differs; the text says what, for the report.
    Lost(String),
}

/// `me`'s row: position, score and flags.
fn row(me: u32, ents: &[Entity]) -> Option<(f32, f32, i32, u8)> {
    ents.iter().find_map(|e| match *e {
        Entity::Player {
            id,
            x,
            y,
            score,
            flags,
            ..
        } if id == me => Some((x, y, score, flags)),
        _ => None,
    })
}

/// `me`'s position in this snapshot, if it is alive and present.
pub fn position(me: u32, ents: &[Entity]) -> Option<(f32, f32)> {
    let (x, y, _, flags) = row(me, ents)?;
    (flags & (PLAYER_DEAD | PLAYER_AWAY) == 0).then_some((x, y))
}

/// `Some` when `me` is at rest: alive, at `previous` (its position in the snapshot
/// before), with none of its projectiles in flight. The caller also requires every input
/// to be acknowledged.
pub fn at_rest(
    me: u32,
    previous: Option<(f32, f32)>,
    round: u32,
    ents: &[Entity],
) -> Option<Standing> {
    let (x, y, score, flags) = row(me, ents)?;
    let alive = flags & (PLAYER_DEAD | PLAYER_AWAY) == 0;
    let shooting = ents
        .iter()
        .any(|e| matches!(*e, Entity::Projectile { owner, .. } if owner == me));
    (alive && previous == Some((x, y)) && !shooting).then_some(Standing { x, y, score, round })
}

/// Compares the standing before the drop with the first snapshot after the resume, in
/// round `round`. `None` when the snapshot does not show `me` at all.
pub fn compare(me: u32, before: &Standing, round: u32, ents: &[Entity]) -> Option<Verdict> {
    let (x, y, score, _) = row(me, ents)?;
    if round != before.round {
        return Some(Verdict::NewRound);
    }
    if (x, y, score) == (before.x, before.y, before.score) {
        return Some(Verdict::Kept);
    }
    Some(Verdict::Lost(format!(
        "player {me} left at ({}, {}) with score {} and came back at ({x}, {y}) with score {score}",
        before.x, before.y, before.score
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn player(id: u32, x: f32, y: f32, score: i32, flags: u8) -> Entity {
        Entity::Player {
            id,
            x,
            y,
            aim: 0.0,
            hp: 100,
            score,
            flags,
        }
    }

    fn shot(owner: u32) -> Entity {
        Entity::Projectile {
            id: 90,
            x: 1.0,
            y: 1.0,
            vx: 5.0,
            vy: 0.0,
            owner,
        }
    }

    #[test]
    fn at_rest_needs_the_same_place_twice_alive_and_no_shot_in_flight() {
        let still = [player(3, 10.0, 20.0, 2, 0), player(4, 1.0, 1.0, 0, 0)];
        assert_eq!(
            at_rest(3, None, 1, &still),
            None,
            "one snapshot is not rest"
        );
        assert_eq!(
            at_rest(3, Some((10.0, 20.0)), 1, &still),
            Some(Standing {
                x: 10.0,
                y: 20.0,
                score: 2,
                round: 1
            })
        );
        assert_eq!(at_rest(3, Some((10.5, 20.0)), 1, &still), None, "moving");
        let dead = [player(3, 10.0, 20.0, 2, PLAYER_DEAD)];
        assert_eq!(at_rest(3, Some((10.0, 20.0)), 1, &dead), None);
        let firing = [player(3, 10.0, 20.0, 2, 0), shot(3)];
        assert_eq!(at_rest(3, Some((10.0, 20.0)), 1, &firing), None);
        let others_firing = [player(3, 10.0, 20.0, 2, 0), shot(4)];
        assert!(at_rest(3, Some((10.0, 20.0)), 1, &others_firing).is_some());
        assert_eq!(at_rest(9, Some((10.0, 20.0)), 1, &still), None, "absent");
    }

    #[test]
    fn a_resumed_player_is_compared_exactly_within_a_round() {
        let before = Standing {
            x: 10.0,
            y: 20.0,
            score: 2,
            round: 4,
        };
        let same = [player(3, 10.0, 20.0, 2, 0)];
        assert_eq!(compare(3, &before, 4, &same), Some(Verdict::Kept));
        // Hit while leaving: health is not part of the promise, position and score are.
        let moved = [player(3, 10.0, 20.5, 2, 0)];
        assert!(matches!(
            compare(3, &before, 4, &moved),
            Some(Verdict::Lost(_))
        ));
        let reset = [player(3, 10.0, 20.0, 0, 0)];
        assert!(matches!(
            compare(3, &before, 4, &reset),
            Some(Verdict::Lost(_))
        ));
        assert_eq!(compare(3, &before, 5, &reset), Some(Verdict::NewRound));
        assert_eq!(compare(8, &before, 4, &same), None);
    }
}
