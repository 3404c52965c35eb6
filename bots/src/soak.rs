//! What a soak must show, as `--assert` gates over the report: the server never panicked
//! and stayed reachable, its memory stayed flat after the warm-up, no well-behaved bot
//! was closed or refused, every input of a well-behaved bot was acknowledged, every churn
//! resumed the same player at the same place with the same score, and every abuser was
//! cut off.
//!
//! `rallypoint-bench soak` checks these; anyone can pass the same gates to
//! `rallypoint-bots --assert` against their own server. Pure.

use crate::assert::Assertion;

/// How a soak is judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judging {
    /// Whether the run churned (then resumes are expected and checked).
    pub churn: bool,
    /// Whether the run had abusers (then each must have been cut off).
    pub abuse: bool,
    /// Largest acceptable growth of the server's memory after the warm-up, percent.
    pub max_rss_growth_pct: f64,
}

/// The gates, in the order they are printed.
pub fn gates(j: Judging) -> Vec<Assertion> {
    let mut g = vec![
        "server.panics==0".to_owned(),
        "server.scrape_failures==0".to_owned(),
        "server.samples_after_warmup>=3".to_owned(),
        format!("server.rss_growth_pct<={}", j.max_rss_growth_pct),
        "well_behaved.handshake_failures==0".to_owned(),
        "well_behaved.unexpected_closes==0".to_owned(),
        "well_behaved.inputs.lost_at_churn==0".to_owned(),
        "well_behaved.inputs.lost_at_close==0".to_owned(),
        "well_behaved.inputs.unexplained==0".to_owned(),
        "decode_errors==0".to_owned(),
        "ack_regressions==0".to_owned(),
        "bots.unfinished==0".to_owned(),
    ];
    if j.churn {
        g.extend(
            [
                "churn.resume_failures==0",
                "churn.state_lost==0",
                "churn.state_kept>=1",
            ]
            .map(str::to_owned),
        );
    }
    if j.abuse {
        g.extend(["abusive.cut_off>=1", "abusive.survived==0"].map(str::to_owned));
    }
    g.iter()
        .map(|s| s.parse().expect("the soak gates are well-formed"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_gate_names_a_report_metric() {
        let all = gates(Judging {
            churn: true,
            abuse: true,
            max_rss_growth_pct: 10.0,
        });
        crate::assert::validate(&all).expect("known metrics");
        let fewer = gates(Judging {
            churn: false,
            abuse: false,
            max_rss_growth_pct: 10.0,
        });
        assert!(fewer.len() < all.len());
    }
}
