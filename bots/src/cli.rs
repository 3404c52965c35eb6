//! The `rallypoint-bots` command: flags, runtime, Ctrl-C, the live progress line, the
//! final report, `--report` JSON, `--assert` gates and the exit code.
//!
//! This is the binary edge: it reads files named by flags, prints, and turns errors into
//! `anyhow` reports and exit codes; nothing else in the crate does. Exit codes: 0 = the
//! run completed and every assertion held, 1 = an assertion failed, 2 = bad usage or the
//! run could not start, 130 = interrupted (Ctrl-C; the report so far is still printed).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::Parser;
use rallypoint_protocol::Subprotocol;

use crate::assert::{self, Assertion};
use crate::config::{
    AbuseMode, AbuseSpec, Auth, Behavior, Config, Latency, MintOptions, Rooms, TlsOptions,
    parse_duration, parse_protocol,
};
use crate::progress::Progress;

/// Headless Rallypoint players: load-test a server and report like a benchmark.
#[derive(Debug, Parser)]
#[command(name = "rallypoint-bots", version, about, long_about = None)]
pub struct Args {
    /// Game endpoint, ws:// or wss://.
    #[arg(
        long,
        env = "RALLYPOINT_BOTS_URL",
        default_value = "ws://127.0.0.1:7777/play"
    )]
    pub url: String,
    /// Bots to run.
    #[arg(long, default_value_t = 10)]
    pub bots: usize,
    /// Bots started per second.
    #[arg(long, default_value_t = 200.0)]
    pub ramp: f64,
    /// Run length, ramp included (e.g. 30s, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// What well-behaved bots do: idle, wander, fight or strafe.
    #[arg(long, default_value = "wander")]
    pub behavior: Behavior,
    /// Subprotocol: msgpack (v1, the default), json (v1), v2 (rallypoint.v2.msgpack), or
    /// a full name.
    #[arg(long, default_value = "msgpack", value_parser = parse_protocol)]
    pub protocol: Subprotocol,
    /// Put every bot in this room.
    #[arg(long, conflicts_with = "rooms")]
    pub room: Option<String>,
    /// Spread the bots over N rooms named bots-1..N.
    #[arg(long)]
    pub rooms: Option<u32>,
    /// HS256 secret file (the server's --jwt-secret-file): each bot mints its own token.
    #[arg(
        long,
        env = "RALLYPOINT_BOTS_SECRET_FILE",
        conflicts_with = "tokens_file"
    )]
    pub secret_file: Option<PathBuf>,
    /// File with one token per line (one per bot, each for a different account).
    #[arg(long)]
    pub tokens_file: Option<PathBuf>,
    /// `aud` of minted tokens.
    #[arg(long, default_value = "rallypoint")]
    pub aud: String,
    /// `iss` of minted tokens.
    #[arg(long)]
    pub iss: Option<String>,
    /// Accept any server certificate (self-signed test servers).
    #[arg(long)]
    pub insecure: bool,
    /// Trust this CA certificate (PEM) for wss:// instead of the public roots.
    #[arg(long)]
    pub ca: Option<PathBuf>,
    /// Percent of the well-behaved bots that drop their connection abruptly each second
    /// and resume it.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Ask `GET /match` on --url's node where each bot plays (a cluster), follow 421s,
    /// and reconnect through /match after a lost connection.
    #[arg(long = "match")]
    pub matchmaking: bool,
    /// Make a fraction of the bots misbehave: MODE FRACTION, MODE one of flood, oversize,
    /// garbage, slow-reader (repeatable).
    #[arg(long, num_args = 2, value_names = ["MODE", "FRACTION"], action = clap::ArgAction::Append)]
    pub abuse: Vec<String>,
    /// Abusers reconnect after being cut off and misbehave again, all run long.
    #[arg(long)]
    pub abusers_return: bool,
    /// How long abusers play nicely before misbehaving.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub abuse_after: Duration,
    /// Size of the oversize abuser's message, bytes.
    #[arg(long, default_value_t = 16 * 1024)]
    pub oversize_bytes: usize,
    /// Runtime worker threads (1 = single-threaded).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Gate: METRIC OP VALUE, OP one of < <= > >= == (repeatable), e.g. 'rtt_p99_ms<50'.
    #[arg(long = "assert", value_name = "EXPR")]
    pub assertions: Vec<String>,
    /// Seed for every random choice (repeat a run exactly).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Prefix of the bots' account ids.
    #[arg(long, default_value = "bot")]
    pub sub_prefix: String,
    /// Limit on connect + TLS + upgrade, and on waiting for welcome.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// At the end, how long a bot waits for the ack of its last input.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub final_ack_wait: Duration,
    /// No progress line.
    #[arg(long, short)]
    pub quiet: bool,
    /// The server's admin address (HOST:PORT): sample its /metrics through the run
    /// (resident memory, open sessions, panics) into the report's `server` section.
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: Option<String>,
    /// Interval between admin samples.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub sample_every: Duration,
    /// Admin samples before this are warm-up, left out of the memory figures [default:
    /// the ramp plus a fifth of --duration].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// Round trip added to every bot connection by a delaying relay inside the bots: each
    /// direction is held half of it (e.g. 150ms).
    #[arg(long, value_parser = parse_duration)]
    pub latency: Option<Duration>,
    /// Jitter of the added latency: each direction is delayed ± half of it (needs
    /// --latency).
    #[arg(long, value_parser = parse_duration, requires = "latency")]
    pub jitter: Option<Duration>,
}

impl Args {
    /// The run this command line asks for (reads the secret and token files).
    pub fn config(&self) -> anyhow::Result<Config> {
        let auth = match (&self.secret_file, &self.tokens_file) {
            (Some(path), _) => {
                let raw = std::fs::read(path)
                    .with_context(|| format!("reading --secret-file {}", path.display()))?;
                let secret = raw.trim_ascii().to_vec();
                if secret.is_empty() {
                    bail!("--secret-file {} is empty", path.display());
                }
                Auth::Mint(MintOptions {
                    secret,
                    aud: self.aud.clone(),
                    iss: self.iss.clone(),
                })
            }
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --tokens-file {}", path.display()))?;
                Auth::Tokens(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty() && !l.starts_with('#'))
                        .map(str::to_owned)
                        .collect(),
                )
            }
            (None, None) => Auth::DevToken,
        };
        if !self.abuse.len().is_multiple_of(2) {
            bail!("--abuse takes MODE FRACTION");
        }
        let abuse = self
            .abuse
            .chunks(2)
            .map(|pair| {
                let mode: AbuseMode = pair[0].parse().map_err(anyhow::Error::msg)?;
                let fraction: f64 = pair[1].parse().with_context(|| {
                    format!(
                        "--abuse {} {}: FRACTION must be a number like 0.05",
                        pair[0], pair[1]
                    )
                })?;
                Ok(AbuseSpec { mode, fraction })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rooms = match (&self.room, self.rooms) {
            (Some(name), _) => Rooms::Named(name.clone()),
            (None, Some(n)) => Rooms::Spread(n),
            (None, None) => Rooms::Auto,
        };
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        let config = Config {
            url: self.url.clone(),
            bots: self.bots,
            ramp_per_s: self.ramp,
            duration: self.duration,
            behavior: self.behavior,
            protocol: self.protocol,
            rooms,
            auth,
            tls: TlsOptions {
                insecure: self.insecure,
                ca: self.ca.clone(),
            },
            churn_pct_per_s: self.churn,
            matchmaking: self.matchmaking,
            abuse,
            abuse_after: self.abuse_after,
            abusers_return: self.abusers_return,
            oversize_bytes: self.oversize_bytes,
            sub_prefix: self.sub_prefix.clone(),
            seed: self.seed,
            connect_timeout: self.connect_timeout,
            final_ack_wait: self.final_ack_wait,
            threads: self.threads,
            admin: self.admin.clone(),
            sample_every: self.sample_every,
            warmup: self.warmup,
            latency: self.latency.map(|rtt| Latency {
                rtt,
                jitter: self.jitter.unwrap_or_default(),
            }),
            ..Config::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// The parsed `--assert` gates, every metric name checked.
    pub fn assertions(&self) -> anyhow::Result<Vec<Assertion>> {
        let parsed = self
            .assertions
            .iter()
            .map(|s| s.parse::<Assertion>())
            .collect::<Result<Vec<_>, _>>()?;
        assert::validate(&parsed)?;
        if self.admin.is_none()
            && let Some(a) = parsed.iter().find(|a| a.metric.starts_with("server"))
        {
            bail!(
                "--assert `{}`: server metrics come from the admin port; add --admin HOST:PORT",
                a.metric
            );
        }
        Ok(parsed)
    }
}

/// Parses a command line (program name first) into the run it asks for, as the binary
/// would: for embedders and tests that want flag semantics (files read, defaults
/// applied) without a subprocess.
pub fn config_from_args<I, T>(args: I) -> anyhow::Result<Config>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    Args::try_parse_from(args)?.config()
}

/// Entry point of the `rallypoint-bots` binary.
pub fn main() -> ExitCode {
    let args = Args::parse();
    match run_command(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("rallypoint-bots: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run_command(args: &Args) -> anyhow::Result<ExitCode> {
    let assertions = args.assertions()?;
    let config = args.config()?;
    // One socket per bot, plus dev-token requests and slack.
    let want = config.bots as u64 + 256;
    if let Some(limit) = crate::sys::raise_fd_limit(want)
        && limit < want
    {
        eprintln!(
            "rallypoint-bots: warning: the open-file limit is {limit}, {} bots need about {want}; raise `ulimit -n`",
            config.bots
        );
    }
    let runtime = if config.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .enable_all()
            .build()
    }
    .context("starting the runtime")?;
    let mut display = Display::new(args.quiet);
    let report = runtime.block_on(async {
        let stop = async {
            if tokio::signal::ctrl_c().await.is_err() {
                // No signal handling: never stop early.
                std::future::pending::<()>().await;
            }
            eprintln!("\nrallypoint-bots: interrupted; finishing (Ctrl-C again to quit at once)");
            tokio::spawn(async {
                let _ = tokio::signal::ctrl_c().await;
                std::process::exit(130);
            });
        };
        crate::run_with(config, stop, |p| display.show(p)).await
    })?;
    display.done();
    // The runtime may still hold the Ctrl-C watcher; it is not needed any more.
    runtime.shutdown_background();

    print!("{}", report.render_text());
    if let Some(path) = &args.report {
        std::fs::write(path, report.to_json() + "\n")
            .with_context(|| format!("writing --report {}", path.display()))?;
        println!("  report      written to {}", path.display());
    }
    let outcomes = assert::check(&report, &assertions)?;
    if !outcomes.is_empty() {
        println!("assertions:");
        for o in &outcomes {
            println!("  {o}");
        }
    }
    let _ = std::io::stdout().flush();
    let failed: Vec<_> = outcomes.iter().filter(|o| !o.passed).collect();
    for o in &failed {
        eprintln!(
            "rallypoint-bots: assertion failed: {} (actual {})",
            o.assertion, o.actual
        );
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Where progress lines go: redrawn in place on a terminal, one line every few seconds
/// otherwise (logs, CI).
struct Display {
    quiet: bool,
    tty: bool,
    last: Instant,
    drawn: bool,
}

/// Interval between progress lines when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);

impl Display {
    fn new(quiet: bool) -> Display {
        Display {
            quiet,
            tty: std::io::stderr().is_terminal(),
            last: Instant::now(),
            drawn: false,
        }
    }

    fn show(&mut self, p: &Progress) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{}", p.line());
            let _ = err.flush();
            self.drawn = true;
        } else if self.last.elapsed() >= LINE_EVERY {
            let _ = writeln!(err, "{}", p.line());
            self.last = Instant::now();
        }
    }

    fn done(&mut self) {
        if self.drawn {
            eprintln!();
        }
    }
}
