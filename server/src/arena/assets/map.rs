//! The arena's maps: `maps/<name>.toml` read by serde into a [`MapDef`], its validation
//! pass (required keys, sizes, entry counts), then `geometry` for placement and
//! reachability.
//!
//! Must not know `game.toml` beyond the [`Tuning`] it is given.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::ArenaAssets;
use super::geometry::{self, Layout, WallEntry};
use super::tuning::Tuning;
use crate::assets::{
    Check, Document, Files, Limits, Loaded, Problem, Report, Source, check_map_name, read_file,
};

const MAP_SIZE: Limits = Limits::new(10.0, 1000.0, "units");

/// Caps that keep validation (and the grid flood fill) fast on hostile input, far above
/// anything playable.
const MAX_WALLS: usize = 4096;
const MAX_SPAWNS: usize = 1024;
const MAX_PICKUPS: usize = 1024;

/// An axis-aligned rectangle: top-left corner and size, units (y grows downwards).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width, > 0.
    pub w: f32,
    /// Height, > 0.
    pub h: f32,
}

/// A point, units.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Point {
    /// x
    pub x: f32,
    /// y
    pub y: f32,
}

/// A validated map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapDef {
    /// File stem; how `game.toml` and clients refer to the map.
    pub name: String,
    /// Width, units. 10..=1000.
    pub width: f32,
    /// Height, units. 10..=1000.
    pub height: f32,
    /// Solid walls, each inside the map.
    pub walls: Vec<Rect>,
    /// Spawn points: at least one; each inside the map and clear of walls by the player
    /// radius.
    pub spawns: Vec<Point>,
    /// Health pickup locations: inside the map, clear of walls, reachable from a spawn.
    pub pickups: Vec<Point>,
}

/// `maps/<name>.toml` as written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
struct MapFile {
    width: f32,
    height: f32,
    wall: Vec<Spanned<Rect>>,
    spawn: Vec<Spanned<Point>>,
    pickup: Vec<Spanned<Point>>,
}

/// Every `maps/*.toml`, checked against `tuning`.
pub(super) fn load(tuning: Tuning, files: &mut Files<'_>) -> Loaded<ArenaAssets> {
    let listing = files.list("maps");
    let (mut maps, mut present) = (BTreeMap::new(), BTreeSet::new());
    // Any case, so `Arena.TOML` gets a helpful error instead of being ignored; other
    // extensions (`x.toml~`, `x.toml.wip`) are not maps.
    let toml_files = listing.iter().flatten().filter_map(|file| {
        let (stem, ext) = file.rsplit_once('.')?;
        ext.eq_ignore_ascii_case("toml")
            .then_some((file, stem, ext))
    });
    for (file, stem, ext) in toml_files {
        let rel = format!("maps/{file}");
        let named = check_map_name(stem).and_then(|()| match ext {
            "toml" => Ok(()),
            _ => Err(format!(
                "map files end in `.toml`, lowercase: rename it to `{stem}.toml`"
            )),
        });
        if let Err(help) = named {
            let message = format!("`{file}` is not a valid map file name");
            files.report([Problem::file(rel, message, Some(help))]);
            continue;
        }
        present.insert(stem.to_string());
        let Some(src) = files.read(&rel) else {
            continue;
        };
        let (map, problems) = read_map(&src, stem, &tuning);
        maps.extend(map.map(|m| (stem.to_string(), Arc::new(m))));
        files.report(problems);
    }
    let no_maps = match listing {
        None => "there is no `maps/` directory next to `game.toml`",
        Some(_) => "there are no map files in `maps/`",
    };
    Loaded {
        game: Some(ArenaAssets { tuning, maps }),
        maps: present,
        no_maps: Some(no_maps.to_string()),
    }
}

/// Loads and validates one map file against `tuning` (for `render-map` and previews).
/// Problems are reported under the path as given.
pub fn load_map_file(path: &Path, tuning: &Tuning) -> Result<MapDef, Report> {
    match read_map_file(path, tuning) {
        (Some(map), report) if report.is_empty() => Ok(map),
        (_, report) => Err(report),
    }
}

/// [`load_map_file`] for drawing: the map as far as it could be read (even when a check
/// failed) and every problem found.
pub fn read_map_file(path: &Path, tuning: &Tuning) -> (Option<MapDef>, Report) {
    let display = path.display().to_string();
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let stem = stem.unwrap_or_default();
    let named = check_map_name(&stem).map_err(|help| {
        let message = format!("`{stem}` is not a valid map name (it comes from the file name)");
        Problem::file(display.clone(), message, Some(help))
    });
    let mut problems: Vec<Problem> = named.err().into_iter().collect();
    let map = match read_file(path, &display) {
        Ok(src) => {
            let (map, found) = read_map(&src, &stem, tuning);
            problems.extend(found);
            map
        }
        Err(problem) => {
            problems.push(problem);
            None
        }
    };
    (map, problems.into())
}

/// Reads and checks one map. The map comes back whenever it could be read far enough for
/// its geometry to be checked, even if that check failed: callers refuse it while there
/// are problems.
fn read_map(src: &Source, name: &str, tuning: &Tuning) -> (Option<MapDef>, Vec<Problem>) {
    let mut doc = Document::parse(src);
    let map = doc.syntax_ok().then(|| {
        let file: MapFile = doc.read_checked();
        check(&file, name, tuning, &mut doc.check())
    });
    (map.flatten(), doc.finish())
}

/// The validation pass over one map.
fn check(file: &MapFile, name: &str, tuning: &Tuning, c: &mut Check<'_>) -> Option<MapDef> {
    let width = c.required_real("width", file.width, MAP_SIZE);
    let height = c.required_real("height", file.height, MAP_SIZE);
    let walls = c.entries("wall", &file.wall, MAX_WALLS, |c, wall| {
        let read = ["x", "y", "w", "h"]
            .into_iter()
            .zip([wall.x, wall.y, wall.w, wall.h])
            .fold(true, |ok, (key, v)| {
                c.required_real(key, v, Limits::ANY) & ok
            });
        read.then(|| WallEntry {
            rect: *wall,
            w_span: c.span("w"),
            h_span: c.span("h"),
        })
    });
    let spawns = c.entries("spawn", &file.spawn, MAX_SPAWNS, point);
    let pickups = c.entries("pickup", &file.pickup, MAX_PICKUPS, point);
    // Counted as written, not as read: an entry with a typo is reported on its own and
    // should not also make the map look spawn-less.
    if c.count("spawn") == Some(0) {
        c.report(
            0..0,
            "the map has no spawn points",
            Some("add `[[spawn]]` entries with `x` and `y`; 2-16 players need at least 6 or so, spread around the map".to_string()),
        );
    }
    let (true, true, Some(walls), Some(spawns), Some(pickups)) =
        (width, height, walls, spawns, pickups)
    else {
        return None;
    };
    let layout = Layout {
        width: file.width,
        height: file.height,
        walls,
        spawns,
        pickups,
    };
    geometry::check(c, &layout, tuning);
    Some(MapDef {
        name: name.to_string(),
        width: file.width,
        height: file.height,
        walls: layout.walls.iter().map(|w| w.value.rect).collect(),
        spawns: layout.spawns.iter().map(|s| s.value).collect(),
        pickups: layout.pickups.iter().map(|p| p.value).collect(),
    })
}

/// A spawn point or pickup: `x` and `y`, both required.
fn point(c: &mut Check<'_>, p: &Point) -> Option<Point> {
    let x = c.required_real("x", p.x, Limits::ANY);
    let y = c.required_real("y", p.y, Limits::ANY);
    (x && y).then_some(*p)
}
