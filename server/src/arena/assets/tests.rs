//! End-to-end tests of loading and validation: one per rule, each asserting the message
//! and the position, plus the shipped assets, the renderers and robustness on garbage.
//!
//! Must stay fast (the whole module well under a few seconds in debug) and must only write
//! inside its own temporary directories.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;
use crate::assets::{Assets, EngineSettings, Problem, Report};

/// A throwaway directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(files: &[(&str, &[u8])]) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("rallypoint-assets-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (rel, bytes) in files {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, bytes).unwrap();
        }
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_dir(dir: &Path) -> Result<Assets<ArenaAssets>, Report> {
    crate::assets::load_dir(dir)
}

/// `game` as `game.toml` (absent when `None`) and `maps` as `maps/<name>.toml`, loaded.
fn load_memory(game: Option<&str>, maps: &[(&str, &str)]) -> Result<Assets<ArenaAssets>, Report> {
    let mut files: Vec<(String, &[u8])> = maps
        .iter()
        .map(|(name, text)| (format!("maps/{name}.toml"), text.as_bytes()))
        .collect();
    files.extend(game.map(|g| ("game.toml".to_string(), g.as_bytes())));
    let files: Vec<(&str, &[u8])> = files.iter().map(|(r, b)| (r.as_str(), *b)).collect();
    load_dir(&TempDir::new(&files).0)
}

fn shipped_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../assets"))
}

const GOOD_MAP: &str = "\
width = 20
height = 10

[[wall]]
x = 9
y = 0
w = 2
h = 4

[[spawn]]
x = 2
y = 2

[[spawn]]
x = 18
y = 8

[[pickup]]
x = 10
y = 8
";

fn report(result: Result<Assets<ArenaAssets>, Report>) -> Report {
    match result {
        Ok(_) => panic!("expected problems, assets loaded"),
        Err(r) => r,
    }
}

fn map_report(game: &str, map: &str) -> Report {
    report(load_memory(Some(game), &[("arena", map)]))
}

/// The single problem at `file:line:column`, asserting there is exactly one there.
fn at<'a>(r: &'a Report, file: &str, line: u32, column: u32) -> &'a Problem {
    let found: Vec<&Problem> = r
        .problems
        .iter()
        .filter(|p| p.file == file && p.line == line && p.column == column)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "problems at {file}:{line}:{column}:\n{}",
        r.render_text()
    );
    found[0]
}

fn help(p: &Problem) -> &str {
    p.help.as_deref().unwrap_or("")
}

// --- The shipped assets -------------------------------------------------------------

#[test]
fn shipped_assets_load_cleanly_with_both_maps() {
    let assets = match load_dir(&shipped_dir()) {
        Ok(a) => a,
        Err(r) => panic!("shipped assets have problems:\n{}", r.render_text()),
    };
    assert_eq!(assets.engine.maps, vec!["courtyard", "warehouse"]);
    assert_eq!(assets.game.tuning, Tuning::default());
    let courtyard = &assets.game.maps["courtyard"];
    assert_eq!((courtyard.width, courtyard.height), (40.0, 30.0));
    assert!((6..=8).contains(&courtyard.spawns.len()));
    assert!((2..=4).contains(&courtyard.pickups.len()));
    let warehouse = &assets.game.maps["warehouse"];
    assert_eq!((warehouse.width, warehouse.height), (60.0, 40.0));
    assert!(warehouse.spawns.len() >= 8);
    assert!(warehouse.pickups.len() >= 3);
    assert_eq!(assets.version.len(), 16);
    assert!(assets.version.chars().all(|c| c.is_ascii_hexdigit()));
    // Deterministic: same files, same result and version.
    assert_eq!(load_dir(&shipped_dir()).ok(), Some(assets));
}

#[test]
fn shipped_maps_load_alone_for_render_map() {
    let tuning = Tuning::default();
    for name in ["courtyard", "warehouse", "field"] {
        let path = shipped_dir().join("maps").join(format!("{name}.toml"));
        let map = load_map_file(&path, &tuning).unwrap_or_else(|r| panic!("{}", r.render_text()));
        assert_eq!(map.name, name);
    }
}

#[test]
fn version_changes_with_content() {
    let a = load_memory(Some(""), &[("courtyard", GOOD_MAP)]).unwrap();
    let b = load_memory(Some("tick_rate = 30"), &[("courtyard", GOOD_MAP)]).unwrap();
    assert_ne!(a.version, b.version);
    let rotation = vec!["courtyard".to_string()];
    assert_eq!(
        a.engine,
        EngineSettings {
            maps: rotation,
            ..EngineSettings::default()
        }
    );
    assert_eq!(a.game.tuning, Tuning::default());
}

// --- Rule 1: syntax errors ----------------------------------------------------------

#[test]
fn syntax_error_reports_parser_message_and_position() {
    let r = map_report("maps = [\"arena\"]", "width = 20\nheight 10\n");
    let p = at(&r, "maps/arena.toml", 2, 8);
    assert!(p.message.starts_with("invalid TOML: "), "{}", p.message);
    assert!(p.message.contains("expected `=`"), "{}", p.message);
    // Nothing else is guessed from a file that does not parse.
    assert_eq!(r.problems.len(), 1, "{}", r.render_text());
}

// --- Rule 2: unknown keys -----------------------------------------------------------

#[test]
fn unknown_key_suggests_the_closest_known_key() {
    let r = report(load_memory(
        Some("[player]\nradius = 0.5\nmax_sped = 9\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    let p = at(&r, "game.toml", 3, 1);
    assert_eq!(p.message, "unknown key `max_sped` in `[player]`");
    assert_eq!(help(p), "did you mean `max_speed`?");
    assert_eq!(r.problems.len(), 1);
}

#[test]
fn unknown_key_without_a_close_match_lists_the_known_keys() {
    let r = map_report(
        "maps = [\"arena\"]",
        &format!("{GOOD_MAP}\n[[spawn]]\nx = 5\ny = 5\ncolour = \"red\"\n"),
    );
    let p = at(&r, "maps/arena.toml", 25, 1);
    assert_eq!(p.message, "unknown key `colour` in spawn #3 (`[[spawn]]`)");
    assert_eq!(help(p), "known keys in `[[spawn]]`: x, y");
}

#[test]
fn key_in_the_wrong_table_says_where_it_belongs() {
    let r = report(load_memory(
        Some("[player]\ndamage = 10\n\n[round]\nmaps = [\"courtyard\"]\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    assert_eq!(
        help(at(&r, "game.toml", 2, 1)),
        "`damage` belongs in `[weapon]`"
    );
    assert_eq!(
        help(at(&r, "game.toml", 5, 1)),
        "`maps` is a top-level key: move it above the first `[table]` line"
    );
}

// --- Rule 3: wrong types ------------------------------------------------------------

#[test]
fn wrong_type_points_at_the_value() {
    let r = report(load_memory(
        Some("tick_rate = \"30\"\n[player]\nradius = true\nmax_health = 99.5\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    let p = at(&r, "game.toml", 1, 13);
    assert_eq!(
        p.message,
        "`tick_rate` must be a whole number, found a string"
    );
    assert_eq!(help(p), "remove the quotes: `tick_rate = 30`");
    let p = at(&r, "game.toml", 3, 10);
    assert_eq!(
        p.message,
        "`player.radius` must be a number, found true/false"
    );
    let p = at(&r, "game.toml", 4, 14);
    assert_eq!(
        p.message,
        "`player.max_health` must be a whole number, found `99.5`"
    );
    assert_eq!(r.problems.len(), 3);
}

#[test]
fn map_values_of_the_wrong_type_and_missing_keys() {
    let r = map_report(
        "maps = [\"arena\"]",
        "width = \"wide\"\n\n[[spawn]]\nx = 2\n",
    );
    assert_eq!(
        at(&r, "maps/arena.toml", 1, 9).message,
        "`width` must be a number, found a string"
    );
    let p = at(&r, "maps/arena.toml", 1, 1);
    assert_eq!(p.message, "missing required key `height` at the top level");
    let p = at(&r, "maps/arena.toml", 3, 1);
    assert_eq!(
        p.message,
        "missing required key `y` in spawn #1 (`[[spawn]]`)"
    );
}

// --- Rule 4: ranges -----------------------------------------------------------------

/// An integer past 64 bits still reads as an `f32` (TOML leaves the range to the
/// reader): it must be refused as out of range, not loaded as 9.2e18 units.
#[test]
fn integers_past_64_bits_are_out_of_range_too() {
    let r = report(load_memory(
        Some("[player]\nradius = 9223372036854775808\nmax_speed = 0xFFFFFFFFFFFFFFFF\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    let p = at(&r, "game.toml", 2, 10);
    assert_eq!(
        p.message,
        "`player.radius` is out of range: `9223372036854775808` is not between 0.1 and 5 units"
    );
    let p = at(&r, "game.toml", 3, 13);
    assert_eq!(
        p.message,
        "`player.max_speed` is out of range: `0xFFFFFFFFFFFFFFFF` is not between 0.1 and 100 units/s"
    );
}

#[test]
fn out_of_range_gives_the_range_and_unit() {
    let r = report(load_memory(
        Some("room_capacity = 300\n\n[weapon]\ncooldown_s = 0.001\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    let p = at(&r, "game.toml", 1, 17);
    assert_eq!(
        p.message,
        "`room_capacity` is out of range: `300` is not between 1 and 256 players"
    );
    let p = at(&r, "game.toml", 4, 14);
    assert_eq!(
        p.message,
        "`weapon.cooldown_s` is out of range: `0.001` is not between 0.02 and 10 seconds"
    );
    let r = map_report(
        "maps = [\"arena\"]",
        &GOOD_MAP.replace("width = 20", "width = 5"),
    );
    let p = at(&r, "maps/arena.toml", 1, 9);
    assert_eq!(
        p.message,
        "`width` is out of range: `5` is not between 10 and 1000 units"
    );
}

#[test]
fn snapshot_rate_must_divide_tick_rate() {
    let r = report(load_memory(
        Some("tick_rate = 30\nsnapshot_rate = 20\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    let p = at(&r, "game.toml", 2, 17);
    assert_eq!(
        p.message,
        "`snapshot_rate` = 20 does not divide `tick_rate` = 30"
    );
    assert!(
        help(p).ends_with("use one of: 1, 2, 3, 5, 6, 10, 15, 30"),
        "{}",
        help(p)
    );
    // With the default snapshot rate, the tick rate is blamed.
    let r = report(load_memory(
        Some("tick_rate = 20\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    let p = at(&r, "game.toml", 1, 13);
    assert_eq!(
        p.message,
        "`tick_rate` = 20 is not a multiple of the default `snapshot_rate` (30)"
    );
}

// --- Rule 5: the rotation -----------------------------------------------------------

#[test]
fn rotation_map_missing_from_maps_dir_is_located_and_lists_available() {
    let dir = TempDir::new(&[
        (
            "game.toml",
            b"maps = [\n  \"courtyard\",\n  \"warehose\",\n]\n",
        ),
        ("maps/courtyard.toml", GOOD_MAP.as_bytes()),
        ("maps/warehouse.toml", GOOD_MAP.as_bytes()),
        ("maps/notes.txt", b"not a map"),
    ]);
    let r = report(load_dir(&dir.0));
    let p = at(&r, "game.toml", 3, 3);
    assert_eq!(
        p.message,
        "map `warehose` not found: there is no `maps/warehose.toml`"
    );
    assert_eq!(
        help(p),
        "did you mean `warehouse`?; available maps: courtyard, warehouse"
    );
    assert_eq!(r.problems.len(), 1, "{}", r.render_text());
}

// --- Rule 6: geometry ---------------------------------------------------------------

#[test]
fn walls_must_have_a_positive_size_and_stay_inside() {
    let map = format!(
        "{GOOD_MAP}\n[[wall]]\nx = 1\ny = 1\nw = 0\nh = 2\n\n[[wall]]\nx = 15\ny = 5\nw = 6\nh = 1\n"
    );
    let r = map_report("maps = [\"arena\"]", &map);
    let p = at(&r, "maps/arena.toml", 25, 5);
    assert_eq!(
        p.message,
        "wall #2 (x=1, y=1, w=0, h=2) has a non-positive size"
    );
    let p = at(&r, "maps/arena.toml", 28, 1);
    assert_eq!(
        p.message,
        "wall #3 (x=15, y=5, w=6, h=1) goes outside the 20 × 10 map"
    );
    assert_eq!(r.problems.len(), 2, "{}", r.render_text());
}

#[test]
fn spawns_must_be_inside_the_map_and_clear_of_walls() {
    let map = "\
width = 20
height = 10

[[wall]]
x = 15
y = 0
w = 1
h = 3

[[wall]]
x = 2
y = 3
w = 4
h = 4

[[spawn]]
x = 10
y = 5

[[spawn]]
x = 25
y = 5

[[spawn]]
x = 4
y = 5

[[spawn]]
x = 6.2
y = 5

[[spawn]]
x = 0.2
y = 5
";
    let r = map_report("maps = [\"arena\"]", map);
    let f = "maps/arena.toml";
    assert_eq!(
        at(&r, f, 20, 1).message,
        "spawn #2 at (25, 5) is outside the 20 × 10 map"
    );
    assert_eq!(
        at(&r, f, 24, 1).message,
        "spawn #3 at (4, 5) is inside wall #2 (x=2, y=3, w=4, h=4)"
    );
    let p = at(&r, f, 28, 1);
    assert_eq!(
        p.message,
        "spawn #4 at (6.2, 5) is too close to wall #2 (x=2, y=3, w=4, h=4)"
    );
    assert!(help(p).contains("(it is 0.2 away)"), "{}", help(p));
    assert_eq!(
        at(&r, f, 32, 1).message,
        "spawn #5 at (0.2, 5) is too close to the edge of the map"
    );
    assert_eq!(r.problems.len(), 4, "{}", r.render_text());
}

#[test]
fn spawn_clearance_uses_the_player_radius_from_game_toml() {
    // 1 unit from the wall: fine at the default radius 0.5, not at radius 1.5.
    let map = GOOD_MAP.replace("x = 2\ny = 2", "x = 8\ny = 2");
    assert!(load_memory(Some("maps = [\"arena\"]"), &[("arena", &map)]).is_ok());
    let r = map_report("maps = [\"arena\"]\n[player]\nradius = 1.5\n", &map);
    let p = at(&r, "maps/arena.toml", 10, 1);
    assert_eq!(
        p.message,
        "spawn #1 at (8, 2) is too close to wall #1 (x=9, y=0, w=2, h=4)"
    );
}

#[test]
fn a_map_needs_spawn_points() {
    let r = map_report("maps = [\"arena\"]", "width = 20\nheight = 10\n");
    let p = at(&r, "maps/arena.toml", 1, 1);
    assert_eq!(p.message, "the map has no spawn points");
    assert_eq!(r.problems.len(), 1);
}

#[test]
fn pickups_must_be_inside_and_clear_of_walls() {
    let map = format!("{GOOD_MAP}\n[[pickup]]\nx = 9.2\ny = 2\n\n[[pickup]]\nx = 10\ny = 9.9\n");
    let r = map_report("maps = [\"arena\"]", &map);
    let p = at(&r, "maps/arena.toml", 22, 1);
    assert_eq!(
        p.message,
        "pickup #2 at (9.2, 2) is inside wall #1 (x=9, y=0, w=2, h=4)"
    );
    let p = at(&r, "maps/arena.toml", 26, 1);
    assert_eq!(
        p.message,
        "pickup #3 at (10, 9.9) is too close to the edge of the map"
    );
    assert_eq!(r.problems.len(), 2, "{}", r.render_text());
}

#[test]
fn unreachable_pickup_is_named() {
    // A closed box in the middle with a pickup inside.
    let map = format!(
        "{GOOD_MAP}
[[wall]]
x = 13
y = 3
w = 4
h = 0.5

[[wall]]
x = 13
y = 6.5
w = 4
h = 0.5

[[wall]]
x = 13
y = 3.5
w = 0.5
h = 3

[[wall]]
x = 16.5
y = 3.5
w = 0.5
h = 3

[[pickup]]
x = 15
y = 5
"
    );
    let r = map_report("maps = [\"arena\"]", &map);
    let p = at(&r, "maps/arena.toml", 46, 1);
    assert_eq!(
        p.message,
        "pickup #2 at (15, 5) is unreachable: no player can get to it from any spawn point"
    );
    assert!(
        help(p).contains("gaps at least 1.25 units wide"),
        "{}",
        help(p)
    );
    assert_eq!(r.problems.len(), 1, "{}", r.render_text());
}

#[test]
fn cut_off_spawn_is_an_error() {
    // A full-height wall splits the map; spawn #2 and the pickup are on the far side.
    let map = GOOD_MAP
        .replace("h = 4", "h = 10")
        .replace("x = 10\ny = 8", "x = 4\ny = 8");
    let r = map_report("maps = [\"arena\"]", &map);
    let p = at(&r, "maps/arena.toml", 14, 1);
    assert_eq!(
        p.message,
        "spawn #2 at (18, 8) is cut off from spawn #1: players starting there can never reach the others"
    );
    assert_eq!(r.problems.len(), 1, "{}", r.render_text());
}

// --- Rule 7: missing and unreadable files; several files at once ---------------------

#[test]
fn missing_game_toml_and_unreadable_files_are_problems() {
    let dir = TempDir::new(&[
        ("maps/courtyard.toml", GOOD_MAP.as_bytes()),
        ("maps/broken.toml", b"width = 20\n# caf\xE9\n"),
        ("maps/Big Map.toml", GOOD_MAP.as_bytes()),
    ]);
    let r = report(load_dir(&dir.0));
    let p = at(&r, "game.toml", 1, 1);
    assert_eq!(p.message, "`game.toml` is missing");
    let p = at(&r, "maps/broken.toml", 2, 6);
    assert_eq!(p.message, "the file is not valid UTF-8 text");
    let p = at(&r, "maps/Big Map.toml", 1, 1);
    assert_eq!(p.message, "`Big Map.toml` is not a valid map file name");
    assert!(
        help(p).ends_with("e.g. rename it to `big_map.toml`"),
        "{}",
        help(p)
    );
    assert_eq!(r.problems.len(), 3, "{}", r.render_text());

    // A directory where a file should be cannot be read.
    let dir = TempDir::new(&[
        ("game.toml/oops", b""),
        ("maps/courtyard.toml", GOOD_MAP.as_bytes()),
    ]);
    let r = report(load_dir(&dir.0));
    assert!(
        at(&r, "game.toml", 1, 1)
            .message
            .starts_with("cannot read the file: ")
    );

    let r = report(load_dir(Path::new("/nonexistent/rallypoint-assets")));
    assert_eq!(
        r.problems[0].message,
        "assets directory not found (or not a directory)"
    );
}

#[test]
fn problems_in_different_files_are_reported_together() {
    let dir = TempDir::new(&[
        (
            "game.toml",
            b"maps = [\"courtyard\", \"warehouse\"]\n\n[player]\nmax_sped = 9\n",
        ),
        ("maps/courtyard.toml", b"width = 40\nheight = [30\n"),
        (
            "maps/warehouse.toml",
            GOOD_MAP.replace("x = 18\n", "x = 25\n").as_bytes(),
        ),
    ]);
    let r = report(load_dir(&dir.0));
    let text = r.render_text();
    at(&r, "game.toml", 4, 1);
    let p = at(&r, "maps/courtyard.toml", 2, 13);
    assert_eq!(p.message, "invalid TOML: unclosed array, expected `]`");
    at(&r, "maps/warehouse.toml", 14, 1);
    assert_eq!(r.problems.len(), 3, "{text}");
    assert!(text.ends_with("error: 3 problems in 3 files\n"), "{text}");
    // Sorted by file.
    let files: Vec<&str> = r.problems.iter().map(|p| p.file.as_str()).collect();
    assert_eq!(
        files,
        ["game.toml", "maps/courtyard.toml", "maps/warehouse.toml"]
    );
}

#[test]
fn load_map_file_reports_under_the_path_as_given() {
    let dir = TempDir::new(&[("arena.toml", b"width = 20\nheight = 10\nfoo = 1\n")]);
    let path = dir.0.join("arena.toml");
    let r = load_map_file(&path, &Tuning::default()).unwrap_err();
    let shown = path.display().to_string();
    assert_eq!(
        at(&r, &shown, 3, 1).message,
        "unknown key `foo` at the top level"
    );
    at(&r, &shown, 1, 1);
    let r = load_map_file(&dir.0.join("missing.toml"), &Tuning::default()).unwrap_err();
    assert_eq!(r.problems[0].message, "file not found");
}

// --- Rendering ----------------------------------------------------------------------

#[test]
fn render_text_and_json_carry_every_field() {
    let r = report(load_memory(
        Some("[player]\nmax_sped = 9\n"),
        &[("courtyard", GOOD_MAP)],
    ));
    assert_eq!(
        r.render_text(),
        "game.toml:2:1: error: unknown key `max_sped` in `[player]`\n  help: did you mean `max_speed`?\nerror: 1 problem in 1 file\n"
    );
    let json: serde_json::Value = serde_json::from_str(&r.render_json()).unwrap();
    assert_eq!(json["problem_count"], 1);
    assert_eq!(json["file_count"], 1);
    let p = &json["problems"][0];
    assert_eq!(p["file"], "game.toml");
    assert_eq!(p["line"], 2);
    assert_eq!(p["column"], 1);
    assert_eq!(p["message"], "unknown key `max_sped` in `[player]`");
    assert_eq!(p["help"], "did you mean `max_speed`?");
    assert!(Report::default().is_empty());
    assert_eq!(Report::default().render_text(), "ok: no problems found\n");
}

/// Checks that tags balance (enough for "a browser will parse it"); returns element names.
fn xml_elements(svg: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut names = Vec::new();
    let mut rest = svg;
    while let Some(start) = rest.find('<') {
        assert!(!rest[..start].contains('>'), "stray `>` in text");
        let end = rest[start..].find('>').expect("unclosed tag") + start;
        let tag = &rest[start + 1..end];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name.trim()),
                "mismatched </{name}>"
            );
        } else {
            let name = tag
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_string();
            names.push(name.clone());
            if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        rest = &rest[end + 1..];
    }
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    for entity in svg.match_indices('&') {
        let tail = &svg[entity.0..];
        assert!(
            ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                .iter()
                .any(|e| tail.starts_with(e))
        );
    }
    names
}

#[test]
fn render_svg_is_well_formed_with_one_rect_per_wall() {
    let assets = load_dir(&shipped_dir()).unwrap();
    for map in assets.game.maps.values() {
        let svg = render_svg(map, 0.5);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
        xml_elements(&svg);
        assert_eq!(svg.matches(r#"class="wall""#).count(), map.walls.len());
        assert_eq!(svg.matches(r#"class="spawn""#).count(), map.spawns.len());
        assert_eq!(svg.matches(r#"class="pickup""#).count(), map.pickups.len());
        assert!(svg.contains(&format!(">{}</title>", map.name)));
        assert!(svg.contains(&format!(">#{}</text>", map.spawns.len())));
    }
    // Hostile names and numbers still give a well-formed document.
    let odd = MapDef {
        name: "<a & \"b\">\u{1}".to_string(),
        width: f32::NAN,
        height: -3.0,
        walls: vec![Rect {
            x: f32::INFINITY,
            y: 0.0,
            w: -1.0,
            h: 1.0,
        }],
        spawns: vec![Point {
            x: f32::NAN,
            y: 1.0,
        }],
        pickups: vec![],
    };
    let svg = render_svg(&odd, f32::NAN);
    xml_elements(&svg);
    assert_eq!(svg.matches(r#"class="wall""#).count(), 1);
}

// --- Robustness ---------------------------------------------------------------------

/// xorshift, so the "fuzz" inputs are the same on every run.
fn rng(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn arbitrary_bytes_give_problems_not_panics() {
    let courtyard = std::fs::read(shipped_dir().join("maps/courtyard.toml")).unwrap();
    let game = std::fs::read(shipped_dir().join("game.toml")).unwrap();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let alphabet = b"[]{}=\"'.,#\n -+_0123456789xywhe\x00\xff\xc3";
    for round in 0..150 {
        let mut map = courtyard.clone();
        let mut game = game.clone();
        for _ in 0..(1 + round % 5) {
            let target = if rng(&mut seed).is_multiple_of(3) {
                &mut game
            } else {
                &mut map
            };
            let at = (rng(&mut seed) as usize) % target.len().max(1);
            match rng(&mut seed) % 4 {
                0 => target.truncate(at),
                1 => target.insert(at, alphabet[(rng(&mut seed) as usize) % alphabet.len()]),
                2 if at < target.len() => {
                    target.remove(at);
                }
                _ if at < target.len() => {
                    target[at] = alphabet[(rng(&mut seed) as usize) % alphabet.len()]
                }
                _ => {}
            }
        }
        let dir = TempDir::new(&[("game.toml", &game), ("maps/courtyard.toml", &map)]);
        if let Err(r) = load_dir(&dir.0) {
            assert!(!r.is_empty());
            for p in &r.problems {
                assert!(p.line >= 1 && p.column >= 1);
            }
            let _ = (r.render_text(), r.render_json());
        }
    }
    // Pure noise, and extreme-but-valid numbers.
    for _ in 0..50 {
        let len = (rng(&mut seed) % 200) as usize;
        let noise: Vec<u8> = (0..len).map(|_| rng(&mut seed) as u8).collect();
        let text = String::from_utf8_lossy(&noise).into_owned();
        let _ = load_memory(Some(&text), &[("courtyard", &text)]);
    }
    let huge = "width = 1000\nheight = 1000\n[[spawn]]\nx = 1\ny = 1\n[[spawn]]\nx = 999\ny = 999\n[[pickup]]\nx = 500\ny = 500\n";
    load_memory(
        Some("maps = [\"big\"]\n[player]\nradius = 0.1"),
        &[("big", huge)],
    )
    .unwrap();
    let r = map_report("", "width = nan\nheight = inf\nwall = 3\nspawn = [1, 2]\n");
    assert_eq!(
        at(&r, "maps/arena.toml", 1, 9).message,
        "`width` must be a finite number, found `nan`"
    );
    assert_eq!(
        at(&r, "maps/arena.toml", 4, 10).message,
        "spawn #1 must be a table, found a whole number"
    );
    at(&r, "maps/arena.toml", 3, 8);
}

/// For the README: prints a real multi-problem report (`cargo test ... -- --nocapture`).
#[test]
fn sample_report_for_the_readme() {
    let dir = TempDir::new(&[
        (
            "game.toml",
            b"tick_rate = 30\nsnapshot_rate = 20\nmaps = [\"courtyard\", \"warehose\"]\n\n[player]\nmax_sped = 9\nradius = \"big\"\n",
        ),
        (
            "maps/courtyard.toml",
            b"width = 40\nheight = 30\n\n[[wall]]\nx = 10\ny = 10\nw = 4\nh = 4\n\n[[wall]]\nx = 20\ny = 0\nw = 1\nh = 30\n\n[[spawn]]\nx = 5\ny = 5\n\n[[spawn]]\nx = 12\ny = 11\n\n[[spawn]]\nx = 30\ny = 5\n\n[[pickup]]\nx = 45\ny = 5\n",
        ),
    ]);
    let r = report(load_dir(&dir.0));
    println!("{}", r.render_text());
    println!("{}", r.render_json());
    assert_eq!(r.problems.len(), 7, "{}", r.render_text());
}

#[test]
fn readme_examples_are_valid() {
    let readme = std::fs::read_to_string(shipped_dir().join("README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .collect();
    let duel = blocks
        .iter()
        .find(|b| b.starts_with("# duel"))
        .expect("example map");
    let game = blocks
        .iter()
        .find(|b| b.contains("[weapon]\ndamage = 30"))
        .expect("example game.toml");
    let courtyard = std::fs::read_to_string(shipped_dir().join("maps/courtyard.toml")).unwrap();
    let warehouse = std::fs::read_to_string(shipped_dir().join("maps/warehouse.toml")).unwrap();
    let game = game.replace("\"warehouse\"]", "\"warehouse\", \"duel\"]");
    let maps = [
        ("courtyard", courtyard.as_str()),
        ("warehouse", &warehouse),
        ("duel", duel),
    ];
    let assets = load_memory(Some(&game), &maps).unwrap_or_else(|r| panic!("{}", r.render_text()));
    assert_eq!(assets.game.tuning.player.max_speed, 9.0);
    assert_eq!(assets.game.maps["duel"].spawns.len(), 2);
}
