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
    /// Reached cells, sorted, each with the earliest arrival time (ms) within the longest
    /// travel time. The isochrone for `T` minutes is the cells with time ≤ `T`.
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

/// The result of the stage for a batch of POIs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IsochroneBatch {
    /// Isochrones of the POIs that met the network.
    pub isochrones: Vec<PoiIsochrone>,
    /// POIs that did not, with the reason.
    pub rejects: Vec<Reject>,
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
    #[inline]
    fn time_at(&self, x: f64) -> Option<f64> {
        (x >= self.lo - 1e-12 && x <= self.hi + 1e-12).then_some(self.t0 + self.slope * x)
    }
}

/// The ramps that reach one link.
#[derive(Clone, Copy, Debug)]
struct LinkReach {
    link: LinkId,
    ramps: [Ramp; 4],
    count: usize,
}

/// Reusable per-thread state of the stage (search arrays, reached links, raster).
#[derive(Default)]
pub struct IsochroneWorkspace {
    search: Workspace,
    reached: Vec<LinkReach>,
    /// Per link: index into `reached`, valid when `link_stamp` equals `generation`.
    link_slot: Vec<u32>,
    link_stamp: Vec<u32>,
    generation: u32,
    samples: Vec<f64>,
    raster: Vec<Millis>,
}

impl IsochroneWorkspace {
    /// A workspace sized for `network`.
    pub fn new(network: &Network) -> Self {
        IsochroneWorkspace {
            search: Workspace::new(network.graph.node_count()),
            ..Default::default()
        }
    }

    fn reset(&mut self, links: usize) {
        if self.link_slot.len() < links {
            self.link_slot.resize(links, 0);
            self.link_stamp.resize(links, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.link_stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        self.reached.clear();
    }

    fn add_ramp(&mut self, link: LinkId, ramp: Ramp) {
        if ramp.hi < ramp.lo {
            return;
        }
        let l = link as usize;
        if self.link_stamp[l] != self.generation {
            self.link_stamp[l] = self.generation;
            self.link_slot[l] = self.reached.len() as u32;
            self.reached.push(LinkReach {
                link,
                ramps: [Ramp::default(); 4],
                count: 0,
            });
        }
        let r = &mut self.reached[self.link_slot[l] as usize];
        if r.count < 4 {
            r.ramps[r.count] = ramp;
            r.count += 1;
        }
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
            Some(snap) => out.isochrones.push(poi_isochrone(
                network,
                params,
                first_index + k as u32,
                snap,
                ws,
            )),
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

    // 1. The reached links, each with the ramps that reach it: the POI's own link from the
    //    snap point, then every out-edge of every settled node, as far as the time allows.
    ws.reset(g.links.len());
    let lim = limit as f64;
    let (along, against) = network.link_times(snap.link);
    let f = snap.fraction;
    if let Some(t) = along.map(f64::from) {
        ws.add_ramp(
            snap.link,
            Ramp {
                t0: -f * t,
                slope: t,
                lo: f,
                hi: (f + lim / t).min(1.0),
            },
        );
    }
    if let Some(t) = against.map(f64::from) {
        ws.add_ramp(
            snap.link,
            Ramp {
                t0: f * t,
                slope: -t,
                lo: (f - lim / t).max(0.0),
                hi: f,
            },
        );
    }
    for k in 0..ws.search.settled().len() {
        let u = ws.search.settled()[k];
        let du = ws.search.time_ms(u).unwrap_or(limit) as f64;
        for e in g.out_edges(u) {
            let tt = g.time_ms[e] as f64;
            let s = ((lim - du) / tt).clamp(0.0, 1.0);
            let ramp = if g.edge_along[e] {
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
            };
            ws.add_ramp(g.edge_link[e], ramp);
        }
    }

    // 2. A dense raster over the reached links' extent, filled with the earliest time per cell.
    let grid = params.grid();
    let (c, b) = (params.cell_m, params.buffer_m);
    let (mut lo, mut hi) = (
        Coord {
            x: f64::MAX,
            y: f64::MAX,
        },
        Coord {
            x: f64::MIN,
            y: f64::MIN,
        },
    );
    for r in &ws.reached {
        for q in g.link_geometry(r.link) {
            lo = Coord {
                x: lo.x.min(q.x),
                y: lo.y.min(q.y),
            };
            hi = Coord {
                x: hi.x.max(q.x),
                y: hi.y.max(q.y),
            };
        }
    }
    let c0 = grid.cell_of(Coord {
        x: lo.x - b,
        y: lo.y - b,
    });
    let c1 = grid.cell_of(Coord {
        x: hi.x + b,
        y: hi.y + b,
    });
    let (w, h) = ((c1.i - c0.i + 1) as usize, (c1.j - c0.j + 1) as usize);
    ws.raster.clear();
    ws.raster.resize(w * h, Millis::MAX);
    let raster = &mut ws.raster;
    let b2 = b * b;
    let mut stamp = |p: Coord<f64>, t: f64| {
        let t = t.round() as Millis;
        let ia = ceil_i32((p.x - b) / c - 0.5);
        let ib = floor_i32((p.x + b) / c - 0.5);
        let ja = ceil_i32((p.y - b) / c - 0.5);
        let jb = floor_i32((p.y + b) / c - 0.5);
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
    for r in &ws.reached {
        sample_link(network, r, step, &mut ws.samples, &mut stamp);
    }

    // 3. The reached cells, in cell order (i, then j).
    let mut cells = Vec::new();
    for i in 0..w {
        for j in 0..h {
            let t = ws.raster[i * h + j];
            if t <= limit {
                cells.push((
                    Cell {
                        i: c0.i + i as i32,
                        j: c0.j + j as i32,
                    },
                    t,
                ));
            }
        }
    }
    PoiIsochrone {
        poi,
        snap,
        settled_nodes: settled,
        cells,
    }
}

/// Calls `f(point, time)` along the reached parts of a link: at every multiple of `step`
/// metres from its start and at the ends of every ramp, with the earliest time of the ramps
/// that reach that point. `xs` is scratch space.
fn sample_link(
    network: &Network,
    reach: &LinkReach,
    step: f64,
    xs: &mut Vec<f64>,
    f: &mut impl FnMut(Coord<f64>, f64),
) {
    let g = &network.graph;
    let link = &g.links[reach.link as usize];
    let first = link.first_point as usize;
    let pts = &g.link_points[first..first + link.point_count as usize];
    let offs = &network.point_offset_m[first..first + link.point_count as usize];
    let total = offs[offs.len() - 1];
    let ramps = &reach.ramps[..reach.count];
    xs.clear();
    let (lo, hi) = ramps
        .iter()
        .fold((1.0f64, 0.0f64), |(a, b), r| (a.min(r.lo), b.max(r.hi)));
    if total > 0.0 {
        let (k0, k1) = (
            (lo * total / step).ceil() as i64,
            (hi * total / step).floor() as i64,
        );
        xs.extend((k0..=k1).map(|k| k as f64 * step / total));
    }
    // Ramp ends inside the link (where the time runs out, or the POI's own snap point) are
    // sampled too; ends at the link's ends are the grid positions 0 and, below, 1.
    let grid_samples = xs.len();
    for r in ramps {
        for x in [r.lo, r.hi] {
            if x > 0.0 && x < 1.0 {
                xs.push(x);
            }
        }
    }
    if hi >= 1.0 {
        xs.push(1.0);
    }
    if xs.len() > grid_samples {
        xs.sort_unstable_by(f64::total_cmp);
    }
    // A ramp end closer than a quarter step to a sample already taken adds nothing the
    // buffer does not already cover to within the sampling accuracy: skip it.
    let min_gap = if total > 0.0 {
        step / 4.0 / total
    } else {
        f64::INFINITY
    };
    let mut last = f64::NEG_INFINITY;
    // Walk the polyline once: the fractions come in increasing order.
    let mut seg = 0usize;
    for &x in xs.iter() {
        if x - last < min_gap {
            continue;
        }
        let Some(t) = ramps
            .iter()
            .filter_map(|r| r.time_at(x))
            .min_by(f64::total_cmp)
        else {
            continue;
        };
        last = x;
        let s = x * total;
        while seg + 2 < pts.len() && offs[seg + 1] < s {
            seg += 1;
        }
        let (a, b) = (pts[seg], pts[seg + 1]);
        let l = offs[seg + 1] - offs[seg];
        let u = if l > 0.0 {
            ((s - offs[seg]) / l).clamp(0.0, 1.0)
        } else {
            0.0
        };
        f(
            Coord {
                x: a.x + (b.x - a.x) * u,
                y: a.y + (b.y - a.y) * u,
            },
            t.max(0.0),
        );
    }
}

/// `x.floor() as i32` without a libm call (the baseline x86-64 target has no rounding
/// instruction, and this runs for every sample).
#[inline]
fn floor_i32(x: f64) -> i32 {
    let t = x as i32;
    if (t as f64) > x { t - 1 } else { t }
}

/// `x.ceil() as i32`, as [`floor_i32`].
#[inline]
fn ceil_i32(x: f64) -> i32 {
    let t = x as i32;
    if (t as f64) < x { t + 1 } else { t }
}
