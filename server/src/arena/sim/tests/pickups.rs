//! Health pickups: who may take one, how much it heals, when it comes back.

use rallypoint_protocol::entity::{Entity, PICKUP_ACTIVE};
use rallypoint_protocol::message::Event;

use super::support::*;
use crate::arena::assets::Tuning;
use crate::arena::sim::World;

fn pickup_row(world: &World) -> (u32, bool) {
    rows(world)
        .into_iter()
        .find_map(|e| match e {
            Entity::Pickup { id, flags, .. } => Some((id, flags & PICKUP_ACTIVE != 0)),
            _ => None,
        })
        .expect("the map has a pickup")
}

fn pickup_events(world: &mut World) -> Vec<Event> {
    events(world)
        .into_iter()
        .filter(|e| matches!(e, Event::Pickup { .. }))
        .collect()
}

#[test]
fn a_pickup_heals_up_to_max_then_returns_after_its_respawn_time() {
    let map = map(
        "clinic",
        (100.0, 100.0),
        &[],
        &[(10.0, 10.0)],
        &[(70.0, 50.0)],
    );
    let mut world = started(map, Tuning::default());
    let ids = place(&mut world, &[(50.0, 50.0), (55.0, 50.0)]);
    let (shooter, patient) = (ids[0], ids[1]);
    for _ in 0..3 {
        world.step(&[(shooter, firing(0.0))], DT);
        steps(&mut world, &[], 10);
    }
    assert_eq!(hp(&world, patient), 25);
    let (pickup_id, available) = pickup_row(&world);
    assert!(available);
    pickup_events(&mut world);

    // Walking near but not onto it (distance 1.2 > 0.5 + 0.6) takes nothing.
    world.teleport(patient, 68.8, 50.0);
    world.step(&[], DT);
    assert_eq!(hp(&world, patient), 25);

    world.teleport(patient, 69.0, 50.0);
    world.step(&[], DT);
    assert_eq!(hp(&world, patient), 75);
    assert_eq!(
        pickup_events(&mut world),
        [Event::Pickup {
            id: pickup_id,
            by: patient.0
        }]
    );
    assert_eq!(pickup_row(&world), (pickup_id, false));

    // Gone for 10 s (300 steps), whoever stands there; then back.
    world.teleport(patient, 60.0, 50.0);
    steps(&mut world, &[], 299);
    assert!(!pickup_row(&world).1);
    world.step(&[], DT);
    assert!(pickup_row(&world).1, "available again after 10 s");

    // 75 + 50 is capped at 100.
    world.teleport(patient, 70.0, 50.0);
    world.step(&[], DT);
    assert_eq!(hp(&world, patient), 100);
    assert_eq!(pickup_events(&mut world).len(), 1);
    assert!(!pickup_row(&world).1);
}

#[test]
fn a_player_at_full_health_leaves_the_pickup_alone() {
    let map = map(
        "clinic",
        (100.0, 100.0),
        &[],
        &[(10.0, 10.0)],
        &[(70.0, 50.0)],
    );
    let mut world = started(map, Tuning::default());
    let healthy = place(&mut world, &[(70.0, 50.0)])[0];
    steps(&mut world, &[], 5);
    assert_eq!(hp(&world, healthy), 100);
    assert!(pickup_row(&world).1);
    assert!(pickup_events(&mut world).is_empty());
}
