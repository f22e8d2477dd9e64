//! Snapping points to the nearest point of the road network.
//!
//! The index holds every *segment* of every link polyline, not the nodes: a POI beside a long
//! straight road snaps onto the road right next to it, not onto an intersection hundreds of
//! metres away (what the original's `ox.nearest_nodes` did).

use super::{LinkId, RoadGraph};
use geo::Coord;
use rstar::{AABB, PointDistance, RTree, RTreeObject};

/// Where a point meets the network.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snap {
    /// The link snapped onto.
    pub link: LinkId,
    /// Position along the link from its start, as a share (0..=1) of its projected (EPSG:5070)
    /// polyline length. Multiply by [`super::Link::length_m`] for metres along the road.
    pub fraction: f64,
    /// The snapped point on the link, EPSG:5070 metres.
    pub point: Coord<f64>,
    /// Distance from the query point to `point`, EPSG:5070 metres.
    pub distance_m: f64,
}

/// One segment of a link polyline in the R-tree.
#[derive(Clone, Debug)]
struct Segment {
    a: [f64; 2],
    b: [f64; 2],
    link: LinkId,
    /// Index of the segment within its link (0 for the first).
    seg: u32,
    /// Projected length of the link before this segment.
    along: f64,
}

impl Segment {
    /// Parameter in 0..=1 of the point of the segment closest to `p`.
    fn closest_t(&self, p: &[f64; 2]) -> f64 {
        let (dx, dy) = (self.b[0] - self.a[0], self.b[1] - self.a[1]);
        let len2 = dx * dx + dy * dy;
        if len2 == 0.0 {
            return 0.0;
        }
        (((p[0] - self.a[0]) * dx + (p[1] - self.a[1]) * dy) / len2).clamp(0.0, 1.0)
    }

    fn point_at(&self, t: f64) -> [f64; 2] {
        [
            self.a[0] + t * (self.b[0] - self.a[0]),
            self.a[1] + t * (self.b[1] - self.a[1]),
        ]
    }

    fn length(&self) -> f64 {
        (self.b[0] - self.a[0]).hypot(self.b[1] - self.a[1])
    }
}

impl RTreeObject for Segment {
    type Envelope = AABB<[f64; 2]>;

    fn envelope(&self) -> Self::Envelope {
        AABB::from_corners(self.a, self.b)
    }
}

impl PointDistance for Segment {
    fn distance_2(&self, p: &[f64; 2]) -> f64 {
        let q = self.point_at(self.closest_t(p));
        let (dx, dy) = (p[0] - q[0], p[1] - q[1]);
        dx * dx + dy * dy
    }
}

/// Distances closer than this (metres) count as ties, so that rounding in the projection
/// cannot pick between equally near links by accident.
const TIE_M: f64 = 1e-9;

/// A spatial index of a [`RoadGraph`]'s link segments for nearest-point queries. Build it once
/// per graph; queries are read-only and can run from many threads.
pub struct SnapIndex {
    tree: RTree<Segment>,
    /// Projected polyline length of each link.
    link_len: Vec<f64>,
}

impl SnapIndex {
    /// Indexes every segment of every link of `graph` (bulk-loaded R-tree).
    pub fn new(graph: &RoadGraph) -> Self {
        let mut segments = Vec::with_capacity(graph.link_points.len());
        let mut link_len = Vec::with_capacity(graph.links.len());
        for link in 0..graph.links.len() as LinkId {
            let pts = graph.link_geometry(link);
            let mut along = 0.0;
            for (seg, w) in pts.windows(2).enumerate() {
                let s = Segment {
                    a: [w[0].x, w[0].y],
                    b: [w[1].x, w[1].y],
                    link,
                    seg: seg as u32,
                    along,
                };
                along += s.length();
                segments.push(s);
            }
            link_len.push(along);
        }
        SnapIndex {
            tree: RTree::bulk_load(segments),
            link_len,
        }
    }

    /// Number of indexed segments.
    pub fn segment_count(&self) -> usize {
        self.tree.size()
    }

    /// The point of the network nearest to `p` (EPSG:5070 metres), if one lies within
    /// `max_distance_m` (inclusive). Among equally near links the lowest link id wins, and
    /// within a link the earliest segment, so answers never depend on tree layout.
    pub fn nearest(&self, p: Coord<f64>, max_distance_m: f64) -> Option<Snap> {
        // NaN limits fail `>= 0.0` and so return None too.
        let usable_limit = max_distance_m >= 0.0;
        if !(p.x.is_finite() && p.y.is_finite() && usable_limit) {
            return None;
        }
        let q = [p.x, p.y];
        let mut iter = self.tree.nearest_neighbor_iter_with_distance_2(&q);
        let (mut best, best_d2) = iter.next()?;
        let best_d = best_d2.sqrt();
        if best_d > max_distance_m {
            return None;
        }
        let tie_d2 = (best_d + TIE_M).powi(2);
        for (s, d2) in iter {
            if d2 > tie_d2 {
                break;
            }
            if (s.link, s.seg) < (best.link, best.seg) {
                best = s;
            }
        }
        let t = best.closest_t(&q);
        let [x, y] = best.point_at(t);
        let len = self.link_len[best.link as usize];
        let fraction = if len > 0.0 {
            ((best.along + t * best.length()) / len).clamp(0.0, 1.0)
        } else {
            0.0
        };
        Some(Snap {
            link: best.link,
            fraction,
            point: Coord { x, y },
            distance_m: (p.x - x).hypot(p.y - y),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Link;

    /// Links: 0 = (0,0)→(100,0)→(100,100), an L of projected length 200;
    /// 1 = (100,100)→(200,100); 2 = the same road as 1, drawn the other way.
    fn graph() -> RoadGraph {
        let c = |x, y| Coord { x, y };
        let node_xy = vec![c(0.0, 0.0), c(100.0, 100.0), c(200.0, 100.0)];
        let link_points = vec![
            c(0.0, 0.0),
            c(100.0, 0.0),
            c(100.0, 100.0),
            c(100.0, 100.0),
            c(200.0, 100.0),
            c(200.0, 100.0),
            c(100.0, 100.0),
        ];
        let link = |start, end, first_point, point_count| Link {
            start,
            end,
            first_point,
            point_count,
            length_m: 0.0,
            edge_along: None,
            edge_against: None,
            way_id: 0,
        };
        RoadGraph {
            first_out: vec![0; node_xy.len() + 1],
            node_xy,
            links: vec![link(0, 1, 0, 3), link(1, 2, 3, 2), link(2, 1, 5, 2)],
            link_points,
            ..RoadGraph::default()
        }
    }

    fn snap(idx: &SnapIndex, x: f64, y: f64, max: f64) -> Option<Snap> {
        idx.nearest(Coord { x, y }, max)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn known_answers() {
        let idx = SnapIndex::new(&graph());
        assert_eq!(idx.segment_count(), 4);
        // Beside the first segment.
        let s = snap(&idx, 50.0, 10.0, 100.0).expect("snap");
        assert_eq!(s.link, 0);
        assert!(close(s.fraction, 0.25) && close(s.distance_m, 10.0));
        assert_eq!(s.point, Coord { x: 50.0, y: 0.0 });
        // Beside the second segment of the same link: 100 + 60 of 200.
        let s = snap(&idx, 90.0, 60.0, 100.0).expect("snap");
        assert_eq!(s.link, 0);
        assert!(close(s.fraction, 0.8) && close(s.distance_m, 10.0));
        assert_eq!(s.point, Coord { x: 100.0, y: 60.0 });
        // Beyond the start: the endpoint, 50 m away (3-4-5).
        let s = snap(&idx, -30.0, -40.0, 100.0).expect("snap");
        assert_eq!((s.link, s.point), (0, Coord { x: 0.0, y: 0.0 }));
        assert!(close(s.fraction, 0.0) && close(s.distance_m, 50.0));
        // On an interior vertex.
        let s = snap(&idx, 100.0, 0.0, 1.0).expect("snap");
        assert_eq!((s.link, s.point), (0, Coord { x: 100.0, y: 0.0 }));
        assert!(close(s.fraction, 0.5) && s.distance_m == 0.0);
        // Outside the corner of the L: nearest is the vertex itself.
        let s = snap(&idx, 110.0, -10.0, 100.0).expect("snap");
        assert_eq!(s.point, Coord { x: 100.0, y: 0.0 });
        assert!(close(s.distance_m, 200f64.sqrt()));
    }

    #[test]
    fn too_far_and_bad_queries() {
        let idx = SnapIndex::new(&graph());
        assert_eq!(snap(&idx, 500.0, 500.0, 100.0), None);
        // Exactly at the limit counts.
        assert!(snap(&idx, 50.0, 10.0, 10.0).is_some());
        assert_eq!(snap(&idx, 50.0, 10.0, 9.999), None);
        assert_eq!(snap(&idx, f64::NAN, 0.0, 100.0), None);
        assert_eq!(snap(&idx, 0.0, f64::INFINITY, 100.0), None);
        assert_eq!(snap(&idx, 0.0, 0.0, f64::NAN), None);
        assert_eq!(snap(&idx, 0.0, 0.0, -1.0), None);
        let empty = SnapIndex::new(&RoadGraph::default());
        assert_eq!(empty.segment_count(), 0);
        assert_eq!(snap(&empty, 0.0, 0.0, 1e9), None);
    }

    #[test]
    fn ties_go_to_the_lowest_link() {
        let idx = SnapIndex::new(&graph());
        // Links 1 and 2 are the same road: always link 1, at its own fraction.
        let s = snap(&idx, 150.0, 150.0, 100.0).expect("snap");
        assert_eq!(s.link, 1);
        assert!(close(s.fraction, 0.5) && close(s.distance_m, 50.0));
        let s = snap(&idx, 500.0, 500.0, 1e4).expect("snap");
        assert_eq!((s.link, s.point), (1, Coord { x: 200.0, y: 100.0 }));
        assert!(close(s.fraction, 1.0) && close(s.distance_m, 500.0));
        // The shared node of links 0, 1 and 2: link 0, at its end.
        let s = snap(&idx, 100.0, 100.0, 1.0).expect("snap");
        assert_eq!(s.link, 0);
        assert!(close(s.fraction, 1.0) && s.distance_m == 0.0);
        // Just inside link 1's side of the node, link 1 is strictly nearer than link 0.
        let s = snap(&idx, 101.0, 105.0, 10.0).expect("snap");
        assert_eq!(s.link, 1);
        assert!(close(s.fraction, 0.01));
    }

    #[test]
    fn matches_brute_force_on_dc() {
        use crate::graph::build::{BuildOptions, build_graph};
        use crate::types::{Direction, Mode};
        let roads = crate::osm::pbf::read_roads(&crate::osm::pbf::test_data("dc/roads.osm.pbf"))
            .expect("read");
        let g = build_graph(
            &roads,
            Mode::Walk,
            Direction::FromPoi,
            &BuildOptions::default(),
        );
        let idx = SnapIndex::new(&g);
        assert_eq!(idx.segment_count(), g.link_points.len() - g.links.len());
        // Every node snaps onto itself.
        for (n, &p) in g.node_xy.iter().enumerate().step_by(97) {
            let s = idx.nearest(p, 1.0).expect("node snaps");
            assert_eq!(s.distance_m, 0.0, "node {n}");
            assert_eq!(s.point, p);
        }
        // Pseudo-random points over the extract against an exhaustive search.
        let (mut lo, mut hi) = (g.node_xy[0], g.node_xy[0]);
        for p in &g.node_xy {
            lo = Coord {
                x: lo.x.min(p.x),
                y: lo.y.min(p.y),
            };
            hi = Coord {
                x: hi.x.max(p.x),
                y: hi.y.max(p.y),
            };
        }
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        for _ in 0..200 {
            let p = Coord {
                x: lo.x + rnd() * (hi.x - lo.x),
                y: lo.y + rnd() * (hi.y - lo.y),
            };
            let s = idx.nearest(p, 1e6).expect("snap");
            let mut best = (f64::MAX, 0);
            for l in 0..g.links.len() as LinkId {
                for w in g.link_geometry(l).windows(2) {
                    let seg = Segment {
                        a: [w[0].x, w[0].y],
                        b: [w[1].x, w[1].y],
                        link: l,
                        seg: 0,
                        along: 0.0,
                    };
                    let d = seg.distance_2(&[p.x, p.y]).sqrt();
                    if d < best.0 - TIE_M {
                        best = (d, l);
                    }
                }
            }
            assert!(
                (s.distance_m - best.0).abs() < 1e-6,
                "{p:?}: {} vs {}",
                s.distance_m,
                best.0
            );
            assert_eq!(s.link, best.1, "{p:?}");
            assert!((0.0..=1.0).contains(&s.fraction));
            assert_eq!(idx.nearest(p, best.0 - 1e-3), None);
        }
    }
}
