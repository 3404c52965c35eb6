//! The benchmark report: what a run measured, as JSON (`--report`), as text for people,
//! and as a flat list of numeric metrics for `--assert`.
//!
//! Top-level figures cover every bot; `well_behaved` and `abusive` repeat the
//! group-specific ones, so "abusers were cut off and nobody else noticed" reads directly
//! off the report. Latencies are milliseconds, rates per second. Every numeric leaf has a
//! dotted name (`well_behaved.rtt.p99_ms`) and a snake name (`well_behaved_rtt_p99_ms`).
//!
//! Must not do IO; printing and writing files is the CLI's job.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::AbuseMode;
use crate::server_stats::ServerReport;
use crate::stats::{Counters, GroupAgg, Inputs as InputTotals, ModeAgg};
use rallypoint_client::V2Stats;

/// Version of the JSON shape; bumped on incompatible changes.
pub const REPORT_VERSION: u32 = 1;

/// Everything a run measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// JSON shape version ([`REPORT_VERSION`]).
    pub version: u32,
    /// What was run.
    pub config: RunConfig,
    /// True when the run was stopped early (Ctrl-C).
    pub interrupted: bool,
    /// Configured duration, seconds.
    pub duration_s: f64,
    /// Wall time from the first bot's start to the last bot's end (final acks and closes
    /// included), seconds. Rates are per second of this.
    pub elapsed_s: f64,
    /// Bot counts.
    pub bots: Bots,
    /// Connection attempts, all bots.
    pub handshake: Handshake,
    /// Ping→pong round trip, all bots.
    pub rtt: Latency,
    /// Input sent → first snapshot whose `ack` covers it, all bots.
    pub ack: Latency,
    /// |snapshot interval − 1/snap_rate|, all bots.
    pub jitter: Latency,
    /// What the bots received.
    pub received: Received,
    /// What the bots sent.
    pub sent: Sent,
    /// Session ends by close code: 1000 = the bot closed normally, 1006 = lost without a
    /// close frame, others = the server's close frame.
    pub closes_by_code: BTreeMap<String, u64>,
    /// `error` message codes received before closes.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Sessions that ended without the bot asking (abusers: before they misbehaved).
    pub unexpected_closes: u64,
    /// Server messages that did not decode.
    pub decode_errors: u64,
    /// Snapshots whose `ack` went backwards within a session (must be 0).
    pub ack_regressions: u64,
    /// v2 snapshot frames: keyframes, deltas, hash checks, desyncs (all zero for v1).
    #[serde(default)]
    pub v2: V2Report,
    /// Deliberate disconnects and resumes.
    pub churn: Churn,
    /// `/match`, 421s and moves between nodes (a cluster).
    #[serde(default)]
    pub cluster: Cluster,
    /// Fighters' shots and hits.
    #[serde(default)]
    pub fight: Shots,
    /// Client-side prediction of the bots' own players (`fight` and `strafe` bots).
    #[serde(default)]
    pub prediction: Prediction,
    /// The bots' own cost.
    pub cpu: Cpu,
    /// Bots that play by the rules.
    pub well_behaved: GroupReport,
    /// Bots that misbehave on purpose.
    pub abusive: AbusiveReport,
    /// The server as its admin port showed it (`--admin`): memory over time, sessions,
    /// panics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerReport>,
}

/// The run's settings, echoed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Target URL.
    pub url: String,
    /// Bots.
    pub bots: u64,
    /// Ramp, bots per second.
    pub ramp_per_s: f64,
    /// `idle`, `wander` or `fight`.
    pub behavior: String,
    /// Subprotocol offered.
    pub protocol: String,
    /// `auto`, `room:<name>` or `spread:<n>`.
    pub rooms: String,
    /// `secret`, `tokens` or `dev`.
    pub auth: String,
    /// Churn, percent of well-behaved bots per second.
    pub churn_pct_per_s: f64,
    /// Bots found their room through `GET /match` (`--match`).
    #[serde(default)]
    pub matchmaking: bool,
    /// Abuse modes and fractions.
    pub abuse: Vec<AbuseConfig>,
    /// Runtime worker threads.
    pub threads: u64,
    /// Random seed (repeat a run with `--seed`).
    pub seed: u64,
}

/// One `--abuse` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AbuseConfig {
    /// Mode.
    pub mode: String,
    /// Fraction asked for.
    pub fraction: f64,
    /// Bots that got it.
    pub bots: u64,
}

/// Bot counts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bots {
    /// Bots asked for.
    pub target: u64,
    /// Bots that completed at least one handshake.
    pub ever_connected: u64,
    /// Most sessions open at once.
    pub connected_peak: u64,
    /// Sessions open when the run's duration ended.
    pub connected_at_end: u64,
    /// Bots that stopped trying after a refusal retrying cannot fix (401, 400, ...).
    pub gave_up: u64,
    /// Bots that had not finished by the end-of-run deadline and were aborted (must be 0).
    pub unfinished: u64,
}

/// Connection attempts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Handshake {
    /// Attempts (TCP connect through `welcome`).
    pub attempts: u64,
    /// Attempts that reached `welcome`.
    pub ok: u64,
    /// Attempts that did not.
    pub failures: u64,
    /// Failures by HTTP status (`"429"`), or before HTTP: `connect_error`, `tls_error`,
    /// `timeout`, `ws_error`, `no_welcome`, `token_error`, `dev_token_<status>`.
    pub failures_by_status: BTreeMap<String, u64>,
    /// TCP connect (+ TLS) to the `101` response.
    #[serde(flatten)]
    pub time: Latency,
}

/// A latency distribution, milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Samples.
    pub samples: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl Latency {
    /// Summarises a microsecond histogram.
    pub fn from_micros(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| round3(us as f64 / 1000.0);
        Latency {
            samples: h.len(),
            mean_ms: round3(h.mean() / 1000.0),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// What the bots received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Received {
    /// Snapshots.
    pub snapshots: u64,
    /// Snapshots per second, all bots.
    pub snapshots_per_s: f64,
    /// Snapshots per connected bot-second: should equal the server's snapshot rate.
    pub snapshots_per_bot_per_s: f64,
    /// Data messages (snapshots, events, pongs, ...).
    pub messages: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Payload bytes per second.
    pub bytes_per_s: f64,
    /// Payload bytes per connected bot-second, by kind.
    #[serde(default)]
    pub bytes_per_bot_s: KindBytes,
}

/// Bytes received per connected bot-second, by what they carried.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindBytes {
    /// Full states: v2 keyframes, and every v1 snapshot.
    pub keyframe: f64,
    /// v2 deltas.
    pub delta: f64,
    /// Everything else: events, chat, pongs, `welcome` (and v2 frames whose header did
    /// not read).
    pub other: f64,
    /// All of it.
    pub total: f64,
}

impl KindBytes {
    fn of(c: &Counters, bot_seconds: f64) -> KindBytes {
        let other = c.bytes_in.saturating_sub(c.keyframe_bytes + c.delta_bytes);
        KindBytes {
            keyframe: per_s(c.keyframe_bytes, bot_seconds),
            delta: per_s(c.delta_bytes, bot_seconds),
            other: per_s(other, bot_seconds),
            total: per_s(c.bytes_in, bot_seconds),
        }
    }
}

/// v2 snapshot frames, as the bots' sessions counted them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct V2Report {
    /// The sessions' counters, summed; `desyncs` must be 0.
    #[serde(flatten)]
    pub counts: V2Stats,
    /// Why a frame was refused, in the first session that refused one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_desync: Option<String>,
}

/// What the bots sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// Data messages.
    pub messages: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Messages per second.
    pub messages_per_s: f64,
    /// Payload bytes per second.
    pub bytes_per_s: f64,
    /// `input` messages.
    pub inputs: u64,
    /// Inputs per connected bot-second: should equal the tick rate (abusers' floods
    /// included).
    pub inputs_per_bot_per_s: f64,
    /// `ping` messages.
    pub pings: u64,
}

/// Deliberate disconnects (`--churn`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Churn {
    /// Configured rate, percent of well-behaved bots per second.
    pub pct_per_s: f64,
    /// Connections dropped on purpose.
    pub drops: u64,
    /// Reconnections that resumed the same player (`resumed` and the same `you`).
    pub resumes: u64,
    /// Reconnections that did not.
    pub resume_failures: u64,
    /// Resumed players found where they were left, with the same score.
    pub state_kept: u64,
    /// Resumed players with another position or score (must be 0).
    pub state_lost: u64,
    /// The first such loss, described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_state_loss: Option<String>,
    /// Resumes into a new round (everyone respawned with no score: nothing to compare).
    pub new_round: u64,
    /// Drops made before the player came to rest (not checked).
    pub unsettled: u64,
    /// Resumed sessions that ended before their first snapshot (not checked).
    pub unchecked: u64,
}

/// Where the bots were sent in a cluster: `/match` answers, 421s followed, rooms that
/// moved to another node (`moved` + 1012) and what their players looked like there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// `/match` answers followed.
    pub matches: u64,
    /// Of those, answers that said `resume` (after a lost connection).
    pub match_resumes: u64,
    /// 421s followed to the room's node.
    pub redirects: u64,
    /// Sessions moved to the room's new node (`moved`, then 1012).
    pub moves: u64,
    /// Sessions closed with 1012 without a `moved` (found again through `/match`).
    pub moves_unguided: u64,
    /// Reconnections after a move or a `/match` `resume` that resumed the same player.
    pub resumes: u64,
    /// Those that did not (must be 0).
    pub resume_failures: u64,
    /// Moved players found as the last snapshot before `moved` showed them.
    pub state_kept: u64,
    /// Position kept, score grown by the player's own shots still flying at the move.
    pub shots_landed: u64,
    /// Moved players with another position or a lower score (must be 0).
    pub state_lost: u64,
    /// The first such loss, described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_state_loss: Option<String>,
    /// Moved into a new round (nothing to compare).
    pub new_round: u64,
    /// Moved before any snapshot showed the player (not checked).
    pub unsettled: u64,
    /// Resumed sessions that ended before their first snapshot (not checked).
    pub unchecked: u64,
}

/// Fighters' shots (`fight` bots tap the trigger, one shot per tap).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Shots {
    /// Shots fired.
    pub shots: u64,
    /// Health drops of the players shot at, within the hit window after a shot: exact
    /// when each target has one attacker.
    pub hits: u64,
    /// hits / shots, percent.
    pub hit_rate_pct: f64,
}

/// Client-side prediction: how far the bots' predicted own positions were from the
/// server's, at the acknowledged input (see the bots' `predict` module). Errors in
/// world units; a v2 quantization step is 1/64 = 0.015625.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// Predictions that could be exact (one input per server step, nothing blocking).
    pub compared: u64,
    /// Of those, exact to the bit.
    pub exact: u64,
    /// Of those, off by 1/64 unit or more.
    pub over_step: u64,
    /// Median error of the compared predictions.
    pub error_p50_units: f64,
    /// 99th percentile.
    pub error_p99_units: f64,
    /// Largest.
    pub error_max_units: f64,
    /// Predictions the server's input timing made unverifiable: an input reached the
    /// server late or with another in the same step.
    pub slips: u64,
    /// Their median error.
    pub slip_error_p50_units: f64,
    /// Their largest error.
    pub slip_error_max_units: f64,
    /// Predictions from a velocity that may not have been the server's: after a slip or a
    /// collision, until a step's steering reaches the input's velocity.
    pub unsettled: u64,
    /// Predictions whose move a wall or the map's edge blocked.
    pub collided: u64,
}

/// The bots' own cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu {
    /// User CPU seconds of this process during the run.
    pub user_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Seconds bots spent connected, summed over bots.
    pub bot_seconds: f64,
    /// (user + sys) / bot_seconds, in milliseconds of CPU per bot per second.
    pub per_bot_second_ms: f64,
    /// (user + sys) / elapsed, percent of one core.
    pub percent_of_core: f64,
    /// Peak resident memory of the process, MiB.
    pub max_rss_mib: f64,
}

/// Input reconciliation ("nothing lost").
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inputs {
    /// Inputs sent.
    pub sent: u64,
    /// Inputs covered by their session's final ack.
    pub acked: u64,
    /// Unacked because the bot cut its connection on purpose (churn).
    pub lost_at_churn: u64,
    /// Unacked because the server closed or the connection was lost.
    pub lost_at_close: u64,
    /// Unacked because the room moved to another node while they were in flight.
    #[serde(default)]
    pub lost_at_move: u64,
    /// Unacked after a normal end and the final-ack wait: nothing explains these.
    pub unexplained: u64,
}

impl Inputs {
    fn from_totals(i: InputTotals) -> Self {
        Inputs {
            sent: i.sent,
            acked: i.acked,
            lost_at_churn: i.lost_at_churn,
            lost_at_close: i.lost_at_close,
            lost_at_move: i.lost_at_move,
            unexplained: i.unexplained,
        }
    }
}

/// One group of bots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// Bots in the group.
    pub bots: u64,
    /// Bots that completed at least one handshake.
    pub ever_connected: u64,
    /// Most sessions open at once.
    pub connected_peak: u64,
    /// Sessions open when the run's duration ended.
    pub connected_at_end: u64,
    /// Failed connection attempts.
    pub handshake_failures: u64,
    /// Session ends by close code (see [`Report::closes_by_code`]).
    pub closes_by_code: BTreeMap<String, u64>,
    /// `error` codes received.
    pub errors_by_code: BTreeMap<String, u64>,
    /// Sessions ended without the bot asking (abusers: before misbehaving).
    pub unexpected_closes: u64,
    /// Reconnections after unexpected closes.
    pub reconnects: u64,
    /// Ping round trip.
    pub rtt: Latency,
    /// Input→ack latency.
    pub ack: Latency,
    /// Snapshot jitter.
    pub jitter: Latency,
    /// Snapshots per connected bot-second.
    pub snapshots_per_bot_per_s: f64,
    /// Input reconciliation.
    pub inputs: Inputs,
    /// v2 keyframes applied.
    #[serde(default)]
    pub keyframes: u64,
    /// v2 deltas applied.
    #[serde(default)]
    pub deltas: u64,
    /// v2 state hashes checked.
    #[serde(default)]
    pub hashes_checked: u64,
    /// v2 frames refused (hash or baseline mismatch, undecodable): must be 0.
    #[serde(default)]
    pub desyncs: u64,
    /// v2 `resync` requests sent.
    #[serde(default)]
    pub resyncs: u64,
    /// Bytes received per connected bot-second, by kind.
    #[serde(default)]
    pub bytes_per_bot_s: KindBytes,
}

/// Abusive bots: the group figures plus how each mode fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AbusiveReport {
    /// Group figures.
    #[serde(flatten)]
    pub group: GroupReport,
    /// Abusers the server cut off after they misbehaved.
    pub cut_off: u64,
    /// Abusers still connected at the end although they misbehaved.
    pub survived: u64,
    /// Per mode (`flood`, `oversize`, `garbage`, `slow_reader`), always all four.
    pub by_mode: BTreeMap<String, ModeReport>,
}

/// How one abuse mode fared.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModeReport {
    /// Bots with this mode.
    pub bots: u64,
    /// Cut off after misbehaving.
    pub cut_off: u64,
    /// Cut off with the expected code (flood 1008, oversize 1009, garbage 1007,
    /// slow-reader 1008 or dropped).
    pub expected_code: u64,
    /// Still connected at the end.
    pub survived: u64,
    /// Close codes of the cut-offs.
    pub closes_by_code: BTreeMap<String, u64>,
    /// Median time from misbehaving to being cut off, ms.
    pub time_to_cut_off_p50_ms: f64,
    /// Longest such time, ms.
    pub time_to_cut_off_max_ms: f64,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn codes(m: &BTreeMap<u16, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Run-level facts the aggregate does not hold.
#[derive(Debug, Clone)]
pub(crate) struct RunFacts {
    pub config: RunConfig,
    pub interrupted: bool,
    pub duration_s: f64,
    pub elapsed_s: f64,
    pub connected_at_end: [u64; 2],
    pub unfinished: u64,
    pub cpu: crate::sys::Usage,
    /// Bots per abuse mode.
    pub mode_bots: BTreeMap<AbuseMode, u64>,
    /// Admin samples, when asked for.
    pub server: Option<ServerReport>,
}

fn per_s(n: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        round3(n as f64 / secs)
    } else {
        0.0
    }
}

fn group_report(g: &GroupAgg, connected_at_end: u64) -> GroupReport {
    let bot_seconds = g.connected_time.as_secs_f64();
    GroupReport {
        bots: g.bots,
        ever_connected: g.ever_connected,
        connected_peak: g.connected_peak,
        connected_at_end,
        handshake_failures: g.failures.values().sum(),
        closes_by_code: codes(&g.closes),
        errors_by_code: g.errors.clone(),
        unexpected_closes: g.unexpected_closes,
        reconnects: g.reconnects,
        rtt: Latency::from_micros(&g.rtt),
        ack: Latency::from_micros(&g.ack),
        jitter: Latency::from_micros(&g.jitter),
        snapshots_per_bot_per_s: per_s(g.c.snapshots, bot_seconds),
        inputs: Inputs::from_totals(g.inputs),
        keyframes: g.c.v2.keyframes,
        deltas: g.c.v2.deltas,
        hashes_checked: g.c.v2.hashes_checked,
        desyncs: g.c.v2.desyncs,
        resyncs: g.c.v2.resyncs,
        bytes_per_bot_s: KindBytes::of(&g.c, bot_seconds),
    }
}

fn mode_report(bots: u64, m: Option<&ModeAgg>) -> ModeReport {
    let Some(m) = m else {
        return ModeReport {
            bots,
            ..ModeReport::default()
        };
    };
    let mut times = m.time_to_cut_off.clone();
    times.sort_unstable();
    let ms = |us: u64| round3(us as f64 / 1000.0);
    ModeReport {
        bots,
        cut_off: m.cut_off,
        expected_code: m.expected_code,
        survived: m.survived,
        closes_by_code: codes(&m.closes),
        time_to_cut_off_p50_ms: times.get(times.len() / 2).map_or(0.0, |&t| ms(t)),
        time_to_cut_off_max_ms: times.last().map_or(0.0, |&t| ms(t)),
    }
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 / whole as f64 * 1000.0).round() / 10.0
    }
}

fn prediction(wb: &GroupAgg, ab: &GroupAgg) -> Prediction {
    let merged = |f: fn(&GroupAgg) -> &Histogram<u64>| {
        let mut h = crate::stats::histogram();
        let _ = h.add(f(wb));
        let _ = h.add(f(ab));
        h
    };
    let (miss, slip) = (merged(|g| &g.miss), merged(|g| &g.slip));
    let units = |h: &Histogram<u64>, q: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(q) as f64 / 1e6
        }
    };
    let max = |h: &Histogram<u64>| {
        if h.is_empty() {
            0.0
        } else {
            h.max() as f64 / 1e6
        }
    };
    let sum = |f: fn(&GroupAgg) -> u64| f(wb) + f(ab);
    Prediction {
        compared: sum(|g| g.c.predictions_compared),
        exact: sum(|g| g.c.predictions_exact),
        over_step: sum(|g| g.c.predictions_over_step),
        error_p50_units: units(&miss, 0.5),
        error_p99_units: units(&miss, 0.99),
        error_max_units: max(&miss),
        slips: sum(|g| g.c.prediction_slips),
        slip_error_p50_units: units(&slip, 0.5),
        slip_error_max_units: max(&slip),
        unsettled: sum(|g| g.c.predictions_unsettled),
        collided: sum(|g| g.c.predictions_collided),
    }
}

/// Builds the report from the two groups' aggregates.
pub(crate) fn build(groups: &[GroupAgg; 2], facts: RunFacts) -> Report {
    let [wb, ab] = groups;
    let all = |f: fn(&GroupAgg) -> &Histogram<u64>| {
        let mut h = crate::stats::histogram();
        let _ = h.add(f(wb));
        let _ = h.add(f(ab));
        h
    };
    let (handshake_h, rtt_h, ack_h, jitter_h) = (
        all(|g| &g.handshake),
        all(|g| &g.rtt),
        all(|g| &g.ack),
        all(|g| &g.jitter),
    );
    let sum = |f: fn(&GroupAgg) -> u64| f(wb) + f(ab);
    let merge = |f: fn(&GroupAgg) -> BTreeMap<String, u64>| {
        let mut out = f(wb);
        for (k, v) in f(ab) {
            *out.entry(k).or_default() += v;
        }
        out
    };
    let elapsed = facts.elapsed_s;
    let bot_seconds = (wb.connected_time + ab.connected_time).as_secs_f64();
    let cpu_s = (facts.cpu.user + facts.cpu.sys).as_secs_f64();
    let failures = merge(|g| g.failures.clone());
    let mut counters = wb.c;
    counters.add(&ab.c);
    let snapshots = sum(|g| g.c.snapshots);
    let bytes_in = sum(|g| g.c.bytes_in);
    let messages_out = sum(|g| g.c.messages_out);
    let bytes_out = sum(|g| g.c.bytes_out);
    let by_mode = AbuseMode::ALL
        .into_iter()
        .map(|m| {
            let bots = facts.mode_bots.get(&m).copied().unwrap_or(0);
            (
                m.report_key().to_owned(),
                mode_report(bots, ab.modes.get(&m)),
            )
        })
        .collect::<BTreeMap<_, _>>();
    Report {
        version: REPORT_VERSION,
        interrupted: facts.interrupted,
        duration_s: round3(facts.duration_s),
        elapsed_s: round3(elapsed),
        bots: Bots {
            target: facts.config.bots,
            ever_connected: sum(|g| g.ever_connected),
            connected_peak: sum(|g| g.connected_peak),
            connected_at_end: facts.connected_at_end.iter().sum(),
            gave_up: sum(|g| g.gave_up),
            unfinished: facts.unfinished,
        },
        handshake: Handshake {
            attempts: sum(|g| g.attempts),
            ok: handshake_h.len(),
            failures: failures.values().sum(),
            failures_by_status: failures,
            time: Latency::from_micros(&handshake_h),
        },
        rtt: Latency::from_micros(&rtt_h),
        ack: Latency::from_micros(&ack_h),
        jitter: Latency::from_micros(&jitter_h),
        received: Received {
            snapshots,
            snapshots_per_s: per_s(snapshots, elapsed),
            snapshots_per_bot_per_s: per_s(snapshots, bot_seconds),
            messages: sum(|g| g.c.messages_in),
            bytes: bytes_in,
            bytes_per_s: per_s(bytes_in, elapsed),
            bytes_per_bot_s: KindBytes::of(&counters, bot_seconds),
        },
        sent: Sent {
            messages: messages_out,
            bytes: bytes_out,
            messages_per_s: per_s(messages_out, elapsed),
            bytes_per_s: per_s(bytes_out, elapsed),
            inputs: sum(|g| g.c.inputs_out),
            inputs_per_bot_per_s: per_s(sum(|g| g.c.inputs_out), bot_seconds),
            pings: sum(|g| g.c.pings_out),
        },
        closes_by_code: merge(|g| codes(&g.closes)),
        errors_by_code: merge(|g| g.errors.clone()),
        unexpected_closes: sum(|g| g.unexpected_closes),
        decode_errors: sum(|g| g.c.decode_errors),
        ack_regressions: sum(|g| g.c.ack_regressions),
        v2: V2Report {
            counts: counters.v2,
            first_desync: wb.first_desync.clone().or_else(|| ab.first_desync.clone()),
        },
        churn: Churn {
            pct_per_s: facts.config.churn_pct_per_s,
            drops: sum(|g| g.churn_drops),
            resumes: sum(|g| g.resumes),
            resume_failures: sum(|g| g.resume_failures),
            state_kept: sum(|g| g.handoffs.kept),
            state_lost: sum(|g| g.handoffs.lost),
            first_state_loss: wb.handoffs.first_loss.clone(),
            new_round: sum(|g| g.handoffs.new_round),
            unsettled: sum(|g| g.handoffs.unsettled),
            unchecked: sum(|g| g.handoffs.unchecked),
        },
        cluster: Cluster {
            matches: sum(|g| g.cluster.matches),
            match_resumes: sum(|g| g.cluster.match_resumes),
            redirects: sum(|g| g.cluster.redirects),
            moves: sum(|g| g.cluster.moves),
            moves_unguided: sum(|g| g.cluster.moves_unguided),
            resumes: sum(|g| g.cluster.resumes),
            resume_failures: sum(|g| g.cluster.resume_failures),
            state_kept: sum(|g| g.cluster.checks.kept),
            shots_landed: sum(|g| g.cluster.checks.shots_landed),
            state_lost: sum(|g| g.cluster.checks.lost),
            first_state_loss: wb.cluster.checks.first_loss.clone(),
            new_round: sum(|g| g.cluster.checks.new_round),
            unsettled: sum(|g| g.cluster.checks.unsettled),
            unchecked: sum(|g| g.cluster.checks.unchecked),
        },
        fight: Shots {
            shots: sum(|g| g.c.shots),
            hits: sum(|g| g.c.hits),
            hit_rate_pct: percent(sum(|g| g.c.hits), sum(|g| g.c.shots)),
        },
        prediction: prediction(wb, ab),
        cpu: Cpu {
            user_s: round3(facts.cpu.user.as_secs_f64()),
            sys_s: round3(facts.cpu.sys.as_secs_f64()),
            bot_seconds: round3(bot_seconds),
            per_bot_second_ms: if bot_seconds > 0.0 {
                (cpu_s / bot_seconds * 1000.0 * 10_000.0).round() / 10_000.0
            } else {
                0.0
            },
            percent_of_core: if elapsed > 0.0 {
                (cpu_s / elapsed * 1000.0).round() / 10.0
            } else {
                0.0
            },
            max_rss_mib: round3(facts.cpu.max_rss_kib as f64 / 1024.0),
        },
        well_behaved: group_report(wb, facts.connected_at_end[0]),
        abusive: AbusiveReport {
            group: group_report(ab, facts.connected_at_end[1]),
            cut_off: ab.modes.values().map(|m| m.cut_off).sum(),
            survived: ab.modes.values().map(|m| m.survived).sum(),
            by_mode,
        },
        server: facts.server,
        config: facts.config,
    }
}

impl Report {
    /// A report with every section present and zero values: the set of metric names.
    pub fn template() -> Report {
        Report {
            abusive: AbusiveReport {
                by_mode: AbuseMode::ALL
                    .into_iter()
                    .map(|m| (m.report_key().to_owned(), ModeReport::default()))
                    .collect(),
                ..AbusiveReport::default()
            },
            server: Some(ServerReport::default()),
            ..Report::default()
        }
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Every numeric (and boolean, as 0/1) leaf as `(dotted name, value)`, in document
    /// order. Arrays are skipped (they only hold configuration echoes).
    pub fn metrics(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        if let Ok(v) = serde_json::to_value(self) {
            flatten("", &v, &mut out);
        }
        out
    }

    /// The human-readable report.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let c = &self.config;
        let _ = writeln!(
            s,
            "rallypoint-bots: {} bots ({}, {}) against {} for {:.1} s{}",
            c.bots,
            c.behavior,
            c.protocol,
            c.url,
            self.elapsed_s,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        let b = &self.bots;
        let _ = writeln!(
            s,
            "  bots        {} of {} connected (peak {} at once, {} at the end), {} gave up, {} unfinished",
            b.ever_connected,
            b.target,
            b.connected_peak,
            b.connected_at_end,
            b.gave_up,
            b.unfinished
        );
        let h = &self.handshake;
        let _ = writeln!(
            s,
            "  handshake   {} ok, {} failed {}; {}",
            h.ok,
            h.failures,
            map_text(&h.failures_by_status),
            latency_text(&h.time)
        );
        let _ = writeln!(s, "  rtt         {}", latency_text(&self.rtt));
        let _ = writeln!(s, "  input→ack   {}", latency_text(&self.ack));
        let _ = writeln!(s, "  snap jitter {}", latency_text(&self.jitter));
        let r = &self.received;
        let _ = writeln!(
            s,
            "  received    {} snapshots/s ({} per bot per second), {}/s; {} messages, {} total",
            human(r.snapshots_per_s),
            r.snapshots_per_bot_per_s,
            bytes(r.bytes_per_s),
            r.messages,
            bytes(r.bytes as f64)
        );
        let k = &r.bytes_per_bot_s;
        let _ = writeln!(
            s,
            "  per bot-s   {} received: keyframes {}, deltas {}, events and other {}",
            bytes(k.total),
            bytes(k.keyframe),
            bytes(k.delta),
            bytes(k.other)
        );
        let v = &self.v2.counts;
        if v.keyframes + v.deltas + v.desyncs > 0 {
            let _ = writeln!(
                s,
                "  v2 frames   {} keyframes, {} deltas, {} hashes checked; desyncs {} (hash {}, baseline {}, undecodable {}), {} ignored, {} resyncs",
                v.keyframes,
                v.deltas,
                v.hashes_checked,
                v.desyncs,
                v.hash_mismatches,
                v.baseline_mismatches,
                v.undecodable,
                v.ignored,
                v.resyncs
            );
            if let Some(first) = &self.v2.first_desync {
                let _ = writeln!(s, "               first desync: {first}");
            }
        }
        let t = &self.sent;
        let _ = writeln!(
            s,
            "  sent        {} messages/s, {}/s; {} inputs ({} per bot per second), {} pings, {} total",
            human(t.messages_per_s),
            bytes(t.bytes_per_s),
            t.inputs,
            t.inputs_per_bot_per_s,
            t.pings,
            bytes(t.bytes as f64)
        );
        let _ = writeln!(
            s,
            "  closes      {}; unexpected {}; errors {}; decode errors {}; ack regressions {}",
            map_text(&self.closes_by_code),
            self.unexpected_closes,
            map_text(&self.errors_by_code),
            self.decode_errors,
            self.ack_regressions
        );
        if self.churn.pct_per_s > 0.0 || self.churn.drops > 0 {
            let ch = &self.churn;
            let _ = writeln!(
                s,
                "  churn       {}%/s: {} drops, {} resumed, {} failed to resume",
                ch.pct_per_s, ch.drops, ch.resumes, ch.resume_failures
            );
            let _ = writeln!(
                s,
                "               position and score kept {}, lost {}; not comparable: {} new round, {} unsettled, {} unchecked",
                ch.state_kept, ch.state_lost, ch.new_round, ch.unsettled, ch.unchecked
            );
            if let Some(first) = &ch.first_state_loss {
                let _ = writeln!(s, "               first loss: {first}");
            }
        }
        let cl = &self.cluster;
        if self.config.matchmaking || cl.moves + cl.moves_unguided + cl.redirects > 0 {
            let _ = writeln!(
                s,
                "  cluster     {} matches ({} resume), {} redirects (421), {} moves ({} without a URL); {} resumed, {} failed to resume",
                cl.matches,
                cl.match_resumes,
                cl.redirects,
                cl.moves,
                cl.moves_unguided,
                cl.resumes,
                cl.resume_failures
            );
            let _ = writeln!(
                s,
                "               after a move: position and score kept {}, own shots landed {}, lost {}; not comparable: {} new round, {} unsettled, {} unchecked",
                cl.state_kept,
                cl.shots_landed,
                cl.state_lost,
                cl.new_round,
                cl.unsettled,
                cl.unchecked
            );
            if let Some(first) = &cl.first_state_loss {
                let _ = writeln!(s, "               first loss: {first}");
            }
        }
        if self.fight.shots > 0 {
            let f = &self.fight;
            let _ = writeln!(
                s,
                "  fight       {} shots, {} hits ({} %)",
                f.shots, f.hits, f.hit_rate_pct
            );
        }
        let p = &self.prediction;
        if p.compared + p.slips + p.unsettled + p.collided > 0 {
            let _ = writeln!(
                s,
                "  prediction  {} compared: {} exact, {} off by 1/64 unit or more; error p50 {} p99 {} max {} units",
                p.compared,
                p.exact,
                p.over_step,
                p.error_p50_units,
                p.error_p99_units,
                p.error_max_units
            );
            let _ = writeln!(
                s,
                "               not compared: {} timing slips (error p50 {} max {} units), {} unsettled after one, {} blocked by walls",
                p.slips, p.slip_error_p50_units, p.slip_error_max_units, p.unsettled, p.collided
            );
        }
        group_text(&mut s, "well-behaved", &self.well_behaved);
        if self.abusive.group.bots > 0 {
            group_text(&mut s, "abusive", &self.abusive.group);
            let _ = writeln!(
                s,
                "               {} cut off, {} survived",
                self.abusive.cut_off, self.abusive.survived
            );
            for (mode, m) in self.abusive.by_mode.iter().filter(|(_, m)| m.bots > 0) {
                let timing = if m.cut_off > 0 {
                    format!(
                        "; cut off {} ms after misbehaving (median), {} ms max",
                        m.time_to_cut_off_p50_ms, m.time_to_cut_off_max_ms
                    )
                } else {
                    String::new()
                };
                let _ = writeln!(
                    s,
                    "               {mode}: {} bots, {} cut off ({} with the expected code) {}, {} survived{timing}",
                    m.bots,
                    m.cut_off,
                    m.expected_code,
                    map_text(&m.closes_by_code),
                    m.survived,
                );
            }
        }
        let cpu = &self.cpu;
        let _ = writeln!(
            s,
            "  cpu         {:.2} s user + {:.2} s sys = {}% of one core; {} ms per bot-second; {} MiB peak RSS",
            cpu.user_s, cpu.sys_s, cpu.percent_of_core, cpu.per_bot_second_ms, cpu.max_rss_mib
        );
        if let Some(server) = &self.server {
            server_text(&mut s, server);
        }
        s
    }
}

/// Rows of the memory timeline printed at most; longer runs show every n-th sample (the
/// JSON report keeps them all).
const TIMELINE_ROWS: usize = 24;

fn server_text(s: &mut String, sv: &ServerReport) {
    let _ = writeln!(
        s,
        "  server      {}: {} samples every {} s ({} failed); panics {}; sessions max {}, {} after the run",
        sv.admin,
        sv.samples.len(),
        sv.sample_every_s,
        sv.scrape_failures,
        sv.panics,
        sv.connections_max,
        sv.connections_at_end
    );
    let _ = writeln!(
        s,
        "               memory after the {} s warm-up: {} MiB, last {} MiB, max {} MiB; fitted {} MiB/min, growth {}% over {} samples",
        sv.warmup_s,
        sv.rss_after_warmup_mib,
        sv.rss_last_mib,
        sv.rss_max_mib,
        sv.rss_slope_mib_per_min,
        sv.rss_growth_pct,
        sv.samples_after_warmup
    );
    let step = sv.samples.len().div_ceil(TIMELINE_ROWS).max(1);
    let last = sv.samples.len().saturating_sub(1);
    let _ = writeln!(
        s,
        "               {:>8}  {:>9}  {:>8}",
        "t (s)", "rss (MiB)", "sessions"
    );
    for (i, x) in sv.samples.iter().enumerate() {
        if i % step == 0 || i == last {
            let _ = writeln!(
                s,
                "               {:>8.1}  {:>9.1}  {:>8}",
                x.t_s, x.rss_mib, x.connections
            );
        }
    }
}

fn group_text(s: &mut String, name: &str, g: &GroupReport) {
    let i = &g.inputs;
    let _ = writeln!(
        s,
        "  {name:<13}{} bots, {} connected, {} handshake failures, closes {}, unexpected {}, reconnects {}",
        g.bots,
        g.ever_connected,
        g.handshake_failures,
        map_text(&g.closes_by_code),
        g.unexpected_closes,
        g.reconnects
    );
    let _ = writeln!(
        s,
        "               rtt p99 {} ms, ack p99 {} ms, jitter p99 {} ms, {} snapshots per bot per second",
        g.rtt.p99_ms, g.ack.p99_ms, g.jitter.p99_ms, g.snapshots_per_bot_per_s
    );
    let _ = writeln!(
        s,
        "               inputs sent {} = acked {} + lost at churn {} + lost at close {} + lost at move {} + unexplained {}",
        i.sent, i.acked, i.lost_at_churn, i.lost_at_close, i.lost_at_move, i.unexplained
    );
    if g.keyframes + g.deltas + g.desyncs > 0 {
        let _ = writeln!(
            s,
            "               v2: {} keyframes, {} deltas, {} hashes checked, desyncs {}, resyncs {}; {}/bot-s (keyframes {}, deltas {})",
            g.keyframes,
            g.deltas,
            g.hashes_checked,
            g.desyncs,
            g.resyncs,
            bytes(g.bytes_per_bot_s.total),
            bytes(g.bytes_per_bot_s.keyframe),
            bytes(g.bytes_per_bot_s.delta)
        );
    }
}

fn latency_text(l: &Latency) -> String {
    if l.samples == 0 {
        return "no samples".into();
    }
    format!(
        "p50 {} ms  p90 {} ms  p99 {} ms  p99.9 {} ms  max {} ms  ({} samples)",
        l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
    )
}

fn map_text(m: &BTreeMap<String, u64>) -> String {
    if m.is_empty() {
        return "(none)".into();
    }
    let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}×{v}")).collect();
    format!("({})", parts.join(", "))
}

/// `12.3k`, `1.2M`.
pub fn human(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1}k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

/// `1.2 MB`, `530 kB`.
pub fn bytes(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} MB", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} kB", x / 1e3)
    } else {
        format!("{x:.0} B")
    }
}

fn flatten(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((prefix.to_owned(), x));
            }
        }
        Value::Bool(b) => out.push((prefix.to_owned(), f64::from(u8::from(*b)))),
        Value::Null | Value::String(_) | Value::Array(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn snake_names_are_unambiguous() {
        let mut seen: HashMap<String, String> = HashMap::new();
        for (dotted, _) in Report::template().metrics() {
            let snake = dotted.replace('.', "_");
            if let Some(other) = seen.insert(snake.clone(), dotted.clone()) {
                panic!("`{dotted}` and `{other}` share the snake name `{snake}`");
            }
        }
        let names: Vec<String> = Report::template()
            .metrics()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        for expected in [
            "rtt.p99_ms",
            "handshake.p99_ms",
            "handshake.failures",
            "well_behaved.unexpected_closes",
            "well_behaved.inputs.unexplained",
            "abusive.by_mode.slow_reader.cut_off",
            "cpu.per_bot_second_ms",
            "interrupted",
            "well_behaved.desyncs",
            "well_behaved.bytes_per_bot_s.delta",
            "v2.hash_mismatches",
            "received.bytes_per_bot_s.keyframe",
        ] {
            assert!(names.iter().any(|n| n == expected), "{expected}");
        }
    }

    #[test]
    fn json_round_trips_and_text_renders() {
        let mut r = Report::template();
        r.closes_by_code.insert("1000".into(), 3);
        r.config.bots = 3;
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        assert!(r.render_text().contains("1000×3"));
    }

    #[test]
    fn bytes_split_by_kind_and_v2_frames_render() {
        let c = Counters {
            bytes_in: 1_000,
            keyframe_bytes: 300,
            delta_bytes: 500,
            ..Counters::default()
        };
        let k = KindBytes::of(&c, 2.0);
        assert_eq!(
            (k.keyframe, k.delta, k.other, k.total),
            (150.0, 250.0, 100.0, 500.0)
        );
        let mut r = Report::template();
        assert!(
            !r.render_text().contains("v2 frames"),
            "v1 runs show no v2 line"
        );
        r.v2.counts.deltas = 40;
        r.v2.counts.desyncs = 1;
        r.v2.first_desync = Some("state hash differs".into());
        let text = r.render_text();
        assert!(text.contains("desyncs 1 (hash 0"), "{text}");
        assert!(text.contains("first desync: state hash differs"), "{text}");
    }

    #[test]
    fn latency_summary() {
        let mut h = crate::stats::histogram();
        for us in 1..=1000u64 {
            h.record(us * 1000).unwrap();
        }
        let l = Latency::from_micros(&h);
        assert_eq!(l.samples, 1000);
        assert!((l.p99_ms - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max_ms - 1000.0).abs() < 1.0);
    }
}
