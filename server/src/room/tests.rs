//! Room behaviour through the in-memory harness: joins, inputs and acks, fan-out,
//! slow consumers, resume, replacement, spectators, chat, hot reload.

use rallypoint_protocol::entity::{Entity, PLAYER_AWAY};
use rallypoint_protocol::message::{Event, Input, ServerMessage};
use rallypoint_protocol::{CloseReason, Encoding};

use super::harness::{Delivered, RoomHarness, TestClient};
use crate::arena::Arena;
use crate::arena::assets::ArenaAssets;
use crate::arena::sim::PlayerId;
use crate::assets::{self, Assets};
use crate::auth::Role;
use crate::config::Limits;
use crate::game::Game as _;

fn repo_assets() -> Assets<ArenaAssets> {
    assets::load_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../assets"
    )))
    .expect("shipped assets load")
}

fn harness() -> RoomHarness {
    RoomHarness::new(repo_assets(), Limits::default(), 7)
}

fn input(seq: u32, mx: f32, my: f32) -> Input {
    Input {
        seq,
        mx,
        my,
        aim: 0.0,
        fire: false,
        view: None,
    }
}

fn snaps(msgs: &[ServerMessage]) -> Vec<&rallypoint_protocol::message::Snap> {
    msgs.iter()
        .filter_map(|m| {
            if let ServerMessage::Snap(s) = m {
                Some(s)
            } else {
                None
            }
        })
        .collect()
}

fn player_row(snap: &rallypoint_protocol::message::Snap, id: u32) -> Option<Entity> {
    snap.ents
        .iter()
        .copied()
        .find(|e| matches!(e, Entity::Player { id: i, .. } if *i == id))
}

fn join(h: &mut RoomHarness, sub: &str, enc: Encoding) -> (TestClient, u32) {
    let c = h.join(sub, Role::Player, enc);
    h.tick();
    let msgs = c.messages();
    let ServerMessage::Welcome(w) = &msgs[0] else {
        panic!("welcome first, got {msgs:?}")
    };
    (c, w.you)
}

#[test]
fn a_newcomer_gets_welcome_map_round_and_roster_then_snapshots() {
    let mut h = harness();
    let (_a, a) = join(&mut h, "ana", Encoding::MsgPack);
    let b = h.join("bob", Role::Player, Encoding::Json);
    h.tick();
    let msgs = b.messages();
    let ServerMessage::Welcome(w) = &msgs[0] else {
        panic!()
    };
    assert_eq!(
        (w.room.as_str(), w.tick_rate, w.role.as_str(), w.resumed),
        ("harness", 30, "player", false)
    );
    assert!(
        matches!(&msgs[1], ServerMessage::Event(Event::Map(m)) if m.name == w.map && !m.walls.is_empty())
    );
    assert!(
        matches!(&msgs[2], ServerMessage::Event(Event::RoundStart { round: 1, end_tick, .. }) if *end_tick > w.tick)
    );
    let roster: Vec<u32> = msgs
        .iter()
        .filter_map(|m| match m {
            ServerMessage::Event(Event::Player { id, .. }) => Some(*id),
            _ => None,
        })
        .collect();
    assert!(roster.contains(&a) && roster.contains(&w.you), "{roster:?}");
    assert_eq!(
        roster.len(),
        2,
        "everyone is named exactly once: {roster:?}"
    );
    let snap = snaps(&msgs);
    assert_eq!(snap.len(), 1);
    assert!(player_row(snap[0], a).is_some() && player_row(snap[0], w.you).is_some());
}

#[test]
fn inputs_apply_in_seq_order_and_ack_the_last_applied() {
    let mut h = harness();
    let (c, you) = join(&mut h, "ana", Encoding::MsgPack);
    let start = h.world().player(PlayerId(you)).unwrap();
    for seq in 1..=3 {
        assert!(h.input(&c, input(seq, 1.0, 0.0)));
    }
    // Stale and repeated seqs are ignored.
    assert!(h.input(&c, input(2, -1.0, 0.0)));
    assert!(h.input(&c, input(3, -1.0, 0.0)));
    h.ticks(10);
    let msgs = c.messages();
    assert_eq!(snaps(&msgs).last().unwrap().ack, 3);
    let now = h.world().player(PlayerId(you)).unwrap();
    assert!(
        now.x > start.x + 0.5,
        "moved right: {} -> {}",
        start.x,
        now.x
    );
    assert_eq!(h.metrics().inputs_applied.get(), 3);
    assert_eq!(h.metrics().inputs_dropped.get(), 2);
}

#[test]
fn both_encodings_see_the_same_snapshot_and_each_its_own_ack() {
    let mut h = harness();
    let (m, you_m) = join(&mut h, "mp", Encoding::MsgPack);
    let (j, you_j) = join(&mut h, "js", Encoding::Json);
    h.input(&m, input(5, 0.0, 1.0));
    h.input(&j, input(9, 0.0, -1.0));
    h.tick();
    let sm = m.messages();
    let sj = j.messages();
    let (sm, sj) = (
        snaps(&sm).pop().unwrap().clone(),
        snaps(&sj).pop().unwrap().clone(),
    );
    assert_eq!((sm.ack, sj.ack), (5, 9));
    assert_eq!(sm.tick, sj.tick);
    assert_eq!(sm.ents, sj.ents);
    assert!(player_row(&sm, you_m).is_some() && player_row(&sm, you_j).is_some());
}

#[test]
fn a_client_that_does_not_read_gets_only_the_newest_snapshot_then_is_cut_off() {
    let mut h = harness();
    let (slow, _) = join(&mut h, "slow", Encoding::MsgPack);
    h.ticks(50);
    // 50 snapshots were produced; only the newest is held.
    let got = slow.messages();
    assert_eq!(snaps(&got).len(), 1);
    assert_eq!(snaps(&got)[0].tick, h.world().tick());
    assert!(h.metrics().slow_drops.get() >= 49);
    // Ordered messages pile up to the cap, then the session is told to close.
    let others: Vec<_> = (0..300)
        .map(|i| h.join(&format!("p{i}"), Role::Spectator, Encoding::MsgPack))
        .collect();
    h.tick();
    for o in &others {
        o.take();
    }
    let mut closed = false;
    for _ in 0..300 {
        h.chat(&others[0], "spam");
        h.tick();
        if slow
            .take()
            .contains(&Delivered::Close(CloseReason::SlowConsumer))
        {
            closed = true;
            break;
        }
        for o in &others {
            o.take();
        }
    }
    // `take` above drained `slow` each time, so it never overflowed; now stop reading.
    assert!(!closed, "a client that reads is never cut off");
    for _ in 0..300 {
        h.chat(&others[0], "spam");
        h.tick();
        for o in &others {
            o.take();
        }
    }
    assert!(
        slow.take()
            .contains(&Delivered::Close(CloseReason::SlowConsumer))
    );
    assert!(h.metrics().slow_disconnects.get() >= 1);
}

#[test]
fn a_dropped_player_is_kept_away_and_resumes_with_the_same_id_and_position() {
    let mut h = harness();
    let (c, you) = join(&mut h, "ana", Encoding::MsgPack);
    h.input(&c, input(1, 1.0, 1.0));
    h.ticks(15);
    c.drop_connection();
    h.ticks(2);
    let kept = h.world().player(PlayerId(you)).unwrap();
    assert!(kept.away);
    let (_other, watcher) = join(&mut h, "eve", Encoding::MsgPack);
    let _ = watcher;
    h.ticks(30);
    let c2 = h.join("ana", Role::Player, Encoding::Json);
    h.tick();
    let msgs = c2.messages();
    let ServerMessage::Welcome(w) = &msgs[0] else {
        panic!()
    };
    assert!(w.resumed);
    assert_eq!(w.you, you);
    let back = h.world().player(PlayerId(you)).unwrap();
    assert!(!back.away);
    assert_eq!((back.x, back.y, back.score), (kept.x, kept.y, kept.score));
    // seq counts per session: the new connection starts again at 1.
    h.input(&c2, input(1, 0.0, 0.0));
    h.tick();
    assert_eq!(snaps(&c2.messages()).last().unwrap().ack, 1);
}

#[test]
fn away_players_are_flagged_and_removed_after_the_grace_period() {
    let mut a = repo_assets();
    a.engine.resume_grace_s = 0.2;
    let mut h = RoomHarness::new(a, Limits::default(), 3);
    let (c, you) = join(&mut h, "ana", Encoding::MsgPack);
    let (w, _) = join(&mut h, "watcher", Encoding::MsgPack);
    c.drop_connection();
    h.ticks(2);
    let s = w.messages();
    let row = player_row(snaps(&s).last().unwrap(), you).unwrap();
    assert!(matches!(row, Entity::Player { flags, .. } if flags & PLAYER_AWAY != 0));
    h.advance(std::time::Duration::from_millis(250));
    let s = w.messages();
    assert!(s.contains(&ServerMessage::Event(Event::Leave { id: you })));
    assert!(player_row(snaps(&s).last().unwrap(), you).is_none());
    assert!(h.world().player(PlayerId(you)).is_none());
}

#[test]
fn leaving_on_purpose_removes_the_player_at_once() {
    let mut h = harness();
    let (c, you) = join(&mut h, "ana", Encoding::MsgPack);
    let (w, _) = join(&mut h, "watcher", Encoding::MsgPack);
    c.leave();
    h.ticks(2);
    assert!(
        w.messages()
            .contains(&ServerMessage::Event(Event::Leave { id: you }))
    );
    assert_eq!(
        h.handle()
            .shared
            .players
            .load(std::sync::atomic::Ordering::Acquire),
        1
    );
}

#[test]
fn a_second_connection_replaces_the_first() {
    let mut h = harness();
    let (first, you) = join(&mut h, "ana", Encoding::MsgPack);
    let second = h.join("ana", Role::Player, Encoding::MsgPack);
    h.tick();
    assert!(
        first
            .take()
            .contains(&Delivered::Close(CloseReason::Replaced))
    );
    let msgs = second.messages();
    let ServerMessage::Welcome(w) = &msgs[0] else {
        panic!()
    };
    assert_eq!((w.you, w.resumed), (you, true));
    // Still one seat and one entity for the account.
    assert_eq!(h.world().player_count(), 1);
    assert_eq!(
        h.handle()
            .shared
            .players
            .load(std::sync::atomic::Ordering::Acquire),
        1
    );
    // The old session's late inputs are ignored.
    h.input(&first, input(50, 1.0, 0.0));
    h.tick();
    assert_eq!(snaps(&second.messages()).last().unwrap().ack, 0);
}

#[test]
fn spectators_watch_without_an_entity() {
    let mut h = harness();
    let (_p, you) = join(&mut h, "player", Encoding::MsgPack);
    let s = h.join("watcher", Role::Spectator, Encoding::Json);
    h.tick();
    let msgs = s.messages();
    let ServerMessage::Welcome(w) = &msgs[0] else {
        panic!()
    };
    assert_eq!((w.you, w.role.as_str()), (0, "spectator"));
    let snap = snaps(&msgs).pop().unwrap().clone();
    assert!(player_row(&snap, you).is_some());
    assert_eq!(
        snap.ents
            .iter()
            .filter(|e| matches!(e, Entity::Player { .. }))
            .count(),
        1
    );
    assert_eq!(h.world().player_count(), 1);
}

#[test]
fn chat_reaches_everyone_in_order() {
    let mut h = harness();
    let (a, you) = join(&mut h, "ana", Encoding::MsgPack);
    let (b, _) = join(&mut h, "bob", Encoding::Json);
    for text in ["one", "two", "three"] {
        h.chat(&a, text);
    }
    h.tick();
    for c in [&a, &b] {
        let lines: Vec<_> = c
            .messages()
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Chat(c) => Some((c.from, c.name, c.text)),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines,
            [
                (you, "ana".into(), "one".into()),
                (you, "ana".into(), "two".into()),
                (you, "ana".into(), "three".into())
            ]
        );
    }
}

#[test]
fn new_assets_apply_whole_at_the_next_tick() {
    let mut h = harness();
    let (_c, _) = join(&mut h, "ana", Encoding::MsgPack);
    let mut a = repo_assets();
    a.game.tuning.player.max_speed = 2.0;
    a.game.tuning.weapon.damage = 50;
    a.engine.room_capacity = 4;
    a.version = "edited".into();
    let expected = a.game.tuning.clone();
    h.publish_assets(a);
    assert_eq!(
        h.world().tuning().player.max_speed,
        8.0,
        "nothing changes between ticks"
    );
    h.tick();
    assert_eq!(h.world().tuning(), &expected);
    assert_eq!(
        h.handle()
            .shared
            .player_capacity
            .load(std::sync::atomic::Ordering::Acquire),
        4
    );
}

#[test]
fn the_room_queue_is_bounded() {
    let mut h = harness();
    let (c, _) = join(&mut h, "ana", Encoding::MsgPack);
    let accepted = (1..=100_000)
        .take_while(|&seq| h.input(&c, input(seq, 0.0, 0.0)))
        .count();
    assert!((64..100_000).contains(&accepted), "{accepted}");
    h.tick();
}

#[test]
fn a_join_whose_session_already_ended_frees_its_seat_and_its_account() {
    let mut h = harness();
    let quick = h.join("quick", Role::Player, Encoding::MsgPack);
    let fan = h.join("fan", Role::Spectator, Encoding::MsgPack);
    quick.leave();
    fan.drop_connection();
    h.tick();
    let shared = &h.handle().shared;
    assert_eq!(shared.players.load(std::sync::atomic::Ordering::Acquire), 0);
    assert_eq!(
        shared.spectators.load(std::sync::atomic::Ordering::Acquire),
        0
    );
    assert_eq!(h.directory().account_room("quick"), None);
    assert_eq!(h.directory().account_room("fan"), None);
    assert_eq!(h.game().world().player_count(), 0);
}

#[test]
fn an_account_has_one_live_session_whatever_the_roles() {
    let mut h = harness();
    let first = h.join("fan", Role::Spectator, Encoding::MsgPack);
    h.tick();
    let second = h.join("fan", Role::Spectator, Encoding::Json);
    h.tick();
    assert!(
        first
            .take()
            .contains(&Delivered::Close(CloseReason::Replaced))
    );
    let player = h.join("fan", Role::Player, Encoding::MsgPack);
    h.tick();
    assert!(
        second
            .take()
            .contains(&Delivered::Close(CloseReason::Replaced))
    );
    assert_eq!(h.game().world().player_count(), 1);
    let _again = h.join("fan", Role::Spectator, Encoding::MsgPack);
    h.tick();
    assert!(
        player
            .take()
            .contains(&Delivered::Close(CloseReason::Replaced))
    );
    // The player was replaced, not left: it waits for its account to come back.
    assert!(h.game().world().players().next().is_some_and(|p| p.away));
    let shared = &h.handle().shared;
    assert_eq!(
        shared.spectators.load(std::sync::atomic::Ordering::Acquire),
        1
    );
}

#[test]
fn kick_reaches_spectators_too() {
    let mut h = harness();
    let fan = h.join("fan", Role::Spectator, Encoding::MsgPack);
    h.tick();
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    h.send(crate::room::Command::Kick {
        sub: "fan".into(),
        reply: tx,
    });
    h.tick();
    assert_eq!(rx.try_recv(), Ok(true));
    assert!(fan.take().contains(&Delivered::Close(CloseReason::Kicked)));
}

#[test]
fn the_grace_period_runs_on_the_room_clock() {
    let mut h = harness();
    let (c, you) = join(&mut h, "ana", Encoding::MsgPack);
    c.drop_connection();
    h.tick();
    // The shipped grace period is 15 s: still waiting just before it ends...
    h.advance(std::time::Duration::from_millis(14_900));
    assert!(
        h.game()
            .world()
            .player(PlayerId(you))
            .is_some_and(|p| p.away)
    );
    // ...and gone just after.
    h.advance(std::time::Duration::from_millis(200));
    assert!(h.game().world().player(PlayerId(you)).is_none());
    assert_eq!(h.directory().account_room("ana"), None);
}

#[test]
fn an_empty_room_closes_after_its_idle_time() {
    let mut h = harness();
    let (c, _) = join(&mut h, "ana", Encoding::MsgPack);
    c.leave();
    h.tick();
    assert!(!h.is_closed());
    // The shipped idle time is 30 s.
    h.advance(std::time::Duration::from_secs(29));
    assert!(!h.is_closed());
    h.advance(std::time::Duration::from_secs(2));
    assert!(h.is_closed());
}

#[test]
fn a_late_tick_catches_up_within_its_bound_and_counts_the_rest() {
    let mut h = harness();
    let start = h.game().world().tick();
    // Three seconds late at 30 Hz: 5 steps run (the bound), 85 are skipped.
    h.advance(std::time::Duration::from_secs(3));
    assert_eq!(h.game().world().tick() - start, 5);
    assert_eq!(h.metrics().overruns.get(), 85);
}

/// Assets whose only map is an open field with two spawn points side by side, so a
/// shooter always has a clear line.
fn open_field() -> Assets<ArenaAssets> {
    use crate::arena::assets::{MapDef, Point};
    let mut a = repo_assets();
    let field = MapDef {
        name: "field".into(),
        width: 40.0,
        height: 30.0,
        walls: Vec::new(),
        spawns: vec![Point { x: 14.0, y: 15.0 }, Point { x: 26.0, y: 15.0 }],
        pickups: Vec::new(),
    };
    a.game.maps = [("field".to_owned(), std::sync::Arc::new(field))].into();
    a.engine.maps = vec!["field".into()];
    a
}

/// `shooter` fires at `target` (who stands still) until it has scored once.
fn score_a_kill(h: &mut RoomHarness, shooter: &TestClient, you: u32, target: u32) {
    for seq in 1..=900 {
        let (me, them) = (
            h.world().player(PlayerId(you)).unwrap(),
            h.world().player(PlayerId(target)).unwrap(),
        );
        if me.score > 0 {
            return;
        }
        let aim = (them.y - me.y).atan2(them.x - me.x);
        let fire = Input {
            seq,
            mx: 0.0,
            my: 0.0,
            aim,
            fire: true,
            view: None,
        };
        h.input(shooter, fire);
        h.tick();
    }
    panic!("no kill in 30 s of shooting");
}

fn welcome_of(c: &TestClient) -> rallypoint_protocol::message::Welcome {
    match c.messages().into_iter().next() {
        Some(ServerMessage::Welcome(w)) => w,
        other => panic!("welcome first, got {other:?}"),
    }
}

#[test]
fn a_restored_room_brings_every_player_back_with_the_same_id_and_score() {
    let mut h = RoomHarness::new(open_field(), Limits::default(), 11);
    let (ana, ana_id) = join(&mut h, "ana", Encoding::MsgPack);
    let (_bob, bob_id) = join(&mut h, "bob", Encoding::Json);
    score_a_kill(&mut h, &ana, ana_id, bob_id);
    h.ticks(3);
    let before = h.world().player(PlayerId(ana_id)).unwrap();
    assert_eq!(before.score, 1);
    let mut members = h.poll_members().unwrap();
    members.sort();
    assert_eq!(members, ["ana", "bob"]);
    assert_eq!(h.poll_members(), None, "reported once per change");

    // Reopened elsewhere: both players wait, away, with what they had.
    let mut r: RoomHarness =
        RoomHarness::restore(open_field(), Limits::default(), &h.checkpoint()).unwrap();
    let kept = r.world().player(PlayerId(ana_id)).unwrap();
    assert!(kept.away);
    assert_eq!((kept.x, kept.y, kept.score), (before.x, before.y, 1));
    assert_eq!(r.world().player_count(), 2);
    assert_eq!(
        r.directory().account_room("ana"),
        None,
        "entered on the first tick"
    );
    r.tick();
    assert_eq!(
        r.directory().account_room("ana").as_deref(),
        Some("harness")
    );
    let seats = r
        .handle()
        .shared
        .players
        .load(std::sync::atomic::Ordering::Acquire);
    assert_eq!(seats, 2, "each restored player holds its seat");
    let mut members = r
        .poll_members()
        .expect("a reopened room reports its members");
    members.sort();
    assert_eq!(members, ["ana", "bob"]);

    // Ana reconnects (another encoding, another session): the same player, resumed.
    let back = r.join("ana", Role::Player, Encoding::Json);
    r.tick();
    let w = welcome_of(&back);
    assert_eq!(
        (w.you, w.resumed, w.room.as_str()),
        (ana_id, true, "harness")
    );
    r.tick();
    let snap = snaps(&back.messages()).last().copied().cloned().unwrap();
    let row = player_row(&snap, ana_id).unwrap();
    assert!(matches!(row, Entity::Player { score: 1, flags, .. } if flags & PLAYER_AWAY == 0));
    r.input(&back, input(1, 1.0, 0.0));
    r.tick();
    assert_eq!(snaps(&back.messages()).last().unwrap().ack, 1);
}

#[test]
fn a_restored_room_continues_exactly_as_the_original() {
    let mut h = RoomHarness::new(open_field(), Limits::default(), 5);
    let (ana, ana_id) = join(&mut h, "ana", Encoding::MsgPack);
    let (bob, bob_id) = join(&mut h, "bob", Encoding::MsgPack);
    score_a_kill(&mut h, &ana, ana_id, bob_id);
    h.input(&bob, input(1, 0.5, 0.5));
    h.ticks(2);
    ana.drop_connection();
    bob.drop_connection();
    h.ticks(2);
    let mut r: RoomHarness =
        RoomHarness::restore(open_field(), Limits::default(), &h.checkpoint()).unwrap();
    assert_eq!(r.game().state_hash(), h.game().state_hash());
    for step in 0..60 {
        h.tick();
        r.tick();
        assert_eq!(r.game().state_hash(), h.game().state_hash(), "step {step}");
    }
    // Both come back to both copies and play the same: the copies stay the same.
    let (a1, b1) = (
        h.join("ana", Role::Player, Encoding::MsgPack),
        h.join("bob", Role::Player, Encoding::MsgPack),
    );
    let (a2, b2) = (
        r.join("ana", Role::Player, Encoding::MsgPack),
        r.join("bob", Role::Player, Encoding::MsgPack),
    );
    for seq in 1..=90u32 {
        let aim = seq as f32 * 0.1;
        let (mine, theirs) = (
            input(seq, aim.cos(), aim.sin()),
            Input {
                fire: true,
                aim,
                ..input(seq, 0.0, -1.0)
            },
        );
        for (h, a, b) in [(&mut h, &a1, &b1), (&mut r, &a2, &b2)] {
            h.input(a, mine);
            h.input(b, theirs);
            h.tick();
        }
        assert_eq!(r.game().state_hash(), h.game().state_hash(), "seq {seq}");
    }
    assert_eq!(welcome_of(&a2).you, ana_id);
    assert_eq!(welcome_of(&b2).you, bob_id);
}

#[test]
fn a_room_moved_out_tells_every_member_where_and_closes_with_1012() {
    let mut h = harness();
    let (ana, _) = join(&mut h, "ana", Encoding::MsgPack);
    let watcher = h.join("eve", Role::Spectator, Encoding::Json);
    h.tick();
    let _ = watcher.take();
    h.move_out(Some("ws://n2.example:7777/play?room=harness"));
    assert!(h.is_closed());
    for c in [&ana, &watcher] {
        let got = c.take();
        assert_eq!(
            got.first(),
            Some(&Delivered::Close(CloseReason::Moved)),
            "{got:?}"
        );
        let moved = rallypoint_protocol::message::Moved {
            url: "ws://n2.example:7777/play?room=harness".into(),
        };
        assert_eq!(
            got.last(),
            Some(&Delivered::Message(ServerMessage::Moved(moved)))
        );
    }
    // Without a destination: the close alone (clients find the room through /match).
    let mut h = harness();
    let (ana, _) = join(&mut h, "ana", Encoding::MsgPack);
    h.move_out(None);
    assert_eq!(ana.take(), [Delivered::Close(CloseReason::Moved)]);
}

#[test]
fn a_checkpoint_of_another_game_or_damaged_bytes_is_refused() {
    let mut h = harness();
    let _ = join(&mut h, "ana", Encoding::MsgPack);
    let bytes = h.checkpoint();
    assert!(
        RoomHarness::<Arena>::restore(repo_assets(), Limits::default(), &bytes[..bytes.len() - 9])
            .is_err()
    );
    assert!(RoomHarness::<Arena>::restore(repo_assets(), Limits::default(), b"arena").is_err());
    assert!(RoomHarness::<Arena>::restore(repo_assets(), Limits::default(), &bytes).is_ok());
}

mod v2 {
    use rallypoint_protocol::codec::decode_server;
    use rallypoint_protocol::rows::Rows;
    use rallypoint_protocol::v2::{ClientState, FrameKind};
    use rallypoint_protocol::{Subprotocol, v2 as wire};

    use super::*;

    /// A v2 client of the harness: the messages it got, its reconstructed state.
    struct V2Client {
        c: TestClient,
        state: Option<ClientState>,
        kinds: Vec<FrameKind>,
    }

    impl V2Client {
        fn join(h: &mut RoomHarness, sub: &str) -> V2Client {
            let c = h.join_with(sub, Role::Player, Subprotocol::V2MsgPack);
            V2Client {
                c,
                state: None,
                kinds: Vec::new(),
            }
        }

        /// Takes everything pending; applies snapshot frames; returns the other messages.
        fn read(&mut self) -> Vec<ServerMessage> {
            let (_, raw) = self.c.take_raw();
            let mut out = Vec::new();
            for m in raw {
                if rallypoint_protocol::codec::peek_type(&m) == Some(wire::SNAPSHOT_TYPE) {
                    let state = self.state.as_mut().expect("welcome before any frame");
                    let applied = state.apply(&m).expect("every frame applies");
                    self.kinds.push(applied.kind);
                    continue;
                }
                let msg = decode_server(Encoding::MsgPack, &m).unwrap();
                if let ServerMessage::Welcome(w) = &msg {
                    assert_eq!(w.protocol, wire::SUBPROTOCOL);
                    self.state = Some(ClientState::from_welcome(w).expect("schema in welcome"));
                }
                out.push(msg);
            }
            out
        }
    }

    #[test]
    fn a_v2_client_holds_what_a_v1_client_sees_within_the_quantization() {
        let mut h = harness();
        let (v1, _) = join(&mut h, "ana", Encoding::MsgPack);
        let mut v2c = V2Client::join(&mut h, "bob");
        h.tick();
        v2c.read();
        for seq in 1..=60 {
            h.input(&v1, input(seq, (seq as f32 * 0.3).cos(), 0.7));
            h.tick();
            v2c.read();
        }
        let snap = snaps(&v1.messages()).last().cloned().cloned().unwrap();
        let state = v2c.state.as_ref().unwrap();
        assert_eq!(state.tick(), Some(snap.tick));
        let mut rows = Rows::new();
        state.rows_at(snap.tick, &mut rows);
        assert_eq!(rows.len(), snap.ents.len());
        for e in &snap.ents {
            let row = rows
                .iter()
                .find(|r| r.head.id == e.id())
                .expect("same entities");
            let (x, y) = e.pos();
            // Positions within a step and a half of 1/64 unit (dead reckoning included).
            assert!((row.head.x - x).abs() <= 1.5 / 64.0, "{e:?} vs {row:?}");
            assert!((row.head.y - y).abs() <= 1.5 / 64.0, "{e:?} vs {row:?}");
        }
        assert_eq!(v2c.kinds[0], FrameKind::Keyframe);
        assert!(v2c.kinds[1..].iter().all(|k| *k == FrameKind::Delta));
        assert!(h.metrics().v2_deltas.get() >= 60);
    }

    #[test]
    fn resync_gets_a_keyframe_and_is_counted() {
        let mut h = harness();
        let mut v2c = V2Client::join(&mut h, "bob");
        h.ticks(3);
        v2c.read();
        h.send(crate::room::Command::Resync {
            session: v2c.c.session,
        });
        h.tick();
        v2c.read();
        assert_eq!(v2c.kinds.last(), Some(&FrameKind::Keyframe));
        assert_eq!(h.metrics().v2_resyncs.get(), 1);
    }

    #[test]
    fn a_client_that_skips_snapshots_gets_deltas_against_what_it_took() {
        let mut h = harness();
        let (a, _) = join(&mut h, "ana", Encoding::MsgPack);
        let mut v2c = V2Client::join(&mut h, "bob");
        h.tick();
        v2c.read();
        for round in 0..20u32 {
            // Several ticks pass unread: only the newest frame is kept, against the
            // snapshot the client actually took.
            for i in 0..(round % 4 + 1) {
                h.input(&a, input(round * 10 + i + 1, 1.0, -0.5));
                h.tick();
            }
            v2c.read();
            a.take();
        }
        assert!(v2c.kinds.iter().skip(1).all(|k| *k == FrameKind::Delta));
        assert!(h.metrics().slow_drops.get() > 0);
    }
}
