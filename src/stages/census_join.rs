//! The `census join` stage: which block groups each POI's isochrones reach, and how much of
//! each block group lies inside the union of all isochrones.
//!
//! Block groups are projected to EPSG:5070 once. For each block group the stage knows, lazily
//! and once, the exact area it shares with every analysis-grid cell it overlaps
//! ([`crate::geom::clip::cell_overlaps`]). Because an isochrone *is* a set of cells, a block
//! group intersects an isochrone exactly when one of its overlap cells is in the set, and the
//! area inside the union is the sum of its overlap areas over the union's cells: exact, with
//! no polygon boolean operations per POI.

use super::isochrone::{LaneMask, LaneRaster, PoiIsochrone};
use crate::census::BlockGroup;
use crate::geom::albers::{from_5070, to_5070};
use crate::geom::clip::cell_overlaps;
use crate::geom::grid::{Cell, Grid};
use crate::graph::Millis;
use geo::{Area, BoundingRect, Centroid, Coord, MapCoords, MultiPolygon, Rect};
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// A block group ready for joining: projected boundary, area, centroid, overlap cells.
pub struct PreparedBlockGroup {
    /// 12-digit GEOID.
    pub geoid: String,
    /// Boundary in EPSG:5070 metres.
    pub boundary: MultiPolygon<f64>,
    /// Area in m² (EPSG:5070 is equal-area).
    pub area_m2: f64,
    /// Polygon centroid in EPSG:5070 (the original computes it there too).
    pub centroid: Coord<f64>,
    /// The same centroid as (lon, lat) degrees.
    pub centroid_lonlat: (f64, f64),
    /// Bounding box in EPSG:5070.
    pub bbox: Rect<f64>,
    overlaps: OnceLock<Overlaps>,
}

/// A block group's cells: every overlapped cell with the shared area, and the cells of
/// positive area as runs along grid columns.
struct Overlaps {
    cells: Vec<(Cell, f64)>,
    /// `(i, j0, j1)`: cells `(i, j0 ..= j1)` all share a positive area, sorted. A block group
    /// of a few dozen cells has a handful of runs, so the join reads a few dozen bytes per
    /// block group, and contiguous stretches of its raster, instead of 16 bytes per cell.
    runs: Runs,
}

/// Column runs kept inside the block group's own record up to this many, else on the heap:
/// the join visits thousands of block groups per POI, and a separate allocation per block
/// group cost a cache miss each (most of the join's time on /tmp/s2m).
const INLINE_RUNS: usize = 8;

/// A block group's column runs ([`Overlaps::runs`]).
enum Runs {
    Inline(u8, [[i32; 3]; INLINE_RUNS]),
    Heap(Box<[[i32; 3]]>),
}

impl Runs {
    fn new(runs: Vec<[i32; 3]>) -> Runs {
        if runs.len() <= INLINE_RUNS {
            let mut inline = [[0; 3]; INLINE_RUNS];
            inline[..runs.len()].copy_from_slice(&runs);
            Runs::Inline(runs.len() as u8, inline)
        } else {
            Runs::Heap(runs.into_boxed_slice())
        }
    }

    #[inline]
    fn as_slice(&self) -> &[[i32; 3]] {
        match self {
            Runs::Inline(n, runs) => &runs[..*n as usize],
            Runs::Heap(runs) => runs,
        }
    }
}

impl Overlaps {
    fn new(cells: Vec<(Cell, f64)>) -> Overlaps {
        let mut runs: Vec<[i32; 3]> = Vec::new();
        for (c, area) in &cells {
            if *area > 0.0 {
                match runs.last_mut() {
                    Some(r) if r[0] == c.i && r[2] + 1 == c.j => r[2] = c.j,
                    _ => runs.push([c.i, c.j, c.j]),
                }
            }
        }
        Overlaps {
            cells,
            runs: Runs::new(runs),
        }
    }
}

impl PreparedBlockGroup {
    /// Cells this block group overlaps with the shared area (m²), sorted by cell; computed on
    /// first use.
    pub fn overlaps(&self, grid: &Grid) -> &[(Cell, f64)] {
        &self.prepared(grid).cells
    }

    fn prepared(&self, grid: &Grid) -> &Overlaps {
        self.overlaps.get_or_init(|| {
            let mut out = Vec::new();
            cell_overlaps(&self.boundary, grid, &mut out);
            Overlaps::new(out)
        })
    }
}

/// All block groups of a run, indexed for the join.
pub struct CensusIndex {
    /// The block groups, sorted by GEOID; their index is their id within the run.
    pub block_groups: Vec<PreparedBlockGroup>,
    grid: Grid,
    tree: RTree<GeomWithData<Rectangle<[f64; 2]>, u32>>,
}

impl CensusIndex {
    /// Projects and indexes `block_groups` for the analysis grid `grid`.
    pub fn new(block_groups: &[BlockGroup], grid: Grid) -> CensusIndex {
        let mut prepared: Vec<PreparedBlockGroup> = block_groups
            .iter()
            .filter_map(|bg| {
                let boundary = bg.boundary.map_coords(|c| to_5070(c.x, c.y));
                let bbox = boundary.bounding_rect()?;
                let area_m2 = boundary.unsigned_area();
                let centroid = boundary.centroid().map(|p| p.0).unwrap_or(bbox.center());
                Some(PreparedBlockGroup {
                    geoid: bg.geoid.clone(),
                    centroid_lonlat: from_5070(centroid),
                    boundary,
                    area_m2,
                    centroid,
                    bbox,
                    overlaps: OnceLock::new(),
                })
            })
            .collect();
        prepared.sort_by(|a, b| a.geoid.cmp(&b.geoid));
        let tree = RTree::bulk_load(
            prepared
                .iter()
                .enumerate()
                .map(|(k, bg)| {
                    let r = Rectangle::from_corners(
                        [bg.bbox.min().x, bg.bbox.min().y],
                        [bg.bbox.max().x, bg.bbox.max().y],
                    );
                    GeomWithData::new(r, k as u32)
                })
                .collect(),
        );
        CensusIndex {
            block_groups: prepared,
            grid,
            tree,
        }
    }

    /// The analysis grid.
    pub fn grid(&self) -> Grid {
        self.grid
    }

    /// Block groups whose bounding box meets the cell range `lo ..= hi`, ascending.
    fn candidates(&self, lo: Cell, hi: Cell) -> Vec<u32> {
        let c = self.grid.cell_m;
        let env = AABB::from_corners(
            [lo.i as f64 * c, lo.j as f64 * c],
            [(hi.i + 1) as f64 * c, (hi.j + 1) as f64 * c],
        );
        let mut ids: Vec<u32> = self
            .tree
            .locate_in_envelope_intersecting(&env)
            .map(|g| g.data)
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// The block groups one POI reaches: `(block group, earliest arrival in any shared cell, ms)`,
/// sorted by block group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoiReach {
    /// Index of the POI in the run's POI list.
    pub poi: u32,
    /// Reached block groups with the earliest time at which the isochrone enters them.
    pub block_groups: Vec<(u32, Millis)>,
}

/// Reusable per-thread state of the join (a dense lookup raster).
#[derive(Default)]
pub struct JoinWorkspace {
    raster: Vec<Millis>,
}

/// The block groups reached by one POI's isochrone (for its longest travel time; shorter
/// travel times filter on the returned times).
pub fn join_poi(index: &CensusIndex, iso: &PoiIsochrone, ws: &mut JoinWorkspace) -> PoiReach {
    let mut reach = PoiReach {
        poi: iso.poi,
        block_groups: Vec::new(),
    };
    let (Some(first), Some(last)) = (iso.cells.first(), iso.cells.last()) else {
        return reach;
    };
    let (i0, i1) = (first.0.i, last.0.i);
    let (j0, j1) = iso
        .cells
        .iter()
        .fold((i32::MAX, i32::MIN), |(a, b), (c, _)| {
            (a.min(c.j), b.max(c.j))
        });
    let h = (j1 - j0 + 1) as usize;
    ws.raster.clear();
    ws.raster.resize((i1 - i0 + 1) as usize * h, Millis::MAX);
    for (c, t) in &iso.cells {
        ws.raster[(c.i - i0) as usize * h + (c.j - j0) as usize] = *t;
    }
    for k in index.candidates(Cell { i: i0, j: j0 }, Cell { i: i1, j: j1 }) {
        let bg = &index.block_groups[k as usize];
        // The earliest time over the block group's cells of positive area in the raster.
        let mut best = Millis::MAX;
        for &[i, ja, jb] in bg.prepared(&index.grid).runs.as_slice() {
            let (a, b) = (ja.max(j0), jb.min(j1));
            if i < i0 || i > i1 || a > b {
                continue;
            }
            let col = (i - i0) as usize * h;
            let stretch = &ws.raster[col + (a - j0) as usize..=col + (b - j0) as usize];
            best = stretch.iter().fold(best, |m, t| m.min(*t));
        }
        if best != Millis::MAX {
            reach.block_groups.push((k, best));
        }
    }
    reach
}

/// The block groups each lane of `raster` reaches, each with the index of the shortest travel
/// time within which it does: for every lane, what [`join_poi`] gives for that lane's
/// isochrone, reduced to travel-time indices. One pass over the block groups' cells serves all
/// the lanes: their masks are or-ed over the cells of each block group.
pub fn join_lanes(
    index: &CensusIndex,
    raster: &LaneRaster<'_>,
    lanes: usize,
) -> Vec<Vec<(u32, u8)>> {
    let mut reach = vec![Vec::new(); lanes];
    let (i0, j0) = (raster.c0.i, raster.c0.j);
    let (i1, j1) = (i0 + raster.w as i32 - 1, j0 + raster.h as i32 - 1);
    let mut within: Vec<LaneMask> = vec![0; raster.times];
    for k in index.candidates(raster.c0, Cell { i: i1, j: j1 }) {
        within.fill(0);
        let bg = &index.block_groups[k as usize];
        for &[i, ja, jb] in bg.prepared(&index.grid).runs.as_slice() {
            let (a, b) = (ja.max(j0), jb.min(j1));
            if i < i0 || i > i1 || a > b {
                continue;
            }
            let col = (i - i0) as usize * raster.h;
            let (a, b) = (col + (a - j0) as usize, col + (b - j0) as usize);
            for (t, lanes) in within.iter_mut().enumerate() {
                *lanes = raster.within(t)[a..=b].iter().fold(*lanes, |m, l| m | l);
            }
        }
        let mut left = within[raster.times - 1];
        while left != 0 {
            let lane = left.trailing_zeros() as usize;
            let bit: LaneMask = 1 << lane;
            left &= !bit;
            if let Some(first) = within.iter().position(|l| l & bit != 0) {
                reach[lane].push((k, first as u8));
            }
        }
    }
    reach
}

/// Hashes grid cells with one multiplication (Fibonacci hashing of the packed coordinates):
/// [`CoverageCounts`] looks up a tile for every few isochrone cells, and SipHash once cost
/// more than the rest of the join. Cell coordinates are not attacker-controlled, so no
/// DoS-resistant hash is needed.
#[derive(Clone, Copy, Debug, Default)]
pub struct CellHasher(u64);

impl std::hash::Hasher for CellHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_i32(&mut self, v: i32) {
        self.0 = (self.0.rotate_left(32) ^ u64::from(v as u32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A map keyed by grid cells, with [`CellHasher`].
pub type CellMap<V> = HashMap<Cell, V, std::hash::BuildHasherDefault<CellHasher>>;

/// Side of a [`Coverage`] tile in cells (a power of two).
const TILE: i32 = 32;
const TILE_SHIFT: u32 = TILE.trailing_zeros();

/// The tile holding `c`, and `c`'s index in it (column-major, like [`Cell`]'s order).
#[inline]
fn tile_of(c: Cell) -> (Cell, usize) {
    (
        Cell {
            i: c.i >> TILE_SHIFT,
            j: c.j >> TILE_SHIFT,
        },
        ((c.i & (TILE - 1)) * TILE + (c.j & (TILE - 1))) as usize,
    )
}

/// How many POIs' isochrones hold each cell within each travel time: the union of the
/// isochrones (a cell is covered within a travel time when its count is above zero), kept as
/// counts so that a POI can be taken out again (`socialmapper remove`). Feeds coverage shares
/// and union areas.
///
/// Counts are cumulative over the travel times: `count[k]` is the number of POIs reaching the
/// cell within the `k`-th travel time. Cells are kept in dense 32 × 32 tiles (`classes` counts
/// per cell) in a map keyed by tile: adding an isochrone's ~10⁴–10⁵ sorted cells costs a map
/// lookup per tile column instead of a hash-map insert per cell, which missed the cache every
/// time once the union outgrew it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageCounts {
    /// The travel-time limits, ms, ascending.
    limits: Vec<Millis>,
    tiles: CellMap<Box<[u32]>>,
}

/// A change of [`CoverageCounts`] in a compact, sorted form: what clusters send, what a batch
/// commits and what a checkpoint replays. Cells come as runs of consecutive `j` in one column
/// `i`, each with `classes` signed counts, so that a batch touching a million cells takes a
/// few bytes per cell.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CoverageDelta {
    /// `(i, j0, length)`: the cells `(i, j0) ..= (i, j0 + length - 1)`, sorted.
    pub runs: Vec<(i32, i32, u32)>,
    /// Per cell of the runs, in order, one count change per travel time.
    pub counts: Vec<i32>,
}

impl CoverageDelta {
    /// Whether the delta changes nothing.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

impl CoverageCounts {
    /// Empty counts for the travel-time limits `limits` (ms, ascending).
    pub fn new(limits: &[Millis]) -> CoverageCounts {
        CoverageCounts {
            limits: limits.to_vec(),
            tiles: CellMap::default(),
        }
    }

    fn classes(&self) -> usize {
        self.limits.len()
    }

    /// Adds one isochrone (`sign` +1) or takes it out again (`sign` -1).
    pub fn add(&mut self, iso: &PoiIsochrone, sign: i32) -> crate::error::Result<()> {
        let Some(&(first, _)) = iso.cells.first() else {
            return Ok(());
        };
        let n = self.classes();
        let limits = std::mem::take(&mut self.limits);
        let mut key = tile_of(first).0;
        let mut tile = self.tile_mut(key, n);
        let mut result = Ok(());
        for &(c, t) in &iso.cells {
            let (k, at) = tile_of(c);
            if k != key {
                key = k;
                tile = self.tile_mut(key, n);
            }
            for (class, limit) in limits.iter().enumerate() {
                if t <= *limit {
                    let e = &mut tile[at * n + class];
                    match e.checked_add_signed(sign) {
                        Some(v) => *e = v,
                        None => result = Err(underflow()),
                    }
                }
            }
        }
        self.limits = limits;
        result
    }

    /// Adds the isochrone of every lane of `raster` (of the same travel times): what
    /// [`CoverageCounts::add`] of each lane's isochrone adds, in one pass over the raster.
    pub fn add_lanes(&mut self, raster: &LaneRaster<'_>) {
        let n = self.classes();
        debug_assert_eq!(n, raster.times, "the same travel times");
        let longest = raster.within(raster.times - 1);
        for i in 0..raster.w {
            let mut key = Cell { i: i32::MIN, j: 0 };
            let mut tile: &mut [u32] = &mut [];
            for j in 0..raster.h {
                let k = i * raster.h + j;
                if longest[k] == 0 {
                    continue;
                }
                let (tk, at) = tile_of(Cell {
                    i: raster.c0.i + i as i32,
                    j: raster.c0.j + j as i32,
                });
                if tk != key {
                    key = tk;
                    tile = self.tile_mut(key, n);
                }
                for (t, e) in tile[at * n..at * n + n].iter_mut().enumerate() {
                    // Counts of more POIs only grow; at most 16 per group.
                    *e = e.saturating_add(raster.within(t)[k].count_ones());
                }
            }
        }
    }

    /// Applies a delta (of counts with the same travel times).
    pub fn apply(&mut self, delta: &CoverageDelta) -> crate::error::Result<()> {
        let n = self.classes();
        let mut counts = delta.counts.chunks_exact(n);
        let mut result = Ok(());
        for &(i, j0, len) in &delta.runs {
            let mut key = Cell { i: i32::MIN, j: 0 };
            let mut tile: &mut [u32] = &mut [];
            for j in j0..j0 + len as i32 {
                let (k, at) = tile_of(Cell { i, j });
                if k != key {
                    key = k;
                    tile = self.tile_mut(key, n);
                }
                let Some(d) = counts.next() else {
                    return Err(crate::error::Error::State(
                        "a coverage delta has fewer counts than cells".into(),
                    ));
                };
                for (e, d) in tile[at * n..at * n + n].iter_mut().zip(d) {
                    match e.checked_add_signed(*d) {
                        Some(v) => *e = v,
                        None => result = Err(underflow()),
                    }
                }
            }
        }
        result
    }

    fn tile_mut(&mut self, key: Cell, classes: usize) -> &mut [u32] {
        self.tiles
            .entry(key)
            .or_insert_with(|| vec![0; (TILE * TILE) as usize * classes].into_boxed_slice())
    }

    /// Whether cell `c` is covered within the `class`-th travel time.
    #[inline]
    fn covered(&self, c: Cell, class: usize) -> bool {
        let (key, at) = tile_of(c);
        self.tiles
            .get(&key)
            .is_some_and(|tile| tile[at * self.classes() + class] > 0)
    }

    /// All counts as a delta from nothing, sorted by cell: what another `CoverageCounts`
    /// [`applies`](CoverageCounts::apply) to hold the same counts. Tiles are walked in cell
    /// order, so no per-cell sort is needed.
    pub fn to_delta(&self) -> CoverageDelta {
        let n = self.classes();
        let mut keys: Vec<Cell> = self.tiles.keys().copied().collect();
        keys.sort_unstable();
        let mut d = CoverageDelta::default();
        // Tiles with the same column index `i` cover the same 32 grid columns: for each grid
        // column, walk up through them in order.
        for col in keys.chunk_by(|a, b| a.i == b.i) {
            for di in 0..TILE {
                for key in col {
                    let tile = &self.tiles[key];
                    for dj in 0..TILE {
                        let at = ((di * TILE + dj) as usize) * n;
                        let counts = &tile[at..at + n];
                        if counts.iter().all(|c| *c == 0) {
                            continue;
                        }
                        let (i, j) = ((key.i << TILE_SHIFT) + di, (key.j << TILE_SHIFT) + dj);
                        match d.runs.last_mut() {
                            Some((ri, rj, len)) if *ri == i && *rj + *len as i32 == j => *len += 1,
                            _ => d.runs.push((i, j, 1)),
                        }
                        d.counts.extend(counts.iter().map(|c| *c as i32));
                    }
                }
            }
        }
        d
    }

    /// Area of the union of the isochrones within the `class`-th travel time, km².
    pub fn union_area_km2(&self, grid: &Grid, class: usize) -> f64 {
        let n = self.classes();
        let covered: usize = self
            .tiles
            .values()
            .map(|tile| {
                tile.iter()
                    .skip(class)
                    .step_by(n)
                    .filter(|c| **c > 0)
                    .count()
            })
            .sum();
        covered as f64 * grid.cell_m * grid.cell_m / 1e6
    }

    /// Share (0..=1) of `bg`'s area inside the union of the isochrones within the `class`-th
    /// travel time.
    pub fn share(&self, index: &CensusIndex, bg: u32, class: usize) -> f64 {
        let bg = &index.block_groups[bg as usize];
        if bg.area_m2 <= 0.0 {
            return 0.0;
        }
        let inside: f64 = bg
            .overlaps(&index.grid)
            .iter()
            .filter(|(c, _)| self.covered(*c, class))
            .map(|(_, a)| a)
            .sum();
        (inside / bg.area_m2).clamp(0.0, 1.0)
    }
}

/// The error of a count taken below zero: a POI taken out that was never added.
fn underflow() -> crate::error::Error {
    crate::error::Error::State(
        "coverage counts would drop below zero (a POI taken out that was never added)".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::snap::Snap;
    use geo::{LineString, Polygon};

    /// A block group whose boundary is the EPSG:5070 rectangle `[x0, x1] × [y0, y1]`.
    fn square_bg(geoid: &str, (x0, y0, x1, y1): (f64, f64, f64, f64)) -> BlockGroup {
        let ring: Vec<(f64, f64)> = [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]
            .iter()
            .map(|&(x, y)| from_5070(Coord { x, y }))
            .collect();
        BlockGroup {
            geoid: geoid.into(),
            boundary: MultiPolygon(vec![Polygon::new(LineString::from(ring), vec![])]),
        }
    }

    fn iso(cells: Vec<(Cell, Millis)>) -> PoiIsochrone {
        let snap = Snap {
            link: 0,
            fraction: 0.0,
            point: Coord { x: 0.0, y: 0.0 },
            distance_m: 0.0,
        };
        PoiIsochrone {
            poi: 3,
            snap,
            settled_nodes: 0,
            cells,
        }
    }

    // Cells of zero area (touching the boundary only) split runs; columns start new ones.
    #[test]
    fn overlap_runs_cover_the_cells_of_positive_area() {
        let c = |i, j| Cell { i, j };
        let o = Overlaps::new(vec![
            (c(-1, 5), 10.0),
            (c(-1, 6), 1.0),
            (c(-1, 7), 0.0),
            (c(-1, 8), 3.0),
            (c(0, 8), 3.0),
            (c(0, 9), 3.0),
            (c(2, 9), 0.0),
        ]);
        assert_eq!(o.runs.as_slice(), [[-1, 5, 6], [-1, 8, 8], [0, 8, 9]]);
        assert_eq!(o.cells.len(), 7);
        // Many runs go to the heap, unchanged.
        let many: Vec<(Cell, f64)> = (0..20).map(|i| (c(i, 2 * i), 1.0)).collect();
        let o = Overlaps::new(many);
        assert!(matches!(o.runs, Runs::Heap(_)));
        assert_eq!(o.runs.as_slice().len(), 20);
        assert_eq!(o.runs.as_slice()[19], [19, 38, 38]);
    }

    // Random cells on both sides of the origin, each added several times: the tiles give
    // back exactly what a map from cell to earliest time holds, sorted.
    #[test]
    fn coverage_counts_agree_with_a_plain_map_and_take_isochrones_out_again() {
        let mut rng = crate::testdata::XorShift(77);
        let limits = [0, 500, 999];
        let isochrones: Vec<PoiIsochrone> = (0..20)
            .map(|_| {
                let cells: std::collections::BTreeMap<Cell, Millis> = (0..300)
                    .map(|_| {
                        let c = Cell {
                            i: rng.below(200) as i32 - 100,
                            j: rng.below(90) as i32 - 45,
                        };
                        (c, rng.below(1000) as Millis)
                    })
                    .collect();
                iso(cells.into_iter().collect())
            })
            .collect();
        // The reference: per cell and travel time, the POIs reaching it.
        let reference = |isos: &[PoiIsochrone]| {
            let mut m = std::collections::BTreeMap::<Cell, [u32; 3]>::new();
            for iso in isos {
                for &(c, t) in &iso.cells {
                    let e = m.entry(c).or_default();
                    for (k, l) in limits.iter().enumerate() {
                        e[k] += u32::from(t <= *l);
                    }
                }
            }
            m.retain(|_, v| v.iter().any(|n| *n > 0));
            m
        };
        let check = |coverage: &CoverageCounts,
                     expect: &std::collections::BTreeMap<Cell, [u32; 3]>| {
            let grid = Grid { cell_m: 10.0 };
            for k in 0..3 {
                let n = expect.values().filter(|v| v[k] > 0).count();
                assert_eq!(coverage.union_area_km2(&grid, k), n as f64 * 100.0 / 1e6);
                assert!(
                    expect
                        .iter()
                        .all(|(c, v)| coverage.covered(*c, k) == (v[k] > 0))
                );
            }
            assert!(!coverage.covered(Cell { i: 1000, j: 0 }, 2));
            // The delta lists exactly the non-zero cells, in order, and rebuilds the counts.
            let d = coverage.to_delta();
            let cells: Vec<Cell> = d
                .runs
                .iter()
                .flat_map(|&(i, j0, len)| (j0..j0 + len as i32).map(move |j| Cell { i, j }))
                .collect();
            assert_eq!(cells, expect.keys().copied().collect::<Vec<_>>());
            let counts: Vec<i32> = expect.values().flatten().map(|n| *n as i32).collect();
            assert_eq!(d.counts, counts);
            let mut rebuilt = CoverageCounts::new(&limits);
            rebuilt.apply(&d).unwrap();
            assert_eq!(rebuilt.to_delta(), d);
        };
        let mut coverage = CoverageCounts::new(&limits);
        for iso in &isochrones {
            coverage.add(iso, 1).unwrap();
        }
        check(&coverage, &reference(&isochrones));
        // Taking every other isochrone out leaves the counts of the rest.
        for iso in isochrones.iter().step_by(2) {
            coverage.add(iso, -1).unwrap();
        }
        let rest: Vec<PoiIsochrone> = isochrones.iter().skip(1).step_by(2).cloned().collect();
        check(&coverage, &reference(&rest));
        // Taking one out twice is an error, not a wrapped count.
        assert!(coverage.add(&isochrones[0], -1).is_err());
    }

    // Block group A is the 100 m square at (1,600,000, 1,900,000); B lies 1 km east. The
    // isochrone covers A's western half (cells i = 160000..=160004 of 10 m) at 1 to 5 minutes.
    #[test]
    fn reach_and_exact_coverage_share() {
        let (x, y) = (1_600_000.0, 1_900_000.0);
        let bgs = [
            square_bg("110010001001", (x, y, x + 100.0, y + 100.0)),
            square_bg("110010001002", (x + 1000.0, y, x + 1100.0, y + 100.0)),
        ];
        let index = CensusIndex::new(&bgs, Grid { cell_m: 10.0 });
        let mut cells = vec![];
        for i in 160_000..160_005 {
            for j in 190_000..190_010 {
                cells.push((Cell { i, j }, (i - 159_999) as Millis * 60_000));
            }
        }
        let iso = iso(cells);
        let reach = join_poi(&index, &iso, &mut JoinWorkspace::default());
        assert_eq!(reach.poi, 3);
        assert_eq!(reach.block_groups, vec![(0, 60_000)]);
        let (at_30s, at_2min, at_5min) = (0, 1, 2);
        let mut coverage = CoverageCounts::new(&[30_000, 120_000, 300_000]);
        coverage.add(&iso, 1).unwrap();
        assert!((coverage.share(&index, 0, at_5min) - 0.5).abs() < 1e-6);
        assert!((coverage.share(&index, 0, at_2min) - 0.2).abs() < 1e-6);
        assert_eq!(coverage.share(&index, 1, at_5min), 0.0);
        assert!(
            (coverage.union_area_km2(&index.grid(), at_5min) - 50.0 * 100.0 / 1e6).abs() < 1e-12
        );
        // A second isochrone reaching A's eastern half earlier completes the union.
        let east: Vec<_> = (160_005..160_010)
            .flat_map(|i| (190_000..190_010).map(move |j| (Cell { i, j }, 30_000)))
            .collect();
        coverage.add(&self::iso(east), 1).unwrap();
        assert!((coverage.share(&index, 0, at_5min) - 1.0).abs() < 1e-6);
        assert!((coverage.share(&index, 0, at_30s) - 0.5).abs() < 1e-6);
    }
}
