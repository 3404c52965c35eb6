//! The `rallypoint` command line: `serve` (the default), `token`, `check`, `render-map`.
//!
//! Every `serve` flag can also come from `RALLYPOINT_<FLAG>` (repeatable flags take a
//! comma-separated list there). This is the binary edge: errors become `anyhow` reports
//! and exit codes here and nowhere else.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use tracing::info;

use crate::admin::AdminAuth;
use crate::arena::Arena;
use crate::arena::assets::{ArenaAssets, PlayerTuning, Tuning};
use crate::auth::{self, MintClaims, Role, Verifier};
use crate::config::{
    AuthConfig, ClusterConfig, ClusterTiming, Config, Limits, Quota, TlsFiles, parse_duration,
    parse_quota,
};
use crate::game::{Game, GameAssets};
use crate::metrics::Metrics;
use crate::reload::AssetStore;
use crate::server::{self, Listeners};

/// Rallypoint: an authoritative multiplayer game server over authenticated WebSockets.
///
/// With no command it serves: `rallypoint --assets DIR` is `rallypoint serve --assets DIR`.
#[derive(Debug, Parser)]
#[command(
    name = "rallypoint",
    version,
    about,
    long_about = None,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `serve`'s flags, for when no command is given.
    #[command(flatten)]
    serve: Box<ServeArgs>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default). With no key configured it runs in dev mode.
    Serve(Box<ServeArgs>),
    /// Print a signed HS256 token.
    Token(TokenArgs),
    /// Validate an assets directory and report every problem.
    Check(CheckArgs),
    /// Draw a map to scale as SVG.
    RenderMap(RenderMapArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Game port address (`/play`, the browser client).
    #[arg(long, env = "RALLYPOINT_LISTEN", default_value = "127.0.0.1:7777")]
    listen: SocketAddr,
    /// Admin port address (`/metrics`, `/healthz`, `/readyz`, `/admin/*`); keep it private.
    #[arg(
        long,
        env = "RALLYPOINT_ADMIN_LISTEN",
        default_value = "127.0.0.1:7778"
    )]
    admin_listen: SocketAddr,
    /// File holding the bearer token the admin port requires (except on /healthz,
    /// /readyz and /metrics); its trimmed text is the token.
    #[arg(long, env = "RALLYPOINT_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Name the admin port answers to in `Host`, besides its own address and `localhost`
    /// (repeatable).
    #[arg(long, env = "RALLYPOINT_ADMIN_HOST", value_delimiter = ',')]
    admin_host: Vec<String>,
    /// Assets directory (game.toml, maps/).
    #[arg(long, env = "RALLYPOINT_ASSETS", default_value = "assets")]
    assets: PathBuf,
    /// HS256 shared secret file (at least 32 bytes).
    #[arg(long, env = "RALLYPOINT_JWT_SECRET_FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// Public key for tokens with this `kid`, as KID=PATH (PEM; RS256, ES256/ES384 or
    /// EdDSA by key type). Repeat for rotation.
    #[arg(long, env = "RALLYPOINT_JWT_PUBLIC_KEY", value_delimiter = ',', value_parser = parse_kid_path)]
    jwt_public_key: Vec<(String, PathBuf)>,
    /// Audience every token must name in `aud`.
    #[arg(long, env = "RALLYPOINT_JWT_AUDIENCE", default_value = "rallypoint")]
    jwt_audience: String,
    /// Issuer every token must name in `iss` (unchecked when unset).
    #[arg(long, env = "RALLYPOINT_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`.
    #[arg(long, env = "RALLYPOINT_JWT_LEEWAY", default_value = "30s", value_parser = parse_duration)]
    jwt_leeway: Duration,
    /// Origin allowed to open `/play` (repeatable). None: no Origin check.
    #[arg(long, env = "RALLYPOINT_ALLOWED_ORIGIN", value_delimiter = ',')]
    allowed_origin: Vec<String>,
    /// PEM certificate chain for wss://.
    #[arg(long, env = "RALLYPOINT_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for wss://.
    #[arg(long, env = "RALLYPOINT_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Proxy address whose X-Forwarded-For is trusted (repeatable).
    #[arg(long, env = "RALLYPOINT_TRUSTED_PROXY", value_delimiter = ',')]
    trusted_proxy: Vec<IpAddr>,
    /// Log format.
    #[arg(
        long,
        env = "RALLYPOINT_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    log_format: LogFormat,
    /// Do not watch the assets directory for changes.
    #[arg(long, env = "RALLYPOINT_NO_HOT_RELOAD")]
    no_hot_reload: bool,
    /// Cluster mode: the shared directory, redis://HOST:PORT[/DB]. Without it the server
    /// is a single node and never talks to Redis.
    #[arg(long, env = "RALLYPOINT_REDIS_URL")]
    redis_url: Option<String>,
    /// This node's id in the cluster [default: host name plus a random suffix].
    #[arg(long, env = "RALLYPOINT_NODE_ID", requires = "redis_url")]
    node_id: Option<String>,
    /// Base URL clients are sent to for this node, ws[s]://HOST:PORT [default: ws://
    /// plus --listen, when that is a loopback address].
    #[arg(long, env = "RALLYPOINT_PUBLIC_URL", requires = "redis_url")]
    public_url: Option<String>,
    /// How long a node cut off from Redis keeps serving rooms whose claim it cannot renew
    /// before it gives them up (players are then closed with 1012 and find the room again
    /// through /match).
    #[arg(long, env = "RALLYPOINT_CLUSTER_LAPSE_GRACE", requires = "redis_url", default_value = "30s", value_parser = parse_duration)]
    cluster_lapse_grace: Duration,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(Debug, Args)]
struct LimitArgs {
    /// Open connections, all clients.
    #[arg(long, env = "RALLYPOINT_MAX_CONNECTIONS", default_value_t = 10_000)]
    max_connections: usize,
    /// Open connections per client IP.
    #[arg(long, env = "RALLYPOINT_MAX_CONNECTIONS_PER_IP", default_value_t = 64)]
    max_connections_per_ip: usize,
    /// Handshakes per second per client IP, as RATE/BURST.
    #[arg(long, env = "RALLYPOINT_HANDSHAKE_RATE", default_value = "20/40", value_parser = parse_quota)]
    handshake_rate: Quota,
    /// Handshakes in progress at once.
    #[arg(
        long,
        env = "RALLYPOINT_MAX_PENDING_HANDSHAKES",
        default_value_t = 1024
    )]
    max_pending_handshakes: usize,
    /// Handshakes in progress at once from one client IP (counted at accept time).
    #[arg(
        long,
        env = "RALLYPOINT_MAX_PENDING_HANDSHAKES_PER_IP",
        default_value_t = 16
    )]
    max_pending_handshakes_per_ip: usize,
    /// Time allowed for TLS plus the HTTP request.
    #[arg(long, env = "RALLYPOINT_HANDSHAKE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Largest client message and frame, bytes.
    #[arg(long, env = "RALLYPOINT_MAX_MESSAGE_BYTES", default_value_t = 4096)]
    max_message_bytes: usize,
    /// Kernel send buffer per game connection, bytes (0 = OS default).
    #[arg(long, env = "RALLYPOINT_TCP_SEND_BUFFER", default_value_t = 65_536)]
    tcp_send_buffer: usize,
    /// Events and chat queued for one client before it is a slow consumer.
    #[arg(long, env = "RALLYPOINT_MAX_QUEUED_MESSAGES", default_value_t = 256)]
    max_queued_messages: usize,
    /// How long a write may stay blocked before the client is dropped as stuck.
    #[arg(long, env = "RALLYPOINT_SEND_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    send_timeout: Duration,
    /// WebSocket ping interval.
    #[arg(long, env = "RALLYPOINT_HEARTBEAT_INTERVAL", default_value = "10s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Silence after which a client is dropped.
    #[arg(long, env = "RALLYPOINT_HEARTBEAT_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    heartbeat_timeout: Duration,
    /// `input` quota per player, RATE/BURST [default: 2×tick rate / tick rate].
    #[arg(long, env = "RALLYPOINT_INPUT_RATE", value_parser = parse_quota)]
    input_rate: Option<Quota>,
    /// `chat` quota per player, RATE/BURST.
    #[arg(long, env = "RALLYPOINT_CHAT_RATE", default_value = "2/5", value_parser = parse_quota)]
    chat_rate: Quota,
    /// `ping` (and WebSocket ping and pong) quota per player, RATE/BURST.
    #[arg(long, env = "RALLYPOINT_PING_RATE", default_value = "5/10", value_parser = parse_quota)]
    ping_rate: Quota,
    /// Over-quota messages tolerated before closing with 1008, RATE/BURST [default: tick
    /// rate / 2×tick rate].
    #[arg(long, env = "RALLYPOINT_ABUSE_RATE", value_parser = parse_quota)]
    abuse_rate: Option<Quota>,
    /// Rooms open at once.
    #[arg(long, env = "RALLYPOINT_MAX_ROOMS", default_value_t = 1000)]
    max_rooms: usize,
    /// How long shutdown waits for connections to close.
    #[arg(long, env = "RALLYPOINT_DRAIN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    drain_timeout: Duration,
}

#[derive(Debug, Args)]
struct TokenArgs {
    /// HS256 secret file (the server's --jwt-secret-file).
    #[arg(long)]
    secret_file: PathBuf,
    /// Account id.
    #[arg(long)]
    sub: String,
    /// Display name.
    #[arg(long)]
    name: Option<String>,
    /// Lifetime.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    ttl: Duration,
    /// Pin the room.
    #[arg(long)]
    room: Option<String>,
    /// Role.
    #[arg(long, value_enum, default_value = "player")]
    role: RoleArg,
    /// Audience.
    #[arg(long, default_value = "rallypoint")]
    aud: String,
    /// Issuer.
    #[arg(long)]
    iss: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum RoleArg {
    Player,
    Spectator,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Assets directory.
    #[arg(default_value = "assets")]
    dir: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: ReportFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
struct RenderMapArgs {
    /// Map file.
    map: PathBuf,
    /// Output SVG file (stdout when omitted).
    #[arg(long)]
    out: Option<PathBuf>,
    /// game.toml to take the player radius from [default: ../game.toml beside maps/].
    #[arg(long)]
    game: Option<PathBuf>,
}

fn parse_kid_path(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((kid, path)) if !kid.is_empty() && !path.is_empty() => {
            Ok((kid.to_owned(), PathBuf::from(path)))
        }
        _ => Err(format!("`{s}` is not KID=PATH")),
    }
}

/// Entry point of the `rallypoint` binary: serves the arena.
pub fn main() -> ExitCode {
    run::<Arena>(None)
}

/// The `rallypoint` command line serving game `G` (examples and other games' binaries
/// call this), with `default_assets` as the assets directory when neither `--assets` nor
/// `RALLYPOINT_ASSETS` says otherwise.
pub fn run<G: Game>(default_assets: Option<&'static str>) -> ExitCode {
    let mut command = Cli::command();
    if let Some(dir) = default_assets {
        // `serve`'s flags are also the top level's (no command = `serve`).
        command = command
            .mut_arg("assets", |a| a.default_value(dir))
            .mut_subcommand("serve", |c| c.mut_arg("assets", |a| a.default_value(dir)))
            .mut_subcommand("check", |c| c.mut_arg("dir", |a| a.default_value(dir)));
    }
    let matches = command.get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let command = cli.command.unwrap_or(Command::Serve(cli.serve));
    let result = match command {
        Command::Serve(args) => serve::<G>(*args),
        Command::Token(args) => token(args),
        Command::Check(args) => return check::<G>(args),
        Command::RenderMap(args) => render_map(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rallypoint: {e:#}");
            ExitCode::FAILURE
        }
    }
}

impl ServeArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let l = &self.limits;
        Ok(Config {
            listen: self.listen,
            admin_listen: self.admin_listen,
            admin_token_file: self.admin_token_file.clone(),
            admin_hosts: self.admin_host.clone(),
            assets_dir: self.assets.clone(),
            auth: AuthConfig {
                secret_file: self.jwt_secret_file.clone(),
                public_keys: self.jwt_public_key.clone(),
                audience: self.jwt_audience.clone(),
                issuer: self.jwt_issuer.clone(),
                leeway: self.jwt_leeway,
            },
            allowed_origins: self.allowed_origin.clone(),
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                }),
                _ => None,
            },
            trusted_proxies: self.trusted_proxy.clone(),
            hot_reload: !self.no_hot_reload,
            limits: Limits {
                max_connections: l.max_connections,
                max_connections_per_ip: l.max_connections_per_ip,
                handshakes_per_ip: l.handshake_rate,
                max_pending_handshakes: l.max_pending_handshakes,
                max_pending_handshakes_per_ip: l.max_pending_handshakes_per_ip,
                handshake_timeout: l.handshake_timeout,
                max_message_bytes: l.max_message_bytes,
                max_queued_messages: l.max_queued_messages,
                tcp_send_buffer: l.tcp_send_buffer,
                send_timeout: l.send_timeout,
                heartbeat_interval: l.heartbeat_interval,
                heartbeat_timeout: l.heartbeat_timeout,
                input_quota: l.input_rate,
                chat_quota: l.chat_rate,
                ping_quota: l.ping_rate,
                abuse_quota: l.abuse_rate,
                max_rooms: l.max_rooms,
                drain_timeout: l.drain_timeout,
                ..Limits::default()
            },
            cluster: self.cluster()?,
        })
    }

    /// Cluster mode from `--redis-url`, `--node-id` and `--public-url`, checked.
    fn cluster(&self) -> anyhow::Result<Option<ClusterConfig>> {
        let Some(redis_url) = &self.redis_url else {
            return Ok(None);
        };
        crate::cluster::check_redis_url(redis_url).context("--redis-url")?;
        let node_id = match &self.node_id {
            Some(id) if crate::config::valid_node_id(id) => id.clone(),
            Some(id) => bail!("--node-id `{id}`: use 1-64 characters of A-Z a-z 0-9 - _ ."),
            None => default_node_id(),
        };
        let public_url = match &self.public_url {
            Some(url) => Some(
                crate::config::parse_public_url(url)
                    .map_err(|e| anyhow::anyhow!("--public-url: {e}"))?,
            ),
            None if self.listen.ip().is_loopback() => None,
            None => bail!(
                "--public-url is required with --redis-url when --listen ({}) is not a \
                 loopback address: it is the ws[s]:// address clients reach this node at",
                self.listen
            ),
        };
        let timing = ClusterTiming {
            lapse_grace: self.cluster_lapse_grace,
            ..ClusterTiming::default()
        };
        // A room's epoch must outlive any claim that can still come back (see `cluster`).
        if timing.lease + timing.lapse_grace >= timing.retention {
            bail!(
                "--cluster-lapse-grace must be shorter than {:?}",
                timing.retention - timing.lease
            );
        }
        Ok(Some(ClusterConfig {
            redis_url: redis_url.clone(),
            node_id,
            public_url,
            timing,
        }))
    }
}

/// The host name (from the kernel, else `$HOSTNAME`) plus a random suffix, so two
/// processes on one host never share an id.
fn default_node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let mut suffix = [0u8; 4];
    // A failed read leaves zeros: the id is still valid, only less likely to be unique.
    let _ = getrandom::fill(&mut suffix);
    crate::config::node_id_from(&host, u32::from_le_bytes(suffix))
}

fn serve<G: Game>(args: ServeArgs) -> anyhow::Result<()> {
    crate::logging::init(args.log_format);
    let config = args.config()?;
    if let Some(why) = config.dev_mode_refusal() {
        bail!("{why}");
    }
    let admin = AdminAuth {
        token: match &config.admin_token_file {
            Some(path) => Some(read_admin_token(path)?),
            None => None,
        },
        hosts: config.admin_hosts.clone(),
    };
    let assets = G::Assets::load_dir(&config.assets_dir).map_err(|report| {
        anyhow::anyhow!(
            "invalid assets in {}:\n{}",
            config.assets_dir.display(),
            report.render_text()
        )
    })?;
    let dev_secret = config.dev_mode().then(auth::generate_secret);
    let verifier =
        Verifier::from_config(&config.auth, dev_secret.as_deref()).context("loading token keys")?;
    let tls = match &config.tls {
        Some(files) => Some(
            crate::tls::server_config(&files.cert, &files.key)
                .context("loading TLS certificate")?,
        ),
        None => None,
    };
    let metrics = Arc::new(Metrics::new());
    metrics.count_panics();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(async move {
        let listeners = Listeners::bind(&config).await.with_context(|| format!("binding {} and {}", config.listen, config.admin_listen))?;
        if config.dev_mode() {
            let addr = listeners.game.local_addr()?;
            info!(
                "dev mode: tokens are signed with a generated secret; get one with `curl http://{addr}/dev/token` \
                 (loopback only). Configure --jwt-secret-file or --jwt-public-key for production."
            );
        }
        if let Some(cluster) = &config.cluster {
            let public_url = cluster.public_url_for(listeners.game.local_addr()?, tls.is_some());
            info!(
                node = %cluster.node_id,
                %public_url,
                redis = %cluster.redis_display(),
                "cluster node id {}", cluster.node_id
            );
        }
        let store = AssetStore::new(config.assets_dir.clone(), assets, Arc::clone(&metrics));
        let rooms = store.subscribe();
        let setup = server::Setup {
            config,
            assets: store,
            rooms: Box::new(move |ctx, cluster| {
                crate::room::task::clustered_opener::<G>(ctx, rooms, cluster)
            }),
            verifier,
            dev_secret,
            tls,
            metrics,
            admin,
        };
        server::serve(setup, listeners, shutdown_signal()).await
    })
}

/// Shortest admin token accepted: 128 bits, as hex or base64 text.
const MIN_ADMIN_TOKEN_BYTES: usize = 16;

/// Reads `--admin-token-file`: its trimmed text, at least [`MIN_ADMIN_TOKEN_BYTES`] of
/// visible ASCII (it travels in a header).
fn read_admin_token(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let token = raw.trim_ascii();
    if token.len() < MIN_ADMIN_TOKEN_BYTES || !token.iter().all(u8::is_ascii_graphic) {
        bail!(
            "{}: the admin token must be at least {MIN_ADMIN_TOKEN_BYTES} visible ASCII characters \
             with no spaces, e.g. `head -c 32 /dev/urandom | base64 > admin-token`",
            path.display()
        );
    }
    Ok(token.to_vec())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received"),
                    _ = int.recv() => info!("SIGINT received"),
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn token(args: TokenArgs) -> anyhow::Result<()> {
    let secret = auth::read_secret(&args.secret_file)?;
    let mut claims = MintClaims::new(args.sub, args.aud, args.ttl);
    claims.iss = args.iss;
    claims.name = args.name;
    claims.room = args.room;
    claims.role = match args.role {
        RoleArg::Player => None,
        RoleArg::Spectator => Some(Role::Spectator),
    };
    println!("{}", auth::mint(&secret, &claims));
    Ok(())
}

fn check<G: Game>(args: CheckArgs) -> ExitCode {
    match G::Assets::load_dir(&args.dir) {
        Ok(assets) => {
            match args.format {
                ReportFormat::Text => println!(
                    "{}: ok ({}, version {})",
                    args.dir.display(),
                    assets.game.summary(),
                    assets.version
                ),
                ReportFormat::Json => {
                    println!("{}", crate::assets::Report::default().render_json())
                }
            }
            ExitCode::SUCCESS
        }
        Err(report) => {
            match args.format {
                ReportFormat::Text => print!("{}", report.render_text()),
                ReportFormat::Json => println!("{}", report.render_json()),
            }
            ExitCode::FAILURE
        }
    }
}

fn render_map(args: RenderMapArgs) -> anyhow::Result<()> {
    let game_file = args.game.clone().or_else(|| {
        let beside = args.map.parent()?.parent()?.join("game.toml");
        beside.exists().then_some(beside)
    });
    let tuning_radius = match &game_file {
        Some(game) => {
            let dir = game.parent().context("game.toml has no directory")?;
            crate::assets::load_dir::<ArenaAssets>(dir)
                .map(|a| a.game.tuning.player.radius)
                .unwrap_or_else(|_| Tuning::default().player.radius)
        }
        None => Tuning::default().player.radius,
    };
    let tuning = Tuning {
        player: PlayerTuning {
            radius: tuning_radius,
            ..Tuning::default().player
        },
        ..Tuning::default()
    };
    let (map, report) = crate::arena::assets::read_map_file(&args.map, &tuning);
    // A map that fails its checks is drawn anyway, problems marked; the exit code says so.
    let Some(map) = map else {
        bail!("{}", report.render_text());
    };
    let svg = crate::arena::assets::render_svg_with_problems(&map, tuning_radius, &report.problems);
    match args.out {
        Some(path) => {
            std::fs::write(&path, svg).with_context(|| format!("writing {}", path.display()))?
        }
        None => print!("{svg}"),
    }
    if !report.is_empty() {
        bail!(
            "the map was drawn with its problems marked:\n{}",
            report.render_text()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn serve_flags_work_without_the_word_serve() {
        let cli = Cli::try_parse_from(["rallypoint", "--assets", "elsewhere"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.assets, Path::new("elsewhere"));
        let cli = Cli::try_parse_from(["rallypoint", "serve", "--assets", "x"]).unwrap();
        assert!(
            matches!(cli.command, Some(Command::Serve(a)) if a.assets.as_path() == Path::new("x"))
        );
        assert!(Cli::try_parse_from(["rallypoint", "--assets", "x", "check"]).is_err());
        assert!(Cli::try_parse_from(["rallypoint", "check", "assets"]).is_ok());
    }

    fn serve(args: &[&str]) -> Result<anyhow::Result<Config>, clap::Error> {
        let argv = ["rallypoint", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv)?.command {
            Some(Command::Serve(serve)) => Ok(serve.config()),
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn without_a_redis_url_there_is_no_cluster() {
        let config = serve(&[]).unwrap().unwrap();
        assert!(config.cluster.is_none());
        assert!(
            serve(&["--node-id", "n1"]).is_err(),
            "--node-id needs --redis-url"
        );
        assert!(serve(&["--public-url", "ws://x:1"]).is_err());
        assert!(serve(&["--cluster-lapse-grace", "5s"]).is_err());
    }

    #[test]
    fn a_loopback_node_defaults_its_id_and_public_url() {
        let config = serve(&["--redis-url", "redis://127.0.0.1:6379/1"])
            .unwrap()
            .unwrap();
        let cluster = config.cluster.unwrap();
        assert!(
            crate::config::valid_node_id(&cluster.node_id),
            "{}",
            cluster.node_id
        );
        assert_eq!(cluster.public_url, None);
        assert_eq!(
            cluster.public_url_for("127.0.0.1:7777".parse().unwrap(), false),
            "ws://127.0.0.1:7777"
        );
    }

    #[test]
    fn cluster_flags_are_checked() {
        let public = [
            "--redis-url",
            "redis://10.0.0.9:6379",
            "--listen",
            "0.0.0.0:7777",
        ];
        let err = serve(&public).unwrap().unwrap_err().to_string();
        assert!(err.contains("--public-url is required"), "{err}");
        let given = [
            &public[..],
            &["--public-url", "wss://eu1.example/", "--node-id", "eu1"],
        ];
        let cluster = serve(&given.concat()).unwrap().unwrap().cluster.unwrap();
        assert_eq!(cluster.public_url.as_deref(), Some("wss://eu1.example"));
        assert_eq!(cluster.node_id, "eu1");
        for bad in [
            &["--redis-url", "http://x"][..],
            &["--redis-url", "redis://x:1", "--node-id", "a:b"],
            &["--redis-url", "redis://x:1", "--public-url", "http://x:1"],
            &["--redis-url", "redis://x:1", "--cluster-lapse-grace", "1h"],
        ] {
            assert!(serve(bad).unwrap().is_err(), "{bad:?}");
        }
    }
}
