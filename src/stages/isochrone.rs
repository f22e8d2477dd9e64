//! The `isochrone` stage: for each POI, a bounded Dijkstra to the longest travel time, then the
//! reached network — every edge up to the point the time runs out — rasterised onto the global
//! analysis grid.
//!
//! A cell belongs to a POI's isochrone for `T` minutes when its centre lies within
//! `buffer_m` of a point of the network reachable within `T` — exactly: each link knows, once
//! per network, the cells near it and the stretch of the link near each
//! ([`LinkCells`], [`crate::geom::corridor`]), and the earliest time on that stretch is
//! where it starts or ends. Enclosed unreached areas up to `max_hole_m2` are filled. The
//! result is the set of cells, each with the shortest travel time within which it is reached:
//! one search serves every travel time, the
//! polygon of the isochrone is the exact outline of its cells
//! ([`crate::geom::grid::trace_cells`]), and its area is the cell count times the cell area
//! (EPSG:5070 is equal-area). Unlike the original's convex hull, rivers, highways without
//! exits and dead ends stay outside.
//!
//! Up to [`LANES`] POIs close together are computed at once by [`lane_isochrones`]: one lane
//! search and one pass over the union of their reached links, with exactly the cells and times
//! [`poi_isochrone`] gives each; [`raster_lanes`] leaves them as a raster of lane masks, from
//! which the join, the coverage counts and the outlines ([`crate::geom::mask_trace`]) take
//! the whole group in one pass.

use super::network::Network;
use crate::geom::corridor::{CellSpan, polyline_cells};
use crate::geom::grid::{Cell, Grid};
use crate::graph::dijkstra::{Seed, Workspace};
use crate::graph::lanes::{LANES, LaneSearch, LaneTimes, UNREACHED};
use crate::graph::snap::Snap;
use crate::graph::{LinkId, Millis, NodeId};
use crate::types::{Poi, Reject};
use serde::{Deserialize, Serialize};

/// Settings of the isochrone stage.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IsochroneParams {
    /// Travel times in minutes, ascending, without duplicates.
    pub travel_times_min: Vec<u32>,
    /// Side of a grid cell, metres (EPSG:5070).
    pub cell_m: f64,
    /// How far from the reached network a cell centre may lie, metres.
    pub buffer_m: f64,
    /// POIs farther than this from a usable road are rejected, metres.
    pub max_snap_m: f64,
    /// Unreached areas enclosed by an isochrone and smaller than this (m²) are part of it:
    /// a city block ringed by reached streets is reached. 0 keeps every hole.
    pub max_hole_m2: f64,
}

impl IsochroneParams {
    /// The longest travel time in milliseconds: the search limit.
    pub fn limit_ms(&self) -> Millis {
        minutes_to_ms(self.travel_times_min.last().copied().unwrap_or(0))
    }

    /// The travel times in milliseconds, ascending.
    pub fn limits_ms(&self) -> Vec<Millis> {
        self.travel_times_min
            .iter()
            .map(|m| minutes_to_ms(*m))
            .collect()
    }

    /// The analysis grid.
    pub fn grid(&self) -> Grid {
        Grid {
            cell_m: self.cell_m,
        }
    }
}

/// Minutes to milliseconds.
pub fn minutes_to_ms(min: u32) -> Millis {
    min.saturating_mul(60_000)
}

/// One POI's isochrones for every travel time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoiIsochrone {
    /// Index of the POI in the run's POI list.
    pub poi: u32,
    /// Where the POI met the network.
    pub snap: Snap,
    /// Nodes the search settled.
    pub settled_nodes: u32,
    /// Reached cells, sorted, each with the shortest travel time (ms) within which it is
    /// reached: the isochrone for `T` minutes is the cells with time ≤ `T`. (Nothing needs
    /// finer times, and without them the cells of many POIs are found with bit masks, see
    /// [`lane_isochrones`].)
    pub cells: Vec<(Cell, Millis)>,
}

impl PoiIsochrone {
    /// The cells of the isochrone for `limit_ms`, sorted.
    pub fn cells_within(&self, limit_ms: Millis) -> Vec<Cell> {
        self.cells
            .iter()
            .filter(|(_, t)| *t <= limit_ms)
            .map(|(c, _)| *c)
            .collect()
    }
}

/// Travel time along a link as a function of the fraction `x` of the way from its start:
/// `t0 + slope·x` for `x` in `lo ..= hi` (the slope is negative for travel against the
/// link's geometry). A link is reached by at most four ramps: from each end node, and from
/// the POI's own snap point in each direction.
#[derive(Clone, Copy, Debug, Default)]
struct Ramp {
    t0: f64,
    slope: f64,
    lo: f64,
    hi: f64,
}

impl Ramp {
    /// Whether the ramp covers the whole link, `0 ..= 1`.
    #[inline]
    fn is_full(&self) -> bool {
        self.lo <= 0.0 && self.hi >= 1.0
    }
}

/// A set of node or link ids as a bitset, iterated in ascending id order.
///
/// Nodes are numbered along a Hilbert curve and links by their start node (see
/// [`crate::graph::build`]), so visiting the settled nodes and the reached links in id order
/// reads the per-node and per-link tables ([`LinkCells`], the graph's edges and links) nearly
/// sequentially; Dijkstra's discovery order read them at random, and those cache misses were
/// most of the stage's time. Taking the members out clears the set, so a search costs what it
/// reached, not what the network holds.
#[derive(Default)]
struct IdSet {
    words: Vec<u64>,
    /// Word range that may hold set bits: `lo .. hi`.
    lo: usize,
    hi: usize,
}

impl IdSet {
    /// Makes room for ids below `n`.
    fn ensure(&mut self, n: usize) {
        let need = n.div_ceil(64);
        if self.words.len() < need {
            self.words.resize(need, 0);
        }
    }

    #[inline]
    fn insert(&mut self, id: u32) {
        let w = id as usize / 64;
        if self.lo >= self.hi {
            (self.lo, self.hi) = (w, w + 1);
        } else {
            self.lo = self.lo.min(w);
            self.hi = self.hi.max(w + 1);
        }
        self.words[w] |= 1 << (id % 64);
    }

    /// Appends the members to `out` in ascending order and empties the set.
    fn drain_into(&mut self, out: &mut Vec<u32>) {
        for w in self.lo..self.hi {
            let mut bits = std::mem::take(&mut self.words[w]);
            while bits != 0 {
                out.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        (self.lo, self.hi) = (0, 0);
    }
}

/// Reusable per-thread state of the stage (search arrays, reached links, raster).
#[derive(Default)]
pub struct IsochroneWorkspace {
    search: Workspace,
    /// The settled nodes, ascending.
    node_set: IdSet,
    nodes: Vec<NodeId>,
    /// The reached links, ascending.
    reached_set: IdSet,
    reached: Vec<LinkId>,
    raster: Vec<Millis>,
    /// Hole filling: visit stamps per raster cell, and the flood-fill queue.
    seen: Vec<u8>,
    queue: Vec<u32>,
    component: Vec<u32>,
    /// Lane isochrones ([`raster_lanes`]): the search, and per travel time a raster of
    /// lane masks (the lanes reaching each cell within it), travel time after travel time.
    lanes: LaneSearch,
    lane_masks: Vec<LaneMask>,
    /// The mask rasters' first cell, columns, rows and travel times; `None` when the last
    /// lane isochrones reached nothing.
    lane_frame: Option<(Cell, usize, usize, usize)>,
    /// Hole filling of a lane raster: per cell, the lanes not reached, and those of them
    /// outside.
    lane_open: Vec<LaneMask>,
    lane_outside: Vec<LaneMask>,
}

/// The lanes reaching each cell after [`lane_isochrones`]: for the later stages, which can
/// then take a group of POIs in one pass instead of one pass per POI.
pub struct LaneRaster<'a> {
    /// Travel time after travel time (shortest first), a raster of `w` columns of `h` cells
    /// from `c0`: the lanes reaching each cell within that time, holes filled. A cell of a
    /// lane's mask is a cell of that lane's isochrone, with the shortest travel time whose
    /// mask holds it.
    pub masks: &'a [LaneMask],
    /// The first cell.
    pub c0: Cell,
    /// Columns.
    pub w: usize,
    /// Cells per column.
    pub h: usize,
    /// Travel times.
    pub times: usize,
}

impl LaneRaster<'_> {
    /// The mask raster of the `t`-th travel time.
    #[inline]
    pub fn within(&self, t: usize) -> &[LaneMask] {
        let n = self.w * self.h;
        &self.masks[t * n..(t + 1) * n]
    }
}

impl IsochroneWorkspace {
    /// The lane masks of the last [`raster_lanes`] (or [`lane_isochrones`]); `None` when they
    /// reached no cell.
    pub fn lane_raster(&self) -> Option<LaneRaster<'_>> {
        let (c0, w, h, times) = self.lane_frame?;
        Some(LaneRaster {
            masks: &self.lane_masks[..w * h * times],
            c0,
            w,
            h,
            times,
        })
    }

    /// A workspace sized for `network`.
    pub fn new(network: &Network) -> Self {
        IsochroneWorkspace {
            search: Workspace::new(network.graph.node_count()),
            ..Default::default()
        }
    }

    /// Takes the settled nodes out of `node_set` into `nodes`, adds the link of every
    /// out-edge of each to `reached_set` (which may already hold snap links), and takes the
    /// reached links out into `reached`, both in ascending id order (see [`IdSet`]).
    fn collect_reached_links(&mut self, g: &crate::graph::RoadGraph) {
        self.nodes.clear();
        self.node_set.drain_into(&mut self.nodes);
        for &u in &self.nodes {
            for e in g.out_edges(u) {
                self.reached_set.insert(g.edge_link[e]);
            }
        }
        self.reached.clear();
        self.reached_set.drain_into(&mut self.reached);
    }

    /// The raster over the reached links' cells, plus one spare cell on every side (so that
    /// the raster's border is never reached and every unreached area touching it is outside):
    /// its first cell and its `w` columns of `h` cells. `None` when no link was reached.
    fn raster_frame(&self, link_cells: &LinkCells) -> Option<(Cell, usize, usize)> {
        let mut bb = [i32::MAX, i32::MAX, i32::MIN, i32::MIN];
        for &l in &self.reached {
            let b = link_cells.bounds[l as usize];
            bb = [
                bb[0].min(b[0]),
                bb[1].min(b[1]),
                bb[2].max(b[2]),
                bb[3].max(b[3]),
            ];
        }
        if bb[0] > bb[2] {
            return None;
        }
        let c0 = Cell {
            i: bb[0] - 1,
            j: bb[1] - 1,
        };
        let (w, h) = ((bb[2] + 2 - c0.i) as usize, (bb[3] + 2 - c0.j) as usize);
        Some((c0, w, h))
    }
}

/// For every link of a network, the grid cells whose centre lies within the buffer of the
/// link, with the stretch of the link near each (see [`crate::geom::corridor`]). Built once
/// per network and analysis grid; 16 bytes per (link, cell) pair plus 36 bytes per link.
pub struct LinkCells {
    first: Vec<u32>,
    spans: Vec<CellSpan>,
    /// Per link, what rasterising it needs of the graph, in one record (see [`LinkEnds`]).
    ends: Vec<LinkEnds>,
    /// Per link: the smallest and largest cell of its spans, (i0, j0, i1, j1).
    bounds: Vec<[i32; 4]>,
}

impl LinkCells {
    /// Computes the cells of every link of `network` for `params`' grid and buffer.
    pub fn new(network: &Network, params: &IsochroneParams) -> LinkCells {
        let g = &network.graph;
        let grid = params.grid();
        let mut lc = LinkCells {
            first: Vec::with_capacity(g.links.len() + 1),
            spans: Vec::new(),
            bounds: Vec::new(),
            ends: g.links.iter().map(|l| LinkEnds::new(g, l)).collect(),
        };
        let mut scratch = Vec::new();
        for l in &g.links {
            lc.first.push(lc.spans.len() as u32);
            let (a, n) = (l.first_point as usize, l.point_count as usize);
            let start = lc.spans.len();
            polyline_cells(
                &g.link_points[a..a + n],
                &network.point_offset_m[a..a + n],
                &grid,
                params.buffer_m,
                &mut scratch,
                &mut lc.spans,
            );
            let b =
                lc.spans[start..]
                    .iter()
                    .fold([i32::MAX, i32::MAX, i32::MIN, i32::MIN], |b, s| {
                        [
                            b[0].min(s.cell.i),
                            b[1].min(s.cell.j),
                            b[2].max(s.cell.i),
                            b[3].max(s.cell.j),
                        ]
                    });
            lc.bounds.push(b);
        }
        lc.first.push(lc.spans.len() as u32);
        lc
    }

    /// The cells near `link`.
    #[inline]
    pub fn of(&self, link: LinkId) -> &[CellSpan] {
        &self.spans[self.first[link as usize] as usize..self.first[link as usize + 1] as usize]
    }

    /// Number of (link, cell) pairs held.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no link has a cell near it.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// A link's end nodes and the travel times of its two directed edges: 16 bytes read in link
/// order, instead of the graph's 48-byte link and two edge times found through it. The top bit
/// of `start` (`end`) says whether the link has an edge from its start (end); node ids stay
/// below 2³¹ (checked when built).
#[derive(Clone, Copy, Debug)]
struct LinkEnds {
    start: u32,
    end: u32,
    along_ms: Millis,
    against_ms: Millis,
}

/// [`LinkEnds`]' flag bit: the direction has an edge.
const HAS_EDGE: u32 = 1 << 31;

impl LinkEnds {
    fn new(g: &crate::graph::RoadGraph, l: &crate::graph::Link) -> LinkEnds {
        assert!(l.start < HAS_EDGE && l.end < HAS_EDGE, "node ids below 2³¹");
        let side = |node: NodeId, e: Option<u32>| match e {
            Some(e) => (node | HAS_EDGE, g.time_ms[e as usize]),
            None => (node, 0),
        };
        let ((start, along_ms), (end, against_ms)) =
            (side(l.start, l.edge_along), side(l.end, l.edge_against));
        LinkEnds {
            start,
            end,
            along_ms,
            against_ms,
        }
    }

    /// The tail node and time of the edge along the link's geometry, if any.
    #[inline]
    fn along(&self) -> Option<(NodeId, Millis)> {
        (self.start & HAS_EDGE != 0).then_some((self.start & !HAS_EDGE, self.along_ms))
    }

    /// The tail node and time of the edge against the link's geometry, if any.
    #[inline]
    fn against(&self) -> Option<(NodeId, Millis)> {
        (self.end & HAS_EDGE != 0).then_some((self.end & !HAS_EDGE, self.against_ms))
    }
}

/// The isochrone of one POI (`index` in the run's POI list), or why it has none: no usable
/// road within `params.max_snap_m`.
pub fn isochrone_of(
    network: &Network,
    link_cells: &LinkCells,
    params: &IsochroneParams,
    poi: &Poi,
    index: u32,
    ws: &mut IsochroneWorkspace,
) -> Result<PoiIsochrone, Reject> {
    let snap = snap_poi(network, params, poi)?;
    Ok(poi_isochrone(network, link_cells, params, index, snap, ws))
}

/// Where `poi` meets the network, or why it does not: no usable road within
/// `params.max_snap_m`.
pub fn snap_poi(network: &Network, params: &IsochroneParams, poi: &Poi) -> Result<Snap, Reject> {
    network
        .snap_lonlat(poi.lon, poi.lat, params.max_snap_m)
        .ok_or_else(|| Reject {
            source: poi.source.clone(),
            id: Some(poi.id.clone()),
            reason: format!(
                "no usable {} road within {} m (--max-snap-m)",
                network.mode, params.max_snap_m
            ),
        })
}

/// The isochrone of one snapped POI.
pub fn poi_isochrone(
    network: &Network,
    link_cells: &LinkCells,
    params: &IsochroneParams,
    poi: u32,
    snap: Snap,
    ws: &mut IsochroneWorkspace,
) -> PoiIsochrone {
    let g = &network.graph;
    let limit = params.limit_ms();
    let seeds: Vec<Seed> = network.seeds(&snap, poi);
    let settled = ws.search.run_times(g, &seeds, Some(limit)) as u32;

    // 1. The reached links: the POI's own link from the snap point, and the link of every
    //    out-edge of every settled node. They are then taken in ascending id order (see
    //    [`IdSet`]).
    let lim = limit as f64;
    let (snap_ramps, k) = snap_ramps(network, &snap, lim);
    let snap_ramps = &snap_ramps[..k];
    ws.reached_set.ensure(g.links.len());
    if !snap_ramps.is_empty() {
        ws.reached_set.insert(snap.link);
    }
    ws.node_set.ensure(g.node_count());
    for &u in ws.search.settled() {
        ws.node_set.insert(u);
    }
    ws.collect_reached_links(g);

    // 2. A dense raster over the reached links' cells (see
    //    [`IsochroneWorkspace::raster_frame`]), filled with the earliest time per cell.
    let Some((c0, w, h)) = ws.raster_frame(link_cells) else {
        return PoiIsochrone {
            poi,
            snap,
            settled_nodes: settled,
            cells: Vec::new(),
        };
    };
    ws.raster.clear();
    ws.raster.resize(w * h, Millis::MAX);
    for &l in &ws.reached {
        // The ramps reaching the link: from the snap point, and along each of its edges whose
        // tail was settled (at most four in all).
        let mut ramps = [Ramp::default(); 4];
        let mut count = 0;
        if l == snap.link {
            ramps[..snap_ramps.len()].copy_from_slice(snap_ramps);
            count = snap_ramps.len();
        }
        let link = link_cells.ends[l as usize];
        if let Some((tail, tt)) = link.along()
            && let Some(du) = ws.search.time_ms(tail)
        {
            ramps[count] = edge_ramp(du as f64, tt as f64, lim, true);
            count += 1;
        }
        if let Some((tail, tt)) = link.against()
            && let Some(du) = ws.search.time_ms(tail)
        {
            ramps[count] = edge_ramp(du as f64, tt as f64, lim, false);
            count += 1;
        }
        let (spans, raster) = (link_cells.of(l), &mut ws.raster[..]);
        // Inside the isochrone every ramp covers the whole link (the common case): one or two
        // ramps, from the link's ends.
        let full = ramps[..count].iter().all(Ramp::is_full);
        match count {
            1 if full => raster_full_link(&[ramps[0]], spans, raster, c0, h),
            2 if full => raster_full_link(&[ramps[0], ramps[1]], spans, raster, c0, h),
            1 => raster_link(&[ramps[0]], spans, raster, c0, h),
            2 => raster_link(&[ramps[0], ramps[1]], spans, raster, c0, h),
            3 => raster_link(&[ramps[0], ramps[1], ramps[2]], spans, raster, c0, h),
            4 => raster_link(&ramps, spans, raster, c0, h),
            _ => {}
        }
    }

    // 3. and 4.: holes and the cells.
    PoiIsochrone {
        poi,
        snap,
        settled_nodes: settled,
        cells: reached_cells(ws, w, h, c0, params),
    }
}

/// The isochrones of up to [`LANES`] snapped POIs (`(index, snap)`) at once, equal to
/// [`poi_isochrone`] of each: one lane search ([`LaneSearch`]) instead of one search per POI,
/// and one pass over the links any of them reaches, which writes every lane's time into a
/// cell with one cache line. Only the hole filling and the listing of cells are per POI.
/// The run uses [`raster_lanes`], which stops before listing: its later stages read the
/// masks.
///
/// POIs close together share most of their network, so this costs little more than one
/// isochrone; far apart, the union of their networks is raster once with many lanes empty.
pub fn lane_isochrones(
    network: &Network,
    link_cells: &LinkCells,
    params: &IsochroneParams,
    pois: &[(u32, Snap)],
    ws: &mut IsochroneWorkspace,
) -> Vec<PoiIsochrone> {
    let settled = raster_lanes(network, link_cells, params, pois, ws);
    let mut cells: Vec<Vec<(Cell, Millis)>> = vec![Vec::new(); pois.len()];
    if let Some(raster) = ws.lane_raster() {
        let limits = params.limits_ms();
        let (c0, h, n) = (raster.c0, raster.h, raster.w * raster.h);
        let longest = raster.within(raster.times - 1);
        // Cell order, each cell with the shortest travel time reaching it (the masks of the
        // longest hold every reached cell).
        for (k, &all) in longest.iter().enumerate() {
            let mut lanes = all;
            while lanes != 0 {
                let lane = lanes.trailing_zeros() as usize;
                let bit: LaneMask = 1 << lane;
                lanes &= !bit;
                let first = (0..raster.times)
                    .find(|&t| raster.masks[t * n + k] & bit != 0)
                    .unwrap_or(raster.times - 1);
                let cell = Cell {
                    i: c0.i + (k / h) as i32,
                    j: c0.j + (k % h) as i32,
                };
                cells[lane].push((cell, limits[first]));
            }
        }
    }
    cells
        .into_iter()
        .zip(pois.iter().zip(settled))
        .map(|(cells, (&(poi, snap), settled_nodes))| PoiIsochrone {
            poi,
            snap,
            settled_nodes,
            cells,
        })
        .collect()
}

/// The search and the lane-mask rasters of [`lane_isochrones`], without listing each POI's
/// cells: the masks stay in `ws` ([`IsochroneWorkspace::lane_raster`]) for the later stages,
/// which take the whole group in one pass over them. Returns each lane's settled nodes.
pub fn raster_lanes(
    network: &Network,
    link_cells: &LinkCells,
    params: &IsochroneParams,
    pois: &[(u32, Snap)],
    ws: &mut IsochroneWorkspace,
) -> Vec<u32> {
    assert!(pois.len() <= LANES, "at most {LANES} POIs at once");
    let g = &network.graph;
    let limit = params.limit_ms();
    let lim = limit as f64;
    let seeds: Vec<Vec<Seed>> = pois
        .iter()
        .map(|(poi, snap)| network.seeds(snap, *poi))
        .collect();
    ws.lanes.run(g, &seeds, limit);
    let snap_ramps: Vec<([Ramp; 2], usize)> = pois
        .iter()
        .map(|(_, snap)| snap_ramps(network, snap, lim))
        .collect();

    // 1. The links any lane reaches, ascending, and each lane's settled nodes.
    let mut settled = [0u32; LANES];
    ws.reached_set.ensure(g.links.len());
    ws.node_set.ensure(g.node_count());
    for (lane, (_, snap)) in pois.iter().enumerate() {
        if snap_ramps[lane].1 > 0 {
            ws.reached_set.insert(snap.link);
        }
    }
    for &u in ws.lanes.touched() {
        let times = ws.lanes.times(u);
        let mut any = false;
        for (n, &t) in settled.iter_mut().zip(times) {
            let reached = t <= limit;
            *n += u32::from(reached);
            any |= reached;
        }
        if any {
            ws.node_set.insert(u);
        }
    }
    ws.collect_reached_links(g);

    // 2. One raster over the union of the reached links' cells: per travel time, per cell,
    // the lanes reaching it.
    let settled = settled[..pois.len()].to_vec();
    ws.lane_frame = None;
    let Some((c0, w, h)) = ws.raster_frame(link_cells) else {
        return settled;
    };
    let limits = params.limits_ms();
    let n = w * h;
    ws.lane_frame = Some((c0, w, h, limits.len()));
    ws.lane_masks.clear();
    ws.lane_masks.resize(n * limits.len(), 0);
    let lanes = LaneLinks {
        link_cells,
        search: &ws.lanes,
        snaps: pois,
        snap_ramps: &snap_ramps,
        limits: &limits,
        c0,
        h,
        n,
    };
    lanes.raster(&ws.reached, &mut ws.lane_masks);

    // 3. Holes, every lane at once.
    fill_lane_holes(ws, w, h, params);
    settled
}

/// A set of lanes, one bit each.
pub type LaneMask = u16;
const _: () = assert!(LANES <= LaneMask::BITS as usize);

/// [`fill_holes`] for every lane of the lane raster (`w` columns of `h` cells) at once, travel
/// time by travel time, with the same result.
///
/// The cells outside (unreached, and 8-connected to the never-reached border ring through
/// unreached cells) are found for all lanes together, as bit masks: alternate forward and
/// backward sweeps over the raster, each cell taking the outside bits of the neighbours the
/// sweep has already passed, until a sweep after the first changes nothing. What is left
/// unreached is enclosed: rare, and flooded lane by lane as `fill_holes` does.
fn fill_lane_holes(ws: &mut IsochroneWorkspace, w: usize, h: usize, params: &IsochroneParams) {
    let max_cells = (params.max_hole_m2 / params.grid().cell_area_m2()).floor() as usize;
    if max_cells == 0 || w < 3 || h < 3 {
        return;
    }
    let n = w * h;
    let times = params.travel_times_min.len();
    for t in 0..times {
        let open = &mut ws.lane_open;
        open.clear();
        open.extend(ws.lane_masks[t * n..(t + 1) * n].iter().map(|m| !m));
        let outside = &mut ws.lane_outside;
        outside.clear();
        outside.resize(n, 0);
        // The border ring: never reached, outside in every lane.
        for j in 0..h {
            outside[j] = open[j];
            outside[(w - 1) * h + j] = open[(w - 1) * h + j];
        }
        for i in 1..w - 1 {
            outside[i * h] = open[i * h];
            outside[i * h + h - 1] = open[i * h + h - 1];
        }
        // A sweep takes each cell's neighbours on the side it comes from at their final
        // values for that sweep, so afterwards no cell can gain from that side. Once a sweep
        // after the first changes nothing, no cell can gain from either side: done.
        for sweep in 0.. {
            let mut changed = false;
            if sweep % 2 == 0 {
                for i in 1..w - 1 {
                    for k in i * h + 1..i * h + h - 1 {
                        let from = outside[k - h - 1]
                            | outside[k - h]
                            | outside[k - h + 1]
                            | outside[k - 1];
                        let new = outside[k] | (open[k] & from);
                        changed |= new != outside[k];
                        outside[k] = new;
                    }
                }
            } else {
                for i in (1..w - 1).rev() {
                    for k in (i * h + 1..i * h + h - 1).rev() {
                        let from = outside[k + h + 1]
                            | outside[k + h]
                            | outside[k + h - 1]
                            | outside[k + 1];
                        let new = outside[k] | (open[k] & from);
                        changed |= new != outside[k];
                        outside[k] = new;
                    }
                }
            }
            if sweep > 0 && !changed {
                break;
            }
        }
        // Enclosed cells, lane by lane: each 8-connected area of them is a hole, filled when
        // small enough. Visited cells join `outside`, so each area is flooded once.
        let enclosed: Vec<u32> = (0..n)
            .filter(|&k| open[k] & !outside[k] != 0)
            .map(|k| k as u32)
            .collect();
        let mut hole = Vec::new();
        for &start in &enclosed {
            let mut left = open[start as usize] & !outside[start as usize];
            while left != 0 {
                let lane = left.trailing_zeros() as usize;
                let bit: LaneMask = 1 << lane;
                left &= !bit;
                hole.clear();
                ws.queue.clear();
                outside[start as usize] |= bit;
                ws.queue.push(start);
                flood8(&mut ws.queue, h, Some(&mut hole), |q| {
                    let join = open[q] & !outside[q] & bit != 0;
                    if join {
                        outside[q] |= bit;
                    }
                    join
                });
                if hole.len() <= max_cells {
                    // Reached within this travel time, so within every longer one too.
                    for &k in &hole {
                        for longer in t..times {
                            ws.lane_masks[longer * n + k as usize] |= bit;
                        }
                    }
                }
            }
        }
    }
}

/// The cells of `raster` (`w` columns of `h` cells from `c0`) reached within the longest of
/// `limits` (ascending), in cell order (i, then j), each with the shortest of the limits its
/// time is within.
fn list_cells(
    raster: &[Millis],
    w: usize,
    h: usize,
    c0: Cell,
    limits: &[Millis],
) -> Vec<(Cell, Millis)> {
    let mut cells = Vec::new();
    for i in 0..w {
        for j in 0..h {
            let t = raster[i * h + j];
            if let Some(&within) = limits.iter().find(|&&l| t <= l) {
                cells.push((
                    Cell {
                        i: c0.i + i as i32,
                        j: c0.j + j as i32,
                    },
                    within,
                ));
            }
        }
    }
    cells
}

/// What rasterising the reached links of a lane search needs (see [`lane_isochrones`]).
struct LaneLinks<'a> {
    link_cells: &'a LinkCells,
    search: &'a LaneSearch,
    /// Each lane's POI and snap, and the ramps on its own link ([`snap_ramps`]).
    snaps: &'a [(u32, Snap)],
    snap_ramps: &'a [([Ramp; 2], usize)],
    /// The travel times, ms, ascending.
    limits: &'a [Millis],
    /// The rasters: columns of `h` cells from `c0`, `n` cells, one raster per travel time.
    c0: Cell,
    h: usize,
    n: usize,
}

impl LaneLinks<'_> {
    /// Sets, in the mask raster of each travel time, the lanes reaching each cell of `links`
    /// within it.
    fn raster(&self, links: &[LinkId], masks: &mut [LaneMask]) {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { self.raster_avx2(links, masks) };
            return;
        }
        self.raster_links(links, masks);
    }

    /// [`LaneLinks::raster_links`] compiled for AVX2: eight lanes' `u32` times per instruction.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn raster_avx2(&self, links: &[LinkId], masks: &mut [LaneMask]) {
        self.raster_links(links, masks);
    }

    #[inline(always)]
    fn raster_links(&self, links: &[LinkId], masks: &mut [LaneMask]) {
        const NONE: LaneTimes = [UNREACHED; LANES];
        let longest = *self.limits.last().expect("at least one travel time");
        for &l in links {
            let link = self.link_cells.ends[l as usize];
            let spans = self.link_cells.of(l);
            let (along, tt_along) = match link.along() {
                Some((tail, tt)) => (self.search.times(tail), tt),
                None => (&NONE, 0),
            };
            let (against, tt_against) = match link.against() {
                Some((tail, tt)) => (self.search.times(tail), tt),
                None => (&NONE, 0),
            };
            // Per lane, the latest time on the link of its best edge that covers the whole
            // link: a lane whose edge reaches the link's other end within a travel time
            // reaches every cell of the link within it (no point of the link is later than
            // that end, and the rounded cell time of `raster_link` cannot exceed a whole
            // number of ms it is below). Tail times are at most UNREACHED = 2³⁰ and edge
            // times are clamped above the longest limit, so the sums cannot overflow.
            let (cap_along, cap_against) = (tt_along.min(longest + 1), tt_against.min(longest + 1));
            let mut whole_by = [Millis::MAX; LANES];
            let mut reached: LaneMask = 0;
            for lane in 0..LANES {
                let (ta, tb) = (along[lane], against[lane]);
                let end_a = if ta <= longest {
                    ta + cap_along
                } else {
                    Millis::MAX
                };
                let end_b = if tb <= longest {
                    tb + cap_against
                } else {
                    Millis::MAX
                };
                whole_by[lane] = end_a.min(end_b);
                reached |= LaneMask::from(ta <= longest || tb <= longest) << lane;
            }
            // A POI's own link is reached from its snap point too.
            for (lane, ((_, snap), (_, k))) in self.snaps.iter().zip(self.snap_ramps).enumerate() {
                if snap.link == l && *k > 0 {
                    reached |= 1 << lane;
                }
            }
            if reached == 0 {
                continue;
            }
            // The lanes covering the whole link within each travel time (more with each
            // longer one); the others reached take the exact path below.
            let mut partial: LaneMask = 0;
            for (t, &limit) in self.limits.iter().enumerate() {
                let mut whole: LaneMask = 0;
                for (lane, &by) in whole_by.iter().enumerate() {
                    whole |= LaneMask::from(by <= limit) << lane;
                }
                partial |= reached & !whole;
                if whole != 0 {
                    let raster = &mut masks[t * self.n..(t + 1) * self.n];
                    for span in spans {
                        raster[self.index(span.cell)] |= whole;
                    }
                }
            }
            while partial != 0 {
                let lane = partial.trailing_zeros() as usize;
                partial &= partial - 1;
                let mut ramps = [Ramp::default(); 4];
                let mut count = 0;
                if self.snaps[lane].1.link == l {
                    let (r, k) = self.snap_ramps[lane];
                    ramps[..k].copy_from_slice(&r[..k]);
                    count = k;
                }
                let lim = longest as f64;
                if along[lane] <= longest {
                    ramps[count] = edge_ramp(along[lane] as f64, tt_along as f64, lim, true);
                    count += 1;
                }
                if against[lane] <= longest {
                    ramps[count] = edge_ramp(against[lane] as f64, tt_against as f64, lim, false);
                    count += 1;
                }
                let bit: LaneMask = 1 << lane;
                for span in spans {
                    if let Some(time) = earliest_on_span(&ramps[..count], span) {
                        let k = self.index(span.cell);
                        for (t, &limit) in self.limits.iter().enumerate() {
                            if time <= limit {
                                masks[t * self.n + k] |= bit;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Index of `cell` in a raster.
    #[inline(always)]
    fn index(&self, cell: Cell) -> usize {
        (cell.i - self.c0.i) as usize * self.h + (cell.j - self.c0.j) as usize
    }
}

/// Steps 3 and 4 of an isochrone on its raster (`ws.raster`, `w` columns of `h` cells from
/// `c0`): fills the enclosed holes, then lists the reached cells in cell order (i, then j).
fn reached_cells(
    ws: &mut IsochroneWorkspace,
    w: usize,
    h: usize,
    c0: Cell,
    params: &IsochroneParams,
) -> Vec<(Cell, Millis)> {
    // Enclosed holes, travel time by travel time (a hole at 5 minutes stays enclosed, and
    // smaller, at 10).
    let max_hole_cells = (params.max_hole_m2 / params.grid().cell_area_m2()).floor() as usize;
    if max_hole_cells > 0 {
        for &m in &params.travel_times_min {
            fill_holes(ws, w, h, minutes_to_ms(m), max_hole_cells);
        }
    }
    list_cells(&ws.raster, w, h, c0, &params.limits_ms())
}

/// The ramps on a POI's own link, from its snap point in each direction the link can be
/// travelled and as far as `lim` allows; the first `count` of the array. An empty ramp (the snap
/// point out of reach of its own link) is left out: it reaches nothing.
fn snap_ramps(network: &Network, snap: &Snap, lim: f64) -> ([Ramp; 2], usize) {
    let (along, against) = network.link_times(snap.link);
    let f = snap.fraction;
    let mut snap_ramps = [Ramp::default(); 2];
    let mut snap_count = 0;
    if let Some(t) = along.map(f64::from) {
        snap_ramps[snap_count] = Ramp {
            t0: -f * t,
            slope: t,
            lo: f,
            hi: (f + lim / t).min(1.0),
        };
        snap_count += 1;
    }
    if let Some(t) = against.map(f64::from) {
        snap_ramps[snap_count] = Ramp {
            t0: f * t,
            slope: -t,
            lo: (f - lim / t).max(0.0),
            hi: f,
        };
        snap_count += 1;
    }
    let mut k = 0;
    for r in 0..snap_count {
        if snap_ramps[r].hi >= snap_ramps[r].lo {
            snap_ramps[k] = snap_ramps[r];
            k += 1;
        }
    }
    (snap_ramps, k)
}

/// [`raster_link`] for ramps that all cover the whole link ([`Ramp::is_full`]): on a span
/// `lo ..= hi` such a ramp is earliest at `lo` if time grows along the link, else at `hi`,
/// which is what `raster_link` computes for it too, with the same arithmetic (so the same
/// times to the bit), but without clipping the ramp to the span.
#[inline]
fn raster_full_link<const N: usize>(
    ramps: &[Ramp; N],
    spans: &[CellSpan],
    raster: &mut [Millis],
    c0: Cell,
    h: usize,
) {
    for span in spans {
        let (lo, hi) = (span.lo as f64, span.hi as f64);
        let mut best = f64::INFINITY;
        for ramp in ramps {
            let t = ramp.t0 + ramp.slope * if ramp.slope >= 0.0 { lo } else { hi };
            if t < best {
                best = t;
            }
        }
        let t = (best.max(0.0) + 0.5) as Millis;
        let cell = &mut raster[(span.cell.i - c0.i) as usize * h + (span.cell.j - c0.j) as usize];
        *cell = (*cell).min(t);
    }
}

/// Lowers each cell of `spans` in `raster` (columns of `h` cells from `c0`) to the earliest
/// time of `ramps` on the cell's stretch of the link, if any ramp meets it. `N` is a constant
/// so that the loop over the ramps unrolls into straight-line code: this loop runs once per
/// reached (link, cell) pair, hundreds of thousands of times per POI.
#[inline]
fn raster_link<const N: usize>(
    ramps: &[Ramp; N],
    spans: &[CellSpan],
    raster: &mut [Millis],
    c0: Cell,
    h: usize,
) {
    for span in spans {
        if let Some(t) = earliest_on_span(ramps, span) {
            let cell =
                &mut raster[(span.cell.i - c0.i) as usize * h + (span.cell.j - c0.j) as usize];
            *cell = (*cell).min(t);
        }
    }
}

/// The earliest time of `ramps` on `span`'s stretch of the link, rounded to milliseconds, if
/// any ramp meets it.
#[inline(always)]
fn earliest_on_span(ramps: &[Ramp], span: &CellSpan) -> Option<Millis> {
    let (lo, hi) = (span.lo as f64, span.hi as f64);
    let mut best = f64::INFINITY;
    for ramp in ramps {
        // The earliest point of the ramp on the span: its start where time grows along the
        // link, its end where it shrinks. (Comparisons rather than `f64::min` because no
        // value is NaN, and they compile to single instructions.)
        let a = if ramp.lo > lo { ramp.lo } else { lo };
        let b = if ramp.hi < hi { ramp.hi } else { hi };
        let x = if ramp.slope >= 0.0 || a > b { a } else { b };
        let t = ramp.t0 + ramp.slope * x;
        if a <= b + 1e-9 && t < best {
            best = t;
        }
    }
    // Round half up without a libm call (times are never negative).
    best.is_finite().then(|| (best.max(0.0) + 0.5) as Millis)
}

/// The ramp of a directed edge of travel time `tt` whose tail was settled at `du`, as far as
/// `lim` allows: along the link's geometry when `along`, else against it.
#[inline]
fn edge_ramp(du: f64, tt: f64, lim: f64, along: bool) -> Ramp {
    let s = ((lim - du) / tt).clamp(0.0, 1.0);
    if along {
        Ramp {
            t0: du,
            slope: tt,
            lo: 0.0,
            hi: s,
        }
    } else {
        Ramp {
            t0: du + tt,
            slope: -tt,
            lo: 1.0 - s,
            hi: 1.0,
        }
    }
}

/// Marks as reached within `limit` every area of cells not reached within `limit` that is
/// enclosed by reached cells and has at most `max_cells` cells. Unreached cells connect through
/// corners too (8-neighbours), matching the outlines, where reached cells touching only at a
/// corner are separate.
///
/// The raster's border ring is never reached (see [`poi_isochrone`]), so it is outside from
/// the start and every flood stays strictly inside the border: neighbours need no bounds
/// checks.
fn fill_holes(ws: &mut IsochroneWorkspace, w: usize, h: usize, limit: Millis, max_cells: usize) {
    if w < 3 || h < 3 {
        return;
    }
    let n = w * h;
    ws.seen.clear();
    ws.seen.resize(n, 0);
    let seen = &mut ws.seen;
    let raster = &ws.raster;
    let queue = &mut ws.queue;
    queue.clear();
    // The border is outside; its open inner neighbours start the outside flood. (Only the
    // two rings are visited: a test of every cell for being on them cost as much as the
    // flood.)
    seen[..h].fill(1);
    seen[(w - 1) * h..].fill(1);
    for i in 1..w - 1 {
        seen[i * h] = 1;
        seen[i * h + h - 1] = 1;
    }
    let mut start = |k: usize| {
        if seen[k] == 0 && raster[k] > limit {
            seen[k] = 1;
            queue.push(k as u32);
        }
    };
    // The inner ring: rows i = 1 and w - 2, columns j = 1 and h - 2 (a cell on two of them
    // is taken once: `seen`). The order of the starts does not matter: the flood marks every
    // cell they connect to, whatever the order.
    for j in 1..h - 1 {
        start(h + j);
        start((w - 2) * h + j);
    }
    for i in 2..w.saturating_sub(2) {
        start(i * h + 1);
        start(i * h + h - 2);
    }
    flood_inside(raster, seen, queue, h, limit, None);
    let mut fill = std::mem::take(&mut ws.component);
    fill.clear();
    let mut hole = Vec::new();
    for k in 0..n {
        if seen[k] == 0 && raster[k] > limit {
            seen[k] = 1;
            queue.push(k as u32);
            hole.clear();
            flood_inside(raster, seen, queue, h, limit, Some(&mut hole));
            if hole.len() <= max_cells {
                fill.extend_from_slice(&hole);
            }
        }
    }
    for &k in &fill {
        ws.raster[k as usize] = limit;
    }
    ws.component = fill;
}

/// Floods from the cells in `queue` (already marked in `seen`) through 8-connected cells later
/// than `limit`, listing visited cells in `out`. Every cell reached must be inside the border
/// ring, which `seen` marks.
fn flood_inside(
    raster: &[Millis],
    seen: &mut [u8],
    queue: &mut Vec<u32>,
    h: usize,
    limit: Millis,
    out: Option<&mut Vec<u32>>,
) {
    flood8(queue, h, out, |q| {
        let open = seen[q] == 0 && raster[q] > limit;
        if open {
            seen[q] = 1;
        }
        open
    });
}

/// Floods a raster of columns of `h` cells from the cells in `queue` through 8-connected
/// neighbours that `join` accepts (and marks, so that it refuses them next time), listing
/// visited cells in `out`. The flood must never reach the raster's border ring.
#[inline(always)]
fn flood8(
    queue: &mut Vec<u32>,
    h: usize,
    mut out: Option<&mut Vec<u32>>,
    mut join: impl FnMut(usize) -> bool,
) {
    let offsets = [h + 1, h, h - 1, 1];
    while let Some(k) = queue.pop() {
        let k = k as usize;
        if let Some(o) = out.as_deref_mut() {
            o.push(k as u32);
        }
        for d in offsets {
            for q in [k - d, k + d] {
                if join(q) {
                    queue.push(q as u32);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::grid::trace_cells;
    use crate::graph::{PlainEdge, RoadGraph};
    use crate::types::{Direction, Mode};
    use geo::Coord;

    fn two_way(nodes: &[(f64, f64)], pairs: &[(u32, u32)], ms_per_m: f64) -> Network {
        let xy: Vec<Coord<f64>> = nodes.iter().map(|&(x, y)| Coord { x, y }).collect();
        let mut edges = vec![];
        for &(a, b) in pairs {
            let len =
                (xy[a as usize].x - xy[b as usize].x).hypot(xy[a as usize].y - xy[b as usize].y);
            let time_ms = (len * ms_per_m).round() as u32;
            edges.push(PlainEdge {
                from: a,
                to: b,
                time_ms,
                length_m: len,
                both_ways: true,
            });
        }
        Network::from_graph(
            RoadGraph::from_edges(xy, &edges),
            Mode::Walk,
            Direction::FromPoi,
        )
    }

    fn params(minutes: Vec<u32>, max_hole_m2: f64) -> IsochroneParams {
        IsochroneParams {
            travel_times_min: minutes,
            cell_m: 10.0,
            buffer_m: 10.0,
            max_snap_m: 50.0,
            max_hole_m2,
        }
    }

    fn iso(net: &Network, p: &IsochroneParams, at: (f64, f64)) -> PoiIsochrone {
        let snap = net
            .snap_index
            .nearest(Coord { x: at.0, y: at.1 }, p.max_snap_m)
            .expect("on the road");
        poi_isochrone(
            net,
            &LinkCells::new(net, p),
            p,
            0,
            snap,
            &mut IsochroneWorkspace::new(net),
        )
    }

    // A straight 1 km road along y = 0 travelled at 100 ms per metre (36 km/h): one minute
    // reaches 600 m. Cells of 10 m whose centre lies within 10 m of the reached part are
    // columns i = -1 ..= 60 (centres -5 ..= 605 m) in rows j = -1 and 0.
    #[test]
    fn straight_road_one_minute() {
        let net = two_way(&[(0.0, 0.0), (1000.0, 0.0)], &[(0, 1)], 100.0);
        let p = params(vec![1], 0.0);
        let iso = iso(&net, &p, (0.0, 3.0));
        let cells = iso.cells_within(60_000);
        assert_eq!(cells.len(), 62 * 2);
        assert_eq!(cells.first(), Some(&Cell { i: -1, j: -1 }));
        assert_eq!(cells.last(), Some(&Cell { i: 60, j: 0 }));
        // Every cell is within the one travel time, and carries it.
        assert!(iso.cells.iter().all(|(_, t)| *t == 60_000));
        // The earliest point within 10 m of the centre (305, 5) is at x = 305 − √75 m: the
        // cell's span of the link, and the time there from the snap point at x = 0.
        let cells = LinkCells::new(&net, &p);
        let span = cells
            .of(0)
            .iter()
            .find(|s| s.cell == Cell { i: 30, j: 0 })
            .expect("the cell is near the road");
        let (ramps, k) = snap_ramps(&net, &iso.snap, 60_000.0);
        let t = earliest_on_span(&ramps[..k], span);
        assert_eq!(t, Some(((305.0 - 75f64.sqrt()) * 100.0).round() as Millis));
    }

    #[test]
    fn shorter_travel_times_are_nested_subsets() {
        let net = two_way(
            &[(0.0, 0.0), (1000.0, 0.0), (1000.0, 800.0)],
            &[(0, 1), (1, 2)],
            50.0,
        );
        let p = params(vec![1, 2], 0.0);
        let iso = iso(&net, &p, (500.0, 0.0));
        let (one, two) = (iso.cells_within(60_000), iso.cells_within(120_000));
        assert!(one.len() < two.len());
        assert!(one.iter().all(|c| two.binary_search(c).is_ok()));
        // From x = 500 m at 20 m/s, one minute reaches the whole first road (both ends) and
        // 700 m up the second: 1,200 m along y=0 plus 700 m along x=1000.
        assert!(two.contains(&Cell { i: 100, j: 75 }) && !one.contains(&Cell { i: 100, j: 75 }));
        assert!(one.contains(&Cell { i: 100, j: 65 }));
    }

    // A one-way link keeps its start's edge and time and drops the end's; two-way keeps both.
    #[test]
    fn link_ends_record_each_direction() {
        let xy = vec![Coord { x: 0.0, y: 0.0 }, Coord { x: 1000.0, y: 0.0 }];
        let one_way = RoadGraph::from_edges(
            xy.clone(),
            &[PlainEdge {
                from: 0,
                to: 1,
                time_ms: 1234,
                length_m: 1000.0,
                both_ways: false,
            }],
        );
        let ends = LinkEnds::new(&one_way, &one_way.links[0]);
        let start = one_way.links[0].start;
        assert_eq!((ends.along(), ends.against()), (Some((start, 1234)), None));
        let net = two_way(&[(0.0, 0.0), (1000.0, 0.0)], &[(0, 1)], 100.0);
        let l = &net.graph.links[0];
        let ends = LinkEnds::new(&net.graph, l);
        assert_eq!(ends.along(), Some((l.start, 100_000)));
        assert_eq!(ends.against(), Some((l.end, 100_000)));
    }

    #[test]
    fn link_set_drains_in_ascending_order_and_empties() {
        let mut set = IdSet::default();
        set.ensure(1000);
        let mut out = vec![];
        set.drain_into(&mut out);
        assert!(out.is_empty());
        for l in [700, 3, 64, 63, 3, 999, 128, 0] {
            set.insert(l);
        }
        set.drain_into(&mut out);
        assert_eq!(out, [0, 3, 63, 64, 128, 700, 999]);
        assert!(set.words.iter().all(|w| *w == 0));
        // Reused: only the new members come out.
        out.clear();
        set.insert(65);
        set.drain_into(&mut out);
        assert_eq!(out, [65]);
    }

    // The shortcut for ramps covering the whole link gives the general rasteriser's times to
    // the millisecond, on random spans and ramps from random node times.
    #[test]
    fn full_ramp_shortcut_matches_the_general_rasteriser() {
        let mut rng = crate::testdata::XorShift(0x5EED);
        let mut unit = move || rng.below(1 << 20) as f64 / (1 << 20) as f64;
        let (c0, h) = (Cell { i: 0, j: 0 }, 8);
        for _ in 0..200 {
            let spans: Vec<CellSpan> = (0..8)
                .map(|j| {
                    let (a, b) = (unit() as f32, unit() as f32);
                    CellSpan {
                        cell: Cell { i: 0, j },
                        lo: a.min(b),
                        hi: a.max(b),
                    }
                })
                .collect();
            let lim = 1e6;
            let (tt, du, dv) = (1.0 + 1e4 * unit(), 1e5 * unit(), 1e5 * unit());
            let ramps = [
                edge_ramp(du, tt, lim, true),
                edge_ramp(dv, tt + 1.0, lim, false),
            ];
            assert!(ramps.iter().all(Ramp::is_full));
            let (mut general, mut shortcut) = (vec![Millis::MAX; 8], vec![Millis::MAX; 8]);
            raster_link(&ramps, &spans, &mut general, c0, h);
            raster_full_link(&ramps, &spans, &mut shortcut, c0, h);
            assert_eq!(general, shortcut);
            assert!(general.iter().all(|t| *t < Millis::MAX));
        }
        // A ramp cut short by the limit is not full.
        assert!(!edge_ramp(9e5, 2e5, 1e6, true).is_full());
    }

    // A 200 m square block ringed by streets: its inside is a hole unless holes are filled.
    #[test]
    fn enclosed_blocks_are_filled_up_to_the_limit() {
        let square = [(0.0, 0.0), (200.0, 0.0), (200.0, 200.0), (0.0, 200.0)];
        let net = two_way(&square, &[(0, 1), (1, 2), (2, 3), (3, 0)], 1.0);
        let with_hole = iso(&net, &params(vec![10], 0.0), (0.0, 0.0));
        // Columns and rows -1 ..= 20 (22 × 22 cells); the 18 × 18 inside are farther than
        // 10 m from every street.
        assert_eq!(with_hole.cells.len(), 22 * 22 - 18 * 18);
        let filled = iso(&net, &params(vec![10], 40_000.0), (0.0, 0.0));
        assert_eq!(filled.cells.len(), 22 * 22);
        let too_small_limit = iso(
            &net,
            &params(vec![10], 18.0 * 18.0 * 100.0 - 1.0),
            (0.0, 0.0),
        );
        assert_eq!(too_small_limit.cells.len(), 22 * 22 - 18 * 18);
    }

    /// Hole filling by definition, the slow way: the unreached cells 8-connected to the
    /// raster's border are outside; every other 8-connected area of unreached cells is a hole,
    /// filled (set to `limit`) when it has at most `max_cells` cells.
    fn fill_holes_reference(raster: &mut [Millis], w: usize, h: usize, limit: Millis, max: usize) {
        let open = |r: &[Millis], k: usize| r[k] > limit;
        let mut label = vec![0usize; w * h]; // 0 = not visited, else the area's number
        let mut next = 1;
        for start in 0..w * h {
            let (i, j) = (start / h, start % h);
            let border = i == 0 || j == 0 || i == w - 1 || j == h - 1;
            if label[start] != 0 || !open(raster, start) {
                continue;
            }
            // Flood the area, then decide by whether any member is on the border.
            let mut stack = vec![start];
            let mut members = vec![];
            label[start] = next;
            let mut outside = border;
            while let Some(k) = stack.pop() {
                members.push(k);
                let (i, j) = ((k / h) as i64, (k % h) as i64);
                for di in -1..=1 {
                    for dj in -1..=1 {
                        let (a, b) = (i + di, j + dj);
                        if a < 0 || b < 0 || a >= w as i64 || b >= h as i64 {
                            continue;
                        }
                        let q = a as usize * h + b as usize;
                        if label[q] == 0 && open(raster, q) {
                            label[q] = next;
                            outside |= a == 0 || b == 0 || a == w as i64 - 1 || b == h as i64 - 1;
                            stack.push(q);
                        }
                    }
                }
            }
            next += 1;
            if !outside && members.len() <= max {
                for k in members {
                    raster[k] = limit;
                }
            }
        }
    }

    // The ring-only border set-up of fill_holes fills exactly what the definition fills, on
    // random rasters of every small shape (the border ring is never reached, as in
    // poi_isochrone).
    #[test]
    fn fill_holes_matches_the_definition_on_random_rasters() {
        let mut rng = crate::testdata::XorShift(0xF1_11);
        let mut ws = IsochroneWorkspace::default();
        for case in 0..400 {
            let (w, h) = (3 + rng.below(9) as usize, 3 + rng.below(9) as usize);
            let limit = 100;
            let density = 1 + rng.below(9);
            let mut raster = vec![Millis::MAX; w * h];
            for i in 1..w - 1 {
                for j in 1..h - 1 {
                    if rng.below(10) < density {
                        raster[i * h + j] = rng.below(2 * limit as u64) as Millis;
                    }
                }
            }
            let max = rng.below(6) as usize;
            let mut expect = raster.clone();
            fill_holes_reference(&mut expect, w, h, limit, max);
            ws.raster = raster;
            fill_holes(&mut ws, w, h, limit, max);
            assert_eq!(ws.raster, expect, "case {case}: {w} x {h}, max {max}");
        }
        // A hand-made one: a 3 x 3 ring of reached cells around one unreached cell, in a
        // 5 x 5 raster, is filled when one cell is allowed and kept otherwise.
        let ring = |ws: &mut IsochroneWorkspace| {
            ws.raster = vec![Millis::MAX; 25];
            for (i, j) in [
                (1, 1),
                (1, 2),
                (1, 3),
                (2, 1),
                (2, 3),
                (3, 1),
                (3, 2),
                (3, 3),
            ] {
                ws.raster[i * 5 + j] = 7;
            }
        };
        ring(&mut ws);
        fill_holes(&mut ws, 5, 5, 10, 1);
        assert_eq!(ws.raster[12], 10);
        ring(&mut ws);
        fill_holes(&mut ws, 5, 5, 10, 0);
        assert_eq!(ws.raster[12], Millis::MAX);
    }

    #[test]
    fn one_way_roads_are_followed_in_their_direction_only() {
        let xy = vec![Coord { x: 0.0, y: 0.0 }, Coord { x: 1000.0, y: 0.0 }];
        let g = RoadGraph::from_edges(
            xy,
            &[PlainEdge {
                from: 0,
                to: 1,
                time_ms: 100_000,
                length_m: 1000.0,
                both_ways: false,
            }],
        );
        let net = Network::from_graph(g, Mode::Drive, Direction::FromPoi);
        let p = params(vec![1], 0.0);
        // From the far end nothing is reachable but the snap point's own surroundings.
        let back = iso(&net, &p, (1000.0, 0.0));
        assert!(
            back.cells.iter().all(|(c, _)| c.i >= 98),
            "{:?}",
            back.cells.first()
        );
        let forward = iso(&net, &p, (0.0, 0.0));
        assert_eq!(forward.cells_within(60_000).len(), 62 * 2);
    }

    /// A jittered 40 × 40 grid of 80 m blocks with random speeds, some one-way streets and a
    /// few missing blocks (holes to fill), deterministic in `seed`.
    fn random_town(seed: u64) -> Network {
        let mut rng = crate::testdata::XorShift(seed * 0x9e37_79b9 + 1);
        let side = 40u32;
        let xy: Vec<Coord<f64>> = (0..side * side)
            .map(|k| Coord {
                x: (k / side) as f64 * 80.0 + rng.unit() * 20.0,
                y: (k % side) as f64 * 80.0 + rng.unit() * 20.0,
            })
            .collect();
        let mut edges = vec![];
        for i in 0..side {
            for j in 0..side {
                for (a, b) in [(i + 1, j), (i, j + 1)] {
                    if a >= side || b >= side || rng.below(12) == 0 {
                        continue;
                    }
                    let (from, to) = (i * side + j, a * side + b);
                    let len = (xy[from as usize].x - xy[to as usize].x)
                        .hypot(xy[from as usize].y - xy[to as usize].y);
                    // 20 to 60 km/h.
                    let ms_per_m = 60.0 + rng.unit() * 120.0;
                    edges.push(PlainEdge {
                        from,
                        to,
                        time_ms: (len * ms_per_m).round().max(1.0) as u32,
                        length_m: len,
                        both_ways: rng.below(5) != 0,
                    });
                }
            }
        }
        Network::from_graph(
            RoadGraph::from_edges(xy, &edges),
            Mode::Drive,
            Direction::FromPoi,
        )
    }

    /// The block groups each lane's masks reach ([`join_lanes`]) and the coverage they add
    /// ([`CoverageCounts::add_lanes`]) are those of the lane's isochrone, joined and counted one
    /// at a time. Block groups: 36 rectangles of uneven sizes tiling the random town.
    fn lane_masks_join_and_count_as_the_isochrones(
        p: &IsochroneParams,
        ws: &IsochroneWorkspace,
        isochrones: &[PoiIsochrone],
    ) {
        use crate::census::BlockGroup;
        use crate::stages::census_join::{
            CensusIndex, CoverageCounts, JoinWorkspace, join_lanes, join_poi,
        };
        use geo::{LineString, MultiPolygon, Polygon};
        let edges = [-100.0, 450.0, 1000.0, 1400.0, 2100.0, 2600.0, 3400.0];
        let mut block_groups = Vec::new();
        for (a, b) in edges.iter().zip(&edges[1..]) {
            for (c, d) in edges.iter().zip(&edges[1..]) {
                let ring: Vec<(f64, f64)> = [(a, c), (b, c), (b, d), (a, d), (a, c)]
                    .iter()
                    .map(|(x, y)| crate::geom::albers::from_5070(Coord { x: **x, y: **y }))
                    .collect();
                block_groups.push(BlockGroup {
                    geoid: format!("{:012}", block_groups.len()),
                    boundary: MultiPolygon(vec![Polygon::new(LineString::from(ring), vec![])]),
                });
            }
        }
        let census = CensusIndex::new(&block_groups, p.grid());
        let limits = p.limits_ms();
        let raster = ws.lane_raster().expect("the lanes reach cells");
        let joined = join_lanes(&census, &raster, isochrones.len());
        let mut by_lanes = CoverageCounts::new(&limits);
        by_lanes.add_lanes(&raster);
        let mut one_by_one = CoverageCounts::new(&limits);
        let mut join_ws = JoinWorkspace::default();
        let mut later = 0;
        for (lane, iso) in isochrones.iter().enumerate() {
            let want: Vec<(u32, u8)> = join_poi(&census, iso, &mut join_ws)
                .block_groups
                .iter()
                .map(|&(bg, t)| {
                    (
                        bg,
                        limits.iter().position(|&l| t <= l).expect("within") as u8,
                    )
                })
                .collect();
            assert!(
                want.len() > 1,
                "lane {lane} reaches {} block groups",
                want.len()
            );
            later += want.iter().filter(|r| r.1 > 0).count();
            assert_eq!(joined[lane], want, "lane {lane}");
            one_by_one.add(iso, 1).expect("counts grow");
        }
        assert!(
            later > 0,
            "no block group reached only within a longer time"
        );
        assert_eq!(by_lanes.to_delta(), one_by_one.to_delta());
        // And outlined from the masks as from each POI's cells.
        let mut tracer = crate::geom::mask_trace::MaskTracer::default();
        for (t, &limit) in limits.iter().enumerate() {
            let (c0, w, h) = (raster.c0, raster.w, raster.h);
            let traced = tracer.trace(raster.within(t), c0, w, h, isochrones.len(), p.cell_m);
            for (outline, iso) in traced.iter().zip(isochrones) {
                let cells = iso.cells_within(limit);
                assert_eq!(outline.cells, cells.len() as u64);
                assert_eq!(outline.outline, trace_cells(&cells, p.cell_m));
            }
        }
    }

    #[test]
    fn lane_isochrones_equal_one_isochrone_at_a_time() {
        for (seed, lanes, spread) in [(1u64, LANES, 400.0), (2, 5, 1500.0), (3, 1, 0.0)] {
            let net = random_town(seed);
            let p = IsochroneParams {
                travel_times_min: vec![1, 2, 3],
                cell_m: 25.0,
                buffer_m: 20.0,
                max_snap_m: 100.0,
                max_hole_m2: 40_000.0,
            };
            let link_cells = LinkCells::new(&net, &p);
            let mut rng = crate::testdata::XorShift(seed * 0x85eb_ca6b + 7);
            let pois: Vec<(u32, Snap)> = (0..lanes as u32)
                .map(|k| {
                    let at = Coord {
                        x: 1200.0 + rng.unit() * spread,
                        y: 1500.0 + rng.unit() * spread,
                    };
                    (
                        k * 3,
                        net.snap_index.nearest(at, p.max_snap_m).expect("a road"),
                    )
                })
                .collect();
            let mut ws = IsochroneWorkspace::new(&net);
            let together = lane_isochrones(&net, &link_cells, &p, &pois, &mut ws);
            assert_eq!(together.len(), pois.len());
            lane_masks_join_and_count_as_the_isochrones(&p, &ws, &together);
            let mut one_ws = IsochroneWorkspace::new(&net);
            let no_holes = IsochroneParams {
                max_hole_m2: 0.0,
                ..p.clone()
            };
            let mut filled = 0;
            for ((poi, snap), got) in pois.iter().zip(&together) {
                let want = poi_isochrone(&net, &link_cells, &p, *poi, *snap, &mut one_ws);
                assert!(want.cells.len() > 100, "{} cells", want.cells.len());
                assert_eq!(got, &want, "POI {poi}");
                let open = poi_isochrone(&net, &link_cells, &no_holes, *poi, *snap, &mut one_ws);
                filled += want.cells.len() - open.cells.len();
            }
            // The town's missing blocks leave holes, so the hole filling is compared too.
            assert!(filled > 0, "no hole filled");
        }
    }
}
