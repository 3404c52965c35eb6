//! Entity rows as the engine carries them, for any game: every row starts `id, kind, x, y`
//! (the engine's part) and continues with the fields the game declares for that kind in
//! its [`RowSchema`] (the game's part).
//!
//! A game writes its rows into a [`Rows`] buffer once per snapshot; the engine encodes
//! them without knowing what they mean: v1 writes every field declared for v1 in order
//! (reals and angles as float32, integers as MessagePack/JSON integers), v2 quantizes each
//! field at the resolution its [`FieldType`] declares and sends only what changed. The
//! schema travels to v2 clients in `welcome`, so a client can decode any game's rows.
//!
//! Pure data and encoding; no IO. Values are held as `f64`, which represents every
//! `f32`, `i32` and `u32` exactly, so nothing is lost between the game and the encoder.

use std::borrow::Cow;

use serde::ser::{SerializeSeq, SerializeTuple};
use serde::{Deserialize, Serialize, Serializer};

/// How a declared field is represented on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldType {
    /// A real number (a speed, a distance). v1: float32. v2: a whole number of
    /// `1/scale` steps.
    Real {
        /// Steps per unit: 64 means a resolution of 1/64.
        scale: f32,
    },
    /// An angle in radians. v1: float32. v2: `bits` bits per turn, wrapped into `[-π, π)`.
    Angle {
        /// Resolution as bits per full turn (1..=16).
        bits: u8,
    },
    /// A signed integer (`i32` range).
    Int,
    /// An unsigned integer (`u32` range).
    #[serde(rename = "uint")]
    UInt,
    /// Eight bit flags.
    Flags,
    /// Another entity's wire id, 0 for none.
    Ref,
}

impl FieldType {
    /// Whether v1 writes the value as a float (otherwise as an integer).
    pub fn is_float(self) -> bool {
        matches!(self, FieldType::Real { .. } | FieldType::Angle { .. })
    }
}

/// One declared field of a row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Its name, for documentation, tools and generic clients.
    pub name: Cow<'static, str>,
    /// Representation and resolution.
    #[serde(flatten)]
    pub ty: FieldType,
    /// Whether v1 rows carry it. Fields added for v2 (velocities for dead reckoning, say)
    /// are `false`, so v1 rows keep their published shape.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub v1: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl FieldDef {
    /// A field carried by every protocol version.
    pub const fn new(name: &'static str, ty: FieldType) -> FieldDef {
        FieldDef {
            name: Cow::Borrowed(name),
            ty,
            v1: true,
        }
    }

    /// A field that only v2 carries.
    pub const fn v2_only(name: &'static str, ty: FieldType) -> FieldDef {
        FieldDef {
            name: Cow::Borrowed(name),
            ty,
            v1: false,
        }
    }
}

/// The fields of one entity kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KindDef {
    /// The `kind` column.
    pub kind: u8,
    /// A name for people and tools (`player`, `projectile`).
    pub name: Cow<'static, str>,
    /// Fields after `id, kind, x, y`, in row order.
    pub fields: Vec<FieldDef>,
    /// Indices into `fields` of the x and y velocity in units per second, when rows of
    /// this kind move predictably: v2 clients extrapolate positions from them (dead
    /// reckoning) and the server sends a position only when the extrapolation would be off
    /// by more than the position resolution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub velocity: Option<[u8; 2]>,
}

/// Everything a game declares about its rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowSchema {
    /// Steps per unit of `x` and `y` in v2 (64 = a resolution of 1/64 unit).
    pub position_scale: f32,
    /// One entry per kind the game writes; a kind not listed has no fields.
    pub kinds: Vec<KindDef>,
}

impl RowSchema {
    /// The declaration of `kind`, if any.
    pub fn kind(&self, kind: u8) -> Option<&KindDef> {
        self.kinds.iter().find(|k| k.kind == kind)
    }

    /// Fields declared for `kind` (none for an undeclared kind).
    pub fn fields(&self, kind: u8) -> &[FieldDef] {
        self.kind(kind).map_or(&[], |k| k.fields.as_slice())
    }

    /// Whether the schema is usable: a positive finite position scale, each kind declared
    /// once, angle bits in 1..=16, positive finite real scales, velocity indices that
    /// name real fields. Games check this in a unit test; clients check a received one.
    pub fn check(&self) -> Result<(), String> {
        if !(self.position_scale.is_finite() && self.position_scale > 0.0) {
            return Err("position_scale must be a positive number".into());
        }
        for (i, k) in self.kinds.iter().enumerate() {
            if self.kinds[..i].iter().any(|o| o.kind == k.kind) {
                return Err(format!("kind {} is declared twice", k.kind));
            }
            for f in &k.fields {
                match f.ty {
                    FieldType::Real { scale } if !(scale.is_finite() && scale > 0.0) => {
                        return Err(format!("{}.{}: scale must be positive", k.name, f.name));
                    }
                    FieldType::Angle { bits } if !(1..=16).contains(&bits) => {
                        return Err(format!("{}.{}: bits must be 1 to 16", k.name, f.name));
                    }
                    _ => {}
                }
            }
            if let Some(v) = k.velocity {
                let real = |i: u8| {
                    k.fields
                        .get(usize::from(i))
                        .is_some_and(|f| matches!(f.ty, FieldType::Real { .. }))
                };
                if !(real(v[0]) && real(v[1])) {
                    return Err(format!("{}: velocity must name two real fields", k.name));
                }
            }
        }
        Ok(())
    }
}

/// The engine's part of a row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowHead {
    /// Wire id: small, unique among the room's live entities.
    pub id: u32,
    /// The `kind` column.
    pub kind: u8,
    /// Position x, world units.
    pub x: f32,
    /// Position y, world units (grows downwards).
    pub y: f32,
}

/// One row: the head and the game's field values, in declared order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row<'a> {
    /// `id, kind, x, y`.
    pub head: RowHead,
    /// The declared fields' values.
    pub fields: &'a [f64],
}

/// A snapshot's rows, reused from one snapshot to the next: after the first few
/// snapshots, writing rows allocates nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    heads: Vec<(RowHead, u32)>,
    values: Vec<f64>,
}

impl Rows {
    /// An empty buffer.
    pub fn new() -> Rows {
        Rows::default()
    }

    /// Forgets every row, keeping the allocations.
    pub fn clear(&mut self) {
        self.heads.clear();
        self.values.clear();
    }

    /// Appends a row. `fields` must follow the schema's declaration for `head.kind`.
    pub fn push(&mut self, head: RowHead, fields: &[f64]) {
        let start = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.heads.push((head, start));
        self.values.extend_from_slice(fields);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// Row `i`.
    pub fn get(&self, i: usize) -> Option<Row<'_>> {
        let &(head, start) = self.heads.get(i)?;
        let end = self
            .heads
            .get(i + 1)
            .map_or(self.values.len(), |&(_, s)| s as usize);
        Some(Row {
            head,
            fields: &self.values[start as usize..end],
        })
    }

    /// Every row, in the order written.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Row<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i).expect("index in range"))
    }
}

/// Serializes rows the v1 way: `[[id, kind, x, y, field...], ...]` with the v1 fields of
/// each kind. Encoded through serde, so MessagePack and JSON write numbers exactly as the
/// typed [`crate::entity::Entity`] rows do.
#[derive(Debug, Clone, Copy)]
pub struct V1Rows<'a> {
    /// What the fields are.
    pub schema: &'a RowSchema,
    /// The rows.
    pub rows: &'a Rows,
}

impl Serialize for V1Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows.iter() {
            seq.serialize_element(&V1Row {
                fields: self.schema.fields(row.head.kind),
                row,
            })?;
        }
        seq.end()
    }
}

struct V1Row<'a> {
    fields: &'a [FieldDef],
    row: Row<'a>,
}

impl Serialize for V1Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let declared = self.fields.iter().filter(|f| f.v1).count();
        let mut t = s.serialize_tuple(4 + declared)?;
        let h = self.row.head;
        t.serialize_element(&h.id)?;
        t.serialize_element(&h.kind)?;
        t.serialize_element(&h.x)?;
        t.serialize_element(&h.y)?;
        for (def, &v) in self
            .fields
            .iter()
            .zip(self.row.fields)
            .filter(|(d, _)| d.v1)
        {
            if def.ty.is_float() {
                t.serialize_element(&(v as f32))?;
            } else if v < 0.0 {
                t.serialize_element(&(v as i64))?;
            } else {
                t.serialize_element(&(v as u64))?;
            }
        }
        t.end()
    }
}
