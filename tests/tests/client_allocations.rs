//! The client library's steady state allocates nothing: against the real server, a
//! session that sends an input every tick and a ping every second, reads every
//! snapshot's header and decodes its entities into a reused vector, makes no heap
//! allocation once its buffers have grown (counted on the thread that runs it). Over v2
//! the session also applies every frame to its reconstructed state and checks every
//! state hash, and the player's own row is read on its own.

use std::time::Duration;

use rallypoint_client::{Endpoint, Kind, Received, Request, Session, TokenIn, Trust};
use rallypoint_protocol::Subprotocol;
use rallypoint_protocol::entity::Entity;
use rallypoint_protocol::message::Input;
use rallypoint_tests::{STEP_TIMEOUT, ServerBuilder};

/// What one stretch of play saw.
#[derive(Debug, Default)]
struct Seen {
    snapshots: u64,
    rows: usize,
    pongs: u64,
    /// v2: snapshots whose reconstructed state held the player's own row.
    own_rows: u64,
}

/// Plays for `ticks` ticks of `ticker`: one input per tick, one ping per 30.
async fn play(
    you: u32,
    session: &mut Session,
    ticker: &mut tokio::time::Interval,
    ents: &mut Vec<Entity>,
    ticks: u32,
) -> Seen {
    let mut seen = Seen::default();
    let mut sent = 0;
    while sent < ticks {
        tokio::select! {
            received = session.recv() => match received.expect("session open") {
                Received::Message(m) => match m.kind() {
                    Kind::Snap => {
                        let head = m.snapshot_into(ents).expect("snapshot decodes");
                        seen.snapshots += 1;
                        seen.rows = ents.len();
                        let own = m.state().and_then(|s| s.with_row_at(you, head.tick, Entity::from_row));
                        seen.own_rows += u64::from(own.is_some_and(|e| e.id() == you));
                    }
                    Kind::Pong => seen.pongs += u64::from(m.rtt().is_some()),
                    _ => {}
                },
                Received::Closed(c) => panic!("closed: {c:?}"),
            },
            _ = ticker.tick() => {
                sent += 1;
                let fire = sent % 2 == 0;
                let input = Input { seq: 0, mx: 1.0, my: 0.5, aim: 0.1, fire, view: None };
                session.queue_input(input).expect("open");
                if sent % 30 == 0 {
                    session.queue_ping().expect("open");
                }
                session.flush().await.expect("written");
            }
        }
    }
    seen
}

fn steady_state_allocations(protocol: Subprotocol) {
    let server = ServerBuilder::new(env!("CARGO_BIN_EXE_rallypoint-test-server")).start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let request = Request::new([protocol])
        .token(&server.token("frugal"), TokenIn::Header)
        .room("frugal");
    let mut session = rt.block_on(async {
        let e = Endpoint::resolve(&server.play_url(), &Trust::default())
            .await
            .expect("resolve")
            .with_timeout(STEP_TIMEOUT);
        e.join(&request).await.expect("join")
    });
    let you = session.welcome().expect("joined").you;
    let mut ents = Vec::new();
    // The ticker is the test's own timer (tokio boxes its sleep): made before counting.
    let mut ticker = rt.block_on(async { tokio::time::interval(Duration::from_millis(33)) });
    // Warm-up: the intro events, the first snapshots, buffers growing to the traffic — and
    // the player's projectiles reaching their steady number (the first ones live for
    // seconds), so no entity id beyond the ones already seen turns up while counting.
    let warm = rt.block_on(play(you, &mut session, &mut ticker, &mut ents, 120));
    assert!(warm.snapshots > 10, "{warm:?}");
    let mut seen = Seen::default();
    let counted = allocation_counter::measure(|| {
        seen = rt.block_on(play(you, &mut session, &mut ticker, &mut ents, 90));
    });
    assert!(seen.snapshots >= 60, "{protocol}: {seen:?}");
    assert!(seen.rows >= 1, "{protocol}: the player's own row at least");
    assert!(seen.pongs >= 2, "{protocol}: {seen:?}");
    assert!(
        session.acked() > 45,
        "inputs of the counted stretch were acknowledged"
    );
    if let Some(v2) = session.v2() {
        let s = v2.stats();
        assert_eq!(s.desyncs, 0, "{s:?}");
        assert!(s.keyframes >= 1 && s.deltas >= 60, "{s:?}");
        assert!(s.hashes_checked >= 3, "about one a second: {s:?}");
        assert_eq!(seen.own_rows, seen.snapshots, "{seen:?}");
    }
    assert_eq!(
        counted.count_total, 0,
        "{protocol}: {} allocations ({} bytes) in {} snapshots",
        counted.count_total, counted.bytes_total, seen.snapshots
    );
}

#[test]
fn msgpack_sessions_allocate_nothing_per_message() {
    steady_state_allocations(Subprotocol::V1MsgPack);
}

#[test]
fn json_sessions_allocate_nothing_per_message() {
    steady_state_allocations(Subprotocol::V1Json);
}

#[test]
fn v2_sessions_allocate_nothing_per_message() {
    steady_state_allocations(Subprotocol::V2MsgPack);
}
