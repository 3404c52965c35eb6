//! Room behaviour through the in-memory harness: joins, inputs and acks, fan-out,
//! slow consumers, resume, replacement, spectators, chat, hot reload.

use rallypoint_protocol::entity::{Entity, PLAYER_AWAY};
use rallypoint_protocol::message::{Event, Input, ServerMessage};
use rallypoint_protocol::{CloseReason, Encoding};

use super::harness::{Delivered, RoomHarness, TestClient};
use crate::arena::assets::ArenaAssets;
use crate::arena::sim::PlayerId;
use crate::assets::{self, Assets};
use crate::auth::Role;
use crate::config::Limits;

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
