//! The `distance` stage: for each block group, the nearest POI
//!
//! * in a straight line, from the block group's centroid in EPSG:5070 — exactly the original
//!   tool's "travel distance" (Euclidean in EPSG:5070, km, miles = km × 0.621371);
//! * along the network, by travel time, from multi-source Dijkstra searches over the POIs of
//!   each batch, pruned where earlier batches already did better: the centroid is snapped to
//!   the nearest road and the time runs to (or from, see [`crate::types::Direction`]) that
//!   point.
//!
//! Both are folds ([`StraightFold`], [`NetworkFold`]) whose state is bounded by the targets and
//! the network, so a run never holds its POIs.

use super::network::Network;
#[cfg(test)]
use crate::graph::dijkstra::{Seed, Workspace};
use crate::graph::snap::Snap;
use crate::graph::{LinkId, Millis, NodeId};
use geo::Coord;
use serde::{Deserialize, Serialize};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Kilometres to statute miles, the original's factor.
pub const MILES_PER_KM: f64 = 0.621371;

/// The nearest POI in a straight line.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StraightNearest {
    /// Index of the POI in the run's POI list.
    pub poi: u32,
    /// Euclidean distance in EPSG:5070, metres.
    pub distance_m: f64,
}

/// For each target, the nearest of `pois` (EPSG:5070 points with their run indices) in a
/// straight line; ties go to the smaller POI index. `None` only when `pois` is empty. One
/// batch of a [`StraightFold`]; the tests' reference.
#[cfg(test)]
pub fn straight_line_nearest(
    pois: &[(u32, Coord<f64>)],
    targets: &[Coord<f64>],
) -> Vec<Option<StraightNearest>> {
    let mut fold = StraightFold::new(targets.to_vec());
    fold.add(pois);
    fold.result()
}

/// The straight-line nearest POI of each target, folded over batches of POIs: state is the
/// targets and their best so far, whatever the number of POIs. Ties go to the smaller POI
/// index, so the result does not depend on how the POIs are split into batches or on the
/// order of the batches.
///
/// Cost per batch: the batch's POIs are bucketed in a uniform grid (about one per cell), and
/// each target looks at the cells around it in rings, stopping when no unvisited cell can be
/// closer than its best so far. Once the first batches have given every target a near POI,
/// most targets stop after one cell: folding a batch costs tens of nanoseconds per target
/// (a walk per target in an R-tree cost microseconds, which made the fold the slowest stage
/// of a million-POI run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StraightFold {
    targets: Vec<Coord<f64>>,
    best: Vec<Option<StraightNearest>>,
}

impl StraightFold {
    /// A fold for `targets` (EPSG:5070), none of which has a nearest POI yet.
    pub fn new(targets: Vec<Coord<f64>>) -> StraightFold {
        let best = vec![None; targets.len()];
        StraightFold { targets, best }
    }

    /// Folds in one batch of POIs (EPSG:5070 points with their run indices). Each POI index
    /// is to be added once. Returns the targets whose nearest POI changed, ascending.
    pub fn add(&mut self, pois: &[(u32, Coord<f64>)]) -> Vec<u32> {
        let Some(grid) = PoiGrid::new(pois) else {
            return Vec::new();
        };
        let mut changed = Vec::new();
        for (k, (t, best)) in self.targets.iter().zip(&mut self.best).enumerate() {
            let before = *best;
            grid.offer_nearest(*t, best);
            if *best != before {
                changed.push(k as u32);
            }
        }
        changed
    }

    /// Takes the POIs `removed` out: the targets whose nearest POI was one of them look again
    /// among `remaining` (every POI still in, with its run index). Returns those targets.
    pub fn remove(
        &mut self,
        removed: &std::collections::HashSet<u32>,
        remaining: &[(u32, Coord<f64>)],
    ) -> Vec<u32> {
        let orphans: Vec<u32> = (0..self.best.len() as u32)
            .filter(|t| self.best[*t as usize].is_some_and(|b| removed.contains(&b.poi)))
            .collect();
        for &t in &orphans {
            self.best[t as usize] = None;
        }
        if let Some(grid) = PoiGrid::new(remaining) {
            for &t in &orphans {
                grid.offer_nearest(self.targets[t as usize], &mut self.best[t as usize]);
            }
        }
        orphans
    }

    /// The targets, as given to [`StraightFold::new`].
    pub fn targets(&self) -> &[Coord<f64>] {
        &self.targets
    }

    /// For each target, the nearest POI of all batches so far (`None` before any POI).
    pub fn result(&self) -> Vec<Option<StraightNearest>> {
        self.best.clone()
    }

    /// The nearest POI of target `t` (as in [`StraightFold::result`]).
    pub fn result_of(&self, t: usize) -> Option<StraightNearest> {
        self.best[t]
    }
}

/// One batch's POIs in a uniform grid over their bounding box, for nearest-POI queries.
struct PoiGrid {
    /// Lower-left corner of cell (0, 0).
    origin: Coord<f64>,
    /// Side of a cell, metres.
    cell: f64,
    nx: usize,
    ny: usize,
    /// POIs of cell `i` (row-major) are `items[start[i]..start[i + 1]]`.
    start: Vec<u32>,
    items: Vec<(u32, Coord<f64>)>,
}

/// Slack on the grid's lower bounds, so that rounding in cell arithmetic can never prune a
/// cell holding a POI at exactly the best distance (coordinates are metres, below 10⁷).
const GRID_SLACK_M: f64 = 1e-6;

impl PoiGrid {
    /// Buckets `pois`; `None` when there are none.
    fn new(pois: &[(u32, Coord<f64>)]) -> Option<PoiGrid> {
        let first = pois.first()?.1;
        let (mut lo, mut hi) = (first, first);
        for (_, c) in pois {
            lo = Coord {
                x: lo.x.min(c.x),
                y: lo.y.min(c.y),
            };
            hi = Coord {
                x: hi.x.max(c.x),
                y: hi.y.max(c.y),
            };
        }
        let (w, h, n) = (hi.x - lo.x, hi.y - lo.y, pois.len() as f64);
        // About one POI per cell; at least w/n or h/n when the POIs lie on a line, so that
        // there are never more than about 3n cells.
        let cell = (w * h / n).sqrt().max(w.max(h) / n).max(1.0);
        let nx = (w / cell) as usize + 1;
        let ny = (h / cell) as usize + 1;
        let index = |c: &Coord<f64>| {
            let i = (((c.x - lo.x) / cell) as usize).min(nx - 1);
            let j = (((c.y - lo.y) / cell) as usize).min(ny - 1);
            j * nx + i
        };
        let mut start = vec![0u32; nx * ny + 1];
        for (_, c) in pois {
            start[index(c) + 1] += 1;
        }
        for i in 1..start.len() {
            start[i] += start[i - 1];
        }
        let mut fill = start.clone();
        let mut items = vec![(0, lo); pois.len()];
        for &(k, c) in pois {
            let slot = &mut fill[index(&c)];
            items[*slot as usize] = (k, c);
            *slot += 1;
        }
        Some(PoiGrid {
            origin: lo,
            cell,
            nx,
            ny,
            start,
            items,
        })
    }

    /// Replaces `best` by the nearest POI of the grid to `t` if that is nearer, or as near
    /// with a smaller index.
    fn offer_nearest(&self, t: Coord<f64>, best: &mut Option<StraightNearest>) {
        let bound = |best: &Option<StraightNearest>| best.map_or(f64::INFINITY, |b| b.distance_m);
        let (o, s) = (self.origin, self.cell);
        // Whether the rectangle of cells [i0, i1] × [j0, j1] lies farther from `t` than the
        // best so far, with the slack. Squared, without `hypot`: this runs for every block
        // group at every batch, and the slack dwarfs the rounding of the squares.
        let farther =
            |i0: usize, i1: usize, j0: usize, j1: usize, best: &Option<StraightNearest>| {
                let (x0, x1) = (o.x + i0 as f64 * s, o.x + (i1 + 1) as f64 * s);
                let (y0, y1) = (o.y + j0 as f64 * s, o.y + (j1 + 1) as f64 * s);
                let dx = (x0 - t.x).max(t.x - x1).max(0.0);
                let dy = (y0 - t.y).max(t.y - y1).max(0.0);
                let r = bound(best) + GRID_SLACK_M;
                dx * dx + dy * dy > r * r
            };
        let (nx, ny) = (self.nx, self.ny);
        if farther(0, nx - 1, 0, ny - 1, best) {
            return;
        }
        let cx = ((t.x - o.x) / s).clamp(0.0, (nx - 1) as f64) as usize;
        let cy = ((t.y - o.y) / s).clamp(0.0, (ny - 1) as f64) as usize;
        let visit = |i: usize, j: usize, best: &mut Option<StraightNearest>| {
            if farther(i, i, j, j, best) {
                return;
            }
            let cell = j * nx + i;
            let items = &self.items[self.start[cell] as usize..self.start[cell + 1] as usize];
            for &(k, c) in items {
                let d = (c.x - t.x).hypot(c.y - t.y);
                let better = match *best {
                    None => true,
                    Some(b) => d < b.distance_m || (d == b.distance_m && k < b.poi),
                };
                if better {
                    *best = Some(StraightNearest {
                        poi: k,
                        distance_m: d,
                    });
                }
            }
        };
        for r in 0.. {
            // Ring r: the cells at Chebyshev distance r from (cx, cy), clipped to the grid.
            let (i0, i1) = (cx.saturating_sub(r), (cx + r).min(nx - 1));
            let (j0, j1) = (cy.saturating_sub(r), (cy + r).min(ny - 1));
            for i in i0..=i1 {
                if cy >= r {
                    visit(i, cy - r, best);
                }
                if r > 0 && cy + r < ny {
                    visit(i, cy + r, best);
                }
            }
            for j in (cy.saturating_sub(r - r.min(1)))..=(cy + r - r.min(1)).min(ny - 1) {
                if r > 0 && cx >= r {
                    visit(cx - r, j, best);
                }
                if r > 0 && cx + r < nx {
                    visit(cx + r, j, best);
                }
            }
            // Every cell not yet visited lies beyond one of the visited rectangle's sides that
            // are inside the grid; stop when all of those are farther than the best so far.
            let mut beyond = f64::INFINITY;
            if i0 > 0 {
                beyond = beyond.min(t.x - (o.x + i0 as f64 * s));
            }
            if i1 + 1 < nx {
                beyond = beyond.min(o.x + (i1 + 1) as f64 * s - t.x);
            }
            if j0 > 0 {
                beyond = beyond.min(t.y - (o.y + j0 as f64 * s));
            }
            if j1 + 1 < ny {
                beyond = beyond.min(o.y + (j1 + 1) as f64 * s - t.y);
            }
            if beyond == f64::INFINITY || beyond.max(0.0) - GRID_SLACK_M > bound(best) {
                return;
            }
        }
    }
}

/// The nearest POI along the network, or why there is none.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum NetworkNearest {
    /// Reached: the POI, the travel time and the road distance.
    Reached {
        /// Index of the POI in the run's POI list.
        poi: u32,
        /// Travel time, milliseconds.
        time_ms: f64,
        /// Road distance, metres.
        length_m: f64,
    },
    /// No usable road within the snapping distance of the point.
    NoRoad,
    /// The point's road is not connected to any POI.
    Unreachable,
}

impl NetworkNearest {
    /// The best `(time, POI, length)` offered to a target, or unreachable when none was.
    fn from_best(best: Option<(f64, u32, f64)>) -> NetworkNearest {
        match best {
            Some((time_ms, poi, length_m)) => NetworkNearest::Reached {
                poi,
                time_ms,
                length_m,
            },
            None => NetworkNearest::Unreachable,
        }
    }

    /// A short reason for the outputs when there is no network value.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            NetworkNearest::Reached { .. } => None,
            NetworkNearest::NoRoad => Some("no usable road within --max-snap-m of the centroid"),
            NetworkNearest::Unreachable => Some("the centroid's road is not connected to any POI"),
        }
    }
}

/// Network nearest POI for each target point (EPSG:5070), from one multi-source Dijkstra seeded
/// at every POI's snap point. `poi_snaps` pairs each POI's run index with its snap. Runs use
/// [`NetworkFold`]; this one-shot search, written independently, is the tests' reference.
#[cfg(test)]
pub fn network_nearest(
    network: &Network,
    poi_snaps: &[(u32, Snap)],
    targets: &[Coord<f64>],
    max_snap_m: f64,
    ws: &mut Workspace,
) -> Vec<NetworkNearest> {
    let g = &network.graph;
    let seeds: Vec<Seed> = poi_snaps
        .iter()
        .flat_map(|(k, s)| network.seeds(s, *k))
        .collect();
    ws.run(g, &seeds, None);
    // POIs on the same link as a target can reach it without passing a node.
    let mut on_link: HashMap<LinkId, Vec<(u32, f64)>> = HashMap::new();
    for (k, s) in poi_snaps {
        on_link.entry(s.link).or_default().push((*k, s.fraction));
    }
    targets
        .iter()
        .map(|t| {
            let Some(snap) = network.snap_index.nearest(*t, max_snap_m) else {
                return NetworkNearest::NoRoad;
            };
            let link = &g.links[snap.link as usize];
            let (along, against) = network.link_times(snap.link);
            let len = link.length_m;
            let g_ = snap.fraction;
            let mut best: Option<(f64, u32, f64)> = None; // (time, poi, length)
            let mut offer = |time: f64, poi: u32, length: f64| {
                let better = match best {
                    None => true,
                    Some((bt, bp, _)) => time < bt || (time == bt && poi < bp),
                };
                if better {
                    best = Some((time, poi, length));
                }
            };
            // Arriving along the link from its start, or against it from its end.
            if let (Some(tt), Some(t0), Some(o)) =
                (along, ws.time_ms(link.start), ws.origin(link.start))
            {
                let l0 = ws.length_m(link.start).unwrap_or(0.0);
                offer(t0 as f64 + g_ * tt as f64, o, l0 + g_ * len);
            }
            if let (Some(tt), Some(t0), Some(o)) =
                (against, ws.time_ms(link.end), ws.origin(link.end))
            {
                let l0 = ws.length_m(link.end).unwrap_or(0.0);
                offer(t0 as f64 + (1.0 - g_) * tt as f64, o, l0 + (1.0 - g_) * len);
            }
            for &(poi, f) in on_link.get(&snap.link).map(Vec::as_slice).unwrap_or(&[]) {
                if let (Some(tt), true) = (along, g_ >= f) {
                    offer((g_ - f) * tt as f64, poi, (g_ - f) * len);
                }
                if let (Some(tt), true) = (against, g_ <= f) {
                    offer((f - g_) * tt as f64, poi, (f - g_) * len);
                }
            }
            NetworkNearest::from_best(best)
        })
        .collect()
}

/// The network nearest POI of each target, folded over batches of snapped POIs: the state is
/// bounded by the network and the targets, not by the POIs. Gives exactly what
/// `network_nearest` gives for all POIs at once (the same times, POIs and lengths, the same
/// f64 arithmetic), whatever the batches and their order.
///
/// State: for every graph node the best label so far, the lexicographic minimum of
/// (time, POI index, road length) over the paths from the POIs added (16 bytes a node); for
/// every target its snap and the best POI on its own link so far.
///
/// [`NetworkFold::add`] runs a multi-source Dijkstra from the batch's seeds that relaxes a node
/// only when its new label is better than the node's label so far. That pruning is exact:
/// labels only grow along a path, so a path through a node the batch does not improve cannot
/// improve anything beyond it either. Cost: the first batch settles the reachable graph, as a
/// one-shot search would; later batches settle only the nodes they improve, fewer and fewer as
/// the labels fill in. Every POI index is to be added once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NetworkFold {
    labels: Vec<Label>,
    targets: Vec<Option<TargetLink>>,
    /// The targets snapped to each link (those a POI on that link can reach without a node).
    by_link: HashMap<LinkId, Vec<u32>>,
    #[serde(skip)]
    search: PrunedSearch,
    /// What changed since [`NetworkFold::take_changed`], when tracked: nodes whose label was
    /// set, targets whose on-link best may have changed (both may repeat). Not tracked during
    /// a run, whose memory must stay flat.
    #[serde(skip)]
    changed: Option<(Vec<NodeId>, Vec<u32>)>,
    /// The targets at each node (a target's link starts or ends there), built when first
    /// needed: `targets_at.1[targets_at.0[n]..targets_at.0[n + 1]]`.
    #[serde(skip)]
    targets_at: std::sync::OnceLock<(Vec<u32>, Vec<u32>)>,
    /// The edges into each node, as (tail, edge), built by the first removal (which seeds
    /// from the edges into a cell): `edges_in.1[edges_in.0[n]..edges_in.0[n + 1]]`.
    #[serde(skip)]
    edges_in: std::sync::OnceLock<EdgesIn>,
}

/// A CSR of the edges into each node: where each node's run starts, and (tail, edge) pairs.
type EdgesIn = (Vec<u32>, Vec<(NodeId, u32)>);

/// A node's best label: reached at `time_ms` from POI `poi` over `length_m` metres of road.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Label {
    time_ms: Millis,
    poi: u32,
    length_m: f64,
}

impl Label {
    const UNREACHED: Label = Label {
        time_ms: Millis::MAX,
        poi: u32::MAX,
        length_m: 0.0,
    };

    /// Whether this label beats `other`: earlier, then from the smaller POI index, then
    /// shorter. A total order on paths, so the labels a search ends with do not depend on the
    /// order it relaxes edges in, nor on how the POIs were split into batches or epochs.
    #[inline]
    fn beats(&self, other: &Label) -> bool {
        (self.time_ms, self.poi, self.length_m) < (other.time_ms, other.poi, other.length_m)
    }

    fn reached(&self) -> bool {
        self.time_ms != Millis::MAX
    }
}

/// A target's place on the network, and the best POI on its own link so far.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct TargetLink {
    start: NodeId,
    end: NodeId,
    /// Whole-link times in the search direction, start → end and end → start.
    along: Option<Millis>,
    against: Option<Millis>,
    length_m: f64,
    /// Where the target is on the link (share of it from its start).
    fraction: f64,
    /// (time, POI, length) of the best POI on the same link, reached without a node.
    on_link: Option<(f64, u32, f64)>,
}

/// Offers `(time, poi, length)` to `best`: it wins when its (time, POI) is smaller; on a full
/// tie the earlier offer stays, as in `network_nearest`.
#[inline]
fn offer_to(best: &mut Option<(f64, u32, f64)>, time: f64, poi: u32, length: f64) {
    let better = match *best {
        None => true,
        Some((bt, bp, _)) => time < bt || (time == bt && poi < bp),
    };
    if better {
        *best = Some((time, poi, length));
    }
}

/// Offers POI `poi`, snapped at `fraction` of the target's own link, to the target's best
/// POI on that link (reached without passing a node).
fn offer_on_link(tl: &mut TargetLink, poi: u32, fraction: f64) {
    let (g_, f, len) = (tl.fraction, fraction, tl.length_m);
    if let (Some(tt), true) = (tl.along, g_ >= f) {
        offer_to(&mut tl.on_link, (g_ - f) * tt as f64, poi, (g_ - f) * len);
    }
    if let (Some(tt), true) = (tl.against, g_ <= f) {
        offer_to(&mut tl.on_link, (f - g_) * tt as f64, poi, (f - g_) * len);
    }
}

/// The pruned search's scratch state: its heap and which nodes it settled, by generation.
#[derive(Clone, Debug, Default)]
struct PrunedSearch {
    heap: BinaryHeap<Reverse<u64>>,
    done: Vec<u32>,
    generation: u32,
}

impl NetworkFold {
    /// A fold for `targets` (EPSG:5070) on `network`: each target is snapped once to the
    /// nearest road within `max_snap_m`, as `network_nearest` does.
    pub fn new(network: &Network, targets: &[Coord<f64>], max_snap_m: f64) -> NetworkFold {
        let g = &network.graph;
        let mut by_link: HashMap<LinkId, Vec<u32>> = HashMap::new();
        let targets = targets
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let snap = network.snap_index.nearest(*t, max_snap_m)?;
                let link = &g.links[snap.link as usize];
                let (along, against) = network.link_times(snap.link);
                by_link.entry(snap.link).or_default().push(i as u32);
                Some(TargetLink {
                    start: link.start,
                    end: link.end,
                    along,
                    against,
                    length_m: link.length_m,
                    fraction: snap.fraction,
                    on_link: None,
                })
            })
            .collect();
        NetworkFold {
            labels: vec![Label::UNREACHED; g.node_count()],
            targets,
            by_link,
            search: PrunedSearch::default(),
            changed: None,
            targets_at: std::sync::OnceLock::new(),
            edges_in: std::sync::OnceLock::new(),
        }
    }

    /// Starts recording which targets each later `add` and `remove` may change, for
    /// [`NetworkFold::take_changed`].
    pub fn track_changes(&mut self) {
        self.changed.get_or_insert_with(Default::default);
    }

    /// The targets whose nearest POI may have changed since the last call (or since
    /// [`NetworkFold::track_changes`]), ascending: those at a node whose label was set, and
    /// those whose on-link best was offered or reset. A superset of the targets whose
    /// [`NetworkFold::result_of`] differs, at the cost of the changes (not of the network).
    pub fn take_changed(&mut self) -> Vec<u32> {
        let Some((nodes, mut targets)) = self.changed.replace(Default::default()) else {
            return Vec::new();
        };
        let (start, at) = self.targets_at.get_or_init(|| {
            // A CSR of node → targets, from the targets' link ends.
            let mut count = vec![0u32; self.labels.len() + 1];
            for t in self.targets.iter().flatten() {
                count[t.start as usize + 1] += 1;
                count[t.end as usize + 1] += 1;
            }
            for n in 1..count.len() {
                count[n] += count[n - 1];
            }
            let mut fill = count.clone();
            let mut at = vec![0u32; count[self.labels.len()] as usize];
            for (k, t) in self.targets.iter().enumerate() {
                if let Some(t) = t {
                    for n in [t.start, t.end] {
                        at[fill[n as usize] as usize] = k as u32;
                        fill[n as usize] += 1;
                    }
                }
            }
            (count, at)
        });
        for n in nodes {
            targets
                .extend_from_slice(&at[start[n as usize] as usize..start[n as usize + 1] as usize]);
        }
        targets.sort_unstable();
        targets.dedup();
        targets
    }

    /// Folds in one batch of POIs snapped to `network` (the network given to
    /// [`NetworkFold::new`]), each with its run index. Returns the number of nodes the batch
    /// improved (settled by its search).
    pub fn add(&mut self, network: &Network, pois: &[(u32, Snap)]) -> usize {
        let g = &network.graph;
        assert_eq!(
            g.node_count(),
            self.labels.len(),
            "NetworkFold::add on another network than the fold's"
        );
        // POIs on the same link as a target can reach it without passing a node.
        for (k, s) in pois {
            self.offer_on_its_link(*k, s);
        }
        let mut seeds = Vec::new();
        push_seeds(network, pois, &mut seeds);
        self.search(network, &seeds)
    }

    /// Takes the POIs `removed` (run indices) out. `remaining` are the POIs still in, snapped;
    /// only those on links touching the removed POIs' cells are looked at.
    ///
    /// The nodes whose best label came from a removed POI (its cell of the network Voronoi
    /// diagram) are reset and searched again, seeded from the cell's boundary (the labels of
    /// the nodes with an edge into the cell, which are exact: their best POI is still in) and
    /// from the remaining POIs whose snap points lie on links at the cell. Labels elsewhere
    /// cannot change: no path from a removed POI was their best. The result equals a fold of
    /// the remaining POIs from scratch. Returns the number of nodes reset.
    pub fn remove(
        &mut self,
        network: &Network,
        removed: &std::collections::HashSet<u32>,
        remaining: &[(u32, Snap)],
    ) -> usize {
        let g = &network.graph;
        assert_eq!(
            g.node_count(),
            self.labels.len(),
            "NetworkFold::remove on another network than the fold's"
        );
        // POIs on the same link as a target: recompute the targets that had a removed one.
        for (k, t) in self.targets.iter_mut().enumerate() {
            if let Some(t) = t
                && t.on_link.is_some_and(|(_, poi, _)| removed.contains(&poi))
            {
                t.on_link = None;
                if let Some(c) = &mut self.changed {
                    c.1.push(k as u32);
                }
            }
        }
        // Removed POIs by index, to test every label cheaply.
        let mut is_removed = vec![false; removed.iter().max().map_or(0, |&m| m as usize + 1)];
        for &k in removed {
            is_removed[k as usize] = true;
        }
        let mut in_cell = vec![false; self.labels.len()];
        let mut cell = Vec::new();
        for (n, l) in self.labels.iter_mut().enumerate() {
            if l.reached() && is_removed.get(l.poi as usize) == Some(&true) {
                *l = Label::UNREACHED;
                in_cell[n] = true;
                cell.push(n as NodeId);
            }
        }
        if let Some(c) = &mut self.changed {
            c.0.extend_from_slice(&cell);
        }
        // The boundary: edges from outside into the cell.
        let mut seeds = Vec::new();
        if !cell.is_empty() {
            let (start, edges_in) = self.edges_in.get_or_init(|| {
                let mut start = vec![0u32; g.node_count() + 1];
                for &v in &g.head {
                    start[v as usize + 1] += 1;
                }
                for n in 1..start.len() {
                    start[n] += start[n - 1];
                }
                let mut fill = start.clone();
                let mut edges_in = vec![(0, 0); g.head.len()];
                for u in 0..g.node_count() as NodeId {
                    for e in g.out_edges(u) {
                        let v = g.head[e] as usize;
                        edges_in[fill[v] as usize] = (u, e as u32);
                        fill[v] += 1;
                    }
                }
                (start, edges_in)
            });
            for &v in &cell {
                let v = v as usize;
                for &(u, e) in &edges_in[start[v] as usize..start[v + 1] as usize] {
                    let lu = self.labels[u as usize];
                    if in_cell[u as usize] || !lu.reached() {
                        continue;
                    }
                    seeds.push((
                        v as NodeId,
                        Label {
                            time_ms: lu.time_ms.saturating_add(g.time_ms[e as usize]),
                            poi: lu.poi,
                            length_m: lu.length_m + g.edge_length_m(e),
                        },
                    ));
                }
            }
        }
        let mut near = Vec::new();
        for (k, snap) in remaining {
            let link = &g.links[snap.link as usize];
            if in_cell[link.start as usize] || in_cell[link.end as usize] {
                near.push((*k, *snap));
            }
            // Targets on the link of a remaining POI may have lost their on-link best.
            self.offer_on_its_link(*k, snap);
        }
        push_seeds(network, &near, &mut seeds);
        self.search(network, &seeds);
        cell.len()
    }

    /// Offers POI `poi`, snapped at `snap`, to the targets on its link (reached without a
    /// node), recording them as possibly changed.
    fn offer_on_its_link(&mut self, poi: u32, snap: &Snap) {
        let Some(ts) = self.by_link.get(&snap.link) else {
            return;
        };
        for &t in ts {
            if let Some(tl) = self.targets[t as usize].as_mut() {
                offer_on_link(tl, poi, snap.fraction);
            }
        }
        if let Some(c) = &mut self.changed {
            c.1.extend_from_slice(ts);
        }
    }

    /// The pruned multi-source Dijkstra from `seeds` (node, label) (see the type's docs),
    /// with [`Workspace::run`]'s tie rule ([`Label::beats`]).
    fn search(&mut self, network: &Network, seeds: &[(NodeId, Label)]) -> usize {
        let g = &network.graph;
        let labels = &mut self.labels;
        let s = &mut self.search;
        let mut changed = self.changed.as_mut().map(|c| &mut c.0);
        if s.done.len() < labels.len() {
            s.done.resize(labels.len(), 0);
        }
        s.generation = s.generation.wrapping_add(1);
        if s.generation == 0 {
            // Wrapped after 2³² batches: clear the stamps once so stale ones never match.
            s.done.iter_mut().for_each(|d| *d = 0);
            s.generation = 1;
        }
        let generation = s.generation;
        s.heap.clear();
        const LIMIT: Millis = Millis::MAX - 1;
        for &(node, label) in seeds {
            let n = node as usize;
            if label.time_ms > LIMIT {
                continue;
            }
            if label.beats(&labels[n]) {
                labels[n] = label;
                s.heap.push(Reverse(pack(label.time_ms, node)));
            }
        }
        let mut settled = 0;
        while let Some(Reverse(key)) = s.heap.pop() {
            let time = (key >> 32) as Millis;
            let u = key as u32 as usize;
            let label = labels[u];
            // Stale (improved since) or already settled by this batch.
            if time > label.time_ms || s.done[u] == generation {
                continue;
            }
            s.done[u] = generation;
            settled += 1;
            // Every node whose label the search sets is queued and, the heap being run dry,
            // settled once: recording settled nodes records them all.
            if let Some(c) = changed.as_mut() {
                c.push(u as NodeId);
            }
            for e in g.out_edges(u as NodeId) {
                let v = g.head[e] as usize;
                let t = time.saturating_add(g.time_ms[e]);
                if t > LIMIT || s.done[v] == generation {
                    continue;
                }
                let offer = Label {
                    time_ms: t,
                    poi: label.poi,
                    length_m: label.length_m + g.edge_length_m(e as u32),
                };
                if offer.beats(&labels[v]) {
                    labels[v] = offer;
                    s.heap.push(Reverse(pack(t, v as NodeId)));
                }
            }
        }
        settled
    }

    /// The nearest POI of each target over all batches so far: from the labels at the ends of
    /// its link, then from POIs on the link itself, as `network_nearest` offers them.
    pub fn result(&self) -> Vec<NetworkNearest> {
        (0..self.targets.len()).map(|t| self.result_of(t)).collect()
    }

    /// The nearest POI of target `t` (as in [`NetworkFold::result`]).
    pub fn result_of(&self, t: usize) -> NetworkNearest {
        let Some(t) = &self.targets[t] else {
            return NetworkNearest::NoRoad;
        };
        let g_ = t.fraction;
        let mut best = None;
        let (a, b) = (self.labels[t.start as usize], self.labels[t.end as usize]);
        if let (Some(tt), true) = (t.along, a.reached()) {
            let time = a.time_ms as f64 + g_ * tt as f64;
            offer_to(&mut best, time, a.poi, a.length_m + g_ * t.length_m);
        }
        if let (Some(tt), true) = (t.against, b.reached()) {
            let time = b.time_ms as f64 + (1.0 - g_) * tt as f64;
            let length = b.length_m + (1.0 - g_) * t.length_m;
            offer_to(&mut best, time, b.poi, length);
        }
        if let Some((time, poi, length)) = t.on_link {
            offer_to(&mut best, time, poi, length);
        }
        NetworkNearest::from_best(best)
    }
}

/// Pushes the search seeds of `pois` (run index, snap) onto `seeds`: the ends of each POI's
/// link, labelled with the time and length to reach them.
fn push_seeds(network: &Network, pois: &[(u32, Snap)], seeds: &mut Vec<(NodeId, Label)>) {
    for (k, snap) in pois {
        for seed in network.seeds(snap, *k) {
            seeds.push((
                seed.node,
                Label {
                    time_ms: seed.time_ms,
                    poi: seed.origin,
                    length_m: seed.length_m,
                },
            ));
        }
    }
}

/// A heap key ordering by time, then node (as [`Workspace`]'s heap does).
#[inline]
fn pack(time: Millis, node: NodeId) -> u64 {
    ((time as u64) << 32) | node as u64
}

/// Minutes from milliseconds.
pub fn ms_to_minutes(ms: f64) -> f64 {
    ms / 60_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{PlainEdge, RoadGraph};
    use crate::types::{Direction, Mode};

    #[test]
    fn straight_line_nearest_with_ties_to_the_smaller_index() {
        let pois = [
            (7, Coord { x: 0.0, y: 0.0 }),
            (2, Coord { x: 10.0, y: 0.0 }),
            (5, Coord { x: 0.0, y: 30.0 }),
        ];
        let got = straight_line_nearest(
            &pois,
            &[
                Coord { x: 5.0, y: 0.0 },
                Coord { x: 3.0, y: 4.0 },
                Coord { x: 0.0, y: 29.0 },
            ],
        );
        assert_eq!(
            got[0],
            Some(StraightNearest {
                poi: 2,
                distance_m: 5.0
            })
        );
        assert_eq!(
            got[1],
            Some(StraightNearest {
                poi: 7,
                distance_m: 5.0
            })
        );
        assert_eq!(
            got[2],
            Some(StraightNearest {
                poi: 5,
                distance_m: 1.0
            })
        );
        assert_eq!(
            straight_line_nearest(&[], &[Coord { x: 0.0, y: 0.0 }]),
            vec![None]
        );
    }

    // 0 ---- 1 ---- 2 (two-way, 1,000 m each, 100 s each)     3 ---- 4 (an island)
    #[test]
    fn network_nearest_times_lengths_and_reasons() {
        let xy: Vec<_> = [
            (0.0, 0.0),
            (1000.0, 0.0),
            (2000.0, 0.0),
            (0.0, 5000.0),
            (1000.0, 5000.0),
        ]
        .iter()
        .map(|&(x, y)| Coord { x, y })
        .collect();
        let mut edges = vec![];
        for (a, b) in [(0, 1), (1, 2), (3, 4)] {
            edges.push(PlainEdge {
                from: a,
                to: b,
                time_ms: 100_000,
                length_m: 1000.0,
                both_ways: true,
            });
        }
        let net = Network::from_graph(
            RoadGraph::from_edges(xy, &edges),
            Mode::Walk,
            Direction::FromPoi,
        );
        let poi_a = net
            .snap_index
            .nearest(Coord { x: 250.0, y: 0.0 }, 10.0)
            .unwrap();
        let poi_b = net
            .snap_index
            .nearest(Coord { x: 1900.0, y: 0.0 }, 10.0)
            .unwrap();
        let targets = [
            Coord { x: 750.0, y: 20.0 },  // on A's link: 500 m from A
            Coord { x: 1400.0, y: -5.0 }, // 650 m from A via node 1, 500 m from B: B
            Coord {
                x: 500.0,
                y: 5000.0,
            }, // the island
            Coord {
                x: 500.0,
                y: 2500.0,
            }, // 2.5 km from any road
        ];
        let mut ws = Workspace::default();
        let got = network_nearest(&net, &[(0, poi_a), (1, poi_b)], &targets, 100.0, &mut ws);
        let reached = |k: usize| match got[k] {
            NetworkNearest::Reached {
                poi,
                time_ms,
                length_m,
            } => (poi, time_ms.round(), length_m.round()),
            other => panic!("{other:?}"),
        };
        assert_eq!(reached(0), (0, 50_000.0, 500.0));
        assert_eq!(reached(1), (1, 50_000.0, 500.0));
        assert_eq!(got[2], NetworkNearest::Unreachable);
        assert_eq!(got[3], NetworkNearest::NoRoad);
        assert!(got[3].reason().is_some() && got[0].reason().is_none());
    }
}

#[cfg(test)]
mod fold_tests {
    use super::*;
    use crate::graph::{PlainEdge, RoadGraph};
    use crate::testdata::XorShift;
    use crate::types::{Direction, Mode};

    fn reached(n: NetworkNearest) -> (u32, f64, f64) {
        match n {
            NetworkNearest::Reached {
                poi,
                time_ms,
                length_m,
            } => (poi, time_ms.round(), length_m.round()),
            other => panic!("{other:?}"),
        }
    }

    // 0 --- 1 --- 2 --- 3 --- 4 on y = 0 (two-way, 1,000 m and 100 s each), and an island
    // 5 --> 6 (one-way) at y = 5,000. POI A (index 5) at x = 100, POI B (index 2) at x = 3,900.
    fn line() -> Network {
        let mut xy: Vec<_> = (0..5)
            .map(|i| Coord {
                x: 1000.0 * i as f64,
                y: 0.0,
            })
            .collect();
        xy.push(Coord { x: 0.0, y: 5000.0 });
        xy.push(Coord {
            x: 1000.0,
            y: 5000.0,
        });
        let mut edges = vec![];
        for (a, b, both_ways) in [(0, 1, true), (1, 2, true), (2, 3, true), (3, 4, true)] {
            edges.push(PlainEdge {
                from: a,
                to: b,
                time_ms: 100_000,
                length_m: 1000.0,
                both_ways,
            });
        }
        edges.push(PlainEdge {
            from: 5,
            to: 6,
            time_ms: 100_000,
            length_m: 1000.0,
            both_ways: false,
        });
        Network::from_graph(
            RoadGraph::from_edges(xy, &edges),
            Mode::Walk,
            Direction::FromPoi,
        )
    }

    fn snap(net: &Network, x: f64, y: f64) -> Snap {
        net.snap_index
            .nearest(Coord { x, y }, 50.0)
            .expect("on a road")
    }

    #[test]
    fn network_fold_known_answers_whatever_the_batches() {
        let net = line();
        let a = (5, snap(&net, 100.0, 0.0));
        let b = (2, snap(&net, 3900.0, 0.0));
        let a_again = (9, a.1); // same place as A, larger index: never better
        let targets = [
            Coord { x: 2500.0, y: 10.0 }, // between nodes 2 and 3: B via node 3
            Coord { x: 200.0, y: -10.0 }, // on A's link, 100 m downstream of A
            Coord { x: 2000.0, y: 0.0 }, // node 2: 190 s from A and from B, B has the smaller index
            Coord {
                x: 1000.0,
                y: 5000.0,
            }, // the island
            Coord { x: 0.0, y: 2500.0 }, // no road within 50 m
        ];
        let want = |got: &[NetworkNearest]| {
            assert_eq!(reached(got[0]), (2, 140_000.0, 1400.0));
            assert_eq!(reached(got[1]), (5, 10_000.0, 100.0));
            assert_eq!(reached(got[2]), (2, 190_000.0, 1900.0));
            assert_eq!(got[3], NetworkNearest::Unreachable);
            assert_eq!(got[4], NetworkNearest::NoRoad);
        };
        let mut ws = Workspace::default();
        want(&network_nearest(
            &net,
            &[a, b, a_again],
            &targets,
            50.0,
            &mut ws,
        ));

        // A, then B: B improves nodes 4, 3 and (by the tie) 2; A's twin nothing.
        let mut fold = NetworkFold::new(&net, &targets, 50.0);
        assert_eq!(fold.add(&net, &[a]), 5);
        assert_eq!(reached(fold.result()[0]), (5, 240_000.0, 2400.0));
        assert_eq!(fold.add(&net, &[b]), 3);
        assert_eq!(fold.add(&net, &[a_again]), 0);
        want(&fold.result());
        // B, then A: A improves only nodes 0 and 1.
        let mut fold = NetworkFold::new(&net, &targets, 50.0);
        assert_eq!(fold.add(&net, &[a_again, b]), 5);
        assert_eq!(fold.add(&net, &[a]), 2);
        want(&fold.result());
        // All at once, in any order.
        let mut fold = NetworkFold::new(&net, &targets, 50.0);
        assert_eq!(fold.add(&net, &[b, a_again, a]), 5);
        want(&fold.result());
        // Nothing added yet: nothing reached.
        let fold = NetworkFold::new(&net, &targets, 50.0);
        assert_eq!(fold.result()[0], NetworkNearest::Unreachable);
    }

    #[test]
    fn network_fold_on_link_pois_respect_one_way_roads() {
        // The island link 5 --> 6 is one-way: a POI on it reaches points downstream only.
        let net = line();
        let poi = (0, snap(&net, 500.0, 5000.0));
        let targets = [
            Coord {
                x: 300.0,
                y: 5000.0,
            },
            Coord {
                x: 800.0,
                y: 5000.0,
            },
        ];
        let mut fold = NetworkFold::new(&net, &targets, 50.0);
        fold.add(&net, &[poi]);
        let got = fold.result();
        assert_eq!(got[0], NetworkNearest::Unreachable);
        assert_eq!(reached(got[1]), (0, 30_000.0, 300.0));
        let mut ws = Workspace::default();
        assert_eq!(network_nearest(&net, &[poi], &targets, 50.0, &mut ws), got);
    }

    // One-way diamond: 5 --> 0, then 0 --> 1 --> 3 and 0 --> 2 --> 3 (100 s each, but the way
    // over 2 is 2 km longer), then 3 --> 4. Node 3 is reached at the same time by both ways:
    // the length kept is that of the way settled first (node 1, the smaller id), as in
    // Workspace::run.
    #[test]
    fn network_fold_keeps_the_one_shot_length_on_tied_paths() {
        let xy = [
            (0.0, 0.0),
            (1000.0, 1000.0),
            (1000.0, -1000.0),
            (2000.0, 0.0),
            (3000.0, 0.0),
            (-1000.0, 0.0),
        ]
        .map(|(x, y)| Coord { x, y })
        .to_vec();
        let edges: Vec<_> = [
            (5, 0, 1000.0),
            (0, 1, 1000.0),
            (0, 2, 3000.0),
            (1, 3, 1000.0),
            (2, 3, 1000.0),
            (3, 4, 1000.0),
        ]
        .iter()
        .map(|&(from, to, length_m)| PlainEdge {
            from,
            to,
            time_ms: 100_000,
            length_m,
            both_ways: false,
        })
        .collect();
        let net = Network::from_graph(
            RoadGraph::from_edges(xy, &edges),
            Mode::Drive,
            Direction::FromPoi,
        );
        let pois = [(3, snap(&net, -500.0, 0.0)), (1, snap(&net, -500.0, 0.0))];
        let targets = [Coord { x: 2500.0, y: 0.0 }];
        let mut ws = Workspace::default();
        let want = network_nearest(&net, &pois, &targets, 50.0, &mut ws);
        assert_eq!(reached(want[0]), (1, 300_000.0, 3000.0));
        for batches in [
            &[&pois[..]][..],
            &[&pois[..1], &pois[1..]],
            &[&pois[1..], &pois[..1]],
        ] {
            let mut fold = NetworkFold::new(&net, &targets, 50.0);
            for batch in batches {
                fold.add(&net, batch);
            }
            assert_eq!(fold.result(), want);
        }
    }

    /// Splits `items` into batches of `size` and shuffles the batches.
    fn shuffled_batches<T: Clone>(items: &[T], size: usize, rng: &mut XorShift) -> Vec<Vec<T>> {
        let mut batches: Vec<Vec<T>> = items.chunks(size).map(<[T]>::to_vec).collect();
        for i in (1..batches.len()).rev() {
            batches.swap(i, rng.below(i as u64 + 1) as usize);
        }
        batches
    }

    fn shuffle<T>(items: &mut [T], rng: &mut XorShift) {
        for i in (1..items.len()).rev() {
            items.swap(i, rng.below(i as u64 + 1) as usize);
        }
    }

    /// The straight-line nearest by brute force: smallest (distance, index).
    fn brute_straight(
        pois: &[(u32, Coord<f64>)],
        targets: &[Coord<f64>],
    ) -> Vec<Option<StraightNearest>> {
        targets
            .iter()
            .map(|t| {
                pois.iter()
                    .map(|(k, c)| StraightNearest {
                        poi: *k,
                        distance_m: (c.x - t.x).hypot(c.y - t.y),
                    })
                    .min_by(|p, q| {
                        (p.distance_m, p.poi)
                            .partial_cmp(&(q.distance_m, q.poi))
                            .expect("finite")
                    })
            })
            .collect()
    }

    /// The straight-line fold against brute force on awkward layouts: POIs on a few integer
    /// coordinates (many exact ties, many twins), all on one line, all at one point, clustered
    /// far from most targets; targets inside, on and far outside the POIs' box; batches of
    /// every size from 1 to all.
    #[test]
    fn straight_fold_equals_brute_force_on_ties_lines_and_far_targets() {
        let mut rng = XorShift(0x057a_16e7);
        type Layout<'a> = &'a dyn Fn(&mut XorShift) -> Coord<f64>;
        let layouts: [Layout; 4] = [
            &|r| Coord {
                x: r.below(6) as f64 * 10.0,
                y: r.below(6) as f64 * 10.0,
            },
            &|r| Coord {
                x: 1_500_000.0 + r.below(1000) as f64 * 3.5,
                y: 2_000_000.0,
            },
            &|_| Coord { x: 7.0, y: -3.0 },
            &|r| Coord {
                x: 5e5 + 200.0 * r.unit(),
                y: -5e5 + 50.0 * r.unit(),
            },
        ];
        for (l, layout) in layouts.iter().enumerate() {
            let n = 1 + rng.below(300) as usize;
            let mut indices: Vec<u32> = (0..n as u32).collect();
            shuffle(&mut indices, &mut rng);
            let pois: Vec<(u32, Coord<f64>)> =
                indices.iter().map(|&k| (k, layout(&mut rng))).collect();
            let mut targets: Vec<Coord<f64>> = (0..200).map(|_| layout(&mut rng)).collect();
            targets.extend((0..100).map(|_| Coord {
                x: -2e6 + 4e6 * rng.unit(),
                y: -2e6 + 4e6 * rng.unit(),
            }));
            targets.push(pois[0].1);
            let want = brute_straight(&pois, &targets);
            for size in [1, 2, 5, 64, n] {
                let mut fold = StraightFold::new(targets.clone());
                for batch in shuffled_batches(&pois, size, &mut rng) {
                    fold.add(&batch);
                }
                same(
                    &fold.result(),
                    &want,
                    &format!("layout {l}, batches of {size}"),
                );
            }
        }
    }

    /// Asserts equal lists, naming the first target that differs (not printing them all).
    fn same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
        assert_eq!(got.len(), want.len(), "{what}");
        if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
            panic!("{what}: target {i}: {:?} instead of {:?}", got[i], want[i]);
        }
    }

    /// Random POIs and targets over the DC extract's dense core (targets also beyond it, where
    /// there are no roads), POIs under shuffled distinct indices, with twins: a POI at the
    /// very same place as another under another index, so that ties happen.
    #[test]
    fn folds_over_shuffled_batches_equal_the_one_shot_on_dc() {
        let pbf = crate::testdata::shared_data("dc/roads.osm.pbf");
        let mut rng = XorShift(0x5eed_d15a);
        for direction in [Direction::FromPoi, Direction::ToPoi] {
            let net = Network::load_pbf(&pbf, Mode::Drive, direction).expect("DC roads");
            let lonlat = |rng: &mut XorShift, pad: f64| {
                (
                    -77.083 - pad + (0.093 + 2.0 * pad) * rng.unit(),
                    38.891 - pad + (0.070 + 2.0 * pad) * rng.unit(),
                )
            };
            let mut indices: Vec<u32> = (0..1000).collect();
            shuffle(&mut indices, &mut rng);
            let mut snaps: Vec<(u32, Snap)> = Vec::new();
            let mut xy: Vec<(u32, Coord<f64>)> = Vec::new();
            while snaps.len() < 150 {
                let (lon, lat) = lonlat(&mut rng, 0.0);
                let Some(s) = net.snap_lonlat(lon, lat, 300.0) else {
                    continue;
                };
                let k = indices[snaps.len()];
                snaps.push((k, s));
                xy.push((k, crate::geom::albers::to_5070(lon, lat)));
                if rng.below(5) == 0 {
                    let twin = indices[999 - snaps.len()];
                    snaps.push((twin, s));
                    xy.push((twin, xy.last().expect("just pushed").1));
                }
            }
            let targets: Vec<_> = (0..400)
                .map(|_| {
                    let (lon, lat) = lonlat(&mut rng, 0.02);
                    crate::geom::albers::to_5070(lon, lat)
                })
                .collect();

            let mut ws = Workspace::default();
            let want = network_nearest(&net, &snaps, &targets, 300.0, &mut ws);
            let kinds = |r: &[NetworkNearest]| {
                let reached = r
                    .iter()
                    .filter(|n| matches!(n, NetworkNearest::Reached { .. }))
                    .count();
                let no_road = r.iter().filter(|n| **n == NetworkNearest::NoRoad).count();
                (reached, no_road)
            };
            let (reached, no_road) = kinds(&want);
            assert!(
                reached > 200 && no_road > 20,
                "{reached} reached, {no_road} off the roads"
            );
            // The one-shot does not depend on the POIs' order either.
            let mut reordered = snaps.clone();
            shuffle(&mut reordered, &mut rng);
            let got = network_nearest(&net, &reordered, &targets, 300.0, &mut ws);
            same(&got, &want, "the one-shot on reordered POIs");
            let want_straight = brute_straight(&xy, &targets);
            assert_eq!(straight_line_nearest(&xy, &targets), want_straight);

            for size in [1, 7, snaps.len()] {
                let mut fold = NetworkFold::new(&net, &targets, 300.0);
                let mut settled = vec![];
                for batch in shuffled_batches(&snaps, size, &mut rng) {
                    settled.push(fold.add(&net, &batch));
                }
                same(
                    &fold.result(),
                    &want,
                    &format!("{direction:?}, batches of {size}"),
                );
                // Later batches settle a fraction of what the first one does.
                if size == 1 {
                    let later: usize = settled[1..].iter().sum::<usize>() / (settled.len() - 1);
                    assert!(later * 10 < settled[0], "{settled:?}");
                }

                let mut straight = StraightFold::new(targets.clone());
                for batch in shuffled_batches(&xy, size, &mut rng) {
                    straight.add(&batch);
                }
                same(
                    &straight.result(),
                    &want_straight,
                    &format!("batches of {size}"),
                );

                // Taking POIs out (a third, twins included, in two steps) leaves what a fold
                // of the rest from scratch holds, to the label.
                let mut out = std::collections::HashSet::new();
                for step in 0..2 {
                    let gone: std::collections::HashSet<u32> = snaps
                        .iter()
                        .map(|(k, _)| *k)
                        .filter(|k| !out.contains(k) && rng.below(6) == 0)
                        .collect();
                    out.extend(gone.iter().copied());
                    let rest: Vec<(u32, Snap)> = snaps
                        .iter()
                        .filter(|(k, _)| !out.contains(k))
                        .copied()
                        .collect();
                    let rest_xy: Vec<(u32, Coord<f64>)> = xy
                        .iter()
                        .filter(|(k, _)| !out.contains(k))
                        .copied()
                        .collect();
                    let reset = fold.remove(&net, &gone, &rest);
                    assert!(reset > 0, "step {step}: the removed POIs had cells");
                    let mut scratch = NetworkFold::new(&net, &targets, 300.0);
                    scratch.add(&net, &rest);
                    assert!(
                        fold.labels == scratch.labels,
                        "{direction:?} step {step}: labels"
                    );
                    let want = network_nearest(&net, &rest, &targets, 300.0, &mut ws);
                    same(&fold.result(), &want, &format!("{direction:?} step {step}"));
                    straight.remove(&gone, &rest_xy);
                    same(
                        &straight.result(),
                        &brute_straight(&rest_xy, &targets),
                        &format!("straight, step {step}"),
                    );
                }
            }
        }
    }

    /// The fold against per-POI single-source Dijkstra with petgraph (an independent
    /// implementation) on small random graphs with one-way roads and several POIs per link.
    /// A random network of up to 32 nodes in a 1 km square (none when it drew no edge).
    fn random_network(rng: &mut XorShift) -> Option<Network> {
        let n = 3 + rng.below(30) as usize;
        let xy: Vec<_> = (0..n)
            .map(|_| Coord {
                x: 1000.0 * rng.unit(),
                y: 1000.0 * rng.unit(),
            })
            .collect();
        let edges: Vec<_> = (0..rng.below(3 * n as u64))
            .map(|_| {
                let from = rng.below(n as u64) as u32;
                let to = rng.below(n as u64) as u32;
                PlainEdge {
                    from,
                    to,
                    time_ms: 1 + rng.below(50_000) as u32,
                    length_m: 1.0 + 500.0 * rng.unit(),
                    both_ways: rng.below(2) == 0,
                }
            })
            .collect();
        (!edges.is_empty()).then(|| {
            Network::from_graph(
                RoadGraph::from_edges(xy, &edges),
                Mode::Drive,
                Direction::FromPoi,
            )
        })
    }

    #[test]
    fn folds_report_every_target_whose_nearest_poi_changes() {
        let mut rng = XorShift(0x0c4a_63e5);
        let point = |rng: &mut XorShift| Coord {
            x: 1000.0 * rng.unit(),
            y: 1000.0 * rng.unit(),
        };
        for round in 0..60 {
            let Some(net) = random_network(&mut rng) else {
                continue;
            };
            let targets: Vec<_> = (0..25).map(|_| point(&mut rng)).collect();
            let mut network = NetworkFold::new(&net, &targets, 1e6);
            let mut straight = StraightFold::new(targets.clone());
            network.track_changes();
            let mut live: Vec<(u32, Snap, Coord<f64>)> = Vec::new();
            for (k, step) in (0..12u32).zip(0..) {
                let (net_before, straight_before) = (network.result(), straight.result());
                let straight_changed = if step % 3 == 2 && !live.is_empty() {
                    // Take one POI out.
                    let gone = live.remove(rng.below(live.len() as u64) as usize).0;
                    let removed = std::collections::HashSet::from([gone]);
                    let snaps: Vec<_> = live.iter().map(|p| (p.0, p.1)).collect();
                    let xy: Vec<_> = live.iter().map(|p| (p.0, p.2)).collect();
                    network.remove(&net, &removed, &snaps);
                    straight.remove(&removed, &xy)
                } else {
                    let at = point(&mut rng);
                    let snap = net.snap_index.nearest(at, 1e6).expect("a road");
                    live.push((k, snap, at));
                    network.add(&net, &[(k, snap)]);
                    straight.add(&[(k, at)])
                };
                let reported = network.take_changed();
                for t in 0..targets.len() {
                    if network.result_of(t) != net_before[t] {
                        assert!(
                            reported.contains(&(t as u32)),
                            "round {round}, step {step}, target {t}"
                        );
                    }
                    let moved = straight.result_of(t) != straight_before[t];
                    assert_eq!(
                        moved,
                        straight_changed.contains(&(t as u32)),
                        "round {round}, step {step}, target {t}"
                    );
                }
                assert!(reported.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    #[test]
    fn network_fold_agrees_with_per_poi_petgraph_searches() {
        use petgraph::graph::DiGraph;
        let mut rng = XorShift(0x0dd_ba11);
        for round in 0..40 {
            let Some(net) = random_network(&mut rng) else {
                continue;
            };
            let point = |rng: &mut XorShift| Coord {
                x: 1000.0 * rng.unit(),
                y: 1000.0 * rng.unit(),
            };
            let pois: Vec<(u32, Snap)> = (0..1 + rng.below(12) as u32)
                .map(|k| {
                    (
                        k * 3 % 37,
                        net.snap_index
                            .nearest(point(&mut rng), 1e6)
                            .expect("a road"),
                    )
                })
                .collect();
            let targets: Vec<_> = (0..30).map(|_| point(&mut rng)).collect();

            let mut fold = NetworkFold::new(&net, &targets, 1e6);
            for batch in shuffled_batches(&pois, 2, &mut rng) {
                fold.add(&net, &batch);
            }
            let got = fold.result();

            // Times from each POI to every node: petgraph's Dijkstra from a virtual source
            // joined to the POI's seeds.
            let g = &net.graph;
            let mut pg = DiGraph::<(), u64>::new();
            let ids: Vec<_> = (0..g.node_count()).map(|_| pg.add_node(())).collect();
            for u in 0..g.node_count() {
                for e in g.out_edges(u as NodeId) {
                    pg.add_edge(ids[u], ids[g.head[e] as usize], g.time_ms[e] as u64);
                }
            }
            let per_poi: Vec<_> = pois
                .iter()
                .map(|(k, s)| {
                    let mut pg = pg.clone();
                    let src = pg.add_node(());
                    for seed in net.seeds(s, *k) {
                        pg.add_edge(src, ids[seed.node as usize], seed.time_ms as u64);
                    }
                    petgraph::algo::dijkstra(&pg, src, None, |e| *e.weight())
                })
                .collect();
            for (ti, t) in targets.iter().enumerate() {
                let snap = net.snap_index.nearest(*t, 1e6).expect("a road");
                let link = &g.links[snap.link as usize];
                let (along, against) = net.link_times(snap.link);
                let g_ = snap.fraction;
                let mut best: Option<(f64, u32)> = None;
                let mut offer = |time: f64, k: u32| {
                    if best.is_none_or(|(bt, bk)| (time, k) < (bt, bk)) {
                        best = Some((time, k));
                    }
                };
                for ((k, s), times) in pois.iter().zip(&per_poi) {
                    let at = |v: NodeId| times.get(&ids[v as usize]).map(|&t| t as f64);
                    if let (Some(tt), Some(t0)) = (along, at(link.start)) {
                        offer(t0 + g_ * tt as f64, *k);
                    }
                    if let (Some(tt), Some(t0)) = (against, at(link.end)) {
                        offer(t0 + (1.0 - g_) * tt as f64, *k);
                    }
                    if s.link == snap.link {
                        if let (Some(tt), true) = (along, g_ >= s.fraction) {
                            offer((g_ - s.fraction) * tt as f64, *k);
                        }
                        if let (Some(tt), true) = (against, g_ <= s.fraction) {
                            offer((s.fraction - g_) * tt as f64, *k);
                        }
                    }
                }
                let got = match got[ti] {
                    NetworkNearest::Reached { poi, time_ms, .. } => Some((time_ms, poi)),
                    NetworkNearest::Unreachable => None,
                    NetworkNearest::NoRoad => panic!("every target has a road"),
                };
                assert_eq!(got, best, "round {round}, target {ti}");
            }
        }
    }
}
