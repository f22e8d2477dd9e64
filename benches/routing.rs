//! Criterion benchmarks of the per-POI kernels on the DC drive network:
//! the bounded Dijkstra alone (settled nodes per second), and isochrone + block-group join.

mod common;

use common::{data_dir, random_points_in_dc_core};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use socialmapper::graph::dijkstra::Workspace;
use socialmapper::stages::census_join::{CensusIndex, JoinWorkspace, join_poi};
use socialmapper::stages::isochrone::{
    IsochroneParams, IsochroneWorkspace, LinkCells, poi_isochrone,
};
use socialmapper::stages::network::Network;
use socialmapper::types::{Direction, Mode};
use std::hint::black_box;

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
    let params = IsochroneParams {
        travel_times_min: vec![15],
        cell_m: 100.0,
        buffer_m: 100.0,
        max_snap_m: 500.0,
        max_hole_m2: 500_000.0,
    };
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
criterion_main!(benches);
