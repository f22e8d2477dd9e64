//! Outlines of up to 16 cell sets at once, traced from a raster of bit masks.
//!
//! [`crate::stages::isochrone::lane_isochrones`] leaves, per travel time, a raster whose cells
//! hold one bit per lane (POI): the lanes whose isochrone holds the cell. Listing each lane's
//! cells and tracing them with [`trace_cells`] costs time in proportion to the cells, tens of
//! thousands per isochrone. [`MaskTracer`] instead makes one cheap pass over the raster for
//! all lanes together, then walks each outline, in time proportional to its length.
//!
//! The polygons are exactly those of [`trace_cells`] on each lane's cells (a test compares
//! them on random rasters), because:
//! - a walk along the boundary with the cells on its left that turns left at every saddle (two
//!   diagonal cells present, the other two absent) goes round one 4-connected component's
//!   boundary against one 8-connected area of absent cells;
//! - where it comes back to the same saddle, the component meets itself diagonally there (a
//!   hole touching the exterior, or another hole). [`trace_cells`] turns right at such a
//!   saddle; that pairs the same edges the other way at that one vertex, which is the same as
//!   cutting the walk at the vertex into two rings;
//! - rings are then started at their lowest-then-leftmost vertex, told apart by orientation
//!   (exteriors counter-clockwise, holes clockwise) and sorted by that vertex, as there.
//!
//! A hole belongs to the polygon of the component around it; here it goes to the innermost
//! exterior containing the centre of the cell on the left of its first edge (a cell of that
//! component). Exteriors nested inside one another start strictly higher, so in sorted order
//! the last exterior containing the point is the innermost.
//!
//! [`trace_cells`]: super::grid::trace_cells

use geo::{Coord, LineString, MultiPolygon, Polygon};

use super::grid::Cell;

/// Directions of unit boundary edges, counter-clockwise: `(d + 1) % 4` is a left turn.
const EAST: u8 = 0;
const NORTH: u8 = 1;
const WEST: u8 = 2;

/// One lane's outline for one raster.
#[derive(Clone, Debug, PartialEq)]
pub struct LaneOutline {
    /// The polygons, as [`super::grid::trace_cells`] gives them for the lane's cells.
    pub outline: MultiPolygon<f64>,
    /// How many cells the lane holds (the polygons' area in cells).
    pub cells: u64,
}

impl LaneOutline {
    /// No cells: no polygons.
    pub fn empty() -> Self {
        LaneOutline {
            outline: MultiPolygon(Vec::new()),
            cells: 0,
        }
    }
}

/// A closed ring of lattice vertices (absolute cell-corner indices), starting at its
/// lowest-then-leftmost vertex, without the closing repeat.
struct Ring {
    corners: Vec<(i64, i64)>,
    /// Twice the signed area in cells: positive for a counter-clockwise exterior.
    twice_area: i64,
    /// Lowest and highest x and y: (x0, y0, x1, y1).
    bounds: (i64, i64, i64, i64),
}

impl Ring {
    /// Sort key: the first vertex, lowest then leftmost.
    fn key(&self) -> (i64, i64) {
        let (x, y) = self.corners[0];
        (y, x)
    }

    /// Whether the point (`px`/2, `py`/2) lies inside; `py` must be odd (a half-integer `y`,
    /// never on a vertex's row), so every crossing is clear-cut.
    fn contains_doubled(&self, px: i64, py: i64) -> bool {
        let (x0, y0, x1, y1) = self.bounds;
        if px < 2 * x0 || px > 2 * x1 || py < 2 * y0 || py > 2 * y1 {
            return false;
        }
        let n = self.corners.len();
        let mut inside = false;
        for k in 0..n {
            let (ax, ay) = self.corners[k];
            let (bx, by) = self.corners[(k + 1) % n];
            // Rings are rectilinear: only vertical edges can cross a horizontal ray.
            if ax == bx && (2 * ay < py) != (2 * by < py) && 2 * ax > px {
                inside = !inside;
            }
        }
        inside
    }

    fn to_line_string(&self, cell_m: f64) -> LineString<f64> {
        let mut coords: Vec<Coord<f64>> = self
            .corners
            .iter()
            .map(|&(x, y)| Coord {
                x: x as f64 * cell_m,
                y: y as f64 * cell_m,
            })
            .collect();
        coords.push(coords[0]);
        LineString(coords)
    }
}

/// Traces the lanes of a mask raster into polygons, reusing its buffers between rasters.
#[derive(Default)]
pub struct MaskTracer {
    /// Per cell, the lanes whose bottom edge (walked heading east) has been walked.
    walked: Vec<u16>,
    /// Corners of the current walk (frame vertex coordinates), and which of them are saddles
    /// (vertex, position in the walk).
    walk: Vec<(i32, i32)>,
    saddles: Vec<((i32, i32), usize)>,
    /// Positions in the walk of saddles it passes twice, ascending.
    repeated: Vec<usize>,
    /// Cutting a walk into rings: the corners not yet closed into a ring, and the repeated
    /// saddles passed once so far (vertex, index in `stack`).
    stack: Vec<(i32, i32)>,
    open: Vec<((i32, i32), usize)>,
    /// Rings found, per lane.
    rings: Vec<Vec<Ring>>,
}

impl MaskTracer {
    /// The outline of each of the first `lanes` lanes of `masks`, a raster of `w` columns of
    /// `h` cells each (index `i·h + j`) whose first cell is `c0`; bit `l` of a cell's mask
    /// says whether lane `l` holds it. Coordinates are cell-corner indices times `cell_m`.
    ///
    /// Cost: one pass over the raster, then time in proportion to the outlines' lengths.
    pub fn trace(
        &mut self,
        masks: &[u16],
        c0: Cell,
        w: usize,
        h: usize,
        lanes: usize,
        cell_m: f64,
    ) -> Vec<LaneOutline> {
        assert!(lanes <= 16, "a mask holds at most 16 lanes");
        assert_eq!(masks.len(), w * h, "the raster must be w × h cells");
        let wanted: u16 = if lanes == 16 {
            u16::MAX
        } else {
            (1u16 << lanes) - 1
        };
        self.rings.resize_with(lanes, Vec::new);
        for r in &mut self.rings {
            r.clear();
        }
        self.walked.clear();
        self.walked.resize(w * h, 0);
        for i in 0..w {
            for j in 0..h {
                let k = i * h + j;
                let below = if j > 0 { masks[k - 1] } else { 0 };
                // Every ring has a bottom edge (an exterior along its lowest row, a hole along
                // its top row): start each at the first one the scan meets.
                let mut starts = masks[k] & !below & !self.walked[k] & wanted;
                while starts != 0 {
                    let lane = starts.trailing_zeros() as usize;
                    starts &= starts - 1;
                    self.walk_ring(masks, w, h, 1 << lane, i as i32, j as i32);
                    self.cut_rings(lane, c0);
                }
            }
        }
        (0..lanes)
            .map(|lane| assemble(&mut self.rings[lane], cell_m))
            .collect()
    }

    /// Walks the boundary of lane `bit` from vertex (`sx`, `sy`) heading east (the bottom edge
    /// of cell (`sx`, `sy`)) with the lane's cells on the left, turning left at saddles, back
    /// to that edge; leaves the corners in `walk` and the saddles among them in `saddles`.
    fn walk_ring(&mut self, masks: &[u16], w: usize, h: usize, bit: u16, sx: i32, sy: i32) {
        let holds = |x: i32, y: i32| {
            x >= 0
                && y >= 0
                && (x as usize) < w
                && (y as usize) < h
                && masks[x as usize * h + y as usize] & bit != 0
        };
        self.walk.clear();
        self.saddles.clear();
        let (mut x, mut y, mut d) = (sx, sy, EAST);
        // A ring has at most 4 edges per cell; the bound only guards against a broken raster
        // walk looping forever.
        for _ in 0..4 * (w + 1) * (h + 1) {
            match d {
                EAST => {
                    self.walked[x as usize * h + y as usize] |= bit;
                    x += 1;
                }
                NORTH => y += 1,
                WEST => x -= 1,
                _ => y -= 1,
            }
            // The two cells ahead of the vertex reached, left and right of the way on.
            let (left, right) = match d {
                EAST => (holds(x, y), holds(x, y - 1)),
                NORTH => (holds(x - 1, y), holds(x, y)),
                WEST => (holds(x - 1, y - 1), holds(x - 1, y)),
                _ => (holds(x, y - 1), holds(x - 1, y - 1)),
            };
            let next = if !left {
                (d + 1) % 4
            } else if right {
                (d + 3) % 4
            } else {
                d
            };
            if next != d {
                if !left && right {
                    self.saddles.push(((x, y), self.walk.len()));
                }
                self.walk.push((x, y));
            }
            d = next;
            if (x, y, d) == (sx, sy, EAST) {
                return;
            }
        }
        unreachable!("a boundary walk on a finite raster closes");
    }

    /// Cuts the last walk into rings at the saddles it passes twice and files them under
    /// `lane`, in absolute vertex coordinates (`c0` is the raster's first cell).
    fn cut_rings(&mut self, lane: usize, c0: Cell) {
        self.repeated.clear();
        if self.saddles.len() >= 2 {
            self.saddles.sort_unstable();
            for pair in self.saddles.windows(2) {
                if pair[0].0 == pair[1].0 {
                    self.repeated.extend([pair[0].1, pair[1].1]);
                }
            }
            self.repeated.sort_unstable();
        }
        let rings = &mut self.rings[lane];
        if self.repeated.is_empty() {
            rings.push(ring(&self.walk, c0));
            return;
        }
        // A closed walk touching itself at vertices, without crossing, splits into simple
        // rings the way parentheses match: at a repeated vertex's second visit, the corners
        // since its first visit close into a ring, and the vertex stays for the rest.
        self.stack.clear();
        self.open.clear();
        for (pos, &v) in self.walk.iter().enumerate() {
            if self.repeated.binary_search(&pos).is_ok() {
                if let Some(o) = self.open.iter().position(|o| o.0 == v) {
                    let at = self.open.swap_remove(o).1;
                    rings.push(ring(&self.stack[at..], c0));
                    self.stack.truncate(at + 1);
                    continue;
                }
                self.open.push((v, self.stack.len()));
            }
            self.stack.push(v);
        }
        rings.push(ring(&self.stack, c0));
    }
}

/// The ring through `corners` (frame vertex coordinates, in walking order), in absolute
/// vertex coordinates, started at its lowest-then-leftmost vertex.
fn ring(corners: &[(i32, i32)], c0: Cell) -> Ring {
    let first = (0..corners.len())
        .min_by_key(|&k| (corners[k].1, corners[k].0))
        .expect("a ring has corners");
    let mut out = Vec::with_capacity(corners.len());
    let (ox, oy) = (i64::from(c0.i), i64::from(c0.j));
    let mut bounds = (i64::MAX, i64::MAX, i64::MIN, i64::MIN);
    for &(x, y) in corners[first..].iter().chain(&corners[..first]) {
        let (x, y) = (ox + i64::from(x), oy + i64::from(y));
        bounds = (
            bounds.0.min(x),
            bounds.1.min(y),
            bounds.2.max(x),
            bounds.3.max(y),
        );
        out.push((x, y));
    }
    let n = out.len();
    let twice_area = (0..n)
        .map(|k| {
            let ((ax, ay), (bx, by)) = (out[k], out[(k + 1) % n]);
            ax * by - bx * ay
        })
        .sum();
    Ring {
        corners: out,
        twice_area,
        bounds,
    }
}

/// Sorts one lane's rings, makes each exterior a polygon and gives each hole to the innermost
/// exterior around it.
fn assemble(rings: &mut [Ring], cell_m: f64) -> LaneOutline {
    rings.sort_unstable_by_key(Ring::key);
    let twice_cells: i64 = rings.iter().map(|r| r.twice_area).sum();
    let mut exteriors: Vec<usize> = Vec::new();
    let mut polygons: Vec<Polygon<f64>> = Vec::new();
    for (k, r) in rings.iter().enumerate() {
        if r.twice_area > 0 {
            exteriors.push(k);
            polygons.push(Polygon::new(r.to_line_string(cell_m), Vec::new()));
            continue;
        }
        // A hole starts heading north; the cell on its left, west of its first vertex, is a
        // cell of the component around it. Test that cell's centre (doubled coordinates).
        let (x, y) = r.corners[0];
        let (px, py) = (2 * x - 1, 2 * y + 1);
        let parent = exteriors
            .iter()
            .rposition(|&e| rings[e].contains_doubled(px, py));
        debug_assert!(parent.is_some(), "a hole lies inside some exterior");
        if let Some(p) = parent {
            polygons[p].interiors_push(r.to_line_string(cell_m));
        }
    }
    LaneOutline {
        outline: MultiPolygon(polygons),
        cells: (twice_cells / 2) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::grid::trace_cells;
    use crate::testdata::XorShift;

    /// Each lane of `masks` against `trace_cells` of its cells.
    fn check(masks: &[u16], c0: Cell, w: usize, h: usize, lanes: usize, cell_m: f64) {
        let got = MaskTracer::default().trace(masks, c0, w, h, lanes, cell_m);
        assert_eq!(got.len(), lanes);
        for (lane, outline) in got.iter().enumerate() {
            let cells: Vec<Cell> = (0..w)
                .flat_map(|i| (0..h).map(move |j| (i, j)))
                .filter(|&(i, j)| masks[i * h + j] & (1 << lane) != 0)
                .map(|(i, j)| Cell {
                    i: c0.i + i as i32,
                    j: c0.j + j as i32,
                })
                .collect();
            assert_eq!(outline.cells, cells.len() as u64, "lane {lane}");
            assert_eq!(
                outline.outline,
                trace_cells(&cells, cell_m),
                "lane {lane} of {masks:?} ({w}×{h})"
            );
        }
    }

    #[test]
    fn hand_made_shapes() {
        // Columns of 4 cells, lane 0 only: a 3×3 block with its centre missing (one hole)...
        let ring: Vec<u16> = vec![1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0];
        check(&ring, Cell { i: 5, j: -7 }, 3, 4, 1, 25.0);
        // ...cells touching only at a corner (two polygons)...
        check(&[1, 0, 0, 1], Cell { i: 0, j: 0 }, 2, 2, 1, 10.0);
        // ...a hole touching the exterior at a saddle: an L around a missing corner cell.
        let saddle: Vec<u16> = vec![1, 1, 1, 1, 0, 1, 1, 1, 0];
        check(&saddle, Cell { i: 0, j: 0 }, 3, 3, 1, 10.0);
        // Cells on the raster's border, and an empty lane.
        check(&[1, 1, 1, 1], Cell { i: -3, j: 2 }, 2, 2, 2, 100.0);
        // Nested: a square ring around a smaller square ring around one cell (three polygons,
        // two holes); each hole belongs to the innermost exterior around it.
        check(&concentric(9, 0, 0), Cell { i: 10, j: 10 }, 9, 9, 1, 100.0);
    }

    /// A `size`×`size` raster of lane 0 in concentric square rings (every other ring of cells
    /// held), with `flips` random cells toggled.
    fn concentric(size: usize, flips: usize, seed: u64) -> Vec<u16> {
        let c = (size / 2) as i64;
        let mut masks: Vec<u16> = (0..size * size)
            .map(|k| {
                let (i, j) = ((k / size) as i64, (k % size) as i64);
                u16::from((i - c).abs().max((j - c).abs()) % 2 == 0)
            })
            .collect();
        let mut rng = XorShift(seed | 1);
        for _ in 0..flips {
            masks[rng.below((size * size) as u64) as usize] ^= 1;
        }
        masks
    }

    #[test]
    fn nested_rings_with_noise() {
        for seed in 0..200 {
            let size = 5 + (seed as usize % 12);
            let masks = concentric(size, seed as usize % 7, seed);
            check(&masks, Cell { i: -50, j: 7 }, size, size, 1, 100.0);
        }
    }

    #[test]
    fn empty_raster_gives_empty_outlines() {
        let got = MaskTracer::default().trace(&[0; 12], Cell { i: 0, j: 0 }, 3, 4, 16, 100.0);
        assert_eq!(got.len(), 16);
        assert!(got.iter().all(|o| o.cells == 0 && o.outline.0.is_empty()));
    }

    #[test]
    fn random_rasters_trace_as_trace_cells() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut tracer = MaskTracer::default();
        for round in 0..400 {
            let (w, h) = (1 + rng.below(18) as usize, 1 + rng.below(18) as usize);
            let lanes = 1 + rng.below(16) as usize;
            // Per lane a density; some rounds keep blobs (cells copy a neighbour) so that big
            // components with holes, islands in holes and saddles all occur.
            let density: Vec<u64> = (0..lanes).map(|_| 20 + rng.below(70)).collect();
            let mut masks = vec![0u16; w * h];
            for i in 0..w {
                for j in 0..h {
                    for (lane, d) in density.iter().enumerate() {
                        let bit = 1u16 << lane;
                        let on = if round % 2 == 1 && i > 0 && rng.below(100) < 50 {
                            masks[(i - 1) * h + j] & bit != 0
                        } else {
                            rng.below(100) < *d
                        };
                        if on {
                            masks[i * h + j] |= bit;
                        }
                    }
                }
            }
            let c0 = Cell {
                i: rng.below(2000) as i32 - 1000,
                j: rng.below(2000) as i32 - 1000,
            };
            let cell_m = if round % 3 == 0 { 30.0 } else { 100.0 };
            check(&masks, c0, w, h, lanes, cell_m);
            // The same tracer again: its buffers must not leak between rasters.
            let again = tracer.trace(&masks, c0, w, h, lanes, cell_m);
            let fresh = MaskTracer::default().trace(&masks, c0, w, h, lanes, cell_m);
            assert_eq!(again, fresh);
        }
    }
}
