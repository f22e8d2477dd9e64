//! The `distance` stage: for each block group, the nearest POI
//!
//! * in a straight line, from the block group's centroid in EPSG:5070 — exactly the original
//!   tool's "travel distance" (Euclidean in EPSG:5070, km, miles = km × 0.621371);
//! * along the network, by travel time, from one multi-source Dijkstra over all POIs: the
//!   centroid is snapped to the nearest road and the time runs to (or from, see
//!   [`crate::types::Direction`]) that point.

use super::network::Network;
use crate::graph::LinkId;
use crate::graph::dijkstra::{Seed, Workspace};
use crate::graph::snap::Snap;
use geo::Coord;
use rstar::{RTree, primitives::GeomWithData};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

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
/// straight line; ties go to the smaller POI index. `None` only when `pois` is empty.
pub fn straight_line_nearest(
    pois: &[(u32, Coord<f64>)],
    targets: &[Coord<f64>],
) -> Vec<Option<StraightNearest>> {
    let tree = RTree::bulk_load(
        pois.iter()
            .map(|(k, c)| GeomWithData::new([c.x, c.y], *k))
            .collect(),
    );
    targets
        .iter()
        .map(|t| {
            let q = [t.x, t.y];
            let mut best: Option<StraightNearest> = None;
            // Walk neighbours in distance order and stop after the first distance: this keeps
            // ties deterministic (smallest index) without depending on the tree's layout.
            for n in tree.nearest_neighbor_iter(&q) {
                let d = (n.geom()[0] - t.x).hypot(n.geom()[1] - t.y);
                match best {
                    Some(b) if d > b.distance_m => break,
                    Some(b) if d == b.distance_m && n.data >= b.poi => {}
                    _ => {
                        best = Some(StraightNearest {
                            poi: n.data,
                            distance_m: d,
                        })
                    }
                }
            }
            best
        })
        .collect()
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
/// at every POI's snap point. `poi_snaps` pairs each POI's run index with its snap.
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
            match best {
                Some((time_ms, poi, length_m)) => NetworkNearest::Reached {
                    poi,
                    time_ms,
                    length_m,
                },
                None => NetworkNearest::Unreachable,
            }
        })
        .collect()
}

/// Minutes from milliseconds.
pub fn ms_to_minutes(ms: f64) -> f64 {
    ms / 60_000.0
}
