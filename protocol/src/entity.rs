//! The arena's entity rows, typed: what its `snap` messages carry.
//!
//! Each entity is a flat array `[id, kind, x, y, ...]` rather than a map: snapshots are
//! the bulk of the traffic and keys would double their size. `id, kind, x, y` are the
//! engine's; the fields after `y` are the arena's and depend on `kind`, as declared once
//! in [`arena_schema`] (which the server's arena writes its rows by, and which v2 clients
//! receive). Decoders ignore trailing fields they do not know and keep rows of unknown
//! kinds as [`Entity::Other`], so new fields and kinds can be added within v1.

use std::fmt;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::rows::{FieldDef, FieldType, KindDef, Row, RowHead, RowSchema, Rows};

/// Player entity flag: dead, waiting to respawn.
pub const PLAYER_DEAD: u8 = 1;
/// Player entity flag: connection dropped, entity kept for the resume grace period.
pub const PLAYER_AWAY: u8 = 2;
/// Pickup entity flag: available to take.
pub const PICKUP_ACTIVE: u8 = 1;

/// The `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum EntityKind {
    /// `0`: a player.
    Player = 0,
    /// `1`: a projectile in flight.
    Projectile = 1,
    /// `2`: a health pickup.
    Pickup = 2,
}

/// One row of `ents`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Entity {
    /// `[id, 0, x, y, aim, hp, score, flags]`
    Player {
        /// Wire id (the `you` of its owner).
        id: u32,
        /// Centre x.
        x: f32,
        /// Centre y.
        y: f32,
        /// Aim angle in radians.
        aim: f32,
        /// Health points.
        hp: u16,
        /// Kills this round.
        score: i32,
        /// [`PLAYER_DEAD`] | [`PLAYER_AWAY`].
        flags: u8,
    },
    /// `[id, 1, x, y, vx, vy, owner]`
    Projectile {
        /// Wire id.
        id: u32,
        /// Position x.
        x: f32,
        /// Position y.
        y: f32,
        /// Velocity x, units per second (lets clients extrapolate).
        vx: f32,
        /// Velocity y, units per second.
        vy: f32,
        /// Shooter's wire id.
        owner: u32,
    },
    /// `[id, 2, x, y, flags]`
    Pickup {
        /// Wire id.
        id: u32,
        /// Centre x.
        x: f32,
        /// Centre y.
        y: f32,
        /// [`PICKUP_ACTIVE`].
        flags: u8,
    },
    /// A row of a kind this decoder does not know; its extra fields are skipped.
    Other {
        /// Wire id.
        id: u32,
        /// Kind column.
        kind: u8,
        /// Position x.
        x: f32,
        /// Position y.
        y: f32,
    },
}

impl Entity {
    /// Wire id.
    pub fn id(&self) -> u32 {
        match *self {
            Entity::Player { id, .. }
            | Entity::Projectile { id, .. }
            | Entity::Pickup { id, .. }
            | Entity::Other { id, .. } => id,
        }
    }

    /// Position.
    pub fn pos(&self) -> (f32, f32) {
        match *self {
            Entity::Player { x, y, .. }
            | Entity::Projectile { x, y, .. }
            | Entity::Pickup { x, y, .. }
            | Entity::Other { x, y, .. } => (x, y),
        }
    }

    /// The `kind` column.
    pub fn kind(&self) -> u8 {
        match *self {
            Entity::Player { .. } => EntityKind::Player as u8,
            Entity::Projectile { .. } => EntityKind::Projectile as u8,
            Entity::Pickup { .. } => EntityKind::Pickup as u8,
            Entity::Other { kind, .. } => kind,
        }
    }
}

/// v2 resolution of positions and of real-valued fields: 1/64 unit.
pub const POSITION_SCALE: f32 = 64.0;
/// v2 resolution of velocities: 1/256 unit per second, so a dead-reckoned position drifts
/// by less than one position step in four seconds.
pub const VELOCITY_SCALE: f32 = 256.0;
/// v2 resolution of the aim angle: 2^10 steps per turn (about 0.35°).
pub const AIM_BITS: u8 = 10;

/// The arena's row declaration: field order, representation and resolution per kind.
pub fn arena_schema() -> RowSchema {
    let velocity = FieldType::Real {
        scale: VELOCITY_SCALE,
    };
    RowSchema {
        position_scale: POSITION_SCALE,
        kinds: vec![
            KindDef {
                kind: EntityKind::Player as u8,
                name: "player".into(),
                fields: vec![
                    FieldDef::new("aim", FieldType::Angle { bits: AIM_BITS }),
                    FieldDef::new("hp", FieldType::UInt),
                    FieldDef::new("score", FieldType::Int),
                    FieldDef::new("flags", FieldType::Flags),
                    FieldDef::v2_only("vx", velocity),
                    FieldDef::v2_only("vy", velocity),
                ],
                velocity: Some([4, 5]),
            },
            KindDef {
                kind: EntityKind::Projectile as u8,
                name: "projectile".into(),
                fields: vec![
                    FieldDef::new("vx", velocity),
                    FieldDef::new("vy", velocity),
                    FieldDef::new("owner", FieldType::Ref),
                ],
                velocity: Some([0, 1]),
            },
            KindDef {
                kind: EntityKind::Pickup as u8,
                name: "pickup".into(),
                fields: vec![FieldDef::new("flags", FieldType::Flags)],
                velocity: None,
            },
        ],
    }
}

impl Entity {
    /// Appends this entity as a row of [`arena_schema`]. A player's velocity (v2 only) is
    /// given separately because v1's typed row does not carry it.
    pub fn push_row(&self, rows: &mut Rows, velocity: (f32, f32)) {
        let (x, y) = self.pos();
        let head = RowHead {
            id: self.id(),
            kind: self.kind(),
            x,
            y,
        };
        match *self {
            Entity::Player {
                aim,
                hp,
                score,
                flags,
                ..
            } => rows.push(
                head,
                &[
                    f64::from(aim),
                    f64::from(hp),
                    f64::from(score),
                    f64::from(flags),
                    f64::from(velocity.0),
                    f64::from(velocity.1),
                ],
            ),
            Entity::Projectile { vx, vy, owner, .. } => {
                rows.push(head, &[f64::from(vx), f64::from(vy), f64::from(owner)])
            }
            Entity::Pickup { flags, .. } => rows.push(head, &[f64::from(flags)]),
            Entity::Other { .. } => rows.push(head, &[]),
        }
    }

    /// The typed view of a row of [`arena_schema`] (fields it lacks read as 0).
    pub fn from_row(row: Row<'_>) -> Entity {
        let RowHead { id, kind, x, y } = row.head;
        let f = |i: usize| row.fields.get(i).copied().unwrap_or(0.0);
        match kind {
            0 => Entity::Player {
                id,
                x,
                y,
                aim: f(0) as f32,
                hp: f(1) as u16,
                score: f(2) as i32,
                flags: f(3) as u8,
            },
            1 => Entity::Projectile {
                id,
                x,
                y,
                vx: f(0) as f32,
                vy: f(1) as f32,
                owner: f(2) as u32,
            },
            2 => Entity::Pickup {
                id,
                x,
                y,
                flags: f(0) as u8,
            },
            kind => Entity::Other { id, kind, x, y },
        }
    }
}

impl Serialize for Entity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match *self {
            Entity::Player {
                id,
                x,
                y,
                aim,
                hp,
                score,
                flags,
            } => {
                let mut t = s.serialize_tuple(8)?;
                t.serialize_element(&id)?;
                t.serialize_element(&(EntityKind::Player as u8))?;
                t.serialize_element(&x)?;
                t.serialize_element(&y)?;
                t.serialize_element(&aim)?;
                t.serialize_element(&hp)?;
                t.serialize_element(&score)?;
                t.serialize_element(&flags)?;
                t.end()
            }
            Entity::Projectile {
                id,
                x,
                y,
                vx,
                vy,
                owner,
            } => {
                let mut t = s.serialize_tuple(7)?;
                t.serialize_element(&id)?;
                t.serialize_element(&(EntityKind::Projectile as u8))?;
                t.serialize_element(&x)?;
                t.serialize_element(&y)?;
                t.serialize_element(&vx)?;
                t.serialize_element(&vy)?;
                t.serialize_element(&owner)?;
                t.end()
            }
            Entity::Pickup { id, x, y, flags } => {
                let mut t = s.serialize_tuple(5)?;
                t.serialize_element(&id)?;
                t.serialize_element(&(EntityKind::Pickup as u8))?;
                t.serialize_element(&x)?;
                t.serialize_element(&y)?;
                t.serialize_element(&flags)?;
                t.end()
            }
            Entity::Other { id, kind, x, y } => {
                let mut t = s.serialize_tuple(4)?;
                t.serialize_element(&id)?;
                t.serialize_element(&kind)?;
                t.serialize_element(&x)?;
                t.serialize_element(&y)?;
                t.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Entity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(RowVisitor)
    }
}

struct RowVisitor;

fn next<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    index: usize,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, &RowVisitor))
}

impl<'de> Visitor<'de> for RowVisitor {
    type Value = Entity;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an entity row [id, kind, x, y, ...]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entity, A::Error> {
        let id: u32 = next(&mut seq, 0)?;
        let kind: u8 = next(&mut seq, 1)?;
        let x: f32 = next(&mut seq, 2)?;
        let y: f32 = next(&mut seq, 3)?;
        let entity = match kind {
            0 => Entity::Player {
                id,
                x,
                y,
                aim: next(&mut seq, 4)?,
                hp: next(&mut seq, 5)?,
                score: next(&mut seq, 6)?,
                flags: next(&mut seq, 7)?,
            },
            1 => Entity::Projectile {
                id,
                x,
                y,
                vx: next(&mut seq, 4)?,
                vy: next(&mut seq, 5)?,
                owner: next(&mut seq, 6)?,
            },
            2 => Entity::Pickup {
                id,
                x,
                y,
                flags: next(&mut seq, 4)?,
            },
            kind => Entity::Other { id, kind, x, y },
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(entity)
    }
}
