//! One bot: get a token, connect, play one session after another until the run ends.
//!
//! A bot is one task that owns its socket. Per session it waits for `welcome`, then runs a
//! single `select!` over its socket and one timer at the room's tick rate: each tick sends
//! one `input`; every `tick_rate` ticks (about a second) it also sends a `ping`, flushes
//! its measurements and rolls for churn. Snapshots update the ack bookkeeping (input→ack
//! latency, reconciliation) and the snapshot jitter; `pong`s give the RTT.
//!
//! Churn is a hand-off (see [`crate::handoff`]): the bot comes to rest, notes where its
//! player stands, drops the connection abruptly, reconnects after a short pause and checks
//! that the resumed player stands where it left it, with the same score.
//!
//! With `--match` a bot asks `GET /match` on the target's node where to play before each
//! connection (the first, and after a lost one: `/match` sends it back to its room,
//! `resume`); any bot follows a 421 to the room's node, and `moved` + close 1012 to the
//! room's new node at once, where it resumes and checks that its player is as the last
//! snapshot before `moved` showed it (see [`crate::handoff`]).
//!
//! Abusive bots play nicely for `abuse_after`, then misbehave in their mode and expect to
//! be cut off. When the run ends, a bot stops sending, waits (bounded) for the ack of its
//! last input and closes with 1000.
//!
//! Every wait is bounded: connects by the connect timeout, writes by [`WRITE_TIMEOUT`],
//! the end of a session by `final_ack_wait` + [`CLOSE_WAIT`] (+ [`DRAIN_WAIT`] for a
//! connection that failed mid-write). Must not touch another bot's state.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use std::borrow::Cow;

use rallypoint_client::{
    ConnectError, Endpoint, FrameOutcome, Incoming, Kind, Received, Request, TokenIn,
};
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::{Event, ServerMessage, Welcome};
use rallypoint_protocol::{Encoding, Subprotocol};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use crate::behavior::{self, Control, Fighter, Strafe, Wander};
use crate::config::{AbuseMode, Auth, Behavior};
use crate::delay::Relays;
use crate::handoff::{self, Standing, Verdict};
use crate::net::ConnectFailure;
use crate::predict::Prediction;
use crate::sight::{Drawn, Sight};
use crate::stats::{Aggregate, Group, Handoffs, Local, MOVED, SessionEnd, SessionSummary};
use crate::wire;
use rallypoint_protocol::rng::SplitMix64 as Rng;

/// A write that takes longer than this means the connection is stuck.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a normal close may take (our close frame, the server's answer).
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long answering the server's close frame may take.
const ANSWER_WAIT: Duration = Duration::from_millis(200);
/// After a failed write, how long to read what the server sent last (its close frame).
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// Inputs remembered for input→ack latency; at 30 Hz this is 8 s of unacknowledged input,
/// far beyond any healthy ack delay.
const PENDING_CAP: usize = 256;
/// Inputs a flooding bot sends per tick: five times the server's default quota (two
/// per tick), so the drop budget runs out within a second.
const FLOOD_PER_TICK: u32 = 10;
/// Receive buffer of a slow reader's socket: small, so the server's writes back up in
/// seconds instead of filling megabytes of kernel buffers first.
const SLOW_READER_RCVBUF: u32 = 4096;
/// Longest a churning bot tries to come to rest before it drops the connection anyway
/// (its hand-off is then counted as unsettled and not checked). Well over the default
/// respawn delay (3 s): a bot standing still in a fight may be killed, and waits for its
/// respawn.
const HANDOFF_LIMIT: Duration = Duration::from_secs(8);
/// After giving up on coming to rest, how long the bot waits (sending nothing) for the
/// ack of what it already sent before it drops anyway.
const HANDOFF_ACK_WAIT: Duration = Duration::from_secs(1);
/// Wait before a well-behaved bot reconnects after an unexpected close.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// 421s followed in a row before an attempt counts as failed.
const MAX_REDIRECTS: u32 = 4;
/// After a resume with a state to check, how long the bot sends nothing while it waits
/// for the snapshot that settles the check (none of its new inputs may be in it).
const HOLD_LIMIT: Duration = Duration::from_secs(2);

/// Why a bot expects to resume its player on its next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// It dropped the connection on purpose.
    Churn,
    /// Its room moved to another node.
    Move,
    /// It lost its connection and `/match` said `resume`.
    Rematch,
}

/// What a bot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Plays by the rules.
    WellBehaved,
    /// Misbehaves in this way after `abuse_after`.
    Abuser(AbuseMode),
}

impl Role {
    /// The report group.
    pub fn group(self) -> Group {
        match self {
            Role::WellBehaved => Group::WellBehaved,
            Role::Abuser(_) => Group::Abusive,
        }
    }

    fn mode(self) -> Option<AbuseMode> {
        match self {
            Role::WellBehaved => None,
            Role::Abuser(m) => Some(m),
        }
    }
}

/// Everything the bots of a run share (read-only except the aggregate).
#[derive(Debug)]
pub struct Shared {
    /// Where to connect.
    pub target: Endpoint,
    /// `--latency`: the relays every connection goes through (the target is already
    /// reached through one; other nodes get theirs in [`Shared::reach`]).
    pub relays: Option<Relays>,
    /// Offered subprotocol.
    pub protocol: Subprotocol,
    /// Token source.
    pub auth: Auth,
    /// Lifetime of minted tokens.
    pub token_ttl: Duration,
    /// What well-behaved bots do.
    pub behavior: Behavior,
    /// Probability that a well-behaved bot drops its connection in a given second.
    pub churn_per_s: f64,
    /// Bots ask `/match` where to play (`--match`).
    pub matchmaking: bool,
    /// No churn and no new abuse from this instant on, so every bot ends in a session
    /// long enough to settle its final ack, and every abuser has been dealt with.
    pub churn_until: Instant,
    /// The same for slow readers, which take the server's send timeout plus the time
    /// to fill the buffers (15–20 s with the defaults) to be caught.
    pub slow_reading_until: Instant,
    /// See [`crate::Config::abusers_return`].
    pub abusers_return: bool,
    /// See [`crate::Config::abuse_after`].
    pub abuse_after: Duration,
    /// See [`crate::Config::oversize_bytes`].
    pub oversize_bytes: usize,
    /// See [`crate::Config::connect_timeout`].
    pub connect_timeout: Duration,
    /// See [`crate::Config::final_ack_wait`].
    pub final_ack_wait: Duration,
    /// Set once when the run ends; read on every tick (cheap).
    pub stop: AtomicBool,
    /// The same signal, for waits that must wake at once (ramp, back-off).
    pub stop_rx: watch::Receiver<bool>,
    /// Measurements.
    pub stats: std::sync::Mutex<Aggregate>,
}

impl Shared {
    /// Another node's URL (`/match`, a 421, `moved`) as an endpoint, through its relay
    /// with `--latency`.
    async fn reach(&self, url: &str) -> Result<Endpoint, ConnectFailure> {
        let endpoint = self.target.elsewhere(url).await?;
        match &self.relays {
            Some(relays) => relays.via(endpoint).await.map_err(ConnectFailure::Relay),
            None => Ok(endpoint),
        }
    }

    /// No abuser starts misbehaving in `mode` from this instant on.
    fn abuse_until(&self, mode: AbuseMode) -> Instant {
        match mode {
            AbuseMode::SlowReader => self.slow_reading_until,
            _ => self.churn_until,
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Runs `f` on the aggregate. The lock is never held across an await; a poisoned lock
    /// (a panic elsewhere) still holds valid counts.
    pub fn with_stats<R>(&self, f: impl FnOnce(&mut Aggregate) -> R) -> R {
        let mut guard = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    /// Resolves when the run ends.
    async fn stopped(&self) {
        let mut stop = self.stop_rx.clone();
        // An error means the run dropped the sender: it is over either way.
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps until `until`; returns false if the run ended first.
    async fn sleep_until(&self, until: Instant) -> bool {
        tokio::select! {
            () = tokio::time::sleep_until(until) => !self.stopping(),
            () = self.stopped() => false,
        }
    }

    /// Runs `f` unless the run ends first (`None`).
    async fn unless_stopped<T>(&self, f: impl std::future::Future<Output = T>) -> Option<T> {
        tokio::select! {
            out = f => Some(out),
            () = self.stopped() => None,
        }
    }
}

/// One bot's identity and schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Position in the run (0-based).
    pub index: usize,
    /// Account id for minted and dev tokens.
    pub sub: String,
    /// Display name.
    pub name: String,
    /// The room it asks for, if any.
    pub room: Option<String>,
    /// What it is.
    pub role: Role,
    /// When it starts (the ramp).
    pub start_at: Instant,
    /// Its own random seed.
    pub seed: u64,
}

/// Runs a bot to the end of the run.
pub async fn run(plan: Plan, shared: Arc<Shared>) {
    let group = plan.role.group();
    if !shared.sleep_until(plan.start_at).await {
        return;
    }
    let mut rng = Rng::new(plan.seed);
    let token = loop {
        let Some(result) = shared.unless_stopped(token(&plan, &shared)).await else {
            return;
        };
        match result {
            Ok(t) => break t,
            Err(f) => {
                let retry = f.retry_in();
                shared.with_stats(|s| s.failed(group, f.key()));
                let Some(wait) = retry else {
                    shared.with_stats(|s| s.group(group).gave_up += 1);
                    return;
                };
                if !shared.sleep_until(Instant::now() + wait).await {
                    return;
                }
            }
        }
    };
    let requests = Requests::new(&plan, &shared, &token);
    let mut local = Local::new();
    let mut resume_of: Option<(u32, Cause)> = None;
    let mut left: Option<(Standing, Cause)> = None;
    let mut moved_to: Option<String> = None;
    let mut first = true;
    loop {
        if shared.stopping() {
            break;
        }
        let route = route(&shared, &requests, moved_to.take(), group);
        let Some(attempt) = shared.unless_stopped(route).await else {
            break;
        };
        let (mut ws, welcome, handshake, matched_resume) = match attempt {
            Ok(c) => c,
            Err(f) => {
                let retry = f.retry_in();
                shared.with_stats(|s| s.failed(group, f.key()));
                match retry {
                    Some(wait) => {
                        let jitter = wait.mul_f64(rng.range(0.0, 0.5));
                        if shared.sleep_until(Instant::now() + wait + jitter).await {
                            continue;
                        }
                    }
                    None => shared.with_stats(|s| s.group(group).gave_up += 1),
                }
                break;
            }
        };
        // After a lost connection, only `/match` knows whether the player is still kept.
        let resuming = resume_of
            .take()
            .filter(|(_, cause)| *cause != Cause::Rematch || matched_resume);
        shared.with_stats(|s| {
            s.connected(group, handshake, first);
            if let Some((you, cause)) = resuming {
                let g = s.group(group);
                let kept = ws.resumed_from(you);
                let (resumes, failures) = match cause {
                    Cause::Churn => (&mut g.resumes, &mut g.resume_failures),
                    Cause::Move | Cause::Rematch => {
                        (&mut g.cluster.resumes, &mut g.cluster.resume_failures)
                    }
                };
                *(if kept { resumes } else { failures }) += 1;
            }
        });
        first = false;
        let mut session = Session::new(&plan, &shared, &welcome, &mut rng);
        // A failed resume is counted above; a new player has nothing to compare.
        if let Some((standing, cause)) = left.take().filter(|_| welcome.resumed) {
            session.expect = Some(standing);
            session.moved_in = cause == Cause::Move;
        }
        let end = match session.drive(&mut ws, &mut local, &mut rng).await {
            SessionEnd::Closed { code: MOVED, error } => SessionEnd::Moved {
                to: session.moved_to.take(),
                error,
            },
            end => end,
        };
        let first_desync = count_v2(&ws, &mut local);
        if matches!(end, SessionEnd::Churned) {
            ws.abort();
        } else {
            drop(ws);
        }
        let summary = session.summary();
        shared.with_stats(|s| {
            s.flush(group, &mut local);
            s.ended(group, plan.role.mode(), &end, &summary);
            let g = s.group(group);
            if session.expect.is_some() {
                session.checks(g).unchecked += 1;
            }
            match end {
                SessionEnd::Churned if session.left.is_none() => g.handoffs.unsettled += 1,
                // Not seen yet: nothing to compare after the move.
                SessionEnd::Moved { .. } if session.seen.is_none() => {
                    g.cluster.checks.unsettled += 1;
                }
                _ => {}
            }
            if g.first_desync.is_none() {
                g.first_desync = first_desync;
            }
        });
        left = match end {
            SessionEnd::Moved { .. } => session.seen.take().map(|s| (s, Cause::Move)),
            _ => session.left.take().map(|s| (s, Cause::Churn)),
        };
        match end {
            SessionEnd::Finished => break,
            SessionEnd::Moved { to, .. } => {
                // Straight to the room's new node (or back through `/match`), with a
                // little jitter so a room's players do not all redial in the same instant.
                resume_of = Some((welcome.you, Cause::Move));
                moved_to = to;
                let pause = Duration::from_millis(rng.below(50) as u64);
                if !shared.sleep_until(Instant::now() + pause).await {
                    break;
                }
            }
            SessionEnd::Churned => {
                resume_of = Some((welcome.you, Cause::Churn));
                // A short, random pause: a real client notices the drop, then redials.
                let pause = Duration::from_millis(50 + rng.below(200) as u64);
                if !shared.sleep_until(Instant::now() + pause).await {
                    // The run ended while away: the entity stays "away" on the server,
                    // which is what a player who never came back looks like.
                    break;
                }
            }
            SessionEnd::Closed { .. } => {
                if (plan.role != Role::WellBehaved && !shared.abusers_return)
                    || !shared.sleep_until(Instant::now() + RECONNECT_DELAY).await
                {
                    break;
                }
                if shared.matchmaking {
                    resume_of = Some((welcome.you, Cause::Rematch));
                }
                shared.with_stats(|s| s.group(group).reconnects += 1);
            }
        }
    }
    shared.with_stats(|s| s.flush(group, &mut local));
}

async fn token(plan: &Plan, shared: &Shared) -> Result<String, ConnectFailure> {
    match &shared.auth {
        Auth::Mint(opts) => crate::token::mint(opts, &plan.sub, &plan.name, shared.token_ttl)
            .map_err(|e| ConnectFailure::Token(e.to_string())),
        Auth::Tokens(tokens) => tokens
            .get(plan.index)
            .cloned()
            .ok_or_else(|| ConnectFailure::Token("no token for this bot".into())),
        Auth::DevToken => shared
            .target
            .dev_token(&plan.sub, &plan.name)
            .await
            .map_err(ConnectFailure::DevToken),
    }
}

type Ws = rallypoint_client::Session;

/// What each of the bot's sessions asks for: its token in the header, and for a slow
/// reader a small receive buffer; with its room for the target and `/match` (`named`),
/// without for a URL a node gave, which names the room itself (`routed`).
struct Requests {
    named: Request,
    routed: Request,
}

impl Requests {
    fn new(plan: &Plan, shared: &Shared, token: &str) -> Requests {
        let mut routed = Request::new([shared.protocol]).token(token, TokenIn::Header);
        if plan.role == Role::Abuser(AbuseMode::SlowReader) {
            routed = routed.recv_buffer(SLOW_READER_RCVBUF);
        }
        let named = match &plan.room {
            Some(room) => routed.clone().room(room),
            None => routed.clone(),
        };
        Requests { named, routed }
    }
}

/// One connection attempt, wherever it goes: to `moved_to` (the room's new node), else
/// where `/match` says (`--match`), else the target; then after the room's owner for each
/// 421. The last item: `/match` said the account still has a player.
async fn route(
    shared: &Shared,
    requests: &Requests,
    moved_to: Option<String>,
    group: Group,
) -> Result<(Ws, Welcome, Duration, bool), ConnectFailure> {
    let mut resume = false;
    let (mut endpoint, mut request) = match moved_to {
        Some(url) => (Cow::Owned(shared.reach(&url).await?), &requests.routed),
        None if shared.matchmaking => {
            let found = shared.target.find_match(&requests.named).await?;
            resume = found.resume;
            shared.with_stats(|s| {
                let c = &mut s.group(group).cluster;
                c.matches += 1;
                c.match_resumes += u64::from(found.resume);
            });
            let at = shared.reach(&found.url).await?;
            (Cow::Owned(at), &requests.routed)
        }
        None => (Cow::Borrowed(&shared.target), &requests.named),
    };
    for _ in 0..MAX_REDIRECTS {
        match connect(shared, &endpoint, request).await {
            Err(ConnectFailure::Connect(ConnectError::Rejected(r))) if r.status == 421 => {
                let Some(url) = r.redirect() else {
                    return Err(ConnectError::Rejected(r).into());
                };
                shared.with_stats(|s| s.group(group).cluster.redirects += 1);
                endpoint = Cow::Owned(shared.reach(&url).await?);
                request = &requests.routed;
            }
            other => return other.map(|(ws, welcome, handshake)| (ws, welcome, handshake, resume)),
        }
    }
    Err(ConnectFailure::Redirects(MAX_REDIRECTS))
}

/// TCP, TLS, upgrade (timed: the handshake), then the `welcome`, each within the
/// connect timeout.
async fn connect(
    shared: &Shared,
    endpoint: &Endpoint,
    request: &Request,
) -> Result<(Ws, Welcome, Duration), ConnectFailure> {
    let started = Instant::now();
    let mut ws = endpoint.connect(request).await?;
    let handshake = started.elapsed();
    let welcome = tokio::time::timeout(shared.connect_timeout, ws.read_welcome())
        .await
        .map_err(|_| ConnectError::NoWelcome("none within the connect timeout".into()))??
        .clone();
    Ok((ws, welcome, handshake))
}

/// What a fighting or strafing bot keeps to play as a client does: the others as a
/// client draws them, its own player predicted, and reused buffers.
#[derive(Debug)]
struct Eyes {
    sight: Sight,
    prediction: Prediction,
    drawn: Vec<Drawn>,
    drops: Vec<u32>,
}

/// A fighter's ground: its prediction's map and movement rules, from where it stands.
struct Footing<'a> {
    prediction: &'a Prediction,
    own: (f32, f32),
}

impl behavior::Ground for Footing<'_> {
    fn after(&self, mx: f32, my: f32) -> ((f32, f32), bool) {
        let input = wire::input(Control {
            mx,
            my,
            ..Control::default()
        });
        self.prediction
            .after(&input)
            .map_or((self.own, false), |(at, step)| (at, step.blocked))
    }

    fn clear(&self, from: (f32, f32), to: (f32, f32)) -> bool {
        self.prediction
            .clear_line(from, to, behavior::LINE_OF_FIRE_RADIUS)
    }
}

/// Why the session loop stopped writing.
enum WriteFailed {
    /// The write failed or timed out: the connection is gone or stuck.
    Broken,
}

/// One session's state.
struct Session<'a> {
    shared: &'a Shared,
    role: Role,
    encoding: Encoding,
    /// Snapshots are v2 frames, applied by the session to its reconstructed state.
    v2: bool,
    behavior: Behavior,
    /// Whether the behaviour reads entities. Otherwise a snapshot is read only for its
    /// `tick` and `ack` (v2 frames are still applied and hash-checked by the session:
    /// the rows are just never materialised).
    want_ents: bool,
    you: u32,
    tick_rate: u32,
    snap_period: Duration,
    started: Instant,
    /// Last `seq` sent (0: none yet).
    seq: u32,
    /// Highest `ack` seen.
    acked: u32,
    /// Sent inputs awaiting their ack, oldest first.
    pending: VecDeque<(u32, Instant)>,
    last_snap: Option<Instant>,
    /// The last snapshot's entities (when the behaviour looks at them); the vector is
    /// reused from snapshot to snapshot.
    ents: Vec<Entity>,
    wander: Wander,
    /// Fighters and strafers: the others as drawn, their own player predicted.
    eyes: Option<Eyes>,
    fighter: Fighter,
    strafe: Strafe,
    abuse_at: Instant,
    abused_at: Option<Instant>,
    /// False while a slow reader ignores its socket.
    reading: bool,
    /// Round number, from `round_start` events (the join intro carries the current one).
    round: Option<u32>,
    /// Churn decided at this instant: coming to rest before dropping the connection.
    leaving: Option<Instant>,
    /// Own position in the previous snapshot (while leaving).
    last_pos: Option<(f32, f32)>,
    /// Where the player stood when this session dropped its connection (churn).
    left: Option<Standing>,
    /// Where the player must stand in this session's first snapshot (after a resume).
    expect: Option<Standing>,
    /// Set by a snapshot that completes the hand-off: drop the connection now.
    drop_now: bool,
    /// This session resumed a player whose room moved here (`expect` is a move's).
    moved_in: bool,
    /// The player as the last snapshot showed it (alive and present), for a move.
    seen: Option<Standing>,
    /// The URL of the last `moved`.
    moved_to: Option<String>,
}

impl<'a> Session<'a> {
    fn new(plan: &Plan, shared: &'a Shared, welcome: &Welcome, rng: &mut Rng) -> Session<'a> {
        let tick_rate = u32::from(welcome.tick_rate.max(1));
        // Older servers did not send `snap_rate`: they snapshot every tick.
        let snap_rate = match welcome.snap_rate {
            0 => tick_rate,
            r => u32::from(r),
        };
        let now = Instant::now();
        // Abusers start at slightly different times so they do not hit the server in step.
        let abuse_at = now + shared.abuse_after + Duration::from_millis(rng.below(250) as u64);
        let plays = matches!(shared.behavior, Behavior::Fight | Behavior::Strafe);
        Session {
            shared,
            role: plan.role,
            encoding: shared.protocol.encoding(),
            v2: shared.protocol.is_v2(),
            behavior: shared.behavior,
            // Churn and moves check the player's state across resumes, which takes
            // entities.
            want_ents: plays || shared.churn_per_s > 0.0 || shared.matchmaking,
            you: welcome.you,
            tick_rate,
            snap_period: Duration::from_secs_f64(1.0 / f64::from(snap_rate)),
            started: now,
            seq: 0,
            acked: 0,
            pending: VecDeque::with_capacity(PENDING_CAP),
            last_snap: None,
            ents: Vec::new(),
            wander: Wander::new(),
            eyes: plays.then(|| Eyes {
                sight: Sight::new(tick_rate),
                prediction: Prediction::new(welcome),
                drawn: Vec::new(),
                drops: Vec::new(),
            }),
            fighter: Fighter::new(),
            strafe: Strafe::new(),
            abuse_at,
            abused_at: None,
            reading: true,
            round: None,
            leaving: None,
            last_pos: None,
            left: None,
            expect: None,
            drop_now: false,
            moved_in: false,
            seen: None,
            moved_to: None,
        }
    }

    fn summary(&self) -> SessionSummary {
        SessionSummary {
            sent: self.seq,
            acked: self.acked,
            connected_for: self.started.elapsed(),
            abused_for: self.abused_at.map(|t| t.elapsed()),
        }
    }

    async fn drive(&mut self, ws: &mut Ws, local: &mut Local, rng: &mut Rng) -> SessionEnd {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.tick_rate));
        // A random phase spreads the bots' inputs over the tick instead of in bursts.
        let mut ticker =
            tokio::time::interval_at(Instant::now() + period.mul_f64(rng.unit()), period);
        // A late bot sends one input, not a burst of catch-up inputs, like a game client.
        ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut ticks: u32 = 0;
        let mut finish_by: Option<Instant> = None;
        loop {
            tokio::select! {
                received = ws.recv(), if self.reading => {
                    match received {
                        Ok(Received::Message(m)) => self.on_message(&m, local),
                        Ok(Received::Closed(_)) | Err(_) => {
                            // Send the queued answer to the server's close frame,
                            // briefly: the server is waiting for it before it lets go.
                            let _ = tokio::time::timeout(ANSWER_WAIT, ws.flush()).await;
                            return ended(ws);
                        }
                    }
                    if self.drop_now {
                        return SessionEnd::Churned;
                    }
                    if local.full() {
                        self.shared.with_stats(|s| s.flush(self.role.group(), local));
                    }
                    if finish_by.is_some() && self.acked >= self.seq {
                        return close_normally(ws).await;
                    }
                }
                _ = ticker.tick() => {
                    let now = Instant::now();
                    if let Some(deadline) = finish_by {
                        if now >= deadline {
                            return close_normally(ws).await;
                        }
                        continue;
                    }
                    if self.shared.stopping() {
                        if !self.reading {
                            // A slow reader the server never cut off: look at what it
                            // sent, then leave.
                            return match self.drain(ws).await {
                                Some(end) => end,
                                None => close_normally(ws).await,
                            };
                        }
                        if self.acked >= self.seq {
                            return close_normally(ws).await;
                        }
                        finish_by = Some(now + self.shared.final_ack_wait);
                        continue;
                    }
                    if let Some(since) = self.leaving
                        && now - since >= HANDOFF_LIMIT
                    {
                        // Unsettled: send nothing more, drop once what is in flight is
                        // acknowledged (or after a bounded wait).
                        if self.acked >= self.seq || now - since >= HANDOFF_LIMIT + HANDOFF_ACK_WAIT {
                            return SessionEnd::Churned;
                        }
                        continue;
                    }
                    ticks = ticks.wrapping_add(1);
                    if self.tick(ws, now, ticks, local, rng).await.is_err() {
                        return match self.drain(ws).await {
                            Some(end) => end,
                            None => ended(ws),
                        };
                    }
                    if self.leaving.is_none() && self.churn_now(now, ticks, rng) {
                        self.leaving = Some(now);
                    }
                }
            }
        }
    }

    /// One tick's sends, queued and written together. `Err` when the connection broke.
    async fn tick(
        &mut self,
        ws: &mut Ws,
        now: Instant,
        ticks: u32,
        local: &mut Local,
        rng: &mut Rng,
    ) -> Result<(), WriteFailed> {
        let before = ws.traffic();
        if let Role::Abuser(mode) = self.role
            && now >= self.abuse_at
            && (self.abused_at.is_some() || now < self.shared.abuse_until(mode))
        {
            let first = self.abused_at.is_none();
            if first {
                self.abused_at = Some(now);
            }
            match mode {
                AbuseMode::Flood => {
                    for _ in 0..FLOOD_PER_TICK {
                        self.queue_input(ws, now, Control::default(), local)?;
                    }
                }
                AbuseMode::Oversize if first => {
                    let m = wire::oversize(self.shared.oversize_bytes);
                    ws.queue(&m).map_err(|_| WriteFailed::Broken)?;
                }
                AbuseMode::Garbage if first => {
                    let (op, bytes) = wire::garbage(self.encoding);
                    ws.queue_raw(op, bytes).map_err(|_| WriteFailed::Broken)?;
                }
                AbuseMode::SlowReader => self.reading = false,
                _ => {}
            }
        }
        if self.expect.is_some() && now < self.started + HOLD_LIMIT {
            // Resumed: nothing new may move the player before the check's snapshot.
            return Ok(());
        }
        let control = match self.behavior {
            // Coming to rest for a churn hand-off.
            _ if self.leaving.is_some() => Control::default(),
            Behavior::Idle => Control::default(),
            Behavior::Wander => self.wander.control(now.into_std(), rng),
            Behavior::Fight | Behavior::Strafe => self.play(now.into_std(), rng, local),
        };
        self.queue_input(ws, now, control, local)?;
        let second = ticks.is_multiple_of(self.tick_rate);
        if second {
            local.c.pings_out += 1;
            ws.queue_ping().map_err(|_| WriteFailed::Broken)?;
        }
        let after = ws.traffic();
        local.c.messages_out += after.messages_out - before.messages_out;
        local.c.bytes_out += after.bytes_out - before.bytes_out;
        match tokio::time::timeout(WRITE_TIMEOUT, ws.flush()).await {
            Ok(Ok(())) => {}
            _ => return Err(WriteFailed::Broken),
        }
        if second {
            self.shared
                .with_stats(|s| s.flush(self.role.group(), local));
        }
        Ok(())
    }

    /// A fighter's or a strafer's controls: it looks at the others where they are drawn
    /// now, from where its prediction has its own player.
    fn play(&mut self, now: std::time::Instant, rng: &mut Rng, local: &mut Local) -> Control {
        let Some(eyes) = &mut self.eyes else {
            return Control::default();
        };
        let own = eyes.prediction.position().or_else(|| {
            eyes.sight
                .latest(self.you)
                .filter(|s| s.alive)
                .map(|s| (s.x, s.y))
        });
        let render = eyes.sight.render_tick(now);
        if let Some(at) = render {
            eyes.sight.draw(at, &mut eyes.drawn);
        }
        let (Some(own), Some(at)) = (own, render) else {
            return self.wander.control(now, rng);
        };
        if self.behavior == Behavior::Strafe {
            let enemy = behavior::nearest_enemy(self.you, own, &eyes.drawn);
            return self.strafe.control(now, rng, Some(own), enemy);
        }
        let view = at.round().max(0.0) as u32;
        let ground = Footing {
            prediction: &eyes.prediction,
            own,
        };
        match self
            .fighter
            .decide(now, self.you, own, &eyes.drawn, view, &ground)
        {
            Some(fight) => {
                local.c.shots += u64::from(fight.shot);
                fight.control
            }
            None => self.wander.control(now, rng),
        }
    }

    fn churn_now(&self, now: Instant, ticks: u32, rng: &mut Rng) -> bool {
        self.role == Role::WellBehaved
            && self.shared.churn_per_s > 0.0
            && ticks.is_multiple_of(self.tick_rate)
            && now < self.shared.churn_until
            && rng.unit() < self.shared.churn_per_s
    }

    fn queue_input(
        &mut self,
        ws: &mut Ws,
        now: Instant,
        control: Control,
        local: &mut Local,
    ) -> Result<(), WriteFailed> {
        let mut input = wire::input(control);
        self.seq = ws.queue_input(input).map_err(|_| WriteFailed::Broken)?;
        if let Some(eyes) = &mut self.eyes {
            input.seq = self.seq;
            eyes.prediction.input(input);
        }
        if self.pending.len() >= PENDING_CAP {
            self.pending.pop_front();
            local.c.ack_samples_dropped += 1;
        }
        self.pending.push_back((self.seq, now));
        local.c.inputs_out += 1;
        Ok(())
    }

    fn on_message(&mut self, m: &Incoming<'_>, local: &mut Local) {
        let now = Instant::now();
        local.c.messages_in += 1;
        local.c.bytes_in += m.bytes().len() as u64;
        match m.kind() {
            Kind::Snap => self.on_snapshot(m, now, local),
            Kind::Pong => {
                if let Some(rtt) = m.rtt() {
                    local.c.pongs_in += 1;
                    local.rtt(rtt);
                }
            }
            Kind::Event if self.want_ents => match m.decode() {
                Ok(ServerMessage::Event(Event::RoundStart { round, .. })) => {
                    self.round = Some(round);
                    // Everyone respawned: the prediction starts over.
                    if let Some(eyes) = &mut self.eyes {
                        eyes.prediction.round_started();
                    }
                }
                Ok(ServerMessage::Event(Event::RoundEnd { .. })) => {
                    if let Some(eyes) = &mut self.eyes {
                        eyes.prediction.round_over();
                    }
                }
                Ok(ServerMessage::Event(Event::Map(map))) => {
                    if let Some(eyes) = &mut self.eyes {
                        eyes.prediction.map(&map);
                    }
                }
                Ok(ServerMessage::Event(Event::Tuning(t))) => {
                    if let Some(eyes) = &mut self.eyes {
                        eyes.prediction.tuning(&t);
                    }
                }
                Ok(ServerMessage::Event(Event::Respawn { id, x, y })) if id == self.you => {
                    if let Some(eyes) = &mut self.eyes {
                        eyes.prediction.respawned((x, y));
                    }
                }
                _ => {}
            },
            Kind::Moved => match m.decode() {
                Ok(ServerMessage::Moved(to)) => self.moved_to = Some(to.url),
                _ => local.c.decode_errors += 1,
            },
            Kind::Unknown | Kind::Unreadable => local.c.decode_errors += 1,
            Kind::Welcome | Kind::Chat | Kind::Event | Kind::Error => {}
        }
    }

    fn on_snapshot(&mut self, m: &Incoming<'_>, now: Instant, local: &mut Local) {
        if !self.v2 {
            // A v1 snapshot is the full state.
            local.c.keyframe_bytes += m.bytes().len() as u64;
        }
        let Some(head) = m.snap_header() else {
            local.c.decode_errors += 1;
            return;
        };
        local.c.snapshots += 1;
        if let Some(prev) = self.last_snap.replace(now) {
            local.jitter((now - prev).abs_diff(self.snap_period));
        }
        let ack = head.ack;
        if ack < self.acked {
            local.c.ack_regressions += 1;
        } else {
            self.acked = ack;
            while let Some(&(seq, sent)) = self.pending.front() {
                if seq > ack {
                    break;
                }
                self.pending.pop_front();
                local.ack(now - sent);
            }
        }
        // v2: a frame that was not applied leaves no state to read (the session counted
        // it and asked for a keyframe); the behaviour keeps its last decision.
        if self.want_ents
            && !matches!(
                m.frame(),
                Some(FrameOutcome::Ignored | FrameOutcome::Refused)
            )
        {
            let mut ents = std::mem::take(&mut self.ents);
            match m.snapshot_into(&mut ents) {
                Ok(_) => {
                    self.see(head.tick, ack, &ents, now.into_std(), local);
                    self.look(&ents);
                }
                Err(_) => local.c.decode_errors += 1,
            }
            self.ents = ents;
        }
    }

    /// What the churn check and the hand-off make of the entities.
    fn look(&mut self, ents: &[Entity]) {
        self.check_resume(ents);
        if self.leaving.is_some() {
            self.settle(ents);
        }
        if let Some(round) = self.round {
            self.seen = handoff::as_seen(self.you, round, ents);
        }
    }

    /// Where this session's resume check is counted: churn's, or the moves'.
    fn checks<'g>(&self, g: &'g mut crate::stats::GroupAgg) -> &'g mut Handoffs {
        if self.moved_in {
            &mut g.cluster.checks
        } else {
            &mut g.handoffs
        }
    }

    /// A fighter or strafer takes in a snapshot: what it sees, whose health its shots
    /// took, and how far its prediction was off.
    fn see(
        &mut self,
        tick: u32,
        ack: u32,
        ents: &[Entity],
        now: std::time::Instant,
        local: &mut Local,
    ) {
        let Some(eyes) = &mut self.eyes else { return };
        eyes.sight.push(tick, ents, now, &mut eyes.drops);
        for &id in &eyes.drops {
            local.c.hits += u64::from(self.fighter.claims_hit(id, now));
        }
        for e in ents {
            if let Entity::Projectile { vx, vy, owner, .. } = *e
                && owner == self.you
            {
                self.fighter.saw_projectile(vx, vy);
            }
        }
        let own = eyes
            .sight
            .latest(self.you)
            .filter(|s| s.alive)
            .map(|s| (s.x, s.y));
        if let Some(sample) = eyes.prediction.snapshot(tick, ack, own) {
            local.prediction(sample);
        }
    }

    /// After a resume: the first snapshot that shows the player settles the check.
    fn check_resume(&mut self, ents: &[Entity]) {
        let (Some(before), Some(round)) = (self.expect, self.round) else {
            return;
        };
        let Some(verdict) = handoff::compare(self.you, &before, round, ents) else {
            return;
        };
        self.expect = None;
        self.shared.with_stats(|s| {
            let h = self.checks(s.group(self.role.group()));
            match verdict {
                Verdict::Kept => h.kept += 1,
                Verdict::ShotsLanded => h.shots_landed += 1,
                Verdict::NewRound => h.new_round += 1,
                Verdict::Lost(what) => {
                    h.lost += 1;
                    h.first_loss.get_or_insert(what);
                }
            }
        });
    }

    /// While leaving: once every input is acknowledged and the player is at rest, note
    /// where it stands and ask for the drop.
    fn settle(&mut self, ents: &[Entity]) {
        let previous = self.last_pos.take();
        self.last_pos = handoff::position(self.you, ents);
        let Some(round) = self.round else { return };
        if self.acked < self.seq {
            return;
        }
        if let Some(standing) = handoff::at_rest(self.you, previous, round, ents) {
            self.left = Some(standing);
            self.drop_now = true;
        }
    }

    /// Reads what is left after a write failed, or for a slow reader at the end: the
    /// server's `error` and close frame tell why it ended, and the snapshots still
    /// buffered carry the last acks (used for reconciliation only: their latency is the
    /// bot's own doing). `None`: the connection is still open (data kept coming for
    /// [`DRAIN_WAIT`]).
    async fn drain(&mut self, ws: &mut Ws) -> Option<SessionEnd> {
        let mut acked = self.acked;
        let res = tokio::time::timeout(DRAIN_WAIT, async {
            loop {
                match ws.recv().await {
                    Ok(Received::Message(m)) => {
                        if let Some(h) = m.snap_header() {
                            acked = acked.max(h.ack);
                        }
                    }
                    Ok(Received::Closed(_)) | Err(_) => return,
                }
            }
        })
        .await;
        self.acked = acked;
        res.ok().map(|()| ended(ws))
    }
}

/// Adds a v2 session's frame counts (its bytes by kind too) to the bot's counters;
/// returns why its last refused frame was refused, if one was.
fn count_v2(ws: &Ws, local: &mut Local) -> Option<String> {
    let v2 = ws.v2()?;
    let s = v2.stats();
    local.c.keyframe_bytes += s.keyframe_bytes;
    local.c.delta_bytes += s.delta_bytes;
    local.c.v2.add(&s);
    (s.desyncs > 0).then(|| {
        v2.last_error()
            .map_or_else(|| "unknown".to_owned(), ToString::to_string)
    })
}

/// How a session that ended on the server's side (or lost its connection) ended: its
/// close code and the `error` that preceded it.
fn ended(ws: &Ws) -> SessionEnd {
    let (code, error) = ws.closed().map_or((1006, None), |c| {
        (c.code, c.error.as_ref().map(|e| e.code.clone()))
    });
    SessionEnd::Closed { code, error }
}

/// Sends our close frame (1000) and waits, bounded, for the server's.
async fn close_normally(ws: &mut Ws) -> SessionEnd {
    let _ = tokio::time::timeout(CLOSE_WAIT, ws.close(1000, "run over")).await;
    SessionEnd::Finished
}
