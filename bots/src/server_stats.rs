//! The server seen from its admin port during a run (`--admin`): resident memory, open
//! connections and panics, sampled from `/metrics` at a fixed interval, and the summary a
//! soak is judged by.
//!
//! Memory is judged after a warm-up (connections, rooms and buffers are allocated while
//! the bots ramp up and the first rounds run) by the least-squares line through the later
//! samples: its slope, and how much it grows over the sampled window relative to where it
//! starts. One noisy sample moves a fitted line far less than it moves a first/last
//! comparison. A scrape that fails is counted, never fatal to the run.
//!
//! [`summarize`] is pure; [`Sampler`] does the IO.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::prom;

/// Metric names the samples read.
const RSS: &str = "rallypoint_resident_memory_bytes";
const CONNECTIONS: &str = "rallypoint_connections_open";
const PANICS: &str = "rallypoint_panics_total";

/// One scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Server resident memory, MiB.
    pub rss_mib: f64,
    /// WebSocket sessions open on the server.
    pub connections: u64,
    /// Panics since the server started.
    pub panics: u64,
}

/// The server during the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerReport {
    /// Admin address sampled.
    pub admin: String,
    /// Seconds between samples.
    pub sample_every_s: f64,
    /// Samples before this many seconds are warm-up, left out of the memory figures.
    pub warmup_s: f64,
    /// Every sample, in order.
    pub samples: Vec<Sample>,
    /// Scrapes that failed (server down, admin port unreachable, bad response).
    pub scrape_failures: u64,
    /// Panics during the run (difference between the last and the first sample).
    pub panics: u64,
    /// Most sessions open on the server at a sample.
    pub connections_max: u64,
    /// Sessions open on the server at the last sample (after the bots closed).
    pub connections_at_end: u64,
    /// Samples after the warm-up.
    pub samples_after_warmup: u64,
    /// Resident memory at the first sample after the warm-up, MiB.
    pub rss_after_warmup_mib: f64,
    /// Resident memory at the last sample, MiB.
    pub rss_last_mib: f64,
    /// Highest resident memory sampled, MiB.
    pub rss_max_mib: f64,
    /// Slope of the fitted line through the samples after the warm-up, MiB per minute.
    pub rss_slope_mib_per_min: f64,
    /// Growth of the fitted line over the samples after the warm-up, percent of its
    /// starting value (0 with fewer than three such samples).
    pub rss_growth_pct: f64,
}

/// The report section for `samples`. `failures` counts scrapes that did not answer.
pub fn summarize(
    admin: String,
    sample_every: Duration,
    warmup: Duration,
    samples: Vec<Sample>,
    failures: u64,
) -> ServerReport {
    let warmup_s = warmup.as_secs_f64();
    let after: Vec<&Sample> = samples.iter().filter(|s| s.t_s >= warmup_s).collect();
    let (slope_per_s, growth_pct) = match fit(&after) {
        Some((slope, start, span)) if after.len() >= 3 && start > 0.0 => {
            (slope, slope * span / start * 100.0)
        }
        Some((slope, _, _)) => (slope, 0.0),
        None => (0.0, 0.0),
    };
    let panics = match (samples.first(), samples.last()) {
        (Some(a), Some(b)) => b.panics.saturating_sub(a.panics),
        _ => 0,
    };
    ServerReport {
        admin,
        sample_every_s: round3(sample_every.as_secs_f64()),
        warmup_s: round3(warmup_s),
        scrape_failures: failures,
        panics,
        connections_max: samples.iter().map(|s| s.connections).max().unwrap_or(0),
        connections_at_end: samples.last().map_or(0, |s| s.connections),
        samples_after_warmup: after.len() as u64,
        rss_after_warmup_mib: after.first().map_or(0.0, |s| s.rss_mib),
        rss_last_mib: samples.last().map_or(0.0, |s| s.rss_mib),
        rss_max_mib: samples.iter().map(|s| s.rss_mib).fold(0.0, f64::max),
        rss_slope_mib_per_min: round3(slope_per_s * 60.0),
        rss_growth_pct: round3(growth_pct),
        samples,
    }
}

/// Least squares through (t, rss): slope per second, the line's value at the first
/// sample, and the time the samples span. `None` for fewer than two distinct times.
fn fit(samples: &[&Sample]) -> Option<(f64, f64, f64)> {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return None;
    }
    let mean_t = samples.iter().map(|s| s.t_s).sum::<f64>() / n;
    let mean_m = samples.iter().map(|s| s.rss_mib).sum::<f64>() / n;
    let sxx: f64 = samples.iter().map(|s| (s.t_s - mean_t).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = samples
        .iter()
        .map(|s| (s.t_s - mean_t) * (s.rss_mib - mean_m))
        .sum();
    let slope = sxy / sxx;
    let first = samples[0].t_s;
    let span = samples[samples.len() - 1].t_s - first;
    Some((slope, mean_m + slope * (first - mean_t), span))
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Samples the admin port until dropped or stopped; shared with the run so the last
/// sample can be taken after the bots are gone.
#[derive(Debug, Clone)]
pub struct Sampler {
    admin: SocketAddr,
    started: Instant,
    state: Arc<Mutex<(Vec<Sample>, u64)>>,
}

impl Sampler {
    /// A sampler of `admin` whose times count from `started`.
    pub fn new(admin: SocketAddr, started: Instant) -> Sampler {
        Sampler {
            admin,
            started,
            state: Arc::default(),
        }
    }

    /// Takes one sample now.
    pub async fn sample(&self) {
        let result = prom::scrape(self.admin).await;
        let t_s = self.started.elapsed().as_secs_f64();
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(scrape) => state.0.push(Sample {
                t_s: round3(t_s),
                rss_mib: round3(scrape.sum(RSS) / (1024.0 * 1024.0)),
                connections: scrape.sum(CONNECTIONS) as u64,
                panics: scrape.sum(PANICS) as u64,
            }),
            Err(_) => state.1 += 1,
        }
    }

    /// Samples every `every` forever (the caller drops or aborts the task).
    pub async fn run(self, every: Duration) {
        let mut ticker = tokio::time::interval(every);
        loop {
            ticker.tick().await;
            self.sample().await;
        }
    }

    /// The samples so far and the failed scrapes.
    pub fn take(&self) -> (Vec<Sample>, u64) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        (state.0.clone(), state.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(f64, f64)]) -> Vec<Sample> {
        points
            .iter()
            .map(|&(t_s, rss_mib)| Sample {
                t_s,
                rss_mib,
                connections: 10,
                panics: 0,
            })
            .collect()
    }

    fn summary(points: &[(f64, f64)], warmup: u64) -> ServerReport {
        summarize(
            "127.0.0.1:7778".into(),
            Duration::from_secs(10),
            Duration::from_secs(warmup),
            series(points),
            0,
        )
    }

    #[test]
    fn flat_memory_after_the_warm_up_has_no_growth() {
        // Ramp-up to 60 MiB, then flat with noise.
        let r = summary(
            &[
                (0.0, 20.0),
                (10.0, 50.0),
                (20.0, 60.0),
                (30.0, 61.0),
                (40.0, 59.0),
                (50.0, 60.5),
                (60.0, 59.5),
            ],
            20,
        );
        assert_eq!(r.samples_after_warmup, 5);
        assert!(r.rss_growth_pct.abs() < 2.0, "{r:?}");
        assert_eq!(r.rss_max_mib, 61.0);
        assert_eq!(r.rss_after_warmup_mib, 60.0);
    }

    #[test]
    fn a_leak_shows_as_slope_and_growth() {
        // +1 MiB per 10 s from 100 MiB: 6 MiB/min, +4 % over 40 s.
        let r = summary(
            &[
                (10.0, 100.0),
                (20.0, 101.0),
                (30.0, 102.0),
                (40.0, 103.0),
                (50.0, 104.0),
            ],
            10,
        );
        assert!((r.rss_slope_mib_per_min - 6.0).abs() < 1e-6, "{r:?}");
        assert!((r.rss_growth_pct - 4.0).abs() < 1e-6, "{r:?}");
    }

    #[test]
    fn too_few_samples_give_no_growth_and_panics_are_a_difference() {
        let r = summary(&[(0.0, 10.0), (30.0, 50.0)], 20);
        assert_eq!(r.samples_after_warmup, 1);
        assert_eq!(r.rss_growth_pct, 0.0);
        let mut samples = series(&[(0.0, 10.0), (10.0, 10.0)]);
        samples[0].panics = 2;
        samples[1].panics = 5;
        samples[1].connections = 0;
        let r = summarize(String::new(), Duration::ZERO, Duration::ZERO, samples, 1);
        assert_eq!((r.panics, r.scrape_failures), (3, 1));
        assert_eq!((r.connections_max, r.connections_at_end), (10, 0));
    }
}
