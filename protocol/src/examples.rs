//! Example values for tests, documentation and fuzz seeds: the `input` and the entities
//! behind the golden bytes of `PROTOCOL.md`. Plain data; nothing here is used by the
//! codecs.

use crate::entity::{Entity, PICKUP_ACTIVE, PLAYER_DEAD};
use crate::message::Input;

/// The `input` of the golden bytes: `seq` 42, moving right and a little up, aiming at 1.5
/// rad, firing.
pub fn input() -> Input {
    Input {
        seq: 42,
        mx: 1.0,
        my: -0.5,
        aim: 1.5,
        fire: true,
    }
}

/// One row of every entity kind: a living player, a dead one, a projectile and an active
/// pickup. The golden bytes in `PROTOCOL.md` encode a snapshot of these.
pub fn entities() -> Vec<Entity> {
    vec![
        Entity::Player {
            id: 1,
            x: 12.5,
            y: 8.0,
            aim: 0.5,
            hp: 100,
            score: 3,
            flags: 0,
        },
        Entity::Player {
            id: 2,
            x: 30.0,
            y: 20.25,
            aim: -2.0,
            hp: 0,
            score: -1,
            flags: PLAYER_DEAD,
        },
        Entity::Projectile {
            id: 9,
            x: 14.0,
            y: 8.5,
            vx: 30.0,
            vy: 0.0,
            owner: 1,
        },
        Entity::Pickup {
            id: 5,
            x: 20.0,
            y: 15.0,
            flags: PICKUP_ACTIVE,
        },
    ]
}
