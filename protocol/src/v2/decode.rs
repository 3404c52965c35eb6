//! The client side of v2: the state a client holds, and applying snapshot frames to it.
//!
//! [`ClientState::apply`] checks the header against the held state (a delta must name the
//! held tick as its baseline), applies removals, full rows and deltas, and compares the
//! result with the frame's state hash when it carries one. Any failure is a typed
//! [`V2Error`]; the state is then dropped, so deltas are refused until the keyframe the
//! client asks for with `resync` arrives. Never panics (counts are checked against the
//! bytes left, ids are below [`super::ID_LIMIT`], fields per entity are the schema's).
//!
//! Records live in a vector indexed by id, and a record keeps its memory when its entity
//! goes, so a new entity under a reused id (the engine hands out the smallest free one)
//! fills it again: once the vector has grown to the highest id seen, applying frames and
//! reading rows ([`ClientState::for_each_row_at`], [`ClientState::with_row_at`]) allocate
//! nothing. Used by the bots, the Rust client library, the tests and the fuzz target.

use crate::codec::{msgpack_value_len, read_str};
use crate::message::Welcome;
use crate::rows::{Row, RowHead, RowSchema, Rows};

use super::bits::IdSet;
use super::encode::FrameKind;
use super::quant::{
    Fnv1a, Layout, MAX_FIELDS, Motion, Record, dequantize, in_range, is_signed, position_in_range,
};
use super::state::{AGE, MOTION, PLAIN_SHIFT};
use super::wire::Reader;
use super::{ID_LIMIT, V2Error};

/// What applying a frame did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The tick the client now holds.
    pub tick: u32,
    /// The frame's baseline tick (`None` for a keyframe).
    pub baseline: Option<u32>,
    /// The last input `seq` of this player the simulation applied.
    pub ack: u32,
    /// Keyframe or delta.
    pub kind: FrameKind,
    /// The frame carried a state hash and the state matched it.
    pub hash_checked: bool,
    /// Entities removed.
    pub removed: usize,
    /// Full rows applied (new entities, or replaced ones).
    pub full: usize,
    /// Deltas applied.
    pub deltas: usize,
}

/// A snapshot frame's header ([`header`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The snapshot's tick (`n`).
    pub tick: u32,
    /// The tick the frame applies to (`n - b`); `None` for a keyframe.
    pub baseline: Option<u32>,
    /// The last input `seq` of this player the simulation applied (`a`).
    pub ack: u32,
    /// The state hash after the frame (`h`), when it carries one.
    pub hash: Option<u32>,
    /// The body (`d`).
    pub body: &'a [u8],
}

impl Header<'_> {
    /// Keyframe or delta.
    pub fn kind(&self) -> FrameKind {
        match self.baseline {
            None => FrameKind::Keyframe,
            Some(_) => FrameKind::Delta,
        }
    }
}

/// Everything a v2 client holds: one record per entity in its view, at one tick.
#[derive(Debug, Clone)]
pub struct ClientState {
    layout: Layout,
    tick: Option<u32>,
    /// Indexed by id; only the ids in `held` are records of the state.
    records: Vec<Record>,
    held: IdSet,
}

impl ClientState {
    /// An empty state for a game's schema (from `welcome`) at its tick rate.
    pub fn new(schema: &RowSchema, tick_rate: u16) -> Result<ClientState, V2Error> {
        Ok(ClientState {
            layout: Layout::new(schema, tick_rate).map_err(V2Error::Schema)?,
            tick: None,
            records: Vec::new(),
            held: IdSet::default(),
        })
    }

    /// An empty state for the schema and tick rate a v2 `welcome` carries.
    pub fn from_welcome(welcome: &Welcome) -> Result<ClientState, V2Error> {
        let schema = welcome
            .schema
            .as_ref()
            .ok_or_else(|| V2Error::Schema("welcome has no schema".into()))?;
        ClientState::new(schema, welcome.tick_rate)
    }

    /// The tick of the state held; `None` before the first keyframe and after an error.
    pub fn tick(&self) -> Option<u32> {
        self.tick
    }

    /// Entities held.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Whether no entity is held.
    pub fn is_empty(&self) -> bool {
        self.held.iter().next().is_none()
    }

    /// Whether entity `id` is held.
    pub fn contains(&self, id: u32) -> bool {
        self.held.contains(id)
    }

    /// Drops the state: deltas are refused until a keyframe.
    pub fn reset(&mut self) {
        self.tick = None;
        self.held.clear();
    }

    /// Applies one snapshot frame (the whole MessagePack message with `"t":"s"`). On an
    /// error the state is dropped; send `resync` when [`V2Error::needs_resync`] says so.
    pub fn apply(&mut self, frame: &[u8]) -> Result<Applied, V2Error> {
        let result = self.apply_frame(frame);
        if result.is_err() {
            self.reset();
        }
        result
    }

    /// FNV-1a of the records held, ascending by id (PROTOCOL.md, "State hash").
    pub fn hash(&self) -> u32 {
        let mut h = Fnv1a::new();
        for id in self.held.iter() {
            self.layout
                .hash_record(&mut h, id, &self.records[id as usize]);
        }
        h.finish()
    }

    /// The rows at `tick`, ascending by id: positions dead-reckoned to `tick` with the
    /// documented formula, every field dequantized. `out` is cleared first.
    pub fn rows_at(&self, tick: u32, out: &mut Rows) {
        out.clear();
        self.for_each_row_at(tick, |row| out.push(row.head, row.fields));
    }

    /// Calls `f` with every row at `tick` (as [`ClientState::rows_at`] gives them),
    /// ascending by id, without copying them anywhere.
    pub fn for_each_row_at(&self, tick: u32, mut f: impl FnMut(Row<'_>)) {
        let mut values = [0.0; MAX_FIELDS];
        for id in self.held.iter() {
            f(self.row_at(id, tick, &mut values));
        }
    }

    /// `f` of entity `id`'s row at `tick`, if it is held: one row without reading the
    /// others.
    pub fn with_row_at<R>(&self, id: u32, tick: u32, f: impl FnOnce(Row<'_>) -> R) -> Option<R> {
        let mut values = [0.0; MAX_FIELDS];
        self.held
            .contains(id)
            .then(|| f(self.row_at(id, tick, &mut values)))
    }

    /// The row of held entity `id` at `tick`, its fields dequantized into `values`.
    fn row_at<'v>(&self, id: u32, tick: u32, values: &'v mut [f64; MAX_FIELDS]) -> Row<'v> {
        let rec = &self.records[id as usize];
        let k = self.layout.kind(rec.kind);
        let pos = self
            .layout
            .predict(rec.kind, &rec.motion(k), i64::from(tick));
        let ps = self.layout.position_scale;
        let n = rec.fields.len();
        for ((v, &ty), &q) in values.iter_mut().zip(&k.types).zip(&rec.fields) {
            *v = dequantize(ty, q);
        }
        Row {
            head: RowHead {
                id,
                kind: rec.kind,
                x: (pos[0] as f64 / ps) as f32,
                y: (pos[1] as f64 / ps) as f32,
            },
            fields: &values[..n],
        }
    }

    fn apply_frame(&mut self, frame: &[u8]) -> Result<Applied, V2Error> {
        let h = header(frame)?;
        let kind = match (h.baseline, self.tick) {
            (None, _) => FrameKind::Keyframe,
            (Some(_), None) => return Err(V2Error::AwaitingKeyframe),
            (Some(baseline), Some(held)) if baseline != held => {
                return Err(V2Error::BaselineMismatch { baseline, held });
            }
            (Some(_), Some(_)) => FrameKind::Delta,
        };
        if kind == FrameKind::Keyframe {
            self.held.clear();
        }
        let mut applied = Applied {
            tick: h.tick,
            baseline: h.baseline,
            ack: h.ack,
            kind,
            hash_checked: false,
            removed: 0,
            full: 0,
            deltas: 0,
        };
        self.apply_body(h.tick, kind, h.body, &mut applied)?;
        self.tick = Some(h.tick);
        if let Some(expected) = h.hash {
            let computed = self.hash();
            if computed != expected {
                return Err(V2Error::HashMismatch { expected, computed });
            }
            applied.hash_checked = true;
        }
        Ok(applied)
    }

    fn apply_body(
        &mut self,
        tick: u32,
        kind: FrameKind,
        body: &[u8],
        applied: &mut Applied,
    ) -> Result<(), V2Error> {
        let mut r = Reader::new(body);
        let removals = r.count("removals")?;
        if removals > 0 && kind == FrameKind::Keyframe {
            return Err(V2Error::RemovalInKeyframe);
        }
        let mut last = None;
        for _ in 0..removals {
            let id = read_id(&mut r, &mut last)?;
            if !self.held.contains(id) {
                return Err(V2Error::UnknownEntity(id));
            }
            self.held.remove(id);
        }
        applied.removed = removals;
        let pieces = r.count("pieces")?;
        let mut last = None;
        for _ in 0..pieces {
            let id = read_id(&mut r, &mut last)?;
            let mask = r.uvar()?;
            if mask & 1 == 1 {
                self.read_full(&mut r, id, mask, tick)?;
                self.held.insert(id);
                applied.full += 1;
            } else {
                if !self.held.contains(id) {
                    return Err(V2Error::UnknownEntity(id));
                }
                let rec = &mut self.records[id as usize];
                apply_delta(&self.layout, &mut r, id, mask, tick, rec)?;
                applied.deltas += 1;
            }
        }
        match r.remaining() {
            0 => Ok(()),
            n => Err(V2Error::TrailingBytes(n)),
        }
    }

    /// Reads a full row into the record of `id` (reusing its memory). On an error the
    /// record is left half written: the caller drops the whole state.
    fn read_full(
        &mut self,
        r: &mut Reader<'_>,
        id: u32,
        mask: u64,
        tick: u32,
    ) -> Result<(), V2Error> {
        let kind = u8::try_from(mask >> 1).map_err(|_| V2Error::BadMask { id, kind: 0, mask })?;
        let k = self.layout.kind(kind);
        let ref_tick = match k.velocity {
            Some(_) => {
                let age = r.uvar()?;
                u32::try_from(age)
                    .ok()
                    .and_then(|a| tick.checked_sub(a))
                    .ok_or(V2Error::BadAge { id, age, tick })?
            }
            None => 0,
        };
        let mut pos = [0; 2];
        for (axis, name) in ["x", "y"].into_iter().enumerate() {
            pos[axis] = r.svar()?;
            if !position_in_range(pos[axis]) {
                return Err(out_of_range(id, name));
            }
        }
        let i = id as usize;
        if i >= self.records.len() {
            // Grown as a `Vec` grows (doubling, within the id limit) and every new record
            // ready for the widest kind: a new id seldom allocates.
            let len = (i + 1).max(self.records.len() * 2).min(ID_LIMIT as usize);
            let width = self.layout.widest();
            self.records.resize_with(len, || Record {
                kind: 0,
                ref_tick: 0,
                pos: [0; 2],
                fields: Vec::with_capacity(width),
            });
        }
        let rec = &mut self.records[i];
        rec.kind = kind;
        rec.ref_tick = ref_tick;
        rec.pos = pos;
        rec.fields.clear();
        for (i, &ty) in k.types.iter().enumerate() {
            let q = read_value(r, is_signed(ty))?;
            if !in_range(ty, q) {
                return Err(out_of_range(id, &k.names[i]));
            }
            rec.fields.push(q);
        }
        Ok(())
    }
}

/// Applies one delta piece (after its id and mask) to the record it names.
fn apply_delta(
    layout: &Layout,
    r: &mut Reader<'_>,
    id: u32,
    mask: u64,
    tick: u32,
    rec: &mut Record,
) -> Result<(), V2Error> {
    let k = layout.kind(rec.kind);
    let plain_bits = ((1u64 << k.plain.len()) - 1) << PLAIN_SHIFT;
    let valid = u64::from(MOTION)
        | plain_bits
        | if k.velocity.is_some() {
            u64::from(AGE)
        } else {
            0
        };
    let motion = mask & u64::from(MOTION) != 0;
    let has_age = mask & u64::from(AGE) != 0;
    if mask == 0 || mask & !valid != 0 || (has_age && !motion) {
        return Err(V2Error::BadMask {
            id,
            kind: rec.kind,
            mask,
        });
    }
    if motion {
        let age = if has_age { r.uvar()? } else { 0 };
        let old = rec.motion(k);
        let ref_tick = match k.velocity {
            None => 0,
            Some(_) => u32::try_from(age)
                .ok()
                .and_then(|a| tick.checked_sub(a))
                .filter(|&t| t > old.ref_tick)
                .ok_or(V2Error::BadAge { id, age, tick })?,
        };
        let pred = layout.predict(rec.kind, &old, i64::from(ref_tick));
        let mut new = Motion {
            pos: [0; 2],
            vel: old.vel,
            ref_tick,
        };
        for (axis, name) in ["x", "y"].into_iter().enumerate() {
            new.pos[axis] = pred[axis]
                .checked_add(r.svar()?)
                .filter(|&p| position_in_range(p))
                .ok_or_else(|| out_of_range(id, name))?;
        }
        if let Some(v) = k.velocity {
            for (vel, i) in new.vel.iter_mut().zip(v) {
                *vel += r.svar()?;
                if !in_range(k.types[i], *vel) {
                    return Err(out_of_range(id, &k.names[i]));
                }
            }
        }
        rec.set_motion(k, new);
    }
    for (j, &i) in k.plain.iter().enumerate() {
        if mask & (1 << (PLAIN_SHIFT as usize + j)) != 0 {
            let q = read_value(r, is_signed(k.types[i]))?;
            if !in_range(k.types[i], q) {
                return Err(out_of_range(id, &k.names[i]));
            }
            rec.fields[i] = q;
        }
    }
    Ok(())
}

fn out_of_range(id: u32, field: &str) -> V2Error {
    V2Error::OutOfRange {
        id,
        field: field.to_owned(),
    }
}

fn read_value(r: &mut Reader<'_>, signed: bool) -> Result<i64, V2Error> {
    if signed {
        r.svar()
    } else {
        // A 5-byte varint is below 2^35: it fits an i64.
        r.uvar().map(|u| u as i64)
    }
}

/// An entity id, strictly above the previous one of its section.
fn read_id(r: &mut Reader<'_>, last: &mut Option<u32>) -> Result<u32, V2Error> {
    let raw = r.uvar()?;
    if raw >= u64::from(ID_LIMIT) {
        return Err(V2Error::IdOutOfRange(raw));
    }
    let id = raw as u32;
    if last.is_some_and(|l| id <= l) {
        return Err(V2Error::Unordered(id));
    }
    *last = Some(id);
    Ok(id)
}

/// Reads a snapshot frame's header, `{"t":"s","n":..,"b":..,"a":..,["h":..,]"d":bin}`, in
/// any key order, skipping unknown keys, without applying it: what a client that cannot
/// apply a frame still learns from it (its tick and `ack`). `b` counts ticks back from
/// `n` to the baseline; 0 is a keyframe.
pub fn header(frame: &[u8]) -> Result<Header<'_>, V2Error> {
    let mut rd = frame;
    let len = rmp::decode::read_map_len(&mut rd).map_err(|_| V2Error::Malformed("not a map"))?;
    let (mut t, mut tick, mut since, mut ack, mut hash, mut body) =
        (false, None, None, None, None, None);
    for _ in 0..len {
        let key = read_str(&mut rd).ok_or(V2Error::Malformed("a key is not a string"))?;
        match key {
            "t" => t = read_str(&mut rd) == Some("s"),
            "n" => tick = Some(read_u32(&mut rd, "n is not a u32")?),
            "b" => since = Some(read_u32(&mut rd, "b is not a u32")?),
            "a" => ack = Some(read_u32(&mut rd, "a is not a u32")?),
            "h" => hash = Some(read_u32(&mut rd, "h is not a u32")?),
            "d" => body = Some(read_bin(&mut rd)?),
            _ => {
                let n = msgpack_value_len(rd, 16).map_err(|_| V2Error::Malformed("bad value"))?;
                rd = &rd[n..];
            }
        }
    }
    if !t {
        return Err(V2Error::Malformed("t is not \"s\""));
    }
    if !rd.is_empty() {
        return Err(V2Error::Malformed("bytes after the map"));
    }
    let missing = V2Error::Malformed;
    let tick = tick.ok_or(missing("missing n"))?;
    let since = since.ok_or(missing("missing b"))?;
    let baseline = match since {
        0 => None,
        b => Some(tick.checked_sub(b).ok_or(missing("b is larger than n"))?),
    };
    Ok(Header {
        tick,
        baseline,
        ack: ack.ok_or(missing("missing a"))?,
        hash,
        body: body.ok_or(missing("missing d"))?,
    })
}

fn read_u32(rd: &mut &[u8], what: &'static str) -> Result<u32, V2Error> {
    rmp::decode::read_int(rd).map_err(|_| V2Error::Malformed(what))
}

fn read_bin<'a>(rd: &mut &'a [u8]) -> Result<&'a [u8], V2Error> {
    let n = rmp::decode::read_bin_len(rd).map_err(|_| V2Error::Malformed("d is not bin"))? as usize;
    let body = rd.get(..n).ok_or(V2Error::Malformed("d is truncated"))?;
    *rd = &rd[n..];
    Ok(body)
}
