//! The cluster directory against a real Redis: each trial starts its own `redis-server`
//! ([`RedisServer`]) and several directory clients, as several nodes would.
//!
//! Needs `redis-server` ([`Need::Redis`]); without it the trials are reported as ignored,
//! unless `RALLYPOINT_REQUIRE_REDIS=1` (set by CI), where they fail.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use libtest_mimic::Trial;
use rallypoint::cluster::{
    Agent, Claim, ClusterConfig, ClusterDirectory, ClusterTiming, DirectoryError, FencedWrite,
    HeldClaim, LeaseStatus, LossReason, MatchOutcome, MemberChange, NodeReport, Release,
    ReleaseOutcome, RenewOutcome, Reservation, RoomState,
};
use rallypoint::metrics::Metrics;
use rallypoint_tests::external::{Need, Needs, Tool};
use rallypoint_tests::external_trials;
use rallypoint_tests::redis::{Link, RedisServer};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// This module's trials.
pub fn trials(needs: &Needs) -> Vec<Trial> {
    external_trials!(needs, Need::Redis => [
        racing_claims_have_exactly_one_winner,
        a_lapsed_claim_is_taken_over_with_a_higher_epoch_and_the_stale_owner_is_fenced,
        concurrent_reservations_never_overfill_a_room,
        concurrent_matches_fill_rooms_before_opening_new_ones,
        match_decisions_follow_owners_placements_drains_and_returning_players,
        redis_restarted_gives_typed_errors_then_nodes_re_register_what_they_hold,
        after_redis_lost_its_data_the_higher_epoch_keeps_the_room,
        a_frozen_redis_gives_typed_errors_within_the_call_timeout,
        a_node_cut_off_from_redis_loses_its_room_to_a_higher_epoch,
        a_node_cut_off_briefly_keeps_its_room_and_one_cut_off_too_long_gives_it_up,
    ])
}

/// Short leases so takeovers happen within a test: 1 s lease, 200 ms heartbeat.
fn timing() -> ClusterTiming {
    ClusterTiming {
        lease: Duration::from_millis(1000),
        heartbeat: Duration::from_millis(200),
        call_timeout: Duration::from_millis(250),
        lease_margin: Duration::from_millis(50),
        lapse_grace: Duration::from_secs(3),
        reservation: Duration::from_secs(2),
        retention: Duration::from_secs(60),
        checkpoint_interval: Duration::from_millis(500),
        max_checkpoint_bytes: 1024,
        key_prefix: "rp".into(),
    }
}

/// [`timing`] for a trial that makes dozens of calls at once and counts reservations
/// across several steps: calls may take 2 s on a loaded machine, and a reservation lasts
/// 8 s, so none runs out before the trial means it to.
fn patient_timing() -> ClusterTiming {
    ClusterTiming {
        call_timeout: Duration::from_secs(2),
        reservation: Duration::from_secs(8),
        ..timing()
    }
}

fn directory_with(url: &str, node: &str, metrics: Arc<Metrics>) -> Arc<ClusterDirectory> {
    directory_timed(url, node, metrics, timing())
}

fn directory_timed(
    url: &str,
    node: &str,
    metrics: Arc<Metrics>,
    timing: ClusterTiming,
) -> Arc<ClusterDirectory> {
    let config = ClusterConfig {
        redis_url: url.to_owned(),
        node_id: node.to_owned(),
        public_url: Some(format!("ws://{node}.test:7777")),
        timing,
    };
    let public_url = config.public_url_for(([127, 0, 0, 1], 7777).into(), false);
    Arc::new(ClusterDirectory::new(&config, public_url, metrics).expect("directory client"))
}

fn directory(url: &str, node: &str) -> Arc<ClusterDirectory> {
    directory_with(url, node, Arc::new(Metrics::new()))
}

fn report(room_capacity: u32, draining: bool) -> NodeReport {
    NodeReport {
        max_rooms: 10,
        room_capacity,
        rooms: 0,
        players: 0,
        draining,
    }
}

async fn registered(url: &str, node: &str) -> Arc<ClusterDirectory> {
    let dir = directory(url, node);
    dir.register(&report(4, false)).await.expect("register");
    dir
}

/// Heartbeats for a node every 200 ms until dropped: its registration and the claims
/// given to [`KeepAlive::hold`]; `draining` is read at each beat.
struct KeepAlive {
    draining: Arc<AtomicBool>,
    claims: Arc<Mutex<Vec<HeldClaim>>>,
    task: JoinHandle<()>,
}

impl KeepAlive {
    fn start(dir: &Arc<ClusterDirectory>) -> KeepAlive {
        let draining = Arc::new(AtomicBool::new(false));
        let claims = Arc::new(Mutex::new(Vec::new()));
        let (dir, flag, held) = (Arc::clone(dir), Arc::clone(&draining), Arc::clone(&claims));
        let task = tokio::spawn(async move {
            loop {
                let claims = held.lock().unwrap().clone();
                let report = report(4, flag.load(Ordering::Relaxed));
                let _ = dir.heartbeat(&report, &claims).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        KeepAlive {
            draining,
            claims,
            task,
        }
    }

    fn hold(&self, room: &str, epoch: u64) {
        self.claims.lock().unwrap().push(held(room, epoch));
    }

    async fn drain(&self, dir: &ClusterDirectory) {
        self.draining.store(true, Ordering::Relaxed);
        dir.register(&report(4, true))
            .await
            .expect("report draining");
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Waits (up to `within`) until `check` holds, polling every 50 ms.
async fn eventually(within: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn held(room: &str, epoch: u64) -> HeldClaim {
    HeldClaim {
        room: room.into(),
        epoch,
        capacity: 4,
    }
}

fn won_epoch(claim: &Claim) -> u64 {
    match claim {
        Claim::Won { epoch, .. } => *epoch,
        other => panic!("expected a won claim, got {other:?}"),
    }
}

fn lost_to(epoch: u64, owner: &str) -> RenewOutcome {
    RenewOutcome::Lost {
        epoch,
        owner: Some(owner.into()),
    }
}

fn superseded(epoch: u64, owner: &str) -> FencedWrite {
    FencedWrite::Superseded {
        epoch,
        owner: Some(owner.into()),
    }
}

async fn racing_claims_have_exactly_one_winner(redis: Tool) {
    let server = RedisServer::start(redis.path());
    let mut dirs = Vec::new();
    for i in 0..5 {
        dirs.push(registered(&server.url(), &format!("n{i}")).await);
    }
    for round in 0..20 {
        let room = format!("race-{round}");
        // 50 claims of one room at once, ten from each of five nodes.
        let claims = dirs
            .iter()
            .cycle()
            .skip(round % 5)
            .take(50)
            .map(|d| async { (d.node_id().to_owned(), d.claim(&room, 4).await) });
        let answers = join_all(claims).await;
        let winners: Vec<_> = answers
            .iter()
            .filter(|(_, c)| matches!(c, Ok(Claim::Won { .. })))
            .collect();
        assert_eq!(winners.len(), 1, "{room}: {answers:?}");
        let winner = &winners[0].0;
        for (node, answer) in &answers {
            match answer.as_ref().expect("claim answered") {
                Claim::Won { epoch, checkpoint } => assert_eq!((*epoch, checkpoint), (1, &None)),
                Claim::Held { epoch, checkpoint } => {
                    assert_eq!((node, *epoch, checkpoint), (winner, 1, &None));
                }
                Claim::Elsewhere {
                    node: owner,
                    url,
                    placed,
                } => {
                    assert_eq!(owner, winner);
                    assert_eq!(url, &format!("ws://{winner}.test:7777"));
                    assert!(!placed);
                }
                other => panic!("{room}: unexpected {other:?}"),
            }
        }
    }
}

async fn a_lapsed_claim_is_taken_over_with_a_higher_epoch_and_the_stale_owner_is_fenced(
    redis: Tool,
) {
    let server = RedisServer::start(redis.path());
    let a = registered(&server.url(), "a").await;
    let b = registered(&server.url(), "b").await;
    let _b_alive = KeepAlive::start(&b);
    assert_eq!(won_epoch(&a.claim("arena", 4).await.unwrap()), 1);
    assert_eq!(
        a.write_checkpoint("arena", 1, b"state-a").await.unwrap(),
        FencedWrite::Written
    );
    assert_eq!(
        b.claim("arena", 4).await.unwrap(),
        Claim::Elsewhere {
            node: "a".into(),
            url: "ws://a.test:7777".into(),
            placed: false
        }
    );
    // `a` stops renewing (paused); its lease lapses on the Redis clock and `b` takes over.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let Claim::Won { epoch, checkpoint } = b.claim("arena", 4).await.unwrap() else {
        panic!("b should win the lapsed room");
    };
    assert_eq!(epoch, 2);
    let checkpoint = checkpoint.expect("the checkpoint comes with the claim");
    assert_eq!(
        (checkpoint.bytes.as_slice(), checkpoint.epoch),
        (&b"state-a"[..], 1)
    );

    // The stale owner wakes up: nothing it does lands.
    assert_eq!(a.renew(&held("arena", 1)).await.unwrap(), lost_to(2, "b"));
    assert_eq!(
        a.write_checkpoint("arena", 1, b"late").await.unwrap(),
        superseded(2, "b")
    );
    assert_eq!(
        a.members("arena", 1, MemberChange::Join("x"))
            .await
            .unwrap(),
        superseded(2, "b")
    );
    assert_eq!(
        a.release("arena", 1, Release::HandOff).await.unwrap(),
        ReleaseOutcome::NotOwner {
            epoch: 2,
            owner: Some("b".into())
        }
    );
    assert_eq!(
        b.write_checkpoint("arena", 2, b"state-b").await.unwrap(),
        FencedWrite::Written
    );
    let read = b.read_checkpoint("arena").await.unwrap().unwrap();
    assert_eq!((read.bytes.as_slice(), read.epoch), (&b"state-b"[..], 2));
    assert!(matches!(
        b.write_checkpoint("arena", 2, &[0; 1025]).await,
        Err(DirectoryError::CheckpointTooLarge {
            size: 1025,
            limit: 1024
        })
    ));

    // A hand-off keeps the checkpoint; the next claim gets the next epoch.
    assert_eq!(
        b.release("arena", 2, Release::HandOff).await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(
        b.renew(&held("arena", 2)).await.unwrap(),
        RenewOutcome::Lost {
            epoch: 2,
            owner: None
        },
        "a released claim is not renewed back"
    );
    a.register(&report(4, false)).await.unwrap();
    let Claim::Won { epoch, checkpoint } = a.claim("arena", 4).await.unwrap() else {
        panic!("a should win the handed-over room");
    };
    assert_eq!(epoch, 3);
    assert_eq!(checkpoint.unwrap().bytes, b"state-b");

    // A close forgets the room but not its epoch.
    assert_eq!(
        a.release("arena", 3, Release::Close).await.unwrap(),
        ReleaseOutcome::Released
    );
    assert_eq!(b.where_is("arena").await.unwrap(), None);
    assert_eq!(b.read_checkpoint("arena").await.unwrap(), None);
    assert_eq!(
        b.claim("arena", 4).await.unwrap(),
        Claim::Won {
            epoch: 4,
            checkpoint: None
        }
    );
}

async fn concurrent_reservations_never_overfill_a_room(redis: Tool) {
    let server = RedisServer::start(redis.path());
    let patient = |node| directory_timed(&server.url(), node, Arc::default(), patient_timing());
    let owner = patient("owner");
    owner.register(&report(4, false)).await.expect("register");
    let alive = KeepAlive::start(&owner);
    let matchers = [patient("m0"), patient("m1"), patient("m2")];
    assert_eq!(won_epoch(&owner.claim("arena", 4).await.unwrap()), 1);
    alive.hold("arena", 1);

    let reserve_all = async |accounts: std::ops::Range<u32>| {
        let calls = accounts.map(|i| {
            let m = &matchers[i as usize % 3];
            async move {
                let account = format!("acct-{i}");
                (
                    account.clone(),
                    m.reserve_seat("arena", &account, None).await.unwrap(),
                )
            }
        });
        join_all(calls).await
    };
    let seated = |answers: &[(String, Reservation)]| -> Vec<String> {
        answers
            .iter()
            .filter(|(_, r)| matches!(r, Reservation::Reserved(_)))
            .map(|(a, _)| a.clone())
            .collect()
    };

    let first = reserve_all(0..40).await;
    let winners = seated(&first);
    assert_eq!(winners.len(), 4, "{first:?}");
    assert!(
        first
            .iter()
            .all(|(_, r)| matches!(r, Reservation::Reserved(_) | Reservation::Full))
    );
    let at = owner.where_is("arena").await.unwrap().unwrap();
    assert_eq!(
        (at.state, at.members, at.reserved),
        (RoomState::Owned, 0, 4)
    );

    // A join turns a reservation into a member: still four seats taken.
    let joined = FencedWrite::Written;
    assert_eq!(
        owner
            .members("arena", 1, MemberChange::Join(&winners[0]))
            .await
            .unwrap(),
        joined
    );
    let at = owner.where_is("arena").await.unwrap().unwrap();
    assert_eq!((at.members, at.reserved), (1, 3));
    assert!(seated(&reserve_all(100..120).await).is_empty());
    // The same account asking again keeps its seat (and a member is told it resumes).
    let again = matchers[0]
        .reserve_seat("arena", &winners[1], None)
        .await
        .unwrap();
    assert!(
        matches!(again, Reservation::Reserved(ref a) if !a.resume),
        "{again:?}"
    );
    let member = matchers[1]
        .reserve_seat("arena", &winners[0], None)
        .await
        .unwrap();
    assert!(
        matches!(member, Reservation::Reserved(ref a) if a.resume),
        "{member:?}"
    );

    // A seat-holder matched into another room gives its seat here back.
    let elsewhere = owner.reserve_seat("side", &winners[1], None).await.unwrap();
    assert_eq!(elsewhere, Reservation::Gone, "nobody serves `side` yet");
    assert_eq!(won_epoch(&owner.claim("side", 4).await.unwrap()), 1);
    alive.hold("side", 1);
    let moved = matchers[2]
        .reserve_seat("side", &winners[1], None)
        .await
        .unwrap();
    assert!(
        matches!(moved, Reservation::Reserved(ref a) if a.room == "side"),
        "{moved:?}"
    );
    let at = owner.where_is("arena").await.unwrap().unwrap();
    assert_eq!((at.members, at.reserved), (1, 2));
    assert_eq!(seated(&reserve_all(150..170).await).len(), 1);

    // One member leaves: exactly one seat opens, whatever the concurrency.
    owner
        .members("arena", 1, MemberChange::Leave(&winners[0]))
        .await
        .unwrap();
    assert_eq!(seated(&reserve_all(200..230).await).len(), 1);

    // Reservations run out (8 s here): the seats come back.
    eventually(
        Duration::from_secs(20),
        "the reservations run out",
        async || {
            let at = owner.where_is("arena").await.unwrap().unwrap();
            (at.members, at.reserved) == (0, 0)
        },
    )
    .await;
    assert_eq!(seated(&reserve_all(300..320).await).len(), 4);
}

async fn concurrent_matches_fill_rooms_before_opening_new_ones(redis: Tool) {
    let server = RedisServer::start(redis.path());
    let nodes = [
        registered(&server.url(), "a").await,
        registered(&server.url(), "b").await,
        registered(&server.url(), "c").await,
    ];
    let _alive: Vec<_> = nodes.iter().map(KeepAlive::start).collect();
    // 30 players match at once through the three nodes; rooms hold 4.
    let calls = (0..30u32).map(|i| {
        let via = &nodes[i as usize % 3];
        async move { via.match_player(&format!("p{i}"), None).await.unwrap() }
    });
    let outcomes = join_all(calls).await;
    let mut per_room = std::collections::BTreeMap::<String, (String, u32)>::new();
    for outcome in &outcomes {
        let MatchOutcome::Assigned(a) = outcome else {
            panic!("every player gets a seat: {outcomes:?}");
        };
        assert!(!a.resume);
        let entry = per_room
            .entry(a.room.clone())
            .or_insert((a.node.clone(), 0));
        assert_eq!(entry.0, a.node, "one node per room");
        entry.1 += 1;
    }
    assert!(per_room.values().all(|(_, n)| *n <= 4), "{per_room:?}");
    assert_eq!(per_room.len(), 8, "30 players in rooms of 4: {per_room:?}");
    let snap = nodes[0].snapshot(None).await.unwrap();
    assert_eq!(snap.rooms.len(), 8);
    assert!(snap.rooms.iter().all(|r| r.taken() <= r.capacity));
    // New rooms went to the least-loaded node each time: spread over all three.
    for node in ["a", "b", "c"] {
        let hosted = per_room.values().filter(|(n, _)| n == node).count();
        assert!(
            (2..=3).contains(&hosted),
            "{node} hosts {hosted}: {per_room:?}"
        );
    }
}

async fn match_decisions_follow_owners_placements_drains_and_returning_players(redis: Tool) {
    let server = RedisServer::start(redis.path());
    let a = registered(&server.url(), "a").await;
    let b = registered(&server.url(), "b").await;
    let c = registered(&server.url(), "c").await;
    let a_alive = KeepAlive::start(&a);
    let b_alive = KeepAlive::start(&b);
    let c_alive = KeepAlive::start(&c);
    let assigned = |o: MatchOutcome| match o {
        MatchOutcome::Assigned(a) => (a.room.clone(), a.node.clone(), a.resume, a.play_url()),
        other => panic!("expected a seat, got {other:?}"),
    };

    // A named room nobody serves is placed on the least-loaded node (all empty: "a").
    let (room, node, resume, url) = assigned(c.match_player("p1", Some("arena")).await.unwrap());
    assert_eq!(
        (room.as_str(), node.as_str(), resume),
        ("arena", "a", false)
    );
    assert_eq!(url, "ws://a.test:7777/play?room=arena");
    // Concurrent matchers see the placement; a direct /play on another node is sent there.
    assert_eq!(
        assigned(b.match_player("p2", Some("arena")).await.unwrap()).1,
        "a"
    );
    assert_eq!(
        b.claim("arena", 4).await.unwrap(),
        Claim::Elsewhere {
            node: "a".into(),
            url: "ws://a.test:7777".into(),
            placed: true
        }
    );
    assert_eq!(won_epoch(&a.claim("arena", 4).await.unwrap()), 1);
    a_alive.hold("arena", 1);
    let joined = a
        .members("arena", 1, MemberChange::Join("p1"))
        .await
        .unwrap();
    assert_eq!(joined, FencedWrite::Written);

    // A returning player goes back whatever it asks for.
    let back = assigned(b.match_player("p1", Some("elsewhere")).await.unwrap());
    assert_eq!(
        (back.0.as_str(), back.1.as_str(), back.2),
        ("arena", "a", true)
    );
    // Any room: the fullest with a free seat (arena: p1 member, p2 reserved).
    assert_eq!(
        assigned(c.match_player("p3", None).await.unwrap()).0,
        "arena"
    );
    assert_eq!(
        assigned(c.match_player("p4", None).await.unwrap()).0,
        "arena"
    );
    assert_eq!(
        c.match_player("p5", Some("arena")).await.unwrap(),
        MatchOutcome::RoomFull
    );
    // Arena is full: a new room on the least-loaded node ("b").
    let (new_room, node, _, _) = assigned(a.match_player("p6", None).await.unwrap());
    assert_eq!(node, "b");
    assert!(new_room.starts_with("m-"), "{new_room}");

    // A draining node gets no new players and no new rooms.
    b_alive.drain(&b).await;
    let (room, node, _, _) = assigned(a.match_player("p7", None).await.unwrap());
    assert_ne!(room, new_room);
    assert_eq!(node, "c");
    c_alive.drain(&c).await;
    a_alive.drain(&a).await;
    assert_eq!(
        a.match_player("p8", None).await.unwrap(),
        MatchOutcome::NoCapacity
    );
    drop(c_alive);
    c.register(&report(4, false)).await.unwrap();
    let _c_alive = KeepAlive::start(&c);

    // The owner of arena dies: a returning member reopens it on a live node, from its
    // checkpoint, with the next epoch.
    let ckpt = a.write_checkpoint("arena", 1, b"arena@1").await.unwrap();
    assert_eq!(ckpt, FencedWrite::Written);
    drop(a_alive);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let orphan = c.where_is("arena").await.unwrap().unwrap();
    assert_eq!((orphan.state, orphan.members), (RoomState::Orphan, 1));
    let (room, node, resume, _) = assigned(b.match_player("p1", None).await.unwrap());
    assert_eq!((room.as_str(), node.as_str(), resume), ("arena", "c", true));
    let Claim::Won { epoch, checkpoint } = c.claim("arena", 4).await.unwrap() else {
        panic!("c reopens arena");
    };
    assert_eq!((epoch, checkpoint.unwrap().bytes), (2, b"arena@1".to_vec()));

    // The reopened room's members are those of its checkpoint (p1 never came back).
    let restored = ["p9".to_owned()];
    let synced = c
        .members("arena", 2, MemberChange::Sync(&restored))
        .await
        .unwrap();
    assert_eq!(synced, FencedWrite::Written);
    let at = c.where_is("arena").await.unwrap().unwrap();
    assert_eq!(
        (at.state, at.node.as_deref(), at.members),
        (RoomState::Owned, Some("c"), 1)
    );
    let snap = c.snapshot(Some("p1")).await.unwrap();
    assert_eq!(snap.account, None, "p1 no longer points at arena");
    let snap = c.snapshot(Some("p9")).await.unwrap();
    assert!(snap.account.is_some_and(|a| a.room == "arena" && a.member));
}

async fn redis_restarted_gives_typed_errors_then_nodes_re_register_what_they_hold(redis: Tool) {
    let mut server = RedisServer::start(redis.path());
    let metrics = Arc::new(Metrics::new());
    let agent = Agent::new(
        directory_with(&server.url(), "a", Arc::clone(&metrics)),
        Arc::clone(&metrics),
        10,
        4,
    );
    agent.beat().await;
    assert_eq!(agent.node_status(Instant::now()), Some(LeaseStatus::Held));
    assert_eq!(won_epoch(&agent.claim("arena").await.unwrap()), 1);
    let written = agent.write_checkpoint("arena", b"s1").await.unwrap();
    assert_eq!(written, Some(FencedWrite::Written));
    let (stop, stopped) = watch::channel(false);
    let run = tokio::spawn(Arc::clone(&agent).run(stopped));
    let b = directory(&server.url(), "b");

    server.stop();
    let started = Instant::now();
    let err = b.snapshot(None).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
    assert_eq!(err.code(), "directory_unavailable");
    let err = b.match_player("p1", None).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // The room's lease runs out on the node's clock: renewing, then lapsed, not lost.
    eventually(Duration::from_secs(3), "the claim lapses", async || {
        agent.status("arena", Instant::now()).unwrap().status == LeaseStatus::Lapsed
    })
    .await;

    server.restart();
    // Redis came back empty: the next heartbeats re-register the node and re-take the
    // claim with its epoch.
    eventually(
        Duration::from_secs(3),
        "the node re-registers its room",
        async || {
            let Ok(snap) = b.snapshot(None).await else {
                return false;
            };
            let room = snap.room("arena");
            snap.node("a").is_some() && room.is_some_and(|r| r.owner.as_deref() == Some("a"))
        },
    )
    .await;
    eventually(
        Duration::from_secs(1),
        "the node holds its room again",
        async || status(&agent) == LeaseStatus::Held,
    )
    .await;
    let lease = agent.status("arena", Instant::now()).unwrap();
    assert_eq!(
        (lease.epoch, lease.retaken),
        (1, 1),
        "same epoch, re-taken once"
    );
    let b_reg = b.register(&report(4, false)).await.unwrap();
    assert!(b_reg.registered_anew);
    assert!(matches!(
        b.claim("arena", 4).await.unwrap(),
        Claim::Elsewhere { ref node, .. } if node == "a"
    ));
    assert_eq!(
        agent.write_checkpoint("arena", b"s2").await.unwrap(),
        Some(FencedWrite::Written)
    );
    let text = metrics.encode();
    assert!(!text.contains("rallypoint_leases_lost_total{"), "{text}");
    assert!(
        text.contains("rallypoint_directory_errors_total{op=\"heartbeat\",kind=\"unavailable\"}"),
        "{text}"
    );

    // Leaving hands the room over.
    stop.send_replace(true);
    run.await.unwrap();
    let at = b.where_is("arena").await.unwrap().unwrap();
    assert_eq!((at.state, at.epoch), (RoomState::Orphan, 1));
    assert!(b.snapshot(None).await.unwrap().node("a").is_none());
}

async fn after_redis_lost_its_data_the_higher_epoch_keeps_the_room(redis: Tool) {
    let mut server = RedisServer::start(redis.path());
    let a = registered(&server.url(), "a").await;
    let b = directory(&server.url(), "b");
    // `a` holds "high" at epoch 2 and "tie" at epoch 1.
    assert_eq!(won_epoch(&a.claim("high", 4).await.unwrap()), 1);
    a.release("high", 1, Release::HandOff).await.unwrap();
    assert_eq!(won_epoch(&a.claim("high", 4).await.unwrap()), 2);
    assert_eq!(won_epoch(&a.claim("tie", 4).await.unwrap()), 1);

    server.restart();
    // Before `a` re-registers, `b` opens both rooms afresh, at epoch 1.
    eventually(Duration::from_secs(3), "b registers", async || {
        b.register(&report(4, false)).await.is_ok()
    })
    .await;
    assert_eq!(won_epoch(&b.claim("high", 4).await.unwrap()), 1);
    assert_eq!(won_epoch(&b.claim("tie", 4).await.unwrap()), 1);

    let beat = a
        .heartbeat(&report(4, false), &[held("high", 2), held("tie", 1)])
        .await
        .unwrap();
    assert!(beat.registered_anew);
    assert_eq!(
        beat.rooms,
        vec![RenewOutcome::Reacquired, lost_to(1, "b")],
        "the higher epoch wins; on a tie the recorded claim stays"
    );
    assert_eq!(b.renew(&held("high", 1)).await.unwrap(), lost_to(2, "a"));
    assert_eq!(
        b.renew(&held("tie", 1)).await.unwrap(),
        RenewOutcome::Renewed
    );
    // One owner each.
    let snap = b.snapshot(None).await.unwrap();
    assert_eq!(snap.room("high").unwrap().owner.as_deref(), Some("a"));
    assert_eq!(snap.room("tie").unwrap().owner.as_deref(), Some("b"));
}

async fn a_frozen_redis_gives_typed_errors_within_the_call_timeout(redis: Tool) {
    let server = RedisServer::start(redis.path());
    let a = registered(&server.url(), "a").await;
    // Redis has the claim script from now on: a claim is one EVALSHA.
    assert_eq!(won_epoch(&a.claim("before", 4).await.unwrap()), 1);

    // A claim sent to a frozen Redis waits in its socket; its caller gives up on it.
    // Redis runs it on waking (well within `a`'s lease), past its deadline: it changes
    // nothing.
    server.freeze();
    let err = a.claim("held-up", 4).await.unwrap_err();
    assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
    server.thaw();
    eventually(Duration::from_secs(3), "calls succeed again", async || {
        a.register(&report(4, false)).await.is_ok()
    })
    .await;
    assert_eq!(a.where_is("held-up").await.unwrap(), None);

    server.freeze();
    for _ in 0..3 {
        let started = Instant::now();
        let err = a.snapshot(None).await.unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, DirectoryError::Unavailable(_)), "{err:?}");
        assert!(took < Duration::from_millis(400), "{took:?}");
    }
    server.thaw();
    eventually(Duration::from_secs(3), "calls succeed again", async || {
        a.register(&report(4, false)).await.is_ok()
    })
    .await;
    assert_eq!(won_epoch(&a.claim("held-up", 4).await.unwrap()), 1);
}

/// An agent for node `a` that reaches Redis only through `link`, heartbeating.
async fn cut_off_node(link: &Link) -> (Arc<Agent>, Arc<Metrics>, watch::Sender<bool>) {
    let metrics = Arc::new(Metrics::new());
    let dir = directory_with(&link.url(), "a", Arc::clone(&metrics));
    let agent = Agent::new(dir, Arc::clone(&metrics), 10, 4);
    agent.beat().await;
    assert_eq!(won_epoch(&agent.claim("arena").await.unwrap()), 1);
    let written = agent.write_checkpoint("arena", b"a@1").await.unwrap();
    assert_eq!(written, Some(FencedWrite::Written));
    let (stop, stopped) = watch::channel(false);
    tokio::spawn(Arc::clone(&agent).run(stopped));
    (agent, metrics, stop)
}

fn status(agent: &Agent) -> LeaseStatus {
    agent.status("arena", Instant::now()).unwrap().status
}

async fn a_node_cut_off_from_redis_loses_its_room_to_a_higher_epoch(redis: Tool) {
    let server = RedisServer::start(redis.path());
    let link = Link::to(server.addr()).await;
    let (agent, metrics, _stop) = cut_off_node(&link).await;
    let b = registered(&server.url(), "b").await;
    let _b_alive = KeepAlive::start(&b);

    link.cut();
    // Its players stay (the room is lapsed, not lost) while Redis ends its lease...
    eventually(Duration::from_secs(2), "a's claim lapses", async || {
        status(&agent) == LeaseStatus::Lapsed
    })
    .await;
    // ...and `b` reopens the room from its last checkpoint with a higher epoch.
    let mut reopened = None;
    eventually(
        Duration::from_secs(2),
        "b takes the room over",
        async || {
            reopened = match b.claim("arena", 4).await {
                Ok(Claim::Won { epoch, checkpoint }) => Some((epoch, checkpoint)),
                _ => None,
            };
            reopened.is_some()
        },
    )
    .await;
    let (epoch, checkpoint) = reopened.unwrap();
    assert_eq!((epoch, checkpoint.unwrap().bytes), (2, b"a@1".to_vec()));
    assert_eq!(status(&agent), LeaseStatus::Lapsed);

    link.heal();
    eventually(
        Duration::from_secs(2),
        "a learns it lost the room",
        async || status(&agent) == LeaseStatus::Lost(LossReason::Superseded { epoch: 2 }),
    )
    .await;
    assert_eq!(
        agent.write_checkpoint("arena", b"late").await.unwrap(),
        None
    );
    let stale = agent
        .directory()
        .write_checkpoint("arena", 1, b"late")
        .await;
    assert_eq!(stale.unwrap(), superseded(2, "b"));
    let text = metrics.encode();
    assert!(
        text.contains("rallypoint_leases_lost_total{lease=\"room\",reason=\"superseded\"} 1"),
        "{text}"
    );
    let snap = b.snapshot(None).await.unwrap();
    assert_eq!(snap.room("arena").unwrap().owner.as_deref(), Some("b"));
}

async fn a_node_cut_off_briefly_keeps_its_room_and_one_cut_off_too_long_gives_it_up(redis: Tool) {
    let server = RedisServer::start(redis.path());
    let link = Link::to(server.addr()).await;
    let (agent, metrics, _stop) = cut_off_node(&link).await;
    let b = registered(&server.url(), "b").await;

    // Cut off for longer than the lease, but nobody claims the room meanwhile: when the
    // link heals the claim is re-taken with the same epoch and the players never knew.
    link.cut();
    eventually(Duration::from_secs(2), "a's claim lapses", async || {
        status(&agent) == LeaseStatus::Lapsed
    })
    .await;
    // Redis ends the lease a little later than the node does (see `lease`).
    eventually(
        Duration::from_secs(1),
        "Redis sees nobody serving",
        async || {
            let at = b.where_is("arena").await.unwrap().unwrap();
            at.state == RoomState::Orphan
        },
    )
    .await;
    link.heal();
    eventually(
        Duration::from_secs(2),
        "a holds the room again",
        async || status(&agent) == LeaseStatus::Held,
    )
    .await;
    assert_eq!(agent.status("arena", Instant::now()).unwrap().epoch, 1);
    let at = b.where_is("arena").await.unwrap().unwrap();
    assert_eq!(
        (at.state, at.node.as_deref()),
        (RoomState::Owned, Some("a"))
    );

    // Cut off past the grace (3 s here): the node gives the room up on its own.
    link.cut();
    eventually(Duration::from_secs(6), "a gives the room up", async || {
        status(&agent) == LeaseStatus::Lost(LossReason::Expired)
    })
    .await;
    link.heal();
    // The node registers afresh; the room it gave up stays given up.
    eventually(Duration::from_secs(2), "a registers again", async || {
        agent.node_status(Instant::now()) == Some(LeaseStatus::Held)
    })
    .await;
    assert_eq!(
        status(&agent),
        LeaseStatus::Lost(LossReason::Expired),
        "a room given up is not taken back"
    );
    // A renewal in flight as the node gave up may have landed: the claim then lapses
    // within one more lease, nobody renewing it.
    eventually(
        Duration::from_millis(1500),
        "nobody serves arena",
        async || {
            let snap = b.snapshot(None).await.unwrap();
            snap.node("a").is_some() && snap.room("arena").unwrap().host(snap.now_ms).is_none()
        },
    )
    .await;
    let text = metrics.encode();
    for lost in [
        "lease=\"room\",reason=\"expired\"} 1",
        "lease=\"node\",reason=\"expired\"} 1",
    ] {
        assert!(
            text.contains(&format!("rallypoint_leases_lost_total{{{lost}")),
            "{text}"
        );
    }
}
