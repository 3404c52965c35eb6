//! Where a player can walk: a flood fill over a grid of cells whose centres are positions
//! a player's centre may occupy (at least `radius` from every wall and map edge, i.e. the
//! walls inflated by the player radius into rounded rectangles).
//!
//! Must not report problems or know file formats; it answers which spawn points share an
//! area and which pickups a player from some spawn point can touch.
//!
//! Cells are `radius / 2` wide so a gap a player fits through (with a quarter of a
//! diameter to spare) always contains a free cell centre, and no wall, inflated to at
//! least a diameter, can be stepped over between neighbouring centres. A huge map with a
//! tiny radius would need hundreds of millions of cells; past [`MAX_CELLS`] the cells
//! grow instead, which only makes the narrowest gaps look closed (never walls look open
//! while cells stay under a player diameter).

use super::{Point, Rect};

/// Grid budget: 4 M cells of 2 bytes. A 500 × 500 map at the default radius fits at full
/// resolution.
pub(crate) const MAX_CELLS: usize = 4_000_000;

const FREE: u16 = 0;
const BLOCKED: u16 = u16::MAX;

/// The space to walk in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arena<'a> {
    pub width: f32,
    pub height: f32,
    pub walls: &'a [Rect],
    /// Player radius.
    pub radius: f32,
}

/// The answer.
#[derive(Debug, Clone)]
pub(crate) struct Reach {
    /// Per spawn point: the id of the connected area it is in, or `None` when no free
    /// cell is near it (boxed in). Equal ids mean players can walk between them.
    pub spawn_component: Vec<Option<u16>>,
    /// Per pickup: whether a player standing in some spawn point's area can touch it.
    pub pickup_reachable: Vec<bool>,
    /// Cell size used, units.
    pub cell: f32,
}

struct Grid {
    nx: usize,
    ny: usize,
    cell: f64,
    cells: Vec<u16>,
}

/// Labels the areas around `spawns` and tests `pickups` (of radius `pickup_radius`)
/// against them.
pub(crate) fn analyse(
    arena: &Arena<'_>,
    spawns: &[Point],
    pickups: &[Point],
    pickup_radius: f32,
    max_cells: usize,
) -> Reach {
    let Some(mut grid) = Grid::build(arena, max_cells) else {
        // Only reachable with unvalidated numbers; claim nothing rather than everything
        // being cut off.
        return Reach {
            spawn_component: (1..=spawns.len()).map(|_| Some(1)).collect(),
            pickup_reachable: vec![true; pickups.len()],
            cell: 0.0,
        };
    };
    let radius = f64::from(arena.radius);
    let mut next: u16 = 1;
    let mut spawn_component = Vec::with_capacity(spawns.len());
    for &spawn in spawns {
        let component = grid
            .seed(spawn, radius)
            .and_then(|seed| match grid.cells[seed] {
                FREE if next < BLOCKED => {
                    grid.fill(seed, next);
                    next += 1;
                    Some(next - 1)
                }
                FREE | BLOCKED => None,
                label => Some(label),
            });
        spawn_component.push(component);
    }
    let touch = radius + f64::from(pickup_radius);
    let pickup_reachable = pickups
        .iter()
        .map(|&p| grid.any_labelled_within(p, touch))
        .collect();
    Reach {
        spawn_component,
        pickup_reachable,
        cell: grid.cell as f32,
    }
}

impl Grid {
    fn build(arena: &Arena<'_>, max_cells: usize) -> Option<Grid> {
        let (w, h, r) = (
            f64::from(arena.width),
            f64::from(arena.height),
            f64::from(arena.radius),
        );
        if !(w.is_finite() && h.is_finite() && r.is_finite() && w > 0.0 && h > 0.0 && r > 0.0) {
            return None;
        }
        let mut cell = r / 2.0;
        let budget = max_cells.max(1) as f64;
        if (w / cell).ceil() * (h / cell).ceil() > budget {
            cell = (w * h / budget).sqrt();
            while (w / cell).ceil() * (h / cell).ceil() > budget {
                cell *= 1.01;
            }
        }
        // Bounded by the budget above, so these conversions cannot truncate.
        let nx = (w / cell).ceil().max(1.0) as usize;
        let ny = (h / cell).ceil().max(1.0) as usize;
        let mut grid = Grid {
            nx,
            ny,
            cell,
            cells: vec![FREE; nx * ny],
        };

        let walls: Vec<[f64; 4]> = arena
            .walls
            .iter()
            .map(|r| {
                let (x, y) = (f64::from(r.x), f64::from(r.y));
                [x, y, x + f64::from(r.w), y + f64::from(r.h)]
            })
            .collect();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for j in 0..ny {
            let yc = (j as f64 + 0.5) * cell;
            let row = &mut grid.cells[j * nx..(j + 1) * nx];
            if yc < r || yc > h - r {
                row.fill(BLOCKED);
                continue;
            }
            spans.clear();
            // Centres closer than `r` to an edge: the player would stick out of the map.
            spans.extend(cells_between(f64::NEG_INFINITY, r, cell, nx));
            spans.extend(cells_between(w - r, f64::INFINITY, cell, nx));
            for &[x0, y0, x1, y1] in &walls {
                let dy = (y0 - yc).max(yc - y1).max(0.0);
                if dy >= r {
                    continue;
                }
                // The rounded rectangle's half-extent beyond the wall at this row.
                let ext = (r * r - dy * dy).sqrt();
                spans.extend(cells_between(x0 - ext, x1 + ext, cell, nx));
            }
            // Merging first keeps this linear in the row width even when many walls
            // overlap.
            spans.sort_unstable();
            let mut end = 0;
            for &(lo, hi) in &spans {
                let lo = lo.max(end);
                if lo < hi {
                    row[lo..hi].fill(BLOCKED);
                }
                end = end.max(hi);
            }
        }
        Some(grid)
    }

    /// A free cell a player at `p` can step into: within a few cells, and closer than a
    /// diameter so no wall (at least `radius` from both ends) can lie in between.
    fn seed(&self, p: Point, radius: f64) -> Option<usize> {
        let (px, py) = (f64::from(p.x), f64::from(p.y));
        let (ci, cj) = self.cell_of(px, py);
        let mut best: Option<(f64, usize)> = None;
        for (i, j) in self.cells_in(px, py, 2.0 * self.cell) {
            let idx = j * self.nx + i;
            if self.cells[idx] == BLOCKED {
                continue;
            }
            let (cx, cy) = self.centre(idx);
            let d = (cx - px).hypot(cy - py);
            let contains = (i as i64, j as i64) == (ci, cj);
            if (d < 2.0 * radius || contains) && best.is_none_or(|(bd, _)| d < bd) {
                best = Some((d, idx));
            }
        }
        best.map(|(_, idx)| idx)
    }

    /// 4-connected flood fill; diagonal steps could slip between two walls that meet at
    /// a corner.
    fn fill(&mut self, seed: usize, label: u16) {
        let mut stack = vec![seed];
        self.cells[seed] = label;
        while let Some(idx) = stack.pop() {
            let (i, j, nx) = (idx % self.nx, idx / self.nx, self.nx);
            let neighbours = [
                (i > 0).then(|| idx - 1),
                (i + 1 < nx).then(|| idx + 1),
                (j > 0).then(|| idx - nx),
                (j + 1 < self.ny).then(|| idx + nx),
            ];
            for n in neighbours.into_iter().flatten() {
                if self.cells[n] == FREE {
                    self.cells[n] = label;
                    stack.push(n);
                }
            }
        }
    }

    fn any_labelled_within(&self, p: Point, dist: f64) -> bool {
        let (px, py) = (f64::from(p.x), f64::from(p.y));
        self.cells_in(px, py, dist).any(|(i, j)| {
            let idx = j * self.nx + i;
            let label = self.cells[idx];
            let (cx, cy) = self.centre(idx);
            label != FREE && label != BLOCKED && (cx - px).hypot(cy - py) <= dist
        })
    }

    /// The cell containing a point (may lie outside the grid).
    fn cell_of(&self, x: f64, y: f64) -> (i64, i64) {
        // `as` saturates (and maps NaN to 0), so odd input cannot overflow here.
        (
            (x / self.cell).floor() as i64,
            (y / self.cell).floor() as i64,
        )
    }

    /// Grid cells overlapping the square of half-size `reach` around a point, clamped to
    /// the grid so a wild point never means a wild loop.
    fn cells_in(&self, x: f64, y: f64, reach: f64) -> impl Iterator<Item = (usize, usize)> {
        let clamp = |v: i64, n: usize| v.clamp(0, n as i64 - 1) as usize;
        let (lo_i, lo_j) = self.cell_of(x - reach, y - reach);
        let (hi_i, hi_j) = self.cell_of(x + reach, y + reach);
        let outside = hi_i < 0 || hi_j < 0 || lo_i >= self.nx as i64 || lo_j >= self.ny as i64;
        let (lo_i, hi_i) = (clamp(lo_i, self.nx), clamp(hi_i, self.nx));
        let (lo_j, hi_j) = (clamp(lo_j, self.ny), clamp(hi_j, self.ny));
        // `take(0)` rather than an empty range literal, which would need a different type.
        let rows = (lo_j..=hi_j).take(if outside { 0 } else { usize::MAX });
        rows.flat_map(move |j| (lo_i..=hi_i).map(move |i| (i, j)))
    }

    fn centre(&self, idx: usize) -> (f64, f64) {
        let (i, j) = (idx % self.nx, idx / self.nx);
        ((i as f64 + 0.5) * self.cell, (j as f64 + 0.5) * self.cell)
    }
}

/// Indices `lo..hi` of the cells whose centre lies strictly between `a` and `b` (a player
/// exactly touching a wall is fine).
fn cells_between(a: f64, b: f64, cell: f64, n: usize) -> Option<(usize, usize)> {
    // Centre of cell i is (i + 0.5) * cell; solve a < centre < b. `as` saturates, and the
    // clamps below keep the result inside the row.
    let lo = ((a / cell - 0.5).floor() + 1.0).max(0.0);
    let hi = ((b / cell - 0.5).ceil()).min(n as f64);
    // Also rejects NaN bounds.
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    Some((lo as usize, hi as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arena(walls: &[Rect]) -> Arena<'_> {
        Arena {
            width: 20.0,
            height: 10.0,
            walls,
            radius: 0.5,
        }
    }

    fn pt(x: f32, y: f32) -> Point {
        Point { x, y }
    }

    #[test]
    fn open_floor_connects_everything() {
        let r = analyse(
            &arena(&[]),
            &[pt(2.0, 2.0), pt(18.0, 8.0)],
            &[pt(10.0, 5.0)],
            0.6,
            MAX_CELLS,
        );
        assert_eq!(r.spawn_component, vec![Some(1), Some(1)]);
        assert_eq!(r.pickup_reachable, vec![true]);
        assert_eq!(r.cell, 0.25);
    }

    #[test]
    fn a_full_height_wall_splits_the_map() {
        let walls = [Rect {
            x: 9.0,
            y: 0.0,
            w: 2.0,
            h: 10.0,
        }];
        let r = analyse(
            &arena(&walls),
            &[pt(2.0, 2.0), pt(18.0, 8.0)],
            &[pt(15.0, 5.0)],
            0.6,
            MAX_CELLS,
        );
        assert_eq!(r.spawn_component, vec![Some(1), Some(2)]);
        assert_eq!(r.pickup_reachable, vec![true]);
    }

    #[test]
    fn gaps_narrower_than_a_player_are_closed_and_wider_ones_open() {
        // Wall from the top to y = 8.9: the gap below is 1.1 high, wider than the 1.0
        // diameter but narrower than diameter + cell (1.25), so it may go either way;
        // 0.9 must be closed and 1.5 open.
        for (gap, open) in [(0.9_f32, false), (1.5, true)] {
            let walls = [Rect {
                x: 9.0,
                y: 0.0,
                w: 2.0,
                h: 10.0 - gap,
            }];
            let r = analyse(
                &arena(&walls),
                &[pt(2.0, 2.0), pt(18.0, 2.0)],
                &[],
                0.6,
                MAX_CELLS,
            );
            assert_eq!(
                r.spawn_component[0] == r.spawn_component[1],
                open,
                "gap {gap}"
            );
        }
    }

    #[test]
    fn over_budget_grids_coarsen_instead_of_exploding() {
        let a = Arena {
            width: 1000.0,
            height: 1000.0,
            walls: &[],
            radius: 0.1,
        };
        let r = analyse(&a, &[pt(1.0, 1.0), pt(999.0, 999.0)], &[], 0.6, 10_000);
        assert!(r.cell >= 10.0, "cell {}", r.cell);
        // The spawns are inside the blocked edge cells of such a coarse grid, yet the
        // nearest cell still seeds them.
        assert_eq!(r.spawn_component, vec![Some(1), Some(1)]);
    }

    #[test]
    fn wild_points_neither_panic_nor_loop() {
        let r = analyse(
            &arena(&[]),
            &[pt(f32::NAN, 1e30), pt(-1e30, 5.0), pt(2.0, 2.0)],
            &[pt(f32::INFINITY, 0.0), pt(10.0, 5.0)],
            1e30,
            MAX_CELLS,
        );
        assert_eq!(r.spawn_component.len(), 3);
        assert_eq!(r.spawn_component[2], Some(1));
        assert_eq!(r.pickup_reachable.len(), 2);
        let bad = Arena {
            width: f32::NAN,
            height: 10.0,
            walls: &[],
            radius: 0.5,
        };
        assert_eq!(
            analyse(&bad, &[pt(1.0, 1.0)], &[], 0.6, MAX_CELLS).spawn_component,
            [Some(1)]
        );
    }
}
