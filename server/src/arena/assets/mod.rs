//! The arena's assets: its tuning (the `[player]`, `[weapon]`, `[pickup]` and `[round]`
//! tables of `game.toml`, in [`tuning`]) and its maps (`maps/*.toml`, in [`map`]: their
//! geometry and reachability rules, and an SVG drawing of each), read and validated
//! through the engine's [`crate::assets`] machinery.
//!
//! Must not do IO beyond what [`Files`] and [`load_map_file`] read; the simulation
//! only ever sees the validated values.

mod geometry;
mod map;
mod reach;
mod svg;
mod tuning;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::assets::{Check, Files, Loaded};
use crate::game::GameAssets;

pub use map::{MapDef, Point, Rect, load_map_file, read_map_file};
pub use svg::{render_svg, render_svg_with_problems};
pub use tuning::{
    MAX_LAG_COMPENSATION_S, PickupTuning, PlayerTuning, RoundTuning, Tuning, WeaponTuning,
};

/// The arena's data: its tuning and its maps.
#[derive(Debug, Clone, PartialEq)]
pub struct ArenaAssets {
    /// `[player]`, `[weapon]`, `[pickup]`, `[round]` in `game.toml`.
    pub tuning: Tuning,
    /// Every map in `maps/`, by name.
    pub maps: BTreeMap<String, Arc<MapDef>>,
}

impl GameAssets for ArenaAssets {
    type Settings = Tuning;
    const DEFAULT_MAP: &'static str = "courtyard";

    fn check_settings(tuning: &Tuning, check: &mut Check<'_>) {
        tuning::check(tuning, check);
    }

    fn load(tuning: Tuning, files: &mut Files<'_>) -> Loaded<ArenaAssets> {
        map::load(tuning, files)
    }

    fn missing_map(name: &str) -> String {
        format!("map `{name}` not found: there is no `maps/{name}.toml`")
    }

    fn has_map(&self, name: &str) -> bool {
        self.maps.contains_key(name)
    }

    fn render_map(&self, name: &str) -> Option<String> {
        let map = self.maps.get(name)?;
        Some(render_svg(map, self.tuning.player.radius))
    }

    fn summary(&self) -> String {
        format!("{} maps", self.maps.len())
    }

    fn describe(&self) -> serde_json::Value {
        serde_json::json!({ "maps": self.maps.keys().collect::<Vec<_>>() })
    }
}
