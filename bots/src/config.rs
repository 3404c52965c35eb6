//! What a load test does: every knob of a run, with its default and the reason for it.
//!
//! A [`Config`] is plain data (no files, sockets or clocks): the CLI builds one from flags
//! (reading the secret and token files there), tests build one directly. Validation that
//! does not need the network happens in [`Config::validate`], so a typo fails before a
//! single socket opens.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use rallypoint_protocol::Subprotocol;

pub use crate::delay::Latency;

/// A load-test run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `ws://` or `wss://` URL of the game endpoint, e.g. `ws://127.0.0.1:7777/play`.
    pub url: String,
    /// Bots to run.
    pub bots: usize,
    /// New bots started per second. 200/s connects 2,000 bots in 10 s: quick, yet far
    /// below what the server's pending-handshake cap (1,024) would have to absorb.
    pub ramp_per_s: f64,
    /// How long the run lasts, ramp included. The final acknowledgement wait and the
    /// closing handshakes come after this (bounded by `final_ack_wait` + 1 s).
    pub duration: Duration,
    /// What well-behaved bots do.
    pub behavior: Behavior,
    /// The subprotocol every bot offers. v1 MessagePack by default until v2 is proven
    /// in production; v2 bots reconstruct the state and check every state hash.
    pub protocol: Subprotocol,
    /// Which room each bot asks for.
    pub rooms: Rooms,
    /// Where tokens come from.
    pub auth: Auth,
    /// Certificate checks for `wss://`.
    pub tls: TlsOptions,
    /// Percentage of the well-behaved bots that drop their connection abruptly each second
    /// and resume it (0 = off).
    pub churn_pct_per_s: f64,
    /// Every bot asks `GET /match` on `url`'s node where to play and connects there,
    /// follows 421s, and after a lost connection asks `/match` again (a cluster; works on
    /// a single node too). Without it bots connect to `url` itself. Either way a bot
    /// follows `moved` + 1012 to the room's new node.
    pub matchmaking: bool,
    /// Misbehaving bots: each entry turns a fraction of the bots into abusers of one kind.
    pub abuse: Vec<AbuseSpec>,
    /// How long an abusive bot plays nicely after `welcome` before it misbehaves, so its
    /// connection is measurably healthy first.
    pub abuse_after: Duration,
    /// Abusers reconnect after being cut off and misbehave again, for the whole run (a
    /// soak), instead of leaving after their first cut-off.
    pub abusers_return: bool,
    /// Size of the `oversize` abuser's message. 16 KiB is four times the server's default
    /// 4 KiB limit.
    pub oversize_bytes: usize,
    /// Prefix of every bot's `sub` (`<prefix>-<run id>-<index>`); the random run id keeps
    /// two runs from resuming each other's players.
    pub sub_prefix: String,
    /// Seed of every random choice (directions, churn, abuser placement, run id).
    /// `None`: from the clock.
    pub seed: Option<u64>,
    /// Limit on TCP connect + TLS + WebSocket upgrade, and on waiting for `welcome`.
    pub connect_timeout: Duration,
    /// At the end, how long a bot waits for the acknowledgement of its last input before
    /// it closes anyway. A snapshot carries the ack within about one tick, so 2 s only
    /// runs out on a server that is badly behind.
    pub final_ack_wait: Duration,
    /// How often progress is reported to the `on_progress` callback.
    pub progress_interval: Duration,
    /// Worker threads of the runtime the caller built (recorded in the report; the
    /// library runs on whatever runtime it is given).
    pub threads: usize,
    /// The server's admin address (`HOST:PORT`). When set, the run samples its `/metrics`
    /// (resident memory, open sessions, panics) every `sample_every` and the report gets
    /// a `server` section: what a soak is judged by.
    pub admin: Option<String>,
    /// Interval between admin samples.
    pub sample_every: Duration,
    /// Samples before this are warm-up, left out of the memory figures. `None`: the ramp
    /// plus a fifth of the duration.
    pub warmup: Option<Duration>,
    /// Latency added to every bot connection, both directions, by a relay inside the
    /// bots (see [`crate::delay`]). `None`: connections go straight to the server.
    pub latency: Option<Latency>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            url: "ws://127.0.0.1:7777/play".into(),
            bots: 10,
            ramp_per_s: 200.0,
            duration: Duration::from_secs(30),
            behavior: Behavior::Wander,
            protocol: Subprotocol::V1MsgPack,
            rooms: Rooms::Auto,
            auth: Auth::DevToken,
            tls: TlsOptions::default(),
            churn_pct_per_s: 0.0,
            matchmaking: false,
            abuse: Vec::new(),
            abuse_after: Duration::from_secs(1),
            abusers_return: false,
            oversize_bytes: 16 * 1024,
            sub_prefix: "bot".into(),
            seed: None,
            connect_timeout: Duration::from_secs(10),
            final_ack_wait: Duration::from_secs(2),
            progress_interval: Duration::from_secs(1),
            threads: 1,
            admin: None,
            sample_every: Duration::from_secs(10),
            warmup: None,
            latency: None,
        }
    }
}

/// Why a configuration cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is out of range or inconsistent; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// A file named by a flag could not be read.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl Config {
    /// Checks everything that can be checked without the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.bots == 0 {
            return bad("--bots must be at least 1".into());
        }
        if !(self.ramp_per_s.is_finite() && self.ramp_per_s > 0.0) {
            return bad("--ramp must be a positive number of bots per second".into());
        }
        if self.duration.is_zero() {
            return bad("--duration must be positive".into());
        }
        if !(0.0..=100.0).contains(&self.churn_pct_per_s) {
            return bad("--churn is a percentage per second, 0 to 100".into());
        }
        let total: f64 = self.abuse.iter().map(|a| a.fraction).sum();
        if self
            .abuse
            .iter()
            .any(|a| !(a.fraction > 0.0 && a.fraction <= 1.0))
            || total > 1.0 + 1e-9
        {
            return bad(format!(
                "--abuse fractions must be in (0, 1] and sum to at most 1 (they sum to {total})"
            ));
        }
        if let Rooms::Spread(0) = self.rooms {
            return bad("--rooms must be at least 1".into());
        }
        if let Rooms::Named(name) = &self.rooms
            && !valid_room_name(name)
        {
            return bad(format!(
                "room `{name}`: names are 1-32 characters of A-Z a-z 0-9 - _ ."
            ));
        }
        if let Auth::Tokens(tokens) = &self.auth
            && tokens.len() < self.bots
        {
            return bad(format!(
                "the tokens file has {} tokens for {} bots; every bot needs its own account",
                tokens.len(),
                self.bots
            ));
        }
        if self.sub_prefix.is_empty() || self.sub_prefix.len() > 64 {
            return bad("--sub-prefix must be 1-64 bytes".into());
        }
        if let Some(why) = self.latency.as_ref().and_then(Latency::invalid) {
            return bad(why);
        }
        if self.admin.is_some() && self.sample_every.is_zero() {
            return bad("--sample-every must be positive".into());
        }
        Ok(())
    }

    /// The warm-up in force: as configured, else the ramp plus a fifth of the duration.
    pub fn warmup(&self) -> Duration {
        self.warmup.unwrap_or_else(|| {
            Duration::from_secs_f64(self.bots as f64 / self.ramp_per_s) + self.duration / 5
        })
    }
}

/// Room names as the server accepts them (see `protocol/PROTOCOL.md`).
pub fn valid_room_name(name: &str) -> bool {
    (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// What a well-behaved bot does with its controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Behavior {
    /// Zero-move inputs: the cheapest load (the server still runs every input).
    Idle,
    /// Walks in a random direction that changes about every second.
    Wander,
    /// Chases, leads and shoots the nearest living enemy where it is drawn (interpolated,
    /// in the past), telling the server which tick it saw; predicts its own player;
    /// decodes every snapshot.
    Fight,
    /// Runs sideways to the nearest enemy at full speed, turning back every 0.5–1.5 s, and
    /// never fires: a target for fighters. Predicts its own player; decodes every
    /// snapshot.
    Strafe,
}

impl Behavior {
    /// Flag spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            Behavior::Idle => "idle",
            Behavior::Wander => "wander",
            Behavior::Fight => "fight",
            Behavior::Strafe => "strafe",
        }
    }
}

impl FromStr for Behavior {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "idle" => Ok(Behavior::Idle),
            "wander" => Ok(Behavior::Wander),
            "fight" => Ok(Behavior::Fight),
            "strafe" => Ok(Behavior::Strafe),
            _ => Err(format!(
                "`{s}` is not a behavior (idle, wander, fight, strafe)"
            )),
        }
    }
}

/// Which room each bot asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rooms {
    /// No `room` parameter: the server places every bot.
    Auto,
    /// Every bot asks for this room.
    Named(String),
    /// Bot `i` asks for `bots-{i mod N + 1}`.
    Spread(u32),
}

impl Rooms {
    /// The room bot `index` asks for.
    pub fn for_bot(&self, index: usize) -> Option<String> {
        match self {
            Rooms::Auto => None,
            Rooms::Named(n) => Some(n.clone()),
            Rooms::Spread(n) => Some(format!("bots-{}", index % (*n).max(1) as usize + 1)),
        }
    }
}

/// Where bots get their tokens.
#[derive(Clone)]
pub enum Auth {
    /// Each bot mints its own HS256 token with a unique `sub`.
    Mint(MintOptions),
    /// Bot `i` uses token `i` (one per account; extra tokens are unused).
    Tokens(Vec<String>),
    /// Each bot asks the server's `/dev/token` (dev mode, loopback only).
    DevToken,
}

impl fmt::Debug for Auth {
    // Secrets and tokens stay out of logs and panics.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Mint(m) => f
                .debug_struct("Mint")
                .field("aud", &m.aud)
                .field("iss", &m.iss)
                .finish_non_exhaustive(),
            Auth::Tokens(t) => write!(f, "Tokens({} tokens)", t.len()),
            Auth::DevToken => f.write_str("DevToken"),
        }
    }
}

/// How minted tokens look.
#[derive(Clone)]
pub struct MintOptions {
    /// The HS256 secret (the server's `--jwt-secret-file`, surrounding whitespace removed).
    pub secret: Vec<u8>,
    /// `aud` claim.
    pub aud: String,
    /// `iss` claim, when the server checks one.
    pub iss: Option<String>,
}

impl fmt::Debug for MintOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MintOptions")
            .field("aud", &self.aud)
            .field("iss", &self.iss)
            .finish_non_exhaustive()
    }
}

impl MintOptions {
    /// Options for a secret with the default audience.
    pub fn new(secret: impl Into<Vec<u8>>) -> MintOptions {
        MintOptions {
            secret: secret.into(),
            aud: "rallypoint".into(),
            iss: None,
        }
    }
}

/// Certificate checks for `wss://`.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Accept any certificate (self-signed test servers). Signatures are still checked.
    pub insecure: bool,
    /// Trust this CA (PEM, one or more certificates) instead of the public roots.
    pub ca: Option<PathBuf>,
}

impl TlsOptions {
    /// The client library's trust: `insecure` wins over `ca`; neither trusts the public
    /// roots (the Mozilla programme, built in).
    pub fn trust(&self) -> rallypoint_client::Trust {
        match (&self.insecure, &self.ca) {
            (true, _) => rallypoint_client::Trust::Insecure,
            (false, Some(ca)) => rallypoint_client::Trust::CaFile(ca.clone()),
            (false, None) => rallypoint_client::Trust::WebPkiRoots,
        }
    }
}

/// One kind of misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AbuseMode {
    /// Sends inputs ten times per tick, far above the server's input quota. Expect 1008.
    Flood,
    /// Sends one message larger than the server's limit. Expect 1009.
    Oversize,
    /// Sends bytes that do not decode. Expect 1007.
    Garbage,
    /// Stops reading its socket (keeps sending input). Expect 1008 or a dropped
    /// connection once the server's send timeout passes.
    SlowReader,
}

impl AbuseMode {
    /// Every mode.
    pub const ALL: [AbuseMode; 4] = [
        AbuseMode::Flood,
        AbuseMode::Oversize,
        AbuseMode::Garbage,
        AbuseMode::SlowReader,
    ];

    /// Flag spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            AbuseMode::Flood => "flood",
            AbuseMode::Oversize => "oversize",
            AbuseMode::Garbage => "garbage",
            AbuseMode::SlowReader => "slow-reader",
        }
    }

    /// Spelling in report keys (usable in `--assert` snake names).
    pub const fn report_key(self) -> &'static str {
        match self {
            AbuseMode::SlowReader => "slow_reader",
            other => other.as_str(),
        }
    }

    /// The close codes that mean "the server caught this abuser". 1006 (dropped without a
    /// close frame) also counts: a server may simply cut a connection it cannot write to.
    pub const fn expected_codes(self) -> &'static [u16] {
        match self {
            AbuseMode::Flood => &[1008],
            AbuseMode::Oversize => &[1009],
            AbuseMode::Garbage => &[1007],
            AbuseMode::SlowReader => &[1008, 1006],
        }
    }
}

impl FromStr for AbuseMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        AbuseMode::ALL
            .into_iter()
            .find(|m| m.as_str() == s || m.report_key() == s)
            .ok_or_else(|| {
                format!("`{s}` is not an abuse mode (flood, oversize, garbage, slow-reader)")
            })
    }
}

impl fmt::Display for AbuseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fraction of the bots that misbehave in one way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AbuseSpec {
    /// How.
    pub mode: AbuseMode,
    /// Share of all bots, in (0, 1]. At least one bot when positive.
    pub fraction: f64,
}

/// Parses a full subprotocol name, `msgpack` or `json` (v1), or `v2`
/// (`rallypoint.v2.msgpack`).
pub fn parse_protocol(s: &str) -> Result<Subprotocol, String> {
    let short = match s {
        "v2" => Some(Subprotocol::V2MsgPack),
        _ => Subprotocol::from_name(&format!("rallypoint.v1.{s}")),
    };
    Subprotocol::from_name(s).or(short).ok_or_else(|| {
        format!(
            "`{s}` is not a supported subprotocol (msgpack, json, v2, {})",
            Subprotocol::supported_names().join(", ")
        )
    })
}

/// A duration flag (`30s`, `500ms`, `2m`, …): the shared parser, bounded to a week so a
/// typo cannot produce a run nobody can wait for.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = rallypoint_protocol::duration::parse_duration(s)?;
    if d > Duration::from_secs(7 * 86_400) {
        return Err(format!("`{}` is longer than a week", s.trim()));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_protocols() {
        // The shared parser is tested where it lives; here, the bots' own bound.
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert!(parse_duration("8d").is_err());
        assert_eq!(parse_protocol("json"), Ok(Subprotocol::V1Json));
        assert_eq!(
            parse_protocol("rallypoint.v1.msgpack"),
            Ok(Subprotocol::V1MsgPack)
        );
        assert_eq!(parse_protocol("v2"), Ok(Subprotocol::V2MsgPack));
        assert_eq!(
            parse_protocol("rallypoint.v2.msgpack"),
            Ok(Subprotocol::V2MsgPack)
        );
        assert!(parse_protocol("rallypoint.v2.json").is_err());
        assert!(parse_protocol("v3").is_err());
    }

    #[test]
    fn rooms_spread_names() {
        let r = Rooms::Spread(3);
        let names: Vec<_> = (0..4).map(|i| r.for_bot(i).unwrap()).collect();
        assert_eq!(names, ["bots-1", "bots-2", "bots-3", "bots-1"]);
        assert_eq!(Rooms::Auto.for_bot(7), None);
    }

    #[test]
    fn validation_catches_inconsistent_settings() {
        let ok = Config::default();
        assert!(ok.validate().is_ok());
        let too_abusive = Config {
            abuse: vec![
                AbuseSpec {
                    mode: AbuseMode::Flood,
                    fraction: 0.7,
                },
                AbuseSpec {
                    mode: AbuseMode::Garbage,
                    fraction: 0.4,
                },
            ],
            ..Config::default()
        };
        assert!(too_abusive.validate().is_err());
        let few_tokens = Config {
            bots: 3,
            auth: Auth::Tokens(vec!["a".into()]),
            ..Config::default()
        };
        assert!(few_tokens.validate().is_err());
        assert_eq!(
            "slow-reader".parse::<AbuseMode>(),
            Ok(AbuseMode::SlowReader)
        );
    }
}
