//! Building a [`super::RoadGraph`] from [`crate::osm::OsmRoads`] for one mode and direction.
//!
//! Steps: keep the ways [`way_rule`] allows; make graph nodes of the OSM nodes where ways meet,
//! end or touch themselves; cut ways into [`Link`]s at those nodes; drop small islands; number
//! the nodes along a Hilbert curve so that nearby nodes have nearby ids; emit directed edges in
//! CSR order. Output is a pure function of the input's *contents*: ways are processed in id
//! order and nothing depends on `HashMap` iteration order.

use super::{EdgeId, Link, LinkId, Millis, NodeId, RoadGraph};
use crate::geom::albers::to_5070;
use crate::osm::OsmRoads;
use crate::osm::profile::{Oneway, way_rule};
use crate::types::{Direction, Mode};
use geo::Coord;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Settings of [`build_graph`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildOptions {
    /// Weakly connected components with fewer nodes than this are dropped, except the largest
    /// component, which is always kept. Islands (parking lots, private estates, roads cut by the
    /// extract's border) cannot be reached from the rest of the network and would trap POIs
    /// snapped onto them; osmnx keeps only the largest component, we keep big islands too.
    pub min_component_nodes: usize,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            min_component_nodes: 20,
        }
    }
}

/// What [`build_graph_with_stats`] did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStats {
    /// Ways the mode may use that have at least one piece with two present nodes.
    pub ways_used: usize,
    /// Usable ways dropped because fewer than two of their nodes are in the extract.
    pub ways_without_geometry: usize,
    /// Links in the graph.
    pub links: usize,
    /// Nodes in the graph.
    pub nodes: usize,
    /// Directed edges in the graph.
    pub edges: usize,
    /// Weakly connected components dropped for being small.
    pub components_dropped: usize,
    /// Nodes removed with those components.
    pub nodes_dropped: usize,
    /// Links removed with those components.
    pub links_dropped: usize,
}

/// Builds the road graph of `mode` for searches in `direction`; see [`build_graph_with_stats`].
/// Logs the [`BuildStats`] at `info` level.
pub fn build_graph(
    roads: &OsmRoads,
    mode: Mode,
    direction: Direction,
    opts: &BuildOptions,
) -> RoadGraph {
    let (graph, s) = build_graph_with_stats(roads, mode, direction, opts);
    tracing::info!(
        %mode,
        ?direction,
        ways = s.ways_used,
        nodes = s.nodes,
        links = s.links,
        edges = s.edges,
        components_dropped = s.components_dropped,
        nodes_dropped = s.nodes_dropped,
        "built road graph"
    );
    graph
}

/// A piece of one usable way between two graph nodes, before renumbering.
struct PreLink {
    /// Index of the way in `roads.ways`.
    way: usize,
    /// Local indices (see `Interner`) of the polyline's OSM nodes, start to end.
    first: usize,
    len: usize,
    /// Ordinal of this piece within its way, a stable tie-breaker.
    seq: u32,
    speed_kmh: f64,
    oneway: Oneway,
}

/// Builds the road graph of `mode` for searches in `direction` and reports what it did.
///
/// - Ways are kept when [`way_rule`] allows them for `mode`. A node reference missing from
///   `roads.nodes` (or with an impossible lon/lat) breaks the way into separate pieces (no
///   straight line is drawn across the gap); consecutive repeated references are merged.
/// - Graph nodes are the OSM nodes that occur at least twice among the usable way pieces (an
///   intersection, or a way touching itself) and the pieces' end nodes.
/// - Each piece is cut into [`Link`]s at graph nodes. `length_m` is the ellipsoidal (GRS80)
///   length of the lon/lat polyline, summed per segment with the mid-latitude radii of curvature
///   (within 1 mm of Karney's geodesic for segments up to a few kilometres); the polyline
///   itself is stored in EPSG:5070. Edge time is `round(length_m / speed × 1000)` ms, at
///   least 1.
/// - Directed edges: with [`Direction::FromPoi`] an edge follows each direction of travel the
///   way allows; with [`Direction::ToPoi`] each allowed direction is reversed, because searches
///   then run backwards from the POI. `edge_along[e]` and [`Link::edge_along`] always refer to
///   the *search* direction relative to the link geometry.
/// - Weakly connected components smaller than [`BuildOptions::min_component_nodes`] are
///   dropped, except the largest.
/// - Nodes are numbered in Hilbert-curve order of their EPSG:5070 position; links are sorted by
///   (start, end, way id, piece); edges are in CSR order by tail, then head.
pub fn build_graph_with_stats(
    roads: &OsmRoads,
    mode: Mode,
    direction: Direction,
    opts: &BuildOptions,
) -> (RoadGraph, BuildStats) {
    let mut stats = BuildStats::default();

    // Ways in id order (stable for equal ids) so that every later step is deterministic.
    let mut order: Vec<usize> = (0..roads.ways.len()).collect();
    order.sort_by_key(|&i| roads.ways[i].id);

    // 1. Usable way pieces, as runs of interned node indices.
    let mut interner = Interner::default();
    let mut run_nodes: Vec<usize> = Vec::new();
    // (way index, start in run_nodes, length, speed, oneway)
    let mut runs: Vec<(usize, usize, usize, f64, Oneway)> = Vec::new();
    for &wi in &order {
        let way = &roads.ways[wi];
        let Some(rule) = way_rule(mode, way) else {
            continue;
        };
        let runs_before = runs.len();
        let mut start = run_nodes.len();
        let mut close_run = |run_nodes: &mut Vec<usize>, start: usize| {
            let len = run_nodes.len() - start;
            if len >= 2 {
                runs.push((wi, start, len, rule.speed_kmh, rule.oneway));
            } else {
                run_nodes.truncate(start);
            }
        };
        for &osm in &way.nodes {
            match roads.nodes.get(&osm).filter(|&&ll| valid_lonlat(ll)) {
                None => {
                    close_run(&mut run_nodes, start);
                    start = run_nodes.len();
                }
                Some(&lonlat) => {
                    let local = interner.intern(osm, lonlat);
                    if run_nodes.len() > start && run_nodes.last() == Some(&local) {
                        continue; // a repeated reference adds no geometry
                    }
                    run_nodes.push(local);
                }
            }
        }
        close_run(&mut run_nodes, start);
        if runs.len() > runs_before {
            stats.ways_used += 1;
        } else {
            stats.ways_without_geometry += 1;
        }
    }

    // 2. Graph nodes: occurrences ≥ 2 or a piece's end.
    let n_local = interner.lonlat.len();
    let mut uses = vec![0u8; n_local];
    for &(_, s, len, _, _) in &runs {
        for &v in &run_nodes[s..s + len] {
            uses[v] = uses[v].saturating_add(1);
        }
        uses[run_nodes[s]] = 2;
        uses[run_nodes[s + len - 1]] = 2;
    }
    let is_graph_node = |v: usize| uses[v] >= 2;

    // 3. Cut pieces into links.
    let mut pre: Vec<PreLink> = Vec::new();
    let mut last_way = usize::MAX;
    let mut seq = 0u32;
    for &(wi, s, len, speed_kmh, oneway) in &runs {
        if wi != last_way {
            last_way = wi;
            seq = 0;
        }
        let mut a = s;
        for (i, &v) in run_nodes.iter().enumerate().take(s + len).skip(s + 1) {
            if is_graph_node(v) {
                pre.push(PreLink {
                    way: wi,
                    first: a,
                    len: i - a + 1,
                    seq,
                    speed_kmh,
                    oneway,
                });
                seq += 1;
                a = i;
            }
        }
    }

    // 4. Weakly connected components over graph nodes; drop the small ones.
    let mut uf = UnionFind::new(n_local);
    for p in &pre {
        uf.union(run_nodes[p.first], run_nodes[p.first + p.len - 1]);
    }
    let mut comp_size = vec![0usize; n_local];
    let graph_nodes: Vec<usize> = (0..n_local).filter(|&v| is_graph_node(v)).collect();
    for &v in &graph_nodes {
        let r = uf.find(v);
        comp_size[r] += 1;
    }
    // The largest component; among equal sizes the one whose root has the lowest index
    // (roots are deterministic because the union order is).
    let largest = graph_nodes
        .iter()
        .map(|&v| uf.find(v))
        .max_by(|&a, &b| comp_size[a].cmp(&comp_size[b]).then(b.cmp(&a)));
    let keep_root = |r: usize| Some(r) == largest || comp_size[r] >= opts.min_component_nodes;
    for &v in &graph_nodes {
        let r = uf.find(v);
        if r == v && !keep_root(r) {
            stats.components_dropped += 1;
            stats.nodes_dropped += comp_size[r];
        }
    }
    let kept_nodes: Vec<usize> = graph_nodes
        .iter()
        .copied()
        .filter(|&v| keep_root(uf.find(v)))
        .collect();
    let before = pre.len();
    pre.retain(|p| keep_root(uf.find(run_nodes[p.first])));
    stats.links_dropped = before - pre.len();

    // 5. Hilbert order of the kept nodes.
    let xy: Vec<Coord<f64>> = interner
        .lonlat
        .iter()
        .map(|&(lon, lat)| to_5070(lon, lat))
        .collect();
    let mut keyed: Vec<(u64, i64, usize)> = {
        let (mut min, mut max) = (
            Coord {
                x: f64::MAX,
                y: f64::MAX,
            },
            Coord {
                x: f64::MIN,
                y: f64::MIN,
            },
        );
        for &v in &kept_nodes {
            min.x = min.x.min(xy[v].x);
            min.y = min.y.min(xy[v].y);
            max.x = max.x.max(xy[v].x);
            max.y = max.y.max(xy[v].y);
        }
        let extent = (max.x - min.x).max(max.y - min.y).max(1.0);
        let scale = f64::from(u32::MAX) / extent;
        kept_nodes
            .iter()
            .map(|&v| {
                // Saturating float→int casts keep this total even for odd inputs.
                let hx = ((xy[v].x - min.x) * scale) as u32;
                let hy = ((xy[v].y - min.y) * scale) as u32;
                (hilbert_index(hx, hy), interner.osm_ids[v], v)
            })
            .collect()
    };
    keyed.sort_unstable();
    let mut new_id = vec![NodeId::MAX; n_local];
    for (i, &(_, _, v)) in keyed.iter().enumerate() {
        new_id[v] = i as NodeId;
    }
    let node_xy: Vec<Coord<f64>> = keyed.iter().map(|&(_, _, v)| xy[v]).collect();

    // 6. Links in (start, end, way id, piece) order, with geometry, length and time.
    let link_key = |p: &PreLink| {
        (
            new_id[run_nodes[p.first]],
            new_id[run_nodes[p.first + p.len - 1]],
            roads.ways[p.way].id,
            p.seq,
            p.way,
        )
    };
    pre.sort_unstable_by_key(link_key);

    let mut links: Vec<Link> = Vec::with_capacity(pre.len());
    let mut link_points: Vec<Coord<f64>> =
        Vec::with_capacity(pre.iter().map(|p| p.len).sum::<usize>());
    // (tail, head, link, along, time)
    let mut edges: Vec<(NodeId, NodeId, LinkId, bool, Millis)> = Vec::with_capacity(pre.len() * 2);
    for (li, p) in pre.iter().enumerate() {
        let poly = &run_nodes[p.first..p.first + p.len];
        let length_m: f64 = poly
            .windows(2)
            .map(|w| segment_length_m(interner.lonlat[w[0]], interner.lonlat[w[1]]))
            .sum();
        let time = travel_time_ms(length_m, p.speed_kmh);
        let start = new_id[poly[0]];
        let end = new_id[poly[p.len - 1]];
        let first_point = link_points.len() as u32;
        link_points.extend(poly.iter().map(|&v| xy[v]));
        // Physical directions relative to the geometry, then the search direction.
        let (phys_fwd, phys_bwd) = (p.oneway.forward(), p.oneway.backward());
        let (along, against) = match direction {
            Direction::FromPoi => (phys_fwd, phys_bwd),
            Direction::ToPoi => (phys_bwd, phys_fwd),
        };
        let li = li as LinkId;
        if along {
            edges.push((start, end, li, true, time));
        }
        if against {
            edges.push((end, start, li, false, time));
        }
        links.push(Link {
            start,
            end,
            first_point,
            point_count: p.len as u32,
            length_m,
            edge_along: None,
            edge_against: None,
            way_id: roads.ways[p.way].id,
        });
    }

    // 7. CSR by tail, then head, then link.
    edges.sort_unstable_by_key(|&(t, h, l, along, _)| (t, h, l, along));
    let n = node_xy.len();
    let mut first_out: Vec<EdgeId> = vec![0; n + 1];
    for &(t, ..) in &edges {
        first_out[t as usize + 1] += 1;
    }
    for i in 0..n {
        first_out[i + 1] += first_out[i];
    }
    let mut head = Vec::with_capacity(edges.len());
    let mut time_ms = Vec::with_capacity(edges.len());
    let mut edge_link = Vec::with_capacity(edges.len());
    let mut edge_along = Vec::with_capacity(edges.len());
    for (e, &(_, h, l, along, t)) in edges.iter().enumerate() {
        head.push(h);
        time_ms.push(t);
        edge_link.push(l);
        edge_along.push(along);
        let link = &mut links[l as usize];
        if along {
            link.edge_along = Some(e as EdgeId);
        } else {
            link.edge_against = Some(e as EdgeId);
        }
    }

    stats.nodes = n;
    stats.links = links.len();
    stats.edges = head.len();
    let graph = RoadGraph {
        node_xy,
        first_out,
        head,
        time_ms,
        edge_link,
        edge_along,
        links,
        link_points,
    };
    (graph, stats)
}

/// Whether a (lon, lat) can be projected: finite and on the globe.
fn valid_lonlat((lon, lat): (f64, f64)) -> bool {
    (-180.0..=180.0).contains(&lon) && (-90.0..=90.0).contains(&lat)
}

/// Travel time in whole milliseconds, at least 1 (Dijkstra needs positive weights).
fn travel_time_ms(length_m: f64, speed_kmh: f64) -> Millis {
    let ms = (length_m / (speed_kmh / 3.6) * 1000.0).round();
    // Saturating cast: an absurd length cannot wrap around.
    (ms as Millis).max(1)
}

/// GRS80 semi-major axis, metres.
const GRS80_A: f64 = 6_378_137.0;
/// GRS80 first eccentricity squared.
const GRS80_E2: f64 = 0.006_694_380_022_900_787;

/// Length in metres of the segment between two (lon, lat) points on the GRS80 ellipsoid,
/// using the meridional and prime-vertical radii of curvature at the mid-latitude. For the
/// short segments of OSM ways (metres to a few km) this agrees with the exact geodesic to well
/// under a millimetre, at a fraction of the cost.
fn segment_length_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let phi = ((a.1 + b.1) * 0.5).to_radians();
    let s = phi.sin();
    let w = 1.0 - GRS80_E2 * s * s;
    let n = GRS80_A / w.sqrt();
    let m = GRS80_A * (1.0 - GRS80_E2) / (w * w.sqrt());
    let mut dlon = b.0 - a.0;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let dx = n * phi.cos() * dlon.to_radians();
    let dy = m * (b.1 - a.1).to_radians();
    dx.hypot(dy)
}

/// Position of (x, y) along the Hilbert curve filling the 2³² × 2³² grid.
fn hilbert_index(mut x: u32, mut y: u32) -> u64 {
    let mut d = 0u64;
    let mut s: u32 = 1 << 31;
    while s > 0 {
        let rx = u64::from(x & s != 0);
        let ry = u64::from(y & s != 0);
        d += u64::from(s) * u64::from(s) * ((3 * rx) ^ ry);
        // Rotate the quadrant so that the curve inside it has the canonical orientation.
        // Flipping all bits equals `n - 1 - x` for n = 2³², and higher bits are not read again.
        if ry == 0 {
            if rx == 1 {
                x = !x;
                y = !y;
            }
            std::mem::swap(&mut x, &mut y);
        }
        s >>= 1;
    }
    d
}

/// Dense local indices for the OSM nodes the usable ways touch, in first-seen order.
#[derive(Default)]
struct Interner {
    index: HashMap<i64, usize>,
    osm_ids: Vec<i64>,
    lonlat: Vec<(f64, f64)>,
}

impl Interner {
    fn intern(&mut self, osm: i64, lonlat: (f64, f64)) -> usize {
        *self.index.entry(osm).or_insert_with(|| {
            self.osm_ids.push(osm);
            self.lonlat.push(lonlat);
            self.osm_ids.len() - 1
        })
    }
}

/// Union-find with path halving and union by size.
struct UnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl UnionFind {
    fn new(n: usize) -> Self {
        UnionFind {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut v: usize) -> usize {
        while self.parent[v] != v {
            self.parent[v] = self.parent[self.parent[v]];
            v = self.parent[v];
        }
        v
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut a, mut b) = (self.find(a), self.find(b));
        if a == b {
            return;
        }
        // Ties go to the lower index so the resulting roots are deterministic.
        if self.size[a] < self.size[b] || (self.size[a] == self.size[b] && b < a) {
            std::mem::swap(&mut a, &mut b);
        }
        self.parent[b] = a;
        self.size[a] += self.size[b];
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::osm::OsmWay;
    use geo::{Distance, Geodesic, Point};

    const LON0: f64 = -77.0;
    const LAT0: f64 = 38.9;
    const D: f64 = 0.001;

    /// The test network's nodes: a 3 × 3 grid (ids 1-3, 11-13, 21-23; rows 0.001° apart),
    /// a shape point 111, a roundabout east of 13 (41, 42), a road east of it (51) and an
    /// island (90, 91).
    fn test_nodes() -> Vec<(i64, (f64, f64))> {
        let mut v = Vec::new();
        for (r, base) in [(0.0, 1), (1.0, 11), (2.0, 21)] {
            for c in 0..3 {
                v.push((base + c, (LON0 + c as f64 * D, LAT0 + r * D)));
            }
        }
        v.push((111, (LON0 + 0.5 * D, LAT0 + D + 0.0002)));
        v.push((41, (LON0 + 3.0 * D, LAT0 + D + 0.0005)));
        v.push((42, (LON0 + 3.0 * D, LAT0 + D - 0.0005)));
        v.push((51, (LON0 + 4.0 * D, LAT0 + D + 0.0005)));
        v.push((90, (LON0 + 10.0 * D, LAT0 + 10.0 * D)));
        v.push((91, (LON0 + 11.0 * D, LAT0 + 10.0 * D)));
        v
    }

    fn way(id: i64, nodes: &[i64], tags: &[(&str, &str)]) -> OsmWay {
        OsmWay {
            id,
            nodes: nodes.to_vec(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// Residential grid with an intersection in the middle of two ways (12), a oneway (300),
    /// a footway (400), a roundabout (500) with a road leaving it (510) and an island (600).
    pub(crate) fn test_roads() -> OsmRoads {
        OsmRoads {
            nodes: test_nodes().into_iter().collect(),
            ways: vec![
                way(100, &[11, 111, 12, 13], &[("highway", "residential")]),
                way(200, &[2, 12, 22], &[("highway", "residential")]),
                way(
                    300,
                    &[1, 2, 3],
                    &[("highway", "residential"), ("oneway", "yes")],
                ),
                way(400, &[21, 22, 23], &[("highway", "footway")]),
                way(
                    500,
                    &[13, 41, 42, 13],
                    &[("highway", "primary"), ("junction", "roundabout")],
                ),
                way(510, &[41, 51], &[("highway", "tertiary")]),
                way(600, &[90, 91], &[("highway", "residential")]),
            ],
        }
    }

    fn lonlat(id: i64) -> (f64, f64) {
        test_nodes()
            .into_iter()
            .find(|&(i, _)| i == id)
            .expect("test node")
            .1
    }

    /// The graph node at OSM node `id`'s position.
    fn node(g: &RoadGraph, id: i64) -> NodeId {
        let (lon, lat) = lonlat(id);
        let p = to_5070(lon, lat);
        g.node_xy.iter().position(|&q| q == p).expect("graph node") as NodeId
    }

    /// The link from OSM node `a` to OSM node `b` (in geometry order).
    fn link(g: &RoadGraph, a: i64, b: i64) -> &Link {
        let (na, nb) = (node(g, a), node(g, b));
        let found: Vec<&Link> = g
            .links
            .iter()
            .filter(|l| l.start == na && l.end == nb)
            .collect();
        assert_eq!(found.len(), 1, "link {a}->{b}");
        found[0]
    }

    fn geodesic_m(ids: &[i64]) -> f64 {
        ids.windows(2)
            .map(|w| {
                let (a, b) = (lonlat(w[0]), lonlat(w[1]));
                Geodesic.distance(Point::new(a.0, a.1), Point::new(b.0, b.1))
            })
            .sum()
    }

    /// Structural invariants every built graph must satisfy.
    pub(crate) fn check_graph(g: &RoadGraph) {
        let n = g.node_count();
        let m = g.edge_count();
        assert_eq!(g.first_out.len(), n + 1);
        assert_eq!(g.first_out[0], 0);
        assert_eq!(g.first_out[n] as usize, m);
        assert!(g.first_out.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(g.time_ms.len(), m);
        assert_eq!(g.edge_link.len(), m);
        assert_eq!(g.edge_along.len(), m);
        let mut degree = vec![0usize; n];
        for t in 0..n as NodeId {
            for e in g.out_edges(t) {
                let h = g.head[e];
                assert!((h as usize) < n);
                assert!(g.time_ms[e] >= 1);
                let l = &g.links[g.edge_link[e] as usize];
                if g.edge_along[e] {
                    assert_eq!((l.start, l.end), (t, h));
                    assert_eq!(l.edge_along, Some(e as EdgeId));
                } else {
                    assert_eq!((l.end, l.start), (t, h));
                    assert_eq!(l.edge_against, Some(e as EdgeId));
                }
            }
        }
        let mut points = 0usize;
        for (i, l) in g.links.iter().enumerate() {
            assert!(l.point_count >= 2);
            assert_eq!(l.first_point as usize, points, "link points are contiguous");
            points += l.point_count as usize;
            let geom = g.link_geometry(i as LinkId);
            assert_eq!(geom[0], g.node_xy[l.start as usize]);
            assert_eq!(*geom.last().expect("points"), g.node_xy[l.end as usize]);
            assert!(l.edge_along.is_some() || l.edge_against.is_some());
            assert!(l.length_m.is_finite() && l.length_m >= 0.0);
            for e in [l.edge_along, l.edge_against].into_iter().flatten() {
                assert_eq!(g.edge_link[e as usize], i as LinkId);
            }
            degree[l.start as usize] += 1;
            degree[l.end as usize] += 1;
        }
        assert_eq!(points, g.link_points.len());
        assert!(degree.iter().all(|&d| d > 0), "no isolated nodes");
    }

    fn build(roads: &OsmRoads, mode: Mode, dir: Direction) -> (RoadGraph, BuildStats) {
        build_graph_with_stats(roads, mode, dir, &BuildOptions::default())
    }

    #[test]
    fn counts_per_mode_and_direction() {
        let roads = test_roads();
        // (mode, nodes, links, edges, ways used)
        let expected = [
            (Mode::Drive, 9, 9, 14, 6),
            (Mode::Walk, 11, 11, 22, 7),
            (Mode::Bike, 9, 9, 18, 6),
        ];
        for (mode, nodes, links, edges, ways) in expected {
            for dir in [Direction::FromPoi, Direction::ToPoi] {
                let (g, s) = build(&roads, mode, dir);
                check_graph(&g);
                let want = BuildStats {
                    ways_used: ways,
                    ways_without_geometry: 0,
                    links,
                    nodes,
                    edges,
                    components_dropped: 1,
                    nodes_dropped: 2,
                    links_dropped: 1,
                };
                assert_eq!(s, want, "{mode} {dir:?}");
                assert_eq!(
                    (g.node_count(), g.links.len(), g.edge_count()),
                    (nodes, links, edges)
                );
            }
        }
    }

    #[test]
    fn lengths_times_and_geometry() {
        let roads = test_roads();
        let (g, _) = build(&roads, Mode::Drive, Direction::FromPoi);
        // Way 100 is cut at 12, where way 200 crosses its middle; 111 is only a shape point.
        let l = link(&g, 11, 12);
        assert_eq!(l.way_id, 100);
        assert_eq!(l.point_count, 3);
        let pts = &g.link_points[l.first_point as usize..][..3];
        assert_eq!(pts[1], to_5070(lonlat(111).0, lonlat(111).1));
        assert!(
            (l.length_m - geodesic_m(&[11, 111, 12])).abs() < 1e-3,
            "{}",
            l.length_m
        );
        // One step east at 38.9° N: 0.001° × N cos φ ≈ 86.75 m; at 30 km/h that is 10.41 s.
        let l = link(&g, 12, 13);
        assert!((l.length_m - geodesic_m(&[12, 13])).abs() < 1e-3);
        assert!((l.length_m - 86.75).abs() < 0.01, "{}", l.length_m);
        let t = g.time_ms[l.edge_along.expect("two-way") as usize];
        assert_eq!(t, (l.length_m / (30.0 / 3.6) * 1000.0).round() as u32);
        assert_eq!(t, 10410);
        assert_eq!(g.time_ms[l.edge_against.expect("two-way") as usize], t);
        // One step north: 0.001° × M ≈ 111.0 m.
        let l = link(&g, 2, 12);
        assert!((l.length_m - geodesic_m(&[2, 12])).abs() < 1e-3);
        assert!((l.length_m - 111.0).abs() < 0.1, "{}", l.length_m);
        // The roundabout (primary, 65 km/h) is cut at 41, where way 510 leaves it.
        let l = link(&g, 41, 13);
        assert_eq!((l.way_id, l.point_count), (500, 3));
        assert!((l.length_m - geodesic_m(&[41, 42, 13])).abs() < 1e-3);
        let t = g.time_ms[l.edge_along.expect("forward") as usize];
        assert_eq!(t, (l.length_m / (65.0 / 3.6) * 1000.0).round() as u32);

        // Walking the footway: 5 km/h.
        let (g, _) = build(&roads, Mode::Walk, Direction::FromPoi);
        let l = link(&g, 22, 23);
        assert_eq!(l.way_id, 400);
        let t = g.time_ms[l.edge_along.expect("two-way") as usize];
        assert_eq!(t, (l.length_m / (5.0 / 3.6) * 1000.0).round() as u32);
        assert!((62_400..62_500).contains(&t), "{t}");
        // Residential on foot: 4.8 km/h.
        let l = link(&g, 12, 13);
        assert_eq!(
            g.time_ms[l.edge_against.expect("two-way") as usize],
            (l.length_m / (4.8 / 3.6) * 1000.0).round() as u32
        );
    }

    /// (tail, head) of a link's directed edges in search direction, as OSM ids' graph nodes.
    fn edge_ends(g: &RoadGraph, e: Option<EdgeId>) -> Option<(NodeId, NodeId)> {
        e.map(|e| {
            let e = e as usize;
            let tail = (0..g.node_count()).find(|&t| g.out_edges(t as NodeId).contains(&e));
            (tail.expect("edge has a tail") as NodeId, g.head[e])
        })
    }

    #[test]
    fn directions_of_oneways_and_roundabouts() {
        let roads = test_roads();
        for mode in [Mode::Drive, Mode::Walk, Mode::Bike] {
            let from = build(&roads, mode, Direction::FromPoi).0;
            let to = build(&roads, mode, Direction::ToPoi).0;
            for (a, b) in [(1, 2), (2, 3), (13, 41), (41, 13)] {
                let lf = link(&from, a, b);
                let lt = link(&to, a, b);
                let (na, nb) = (node(&from, a), node(&from, b));
                if mode == Mode::Drive {
                    // Physically only a → b: from the POI the search goes a → b (along);
                    // towards the POI it runs backwards, b → a (against).
                    assert_eq!(edge_ends(&from, lf.edge_along), Some((na, nb)));
                    assert_eq!(lf.edge_against, None);
                    assert_eq!(lt.edge_along, None);
                    assert_eq!(edge_ends(&to, lt.edge_against), Some((nb, na)));
                    assert!(!to.edge_along[lt.edge_against.expect("edge") as usize]);
                } else {
                    for (g, l) in [(&from, lf), (&to, lt)] {
                        assert_eq!(edge_ends(g, l.edge_along), Some((na, nb)), "{mode}");
                        assert_eq!(edge_ends(g, l.edge_against), Some((nb, na)), "{mode}");
                    }
                }
            }
            // Two-way streets have both edges in both directions.
            for g in [&from, &to] {
                let l = link(g, 2, 12);
                assert_eq!(edge_ends(g, l.edge_along), Some((node(g, 2), node(g, 12))));
                assert_eq!(
                    edge_ends(g, l.edge_against),
                    Some((node(g, 12), node(g, 2)))
                );
            }
        }
    }

    #[test]
    fn backward_oneway_is_reversed() {
        let mut roads = test_roads();
        roads.ways[2].tags = vec![
            ("highway".into(), "residential".into()),
            ("oneway".into(), "-1".into()),
        ];
        let from = build(&roads, Mode::Drive, Direction::FromPoi).0;
        let to = build(&roads, Mode::Drive, Direction::ToPoi).0;
        let (lf, lt) = (link(&from, 1, 2), link(&to, 1, 2));
        assert_eq!(lf.edge_along, None);
        assert_eq!(
            edge_ends(&from, lf.edge_against),
            Some((node(&from, 2), node(&from, 1)))
        );
        assert_eq!(
            edge_ends(&to, lt.edge_along),
            Some((node(&to, 1), node(&to, 2)))
        );
        assert_eq!(lt.edge_against, None);
    }

    #[test]
    fn footway_only_in_walk_graph() {
        let roads = test_roads();
        for (mode, present) in [
            (Mode::Walk, true),
            (Mode::Drive, false),
            (Mode::Bike, false),
        ] {
            let g = build(&roads, mode, Direction::FromPoi).0;
            assert_eq!(g.links.iter().any(|l| l.way_id == 400), present, "{mode}");
            // 22 is a node either way: the end of way 200.
            node(&g, 22);
        }
    }

    #[test]
    fn missing_nodes_split_ways_and_repeats_merge() {
        let nodes: HashMap<i64, (f64, f64)> =
            (1..=8).map(|i| (i, (LON0 + i as f64 * D, LAT0))).collect();
        let roads = OsmRoads {
            nodes,
            ways: vec![
                // 99 is missing: pieces 1-2 and 3-4, no straight line 2-3.
                way(10, &[1, 2, 99, 3, 4], &[("highway", "residential")]),
                // Consecutive repeats of 5 are one point.
                way(11, &[5, 5, 6, 6], &[("highway", "residential")]),
                // Only one present node: nothing to draw.
                way(12, &[7, 98, 97], &[("highway", "residential")]),
                // A way touching itself: cut where it returns to 8... which is also its start.
                way(13, &[8, 1], &[("highway", "service")]),
            ],
        };
        let opts = BuildOptions {
            min_component_nodes: 1,
        };
        let (g, s) = build_graph_with_stats(&roads, Mode::Drive, Direction::FromPoi, &opts);
        check_graph(&g);
        assert_eq!(s.ways_used, 3);
        assert_eq!(s.ways_without_geometry, 1);
        // Pieces: 1-2, 3-4, 5-6, 8-1 → nodes 1,2,3,4,5,6,8.
        assert_eq!((s.nodes, s.links, s.edges), (7, 4, 8));
        let ways: Vec<i64> = g.links.iter().map(|l| l.way_id).collect();
        assert_eq!(ways.iter().filter(|&&w| w == 10).count(), 2);
        let l11 = g.links.iter().find(|l| l.way_id == 11).expect("link");
        assert_eq!(l11.point_count, 2);
        // Each piece of way 10 is one 0.001° step long; nothing bridges 2 → 3.
        for l in g.links.iter().filter(|l| l.way_id == 10) {
            assert!((l.length_m - 86.75).abs() < 0.01, "{}", l.length_m);
        }
    }

    #[test]
    fn empty_and_unusable_inputs_give_empty_graphs() {
        let empty = OsmRoads::default();
        let (g, s) = build(&empty, Mode::Drive, Direction::FromPoi);
        check_graph(&g);
        assert_eq!(
            (g.node_count(), g.edge_count(), g.first_out.clone()),
            (0, 0, vec![0])
        );
        assert_eq!(s, BuildStats::default());
        // Bad coordinates count as missing nodes; a footway is not drivable.
        let nodes: HashMap<i64, (f64, f64)> = [
            (1, (f64::NAN, 38.9)),
            (2, (-77.0, 95.0)),
            (3, (-77.0, 38.9)),
            (4, (-77.001, 38.9)),
        ]
        .into_iter()
        .collect();
        let roads = OsmRoads {
            nodes,
            ways: vec![
                way(1, &[1, 2, 3], &[("highway", "residential")]),
                way(2, &[3, 4], &[("highway", "footway")]),
            ],
        };
        let (g, s) = build(&roads, Mode::Drive, Direction::ToPoi);
        check_graph(&g);
        assert_eq!(g.node_count(), 0);
        assert_eq!((s.ways_used, s.ways_without_geometry), (0, 1));
        let (g, s) = build(&roads, Mode::Walk, Direction::FromPoi);
        check_graph(&g);
        assert_eq!((s.nodes, s.links, s.edges, s.ways_used), (2, 1, 2, 1));
    }

    #[test]
    fn self_touching_way_is_cut_where_it_returns() {
        let nodes: HashMap<i64, (f64, f64)> = [
            (1, (LON0, LAT0)),
            (2, (LON0 + D, LAT0)),
            (3, (LON0 + 2.0 * D, LAT0)),
            (4, (LON0 + 1.5 * D, LAT0 + D)),
        ]
        .into_iter()
        .collect();
        let roads = OsmRoads {
            nodes,
            ways: vec![way(1, &[1, 2, 3, 4, 2], &[("highway", "residential")])],
        };
        let (g, s) = build(&roads, Mode::Drive, Direction::FromPoi);
        check_graph(&g);
        assert_eq!((s.nodes, s.links, s.edges), (2, 2, 4));
        let lollipop = g
            .links
            .iter()
            .find(|l| l.start == l.end)
            .expect("loop link");
        assert_eq!(lollipop.point_count, 4);
    }

    #[test]
    fn small_components_are_dropped_but_never_the_largest() {
        let nodes: HashMap<i64, (f64, f64)> =
            (0..10).map(|i| (i, (LON0 + i as f64 * D, LAT0))).collect();
        let r = |id, ns: &[i64]| way(id, ns, &[("highway", "residential")]);
        // Components: {0,1,2,3} (4 nodes: 1 is where ways 1 and 4 cross), {4,5} and {7,8}
        // (2 nodes each).
        let roads = OsmRoads {
            nodes,
            ways: vec![
                r(1, &[0, 1, 2]),
                r(4, &[1, 3]),
                r(2, &[4, 5]),
                r(3, &[7, 8]),
            ],
        };
        let count = |min| {
            let opts = BuildOptions {
                min_component_nodes: min,
            };
            let (g, s) = build_graph_with_stats(&roads, Mode::Drive, Direction::FromPoi, &opts);
            check_graph(&g);
            (g.node_count(), s.components_dropped)
        };
        assert_eq!(count(1), (8, 0));
        assert_eq!(count(2), (8, 0));
        assert_eq!(count(3), (4, 2));
        assert_eq!(count(20), (4, 2));
        // Two equally large components: exactly one survives, always the same one.
        let roads = OsmRoads {
            nodes: roads.nodes.clone(),
            ways: vec![r(2, &[4, 5]), r(3, &[7, 8])],
        };
        let (g, s) = build_graph_with_stats(
            &roads,
            Mode::Drive,
            Direction::FromPoi,
            &BuildOptions::default(),
        );
        assert_eq!((g.node_count(), s.components_dropped), (2, 1));
        assert_eq!(g.links[0].way_id, 2);
    }

    fn encode(g: &RoadGraph) -> Vec<u8> {
        bincode::serde::encode_to_vec(g, bincode::config::standard()).expect("encode")
    }

    #[test]
    fn output_does_not_depend_on_input_order_or_hashing() {
        let a = test_roads();
        // A fresh HashMap (new random seed, different iteration order) and reversed ways.
        let mut nodes: Vec<(i64, (f64, f64))> = a.nodes.iter().map(|(&k, &v)| (k, v)).collect();
        nodes.reverse();
        let mut ways = a.ways.clone();
        ways.reverse();
        let b = OsmRoads {
            nodes: nodes.into_iter().collect(),
            ways,
        };
        for mode in [Mode::Drive, Mode::Walk, Mode::Bike] {
            for dir in [Direction::FromPoi, Direction::ToPoi] {
                let ga = build_graph(&a, mode, dir, &BuildOptions::default());
                let gb = build_graph(&b, mode, dir, &BuildOptions::default());
                assert_eq!(encode(&ga), encode(&gb), "{mode} {dir:?}");
            }
        }
    }

    #[test]
    fn hilbert_curve_visits_neighbours_in_turn() {
        assert_eq!(hilbert_index(0, 0), 0);
        let q = |x: u32, y: u32| hilbert_index(x, y) >> 62;
        assert_eq!(q(0, 1 << 31), 1);
        assert_eq!(q(1 << 31, 1 << 31), 2);
        assert_eq!(q(1 << 31, 0), 3);
        assert_eq!(hilbert_index(u32::MAX, 0), u64::MAX);
        // On a 16 × 16 sub-grid, consecutive curve positions are 4-neighbours.
        let mut cells: Vec<(u64, i32, i32)> = (0..16)
            .flat_map(|x| {
                (0..16).map(move |y| (hilbert_index((x as u32) << 28, (y as u32) << 28), x, y))
            })
            .collect();
        cells.sort_unstable();
        for w in cells.windows(2) {
            let (dx, dy) = (w[0].1 - w[1].1, w[0].2 - w[1].2);
            assert_eq!(dx.abs() + dy.abs(), 1, "{w:?}");
        }
    }

    #[test]
    fn segment_length_matches_geodesic() {
        for (a, b) in [
            ((-77.0, 38.9), (-77.0001, 38.9)),
            ((-77.0, 38.9), (-76.99, 38.91)),
            ((-122.4, 47.6), (-122.37, 47.62)),
            ((-80.2, 25.7), (-80.2, 25.75)),
            ((-149.9, 61.2), (-149.8, 61.21)),
        ] {
            let exact = Geodesic.distance(Point::new(a.0, a.1), Point::new(b.0, b.1));
            let ours = segment_length_m(a, b);
            assert!(
                (ours - exact).abs() < 1e-3,
                "{a:?} {b:?}: {ours} vs {exact}"
            );
        }
        assert_eq!(travel_time_ms(0.0, 50.0), 1);
        assert_eq!(travel_time_ms(100.0, 36.0), 10_000);
        assert_eq!(travel_time_ms(1e12, 1.0), Millis::MAX);
    }

    #[test]
    fn dc_graphs_are_well_formed() {
        let roads = crate::osm::pbf::read_roads(&crate::osm::pbf::test_data("dc/roads.osm.pbf"))
            .expect("read");
        assert_eq!(roads.ways.len(), 8593);
        let drivable = roads
            .ways
            .iter()
            .filter(|w| way_rule(Mode::Drive, w).is_some())
            .count();
        println!("DC: drivable ways by our profile: {drivable}");
        for mode in [Mode::Drive, Mode::Walk, Mode::Bike] {
            let (from, s) = build(&roads, mode, Direction::FromPoi);
            let (to, s_to) = build(&roads, mode, Direction::ToPoi);
            println!("DC {mode}: {s:?}");
            check_graph(&from);
            check_graph(&to);
            // Same nodes and links either way; the edges are the reversed ones.
            assert_eq!(s, s_to);
            assert_eq!(from.node_xy, to.node_xy);
            assert_eq!(from.links.len(), to.links.len());
            assert!(s.nodes > 1000, "{mode}: {s:?}");
            // Hilbert numbering keeps most edges between nearby ids.
            let mut gaps: Vec<u32> = (0..from.node_count() as NodeId)
                .flat_map(|t| from.out_edges(t).map(move |e| (t, e)))
                .map(|(t, e)| t.abs_diff(from.head[e]))
                .collect();
            gaps.sort_unstable();
            let median = gaps[gaps.len() / 2];
            println!(
                "DC {mode}: median |tail - head| = {median} of {} nodes",
                s.nodes
            );
            assert!((median as usize) < s.nodes / 100, "{mode}: {median}");
        }
    }
}
