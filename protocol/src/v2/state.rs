//! The server's side of v2: one global record per entity, with the tick each part of it
//! last changed at.
//!
//! Each snapshot tick [`WireState::update`] compares the game's true rows with the records.
//! A plain field changes when its quantized value does. The motion group (`x, y` and the
//! velocity) gets a new record (position and velocity now, reference tick now) only when
//! the current record's dead reckoning is off by more than [`POSITION_TOLERANCE`] steps on
//! an axis, or the quantized velocity moved by more than the kind's velocity tolerance
//! (one position step per second of drift); a kind without velocity gets one whenever
//! its quantized position changes. Records are global, so the delta from any baseline `B`
//! to now is the same for every client holding `B`: [`WireState::change_since`] derives it
//! from the change ticks, and the one previous motion record kept per entity lets motion
//! be sent relative to what such a client predicts. Pure; no IO, no clock.

use crate::rows::{Row, Rows};

use super::bits::IdSet;
use super::quant::{Layout, Motion, Record, quantize};
use super::{EncodeError, ID_LIMIT};

/// How far, in position steps, a client's dead-reckoned position may be from the true one
/// before the server sends a new motion record.
pub const POSITION_TOLERANCE: f64 = 1.0;

/// Mask bit of a delta: the motion group follows.
pub(crate) const MOTION: u32 = 1 << 1;
/// Mask bit of a delta: the motion record's age follows (it is older than the frame).
pub(crate) const AGE: u32 = 1 << 2;
/// Mask bit of plain field `j` is `1 << (PLAIN_SHIFT + j)`.
pub(crate) const PLAIN_SHIFT: u32 = 3;

/// One wire id's entity.
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) live: bool,
    /// Tick the entity appeared at (a reused id is a new entity).
    pub(crate) born: u32,
    pub(crate) rec: Record,
    /// Tick the current motion record was issued at.
    pub(crate) motion_at: u32,
    /// The motion record before the current one and the tick it was issued at.
    pub(crate) prev: Option<(Motion, u32)>,
    /// Per declared field, the tick its value last changed (velocity fields: unused).
    pub(crate) field_at: Vec<u32>,
    /// The latest of `born`, `motion_at` and every `field_at`: an entity unchanged since
    /// a baseline is skipped without looking further.
    changed_at: u32,
    /// The true position this tick, quantized: what interest is computed from.
    pub(crate) now: [i64; 2],
    /// The declared fields' values as last given, and quantized: an unchanged value is
    /// not quantized again.
    raw: Vec<f64>,
    quantized: Vec<i64>,
}

/// What a client that holds the state of tick `B` needs for one entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Change {
    /// Nothing changed since `B`.
    None,
    /// The groups in the mask changed.
    Delta(u32),
    /// The whole row: new since `B`, or its motion changed twice since `B`.
    Full,
}

/// Every entity's record; see the module docs.
#[derive(Debug, Clone, Default)]
pub(crate) struct WireState {
    pub(crate) slots: Vec<Slot>,
    pub(crate) live: IdSet,
    pub(crate) tick: Option<u32>,
    seen: IdSet,
}

impl WireState {
    /// Takes the rows of snapshot `tick`. On an error nothing changes.
    pub(crate) fn update(
        &mut self,
        layout: &Layout,
        tick: u32,
        rows: &Rows,
    ) -> Result<(), EncodeError> {
        if let Some(previous) = self.tick.filter(|&p| p >= tick) {
            return Err(EncodeError::TickNotIncreasing { tick, previous });
        }
        self.seen.clear();
        for row in rows.iter() {
            let id = row.head.id;
            if id >= ID_LIMIT {
                return Err(EncodeError::IdOutOfRange(id));
            }
            if self.seen.contains(id) {
                return Err(EncodeError::DuplicateId(id));
            }
            self.seen.insert(id);
        }
        self.tick = Some(tick);
        for row in rows.iter() {
            self.take_row(layout, tick, row);
        }
        for id in self.live.minus(&self.seen).collect::<Vec<_>>() {
            self.slots[id as usize].live = false;
            self.live.remove(id);
        }
        Ok(())
    }

    fn take_row(&mut self, layout: &Layout, tick: u32, row: Row<'_>) {
        let id = row.head.id as usize;
        if id >= self.slots.len() {
            self.slots.resize_with(id + 1, || Slot::empty(tick));
        }
        let slot = &mut self.slots[id];
        if slot.live && slot.rec.kind == row.head.kind {
            slot.follow(layout, tick, row);
        } else {
            slot.appear(layout, tick, row);
            self.live.insert(row.head.id);
        }
    }

    /// What a client holding tick `baseline`, which knew the entity then, needs now.
    pub(crate) fn change_since(&self, layout: &Layout, id: u32, baseline: u32) -> Change {
        let s = &self.slots[id as usize];
        if s.changed_at <= baseline {
            return Change::None;
        }
        if s.born > baseline {
            return Change::Full;
        }
        let k = layout.kind(s.rec.kind);
        let mut mask = 0;
        if s.motion_at > baseline {
            // The client holds an older record than the previous one: it cannot predict
            // from what the server kept.
            if s.prev.is_none_or(|(_, at)| at > baseline) {
                return Change::Full;
            }
            mask |= MOTION;
            if k.velocity.is_some() && Some(s.rec.ref_tick) != self.tick {
                mask |= AGE;
            }
        }
        for (j, &i) in k.plain.iter().enumerate() {
            if s.field_at[i] > baseline {
                mask |= 1 << (PLAIN_SHIFT + j as u32);
            }
        }
        if mask == 0 {
            Change::None
        } else {
            Change::Delta(mask)
        }
    }
}

impl Slot {
    fn empty(tick: u32) -> Slot {
        Slot {
            live: false,
            born: tick,
            rec: Record {
                kind: 0,
                ref_tick: 0,
                pos: [0; 2],
                fields: Vec::new(),
            },
            motion_at: tick,
            prev: None,
            field_at: Vec::new(),
            changed_at: tick,
            now: [0; 2],
            raw: Vec::new(),
            quantized: Vec::new(),
        }
    }

    fn appear(&mut self, layout: &Layout, tick: u32, row: Row<'_>) {
        let k = layout.kind(row.head.kind);
        self.live = true;
        self.born = tick;
        self.now = quantize_head(layout, row);
        self.rec.kind = row.head.kind;
        self.rec.pos = self.now;
        self.rec.ref_tick = if k.velocity.is_some() { tick } else { 0 };
        self.raw.clear();
        self.raw.extend((0..k.types.len()).map(|i| value(row, i)));
        self.quantized.clear();
        self.quantized.extend(
            k.types
                .iter()
                .zip(&self.raw)
                .map(|(&ty, &v)| quantize(ty, v)),
        );
        self.rec.fields.clone_from(&self.quantized);
        self.field_at.clear();
        self.field_at.resize(k.types.len(), tick);
        self.motion_at = tick;
        self.changed_at = tick;
        self.prev = None;
    }

    fn follow(&mut self, layout: &Layout, tick: u32, row: Row<'_>) {
        let k = layout.kind(row.head.kind);
        self.now = quantize_head(layout, row);
        for (i, &ty) in k.types.iter().enumerate() {
            let v = value(row, i);
            if v.to_bits() != self.raw[i].to_bits() {
                self.raw[i] = v;
                self.quantized[i] = quantize(ty, v);
            }
        }
        for &i in &k.plain {
            let q = self.quantized[i];
            if q != self.rec.fields[i] {
                self.rec.fields[i] = q;
                self.field_at[i] = tick;
                self.changed_at = tick;
            }
        }
        let old = self.rec.motion(k);
        let new = match k.velocity {
            None if self.now == old.pos => return,
            None => Motion {
                pos: self.now,
                vel: [0; 2],
                ref_tick: 0,
            },
            Some(v) => {
                let vel = [self.quantized[v[0]], self.quantized[v[1]]];
                let pred = layout.predict(self.rec.kind, &old, i64::from(tick));
                let ps = layout.position_scale;
                let truth = [f64::from(row.head.x) * ps, f64::from(row.head.y) * ps];
                let off = |a: usize| (pred[a] as f64 - truth[a]).abs() > POSITION_TOLERANCE;
                let turned = |a: usize| (vel[a] - old.vel[a]).abs() > k.velocity_tolerance[a];
                if !(off(0) || off(1) || turned(0) || turned(1)) {
                    return;
                }
                Motion {
                    pos: self.now,
                    vel,
                    ref_tick: tick,
                }
            }
        };
        self.prev = Some((old, self.motion_at));
        self.rec.set_motion(k, new);
        self.motion_at = tick;
        self.changed_at = tick;
    }
}

fn quantize_head(layout: &Layout, row: Row<'_>) -> [i64; 2] {
    [
        layout.quantize_position(row.head.x),
        layout.quantize_position(row.head.y),
    ]
}

/// Field `i` of a row; a row shorter than its kind's declaration reads 0.
fn value(row: Row<'_>, i: usize) -> f64 {
    row.fields.get(i).copied().unwrap_or(0.0)
}
