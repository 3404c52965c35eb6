//! `rallypoint-bench soak`: the real server (release build) under bots for a long while —
//! fighting, churning (drop abruptly, resume, check the player), with a fraction of
//! abusers that keep coming back — sampled from its admin port, then judged by the
//! [`rallypoint_bots::soak`] gates.
//!
//! Unlike the measurements, a soak has a verdict: exit 0 when every gate holds, 1 when
//! one fails (the report says which), 2 when it could not run. The server runs with
//! production defaults except the per-IP limits (every bot comes from 127.0.0.1) and hot
//! reload (off).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::Bench;
use rallypoint_bots::config::{
    AbuseMode, AbuseSpec, Auth, Behavior, Config, MintOptions, Rooms, parse_duration,
};
use rallypoint_bots::soak::{Judging, gates};

/// `soak` flags.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// Bots.
    #[arg(long, default_value_t = 300)]
    pub bots: usize,
    /// How long the bots play (e.g. 10m, 1h).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub duration: Duration,
    /// Percent of the well-behaved bots that drop their connection and resume each second.
    #[arg(long, default_value_t = 2.0)]
    pub churn: f64,
    /// Fraction of the bots in each abuse mode (flood, oversize, garbage, slow-reader);
    /// abusers come back after each cut-off (0 = none).
    #[arg(long, default_value_t = 0.02)]
    pub abuse_each: f64,
    /// Rooms the bots spread over.
    #[arg(long, default_value_t = 20)]
    pub rooms: u32,
    /// Interval between memory samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Samples before this are warm-up [default: the ramp plus a fifth of --duration].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Largest acceptable memory growth after the warm-up, percent of the fitted start.
    #[arg(long, default_value_t = 10.0)]
    pub max_rss_growth_pct: f64,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
}

impl SoakArgs {
    /// The bots' run against a server at `url` / `admin` trusting `secret`.
    pub fn config(&self, url: String, admin: String, secret: Vec<u8>) -> Config {
        let abuse = if self.abuse_each > 0.0 {
            AbuseMode::ALL
                .into_iter()
                .map(|mode| AbuseSpec {
                    mode,
                    fraction: self.abuse_each,
                })
                .collect()
        } else {
            Vec::new()
        };
        Config {
            url,
            bots: self.bots,
            ramp_per_s: 100.0,
            duration: self.duration,
            behavior: Behavior::Fight,
            rooms: Rooms::Spread(self.rooms),
            auth: Auth::Mint(MintOptions::new(secret)),
            churn_pct_per_s: self.churn,
            abuse,
            abusers_return: true,
            sub_prefix: "soak".into(),
            admin: Some(admin),
            sample_every: self.sample_every,
            warmup: self.warmup,
            progress_interval: Duration::from_secs(10),
            ..Config::default()
        }
    }

    fn judging(&self) -> Judging {
        Judging {
            churn: self.churn > 0.0,
            abuse: self.abuse_each > 0.0,
            max_rss_growth_pct: self.max_rss_growth_pct,
        }
    }
}

/// Runs the soak and prints the report and the verdict.
pub async fn run(bench: &Bench, args: &SoakArgs) -> anyhow::Result<ExitCode> {
    let mut server = bench.start_server("soak", &[])?;
    let admin = server
        .proc
        .admin
        .context("the server printed no admin address")?;
    let config = args.config(
        format!("ws://{}/play", server.proc.game),
        admin.to_string(),
        server.secret.clone(),
    );
    println!(
        "soak: {} bots (fight, {} rooms), churn {}%/s, {} of the bots per abuse mode (abusers return), for {:.0} s; server pid {}",
        args.bots,
        args.rooms,
        args.churn,
        args.abuse_each,
        args.duration.as_secs_f64(),
        server.proc.pid
    );
    let report = rallypoint_bots::run_with(config, std::future::pending(), |p| {
        println!("  {}", p.line());
    })
    .await?;
    let alive = server.proc.alive();
    println!();
    print!("{}", report.render_text());
    if let Some(path) = &args.report {
        std::fs::write(path, report.to_json())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let outcomes = rallypoint_bots::assert::check(&report, &gates(args.judging()))?;
    println!();
    println!("verdict:");
    println!(
        "  {} the server is still running",
        if alive { "ok    " } else { "FAILED" }
    );
    for o in &outcomes {
        println!("  {o}");
    }
    if alive && outcomes.iter().all(|o| o.passed) {
        println!("soak passed");
        Ok(ExitCode::SUCCESS)
    } else {
        if !alive {
            println!("the server's last output:\n{}", server.proc.tail());
        }
        println!("soak FAILED");
        Ok(ExitCode::from(1))
    }
}
