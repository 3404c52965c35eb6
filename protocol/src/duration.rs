//! Durations as people type them on a command line or in an environment variable:
//! `500ms`, `5s`, `2m`, `1h`, `1d`, or a bare number of seconds.
//!
//! One parser for the server, the bots and the bench, so a value means the same thing to
//! each. Pure: no clock, no IO. Callers that need a tighter bound than the parser's own
//! (ten years) check it themselves.

use std::time::Duration;

/// Longest duration accepted: ten years, far beyond any timeout or run, and small enough
/// that adding it to an `Instant` cannot overflow.
pub const MAX_SECS: f64 = 10.0 * 365.0 * 86_400.0;

/// Parses `500ms`, `5s`, `2m`, `1h`, `1d` or a bare number of seconds (fractions allowed:
/// `1.5s`). The error says what was wrong, for a command-line message.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 5s, 500ms, 2m"))?;
    let secs = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        "d" => value * 86_400.0,
        other => {
            return Err(format!(
                "unknown duration unit `{other}` (use ms, s, m, h or d)"
            ));
        }
    };
    if !secs.is_finite() || !(0.0..=MAX_SECS).contains(&secs) {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_unit_and_the_bounds() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration(" 1.5 "), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("4000d").is_err());
    }
}
