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
//!   search of its Voronoi cell from the cell's boundary ([`NetworkFold::remove`]).
//!
//! The state lives in the checkpoint (`live/state`), built at the first update by replaying the
//! run's batch records. `census.csv` is written again from it, `isochrones.geojson` gains the
//! added POIs' features at its end and loses the removed ones', and `changes.jsonl` gets one
//! record per changed row. The result is byte for byte what a fresh run over the resulting POI
//! set writes (tested), because both share the stages, the folds' tie rules and the row code.
//!
//! Crash safety: an epoch's new state is committed together with the output edits it implies
//! (`live/pending`) before any output is touched; the edits are idempotent and are applied
//! again by the next update if the process died half-way.
//!
//! Why not the POI → block-group relation as a differential arrangement: a 15-minute drive
//! reaches ~2,000 block groups, so 100 k POIs make ~2·10⁸ pairs; the aggregates kept here are
//! bounded by the block groups and the union of the isochrones, and a removed POI's pairs are
//! recomputed in milliseconds instead of stored.

use crate::checkpoint::{Checkpoint, encode};
use crate::config::RunConfig;
use crate::dataflow::{Outlines, ProcessedPoi, RunContext, WorkerState, process_poi, reach_of};
use crate::error::{Error, Result};
use crate::output::{self, GEOJSON_FOOTER, GEOJSON_HEADER, census_header, census_record};
use crate::pipeline::{Accumulated, BatchRecord, KEY_COMPLETE, KEY_RUN, StageTimer};
use crate::stages::isochrone::poi_isochrone;
use crate::stages::network::NetworkSlice;
use crate::types::Reject;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Checkpoint key: the number of the last applied epoch.
pub const KEY_EPOCH: &str = "live/epoch";
const KEY_STATE: &str = "live/state";
const KEY_PENDING: &str = "live/pending";

/// One update: ids to take out, then a POI file to add.
#[derive(Clone, Debug, Default)]
pub struct Change {
    /// Ids of POIs to take out (every POI with that id).
    pub remove_ids: Vec<String>,
    /// A POI file whose POIs are added, in file order.
    pub add: Option<PathBuf>,
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
    /// Seconds from the change being read to the outputs written (inputs loaded before).
    pub latency_s: f64,
    /// Seconds spent loading the run's inputs and state.
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
    /// Every POI processed, in record (sequence) order; added ones at the end.
    pois: Vec<LivePoi>,
    /// The sequence number of the next added POI.
    next_seq: u32,
    epoch: u64,
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
}

/// Applies `change` to the finished run checkpointed in `dir`.
pub fn update(dir: &Path, change: &Change, quiet: bool) -> Result<EpochReport> {
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
    // elsewhere would need tiles the run never fetched, and a fresh run over the new POI set
    // a different network. Updates therefore start from local inputs only.
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
    let (ctx, whole) = crate::pipeline::prepare(&cfg.analysis, &roads, &block_groups, &mut timer)?;
    drop(roads);
    let mut state = match cp.get::<LiveState>(KEY_STATE)? {
        Some(s) => s,
        None => replay(&cp, batches, &cfg, &ctx, &whole)?,
    };
    let out = &cfg.out;
    let stale = next_path(&cfg.out.join("isochrones.geojson"));
    if let Some(p) = cp.get::<Pending>(KEY_PENDING)? {
        // The last epoch's state is committed but its outputs may be half-written.
        apply_outputs(out, &p)?;
        write_census(out, &acs, &rows_by_key(&state, &ctx, &acs, &cfg))?;
        cp.put_all(&[(KEY_PENDING, None)])?;
    } else if stale.exists() {
        // Written by an epoch that died before its commit.
        std::fs::remove_file(&stale).map_err(|e| Error::output(&stale, e))?;
    }
    let load_s = t_load.elapsed().as_secs_f64();

    let t = Instant::now();
    let epoch = state.epoch + 1;
    let before = rows_by_key(&state, &ctx, &acs, &cfg);
    let straight_before = state.acc.straight.as_ref().map(|f| f.result());
    let network_before = state.acc.network.as_ref().map(|f| f.result());
    let mut touched: BTreeSet<u32> = BTreeSet::new();
    let mut report = EpochReport {
        epoch,
        ..Default::default()
    };
    let mut rejects = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    let mut reject = |r: Reject| {
        let _ = rejects.write_record([r.source.as_str(), r.id.as_deref().unwrap_or(""), &r.reason]);
    };
    let mut ws = WorkerState::new(1);
    let features_before = state.pois.iter().filter(|p| p.active).count() as u64
        * ctx.params.travel_times_min.len() as u64;

    // 1. Take POIs out.
    let mut removed_ordinals = Vec::new();
    if !change.remove_ids.is_empty() {
        let wanted: HashSet<&str> = change.remove_ids.iter().map(String::as_str).collect();
        let mut found: HashSet<String> = HashSet::new();
        let mut gone = HashSet::new();
        let mut ordinal = 0u64;
        let per_poi = ctx.params.travel_times_min.len() as u64;
        for p in state.pois.iter_mut().filter(|p| p.active) {
            if wanted.contains(p.poi.id.as_str()) {
                found.insert(p.poi.id.clone());
                p.active = false;
                gone.insert(p.poi.poi);
                removed_ordinals.extend(ordinal..ordinal + per_poi);
                let iso = poi_isochrone(
                    &whole.network,
                    &whole.link_cells,
                    &ctx.params,
                    p.poi.poi,
                    p.poi.snap,
                    &mut ws.iso,
                );
                state.acc.coverage.add(&iso, -1)?;
                let reach = reach_of(&ctx, &iso, &mut ws);
                touched.extend(reach.iter().map(|r| r.0));
                state.acc.count_reach(&reach, -1)?;
                report.pois_removed += 1;
            }
            ordinal += per_poi;
        }
        for id in &change.remove_ids {
            if !found.contains(id) {
                reject(Reject {
                    source: "remove".into(),
                    id: Some(id.clone()),
                    reason: "no POI with this id in the run".into(),
                });
                report.rejected += 1;
            }
        }
        if !gone.is_empty() {
            let active = state.pois.iter().filter(|p| p.active);
            let xy: Vec<_> = active.clone().map(|p| (p.poi.poi, p.poi.xy)).collect();
            let snaps: Vec<_> = active.map(|p| (p.poi.poi, p.poi.snap)).collect();
            if let Some(f) = &mut state.acc.straight {
                f.remove(&gone, &xy);
            }
            if let Some(f) = &mut state.acc.network {
                f.remove(&whole.network, &gone, &snaps);
            }
        }
    }

    // 2. Add POIs, in file order, numbered after every POI so far.
    let mut added = Vec::new();
    if let Some(path) = &change.add {
        let mut stream = crate::poi::open_pois(path)?;
        while let Some(chunk) = stream.next_chunk(1024)? {
            for (_, record) in chunk {
                let seq = state.next_seq;
                state.next_seq += 1;
                let poi = match record {
                    Ok(p) => p,
                    Err(r) => {
                        reject(r);
                        report.rejected += 1;
                        continue;
                    }
                };
                let mut secs = [0.0; 3];
                match process_poi(&ctx, &whole, &poi, seq, Outlines::Yes, &mut ws, &mut secs) {
                    Ok(work) => {
                        state.acc.coverage.add(&work.isochrone, 1)?;
                        touched.extend(work.reach.iter().map(|r| r.0));
                        state.acc.count_reach(&work.reach, 1)?;
                        let p = work.processed;
                        if let Some(f) = &mut state.acc.straight {
                            f.add(&[(p.poi, p.xy)]);
                        }
                        if let Some(f) = &mut state.acc.network {
                            f.add(&whole.network, &[(p.poi, p.snap)]);
                        }
                        for f in &work.features {
                            let mut text = String::new();
                            output::feature_json(&mut text, f);
                            added.push(text);
                        }
                        state.pois.push(LivePoi {
                            poi: p,
                            active: true,
                        });
                        report.pois_added += 1;
                    }
                    Err(r) => {
                        reject(r);
                        report.rejected += 1;
                    }
                }
            }
        }
    }

    // 3. What changed: block groups and rows.
    changed(
        straight_before,
        state.acc.straight.as_ref().map(|f| f.result()),
        &mut touched,
    );
    changed(
        network_before,
        state.acc.network.as_ref().map(|f| f.result()),
        &mut touched,
    );
    let after = rows_by_key(&state, &ctx, &acs, &cfg);
    // Block groups with no row before or after (reached by no POI) are not in the outputs.
    let with_rows: HashSet<&str> = before
        .keys()
        .chain(after.keys())
        .map(|k| k.1.as_str())
        .collect();
    report.bgs_recomputed = touched
        .iter()
        .filter(|bg| with_rows.contains(ctx.census.block_groups[**bg as usize].geoid.as_str()))
        .count() as u64;
    let header = census_header(&acs.variables);
    let mut changes = String::new();
    let mut record = |op: &str, key: &(u32, String), row: Option<&Vec<String>>| {
        let row = row.map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.iter().cloned().map(serde_json::Value::String))
                .collect::<serde_json::Map<_, _>>()
        });
        let line = serde_json::json!({
            "epoch": epoch, "op": op, "key": key.1, "travel_time_minutes": key.0, "row": row,
        });
        changes.push_str(&line.to_string());
        changes.push('\n');
        report.rows_changed += 1;
    };
    for (key, row) in &after {
        match before.get(key) {
            None => record("insert", key, Some(row)),
            Some(old) if old != row => record("update", key, Some(row)),
            _ => {}
        }
    }
    for key in before.keys() {
        if !after.contains_key(key) {
            record("delete", key, None);
        }
    }

    // 4. Commit, then write the outputs.
    state.epoch = epoch;
    let len = |name: &str| std::fs::metadata(out.join(name)).map_or(0, |m| m.len());
    let geojson = out.join("isochrones.geojson");
    let rewritten = !removed_ordinals.is_empty();
    if rewritten {
        rewrite_geojson(&geojson, &next_path(&geojson), &removed_ordinals, &added)?;
    }
    let pending = Pending {
        epoch,
        changes_from: len("changes.jsonl"),
        changes,
        rewritten,
        geojson_from: len("isochrones.geojson").saturating_sub(GEOJSON_FOOTER.len() as u64),
        features_before,
        added,
        rejects_from: len("rejects.csv"),
        rejects: String::from_utf8_lossy(&rejects.into_inner().unwrap_or_default()).into_owned(),
    };
    cp.put_all(&[
        (KEY_STATE, Some(encode(&state))),
        (KEY_EPOCH, Some(encode(&epoch))),
        (KEY_PENDING, Some(encode(&pending))),
    ])?;
    apply_outputs(out, &pending)?;
    write_census(out, &acs, &after)?;
    cp.put_all(&[(KEY_PENDING, None)])?;
    report.latency_s = t.elapsed().as_secs_f64();
    report.load_s = load_s;
    append(
        &out.join("epochs.jsonl"),
        None,
        format!("{}\n", serde_json::to_string(&report).unwrap_or_default()).as_bytes(),
    )?;
    if !quiet {
        eprintln!(
            "epoch {epoch}: {} added, {} removed, {} rejected; {} block groups recomputed, {} rows changed; {:.1} ms (inputs loaded in {:.1} s)",
            report.pois_added,
            report.pois_removed,
            report.rejected,
            report.bgs_recomputed,
            report.rows_changed,
            report.latency_s * 1e3,
            report.load_s
        );
    }
    Ok(report)
}

/// Adds to `touched` the indices where `before` and `after` differ.
fn changed<T: PartialEq>(
    before: Option<Vec<T>>,
    after: Option<Vec<T>>,
    touched: &mut BTreeSet<u32>,
) {
    if let (Some(a), Some(b)) = (before, after) {
        for (k, (x, y)) in a.iter().zip(&b).enumerate() {
            if x != y {
                touched.insert(k as u32);
            }
        }
    }
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
    Ok(LiveState {
        acc,
        pois,
        next_seq,
        epoch: 0,
    })
}

/// The census rows, keyed by (travel time, GEOID), as the cells `census.csv` holds.
fn rows_by_key(
    state: &LiveState,
    ctx: &RunContext,
    acs: &crate::census::AcsTable,
    cfg: &RunConfig,
) -> BTreeMap<(u32, String), Vec<String>> {
    let rows = crate::pipeline::census_rows(&state.acc, &ctx.census, &ctx.params, acs);
    let names = poi_names(state);
    rows.iter()
        .map(|r| {
            (
                (r.minutes, r.geoid.clone()),
                census_record(r, &names, acs.variables.len(), cfg.analysis.mode),
            )
        })
        .collect()
}

/// Id and name of every active POI, by sequence number.
fn poi_names(state: &LiveState) -> HashMap<u32, (String, String)> {
    state
        .pois
        .iter()
        .filter(|p| p.active)
        .map(|p| (p.poi.poi, (p.poi.id.clone(), p.poi.name.clone())))
        .collect()
}

/// Writes `census.csv` from its rows as [`rows_by_key`] gives them (their key order, travel
/// time then GEOID, is the file's order).
fn write_census(
    out: &Path,
    acs: &crate::census::AcsTable,
    rows: &BTreeMap<(u32, String), Vec<String>>,
) -> Result<()> {
    output::write_atomic(&out.join("census.csv"), |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(census_header(&acs.variables))?;
        for row in rows.values() {
            csv.write_record(row)?;
        }
        csv.flush()
    })
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

/// Where an epoch writes the new `isochrones.geojson` before its commit.
fn next_path(path: &Path) -> PathBuf {
    path.with_extension("geojson.next")
}

/// Writes `path` again into `to`, without the features at `removed` ordinals (0-based, in
/// file order) and with `added` at the end. Features are one per line (see
/// [`output::feature_json`]).
fn rewrite_geojson(path: &Path, to: &Path, removed: &[u64], added: &[String]) -> Result<()> {
    let removed: HashSet<u64> = removed.iter().copied().collect();
    let src = std::fs::File::open(path).map_err(|e| Error::input(path, e))?;
    let mut w =
        std::io::BufWriter::new(std::fs::File::create(to).map_err(|e| Error::output(to, e))?);
    let mut write = || -> std::io::Result<()> {
        w.write_all(GEOJSON_HEADER)?;
        let mut kept = 0u64;
        let mut ordinal = 0u64;
        for line in std::io::BufReader::new(&src).split(b'\n') {
            let line = line?;
            if !line.starts_with(b"{\"type\":\"Feature\"") {
                continue;
            }
            if !removed.contains(&ordinal) {
                let body = line.strip_suffix(b",").unwrap_or(&line);
                if kept > 0 {
                    w.write_all(b",")?;
                }
                w.write_all(b"\n")?;
                w.write_all(body)?;
                kept += 1;
            }
            ordinal += 1;
        }
        for f in added {
            if kept > 0 {
                w.write_all(b",")?;
            }
            w.write_all(f.as_bytes())?;
            kept += 1;
        }
        w.write_all(GEOJSON_FOOTER)?;
        w.flush()
    };
    write().map_err(|e| Error::output(to, e))
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
