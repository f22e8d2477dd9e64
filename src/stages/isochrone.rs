//! The `isochrone` stage: for each POI, a bounded Dijkstra to the longest travel time, then the
//! reached network — every edge up to the point the time runs out — rasterised onto the global
//! analysis grid.
//!
//! A cell belongs to a POI's isochrone for `T` minutes when its centre lies within
//! `buffer_m` of a point of the network reachable within `T` (points are sampled every half
//! cell along the edges, so "within" is exact to a quarter cell). The result is the set of
//! cells with the earliest arrival time in each: one search serves every travel time, the
//! polygon of the isochrone is the exact outline of its cells
//! ([`crate::geom::grid::trace_cells`]), and its area is the cell count times the cell area
//! (EPSG:5070 is equal-area). Unlike the original's convex hull, rivers, highways without
//! exits and dead ends stay outside.

use super::network::Network;
use crate::geom::grid::{Cell, Grid};
use crate::graph::dijkstra::{Seed, Workspace};
use crate::graph::snap::Snap;
use crate::graph::{LinkId, Millis};
use crate::types::{Poi, Reject};
use geo::Coord;
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
}

impl IsochroneParams {
    /// The longest travel time in milliseconds: the search limit.
    pub fn limit_ms(&self) -> Millis {
        minutes_to_ms(self.travel_times_min.last().copied().unwrap_or(0))
    }

    /// The analysis grid.
    pub fn grid(&self) -> Grid {
        Grid { cell_m: self.cell_m }
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
    /// Reached cells, sorted, each with the earliest arrival time (ms) within the longest
    /// travel time. The isochrone for `T` minutes is the cells with time ≤ `T`.
    pub cells: Vec<(Cell, Millis)>,
}

impl PoiIsochrone {
    /// The cells of the isochrone for `limit_ms`, sorted.
    pub fn cells_within(&self, limit_ms: Millis) -> Vec<Cell> {
        self.cells.iter().filter(|(_, t)| *t <= limit_ms).map(|(c, _)| *c).collect()
    }
}

/// The result of the stage for a batch of POIs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IsochroneBatch {
    /// Isochrones of the POIs that met the network.
    pub isochrones: Vec<PoiIsochrone>,
    /// POIs that did not, with the reason.
    pub rejects: Vec<Reject>,
}

/// A reached piece of one link: from fraction `from` (time `t_from`) to fraction `to`
/// (time `t_to`), fractions measured from the link's start.
#[derive(Clone, Copy, Debug)]
struct Piece {
    link: LinkId,
    from: f64,
    to: f64,
    t_from: f64,
    t_to: f64,
}

/// Reusable per-thread state of the stage (search arrays and raster).
#[derive(Default)]
pub struct IsochroneWorkspace {
    search: Workspace,
    pieces: Vec<Piece>,
    raster: Vec<Millis>,
}

impl IsochroneWorkspace {
    /// A workspace sized for `network`.
    pub fn new(network: &Network) -> Self {
        IsochroneWorkspace { search: Workspace::new(network.graph.node_count()), ..Default::default() }
    }
}

/// Runs the stage for `pois` (with `first_index` the run-wide index of `pois[0]`).
pub fn isochrone_batch(
    network: &Network,
    params: &IsochroneParams,
    pois: &[Poi],
    first_index: u32,
    ws: &mut IsochroneWorkspace,
) -> IsochroneBatch {
    let mut out = IsochroneBatch::default();
    for (k, poi) in pois.iter().enumerate() {
        match network.snap_lonlat(poi.lon, poi.lat, params.max_snap_m) {
            Some(snap) => {
                out.isochrones.push(poi_isochrone(network, params, first_index + k as u32, snap, ws))
            }
            None => out.rejects.push(Reject {
                source: poi.source.clone(),
                id: Some(poi.id.clone()),
                reason: format!(
                    "no usable {} road within {} m (--max-snap-m)",
                    network.mode, params.max_snap_m
                ),
            }),
        }
    }
    out
}

/// The isochrone of one snapped POI.
pub fn poi_isochrone(
    network: &Network,
    params: &IsochroneParams,
    poi: u32,
    snap: Snap,
    ws: &mut IsochroneWorkspace,
) -> PoiIsochrone {
    let g = &network.graph;
    let limit = params.limit_ms();
    let seeds: Vec<Seed> = network.seeds(&snap, poi);
    let settled = ws.search.run(g, &seeds, Some(limit)) as u32;

    // 1. The reached pieces: the POI's own link from the snap point, then every out-edge of
    //    every settled node, each as far as the remaining time allows.
    ws.pieces.clear();
    let (along, against) = network.link_times(snap.link);
    let lim = limit as f64;
    if let Some(t) = along {
        let full = (1.0 - snap.fraction) * t as f64;
        let s = if full > 0.0 { (lim / full).min(1.0) } else { 1.0 };
        let to = snap.fraction + (1.0 - snap.fraction) * s;
        ws.pieces.push(Piece { link: snap.link, from: snap.fraction, to, t_from: 0.0, t_to: s * full });
    }
    if let Some(t) = against {
        let full = snap.fraction * t as f64;
        let s = if full > 0.0 { (lim / full).min(1.0) } else { 1.0 };
        let to = snap.fraction * (1.0 - s);
        ws.pieces.push(Piece { link: snap.link, from: snap.fraction, to, t_from: 0.0, t_to: s * full });
    }
    for &u in ws.search.settled() {
        let du = ws.search.time_ms(u).unwrap_or(limit) as f64;
        for e in g.out_edges(u) {
            let tt = g.time_ms[e] as f64;
            let s = ((lim - du) / tt).clamp(0.0, 1.0);
            let (from, to) = if g.edge_along[e] { (0.0, s) } else { (1.0, 1.0 - s) };
            ws.pieces.push(Piece { link: g.edge_link[e], from, to, t_from: du, t_to: du + s * tt });
        }
    }

    // 2. A dense raster over the pieces' extent, filled with the earliest time per cell.
    let grid = params.grid();
    let (c, b) = (params.cell_m, params.buffer_m);
    let (mut lo, mut hi) = (Coord { x: f64::MAX, y: f64::MAX }, Coord { x: f64::MIN, y: f64::MIN });
    for p in &ws.pieces {
        for q in g.link_geometry(p.link) {
            lo = Coord { x: lo.x.min(q.x), y: lo.y.min(q.y) };
            hi = Coord { x: hi.x.max(q.x), y: hi.y.max(q.y) };
        }
    }
    let c0 = grid.cell_of(Coord { x: lo.x - b, y: lo.y - b });
    let c1 = grid.cell_of(Coord { x: hi.x + b, y: hi.y + b });
    let (w, h) = ((c1.i - c0.i + 1) as usize, (c1.j - c0.j + 1) as usize);
    ws.raster.clear();
    ws.raster.resize(w * h, Millis::MAX);
    let raster = &mut ws.raster;
    let b2 = b * b;
    let mut stamp = |p: Coord<f64>, t: f64| {
        let t = t.round() as Millis;
        let ia = ((p.x - b) / c - 0.5).ceil() as i32;
        let ib = ((p.x + b) / c - 0.5).floor() as i32;
        let ja = ((p.y - b) / c - 0.5).ceil() as i32;
        let jb = ((p.y + b) / c - 0.5).floor() as i32;
        for i in ia.max(c0.i)..=ib.min(c1.i) {
            let dx = (i as f64 + 0.5) * c - p.x;
            let row = (i - c0.i) as usize * h;
            for j in ja.max(c0.j)..=jb.min(c1.j) {
                let dy = (j as f64 + 0.5) * c - p.y;
                if dx * dx + dy * dy <= b2 {
                    let cell = &mut raster[row + (j - c0.j) as usize];
                    if t < *cell {
                        *cell = t;
                    }
                }
            }
        }
    };
    let step = c / 2.0;
    for p in &ws.pieces {
        sample_piece(g.link_geometry(p.link), p, step, &mut stamp);
    }

    // 3. The reached cells, in cell order (i, then j).
    let mut cells = Vec::new();
    for i in 0..w {
        for j in 0..h {
            let t = ws.raster[i * h + j];
            if t <= limit {
                cells.push((Cell { i: c0.i + i as i32, j: c0.j + j as i32 }, t));
            }
        }
    }
    PoiIsochrone { poi, snap, settled_nodes: settled, cells }
}

/// Calls `f(point, time)` at points along `line` between the piece's two fractions, at most
/// `step` metres apart, both ends included, with the time interpolated linearly.
fn sample_piece(line: &[Coord<f64>], piece: &Piece, step: f64, f: &mut impl FnMut(Coord<f64>, f64)) {
    let total: f64 = line.windows(2).map(|s| seg_len(s[0], s[1])).sum();
    let (sa, sb) = (piece.from * total, piece.to * total);
    let (lo, hi) = if sa <= sb { (sa, sb) } else { (sb, sa) };
    let n = ((hi - lo) / step).ceil().max(0.0) as usize + 1;
    let time_at = |s: f64| {
        if sb == sa { piece.t_from } else { piece.t_from + (piece.t_to - piece.t_from) * (s - sa) / (sb - sa) }
    };
    // Walk the polyline once: samples come in increasing arc length.
    let (mut seg, mut seg_start) = (0usize, 0.0f64);
    for k in 0..n {
        let s = if n == 1 { lo } else { lo + (hi - lo) * k as f64 / (n - 1) as f64 };
        while seg + 2 < line.len() && seg_start + seg_len(line[seg], line[seg + 1]) < s {
            seg_start += seg_len(line[seg], line[seg + 1]);
            seg += 1;
        }
        let (a, bq) = (line[seg], line[seg + 1]);
        let l = seg_len(a, bq);
        let u = if l > 0.0 { ((s - seg_start) / l).clamp(0.0, 1.0) } else { 0.0 };
        f(Coord { x: a.x + (bq.x - a.x) * u, y: a.y + (bq.y - a.y) * u }, time_at(s));
    }
}

#[inline]
fn seg_len(a: Coord<f64>, b: Coord<f64>) -> f64 {
    (b.x - a.x).hypot(b.y - a.y)
}
