//! `maps/<name>.toml`: its keys read into a [`MapDef`], then handed to `geometry` for the
//! placement and reachability rules. Also owns what a valid map name is.
//!
//! Must not read files or know about `game.toml` beyond the [`Tuning`] it is given.

use std::ops::Range;

use super::fields::{Limits, Scope, TableReader, limits, report_unknowns};
use super::geometry::{self, Placed};
use super::model::{MapDef, Point, Rect, Tuning};
use super::parse::parse;
use super::report::Problem;
use super::source::Source;

const MAP_SIZE: Limits = limits(10.0, 1000.0, "units");

/// Caps that keep validation (and the grid flood fill) fast on hostile input, far above
/// anything playable.
pub(crate) const MAX_WALLS: usize = 4096;
pub(crate) const MAX_SPAWNS: usize = 1024;
pub(crate) const MAX_PICKUPS: usize = 1024;

/// Longest accepted map name.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// Map names travel to clients and into URLs (`/admin/maps/<name>.svg`), hence the
/// conservative alphabet.
pub(crate) fn is_valid_map_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// Help for an invalid map name: the nearest valid one.
pub(crate) fn name_help(name: &str) -> String {
    let fixed: String = name
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME_LEN)
        .collect();
    if is_valid_map_name(&fixed) {
        format!(
            "map names use only lowercase letters a-z, digits, `_` and `-` (at most {MAX_NAME_LEN}); e.g. rename it to `{fixed}.toml`"
        )
    } else {
        format!(
            "map names use only lowercase letters a-z, digits, `_` and `-` (at most {MAX_NAME_LEN})"
        )
    }
}

/// Reads and validates one map; `None` if anything is wrong (all of it in `out`).
pub(crate) fn read_map(
    src: &Source,
    name: &str,
    tuning: &Tuning,
    out: &mut Vec<Problem>,
) -> Option<MapDef> {
    let (doc, syntax) = parse(src);
    if let Some(problem) = syntax {
        out.push(problem);
        return None;
    }
    let mut top = TableReader::new(src, doc.get_ref(), Scope::Top, 0..0);
    let width = top.required_float(out, "width", Some(MAP_SIZE));
    let height = top.required_float(out, "height", Some(MAP_SIZE));

    let walls = read_entries(src, &mut top, "wall", MAX_WALLS, out, |e, out| {
        let x = e.required_float(out, "x", None);
        let y = e.required_float(out, "y", None);
        let w = e.required_float(out, "w", None);
        let h = e.required_float(out, "h", None);
        let (x, y, w, h) = (x?, y?, w?, h?);
        Some(geometry::WallEntry {
            rect: Rect {
                x: x.0,
                y: y.0,
                w: w.0,
                h: h.0,
            },
            w_span: w.1,
            h_span: h.1,
        })
    });
    let mut point = |e: &mut TableReader<'_, '_>, out: &mut Vec<Problem>| {
        let x = e.required_float(out, "x", None);
        let y = e.required_float(out, "y", None);
        Some(Point { x: x?.0, y: y?.0 })
    };
    let spawns = read_entries(src, &mut top, "spawn", MAX_SPAWNS, out, &mut point);
    let pickups = read_entries(src, &mut top, "pickup", MAX_PICKUPS, out, &mut point);
    let unknowns = top.finish();
    report_unknowns(src, &unknowns, &|_| None, out);

    // Counted as written, not as read: an entry with a typo is reported on its own and
    // should not also make the map look spawn-less.
    let written_spawns = match doc.get_ref().get("spawn").map(|v| v.get_ref()) {
        None => Some(0),
        Some(toml::de::DeValue::Array(a)) => Some(a.len()),
        Some(_) => None,
    };
    if written_spawns == Some(0) {
        out.push(src.problem(
            0..0,
            "the map has no spawn points",
            Some("add `[[spawn]]` entries with `x` and `y`; 2-16 players need at least 6 or so, spread around the map".to_string()),
        ));
    }
    if let (Some((width, _)), Some((height, _)), Some(walls), Some(spawns), Some(pickups)) =
        (width, height, walls, spawns, pickups)
    {
        let map = geometry::Layout {
            width,
            height,
            walls,
            spawns,
            pickups,
        };
        geometry::check(src, &map, tuning, out);
        // Built even when a check failed, so `render-map` can draw what is wrong; every
        // caller refuses the map while `out` holds a problem.
        return Some(MapDef {
            name: name.to_string(),
            width,
            height,
            walls: map.walls.iter().map(|w| w.value.rect).collect(),
            spawns: map.spawns.iter().map(|s| s.value).collect(),
            pickups: map.pickups.iter().map(|p| p.value).collect(),
        });
    }
    None
}

/// Reads every `[[kind]]` entry. Entries with a missing or malformed field are reported
/// and left out; `None` when there are too many to check.
fn read_entries<'a, 'i, T>(
    src: &Source,
    top: &mut TableReader<'a, 'i>,
    kind: &'static str,
    max: usize,
    out: &mut Vec<Problem>,
    mut read: impl FnMut(&mut TableReader<'a, 'i>, &mut Vec<Problem>) -> Option<T>,
) -> Option<Vec<Placed<T>>> {
    let entries = top.entries(out, kind);
    if let Some(extra) = entries.get(max) {
        out.push(src.problem(
            extra.span(),
            format!(
                "too many `[[{kind}]]` entries: {} (at most {max})",
                entries.len()
            ),
            None,
        ));
        return None;
    }
    let mut placed = Vec::new();
    for mut entry in entries {
        let index = match entry.scope() {
            Scope::Entry { index, .. } => *index,
            _ => 0,
        };
        let span: Range<usize> = entry.span();
        let value = read(&mut entry, out);
        report_unknowns(src, &entry.finish(), &|_| None, out);
        if let Some(value) = value {
            placed.push(Placed { index, span, value });
        }
    }
    Some(placed)
}
