//! Measurements: what each bot records locally and the run-wide aggregate it feeds.
//!
//! The hot path (a snapshot, an ack, a pong) touches only the bot's own [`Local`]
//! buffers: plain counters and fixed-capacity sample vectors, no lock, no allocation. About once a second, or when a buffer fills, the bot [`flush`]es them into
//! the shared [`Aggregate`] (HDR histograms per group), which costs one uncontended lock
//! per bot per second. Rare events (connects, failures, session ends) go to the
//! aggregate directly. One histogram per metric per group for the whole run, instead of
//! one per bot, keeps memory flat at thousands of bots.
//!
//! Must not do IO or read the clock: durations come in as values.
//!
//! [`flush`]: Aggregate::flush

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use rallypoint_client::V2Stats;

use crate::config::AbuseMode;
use crate::predict::Sample;

/// Close code of a session whose room moved to another node (Service Restart).
pub const MOVED: u16 = 1012;

/// Samples a bot keeps before it must flush: at 30 snapshots a second this is about two
/// seconds, so the once-a-second flush normally comes first.
const SAMPLE_CAP: usize = 64;

/// Largest latency recorded, in microseconds; longer values are clamped to it.
const MAX_MICROS: u64 = 60_000_000;

/// One v2 quantization step of a position: 1/64 unit.
pub const POSITION_STEP: f32 = 1.0 / 64.0;

/// A latency histogram in microseconds, 1 µs to 60 s at 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant histogram bounds are valid")
}

fn micros(d: Duration) -> u32 {
    d.as_micros().clamp(1, u128::from(MAX_MICROS)) as u32
}

/// Which report group a bot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Plays by the rules; must see no unexpected close and lose no input.
    WellBehaved = 0,
    /// Misbehaves on purpose; expected to be cut off.
    Abusive = 1,
}

/// Plain counters, summed across bots.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Snapshots received.
    pub snapshots: u64,
    /// Data messages received (snapshots included).
    pub messages_in: u64,
    /// Payload bytes received.
    pub bytes_in: u64,
    /// Data messages sent.
    pub messages_out: u64,
    /// Payload bytes sent.
    pub bytes_out: u64,
    /// `input` messages sent.
    pub inputs_out: u64,
    /// `ping` messages sent.
    pub pings_out: u64,
    /// `pong` messages matched to a ping.
    pub pongs_in: u64,
    /// Server messages that did not decode.
    pub decode_errors: u64,
    /// Snapshots whose `ack` was lower than an earlier one in the same session.
    pub ack_regressions: u64,
    /// Inputs whose send time was forgotten before their ack arrived (the per-bot
    /// pending window is bounded); their latency is not in the histogram.
    pub ack_samples_dropped: u64,
    /// Snapshot bytes that carried a full state: v2 keyframes, and every v1 snapshot.
    pub keyframe_bytes: u64,
    /// Snapshot bytes of v2 deltas.
    pub delta_bytes: u64,
    /// v2 snapshot frames of finished sessions (the session's own counts).
    pub v2: V2Stats,
    /// Fighters' trigger taps (one shot each).
    pub shots: u64,
    /// Health drops of the players fighters shot at (see `Fighter::claims_hit`).
    pub hits: u64,
    /// Predictions compared with the server's position (see [`crate::predict`]).
    pub predictions_compared: u64,
    /// Compared predictions that were exact to the bit.
    pub predictions_exact: u64,
    /// Compared predictions off by a v2 quantization step (1/64 unit) or more.
    pub predictions_over_step: u64,
    /// Predictions the server's input timing made unverifiable (an input stepped twice
    /// or skipped).
    pub prediction_slips: u64,
    /// Predictions from a velocity that may not have been the server's (after a slip
    /// or a collision, until the steering settles).
    pub predictions_unsettled: u64,
    /// Predictions whose move a wall or the map's edge blocked.
    pub predictions_collided: u64,
}

impl Counters {
    /// Adds another set of counters.
    pub(crate) fn add(&mut self, o: &Counters) {
        self.snapshots += o.snapshots;
        self.messages_in += o.messages_in;
        self.bytes_in += o.bytes_in;
        self.messages_out += o.messages_out;
        self.bytes_out += o.bytes_out;
        self.inputs_out += o.inputs_out;
        self.pings_out += o.pings_out;
        self.pongs_in += o.pongs_in;
        self.decode_errors += o.decode_errors;
        self.ack_regressions += o.ack_regressions;
        self.ack_samples_dropped += o.ack_samples_dropped;
        self.keyframe_bytes += o.keyframe_bytes;
        self.delta_bytes += o.delta_bytes;
        self.v2.add(&o.v2);
        self.shots += o.shots;
        self.hits += o.hits;
        self.predictions_compared += o.predictions_compared;
        self.predictions_exact += o.predictions_exact;
        self.predictions_over_step += o.predictions_over_step;
        self.prediction_slips += o.prediction_slips;
        self.predictions_unsettled += o.predictions_unsettled;
        self.predictions_collided += o.predictions_collided;
    }
}

/// One bot's unflushed measurements.
#[derive(Debug)]
pub struct Local {
    /// Counters since the last flush.
    pub c: Counters,
    rtt: Vec<u32>,
    ack: Vec<u32>,
    jitter: Vec<u32>,
    /// Prediction errors of compared samples, millionths of a unit.
    miss: Vec<u32>,
    /// Prediction errors of slips, millionths of a unit.
    slip: Vec<u32>,
}

impl Default for Local {
    fn default() -> Self {
        Local::new()
    }
}

impl Local {
    /// Empty buffers, allocated once.
    pub fn new() -> Local {
        Local {
            c: Counters::default(),
            rtt: Vec::with_capacity(SAMPLE_CAP),
            ack: Vec::with_capacity(SAMPLE_CAP),
            jitter: Vec::with_capacity(SAMPLE_CAP),
            miss: Vec::with_capacity(SAMPLE_CAP),
            slip: Vec::with_capacity(SAMPLE_CAP),
        }
    }

    /// Records a reconciliation (see [`crate::predict`]).
    pub fn prediction(&mut self, sample: Sample) {
        let millionths = |e: f32| (f64::from(e) * 1e6).clamp(0.0, MAX_MICROS as f64) as u32;
        match sample {
            Sample::Compared(e) => {
                self.c.predictions_compared += 1;
                self.c.predictions_exact += u64::from(e == 0.0);
                self.c.predictions_over_step += u64::from(e >= POSITION_STEP);
                self.miss.push(millionths(e));
            }
            Sample::Slip(e) => {
                self.c.prediction_slips += 1;
                self.slip.push(millionths(e));
            }
            Sample::Unsettled(_) => self.c.predictions_unsettled += 1,
            Sample::Collided(_) => self.c.predictions_collided += 1,
        }
    }

    /// Records a ping round trip.
    pub fn rtt(&mut self, d: Duration) {
        self.rtt.push(micros(d));
    }

    /// Records an input→ack latency.
    pub fn ack(&mut self, d: Duration) {
        self.ack.push(micros(d));
    }

    /// Records a snapshot interval's deviation from the expected interval.
    pub fn jitter(&mut self, d: Duration) {
        self.jitter.push(micros(d));
    }

    /// Whether a sample buffer is full and must be flushed before the next sample.
    pub fn full(&self) -> bool {
        self.rtt.len() >= SAMPLE_CAP
            || self.ack.len() >= SAMPLE_CAP
            || self.jitter.len() >= SAMPLE_CAP
            || self.miss.len() >= SAMPLE_CAP
            || self.slip.len() >= SAMPLE_CAP
    }
}

/// Inputs of finished sessions, reconciled (see the README's "Nothing lost").
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Inputs {
    /// Inputs sent.
    pub sent: u64,
    /// Inputs with `seq` ≤ the session's final ack.
    pub acked: u64,
    /// Unacked because the bot dropped the connection on purpose (churn) while they were
    /// in flight.
    pub lost_at_churn: u64,
    /// Unacked because the server closed or the connection was lost (each such session
    /// is also an unexpected close or an abuser's cut-off).
    pub lost_at_close: u64,
    /// Unacked because the room moved to another node (`moved`, close 1012) while they
    /// were in flight.
    pub lost_at_move: u64,
    /// Unacked at a normal end of run, after waiting for the final ack: nothing explains
    /// these.
    pub unexplained: u64,
}

/// Per-mode outcome of abusive bots.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ModeAgg {
    /// Bots assigned this mode.
    pub bots: u64,
    /// Sessions the server ended after the bot misbehaved.
    pub cut_off: u64,
    /// Cut-offs with one of the mode's expected codes.
    pub expected_code: u64,
    /// Bots still connected at the end of the run although they misbehaved.
    pub survived: u64,
    /// Close codes of cut-offs.
    pub closes: BTreeMap<u16, u64>,
    /// Time from the misbehaviour to the cut-off, µs.
    pub time_to_cut_off: Vec<u64>,
}

/// Everything measured for one group.
#[derive(Debug)]
pub struct GroupAgg {
    /// Summed counters.
    pub c: Counters,
    /// Handshake times (TCP connect to `101`), µs.
    pub handshake: Histogram<u64>,
    /// Ping round trips, µs.
    pub rtt: Histogram<u64>,
    /// Input→ack latencies, µs.
    pub ack: Histogram<u64>,
    /// Snapshot interval deviations, µs.
    pub jitter: Histogram<u64>,
    /// Prediction errors of compared samples, millionths of a unit.
    pub miss: Histogram<u64>,
    /// Prediction errors of slips, millionths of a unit.
    pub slip: Histogram<u64>,
    /// Bots in the group.
    pub bots: u64,
    /// Connection attempts.
    pub attempts: u64,
    /// Failed attempts by [`crate::net::ConnectFailure::key`].
    pub failures: BTreeMap<String, u64>,
    /// Bots that stopped trying (a refusal retrying cannot fix).
    pub gave_up: u64,
    /// Bots that completed at least one handshake.
    pub ever_connected: u64,
    /// Sessions open now.
    pub connected: u64,
    /// Most sessions open at once.
    pub connected_peak: u64,
    /// Session ends by close code (1000: the bot closed normally; 1006: lost without a
    /// close frame; anything else: the server's close frame).
    pub closes: BTreeMap<u16, u64>,
    /// `error` message codes received before closes.
    pub errors: BTreeMap<String, u64>,
    /// Sessions that ended without the bot asking (well-behaved), or before an abuser
    /// misbehaved.
    pub unexpected_closes: u64,
    /// Reconnections after an unexpected close.
    pub reconnects: u64,
    /// Connections dropped on purpose (churn).
    pub churn_drops: u64,
    /// Reconnections after churn that resumed the same player.
    pub resumes: u64,
    /// Reconnections after churn that did not (`resumed` false or another `you`).
    pub resume_failures: u64,
    /// What resumed players looked like.
    pub handoffs: Handoffs,
    /// Where the bots were sent, and what moved players looked like.
    pub cluster: ClusterAgg,
    /// Input reconciliation.
    pub inputs: Inputs,
    /// Total time bots spent connected.
    pub connected_time: Duration,
    /// Abusive bots by mode.
    pub modes: BTreeMap<AbuseMode, ModeAgg>,
    /// Why a refused v2 frame was refused, in the first session that had one.
    pub first_desync: Option<String>,
}

impl Default for GroupAgg {
    fn default() -> Self {
        GroupAgg {
            c: Counters::default(),
            handshake: histogram(),
            rtt: histogram(),
            ack: histogram(),
            jitter: histogram(),
            miss: histogram(),
            slip: histogram(),
            bots: 0,
            attempts: 0,
            failures: BTreeMap::new(),
            gave_up: 0,
            ever_connected: 0,
            connected: 0,
            connected_peak: 0,
            closes: BTreeMap::new(),
            errors: BTreeMap::new(),
            unexpected_closes: 0,
            reconnects: 0,
            churn_drops: 0,
            resumes: 0,
            resume_failures: 0,
            handoffs: Handoffs::default(),
            cluster: ClusterAgg::default(),
            inputs: Inputs::default(),
            connected_time: Duration::ZERO,
            modes: BTreeMap::new(),
            first_desync: None,
        }
    }
}

/// Churn hand-offs (see [`crate::handoff`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Handoffs {
    /// Resumed with the same position and score.
    pub kept: u64,
    /// Resumed into a new round (nothing to compare).
    pub new_round: u64,
    /// Resumed with another position or score.
    pub lost: u64,
    /// The first loss, described.
    pub first_loss: Option<String>,
    /// Dropped without coming to rest first (not checked).
    pub unsettled: u64,
    /// Resumed sessions that ended before their first snapshot (not checked).
    pub unchecked: u64,
    /// Position kept (moves: unless dead at the move), score grown by the player's own shots that were still flying when
    /// it left (moves only: a churning bot waits for its shots to land).
    pub shots_landed: u64,
}

/// Matchmaking and moves between nodes (`--match`, `moved`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ClusterAgg {
    /// `/match` answers that named a room.
    pub matches: u64,
    /// `/match` answers that said `resume` (the account still had a player).
    pub match_resumes: u64,
    /// 421s followed to the room's node.
    pub redirects: u64,
    /// Sessions ended by 1012 after a `moved` naming the room's new node.
    pub moves: u64,
    /// Sessions ended by 1012 without a `moved` (found again through `/match`).
    pub moves_unguided: u64,
    /// Reconnections after a move or through `/match` that resumed the same player.
    pub resumes: u64,
    /// Those that did not (`resumed` false or another `you`).
    pub resume_failures: u64,
    /// What players moved to another node looked like in their first snapshot there.
    pub checks: Handoffs,
}

/// Latency samples since the last progress line, all bots.
#[derive(Debug)]
pub struct Window {
    /// Ping round trips, µs.
    pub rtt: Histogram<u64>,
    /// Input→ack, µs.
    pub ack: Histogram<u64>,
    /// Snapshot jitter, µs.
    pub jitter: Histogram<u64>,
}

/// How a session ended, for the aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// The bot closed normally at the end of the run.
    Finished,
    /// The bot dropped the connection on purpose (churn).
    Churned,
    /// The room moved to another node: close 1012, after a `moved` with its URL when the
    /// node knew it.
    Moved {
        /// The `moved` URL.
        to: Option<String>,
        /// `error` message code received before the close, if any.
        error: Option<String>,
    },
    /// The server closed (`code` from its close frame) or the connection was lost (1006).
    Closed {
        /// Close code.
        code: u16,
        /// `error` message code received before, if any.
        error: Option<String>,
    },
}

/// What a session did, for reconciliation.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionSummary {
    /// Highest `seq` sent (`seq` restarts at 1 per session).
    pub sent: u32,
    /// Highest `ack` received.
    pub acked: u32,
    /// How long the session lasted.
    pub connected_for: Duration,
    /// For an abuser: how long after misbehaving the session ended (`None`: it had not
    /// misbehaved yet).
    pub abused_for: Option<Duration>,
}

/// The run-wide aggregate, behind the run's mutex.
#[derive(Debug)]
pub struct Aggregate {
    /// Indexed by [`Group`].
    pub groups: [GroupAgg; 2],
    /// Since the last progress line.
    pub window: Window,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            groups: [GroupAgg::default(), GroupAgg::default()],
            window: Window {
                rtt: histogram(),
                ack: histogram(),
                jitter: histogram(),
            },
        }
    }
}

impl Aggregate {
    /// The group's aggregate.
    pub fn group(&mut self, g: Group) -> &mut GroupAgg {
        &mut self.groups[g as usize]
    }

    /// Moves a bot's local measurements in and empties them.
    pub fn flush(&mut self, g: Group, local: &mut Local) {
        let Aggregate { groups, window } = self;
        let group = &mut groups[g as usize];
        group.c.add(&local.c);
        local.c = Counters::default();
        for (samples, total, win) in [
            (&mut local.rtt, &mut group.rtt, &mut window.rtt),
            (&mut local.ack, &mut group.ack, &mut window.ack),
            (&mut local.jitter, &mut group.jitter, &mut window.jitter),
        ] {
            for &v in samples.iter() {
                total.saturating_record(u64::from(v));
                win.saturating_record(u64::from(v));
            }
            samples.clear();
        }
        for (samples, total) in [
            (&mut local.miss, &mut group.miss),
            (&mut local.slip, &mut group.slip),
        ] {
            for &v in samples.iter() {
                total.saturating_record(u64::from(v));
            }
            samples.clear();
        }
    }

    /// A handshake completed; `first` for a bot's first session.
    pub fn connected(&mut self, g: Group, handshake: Duration, first: bool) {
        let group = self.group(g);
        group.attempts += 1;
        group
            .handshake
            .saturating_record(u64::from(micros(handshake)));
        if first {
            group.ever_connected += 1;
        }
        group.connected += 1;
        group.connected_peak = group.connected_peak.max(group.connected);
    }

    /// A connection attempt failed.
    pub fn failed(&mut self, g: Group, key: String) {
        let group = self.group(g);
        group.attempts += 1;
        *group.failures.entry(key).or_default() += 1;
    }

    /// A session ended.
    pub fn ended(
        &mut self,
        g: Group,
        mode: Option<AbuseMode>,
        end: &SessionEnd,
        s: &SessionSummary,
    ) {
        let group = self.group(g);
        group.connected = group.connected.saturating_sub(1);
        group.connected_time += s.connected_for;
        let sent = u64::from(s.sent);
        let acked = u64::from(s.acked.min(s.sent));
        group.inputs.sent += sent;
        group.inputs.acked += acked;
        let missing = sent - acked;
        match end {
            SessionEnd::Finished => {
                *group.closes.entry(1000).or_default() += 1;
                group.inputs.unexplained += missing;
                if let (Some(m), Some(_)) = (mode, s.abused_for) {
                    group.modes.entry(m).or_default().survived += 1;
                }
            }
            SessionEnd::Churned => {
                group.churn_drops += 1;
                group.inputs.lost_at_churn += missing;
            }
            SessionEnd::Moved { to, error } => {
                *group.closes.entry(MOVED).or_default() += 1;
                if let Some(e) = error {
                    *group.errors.entry(e.clone()).or_default() += 1;
                }
                group.inputs.lost_at_move += missing;
                if to.is_some() {
                    group.cluster.moves += 1;
                } else {
                    group.cluster.moves_unguided += 1;
                }
            }
            SessionEnd::Closed { code, error } => {
                *group.closes.entry(*code).or_default() += 1;
                if let Some(e) = error {
                    *group.errors.entry(e.clone()).or_default() += 1;
                }
                group.inputs.lost_at_close += missing;
                match (mode, s.abused_for) {
                    (Some(m), Some(after)) => {
                        let entry = group.modes.entry(m).or_default();
                        entry.cut_off += 1;
                        if m.expected_codes().contains(code) {
                            entry.expected_code += 1;
                        }
                        *entry.closes.entry(*code).or_default() += 1;
                        entry.time_to_cut_off.push(after.as_micros() as u64);
                    }
                    _ => group.unexpected_closes += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_moves_samples_and_counters() {
        let mut agg = Aggregate::default();
        let mut local = Local::new();
        local.c.snapshots = 3;
        local.rtt(Duration::from_millis(2));
        local.ack(Duration::from_millis(30));
        local.jitter(Duration::from_micros(0));
        agg.flush(Group::WellBehaved, &mut local);
        let g = &agg.groups[0];
        assert_eq!(g.c.snapshots, 3);
        assert_eq!(g.rtt.len(), 1);
        assert_eq!(
            g.jitter.min(),
            1,
            "zero is clamped to the histogram's floor"
        );
        assert_eq!(local.c, Counters::default());
        assert!(!local.full());
        agg.flush(Group::WellBehaved, &mut local);
        assert_eq!(agg.groups[0].rtt.len(), 1);
    }

    #[test]
    fn session_ends_reconcile_inputs() {
        let mut agg = Aggregate::default();
        let s = |sent, acked| SessionSummary {
            sent,
            acked,
            connected_for: Duration::from_secs(1),
            abused_for: None,
        };
        agg.connected(Group::WellBehaved, Duration::from_millis(1), true);
        agg.ended(Group::WellBehaved, None, &SessionEnd::Churned, &s(10, 8));
        agg.connected(Group::WellBehaved, Duration::from_millis(1), false);
        agg.ended(Group::WellBehaved, None, &SessionEnd::Finished, &s(5, 5));
        let g = &agg.groups[0];
        assert_eq!(
            g.inputs,
            Inputs {
                sent: 15,
                acked: 13,
                lost_at_churn: 2,
                lost_at_close: 0,
                lost_at_move: 0,
                unexplained: 0
            }
        );
        assert_eq!((g.ever_connected, g.connected, g.connected_peak), (1, 0, 1));
        assert_eq!(g.closes.get(&1000), Some(&1));
        assert_eq!(g.churn_drops, 1);
    }

    #[test]
    fn abusers_are_cut_off_or_survive() {
        let mut agg = Aggregate::default();
        let abused = SessionSummary {
            abused_for: Some(Duration::from_millis(300)),
            ..SessionSummary::default()
        };
        let end = SessionEnd::Closed {
            code: 1008,
            error: Some("rate_limited".into()),
        };
        agg.ended(Group::Abusive, Some(AbuseMode::Flood), &end, &abused);
        agg.ended(
            Group::Abusive,
            Some(AbuseMode::Flood),
            &end,
            &SessionSummary::default(),
        );
        agg.ended(
            Group::Abusive,
            Some(AbuseMode::Garbage),
            &SessionEnd::Finished,
            &abused,
        );
        let g = &agg.groups[1];
        let flood = &g.modes[&AbuseMode::Flood];
        assert_eq!((flood.cut_off, flood.expected_code), (1, 1));
        assert_eq!(g.unexpected_closes, 1, "closed before misbehaving");
        assert_eq!(g.modes[&AbuseMode::Garbage].survived, 1);
        assert_eq!(g.errors["rate_limited"], 2);
    }
}
