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
