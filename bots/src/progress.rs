//! Live progress: a snapshot of the run taken about once a second, and its one-line
//! rendering for a terminal.
//!
//! Rates are over the last interval; p99s are over the samples flushed during it (bots
//! flush about once a second, so a line reflects roughly the last second or two).
//! Must not print: the caller decides where lines go and how (redrawn on a TTY, one
//! line every few seconds otherwise).

use std::time::Duration;

use crate::report::{bytes, human};

/// The run at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Progress {
    /// Since the run started.
    pub elapsed: Duration,
    /// Bots asked for.
    pub target: usize,
    /// Sessions open now.
    pub connected: u64,
    /// Failed connection attempts so far.
    pub failures: u64,
    /// Unexpected closes so far (well-behaved and abusive).
    pub unexpected_closes: u64,
    /// Churn resumes so far.
    pub resumes: u64,
    /// Abusers cut off so far.
    pub cut_off: u64,
    /// Snapshots received per second, last interval.
    pub snapshots_per_s: f64,
    /// Payload bytes received per second, last interval.
    pub bytes_in_per_s: f64,
    /// Messages sent per second, last interval.
    pub messages_out_per_s: f64,
    /// Snapshots received since the run started. Bots hand their counts over about once
    /// a second, so totals lag by up to a second; differences between two samples of a
    /// steady run are exact rates (what `rallypoint-bench` uses).
    pub snapshots_total: u64,
    /// Payload bytes received since the run started (same lag as `snapshots_total`).
    pub bytes_in_total: u64,
    /// Messages sent since the run started (same lag as `snapshots_total`).
    pub messages_out_total: u64,
    /// RTT p99 over the last interval, ms.
    pub rtt_p99_ms: Option<f64>,
    /// Input→ack p99 over the last interval, ms.
    pub ack_p99_ms: Option<f64>,
    /// Snapshot jitter p99 over the last interval, ms.
    pub jitter_p99_ms: Option<f64>,
    /// The duration is over; bots are collecting final acks and closing.
    pub finishing: bool,
}

impl Progress {
    /// One line, no trailing newline.
    pub fn line(&self) -> String {
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}ms"));
        let mut s = format!(
            "[{:>6.1}s] {}/{} connected | {} snaps/s {}/s in {} msgs/s out | p99 rtt {} ack {} jitter {} | fail {} unexp {}",
            self.elapsed.as_secs_f64(),
            self.connected,
            self.target,
            human(self.snapshots_per_s),
            bytes(self.bytes_in_per_s),
            human(self.messages_out_per_s),
            ms(self.rtt_p99_ms),
            ms(self.ack_p99_ms),
            ms(self.jitter_p99_ms),
            self.failures,
            self.unexpected_closes,
        );
        if self.resumes > 0 {
            s.push_str(&format!(" resumes {}", self.resumes));
        }
        if self.cut_off > 0 {
            s.push_str(&format!(" cut off {}", self.cut_off));
        }
        if self.finishing {
            s.push_str(" | finishing");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_the_essentials() {
        let p = Progress {
            elapsed: Duration::from_secs(3),
            target: 10,
            connected: 9,
            snapshots_per_s: 270.0,
            rtt_p99_ms: Some(1.25),
            ..Progress::default()
        };
        let line = p.line();
        assert!(line.contains("9/10 connected"), "{line}");
        assert!(
            line.contains("rtt 1.2ms") || line.contains("rtt 1.3ms"),
            "{line}"
        );
        assert!(line.contains("ack -"), "{line}");
    }
}
