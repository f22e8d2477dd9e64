//! The `network-fetch` stage: the routable graph of one mode and direction, with its snap index.
//!
//! Today the graph comes from a local `.osm.pbf` (or the embedded demo); the online source
//! plugs in here later.

use crate::error::Result;
use crate::geom::albers::to_5070;
use crate::graph::build::{BuildOptions, build_graph};
use crate::graph::dijkstra::Seed;
use crate::graph::snap::{Snap, SnapIndex};
use crate::graph::{LinkId, Millis, RoadGraph};
use crate::osm::OsmRoads;
use crate::types::{Direction, Mode};
use std::path::Path;

/// A road graph ready for searches: the graph, how it was made, and its snap index.
pub struct Network {
    /// Travel mode the graph was built for.
    pub mode: Mode,
    /// Direction searches run in (the graph is reversed for [`Direction::ToPoi`]).
    pub direction: Direction,
    /// The graph.
    pub graph: RoadGraph,
    /// Nearest-road lookups.
    pub snap_index: SnapIndex,
    /// For every point of [`RoadGraph::link_points`], the projected distance (EPSG:5070
    /// metres) from its link's start along the polyline: rasterising walks links by it.
    pub point_offset_m: Vec<f64>,
}

impl Network {
    /// Builds the network of `mode` out of OSM roads.
    pub fn from_roads(roads: &OsmRoads, mode: Mode, direction: Direction) -> Network {
        Network::from_graph(
            build_graph(roads, mode, direction, &BuildOptions::default()),
            mode,
            direction,
        )
    }

    /// Wraps a built graph (hand-made graphs in tests, synthetic ones in benchmarks).
    pub fn from_graph(graph: RoadGraph, mode: Mode, direction: Direction) -> Network {
        let snap_index = SnapIndex::new(&graph);
        let mut point_offset_m = vec![0.0; graph.link_points.len()];
        for l in &graph.links {
            let a = l.first_point as usize;
            for k in a + 1..a + l.point_count as usize {
                let (p, q) = (graph.link_points[k - 1], graph.link_points[k]);
                point_offset_m[k] =
                    point_offset_m[k - 1] + ((q.x - p.x).powi(2) + (q.y - p.y).powi(2)).sqrt();
            }
        }
        Network {
            mode,
            direction,
            graph,
            snap_index,
            point_offset_m,
        }
    }

    /// Reads a `.osm.pbf` and builds the network of `mode`.
    pub fn load_pbf(path: &Path, mode: Mode, direction: Direction) -> Result<Network> {
        let roads = crate::osm::pbf::read_roads(path)?;
        Ok(Network::from_roads(&roads, mode, direction))
    }

    /// The nearest point of the network to (lon, lat) within `max_m` metres.
    pub fn snap_lonlat(&self, lon: f64, lat: f64, max_m: f64) -> Option<Snap> {
        self.snap_index.nearest(to_5070(lon, lat), max_m)
    }

    /// Travel times (ms) of the whole link in the search direction: (start → end, end → start).
    pub fn link_times(&self, link: LinkId) -> (Option<Millis>, Option<Millis>) {
        let l = &self.graph.links[link as usize];
        let t = |e: Option<u32>| e.map(|e| self.graph.time_ms[e as usize]);
        (t(l.edge_along), t(l.edge_against))
    }

    /// Dijkstra seeds for a source sitting at `snap`: the ends of its link that the search can
    /// reach, with the time and distance of the partial link travelled to get there.
    pub fn seeds(&self, snap: &Snap, origin: u32) -> Vec<Seed> {
        let l = &self.graph.links[snap.link as usize];
        let (along, against) = self.link_times(snap.link);
        let mut seeds = Vec::with_capacity(2);
        if let Some(t) = along {
            let rest = 1.0 - snap.fraction;
            seeds.push(Seed {
                node: l.end,
                time_ms: (rest * t as f64).round() as Millis,
                length_m: rest * l.length_m,
                origin,
            });
        }
        if let Some(t) = against {
            seeds.push(Seed {
                node: l.start,
                time_ms: (snap.fraction * t as f64).round() as Millis,
                length_m: snap.fraction * l.length_m,
                origin,
            });
        }
        seeds
    }
}
