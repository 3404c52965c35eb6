//! The server's `/metrics`, scraped over plain HTTP from its admin port (with the client
//! library's HTTP client) and read as far as
//! the benchmark and the run's server samples need: counters and gauges summed over their
//! labels, and the tick-duration histogram summed over rooms, from which a quantile is
//! interpolated.
//!
//! Must not interpret metrics beyond summing and interpolating.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;

/// One sample line: name, labels, value.
type Line = (String, Vec<(String, String)>, f64);

/// A scrape: every sample line.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Line>,
}

/// Fetches `GET /metrics` from the admin port (within ten seconds).
pub async fn scrape(admin: SocketAddr) -> anyhow::Result<Scrape> {
    let response = rallypoint_client::Endpoint::plain(admin)
        .with_timeout(Duration::from_secs(10))
        .get("/metrics")
        .await
        .context("GET /metrics")?;
    Ok(Scrape::parse(&response.text()))
}

impl Scrape {
    /// Parses Prometheus / OpenMetrics text.
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = match line.rsplit_once(' ') {
                Some(p) => p,
                None => continue,
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Scrape { samples }
    }

    /// Sum of every series named `name`.
    pub fn sum(&self, name: &str) -> f64 {
        self.samples
            .iter()
            .filter(|(n, _, _)| n == name)
            .map(|(_, _, v)| v)
            .sum()
    }

    /// Cumulative bucket counts of histogram `base` (`{base}_bucket`), summed over every
    /// other label, by upper bound, ascending (`+Inf` last).
    pub fn buckets(&self, base: &str) -> Vec<(f64, f64)> {
        let name = format!("{base}_bucket");
        let mut out: Vec<(f64, f64)> = Vec::new();
        for (n, labels, v) in &self.samples {
            if *n != name {
                continue;
            }
            let Some(le) = labels.iter().find(|(k, _)| k == "le").and_then(|(_, le)| {
                if le == "+Inf" {
                    Some(f64::INFINITY)
                } else {
                    le.parse().ok()
                }
            }) else {
                continue;
            };
            match out.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += v,
                None => out.push((le, *v)),
            }
        }
        out.sort_by(|a, b| a.0.total_cmp(&b.0));
        out
    }
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    // Label values here are room names and numbers: no escaped quotes or commas.
    s.split(',')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        })
        .collect()
}

/// Bucket counts observed between two scrapes (`later - earlier`, per upper bound).
pub fn bucket_delta(earlier: &[(f64, f64)], later: &[(f64, f64)]) -> Vec<(f64, f64)> {
    later
        .iter()
        .map(|&(le, c)| {
            let before = earlier
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, c)| *c);
            (le, (c - before).max(0.0))
        })
        .collect()
}

/// The `q` quantile of cumulative buckets, interpolated linearly inside the bucket it
/// falls in (from the previous bound, or 0). `None` without observations; infinity when
/// it falls in the `+Inf` bucket.
pub fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for &(le, cum) in buckets {
        if cum >= rank && cum > below {
            if le.is_infinite() {
                return Some(f64::INFINITY);
            }
            return Some(lower + (le - lower) * (rank - below) / (cum - below));
        }
        lower = le;
        below = cum;
    }
    Some(f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP rallypoint_room_tick_seconds Duration of one room tick.
# TYPE rallypoint_room_tick_seconds histogram
rallypoint_room_tick_seconds_sum{room="a"} 0.5
rallypoint_room_tick_seconds_count{room="a"} 100
rallypoint_room_tick_seconds_bucket{le="0.001",room="a"} 50
rallypoint_room_tick_seconds_bucket{le="0.002",room="a"} 100
rallypoint_room_tick_seconds_bucket{le="+Inf",room="a"} 100
rallypoint_room_tick_seconds_bucket{room="b",le="0.001"} 0
rallypoint_room_tick_seconds_bucket{room="b",le="0.002"} 100
rallypoint_room_tick_seconds_bucket{room="b",le="+Inf"} 100
rallypoint_room_snapshot_bytes_total{room="a"} 1000
rallypoint_room_snapshot_bytes_total{room="b"} 500
rallypoint_connections_open 7
# EOF
"#;

    #[test]
    fn sums_and_quantiles() {
        let s = Scrape::parse(TEXT);
        assert_eq!(s.sum("rallypoint_room_snapshot_bytes_total"), 1500.0);
        assert_eq!(s.sum("rallypoint_connections_open"), 7.0);
        assert_eq!(s.sum("rallypoint_room_tick_seconds_count"), 100.0);
        let b = s.buckets("rallypoint_room_tick_seconds");
        assert_eq!(
            b,
            vec![(0.001, 50.0), (0.002, 200.0), (f64::INFINITY, 200.0)]
        );
        // 50 of 200 below 1 ms; the median (rank 100) is a third into the 1-2 ms bucket.
        let p50 = quantile(&b, 0.5).unwrap();
        assert!((p50 - 0.001_333).abs() < 1e-5, "{p50}");
        assert!((quantile(&b, 0.1).unwrap() - 0.0004).abs() < 1e-9);
        let none = bucket_delta(&b, &b);
        assert_eq!(quantile(&none, 0.99), None);
        let spill = vec![(0.001, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(&spill, 0.99), Some(f64::INFINITY));
    }
}
