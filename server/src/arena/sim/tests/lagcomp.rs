//! Lag compensation: a shot is judged against the world its shooter was drawing, within
//! the window, through walls never, and never against a life the target no longer has.
//!
//! The scenes run at 20 Hz so that 150 ms is exactly 3 ticks, with a 200 units/s weapon:
//! a shot crosses the 3 units to its target within one step, so what decides a hit is
//! where the target is judged to be, not how the shot was led.

use rallypoint_protocol::message::Event;

use super::support::*;
use crate::arena::assets::Tuning;
use crate::arena::sim::{Control, PlayerId, World};

/// 20 Hz: 150 ms is 3 ticks.
const DT20: f32 = 1.0 / 20.0;
/// The strafing target's line: 3 units right of the shooter.
const TARGET_X: f32 = 23.0;

fn tuning(window_s: f32) -> Tuning {
    let mut t = Tuning::default();
    t.weapon.projectile_speed = 200.0;
    t.weapon.lag_compensation_s = window_s;
    t
}

/// What a scene recorded: the world, its shooter and target, and where the target stood
/// after each step (the ticks the shooter may have been drawing).
struct Scene {
    world: World,
    shooter: PlayerId,
    target: PlayerId,
    drawn: Vec<(u32, (f32, f32))>,
}

impl Scene {
    /// A shooter at (20, 50) and a target strafing down past it along x = 23, from y = 46,
    /// for `steps` steps, with optional walls.
    fn new(window_s: f32, walls: &[(f32, f32, f32, f32)], steps: usize) -> Scene {
        let map = map("range", (100.0, 100.0), walls, &[(50.0, 80.0)], &[]);
        let mut world = World::new(map, tuning(window_s), 1);
        world.step(&[], DT20);
        world.drain_events().for_each(drop);
        let ids = place(&mut world, &[(20.0, 50.0), (TARGET_X, 46.0)]);
        let mut scene = Scene {
            world,
            shooter: ids[0],
            target: ids[1],
            drawn: Vec::new(),
        };
        for _ in 0..steps {
            scene.step(None);
        }
        scene
    }

    /// One step with the target strafing and, if given, the shooter's control.
    fn step(&mut self, shot: Option<Control>) {
        let mut controls = vec![(self.target, moving(0.0, 1.0))];
        controls.extend(shot.map(|c| (self.shooter, c)));
        self.world.step(&controls, DT20);
        let at = pos(&self.world, self.target);
        self.drawn.push((self.world.tick(), at));
    }

    /// Where the target stood `ticks_ago` ticks before the present.
    fn drawn_ago(&self, ticks_ago: usize) -> (u32, (f32, f32)) {
        self.drawn[self.drawn.len() - 1 - ticks_ago]
    }

    /// Fires at `at`, claiming to see tick `view`.
    fn fire_at(&mut self, at: (f32, f32), view: Option<u32>) {
        let aim = (at.1 - 50.0).atan2(at.0 - 20.0);
        self.step(Some(Control {
            aim,
            fire: true,
            view,
            ..Control::default()
        }));
    }

    fn target_hp(&self) -> u16 {
        hp(&self.world, self.target)
    }
}

#[test]
fn a_shot_at_where_a_strafing_target_was_drawn_150_ms_ago_hits_only_with_compensation() {
    for (window_s, claim, hits) in [(0.25, true, true), (0.0, true, false), (0.25, false, false)] {
        let mut scene = Scene::new(window_s, &[], 10);
        let (view, drawn) = scene.drawn_ago(3);
        let now = pos(&scene.world, scene.target);
        assert!(
            now.1 - drawn.1 > 1.0,
            "the target has moved on: drawn at {drawn:?}, now at {now:?}"
        );
        scene.fire_at(drawn, claim.then_some(view));
        for _ in 0..5 {
            scene.step(None);
        }
        let expected = if hits { 75 } else { 100 };
        assert_eq!(
            scene.target_hp(),
            expected,
            "window {window_s} s, view claimed: {claim}"
        );
    }
}

#[test]
fn a_compensated_hit_never_shows_a_projectile_and_a_miss_flies_on_from_the_past() {
    let mut scene = Scene::new(0.25, &[], 10);
    let (view, drawn) = scene.drawn_ago(3);
    scene.fire_at(drawn, Some(view));
    assert_eq!(scene.target_hp(), 75);
    assert!(projectile_rows(&scene.world).is_empty());

    // Aimed far from the target: it flies the 3 rewound steps and this one, 10 units
    // each, from the muzzle (radius 0.5 + projectile 0.15 + a gap of 0.001).
    let mut scene = Scene::new(0.25, &[], 10);
    let (view, _) = scene.drawn_ago(3);
    scene.fire_at((25.0, 40.0), Some(view));
    let shots = projectile_rows(&scene.world);
    assert_eq!(shots.len(), 1);
    let (x, y) = shots[0].pos();
    let flown = (x - 20.0).hypot(y - 50.0);
    assert!((flown - (0.651 + 4.0 * 10.0)).abs() < 0.01, "{flown}");
}

#[test]
fn a_claimed_view_older_than_the_window_counts_as_its_oldest_tick() {
    // 0.25 s at 20 Hz: 5 ticks. A claim of 10 ticks (0.5 s) is judged 5 ticks back.
    let mut far = Scene::new(0.25, &[], 14);
    let (old_view, old_spot) = far.drawn_ago(10);
    let mut edge = Scene::new(0.25, &[], 14);
    let (edge_view, _) = edge.drawn_ago(5);
    assert_eq!(far.world.state_hash(), edge.world.state_hash());
    far.fire_at(old_spot, Some(old_view));
    edge.fire_at(old_spot, Some(edge_view));
    // One more step clears the claims themselves from the players' controls.
    far.step(None);
    edge.step(None);
    assert_eq!(
        far.world.state_hash(),
        edge.world.state_hash(),
        "the same shot as one claiming the window's oldest tick"
    );
    assert_eq!(
        far.target_hp(),
        100,
        "where it was 0.5 s ago is out of reach"
    );

    // Aimed at the window's oldest tick, the same claim hits.
    let mut scene = Scene::new(0.25, &[], 14);
    let (old_view, _) = scene.drawn_ago(10);
    let (_, edge_spot) = scene.drawn_ago(5);
    scene.fire_at(edge_spot, Some(old_view));
    assert_eq!(scene.target_hp(), 75);
}

#[test]
fn walls_block_the_fast_forwarded_stretch() {
    // A wall between the shooter and the whole strafing line.
    let mut scene = Scene::new(0.25, &[(21.5, 30.0, 0.2, 40.0)], 10);
    let (view, drawn) = scene.drawn_ago(3);
    scene.fire_at(drawn, Some(view));
    assert_eq!(scene.target_hp(), 100);
    assert!(
        projectile_rows(&scene.world).is_empty(),
        "the wall absorbed it on the way"
    );
}

#[test]
fn a_target_that_reached_cover_after_the_shooters_view_is_still_hit() {
    // A wall below the line of fire: the target runs behind it. What the shooter saw
    // was in the open, so the compensated shot hits; a shot at where it is now would
    // hit the wall.
    let cover = [(21.5, 50.3, 0.2, 20.0)];
    let mut scene = Scene::new(0.25, &cover, 13);
    let (view, drawn) = scene.drawn_ago(3);
    scene.fire_at(drawn, Some(view));
    let now = pos(&scene.world, scene.target);
    let line_at_wall = 50.0 + (now.1 - 50.0) * 1.5 / (now.0 - 20.0);
    assert!(
        line_at_wall > 50.3 - 0.15,
        "the target is behind the wall now: {now:?}"
    );
    assert_eq!(scene.target_hp(), 75);

    let mut present = Scene::new(0.25, &cover, 13);
    present.step(None);
    present.step(None);
    let now = pos(&present.world, present.target);
    present.fire_at(now, None);
    for _ in 0..3 {
        present.step(None);
    }
    assert_eq!(present.target_hp(), 100);
}

#[test]
fn only_a_target_alive_and_present_now_is_hit_and_never_in_a_previous_life() {
    // Away now: not hit, though it stood there then.
    let mut scene = Scene::new(0.25, &[], 10);
    let (view, drawn) = scene.drawn_ago(2);
    scene.world.set_away(scene.target, true);
    scene.fire_at(drawn, Some(view));
    scene.world.set_away(scene.target, false);
    assert_eq!(scene.target_hp(), 100);

    // Killed and respawned since: its past before the respawn is gone, though the
    // window (0.5 s, 10 ticks) still covers it.
    let mut t = tuning(0.5);
    t.weapon.damage = 100;
    t.player.respawn_delay_s = 0.0;
    let mut scene = Scene::new(0.5, &[], 8);
    scene.world.set_tuning(t);
    let (view, drawn) = scene.drawn_ago(1);
    let now = pos(&scene.world, scene.target);
    scene.fire_at(now, None);
    let events = events(&mut scene.world);
    assert!(events.iter().any(|e| matches!(e, Event::Kill { .. })));
    scene.world.step(&[], DT20);
    assert!(scene.world.player(scene.target).unwrap().alive, "respawned");
    // The cooldown is 0.25 s: wait it out, then shoot at the previous life.
    for _ in 0..5 {
        scene.world.step(&[], DT20);
    }
    assert!(scene.world.tick() - view < 10, "within the window");
    let aim = (drawn.1 - 50.0).atan2(drawn.0 - 20.0);
    let shot = Control {
        aim,
        fire: true,
        view: Some(view),
        ..Control::default()
    };
    scene.world.step(&[(scene.shooter, shot)], DT20);
    assert_eq!(scene.target_hp(), 100);
}

#[test]
fn the_history_is_part_of_the_state_and_of_a_checkpoint() {
    let scene = Scene::new(0.25, &[], 10);
    let restored = World::restore(&scene.world.checkpoint()).expect("restores");
    assert_eq!(restored.state_hash(), scene.world.state_hash());
    let (view, drawn) = scene.drawn_ago(3);
    let mut copy = Scene {
        world: restored,
        drawn: scene.drawn.clone(),
        ..scene
    };
    copy.fire_at(drawn, Some(view));
    assert_eq!(
        copy.target_hp(),
        75,
        "the restored world remembers the past"
    );

    // A world with another past hashes differently.
    let a = Scene::new(0.25, &[], 10);
    let mut b = Scene::new(0.0, &[], 10);
    b.world.set_tuning(tuning(0.25));
    assert_ne!(a.world.state_hash(), b.world.state_hash());
}
