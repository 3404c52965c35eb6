//! One entity's bytes in a snapshot body: a full row, or a delta of the groups that
//! changed. Pieces are self-contained (they start with the entity's absolute id), so the
//! encoder caches each once per tick and a body is a concatenation of cached pieces.
//!
//! Full row: `id, (kind << 1) | 1, [age], x, y, field...` (every declared field).
//! Delta: `id, mask, [age], [dx, dy, [dvx, dvy]], plain field...` where the motion values
//! are relative to the client's own prediction of its previous record. See PROTOCOL.md.
//! Writers only: what to send is decided by the state and the encoder, not here.

use super::quant::{Layout, is_signed};
use super::state::{AGE, MOTION, PLAIN_SHIFT, Slot};
use super::wire::{SIGNED_MAX, put_svar, put_uvar};

/// Appends the full row of `slot` (entity `id`) at `tick`.
pub(crate) fn write_full(layout: &Layout, id: u32, slot: &Slot, tick: u32, out: &mut Vec<u8>) {
    let rec = &slot.rec;
    let k = layout.kind(rec.kind);
    put_uvar(out, u64::from(id));
    put_uvar(out, (u64::from(rec.kind) << 1) | 1);
    if k.velocity.is_some() {
        put_uvar(out, u64::from(tick - rec.ref_tick));
    }
    put_svar(out, rec.pos[0]);
    put_svar(out, rec.pos[1]);
    for (&ty, &q) in k.types.iter().zip(&rec.fields) {
        put_value(out, is_signed(ty), q);
    }
}

/// Appends the delta of `slot` for a client holding its previous motion record (when
/// `mask` has [`MOTION`]) and older plain fields. `false`, with nothing written, when the
/// motion correction does not fit a varint (then the caller sends the full row).
pub(crate) fn write_delta(
    layout: &Layout,
    id: u32,
    slot: &Slot,
    mask: u32,
    tick: u32,
    out: &mut Vec<u8>,
) -> bool {
    let rec = &slot.rec;
    let k = layout.kind(rec.kind);
    let mut motion = [0i64; 4];
    if mask & MOTION != 0 {
        let Some((prev, _)) = slot.prev else {
            return false;
        };
        let now = rec.motion(k);
        let pred = layout.predict(rec.kind, &prev, i64::from(now.ref_tick));
        motion = [
            now.pos[0] - pred[0],
            now.pos[1] - pred[1],
            now.vel[0] - prev.vel[0],
            now.vel[1] - prev.vel[1],
        ];
        if motion.iter().any(|d| d.abs() > SIGNED_MAX) {
            return false;
        }
    }
    put_uvar(out, u64::from(id));
    put_uvar(out, u64::from(mask));
    if mask & AGE != 0 {
        put_uvar(out, u64::from(tick - rec.ref_tick));
    }
    if mask & MOTION != 0 {
        let n = if k.velocity.is_some() { 4 } else { 2 };
        motion[..n].iter().for_each(|&d| put_svar(out, d));
    }
    for (j, &i) in k.plain.iter().enumerate() {
        if mask & (1 << (PLAIN_SHIFT + j as u32)) != 0 {
            put_value(out, is_signed(k.types[i]), rec.fields[i]);
        }
    }
    true
}

fn put_value(out: &mut Vec<u8>, signed: bool, q: i64) {
    if signed {
        put_svar(out, q);
    } else {
        put_uvar(out, q as u64);
    }
}
