//! The assets version: FNV-1a 64 over every loaded file's relative path and bytes.
//!
//! Must not depend on file system order or time: the caller passes files sorted by path,
//! so the same content always gives the same version.

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hex version of `(relative path, bytes)` pairs, which must be sorted by path.
pub(crate) fn version<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (path, bytes) in files {
        // Lengths in front keep ("ab", "c") and ("a", "bc") apart.
        feed(&(path.len() as u64).to_le_bytes());
        feed(path.as_bytes());
        feed(&(bytes.len() as u64).to_le_bytes());
        feed(bytes);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_reference_and_boundaries() {
        // FNV-1a 64 of no input is the offset basis.
        assert_eq!(version([]), "cbf29ce484222325");
        let a = version([("ab", b"c".as_slice())]);
        let b = version([("a", b"bc".as_slice())]);
        assert_ne!(a, b);
        assert_eq!(a, version([("ab", b"c".as_slice())]));
    }
}
