//! [`ClusterDirectory`]: every call this node makes to the cluster directory in Redis.
//!
//! Each call is one Lua script (see `lua/`), so every multi-key change is atomic and no
//! read-modify-write can interleave with another node's. Each call is bounded by
//! `call_timeout`, connection included: when Redis is down, stalled or unreachable the
//! caller gets [`DirectoryError::Unavailable`] within that time, never a hang. The
//! connection (redis-rs' `ConnectionManager`, multiplexed and shared by every caller)
//! reconnects on the next call once Redis is back.
//!
//! Every call is timed and counted in `rallypoint_directory_call_seconds{op}` and, when
//! it fails, `rallypoint_directory_errors_total{op,kind}`.
//!
//! Must not hold game state or decide anything itself: decisions are
//! [`super::matchmaking`]'s and lease bookkeeping is [`super::lease`]'s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, ScriptInvocation, Value};

use super::matchmaking::{Decision, decide};
use super::reply::Reply;
use super::snapshot::Snapshot;
use super::{
    Assignment, Checkpoint, Claim, DirectoryError, FencedWrite, HeldClaim, MatchOutcome,
    MemberChange, NodeReport, Placement, Registration, Release, ReleaseOutcome, RenewOutcome,
    Reservation, RoomLocation, RoomState,
};
use crate::config::{ClusterConfig, ClusterTiming};
use crate::metrics::Metrics;

/// Attempts of one `/match` before it answers `no_capacity`: a reservation can lose a
/// race (the room filled, the directory moved on) and is then decided again on a fresh
/// snapshot.
const MATCH_ATTEMPTS: u32 = 12;

/// Longest account id stored (JWT `sub`); longer ones are refused.
const MAX_ACCOUNT_BYTES: usize = 512;

struct Scripts {
    heartbeat: Script,
    deregister: Script,
    claim: Script,
    renew: Script,
    release: Script,
    members: Script,
    reserve: Script,
    checkpoint_write: Script,
    checkpoint_read: Script,
    locate: Script,
    snapshot: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let with_common =
            |body: &str| Script::new(&format!("{}\n{body}", include_str!("lua/common.lua")));
        Scripts {
            heartbeat: with_common(include_str!("lua/heartbeat.lua")),
            deregister: with_common(include_str!("lua/deregister.lua")),
            claim: with_common(include_str!("lua/claim.lua")),
            renew: with_common(include_str!("lua/renew.lua")),
            release: with_common(include_str!("lua/release.lua")),
            members: with_common(include_str!("lua/members.lua")),
            reserve: with_common(include_str!("lua/reserve.lua")),
            checkpoint_write: with_common(include_str!("lua/checkpoint_write.lua")),
            checkpoint_read: with_common(include_str!("lua/checkpoint_read.lua")),
            locate: with_common(include_str!("lua/locate.lua")),
            snapshot: with_common(include_str!("lua/snapshot.lua")),
        }
    }
}

/// Checks a `--redis-url` without connecting.
pub fn check_redis_url(url: &str) -> Result<(), DirectoryError> {
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| DirectoryError::Config(e.to_string()))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn classify(e: &redis::RedisError) -> DirectoryError {
    use redis::{ErrorKind, ServerErrorKind};
    match e.kind() {
        ErrorKind::Server(
            ServerErrorKind::ResponseError
            | ServerErrorKind::ExecAbort
            | ServerErrorKind::NoPerm
            | ServerErrorKind::CrossSlot,
        )
        | ErrorKind::Parse
        | ErrorKind::UnexpectedReturnType
        | ErrorKind::InvalidClientConfig => DirectoryError::Rejected(e.to_string()),
        _ => DirectoryError::Unavailable(e.to_string()),
    }
}

/// See the module docs. Cheap to share: one per node, behind an `Arc`.
pub struct ClusterDirectory {
    conn: ConnectionManager,
    scripts: Scripts,
    node: String,
    instance: String,
    public_url: String,
    timing: ClusterTiming,
    metrics: Arc<Metrics>,
    /// The Redis clock (ms) as last read, and when on this node's clock.
    clock: Mutex<Option<(u64, Instant)>>,
}

impl std::fmt::Debug for ClusterDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterDirectory")
            .field("node", &self.node)
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

impl ClusterDirectory {
    /// A directory client for this node, whose clients are sent to `public_url`
    /// ([`ClusterConfig::public_url_for`]). Connects lazily (on the first call), so a
    /// node starts whether or not Redis is up. Must be called inside a tokio runtime.
    pub fn new(
        config: &ClusterConfig,
        public_url: String,
        metrics: Arc<Metrics>,
    ) -> Result<ClusterDirectory, DirectoryError> {
        let client = redis::Client::open(config.redis_url.as_str())
            .map_err(|e| DirectoryError::Config(e.to_string()))?;
        let timeout = config.timing.call_timeout;
        // Reconnection is tried once per call that finds the connection broken; the
        // caller's deadline bounds it either way.
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(20))
            .set_max_delay(timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, manager)
            .map_err(|e| DirectoryError::Config(e.to_string()))?;
        Ok(ClusterDirectory {
            conn,
            scripts: Scripts::new(),
            node: config.node_id.clone(),
            instance: format!("{:016x}", super::random_u64()),
            public_url,
            timing: config.timing.clone(),
            metrics,
            clock: Mutex::new(None),
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// This node's public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// Leases, timeouts and limits in force.
    pub fn timing(&self) -> &ClusterTiming {
        &self.timing
    }

    /// An invocation of `script` with the arguments every script takes first: the key
    /// prefix and this call's deadline on the Redis clock (see `late` in
    /// `lua/common.lua`): the Redis time last seen, plus the time since on this node's
    /// clock, plus the call timeout; 0 (none) before Redis was ever heard from.
    fn prepare<'s>(&self, script: &'s Script) -> ScriptInvocation<'s> {
        let deadline = self
            .clock
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map_or(0, |(redis_ms, at)| {
                redis_ms + millis(at.elapsed()) + millis(self.timing.call_timeout)
            });
        let mut inv = script.prepare_invoke();
        inv.arg(&self.timing.key_prefix).arg(deadline);
        inv
    }

    /// Notes the Redis clock read by a call answered at `at`.
    fn observe_clock(&self, redis_ms: u64, at: Instant) {
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = Some((redis_ms, at));
    }

    async fn invoke(
        &self,
        op: &'static str,
        inv: &ScriptInvocation<'_>,
    ) -> Result<Reply, DirectoryError> {
        let started = Instant::now();
        let timeout = self.timing.call_timeout;
        let deadline = tokio::time::Instant::from_std(started + timeout);
        let mut conn = self.conn.clone();
        let mut answer =
            tokio::time::timeout_at(deadline, inv.invoke_async::<Value>(&mut conn)).await;
        // A connection found broken (Redis restarted, a proxy dropped it) is replaced by
        // the manager; the call is tried once more on the new one within the same
        // deadline. Every script is safe to run twice.
        if let Ok(Err(e)) = &answer
            && (e.is_connection_dropped() || e.is_io_error())
        {
            answer = tokio::time::timeout_at(deadline, inv.invoke_async::<Value>(&mut conn)).await;
        }
        let result = match answer {
            Err(_) => Err(DirectoryError::Unavailable(format!(
                "no answer within {timeout:?}"
            ))),
            Ok(Err(e)) => Err(classify(&e)),
            Ok(Ok(value)) => self.unless_late(op, value),
        };
        let error = result.as_ref().err().map(DirectoryError::kind);
        self.metrics
            .directory_call(op, started.elapsed().as_secs_f64(), error);
        result
    }

    /// Registers this node (or renews its registration) with nothing claimed.
    pub async fn register(&self, report: &NodeReport) -> Result<Registration, DirectoryError> {
        self.heartbeat(report, &[]).await
    }

    /// Renews this node's registration and every claim in `claims` in one atomic step;
    /// re-registers the node and re-takes the claims if Redis lost them and nobody claimed
    /// them since. The outcomes are in the order of `claims`.
    pub async fn heartbeat(
        &self,
        report: &NodeReport,
        claims: &[HeldClaim],
    ) -> Result<Registration, DirectoryError> {
        let mut inv = self.prepare(&self.scripts.heartbeat);
        inv.arg(&self.node)
            .arg(&self.instance)
            .arg(&self.public_url)
            .arg(report.max_rooms)
            .arg(report.room_capacity)
            .arg(report.rooms)
            .arg(report.players)
            .arg(u8::from(report.draining))
            .arg(millis(self.timing.lease))
            .arg(millis(self.timing.retention));
        for c in claims {
            inv.arg(&c.room).arg(c.epoch).arg(c.capacity);
        }
        let mut r = self.invoke("heartbeat", &inv).await?;
        match r.text()?.as_str() {
            "ok" => {}
            "in_use" => return Err(DirectoryError::NodeIdInUse(self.node.clone())),
            other => return Err(r.unexpected(other)),
        }
        let registered_anew = r.flag()?;
        let now_ms = r.int()?;
        self.observe_clock(now_ms, Instant::now());
        let mut rooms = Vec::with_capacity(claims.len());
        for _ in claims {
            rooms.push(renew_outcome(&mut r)?);
        }
        Ok(Registration {
            registered_anew,
            now_ms,
            rooms,
        })
    }

    /// Hands over every claim in `claims` (as [`Release::HandOff`]) and removes this
    /// node from the directory. Returns how many claims were released.
    pub async fn deregister(&self, claims: &[HeldClaim]) -> Result<u32, DirectoryError> {
        let mut inv = self.prepare(&self.scripts.deregister);
        inv.arg(&self.node)
            .arg(&self.instance)
            .arg(millis(self.timing.retention));
        for c in claims {
            inv.arg(&c.room).arg(c.epoch);
        }
        let mut r = self.invoke("deregister", &inv).await?;
        match r.text()?.as_str() {
            "ok" => r.count(),
            "in_use" => Err(DirectoryError::NodeIdInUse(self.node.clone())),
            other => Err(r.unexpected(other)),
        }
    }

    /// Claims `room` for this node before it opens it, with `capacity` player seats.
    /// Exactly one of any number of racing claims wins; the winner gets the room's next
    /// epoch and its last checkpoint (to reopen from).
    pub async fn claim(&self, room: &str, capacity: u32) -> Result<Claim, DirectoryError> {
        super::check_room(room)?;
        let mut inv = self.prepare(&self.scripts.claim);
        inv.arg(room)
            .arg(&self.node)
            .arg(millis(self.timing.lease))
            .arg(millis(self.timing.retention))
            .arg(capacity)
            .arg(&self.instance);
        let mut r = self.invoke("claim", &inv).await?;
        let word = r.text()?;
        Ok(match word.as_str() {
            "won" | "held" => {
                let epoch = r.int()?;
                let bytes = r.bytes()?;
                let (ckpt_epoch, written_ms) = (r.int()?, r.int()?);
                let checkpoint = bytes.map(|bytes| Checkpoint {
                    bytes,
                    epoch: ckpt_epoch,
                    written_ms,
                });
                if word == "won" {
                    Claim::Won { epoch, checkpoint }
                } else {
                    Claim::Held { epoch, checkpoint }
                }
            }
            "owned" | "pending" => Claim::Elsewhere {
                node: r.text()?,
                url: r.text()?,
                placed: word == "pending",
            },
            "unregistered" => Claim::Unregistered,
            "draining" => Claim::Draining,
            other => return Err(r.unexpected(other)),
        })
    }

    /// Renews one claim outside the heartbeat.
    pub async fn renew(&self, claim: &HeldClaim) -> Result<RenewOutcome, DirectoryError> {
        let mut inv = self.prepare(&self.scripts.renew);
        inv.arg(&claim.room)
            .arg(&self.node)
            .arg(claim.epoch)
            .arg(claim.capacity)
            .arg(millis(self.timing.lease))
            .arg(millis(self.timing.retention));
        let mut r = self.invoke("renew", &inv).await?;
        renew_outcome(&mut r)
    }

    /// Ends this node's claim `epoch` on `room`.
    pub async fn release(
        &self,
        room: &str,
        epoch: u64,
        how: Release,
    ) -> Result<ReleaseOutcome, DirectoryError> {
        let mode = match how {
            Release::HandOff => "handoff",
            Release::Close => "close",
        };
        let mut inv = self.prepare(&self.scripts.release);
        inv.arg(room)
            .arg(&self.node)
            .arg(epoch)
            .arg(mode)
            .arg(millis(self.timing.retention));
        let mut r = self.invoke("release", &inv).await?;
        Ok(match r.text()?.as_str() {
            "released" => ReleaseOutcome::Released,
            "not_owner" => ReleaseOutcome::NotOwner {
                epoch: r.int()?,
                owner: Some(r.text()?).filter(|o| !o.is_empty()),
            },
            other => return Err(r.unexpected(other)),
        })
    }

    /// Records who has a player in `room` (this node's claim `epoch`); fenced like a
    /// checkpoint.
    pub async fn members(
        &self,
        room: &str,
        epoch: u64,
        change: MemberChange<'_>,
    ) -> Result<FencedWrite, DirectoryError> {
        let (op, accounts): (&str, Vec<&str>) = match change {
            MemberChange::Join(a) => ("join", vec![a]),
            MemberChange::Leave(a) => ("leave", vec![a]),
            MemberChange::Sync(all) => ("sync", all.iter().map(String::as_str).collect()),
        };
        for a in &accounts {
            check_account(a)?;
        }
        let mut inv = self.prepare(&self.scripts.members);
        inv.arg(room)
            .arg(&self.node)
            .arg(epoch)
            .arg(op)
            .arg(millis(self.timing.retention));
        for a in accounts {
            inv.arg(a);
        }
        let mut r = self.invoke("members", &inv).await?;
        fenced(&mut r, "ok")
    }

    /// Stores `bytes` as `room`'s checkpoint under this node's claim `epoch`. Refused
    /// (not an error) when another claim superseded it.
    pub async fn write_checkpoint(
        &self,
        room: &str,
        epoch: u64,
        bytes: &[u8],
    ) -> Result<FencedWrite, DirectoryError> {
        let limit = self.timing.max_checkpoint_bytes;
        if bytes.len() > limit {
            return Err(DirectoryError::CheckpointTooLarge {
                size: bytes.len(),
                limit,
            });
        }
        let mut inv = self.prepare(&self.scripts.checkpoint_write);
        inv.arg(room)
            .arg(&self.node)
            .arg(epoch)
            .arg(millis(self.timing.retention))
            .arg(bytes);
        let mut r = self.invoke("checkpoint_write", &inv).await?;
        fenced(&mut r, "written")
    }

    /// `room`'s last checkpoint, if any.
    pub async fn read_checkpoint(&self, room: &str) -> Result<Option<Checkpoint>, DirectoryError> {
        let mut inv = self.prepare(&self.scripts.checkpoint_read);
        inv.arg(room);
        let mut r = self.invoke("checkpoint_read", &inv).await?;
        let bytes = r.bytes()?;
        let (epoch, written_ms) = (r.int()?, r.int()?);
        Ok(bytes.map(|bytes| Checkpoint {
            bytes,
            epoch,
            written_ms,
        }))
    }

    /// Where `room` is served, if the directory lists it.
    pub async fn where_is(&self, room: &str) -> Result<Option<RoomLocation>, DirectoryError> {
        let mut inv = self.prepare(&self.scripts.locate);
        inv.arg(room);
        let mut r = self.invoke("locate", &inv).await?;
        let state = match r.text()?.as_str() {
            "none" => return Ok(None),
            "owned" => RoomState::Owned,
            "pending" => RoomState::Placed,
            "orphan" => RoomState::Orphan,
            other => return Err(r.unexpected(other)),
        };
        let node = r.text()?;
        let url = r.text()?;
        Ok(Some(RoomLocation {
            room: room.to_owned(),
            state,
            node: (!node.is_empty()).then_some(node),
            url: (!url.is_empty()).then_some(url),
            epoch: r.int()?,
            capacity: r.count()?,
            members: r.count()?,
            reserved: r.count()?,
            checkpoint_ms: r.int()?,
        }))
    }

    /// The whole directory at one instant; with `account`, also where that account is.
    pub async fn snapshot(&self, account: Option<&str>) -> Result<Snapshot, DirectoryError> {
        if let Some(a) = account {
            check_account(a)?;
        }
        let mut inv = self.prepare(&self.scripts.snapshot);
        inv.arg(account.unwrap_or(""));
        let r = self.invoke("snapshot", &inv).await?;
        let snap = Snapshot::decode(r)?;
        self.observe_clock(snap.now_ms, Instant::now());
        Ok(snap)
    }

    /// Holds a seat in `room` for `account` for the reservation time. The room must be
    /// served (owned or placed) unless `place` says where to place it. Atomic: seats
    /// taken (members and live reservations) never exceed the room's capacity.
    pub async fn reserve_seat(
        &self,
        room: &str,
        account: &str,
        place: Option<&Placement>,
    ) -> Result<Reservation, DirectoryError> {
        super::check_room(room)?;
        check_account(account)?;
        let if_version = place
            .and_then(|p| p.if_version)
            .map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        let mut inv = self.prepare(&self.scripts.reserve);
        inv.arg(room)
            .arg(account)
            .arg(millis(self.timing.reservation))
            .arg(place.map_or("", |p| p.node.as_str()))
            .arg(place.map_or(0, |p| p.capacity))
            .arg(if_version)
            .arg(millis(self.timing.retention));
        let mut r = self.invoke("reserve", &inv).await?;
        Ok(match r.text()?.as_str() {
            "ok" => Reservation::Reserved(Assignment {
                room: r.text()?,
                node: r.text()?,
                url: r.text()?,
                resume: r.flag()?,
            }),
            "full" => Reservation::Full,
            "gone" => Reservation::Gone,
            "stale" => Reservation::Stale,
            "node_gone" => Reservation::NodeGone,
            other => return Err(r.unexpected(other)),
        })
    }

    /// Matchmaking for `account`: `room` or any room. Decides on a fresh snapshot
    /// ([`decide`]) and takes the seat atomically; a lost race is decided again. Bounded
    /// as a whole by four call timeouts.
    pub async fn match_player(
        &self,
        account: &str,
        room: Option<&str>,
    ) -> Result<MatchOutcome, DirectoryError> {
        if let Some(name) = room {
            super::check_room(name)?;
        }
        let bound = self.timing.call_timeout * 4;
        tokio::time::timeout(bound, self.match_attempts(account, room))
            .await
            .unwrap_or_else(|_| {
                Err(DirectoryError::Unavailable(format!(
                    "no match within {bound:?}"
                )))
            })
    }

    async fn match_attempts(
        &self,
        account: &str,
        room: Option<&str>,
    ) -> Result<MatchOutcome, DirectoryError> {
        for attempt in 0..MATCH_ATTEMPTS {
            let snap = self.snapshot(Some(account)).await?;
            let decision = decide(&snap, room, snap.now_ms);
            let capacity = |node: &str| snap.node(node).map_or(0, |n| n.room_capacity);
            let (name, place) = match &decision {
                Decision::NoCapacity => return Ok(MatchOutcome::NoCapacity),
                Decision::Join { room, .. } => (room.clone(), None),
                Decision::Open { room, node, .. } => (
                    room.clone(),
                    Some(Placement {
                        node: node.clone(),
                        capacity: capacity(node),
                        if_version: None,
                    }),
                ),
                Decision::OpenNew { node } => (
                    super::new_room_name(),
                    Some(Placement {
                        node: node.clone(),
                        capacity: capacity(node),
                        if_version: Some(snap.version),
                    }),
                ),
            };
            match self.reserve_seat(&name, account, place.as_ref()).await? {
                Reservation::Reserved(a) => return Ok(MatchOutcome::Assigned(a)),
                Reservation::Full if room == Some(name.as_str()) => {
                    return Ok(MatchOutcome::RoomFull);
                }
                Reservation::Full
                | Reservation::Gone
                | Reservation::Stale
                | Reservation::NodeGone => {}
            }
            let jitter = super::random_u64() % (u64::from(attempt) * 4 + 2);
            tokio::time::sleep(Duration::from_millis(jitter)).await;
        }
        Ok(MatchOutcome::NoCapacity)
    }
}

impl ClusterDirectory {
    /// The reply, unless it is a script's `{'late', now}`: the call reached Redis after
    /// its deadline and changed nothing.
    fn unless_late(&self, op: &'static str, value: Value) -> Result<Reply, DirectoryError> {
        let late = matches!(
            &value,
            Value::Array(items) if matches!(items.first(), Some(Value::BulkString(w)) if w == b"late")
        );
        let mut r = Reply::new(op, value)?;
        if late {
            let _ = r.text()?;
            self.observe_clock(r.int()?, Instant::now());
            return Err(DirectoryError::Unavailable(format!(
                "{op} reached Redis after its deadline"
            )));
        }
        Ok(r)
    }
}

fn renew_outcome(r: &mut Reply) -> Result<RenewOutcome, DirectoryError> {
    let word = r.text()?;
    let epoch = r.int()?;
    let owner = r.text()?;
    Ok(match word.as_str() {
        "renewed" => RenewOutcome::Renewed,
        "reacquired" => RenewOutcome::Reacquired,
        "lost" => RenewOutcome::Lost {
            epoch,
            owner: (!owner.is_empty()).then_some(owner),
        },
        other => return Err(r.unexpected(other)),
    })
}

fn fenced(r: &mut Reply, done: &str) -> Result<FencedWrite, DirectoryError> {
    let word = r.text()?;
    Ok(match word.as_str() {
        w if w == done => FencedWrite::Written,
        "superseded" => FencedWrite::Superseded {
            epoch: r.int()?,
            owner: Some(r.text()?).filter(|o| !o.is_empty()),
        },
        "unclaimed" => FencedWrite::Unclaimed,
        other => return Err(r.unexpected(other)),
    })
}

fn check_account(account: &str) -> Result<(), DirectoryError> {
    if account.is_empty() || account.len() > MAX_ACCOUNT_BYTES {
        return Err(DirectoryError::Invalid {
            what: "account",
            value: account.chars().take(64).collect(),
        });
    }
    Ok(())
}
