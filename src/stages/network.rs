//! The `network-fetch` stage: the routable graph of one mode and direction, with its snap index,
//! handed to each POI cluster as a [`NetworkSlice`] by a [`NetworkSource`] through a per-worker
//! [`SliceCache`].
//!
//! The one source is a network loaded whole, a single slice that serves every cluster: a local
//! extract (a `.osm.pbf` or the embedded demo), or the Overpass road tiles that the clusters'
//! slice boxes need ([`crate::online`] fetches them before the dataflow starts, because the
//! distance stage searches the whole network from every block group; the tiles are cached, so
//! no box is fetched twice).

use crate::error::Result;
use crate::geom::albers::to_5070;
use crate::graph::build::{BuildOptions, build_graph};
use crate::graph::dijkstra::Seed;
use crate::graph::snap::{Snap, SnapIndex};
use crate::graph::{LinkId, Millis, RoadGraph};
use crate::osm::OsmRoads;
use crate::stages::isochrone::{IsochroneParams, LinkCells};
use crate::types::{Direction, Mode};
use geo::Rect;
use std::path::Path;
use std::sync::Arc;

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

    /// The fastest travel on the network, in EPSG:5070 metres (projected polyline length) per
    /// second: no point reachable in `t` seconds lies farther than `t` times this from where the
    /// search started. 0 for an empty network.
    pub fn top_speed_mps(&self) -> f64 {
        let g = &self.graph;
        let mut top: f64 = 0.0;
        for l in &g.links {
            let last = (l.first_point + l.point_count).saturating_sub(1) as usize;
            let len = self.point_offset_m.get(last).copied().unwrap_or(0.0);
            for e in [l.edge_along, l.edge_against].into_iter().flatten() {
                // Times are whole milliseconds, at least 1: rounding may shorten a time by half
                // a millisecond, so measure against the shortened time to stay an upper bound.
                let t = (g.time_ms[e as usize] as f64 - 0.5).max(0.5) / 1000.0;
                top = top.max(len / t);
            }
        }
        top
    }

    /// The bounding box of the network's points (EPSG:5070), `None` when it has none.
    pub fn extent(&self) -> Option<Rect<f64>> {
        let pts = &self.graph.link_points;
        let first = *pts.first()?;
        let (mut lo, mut hi) = (first, first);
        for p in pts {
            lo.x = lo.x.min(p.x);
            lo.y = lo.y.min(p.y);
            hi.x = hi.x.max(p.x);
            hi.y = hi.y.max(p.y);
        }
        Some(Rect::new(lo, hi))
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

/// A part of the road network ready for isochrones: the network and the cells near each of
/// its links. Every road of the source inside [`NetworkSlice::covers`] is in it.
pub struct NetworkSlice {
    /// The network.
    pub network: Network,
    /// Cells near every link, for rasterising isochrones.
    pub link_cells: LinkCells,
    /// The box (EPSG:5070) inside which the slice holds every road of its source; `None`: the
    /// slice is all its source has (a local extract), so it serves any box.
    pub covers: Option<Rect<f64>>,
}

impl NetworkSlice {
    /// A slice of `network` prepared for `params`' grid and buffer.
    pub fn new(network: Network, params: &IsochroneParams, covers: Option<Rect<f64>>) -> Self {
        let link_cells = LinkCells::new(&network, params);
        NetworkSlice {
            network,
            link_cells,
            covers,
        }
    }

    /// Whether the slice serves a cluster whose POIs may use the network inside `want`.
    pub fn serves(&self, want: &Rect<f64>) -> bool {
        self.covers.is_none_or(|c| {
            c.min().x <= want.min().x
                && c.min().y <= want.min().y
                && c.max().x >= want.max().x
                && c.max().y >= want.max().y
        })
    }
}

/// Where network slices come from.
pub trait NetworkSource: Send + Sync {
    /// A slice holding every road inside `want` (EPSG:5070 metres).
    fn fetch(&self, want: &Rect<f64>) -> Result<Arc<NetworkSlice>>;

    /// The whole network when the source holds it in memory (the distance stage searches it).
    fn whole(&self) -> Option<Arc<NetworkSlice>>;
}

/// A local extract, loaded whole: one slice, which serves every cluster.
pub struct LocalExtract {
    slice: Arc<NetworkSlice>,
}

impl LocalExtract {
    /// Wraps a network built from a local extract.
    pub fn new(network: Network, params: &IsochroneParams) -> LocalExtract {
        LocalExtract {
            slice: Arc::new(NetworkSlice::new(network, params, None)),
        }
    }
}

impl NetworkSource for LocalExtract {
    fn fetch(&self, _want: &Rect<f64>) -> Result<Arc<NetworkSlice>> {
        Ok(self.slice.clone())
    }

    fn whole(&self) -> Option<Arc<NetworkSlice>> {
        Some(self.slice.clone())
    }
}

/// A worker's most recently used slices: a cluster is served by a cached slice that covers
/// its box, or by a new fetch, which evicts the least recently used slice beyond `capacity`.
pub struct SliceCache {
    capacity: usize,
    slices: Vec<(u64, Arc<NetworkSlice>)>,
    clock: u64,
    /// Fetches made.
    pub fetches: u64,
    /// Clusters served from the cache.
    pub hits: u64,
}

impl SliceCache {
    /// An empty cache holding at most `capacity` (≥ 1) slices.
    pub fn new(capacity: usize) -> SliceCache {
        SliceCache {
            capacity: capacity.max(1),
            slices: Vec::new(),
            clock: 0,
            fetches: 0,
            hits: 0,
        }
    }

    /// The slice for a cluster whose POIs may use the network inside `want`.
    pub fn get(
        &mut self,
        source: &dyn NetworkSource,
        want: &Rect<f64>,
    ) -> Result<Arc<NetworkSlice>> {
        self.clock += 1;
        if let Some(entry) = self.slices.iter_mut().find(|(_, s)| s.serves(want)) {
            entry.0 = self.clock;
            self.hits += 1;
            return Ok(entry.1.clone());
        }
        let slice = source.fetch(want)?;
        self.fetches += 1;
        if self.slices.len() >= self.capacity
            && let Some(oldest) = (0..self.slices.len()).min_by_key(|&k| self.slices[k].0)
        {
            self.slices.swap_remove(oldest);
        }
        self.slices.push((self.clock, slice.clone()));
        Ok(slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo;
    use geo::Coord;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn params() -> IsochroneParams {
        IsochroneParams {
            travel_times_min: vec![5],
            cell_m: 50.0,
            buffer_m: 50.0,
            max_snap_m: 300.0,
            max_hole_m2: 0.0,
        }
    }

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Rect<f64> {
        Rect::new(Coord { x: x0, y: y0 }, Coord { x: x1, y: y1 })
    }

    /// Pretends to fetch the box it is asked for, grown to a 10 km grid, counting fetches.
    struct Boxed {
        roads: crate::osm::OsmRoads,
        fetches: AtomicUsize,
    }

    impl NetworkSource for Boxed {
        fn fetch(&self, want: &Rect<f64>) -> Result<Arc<NetworkSlice>> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let snap = |v: f64, up: bool| {
                let k = (v / 10_000.0).floor() + if up { 1.0 } else { 0.0 };
                k * 10_000.0
            };
            let covers = rect(
                snap(want.min().x, false),
                snap(want.min().y, false),
                snap(want.max().x, true),
                snap(want.max().y, true),
            );
            let net = Network::from_roads(&self.roads, Mode::Drive, Direction::FromPoi);
            Ok(Arc::new(NetworkSlice::new(net, &params(), Some(covers))))
        }
        fn whole(&self) -> Option<Arc<NetworkSlice>> {
            None
        }
    }

    #[test]
    fn the_cache_reuses_covering_slices_and_evicts_the_oldest() {
        let source = Boxed {
            roads: demo::synthetic_town(&demo::TownSpec::default()).roads,
            fetches: AtomicUsize::new(0),
        };
        let mut cache = SliceCache::new(2);
        let a = rect(1_000.0, 1_000.0, 2_000.0, 2_000.0); // grid cell (0, 0)
        let b = rect(11_000.0, 1_000.0, 12_000.0, 2_000.0); // (1, 0)
        let c = rect(21_000.0, 1_000.0, 22_000.0, 2_000.0); // (2, 0)
        cache.get(&source, &a).unwrap();
        cache
            .get(&source, &rect(3_000.0, 3_000.0, 9_000.0, 9_000.0))
            .unwrap(); // inside a's slice
        cache.get(&source, &b).unwrap();
        assert_eq!((cache.fetches, cache.hits), (2, 1));
        cache.get(&source, &a).unwrap(); // a is now the most recent
        cache.get(&source, &c).unwrap(); // evicts b
        cache.get(&source, &a).unwrap();
        assert_eq!((cache.fetches, cache.hits), (3, 3));
        cache.get(&source, &b).unwrap();
        assert_eq!(source.fetches.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_local_extract_serves_everything_from_one_slice() {
        let net = Network::from_roads(
            &demo::synthetic_town(&demo::TownSpec::default()).roads,
            Mode::Walk,
            Direction::FromPoi,
        );
        let links = net.graph.links.len();
        let source = LocalExtract::new(net, &params());
        let mut cache = SliceCache::new(1);
        for k in 0..5 {
            let x = k as f64 * 1e6;
            let s = cache.get(&source, &rect(x, x, x + 1.0, x + 1.0)).unwrap();
            assert_eq!(s.network.graph.links.len(), links);
        }
        assert_eq!((cache.fetches, cache.hits), (1, 4));
        assert!(source.whole().is_some());
    }

    #[test]
    fn top_speed_bounds_every_link_and_extent_holds_every_point() {
        let net = Network::from_roads(
            &demo::synthetic_town(&demo::TownSpec::default()).roads,
            Mode::Drive,
            Direction::FromPoi,
        );
        let v = net.top_speed_mps();
        // The demo town's motorway is signed 65 mph (29.1 m/s); projected lengths differ from
        // the ground by well under 1 %.
        assert!(v > 28.0 && v < 30.0, "{v}");
        let g = &net.graph;
        for (e, &t) in g.time_ms.iter().enumerate() {
            let l = &g.links[g.edge_link[e] as usize];
            let last = (l.first_point + l.point_count - 1) as usize;
            assert!(net.point_offset_m[last] <= v * t as f64 / 1000.0 + 1e-6);
        }
        let ext = net.extent().unwrap();
        assert!(g.link_points.iter().all(|p| p.x >= ext.min().x
            && p.x <= ext.max().x
            && p.y >= ext.min().y
            && p.y <= ext.max().y));
    }
}
