//! Runtime configuration: every address, key, limit, rate and timeout the server uses,
//! each with its default and the reason for it.
//!
//! Built by the CLI (flags and `RALLYPOINT_*` environment variables) or directly by
//! embedders and tests. Holds no live state and does no IO.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Game port: `/play`, the browser client, and in dev mode `/dev/token`.
    pub listen: SocketAddr,
    /// Admin port: `/metrics`, `/healthz`, `/readyz`, `/admin/*`. Loopback by default:
    /// without `admin_token_file` it has no authentication of its own.
    pub admin_listen: SocketAddr,
    /// A file whose trimmed text is the bearer token the admin port requires (except on
    /// `/healthz`, `/readyz` and `/metrics`).
    pub admin_token_file: Option<PathBuf>,
    /// Names the admin port answers to in `Host`, besides its own address and `localhost`.
    pub admin_hosts: Vec<String>,
    /// The designer-owned assets directory.
    pub assets_dir: PathBuf,
    /// Token verification.
    pub auth: AuthConfig,
    /// `Origin` values allowed to open `/play`; empty = no Origin check.
    pub allowed_origins: Vec<String>,
    /// Certificate chain and private key (PEM) for `wss://`.
    pub tls: Option<TlsFiles>,
    /// Peers whose `X-Forwarded-For` is trusted to name the client address (a
    /// TLS-terminating proxy). Empty = the TCP peer address is the client address.
    pub trusted_proxies: Vec<IpAddr>,
    /// Watch the assets directory and apply valid changes to live rooms.
    pub hot_reload: bool,
    /// Limits, rates and timeouts.
    pub limits: Limits,
    /// Cluster mode (`--redis-url`); `None` is a single node with no Redis at all.
    pub cluster: Option<ClusterConfig>,
}

/// Where tokens are checked against.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// HS256 shared secret file. With no secret and no public key the server runs in
    /// dev mode with a generated secret.
    pub secret_file: Option<PathBuf>,
    /// Public keys by `kid`, PEM files; the algorithm follows the key type.
    pub public_keys: Vec<(String, PathBuf)>,
    /// Required member of `aud`.
    pub audience: String,
    /// Required `iss`, when set.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`. 30 s covers ordinary NTP drift between
    /// the token issuer and this server without keeping dead tokens alive for long.
    pub leeway: Duration,
}

/// TLS material.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// Per-player message quota: a sustained rate and a burst.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quota {
    /// Messages per second, sustained.
    pub per_second: u32,
    /// Messages allowed at once above the sustained rate.
    pub burst: u32,
}

/// Every limit the server enforces. Defaults are documented in the README's
/// configuration table; keep them in step.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Open connections (handshaking or upgraded), all clients. Beyond: 503 `server_full`.
    pub max_connections: usize,
    /// Open connections from one IP. Beyond: 429 `too_many_connections`. 64 lets a
    /// household or a small office NAT play while stopping one host from hogging slots.
    pub max_connections_per_ip: usize,
    /// Sustained handshakes per second from one IP. Beyond: 429 `too_many_handshakes`.
    pub handshakes_per_ip: Quota,
    /// Handshakes in progress (TLS and HTTP not yet done). Beyond, new sockets are
    /// refused at once: a slowloris cannot tie up more than this.
    pub max_pending_handshakes: usize,
    /// Handshakes in progress from one peer address, counted at accept time. Beyond, the
    /// socket is refused at once (429 `too_many_pending`): one address cannot hold the
    /// whole pool with idle sockets. 16 covers a browser's parallel page load and a
    /// household behind one NAT; trusted proxies (and loopback in dev mode) are exempt.
    pub max_pending_handshakes_per_ip: usize,
    /// Time for a connection to finish TLS and send its request.
    pub handshake_timeout: Duration,
    /// Largest client message and frame. 4 KiB fits every legitimate client message.
    pub max_message_bytes: usize,
    /// Frames one client message may be split into. Clients send whole messages;
    /// a few fragments are tolerated, and a message continued by endless (even empty)
    /// frames is closed with 1009 at once instead of holding the connection until the
    /// heartbeat gives up.
    pub max_fragments: usize,
    /// WebSocket read buffer per connection; small because client messages are small and
    /// idle connections must stay cheap.
    pub read_buffer_bytes: usize,
    /// Cap on bytes queued in a connection's WebSocket write buffer.
    pub max_write_buffer_bytes: usize,
    /// Kernel send buffer per game connection (`SO_SNDBUF`, set on the listening socket
    /// and inherited). Bounds kernel memory per client and lets a client that stops
    /// reading stall our writes within seconds instead of after megabytes; 64 KiB holds
    /// many seconds of snapshots. 0 = the OS default (autotuned, up to several MiB).
    pub tcp_send_buffer: usize,
    /// Events and chat lines queued for a client before it counts as a slow consumer.
    pub max_queued_messages: usize,
    /// How long a write to a client may stay blocked before it is dropped as stuck.
    pub send_timeout: Duration,
    /// WebSocket ping interval.
    pub heartbeat_interval: Duration,
    /// Silence (no frame at all, pongs included) after which a peer is dropped.
    pub heartbeat_timeout: Duration,
    /// `input` messages per player. `None` = derived from the tick rate (2× tick rate,
    /// burst of one second of ticks).
    pub input_quota: Option<Quota>,
    /// `chat` messages per player.
    pub chat_quota: Quota,
    /// `ping` messages, WebSocket pings and WebSocket pongs per player.
    pub ping_quota: Quota,
    /// Dropped (over-quota) messages a player may accumulate before being closed with
    /// 1008. `None` = derived from the tick rate (tick rate per second, burst of two
    /// seconds), so a client sending at twice its quota is cut off within seconds while
    /// a brief burst after a network stall is forgiven.
    pub abuse_quota: Option<Quota>,
    /// Rooms open at once.
    pub max_rooms: usize,
    /// Room command queue length (inputs, joins, chat) per room player slot.
    pub room_queue_per_player: usize,
    /// Catch-up steps a late room may run back to back before skipping ticks.
    pub max_catchup_steps: u32,
    /// How long shutdown waits for connections to close before exiting anyway.
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            max_connections_per_ip: 64,
            handshakes_per_ip: Quota {
                per_second: 20,
                burst: 40,
            },
            max_pending_handshakes: 1024,
            max_pending_handshakes_per_ip: 16,
            handshake_timeout: Duration::from_secs(5),
            max_message_bytes: 4096,
            max_fragments: 16,
            read_buffer_bytes: 512,
            max_write_buffer_bytes: 1 << 20,
            tcp_send_buffer: 64 * 1024,
            max_queued_messages: 256,
            send_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            input_quota: None,
            chat_quota: Quota {
                per_second: 2,
                burst: 5,
            },
            ping_quota: Quota {
                per_second: 5,
                burst: 10,
            },
            abuse_quota: None,
            max_rooms: 1000,
            room_queue_per_player: 16,
            max_catchup_steps: 5,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

impl Limits {
    /// The input quota in force for a given tick rate.
    pub fn input_quota(&self, tick_rate: u16) -> Quota {
        self.input_quota.unwrap_or(Quota {
            per_second: 2 * u32::from(tick_rate),
            burst: u32::from(tick_rate).max(1),
        })
    }

    /// The abuse quota in force for a given tick rate.
    pub fn abuse_quota(&self, tick_rate: u16) -> Quota {
        self.abuse_quota.unwrap_or(Quota {
            per_second: u32::from(tick_rate).max(1),
            burst: 2 * u32::from(tick_rate).max(1),
        })
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret_file: None,
            public_keys: Vec::new(),
            audience: "rallypoint".into(),
            issuer: None,
            leeway: Duration::from_secs(30),
        }
    }
}

impl Config {
    /// Development defaults: loopback ports 7777/7778, `./assets`, dev-mode auth.
    pub fn dev() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7777)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 7778)),
            admin_token_file: None,
            admin_hosts: Vec::new(),
            assets_dir: PathBuf::from("assets"),
            auth: AuthConfig::default(),
            allowed_origins: Vec::new(),
            tls: None,
            trusted_proxies: Vec::new(),
            hot_reload: true,
            limits: Limits::default(),
            cluster: None,
        }
    }

    /// Dev mode: no key configured, so the server generates a secret, only listens on
    /// loopback and hands out tokens at `/dev/token` to loopback clients.
    pub fn dev_mode(&self) -> bool {
        self.auth.secret_file.is_none() && self.auth.public_keys.is_empty()
    }

    /// Why this configuration may not start: dev mode listening (game or admin port)
    /// anywhere but loopback.
    pub fn dev_mode_refusal(&self) -> Option<String> {
        if !self.dev_mode() {
            return None;
        }
        let (flag, addr) = [
            ("--listen", self.listen),
            ("--admin-listen", self.admin_listen),
        ]
        .into_iter()
        .find(|(_, a)| !a.ip().is_loopback())?;
        Some(format!(
            "dev mode (no --jwt-secret-file or --jwt-public-key) only listens on loopback; \
             configure a key to listen on {addr} ({flag})"
        ))
    }
}

/// Cluster mode: the shared directory in Redis and how this node appears in it.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://HOST:PORT[/DB]` (may carry `user:password@`; never logged as given, see
    /// [`ClusterConfig::redis_display`]).
    pub redis_url: String,
    /// This node's id in the directory (see [`valid_node_id`]).
    pub node_id: String,
    /// Base URL clients are sent to for this node, `ws[s]://HOST:PORT[/PATH]`, without a
    /// trailing slash; a room's URL is this plus `/play?room=NAME`. `None`: derived from
    /// the bound game address ([`ClusterConfig::public_url_for`]), which the CLI allows
    /// only when `--listen` is loopback.
    pub public_url: Option<String>,
    /// Leases, timeouts and limits of the directory.
    pub timing: ClusterTiming,
}

/// Leases, timeouts and limits of the cluster directory; see `cluster` for the rules
/// they drive.
#[derive(Debug, Clone)]
pub struct ClusterTiming {
    /// Node and room leases. 3 s: three heartbeats, so one lost or late heartbeat never
    /// costs a lease, while a dead node's rooms can be reopened within seconds.
    pub lease: Duration,
    /// Heartbeat period (node registration and every room claim, renewed together). 1 s.
    pub heartbeat: Duration,
    /// Bound on one directory call, connection included. Redis answers in well under a
    /// millisecond; 500 ms turns an unreachable directory into `directory_unavailable`
    /// fast enough for an HTTP caller, and is far below the lease.
    pub call_timeout: Duration,
    /// Subtracted from a lease on this node's clock before it counts as ended: covers
    /// clock-rate differences between this node and Redis. 250 ms.
    pub lease_margin: Duration,
    /// How long a node keeps serving rooms whose lease ended without renewal, when it
    /// cannot tell a Redis outage (nobody can take over) from its own partition (others
    /// can). 30 s rides out a Redis restart; past it the node gives the rooms up.
    pub lapse_grace: Duration,
    /// How long a seat handed out by `/match` is held for its account. 10 s: a client's
    /// TLS and WebSocket handshakes, with room for a slow mobile network.
    pub reservation: Duration,
    /// How long a room's record, members and checkpoint outlive its last renewal, so a
    /// dead node's room can be reopened and its players resume. 10 minutes; must exceed
    /// `lease + lapse_grace` (a paused owner must find its epoch superseded, not gone).
    pub retention: Duration,
    /// How often a room writes its checkpoint. 500 ms: twice within the "at least once a
    /// second" promise, so a room reopened after its node died has lost at most half a
    /// second of play; a checkpoint is a few KiB.
    pub checkpoint_interval: Duration,
    /// Largest checkpoint accepted, bytes. 256 KiB: a room's game state is a few KiB;
    /// this stops a runaway state from loading Redis with a write every second.
    pub max_checkpoint_bytes: usize,
    /// Prefix of every key (`PREFIX:node:ID`, ...), so several clusters can share one
    /// Redis. `rp`.
    pub key_prefix: String,
}

impl Default for ClusterTiming {
    fn default() -> Self {
        ClusterTiming {
            lease: Duration::from_secs(3),
            heartbeat: Duration::from_secs(1),
            call_timeout: Duration::from_millis(500),
            lease_margin: Duration::from_millis(250),
            lapse_grace: Duration::from_secs(30),
            reservation: Duration::from_secs(10),
            retention: Duration::from_secs(600),
            checkpoint_interval: Duration::from_millis(500),
            max_checkpoint_bytes: 256 * 1024,
            key_prefix: "rp".into(),
        }
    }
}

impl ClusterConfig {
    /// The public URL in force once the game port is bound to `game` (which resolves a
    /// `--listen` port of 0).
    pub fn public_url_for(&self, game: SocketAddr, tls: bool) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| default_public_url(game, tls))
    }

    /// The Redis URL without its credentials, for logs.
    pub fn redis_display(&self) -> String {
        match self.redis_url.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!("{scheme}://{host}")
            }
            None => "(invalid URL)".into(),
        }
    }
}

/// Node ids: 1–64 characters of `A–Z a–z 0–9 - _ .` (they are part of Redis keys and
/// URLs' JSON, so no separators or spaces).
pub fn valid_node_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A node id from a host name and a random suffix: characters a node id cannot hold
/// become `-`, the host part is cut to 48 bytes, and an empty host name becomes `node`.
pub fn node_id_from(hostname: &str, suffix: u32) -> String {
    let host: String = hostname
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .take(48)
        .collect();
    let host = if host.is_empty() { "node" } else { &host };
    format!("{host}-{suffix:06x}", suffix = suffix & 0xff_ffff)
}

/// Checks a `--public-url`: `ws://` or `wss://`, a host (and port), an optional path
/// prefix, no query or fragment. Returns it without a trailing slash.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("ws://")
        .or_else(|| s.strip_prefix("wss://"))
        .ok_or_else(|| format!("`{s}` is not a ws:// or wss:// URL"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return Err(format!("`{s}` has no host (or carries credentials)"));
    }
    if s.contains(['?', '#']) || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "`{s}` must be a base URL: no query, fragment or spaces"
        ));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// The public URL of a node whose game port is bound to `game` when none is given:
/// `ws://` (or `wss://` with TLS) plus the address. Only meaningful for loopback: any
/// other listen address says nothing about how clients reach the node.
pub fn default_public_url(game: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "wss" } else { "ws" };
    format!("{scheme}://{game}")
}

pub use rallypoint_protocol::duration::parse_duration;

/// Parses `RATE/BURST` (e.g. `60/30`) or a bare rate (burst = rate).
pub fn parse_quota(s: &str) -> Result<Quota, String> {
    let (rate, burst) = match s.split_once('/') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let per_second: u32 = rate
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not RATE/BURST, e.g. 60/30"))?;
    let burst: u32 = match burst {
        Some(b) => b
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not RATE/BURST, e.g. 60/30"))?,
        None => per_second,
    };
    if per_second == 0 || burst == 0 {
        return Err("rate and burst must be at least 1".into());
    }
    Ok(Quota { per_second, burst })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas() {
        assert_eq!(
            parse_quota("60/30"),
            Ok(Quota {
                per_second: 60,
                burst: 30
            })
        );
        assert_eq!(
            parse_quota("5"),
            Ok(Quota {
                per_second: 5,
                burst: 5
            })
        );
        assert!(parse_quota("0/1").is_err());
        assert!(parse_quota("x").is_err());
    }

    #[test]
    fn node_ids() {
        assert!(valid_node_id("eu-1.game_a"));
        assert!(!valid_node_id(""));
        assert!(!valid_node_id("a:b"));
        assert!(!valid_node_id(&"x".repeat(65)));
        assert_eq!(node_id_from("box.example", 0xabc), "box.example-000abc");
        assert_eq!(node_id_from(" my host\n", 0x1234_5678), "my-host-345678");
        assert_eq!(node_id_from("", 1), "node-000001");
        let long = node_id_from(&"h".repeat(300), 7);
        assert!(valid_node_id(&long), "{long}");
        assert!(valid_node_id(&node_id_from("ünïcode host", 9)));
    }

    #[test]
    fn public_urls() {
        assert_eq!(
            parse_public_url("wss://play.example.com:443/").as_deref(),
            Ok("wss://play.example.com:443")
        );
        assert_eq!(
            parse_public_url("ws://10.0.0.5:7777/eu").as_deref(),
            Ok("ws://10.0.0.5:7777/eu")
        );
        for bad in [
            "http://x:1",
            "ws://",
            "ws:///play",
            "ws://x:1/?a=b",
            "ws://x:1#f",
            "ws://u:p@x:1",
            "ws://x y",
        ] {
            assert!(parse_public_url(bad).is_err(), "{bad}");
        }
        let loopback: SocketAddr = "127.0.0.1:7777".parse().unwrap();
        assert_eq!(default_public_url(loopback, false), "ws://127.0.0.1:7777");
        let v6: SocketAddr = "[::1]:9000".parse().unwrap();
        assert_eq!(default_public_url(v6, true), "wss://[::1]:9000");
        let mut c = cluster("ws://x:1");
        assert_eq!(c.public_url_for(loopback, true), "ws://x:1");
        c.public_url = None;
        assert_eq!(c.public_url_for(loopback, false), "ws://127.0.0.1:7777");
    }

    fn cluster(public_url: &str) -> ClusterConfig {
        ClusterConfig {
            redis_url: "redis://user:secret@redis.internal:6379/2".into(),
            node_id: "n".into(),
            public_url: Some(public_url.into()),
            timing: ClusterTiming::default(),
        }
    }

    #[test]
    fn redis_urls_are_logged_without_credentials() {
        assert_eq!(
            cluster("ws://x:1").redis_display(),
            "redis://redis.internal:6379/2"
        );
    }

    #[test]
    fn dev_mode_refuses_every_port_off_loopback() {
        assert_eq!(Config::dev().dev_mode_refusal(), None);
        let mut open_admin = Config::dev();
        open_admin.admin_listen = "0.0.0.0:7778".parse().unwrap();
        let why = open_admin.dev_mode_refusal().expect("refused");
        assert!(
            why.contains("--admin-listen") && why.contains("0.0.0.0:7778"),
            "{why}"
        );
        let mut open_game = Config::dev();
        open_game.listen = "[::]:7777".parse().unwrap();
        assert!(open_game.dev_mode_refusal().unwrap().contains("--listen"));
        // With a key, anything goes.
        open_admin.auth.secret_file = Some("secret".into());
        assert_eq!(open_admin.dev_mode_refusal(), None);
    }

    #[test]
    fn derived_quotas_follow_the_tick_rate() {
        let l = Limits::default();
        assert_eq!(
            l.input_quota(30),
            Quota {
                per_second: 60,
                burst: 30
            }
        );
        assert_eq!(
            l.abuse_quota(30),
            Quota {
                per_second: 30,
                burst: 60
            }
        );
    }
}
