//! Test vectors for client-side prediction: the arena's own player movement, step by
//! step, for the JavaScript SDK's copy of the rules (`protocol/js/src/arena.js`) to
//! replay. Each scenario is a map, a tick rate, the tuning a client learns from `welcome`
//! and `tuning` events, the player's start, and per step the input as a client sends it
//! (float64, which the server reads as float32) and the player's position and velocity
//! after the step, from the real [`Arena`] (input clamping, controls, steering, wall
//! collisions). Inputs are held for a while and include over-long and tiny vectors; the
//! scenarios cover both shipped maps, three tick rates, a thin wall at a speed that needs
//! the sub-step cap, and a hot reload that grows the radius mid-run.
//!
//! The file is checked in (`protocol/js/test/vectors/arena-movement.json`) and this test
//! compares it with what the simulation does now, so the two cannot drift apart:
//! `RALLYPOINT_WRITE_VECTORS=1 cargo test -p rallypoint movement_vectors` rewrites it
//! after an intended change.

use std::sync::Arc;

use rallypoint_protocol::message::Input;
use rallypoint_protocol::rng::SplitMix64;
use serde_json::{Value, json};

use super::assets::{ArenaAssets, MapDef, Point, Rect, Tuning};
use super::{Arena, tuning_info};
use crate::game::{Game, InputContext, PlayerId};

/// The checked-in file, relative to this crate.
const PATH: &str = "../protocol/js/test/vectors/arena-movement.json";

struct Scenario {
    name: &'static str,
    map: Arc<MapDef>,
    tick_rate: u16,
    tuning: Tuning,
    steps: usize,
    /// A hot reload before this step, with this tuning.
    reload: Option<(usize, Tuning)>,
    seed: u64,
}

fn shipped() -> ArenaAssets {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets");
    crate::assets::load_dir(std::path::Path::new(dir))
        .expect("shipped assets load")
        .game
}

fn scenarios() -> Vec<Scenario> {
    let shipped = shipped();
    let base = shipped.tuning.clone();
    let mut fast = base.clone();
    fast.player.radius = 0.8;
    fast.player.max_speed = 20.0;
    fast.player.acceleration = 200.0;
    let mut grown = base.clone();
    grown.player.radius = 1.3;
    grown.player.max_speed = 5.5;
    grown.player.acceleration = 25.0;
    let mut tiny = base.clone();
    tiny.player.radius = 0.1;
    tiny.player.max_speed = 100.0;
    tiny.player.acceleration = 1000.0;
    let thin = Arc::new(MapDef {
        name: "thin".into(),
        width: 200.0,
        height: 20.0,
        walls: vec![
            Rect {
                x: 100.0,
                y: 0.0,
                w: 0.05,
                h: 14.0,
            },
            Rect {
                x: 60.0,
                y: 6.0,
                w: 3.0,
                h: 3.0,
            },
        ],
        spawns: vec![Point { x: 10.0, y: 10.0 }],
        pickups: Vec::new(),
    });
    vec![
        Scenario {
            name: "courtyard, 30 Hz, shipped tuning",
            map: Arc::clone(&shipped.maps["courtyard"]),
            tick_rate: 30,
            tuning: base.clone(),
            steps: 450,
            reload: None,
            seed: 1,
        },
        Scenario {
            name: "warehouse, 20 Hz, fast and wide",
            map: Arc::clone(&shipped.maps["warehouse"]),
            tick_rate: 20,
            tuning: fast,
            steps: 350,
            reload: None,
            seed: 2,
        },
        Scenario {
            name: "courtyard, 60 Hz, reloaded to a larger radius mid-run",
            map: Arc::clone(&shipped.maps["courtyard"]),
            tick_rate: 60,
            tuning: base,
            steps: 500,
            reload: Some((200, grown)),
            seed: 3,
        },
        Scenario {
            name: "thin wall, 10 Hz, 10 units per step",
            map: thin,
            tick_rate: 10,
            tuning: tiny,
            steps: 200,
            reload: None,
            seed: 4,
        },
    ]
}

/// The move a client sends next, held for a while: any direction, over-long vectors
/// (the server clamps), axis and diagonal unit moves, tiny ones, none.
fn next_move(rng: &mut SplitMix64) -> (f64, f64) {
    match rng.below(6) {
        0 => (rng.range(-1.6, 1.6), rng.range(-1.6, 1.6)),
        1 => {
            let a = rng.range(-4.0, 4.0);
            (a.cos(), a.sin())
        }
        2 => [(1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)][rng.below(4)],
        3 => {
            let d = std::f64::consts::FRAC_1_SQRT_2;
            [(d, d), (-d, d), (d, -d), (-d, -d)][rng.below(4)]
        }
        4 => (rng.range(-0.05, 0.05), rng.range(-0.05, 0.05)),
        _ => (0.0, 0.0),
    }
}

fn map_json(map: &MapDef) -> Value {
    let walls: Vec<[f64; 4]> = map
        .walls
        .iter()
        .map(|r| [r.x, r.y, r.w, r.h].map(f64::from))
        .collect();
    json!({ "name": map.name, "w": f64::from(map.width), "h": f64::from(map.height), "walls": walls })
}

fn tuning_json(t: &Tuning) -> Value {
    serde_json::to_value(tuning_info(t)).unwrap()
}

fn run(s: &Scenario) -> Value {
    let mut maps = std::collections::BTreeMap::new();
    maps.insert(s.map.name.clone(), Arc::clone(&s.map));
    let mut assets = ArenaAssets {
        tuning: s.tuning.clone(),
        maps,
    };
    let dt = 1.0 / f32::from(s.tick_rate);
    let mut arena = Arena::new(&assets, &s.map.name, s.seed, dt);
    let me = arena.add_player();
    let player = |arena: &Arena, id: PlayerId| arena.world().player(id).expect("present");
    let start = player(&arena, me);
    let mut rng = SplitMix64::new(s.seed);
    let (mut held, mut mv) = (0, (0.0, 0.0));
    let mut steps = Vec::with_capacity(s.steps);
    for i in 0..s.steps {
        let mut step = json!({});
        if let Some((at, tuning)) = &s.reload
            && *at == i
        {
            assets.tuning = tuning.clone();
            arena.reload(&assets);
            step["tuning"] = tuning_json(tuning);
        }
        if held == 0 {
            held = 1 + rng.below(25);
            mv = next_move(&mut rng);
        }
        held -= 1;
        let input = Input {
            seq: i as u32 + 1,
            // What a server reads from the float64 a client sends.
            mx: mv.0 as f32,
            my: mv.1 as f32,
            aim: 0.0,
            fire: false,
            view: None,
        };
        arena.apply_input(me, &input, InputContext::default());
        arena.step(dt);
        let p = player(&arena, me);
        step["input"] = json!([mv.0, mv.1]);
        step["x"] = json!(f64::from(p.x));
        step["y"] = json!(f64::from(p.y));
        step["vx"] = json!(f64::from(p.vx));
        step["vy"] = json!(f64::from(p.vy));
        steps.push(step);
    }
    json!({
        "name": s.name,
        "tick_rate": s.tick_rate,
        "map": map_json(&s.map),
        "tuning": tuning_json(&s.tuning),
        "start": [f64::from(start.x), f64::from(start.y)],
        "steps": steps,
    })
}

#[test]
fn movement_vectors_for_client_prediction_are_current() {
    let scenarios: Vec<Value> = scenarios().iter().map(run).collect();
    let file = json!({
        "about": "the arena's own-player movement for client-side prediction; made by the \
                  rallypoint test arena::vectors, do not edit (RALLYPOINT_WRITE_VECTORS=1 rewrites)",
        "scenarios": scenarios,
    });
    let text = serde_json::to_string(&file).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(PATH);
    if std::env::var_os("RALLYPOINT_WRITE_VECTORS").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "{} is stale: run `RALLYPOINT_WRITE_VECTORS=1 cargo test -p rallypoint \
         movement_vectors` and commit it",
        path.display()
    );
    // The runs did what they are for: wall contacts (a velocity component cut to 0 while
    // the input pushes on), and the reload's larger radius pushing the player out.
    let blocked = scenarios
        .iter()
        .flat_map(|s| s["steps"].as_array().unwrap())
        .filter(|st| {
            let (mx, vx) = (st["input"][0].as_f64().unwrap(), st["vx"].as_f64().unwrap());
            mx.abs() > 0.5 && vx == 0.0
        });
    assert!(blocked.count() > 20, "the players met walls");
}
