//! The engine's loader with a small game of its own (the arena's assets are tested in
//! `arena::assets`): the engine's keys, a game's tables and rotation, refused values
//! nobody checks, and defaults standing in for invalid values.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Serialize};

use super::*;
use crate::game::GameAssets;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
struct RaceSettings {
    race: Race,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
struct Race {
    laps: u32,
    speed: f32,
    /// Read by serde, never checked: its refusals get the engine's own words.
    flag_colour: u8,
}

impl Default for Race {
    fn default() -> Self {
        Race {
            laps: 3,
            speed: 10.0,
            flag_colour: 0,
        }
    }
}

impl GameAssets for Race {
    type Settings = RaceSettings;
    const DEFAULT_MAP: &'static str = "oval";

    fn check_settings(settings: &RaceSettings, check: &mut Check<'_>) {
        let mut race = check.table("race");
        race.whole("laps", settings.race.laps, Limits::new(1.0, 99.0, "laps"));
        race.real(
            "speed",
            settings.race.speed,
            Limits::new(1.0, 50.0, "units/s"),
        );
    }

    fn load(settings: RaceSettings, _files: &mut Files<'_>) -> Loaded<Race> {
        Loaded {
            game: Some(settings.race),
            maps: BTreeSet::from(["oval".to_string()]),
            no_maps: None,
        }
    }

    fn has_map(&self, name: &str) -> bool {
        name == "oval"
    }

    fn summary(&self) -> String {
        format!("{} laps", self.laps)
    }
}

fn load(game_toml: &str) -> Result<Assets<Race>, Report> {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = TempDir(std::env::temp_dir().join(format!(
        "rallypoint-engine-assets-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )));
    std::fs::create_dir_all(&dir.0).unwrap();
    std::fs::write(dir.0.join("game.toml"), game_toml).unwrap();
    load_dir(&dir.0)
}

/// Removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn messages(report: &Report) -> Vec<&str> {
    report.problems.iter().map(|p| p.message.as_str()).collect()
}

#[test]
fn an_empty_game_toml_is_the_defaults_on_the_games_default_map() {
    let assets = load("").unwrap();
    assert_eq!(assets.engine.maps, ["oval"]);
    assert_eq!(assets.engine.view_radius, 0.0);
    assert_eq!(assets.engine.tick_rate, 30);
    assert_eq!(assets.game, Race::default());
    let assets = load("view_radius = 40\n[race]\nlaps = 7\n").unwrap();
    assert_eq!((assets.engine.view_radius, assets.game.laps), (40.0, 7));
}

#[test]
fn engine_and_game_problems_come_together_in_the_games_words() {
    let report = load(
        "view_radius = -1\nmaps = [\"ovl\"]\n\n[race]\nlaps = 100\nspeed = \"fast\"\nflag_colour = 300\nlap = 2\n",
    )
    .unwrap_err();
    assert_eq!(
        messages(&report),
        [
            "`view_radius` is out of range: `-1` is not between 0 and 100000 units",
            "map `ovl` not found",
            "`race.laps` is out of range: `100` is not between 1 and 99 laps",
            "`race.speed` must be a number, found a string",
            // Nobody checks `flag_colour`: the engine words serde's refusal.
            "`race.flag_colour` cannot be read: invalid value: integer `300`, expected u8",
            "unknown key `lap` in `[race]`",
        ],
        "{}",
        report.render_text()
    );
    let help = |i: usize| report.problems[i].help.as_deref().unwrap_or("");
    assert_eq!(help(1), "did you mean `oval`?; available maps: oval");
    assert_eq!(
        help(3),
        "use a number from 1 to 50 units/s, e.g. `speed = 10`"
    );
    assert_eq!(help(5), "did you mean `laps`?");
}

#[test]
fn a_refused_value_nobody_checks_is_still_named_and_typed() {
    let report = load("[race]\nflag_colour = \"red\"\n").unwrap_err();
    assert_eq!(
        messages(&report),
        ["`race.flag_colour` must be a whole number, found a string"]
    );
    let p = &report.problems[0];
    assert_eq!((p.line, p.column), (2, 15));
}

#[test]
fn defaults_stand_in_for_every_invalid_value() {
    let src = Source::new(
        "game.toml",
        "[race]\nlaps = 0\nspeed = true\nflag_colour = 2\n",
    );
    let mut doc = Document::parse(&src);
    let first: RaceSettings = doc.read();
    assert_eq!((first.race.laps, first.race.speed), (0, 10.0));
    Race::check_settings(&first, &mut doc.check());
    let cleaned: RaceSettings = doc.read();
    let expected = Race {
        flag_colour: 2,
        ..Race::default()
    };
    assert_eq!(cleaned.race, expected);
    assert_eq!(doc.finish().len(), 2);
}

#[test]
fn a_file_full_of_refused_values_is_bounded() {
    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Numbers {
        n: Vec<u8>,
    }
    let list: Vec<String> = (0..300).map(|i| format!("\"{i}\"")).collect();
    let src = Source::new("x.toml", format!("n = [{}, 1]\n", list.join(", ")));
    let mut doc = Document::parse(&src);
    let numbers: Numbers = doc.read();
    assert!(numbers.n.is_empty());
    let problems = doc.finish();
    assert_eq!(problems.len(), 201);
    assert!(problems[0].message.starts_with("more than 200 values"));
}
