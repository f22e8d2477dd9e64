//! The batch loop as a timely dataflow: worker 0 feeds POI batches, one timestamp per batch,
//! never more than one batch per worker ahead of the sink; batches are spread over the
//! workers, each of which runs the isochrone, census-join and outline stages with its own
//! workspaces over a shared read-only context; results flow back to worker 0's sink.
//!
//! The sink orders results by batch, so outputs do not depend on the number of workers or on
//! the order in which batches finish.

use crate::census::BlockGroup;
use crate::checkpoint::Checkpoint;
use crate::geom::grid::Cell;
use crate::graph::Millis;
use crate::graph::snap::Snap;
use crate::output::IsochroneFeature;
use crate::stages::census_join::{CensusIndex, Coverage, JoinWorkspace, join_poi};
use crate::stages::isochrone::{IsochroneParams, IsochroneWorkspace, LinkCells, isochrone_of};
use crate::stages::network::Network;
use crate::types::{Poi, Reject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What every worker reads and nobody writes (the census index fills its per-block-group cell
/// overlaps lazily, thread-safely).
pub struct RunContext {
    /// The road network.
    pub network: Network,
    /// Cells near every link, for rasterising isochrones.
    pub link_cells: LinkCells,
    /// Block groups, projected and indexed.
    pub census: CensusIndex,
    /// Isochrone settings.
    pub params: IsochroneParams,
    /// The run's POIs; batches refer to them by index range.
    pub pois: Vec<Poi>,
}

impl RunContext {
    /// Builds the shared context (the network-fetch stage and the census index).
    pub fn new(
        network: Network,
        block_groups: &[BlockGroup],
        params: IsochroneParams,
        pois: Vec<Poi>,
    ) -> Self {
        let link_cells = LinkCells::new(&network, &params);
        let census = CensusIndex::new(block_groups, params.grid());
        RunContext {
            network,
            link_cells,
            census,
            params,
            pois,
        }
    }
}

/// One batch of POIs: `pois[first .. first + len]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchRange {
    /// Batch number (also its timestamp).
    pub id: u64,
    /// Index of the batch's first POI.
    pub first: u32,
    /// Number of POIs.
    pub len: u32,
}

/// A processed POI: where it met the network and the block groups it reaches, with the
/// earliest time it enters each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessedPoi {
    /// POI index.
    pub poi: u32,
    /// Snap point.
    pub snap: Snap,
    /// (block group, earliest entry time in ms), sorted by block group.
    pub reach: Vec<(u32, Millis)>,
    /// Nodes settled by its search.
    pub settled_nodes: u32,
}

/// Everything a batch contributes to the outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchOutput {
    /// The batch.
    pub batch: BatchRange,
    /// POIs processed, in POI order.
    pub processed: Vec<ProcessedPoi>,
    /// POIs rejected by the stages, with their index.
    pub rejects: Vec<(u32, Reject)>,
    /// The union of the batch's isochrones: earliest time per cell, sorted by cell.
    pub coverage: Vec<(Cell, Millis)>,
    /// One outline per POI and travel time.
    pub features: Vec<IsochroneFeature>,
    /// Wall time of the isochrone, census-join and outline stages for this batch, seconds.
    pub stage_seconds: [f64; 3],
}

/// Runs the stages on one batch (what each worker does with the batches it receives).
pub fn process_batch(
    ctx: &RunContext,
    batch: BatchRange,
    iso_ws: &mut IsochroneWorkspace,
    join_ws: &mut JoinWorkspace,
) -> BatchOutput {
    // One POI at a time through every stage, so that a worker holds one POI's raw isochrone
    // cells, not a batch's.
    let grid = ctx.params.grid();
    let mut coverage = Coverage::default();
    let mut processed = Vec::with_capacity(batch.len as usize);
    let mut features = Vec::with_capacity(batch.len as usize * ctx.params.travel_times_min.len());
    let mut rejects = Vec::new();
    let (mut t_iso, mut t_join, mut t_outline) = (0.0, 0.0, 0.0);
    for k in batch.first..batch.first + batch.len {
        if k == batch.first + batch.len / 2 {
            fault_point("compute", batch.id);
        }
        let t = Instant::now();
        let result = isochrone_of(
            &ctx.network,
            &ctx.link_cells,
            &ctx.params,
            &ctx.pois[k as usize],
            k,
            iso_ws,
        );
        t_iso += t.elapsed().as_secs_f64();
        let iso = match result {
            Ok(iso) => iso,
            Err(reject) => {
                rejects.push((k, reject));
                continue;
            }
        };
        let t = Instant::now();
        coverage.add(&iso);
        processed.push(ProcessedPoi {
            poi: iso.poi,
            snap: iso.snap,
            reach: join_poi(&ctx.census, &iso, join_ws).block_groups,
            settled_nodes: iso.settled_nodes,
        });
        t_join += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let poi = &ctx.pois[k as usize];
        for &minutes in &ctx.params.travel_times_min {
            features.push(IsochroneFeature::new(
                poi,
                &iso,
                minutes,
                ctx.network.mode,
                &grid,
            ));
        }
        t_outline += t.elapsed().as_secs_f64();
    }
    BatchOutput {
        batch,
        processed,
        rejects,
        coverage: coverage.into_sorted_cells(),
        features,
        stage_seconds: [t_iso, t_join, t_outline],
    }
}

/// Receives batch outputs in batch order, on worker 0's thread.
pub type BatchSink = Box<dyn FnMut(BatchOutput) + Send>;

/// Puts batch outputs back in batch order before handing them to the sink, committing each
/// computed batch to the checkpoint first and replaying batches committed by an earlier run.
/// Backpressure bounds how many can wait here.
struct InOrder {
    next: u64,
    total: u64,
    pending: BTreeMap<u64, BatchOutput>,
    resumed: std::collections::BTreeSet<u64>,
    checkpoint: Option<Arc<Checkpoint>>,
    sink: BatchSink,
    error: Option<crate::Error>,
}

impl InOrder {
    fn push(&mut self, out: BatchOutput) {
        if let Some(cp) = &self.checkpoint {
            if let Err(e) = cp.commit(&out) {
                self.error.get_or_insert(e);
            }
            fault_point("commit", out.batch.id);
        }
        self.pending.insert(out.batch.id, out);
        self.drain();
    }

    /// Hands every batch that is next in order to the sink.
    fn drain(&mut self) {
        while self.next < self.total {
            let out = if let Some(o) = self.pending.remove(&self.next) {
                o
            } else if self.resumed.contains(&self.next) {
                match self.checkpoint.as_ref().map(|cp| cp.load(self.next)) {
                    Some(Ok(o)) => o,
                    Some(Err(e)) => {
                        self.error.get_or_insert(e);
                        return;
                    }
                    None => return,
                }
            } else {
                return;
            };
            (self.sink)(out);
            self.next += 1;
        }
    }
}

/// Batches of a run and how many were taken from the checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCounts {
    /// Batches of the run.
    pub batches_total: u64,
    /// Batches read back from the checkpoint.
    pub batches_resumed: u64,
    /// Batches computed by this run.
    pub batches_computed: u64,
}

/// Test hook: when `SOCIALMAPPER_FAULT` is `POINT:BATCH` (`compute:3`, `commit:3`, `sink:3`),
/// the process kills itself with SIGKILL there, as a crash or pre-emption would. Nothing else
/// reads this variable.
pub fn fault_point(point: &str, batch: u64) {
    let Ok(spec) = std::env::var("SOCIALMAPPER_FAULT") else {
        return;
    };
    if spec == format!("{point}:{batch}") {
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}

/// Runs every batch of `ctx.pois` through a timely dataflow on `workers` threads, handing each
/// batch's output to `sink` in batch order as soon as it and all earlier batches are done.
/// `progress` is told the size of every finished batch.
pub fn run_batches(
    ctx: Arc<RunContext>,
    batch_size: usize,
    workers: usize,
    progress: impl Fn(u64) + Send + Sync + 'static,
    checkpoint: Option<Arc<Checkpoint>>,
    sink: BatchSink,
) -> crate::Result<BatchCounts> {
    let n = ctx.pois.len();
    let batches: Vec<BatchRange> = (0..n.div_ceil(batch_size))
        .map(|b| BatchRange {
            id: b as u64,
            first: (b * batch_size) as u32,
            len: ((n - b * batch_size).min(batch_size)) as u32,
        })
        .collect();
    let resumed: std::collections::BTreeSet<u64> = match &checkpoint {
        Some(cp) => cp
            .committed()?
            .into_iter()
            .filter(|id| (*id as usize) < batches.len())
            .collect(),
        None => Default::default(),
    };
    let counts = BatchCounts {
        batches_total: batches.len() as u64,
        batches_resumed: resumed.len() as u64,
        batches_computed: (batches.len() - resumed.len()) as u64,
    };
    progress(
        batches
            .iter()
            .filter(|b| resumed.contains(&b.id))
            .map(|b| b.len as u64)
            .sum(),
    );
    let to_compute: Vec<BatchRange> = batches
        .iter()
        .filter(|b| !resumed.contains(&b.id))
        .copied()
        .collect();
    let in_order = Arc::new(Mutex::new(InOrder {
        next: 0,
        total: batches.len() as u64,
        pending: BTreeMap::new(),
        resumed,
        checkpoint,
        sink,
        error: None,
    }));
    // Batches already in the checkpoint before the first one to compute go to the sink now.
    in_order.lock().unwrap_or_else(|e| e.into_inner()).drain();
    let in_order_end = in_order.clone();
    let progress = Arc::new(progress);
    let in_flight = workers.max(1) as u64;
    let guards = timely::execute(timely::Config::process(workers.max(1)), move |worker| {
        use timely::dataflow::operators::vec::{Input, Map};
        use timely::dataflow::operators::{Exchange, Probe};
        let (ctx, in_order, progress) = (ctx.clone(), in_order.clone(), progress.clone());
        let (mut input, probe) = worker.dataflow::<u64, _, _>(|scope| {
            let (input, batches) = scope.new_input::<BatchRange>();
            let mut iso_ws = IsochroneWorkspace::new(&ctx.network);
            let mut join_ws = JoinWorkspace::default();
            let (probe, _) = batches
                .exchange(|b: &BatchRange| b.id)
                .map(move |b| process_batch(&ctx, b, &mut iso_ws, &mut join_ws))
                .exchange(|_: &BatchOutput| 0)
                .map(move |out| {
                    progress(out.batch.len as u64);
                    in_order.lock().unwrap_or_else(|e| e.into_inner()).push(out);
                })
                .probe();
            (input, probe)
        });
        if worker.index() == 0 {
            for b in &to_compute {
                input.send(*b);
                input.advance_to(b.id + 1);
                // Backpressure: at most one batch per worker between source and sink. Memory is
                // bounded by that many batches' results, not by the input; and a batch a worker
                // finished is committed before it starts another, so a crash loses at most the
                // batch each worker was computing.
                let bound = (b.id + 1).saturating_sub(in_flight);
                worker.step_while(|| probe.less_than(&bound));
            }
        }
        // Closing the input lets the frontier advance; every worker steps until all is done.
        drop(input);
        worker.step_while(|| !probe.done());
    })
    .map_err(|e| crate::Error::Config(format!("cannot start {workers} workers: {e}")))?;
    for r in guards.join() {
        r.map_err(|e| crate::Error::Config(format!("a worker failed: {e}")))?;
    }
    let mut in_order = in_order_end.lock().unwrap_or_else(|e| e.into_inner());
    in_order.drain();
    if let Some(e) = in_order.error.take() {
        return Err(e);
    }
    if in_order.next != in_order.total {
        return Err(crate::Error::Config(format!(
            "internal: only {} of {} batches reached the sink",
            in_order.next, in_order.total
        )));
    }
    Ok(counts)
}
