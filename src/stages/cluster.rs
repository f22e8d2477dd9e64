//! The `cluster` stage: POIs of a batch grouped by spatial tile, so that one network slice
//! serves every POI of a group.
//!
//! Tiles are squares of a fixed side on EPSG:5070. A cluster's *slice box* — the part of the
//! network its POIs can possibly use — is the bounding box of its POIs grown by the reach
//! radius: the farthest straight-line distance any network point reachable in the longest
//! travel time can lie from a POI (see [`reach_radius_m`]). Every isochrone computed on a
//! network slice that covers this box is complete: unlike the original tool (its issue #45,
//! where a cluster's network was fetched for the POIs' box grown by 2–3 km and 15-minute
//! drives were cut short), no isochrone can be truncated by its slice.

use crate::geom::albers::to_5070;
use crate::types::{Poi, Reject};
use geo::{Coord, Rect};
use serde::{Deserialize, Serialize};

/// A square tile of the clustering grid: `[i·side, (i+1)·side) × [j·side, (j+1)·side)` in
/// EPSG:5070 metres.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Tile {
    /// Column (west to east).
    pub i: i32,
    /// Row (south to north).
    pub j: i32,
}

impl Tile {
    /// The tile holding the EPSG:5070 point `p`.
    pub fn of(p: Coord<f64>, side_m: f64) -> Tile {
        Tile {
            i: (p.x / side_m).floor() as i32,
            j: (p.y / side_m).floor() as i32,
        }
    }

    /// A well-mixed 64-bit key, for spreading tiles over workers.
    pub fn hash(self) -> u64 {
        let packed = (u64::from(self.i as u32) << 32) | u64::from(self.j as u32);
        // SplitMix64's finaliser: neighbouring tiles land on unrelated workers.
        let mut z = packed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// How POIs are clustered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClusterParams {
    /// Side of a tile, metres.
    pub tile_m: f64,
    /// How far from a POI the network it may use can lie, metres ([`reach_radius_m`]).
    pub reach_m: f64,
}

/// The farthest a POI's isochrone can extend from the POI, in EPSG:5070 metres: the snapping
/// distance to its road, plus the longest travel time at the fastest speed of the network
/// (a path is never shorter in a straight line than along the road), plus the buffer around
/// the reached roads. `top_speed_mps` must be measured in the same metres (projected length
/// over travel time, see [`crate::stages::network::Network::top_speed_mps`]).
pub fn reach_radius_m(max_snap_m: f64, longest_min: u32, top_speed_mps: f64, buffer_m: f64) -> f64 {
    max_snap_m + f64::from(longest_min) * 60.0 * top_speed_mps + buffer_m
}

/// A default tile side: a quarter of the reach radius, between 1 and 20 km. Tiles much smaller
/// than the reach give slices that overlap almost entirely; much larger ones put far-apart POIs
/// on one worker.
pub fn default_tile_m(reach_m: f64) -> f64 {
    (reach_m / 4.0).clamp(1_000.0, 20_000.0)
}

/// The most POIs of a batch one cluster holds (see [`Cluster::part`]).
pub const MAX_CLUSTER_POIS: usize = 64;

/// The position of `p` along a Z-curve (Morton order) of 250 m cells.
pub(crate) fn z_order(p: Coord<f64>) -> u64 {
    // Cells counted from far west and south of any US coordinate, so that they are positive.
    let cell = |v: f64| ((v / 250.0).floor() as i64 + (1 << 31)).clamp(0, u32::MAX as i64) as u64;
    let spread = |mut v: u64| {
        v = (v | (v << 16)) & 0x0000_FFFF_0000_FFFF;
        v = (v | (v << 8)) & 0x00FF_00FF_00FF_00FF;
        v = (v | (v << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
        v = (v | (v << 2)) & 0x3333_3333_3333_3333;
        (v | (v << 1)) & 0x5555_5555_5555_5555
    };
    spread(cell(p.x)) | (spread(cell(p.y)) << 1)
}

/// POIs of one batch that share a tile, with what the batch's sink needs to reassemble it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// Batch the POIs belong to (its timestamp).
    pub batch: u64,
    /// This cluster's number within its batch, `0 .. of`.
    pub index: u32,
    /// How many clusters the batch was split into.
    pub of: u32,
    /// The tile.
    pub tile: Tile,
    /// Which part of the tile's POIs this is: a tile holding more than
    /// [`MAX_CLUSTER_POIS`] of a batch's POIs is split into parts, so that a crowded city
    /// keeps every worker busy instead of one.
    pub part: u32,
    /// The POIs with their record index, in record order.
    pub pois: Vec<(u32, Poi)>,
    /// The network the POIs may use: their bounding box grown by the reach radius
    /// (EPSG:5070). `None` for a cluster without POIs.
    pub slice_box: Option<Rect<f64>>,
    /// Cluster 0 carries the batch's records count and the records rejected while reading.
    pub batch_records: u32,
    /// Records of the batch rejected while reading (cluster 0 only), with their index.
    pub read_rejects: Vec<(u32, Reject)>,
}

/// Splits one batch of records (record index, POI or reject) into clusters by tile, in tile
/// order, a crowded tile into parts of at most [`MAX_CLUSTER_POIS`]. Always at least one
/// cluster, so that a batch of rejects still reaches the sink.
pub fn cluster_batch(
    batch: u64,
    records: Vec<crate::poi::PoiRecord>,
    params: &ClusterParams,
) -> Vec<Cluster> {
    let batch_records = records.len() as u32;
    let mut read_rejects = Vec::new();
    let mut tiled: Vec<(Tile, Coord<f64>, u32, Poi)> = Vec::with_capacity(records.len());
    for (k, r) in records {
        match r {
            Ok(p) => {
                let xy = to_5070(p.lon, p.lat);
                tiled.push((Tile::of(xy, params.tile_m), xy, k, p));
            }
            Err(e) => read_rejects.push((k, e)),
        }
    }
    // By tile, then along a Z-curve of 250 m cells inside it, so that the parts a crowded tile
    // is split into are compact (and their POIs share lane searches, see
    // [`crate::stages::isochrone::lane_isochrones`]); ties in record order.
    tiled.sort_by_key(|t| (t.0, z_order(t.1), t.2));
    let mut clusters: Vec<Cluster> = Vec::new();
    for (tile, xy, k, p) in tiled {
        let grow = |r: Rect<f64>| {
            Rect::new(
                Coord {
                    x: r.min().x.min(xy.x - params.reach_m),
                    y: r.min().y.min(xy.y - params.reach_m),
                },
                Coord {
                    x: r.max().x.max(xy.x + params.reach_m),
                    y: r.max().y.max(xy.y + params.reach_m),
                },
            )
        };
        let part = match clusters.last() {
            Some(c) if c.tile == tile => c.part + 1,
            _ => 0,
        };
        match clusters.last_mut() {
            Some(c) if c.tile == tile && c.pois.len() < MAX_CLUSTER_POIS => {
                c.pois.push((k, p));
                c.slice_box = c.slice_box.map(grow);
            }
            _ => clusters.push(Cluster {
                batch,
                index: 0,
                of: 0,
                tile,
                part,
                pois: vec![(k, p)],
                slice_box: Some(grow(Rect::new(xy, xy))),
                batch_records: 0,
                read_rejects: Vec::new(),
            }),
        }
    }
    if clusters.is_empty() {
        clusters.push(Cluster {
            batch,
            index: 0,
            of: 0,
            tile: Tile { i: 0, j: 0 },
            part: 0,
            pois: Vec::new(),
            slice_box: None,
            batch_records: 0,
            read_rejects: Vec::new(),
        });
    }
    let of = clusters.len() as u32;
    for (n, c) in clusters.iter_mut().enumerate() {
        c.index = n as u32;
        c.of = of;
        c.pois.sort_by_key(|(k, _)| *k);
    }
    clusters[0].batch_records = batch_records;
    clusters[0].read_rejects = read_rejects;
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::albers::from_5070;

    fn poi(id: &str, xy: Coord<f64>) -> Poi {
        let (lon, lat) = from_5070(xy);
        Poi {
            id: id.into(),
            name: id.into(),
            kind: "custom".into(),
            lon,
            lat,
            state: None,
            tags: Default::default(),
            source: id.into(),
        }
    }

    #[test]
    fn pois_are_grouped_by_tile_with_their_slice_box() {
        let params = ClusterParams {
            tile_m: 1_000.0,
            reach_m: 5_000.0,
        };
        let base = Coord {
            x: 1_600_200.0,
            y: 1_900_300.0,
        };
        let at = |dx: f64, dy: f64| Coord {
            x: base.x + dx,
            y: base.y + dy,
        };
        let reject = Reject {
            source: "line 3".into(),
            id: None,
            reason: "bad".into(),
        };
        let records = vec![
            (0, Ok(poi("a", at(0.0, 0.0)))),
            (1, Ok(poi("far", at(3_000.0, 0.0)))),
            (2, Err(reject.clone())),
            (3, Ok(poi("b", at(500.0, 600.0)))),
        ];
        let cs = cluster_batch(7, records, &params);
        assert_eq!(cs.len(), 2);
        assert!(cs.iter().all(|c| c.batch == 7 && c.of == 2));
        assert_eq!((cs[0].index, cs[1].index), (0, 1));
        assert_eq!(cs[0].batch_records, 4);
        assert_eq!(cs[0].read_rejects, vec![(2, reject)]);
        assert!(cs[1].read_rejects.is_empty());
        let ids: Vec<Vec<u32>> = cs
            .iter()
            .map(|c| c.pois.iter().map(|p| p.0).collect())
            .collect();
        assert_eq!(ids, vec![vec![0, 3], vec![1]]);
        // The first cluster's box: its POIs' box grown by 5 km (to within the projection's
        // round trip).
        let b = cs[0].slice_box.unwrap();
        for (got, want) in [
            (b.min().x, base.x - 5_000.0),
            (b.min().y, base.y - 5_000.0),
            (b.max().x, base.x + 5_500.0),
            (b.max().y, base.y + 5_600.0),
        ] {
            assert!((got - want).abs() < 0.01, "{got} vs {want}");
        }
    }

    #[test]
    fn a_batch_of_rejects_still_makes_one_cluster() {
        let r = Reject {
            source: "line 2".into(),
            id: Some("x".into()),
            reason: "bad".into(),
        };
        let cs = cluster_batch(
            0,
            vec![(0, Err(r.clone()))],
            &ClusterParams {
                tile_m: 1_000.0,
                reach_m: 1.0,
            },
        );
        assert_eq!(cs.len(), 1);
        assert_eq!((cs[0].of, cs[0].batch_records), (1, 1));
        assert!(cs[0].pois.is_empty() && cs[0].slice_box.is_none());
        assert_eq!(cs[0].read_rejects, vec![(0, r)]);
    }

    #[test]
    fn reach_radius_and_tile_side() {
        // 500 m snap + 15 min at 30 m/s (27 km) + 100 m buffer.
        assert_eq!(reach_radius_m(500.0, 15, 30.0, 100.0), 27_600.0);
        assert_eq!(default_tile_m(27_600.0), 6_900.0);
        assert_eq!(default_tile_m(100.0), 1_000.0);
        assert_eq!(default_tile_m(1e9), 20_000.0);
    }

    #[test]
    fn tiles_floor_negative_coordinates_and_spread() {
        assert_eq!(
            Tile::of(Coord { x: -0.5, y: 999.9 }, 1_000.0),
            Tile { i: -1, j: 0 }
        );
        let workers: std::collections::HashSet<u64> =
            (0..16).map(|i| Tile { i, j: 3 }.hash() % 4).collect();
        assert_eq!(workers.len(), 4, "neighbouring tiles spread over workers");
    }

    #[test]
    fn a_crowded_tile_is_split_into_compact_parts() {
        let params = ClusterParams {
            tile_m: 4_000.0,
            reach_m: 1_000.0,
        };
        // 150 POIs on a grid in one tile (a 16 × 16 block of 250 m cells, aligned with the
        // Z-curve), in a record order that jumps all over it.
        let base = Coord {
            x: 1_600_000.0,
            y: 1_900_000.0,
        };
        let records: Vec<_> = (0..150u32)
            .map(|k| {
                let m = (k * 37) % 150;
                let at = Coord {
                    x: base.x + 100.0 + (m % 10) as f64 * 380.0,
                    y: base.y + 100.0 + (m / 10) as f64 * 260.0,
                };
                (k, Ok(poi(&format!("p{k}"), at)))
            })
            .collect();
        let cs = cluster_batch(0, records, &params);
        assert_eq!(
            cs.len(),
            3,
            "150 POIs in parts of at most {MAX_CLUSTER_POIS}"
        );
        assert_eq!(
            cs.iter()
                .map(|c| (c.part, c.pois.len()))
                .collect::<Vec<_>>(),
            vec![(0, 64), (1, 64), (2, 22)]
        );
        assert!(cs.iter().all(|c| c.tile == cs[0].tile && c.of == 3));
        let mut all: Vec<u32> = cs.iter().flat_map(|c| c.pois.iter().map(|p| p.0)).collect();
        for c in &cs {
            let ids: Vec<u32> = c.pois.iter().map(|p| p.0).collect();
            assert!(ids.is_sorted(), "record order within a part");
        }
        all.sort();
        assert_eq!(all, (0..150).collect::<Vec<_>>());
        // Compact: the Z-curve takes the tile's south-west quarter, then its south-east one,
        // so the first part lies in the south half (its first 64 records would not).
        for (_, p) in &cs[0].pois {
            assert!(to_5070(p.lon, p.lat).y < base.y + 2_000.0 + 0.01);
        }
        for c in &cs {
            let b = c.slice_box.expect("POIs");
            for (_, p) in &c.pois {
                let xy = to_5070(p.lon, p.lat);
                assert!(b.min().x <= xy.x - 999.9 && b.max().x >= xy.x + 999.9);
                assert!(b.min().y <= xy.y - 999.9 && b.max().y >= xy.y + 999.9);
            }
        }
    }
}
