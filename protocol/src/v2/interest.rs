//! Interest management: which entities a player sees, from a uniform grid over the
//! entities' positions, with hysteresis against what the client already knows.
//!
//! An entity the client does not know enters its view within `radius` of the viewer; one
//! it knows stays until it is farther than `radius + margin`, so an entity walking along
//! the border does not flap in and out. Distances are between quantized true positions,
//! in integer steps. The grid is rebuilt at most once per tick with cells as wide as the
//! view's reach, so a query visits at most 3 × 3 cells. Pure; no IO.

use serde::{Deserialize, Serialize};

use super::bits::IdSet;
use super::state::WireState;

/// Most cells a grid may have; a world spread wider than that gets wider cells.
const MAX_CELLS: i64 = 1 << 16;

/// The view of a player, in world units.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interest {
    /// Entities within this distance of the player's own entity enter its view. 0 means
    /// every player sees everything.
    pub radius: f32,
    /// Extra distance before a known entity leaves the view again.
    pub margin: f32,
}

impl Default for Interest {
    /// Everything: the right default for small maps, where a radius saves nothing.
    fn default() -> Interest {
        Interest {
            radius: 0.0,
            margin: 0.0,
        }
    }
}

impl Interest {
    /// Whether every player sees everything.
    pub fn is_everything(&self) -> bool {
        !(self.radius.is_finite() && self.radius > 0.0)
    }
}

/// Radii in position steps, squared for comparisons.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reach {
    enter2: i64,
    stay2: i64,
    pub(crate) stay: i64,
}

/// Largest reach in steps: squared distances of two such offsets still fit an `i64`.
const MAX_REACH: i64 = 1 << 30;

impl Reach {
    pub(crate) fn new(interest: Interest, position_scale: f64) -> Reach {
        let steps =
            |v: f32| ((f64::from(v.max(0.0)) * position_scale).ceil() as i64).min(MAX_REACH);
        let enter = steps(interest.radius);
        let stay = (enter + steps(interest.margin)).clamp(1, MAX_REACH);
        Reach {
            enter2: enter * enter,
            stay2: stay * stay,
            stay,
        }
    }
}

/// Live entities bucketed by cell, rebuilt once per tick.
#[derive(Debug, Clone, Default)]
pub(crate) struct Grid {
    tick: Option<u32>,
    cell: i64,
    origin: [i64; 2],
    dims: [i64; 2],
    /// `start[c]..start[c + 1]` are the entries of cell `c` in `items`.
    start: Vec<u32>,
    /// Each live entity with its position, by cell.
    items: Vec<(u32, [i64; 2])>,
}

impl Grid {
    /// Buckets the live entities of `state` at its tick, unless already done.
    pub(crate) fn build(&mut self, state: &WireState, reach: i64) {
        if self.tick.is_some() && self.tick == state.tick {
            return;
        }
        self.tick = state.tick;
        let pos = |id: u32| state.slots[id as usize].now;
        let (mut lo, mut hi) = ([i64::MAX; 2], [i64::MIN; 2]);
        for id in state.live.iter() {
            let p = pos(id);
            for a in 0..2 {
                lo[a] = lo[a].min(p[a]);
                hi[a] = hi[a].max(p[a]);
            }
        }
        if lo[0] > hi[0] {
            (lo, hi) = ([0; 2], [0; 2]);
        }
        self.origin = lo;
        self.cell = reach.max(1);
        loop {
            self.dims = [
                (hi[0] - lo[0]) / self.cell + 1,
                (hi[1] - lo[1]) / self.cell + 1,
            ];
            if self.dims[0].saturating_mul(self.dims[1]) <= MAX_CELLS {
                break;
            }
            self.cell = self.cell.saturating_mul(2);
        }
        self.fill(state);
    }

    fn cell_of(&self, p: [i64; 2]) -> usize {
        let cx = (p[0] - self.origin[0]) / self.cell;
        let cy = (p[1] - self.origin[1]) / self.cell;
        (cy * self.dims[0] + cx) as usize
    }

    /// Counting sort of the live ids into cells.
    fn fill(&mut self, state: &WireState) {
        let cells = (self.dims[0] * self.dims[1]) as usize;
        self.start.clear();
        self.start.resize(cells + 1, 0);
        for id in state.live.iter() {
            let c = self.cell_of(state.slots[id as usize].now);
            self.start[c + 1] += 1;
        }
        for c in 0..cells {
            self.start[c + 1] += self.start[c];
        }
        self.items.clear();
        self.items.resize(self.start[cells] as usize, (0, [0; 2]));
        let mut next = self.start.clone();
        for id in state.live.iter() {
            let p = state.slots[id as usize].now;
            let c = self.cell_of(p);
            self.items[next[c] as usize] = (id, p);
            next[c] += 1;
        }
    }

    /// Every live entity in the cells that overlap the square `center ± reach`, with its
    /// offset from `center` when that is within the square.
    fn near(&self, center: [i64; 2], reach: i64, mut f: impl FnMut(u32, i64, i64)) {
        let range = |a: usize| {
            let from = |c: i64| c.saturating_sub(self.origin[a]).div_euclid(self.cell);
            let (lo, hi) = (
                from(center[a].saturating_sub(reach)),
                from(center[a].saturating_add(reach)),
            );
            lo.max(0)..=hi.min(self.dims[a] - 1)
        };
        for cy in range(1) {
            for cx in range(0) {
                let c = (cy * self.dims[0] + cx) as usize;
                let (a, b) = (self.start[c] as usize, self.start[c + 1] as usize);
                for &(id, p) in &self.items[a..b] {
                    let (dx, dy) = (p[0] - center[0], p[1] - center[1]);
                    if dx.abs() <= reach && dy.abs() <= reach {
                        f(id, dx, dy);
                    }
                }
            }
        }
    }

    /// Fills `out` with the view around `center`: entities known at the baseline (and
    /// not reborn since) stay within the outer radius, others enter within the inner one.
    pub(crate) fn view(
        &self,
        state: &WireState,
        reach: Reach,
        center: [i64; 2],
        base: Option<(u32, &IdSet)>,
        out: &mut IdSet,
    ) {
        out.clear();
        self.near(center, reach.stay, |id, dx, dy| {
            let d2 = dx * dx + dy * dy;
            let stays = || {
                base.is_some_and(|(tick, set)| {
                    set.contains(id) && state.slots[id as usize].born <= tick
                })
            };
            if d2 <= reach.enter2 || (d2 <= reach.stay2 && stays()) {
                out.insert(id);
            }
        });
    }
}
