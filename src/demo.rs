//! The embedded synthetic town: a deterministic road network, block groups, ACS values and POIs made by the project itself, so the whole job runs with no files and no internet.
//!
//! The town is a street grid laid out in EPSG:5070 metres around [`CENTER`] (central Illinois
//! farmland) and converted to lon/lat with [`from_5070`]. It carries the cases a real extract
//! has and a test wants to see:
//!
//! - residential streets with jittered nodes and a few missing segments (dead ends);
//! - every 6th street an arterial (`primary` north–south, `secondary` east–west, `35 mph`),
//!   ways split where arterials cross, as OSM ways usually are;
//! - a pair of one-way streets in opposite directions, and a roundabout on an arterial
//!   crossing;
//! - a motorway (`I 99`, two one-way carriageways) along the south side, with `motorway_link`
//!   ramps at every other arterial;
//! - a river across the town that no road crosses except three `bridge=yes` ways;
//! - a park, its own block group with no people, with `footway` paths and no streets inside;
//! - a private driveway (`highway=service`, `access=private`);
//! - block groups of about 4×3 blocks, some L-shaped, one with the park as a hole, plus one
//!   rural block group west of town with no road under it;
//! - POIs near streets, and one POI in that rural block group, kilometres from any road, so
//!   the demo shows a reject.
//!
//! Everything comes from a hand-rolled splitmix64 generator keyed by the spec's seed and the
//! element's grid position, so the same spec gives the same town bit for bit (on one
//! platform: lon/lat go through `libm` trigonometry), and work and memory are O(size). Small
//! towns leave out features with no room (a river needs 3 block rows, a park a full 4×3
//! block group...).

use crate::census::{AcsTable, BlockGroup};
use crate::geom::albers::{from_5070, to_5070};
use crate::osm::{OsmRoads, OsmWay};
use crate::types::Poi;
use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Where the town's centre lies, (lon, lat) degrees.
pub const CENTER: (f64, f64) = (-89.5, 40.0);

/// The ACS variables of [`Town::acs`], in column order: total population, median household
/// income, median age, median home value.
pub const ACS_VARIABLES: [&str; 4] = ["B01003_001E", "B19013_001E", "B01002_001E", "B25077_001E"];

/// What town to make.
///
/// Node count: about `2.97 · blocks_x · blocks_y + 2 · (blocks_x + blocks_y)`. Each block
/// brings an intersection and one shape node on each of the two street segments leaving it
/// east and north (3), less about 1% for missing segments and the river; the outer streets,
/// motorway and ramps add O(`blocks_x + blocks_y`). Measured: 1,420 nodes for the default
/// 24×18 (3.29 per block), 3.01 per block at 96×72, within 3% of
/// [`TownSpec::approx_nodes`]; [`TownSpec::with_nodes`] inverts it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TownSpec {
    /// Blocks west to east (clamped to 1–65,535).
    pub blocks_x: u32,
    /// Blocks south to north (clamped to 1–65,535).
    pub blocks_y: u32,
    /// Block side in metres (clamped to 20–5,000; 120 when not finite).
    pub block_m: f64,
    /// POIs placed in town (libraries and clinics), besides the one off-network POI.
    pub poi_count: usize,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for TownSpec {
    /// A small town: 24×18 blocks of 120 m (2.9 × 2.2 km, 1,420 road nodes), 8 POIs.
    fn default() -> Self {
        TownSpec {
            blocks_x: 24,
            blocks_y: 18,
            block_m: 120.0,
            poi_count: 8,
            seed: 42,
        }
    }
}

impl TownSpec {
    /// Estimated road-node count of the town this spec makes (within a few percent).
    pub fn approx_nodes(&self) -> usize {
        let (x, y) = (
            self.blocks_x.clamp(1, MAX_BLOCKS) as usize,
            self.blocks_y.clamp(1, MAX_BLOCKS) as usize,
        );
        // 3 nodes per block, minus ~1% for missing segments and river, plus the edges.
        (2.97 * (x * y) as f64) as usize + 2 * (x + y) + 40
    }

    /// A square town of about `nodes` road nodes (at least 12×12 blocks), default block size
    /// and POIs, for benchmarks such as `socialmapper synth --nodes N`.
    pub fn with_nodes(nodes: usize) -> TownSpec {
        let side = ((nodes as f64 / 2.97).sqrt().round() as u32).max(12);
        TownSpec {
            blocks_x: side,
            blocks_y: side,
            ..TownSpec::default()
        }
    }
}

/// The synthetic town: everything a run needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Town {
    /// Highway ways and their nodes, as read from an OSM extract.
    pub roads: OsmRoads,
    /// Block groups of fictional state 99, county 001, tracts 000100 on.
    pub block_groups: Vec<BlockGroup>,
    /// Values of [`ACS_VARIABLES`] for every block group.
    pub acs: AcsTable,
    /// The POIs: `poi_count` in town, then one off the network.
    pub pois: Vec<Poi>,
}

/// Makes the town of `spec`. Deterministic; O(blocks + POIs) time and memory. Measured
/// (release, one core): 1.0 M nodes in 0.7 s and 140 MB peak, 3.0 M in 2.0 s and 360 MB,
/// 10 M in 8 s and 1.2 GB.
pub fn synthetic_town(spec: &TownSpec) -> Town {
    let lay = Layout::new(spec);
    let roads = Roads::build(&lay);
    let (block_groups, infos) = block_groups(&lay);
    let acs = acs_table(&lay, &block_groups, &infos);
    let pois = pois(&lay, spec.poi_count);
    Town {
        roads,
        block_groups,
        acs,
        pois,
    }
}

// ---------------------------------------------------------------- randomness

/// splitmix64's output function: a good 64-bit mix of `z`.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A hash of (seed, what, i, j): randomness tied to a grid position instead of to the order
/// of generation, so every element can be made independently.
fn hash4(seed: u64, salt: u64, i: u64, j: u64) -> u64 {
    mix(mix(mix(seed ^ mix(salt)).wrapping_add(i)).wrapping_add(j))
}

/// A uniform value in [0, 1) from 53 bits of `h`.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A uniform value in [-1, 1).
fn signed(h: u64) -> f64 {
    2.0 * unit(h) - 1.0
}

/// splitmix64, for short sequences of draws (one POI, one block group's values).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0.wrapping_sub(0x9e37_79b9_7f4a_7c15))
    }
    fn unit(&mut self) -> f64 {
        unit(self.next())
    }
    fn below(&mut self, n: u32) -> u32 {
        (self.unit() * f64::from(n)) as u32
    }
}

// Salts of `hash4`, one per use.
const S_JITTER_X: u64 = 1;
const S_JITTER_Y: u64 = 2;
const S_DROP_EW: u64 = 3;
const S_DROP_NS: u64 = 4;
const S_TRANSFER: u64 = 5;
const S_ACS: u64 = 6;
const S_POI: u64 = 7;
/// Shape nodes of east–west segments (this along the street, +1 across).
const S_MID_EW: u64 = 10;
/// Shape nodes of north–south segments (this along the street, +1 across).
const S_MID_NS: u64 = 20;
/// Added to a drop salt: what remains of a dropped segment.
const S_REMNANT: u64 = 100;

// ---------------------------------------------------------------- layout

const NODE_BASE: i64 = 1_000_000_000;
const WAY_BASE: i64 = 100_000_000;
/// Most blocks per side: 65,535² blocks would be 13 billion nodes, far past any memory, and
/// the cap keeps every grid index within `u32`/`i64` arithmetic.
const MAX_BLOCKS: u32 = 65_535;
/// Width of the rural block group west of town.
const RURAL_WIDTH_M: f64 = 8_000.0;
/// Share of residential segments left out.
const DROP_RATE: f64 = 0.04;
/// Columns and rows of a block group cell, in blocks.
const CELL_W: u32 = 4;
const CELL_H: u32 = 3;

/// What is left of a street segment.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Seg {
    /// The whole segment, through its shape node.
    Full,
    /// Nothing.
    Gap,
    /// From its start to its shape node: a dead end.
    NearHalf,
    /// From its shape node to its end: a dead end.
    FarHalf,
    /// A straight bridge, its own way.
    Bridge,
}

/// Streets `k` with `k % 6 == 3` are arterials.
fn arterial(k: u32) -> bool {
    k % 6 == 3
}

/// Where everything goes, in blocks; decided once from the spec.
struct Layout {
    bx: u32,
    by: u32,
    /// Block side, metres.
    b: f64,
    seed: u64,
    /// EPSG:5070 position of the south-west street corner (local 0, 0).
    origin: Coord<f64>,
    /// Block row the river runs through: local y in `[r + 0.25, r + 0.75] · b`.
    river: Option<u32>,
    /// Columns whose segment across the river is a bridge.
    bridges: Vec<u32>,
    /// South-west block of the 2×1-block park.
    park: Option<(u32, u32)>,
    /// Arterial crossing replaced by a roundabout.
    roundabout: Option<(u32, u32)>,
    /// Street row `j` one-way eastbound, `j + 1` one-way westbound.
    oneway: Option<u32>,
    /// East–west segment (i, j) from which the private driveway leaves north.
    service: Option<(u32, u32)>,
    /// Arterial columns with motorway ramps.
    interchanges: Vec<u32>,
}

impl Layout {
    fn new(spec: &TownSpec) -> Layout {
        let (bx, by) = (
            spec.blocks_x.clamp(1, MAX_BLOCKS),
            spec.blocks_y.clamp(1, MAX_BLOCKS),
        );
        let b = if spec.block_m.is_finite() {
            spec.block_m.clamp(20.0, 5_000.0)
        } else {
            120.0
        };
        let c = to_5070(CENTER.0, CENTER.1);
        let origin = Coord {
            x: c.x - f64::from(bx) * b / 2.0,
            y: c.y - f64::from(by) * b / 2.0,
        };
        let river = (by >= 3).then_some(2 * by / 3);
        let mut lay = Layout {
            bx,
            by,
            b,
            seed: spec.seed,
            origin,
            river,
            bridges: Vec::new(),
            park: None,
            roundabout: None,
            oneway: None,
            service: None,
            interchanges: (3..=bx).step_by(12).collect(),
        };
        if river.is_some() {
            lay.bridges = lay.bridge_columns();
        }
        lay.park = lay.choose_park();
        lay.roundabout = lay.choose_roundabout();
        lay.oneway = lay.choose_oneway();
        lay.service = lay.choose_service();
        lay
    }

    /// The arterial nearest the middle and two residential streets at 1/5 and 4/5.
    fn bridge_columns(&self) -> Vec<u32> {
        let half = self.bx / 2;
        let main = (0..=self.bx)
            .filter(|&i| arterial(i))
            .min_by_key(|&i| i.abs_diff(half));
        let mut out: Vec<u32> = Vec::new();
        for want in [
            main.unwrap_or(half),
            (self.bx + 2) / 5,
            (4 * self.bx + 2) / 5,
        ] {
            let mut col = want;
            while out.contains(&col) && col < self.bx {
                col += 1;
            }
            if !out.contains(&col) {
                out.push(col);
            }
        }
        out.sort_unstable();
        out
    }

    fn near_center(&self, (i, j): (u32, u32)) -> u64 {
        let (di, dj) = (
            u64::from((2 * i).abs_diff(self.bx)),
            u64::from((2 * j).abs_diff(self.by)),
        );
        di * di + dj * dj
    }

    /// A full 4×3 block-group cell nearest the centre whose middle row is dry.
    fn choose_park(&self) -> Option<(u32, u32)> {
        let cells =
            (0..self.by / CELL_H).flat_map(|cy| (0..self.bx / CELL_W).map(move |cx| (cx, cy)));
        cells
            .map(|(cx, cy)| (CELL_W * cx + 1, CELL_H * cy + 1))
            .filter(|&(_, py)| self.river != Some(py))
            .min_by_key(|&(px, py)| (self.near_center((px + 1, py)), py, px))
    }

    /// Whether intersection (i, j) is a corner of the park or an end of its central path.
    fn park_node(&self, i: u32, j: u32) -> bool {
        self.park
            .is_some_and(|(px, py)| (px..=px + 2).contains(&i) && (py..=py + 1).contains(&j))
    }

    fn park_block(&self, i: u32, j: u32) -> bool {
        self.park
            .is_some_and(|(px, py)| j == py && (px..px + 2).contains(&i))
    }

    fn near_river(&self, j: u32) -> bool {
        self.river.is_some_and(|r| j == r || j == r + 1)
    }

    fn choose_roundabout(&self) -> Option<(u32, u32)> {
        let rows = (1..self.by).filter(|&j| arterial(j) && !self.near_river(j));
        rows.flat_map(|j| (1..self.bx).filter(|&i| arterial(i)).map(move |i| (i, j)))
            .filter(|&(i, j)| !self.park_node(i, j))
            .min_by_key(|&(i, j)| (self.near_center((i, j)), j, i))
    }

    fn choose_oneway(&self) -> Option<u32> {
        let ok = |j: u32| !arterial(j) && !self.near_river(j);
        (1..self.by.saturating_sub(1))
            .filter(|&j| ok(j) && ok(j + 1))
            .min_by_key(|&j| ((3 * j).abs_diff(self.by), j))
    }

    fn oneway_row(&self, j: u32) -> bool {
        self.oneway.is_some_and(|o| j == o || j == o + 1)
    }

    fn choose_service(&self) -> Option<(u32, u32)> {
        let j = (1..self.by)
            .filter(|&j| !arterial(j) && !self.oneway_row(j) && self.river != Some(j))
            .min_by_key(|&j| ((4 * j).abs_diff(self.by), j))?;
        (0..self.bx)
            .map(|k| (self.bx / 2 + k) % self.bx)
            .find(|&i| !self.park_block(i, j))
            .map(|i| (i, j))
    }

    /// Whether a residential street segment is left out (a dead end or a gap in the grid).
    fn dropped_ew(&self, i: u32, j: u32) -> bool {
        !arterial(j)
            && !self.oneway_row(j)
            && self.service != Some((i, j))
            && unit(hash4(self.seed, S_DROP_EW, i.into(), j.into())) < DROP_RATE
    }

    fn dropped_ns(&self, i: u32, j: u32) -> bool {
        !arterial(i) && unit(hash4(self.seed, S_DROP_NS, i.into(), j.into())) < DROP_RATE
    }

    /// What stays of a dropped segment: nothing (a gap in the grid, leaving T-junctions) or
    /// one half (a dead-end stub), a third of the time each.
    fn remnant(&self, salt: u64, i: u32, j: u32) -> Seg {
        match hash4(self.seed, salt + S_REMNANT, i.into(), j.into()) % 3 {
            0 => Seg::Gap,
            1 => Seg::NearHalf,
            _ => Seg::FarHalf,
        }
    }

    /// Local metres → (lon, lat).
    fn lonlat(&self, x: f64, y: f64) -> (f64, f64) {
        from_5070(Coord {
            x: self.origin.x + x,
            y: self.origin.y + y,
        })
    }

    // Grid node ids: intersections, then the shape node of each east–west segment, then that
    // of each north–south segment; other nodes are numbered after them.
    fn n_inter(&self) -> i64 {
        i64::from(self.bx + 1) * i64::from(self.by + 1)
    }
    fn n_ew(&self) -> i64 {
        i64::from(self.bx) * i64::from(self.by + 1)
    }
    fn inter(&self, i: u32, j: u32) -> i64 {
        NODE_BASE + i64::from(j) * i64::from(self.bx + 1) + i64::from(i)
    }
    fn ew_mid(&self, i: u32, j: u32) -> i64 {
        NODE_BASE + self.n_inter() + i64::from(j) * i64::from(self.bx) + i64::from(i)
    }
    fn ns_mid(&self, i: u32, j: u32) -> i64 {
        NODE_BASE
            + self.n_inter()
            + self.n_ew()
            + i64::from(j) * i64::from(self.bx + 1)
            + i64::from(i)
    }
    fn first_extra_id(&self) -> i64 {
        NODE_BASE + self.n_inter() + self.n_ew() + i64::from(self.bx + 1) * i64::from(self.by)
    }

    /// Local position of grid node `id`: intersections move up to 4% of a block, shape nodes
    /// 10% along and 4% across their street.
    fn grid_xy(&self, id: i64) -> (f64, f64) {
        let mut k = (id - NODE_BASE) as u64;
        let (w, b) = (u64::from(self.bx), self.b);
        let jit = |salt: u64, i: u64, j: u64| signed(hash4(self.seed, salt, i, j));
        if k < self.n_inter() as u64 {
            let (i, j) = (k % (w + 1), k / (w + 1));
            let dx = 0.04 * jit(S_JITTER_X, i, j);
            let dy = 0.04 * jit(S_JITTER_Y, i, j);
            return ((i as f64 + dx) * b, (j as f64 + dy) * b);
        }
        k -= self.n_inter() as u64;
        let (i, j, along_x) = if k < self.n_ew() as u64 {
            (k % w, k / w, true)
        } else {
            k -= self.n_ew() as u64;
            (k % (w + 1), k / (w + 1), false)
        };
        let salt = if along_x { S_MID_EW } else { S_MID_NS };
        let (along, across) = (0.5 + 0.1 * jit(salt, i, j), 0.04 * jit(salt + 1, i, j));
        if along_x {
            ((i as f64 + along) * b, (j as f64 + across) * b)
        } else {
            ((i as f64 + across) * b, (j as f64 + along) * b)
        }
    }
}

// ---------------------------------------------------------------- roads

/// `[("k", "v")]` → owned OSM tags.
fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The roundabout: its centre intersection and, for each approach, the street's shape node
/// next to the centre and the ring node the street ends at instead.
struct Ring {
    center: i64,
    legs: [(i64, i64); 4],
}

/// Builds [`OsmRoads`]: coordinates are resolved when a way first uses a node, so nodes no
/// way uses (the river gaps, the roundabout's centre) never appear.
struct Roads<'a> {
    lay: &'a Layout,
    roads: OsmRoads,
    next_node: i64,
    next_way: i64,
    ring: Option<Ring>,
}

impl<'a> Roads<'a> {
    fn build(lay: &'a Layout) -> OsmRoads {
        let mut r = Roads {
            lay,
            roads: OsmRoads::default(),
            next_node: lay.first_extra_id(),
            next_way: WAY_BASE,
            ring: None,
        };
        r.roads.nodes.reserve(TownSpec::approx_nodes(&TownSpec {
            blocks_x: lay.bx,
            blocks_y: lay.by,
            ..TownSpec::default()
        }));
        r.roundabout();
        r.east_west_streets();
        r.north_south_streets();
        r.park_paths();
        r.driveway();
        r.motorway();
        r.roads
    }

    /// A node that is not on the street grid.
    fn new_node(&mut self, x: f64, y: f64) -> i64 {
        let id = self.next_node;
        self.next_node += 1;
        self.roads.nodes.insert(id, self.lay.lonlat(x, y));
        id
    }

    fn way(&mut self, nodes: Vec<i64>, tags: Vec<(String, String)>) {
        if nodes.len() < 2 {
            return;
        }
        let lay = self.lay;
        for &id in &nodes {
            self.roads.nodes.entry(id).or_insert_with(|| {
                let (x, y) = lay.grid_xy(id);
                lay.lonlat(x, y)
            });
        }
        self.roads.ways.push(OsmWay {
            id: self.next_way,
            nodes,
            tags,
        });
        self.next_way += 1;
    }

    /// A way of any length as consecutive ways of at most 500 nodes sharing their ends: OSM
    /// caps ways at 2,000 nodes and extracts split long roads well below that.
    fn long_way(&mut self, nodes: &[i64], tags: &[(String, String)]) {
        for start in (0..nodes.len().saturating_sub(1)).step_by(499) {
            let end = (start + 500).min(nodes.len());
            self.way(nodes[start..end].to_vec(), tags.to_vec());
        }
    }

    /// Ends a street piece: attaches it to the roundabout if it starts or ends at its centre,
    /// then emits it (reversed for a westbound one-way).
    fn flush(&mut self, piece: &mut Vec<i64>, tags: &[(String, String)], reverse: bool) {
        let mut nodes = std::mem::take(piece);
        if let (Some(ring), 2..) = (&self.ring, nodes.len()) {
            let leg = |next: i64| ring.legs.iter().find(|l| l.0 == next).map(|l| l.1);
            let n = nodes.len();
            if nodes[0] == ring.center
                && let Some(at) = leg(nodes[1])
            {
                nodes[0] = at;
            }
            if nodes[n - 1] == ring.center
                && let Some(at) = leg(nodes[n - 2])
            {
                nodes[n - 1] = at;
            }
        }
        if reverse {
            nodes.reverse();
        }
        self.way(nodes, tags.to_vec());
    }

    fn roundabout(&mut self) {
        let Some((i, j)) = self.lay.roundabout else {
            return;
        };
        let lay = self.lay;
        let center = lay.inter(i, j);
        let (cx, cy) = lay.grid_xy(center);
        let radius = (0.2 * lay.b).min(25.0);
        // Eight nodes counter-clockwise from east, as US roundabouts turn.
        let ring: Vec<i64> = (0..8)
            .map(|k| {
                let a = f64::from(k) * std::f64::consts::FRAC_PI_4;
                self.new_node(cx + radius * a.cos(), cy + radius * a.sin())
            })
            .collect();
        let legs = [
            (lay.ew_mid(i, j), ring[0]),
            (lay.ns_mid(i, j), ring[2]),
            (lay.ew_mid(i - 1, j), ring[4]),
            (lay.ns_mid(i, j - 1), ring[6]),
        ];
        let mut nodes = ring;
        nodes.push(nodes[0]);
        let t = tags(&[
            ("highway", "secondary"),
            ("junction", "roundabout"),
            ("maxspeed", "25 mph"),
        ]);
        self.way(nodes, t);
        self.ring = Some(Ring { center, legs });
    }

    /// Emits one street line as ways: segments `(start, shape node, end, kind, split after)`
    /// in order, cut at gaps and bridges and wherever `split after` says (arterial
    /// crossings).
    fn street(
        &mut self,
        segs: impl Iterator<Item = (i64, i64, i64, Seg, bool)>,
        t: &[(String, String)],
        reverse: bool,
    ) {
        let mut piece: Vec<i64> = Vec::new();
        for (start, mid, end, kind, split) in segs {
            match kind {
                Seg::Gap => self.flush(&mut piece, t, reverse),
                Seg::Bridge => {
                    self.flush(&mut piece, t, reverse);
                    let mut bt = t.to_vec();
                    bt.extend(tags(&[("bridge", "yes"), ("layer", "1")]));
                    self.way(vec![start, end], bt);
                }
                Seg::NearHalf => {
                    if piece.is_empty() {
                        piece.push(start);
                    }
                    piece.push(mid);
                    self.flush(&mut piece, t, reverse);
                }
                Seg::FarHalf => {
                    self.flush(&mut piece, t, reverse);
                    piece.extend([mid, end]);
                }
                Seg::Full => {
                    if piece.is_empty() {
                        piece.push(start);
                    }
                    piece.extend([mid, end]);
                }
            }
            if split && !piece.is_empty() {
                self.flush(&mut piece, t, reverse);
            }
        }
        self.flush(&mut piece, t, reverse);
    }

    fn east_west_streets(&mut self) {
        let lay = self.lay;
        for j in 0..=lay.by {
            let name = format!("{} Avenue", ordinal(j + 1));
            let mut t = if arterial(j) {
                tags(&[
                    ("highway", "secondary"),
                    ("name", &name),
                    ("maxspeed", "35 mph"),
                ])
            } else {
                tags(&[("highway", "residential"), ("name", &name)])
            };
            if lay.oneway_row(j) {
                t.push(("oneway".into(), "yes".into()));
            }
            let westbound = lay.oneway.is_some_and(|o| j == o + 1);
            let segs = (0..lay.bx).map(|i| {
                let kind = if lay.dropped_ew(i, j) {
                    lay.remnant(S_DROP_EW, i, j)
                } else {
                    Seg::Full
                };
                let split = arterial(i + 1) && i + 1 < lay.bx;
                (
                    lay.inter(i, j),
                    lay.ew_mid(i, j),
                    lay.inter(i + 1, j),
                    kind,
                    split,
                )
            });
            self.street(segs, &t, westbound);
        }
    }

    fn north_south_streets(&mut self) {
        let lay = self.lay;
        for i in 0..=lay.bx {
            let name = format!("{} Street", ordinal(i + 1));
            let t = if arterial(i) {
                tags(&[
                    ("highway", "primary"),
                    ("name", &name),
                    ("maxspeed", "35 mph"),
                ])
            } else {
                tags(&[("highway", "residential"), ("name", &name)])
            };
            let segs = (0..lay.by).map(|j| {
                let park_gap = lay.park.is_some_and(|(px, py)| i == px + 1 && j == py);
                let kind = if lay.river == Some(j) {
                    if lay.bridges.contains(&i) {
                        Seg::Bridge
                    } else {
                        Seg::Gap
                    }
                } else if park_gap {
                    Seg::Gap
                } else if lay.dropped_ns(i, j) {
                    lay.remnant(S_DROP_NS, i, j)
                } else {
                    Seg::Full
                };
                let split = arterial(j + 1) && j + 1 < lay.by;
                (
                    lay.inter(i, j),
                    lay.ns_mid(i, j),
                    lay.inter(i, j + 1),
                    kind,
                    split,
                )
            });
            self.street(segs, &t, false);
        }
    }

    /// Two diagonal paths and a central one (where the street would be) meeting mid-park.
    fn park_paths(&mut self) {
        let Some((px, py)) = self.lay.park else {
            return;
        };
        let lay = self.lay;
        let b = lay.b;
        let (mx, my) = (f64::from(px + 1) * b, (f64::from(py) + 0.5) * b);
        let center = self.new_node(mx, my);
        let gravel = tags(&[("highway", "footway"), ("surface", "gravel")]);
        for (from, to) in [((px, py), (px + 2, py + 1)), ((px, py + 1), (px + 2, py))] {
            let (a, z) = (lay.inter(from.0, from.1), lay.inter(to.0, to.1));
            let ((ax, ay), (zx, zy)) = (lay.grid_xy(a), lay.grid_xy(z));
            let m1 = self.new_node((ax + mx) / 2.0, (ay + my) / 2.0 + 0.05 * b);
            let m2 = self.new_node((zx + mx) / 2.0, (zy + my) / 2.0 - 0.05 * b);
            self.way(vec![a, m1, center, m2, z], gravel.clone());
        }
        let spine = vec![lay.inter(px + 1, py), center, lay.inter(px + 1, py + 1)];
        self.way(
            spine,
            tags(&[("highway", "footway"), ("surface", "asphalt")]),
        );
    }

    fn driveway(&mut self) {
        let Some((i, j)) = self.lay.service else {
            return;
        };
        let lay = self.lay;
        let start = lay.ew_mid(i, j);
        let (x, y) = lay.grid_xy(start);
        let a = self.new_node(x, y + 0.2 * lay.b);
        let z = self.new_node(x + 0.1 * lay.b, y + 0.4 * lay.b);
        let t = tags(&[
            ("highway", "service"),
            ("service", "driveway"),
            ("access", "private"),
        ]);
        self.way(vec![start, a, z], t);
    }

    /// Two one-way carriageways south of town, 3 blocks longer than the town at each end,
    /// with four ramps per interchange; the westbound ramps pass over the eastbound
    /// carriageway (`layer=1`, no shared node).
    fn motorway(&mut self) {
        let lay = self.lay;
        if lay.interchanges.is_empty() {
            return;
        }
        let b = lay.b;
        let (y_east, y_west) = (-1.25 * b, -1.6 * b);
        let cols = -3..=i64::from(lay.bx) + 3;
        let east: Vec<i64> = cols
            .clone()
            .map(|c| self.new_node(c as f64 * b, y_east))
            .collect();
        let west: Vec<i64> = cols.map(|c| self.new_node(c as f64 * b, y_west)).collect();
        let at = |c: u32, d: i64| (i64::from(c) + 3 + d) as usize; // column c + d → index
        let m = tags(&[
            ("highway", "motorway"),
            ("ref", "I 99"),
            ("oneway", "yes"),
            ("maxspeed", "65 mph"),
            ("lanes", "2"),
        ]);
        self.long_way(&east, &m);
        let west_rev: Vec<i64> = west.iter().rev().copied().collect();
        self.long_way(&west_rev, &m);
        let link = tags(&[("highway", "motorway_link"), ("oneway", "yes")]);
        let over = tags(&[
            ("highway", "motorway_link"),
            ("oneway", "yes"),
            ("layer", "1"),
        ]);
        for &i in &lay.interchanges {
            let street = lay.inter(i, 0);
            let x = f64::from(i) * b;
            let off = self.new_node(x - 0.5 * b, -0.75 * b);
            self.way(vec![east[at(i, -1)], off, street], link.clone());
            let on = self.new_node(x + 0.5 * b, -0.75 * b);
            self.way(vec![street, on, east[at(i, 1)]], link.clone());
            let off = self.new_node(x + 1.5 * b, -b);
            self.way(vec![west[at(i, 2)], off, street], over.clone());
            let on = self.new_node(x - 1.5 * b, -b);
            self.way(vec![street, on, west[at(i, -2)]], over.clone());
        }
    }
}

// ---------------------------------------------------------------- block groups

/// What a block group is, for its ACS values.
#[derive(Clone, Copy)]
enum BgKind {
    Town { blocks: u32, north: bool },
    Park,
    Rural,
}

/// A GEOID for the k-th block group: state 99, four block groups per tract, tracts from
/// 000100; counties after 001 only past 999,900 tracts.
fn geoid(k: usize) -> String {
    let tract = k / 4;
    let county = 1 + tract / 999_900;
    format!("99{county:03}{:06}{}", 100 + tract % 999_900, k % 4 + 1)
}

/// Owner of each block: 4×3 cells, some pairs trading a corner block (making both L-shaped),
/// and the park cut out of its cell.
fn owners(lay: &Layout) -> (Vec<u32>, u32, Option<u32>) {
    let (ncx, ncy) = (lay.bx.div_ceil(CELL_W), lay.by.div_ceil(CELL_H));
    let park_owner = ncx * ncy;
    let host = lay.park.map(|(px, py)| (py / CELL_H) * ncx + px / CELL_W);
    let mut owner: Vec<u32> = (0..lay.by)
        .flat_map(|y| (0..lay.bx).map(move |x| (y / CELL_H) * ncx + x / CELL_W))
        .collect();
    for cy in 0..ncy {
        for pair in 0..ncx / 2 {
            let (a, bcell) = (cy * ncx + 2 * pair, cy * ncx + 2 * pair + 1);
            let h = hash4(lay.seed, S_TRANSFER, pair.into(), cy.into());
            let height = (lay.by - cy * CELL_H).min(CELL_H);
            if h % 5 >= 2 || height < 2 || host == Some(a) || host == Some(bcell) {
                continue;
            }
            let x = (2 * pair + 1) * CELL_W - 1; // A's east column
            let y = cy * CELL_H + if h & 8 == 0 { 0 } else { height - 1 };
            owner[y as usize * lay.bx as usize + x as usize] = bcell;
        }
    }
    if let Some((px, py)) = lay.park {
        for x in px..px + 2 {
            owner[py as usize * lay.bx as usize + x as usize] = park_owner;
        }
    }
    (owner, park_owner, host)
}

/// The outline of every owner's blocks, as rings of grid vertices (one vertex per block
/// corner, so neighbours share their vertices exactly and tile without slivers in lon/lat).
fn outlines(lay: &Layout, owner: &[u32], count: usize) -> Vec<Vec<Vec<(u32, u32)>>> {
    type Edge = ((u32, u32), (u32, u32));
    let mut edges: Vec<Vec<Edge>> = vec![Vec::new(); count];
    let (w, h) = (lay.bx, lay.by);
    let at = |x: i64, y: i64| -> Option<u32> {
        (x >= 0 && y >= 0 && x < i64::from(w) && y < i64::from(h))
            .then(|| owner[y as usize * w as usize + x as usize])
    };
    for y in 0..h {
        for x in 0..w {
            let o = owner[y as usize * w as usize + x as usize];
            let (xi, yi) = (i64::from(x), i64::from(y));
            // Counter-clockwise sides, kept where the neighbour across is someone else.
            let sides = [
                ((xi, yi - 1), (x, y), (x + 1, y)),
                ((xi + 1, yi), (x + 1, y), (x + 1, y + 1)),
                ((xi, yi + 1), (x + 1, y + 1), (x, y + 1)),
                ((xi - 1, yi), (x, y + 1), (x, y)),
            ];
            for ((nx, ny), from, to) in sides {
                if at(nx, ny) != Some(o) {
                    edges[o as usize].push((from, to));
                }
            }
        }
    }
    edges.into_iter().map(chain_rings).collect()
}

/// Chains directed boundary edges into closed rings. At a vertex with two ways out (blocks
/// touching only at a corner) the sharpest left turn keeps each ring simple.
fn chain_rings(edges: Vec<((u32, u32), (u32, u32))>) -> Vec<Vec<(u32, u32)>> {
    let mut out: HashMap<(u32, u32), Vec<(u32, u32)>> = HashMap::with_capacity(edges.len());
    let mut starts = Vec::with_capacity(edges.len());
    for (from, to) in edges {
        out.entry(from).or_default().push(to);
        starts.push(from);
    }
    let dir = |a: (u32, u32), b: (u32, u32)| {
        (
            i64::from(b.0) - i64::from(a.0),
            i64::from(b.1) - i64::from(a.1),
        )
    };
    let mut rings = Vec::new();
    for start in starts {
        if out.get(&start).is_none_or(Vec::is_empty) {
            continue;
        }
        let mut ring = vec![start];
        let (mut prev, mut cur) = (start, start);
        while let Some(nexts) = out.get_mut(&cur).filter(|n| !n.is_empty()) {
            let din = dir(prev, cur);
            // Prefer left (cross product > 0), then straight, then right.
            let pick = (0..nexts.len())
                .max_by_key(|&k| {
                    let d = dir(cur, nexts[k]);
                    din.0 * d.1 - din.1 * d.0
                })
                .unwrap_or(0);
            let next = nexts.swap_remove(pick);
            (prev, cur) = (cur, next);
            if cur == start {
                break;
            }
            ring.push(cur);
        }
        rings.push(ring);
    }
    rings
}

/// Twice the signed area of a ring of grid vertices (positive when counter-clockwise).
fn ring_area2(ring: &[(u32, u32)]) -> i64 {
    let n = ring.len();
    (0..n)
        .map(|k| {
            let (a, b) = (ring[k], ring[(k + 1) % n]);
            i64::from(a.0) * i64::from(b.1) - i64::from(b.0) * i64::from(a.1)
        })
        .sum()
}

/// Rings of grid vertices → a lon/lat polygon (exterior counter-clockwise, holes clockwise).
fn polygon_of(lay: &Layout, rings: &[Vec<(u32, u32)>]) -> MultiPolygon<f64> {
    let to_line = |ring: &[(u32, u32)]| -> LineString<f64> {
        ring.iter()
            .map(|&(x, y)| {
                let (lon, lat) = lay.lonlat(f64::from(x) * lay.b, f64::from(y) * lay.b);
                Coord { x: lon, y: lat }
            })
            .collect()
    };
    let (outer, holes): (Vec<_>, Vec<_>) = rings.iter().partition(|r| ring_area2(r) > 0);
    let mut polys: Vec<Polygon<f64>> = outer
        .iter()
        .map(|r| Polygon::new(to_line(r), vec![]))
        .collect();
    // Our shapes have one exterior each; holes go to the first.
    if let Some(first) = polys.first_mut() {
        for h in holes {
            first.interiors_push(to_line(h));
        }
    }
    MultiPolygon(polys)
}

fn block_groups(lay: &Layout) -> (Vec<BlockGroup>, Vec<BgKind>) {
    let (owner, park_owner, host) = owners(lay);
    let count = park_owner as usize + 1;
    let rings = outlines(lay, &owner, count);
    let mut blocks = vec![0u32; count];
    for &o in &owner {
        blocks[o as usize] += 1;
    }
    let ncx = lay.bx.div_ceil(CELL_W);
    let mut order: Vec<(u32, BgKind)> = Vec::with_capacity(count + 1);
    for o in 0..park_owner {
        let north = lay.river.is_some_and(|r| (o / ncx) * CELL_H > r);
        order.push((
            o,
            BgKind::Town {
                blocks: blocks[o as usize],
                north,
            },
        ));
        if host == Some(o) {
            order.push((park_owner, BgKind::Park));
        }
    }
    let mut bgs: Vec<BlockGroup> = order
        .iter()
        .enumerate()
        .map(|(k, &(o, _))| BlockGroup {
            geoid: geoid(k),
            boundary: polygon_of(lay, &rings[o as usize]),
        })
        .collect();
    let mut kinds: Vec<BgKind> = order.into_iter().map(|(_, kind)| kind).collect();
    // West of town past a one-block strip of nothing (a county line), no roads under it.
    let (x0, x1, y1) = (-lay.b - RURAL_WIDTH_M, -lay.b, f64::from(lay.by) * lay.b);
    let corners = [(x0, 0.0), (x1, 0.0), (x1, y1), (x0, y1)];
    let ring: LineString<f64> = corners
        .iter()
        .map(|&(x, y)| {
            let (lon, lat) = lay.lonlat(x, y);
            Coord { x: lon, y: lat }
        })
        .collect();
    bgs.push(BlockGroup {
        geoid: geoid(bgs.len()),
        boundary: MultiPolygon(vec![Polygon::new(ring, vec![])]),
    });
    kinds.push(BgKind::Rural);
    (bgs, kinds)
}

// ---------------------------------------------------------------- ACS

/// Plausible ACS values: ~90 people per block, incomes higher north of the river, home
/// values tracking income. Medians are missing (`None`, the API's -666666666) for a few
/// block groups and for the park, which has no people.
fn acs_table(lay: &Layout, bgs: &[BlockGroup], kinds: &[BgKind]) -> AcsTable {
    let mut rows = HashMap::with_capacity(bgs.len());
    for (k, (bg, kind)) in bgs.iter().zip(kinds).enumerate() {
        let mut rng = SplitMix64(hash4(lay.seed, S_ACS, k as u64, 0));
        let row = match *kind {
            BgKind::Park => vec![Some(0.0), None, None, None],
            BgKind::Town { blocks, north } => {
                let pop = (f64::from(blocks) * (60.0 + 60.0 * rng.unit()))
                    .round()
                    .max(12.0);
                let base = if north { 78_000.0 } else { 52_000.0 };
                let income = (base * (0.6 + 0.8 * rng.unit())).round().min(250_001.0);
                let age = (10.0 * (26.0 + 24.0 * rng.unit())).round() / 10.0;
                let home = (income * (2.4 + 1.6 * rng.unit()) / 100.0).round() * 100.0;
                let h = rng.next();
                // Every 23rd-or-so income and 31st home value missing, and always one of each
                // early on so small towns show them too.
                let income = (k != 3 && !h.is_multiple_of(23)).then_some(income);
                let home = (k != 6 && !(h >> 8).is_multiple_of(31)).then_some(home);
                vec![Some(pop), income, Some(age), home]
            }
            BgKind::Rural => vec![Some(412.0), Some(61_250.0), Some(47.3), Some(189_400.0)],
        };
        rows.insert(bg.geoid.clone(), row);
    }
    AcsTable {
        variables: ACS_VARIABLES.iter().map(|v| v.to_string()).collect(),
        rows,
    }
}

// ---------------------------------------------------------------- POIs

const TREES: [&str; 20] = [
    "Oak", "Maple", "Elm", "Cedar", "Pine", "Walnut", "Hickory", "Willow", "Birch", "Ash",
    "Sycamore", "Chestnut", "Poplar", "Locust", "Linden", "Magnolia", "Cherry", "Spruce",
    "Juniper", "Laurel",
];

/// `count` libraries and clinics (alternating) 18 m off a street in random dry blocks, then
/// the off-network POI in the middle of the rural block group.
fn pois(lay: &Layout, count: usize) -> Vec<Poi> {
    let mut out = Vec::with_capacity(count + 1);
    for n in 0..count {
        let mut rng = SplitMix64(hash4(lay.seed, S_POI, n as u64, 0));
        let (mut i, mut j) = ((n as u32) % lay.bx, 0);
        for _ in 0..32 {
            let (ci, cj) = (rng.below(lay.bx), rng.below(lay.by));
            if lay.river != Some(cj) && !lay.park_block(ci, cj) {
                (i, j) = (ci, cj);
                break;
            }
        }
        let x = (f64::from(i) + 0.3 + 0.4 * rng.unit()) * lay.b;
        let y = (f64::from(j) + 0.15) * lay.b;
        let (lon, lat) = lay.lonlat(x, y);
        let k = n / 2 + 1;
        let tree = TREES[(n / 2) % TREES.len()];
        let round = if n / 2 >= TREES.len() {
            format!(" {}", n / 2 / TREES.len() + 1)
        } else {
            String::new()
        };
        let (id, name, kind) = if n % 2 == 0 {
            (
                format!("lib-{k}"),
                format!("{tree} Branch Library{round}"),
                "library",
            )
        } else {
            (
                format!("clinic-{k}"),
                format!("{tree} Community Clinic{round}"),
                "clinic",
            )
        };
        let tags = BTreeMap::from([("amenity".to_string(), kind.to_string())]);
        out.push(Poi {
            id,
            name,
            kind: kind.into(),
            lon,
            lat,
            state: None,
            tags,
            source: format!("demo {}", n + 1),
        });
    }
    let (lon, lat) = lay.lonlat(
        -lay.b - RURAL_WIDTH_M / 2.0,
        f64::from(lay.by) * lay.b / 2.0,
    );
    out.push(Poi {
        id: "lake-1".into(),
        name: "Heron Lake Boat Launch".into(),
        kind: "slipway".into(),
        lon,
        lat,
        state: None,
        tags: BTreeMap::from([("leisure".to_string(), "slipway".to_string())]),
        source: format!("demo {}", count + 1),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Area, BooleanOps, BoundingRect, Contains, Intersects, Line, MapCoords, Point};

    fn default_town() -> (Layout, Town) {
        let spec = TownSpec::default();
        (Layout::new(&spec), synthetic_town(&spec))
    }

    /// (lon, lat) → local town metres.
    fn local(lay: &Layout, (lon, lat): (f64, f64)) -> (f64, f64) {
        let p = to_5070(lon, lat);
        (p.x - lay.origin.x, p.y - lay.origin.y)
    }

    fn local_poly(lay: &Layout, mp: &MultiPolygon<f64>) -> MultiPolygon<f64> {
        mp.map_coords(|c| {
            let (x, y) = local(lay, (c.x, c.y));
            Coord { x, y }
        })
    }

    /// The town as bytes, with hash maps in key order (their iteration order is random).
    fn canonical_bytes(t: &Town) -> Vec<u8> {
        let mut nodes: Vec<_> = t.roads.nodes.iter().map(|(k, v)| (*k, *v)).collect();
        nodes.sort_by_key(|n| n.0);
        let mut rows: Vec<_> = t.acs.rows.iter().collect();
        rows.sort_by(|a, b| a.0.cmp(b.0));
        let all = (
            &nodes,
            &t.roads.ways,
            &t.block_groups,
            &t.acs.variables,
            &rows,
            &t.pois,
        );
        bincode::serde::encode_to_vec(all, bincode::config::standard()).expect("encodes")
    }

    fn tag<'a>(w: &'a OsmWay, k: &str) -> &'a str {
        w.tag(k).unwrap_or("")
    }

    #[test]
    fn same_spec_same_town() {
        let spec = TownSpec::default();
        let a = canonical_bytes(&synthetic_town(&spec));
        assert_eq!(a, canonical_bytes(&synthetic_town(&spec.clone())));
        let other = canonical_bytes(&synthetic_town(&TownSpec { seed: 7, ..spec }));
        assert_ne!(a, other);
    }

    #[test]
    fn geoids_are_12_digits_and_unique() {
        let (_, town) = default_town();
        let mut seen = std::collections::HashSet::new();
        for bg in &town.block_groups {
            assert_eq!(bg.geoid.len(), 12, "{}", bg.geoid);
            assert!(bg.geoid.bytes().all(|b| b.is_ascii_digit()), "{}", bg.geoid);
            assert!(bg.geoid.starts_with("99001"), "{}", bg.geoid);
            assert!(seen.insert(bg.geoid.clone()), "duplicate {}", bg.geoid);
        }
        assert_eq!(town.block_groups[0].geoid, "990010001001");
        assert_eq!(town.block_groups[5].geoid, "990010001012");
        // 6×6 cells, the park, the rural block group.
        assert_eq!(town.block_groups.len(), 38);
        assert_eq!(geoid(4 * 999_900), "990020001001");
    }

    #[test]
    fn block_groups_tile_the_town_without_overlap() {
        let (lay, town) = default_town();
        let polys: Vec<MultiPolygon<f64>> = town
            .block_groups
            .iter()
            .map(|bg| local_poly(&lay, &bg.boundary))
            .collect();
        let block = lay.b * lay.b;
        let town_area = f64::from(lay.bx * lay.by) * block;
        let rural = polys.last().expect("rural");
        let rural_area = rural.unsigned_area();
        assert!((rural_area - RURAL_WIDTH_M * f64::from(lay.by) * lay.b).abs() < 1.0);
        let sum: f64 = polys.iter().map(|p| p.unsigned_area()).sum();
        assert!(
            (sum - rural_area - town_area).abs() < 1e-6 * town_area,
            "{sum} vs {town_area}"
        );
        // Pairwise: neighbours share edges only.
        for (a, pa) in polys.iter().enumerate() {
            for pb in &polys[a + 1..] {
                let (ra, rb) = (
                    pa.bounding_rect().expect("a"),
                    pb.bounding_rect().expect("b"),
                );
                if ra.intersects(&rb) {
                    let overlap = pa.intersection(pb).unsigned_area();
                    assert!(overlap < 1e-3, "block groups overlap by {overlap} m²");
                }
            }
        }
        let union = polys
            .iter()
            .fold(MultiPolygon(vec![]), |acc, p| acc.union(p));
        assert!((union.unsigned_area() - sum).abs() < 1e-6 * sum);
        // Some are not rectangles: L-shapes fill less than their bounding box.
        let l_shapes = polys
            .iter()
            .filter(|p| {
                let r = p.bounding_rect().expect("rect");
                p.unsigned_area() < r.width() * r.height() - 0.5 * block
            })
            .count();
        assert!(l_shapes >= 4, "{l_shapes} non-rectangular block groups");
        // The park is its own block group, a hole in its 4×3-block host.
        let holed: Vec<usize> = (0..polys.len())
            .filter(|&k| polys[k].0[0].interiors().len() == 1)
            .collect();
        assert_eq!(holed.len(), 1);
        let (host, park) = (&polys[holed[0]], &polys[holed[0] + 1]);
        assert!((park.unsigned_area() - 2.0 * block).abs() < 1e-3);
        assert!((host.unsigned_area() - 10.0 * block).abs() < 1e-3);
        assert!(host.0[0].exterior().0.len() >= 4);
    }

    #[test]
    fn no_way_crosses_the_river_except_three_bridges() {
        let (lay, town) = default_town();
        let r = f64::from(lay.river.expect("river"));
        let (lo, hi) = ((r + 0.25) * lay.b, (r + 0.75) * lay.b);
        let (mut bridges, mut south, mut north) = (0, 0, 0);
        for w in &town.roads.ways {
            let ys: Vec<f64> = w
                .nodes
                .iter()
                .map(|n| local(&lay, town.roads.nodes[n]).1)
                .collect();
            south += ys.iter().filter(|&&y| y < lo).count();
            north += ys.iter().filter(|&&y| y > hi).count();
            let crosses = ys
                .windows(2)
                .any(|s| (s[0] < lo && s[1] > hi) || (s[0] > hi && s[1] < lo));
            let wet = ys.iter().any(|&y| (lo..=hi).contains(&y));
            if tag(w, "bridge") == "yes" {
                assert!(crosses, "bridge {} does not cross", w.id);
                bridges += 1;
            } else {
                assert!(
                    !crosses && !wet,
                    "way {} {:?} crosses the river",
                    w.id,
                    w.tags
                );
            }
        }
        assert_eq!(bridges, 3);
        assert!(
            south > 1000 && north > 300,
            "{south} nodes south, {north} north"
        );
    }

    #[test]
    fn roads_have_the_promised_features() {
        let (lay, town) = default_town();
        let roads = &town.roads;
        let mut way_ids = std::collections::HashSet::new();
        let mut used = std::collections::HashSet::new();
        let mut degree: HashMap<i64, usize> = HashMap::new();
        for w in &roads.ways {
            assert!(w.id > 0 && way_ids.insert(w.id), "way id {}", w.id);
            assert!(w.nodes.len() >= 2);
            for n in &w.nodes {
                assert!(
                    *n > 0 && roads.nodes.contains_key(n),
                    "node {n} of way {}",
                    w.id
                );
                used.insert(*n);
            }
            for s in w.nodes.windows(2) {
                *degree.entry(s[0]).or_default() += 1;
                *degree.entry(s[1]).or_default() += 1;
            }
        }
        assert_eq!(used.len(), roads.nodes.len(), "every node is on a way");
        for &(lon, lat) in roads.nodes.values() {
            assert!(
                (-89.53..-89.47).contains(&lon) && (39.98..40.02).contains(&lat),
                "{lon} {lat}"
            );
        }
        let count = |k: &str, v: &str| roads.ways.iter().filter(|w| tag(w, k) == v).count();
        for hw in [
            "residential",
            "primary",
            "secondary",
            "motorway",
            "motorway_link",
            "footway",
            "service",
        ] {
            assert!(count("highway", hw) > 0, "no highway={hw}");
        }
        assert_eq!(count("highway", "motorway_link"), 8);
        assert_eq!(count("junction", "roundabout"), 1);
        assert_eq!(count("access", "private"), 1);
        for w in roads
            .ways
            .iter()
            .filter(|w| matches!(tag(w, "highway"), "primary" | "secondary"))
        {
            assert!(tag(w, "maxspeed") == "35 mph" || tag(w, "junction") == "roundabout");
        }
        // The roundabout is a closed ring turning counter-clockwise.
        let ring = roads
            .ways
            .iter()
            .find(|w| tag(w, "junction") == "roundabout")
            .expect("ring");
        assert_eq!(ring.nodes.first(), ring.nodes.last());
        let pts: Vec<(f64, f64)> = ring
            .nodes
            .iter()
            .map(|n| local(&lay, roads.nodes[n]))
            .collect();
        let area2: f64 = pts
            .windows(2)
            .map(|s| s[0].0 * s[1].1 - s[1].0 * s[0].1)
            .sum();
        assert!(area2 > 0.0);
        // Four streets end on the ring.
        let on_ring = roads.ways.iter().filter(|w| {
            w.id != ring.id
                && ring
                    .nodes
                    .iter()
                    .any(|n| w.nodes.first() == Some(n) || w.nodes.last() == Some(n))
        });
        assert_eq!(on_ring.count(), 4);
        // One-way streets run both ways: east along one, west along the other.
        let dx = |w: &OsmWay| {
            let (a, z) = (
                roads.nodes[&w.nodes[0]],
                roads.nodes[w.nodes.last().expect("node")],
            );
            local(&lay, z).0 - local(&lay, a).0
        };
        let oneway: Vec<&OsmWay> = roads
            .ways
            .iter()
            .filter(|w| tag(w, "oneway") == "yes" && tag(w, "highway") == "residential")
            .collect();
        assert!(oneway.iter().any(|w| dx(w) > 0.0) && oneway.iter().any(|w| dx(w) < 0.0));
        // Some streets dead-end.
        let street_nodes = roads
            .ways
            .iter()
            .filter(|w| tag(w, "highway") == "residential")
            .flat_map(|w| &w.nodes);
        let dead_ends = street_nodes.filter(|n| degree[n] == 1).count();
        assert!(dead_ends >= 4, "{dead_ends} dead ends");
    }

    #[test]
    fn rural_block_group_has_no_roads_and_its_poi_is_far_from_them() {
        let (lay, town) = default_town();
        let rural = &town.block_groups.last().expect("rural").boundary;
        for w in &town.roads.ways {
            for s in w.nodes.windows(2) {
                let (a, b) = (town.roads.nodes[&s[0]], town.roads.nodes[&s[1]]);
                assert!(
                    !rural.intersects(&Line::new(a, b)),
                    "way {} runs through the rural block group",
                    w.id
                );
            }
        }
        let nearest = |p: &Poi| {
            let (x, y) = local(&lay, (p.lon, p.lat));
            let d = |n: &(f64, f64)| {
                let (nx, ny) = local(&lay, *n);
                (nx - x).hypot(ny - y)
            };
            town.roads
                .nodes
                .values()
                .map(d)
                .fold(f64::INFINITY, f64::min)
        };
        assert_eq!(town.pois.len(), 9);
        let lake = town.pois.last().expect("lake");
        assert_eq!(lake.id, "lake-1");
        assert!(rural.contains(&Point::new(lake.lon, lake.lat)));
        assert!(nearest(lake) > 3_500.0, "{}", nearest(lake));
        for p in &town.pois[..8] {
            assert!(
                nearest(p) < 100.0,
                "{} is {} m from a road",
                p.id,
                nearest(p)
            );
        }
        let ids: Vec<&str> = town.pois.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "lib-1", "clinic-1", "lib-2", "clinic-2", "lib-3", "clinic-3", "lib-4", "clinic-4",
                "lake-1"
            ]
        );
        assert_eq!(town.pois[0].name, "Oak Branch Library");
        assert_eq!(town.pois[1].name, "Oak Community Clinic");
    }

    #[test]
    fn acs_values_are_plausible_with_gaps() {
        let (_, town) = default_town();
        let acs = &town.acs;
        assert_eq!(acs.variables, ACS_VARIABLES);
        assert_eq!(acs.rows.len(), town.block_groups.len());
        let rows: Vec<&Vec<Option<f64>>> = town
            .block_groups
            .iter()
            .map(|bg| &acs.rows[&bg.geoid])
            .collect();
        let zero: Vec<usize> = (0..rows.len())
            .filter(|&k| rows[k][0] == Some(0.0))
            .collect();
        assert_eq!(zero.len(), 1, "exactly the park has no people");
        assert_eq!(rows[zero[0]][1..], [None, None, None]);
        assert_eq!(
            town.block_groups[zero[0] - 1].boundary.0[0]
                .interiors()
                .len(),
            1
        );
        for (k, row) in rows.iter().enumerate().filter(|&(k, _)| k != zero[0]) {
            let pop = row[0].expect("population");
            assert!((12.0..=2_000.0).contains(&pop), "{k}: {pop}");
            if let Some(inc) = row[1] {
                assert!((18_000.0..=250_001.0).contains(&inc), "{k}: {inc}");
            }
            let age = row[2].expect("age");
            assert!((26.0..=50.0).contains(&age), "{k}: {age}");
        }
        let missing_income = rows.iter().filter(|r| r[1].is_none()).count();
        let missing_home = rows.iter().filter(|r| r[3].is_none()).count();
        assert!((2..=5).contains(&missing_income), "{missing_income}");
        assert!((2..=5).contains(&missing_home), "{missing_home}");
    }

    #[test]
    fn node_count_grows_linearly_with_the_spec() {
        let mut per_block = Vec::new();
        for (bx, by) in [(24, 18), (48, 36), (96, 72)] {
            let spec = TownSpec {
                blocks_x: bx,
                blocks_y: by,
                ..TownSpec::default()
            };
            let nodes = synthetic_town(&spec).roads.nodes.len();
            let est = spec.approx_nodes();
            assert!(
                (nodes as f64 / est as f64 - 1.0).abs() < 0.03,
                "{bx}x{by}: {nodes} vs {est}"
            );
            per_block.push(nodes as f64 / f64::from(bx * by));
        }
        // The edges (motorway, outer streets) weigh less as the town grows: toward 3 per block.
        assert!(per_block.windows(2).all(|w| w[1] < w[0]), "{per_block:?}");
        assert!((2.95..3.05).contains(&per_block[2]), "{per_block:?}");
        let spec = TownSpec::with_nodes(40_000);
        let nodes = synthetic_town(&spec).roads.nodes.len();
        assert!((nodes as f64 / 40_000.0 - 1.0).abs() < 0.03, "{nodes}");
    }

    #[test]
    fn outlines_follow_block_ownership() {
        // Blocks touching only at a corner (a pinch) make two simple rings; a ring around a
        // hole runs clockwise.
        //   y=1: A .      y=0: . A
        let edges = |blocks: &[(u32, u32)]| -> Vec<((u32, u32), (u32, u32))> {
            let has = |x: i64, y: i64| {
                blocks
                    .iter()
                    .any(|&(bx, by)| i64::from(bx) == x && i64::from(by) == y)
            };
            let mut out = Vec::new();
            for &(x, y) in blocks {
                let (xi, yi) = (i64::from(x), i64::from(y));
                for ((nx, ny), from, to) in [
                    ((xi, yi - 1), (x, y), (x + 1, y)),
                    ((xi + 1, yi), (x + 1, y), (x + 1, y + 1)),
                    ((xi, yi + 1), (x + 1, y + 1), (x, y + 1)),
                    ((xi - 1, yi), (x, y + 1), (x, y)),
                ] {
                    if !has(nx, ny) {
                        out.push((from, to));
                    }
                }
            }
            out
        };
        let rings = chain_rings(edges(&[(1, 0), (0, 1)]));
        assert_eq!(rings.len(), 2);
        assert!(rings.iter().all(|r| r.len() == 4 && ring_area2(r) == 2));
        // A 3×3 square without its middle: one outer ring of 12 vertices, one hole of 4.
        let ring_blocks: Vec<(u32, u32)> = (0..3)
            .flat_map(|y| (0..3).map(move |x| (x, y)))
            .filter(|&b| b != (1, 1))
            .collect();
        let mut rings = chain_rings(edges(&ring_blocks));
        rings.sort_by_key(|r| std::cmp::Reverse(r.len()));
        assert_eq!(
            rings
                .iter()
                .map(|r| (r.len(), ring_area2(r)))
                .collect::<Vec<_>>(),
            [(12, 18), (4, -2)]
        );
    }

    #[test]
    fn long_roads_are_split_into_ways_sharing_their_ends() {
        let lay = Layout::new(&TownSpec::default());
        let mut roads = Roads {
            lay: &lay,
            roads: OsmRoads::default(),
            next_node: 1,
            next_way: 1,
            ring: None,
        };
        let ids: Vec<i64> = (0..1_201)
            .map(|k| roads.new_node(f64::from(k), 0.0))
            .collect();
        roads.long_way(&ids, &tags(&[("highway", "motorway")]));
        let ways = &roads.roads.ways;
        assert_eq!(
            ways.iter().map(|w| w.nodes.len()).collect::<Vec<_>>(),
            [500, 500, 203]
        );
        assert_eq!(ways[0].nodes.last(), ways[1].nodes.first());
        assert_eq!(ways[1].nodes.last(), ways[2].nodes.first());
        assert_eq!((ways[0].nodes[0], ways[2].nodes[202]), (ids[0], ids[1_200]));
    }

    #[test]
    fn small_and_odd_specs_still_make_a_consistent_town() {
        let specs = [
            TownSpec {
                blocks_x: 0,
                blocks_y: 0,
                block_m: f64::NAN,
                poi_count: 0,
                seed: 1,
            },
            TownSpec {
                blocks_x: 1,
                blocks_y: 1,
                block_m: -5.0,
                poi_count: 3,
                seed: 2,
            },
            TownSpec {
                blocks_x: 3,
                blocks_y: 3,
                block_m: 80.0,
                poi_count: 2,
                seed: 3,
            },
            TownSpec {
                blocks_x: 7,
                blocks_y: 5,
                block_m: 1e9,
                poi_count: 50,
                seed: 4,
            },
        ];
        for spec in specs {
            let town = synthetic_town(&spec);
            assert_eq!(town.pois.len(), spec.poi_count + 1);
            assert!(town.block_groups.len() >= 2);
            for w in &town.roads.ways {
                assert!(w.nodes.iter().all(|n| town.roads.nodes.contains_key(n)));
            }
            for bg in &town.block_groups {
                assert_eq!(bg.geoid.len(), 12);
                assert!(bg.boundary.unsigned_area() > 0.0);
                assert!(town.acs.rows.contains_key(&bg.geoid));
            }
        }
    }
}
