//! The short soak CI runs: the same gates as `rallypoint-bench soak` (see
//! `rallypoint_bots::soak`), over 20 seconds instead of minutes. Fighting bots, churn with
//! a state check on every resume, abusers of every kind that keep coming back, and the
//! server's memory, sessions and panics sampled from its admin port.
//!
//! Twenty seconds cannot show that memory is flat over an hour (the documented soak does
//! that); the growth gate here is looser and catches what a short run can: a leak per
//! session or per abuser, which the churn and the returning abusers repeat dozens of
//! times.

use std::time::Duration;

use rallypoint_bots::soak::{Judging, gates};
use rallypoint_bots::{AbuseMode, AbuseSpec, Auth, Behavior, Config, MintOptions, Rooms};

use crate::server;

#[tokio::test]
async fn a_short_soak_passes_every_gate() {
    let s = server().args(crate::bots::LOAD_LIMITS).start();
    let config = Config {
        url: s.play_url(),
        bots: 40,
        ramp_per_s: 100.0,
        duration: Duration::from_secs(20),
        behavior: Behavior::Fight,
        rooms: Rooms::Spread(4),
        auth: Auth::Mint(MintOptions::new(s.secret.clone())),
        churn_pct_per_s: 5.0,
        abuse: AbuseMode::ALL
            .into_iter()
            .map(|mode| AbuseSpec {
                mode,
                fraction: 0.05,
            })
            .collect(),
        abuse_after: Duration::from_millis(500),
        abusers_return: true,
        admin: Some(s.admin.to_string()),
        sample_every: Duration::from_secs(1),
        warmup: Some(Duration::from_secs(6)),
        seed: Some(7),
        ..Config::default()
    };
    let report = tokio::time::timeout(Duration::from_secs(40), rallypoint_bots::run(config))
        .await
        .expect("the soak ends on its own")
        .expect("the soak starts");
    let text = report.render_text();
    let outcomes = rallypoint_bots::assert::check(
        &report,
        &gates(Judging {
            churn: true,
            abuse: true,
            max_rss_growth_pct: 25.0,
        }),
    )
    .expect("every gate names a metric");
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !o.passed)
        .map(ToString::to_string)
        .collect();
    assert!(failed.is_empty(), "{failed:#?}\n{text}");
    println!("{text}");
    // The run did what a soak is for.
    assert!(report.churn.drops >= 5, "{text}");
    let server = report.server.as_ref().expect("admin samples");
    assert!(server.samples.len() >= 15, "{text}");
    // Abusers spend part of each cycle reconnecting; the well-behaved 32 never leave for
    // long.
    assert!(server.connections_max >= 32, "{text}");
    for mode in ["flood", "oversize", "garbage"] {
        assert!(
            report.abusive.by_mode[mode].cut_off >= 2,
            "{mode} abusers came back and were cut off again: {text}"
        );
    }
}
