//! The global analysis grid in EPSG:5070 and tracing cell sets into polygons.
//!
//! Every isochrone is a set of cells of ONE grid anchored at the projection's origin: cell
//! `(i, j)` covers `[i·c, (i+1)·c) × [j·c, (j+1)·c)` metres for cell size `c`. Because EPSG:5070
//! is equal-area, `count × c²` is an exact area, unions of isochrones are set unions, and the
//! join with block groups can be precomputed per block group (see [`crate::geom::clip`]).

use geo::{Coord, LineString, MultiPolygon, Polygon, Rect};
use serde::{Deserialize, Serialize};

/// One cell of the analysis grid: column `i` (x, east) and row `j` (y, north).
///
/// The derived order is column-major (`i`, then `j`); sorted cell lists everywhere in the crate
/// use this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cell {
    /// Column: the cell spans `x ∈ [i·c, (i+1)·c)`.
    pub i: i32,
    /// Row: the cell spans `y ∈ [j·c, (j+1)·c)`.
    pub j: i32,
}

/// The analysis grid: square cells of `cell_m` metres anchored at the EPSG:5070 origin.
///
/// `cell_m` must be finite and positive ([`Grid::new`] checks this). With an integer-valued
/// `cell_m` every cell corner is an exact `f64`, which makes traced areas exact.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Cell side, metres.
    pub cell_m: f64,
}

impl Grid {
    /// A grid of `cell_m`-metre cells; a configuration error unless `cell_m` is finite and > 0.
    pub fn new(cell_m: f64) -> crate::Result<Grid> {
        if cell_m.is_finite() && cell_m > 0.0 {
            Ok(Grid { cell_m })
        } else {
            Err(crate::Error::Config(format!(
                "grid cell size must be a positive number of metres, got {cell_m}"
            )))
        }
    }

    /// The cell containing `p` (EPSG:5070 metres). Points on a cell edge belong to the cell
    /// above / to the right. Coordinates beyond the `i32` index range saturate (NaN maps to 0),
    /// so this never panics.
    #[inline]
    pub fn cell_of(&self, p: Coord<f64>) -> Cell {
        Cell {
            i: (p.x / self.cell_m).floor() as i32,
            j: (p.y / self.cell_m).floor() as i32,
        }
    }

    /// The cell's square, `[i·c, (i+1)·c] × [j·c, (j+1)·c]`.
    #[inline]
    pub fn cell_rect(&self, c: Cell) -> Rect<f64> {
        let x0 = f64::from(c.i) * self.cell_m;
        let y0 = f64::from(c.j) * self.cell_m;
        Rect::new(
            Coord { x: x0, y: y0 },
            Coord {
                x: (f64::from(c.i) + 1.0) * self.cell_m,
                y: (f64::from(c.j) + 1.0) * self.cell_m,
            },
        )
    }

    /// The cell's centre.
    #[inline]
    pub fn cell_center(&self, c: Cell) -> Coord<f64> {
        Coord {
            x: (f64::from(c.i) + 0.5) * self.cell_m,
            y: (f64::from(c.j) + 0.5) * self.cell_m,
        }
    }

    /// Area of one cell, m² (exact on the ground, since EPSG:5070 is equal-area).
    #[inline]
    pub fn cell_area_m2(&self) -> f64 {
        self.cell_m * self.cell_m
    }
}

/// Directions of unit boundary edges, numbered counter-clockwise so that `(d + 1) % 4` is a
/// left turn.
const EAST: u8 = 0;
const NORTH: u8 = 1;
const WEST: u8 = 2;
const SOUTH: u8 = 3;

/// Lattice vertices are packed into a `u64` as `(y + 2³¹) << 32 | (x + 2³¹)`, so that integer
/// order is (lowest, then leftmost) order and a step is an addition.
const BIAS: i64 = 1 << 31;

#[inline]
fn vkey(x: i64, y: i64) -> u64 {
    (((y + BIAS) as u64) << 32) | ((x + BIAS) as u64)
}

#[inline]
fn vxy(key: u64) -> (i64, i64) {
    ((key & 0xffff_ffff) as i64 - BIAS, (key >> 32) as i64 - BIAS)
}

/// Key of the vertex one unit step from `key` in direction `dir`.
#[inline]
fn step(key: u64, dir: u8) -> u64 {
    match dir {
        EAST => key + 1,
        NORTH => key + (1 << 32),
        WEST => key - 1,
        _ => key - (1 << 32),
    }
}

/// A unit boundary edge with the union's interior on its left.
#[derive(Clone, Copy)]
struct Edge {
    /// Start vertex ([`vkey`]).
    start: u64,
    /// Index (into the cell list) of the cell on the edge's left.
    cell: u32,
    dir: u8,
}

/// Union-find root with path halving.
fn find(parent: &mut [u32], mut a: u32) -> u32 {
    while parent[a as usize] != a {
        let g = parent[parent[a as usize] as usize];
        parent[a as usize] = g;
        a = g;
    }
    a
}

fn union(parent: &mut [u32], a: u32, b: u32) {
    let (ra, rb) = (find(parent, a), find(parent, b));
    // The smaller index becomes the root; any rule would do, this one is deterministic.
    if ra < rb {
        parent[rb as usize] = ra;
    } else if rb < ra {
        parent[ra as usize] = rb;
    }
}

/// The exact outline of the union of `cells` (grid of `cell_m`-metre cells) as polygons.
///
/// `cells` should be sorted and deduplicated (the natural output of a set of cells); if it is
/// not, a sorted copy is made. Cells with `i` or `j` equal to `i32::MAX` have no representable
/// upper corner and are ignored.
///
/// The result:
/// - one polygon per 4-connected component of cells: cells that touch only at a corner are
///   separate polygons;
/// - exterior rings counter-clockwise, holes clockwise (RFC 7946), rings closed, no collinear
///   vertices, every ring starting at its lowest-then-leftmost vertex;
/// - polygons sorted by the lowest-then-leftmost vertex of their exterior, holes likewise;
/// - no ring ever touches itself. At a "saddle" vertex (two diagonal cells present, the other
///   two absent) the boundary turns left (keeping the two cells apart) when the two cells are
///   in different components, and right when they are in the same component: there the
///   vertex is where a hole touches the exterior (or another hole), and turning right gives two
///   rings that touch at one point (valid OGC) instead of one ring that touches itself.
/// - Coordinates are `index × cell_m`; with an integer-valued `cell_m` they are exact, and the
///   polygons' area is exactly `cells.len() × cell_m²`.
///
/// Method and cost, for n cells and E ≤ 4n boundary edges: one merge sweep over adjacent
/// columns finds each cell's four neighbours, emits the unit boundary edges (interior on the
/// left) and unites 4-adjacent cells in a union-find (O(n α(n))); the edges are sorted by start
/// vertex (a counting sort by row, O(E), whenever the rows span less than ~4E; else O(E log E))
/// and chained by a binary search within one row (O(E log w) for rows of w edges); each ring's
/// first edge tells exterior (heading east) from hole (heading north), and a hole is attached
/// to the polygon of its own component, found through the cell on its left, so no
/// point-in-polygon test is needed. Total O(n log n) time at worst, O(n) memory.
pub fn trace_cells(cells: &[Cell], cell_m: f64) -> MultiPolygon<f64> {
    let sorted_copy;
    let cells = if cells.windows(2).all(|w| w[0] < w[1]) && !has_max(cells) {
        cells
    } else {
        let mut v: Vec<Cell> = cells
            .iter()
            .copied()
            .filter(|c| c.i != i32::MAX && c.j != i32::MAX)
            .collect();
        v.sort_unstable();
        v.dedup();
        sorted_copy = v;
        &sorted_copy[..]
    };
    let n = cells.len();
    if n == 0 || n > u32::MAX as usize {
        return MultiPolygon(Vec::new());
    }

    let (edges, comp) = boundary_edges(cells);
    chain_rings(&edges, &comp, cell_m)
}

fn has_max(cells: &[Cell]) -> bool {
    cells.iter().any(|c| c.i == i32::MAX || c.j == i32::MAX)
}

/// Unit boundary edges sorted by start vertex, and each cell's component root.
fn boundary_edges(cells: &[Cell]) -> (Vec<Edge>, Vec<u32>) {
    let n = cells.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    let mut edges: Vec<Edge> = Vec::with_capacity(n * 2 + 4);

    // Column ranges [start, end) in the column-major sorted list.
    let mut prev: (usize, usize) = (0, 0); // previous column, if it is column i-1 (else empty)
    let mut a = 0;
    while a < n {
        let i = cells[a].i;
        let mut b = a + 1;
        while b < n && cells[b].i == i {
            b += 1;
        }
        let mut c = b;
        while c < n && cells[c].i == i + 1 {
            c += 1;
        }
        let next = (b, c); // next column's range if it is column i+1 (empty otherwise)
        let left = if prev.0 < prev.1 && cells[prev.0].i == i - 1 {
            prev
        } else {
            (0, 0)
        };

        let (mut pl, mut pr) = (left.0, next.0);
        // Whether the cell below (j − 1) had a left neighbour: then this cell's left
        // neighbour is already in its component (through the cell below, the cell below-left
        // and their shared column), and the union is skipped — one per overlap of a run with
        // the column on its left instead of one per cell.
        let mut below_had_left = false;
        for idx in a..b {
            let j = cells[idx].j;
            while pl < left.1 && cells[pl].j < j {
                pl += 1;
            }
            while pr < next.1 && cells[pr].j < j {
                pr += 1;
            }
            let has_left = pl < left.1 && cells[pl].j == j;
            let has_right = pr < next.1 && cells[pr].j == j;
            let has_below = idx > a && cells[idx - 1].j == j - 1;
            let has_above = idx + 1 < b && cells[idx + 1].j == j + 1;
            if has_below {
                union(&mut parent, idx as u32, idx as u32 - 1);
            }
            if has_left && !(has_below && below_had_left) {
                union(&mut parent, idx as u32, pl as u32);
            }
            below_had_left = has_left;
            let (x, y) = (i64::from(i), i64::from(j));
            let cell = idx as u32;
            if !has_below {
                edges.push(Edge {
                    start: vkey(x, y),
                    cell,
                    dir: EAST,
                });
            }
            if !has_right {
                edges.push(Edge {
                    start: vkey(x + 1, y),
                    cell,
                    dir: NORTH,
                });
            }
            if !has_above {
                edges.push(Edge {
                    start: vkey(x + 1, y + 1),
                    cell,
                    dir: WEST,
                });
            }
            if !has_left {
                edges.push(Edge {
                    start: vkey(x, y + 1),
                    cell,
                    dir: SOUTH,
                });
            }
        }
        prev = (a, b);
        a = b;
    }
    // Flatten so that component lookups during chaining are plain reads.
    let comp: Vec<u32> = (0..n as u32).map(|k| find(&mut parent, k)).collect();
    sort_edges(&mut edges, cells);
    (edges, comp)
}

/// Sorts edges by start vertex (row, then column) and returns the compact row index: the
/// start offset of each distinct row, plus a final `edges.len()`.
///
/// The edges come out of [`boundary_edges`] column by column, so within one row they are
/// already sorted up to a displacement of at most three places. When the rows span no more
/// than a few times the number of edges (always, for isochrones), a counting sort by row
/// followed by an insertion sort within each row is O(E); otherwise a general O(E log E) sort.
fn sort_edges(edges: &mut Vec<Edge>, cells: &[Cell]) {
    let (mut jmin, mut jmax) = (i64::MAX, i64::MIN);
    for c in cells {
        jmin = jmin.min(i64::from(c.j));
        jmax = jmax.max(i64::from(c.j));
    }
    let span = (jmax - jmin + 2) as u64; // vertex rows jmin ..= jmax + 1
    if span > 4 * edges.len() as u64 + 64 {
        edges.sort_unstable_by_key(|e| e.start);
        return;
    }
    let row_of = |e: &Edge| (vxy(e.start).1 - jmin) as usize;
    let mut start = vec![0u32; span as usize + 1];
    for e in edges.iter() {
        start[row_of(e) + 1] += 1;
    }
    for r in 0..span as usize {
        start[r + 1] += start[r];
    }
    let mut fill = start.clone();
    let mut sorted = vec![
        Edge {
            start: 0,
            cell: 0,
            dir: 0
        };
        edges.len()
    ];
    for e in edges.iter() {
        let r = row_of(e);
        sorted[fill[r] as usize] = *e;
        fill[r] += 1;
    }
    for r in 0..span as usize {
        let row = &mut sorted[start[r] as usize..start[r + 1] as usize];
        // Insertion sort: near-linear on this nearly sorted input.
        for k in 1..row.len() {
            let cur = row[k];
            let mut m = k;
            while m > 0 && row[m - 1].start > cur.start {
                row[m] = row[m - 1];
                m -= 1;
            }
            row[m] = cur;
        }
    }
    *edges = sorted;
}

/// Start offsets of each distinct row of sorted `edges`, plus a final `edges.len()`.
fn row_index(edges: &[Edge]) -> Vec<u32> {
    let mut rows = Vec::new();
    let mut last = u64::MAX;
    for (k, e) in edges.iter().enumerate() {
        let y = e.start >> 32;
        if y != last {
            rows.push(k as u32);
            last = y;
        }
    }
    rows.push(edges.len() as u32);
    rows
}

/// Chains sorted unit edges into rings and groups them into polygons.
fn chain_rings(edges: &[Edge], comp: &[u32], cell_m: f64) -> MultiPolygon<f64> {
    let m = edges.len();
    let mut used = vec![false; m];
    // Component root → index of its polygon in `polys`.
    let mut poly_of: Vec<u32> = vec![u32::MAX; comp.len()];
    let mut polys: Vec<Polygon<f64>> = Vec::new();
    let mut ring: Vec<Coord<f64>> = Vec::new();
    let rows = row_index(edges);
    // Row (index into `rows`) of each edge's start, tracked while walking: a step north or
    // south lands on the adjacent distinct row, because the vertex reached has outgoing edges.
    let mut row_at = 0usize;
    let to_coord = |key: u64| {
        let (x, y) = vxy(key);
        Coord {
            x: x as f64 * cell_m,
            y: y as f64 * cell_m,
        }
    };

    for first in 0..m {
        while rows[row_at + 1] as usize <= first {
            row_at += 1;
        }
        if used[first] {
            continue;
        }
        let mut r = row_at;
        // `first` is the unused edge with the smallest start vertex. All edges of its ring are
        // unused, so that vertex is the ring's lowest-leftmost vertex: a corner, which makes it
        // a safe place to start and end without a collinear vertex.
        ring.clear();
        let mut e = first;
        let mut prev_dir = u8::MAX;
        let mut steps = 0usize;
        loop {
            used[e] = true;
            let edge = edges[e];
            if edge.dir != prev_dir {
                ring.push(to_coord(edge.start));
                prev_dir = edge.dir;
            }
            let end = step(edge.start, edge.dir);
            r = match edge.dir {
                NORTH => r + 1,
                SOUTH => match r.checked_sub(1) {
                    Some(below) => below,
                    None => break,
                },
                _ => r,
            };
            let Some(&[lo, hi]) = rows.get(r..r + 2) else {
                break;
            };
            let row = &edges[lo as usize..hi as usize];
            let k = lo as usize + row.partition_point(|x| x.start < end);
            let next = if k + 1 < m && edges[k + 1].start == end {
                // Saddle: two edges leave this vertex. Their left cells are the two diagonal
                // cells; see the function docs for the rule.
                let left_turn = (edge.dir + 1) % 4;
                let (l, r) = if edges[k].dir == left_turn {
                    (k, k + 1)
                } else {
                    (k + 1, k)
                };
                let same = comp[edges[l].cell as usize] == comp[edges[r].cell as usize];
                if same { r } else { l }
            } else {
                k
            };
            steps += 1;
            // The guard cannot trigger for edges built by `boundary_edges` (each vertex pairs
            // ins with outs one-to-one), but a broken chain must not loop or index out of range.
            if next == first || next >= m || edges[next].start != end || steps > m {
                break;
            }
            e = next;
        }
        if ring.len() < 4 {
            continue;
        }
        ring.push(ring[0]);
        let root = comp[edges[first].cell as usize] as usize;
        let ls = LineString(ring.clone());
        if edges[first].dir == EAST {
            // Leaving the lowest-leftmost vertex eastwards with the interior on the left: a
            // counter-clockwise exterior. Rings are found in increasing order of their first
            // vertex, so polygons come out sorted.
            poly_of[root] = polys.len() as u32;
            polys.push(Polygon::new(ls, Vec::new()));
        } else if let Some(p) = polys.get_mut(poly_of[root] as usize) {
            // A clockwise hole. Its exterior lies strictly lower, so it was found first.
            p.interiors_push(ls);
        }
    }
    MultiPolygon(polys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Area, Contains, Point, Validation};
    use std::collections::{BTreeSet, VecDeque};

    const C: f64 = 25.0;

    fn cells(v: &[(i32, i32)]) -> Vec<Cell> {
        let mut out: Vec<Cell> = v.iter().map(|&(i, j)| Cell { i, j }).collect();
        out.sort();
        out.dedup();
        out
    }

    fn coords(ls: &LineString<f64>) -> Vec<(f64, f64)> {
        ls.0.iter().map(|c| (c.x / C, c.y / C)).collect()
    }

    #[test]
    fn grid_basics() {
        let g = Grid::new(C).unwrap();
        assert_eq!(g.cell_of(Coord { x: 0.0, y: 0.0 }), Cell { i: 0, j: 0 });
        assert_eq!(g.cell_of(Coord { x: 24.999, y: 25.0 }), Cell { i: 0, j: 1 });
        assert_eq!(
            g.cell_of(Coord {
                x: -0.001,
                y: -25.0
            }),
            Cell { i: -1, j: -1 }
        );
        assert_eq!(
            g.cell_of(Coord {
                x: -1_234_567.0,
                y: 2_000_000.0
            }),
            Cell {
                i: -49383,
                j: 80000
            }
        );
        let r = g.cell_rect(Cell { i: -2, j: 3 });
        assert_eq!(
            (r.min().x, r.min().y, r.max().x, r.max().y),
            (-50.0, 75.0, -25.0, 100.0)
        );
        assert_eq!(
            g.cell_center(Cell { i: -2, j: 3 }),
            Coord { x: -37.5, y: 87.5 }
        );
        assert_eq!(g.cell_area_m2(), 625.0);
        assert!(Grid::new(0.0).is_err());
        assert!(Grid::new(f64::NAN).is_err());
        assert!(Grid::new(-5.0).is_err());
        // NaN and huge coordinates do not panic.
        assert_eq!(
            g.cell_of(Coord {
                x: f64::NAN,
                y: 1e300
            }),
            Cell { i: 0, j: i32::MAX }
        );
    }

    #[test]
    fn single_cell() {
        let mp = trace_cells(&cells(&[(3, -2)]), C);
        assert_eq!(mp.0.len(), 1);
        let p = &mp.0[0];
        assert_eq!(
            coords(p.exterior()),
            vec![(3., -2.), (4., -2.), (4., -1.), (3., -1.), (3., -2.)]
        );
        assert!(p.interiors().is_empty());
        assert_eq!(mp.unsigned_area(), C * C);
        assert_eq!(p.exterior().0.len(), 5);
        assert!(p.signed_area() > 0.0);
    }

    #[test]
    fn l_shape_has_six_corners() {
        let mp = trace_cells(&cells(&[(0, 0), (1, 0), (0, 1)]), C);
        assert_eq!(mp.0.len(), 1);
        assert_eq!(
            coords(mp.0[0].exterior()),
            vec![
                (0., 0.),
                (2., 0.),
                (2., 1.),
                (1., 1.),
                (1., 2.),
                (0., 2.),
                (0., 0.)
            ]
        );
        assert_eq!(mp.unsigned_area(), 3.0 * C * C);
    }

    #[test]
    fn block_with_centre_missing() {
        let v: Vec<(i32, i32)> = (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .filter(|&c| c != (1, 1))
            .collect();
        let mp = trace_cells(&cells(&v), C);
        assert_eq!(mp.0.len(), 1);
        let p = &mp.0[0];
        assert_eq!(
            coords(p.exterior()),
            vec![(0., 0.), (3., 0.), (3., 3.), (0., 3.), (0., 0.)]
        );
        assert_eq!(p.interiors().len(), 1);
        // Clockwise hole, starting at its lowest-leftmost corner.
        assert_eq!(
            coords(&p.interiors()[0]),
            vec![(1., 1.), (1., 2.), (2., 2.), (2., 1.), (1., 1.)]
        );
        assert_eq!(mp.unsigned_area(), 8.0 * C * C);
        assert!(mp.is_valid());
        assert!(!mp.contains(&Point::new(1.5 * C, 1.5 * C)));
    }

    #[test]
    fn diagonal_cells_are_separate_polygons() {
        let mp = trace_cells(&cells(&[(0, 0), (1, 1)]), C);
        assert_eq!(mp.0.len(), 2);
        assert_eq!(coords(mp.0[0].exterior())[0], (0., 0.));
        assert_eq!(coords(mp.0[1].exterior())[0], (1., 1.));
        assert!(mp.0.iter().all(|p| p.exterior().0.len() == 5));
        // The other diagonal; sorted by lowest-then-leftmost vertex: (1,0) before (0,1).
        let mp = trace_cells(&cells(&[(0, 1), (1, 0)]), C);
        assert_eq!(mp.0.len(), 2);
        assert_eq!(coords(mp.0[0].exterior())[0], (1., 0.));
        assert_eq!(coords(mp.0[1].exterior())[0], (0., 1.));
        assert!(mp.is_valid());
    }

    #[test]
    fn hole_touching_exterior_at_a_saddle() {
        // 3×3 block without the centre (1,1) and without the corner (2,2): at vertex (2,2)
        // the cells (1,2) and (2,1) meet diagonally but belong to one component.
        let v: Vec<(i32, i32)> = (0..3)
            .flat_map(|i| (0..3).map(move |j| (i, j)))
            .filter(|&c| c != (1, 1) && c != (2, 2))
            .collect();
        let mp = trace_cells(&cells(&v), C);
        assert_eq!(mp.0.len(), 1);
        let p = &mp.0[0];
        assert_eq!(
            coords(p.exterior()),
            vec![
                (0., 0.),
                (3., 0.),
                (3., 2.),
                (2., 2.),
                (2., 3.),
                (0., 3.),
                (0., 0.)
            ]
        );
        assert_eq!(p.interiors().len(), 1);
        assert_eq!(
            coords(&p.interiors()[0]),
            vec![(1., 1.), (1., 2.), (2., 2.), (2., 1.), (1., 1.)]
        );
        assert_eq!(mp.unsigned_area(), 7.0 * C * C);
        assert!(mp.is_valid(), "{:?}", mp.validation_errors());
    }

    #[test]
    fn two_holes_touching_at_a_corner() {
        let v: Vec<(i32, i32)> = (0..4)
            .flat_map(|i| (0..4).map(move |j| (i, j)))
            .filter(|&c| c != (1, 1) && c != (2, 2))
            .collect();
        let mp = trace_cells(&cells(&v), C);
        assert_eq!(mp.0.len(), 1);
        assert_eq!(mp.0[0].interiors().len(), 2);
        assert_eq!(coords(&mp.0[0].interiors()[0])[0], (1., 1.));
        assert_eq!(coords(&mp.0[0].interiors()[1])[0], (2., 2.));
        assert_eq!(mp.unsigned_area(), 14.0 * C * C);
        assert!(mp.is_valid(), "{:?}", mp.validation_errors());
    }

    #[test]
    fn island_in_a_lake() {
        // 5×5 block minus the ring around its centre: a frame with a 3×3 hole, and the centre
        // cell as a separate polygon inside that hole.
        let v: Vec<(i32, i32)> = (0i32..5)
            .flat_map(|i| (0..5).map(move |j| (i, j)))
            .filter(|&(i, j): &(i32, i32)| (i - 2).abs().max((j - 2).abs()) != 1)
            .collect();
        let mp = trace_cells(&cells(&v), C);
        assert_eq!(mp.0.len(), 2);
        assert_eq!(mp.0[0].interiors().len(), 1);
        assert_eq!(coords(&mp.0[0].interiors()[0])[0], (1., 1.));
        assert_eq!(mp.0[0].unsigned_area(), 16.0 * C * C);
        assert_eq!(coords(mp.0[1].exterior())[0], (2., 2.));
        assert!(mp.0[1].interiors().is_empty());
        assert_eq!(mp.unsigned_area(), 17.0 * C * C);
        assert!(mp.is_valid());
    }

    #[test]
    fn unsorted_duplicated_and_empty_input() {
        let a = trace_cells(
            &[
                Cell { i: 1, j: 0 },
                Cell { i: 0, j: 0 },
                Cell { i: 1, j: 0 },
            ],
            C,
        );
        let b = trace_cells(&cells(&[(0, 0), (1, 0)]), C);
        assert_eq!(a, b);
        assert_eq!(a.unsigned_area(), 2.0 * C * C);
        assert!(trace_cells(&[], C).0.is_empty());
        // Extreme indices: i32::MIN works, i32::MAX is dropped.
        let mp = trace_cells(
            &[
                Cell {
                    i: i32::MIN,
                    j: i32::MIN,
                },
                Cell { i: i32::MAX, j: 0 },
            ],
            1.0,
        );
        assert_eq!(mp.0.len(), 1);
        assert_eq!(mp.unsigned_area(), 1.0);
    }

    use crate::testdata::XorShift;

    /// Number of 4-connected components, by BFS (independent of the union-find above).
    fn components(set: &BTreeSet<(i32, i32)>) -> usize {
        let mut seen = BTreeSet::new();
        let mut count = 0;
        for &c in set {
            if !seen.insert(c) {
                continue;
            }
            count += 1;
            let mut q = VecDeque::from([c]);
            while let Some((i, j)) = q.pop_front() {
                for n in [(i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)] {
                    if set.contains(&n) && seen.insert(n) {
                        q.push_back(n);
                    }
                }
            }
        }
        count
    }

    fn ring_area(r: &LineString<f64>) -> f64 {
        Polygon::new(r.clone(), vec![]).signed_area()
    }

    fn check_random(set: &BTreeSet<(i32, i32)>, cell_m: f64) {
        let v: Vec<Cell> = set.iter().map(|&(i, j)| Cell { i, j }).collect();
        let mp = trace_cells(&v, cell_m);
        assert_eq!(
            mp.unsigned_area(),
            v.len() as f64 * cell_m * cell_m,
            "area must be exact"
        );
        assert!(mp.is_valid(), "{:?}", mp.validation_errors());
        assert_eq!(mp.0.len(), components(set));
        let g = Grid { cell_m };
        for p in &mp.0 {
            assert!(
                ring_area(p.exterior()) > 0.0,
                "exterior must be counter-clockwise"
            );
            for h in p.interiors() {
                assert!(ring_area(h) < 0.0, "hole must be clockwise");
            }
            for r in std::iter::once(p.exterior()).chain(p.interiors()) {
                assert_eq!(r.0.first(), r.0.last());
                // No collinear vertices (all edges axis-parallel, so consecutive edges must
                // alternate between horizontal and vertical).
                let n = r.0.len() - 1;
                for k in 0..n {
                    let (a, b, c) = (r.0[(k + n - 1) % n], r.0[k], r.0[(k + 1) % n]);
                    assert!((a.x == b.x) != (b.x == c.x), "collinear vertex at {b:?}");
                }
            }
        }
        // Sorted by lowest-then-leftmost vertex of the exterior.
        let firsts: Vec<(f64, f64)> =
            mp.0.iter()
                .map(|p| (p.exterior().0[0].y, p.exterior().0[0].x))
                .collect();
        assert!(firsts.windows(2).all(|w| w[0] < w[1]));
        for &(i, j) in set {
            let c = Cell { i, j };
            assert!(
                mp.contains(&Point::from(g.cell_center(c))),
                "centre of {c:?} missing"
            );
            for n in [(i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)] {
                if !set.contains(&n) {
                    let p = Point::from(g.cell_center(Cell { i: n.0, j: n.1 }));
                    assert!(!mp.contains(&p), "absent {n:?} covered");
                }
            }
        }
    }

    #[test]
    fn random_cell_sets() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for round in 0..60 {
            let size = 3 + rng.below(14) as i32;
            let density = 20 + rng.below(60);
            let (oi, oj) = (rng.below(2000) as i32 - 1000, rng.below(2000) as i32 - 1000);
            let set: BTreeSet<(i32, i32)> = (0..size)
                .flat_map(|i| (0..size).map(move |j| (i, j)))
                .filter(|_| rng.below(100) < density)
                .map(|(i, j)| (i + oi, j + oj))
                .collect();
            // Alternate a power-of-two size with a "round metres" size; both are exact.
            check_random(&set, if round % 2 == 0 { 25.0 } else { 30.0 });
        }
    }

    #[test]
    fn random_walk_cells() {
        let mut rng = XorShift(42);
        let mut set = BTreeSet::new();
        let (mut i, mut j) = (100_000i32, -50_000i32); // far from the origin, as in CONUS
        for _ in 0..3000 {
            set.insert((i, j));
            match rng.below(4) {
                0 => i += 1,
                1 => i -= 1,
                2 => j += 1,
                _ => j -= 1,
            }
        }
        check_random(&set, 25.0);
    }
}
