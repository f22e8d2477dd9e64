//! The whole job on one machine: load inputs, run the stages over POI batches, write outputs.
//!
//! This is the only module that knows the order of the stages. Each stage is called on a batch
//! and returns serializable results; the accumulation between batches (coverage, reach lists)
//! is explicit here so that the dataflow version can hold the same state in operators.

use crate::census::{AcsTable, BlockGroup};
use crate::checkpoint::{Checkpoint, Fingerprint, file_identity};
use crate::config::{Analysis, PoiSource, RunConfig};
use crate::dataflow::{
    BatchCounts, BatchResult, BatchSink, PoiRecords, ProcessedPoi, ReachChanges, ReachCounts,
    RecordsInMemory, RunContext, fault_point, run_batches,
};
use crate::error::{Error, Result};
use crate::graph::Millis;
use crate::osm::OsmRoads;
use crate::output::{
    self, CensusRow, NetworkReport, RunReport, StreamProgress, StreamedOutputs, WindowPart,
};
use crate::stages::census_join::{CensusIndex, CoverageCounts, CoverageDelta};
use crate::stages::cluster::{ClusterParams, default_tile_m, reach_radius_m};
use crate::stages::distance::{NetworkFold, NetworkNearest, StraightFold};
use crate::stages::network::{LocalExtract, Network, NetworkSlice};
use crate::stages::order::{closes_window, window_start};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// Everything a run reads: the POIs as a stream of records, the rest parsed.
pub struct Inputs {
    /// POI records, read batch by batch by the dataflow's source.
    pub pois: Box<dyn PoiRecords>,
    /// Roads of the network extract.
    pub roads: OsmRoads,
    /// Block-group boundaries.
    pub block_groups: Vec<BlockGroup>,
    /// ACS values (empty table when none were given).
    pub acs: AcsTable,
    /// What was read, for `run.json`: (role, description) pairs.
    pub described: Vec<(String, String)>,
    /// ACS values to fetch once the reached block groups are known (online runs; `acs` is
    /// then empty).
    pub acs_fetch: Option<AcsFetch>,
}

/// Fetches the ACS values of the block groups whose GEOIDs it is given; returns them with
/// (role, description) pairs for `run.json`.
pub type AcsFetch = Box<dyn FnOnce(&[String]) -> Result<(AcsTable, Vec<(String, String)>)> + Send>;

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

/// Opens the POI records named by `cfg` (POIs found in the network extract are collected
/// first; a POI file is read as the dataflow asks for batches). Online POI sources are
/// opened by [`crate::online::load_inputs`].
pub(crate) fn open_pois(cfg: &RunConfig) -> Result<Box<dyn PoiRecords>> {
    Ok(match &cfg.pois {
        PoiSource::File(p) => Box::new(PoiFile {
            path: p.clone(),
            stream: crate::poi::open_pois(p)?,
        }),
        PoiSource::OsmTag(tag) => {
            let filter = crate::osm::pois::TagFilter::parse(tag).map_err(Error::Config)?;
            let network = cfg.network.as_deref().ok_or_else(|| {
                Error::Config("--poi-tag without --place or --bbox needs a --network file".into())
            })?;
            Box::new(RecordsInMemory::from_pois(crate::osm::pois::pois_by_tag(
                network, &filter,
            )?))
        }
        PoiSource::Overpass { .. } | PoiSource::Addresses(_) => {
            return Err(Error::Config(
                "internal: online POIs are opened by the online loader".into(),
            ));
        }
    })
}

/// A POI file, streamed.
struct PoiFile {
    path: std::path::PathBuf,
    stream: crate::poi::PoiStream,
}

impl PoiRecords for PoiFile {
    fn next_batch(&mut self, max: usize) -> Result<Option<Vec<crate::poi::PoiRecord>>> {
        self.stream.next_chunk(max)
    }

    fn reopen(&self) -> Result<Box<dyn PoiRecords>> {
        Ok(Box::new(PoiFile {
            path: self.path.clone(),
            stream: crate::poi::open_pois(&self.path)?,
        }))
    }
}

/// Reads every input file named by `cfg` but the POIs, which are opened for streaming; times
/// each read into `timings`.
pub fn load_inputs(
    cfg: &RunConfig,
    timings: &mut Vec<(String, f64)>,
    quiet: bool,
) -> Result<Inputs> {
    let (Some(network), Some(block_groups), false) =
        (&cfg.network, &cfg.block_groups, cfg.is_online())
    else {
        return crate::online::load_inputs(cfg, timings, quiet);
    };
    let t = Instant::now();
    let spin = output::spinner(&format!("reading {}", network.display()), quiet);
    let roads = crate::osm::pbf::read_roads(network)?;
    spin.finish_and_clear();
    timings.push(("read_network".into(), t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let pois = open_pois(cfg)?;
    timings.push(("open_pois".into(), t.elapsed().as_secs_f64()));
    let t = Instant::now();
    let spin = output::spinner("reading block groups and ACS values", quiet);
    let block_groups = crate::census::boundaries::read_block_groups(block_groups)?;
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
                PoiSource::OsmTag(t) => format!("{t} in {}", path(network)),
                PoiSource::Overpass { .. } | PoiSource::Addresses(_) => String::new(),
            },
        ),
        ("network".into(), path(network)),
        (
            "block_groups".into(),
            path(&cfg.block_groups.clone().unwrap_or_default()),
        ),
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
        acs_fetch: None,
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
    let params = analysis.isochrone_params();
    let mut timer = StageTimer::default();

    let spin = output::spinner(
        &format!("building the {} network", analysis.mode),
        show.quiet,
    );
    let (ctx, whole) = prepare(analysis, &inputs.roads, &inputs.block_groups, &mut timer)?;
    spin.finish_and_clear();
    drop(inputs.roads);
    let reach_m = ctx.cluster.reach_m;

    // Batches committed by an earlier run are replayed into the sink; the part files of the
    // streamed outputs go back to where the last of them left them.
    let mut acc = timer.time("distance", || Accumulated::new(analysis, &ctx, &whole));
    let mut resume = None;
    let order_window = analysis.order_window.max(1) as u64;
    // What the batches of the open order window (the last one, unless it was complete) put
    // into it.
    let mut window = Vec::new();
    let committed = match &checkpoint {
        Some(cp) => {
            let n = cp.committed()?;
            let window_start = window_start(n, order_window);
            timer.time("replay", || -> Result<()> {
                for id in 0..n {
                    let rec: BatchRecord = cp.load(id)?;
                    acc.apply(&rec, &whole.network)?;
                    resume = Some(rec.streams);
                    if id >= window_start {
                        window.push(rec.window);
                    }
                }
                Ok(())
            })?;
            // A finished run's last window was copied out and its window file emptied.
            if let Some(last) = cp.get::<StreamProgress>(KEY_STREAMS_FINISHED)? {
                resume = Some(last);
                window.clear();
            }
            n
        }
        None => 0,
    };
    let streams = match &checkpoint {
        Some(cp) => StreamedOutputs::open(&cp.sinks_dir(), resume, window, false)?,
        None => StreamedOutputs::open(out, None, Vec::new(), true)?,
    };
    let committed_reach: ReachCounts = acc.reach.clone().into_iter().collect();
    let sink = RunSink {
        checkpoint: checkpoint.clone(),
        network: whole.clone(),
        streams,
        order_window,
        acc,
    };

    // The dataflow: clusters, network slices, isochrones, the join and the outlines, batch by
    // batch on the workers; the sink takes batches in order and streams outputs to disk.
    let progress = output::counter("POIs", show.quiet);
    let bar = progress.clone();
    let (sink, records, stats) = timer.time("batches", || {
        run_batches(
            ctx.clone(),
            inputs.pois,
            analysis.batch_size,
            analysis.order_window,
            committed,
            committed_reach,
            show.workers.max(1),
            move |n| bar.inc(n),
            sink,
        )
    })?;
    progress.finish_and_clear();
    let RunSink { streams, acc, .. } = sink;
    let finished_streams = timer.time("write", || streams.finish(out))?;
    let batch_counts = BatchCounts {
        batches_total: stats.batches,
        batches_resumed: committed,
        batches_computed: stats.batches.saturating_sub(committed),
    };
    for (stage, s) in ["isochrone", "census_join", "polygons"]
        .iter()
        .zip(acc.stage_seconds)
    {
        timer.0.push((stage.to_string(), s));
    }
    let census = &ctx.census;
    // ACS values fetched online are asked for now, for the block groups reached only.
    let mut described = inputs.described;
    let acs = match inputs.acs_fetch {
        Some(fetch) => {
            let geoids: Vec<String> = acc
                .reach
                .keys()
                .map(|&bg| census.block_groups[bg as usize].geoid.clone())
                .collect();
            let (table, notes) = timer.time("fetch_acs", || fetch(&geoids))?;
            described.extend(notes);
            table
        }
        None => inputs.acs,
    };
    let rows = timer.time("distance", || census_rows(&acc, census, &params, &acs));
    let union_km2: Vec<(u32, f64)> = params
        .travel_times_min
        .iter()
        .enumerate()
        .map(|(ti, &m)| (m, acc.coverage.union_area_km2(&params.grid(), ti)))
        .collect();
    // The POIs named as nearest, read again from the source: the run holds none of them.
    let wanted: std::collections::BTreeSet<u32> =
        rows.iter().filter_map(|r| r.nearest_poi()).collect();
    let poi_names = timer.time("poi_names", || pois_named(records.reopen()?, &wanted))?;

    let report = timer.time("write", || {
        output::write_all(
            out,
            &output::RunOutputs {
                analysis,
                poi_names: &poi_names,
                rows: &rows,
                rejected: acc.rejected as usize,
                acs_variables: &acs.variables,
                records_in: acc.records as usize,
                processed: acc.processed as usize,
                union_km2: &union_km2,
                settled_nodes: acc.settled_total,
                block_groups_total: census.block_groups.len(),
                inputs: &described,
            },
        )
    })?;
    let reading: f64 = timings.iter().map(|t| t.1).sum();
    timings.extend(timer.0);
    timings.push(("total".into(), reading + started.elapsed().as_secs_f64()));
    let mut report = report.with_timings(timings);
    report.batches = batch_counts;
    report.network = NetworkReport {
        top_speed_kmh: whole.network.top_speed_mps() * 3.6,
        reach_radius_km: reach_m / 1000.0,
        tile_km: ctx.cluster.tile_m / 1000.0,
        clusters: stats.clusters,
        slice_fetches: stats.slice_fetches,
        slice_cache_hits: stats.slice_hits,
        pois_reaching_past_extent: acc.pois_past_extent,
    };
    report.peak_rss_mb = output::peak_rss_bytes().map(|b| b as f64 / 1e6);
    output::write_run_json(out, &report)?;
    if let Some(cp) = &checkpoint {
        // The run is whole: `socialmapper add` and `remove` may start from it.
        cp.put_all(&[
            (
                KEY_COMPLETE,
                Some(crate::checkpoint::encode(&stats.batches)),
            ),
            (
                KEY_STREAMS_FINISHED,
                Some(crate::checkpoint::encode(&finished_streams)),
            ),
        ])?;
        // Only now, with the parts' final lengths committed: a run killed before still finds
        // the last window where its batches' records say it is.
        output::empty_window_file(&cp.sinks_dir())?;
    }
    if !show.quiet {
        eprint!("{}", report.summary());
    }
    Ok(report)
}

/// Id and name of the POIs at the record indices `wanted`, streaming `records` once.
fn pois_named(
    mut records: Box<dyn PoiRecords>,
    wanted: &std::collections::BTreeSet<u32>,
) -> Result<HashMap<u32, (String, String)>> {
    let mut names = HashMap::with_capacity(wanted.len());
    if wanted.is_empty() {
        return Ok(names);
    }
    while let Some(batch) = records.next_batch(4096)? {
        for (k, r) in batch {
            if let (true, Ok(p)) = (wanted.contains(&k), r) {
                names.insert(k, (p.id, p.name));
            }
        }
        if names.len() == wanted.len() {
            break;
        }
    }
    Ok(names)
}

/// Runs the job described by `cfg`.
pub fn run(cfg: &RunConfig, show: RunOptions) -> Result<RunReport> {
    let checkpoint = match &cfg.checkpoint {
        Some(dir) => {
            let cp = Checkpoint::open(dir, &fingerprint(cfg)?, show.fresh)?;
            if let Some(epoch) = cp.get::<u64>(crate::incremental::KEY_EPOCH)? {
                return Err(Error::Config(format!(
                    "the run in {} was updated by `socialmapper add`/`remove` ({epoch} updates): its outputs are current; use --fresh to compute it again from the POI file",
                    dir.display()
                )));
            }
            // What `socialmapper add` and `remove` need to load the run's inputs again.
            cp.put_all(&[(KEY_RUN, Some(crate::checkpoint::encode(cfg)))])?;
            Some(Arc::new(cp))
        }
        None => None,
    };
    let mut timings = Vec::new();
    let inputs = load_inputs(cfg, &mut timings, show.quiet)?;
    execute(&cfg.analysis, inputs, &cfg.out, timings, show, checkpoint)
}

/// Checkpoint key: the number of batches of a finished run.
pub(crate) const KEY_COMPLETE: &str = "meta/complete";
/// Checkpoint key: the streamed outputs' parts once a run has finished (its last order window
/// copied out, the window file emptied).
const KEY_STREAMS_FINISHED: &str = "meta/streams_finished";
/// Checkpoint key: the run's configuration.
pub(crate) const KEY_RUN: &str = "meta/run";

/// Builds what every worker reads (network, link cells, census index, clustering) out of the
/// parsed inputs; also returns the whole network.
pub(crate) fn prepare(
    analysis: &Analysis,
    roads: &OsmRoads,
    block_groups: &[BlockGroup],
    timer: &mut StageTimer,
) -> Result<(Arc<RunContext>, Arc<NetworkSlice>)> {
    let params = analysis.isochrone_params();
    let network = timer.time("network", || {
        Network::from_roads(roads, analysis.mode, analysis.direction)
    });
    let reach_m = reach_radius_m(
        params.max_snap_m,
        params.travel_times_min.last().copied().unwrap_or(0),
        network.top_speed_mps(),
        params.buffer_m,
    );
    let ctx = timer.time("prepare", || RunContext {
        source: Arc::new(LocalExtract::new(network, &params)),
        census: CensusIndex::new(block_groups, params.grid()),
        params: params.clone(),
        cluster: ClusterParams {
            tile_m: default_tile_m(reach_m),
            reach_m,
        },
        mode: analysis.mode,
    });
    let whole = ctx.source.whole().ok_or_else(|| {
        Error::Config("internal: the network source holds no whole network".into())
    })?;
    Ok((Arc::new(ctx), whole))
}

/// The rows of `census.csv`: one per travel time and reached block group, by travel time then
/// GEOID (block groups are indexed in GEOID order).
pub(crate) fn census_rows(
    acc: &Accumulated,
    census: &CensusIndex,
    params: &crate::stages::isochrone::IsochroneParams,
    acs: &AcsTable,
) -> Vec<CensusRow> {
    let reached: Vec<u32> = acc.reach.keys().copied().collect();
    census_rows_of(acc, census, params, acs, &reached)
        .into_iter()
        .map(|(_, row)| row)
        .collect()
}

/// The rows of the block groups `bgs` (ascending; those no POI reaches have none), in the
/// order of [`census_rows`], each with its block group.
pub(crate) fn census_rows_of(
    acc: &Accumulated,
    census: &CensusIndex,
    params: &crate::stages::isochrone::IsochroneParams,
    acs: &AcsTable,
    bgs: &[u32],
) -> Vec<(u32, CensusRow)> {
    let mut rows = Vec::new();
    for (ti, &minutes) in params.travel_times_min.iter().enumerate() {
        for &bg in bgs {
            let Some(counts) = acc.reach.get(&bg) else {
                continue;
            };
            let reaching = counts.get(ti).copied().unwrap_or(0);
            if reaching == 0 {
                continue;
            }
            let prepared = &census.block_groups[bg as usize];
            let row = CensusRow {
                geoid: prepared.geoid.clone(),
                centroid_lonlat: prepared.centroid_lonlat,
                straight: acc.straight.as_ref().and_then(|f| f.result_of(bg as usize)),
                network: acc
                    .network
                    .as_ref()
                    .map_or(NetworkNearest::NoRoad, |f| f.result_of(bg as usize)),
                coverage_share: acc.coverage.share(census, bg, ti),
                pois_reaching: reaching,
                minutes,
                acs: acs.rows.get(&prepared.geoid).cloned(),
            };
            rows.push((bg, row));
        }
    }
    rows
}

/// What the results of `cfg` depend on: the analysis settings and the input files' identities.
pub fn fingerprint(cfg: &RunConfig) -> Result<Fingerprint> {
    let mut inputs = vec![
        match &cfg.network {
            Some(p) => file_identity("network", p)?,
            None => ("network".into(), "overpass".into(), 0, 0),
        },
        match &cfg.block_groups {
            Some(p) => file_identity("block_groups", p)?,
            None => {
                let o = &cfg.online;
                let source = format!("{} {}", o.block_groups_source, o.acs_year);
                ("block_groups".into(), source, 0, 0)
            }
        },
    ];
    match &cfg.pois {
        PoiSource::File(p) => inputs.push(file_identity("pois", p)?),
        PoiSource::OsmTag(t) => inputs.push(("poi_tag".into(), t.clone(), 0, 0)),
        PoiSource::Overpass { tag, area } => {
            inputs.push(("poi_tag".into(), format!("{tag} in {area}"), 0, 0));
        }
        PoiSource::Addresses(p) => inputs.push(file_identity("addresses", p)?),
    }
    if let Some(a) = &cfg.acs {
        inputs.push(file_identity("acs", a)?);
    } else if cfg.online.fetch_acs {
        let year = cfg.online.acs_year.to_string();
        inputs.push(("acs".into(), format!("census api acs5 {year}"), 0, 0));
    }
    Ok(Fingerprint {
        version: env!("CARGO_PKG_VERSION").to_string(),
        analysis: toml::to_string(&cfg.analysis).map_err(|e| Error::Config(e.to_string()))?,
        inputs,
    })
}

/// Accumulated wall time per stage, in first-use order.
#[derive(Default)]
pub(crate) struct StageTimer(pub(crate) Vec<(String, f64)>);

impl StageTimer {
    /// Runs `f`, adding its wall time to `stage`.
    pub(crate) fn time<T>(&mut self, stage: &str, f: impl FnOnce() -> T) -> T {
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
        pois: Box::new(RecordsInMemory::from_pois(town.pois)),
        roads: town.roads,
        block_groups: town.block_groups,
        acs: town.acs,
        described: vec![("demo".into(), "embedded synthetic town".into())],
        acs_fetch: None,
    }
}

/// What the checkpoint keeps of a batch: enough to rebuild everything the sink accumulates,
/// and where the streamed outputs stood after it. Outlines are not kept: they are in the
/// `isochrones.geojson` part file already.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct BatchRecord {
    /// Records in the batch.
    pub(crate) records: u32,
    /// POIs processed (snap points and positions feed the distance stage).
    pub(crate) processed: Vec<ProcessedPoi>,
    /// Records rejected.
    rejected: u32,
    /// How many of the batch's POIs reach each cell within each travel time.
    coverage: CoverageDelta,
    /// The reach counts the batch changed, with their new values.
    reach: ReachChanges,
    /// Seconds in the isochrone, census-join and outline stages.
    stage_seconds: [f64; 3],
    /// The streamed outputs after this batch.
    streams: StreamProgress,
    /// What the batch left in its open order window (nothing once the window is closed).
    window: WindowPart,
}

/// What the sink accumulates over batches: bounded by the census tables and the union of the
/// isochrones (and, for the network distance, the graph), not by the number of POIs.
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct Accumulated {
    /// The travel-time limits, ms, ascending.
    limits: Vec<Millis>,
    pub(crate) coverage: CoverageCounts,
    /// Per block group, how many POIs reach it within each travel time.
    pub(crate) reach: BTreeMap<u32, Vec<u32>>,
    /// Nearest POI in a straight line to every block group's centroid.
    pub(crate) straight: Option<StraightFold>,
    /// Nearest POI along the network to every block group's centroid.
    pub(crate) network: Option<NetworkFold>,
    /// The network extract's extent and the reach radius: a POI closer to the extent's edge
    /// than the radius may have its isochrone cut short by the end of the data.
    extent_and_reach: Option<(geo::Rect<f64>, f64)>,
    pois_past_extent: u64,
    records: u64,
    processed: u64,
    rejected: u64,
    settled_total: u64,
    stage_seconds: [f64; 3],
}

impl Accumulated {
    /// Nothing accumulated yet, for the run of `analysis` on `ctx`.
    pub(crate) fn new(analysis: &Analysis, ctx: &RunContext, whole: &NetworkSlice) -> Self {
        let limits = ctx.params.limits_ms();
        // Distances fold batch by batch into per-block-group (and per-node) state.
        let centroids: Vec<_> = ctx.census.block_groups.iter().map(|b| b.centroid).collect();
        Accumulated {
            coverage: CoverageCounts::new(&limits),
            limits,
            extent_and_reach: whole.network.extent().map(|e| (e, ctx.cluster.reach_m)),
            network: Some(NetworkFold::new(
                &whole.network,
                &centroids,
                analysis.max_snap_m,
            )),
            straight: Some(StraightFold::new(centroids)),
            ..Default::default()
        }
    }

    /// Counts the block groups one POI reaches (`sign` +1) or no longer reaches (-1): `reach`
    /// as [`crate::dataflow::reach_of`] gives it. A block group no POI reaches any more has no
    /// entry (and no row).
    pub(crate) fn count_reach(&mut self, reach: &[(u32, u8)], sign: i32) -> Result<()> {
        for &(bg, first) in reach {
            let counts = self
                .reach
                .entry(bg)
                .or_insert_with(|| vec![0; self.limits.len()]);
            for c in counts.iter_mut().skip(first as usize) {
                *c = c.checked_add_signed(sign).ok_or_else(|| {
                    Error::State(format!("reach count of block group {bg} below zero"))
                })?;
            }
            if counts.iter().all(|c| *c == 0) {
                self.reach.remove(&bg);
            }
        }
        Ok(())
    }

    /// Adds a batch's record.
    pub(crate) fn apply(&mut self, rec: &BatchRecord, network: &Network) -> Result<()> {
        self.coverage.apply(&rec.coverage)?;
        for &(bg, ti, n) in &rec.reach {
            let counts = self
                .reach
                .entry(bg)
                .or_insert_with(|| vec![0; self.limits.len()]);
            if let Some(c) = counts.get_mut(ti as usize) {
                *c = n;
            }
            if counts.iter().all(|c| *c == 0) {
                self.reach.remove(&bg);
            }
        }
        let xy: Vec<_> = rec.processed.iter().map(|p| (p.poi, p.xy)).collect();
        let snaps: Vec<_> = rec.processed.iter().map(|p| (p.poi, p.snap)).collect();
        if let Some(f) = &mut self.straight {
            f.add(&xy);
        }
        if let Some(f) = &mut self.network {
            f.add(network, &snaps);
        }
        for p in &rec.processed {
            self.settled_total += u64::from(p.settled_nodes);
            if let Some((e, r)) = self.extent_and_reach {
                let inside = p.xy.x - r >= e.min().x
                    && p.xy.y - r >= e.min().y
                    && p.xy.x + r <= e.max().x
                    && p.xy.y + r <= e.max().y;
                self.pois_past_extent += u64::from(!inside);
            }
        }
        self.records += u64::from(rec.records);
        self.processed += rec.processed.len() as u64;
        self.rejected += u64::from(rec.rejected);
        for (s, t) in self.stage_seconds.iter_mut().zip(rec.stage_seconds) {
            *s += t;
        }
        Ok(())
    }
}

/// The sink: takes complete batches in order, hands their outlines and rejects to the
/// streamed outputs (which put each order window in record order), commits the batch's record
/// with the parts' lengths, and accumulates.
struct RunSink {
    checkpoint: Option<Arc<Checkpoint>>,
    network: Arc<NetworkSlice>,
    streams: StreamedOutputs,
    /// Batches per order window.
    order_window: u64,
    acc: Accumulated,
}

impl BatchSink for RunSink {
    fn batch(&mut self, b: BatchResult) -> Result<()> {
        let closes_window = closes_window(b.id, self.order_window);
        let window = self.streams.write(&b.features, &b.rejects, closes_window)?;
        fault_point("sink", b.id);
        let rec = BatchRecord {
            records: b.records,
            processed: b.processed,
            rejected: b.rejects.len() as u32,
            coverage: b.coverage,
            reach: b.reach,
            stage_seconds: b.stage_seconds,
            streams: self.streams.progress()?,
            window,
        };
        if let Some(cp) = &self.checkpoint {
            cp.commit(b.id, &rec)?;
            fault_point("commit", b.id);
        }
        self.acc.apply(&rec, &self.network.network)
    }
}
