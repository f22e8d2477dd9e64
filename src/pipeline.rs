//! The whole job on one machine: load inputs, run the stages over POI batches, write outputs.
//!
//! This is the only module that knows the order of the stages. Each stage is called on a batch
//! and returns serializable results; the accumulation between batches (coverage, reach lists)
//! is explicit here so that the dataflow version can hold the same state in operators.

use crate::census::{AcsTable, BlockGroup};
use crate::checkpoint::{Checkpoint, Fingerprint, file_identity};
use crate::config::{Analysis, PoiSource, RunConfig};
use crate::dataflow::{BatchOutput, RunContext, run_batches};
use crate::error::{Error, Result};
use crate::graph::Millis;
use crate::graph::dijkstra::Workspace;
use crate::osm::OsmRoads;
use crate::output::{self, CensusRow, IsochroneWriter, RunReport};
use crate::poi::PoiInput;
use crate::stages::census_join::Coverage;
use crate::stages::distance::{network_nearest, straight_line_nearest};
use crate::stages::isochrone::{IsochroneParams, minutes_to_ms};
use crate::stages::network::Network;
use crate::types::Reject;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Everything a run reads, already parsed.
pub struct Inputs {
    /// POIs and the records rejected while reading them.
    pub pois: PoiInput,
    /// Roads of the network extract.
    pub roads: OsmRoads,
    /// Block-group boundaries.
    pub block_groups: Vec<BlockGroup>,
    /// ACS values (empty table when none were given).
    pub acs: AcsTable,
    /// What was read, for `run.json`: (role, description) pairs.
    pub described: Vec<(String, String)>,
}

/// Options that do not change results: presentation, parallelism, checkpoint handling.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// No progress bars and no summary.
    pub quiet: bool,
    /// Worker threads of the dataflow (0 or 1: one).
    pub workers: usize,
    /// Discard an existing checkpoint instead of resuming from it.
    pub fresh: bool,
}

/// Reads every input file named by `cfg`, timing each read into `timings`.
pub fn load_inputs(
    cfg: &RunConfig,
    timings: &mut Vec<(String, f64)>,
    quiet: bool,
) -> Result<Inputs> {
    let t = Instant::now();
    let spin = output::spinner(&format!("reading {}", cfg.network.display()), quiet);
    let roads = crate::osm::pbf::read_roads(&cfg.network)?;
    spin.finish_and_clear();
    timings.push(("read_network".into(), t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let pois = match &cfg.pois {
        PoiSource::File(p) => crate::poi::read_pois(p)?,
        PoiSource::OsmTag(tag) => {
            let filter = crate::osm::pois::TagFilter::parse(tag).map_err(Error::Config)?;
            let pois = crate::osm::pois::pois_by_tag(&cfg.network, &filter)?;
            PoiInput {
                records: pois.len(),
                pois,
                rejects: Vec::new(),
            }
        }
    };
    timings.push(("read_pois".into(), t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let spin = output::spinner("reading block groups and ACS values", quiet);
    let block_groups = crate::census::boundaries::read_block_groups(&cfg.block_groups)?;
    let acs = match &cfg.acs {
        Some(p) => crate::census::acs::read_acs(p, &cfg.analysis.variables)?,
        None => AcsTable::default(),
    };
    spin.finish_and_clear();
    timings.push(("read_census".into(), t.elapsed().as_secs_f64()));
    let path = |p: &Path| p.display().to_string();
    let mut described = vec![
        (
            "pois".to_string(),
            match &cfg.pois {
                PoiSource::File(p) => path(p),
                PoiSource::OsmTag(t) => format!("{t} in {}", path(&cfg.network)),
            },
        ),
        ("network".into(), path(&cfg.network)),
        ("block_groups".into(), path(&cfg.block_groups)),
    ];
    if let Some(a) = &cfg.acs {
        described.push(("acs".into(), path(a)));
    }
    Ok(Inputs {
        pois,
        roads,
        block_groups,
        acs,
        described,
    })
}

/// Runs the stages over `inputs` and writes every output into `out`.
pub fn execute(
    analysis: &Analysis,
    inputs: Inputs,
    out: &Path,
    mut timings: Vec<(String, f64)>,
    show: RunOptions,
    checkpoint: Option<Arc<Checkpoint>>,
) -> Result<RunReport> {
    let started = Instant::now();
    std::fs::create_dir_all(out).map_err(|e| Error::output(out, e))?;
    let params = IsochroneParams {
        travel_times_min: analysis.travel_times_min.clone(),
        cell_m: analysis.cell_m,
        buffer_m: analysis.buffer_m,
        max_snap_m: analysis.max_snap_m,
        max_hole_m2: analysis.max_hole_km2 * 1e6,
    };
    let mut timer = StageTimer::default();

    let spin = output::spinner(
        &format!("building the {} network", analysis.mode),
        show.quiet,
    );
    let network = timer.time("network", || {
        Network::from_roads(&inputs.roads, analysis.mode, analysis.direction)
    });
    spin.finish_and_clear();
    drop(inputs.roads);
    let ctx = timer.time("prepare", || {
        RunContext::new(
            network,
            &inputs.block_groups,
            params.clone(),
            inputs.pois.pois,
        )
    });
    let ctx = Arc::new(ctx);
    let pois = &ctx.pois;

    // Isochrones, the join and the outlines, batch by batch on the dataflow's workers; the
    // sink takes batches in order, streams outlines to disk and keeps the small per-POI results.
    let progress = output::progress_bar(pois.len() as u64, "isochrones", show.quiet);
    let bar = progress.clone();
    let acc = Arc::new(Mutex::new(BatchAccumulator {
        limits: params
            .travel_times_min
            .iter()
            .map(|m| minutes_to_ms(*m))
            .collect(),
        geojson: Some(IsochroneWriter::create(out)?),
        ..Default::default()
    }));
    let sink_acc = acc.clone();
    let batch_counts = timer.time("batches", || {
        run_batches(
            ctx.clone(),
            analysis.batch_size,
            show.workers.max(1),
            move |n| bar.inc(n),
            checkpoint,
            Box::new(move |o| {
                let id = o.batch.id;
                sink_acc.lock().unwrap_or_else(|e| e.into_inner()).add(o);
                crate::dataflow::fault_point("sink", id);
            }),
        )
    })?;
    progress.finish_and_clear();
    let mut acc = std::mem::take(&mut *acc.lock().unwrap_or_else(|e| e.into_inner()));
    if let Some(e) = acc.write_error.take() {
        return Err(e);
    }
    if let Some(w) = acc.geojson.take() {
        w.finish()?;
    }
    let BatchAccumulator {
        coverage,
        reach_by_bg,
        snaps,
        rejects: stage_rejects,
        settled_total,
        stage_seconds,
        ..
    } = acc;
    for (stage, s) in ["isochrone", "census_join", "polygons"]
        .iter()
        .zip(stage_seconds)
    {
        timer.0.push((stage.to_string(), s));
    }
    let census = &ctx.census;
    let network = &ctx.network;

    // Distances for every block group reached at the longest travel time.
    let reported: Vec<u32> = reach_by_bg.keys().copied().collect();
    let centroids: Vec<_> = reported
        .iter()
        .map(|k| census.block_groups[*k as usize].centroid)
        .collect();
    let (straight, network_near) = timer.time("distance", || {
        let poi_xy: Vec<_> = snaps
            .iter()
            .map(|(k, _)| {
                let p = &pois[*k as usize];
                (*k, crate::geom::albers::to_5070(p.lon, p.lat))
            })
            .collect();
        let straight = straight_line_nearest(&poi_xy, &centroids);
        let mut ws = Workspace::new(network.graph.node_count());
        let near = network_nearest(network, &snaps, &centroids, analysis.max_snap_m, &mut ws);
        (straight, near)
    });

    // Rows: one per travel time and reached block group, by travel time then GEOID (block
    // groups are indexed in GEOID order).
    let mut rows = Vec::new();
    for (ti, &minutes) in params.travel_times_min.iter().enumerate() {
        let limit = minutes_to_ms(minutes);
        for (r, &bg) in reported.iter().enumerate() {
            let reaching = reach_by_bg[&bg][ti];
            if reaching == 0 {
                continue;
            }
            let prepared = &census.block_groups[bg as usize];
            rows.push(CensusRow {
                geoid: prepared.geoid.clone(),
                centroid_lonlat: prepared.centroid_lonlat,
                straight: straight[r],
                network: network_near[r],
                coverage_share: coverage.share(census, bg, limit),
                pois_reaching: reaching,
                minutes,
                acs: inputs.acs.rows.get(&prepared.geoid).cloned(),
            });
        }
    }
    let union_km2: Vec<(u32, f64)> = params
        .travel_times_min
        .iter()
        .map(|&m| (m, coverage.union_area_km2(&params.grid(), minutes_to_ms(m))))
        .collect();

    let mut rejects = inputs.pois.rejects.clone();
    rejects.extend(stage_rejects);
    let report = timer.time("write", || {
        output::write_all(
            out,
            &output::RunOutputs {
                analysis,
                pois,
                rows: &rows,
                rejects: &rejects,
                acs_variables: &inputs.acs.variables,
                records_in: inputs.pois.records,
                processed: snaps.len(),
                union_km2: &union_km2,
                settled_nodes: settled_total,
                block_groups_total: census.block_groups.len(),
                inputs: &inputs.described,
            },
        )
    })?;
    let reading: f64 = timings.iter().map(|t| t.1).sum();
    timings.extend(timer.0);
    timings.push(("total".into(), reading + started.elapsed().as_secs_f64()));
    let mut report = report.with_timings(timings);
    report.batches = batch_counts;
    output::write_run_json(out, &report)?;
    if !show.quiet {
        eprint!("{}", report.summary());
    }
    Ok(report)
}

/// Runs the job described by `cfg`.
pub fn run(cfg: &RunConfig, show: RunOptions) -> Result<RunReport> {
    let checkpoint = match &cfg.checkpoint {
        Some(dir) => Some(Arc::new(Checkpoint::open(
            dir,
            &fingerprint(cfg)?,
            show.fresh,
        )?)),
        None => None,
    };
    let mut timings = Vec::new();
    let inputs = load_inputs(cfg, &mut timings, show.quiet)?;
    execute(&cfg.analysis, inputs, &cfg.out, timings, show, checkpoint)
}

/// What the results of `cfg` depend on: the analysis settings and the input files' identities.
pub fn fingerprint(cfg: &RunConfig) -> Result<Fingerprint> {
    let mut inputs = vec![
        file_identity("network", &cfg.network)?,
        file_identity("block_groups", &cfg.block_groups)?,
    ];
    match &cfg.pois {
        PoiSource::File(p) => inputs.push(file_identity("pois", p)?),
        PoiSource::OsmTag(t) => inputs.push(("poi_tag".into(), t.clone(), 0, 0)),
    }
    if let Some(a) = &cfg.acs {
        inputs.push(file_identity("acs", a)?);
    }
    Ok(Fingerprint {
        version: env!("CARGO_PKG_VERSION").to_string(),
        analysis: toml::to_string(&cfg.analysis).map_err(|e| Error::Config(e.to_string()))?,
        inputs,
    })
}

/// Accumulated wall time per stage, in first-use order.
#[derive(Default)]
struct StageTimer(Vec<(String, f64)>);

impl StageTimer {
    fn time<T>(&mut self, stage: &str, f: impl FnOnce() -> T) -> T {
        let t = Instant::now();
        let r = f();
        let dt = t.elapsed().as_secs_f64();
        match self.0.iter_mut().find(|(s, _)| s == stage) {
            Some(e) => e.1 += dt,
            None => self.0.push((stage.to_string(), dt)),
        }
        r
    }
}

/// The embedded demo town as run inputs.
pub fn town_inputs(town: crate::demo::Town) -> Inputs {
    Inputs {
        pois: PoiInput {
            records: town.pois.len(),
            pois: town.pois,
            rejects: Vec::new(),
        },
        roads: town.roads,
        block_groups: town.block_groups,
        acs: town.acs,
        described: vec![("demo".into(), "embedded synthetic town".into())],
    }
}

/// What the sink keeps of every batch, in batch order: everything but the outlines, which go
/// straight to `isochrones.geojson`.
#[derive(Default)]
struct BatchAccumulator {
    coverage: Coverage,
    /// Per block group, how many POIs reach it within each travel time (counts, not lists:
    /// memory does not grow with the number of POIs).
    reach_by_bg: BTreeMap<u32, Vec<u32>>,
    /// The travel-time limits, ms, ascending.
    limits: Vec<Millis>,
    snaps: Vec<(u32, crate::graph::snap::Snap)>,
    rejects: Vec<Reject>,
    settled_total: u64,
    stage_seconds: [f64; 3],
    /// `isochrones.geojson`, written as batches arrive.
    geojson: Option<IsochroneWriter>,
    write_error: Option<Error>,
}

impl BatchAccumulator {
    fn add(&mut self, o: BatchOutput) {
        for (k, s) in o.stage_seconds.iter().enumerate() {
            self.stage_seconds[k] += s;
        }
        for p in o.processed {
            for (bg, t) in p.reach {
                let counts = self
                    .reach_by_bg
                    .entry(bg)
                    .or_insert_with(|| vec![0; self.limits.len()]);
                for (c, limit) in counts.iter_mut().zip(&self.limits) {
                    *c += u32::from(t <= *limit);
                }
            }
            self.settled_total += p.settled_nodes as u64;
            self.snaps.push((p.poi, p.snap));
        }
        self.coverage.add_cells(&o.coverage);
        self.rejects.extend(o.rejects.into_iter().map(|(_, r)| r));
        if let (Some(w), None) = (self.geojson.as_mut(), &self.write_error) {
            for f in &o.features {
                if let Err(e) = w.write(f) {
                    self.write_error = Some(e);
                    break;
                }
            }
        }
    }
}
