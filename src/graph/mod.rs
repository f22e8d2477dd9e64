//! The routable road graph: links (physical road pieces with their geometry) and directed edges
//! in CSR form, node ids in a spatially local (Hilbert) order so that searches touch memory
//! that lies together.
//!
//! All coordinates are EPSG:5070 metres (see [`crate::geom::albers`]).

pub mod build;
pub mod dijkstra;
pub mod lanes;
pub mod snap;

use geo::Coord;
use serde::{Deserialize, Serialize};

/// Dense node index into a [`RoadGraph`].
pub type NodeId = u32;
/// Dense directed-edge index into a [`RoadGraph`].
pub type EdgeId = u32;
/// Dense link index into a [`RoadGraph`].
pub type LinkId = u32;
/// Travel time in milliseconds. Integer weights keep comparisons exact and the heap cheap.
pub type Millis = u32;

/// A physical road piece between two graph nodes, with its polyline. One link carries up to two
/// directed edges: along its geometry (start → end) and against it (end → start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Node at the first point of `geometry`.
    pub start: NodeId,
    /// Node at the last point of `geometry`.
    pub end: NodeId,
    /// Index of the first point of this link's polyline in [`RoadGraph::link_points`].
    pub first_point: u32,
    /// Number of points of the polyline (at least 2).
    pub point_count: u32,
    /// Length of the polyline in metres (EPSG:5070 is equal-area, not equidistant: this is the
    /// geodesic length of the OSM way piece, measured on the ellipsoid when built).
    pub length_m: f64,
    /// The directed edge that travels start → end, if travel that way is allowed.
    pub edge_along: Option<EdgeId>,
    /// The directed edge that travels end → start, if travel that way is allowed.
    pub edge_against: Option<EdgeId>,
    /// The OSM way this link was cut from (for diagnostics).
    pub way_id: i64,
}

/// An immutable road graph for one travel mode and direction.
///
/// Edges are stored in CSR order: the out-edges of node `n` are
/// `first_out[n] .. first_out[n + 1]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RoadGraph {
    /// Node positions, EPSG:5070 metres.
    pub node_xy: Vec<Coord<f64>>,
    /// CSR offsets, `node_xy.len() + 1` entries.
    pub first_out: Vec<EdgeId>,
    /// Head node of each directed edge.
    pub head: Vec<NodeId>,
    /// Travel time of each directed edge in milliseconds (at least 1).
    pub time_ms: Vec<Millis>,
    /// Link of each directed edge.
    pub edge_link: Vec<LinkId>,
    /// Whether each directed edge runs along its link's geometry (start → end).
    pub edge_along: Vec<bool>,
    /// The links.
    pub links: Vec<Link>,
    /// Polyline points of all links, EPSG:5070 metres.
    pub link_points: Vec<Coord<f64>>,
}

impl RoadGraph {
    /// Number of nodes.
    pub fn node_count(&self) -> usize {
        self.node_xy.len()
    }

    /// Number of directed edges.
    pub fn edge_count(&self) -> usize {
        self.head.len()
    }

    /// The out-edge ids of `node`.
    #[inline]
    pub fn out_edges(&self, node: NodeId) -> std::ops::Range<usize> {
        self.first_out[node as usize] as usize..self.first_out[node as usize + 1] as usize
    }

    /// The polyline of `link` from start to end.
    pub fn link_geometry(&self, link: LinkId) -> &[Coord<f64>] {
        let l = &self.links[link as usize];
        let a = l.first_point as usize;
        &self.link_points[a..a + l.point_count as usize]
    }

    /// Length in metres of directed edge `edge` (that of its link).
    #[inline]
    pub fn edge_length_m(&self, edge: EdgeId) -> f64 {
        self.links[self.edge_link[edge as usize] as usize].length_m
    }
}

/// One directed edge given to [`RoadGraph::from_edges`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlainEdge {
    /// Tail node.
    pub from: NodeId,
    /// Head node.
    pub to: NodeId,
    /// Travel time, milliseconds.
    pub time_ms: Millis,
    /// Length, metres.
    pub length_m: f64,
    /// Whether the same link can also be travelled `to → from` (a two-way road: one link,
    /// two directed edges).
    pub both_ways: bool,
}

impl RoadGraph {
    /// A graph from node positions and directed edges, each edge its own straight link. For
    /// hand-made test graphs and benchmarks; real networks come from [`build::build_graph`].
    pub fn from_edges(node_xy: Vec<Coord<f64>>, edges: &[PlainEdge]) -> RoadGraph {
        let n = node_xy.len();
        // (tail, head, link, along) for every directed edge, in CSR order.
        let mut directed = Vec::new();
        for (k, e) in edges.iter().enumerate() {
            directed.push((e.from, e.to, k, true));
            if e.both_ways {
                directed.push((e.to, e.from, k, false));
            }
        }
        directed.sort_by_key(|&(from, to, k, along)| (from, to, k, !along));
        let mut g = RoadGraph {
            node_xy,
            first_out: vec![0; n + 1],
            ..Default::default()
        };
        for (k, e) in edges.iter().enumerate() {
            g.links.push(Link {
                start: e.from,
                end: e.to,
                first_point: g.link_points.len() as u32,
                point_count: 2,
                length_m: e.length_m,
                edge_along: None,
                edge_against: None,
                way_id: k as i64,
            });
            g.link_points.push(g.node_xy[e.from as usize]);
            g.link_points.push(g.node_xy[e.to as usize]);
        }
        for (from, to, k, along) in directed {
            let id = g.head.len() as EdgeId;
            g.first_out[from as usize + 1] += 1;
            g.head.push(to);
            g.time_ms.push(edges[k].time_ms.max(1));
            g.edge_link.push(k as LinkId);
            g.edge_along.push(along);
            let link = &mut g.links[k];
            if along {
                link.edge_along = Some(id);
            } else {
                link.edge_against = Some(id);
            }
        }
        for v in 0..n {
            g.first_out[v + 1] += g.first_out[v];
        }
        g
    }
}
