//! Bounded searches from up to [`LANES`] sources at once, each source in its own lane.
//!
//! POIs of one cluster lie close together, so their searches settle nearly the same nodes and
//! relax the same edges in nearly the same order. A lane search walks the graph once for all
//! of them: every node holds one time per lane, and relaxing an edge updates all lanes at
//! once (branch-free code over a fixed-size array; AVX2 instructions, eight lanes each, where
//! the CPU has them). The edges, the queue and the cache misses are paid once per group
//! instead of once per source.
//!
//! The order is a compromise: a node is queued with the latest of the lane times an edge
//! just improved there (or its earlier key, if smaller), so it can be scanned before another
//! lane's time at it is final. It is then scanned again when that lane improves (a
//! label-correcting search). Every lane therefore ends with exactly the times a separate
//! Dijkstra from its source computes — the same integer sums of the same edge times — and the
//! work grows only with how differently the lanes travel. Keying by the latest improved lane
//! rather than the earliest lets the other lanes' times settle first: on a synthetic region
//! at a million POIs' density, 2.07 scans per settled node for 16 lanes instead of 2.75
//! (the routing bench's lane line).

use super::dijkstra::Seed;
use super::{Millis, NodeId, RoadGraph};

/// Number of lanes of a [`LaneSearch`]: sixteen 4-byte times fill one 64-byte cache line.
pub const LANES: usize = 16;

/// One time per lane.
pub type LaneTimes = [Millis; LANES];

/// A lane's time at a node it does not reach within the limit. It is far above any limit
/// (at most two hours) and leaves room for adding an edge time clamped to the limit without
/// overflow.
pub const UNREACHED: Millis = 1 << 30;

/// Reusable per-thread state of lane searches.
#[derive(Clone, Debug, Default)]
pub struct LaneSearch {
    times: Vec<LaneTimes>,
    /// The generation in which `times` and `queued` of a node were set.
    stamp: Vec<u32>,
    /// The key a node is queued with, or [`UNREACHED`] when it is not queued.
    queued: Vec<Millis>,
    generation: u32,
    queue: BucketQueue,
    touched: Vec<NodeId>,
    scans: usize,
}

#[inline]
fn pack(time: Millis, node: NodeId) -> u64 {
    ((time as u64) << 32) | node as u64
}

/// The queue of a lane search: entries `(key, node)` ([`pack`]ed) in buckets of keys `2^shift`
/// ms wide, taken from the lowest non-empty bucket, last in first out within it.
///
/// A binary heap spent a quarter of the search's time sifting. Exact order is not needed: the
/// search is label-correcting (a node scanned too early is scanned again when a lane improves
/// it), so the order only decides how much work is repeated. Road edges take seconds, so
/// nodes whose keys lie within one 128 ms bucket hardly ever improve one another (the routing
/// bench at a 262k-POI window's density: 3.57 scans per settled node, 3.58 with the heap; the
/// search 25 % faster). Keys below the lowest bucket still in use (a lane catching up) go into
/// it.
#[derive(Clone, Debug, Default)]
struct BucketQueue {
    buckets: Vec<Vec<u64>>,
    shift: u32,
    /// The lowest bucket that may hold entries.
    cursor: usize,
}

impl BucketQueue {
    /// Empties the queue for keys up to `limit`, in at most about 16k buckets.
    fn reset(&mut self, limit: Millis) {
        self.shift = 7;
        while (limit >> self.shift) >= 1 << 14 {
            self.shift += 1;
        }
        let n = (limit >> self.shift) as usize + 1;
        self.buckets.truncate(n);
        for b in &mut self.buckets {
            b.clear();
        }
        self.buckets.resize_with(n, Vec::new);
        self.cursor = 0;
    }

    /// Queues a packed entry whose key is at most the `limit` of the last reset.
    #[inline]
    fn push(&mut self, entry: u64) {
        let b = ((entry >> 32) as usize >> self.shift).max(self.cursor);
        self.buckets[b].push(entry);
    }

    /// Takes an entry of the lowest non-empty bucket.
    #[inline]
    fn pop(&mut self) -> Option<u64> {
        while let Some(bucket) = self.buckets.get_mut(self.cursor) {
            if let Some(entry) = bucket.pop() {
                return Some(entry);
            }
            self.cursor += 1;
        }
        None
    }
}

impl LaneSearch {
    /// Searches from every lane's `seeds` (at most [`LANES`] lanes; missing lanes reach
    /// nothing) and finds, per lane, every node reachable within `limit_ms` (inclusive) with
    /// its time.
    pub fn run(&mut self, graph: &RoadGraph, seeds: &[Vec<Seed>], limit_ms: Millis) {
        assert!(seeds.len() <= LANES, "at most {LANES} lanes");
        assert!(limit_ms < UNREACHED, "limit below {UNREACHED} ms");
        let n = graph.node_count();
        if self.stamp.len() < n {
            self.times.resize(n, [UNREACHED; LANES]);
            self.stamp.resize(n, 0);
            self.queued.resize(n, UNREACHED);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Wrapped after 2³² searches: clear the stamps once so stale ones never match.
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.generation = 1;
        }
        self.queue.reset(limit_ms);
        self.touched.clear();
        self.scans = 0;
        for (lane, lane_seeds) in seeds.iter().enumerate() {
            for s in lane_seeds {
                if s.time_ms > limit_ms {
                    continue;
                }
                let v = s.node as usize;
                self.touch(v);
                if s.time_ms < self.times[v][lane] {
                    self.times[v][lane] = s.time_ms;
                    self.enqueue(v, s.time_ms);
                }
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            unsafe { self.settle_avx2(graph, limit_ms) };
            return;
        }
        self.settle::<false>(graph, limit_ms);
    }

    #[inline]
    fn touch(&mut self, v: usize) {
        if self.stamp[v] != self.generation {
            self.stamp[v] = self.generation;
            self.times[v] = [UNREACHED; LANES];
            self.queued[v] = UNREACHED;
            self.touched.push(v as NodeId);
        }
    }

    #[inline]
    fn enqueue(&mut self, v: usize, key: Millis) {
        if key < self.queued[v] {
            self.queued[v] = key;
            self.queue.push(pack(key, v as NodeId));
        }
    }

    /// [`LaneSearch::settle`] compiled for AVX2: eight lanes per instruction.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn settle_avx2(&mut self, graph: &RoadGraph, limit_ms: Millis) {
        self.settle::<true>(graph, limit_ms);
    }

    /// Scans queued nodes in key order until none is left. `AVX2`: relax edges with AVX2
    /// instructions, which only [`LaneSearch::settle_avx2`] may ask for.
    #[inline(always)]
    fn settle<const AVX2: bool>(&mut self, graph: &RoadGraph, limit: Millis) {
        while let Some(key) = self.queue.pop() {
            let time = (key >> 32) as Millis;
            let u = key as u32 as usize;
            // A node is queued once, with its earliest pending key; older entries are stale.
            if self.queued[u] != time {
                continue;
            }
            self.queued[u] = UNREACHED;
            self.scans += 1;
            let tu = self.times[u];
            for e in graph.out_edges(u as NodeId) {
                let v = graph.head[e] as usize;
                // Clamped so that UNREACHED + w cannot overflow; anything above the limit is
                // out of reach anyway.
                let w = graph.time_ms[e].min(limit + 1);
                self.touch(v);
                let tv = &mut self.times[v];
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `AVX2` is true only in `settle_avx2`, called once the CPU is known
                // to have AVX2.
                let key = if AVX2 {
                    unsafe { relax_avx2(&tu, tv, w, limit) }
                } else {
                    relax(&tu, tv, w, limit)
                };
                #[cfg(not(target_arch = "x86_64"))]
                let key = relax(&tu, tv, w, limit);
                if key > 0 {
                    self.enqueue(v, key - 1);
                }
            }
        }
    }

    /// The nodes the last search touched (reached in some lane, or tried and found too far),
    /// in no particular order.
    pub fn touched(&self) -> &[NodeId] {
        &self.touched
    }

    /// The lane times at `node` after the last search ([`UNREACHED`] in lanes that do not
    /// reach it within the limit).
    #[inline]
    pub fn times(&self, node: NodeId) -> &LaneTimes {
        const NONE: LaneTimes = [UNREACHED; LANES];
        if self.stamp[node as usize] == self.generation {
            &self.times[node as usize]
        } else {
            &NONE
        }
    }

    /// How many node scans the last search made: the settled nodes of the slowest lane at
    /// best, more when lanes disagree about the order.
    pub fn scans(&self) -> usize {
        self.scans
    }
}

/// Relaxes an edge of time `w` from a node with lane times `tu` into a node with lane times
/// `tv`: every lane keeps the earlier of its time and `tu + w` (times past `limit` count as
/// [`UNREACHED`]). Returns the queue key for the head: the latest of the lane times the edge
/// improved, plus one (0: none improved).
#[inline(always)]
fn relax(tu: &LaneTimes, tv: &mut LaneTimes, w: Millis, limit: Millis) -> Millis {
    // Branch-free over whole arrays: a branch per lane is taken at random and mispredicted.
    let mut keys = [0; LANES];
    let mut next = *tv;
    for lane in 0..LANES {
        let t = tu[lane] + w;
        let t = if t > limit { UNREACHED } else { t };
        keys[lane] = if t < next[lane] { t + 1 } else { 0 };
        next[lane] = next[lane].min(t);
    }
    *tv = next;
    keys.into_iter().fold(0, Millis::max)
}

/// [`relax`] in AVX2 instructions, eight lanes at a time. All values stay below 2³¹
/// (times at most [`UNREACHED`], `w` at most `limit + 1`), so signed comparisons order them.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn relax_avx2(tu: &LaneTimes, tv: &mut LaneTimes, w: Millis, limit: Millis) -> Millis {
    use std::arch::x86_64::*;
    const _: () = assert!(LANES == 16 && UNREACHED < 1 << 31);
    let w = _mm256_set1_epi32(w as i32);
    let limit = _mm256_set1_epi32(limit as i32);
    let unreached = _mm256_set1_epi32(UNREACHED as i32);
    let one = _mm256_set1_epi32(1);
    let mut keys = _mm256_setzero_si256();
    for half in 0..2 {
        // SAFETY: `tu` and `tv` hold 16 lanes, two loads or stores of 8 each; unaligned
        // accesses are allowed.
        let (from, to) = unsafe {
            (
                tu.as_ptr().add(8 * half) as *const __m256i,
                tv.as_mut_ptr().add(8 * half) as *mut __m256i,
            )
        };
        let t = _mm256_add_epi32(unsafe { _mm256_loadu_si256(from) }, w);
        let t = _mm256_blendv_epi8(t, unreached, _mm256_cmpgt_epi32(t, limit));
        let old = unsafe { _mm256_loadu_si256(to) };
        let better = _mm256_cmpgt_epi32(old, t);
        unsafe { _mm256_storeu_si256(to, _mm256_min_epi32(old, t)) };
        keys = _mm256_max_epi32(keys, _mm256_and_si256(better, _mm256_add_epi32(t, one)));
    }
    // Horizontal maximum of the eight keys.
    let k = _mm_max_epi32(
        _mm256_castsi256_si128(keys),
        _mm256_extracti128_si256(keys, 1),
    );
    let k = _mm_max_epi32(k, _mm_shuffle_epi32(k, 0b01_00_11_10));
    let k = _mm_max_epi32(k, _mm_shuffle_epi32(k, 0b10_11_00_01));
    _mm_cvtsi128_si32(k) as Millis
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::PlainEdge;
    use crate::graph::dijkstra::Workspace;
    use geo::Coord;

    /// A pseudo-random road-like graph: a jittered grid with some one-way streets and
    /// diagonals, deterministic in `seed`.
    fn grid(side: u32, seed: u64) -> RoadGraph {
        let mut state = seed;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let id = |i: u32, j: u32| i * side + j;
        let xy = (0..side * side)
            .map(|k| Coord {
                x: (k / side) as f64 * 100.0,
                y: (k % side) as f64 * 100.0,
            })
            .collect();
        let mut edges = Vec::new();
        for i in 0..side {
            for j in 0..side {
                for (di, dj) in [(1, 0), (0, 1), (1, 1)] {
                    let (a, b) = (i + di, j + dj);
                    if a >= side || b >= side || (di + dj == 2 && next() % 4 != 0) {
                        continue;
                    }
                    let r = next();
                    edges.push(PlainEdge {
                        from: id(i, j),
                        to: id(a, b),
                        time_ms: 1 + (r % 20_000) as u32,
                        length_m: 100.0,
                        both_ways: r % 7 != 0,
                    });
                }
            }
        }
        RoadGraph::from_edges(xy, &edges)
    }

    #[test]
    fn every_lane_equals_its_own_dijkstra() {
        for (side, lanes, limit) in [(30u32, 16usize, 90_000), (25, 5, 40_000), (12, 1, 30_000)] {
            let g = grid(side, 7 + side as u64);
            let n = g.node_count() as u32;
            // Sources in one corner region, two seeds each (as a POI snapped inside a link).
            let seeds: Vec<Vec<Seed>> = (0..lanes as u32)
                .map(|l| {
                    let a = (l * 37) % (n / 3);
                    vec![
                        Seed {
                            node: a,
                            time_ms: 100 * l,
                            length_m: 0.0,
                            origin: l,
                        },
                        Seed {
                            node: (a + 1) % n,
                            time_ms: 2_000,
                            length_m: 0.0,
                            origin: l,
                        },
                    ]
                })
                .collect();
            let mut search = LaneSearch::default();
            search.run(&g, &seeds, limit);
            let mut reached_somewhere = 0;
            for (lane, s) in seeds.iter().enumerate() {
                let mut dijkstra = Workspace::new(g.node_count());
                let settled = dijkstra.run_times(&g, s, Some(limit));
                let mut in_lane = 0;
                for v in 0..n {
                    let want = dijkstra.time_ms(v).unwrap_or(UNREACHED);
                    assert_eq!(search.times(v)[lane], want, "lane {lane} node {v}");
                    in_lane += usize::from(want != UNREACHED);
                }
                assert_eq!(in_lane, settled);
                reached_somewhere = reached_somewhere.max(settled);
            }
            assert!(reached_somewhere > 10, "the limit reaches past the sources");
            for lane in lanes..LANES {
                assert!(
                    search
                        .touched()
                        .iter()
                        .all(|&v| search.times(v)[lane] == UNREACHED)
                );
            }
            assert!(search.scans() >= reached_somewhere);
        }
    }

    #[test]
    fn vector_relax_equals_scalar_relax() {
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            let mut rng = crate::testdata::XorShift(99);
            let time = |rng: &mut crate::testdata::XorShift| match rng.below(4) {
                0 => UNREACHED,
                _ => rng.below(100_000) as Millis,
            };
            let mut improved = 0;
            for _ in 0..20_000 {
                let tu: LaneTimes = std::array::from_fn(|_| time(&mut rng));
                let tv: LaneTimes = std::array::from_fn(|_| time(&mut rng));
                let limit = 1 + rng.below(100_000) as Millis;
                let w = (rng.below(30_000) as Millis).min(limit + 1);
                let (mut scalar, mut vector) = (tv, tv);
                let key = relax(&tu, &mut scalar, w, limit);
                // SAFETY: the CPU has AVX2, checked above.
                assert_eq!(unsafe { relax_avx2(&tu, &mut vector, w, limit) }, key);
                assert_eq!(vector, scalar);
                improved += usize::from(key > 0);
            }
            assert!(improved > 1000, "{improved}");
        }
    }

    #[test]
    fn a_second_search_forgets_the_first() {
        let g = grid(10, 3);
        let seed = |node| {
            vec![Seed {
                node,
                time_ms: 0,
                length_m: 0.0,
                origin: 0,
            }]
        };
        let mut search = LaneSearch::default();
        search.run(&g, &[seed(0), seed(99)], 1_000_000);
        search.run(&g, &[seed(5)], 0);
        for v in 0..100 {
            let want = if v == 5 { 0 } else { UNREACHED };
            assert_eq!(search.times(v)[0], want);
            assert_eq!(search.times(v)[1], UNREACHED);
        }
    }
}
