//! The body's primitive values: unsigned LEB128 varints of at most 5 bytes and zigzag for
//! signed values. A JavaScript client decodes both with float arithmetic (every value is
//! below 2^35), no 64-bit integers needed. Reading never goes past the buffer and never
//! panics; writing must never produce a value a 5-byte varint cannot carry.

use bytes::BufMut;

use super::V2Error;

/// Largest value a 5-byte varint carries.
pub(crate) const VARINT_MAX: u64 = (1 << 35) - 1;
/// Largest magnitude a zigzag value may have so that it fits [`VARINT_MAX`].
pub(crate) const SIGNED_MAX: i64 = (1 << 34) - 1;

pub(crate) fn put_uvar(out: &mut impl BufMut, mut v: u64) {
    debug_assert!(v <= VARINT_MAX);
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

pub(crate) fn put_svar(out: &mut impl BufMut, v: i64) {
    put_uvar(out, zigzag(v));
}

/// Length of `v` as a varint.
pub(crate) fn uvar_len(v: u64) -> usize {
    match v {
        0..0x80 => 1,
        0x80..0x4000 => 2,
        0x4000..0x20_0000 => 3,
        0x20_0000..0x1000_0000 => 4,
        _ => 5,
    }
}

/// Reads values from a body, never past its end.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn uvar(&mut self) -> Result<u64, V2Error> {
        let mut v = 0u64;
        for i in 0..5 {
            let b = *self.buf.get(self.pos).ok_or(V2Error::Truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(V2Error::VarintTooLong)
    }

    pub(crate) fn svar(&mut self) -> Result<i64, V2Error> {
        self.uvar().map(unzigzag)
    }

    /// A count of items that take at least one byte each: never more than the bytes left.
    pub(crate) fn count(&mut self, what: &'static str) -> Result<usize, V2Error> {
        let count = self.uvar()?;
        if count > self.remaining() as u64 {
            return Err(V2Error::CountTooLarge {
                what,
                count,
                bytes: self.remaining(),
            });
        }
        Ok(count as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_length_boundary() {
        for v in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            (1 << 21) - 1,
            1 << 21,
            1 << 28,
            VARINT_MAX,
        ] {
            let mut out = Vec::new();
            put_uvar(&mut out, v);
            assert_eq!(out.len(), uvar_len(v), "{v}");
            assert_eq!(Reader::new(&out).uvar(), Ok(v));
        }
        for v in [
            0,
            -1,
            1,
            -64,
            64,
            i64::from(i32::MIN),
            SIGNED_MAX,
            -SIGNED_MAX,
        ] {
            let mut out = Vec::new();
            put_svar(&mut out, v);
            assert_eq!(Reader::new(&out).svar(), Ok(v), "{v}");
        }
        assert_eq!(zigzag(-1), 1);
        assert_eq!(zigzag(1), 2);
    }

    #[test]
    fn long_or_cut_varints_are_errors() {
        assert_eq!(Reader::new(&[0x80; 5]).uvar(), Err(V2Error::VarintTooLong));
        assert_eq!(Reader::new(&[0x80, 0x80]).uvar(), Err(V2Error::Truncated));
        let mut r = Reader::new(&[200, 1, 2]);
        assert!(matches!(
            r.count("pieces"),
            Err(V2Error::CountTooLarge { .. })
        ));
    }
}
