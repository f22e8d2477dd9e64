//! Bounded and multi-source Dijkstra over a [`RoadGraph`].
//!
//! One [`Workspace`] per worker thread holds every per-node array; a generation counter resets
//! them in O(1) between searches (fast_paths' `ValidFlags`), so a search costs what it settles,
//! not what the graph holds. Heap entries pack `(time, node)` into one `u64` so that the heap
//! compares single integers.

use super::{Millis, NodeId, RoadGraph};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A search start: reach `node` after `time_ms` and `length_m` from source `origin`
/// (e.g. the POI's index), having travelled part of the link the source was snapped to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seed {
    /// Node reached first.
    pub node: NodeId,
    /// Time already spent when reaching it, milliseconds.
    pub time_ms: Millis,
    /// Distance already travelled when reaching it, metres.
    pub length_m: f64,
    /// Which source this seed belongs to (reported back per node for multi-source searches).
    pub origin: u32,
}

/// Reusable per-thread search state.
#[derive(Clone, Debug, Default)]
pub struct Workspace {
    dist: Vec<Millis>,
    length: Vec<f64>,
    origin: Vec<u32>,
    stamp: Vec<u32>,
    generation: u32,
    heap: BinaryHeap<Reverse<u64>>,
    settled: Vec<NodeId>,
    /// Whether the last search tracked lengths and origins ([`Workspace::run`]) or only times
    /// ([`Workspace::run_times`]).
    full: bool,
}

#[inline]
fn pack(time: Millis, node: NodeId) -> u64 {
    ((time as u64) << 32) | node as u64
}

impl Workspace {
    /// A workspace for graphs of up to `node_count` nodes (it grows on demand).
    pub fn new(node_count: usize) -> Self {
        let mut w = Workspace::default();
        w.ensure(node_count);
        w
    }

    fn ensure(&mut self, n: usize) {
        if self.dist.len() < n {
            self.dist.resize(n, Millis::MAX);
            self.length.resize(n, 0.0);
            self.origin.resize(n, u32::MAX);
            self.stamp.resize(n, 0);
        }
    }

    fn next_generation(&mut self) {
        self.generation += 1;
        if self.generation >= DONE {
            // Wrapped after 2³¹ searches: clear the stamps once so stale ones never match.
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        self.heap.clear();
        self.settled.clear();
    }

    /// Runs Dijkstra from `seeds` and settles every node reachable within `limit_ms`
    /// (inclusive; `None` = no limit). Returns the number of settled nodes.
    ///
    /// With several seeds this is a multi-source search: each node ends with the time from its
    /// nearest source and that source's `origin`. Ties go to the smaller `origin`, then to the
    /// shorter path, so results do not depend on seed order or on the order edges are relaxed
    /// in (the incremental distance fold reaches the same labels in another order).
    pub fn run(&mut self, graph: &RoadGraph, seeds: &[Seed], limit_ms: Option<Millis>) -> usize {
        self.search::<true>(graph, seeds, limit_ms)
    }

    /// As [`Workspace::run`], but tracks times only: afterwards [`Workspace::length_m`] and
    /// [`Workspace::origin`] answer `None`. Times and the settling order are those of `run`.
    ///
    /// An isochrone needs no lengths, and looking up each relaxed edge's length (in its link)
    /// was half the cost of a search on large networks: one cache miss per edge.
    pub fn run_times(
        &mut self,
        graph: &RoadGraph,
        seeds: &[Seed],
        limit_ms: Option<Millis>,
    ) -> usize {
        self.search::<false>(graph, seeds, limit_ms)
    }

    /// The search; `FULL` tracks lengths and origins too.
    fn search<const FULL: bool>(
        &mut self,
        graph: &RoadGraph,
        seeds: &[Seed],
        limit_ms: Option<Millis>,
    ) -> usize {
        self.ensure(graph.node_count());
        self.next_generation();
        self.full = FULL;
        let limit = limit_ms.unwrap_or(Millis::MAX - 1);
        let generation = self.generation;
        for s in seeds {
            if s.time_ms > limit {
                continue;
            }
            let n = s.node as usize;
            let better = self.stamp[n] != generation
                || s.time_ms < self.dist[n]
                || (FULL
                    && s.time_ms == self.dist[n]
                    && (s.origin, s.length_m) < (self.origin[n], self.length[n]));
            if better {
                self.stamp[n] = generation;
                self.dist[n] = s.time_ms;
                if FULL {
                    self.length[n] = s.length_m;
                    self.origin[n] = s.origin;
                }
                self.heap.push(Reverse(pack(s.time_ms, s.node)));
            }
        }
        // Lazy deletion: a popped entry older than the node's best time, or for a node already
        // settled, is skipped.
        while let Some(Reverse(key)) = self.heap.pop() {
            let time = (key >> 32) as Millis;
            let node = key as u32;
            let u = node as usize;
            if time > self.dist[u] || self.is_done(u) {
                continue;
            }
            self.mark_done(u);
            self.settled.push(node);
            let (len_u, origin_u) = if FULL {
                (self.length[u], self.origin[u])
            } else {
                (0.0, 0)
            };
            for e in graph.out_edges(node) {
                let v = graph.head[e] as usize;
                let t = time.saturating_add(graph.time_ms[e]);
                if t > limit {
                    continue;
                }
                // Without origins, an equal time is no improvement (the times are the same).
                let sv = self.stamp[v];
                if sv == generation | DONE || (sv == generation && t > self.dist[v]) {
                    continue;
                }
                let len_v = if FULL {
                    len_u + graph.edge_length_m(e as u32)
                } else {
                    0.0
                };
                if sv == generation
                    && t == self.dist[v]
                    && (!FULL || (origin_u, len_v) >= (self.origin[v], self.length[v]))
                {
                    continue;
                }
                self.stamp[v] = generation;
                self.dist[v] = t;
                if FULL {
                    self.length[v] = len_v;
                    self.origin[v] = origin_u;
                }
                self.heap.push(Reverse(pack(t, v as NodeId)));
            }
        }
        self.settled.len()
    }

    #[inline]
    fn is_done(&self, u: usize) -> bool {
        self.stamp[u] == self.generation | DONE
    }

    #[inline]
    fn mark_done(&mut self, u: usize) {
        self.stamp[u] = self.generation | DONE;
    }

    /// The nodes settled by the last search, in settling order (non-decreasing time).
    pub fn settled(&self) -> &[NodeId] {
        &self.settled
    }

    /// Time to `node` in the last search, if it was settled.
    #[inline]
    pub fn time_ms(&self, node: NodeId) -> Option<Millis> {
        self.is_done(node as usize)
            .then(|| self.dist[node as usize])
    }

    /// Network length in metres of the fastest path to `node`, if it was settled (and the
    /// search was a [`Workspace::run`]).
    #[inline]
    pub fn length_m(&self, node: NodeId) -> Option<f64> {
        (self.full && self.is_done(node as usize)).then(|| self.length[node as usize])
    }

    /// The `origin` of the seed whose path reached `node` first, if it was settled (and the
    /// search was a [`Workspace::run`]).
    #[inline]
    pub fn origin(&self, node: NodeId) -> Option<u32> {
        (self.full && self.is_done(node as usize)).then(|| self.origin[node as usize])
    }
}

/// High bit of a stamp: the node is settled in that generation. Generations therefore count
/// to 2³¹ before they wrap (see [`Workspace::next_generation`]).
const DONE: u32 = 1 << 31;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::PlainEdge;
    use geo::Coord;

    fn graph(n: usize, edges: &[(u32, u32, u32)]) -> RoadGraph {
        let xy = (0..n)
            .map(|i| Coord {
                x: i as f64,
                y: 0.0,
            })
            .collect();
        let edges: Vec<_> = edges
            .iter()
            .map(|&(from, to, t)| PlainEdge {
                from,
                to,
                time_ms: t,
                length_m: t as f64 / 10.0,
                both_ways: false,
            })
            .collect();
        RoadGraph::from_edges(xy, &edges)
    }

    fn seed(node: u32, origin: u32) -> Seed {
        Seed {
            node,
            time_ms: 0,
            length_m: 0.0,
            origin,
        }
    }

    //   0 --5--> 1 --5--> 2
    //   |                 ^
    //   +--------12-------+      and 2 --1--> 3, 3 --100--> 4; 5 is unreachable
    #[test]
    fn shortest_times_lengths_and_unreachable() {
        let g = graph(
            6,
            &[(0, 1, 5), (1, 2, 5), (0, 2, 12), (2, 3, 1), (3, 4, 100)],
        );
        let mut w = Workspace::new(6);
        assert_eq!(w.run(&g, &[seed(0, 0)], None), 5);
        let times: Vec<_> = (0..6).map(|v| w.time_ms(v)).collect();
        assert_eq!(
            times,
            [Some(0), Some(5), Some(10), Some(11), Some(111), None]
        );
        assert_eq!(w.length_m(3), Some(1.1));
        assert_eq!(w.settled(), &[0, 1, 2, 3, 4]);
    }

    #[test]
    fn limit_is_inclusive_and_stops_the_search() {
        let g = graph(
            6,
            &[(0, 1, 5), (1, 2, 5), (0, 2, 12), (2, 3, 1), (3, 4, 100)],
        );
        let mut w = Workspace::new(6);
        assert_eq!(w.run(&g, &[seed(0, 0)], Some(10)), 3);
        assert_eq!(w.time_ms(2), Some(10));
        assert_eq!(w.time_ms(3), None);
        // The workspace resets between searches: a second search from 3 sees nothing of the first.
        assert_eq!(w.run(&g, &[seed(3, 0)], None), 2);
        assert_eq!(w.time_ms(0), None);
        assert_eq!(w.time_ms(4), Some(100));
    }

    #[test]
    fn one_way_edges_are_respected() {
        let g = graph(3, &[(0, 1, 5), (1, 2, 5)]);
        let mut w = Workspace::new(3);
        w.run(&g, &[seed(2, 0)], None);
        assert_eq!((w.time_ms(0), w.time_ms(1)), (None, None));
    }

    // Two sources on a line 0 - 1 - 2 - 3 - 4 (both directions, 10 ms each): nodes split
    // between them, the tie at node 2 goes to the smaller origin whatever the seed order.
    #[test]
    fn multi_source_labels_nearest_origin_and_breaks_ties_by_origin() {
        let mut edges = vec![];
        for v in 0..4 {
            edges.push((v, v + 1, 10));
            edges.push((v + 1, v, 10));
        }
        let g = graph(5, &edges);
        let mut w = Workspace::new(5);
        for seeds in [[seed(0, 7), seed(4, 3)], [seed(4, 3), seed(0, 7)]] {
            w.run(&g, &seeds, None);
            let origins: Vec<_> = (0..5).map(|v| w.origin(v).unwrap()).collect();
            assert_eq!(origins, [7, 7, 3, 3, 3]);
            assert_eq!(w.time_ms(2), Some(20));
        }
    }

    #[test]
    fn seeds_with_initial_cost() {
        let g = graph(3, &[(0, 1, 10), (2, 1, 10)]);
        let mut w = Workspace::new(3);
        let seeds = [
            Seed {
                node: 0,
                time_ms: 4,
                length_m: 1.0,
                origin: 0,
            },
            Seed {
                node: 2,
                time_ms: 1,
                length_m: 2.0,
                origin: 1,
            },
        ];
        w.run(&g, &seeds, None);
        assert_eq!((w.time_ms(1), w.origin(1)), (Some(11), Some(1)));
        assert_eq!(w.length_m(1), Some(3.0));
    }

    /// Random graphs against petgraph's Dijkstra (an independent implementation).
    #[test]
    fn agrees_with_petgraph_on_random_graphs() {
        let mut rng = crate::testdata::XorShift(0x9E37_79B9_7F4A_7C15);
        let mut rnd = move |m: u64| rng.below(m);
        let mut w = Workspace::default();
        for _ in 0..50 {
            let n = 2 + rnd(200) as u32;
            let m = rnd(4 * n as u64) as usize;
            let edges: Vec<_> = (0..m)
                .map(|_| {
                    (
                        rnd(n as u64) as u32,
                        rnd(n as u64) as u32,
                        1 + rnd(1000) as u32,
                    )
                })
                .collect();
            let g = graph(n as usize, &edges);
            let mut pg = petgraph::graph::DiGraph::<(), u32>::new();
            let ids: Vec<_> = (0..n).map(|_| pg.add_node(())).collect();
            for &(a, b, t) in &edges {
                pg.add_edge(ids[a as usize], ids[b as usize], t);
            }
            let src = rnd(n as u64) as u32;
            let expect = petgraph::algo::dijkstra(&pg, ids[src as usize], None, |e| *e.weight());
            w.run(&g, &[seed(src, 0)], None);
            for v in 0..n {
                assert_eq!(
                    w.time_ms(v),
                    expect.get(&ids[v as usize]).copied(),
                    "node {v}"
                );
            }
            // The times-only search settles the same nodes in the same order at the same
            // times, with a limit too, and reports no lengths or origins.
            let limit = Some(rnd(2000) as u32);
            w.run(&g, &[seed(src, 0)], limit);
            let full: Vec<_> = w.settled().iter().map(|&v| (v, w.time_ms(v))).collect();
            assert!(w.length_m(src).is_some() || full.is_empty());
            w.run_times(&g, &[seed(src, 0)], limit);
            let times: Vec<_> = w.settled().iter().map(|&v| (v, w.time_ms(v))).collect();
            assert_eq!(times, full);
            assert_eq!((w.length_m(src), w.origin(src)), (None, None));
        }
    }
}
