//! Criterion benchmarks of the per-POI kernels on the DC drive network:
//! the bounded Dijkstra alone (settled nodes per second), and isochrone + block-group join.
//!
//! With `ROUTING_REGION=<dir>` it instead profiles the per-POI stages on a larger region
//! (`<dir>/roads.osm.pbf`, `<dir>/block_groups.geojson`, `<dir>/pois.csv` with `lat` and `lon`
//! columns; e.g. one made by `socialmapper synth`): a 15-minute drive, 100 m cells, as in a run.
//! `ROUTING_POIS` (default 500) POIs (`ROUTING_ORDER=space`: in the Hilbert order of their
//! snapped link instead of file order; `ROUTING_ORDER=dense`: that many neighbours in that
//! order from the middle of all the file's POIs, i.e. at the file's density), `ROUTING_REPS`
//! (default 5) passes after one warm-up pass (which computes the lazy block-group overlaps); it
//! prints each stage's CPU per POI, the fastest pass, because the machines this runs on are
//! shared and noisy. It then times the same POIs, taken 16 at a time in their order, as lane
//! searches, and along a run's path for a group: lane isochrones as mask rasters, joined,
//! counted and outlined from the masks (checked to give the same cells and coverage).
//! `ROUTING_PAUSE_S`
//! waits that long after loading, before the POIs, so that a profiler can be switched on for
//! them alone. The stages are timed
//! with the thread's CPU clock, not the wall clock, so that time the thread spends descheduled
//! (another process compiling on the same cores) is not counted.

mod common;

use common::{data_dir, random_points_in_dc_core};
use criterion::{Criterion, Throughput, criterion_group};
use socialmapper::config::{Analysis, RunSettings};
use socialmapper::geom::mask_trace::MaskTracer;
use socialmapper::graph::dijkstra::Workspace;
use socialmapper::graph::lanes::{LANES, LaneSearch};
use socialmapper::output::{IsochroneFeature, feature_json};
use socialmapper::stages::census_join::CoverageCounts;
use socialmapper::stages::census_join::{CensusIndex, JoinWorkspace, join_lanes, join_poi};
use socialmapper::stages::isochrone::{
    IsochroneParams, IsochroneWorkspace, LinkCells, poi_isochrone, raster_lanes,
};
use socialmapper::stages::network::Network;
use socialmapper::types::Poi;
use socialmapper::types::{Direction, Mode};
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

/// The `lat`, `lon` of the first `n` rows of a CSV file with a header.
fn read_lat_lon(path: &Path, n: usize) -> Vec<(f64, f64)> {
    let text = std::fs::read_to_string(path).expect("POI file");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header").split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).expect(name);
    let (lat, lon) = (col("lat"), col("lon"));
    lines
        .take(n)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[lon].parse().expect("lon"), f[lat].parse().expect("lat"))
        })
        .collect()
}

/// CPU seconds used by the calling thread so far.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Per-POI stage profile on the region in `dir` (see the module docs).
fn region_profile(dir: &Path) {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n, reps) = (env("ROUTING_POIS", 500), env("ROUTING_REPS", 5));
    let t = Instant::now();
    let net = Network::load_pbf(&dir.join("roads.osm.pbf"), Mode::Drive, Direction::FromPoi)
        .expect("network");
    let bgs =
        socialmapper::census::boundaries::read_block_groups(&dir.join("block_groups.geojson"))
            .expect("block groups");
    let params = drive_15();
    let census = CensusIndex::new(&bgs, params.grid());
    let t_load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let link_cells = LinkCells::new(&net, &params);
    let t_cells = t.elapsed().as_secs_f64();
    let order = std::env::var("ROUTING_ORDER").unwrap_or_default();
    let dense = order == "dense";
    let mut snaps: Vec<_> = read_lat_lon(&dir.join("pois.csv"), if dense { usize::MAX } else { n })
        .into_iter()
        .filter_map(|(lon, lat)| net.snap_lonlat(lon, lat, params.max_snap_m))
        .collect();
    if order == "space" || dense {
        // Node ids follow a Hilbert curve: sorting by the snapped link's start node puts
        // nearby POIs next to each other, to measure what a search gains from finding its
        // predecessor's network in the caches.
        snaps.sort_by_key(|s| net.graph.links[s.link as usize].start);
    }
    if dense {
        // `n` neighbours in that order from the middle of the file's POIs: the density of
        // the whole file in a small area, as lane groups of a large run see it.
        let from = (snaps.len().saturating_sub(n)) / 2;
        snaps = snaps[from..(from + n).min(snaps.len())].to_vec();
    }
    println!(
        "region {}: {} nodes, {} links, {} link cells; load {t_load:.1} s, link cells {t_cells:.1} s; {} POIs",
        dir.display(),
        net.graph.node_count(),
        net.graph.links.len(),
        link_cells.len(),
        snaps.len()
    );
    // A pause between loading and the POI loop, so that a profiler can be switched on for
    // the loop alone (`valgrind --tool=callgrind --instr-atstart=no`, then
    // `callgrind_control -i on` once the line above is printed).
    if let Some(s) = std::env::var("ROUTING_PAUSE_S")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::sleep(std::time::Duration::from_secs_f64(s));
    }
    let poi = Poi {
        id: "p".into(),
        name: "p".into(),
        kind: "custom".into(),
        lon: 0.0,
        lat: 0.0,
        state: None,
        tags: Default::default(),
        source: "1".into(),
    };
    let grid = params.grid();
    let mut iso_ws = IsochroneWorkspace::new(&net);
    let mut join_ws = JoinWorkspace::default();
    let mut search = Workspace::default();
    let limit = params.limit_ms();
    let mut best = [f64::INFINITY; 7];
    let mut lane_ws = IsochroneWorkspace::new(&net);
    let mut lanes = LaneSearch::default();
    let mut tracer = MaskTracer::default();
    let mut scans = 0usize;
    let mut json = String::new();
    let (mut cells, mut settled) = (0usize, 0usize);
    for rep in 0..=reps {
        let mut took = [0.0; 7];
        let mut coverage = CoverageCounts::new(&params.limits_ms());
        (cells, settled) = (0, 0);
        for (k, s) in snaps.iter().enumerate() {
            // The search alone, to split the isochrone's time into search and raster.
            let t = thread_cpu_s();
            black_box(search.run_times(&net.graph, &net.seeds(s, k as u32), Some(limit)));
            took[3] += thread_cpu_s() - t;
            let t = thread_cpu_s();
            let iso = poi_isochrone(&net, &link_cells, &params, k as u32, *s, &mut iso_ws);
            took[0] += thread_cpu_s() - t;
            let t = thread_cpu_s();
            coverage.add(&iso, 1).expect("adding counts");
            black_box(join_poi(&census, &iso, &mut join_ws));
            took[1] += thread_cpu_s() - t;
            let t = thread_cpu_s();
            let feature = IsochroneFeature::new(&poi, &iso, 15, Mode::Drive, &grid);
            took[2] += thread_cpu_s() - t;
            // The sink's share: the feature as a line of isochrones.geojson.
            let t = thread_cpu_s();
            json.clear();
            feature_json(&mut json, &feature);
            black_box(&json);
            took[4] += thread_cpu_s() - t;
            cells += iso.cells.len();
            settled += iso.settled_nodes as usize;
        }
        let coverage_delta = coverage.to_delta();
        // The same POIs' searches in groups of LANES (lane search).
        let t = thread_cpu_s();
        scans = 0;
        for (g, group) in snaps.chunks(LANES).enumerate() {
            let seeds: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(k, s)| net.seeds(s, (g * LANES + k) as u32))
                .collect();
            lanes.run(&net.graph, &seeds, limit);
            scans += lanes.scans();
        }
        took[5] += thread_cpu_s() - t;
        // And the whole per-group path of a run (search included): lane isochrones as mask
        // rasters, joined, counted and outlined from the masks. Checked against the
        // one-at-a-time isochrones' cell counts.
        let t = thread_cpu_s();
        let mut lane_cells = 0;
        let mut lane_coverage = CoverageCounts::new(&params.limits_ms());
        for (g, group) in snaps.chunks(LANES).enumerate() {
            let group: Vec<_> = group
                .iter()
                .enumerate()
                .map(|(k, s)| ((g * LANES + k) as u32, *s))
                .collect();
            raster_lanes(&net, &link_cells, &params, &group, &mut lane_ws);
            let Some(raster) = lane_ws.lane_raster() else {
                continue;
            };
            lane_coverage.add_lanes(&raster);
            black_box(join_lanes(&census, &raster, group.len()));
            let (c0, w, h) = (raster.c0, raster.w, raster.h);
            for outline in tracer.trace(raster.within(0), c0, w, h, group.len(), grid.cell_m) {
                lane_cells += outline.cells as usize;
                black_box(outline);
            }
        }
        took[6] += thread_cpu_s() - t;
        assert_eq!(lane_cells, cells, "lane isochrones have the same cells");
        assert_eq!(
            lane_coverage.to_delta(),
            coverage_delta,
            "and the same coverage"
        );
        if rep > 0 {
            for (b, t) in best.iter_mut().zip(took) {
                *b = b.min(t);
            }
        }
    }
    let per = |s: f64| s * 1e3 / snaps.len().max(1) as f64;
    println!(
        "per POI ({} settled nodes, {} cells): isochrone {:.3} ms (search {:.3} ms), join {:.3} ms, outlines {:.3} ms, sum {:.3} ms; sink's GeoJSON {:.3} ms (fastest of {reps} passes)",
        settled / snaps.len().max(1),
        cells / snaps.len().max(1),
        per(best[0]),
        per(best[3]),
        per(best[1]),
        per(best[2]),
        per(best[..3].iter().sum()),
        per(best[4])
    );
    println!(
        "lane search ({LANES} lanes): {:.3} ms per POI; lane isochrones, join and outlines from the masks (a run's path) {:.3} ms per POI; {:.2} node scans per group per settled node of a POI",
        per(best[5]),
        per(best[6]),
        scans as f64
            / snaps.len().div_ceil(LANES) as f64
            / (settled as f64 / snaps.len().max(1) as f64)
    );
}

fn bench(c: &mut Criterion) {
    let data = data_dir();
    let net = Network::load_pbf(
        &data.join("dc/roads.osm.pbf"),
        Mode::Drive,
        Direction::FromPoi,
    )
    .unwrap();
    let bgs = socialmapper::census::boundaries::read_block_groups(
        &data.join("dc/cb_2020_11_bg_500k.zip"),
    )
    .unwrap();
    let params = drive_15();
    let census = CensusIndex::new(&bgs, params.grid());
    let link_cells = LinkCells::new(&net, &params);
    let snaps: Vec<_> = random_points_in_dc_core(64, 7)
        .into_iter()
        .filter_map(|(lon, lat)| net.snap_lonlat(lon, lat, 500.0))
        .collect();

    // Settled nodes per run, to report throughput in nodes.
    let mut ws = Workspace::new(net.graph.node_count());
    let settled: usize = snaps
        .iter()
        .map(|s| ws.run(&net.graph, &net.seeds(s, 0), Some(15 * 60_000)))
        .sum();
    let mut g = c.benchmark_group("drive_15min_dc");
    g.throughput(Throughput::Elements(settled as u64));
    g.bench_function("bounded_dijkstra_x64", |b| {
        b.iter(|| {
            for s in &snaps {
                black_box(ws.run(&net.graph, &net.seeds(s, 0), Some(15 * 60_000)));
            }
        })
    });
    g.throughput(Throughput::Elements(snaps.len() as u64));
    let mut iso_ws = IsochroneWorkspace::new(&net);
    let mut join_ws = JoinWorkspace::default();
    // Warm the lazily computed block-group cell overlaps, as in a run of many POIs.
    for s in &snaps {
        join_poi(
            &census,
            &poi_isochrone(&net, &link_cells, &params, 0, *s, &mut iso_ws),
            &mut join_ws,
        );
    }
    g.bench_function("isochrone_and_join_per_poi_x64", |b| {
        b.iter(|| {
            for s in &snaps {
                let iso = poi_isochrone(&net, &link_cells, &params, 0, *s, &mut iso_ws);
                black_box(join_poi(&census, &iso, &mut join_ws));
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
fn main() {
    match std::env::var_os("ROUTING_REGION") {
        Some(dir) => region_profile(Path::new(&dir)),
        None => {
            benches();
            Criterion::default().configure_from_args().final_summary();
        }
    }
}

/// The run's defaults (a 15-minute drive), as `socialmapper run` resolves them.
fn drive_15() -> IsochroneParams {
    Analysis::resolve(&RunSettings::default())
        .expect("the defaults are valid")
        .isochrone_params()
}
