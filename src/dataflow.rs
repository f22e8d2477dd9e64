//! The batch loop as a timely dataflow: worker 0 feeds POI batches, one timestamp per batch,
//! never more than [`MAX_BATCHES_IN_FLIGHT`] ahead of the sink; batches are spread over the
//! workers, each of which runs the isochrone, census-join and outline stages with its own
//! workspaces over a shared read-only context; results flow back to worker 0's sink.
//!
//! The sink orders results by batch, so outputs do not depend on the number of workers or on
//! the order in which batches finish.

use crate::census::BlockGroup;
use crate::geom::grid::Cell;
use crate::graph::Millis;
use crate::graph::snap::Snap;
use crate::output::IsochroneFeature;
use crate::stages::census_join::{CensusIndex, Coverage, JoinWorkspace, join_poi};
use crate::stages::isochrone::{IsochroneParams, IsochroneWorkspace, LinkCells, isochrone_batch};
use crate::stages::network::Network;
use crate::types::{Poi, Reject};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How many batches the source may run ahead of the sink: memory is bounded by this many
/// batches' results, not by the input size.
pub const MAX_BATCHES_IN_FLIGHT: u64 = 4;

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
    let pois = &ctx.pois[batch.first as usize..(batch.first + batch.len) as usize];
    let t = Instant::now();
    let result = isochrone_batch(
        &ctx.network,
        &ctx.link_cells,
        &ctx.params,
        pois,
        batch.first,
        iso_ws,
    );
    let t_iso = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut coverage = Coverage::default();
    let mut processed = Vec::with_capacity(result.isochrones.len());
    for iso in &result.isochrones {
        coverage.add(iso);
        processed.push(ProcessedPoi {
            poi: iso.poi,
            snap: iso.snap,
            reach: join_poi(&ctx.census, iso, join_ws).block_groups,
            settled_nodes: iso.settled_nodes,
        });
    }
    let t_join = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let grid = ctx.params.grid();
    let mut features = Vec::new();
    for iso in &result.isochrones {
        let poi = &ctx.pois[iso.poi as usize];
        for &minutes in &ctx.params.travel_times_min {
            features.push(IsochroneFeature::new(
                poi,
                iso,
                minutes,
                ctx.network.mode,
                &grid,
            ));
        }
    }
    let t_outline = t.elapsed().as_secs_f64();
    BatchOutput {
        batch,
        processed,
        rejects: result.rejects,
        coverage: coverage.into_sorted_cells(),
        features,
        stage_seconds: [t_iso, t_join, t_outline],
    }
}

/// Receives batch outputs in batch order, on worker 0's thread.
pub type BatchSink = Box<dyn FnMut(BatchOutput) + Send>;

/// Puts batch outputs back in batch order before handing them to the sink. Backpressure bounds
/// how many can wait here.
struct InOrder {
    next: u64,
    pending: BTreeMap<u64, BatchOutput>,
    sink: BatchSink,
}

impl InOrder {
    fn push(&mut self, out: BatchOutput) {
        self.pending.insert(out.batch.id, out);
        while let Some(o) = self.pending.remove(&self.next) {
            (self.sink)(o);
            self.next += 1;
        }
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
    sink: BatchSink,
) -> crate::Result<()> {
    let n = ctx.pois.len();
    let batches: Vec<BatchRange> = (0..n.div_ceil(batch_size))
        .map(|b| BatchRange {
            id: b as u64,
            first: (b * batch_size) as u32,
            len: ((n - b * batch_size).min(batch_size)) as u32,
        })
        .collect();
    let in_order = Arc::new(Mutex::new(InOrder {
        next: 0,
        pending: BTreeMap::new(),
        sink,
    }));
    let progress = Arc::new(progress);
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
            for b in &batches {
                input.send(*b);
                input.advance_to(b.id + 1);
                // Backpressure: wait until the sink is at most MAX_BATCHES_IN_FLIGHT behind.
                let bound = (b.id + 1).saturating_sub(MAX_BATCHES_IN_FLIGHT);
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
    Ok(())
}
