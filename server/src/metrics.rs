//! Prometheus metrics: one registry per server, handles cloned into the tasks that count.
//!
//! Hot paths hold owned handles (atomics) obtained once per connection or room, never a
//! label lookup per message. Room series are removed when their room closes so label
//! cardinality follows the live rooms, not history.
//!
//! Must not contain logic beyond counting and exposition.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rallypoint_protocol::{CloseReason, Encoding};

/// Label: the subprotocol's encoding.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    /// `msgpack` or `json`.
    pub subprotocol: SubprotocolLabel,
}

/// Label value for an encoding.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum SubprotocolLabel {
    /// `rallypoint.v1.msgpack`
    msgpack,
    /// `rallypoint.v1.json`
    json,
}

impl From<Encoding> for SubprotocolLabel {
    fn from(e: Encoding) -> Self {
        match e {
            Encoding::MsgPack => SubprotocolLabel::msgpack,
            Encoding::Json => SubprotocolLabel::json,
        }
    }
}

/// Label: a handshake's outcome (`accepted` or the rejection's error code).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// Outcome.
    pub outcome: String,
}

/// Label: a close reason.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CloseLabels {
    /// The `error` code (or `normal`, `peer_closed`, `peer_gone`).
    pub reason: String,
}

/// Label: a message kind.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `input`, `chat`, `ping`.
    pub kind: String,
}

/// Label: a room.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoomLabels {
    /// Room name.
    pub room: String,
}

/// Label: asset reload outcome.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VersionLabels {
    /// Content hash of the loaded assets.
    pub version: String,
}

/// Label: a cluster directory operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectoryLabels {
    /// `heartbeat`, `claim`, `reserve`, `snapshot`, ...
    pub op: String,
}

/// Label: a failed cluster directory operation.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectoryErrorLabels {
    /// The operation.
    pub op: String,
    /// `unavailable` (no answer in time) or `rejected` (an answer not understood).
    pub kind: String,
}

/// Label: a lease.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    /// `node` (the registration) or `room` (a claim).
    pub lease: String,
}

/// Label: a lease given up.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLossLabels {
    /// `node` or `room`.
    pub lease: String,
    /// `superseded` (another node holds it) or `expired` (lapsed past the grace).
    pub reason: String,
}

/// Label: how a room left this node.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MoveLabels {
    /// `handoff` or `lease_lost`.
    pub how: String,
    /// `moved` (players told where) or `no_destination`.
    pub outcome: String,
}

/// Upper bounds of the directory-call buckets, seconds: 100 µs to ~1.6 s, doubling. A
/// healthy Redis answers in the first few; the call timeout sits in the last ones.
pub fn directory_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_1, 2.0, 15)
}

fn directory_histogram() -> Histogram {
    Histogram::new(directory_buckets())
}

/// Upper bounds of the tick-duration buckets, seconds: 25 µs to ~74 ms in steps of √2, so
/// a quantile read from the buckets is within about 20 % (a 30 Hz tick has 33 ms).
pub fn tick_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_025, std::f64::consts::SQRT_2, 24)
}

/// `VmRSS` of `/proc/self/status` in bytes; `None` where there is no procfs.
fn resident_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..]
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    kib.checked_mul(1024)
}

fn tick_histogram() -> Histogram {
    Histogram::new(tick_buckets())
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Upgraded WebSocket sessions open now.
    pub connections_open: Gauge,
    /// Handshakes in progress.
    pub handshakes_pending: Gauge,
    /// Handshakes by outcome.
    pub handshakes: Family<OutcomeLabels, Counter>,
    /// Messages received, by subprotocol.
    pub messages_in: Family<ProtocolLabels, Counter>,
    /// Messages sent, by subprotocol.
    pub messages_out: Family<ProtocolLabels, Counter>,
    /// Bytes received in messages, by subprotocol.
    pub bytes_in: Family<ProtocolLabels, Counter>,
    /// Bytes sent in messages, by subprotocol.
    pub bytes_out: Family<ProtocolLabels, Counter>,
    /// Sessions ended, by reason.
    pub closes: Family<CloseLabels, Counter>,
    /// Messages dropped by per-player rate limits, by kind.
    pub rate_limited: Family<KindLabels, Counter>,
    /// Rooms open now.
    pub rooms_open: Gauge,
    /// Duration of a room tick (simulation, snapshot, fan-out).
    pub room_tick_seconds: Family<RoomLabels, Histogram, fn() -> Histogram>,
    /// Ticks skipped because a room fell too far behind.
    pub room_tick_overruns: Family<RoomLabels, Counter>,
    /// Players (entities, including those inside the resume grace) per room.
    pub room_players: Family<RoomLabels, Gauge>,
    /// Spectators per room.
    pub room_spectators: Family<RoomLabels, Gauge>,
    /// Inputs applied by the simulation.
    pub room_inputs_applied: Family<RoomLabels, Counter>,
    /// Inputs dropped (room queue full, or stale/duplicate `seq`).
    pub room_inputs_dropped: Family<RoomLabels, Counter>,
    /// Snapshot bytes encoded (once per tick and encoding, not per recipient).
    pub room_snapshot_bytes: Family<RoomLabels, Counter>,
    /// Snapshots replaced before the client took them (client not keeping up).
    pub room_slow_consumer_drops: Family<RoomLabels, Counter>,
    /// Clients disconnected for not keeping up.
    pub room_slow_consumer_disconnects: Family<RoomLabels, Counter>,
    /// Seconds the v2 encoder spent building frames (begin_tick and every recipient's encode).
    pub room_v2_encode_seconds: Family<RoomLabels, Counter<f64, AtomicU64>>,
    /// v2 keyframes sent (join, resume, resync, or smaller than the delta).
    pub room_v2_keyframes: Family<RoomLabels, Counter>,
    /// v2 deltas sent.
    pub room_v2_deltas: Family<RoomLabels, Counter>,
    /// v2 snapshot bytes sent, per recipient (headers and bodies).
    pub room_v2_bytes: Family<RoomLabels, Counter>,
    /// v2 clients that asked for a keyframe (a desync they detected).
    pub room_v2_resyncs: Family<RoomLabels, Counter>,
    /// Asset version in force (value 1).
    pub assets_version: Family<VersionLabels, Gauge>,
    /// Asset reloads by outcome (`applied`, `rejected`).
    pub assets_reloads: Family<OutcomeLabels, Counter>,
    /// Panics on any thread since start (see [`Metrics::count_panics`]). Each is a bug.
    pub panics: Counter,
    /// Resident memory of the process, read when `/metrics` is scraped (Linux).
    pub resident_memory_bytes: Gauge,
    /// Duration of cluster directory calls (Redis round trips), by operation.
    pub directory_call_seconds: Family<DirectoryLabels, Histogram, fn() -> Histogram>,
    /// Failed cluster directory calls, by operation and kind.
    pub directory_errors: Family<DirectoryErrorLabels, Counter>,
    /// Leases renewed (confirmed by the directory), node and rooms.
    pub leases_renewed: Family<LeaseLabels, Counter>,
    /// Leases given up, by reason.
    pub leases_lost: Family<LeaseLossLabels, Counter>,
    /// Rooms opened under a claim that found a checkpoint, by outcome (`restored`, or
    /// `unreadable`: opened afresh).
    pub rooms_reopened: Family<OutcomeLabels, Counter>,
    /// Rooms that left this node for another one, by how (`handoff` on a drain,
    /// `lease_lost`) and whether their players were told where (`moved`) or not
    /// (`no_destination`: they find the room through `/match`).
    pub rooms_moved_out: Family<MoveLabels, Counter>,
    /// `/match` answers by outcome: `assigned`, `resumed`, or the error code.
    pub matches: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rallypoint");
        let m = Metrics {
            connections_open: Gauge::default(),
            handshakes_pending: Gauge::default(),
            handshakes: Family::default(),
            messages_in: Family::default(),
            messages_out: Family::default(),
            bytes_in: Family::default(),
            bytes_out: Family::default(),
            closes: Family::default(),
            rate_limited: Family::default(),
            rooms_open: Gauge::default(),
            room_tick_seconds: Family::new_with_constructor(tick_histogram),
            room_tick_overruns: Family::default(),
            room_players: Family::default(),
            room_spectators: Family::default(),
            room_inputs_applied: Family::default(),
            room_inputs_dropped: Family::default(),
            room_snapshot_bytes: Family::default(),
            room_slow_consumer_drops: Family::default(),
            room_slow_consumer_disconnects: Family::default(),
            room_v2_encode_seconds: Family::default(),
            room_v2_keyframes: Family::default(),
            room_v2_deltas: Family::default(),
            room_v2_bytes: Family::default(),
            room_v2_resyncs: Family::default(),
            assets_version: Family::default(),
            assets_reloads: Family::default(),
            panics: Counter::default(),
            resident_memory_bytes: Gauge::default(),
            directory_call_seconds: Family::new_with_constructor(directory_histogram),
            directory_errors: Family::default(),
            leases_renewed: Family::default(),
            leases_lost: Family::default(),
            rooms_reopened: Family::default(),
            rooms_moved_out: Family::default(),
            matches: Family::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "connections_open",
            "Upgraded WebSocket sessions open now",
            m.connections_open.clone(),
        );
        r.register(
            "handshakes_pending",
            "Handshakes in progress (TLS and HTTP not done)",
            m.handshakes_pending.clone(),
        );
        r.register(
            "handshakes",
            "Handshakes by outcome: accepted or the rejection's error code",
            m.handshakes.clone(),
        );
        r.register(
            "messages_in",
            "WebSocket data messages received, by subprotocol",
            m.messages_in.clone(),
        );
        r.register(
            "messages_out",
            "WebSocket data messages sent, by subprotocol",
            m.messages_out.clone(),
        );
        r.register(
            "bytes_in",
            "Bytes of data messages received, by subprotocol",
            m.bytes_in.clone(),
        );
        r.register(
            "bytes_out",
            "Bytes of data messages sent, by subprotocol",
            m.bytes_out.clone(),
        );
        r.register(
            "session_closes",
            "Sessions ended, by reason",
            m.closes.clone(),
        );
        r.register(
            "rate_limited_messages",
            "Client messages dropped by per-player rate limits",
            m.rate_limited.clone(),
        );
        r.register("rooms_open", "Rooms open now", m.rooms_open.clone());
        r.register(
            "room_tick_seconds",
            "Duration of one room tick: simulation, snapshot and fan-out",
            m.room_tick_seconds.clone(),
        );
        r.register(
            "room_tick_overruns",
            "Ticks skipped because the room fell behind",
            m.room_tick_overruns.clone(),
        );
        r.register(
            "room_players",
            "Player entities per room, including those awaiting resume",
            m.room_players.clone(),
        );
        r.register(
            "room_spectators",
            "Spectators per room",
            m.room_spectators.clone(),
        );
        r.register(
            "room_inputs_applied",
            "Inputs applied by the simulation",
            m.room_inputs_applied.clone(),
        );
        r.register(
            "room_inputs_dropped",
            "Inputs dropped: room queue full, or stale or repeated seq",
            m.room_inputs_dropped.clone(),
        );
        r.register(
            "room_snapshot_bytes",
            "Snapshot bytes encoded, once per tick and encoding",
            m.room_snapshot_bytes.clone(),
        );
        r.register(
            "room_slow_consumer_drops",
            "Snapshots replaced before the client took them",
            m.room_slow_consumer_drops.clone(),
        );
        r.register(
            "room_slow_consumer_disconnects",
            "Clients disconnected for not keeping up",
            m.room_slow_consumer_disconnects.clone(),
        );
        r.register(
            "room_v2_encode_seconds",
            "Seconds the v2 encoder spent building frames (begin_tick and every recipient's encode)",
            m.room_v2_encode_seconds.clone(),
        );
        r.register(
            "room_v2_keyframes",
            "v2 keyframes sent (join, resume, resync, or smaller than the delta)",
            m.room_v2_keyframes.clone(),
        );
        r.register("room_v2_deltas", "v2 deltas sent", m.room_v2_deltas.clone());
        r.register(
            "room_v2_bytes",
            "v2 snapshot bytes sent, per recipient (headers and bodies)",
            m.room_v2_bytes.clone(),
        );
        r.register(
            "room_v2_resyncs",
            "v2 clients that asked for a keyframe (a desync they detected)",
            m.room_v2_resyncs.clone(),
        );
        r.register(
            "assets_version",
            "Asset version in force (value is 1)",
            m.assets_version.clone(),
        );
        r.register(
            "assets_reloads",
            "Asset reloads by outcome",
            m.assets_reloads.clone(),
        );
        r.register(
            "panics",
            "Panics on any thread since start; each one is a bug",
            m.panics.clone(),
        );
        r.register(
            "resident_memory_bytes",
            "Resident memory of the server process (Linux; 0 elsewhere)",
            m.resident_memory_bytes.clone(),
        );
        r.register(
            "directory_call_seconds",
            "Duration of cluster directory calls (Redis round trips), by operation",
            m.directory_call_seconds.clone(),
        );
        r.register(
            "directory_errors",
            "Failed cluster directory calls, by operation and kind",
            m.directory_errors.clone(),
        );
        r.register(
            "leases_renewed",
            "Cluster leases renewed, node registration and room claims",
            m.leases_renewed.clone(),
        );
        r.register(
            "leases_lost",
            "Cluster leases given up: superseded by another node or lapsed past the grace",
            m.leases_lost.clone(),
        );
        r.register(
            "rooms_reopened",
            "Rooms opened from a cluster checkpoint, by outcome (restored, unreadable)",
            m.rooms_reopened.clone(),
        );
        r.register(
            "rooms_moved_out",
            "Rooms that left this node (handoff, lease_lost), players told where or not",
            m.rooms_moved_out.clone(),
        );
        r.register(
            "matches",
            "/match answers by outcome: assigned, resumed, or the error code",
            m.matches.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts every panic of the process in `panics`, then runs the hook that was
    /// installed before (which prints the message). Process-wide: the binary calls it
    /// once for the server it runs.
    pub fn count_panics(&self) {
        let panics = self.panics.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            panics.inc();
            previous(info);
        }));
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        if let Some(bytes) = resident_memory() {
            self.resident_memory_bytes
                .set(i64::try_from(bytes).unwrap_or(i64::MAX));
        }
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a handshake outcome.
    pub fn handshake(&self, outcome: &str) {
        self.handshakes
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a session end.
    pub fn close(&self, reason: &str) {
        self.closes
            .get_or_create(&CloseLabels {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a session end for a [`CloseReason`].
    pub fn close_reason(&self, reason: CloseReason) {
        self.close(reason.error_code());
    }

    /// Records one cluster directory call; `error` is its failure kind, if it failed.
    pub fn directory_call(&self, op: &str, seconds: f64, error: Option<&str>) {
        self.directory_call_seconds
            .get_or_create(&DirectoryLabels { op: op.to_owned() })
            .observe(seconds);
        if let Some(kind) = error {
            self.directory_errors
                .get_or_create(&DirectoryErrorLabels {
                    op: op.to_owned(),
                    kind: kind.to_owned(),
                })
                .inc();
        }
    }

    /// Counts renewed leases of one kind (`node` or `room`).
    pub fn lease_renewed(&self, lease: &str, n: u64) {
        self.leases_renewed
            .get_or_create(&LeaseLabels {
                lease: lease.to_owned(),
            })
            .inc_by(n);
    }

    /// Counts a lease given up.
    pub fn lease_lost(&self, lease: &str, reason: &str) {
        self.leases_lost
            .get_or_create(&LeaseLossLabels {
                lease: lease.to_owned(),
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Counts a room opened from a checkpoint (`restored`) or opened afresh because its
    /// checkpoint could not be used (`unreadable`).
    pub fn room_reopened(&self, outcome: &str) {
        self.rooms_reopened
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts a room that left this node.
    pub fn room_moved_out(&self, how: &str, told_where: bool) {
        let outcome = if told_where {
            "moved"
        } else {
            "no_destination"
        };
        self.rooms_moved_out
            .get_or_create(&MoveLabels {
                how: how.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts one `/match` answer.
    pub fn match_outcome(&self, outcome: &str) {
        self.matches
            .get_or_create(&OutcomeLabels {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Handles for one session's traffic counters.
    pub fn traffic(&self, encoding: Encoding) -> Traffic {
        let l = ProtocolLabels {
            subprotocol: encoding.into(),
        };
        Traffic {
            messages_in: self.messages_in.get_or_create_owned(&l),
            messages_out: self.messages_out.get_or_create_owned(&l),
            bytes_in: self.bytes_in.get_or_create_owned(&l),
            bytes_out: self.bytes_out.get_or_create_owned(&l),
        }
    }

    /// Handles for one room's series.
    pub fn room(self: &Arc<Self>, name: &str) -> RoomMetrics {
        let l = RoomLabels {
            room: name.to_owned(),
        };
        RoomMetrics {
            tick_seconds: self.room_tick_seconds.get_or_create_owned(&l),
            overruns: self.room_tick_overruns.get_or_create_owned(&l),
            players: self.room_players.get_or_create_owned(&l),
            spectators: self.room_spectators.get_or_create_owned(&l),
            inputs_applied: self.room_inputs_applied.get_or_create_owned(&l),
            inputs_dropped: self.room_inputs_dropped.get_or_create_owned(&l),
            snapshot_bytes: self.room_snapshot_bytes.get_or_create_owned(&l),
            slow_drops: self.room_slow_consumer_drops.get_or_create_owned(&l),
            slow_disconnects: self.room_slow_consumer_disconnects.get_or_create_owned(&l),
            v2_encode_seconds: self.room_v2_encode_seconds.get_or_create_owned(&l),
            v2_keyframes: self.room_v2_keyframes.get_or_create_owned(&l),
            v2_deltas: self.room_v2_deltas.get_or_create_owned(&l),
            v2_bytes: self.room_v2_bytes.get_or_create_owned(&l),
            v2_resyncs: self.room_v2_resyncs.get_or_create_owned(&l),
            labels: l,
            parent: Arc::clone(self),
        }
    }
}

/// A session's traffic counters.
#[derive(Debug, Clone)]
pub struct Traffic {
    /// Messages received.
    pub messages_in: Counter,
    /// Messages sent.
    pub messages_out: Counter,
    /// Bytes received.
    pub bytes_in: Counter,
    /// Bytes sent.
    pub bytes_out: Counter,
}

/// A room's series; removed from the registry when dropped (the room closed).
#[derive(Debug)]
pub struct RoomMetrics {
    /// Tick duration.
    pub tick_seconds: Histogram,
    /// Skipped ticks.
    pub overruns: Counter,
    /// Player entities.
    pub players: Gauge,
    /// Spectators.
    pub spectators: Gauge,
    /// Inputs applied.
    pub inputs_applied: Counter,
    /// Inputs dropped.
    pub inputs_dropped: Counter,
    /// Snapshot bytes encoded.
    pub snapshot_bytes: Counter,
    /// Snapshots replaced unread.
    pub slow_drops: Counter,
    /// Slow-consumer disconnects.
    pub slow_disconnects: Counter,
    /// CPU seconds in the v2 encoder.
    pub v2_encode_seconds: Counter<f64, AtomicU64>,
    /// v2 keyframes sent.
    pub v2_keyframes: Counter,
    /// v2 deltas sent.
    pub v2_deltas: Counter,
    /// v2 snapshot bytes sent.
    pub v2_bytes: Counter,
    /// v2 resync requests.
    pub v2_resyncs: Counter,
    labels: RoomLabels,
    parent: Arc<Metrics>,
}

impl Drop for RoomMetrics {
    fn drop(&mut self) {
        let p = &self.parent;
        let l = &self.labels;
        p.room_tick_seconds.remove(l);
        p.room_tick_overruns.remove(l);
        p.room_players.remove(l);
        p.room_spectators.remove(l);
        p.room_inputs_applied.remove(l);
        p.room_inputs_dropped.remove(l);
        p.room_snapshot_bytes.remove(l);
        p.room_slow_consumer_drops.remove(l);
        p.room_slow_consumer_disconnects.remove(l);
        p.room_v2_encode_seconds.remove(l);
        p.room_v2_keyframes.remove(l);
        p.room_v2_deltas.remove(l);
        p.room_v2_bytes.remove(l);
        p.room_v2_resyncs.remove(l);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resident_memory_is_read_from_vm_rss() {
        let status = "Name:\trallypoint\nVmPeak:\t  99999 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vm_rss(status), Some(12345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\tlots\n"), None);
    }

    #[test]
    fn directory_calls_and_leases_are_counted_by_operation() {
        let m = Metrics::new();
        m.directory_call("claim", 0.000_3, None);
        m.directory_call("claim", 0.6, Some("unavailable"));
        m.lease_renewed("room", 3);
        m.lease_lost("room", "superseded");
        let text = m.encode();
        for line in [
            "rallypoint_directory_call_seconds_count{op=\"claim\"} 2",
            "rallypoint_directory_call_seconds_bucket{le=\"0.0004\",op=\"claim\"} 1",
            "rallypoint_directory_errors_total{op=\"claim\",kind=\"unavailable\"} 1",
            "rallypoint_leases_renewed_total{lease=\"room\"} 3",
            "rallypoint_leases_lost_total{lease=\"room\",reason=\"superseded\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn the_exposition_carries_panics_and_resident_memory() {
        let m = Metrics::new();
        m.panics.inc();
        let text = m.encode();
        assert!(text.contains("rallypoint_panics_total 1"), "{text}");
        if cfg!(target_os = "linux") {
            let rss = text
                .lines()
                .find_map(|l| l.strip_prefix("rallypoint_resident_memory_bytes "))
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a resident memory sample");
            assert!(rss > 1024 * 1024, "{rss}");
        }
    }
}
