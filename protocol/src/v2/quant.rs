//! Quantization, records and the state hash: the arithmetic the server and every client
//! must do identically.
//!
//! A [`Layout`] is a [`RowSchema`] compiled for v2: per kind, the field types, which two
//! fields are the velocity (the motion group, with `x, y`), and the other ("plain") fields
//! in declared order. A [`Record`] is what a client holds per entity: quantized integers
//! only, so the server and a client in another language agree bit for bit. Dead reckoning
//! ([`Layout::predict`]) is float64 arithmetic in a fixed order, which JavaScript and Rust
//! evaluate identically. Pure functions; no IO.

use std::f64::consts::TAU;

use crate::rows::{FieldType, RowSchema};

/// Declared fields a kind may have in v2: a delta's mask spends three bits on itself and
/// one per plain field, and stays within 32 bits.
pub const MAX_FIELDS: usize = 29;

/// One kind, compiled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KindLayout {
    pub(crate) names: Vec<String>,
    pub(crate) types: Vec<FieldType>,
    /// Declared indices of the x and y velocity.
    pub(crate) velocity: Option<[usize; 2]>,
    /// Declared indices of the other fields; plain field `j` is mask bit `3 + j`.
    pub(crate) plain: Vec<usize>,
    /// `scale * tick_rate` of each velocity field: the divisor of dead reckoning.
    divisor: [f64; 2],
    /// Largest velocity difference, in velocity steps, that is not a change (a drift of
    /// one position step per second).
    pub(crate) velocity_tolerance: [i64; 2],
}

/// A schema compiled for v2 at a tick rate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Layout {
    pub(crate) position_scale: f64,
    index: Vec<Option<u16>>,
    kinds: Vec<KindLayout>,
    undeclared: KindLayout,
}

/// What a client holds for one entity: quantized values only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) kind: u8,
    /// The tick the position and velocity were taken at (0 for kinds without velocity).
    pub(crate) ref_tick: u32,
    /// Position in steps (`i32` range).
    pub(crate) pos: [i64; 2],
    /// Declared fields, quantized, in declared order (velocity included).
    pub(crate) fields: Vec<i64>,
}

impl Layout {
    pub(crate) fn new(schema: &RowSchema, tick_rate: u16) -> Result<Layout, String> {
        schema.check()?;
        if tick_rate == 0 {
            return Err("tick_rate must be positive".into());
        }
        let ps = f64::from(schema.position_scale);
        let rate = f64::from(tick_rate);
        let mut index = vec![None; 256];
        let mut kinds = Vec::with_capacity(schema.kinds.len());
        for k in &schema.kinds {
            if k.fields.len() > MAX_FIELDS {
                return Err(format!("{}: more than {MAX_FIELDS} fields", k.name));
            }
            let velocity = k.velocity.map(|v| [usize::from(v[0]), usize::from(v[1])]);
            let scale = |i: usize| match k.fields[i].ty {
                FieldType::Real { scale } => f64::from(scale),
                _ => 1.0,
            };
            let (divisor, velocity_tolerance) = match velocity {
                Some([vx, vy]) => (
                    [scale(vx) * rate, scale(vy) * rate],
                    [(scale(vx) / ps) as i64, (scale(vy) / ps) as i64],
                ),
                None => ([1.0; 2], [0; 2]),
            };
            index[usize::from(k.kind)] = Some(kinds.len() as u16);
            kinds.push(KindLayout {
                names: k.fields.iter().map(|f| f.name.to_string()).collect(),
                types: k.fields.iter().map(|f| f.ty).collect(),
                plain: (0..k.fields.len())
                    .filter(|i| velocity.is_none_or(|v| !v.contains(i)))
                    .collect(),
                velocity,
                divisor,
                velocity_tolerance,
            });
        }
        Ok(Layout {
            position_scale: ps,
            index,
            kinds,
            undeclared: KindLayout {
                names: Vec::new(),
                types: Vec::new(),
                velocity: None,
                plain: Vec::new(),
                divisor: [1.0; 2],
                velocity_tolerance: [0; 2],
            },
        })
    }

    /// The layout of `kind` (no fields for a kind the schema does not declare).
    pub(crate) fn kind(&self, kind: u8) -> &KindLayout {
        self.index[usize::from(kind)].map_or(&self.undeclared, |i| &self.kinds[usize::from(i)])
    }

    /// The most fields any kind's rows carry.
    pub(crate) fn widest(&self) -> usize {
        self.kinds
            .iter()
            .chain([&self.undeclared])
            .map(|k| k.types.len())
            .max()
            .unwrap_or(0)
    }

    /// A position in steps.
    pub(crate) fn quantize_position(&self, v: f32) -> i64 {
        clamp_i32(f64::from(v) * self.position_scale)
    }

    /// Where `m` puts an entity of `kind` at `tick`, in steps: per axis
    /// `pos + floor(v * age * position_scale / (scale * tick_rate) + 0.5)` with `age = tick -
    /// ref`, in float64, in exactly that order. Kinds without velocity stay put.
    pub(crate) fn predict(&self, kind: u8, m: &Motion, tick: i64) -> [i64; 2] {
        let k = self.kind(kind);
        if k.velocity.is_none() {
            return m.pos;
        }
        let age = (tick - i64::from(m.ref_tick)) as f64;
        let axis = |a: usize| {
            let steps = m.vel[a] as f64 * age * self.position_scale / k.divisor[a];
            m.pos[a].saturating_add(floor(steps + 0.5))
        };
        [axis(0), axis(1)]
    }

    /// Feeds one entity's record into the state hash (see PROTOCOL.md, "State hash").
    pub(crate) fn hash_record(&self, h: &mut Fnv1a, id: u32, rec: &Record) {
        h.u32(id);
        h.byte(rec.kind);
        h.u32(rec.pos[0] as u32);
        h.u32(rec.pos[1] as u32);
        if self.kind(rec.kind).velocity.is_some() {
            h.u32(rec.ref_tick);
        }
        for &f in &rec.fields {
            h.u32(f as u32);
        }
    }
}

/// The motion group of a record: where it was, how fast it went, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Motion {
    pub(crate) pos: [i64; 2],
    pub(crate) vel: [i64; 2],
    pub(crate) ref_tick: u32,
}

impl Record {
    pub(crate) fn motion(&self, k: &KindLayout) -> Motion {
        Motion {
            pos: self.pos,
            vel: k
                .velocity
                .map_or([0; 2], |v| [self.fields[v[0]], self.fields[v[1]]]),
            ref_tick: self.ref_tick,
        }
    }

    pub(crate) fn set_motion(&mut self, k: &KindLayout, m: Motion) {
        self.pos = m.pos;
        self.ref_tick = m.ref_tick;
        if let Some(v) = k.velocity {
            self.fields[v[0]] = m.vel[0];
            self.fields[v[1]] = m.vel[1];
        }
    }
}

/// `v` rounded to the nearest integer (halves away from zero), saturating, NaN as 0.
/// Written out because `f64::round` is a library call on baseline x86-64, and the
/// encoder rounds several values per entity per tick.
fn round(v: f64) -> i64 {
    // `as` truncates towards zero, saturates, and maps NaN to 0.
    let t = v as i64;
    let frac = v - t as f64;
    if frac >= 0.5 {
        t.saturating_add(1)
    } else if frac <= -0.5 {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// `floor(v)` as an integer, saturating: exact for every value dead reckoning produces,
/// without a library call.
fn floor(v: f64) -> i64 {
    let t = v as i64;
    if (t as f64) > v {
        t.saturating_sub(1)
    } else {
        t
    }
}

/// `v` rounded into the `i32` range.
fn clamp_i32(v: f64) -> i64 {
    round(v).clamp(i64::from(i32::MIN), i64::from(i32::MAX))
}

/// A field value as the integer v2 carries.
pub(crate) fn quantize(ty: FieldType, v: f64) -> i64 {
    match ty {
        FieldType::Real { scale } => clamp_i32(v * f64::from(scale)),
        // n is a power of two: the mask is the Euclidean remainder.
        FieldType::Angle { bits } => round(v / TAU * (1i64 << bits) as f64) & ((1 << bits) - 1),
        FieldType::Int => clamp_i32(v),
        FieldType::UInt | FieldType::Ref => round(v).clamp(0, i64::from(u32::MAX)),
        FieldType::Flags => round(v).clamp(0, 255),
    }
}

/// The value a quantized field stands for.
pub(crate) fn dequantize(ty: FieldType, q: i64) -> f64 {
    match ty {
        FieldType::Real { scale } => q as f64 / f64::from(scale),
        FieldType::Angle { bits } => {
            let n = 1i64 << bits;
            let signed = if q >= n / 2 { q - n } else { q };
            signed as f64 * TAU / n as f64
        }
        FieldType::Int | FieldType::UInt | FieldType::Flags | FieldType::Ref => q as f64,
    }
}

/// Whether the field travels as a zigzag (signed) varint rather than a plain one.
pub(crate) fn is_signed(ty: FieldType) -> bool {
    matches!(ty, FieldType::Real { .. } | FieldType::Int)
}

/// Whether `q` is a value the field can hold.
pub(crate) fn in_range(ty: FieldType, q: i64) -> bool {
    match ty {
        FieldType::Real { .. } | FieldType::Int => i32::try_from(q).is_ok(),
        FieldType::Angle { bits } => (0..1i64 << bits).contains(&q),
        FieldType::UInt | FieldType::Ref => u32::try_from(q).is_ok(),
        FieldType::Flags => (0..=255).contains(&q),
    }
}

pub(crate) fn position_in_range(q: i64) -> bool {
    i32::try_from(q).is_ok()
}

/// FNV-1a, 32 bits: offset basis `0x811c9dc5`, prime `0x01000193`. A JavaScript client
/// computes it with `Math.imul`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv1a(u32);

impl Fnv1a {
    pub(crate) fn new() -> Fnv1a {
        Fnv1a(0x811c_9dc5)
    }

    pub(crate) fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }

    /// Four bytes, little-endian.
    pub(crate) fn u32(&mut self, v: u32) {
        v.to_le_bytes().into_iter().for_each(|b| self.byte(b));
    }

    pub(crate) fn finish(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entity::arena_schema;

    #[test]
    fn fnv1a_matches_the_published_vectors() {
        let hash = |s: &[u8]| {
            let mut h = Fnv1a::new();
            s.iter().for_each(|&b| h.byte(b));
            h.finish()
        };
        assert_eq!(hash(b""), 0x811c_9dc5);
        assert_eq!(hash(b"a"), 0xe40c_292c);
        assert_eq!(hash(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn angles_wrap_into_half_open_turns() {
        let ty = FieldType::Angle { bits: 10 };
        assert_eq!(quantize(ty, 0.0), 0);
        assert_eq!(quantize(ty, -TAU / 1024.0), 1023);
        assert_eq!(quantize(ty, std::f64::consts::PI), 512);
        assert_eq!(quantize(ty, 3.0 * TAU + 0.5), quantize(ty, 0.5));
        assert_eq!(dequantize(ty, 512), -std::f64::consts::PI);
        assert!((dequantize(ty, quantize(ty, 1.5)) - 1.5).abs() <= TAU / 2048.0);
        assert_eq!(quantize(ty, f64::NAN), 0);
    }

    #[test]
    fn rounding_and_floor_match_the_library_functions() {
        for v in [
            0.0,
            0.5,
            -0.5,
            1.49,
            2.5,
            -2.5,
            -2.51,
            7.0,
            -7.0,
            1e15 + 0.5,
            -3.999,
            4.2e9,
            -1e300,
            1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ] {
            let sat = |x: f64| x as i64;
            assert_eq!(round(v), sat(v.round()), "round({v})");
            assert_eq!(floor(v), sat(v.floor()), "floor({v})");
        }
    }

    #[test]
    fn integers_clamp_into_their_type() {
        assert_eq!(quantize(FieldType::UInt, -3.0), 0);
        assert_eq!(quantize(FieldType::Flags, 300.0), 255);
        assert_eq!(quantize(FieldType::Int, 1e12), i64::from(i32::MAX));
        assert_eq!(
            quantize(FieldType::Real { scale: 64.0 }, 1e12),
            i64::from(i32::MAX)
        );
        assert!(in_range(FieldType::Ref, i64::from(u32::MAX)));
        assert!(!in_range(FieldType::Int, i64::from(i32::MAX) + 1));
        assert!(!in_range(FieldType::Angle { bits: 4 }, 16));
    }

    #[test]
    fn dead_reckoning_follows_the_documented_formula() {
        let layout = Layout::new(&arena_schema(), 20).unwrap();
        // A projectile at x = 10 (640 steps) moving +30 units/s (7680 steps): after 3
        // ticks at 20 Hz it has moved 4.5 units, 288 steps.
        let m = Motion {
            pos: [640, -5],
            vel: [7680, -1],
            ref_tick: 100,
        };
        assert_eq!(layout.predict(1, &m, 103), [928, -5]);
        // -1/256 unit/s for 3 ticks is -3/80 step: rounds to 0, and 40 ticks to -0.5,
        // which floor(x + 0.5) rounds up to 0 as well.
        assert_eq!(layout.predict(1, &m, 140)[1], -5);
        assert_eq!(layout.predict(1, &m, 141)[1], -6);
        // A pickup has no velocity: it stays where it is.
        assert_eq!(layout.predict(2, &m, 1000), [640, -5]);
    }
}
