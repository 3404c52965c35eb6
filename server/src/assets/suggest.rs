//! "Did you mean ...?" for misspelt keys: edit distance and the closeness threshold.
//!
//! Must not build messages beyond the suggestion itself; callers decide the wording.

/// Levenshtein distance over characters, case-insensitive (a designer typing `Radius`
/// meant `radius`).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The known key closest to `unknown`, if it is close enough to be a plausible typo:
/// within a third of the typed length (rustc's rule), or a prefix/suffix match such as
/// `speed` for `max_speed`.
pub(crate) fn closest<'k>(unknown: &str, known: &[&'k str]) -> Option<&'k str> {
    // Keys are short; anything much longer is not a typo, and the quadratic distance
    // should not run on a pasted paragraph.
    if unknown.chars().count() > 64 {
        return None;
    }
    let lower = unknown.to_lowercase();
    let threshold = unknown.chars().count().max(3) / 3;
    known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .filter(|(d, k)| {
            *d <= threshold
                || (lower.chars().count() >= 3
                    && (k.starts_with(lower.as_str()) || k.ends_with(lower.as_str())))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_basics() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("max_sped", "max_speed"), 1);
        assert_eq!(edit_distance("Radius", "radius"), 0);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_only_when_plausible() {
        let keys = [
            "radius",
            "max_speed",
            "acceleration",
            "max_health",
            "respawn_delay_s",
        ];
        assert_eq!(closest("max_sped", &keys), Some("max_speed"));
        assert_eq!(closest("speed", &keys), Some("max_speed"));
        assert_eq!(closest("acel", &keys), None);
        assert_eq!(closest("colour", &keys), None);
        assert_eq!(
            closest("walls", &["wall", "spawn", "pickup", "width", "height"]),
            Some("wall")
        );
    }
}
