//! `socialmapper add` and `socialmapper remove`: a finished, checkpointed run updated in place.
//!
//! An update is an *epoch*: POIs taken out (by id), then POIs added (from a file), in that
//! order, exactly as if the POI file had lost the removed rows and gained the added ones at its
//! end. Only the work the change needs is done:
//!
//! * an added POI goes through the isochrone, census-join and outline stages
//!   ([`process_poi`]); a removed one has its isochrone computed again from its snap point (the
//!   stages are deterministic) to take its counts out;
//! * reach counts and coverage counts move by ±1 over the cells and block groups those
//!   isochrones touch;
//! * the straight-line nearest POI folds in the added POIs and re-searches only the block
//!   groups that lost theirs; the network nearest POI is a shorten-only search from an added
//!   POI (it settles only the part of the network the POI now wins) and, for a removed one, a
//!   search of its Voronoi cell from the cell's boundary
//!   ([`NetworkFold::remove`](crate::stages::distance::NetworkFold::remove)).
//!
//! The state lives in the checkpoint as a snapshot (`live/state`, first made by replaying the
//! run's batch records) and a log of the epochs after it (`live/log/<epoch>`: each epoch's
//! change itself, applied again when the run is opened; a new snapshot every
//! 64 epochs by default). An epoch thus commits in proportion to its change, not to the
//! state. A [`LiveRun`] keeps the state and the rows of `census.csv` in memory: an epoch
//! recomputes the rows of the block groups the change reaches or whose nearest POI the folds
//! report as possibly changed, writes `census.csv` again from the rows, appends the added POIs'
//! features to `isochrones.geojson` (a removal rewrites it without the removed ones'), and
//! appends one `changes.jsonl` record per changed row. The result is byte for byte what a
//! fresh run over the resulting POI set writes (tested), because both share the stages, the
//! folds' tie rules and the row code.
//!
//! Crash safety: an epoch's change is committed together with the output edits it implies
//! (`live/pending`) before any output is touched; the edits are idempotent and are applied
//! again when the run is next opened if the process died half-way.
//!
//! Why not the POI → block-group relation as a differential arrangement: a 15-minute drive
//! reaches ~2,000 block groups, so 100 k POIs make ~2·10⁸ pairs; the aggregates kept here are
//! bounded by the block groups and the union of the isochrones, and a removed POI's pairs are
//! recomputed in milliseconds instead of stored.

use crate::census::AcsTable;
use crate::checkpoint::{Checkpoint, encode};
use crate::config::RunConfig;
use crate::dataflow::{Outlines, ProcessedPoi, RunContext, WorkerState, process_poi, reach_of};
use crate::error::{Error, Result};
use crate::output::{self, GEOJSON_FOOTER, GEOJSON_HEADER, census_header, census_record};
use crate::pipeline::{Accumulated, BatchRecord, KEY_COMPLETE, KEY_RUN, StageTimer};
use crate::poi::PoiRecord;
use crate::stages::census_join::CensusIndex;
use crate::stages::isochrone::poi_isochrone;
use crate::stages::network::NetworkSlice;
use crate::types::{Poi, Reject};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Checkpoint key: the number of the last applied epoch.
pub const KEY_EPOCH: &str = "live/epoch";
/// The state snapshot ([`LiveState`]) and the epoch it holds.
const KEY_STATE: &str = "live/state";
/// The output edits of the last epoch, until they are made.
const KEY_PENDING: &str = "live/pending";
/// The log of epochs after the snapshot: `live/log/<epoch>`, each a [`LoggedChange`].
const LOG_PREFIX: &str = "live/log/";

/// A new snapshot of the state is written once this many epochs are logged after the last
/// one. An epoch commits only its change (O(change)); opening the run applies the logged
/// epochs again (each as fast as it was), so this bounds the replay at opening.
const SNAPSHOT_EVERY: u64 = 64;

/// One update: ids to take out, then POI records to add.
#[derive(Clone, Debug, Default)]
pub struct Change {
    /// Ids of POIs to take out (every POI with that id).
    pub remove_ids: Vec<String>,
    /// Records to add, in order: POIs, or rejects the reader already made (bad coordinates).
    pub add: Vec<PoiRecord>,
}

impl Change {
    /// The change that adds every record of the POI file `path`.
    ///
    /// # Errors
    /// The file cannot be read or is not a POI file.
    pub fn add_file(path: &Path) -> Result<Change> {
        let mut stream = crate::poi::open_pois(path)?;
        let mut add = Vec::new();
        while let Some(chunk) = stream.next_chunk(4096)? {
            add.extend(chunk);
        }
        Ok(Change {
            remove_ids: Vec::new(),
            add,
        })
    }

    /// Whether the change does nothing.
    pub fn is_empty(&self) -> bool {
        self.remove_ids.is_empty() && self.add.is_empty()
    }
}

/// What the log keeps of an epoch: the change itself, enough to apply it again (every stage
/// is deterministic).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct LoggedChange {
    remove_ids: Vec<String>,
    add: Vec<std::result::Result<Poi, Reject>>,
}

/// What an epoch did: a line of `epochs.jsonl`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number (1 for the first update after the run).
    pub epoch: u64,
    /// POIs added.
    pub pois_added: u64,
    /// POIs taken out.
    pub pois_removed: u64,
    /// Records of the change that were rejected (unknown ids, POIs far from any road...).
    pub rejected: u64,
    /// Block groups of `census.csv` (before or after) whose rows the change recomputed:
    /// reached by an added or removed POI, or whose nearest POI (straight-line or network)
    /// changed.
    pub bgs_recomputed: u64,
    /// Rows of `census.csv` inserted, updated or deleted.
    pub rows_changed: u64,
    /// Seconds from the change being handed over to the outputs written (inputs and state
    /// loaded before).
    pub latency_s: f64,
    /// Of the latency: seconds applying the change to the state (isochrones, counts, folds).
    pub apply_s: f64,
    /// Of the latency: seconds making the touched rows and the changelog.
    pub rows_s: f64,
    /// Of the latency: seconds committing and writing the outputs.
    pub write_s: f64,
    /// Seconds spent loading the run's inputs and state (by the process that applied it).
    pub load_s: f64,
}

/// A POI of the run, as the live state keeps it.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct LivePoi {
    poi: ProcessedPoi,
    active: bool,
}

/// Everything an update needs besides the inputs.
#[derive(Serialize, Deserialize)]
struct LiveState {
    acc: Accumulated,
    /// Every POI processed, in sequence order (that of the run's records, then of the added
    /// ones): the order of `isochrones.geojson`'s features.
    pois: Vec<LivePoi>,
    /// The sequence number of the next added POI.
    next_seq: u32,
    /// The last epoch this state includes.
    epoch: u64,
    /// The active POIs' positions in `pois`, by id (built when the state is opened). Ids
    /// are distinct: an added POI with an active one's id is rejected as a duplicate, as a
    /// run rejects a record whose id an earlier one has.
    #[serde(skip)]
    active: HashMap<String, usize>,
    /// The position in `pois` of each sequence number, `u32::MAX` for none (built when the
    /// state is opened).
    #[serde(skip)]
    position: Vec<u32>,
}

impl LiveState {
    /// Builds the indexes the state does not store: [`LiveState::active`] and
    /// [`LiveState::position`].
    fn index(&mut self) {
        self.active = (self.pois.iter().enumerate())
            .filter(|(_, p)| p.active)
            .map(|(at, p)| (p.poi.id.clone(), at))
            .collect();
        self.position = vec![u32::MAX; self.next_seq as usize];
        for (at, p) in self.pois.iter().enumerate() {
            self.position[p.poi.poi as usize] = at as u32;
        }
    }

    /// Appends an added POI.
    fn push(&mut self, poi: ProcessedPoi) {
        let at = self.pois.len();
        self.active.insert(poi.id.clone(), at);
        let seq = poi.poi as usize;
        if self.position.len() <= seq {
            self.position.resize(seq + 1, u32::MAX);
        }
        self.position[seq] = at as u32;
        self.pois.push(LivePoi { poi, active: true });
    }

    /// Id and name of the active POIs among `seqs`.
    fn names(&self, seqs: impl Iterator<Item = u32>) -> HashMap<u32, (String, String)> {
        // Many rows share a nearest POI: each is looked up once.
        let mut seqs: Vec<u32> = seqs.collect();
        seqs.sort_unstable();
        seqs.dedup();
        seqs.into_iter()
            .filter_map(|k| {
                let at = *self.position.get(k as usize)?;
                let p = self.pois.get(at as usize)?;
                p.active
                    .then(|| (k, (p.poi.id.clone(), p.poi.name.clone())))
            })
            .collect()
    }
}

/// Output edits of an epoch, committed with its state and applied afterwards (idempotently).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pending {
    epoch: u64,
    /// `changes.jsonl`: its length before the epoch, and the epoch's records.
    changes_from: u64,
    changes: String,
    /// `isochrones.geojson`: with removals, the new file was written beside it
    /// (`isochrones.geojson.next`) before the commit and is moved into place; otherwise the
    /// added features' text (each `\n{...}`) is appended at `geojson_from`, the length of
    /// its features part before the epoch (the file without its ending).
    rewritten: bool,
    geojson_from: u64,
    features_before: u64,
    added: Vec<String>,
    /// `rejects.csv`: its length before the epoch, and the epoch's lines.
    rejects_from: u64,
    rejects: String,
    /// `epochs.jsonl`: its length before the epoch, and the epoch's report as of the commit
    /// (written when the run is next opened if the process died before writing it).
    epochs_from: u64,
    report: EpochReport,
}

/// What applying a change did to the state.
#[derive(Default)]
struct Effects {
    /// Block groups reached by an added or removed POI (their rows change).
    reached: BTreeSet<u32>,
    /// Block groups whose nearest POI may have changed (a superset: the folds' reports).
    nearest: BTreeSet<u32>,
    /// Ordinals (in `isochrones.geojson`) of the removed POIs' features.
    removed_ordinals: Vec<u64>,
    /// The added POIs' features, as `isochrones.geojson` lines (when asked for).
    added_features: Vec<String>,
    rejects: Vec<Reject>,
    pois_added: u64,
    pois_removed: u64,
}

/// A finished, checkpointed run held open for updates: its inputs loaded, its state and
/// `census.csv` rows in memory. [`update`] opens one for a single change; `watch` keeps one
/// open for a stream of them.
pub struct LiveRun {
    cp: Checkpoint,
    cfg: RunConfig,
    ctx: Arc<RunContext>,
    whole: Arc<NetworkSlice>,
    acs: AcsTable,
    state: LiveState,
    /// The epoch of the snapshot in the checkpoint; later epochs are in the log.
    snapshot_epoch: u64,
    /// A snapshot is written once this many epochs are logged after the last one.
    snapshot_every: u64,
    /// `census.csv`'s header line.
    header: Vec<u8>,
    /// `census.csv`'s rows.
    census: CensusLines,
    /// Where each feature of `isochrones.geojson` starts (its `\n`), in file order: found
    /// by the first removal, then kept up to date by each epoch.
    features: Option<Vec<u64>>,
    ws: WorkerState,
    load_s: f64,
    quiet: bool,
}

impl LiveRun {
    /// Opens the finished run checkpointed in `dir`: loads its inputs, its state (the
    /// snapshot and the logged epochs after it; at the first update, the batch records), and
    /// makes the outputs of an epoch that died half-way.
    ///
    /// # Errors
    /// The checkpoint is missing, foreign, unfinished or corrupt; the run's inputs changed or
    /// came online; an input cannot be read.
    pub fn open(dir: &Path, quiet: bool) -> Result<LiveRun> {
        let t_load = Instant::now();
        let (cp, stored) = Checkpoint::open_existing(dir)?;
        let cfg: RunConfig = cp.get(KEY_RUN)?.ok_or_else(|| {
            Error::input(
                dir,
                "the checkpoint does not say how its run was configured",
            )
        })?;
        let batches: u64 = cp.get(KEY_COMPLETE)?.ok_or_else(|| {
            Error::Config(format!(
                "the run in {} has not finished: run it again to complete it first",
                dir.display()
            ))
        })?;
        // The inputs must be those of the run (the POI file may have changed: it is not read).
        let now = crate::pipeline::fingerprint(&cfg)?;
        let differ: Vec<String> = stored
            .differences(&now)
            .into_iter()
            .filter(|d| !d.starts_with("pois"))
            .collect();
        if !differ.is_empty() {
            return Err(Error::Config(format!(
                "the inputs of the run in {} changed since it ran: {}",
                dir.display(),
                differ.join("; ")
            )));
        }
        // An online run's network and block groups follow its POIs' clusters: an added POI
        // elsewhere would need tiles the run never fetched, and a fresh run over the new POI
        // set a different network. Updates therefore start from local inputs only.
        let (Some(network), Some(block_groups), false) =
            (&cfg.network, &cfg.block_groups, cfg.online.fetch_acs)
        else {
            return Err(Error::Config(format!(
                "the run in {} fetched its roads, block groups or ACS values online; `add` and \
                 `remove` update runs made from local --network, --block-groups and --acs files",
                dir.display()
            )));
        };
        let roads = crate::osm::pbf::read_roads(network)?;
        let block_groups = crate::census::boundaries::read_block_groups(block_groups)?;
        let acs = match &cfg.acs {
            Some(p) => crate::census::acs::read_acs(p, &cfg.analysis.variables)?,
            None => Default::default(),
        };
        let mut timer = StageTimer::default();
        let (ctx, whole) =
            crate::pipeline::prepare(&cfg.analysis, &roads, &block_groups, &mut timer)?;
        drop(roads);
        let mut ws = WorkerState::new(1);
        let (mut state, snapshot_epoch) = match cp.get::<LiveState>(KEY_STATE)? {
            Some(s) => {
                let e = s.epoch;
                (s, e)
            }
            None => {
                // The first update: the state from the batch records, kept as epoch 0.
                let s = replay(&cp, batches, &cfg, &ctx, &whole)?;
                cp.put_all(&[(KEY_STATE, Some(encode(&s)))])?;
                (s, 0)
            }
        };
        if !state.pois.windows(2).all(|w| w[0].poi.poi < w[1].poi.poi) {
            return Err(Error::State(format!(
                "the POIs of the checkpoint in {} are out of order",
                dir.display()
            )));
        }
        if state
            .pois
            .last()
            .is_some_and(|p| p.poi.poi >= state.next_seq)
        {
            return Err(Error::State(format!(
                "the POIs of the checkpoint in {} are numbered beyond its count",
                dir.display()
            )));
        }
        state.index();
        // Each epoch asks the network fold which targets it may have changed.
        if let Some(f) = &mut state.acc.network {
            f.track_changes();
        }
        // Epochs logged after the snapshot, applied again.
        let last: u64 = cp.get(KEY_EPOCH)?.unwrap_or(0);
        for epoch in snapshot_epoch + 1..=last {
            let logged: LoggedChange = cp.get(&log_key(epoch))?.ok_or_else(|| {
                Error::State(format!(
                    "epoch {epoch} is missing from the log of the checkpoint in {}",
                    dir.display()
                ))
            })?;
            step(&mut state, &ctx, &whole, &mut ws, &logged, Outlines::No)?;
            state.epoch = epoch;
        }
        let census = census_lines(&state, &ctx, &acs, &cfg, None);
        let header = census_header_line(&acs);
        let out = &cfg.out;
        let stale = next_path(&out.join("isochrones.geojson"));
        if let Some(p) = cp.get::<Pending>(KEY_PENDING)? {
            // The last epoch's state is committed but its outputs may be half-written.
            apply_outputs(out, &p)?;
            write_census(out, &header, &census)?;
            append_report(out, p.epochs_from, &p.report)?;
            cp.put_all(&[(KEY_PENDING, None)])?;
        } else if stale.exists() {
            // Written by an epoch that died before its commit.
            std::fs::remove_file(&stale).map_err(|e| Error::output(&stale, e))?;
        }
        Ok(LiveRun {
            cp,
            cfg,
            ctx,
            whole,
            acs,
            state,
            snapshot_epoch,
            snapshot_every: SNAPSHOT_EVERY,
            header,
            census,
            features: None,
            ws,
            load_s: t_load.elapsed().as_secs_f64(),
            quiet,
        })
    }

    /// Writes a snapshot of the state once `epochs` epochs (at least 1) are logged after the
    /// last one, instead of 64: fewer makes opening faster and every `epochs`-th epoch slower.
    pub fn with_snapshot_every(mut self, epochs: u64) -> LiveRun {
        self.snapshot_every = epochs.max(1);
        self
    }

    /// The last epoch applied (0 before any update).
    pub fn epoch(&self) -> u64 {
        self.state.epoch
    }

    /// The run's checkpoint (for what a caller commits beside the epochs).
    pub fn checkpoint(&self) -> &Checkpoint {
        &self.cp
    }

    /// The run's output directory.
    pub fn out_dir(&self) -> &Path {
        &self.cfg.out
    }

    /// Applies `change` as the next epoch and writes the outputs.
    ///
    /// # Errors
    /// A checkpoint or output write fails (the epoch is then either wholly committed, and its
    /// outputs are made when the run is opened again, or not at all). The state in memory
    /// may then be half-changed: drop this `LiveRun` and open the run again.
    pub fn apply(&mut self, change: &Change) -> Result<EpochReport> {
        self.apply_with(change, Vec::new())
    }

    /// [`LiveRun::apply`], committing `extra` (checkpoint keys and values, `None` to delete)
    /// in the same atomic write as the epoch: a caller's own progress, such as the offset of
    /// the input it read the change from.
    ///
    /// # Errors
    /// As [`LiveRun::apply`].
    pub fn apply_with(
        &mut self,
        change: &Change,
        extra: Vec<(String, Option<Vec<u8>>)>,
    ) -> Result<EpochReport> {
        let t = Instant::now();
        let epoch = self.state.epoch + 1;
        let logged = LoggedChange {
            remove_ids: change.remove_ids.clone(),
            add: change.add.iter().map(|(_, r)| r.clone()).collect(),
        };
        // Active POIs have distinct ids (a run and an update reject repeated ones).
        let features_before =
            self.state.active.len() as u64 * self.ctx.params.travel_times_min.len() as u64;
        let effects = step(
            &mut self.state,
            &self.ctx,
            &self.whole,
            &mut self.ws,
            &logged,
            Outlines::Yes,
        )?;
        self.state.epoch = epoch;
        let applied = t.elapsed().as_secs_f64();
        let mut report = EpochReport {
            epoch,
            apply_s: applied,
            pois_added: effects.pois_added,
            pois_removed: effects.pois_removed,
            rejected: effects.rejects.len() as u64,
            ..Default::default()
        };

        // The rows of the block groups the change may have touched, made again and merged
        // into the table.
        let census = &self.ctx.census;
        let mut touched = vec![false; census.block_groups.len()];
        let touched_bgs: Vec<u32> = effects.reached.union(&effects.nearest).copied().collect();
        for &bg in &touched_bgs {
            touched[bg as usize] = true;
        }
        let fresh = census_lines(
            &self.state,
            &self.ctx,
            &self.acs,
            &self.cfg,
            Some(&touched_bgs),
        );
        let merged = self.census.merge(&fresh, &touched);
        report.rows_changed = merged.edits.len() as u64;
        // Block groups reached by a changed POI, or whose rows changed (their nearest POI):
        // those with no row before or after (reached by no POI) are not in the outputs.
        let mut recomputed: Vec<u32> = effects
            .reached
            .iter()
            .copied()
            .filter(|&bg| merged.with_rows.binary_search(&bg).is_ok())
            .chain(merged.edits.iter().map(|e| key_bg(e.key)))
            .collect();
        recomputed.sort_unstable();
        recomputed.dedup();
        report.bgs_recomputed = recomputed.len() as u64;
        let changes = changelog(epoch, &merged.edits, &fresh, census, &self.acs);
        self.census = merged.table;

        // Commit (the change in the log, the edits pending), then write the outputs.
        let rows_done = t.elapsed().as_secs_f64();
        report.rows_s = rows_done - applied;
        let out = self.cfg.out.clone();
        let len = |name: &str| std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
        let geojson = out.join("isochrones.geojson");
        let geojson_from = len("isochrones.geojson").saturating_sub(GEOJSON_FOOTER.len() as u64);
        let rewritten = !effects.removed_ordinals.is_empty();
        let features = if rewritten {
            let starts = match self.features.take() {
                Some(starts) => starts,
                None => feature_starts(&geojson, features_before)?,
            };
            Some(rewrite_geojson(
                &geojson,
                &next_path(&geojson),
                &starts,
                &effects.removed_ordinals,
                &effects.added_features,
            )?)
        } else {
            // The added features are appended after the others.
            self.features.take().map(|mut starts| {
                let mut at = geojson_from;
                for f in &effects.added_features {
                    at += u64::from(!starts.is_empty());
                    starts.push(at);
                    at += f.len() as u64;
                }
                starts
            })
        };
        let mut rejects = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for r in &effects.rejects {
            rejects
                .write_record([r.source.as_str(), r.id.as_deref().unwrap_or(""), &r.reason])
                .map_err(|e| Error::output(out.join("rejects.csv"), e))?;
        }
        report.load_s = std::mem::take(&mut self.load_s);
        report.latency_s = t.elapsed().as_secs_f64();
        let pending = Pending {
            epoch,
            changes_from: len("changes.jsonl"),
            changes: String::from_utf8(changes)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            rewritten,
            geojson_from,
            features_before,
            added: effects.added_features,
            rejects_from: len("rejects.csv"),
            rejects: String::from_utf8_lossy(&rejects.into_inner().unwrap_or_default())
                .into_owned(),
            epochs_from: len("epochs.jsonl"),
            report: report.clone(),
        };
        let log = log_key(epoch);
        let mut commit: Vec<(&str, Option<Vec<u8>>)> = vec![
            (log.as_str(), Some(encode(&logged))),
            (KEY_EPOCH, Some(encode(&epoch))),
            (KEY_PENDING, Some(encode(&pending))),
        ];
        commit.extend(extra.iter().map(|(k, v)| (k.as_str(), v.clone())));
        self.cp.put_all(&commit)?;
        apply_outputs(&out, &pending)?;
        self.features = features;
        write_census(&out, &self.header, &self.census)?;
        report.latency_s = t.elapsed().as_secs_f64();
        report.write_s = report.latency_s - rows_done;
        append_report(&out, pending.epochs_from, &report)?;
        self.cp.put_all(&[(KEY_PENDING, None)])?;
        if epoch - self.snapshot_epoch >= self.snapshot_every {
            self.snapshot()?;
        }
        if !self.quiet {
            eprintln!(
                "epoch {epoch}: {} added, {} removed, {} rejected; {} block groups recomputed, {} rows changed; {:.1} ms{}",
                report.pois_added,
                report.pois_removed,
                report.rejected,
                report.bgs_recomputed,
                report.rows_changed,
                report.latency_s * 1e3,
                if report.load_s > 0.0 {
                    format!(" (inputs and state loaded in {:.1} s)", report.load_s)
                } else {
                    String::new()
                }
            );
        }
        Ok(report)
    }

    /// Writes the state as the new snapshot and drops the log entries it includes, in one
    /// atomic write.
    fn snapshot(&mut self) -> Result<()> {
        let logs: Vec<String> = (self.snapshot_epoch + 1..=self.state.epoch)
            .map(log_key)
            .collect();
        let mut items: Vec<(&str, Option<Vec<u8>>)> = vec![(KEY_STATE, Some(encode(&self.state)))];
        items.extend(logs.iter().map(|k| (k.as_str(), None)));
        self.cp.put_all(&items)?;
        self.snapshot_epoch = self.state.epoch;
        Ok(())
    }
}

/// Applies `change` to the finished run checkpointed in `dir` (opening it for this one epoch).
///
/// # Errors
/// As [`LiveRun::open`] and [`LiveRun::apply`].
pub fn update(dir: &Path, change: &Change, quiet: bool) -> Result<EpochReport> {
    LiveRun::open(dir, quiet)?.apply(change)
}

/// The log key of `epoch` (zero-padded, so that keys sort by epoch).
fn log_key(epoch: u64) -> String {
    format!("{LOG_PREFIX}{epoch:020}")
}

/// Applies `change` to `state`: POIs taken out, then POIs added (numbered after every POI so
/// far), as a fresh run over the resulting POI file would have them. Returns what changed.
fn step(
    state: &mut LiveState,
    ctx: &RunContext,
    whole: &NetworkSlice,
    ws: &mut WorkerState,
    change: &LoggedChange,
    outlines: Outlines,
) -> Result<Effects> {
    let mut fx = Effects::default();

    // 1. Take POIs out.
    if !change.remove_ids.is_empty() {
        for id in &change.remove_ids {
            if !state.active.contains_key(id) {
                fx.rejects.push(Reject {
                    source: "remove".into(),
                    id: Some(id.clone()),
                    reason: "no POI with this id in the run".into(),
                });
            }
        }
        // The positions of the POIs to take out, in file order.
        let mut out: Vec<usize> = (change.remove_ids.iter())
            .filter_map(|id| state.active.remove(id))
            .collect();
        out.sort_unstable();
        let mut gone = HashSet::new();
        let mut ordinal = 0u64;
        let per_poi = ctx.params.travel_times_min.len() as u64;
        let mut next = out.iter().copied().peekable();
        for (at, p) in state.pois.iter_mut().enumerate() {
            if next.peek().is_none() {
                break;
            }
            if !p.active {
                continue;
            }
            if next.next_if_eq(&at).is_some() {
                p.active = false;
                gone.insert(p.poi.poi);
                fx.removed_ordinals.extend(ordinal..ordinal + per_poi);
                let iso = poi_isochrone(
                    &whole.network,
                    &whole.link_cells,
                    &ctx.params,
                    p.poi.poi,
                    p.poi.snap,
                    &mut ws.iso,
                );
                state.acc.coverage.add(&iso, -1)?;
                let reach = reach_of(ctx, &iso, ws);
                fx.reached.extend(reach.iter().map(|r| r.0));
                state.acc.count_reach(&reach, -1)?;
                fx.pois_removed += 1;
            }
            ordinal += per_poi;
        }
        if !gone.is_empty() {
            let active = state.pois.iter().filter(|p| p.active);
            let xy: Vec<_> = active.clone().map(|p| (p.poi.poi, p.poi.xy)).collect();
            let snaps: Vec<_> = active.map(|p| (p.poi.poi, p.poi.snap)).collect();
            if let Some(f) = &mut state.acc.straight {
                fx.nearest.extend(f.remove(&gone, &xy));
            }
            if let Some(f) = &mut state.acc.network {
                f.remove(&whole.network, &gone, &snaps);
            }
        }
    }

    // 2. Add POIs, in order, numbered after every POI so far.
    for record in &change.add {
        let seq = state.next_seq;
        state.next_seq += 1;
        let poi = match record {
            Ok(p) if state.active.contains_key(&p.id) => {
                fx.rejects.push(Reject {
                    source: p.source.clone(),
                    id: Some(p.id.clone()),
                    reason: format!("duplicate id {}: a POI of the run has it", p.id),
                });
                continue;
            }
            Ok(p) => p,
            Err(r) => {
                fx.rejects.push(r.clone());
                continue;
            }
        };
        let mut secs = [0.0; 3];
        match process_poi(ctx, whole, poi, seq, outlines, ws, &mut secs) {
            Ok(work) => {
                state.acc.coverage.add(&work.isochrone, 1)?;
                fx.reached.extend(work.reach.iter().map(|r| r.0));
                state.acc.count_reach(&work.reach, 1)?;
                let p = work.processed;
                if let Some(f) = &mut state.acc.straight {
                    fx.nearest.extend(f.add(&[(p.poi, p.xy)]));
                }
                if let Some(f) = &mut state.acc.network {
                    f.add(&whole.network, &[(p.poi, p.snap)]);
                }
                for f in &work.features {
                    let mut text = String::new();
                    output::feature_json(&mut text, f);
                    fx.added_features.push(text);
                }
                state.push(p);
                fx.pois_added += 1;
            }
            Err(r) => fx.rejects.push(r),
        }
    }

    // 3. Block groups whose network-nearest POI may have changed.
    if let Some(f) = &mut state.acc.network {
        fx.nearest.extend(f.take_changed());
    }
    Ok(fx)
}

/// Appends `text` to `out` as a JSON string.
fn push_json_string(out: &mut Vec<u8>, text: &[u8]) {
    // Cells rarely hold anything to escape: those are copied as they are.
    if text.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(text);
        out.push(b'"');
    } else {
        // Writing a string to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, &*String::from_utf8_lossy(text));
    }
}

/// The `changes.jsonl` lines of an epoch's row edits, one per edit in their order:
/// `{"epoch":E,"op":OP,"key":GEOID,"travel_time_minutes":T,"row":{column:cell,...}|null}`,
/// the row's columns in `census.csv`'s order (`fresh` holds the new rows' lines).
fn changelog(
    epoch: u64,
    edits: &[RowEdit],
    fresh: &CensusLines,
    census: &CensusIndex,
    acs: &AcsTable,
) -> Vec<u8> {
    let mut columns = Vec::new();
    for c in census_header(&acs.variables) {
        let mut name = Vec::new();
        push_json_string(&mut name, c.as_bytes());
        columns.push(name);
    }
    // The new rows' lines, read back into cells in the edits' order.
    let mut text = Vec::new();
    for e in edits {
        if let Some(at) = e.fresh {
            text.extend_from_slice(fresh.line(at));
        }
    }
    let mut cells = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(&text[..]);
    let mut record = csv::ByteRecord::new();
    let mut out = Vec::with_capacity(text.len() * 2 + edits.len() * 64);
    for e in edits {
        let geoid = &census.block_groups[key_bg(e.key) as usize].geoid;
        out.extend_from_slice(
            format!("{{\"epoch\":{epoch},\"op\":\"{}\",\"key\":", e.op).as_bytes(),
        );
        push_json_string(&mut out, geoid.as_bytes());
        out.extend_from_slice(
            format!(",\"travel_time_minutes\":{},\"row\":", key_minutes(e.key)).as_bytes(),
        );
        // The lines were written by the csv writer from as many cells as there are columns.
        if e.fresh.is_some() && matches!(cells.read_byte_record(&mut record), Ok(true)) {
            out.push(b'{');
            for (k, (c, v)) in columns.iter().zip(record.iter()).enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(c);
                out.push(b':');
                push_json_string(&mut out, v);
            }
            out.push(b'}');
        } else {
            out.extend_from_slice(b"null");
        }
        out.extend_from_slice(b"}\n");
    }
    out
}

/// The live state of a finished run, from its batch records.
fn replay(
    cp: &Checkpoint,
    batches: u64,
    cfg: &RunConfig,
    ctx: &RunContext,
    whole: &NetworkSlice,
) -> Result<LiveState> {
    let mut acc = Accumulated::new(&cfg.analysis, ctx, whole);
    let mut pois = Vec::new();
    let mut next_seq = 0;
    for id in 0..batches {
        let rec: BatchRecord = cp.load(id)?;
        acc.apply(&rec, &whole.network)?;
        next_seq += rec.records;
        pois.extend(
            rec.processed
                .into_iter()
                .map(|poi| LivePoi { poi, active: true }),
        );
    }
    // Batches were computed in map order, a window at a time: the POIs in record order.
    pois.sort_by_key(|p| p.poi.poi);
    Ok(LiveState {
        acc,
        pois,
        next_seq,
        epoch: 0,
        active: HashMap::new(),
        position: Vec::new(),
    })
}

/// The key of a `census.csv` row: its travel time, then its block group. Block groups are
/// numbered in GEOID order, so key order is the file's order.
fn row_key(minutes: u32, bg: u32) -> u64 {
    (u64::from(minutes) << 32) | u64::from(bg)
}

/// The block group of a row key.
fn key_bg(key: u64) -> u32 {
    key as u32
}

/// The travel time of a row key.
fn key_minutes(key: u64) -> u32 {
    (key >> 32) as u32
}

/// Rows of `census.csv` as the file holds them: their lines in one text, in file order. An
/// epoch merges its rows into it ([`CensusLines::merge`]) and the file is written from it
/// in two writes.
#[derive(Default)]
struct CensusLines {
    text: Vec<u8>,
    /// Each row's key and the end of its line in `text`, ascending by key; a line starts
    /// where the one before it ends.
    rows: Vec<(u64, usize)>,
}

/// What an epoch did to a row of `census.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowOp {
    Insert,
    Update,
    Delete,
}

impl std::fmt::Display for RowOp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RowOp::Insert => "insert",
            RowOp::Update => "update",
            RowOp::Delete => "delete",
        })
    }
}

/// A changed row: its key, what happened, and its new line (an index into the epoch's
/// fresh rows) unless deleted.
#[derive(Clone, Copy, Debug)]
struct RowEdit {
    key: u64,
    op: RowOp,
    fresh: Option<usize>,
}

/// The result of [`CensusLines::merge`].
struct Merged {
    /// The table after the epoch.
    table: CensusLines,
    /// The changed rows: inserts and updates by key, then deletes by key.
    edits: Vec<RowEdit>,
    /// The touched block groups with a row before or after (ascending).
    with_rows: Vec<u32>,
}

impl CensusLines {
    /// The line of the `at`-th row.
    fn line(&self, at: usize) -> &[u8] {
        let from = if at == 0 { 0 } else { self.rows[at - 1].1 };
        &self.text[from..self.rows[at].1]
    }

    /// The table with the rows of the `touched` block groups (indexed by block group)
    /// replaced by `fresh` (their rows made again; a touched block group without a fresh row
    /// has none any more), and the row edits that makes. Unchanged runs of lines are copied
    /// whole.
    fn merge(&self, fresh: &CensusLines, touched: &[bool]) -> Merged {
        let mut table = CensusLines {
            text: Vec::with_capacity(self.text.len() + fresh.text.len()),
            rows: Vec::with_capacity(self.rows.len() + fresh.rows.len()),
        };
        let mut edits = Vec::new();
        let mut deletes = Vec::new();
        let mut with_rows = Vec::new();
        // The run of old lines being kept: where it starts in the old text.
        let mut run_from = 0;
        let (mut i, mut j) = (0, 0);
        loop {
            let old = self.rows.get(i).map(|r| r.0);
            let new = fresh.rows.get(j).map(|r| r.0);
            let (old_key, new_key) = match (old, new) {
                (None, None) => break,
                (o, n) => (o.unwrap_or(u64::MAX), n.unwrap_or(u64::MAX)),
            };
            let old_from = if i == 0 { 0 } else { self.rows[i - 1].1 };
            if old_key < new_key && !touched[key_bg(old_key) as usize] {
                // Kept: it extends the run.
                let end = table.text.len() + (self.rows[i].1 - run_from);
                table.rows.push((old_key, end));
                i += 1;
                continue;
            }
            if old_key == new_key && self.line(i) == fresh.line(j) {
                let end = table.text.len() + (self.rows[i].1 - run_from);
                table.rows.push((old_key, end));
                with_rows.push(key_bg(old_key));
                i += 1;
                j += 1;
                continue;
            }
            // The run ends here.
            table.text.extend_from_slice(&self.text[run_from..old_from]);
            if old_key < new_key {
                // A touched block group's row that is no more.
                deletes.push(RowEdit {
                    key: old_key,
                    op: RowOp::Delete,
                    fresh: None,
                });
                with_rows.push(key_bg(old_key));
                i += 1;
            } else {
                let op = if old_key == new_key {
                    i += 1;
                    RowOp::Update
                } else {
                    RowOp::Insert
                };
                table.text.extend_from_slice(fresh.line(j));
                table.rows.push((new_key, table.text.len()));
                edits.push(RowEdit {
                    key: new_key,
                    op,
                    fresh: Some(j),
                });
                with_rows.push(key_bg(new_key));
                j += 1;
            }
            run_from = if i == 0 { 0 } else { self.rows[i - 1].1 };
        }
        table.text.extend_from_slice(&self.text[run_from..]);
        edits.extend(deletes);
        with_rows.sort_unstable();
        with_rows.dedup();
        Merged {
            table,
            edits,
            with_rows,
        }
    }
}

/// The lines of the census rows — all of them, or those of the block groups `only`
/// (ascending).
fn census_lines(
    state: &LiveState,
    ctx: &RunContext,
    acs: &AcsTable,
    cfg: &RunConfig,
    only: Option<&[u32]>,
) -> CensusLines {
    let reached: Vec<u32>;
    let bgs = match only {
        Some(bgs) => bgs,
        None => {
            reached = state.acc.reach.keys().copied().collect();
            &reached
        }
    };
    let rows = crate::pipeline::census_rows_of(&state.acc, &ctx.census, &ctx.params, acs, bgs);
    let names = state.names(rows.iter().filter_map(|(_, r)| r.nearest_poi()));
    // Writing to a Vec cannot fail; the writer is flushed after each row to find its end.
    let mut text = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(rows.len() * 320));
    let mut record = csv::ByteRecord::new();
    let mut ends = Vec::with_capacity(rows.len());
    for (bg, r) in &rows {
        census_record(
            r,
            &names,
            acs.variables.len(),
            cfg.analysis.mode,
            &mut record,
        );
        let _ = text.write_byte_record(&record);
        let _ = text.flush();
        ends.push((row_key(r.minutes, *bg), text.get_ref().len()));
    }
    CensusLines {
        text: text.into_inner().unwrap_or_default(),
        rows: ends,
    }
}

/// `census.csv`'s header line.
fn census_header_line(acs: &AcsTable) -> Vec<u8> {
    let mut header = csv::Writer::from_writer(Vec::new());
    // Writing to a Vec cannot fail.
    let _ = header.write_record(census_header(&acs.variables));
    header.into_inner().unwrap_or_default()
}

/// Writes `census.csv`: `header`, then the rows. Like the checkpoint's writes it is not
/// fsynced: it survives a killed process, and the state it is made from is committed before
/// it. It is written beside and moved into place, so that a reader never sees half of it.
fn write_census(out: &Path, header: &[u8], rows: &CensusLines) -> Result<()> {
    let path = out.join("census.csv");
    let tmp = path.with_extension("csv.tmp");
    let mut file = std::fs::File::create(&tmp).map_err(|e| Error::output(&tmp, e))?;
    file.write_all(header)
        .and_then(|()| file.write_all(&rows.text))
        .map_err(|e| Error::output(&tmp, e))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(|e| Error::output(&path, e))
}

/// Applies an epoch's edits of `changes.jsonl`, `isochrones.geojson` and `rejects.csv`. Each
/// edit can be made twice with the result of once (appends cut the file back first; a moved
/// file is not there any more).
fn apply_outputs(out: &Path, p: &Pending) -> Result<()> {
    append(
        &out.join("changes.jsonl"),
        Some(p.changes_from),
        p.changes.as_bytes(),
    )?;
    let path = out.join("isochrones.geojson");
    if p.rewritten {
        let next = next_path(&path);
        if next.exists() {
            std::fs::rename(&next, &path).map_err(|e| Error::output(&path, e))?;
        }
    } else if !p.added.is_empty() {
        let mut text = Vec::new();
        for (k, f) in p.added.iter().enumerate() {
            if p.features_before > 0 || k > 0 {
                text.push(b',');
            }
            text.extend_from_slice(f.as_bytes());
        }
        text.extend_from_slice(GEOJSON_FOOTER);
        append(&path, Some(p.geojson_from), &text)?;
    }
    append(
        &out.join("rejects.csv"),
        Some(p.rejects_from),
        p.rejects.as_bytes(),
    )
}

/// Writes `report` as the line of `epochs.jsonl` after its first `from` bytes (idempotent, as
/// the other edits: the report is the last output an epoch writes before its edits stop
/// being pending, so a process killed at any point leaves no epoch without its line).
fn append_report(out: &Path, from: u64, report: &EpochReport) -> Result<()> {
    let line = format!("{}\n", serde_json::to_string(report).unwrap_or_default());
    append(&out.join("epochs.jsonl"), Some(from), line.as_bytes())
}

/// Where an epoch writes the new `isochrones.geojson` before its commit.
fn next_path(path: &Path) -> PathBuf {
    path.with_extension("geojson.next")
}

/// Where each feature of the `isochrones.geojson` at `path` starts: features are one per
/// line (see [`output::feature_json`]; strings in them are escaped), so a feature starts at
/// each `\n{`. The file must hold `expected` features.
///
/// # Errors
/// The file cannot be read, or holds another number of features.
fn feature_starts(path: &Path, expected: u64) -> Result<Vec<u64>> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| Error::input(path, e))?;
    let mut starts = Vec::with_capacity(expected as usize);
    let mut chunk = vec![0; 8 << 20];
    let mut offset = 0u64;
    // A `\n` that ended the previous chunk: a start if the next byte is `{`.
    let mut newline_at_end = None;
    loop {
        let n = file.read(&mut chunk).map_err(|e| Error::input(path, e))?;
        if n == 0 {
            break;
        }
        let chunk = &chunk[..n];
        if let Some(at) = newline_at_end.take()
            && chunk[0] == b'{'
        {
            starts.push(at);
        }
        for at in memchr::memchr_iter(b'\n', chunk) {
            match chunk.get(at + 1) {
                Some(b'{') => starts.push(offset + at as u64),
                Some(_) => {}
                None => newline_at_end = Some(offset + at as u64),
            }
        }
        offset += n as u64;
    }
    if starts.len() as u64 != expected {
        return Err(Error::input(
            path,
            format!(
                "it holds {} features where the run has {expected}: it was changed outside \
                 socialmapper (run again with --fresh)",
                starts.len()
            ),
        ));
    }
    Ok(starts)
}

/// Writes the `isochrones.geojson` at `path`, whose features start at `starts`, again into
/// `to`, without the features at `removed` ordinals (ascending) and with `added` at the
/// end; returns where the new file's features start. Runs of kept features are copied as
/// byte ranges (in the kernel, where it can), not read and written line by line.
fn rewrite_geojson(
    path: &Path,
    to: &Path,
    starts: &[u64],
    removed: &[u64],
    added: &[String],
) -> Result<Vec<u64>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut src = std::fs::File::open(path).map_err(|e| Error::input(path, e))?;
    let len = src.metadata().map_err(|e| Error::input(path, e))?.len();
    let features_end = len.saturating_sub(GEOJSON_FOOTER.len() as u64);
    // Feature k spans starts[k] up to the comma before feature k + 1 (the last one, up to
    // the footer).
    let end_of = |k: usize| starts.get(k + 1).map_or(features_end, |&s| s - 1);
    let mut dst = std::fs::File::create(to).map_err(|e| Error::output(to, e))?;
    let mut new_starts = Vec::with_capacity(starts.len() + added.len());
    let mut write = || -> std::io::Result<()> {
        dst.write_all(GEOJSON_HEADER)?;
        let mut at = GEOJSON_HEADER.len() as u64;
        let mut removed = removed.iter().map(|&r| r as usize).peekable();
        let mut k = 0;
        while k < starts.len() {
            if removed.next_if_eq(&k).is_some() {
                k += 1;
                continue;
            }
            // A run of kept features: k up to the next removed one.
            let run_end = removed.peek().copied().unwrap_or(starts.len());
            if !new_starts.is_empty() {
                dst.write_all(b",")?;
                at += 1;
            }
            let (from, to) = (starts[k], end_of(run_end - 1));
            // The index was made from this file; a file changed since would be copied wrong.
            let mut first = [0u8; 2];
            std::os::unix::fs::FileExt::read_exact_at(&src, &mut first, from)?;
            if &first != b"\n{" || to < from {
                return Err(std::io::Error::other(format!(
                    "{} changed while the run was open: no feature starts at byte {from}",
                    path.display()
                )));
            }
            new_starts.extend(starts[k..run_end].iter().map(|&s| s - from + at));
            src.seek(SeekFrom::Start(from))?;
            let copied = std::io::copy(&mut (&mut src).take(to - from), &mut dst)?;
            if copied != to - from {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the file is shorter than its features",
                ));
            }
            at += copied;
            k = run_end;
        }
        for f in added {
            if !new_starts.is_empty() {
                dst.write_all(b",")?;
                at += 1;
            }
            new_starts.push(at);
            dst.write_all(f.as_bytes())?;
            at += f.len() as u64;
        }
        dst.write_all(GEOJSON_FOOTER)
    };
    write().map_err(|e| Error::output(to, e))?;
    Ok(new_starts)
}

/// Appends `bytes` to `path` (created if missing), first cutting it to `from` bytes if given
/// (so that an append redone after a crash does not duplicate).
fn append(path: &Path, from: Option<u64>, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::output(path, e))?;
    if let Some(len) = from {
        f.set_len(len).map_err(|e| Error::output(path, e))?;
    }
    f.write_all(bytes).map_err(|e| Error::output(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table of `(minutes, bg, line)` rows, in key order.
    fn table(rows: &[(u32, u32, &str)]) -> CensusLines {
        let mut t = CensusLines::default();
        for &(minutes, bg, line) in rows {
            t.text.extend_from_slice(line.as_bytes());
            t.rows.push((row_key(minutes, bg), t.text.len()));
        }
        t
    }

    fn lines(t: &CensusLines) -> Vec<(u32, u32, String)> {
        (0..t.rows.len())
            .map(|k| {
                let key = t.rows[k].0;
                let line = String::from_utf8(t.line(k).to_vec()).unwrap();
                (key_minutes(key), key_bg(key), line)
            })
            .collect()
    }

    #[test]
    fn merging_rows_replaces_the_touched_block_groups_and_reports_each_edit() {
        let old = table(&[
            (5, 0, "a5\n"),
            (5, 1, "b5\n"),
            (5, 3, "d5\n"),
            (10, 0, "a10\n"),
            (10, 1, "b10\n"),
            (10, 2, "c10\n"),
            (10, 3, "d10\n"),
        ]);
        // Block groups 1 (updated at 5, unchanged at 10), 2 (inserted at 5, deleted at 10)
        // and 4 (inserted) are touched; 0 and 3 are not.
        let mut touched = vec![false; 5];
        for bg in [1, 2, 4] {
            touched[bg] = true;
        }
        let fresh = table(&[
            (5, 1, "B5\n"),
            (5, 2, "c5\n"),
            (10, 1, "b10\n"),
            (10, 4, "e10\n"),
        ]);
        let m = old.merge(&fresh, &touched);
        let want = [
            (5, 0, "a5\n"),
            (5, 1, "B5\n"),
            (5, 2, "c5\n"),
            (5, 3, "d5\n"),
            (10, 0, "a10\n"),
            (10, 1, "b10\n"),
            (10, 3, "d10\n"),
            (10, 4, "e10\n"),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|&(m, b, l)| (m, b, l.to_string()))
            .collect();
        assert_eq!(lines(&m.table), want);
        assert_eq!(
            m.table.text,
            want.iter()
                .map(|r| r.2.as_str())
                .collect::<String>()
                .as_bytes()
        );
        let edits: Vec<_> = m
            .edits
            .iter()
            .map(|e| (key_minutes(e.key), key_bg(e.key), e.op, e.fresh))
            .collect();
        assert_eq!(
            edits,
            [
                (5, 1, RowOp::Update, Some(0)),
                (5, 2, RowOp::Insert, Some(1)),
                (10, 4, RowOp::Insert, Some(3)),
                (10, 2, RowOp::Delete, None),
            ]
        );
        assert_eq!(m.with_rows, [1, 2, 4]);

        // Nothing touched: the same table, no edits.
        let m = old.merge(&CensusLines::default(), &[false; 5]);
        assert_eq!(lines(&m.table), lines(&old));
        assert!(m.edits.is_empty() && m.with_rows.is_empty());
        // Everything touched and gone: an empty table, every row deleted in key order.
        let m = old.merge(&CensusLines::default(), &[true; 5]);
        assert!(m.table.text.is_empty() && m.table.rows.is_empty());
        let deleted: Vec<u64> = m.edits.iter().map(|e| e.key).collect();
        assert_eq!(deleted, old.rows.iter().map(|r| r.0).collect::<Vec<_>>());
        assert!(m.edits.iter().all(|e| e.op == RowOp::Delete));
    }

    /// `isochrones.geojson`'s text holding `features` (each `\n{...}`).
    fn geojson(features: &[&str]) -> Vec<u8> {
        let mut text = GEOJSON_HEADER.to_vec();
        text.extend_from_slice(features.join(",").as_bytes());
        text.extend_from_slice(GEOJSON_FOOTER);
        text
    }

    #[test]
    fn a_rewritten_geojson_drops_the_removed_features_and_knows_where_the_rest_start() {
        let dir = std::env::temp_dir().join(format!("sm-geojson-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, to) = (dir.join("isochrones.geojson"), dir.join("next.geojson"));
        let features: Vec<String> = (0..7)
            .map(|k| format!("\n{{\"type\":\"Feature\",\"k\":{k},\"name\":\"a\\nb {{\"}}"))
            .collect();
        let all: Vec<&str> = features.iter().map(String::as_str).collect();
        std::fs::write(&path, geojson(&all)).unwrap();
        let starts = feature_starts(&path, 7).unwrap();
        assert_eq!(starts.len(), 7);
        assert!(
            feature_starts(&path, 6).is_err(),
            "a count that differs is refused"
        );
        let added = vec!["\n{\"type\":\"Feature\",\"k\":7}".to_string()];
        for (removed, kept) in [
            (&[0u64, 3, 4, 6][..], &[1usize, 2, 5][..]),
            (&[2], &[0, 1, 3, 4, 5, 6]),
            (&[0, 1, 2, 3, 4, 5, 6], &[]),
        ] {
            let new_starts = rewrite_geojson(&path, &to, &starts, removed, &added).unwrap();
            let mut want: Vec<&str> = kept.iter().map(|&k| all[k]).collect();
            want.push(&added[0]);
            assert_eq!(
                std::fs::read(&to).unwrap(),
                geojson(&want),
                "removed {removed:?}"
            );
            assert_eq!(new_starts, feature_starts(&to, want.len() as u64).unwrap());
        }
        // A file changed behind the index is refused, not copied wrong.
        let mut shifted = geojson(&all);
        shifted.insert(GEOJSON_HEADER.len(), b' ');
        std::fs::write(&path, shifted).unwrap();
        let err = rewrite_geojson(&path, &to, &starts, &[1], &[]).unwrap_err();
        assert!(
            err.to_string().contains("changed while the run was open"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn json_strings_are_escaped_only_where_needed() {
        let mut out = Vec::new();
        push_json_string(&mut out, b"plain 1.5");
        out.push(b' ');
        push_json_string(&mut out, "a \"quoted\" \\ name\ttab é".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#""plain 1.5" "a \"quoted\" \\ name\ttab é""#
        );
    }
}
