//! End-to-end runner: the whole job (read inputs, isochrones, join, distances, outputs) for N
//! random POIs inside the DC core. Prints wall time, per-POI time and peak RSS.
//!
//! `cargo bench --bench end_to_end -- [N] [mode] [minutes] [workers]` (defaults: 1000 drive
//! 15 1).

mod common;

use common::{data_dir, random_points_in_dc_core};
use socialmapper::config::{RunConfig, RunSettings, TravelTimes, Variables};
use socialmapper::output::peak_rss_bytes;
use socialmapper::pipeline::{self, RunOptions};
use std::io::Write;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let n: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let mode = args.get(1).cloned().unwrap_or_else(|| "drive".into());
    let minutes = args.get(2).cloned().unwrap_or_else(|| "15".into());
    let workers: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(1);
    let data = data_dir();
    let dir = tempfile::tempdir().unwrap();
    let pois = dir.path().join("pois.csv");
    let mut f = std::fs::File::create(&pois).unwrap();
    writeln!(f, "id,name,lat,lon").unwrap();
    for (k, (lon, lat)) in random_points_in_dc_core(n, 42).into_iter().enumerate() {
        writeln!(f, "p{k},random {k},{lat},{lon}").unwrap();
    }
    drop(f);
    let cfg = RunConfig::resolve(RunSettings {
        pois: Some(pois),
        network: Some(data.join("dc/roads.osm.pbf")),
        block_groups: Some(data.join("dc/cb_2020_11_bg_500k.zip")),
        acs: Some(data.join("dc/acs5_2021_bg_api.json")),
        travel_time: Some(TravelTimes::Text(minutes.clone())),
        mode: Some(mode.clone()),
        variables: Some(Variables::Text(
            "total_population,median_household_income".into(),
        )),
        out: Some(dir.path().join("out")),
        ..Default::default()
    })
    .unwrap();
    let cfg = RunConfig {
        checkpoint: Some(dir.path().join("checkpoint")),
        ..cfg
    };
    let t = Instant::now();
    let report = pipeline::run(
        &cfg,
        RunOptions {
            quiet: true,
            workers,
            fresh: false,
        },
    )
    .unwrap();
    let wall = t.elapsed().as_secs_f64();
    let stage = |s: &str| {
        report
            .timings_s
            .iter()
            .find(|(k, _)| k == s)
            .map(|t| t.1)
            .unwrap_or(0.0)
    };
    println!(
        "end_to_end: {n} POIs, {mode} {minutes} min, {} processed",
        report.counts.processed
    );
    println!(
        "  wall {wall:.3} s, {:.3} ms per POI",
        wall * 1e3 / n as f64
    );
    println!(
        "  per POI (summed over workers): isochrone {:.3} ms, join {:.3} ms, polygons {:.3} ms; distance stage {:.3} s; reading {:.3} s",
        stage("isochrone") * 1e3 / n as f64,
        stage("census_join") * 1e3 / n as f64,
        stage("polygons") * 1e3 / n as f64,
        stage("distance"),
        stage("read_network") + stage("open_pois") + stage("read_census"),
    );
    println!(
        "  settled nodes {} ({:.0} per POI)",
        report.settled_nodes,
        report.settled_nodes as f64 / n as f64
    );
    if let Some(rss) = peak_rss_bytes() {
        println!("  peak RSS {:.1} MB", rss as f64 / 1e6);
    }
}
