//! Example values for tests, documentation and fuzz seeds: the `input`, the entities and
//! the v2 snapshots behind the golden bytes of `PROTOCOL.md`. Plain data and the frames
//! the encoders make of it; nothing here is used by the codecs.

use crate::entity::{Entity, PICKUP_ACTIVE, PLAYER_DEAD, arena_schema};
use crate::message::Input;
use crate::rows::Rows;
use crate::v2::{Encoder, EncoderConfig, Member, View};

/// The `input` of the golden bytes: `seq` 42, moving right and a little up, aiming at 1.5
/// rad, firing.
pub fn input() -> Input {
    Input {
        seq: 42,
        mx: 1.0,
        my: -0.5,
        aim: 1.5,
        fire: true,
        view: None,
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

/// The two snapshots behind the v2 golden bytes, at ticks 100 and 101 (20 Hz): the
/// entities of [`entities`] (player 1 running right at 8 units/s, the projectile flying)
/// plus projectile 7 of player 2. At tick 101 player 1 has turned and aims elsewhere,
/// player 2 has respawned, the pickup was taken, projectile 7 is gone, projectile 10 is
/// new, and projectile 9 flew exactly as predicted.
pub fn v2_rows() -> [Rows; 2] {
    let mut before = Rows::new();
    for e in entities() {
        let velocity = if e.id() == 1 { (8.0, 0.0) } else { (0.0, 0.0) };
        e.push_row(&mut before, velocity);
    }
    let shot = |id, x, y, vx, vy, owner| Entity::Projectile {
        id,
        x,
        y,
        vx,
        vy,
        owner,
    };
    shot(7, 28.0, 20.0, -30.0, 0.0, 2).push_row(&mut before, (0.0, 0.0));
    let mut after = Rows::new();
    let moved = [
        Entity::Player {
            id: 1,
            x: 12.8,
            y: 8.15,
            aim: 0.6,
            hp: 100,
            score: 3,
            flags: 0,
        },
        Entity::Player {
            id: 2,
            x: 3.0,
            y: 4.0,
            aim: -2.0,
            hp: 100,
            score: -1,
            flags: 0,
        },
        shot(9, 15.5, 8.5, 30.0, 0.0, 1),
        Entity::Pickup {
            id: 5,
            x: 20.0,
            y: 15.0,
            flags: 0,
        },
        shot(10, 13.0, 8.4, 27.0, 13.5, 1),
    ];
    for e in moved {
        let velocity = if e.id() == 1 { (6.0, 3.0) } else { (0.0, 0.0) };
        e.push_row(&mut after, velocity);
    }
    [before, after]
}

/// The v2 golden frames, at 20 Hz: the keyframe of tick 100 (`ack` 42) and the delta from
/// tick 100 to 101 (`ack` 43) of [`v2_rows`], for a player who sees everything.
pub fn v2_frames() -> [Vec<u8>; 2] {
    let schema = arena_schema();
    let mut enc = Encoder::new(&schema, EncoderConfig::new(20)).expect("the arena schema");
    let mut member = Member::new();
    let [before, after] = v2_rows();
    enc.begin_tick(100, &before).expect("valid rows");
    let key = enc.encode_for(&mut member, None, View::Everything, 42);
    enc.begin_tick(101, &after).expect("valid rows");
    let delta = enc.encode_for(&mut member, Some(100), View::Everything, 43);
    [key.to_bytes().to_vec(), delta.to_bytes().to_vec()]
}
