//! Criterion benchmarks of the geometry and graph-building kernels that used to be timed by
//! ignored unit tests (speed lives in benchmarks, not in tests):
//!
//! * `graph_build`: reading an `.osm.pbf` and building each mode's graph and snap index
//!   (DC and Columbus, OH);
//! * `trace_cells`: outlining random-walk cell sets of 10⁴ and 10⁵ cells and a compact disc;
//! * `cell_overlaps`: a block group's exact area in every grid cell, for DC's first two block
//!   groups and its largest at 25 m and 100 m, two synthetic ~10⁵-cell polygons, and a pass
//!   over all of DC's block groups.
//!
//! `cargo bench --bench kernels [-- FILTER]`.

mod common;

use common::data_dir;
use criterion::{Criterion, criterion_group, criterion_main};
use geo::{Area, Coord, LineString, MapCoords, MultiPolygon, Polygon};
use socialmapper::geom::albers::to_5070;
use socialmapper::geom::clip::{ClipScratch, cell_overlaps_with};
use socialmapper::geom::grid::{Cell, Grid, trace_cells};
use socialmapper::graph::build::{BuildOptions, build_graph_with_stats};
use socialmapper::graph::snap::SnapIndex;
use socialmapper::osm::pbf::read_roads;
use socialmapper::testdata::XorShift;
use socialmapper::types::{Direction, Mode};
use std::collections::BTreeSet;
use std::hint::black_box;

fn graph_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("graph_build");
    g.sample_size(10);
    for file in ["dc/roads.osm.pbf", "osm_more/columbus_oh.osm.pbf"] {
        let path = data_dir().join(file);
        let name = file.split('/').next_back().unwrap_or(file);
        g.bench_function(format!("read {name}"), |b| {
            b.iter(|| black_box(read_roads(&path).expect("read")))
        });
        let roads = read_roads(&path).expect("read");
        for mode in [Mode::Drive, Mode::Walk, Mode::Bike] {
            let build = || {
                build_graph_with_stats(&roads, mode, Direction::FromPoi, &BuildOptions::default())
            };
            let (graph, stats) = build();
            let index = SnapIndex::new(&graph);
            println!(
                "{name} {mode}: {} ways, {} nodes read; {stats:?}; snap index of {} segments",
                roads.ways.len(),
                roads.nodes.len(),
                index.segment_count()
            );
            g.bench_function(format!("build {name} {mode}"), |b| {
                b.iter(|| black_box(build()))
            });
            g.bench_function(format!("snap index {name} {mode}"), |b| {
                b.iter(|| black_box(SnapIndex::new(&graph)))
            });
        }
    }
    g.finish();
}

/// `target` distinct cells visited by a seeded random walk, sorted.
fn random_walk(target: usize) -> Vec<Cell> {
    let mut rng = XorShift(7);
    let mut set = BTreeSet::new();
    let (mut i, mut j) = (0i32, 0i32);
    while set.len() < target {
        set.insert(Cell { i, j });
        match rng.below(4) {
            0 => i += 1,
            1 => i -= 1,
            2 => j += 1,
            _ => j -= 1,
        }
    }
    set.into_iter().collect()
}

fn trace(c: &mut Criterion) {
    let mut g = c.benchmark_group("trace_cells");
    for target in [10_000usize, 100_000] {
        let cells = random_walk(target);
        let mp = trace_cells(&cells, 25.0);
        // A check that the benchmark measures what it claims: the outline is exact.
        assert_eq!(mp.unsigned_area(), cells.len() as f64 * 625.0);
        g.bench_function(format!("random walk {target} cells"), |b| {
            b.iter(|| black_box(trace_cells(black_box(&cells), 25.0)))
        });
    }
    // A compact, isochrone-like disc of ~10,000 cells.
    let disc: Vec<Cell> = (-60..=60)
        .flat_map(|i| (-60..=60).map(move |j| Cell { i, j }))
        .filter(|c| c.i * c.i + c.j * c.j <= 56 * 56)
        .collect();
    g.bench_function(format!("disc {} cells", disc.len()), |b| {
        b.iter(|| black_box(trace_cells(black_box(&disc), 25.0)))
    });
    g.finish();
}

/// DC's block groups, projected to EPSG:5070: (GEOID, boundary).
fn dc_block_groups() -> Vec<(String, MultiPolygon<f64>)> {
    let path = data_dir().join("dc/block_groups.geojson");
    socialmapper::census::boundaries::read_block_groups(&path)
        .expect("DC block groups")
        .into_iter()
        .map(|bg| (bg.geoid, bg.boundary.map_coords(|c| to_5070(c.x, c.y))))
        .collect()
}

fn closed_ring(v: &[(f64, f64)]) -> LineString<f64> {
    let mut pts: Vec<Coord<f64>> = v.iter().map(|&(x, y)| Coord { x, y }).collect();
    pts.push(pts[0]);
    LineString(pts)
}

/// A random star-shaped ring of `n` vertices around `(cx, cy)`, radii `0.5 r ..= r`, at jittered
/// increasing angles (so the ring is simple).
fn random_star(rng: &mut XorShift, cx: f64, cy: f64, r: f64, n: usize) -> Polygon<f64> {
    let v: Vec<(f64, f64)> = (0..n)
        .map(|k| {
            let a = (k as f64 + 0.5 * rng.unit()) / n as f64 * std::f64::consts::TAU;
            let rr = r * (0.5 + 0.5 * rng.unit());
            (cx + rr * a.cos(), cy + rr * a.sin())
        })
        .collect();
    Polygon::new(closed_ring(&v), vec![])
}

fn overlaps(c: &mut Criterion) {
    let bgs = dc_block_groups();
    let mut g = c.benchmark_group("cell_overlaps");
    let run = |g: &mut criterion::BenchmarkGroup<_>, name: String, mp: &MultiPolygon<f64>| {
        let (mut s, mut out) = (ClipScratch::new(), Vec::new());
        for cell_m in [25.0, 100.0] {
            let grid = Grid { cell_m };
            cell_overlaps_with(mp, &grid, &mut s, &mut out);
            g.bench_function(format!("{name} at {cell_m} m ({} cells)", out.len()), |b| {
                b.iter(|| cell_overlaps_with(black_box(mp), &grid, &mut s, &mut out))
            });
        }
    };
    for (geoid, mp) in &bgs[..2] {
        run(&mut g, format!("DC {geoid}"), mp);
    }
    if let Some((geoid, mp)) = bgs
        .iter()
        .max_by(|a, b| a.1.unsigned_area().total_cmp(&b.1.unsigned_area()))
    {
        run(&mut g, format!("DC largest {geoid}"), mp);
    }
    // Synthetic, ~100,000 cells of 25 m: a 500-gon of radius 4.46 km with 2 % radial jitter
    // (perimeter ≈ 1,100 cells), and a spiky 500-vertex star (radii 0.5–1 × 5.6 km, perimeter
    // ≈ 25,000 cells).
    let mut rng = XorShift(3);
    let round: Vec<(f64, f64)> = (0..500)
        .map(|k| {
            let a = k as f64 / 500.0 * std::f64::consts::TAU;
            let r = 4_460.0 * (0.98 + 0.02 * rng.unit());
            (1_000_000.0 + r * a.cos(), 1_500_000.0 + r * a.sin())
        })
        .collect();
    let round = MultiPolygon(vec![Polygon::new(closed_ring(&round), vec![])]);
    run(&mut g, "synthetic round 500-gon".into(), &round);
    let star = MultiPolygon(vec![random_star(
        &mut rng,
        1_000_000.0,
        1_500_000.0,
        5_600.0,
        500,
    )]);
    run(&mut g, "synthetic spiky star".into(), &star);
    let (mut s, mut out) = (ClipScratch::new(), Vec::new());
    let grid = Grid { cell_m: 25.0 };
    g.sample_size(10);
    g.bench_function(format!("all {} DC block groups at 25 m", bgs.len()), |b| {
        b.iter(|| {
            let mut n = 0;
            for (_, mp) in &bgs {
                cell_overlaps_with(mp, &grid, &mut s, &mut out);
                n += out.len();
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, trace, overlaps, graph_build);
criterion_main!(benches);
