//! Hand-offs: how a churning or moved bot knows what its player looked like when it left
//! its connection, and whether the resumed player is the same.
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
//! A move to another node (`moved`, close 1012) needs no rest: the draining node writes
//! the room's final state right after the last tick it sent a snapshot of, so the last
//! snapshot before `moved` is what the new node restores ([`as_seen`]). Only the
//! player's own shots still flying then may add to its score on the new node before it
//! is back ([`Verdict::ShotsLanded`]). A player dead at the move is compared by score
//! alone: its respawn may come, somewhere else, before it is back. The resumed bot sends nothing until that first
//! snapshot, so none of its new inputs is in it.
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
    /// Some of its shots were still flying (a move; never at rest).
    pub shots_in_flight: bool,
    /// Dead, waiting for its respawn (a move; never at rest): only the score counts.
    pub dead: bool,
}

/// What the first snapshot after a resume showed.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Same position and score.
    Kept,
    /// A new round started while the bot was away: everyone respawned with no score.
    NewRound,
    /// Same position; the score grew by kills of shots that were still flying when the
    /// player left.
    ShotsLanded,
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

/// Whether one of `me`'s shots is still flying.
fn shooting(me: u32, ents: &[Entity]) -> bool {
    ents.iter()
        .any(|e| matches!(*e, Entity::Projectile { owner, .. } if owner == me))
}

/// `me` as this snapshot shows it, when present: what a move must keep.
pub fn as_seen(me: u32, round: u32, ents: &[Entity]) -> Option<Standing> {
    let (x, y, score, flags) = row(me, ents)?;
    (flags & PLAYER_AWAY == 0).then(|| Standing {
        x,
        y,
        score,
        round,
        shots_in_flight: shooting(me, ents),
        dead: flags & PLAYER_DEAD != 0,
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
    (alive && previous == Some((x, y)) && !shooting(me, ents)).then_some(Standing {
        x,
        y,
        score,
        round,
        shots_in_flight: false,
        dead: false,
    })
}

/// Compares the standing before the drop with the first snapshot after the resume, in
/// round `round`. `None` when the snapshot does not show `me` at all.
pub fn compare(me: u32, before: &Standing, round: u32, ents: &[Entity]) -> Option<Verdict> {
    let (x, y, score, _) = row(me, ents)?;
    if round != before.round {
        return Some(Verdict::NewRound);
    }
    let place = before.dead || (x, y) == (before.x, before.y);
    if place && score == before.score {
        return Some(Verdict::Kept);
    }
    if place && before.shots_in_flight && score > before.score {
        return Some(Verdict::ShotsLanded);
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
                round: 1,
                shots_in_flight: false,
                dead: false,
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
            shots_in_flight: false,
            dead: false,
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
        let scored = [player(3, 10.0, 20.0, 3, 0)];
        assert!(
            matches!(compare(3, &before, 4, &scored), Some(Verdict::Lost(_))),
            "no shot was flying: a higher score is a loss too"
        );
    }

    #[test]
    fn a_move_keeps_the_player_as_last_seen_and_its_flying_shots_may_still_score() {
        let firing = [player(3, 10.0, 20.0, 2, 0), shot(3)];
        let seen = as_seen(3, 4, &firing).unwrap();
        assert!(seen.shots_in_flight && !seen.dead);
        assert_eq!(as_seen(3, 4, &[player(3, 1.0, 1.0, 0, PLAYER_AWAY)]), None);
        let dead = as_seen(3, 4, &[player(3, 1.0, 1.0, 2, PLAYER_DEAD)]).unwrap();
        assert!(dead.dead);
        let respawned = [player(3, 12.0, 9.0, 2, 0)];
        assert_eq!(
            compare(3, &dead, 4, &respawned),
            Some(Verdict::Kept),
            "dead at the move: the score alone counts"
        );
        let reset = [player(3, 12.0, 9.0, 0, 0)];
        assert!(matches!(
            compare(3, &dead, 4, &reset),
            Some(Verdict::Lost(_))
        ));
        let landed = [player(3, 10.0, 20.0, 3, 0)];
        assert_eq!(compare(3, &seen, 4, &landed), Some(Verdict::ShotsLanded));
        let elsewhere = [player(3, 11.0, 20.0, 3, 0)];
        assert!(matches!(
            compare(3, &seen, 4, &elsewhere),
            Some(Verdict::Lost(_))
        ));
        let fewer = [player(3, 10.0, 20.0, 1, 0)];
        assert!(matches!(
            compare(3, &seen, 4, &fewer),
            Some(Verdict::Lost(_))
        ));
    }
}
