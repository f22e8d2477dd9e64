//! The whole job on the real Washington DC data, cross-checked against computations made
//! inside this test: EPSG:5070 (own formulation), polygon centroids (own shoelace), nearest
//! road points (brute force over every segment) and travel times (petgraph's Dijkstra).

mod common;

use common::{albers_5070, col, data_dir, read_csv};
use socialmapper::config::{RunConfig, RunSettings, TravelTimes, Variables};
use socialmapper::pipeline::{self, RunOptions};
use socialmapper::stages::network::Network;
use socialmapper::types::{Direction, Mode};
use std::collections::HashMap;
use std::path::Path;

const DUPONT: (f64, f64) = (-77.0435238, 38.9097773);

fn run_dupont(mode: &str, minutes: &str, out: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let data = data_dir();
    let pois = out.join("dupont.csv");
    std::fs::create_dir_all(out).unwrap();
    std::fs::write(
        &pois,
        format!(
            "id,name,lat,lon\n738182031,Dupont Circle,{},{}\n",
            DUPONT.1, DUPONT.0
        ),
    )
    .unwrap();
    let cfg = RunConfig::resolve(RunSettings {
        pois: Some(pois),
        network: Some(data.join("dc/roads.osm.pbf")),
        block_groups: Some(data.join("dc/cb_2020_11_bg_500k.zip")),
        acs: Some(data.join("dc/acs5_2021_bg_api.json")),
        travel_time: Some(TravelTimes::Text(minutes.into())),
        mode: Some(mode.into()),
        variables: Some(Variables::Text(
            "total_population,median_household_income".into(),
        )),
        out: Some(out.to_path_buf()),
        ..Default::default()
    })
    .unwrap();
    let cfg = RunConfig {
        checkpoint: None,
        ..cfg
    };
    pipeline::run(
        &cfg,
        RunOptions {
            quiet: true,
            workers: 1,
            fresh: false,
        },
    )
    .unwrap();
    read_csv(&out.join("census.csv"))
}

/// Nearest point of the network to `p` by brute force over every link segment:
/// (link, fraction along the link, distance).
fn brute_snap(net: &Network, p: (f64, f64)) -> (u32, f64, f64) {
    let g = &net.graph;
    let mut best = (u32::MAX, 0.0, f64::MAX);
    for link in 0..g.links.len() as u32 {
        let pts = g.link_geometry(link);
        let total: f64 = pts
            .windows(2)
            .map(|s| (s[1].x - s[0].x).hypot(s[1].y - s[0].y))
            .sum();
        let mut run = 0.0;
        for s in pts.windows(2) {
            let (dx, dy) = (s[1].x - s[0].x, s[1].y - s[0].y);
            let l2 = dx * dx + dy * dy;
            let t = if l2 > 0.0 {
                (((p.0 - s[0].x) * dx + (p.1 - s[0].y) * dy) / l2).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let d = (s[0].x + t * dx - p.0).hypot(s[0].y + t * dy - p.1);
            if d < best.2 {
                best = (
                    link,
                    if total > 0.0 {
                        (run + t * l2.sqrt()) / total
                    } else {
                        0.0
                    },
                    d,
                );
            }
            run += l2.sqrt();
        }
    }
    best
}

/// Area-weighted centroid of a multipolygon given in lon/lat, computed in EPSG:5070.
fn centroid_5070(mp: &geo::MultiPolygon<f64>) -> (f64, f64) {
    let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for poly in &mp.0 {
        for ring in std::iter::once(poly.exterior()).chain(poly.interiors()) {
            let pts: Vec<_> = ring.0.iter().map(|c| albers_5070(c.x, c.y)).collect();
            // +1 for the exterior, -1 for holes, whatever the ring orientation.
            let sign = if std::ptr::eq(ring, poly.exterior()) {
                1.0
            } else {
                -1.0
            };
            let (mut ra, mut rx, mut ry) = (0.0, 0.0, 0.0);
            for w in pts.windows(2) {
                let cross = w[0].0 * w[1].1 - w[1].0 * w[0].1;
                ra += cross;
                rx += (w[0].0 + w[1].0) * cross;
                ry += (w[0].1 + w[1].1) * cross;
            }
            // A ring's centroid is (rx/6)/(ra/2) whatever its orientation; weigh it by its
            // unsigned area, positive for the exterior and negative for holes.
            a += sign * ra.abs() / 2.0;
            cx += sign * ra.signum() * rx / 6.0;
            cy += sign * ra.signum() * ry / 6.0;
        }
    }
    (cx / a, cy / a)
}

/// Travel times (ms) from the POI's brute-force snap point to every block-group centroid's
/// brute-force snap point, by petgraph's Dijkstra on a copy of the graph.
fn oracle_times(net: &Network, poi: (f64, f64), targets: &[(f64, f64)]) -> Vec<Option<f64>> {
    let g = &net.graph;
    let mut pg = petgraph::graph::DiGraph::<(), u64>::new();
    let nodes: Vec<_> = (0..g.node_count()).map(|_| pg.add_node(())).collect();
    for u in 0..g.node_count() {
        for e in g.first_out[u] as usize..g.first_out[u + 1] as usize {
            pg.add_edge(nodes[u], nodes[g.head[e] as usize], g.time_ms[e] as u64);
        }
    }
    let src = pg.add_node(());
    let (plink, pf, pd) = brute_snap(net, poi);
    assert!(pd < 100.0, "Dupont Circle is {pd} m from a road");
    let l = &g.links[plink as usize];
    let tt = |e: Option<u32>| e.map(|e| g.time_ms[e as usize] as f64);
    if let Some(t) = tt(l.edge_along) {
        pg.add_edge(src, nodes[l.end as usize], ((1.0 - pf) * t).round() as u64);
    }
    if let Some(t) = tt(l.edge_against) {
        pg.add_edge(src, nodes[l.start as usize], (pf * t).round() as u64);
    }
    let dist = petgraph::algo::dijkstra(&pg, src, None, |e| *e.weight());
    let at = |n: u32| dist.get(&nodes[n as usize]).map(|d| *d as f64);
    targets
        .iter()
        .map(|&c| {
            let (link, f, d) = brute_snap(net, c);
            if d > 500.0 {
                return None;
            }
            let l = &g.links[link as usize];
            let mut best: Option<f64> = None;
            let mut offer = |t: f64| best = Some(best.map_or(t, |b: f64| b.min(t)));
            if let (Some(t), Some(d0)) = (tt(l.edge_along), at(l.start)) {
                offer(d0 + f * t);
            }
            if let (Some(t), Some(d0)) = (tt(l.edge_against), at(l.end)) {
                offer(d0 + (1.0 - f) * t);
            }
            if link == plink {
                if let (Some(t), true) = (tt(l.edge_along), f >= pf) {
                    offer((f - pf) * t);
                }
                if let (Some(t), true) = (tt(l.edge_against), f <= pf) {
                    offer((pf - f) * t);
                }
            }
            best
        })
        .collect()
}

fn acs_json() -> HashMap<String, Vec<String>> {
    let text = std::fs::read_to_string(data_dir().join("dc/acs5_2021_bg_api.json")).unwrap();
    let rows: Vec<Vec<String>> = serde_json::from_str(&text).unwrap();
    let h = &rows[0];
    let k = |n: &str| h.iter().position(|c| c == n).unwrap();
    rows[1..]
        .iter()
        .map(|r| {
            let geoid = format!(
                "{}{}{}{}",
                r[k("state")],
                r[k("county")],
                r[k("tract")],
                r[k("block group")]
            );
            (
                geoid,
                vec![r[k("B01003_001E")].clone(), r[k("B19013_001E")].clone()],
            )
        })
        .collect()
}

/// ACS cells must be the JSON's values, with the missing-value sentinel as an empty cell.
fn check_acs(header: &[String], rows: &[Vec<String>]) -> usize {
    let json = acs_json();
    let (pop, inc) = (col(header, "B01003_001E"), col(header, "B19013_001E"));
    let mut sentinels = 0;
    for r in rows {
        let want = &json[&r[0]];
        assert_eq!(r[pop], want[0], "population of {}", r[0]);
        if want[1] == "-666666666" {
            assert_eq!(r[inc], "", "income sentinel of {} must be empty", r[0]);
            sentinels += 1;
        } else {
            assert_eq!(r[inc], want[1], "income of {}", r[0]);
        }
    }
    sentinels
}

#[test]
fn dupont_circle_ten_minute_walk_matches_independent_computations() {
    let dir = tempfile::tempdir().unwrap();
    let (header, rows) = run_dupont("walk", "10", dir.path());
    let reported: HashMap<&str, &Vec<String>> = rows.iter().map(|r| (r[0].as_str(), r)).collect();
    assert!(
        rows.len() >= 10,
        "a 10-minute walk from Dupont Circle reaches only {} block groups",
        rows.len()
    );

    let net = Network::load_pbf(
        &data_dir().join("dc/roads.osm.pbf"),
        Mode::Walk,
        Direction::FromPoi,
    )
    .unwrap();
    let bgs = socialmapper::census::boundaries::read_block_groups(
        &data_dir().join("dc/cb_2020_11_bg_500k.zip"),
    )
    .unwrap();
    let centroids: Vec<_> = bgs.iter().map(|b| centroid_5070(&b.boundary)).collect();
    let poi = albers_5070(DUPONT.0, DUPONT.1);
    let times = oracle_times(&net, poi, &centroids);

    // Every block group whose centroid is within 10 network minutes is reported, with the
    // same time; and reported network times agree with the oracle wherever they exist.
    let (tcol, kmcol) = (
        col(&header, "network_time_min"),
        col(&header, "travel_distance_km"),
    );
    let mut within = 0;
    for ((bg, c), t) in bgs.iter().zip(&centroids).zip(&times) {
        if let Some(t) = t.filter(|t| *t <= 600_000.0) {
            within += 1;
            let row = reported.get(bg.geoid.as_str()).unwrap_or_else(|| {
                panic!(
                    "{} is {:.2} min away but not reported",
                    bg.geoid,
                    t / 60_000.0
                )
            });
            let got: f64 = row[tcol].parse().unwrap();
            assert!(
                (got - t / 60_000.0).abs() < 6e-4,
                "{}: {got} min, oracle {}",
                bg.geoid,
                t / 60_000.0
            );
        }
        if let Some(row) = reported.get(bg.geoid.as_str()) {
            if let (Ok(got), Some(t)) = (row[tcol].parse::<f64>(), t) {
                assert!(
                    (got - t / 60_000.0).abs() < 6e-4,
                    "{}: {got} min, oracle {}",
                    bg.geoid,
                    t / 60_000.0
                );
            }
            // Straight-line distance in EPSG:5070 to 1 m.
            let km: f64 = row[kmcol].parse().unwrap();
            let want = (c.0 - poi.0).hypot(c.1 - poi.1);
            assert!(
                (km * 1000.0 - want).abs() < 1.0,
                "{}: {km} km, independent {want} m",
                bg.geoid
            );
            let (lon, lat): (f64, f64) = (
                row[col(&header, "centroid_lon")].parse().unwrap(),
                row[col(&header, "centroid_lat")].parse().unwrap(),
            );
            let back = albers_5070(lon, lat);
            assert!(
                (back.0 - c.0).hypot(back.1 - c.1) < 1.0,
                "{} centroid",
                bg.geoid
            );
        }
    }
    assert!(
        within >= 5,
        "only {within} centroids within 10 minutes: the check would be vacuous"
    );
    for r in &rows {
        assert_eq!(r[col(&header, "nearest_poi_id")], "738182031");
        assert_eq!(r[col(&header, "travel_mode")], "walk");
        assert_eq!(r[col(&header, "travel_time_minutes")], "10");
        let share: f64 = r[col(&header, "coverage_share")].parse().unwrap();
        assert!(share > 0.0 && share <= 1.0, "{}: share {share}", r[0]);
        let miles: f64 = r[col(&header, "travel_distance_miles")].parse().unwrap();
        let km: f64 = r[kmcol].parse().unwrap();
        assert!((miles - km * 0.621371).abs() < 1e-3);
    }
    check_acs(&header, &rows);
}

#[test]
fn fifteen_minute_drive_joins_acs_with_sentinels_empty() {
    let dir = tempfile::tempdir().unwrap();
    let (header, rows) = run_dupont("drive", "5,15", dir.path());
    let minutes: Vec<u32> = rows
        .iter()
        .map(|r| r[col(&header, "travel_time_minutes")].parse().unwrap())
        .collect();
    assert!(
        minutes.windows(2).all(|w| w[0] <= w[1]),
        "rows sorted by travel time"
    );
    for m in [5, 15] {
        let ids: Vec<&str> = rows
            .iter()
            .zip(&minutes)
            .filter(|(_, t)| **t == m)
            .map(|(r, _)| r[0].as_str())
            .collect();
        assert!(
            ids.windows(2).all(|w| w[0] < w[1]),
            "rows of {m} min sorted by GEOID"
        );
    }
    let n15 = minutes.iter().filter(|m| **m == 15).count();
    let n5 = minutes.iter().filter(|m| **m == 5).count();
    assert!(
        n15 > 200 && n5 < n15,
        "5 min: {n5}, 15 min: {n15} block groups"
    );
    let sentinels = check_acs(&header, &rows);
    assert!(
        sentinels > 0,
        "no income sentinel among {} rows: the check would be vacuous",
        rows.len()
    );
}
