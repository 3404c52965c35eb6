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

use futures_util::{SinkExt, StreamExt};
use rallypoint_protocol::message::Welcome;
use rallypoint_protocol::{Encoding, Subprotocol};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::behavior::{self, Control, Wander};
use crate::config::{AbuseMode, Auth, Behavior};
use crate::handoff::{self, Standing, Verdict};
use crate::net::{self, BotStream, ConnectFailure, Target};
use crate::stats::{Aggregate, Group, Local, SessionEnd, SessionSummary};
use crate::wire::{self, Inbound};
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
/// Pings remembered for RTT; one goes out per second.
const PING_SLOTS: usize = 4;
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
    pub target: Target,
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
    /// Upgrade URL (with `room=` if any).
    pub url: String,
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
    let mut local = Local::new();
    let mut resume_of: Option<u32> = None;
    let mut left: Option<Standing> = None;
    let mut first = true;
    loop {
        if shared.stopping() {
            break;
        }
        let Some(attempt) = shared.unless_stopped(connect(&plan, &shared, &token)).await else {
            break;
        };
        let (mut ws, welcome, handshake) = match attempt {
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
        shared.with_stats(|s| {
            s.connected(group, handshake, first);
            if let Some(you) = resume_of.take() {
                let g = s.group(group);
                if welcome.resumed && welcome.you == you {
                    g.resumes += 1;
                } else {
                    g.resume_failures += 1;
                }
            }
        });
        first = false;
        let mut session = Session::new(&plan, &shared, &welcome, &mut rng);
        // A failed resume is counted above; a new player has nothing to compare.
        session.expect = left.take().filter(|_| welcome.resumed);
        let end = session.drive(&mut ws, &mut local, &mut rng).await;
        drop(ws);
        let summary = session.summary();
        shared.with_stats(|s| {
            s.flush(group, &mut local);
            s.ended(group, plan.role.mode(), &end, &summary);
            let g = s.group(group);
            if session.expect.is_some() {
                g.handoffs.unchecked += 1;
            }
            if matches!(end, SessionEnd::Churned) && session.left.is_none() {
                g.handoffs.unsettled += 1;
            }
        });
        left = session.left.take();
        match end {
            SessionEnd::Finished => break,
            SessionEnd::Churned => {
                resume_of = Some(welcome.you);
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
        Auth::DevToken => tokio::time::timeout(
            shared.connect_timeout,
            shared.target.dev_token(&plan.sub, &plan.name),
        )
        .await
        .map_err(|_| ConnectFailure::Timeout)?,
    }
}

type Ws = WebSocketStream<BotStream>;

/// TCP, TLS, upgrade (timed: the handshake), then the `welcome`.
async fn connect(
    plan: &Plan,
    shared: &Shared,
    token: &str,
) -> Result<(Ws, Welcome, Duration), ConnectFailure> {
    let started = Instant::now();
    let rcvbuf = (plan.role == Role::Abuser(AbuseMode::SlowReader)).then_some(SLOW_READER_RCVBUF);
    let mut ws = tokio::time::timeout(shared.connect_timeout, async {
        let stream = shared.target.connect(rcvbuf).await?;
        net::upgrade(stream, &plan.url, shared.protocol, token).await
    })
    .await
    .map_err(|_| ConnectFailure::Timeout)??;
    let handshake = started.elapsed();
    let encoding = shared.protocol.encoding();
    let welcome = tokio::time::timeout(shared.connect_timeout, async {
        loop {
            let bytes = match ws.next().await {
                Some(Ok(Message::Binary(b))) => b,
                Some(Ok(Message::Text(t))) => t.into(),
                Some(Ok(Message::Close(f))) => {
                    let code = f.map_or(1005, |f| u16::from(f.code));
                    return Err(ConnectFailure::NoWelcome(format!("closed with {code}")));
                }
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(ConnectFailure::NoWelcome(e.to_string())),
                None => return Err(ConnectFailure::NoWelcome("connection closed".into())),
            };
            return match wire::classify(encoding, &bytes, false) {
                Ok(Inbound::Welcome(w)) => Ok(w),
                Ok(other) => Err(ConnectFailure::NoWelcome(format!(
                    "first message was {other:?}"
                ))),
                Err(e) => Err(ConnectFailure::NoWelcome(e.to_string())),
            };
        }
    })
    .await
    .map_err(|_| ConnectFailure::NoWelcome("none within the connect timeout".into()))??;
    Ok((ws, welcome, handshake))
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
    behavior: Behavior,
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
    pings: [(u32, Option<Instant>); PING_SLOTS],
    next_ping: u32,
    wander: Wander,
    fight: Option<Control>,
    abuse_at: Instant,
    abused_at: Option<Instant>,
    /// False while a slow reader ignores its socket.
    reading: bool,
    last_error: Option<String>,
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
        Session {
            shared,
            role: plan.role,
            encoding: shared.protocol.encoding(),
            behavior: shared.behavior,
            // Churn checks the player's state across resumes, which takes entities.
            want_ents: shared.behavior == Behavior::Fight || shared.churn_per_s > 0.0,
            you: welcome.you,
            tick_rate,
            snap_period: Duration::from_secs_f64(1.0 / f64::from(snap_rate)),
            started: now,
            seq: 0,
            acked: 0,
            pending: VecDeque::with_capacity(PENDING_CAP),
            last_snap: None,
            pings: [(0, None); PING_SLOTS],
            next_ping: 1,
            wander: Wander::new(),
            fight: None,
            abuse_at,
            abused_at: None,
            reading: true,
            last_error: None,
            round: None,
            leaving: None,
            last_pos: None,
            left: None,
            expect: None,
            drop_now: false,
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
                msg = ws.next(), if self.reading => {
                    let bytes = match msg {
                        Some(Ok(Message::Binary(b))) => b,
                        Some(Ok(Message::Text(t))) => t.into(),
                        Some(Ok(Message::Close(f))) => {
                            // Send tungstenite's queued answer, briefly: the server is
                            // waiting for it before it lets go of the connection.
                            let _ = tokio::time::timeout(ANSWER_WAIT, ws.close(None)).await;
                            return self.closed(f.map_or(1005, |f| u16::from(f.code)));
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(_)) | None => return self.closed(1006),
                    };
                    self.on_data(&bytes, local);
                    if self.drop_now {
                        return drop_abruptly(ws);
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
                            return drop_abruptly(ws);
                        }
                        continue;
                    }
                    ticks = ticks.wrapping_add(1);
                    if self.tick(ws, now, ticks, local, rng).await.is_err() {
                        return match self.drain(ws).await {
                            Some(end) => end,
                            None => self.closed(1006),
                        };
                    }
                    if self.leaving.is_none() && self.churn_now(now, ticks, rng) {
                        self.leaving = Some(now);
                    }
                }
            }
        }
    }

    /// One tick's sends. `Err` when the connection broke.
    async fn tick(
        &mut self,
        ws: &mut Ws,
        now: Instant,
        ticks: u32,
        local: &mut Local,
        rng: &mut Rng,
    ) -> Result<(), WriteFailed> {
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
                        self.send_input(ws, now, Control::default(), local).await?;
                    }
                }
                AbuseMode::Oversize if first => {
                    let m = wire::oversize(self.encoding, self.shared.oversize_bytes);
                    self.send(ws, m, local).await?;
                }
                AbuseMode::Garbage if first => {
                    self.send(ws, wire::garbage(self.encoding), local).await?;
                }
                AbuseMode::SlowReader => self.reading = false,
                _ => {}
            }
        }
        let control = match self.behavior {
            // Coming to rest for a churn hand-off.
            _ if self.leaving.is_some() => Control::default(),
            Behavior::Idle => Control::default(),
            Behavior::Wander => self.wander.control(now.into_std(), rng),
            Behavior::Fight => match self.fight {
                Some(c) => c,
                None => self.wander.control(now.into_std(), rng),
            },
        };
        self.send_input(ws, now, control, local).await?;
        if ticks.is_multiple_of(self.tick_rate) {
            let id = self.next_ping;
            self.next_ping = self.next_ping.wrapping_add(1);
            self.pings[id as usize % PING_SLOTS] = (id, Some(now));
            local.c.pings_out += 1;
            self.send(ws, wire::ping(self.encoding, id), local).await?;
            self.shared
                .with_stats(|s| s.flush(self.role.group(), local));
        }
        Ok(())
    }

    fn churn_now(&self, now: Instant, ticks: u32, rng: &mut Rng) -> bool {
        self.role == Role::WellBehaved
            && self.shared.churn_per_s > 0.0
            && ticks.is_multiple_of(self.tick_rate)
            && now < self.shared.churn_until
            && rng.unit() < self.shared.churn_per_s
    }

    async fn send_input(
        &mut self,
        ws: &mut Ws,
        now: Instant,
        control: Control,
        local: &mut Local,
    ) -> Result<(), WriteFailed> {
        self.seq = self.seq.wrapping_add(1);
        if self.pending.len() >= PENDING_CAP {
            self.pending.pop_front();
            local.c.ack_samples_dropped += 1;
        }
        self.pending.push_back((self.seq, now));
        local.c.inputs_out += 1;
        self.send(ws, wire::input(self.encoding, self.seq, control), local)
            .await
    }

    async fn send(
        &mut self,
        ws: &mut Ws,
        m: Message,
        local: &mut Local,
    ) -> Result<(), WriteFailed> {
        local.c.messages_out += 1;
        local.c.bytes_out += wire::payload_len(&m) as u64;
        match tokio::time::timeout(WRITE_TIMEOUT, ws.send(m)).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(WriteFailed::Broken),
        }
    }

    fn on_data(&mut self, bytes: &[u8], local: &mut Local) {
        let now = Instant::now();
        local.c.messages_in += 1;
        local.c.bytes_in += bytes.len() as u64;
        match wire::classify(self.encoding, bytes, self.want_ents) {
            Ok(Inbound::Snap { ack, ents, .. }) => {
                local.c.snapshots += 1;
                if let Some(prev) = self.last_snap.replace(now) {
                    local.jitter((now - prev).abs_diff(self.snap_period));
                }
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
                if let Some(ents) = ents {
                    if self.behavior == Behavior::Fight {
                        self.fight = behavior::fight(self.you, &ents);
                    }
                    self.check_resume(&ents);
                    if self.leaving.is_some() {
                        self.settle(&ents);
                    }
                }
            }
            Ok(Inbound::Pong(p)) => {
                if let (id, Some(sent)) = self.pings[p.id as usize % PING_SLOTS]
                    && id == p.id
                {
                    self.pings[p.id as usize % PING_SLOTS].1 = None;
                    local.c.pongs_in += 1;
                    local.rtt(now - sent);
                }
            }
            Ok(Inbound::Error(e)) => self.last_error = Some(e.code),
            Ok(Inbound::RoundStart(round)) => self.round = Some(round),
            Ok(Inbound::Welcome(_) | Inbound::Other) => {}
            Err(_) => local.c.decode_errors += 1,
        }
    }

    /// After a resume: the first snapshot that shows the player settles the check.
    fn check_resume(&mut self, ents: &[rallypoint_protocol::entity::Entity]) {
        let (Some(before), Some(round)) = (self.expect, self.round) else {
            return;
        };
        let Some(verdict) = handoff::compare(self.you, &before, round, ents) else {
            return;
        };
        self.expect = None;
        self.shared.with_stats(|s| {
            let h = &mut s.group(self.role.group()).handoffs;
            match verdict {
                Verdict::Kept => h.kept += 1,
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
    fn settle(&mut self, ents: &[rallypoint_protocol::entity::Entity]) {
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

    fn closed(&mut self, code: u16) -> SessionEnd {
        SessionEnd::Closed {
            code,
            error: self.last_error.take(),
        }
    }

    /// Reads what is left after a write failed, or for a slow reader at the end: the
    /// server's `error` and close frame tell why it ended, and the snapshots still
    /// buffered carry the last acks (used for reconciliation only: their latency is the
    /// bot's own doing). `None`: the connection is still open (data kept coming for
    /// [`DRAIN_WAIT`]).
    async fn drain(&mut self, ws: &mut Ws) -> Option<SessionEnd> {
        let encoding = self.encoding;
        let mut last_error = self.last_error.take();
        let mut acked = self.acked;
        let res = tokio::time::timeout(DRAIN_WAIT, async {
            loop {
                let bytes = match ws.next().await {
                    Some(Ok(Message::Close(f))) => return f.map_or(1005, |f| u16::from(f.code)),
                    Some(Ok(Message::Binary(b))) => b,
                    Some(Ok(Message::Text(t))) => t.into(),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return 1006,
                };
                match wire::classify(encoding, &bytes, false) {
                    Ok(Inbound::Snap { ack, .. }) => acked = acked.max(ack),
                    Ok(Inbound::Error(e)) => last_error = Some(e.code),
                    _ => {}
                }
            }
        })
        .await;
        self.last_error = last_error;
        self.acked = acked;
        res.ok().map(|code| self.closed(code))
    }
}

/// Ends the session like a phone losing its network: a reset instead of a close frame or
/// even a FIN.
fn drop_abruptly(ws: &mut Ws) -> SessionEnd {
    let _ = ws.get_ref().tcp().set_zero_linger();
    SessionEnd::Churned
}

/// Sends our close frame (1000) and waits, bounded, for the server's.
async fn close_normally(ws: &mut Ws) -> SessionEnd {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: "run over".into(),
    };
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        if ws.close(Some(frame)).await.is_ok() {
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
    SessionEnd::Finished
}
