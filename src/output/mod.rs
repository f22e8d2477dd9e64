//! The sinks: `isochrones.geojson` and `rejects.csv` (streamed as batches complete, into part
//! files a checkpoint can resume), `census.csv`, `run.json`, and the summary on stderr. Files
//! are written under a temporary name and renamed, so a reader never sees half a file.

use crate::config::Analysis;
use crate::error::{Error, Result};
use crate::geom::albers::from_5070;
use crate::geom::grid::{Grid, trace_cells};
use crate::geom::mask_trace::LaneOutline;
use crate::stages::distance::{MILES_PER_KM, NetworkNearest, StraightNearest, ms_to_minutes};
use crate::stages::isochrone::{PoiIsochrone, minutes_to_ms};
use crate::types::{Mode, Poi, Reject};
use geo::MultiPolygon;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The fixed columns of `census.csv`, before one column per ACS variable.
pub const CENSUS_COLUMNS: [&str; 17] = [
    "census_block_group",
    "state_fips",
    "county_fips",
    "tract",
    "block_group",
    "centroid_lon",
    "centroid_lat",
    "nearest_poi_id",
    "nearest_poi_name",
    "travel_distance_km",
    "travel_distance_miles",
    "network_time_min",
    "network_distance_km",
    "coverage_share",
    "pois_reaching",
    "travel_time_minutes",
    "travel_mode",
];

/// One row of `census.csv`: a block group reached within one travel time.
#[derive(Clone, Debug, PartialEq)]
pub struct CensusRow {
    /// 12-digit GEOID.
    pub geoid: String,
    /// Centroid (computed in EPSG:5070) as lon/lat.
    pub centroid_lonlat: (f64, f64),
    /// Nearest POI in a straight line.
    pub straight: Option<StraightNearest>,
    /// Nearest POI along the network.
    pub network: NetworkNearest,
    /// Share of the block group's area inside the union of the isochrones.
    pub coverage_share: f64,
    /// Number of POIs whose isochrone reaches the block group.
    pub pois_reaching: u32,
    /// Travel time of this row, minutes.
    pub minutes: u32,
    /// ACS values in variable order (`None` when the block group has no ACS row).
    pub acs: Option<Vec<Option<f64>>>,
}

impl CensusRow {
    /// The POI reported as nearest: the network-nearest one, or the straight-line nearest
    /// where the block group has no network value.
    pub fn nearest_poi(&self) -> Option<u32> {
        match self.network {
            NetworkNearest::Reached { poi, .. } => Some(poi),
            _ => self.straight.map(|s| s.poi),
        }
    }
}

/// One feature of `isochrones.geojson`.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct IsochroneFeature {
    /// POI id.
    pub poi_id: String,
    /// POI name.
    pub name: String,
    /// Travel time, minutes.
    pub minutes: u32,
    /// Travel mode.
    pub mode: Mode,
    /// Area, km² (exact: cells × cell area in an equal-area projection).
    pub area_km2: f64,
    /// Outline in EPSG:5070 metres.
    pub outline: MultiPolygon<f64>,
}

impl IsochroneFeature {
    /// The isochrone of `iso` for `minutes`, outlined.
    pub fn new(poi: &Poi, iso: &PoiIsochrone, minutes: u32, mode: Mode, grid: &Grid) -> Self {
        let cells = iso.cells_within(minutes_to_ms(minutes));
        let outline = LaneOutline {
            outline: trace_cells(&cells, grid.cell_m),
            cells: cells.len() as u64,
        };
        Self::from_outline(poi, minutes, mode, grid, outline)
    }

    /// The isochrone of `poi` for `minutes` from its outline, traced already (from lane masks,
    /// see [`crate::geom::mask_trace`]).
    pub fn from_outline(
        poi: &Poi,
        minutes: u32,
        mode: Mode,
        grid: &Grid,
        outline: LaneOutline,
    ) -> Self {
        IsochroneFeature {
            poi_id: poi.id.clone(),
            name: poi.name.clone(),
            minutes,
            mode,
            area_km2: outline.cells as f64 * grid.cell_area_m2() / 1e6,
            outline: outline.outline,
        }
    }
}

/// Everything the sinks write.
pub struct RunOutputs<'a> {
    /// Analysis settings.
    pub analysis: &'a Analysis,
    /// Id and name of every POI a row names as nearest, by record index.
    pub poi_names: &'a HashMap<u32, (String, String)>,
    /// Census rows, sorted by travel time then GEOID.
    pub rows: &'a [CensusRow],
    /// Records not processed (listed in rejects.csv).
    pub rejected: usize,
    /// ACS variable codes in column order.
    pub acs_variables: &'a [String],
    /// POI records read.
    pub records_in: usize,
    /// POIs processed.
    pub processed: usize,
    /// Union area per travel time, km².
    pub union_km2: &'a [(u32, f64)],
    /// Nodes settled by all isochrone searches.
    pub settled_nodes: u64,
    /// Block groups in the input.
    pub block_groups_total: usize,
    /// Inputs read, (role, description).
    pub inputs: &'a [(String, String)],
}

/// What `run.json` holds.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Program version.
    pub version: String,
    /// Inputs read.
    pub inputs: Vec<(String, String)>,
    /// Analysis settings.
    pub parameters: Analysis,
    /// POI counts: in = processed + rejected.
    pub counts: Counts,
    /// Per travel time: block groups reached, population, union area.
    pub reach: Vec<ReachSummary>,
    /// Block groups reported without network values, with the reason.
    pub block_groups_without_network: Vec<(String, String)>,
    /// Wall time per stage, seconds.
    pub timings_s: Vec<(String, f64)>,
    /// Files written.
    pub outputs: Vec<String>,
    /// Nodes settled by all isochrone searches (routing work; counts resumed batches too).
    pub settled_nodes: u64,
    /// Batches of the run, and how many came from the checkpoint.
    pub batches: crate::dataflow::BatchCounts,
    /// How the network was served to the POI clusters.
    pub network: NetworkReport,
    /// Peak resident memory of the process, MB (Linux; `None` elsewhere).
    pub peak_rss_mb: Option<f64>,
}

/// The process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`), where the
/// system reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// POI counts.
#[derive(Clone, Debug, Serialize)]
pub struct Counts {
    /// Records read.
    pub pois_in: usize,
    /// POIs with isochrones.
    pub processed: usize,
    /// Records rejected (see rejects.csv).
    pub rejected: usize,
    /// Block groups in the input.
    pub block_groups_total: usize,
}

/// Reach for one travel time.
#[derive(Clone, Debug, Serialize)]
pub struct ReachSummary {
    /// Travel time, minutes.
    pub travel_time_minutes: u32,
    /// Block groups reached.
    pub block_groups: usize,
    /// Total population of the reached block groups (whole block groups, as the original
    /// counts), when a population variable was joined.
    pub population_reached: Option<f64>,
    /// Population weighted by each block group's share inside the isochrones.
    pub population_reached_area_weighted: Option<f64>,
    /// Area of the union of the isochrones, km².
    pub union_area_km2: f64,
}

impl RunReport {
    /// The report with stage timings.
    pub fn with_timings(mut self, timings: Vec<(String, f64)>) -> Self {
        self.timings_s = timings
            .into_iter()
            .map(|(s, t)| (s, (t * 1e4).round() / 1e4))
            .collect();
        self
    }

    /// A short human summary.
    pub fn summary(&self) -> String {
        let c = &self.counts;
        let mut s = format!(
            "socialmapper: {} POIs in → {} processed, {} rejected{}\n",
            c.pois_in,
            c.processed,
            c.rejected,
            if c.rejected > 0 {
                " (see rejects.csv)"
            } else {
                ""
            }
        );
        for r in &self.reach {
            let _ = write!(
                s,
                "  {:>3} min {}: {} of {} block groups reached, union {:.2} km²",
                r.travel_time_minutes,
                self.parameters.mode,
                r.block_groups,
                c.block_groups_total,
                r.union_area_km2
            );
            if let Some(p) = r.population_reached {
                let _ = write!(
                    s,
                    ", {} people ({} by area share)",
                    p.round(),
                    r.population_reached_area_weighted.unwrap_or(0.0).round()
                );
            }
            s.push('\n');
        }
        if c.processed > 0 && self.reach.iter().all(|r| r.block_groups == 0) {
            s.push_str("  warning: no block group meets any isochrone: do the block groups cover the network's area?\n");
        }
        if !self.block_groups_without_network.is_empty() {
            let _ = writeln!(
                s,
                "  {} block groups without network values (see run.json)",
                self.block_groups_without_network.len()
            );
        }
        let total = self
            .timings_s
            .iter()
            .find(|(k, _)| k == "total")
            .map(|t| t.1)
            .unwrap_or(0.0);
        if self.batches.batches_resumed > 0 {
            let b = &self.batches;
            let _ = writeln!(
                s,
                "  resumed {} of {} batches from the checkpoint, computed {}",
                b.batches_resumed, b.batches_total, b.batches_computed
            );
        }
        let _ = writeln!(s, "  wrote {} in {:.2} s", self.outputs.join(", "), total);
        s
    }
}

/// A progress display on stderr with `template`, hidden when quiet or when stderr is not a
/// terminal.
fn progress(len: Option<u64>, template: &str, what: &str, quiet: bool) -> ProgressBar {
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let pb = ProgressBar::with_draw_target(len, target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb
}

/// A counter on stderr for a stream of unknown length (POIs read from a file), hidden when
/// quiet or when stderr is not a terminal.
pub fn counter(what: &str, quiet: bool) -> ProgressBar {
    progress(None, "{msg:>12} {pos} {per_sec} {elapsed}", what, quiet)
}

/// A bar on stderr for a download of `bytes` bytes, hidden when quiet or when stderr is not a
/// terminal.
pub fn download_bar(what: &str, bytes: u64, quiet: bool) -> ProgressBar {
    progress(
        Some(bytes),
        "{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        what,
        quiet,
    )
}

/// A bar on stderr for `n` steps (tiles, counties), hidden when quiet or when stderr is not a
/// terminal.
pub fn steps_bar(what: &str, n: u64, quiet: bool) -> ProgressBar {
    progress(
        Some(n),
        "{msg} {wide_bar} {pos}/{len} {elapsed}",
        what,
        quiet,
    )
}

/// A spinner on stderr for a step of unknown length (reading an input), hidden when quiet or
/// when stderr is not a terminal. Finish it with `finish_and_clear`.
pub fn spinner(what: &str, quiet: bool) -> ProgressBar {
    let pb = progress(None, "{spinner} {msg} {elapsed}", what, quiet);
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// The population variable among the joined ones, if any.
fn population_column(vars: &[String]) -> Option<usize> {
    ["B01003_001E", "B01001_001E"]
        .iter()
        .find_map(|code| vars.iter().position(|v| v == code))
}

/// Writes census.csv (isochrones.geojson and rejects.csv are streamed by
/// [`StreamedOutputs`]); returns the report (without timings).
pub fn write_all(dir: &Path, o: &RunOutputs<'_>) -> Result<RunReport> {
    write_atomic(&dir.join("census.csv"), |w| write_census_csv(w, o))?;

    let pop = population_column(o.acs_variables);
    let reach = o
        .analysis
        .travel_times_min
        .iter()
        .map(|&m| {
            let rows: Vec<_> = o.rows.iter().filter(|r| r.minutes == m).collect();
            let pop_of = |r: &CensusRow| pop.and_then(|k| r.acs.as_ref().and_then(|v| v[k]));
            ReachSummary {
                travel_time_minutes: m,
                block_groups: rows.len(),
                population_reached: pop.map(|_| rows.iter().filter_map(|r| pop_of(r)).sum()),
                population_reached_area_weighted: pop.map(|_| {
                    rows.iter()
                        .filter_map(|r| pop_of(r).map(|p| p * r.coverage_share))
                        .sum()
                }),
                union_area_km2: o
                    .union_km2
                    .iter()
                    .find(|u| u.0 == m)
                    .map(|u| u.1)
                    .unwrap_or(0.0),
            }
        })
        .collect();
    let mut without: Vec<(String, String)> = o
        .rows
        .iter()
        .filter_map(|r| {
            r.network
                .reason()
                .map(|why| (r.geoid.clone(), why.to_string()))
        })
        .collect();
    without.sort();
    without.dedup();
    Ok(RunReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        inputs: o.inputs.to_vec(),
        parameters: o.analysis.clone(),
        counts: Counts {
            pois_in: o.records_in,
            processed: o.processed,
            rejected: o.rejected,
            block_groups_total: o.block_groups_total,
        },
        reach,
        block_groups_without_network: without,
        timings_s: Vec::new(),
        outputs: [
            "census.csv",
            "isochrones.geojson",
            "rejects.csv",
            "run.json",
        ]
        .map(String::from)
        .to_vec(),
        settled_nodes: o.settled_nodes,
        batches: Default::default(),
        network: Default::default(),
        peak_rss_mb: None,
    })
}

/// How the network reached the POI clusters, for `run.json`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct NetworkReport {
    /// The fastest travel on the network, km/h (projected length over time).
    pub top_speed_kmh: f64,
    /// How far from its POI an isochrone can extend: snapping distance, longest travel time
    /// at the top speed, buffer; km.
    pub reach_radius_km: f64,
    /// Side of the clustering tiles, km.
    pub tile_km: f64,
    /// Clusters processed.
    pub clusters: u64,
    /// Network slices fetched (a local extract is one slice, fetched once per worker).
    pub slice_fetches: u64,
    /// Clusters served from a worker's slice cache.
    pub slice_cache_hits: u64,
    /// POIs whose reach radius extends past the network extract's extent: their isochrones
    /// end where the data ends (use a larger extract to avoid it).
    pub pois_reaching_past_extent: u64,
}

/// Writes `run.json`.
pub fn write_run_json(dir: &Path, report: &RunReport) -> Result<()> {
    write_atomic(&dir.join("run.json"), |w| {
        serde_json::to_writer_pretty(&mut *w, report).map_err(std::io::Error::other)?;
        w.write_all(b"\n")
    })
}

/// Writes `path` through a temporary file in the same directory and renames it into place.
pub fn write_atomic(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension()
            .map(|e| e.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let file = std::fs::File::create(&tmp).map_err(|e| Error::output(&tmp, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
    f(&mut w).map_err(|e| Error::output(path, e))?;
    w.flush().map_err(|e| Error::output(path, e))?;
    w.get_ref().sync_all().map_err(|e| Error::output(path, e))?;
    drop(w);
    std::fs::rename(&tmp, path).map_err(|e| Error::output(path, e))
}

fn write_census_csv(w: &mut dyn Write, o: &RunOutputs<'_>) -> std::io::Result<()> {
    write_census(w, o.rows, o.poi_names, o.acs_variables, o.analysis.mode)
}

/// Writes `census.csv`: the header, then `rows` in their order.
pub fn write_census(
    w: &mut dyn Write,
    rows: &[CensusRow],
    poi_names: &HashMap<u32, (String, String)>,
    acs_variables: &[String],
    mode: Mode,
) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(census_header(acs_variables))?;
    let mut record = csv::ByteRecord::new();
    for r in rows {
        census_record(r, poi_names, acs_variables.len(), mode, &mut record);
        csv.write_byte_record(&record)?;
    }
    csv.flush()
}

/// The columns of `census.csv`.
pub fn census_header(acs_variables: &[String]) -> Vec<String> {
    CENSUS_COLUMNS
        .iter()
        .map(|c| c.to_string())
        .chain(acs_variables.iter().cloned())
        .collect()
}

/// Fills `record` (cleared first) with the cells of one `census.csv` row, as written. One
/// record serves many rows: a row costs no allocation per cell.
pub fn census_record(
    r: &CensusRow,
    poi_names: &HashMap<u32, (String, String)>,
    acs_count: usize,
    mode: Mode,
    record: &mut csv::ByteRecord,
) {
    let g = &r.geoid;
    let nearest = r.nearest_poi().and_then(|k| poi_names.get(&k));
    let km = r.straight.map(|s| s.distance_m / 1000.0);
    let (time_min, net_km) = match r.network {
        NetworkNearest::Reached {
            time_ms, length_m, ..
        } => (Some(ms_to_minutes(time_ms)), Some(length_m / 1000.0)),
        _ => (None, None),
    };
    record.clear();
    let cell = &mut String::with_capacity(32);
    for part in [&g[..], &g[0..2], &g[0..5], &g[5..11], &g[11..12]] {
        record.push_field(part.as_bytes());
    }
    push_cell(record, cell, format_args!("{:.6}", r.centroid_lonlat.0));
    push_cell(record, cell, format_args!("{:.6}", r.centroid_lonlat.1));
    record.push_field(nearest.map_or(&b""[..], |p| p.0.as_bytes()));
    record.push_field(nearest.map_or(&b""[..], |p| p.1.as_bytes()));
    push_decimals(record, cell, km, 4);
    push_decimals(record, cell, km.map(|k| k * MILES_PER_KM), 4);
    push_decimals(record, cell, time_min, 3);
    push_decimals(record, cell, net_km, 4);
    push_cell(record, cell, format_args!("{:.4}", r.coverage_share));
    push_cell(record, cell, format_args!("{}", r.pois_reaching));
    push_cell(record, cell, format_args!("{}", r.minutes));
    push_cell(record, cell, format_args!("{mode}"));
    for k in 0..acs_count {
        // ACS values: whole numbers without a decimal point, others as they are.
        match r.acs.as_ref().and_then(|v| v[k]) {
            Some(x) => push_cell(record, cell, format_args!("{x}")),
            None => record.push_field(b""),
        }
    }
}

/// Appends a formatted cell to `record`, formatting through the scratch string `cell`.
fn push_cell(record: &mut csv::ByteRecord, cell: &mut String, value: std::fmt::Arguments<'_>) {
    cell.clear();
    let _ = cell.write_fmt(value);
    record.push_field(cell.as_bytes());
}

/// Appends `v` with `decimals` decimals to `record`, or an empty cell when it is missing.
fn push_decimals(record: &mut csv::ByteRecord, cell: &mut String, v: Option<f64>, decimals: usize) {
    match v {
        Some(x) => push_cell(record, cell, format_args!("{x:.decimals$}")),
        None => record.push_field(b""),
    }
}

/// An output written batch by batch: appended to a part file, whose length after each batch the
/// checkpoint records with the batch, so that a resumed run truncates it back to the last
/// committed batch and carries on. The finished file is moved or copied into place.
pub struct PartFile {
    path: PathBuf,
    w: std::io::BufWriter<std::fs::File>,
    len: u64,
    /// Removed when dropped unfinished: a part file outside a checkpoint is never left behind.
    temporary: bool,
}

impl PartFile {
    /// Opens the part file `path`. `resume_at`: the length recorded by the checkpoint (the
    /// file is truncated to it; it must be at least that long), or `None` to start the file
    /// afresh with `header`. A `temporary` part file is removed if the run fails.
    pub fn open(
        path: &Path,
        resume_at: Option<u64>,
        header: &[u8],
        temporary: bool,
    ) -> Result<PartFile> {
        let file = match resume_at {
            None => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
                }
                std::fs::File::create(path).map_err(|e| Error::output(path, e))?
            }
            Some(len) => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(path)
                    .map_err(|e| {
                        Error::input(
                            path,
                            format!("the checkpoint's partial output cannot be opened: {e} (use --fresh to start over)"),
                        )
                    })?;
                let have = file.metadata().map_err(|e| Error::input(path, e))?.len();
                if have < len {
                    return Err(Error::input(
                        path,
                        format!(
                            "the checkpoint's partial output has {have} bytes, fewer than the {len} it recorded (use --fresh to start over)"
                        ),
                    ));
                }
                file.set_len(len).map_err(|e| Error::output(path, e))?;
                file
            }
        };
        let mut part = PartFile {
            path: path.to_path_buf(),
            w: std::io::BufWriter::with_capacity(1 << 16, file),
            len: resume_at.unwrap_or(0),
            temporary,
        };
        use std::io::Seek;
        part.w
            .seek(std::io::SeekFrom::Start(part.len))
            .map_err(|e| Error::output(path, e))?;
        if resume_at.is_none() {
            part.append(header)?;
        }
        Ok(part)
    }

    /// Appends bytes.
    pub fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.w
            .write_all(bytes)
            .map_err(|e| Error::output(&self.path, e))?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Empties the part file (of a window whose contents were copied out).
    fn truncate(&mut self) -> Result<()> {
        use std::io::Seek;
        self.w.flush().map_err(|e| Error::output(&self.path, e))?;
        self.w
            .get_ref()
            .set_len(0)
            .map_err(|e| Error::output(&self.path, e))?;
        self.w
            .seek(std::io::SeekFrom::Start(0))
            .map_err(|e| Error::output(&self.path, e))?;
        self.len = 0;
        Ok(())
    }

    /// Hands everything appended to the operating system and returns the length so far: what
    /// the checkpoint records.
    pub fn flush(&mut self) -> Result<u64> {
        self.w.flush().map_err(|e| Error::output(&self.path, e))?;
        Ok(self.len)
    }

    /// Writes the part followed by `footer` to `dest` atomically. A temporary part is moved
    /// (and so consumed); a checkpoint's part is copied and stays, so that the run can be
    /// finished again from its checkpoint.
    pub fn finish_into(mut self, dest: &Path, footer: &[u8]) -> Result<()> {
        self.flush()?;
        let tmp = dest.with_extension("tmp");
        if self.temporary {
            self.append(footer)?;
            self.flush()?;
            self.w
                .get_ref()
                .sync_all()
                .map_err(|e| Error::output(&self.path, e))?;
            std::fs::rename(&self.path, dest).map_err(|e| Error::output(dest, e))?;
            self.temporary = false;
            return Ok(());
        }
        std::fs::copy(&self.path, &tmp).map_err(|e| Error::output(&tmp, e))?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&tmp)
            .map_err(|e| Error::output(&tmp, e))?;
        f.write_all(footer).map_err(|e| Error::output(&tmp, e))?;
        f.sync_all().map_err(|e| Error::output(&tmp, e))?;
        std::fs::rename(&tmp, dest).map_err(|e| Error::output(dest, e))
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Where a run's streamed outputs stand: bytes written to each part file and features written,
/// as committed with every batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct StreamProgress {
    /// Length of the `isochrones.geojson` part.
    pub geojson_bytes: u64,
    /// Features in it.
    pub features: u64,
    /// Length of the `rejects.csv` part.
    pub rejects_bytes: u64,
    /// Length of the open order window's outlines in the window file (0: no window open).
    pub window_bytes: u64,
}

/// What one batch put into the open order window (see [`StreamedOutputs`]): the checkpoint
/// keeps it with the batch, so that a resumed run can find the window's outlines again.
#[derive(Clone, Debug, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct WindowPart {
    /// Per POI (record index), in the order written: the bytes of its outlines in the window
    /// file, and how many features they are.
    pub outlines: Vec<(u32, u32, u32)>,
    /// Records rejected, with their record index.
    pub rejects: Vec<(u32, Reject)>,
}

/// Where one POI's outlines lie in the window file.
#[derive(Clone, Copy, Debug)]
struct WindowEntry {
    poi: u32,
    offset: u64,
    bytes: u32,
    features: u32,
}

/// The streamed outputs, `isochrones.geojson` and `rejects.csv`, written batch by batch into
/// part files (in `parts_dir`) and put into place by [`StreamedOutputs::finish`].
///
/// Batches are computed in map order, a window of them at a time
/// ([`crate::stages::order`]), but the files are in record order. So the batches of a window
/// append their outlines to a window file (`isochrones.window.part`) and their rejects to a
/// list; when the window's last batch arrives, its outlines are copied into the part in record
/// order, and its rejects with them. A window of one batch is written directly.
pub struct StreamedOutputs {
    geojson: PartFile,
    rejects: PartFile,
    features: u64,
    buf: String,
    window: PartFile,
    window_outlines: Vec<WindowEntry>,
    window_rejects: Vec<(u32, Reject)>,
    /// The window file still holds a closed window: emptied before the next window's first
    /// write, not at the close, so that a run killed before the closing batch's commit finds
    /// the window the checkpoint recorded.
    window_closed: bool,
}

/// The open order window's outlines, beside the part files.
const WINDOW_PART: &str = "isochrones.window.part";

/// What `isochrones.geojson` starts with.
pub const GEOJSON_HEADER: &[u8] = b"{\"type\":\"FeatureCollection\",\"features\":[";
/// What `isochrones.geojson` ends with.
pub const GEOJSON_FOOTER: &[u8] = b"\n]}\n";

impl StreamedOutputs {
    /// Opens the part files in `parts_dir`, resuming at `resume` when a checkpoint recorded
    /// one, with what the open window's batches wrote (`window`, in batch order). Parts are
    /// `temporary` (removed on failure, moved on success) outside a checkpoint.
    pub fn open(
        parts_dir: &Path,
        resume: Option<StreamProgress>,
        window: Vec<WindowPart>,
        temporary: bool,
    ) -> Result<Self> {
        let geojson = PartFile::open(
            &parts_dir.join("isochrones.geojson.part"),
            resume.map(|r| r.geojson_bytes),
            GEOJSON_HEADER,
            temporary,
        )?;
        let rejects = PartFile::open(
            &parts_dir.join("rejects.csv.part"),
            resume.map(|r| r.rejects_bytes),
            b"source,id,reason\n",
            temporary,
        )?;
        let window_file = PartFile::open(
            &parts_dir.join(WINDOW_PART),
            resume.map(|r| r.window_bytes),
            b"",
            // Never part of the results: removed at the end of a run without a checkpoint.
            temporary,
        )?;
        let mut outputs = StreamedOutputs {
            geojson,
            rejects,
            features: resume.map_or(0, |r| r.features),
            buf: String::new(),
            window: window_file,
            window_outlines: Vec::new(),
            window_rejects: Vec::new(),
            window_closed: false,
        };
        let mut offset = 0u64;
        for part in window {
            for (poi, bytes, features) in part.outlines {
                outputs.window_outlines.push(WindowEntry {
                    poi,
                    offset,
                    bytes,
                    features,
                });
                offset += u64::from(bytes);
            }
            outputs.window_rejects.extend(part.rejects);
        }
        if offset != outputs.window.len {
            return Err(Error::input(
                &outputs.window.path,
                format!(
                    "the checkpoint's batches list {offset} bytes of outlines in the open window, but it recorded {} (use --fresh to start over)",
                    outputs.window.len
                ),
            ));
        }
        Ok(outputs)
    }

    /// Takes one batch's features and rejects (each in record order, the features of a POI in
    /// travel-time order); `closes_window` when the batch is the last of its order window.
    /// Returns what the batch left in the open window, for the checkpoint.
    pub fn write(
        &mut self,
        features: &[(u32, IsochroneFeature)],
        rejects: &[(u32, Reject)],
        closes_window: bool,
    ) -> Result<WindowPart> {
        let window_empty = self.window_outlines.is_empty() && self.window_rejects.is_empty();
        if closes_window && window_empty {
            // The window is this batch, already in record order.
            for (_, f) in features {
                self.buf.clear();
                if self.features > 0 {
                    self.buf.push(',');
                }
                feature_json(&mut self.buf, f);
                self.features += 1;
                self.geojson.append(self.buf.as_bytes())?;
            }
            let rejects: Vec<&Reject> = rejects.iter().map(|r| &r.1).collect();
            return self
                .append_rejects(&rejects)
                .map(|()| WindowPart::default());
        }
        if self.window_closed {
            self.window.truncate()?;
            self.window_closed = false;
        }
        let mut part = WindowPart {
            outlines: Vec::new(),
            rejects: rejects.to_vec(),
        };
        for poi in features.chunk_by(|a, b| a.0 == b.0) {
            self.buf.clear();
            for (n, (_, f)) in poi.iter().enumerate() {
                if n > 0 {
                    self.buf.push(',');
                }
                feature_json(&mut self.buf, f);
            }
            let entry = WindowEntry {
                poi: poi[0].0,
                offset: self.window.len,
                bytes: u32::try_from(self.buf.len()).map_err(|_| {
                    Error::output(&self.window.path, "one POI's outlines exceed 4 GB")
                })?,
                features: poi.len() as u32,
            };
            self.window.append(self.buf.as_bytes())?;
            self.window_outlines.push(entry);
            part.outlines.push((entry.poi, entry.bytes, entry.features));
        }
        self.window_rejects.extend_from_slice(rejects);
        if closes_window {
            self.close_window()?;
            return Ok(WindowPart::default());
        }
        Ok(part)
    }

    /// Copies the open window's outlines and rejects into the parts, in record order.
    fn close_window(&mut self) -> Result<()> {
        if self.window_outlines.is_empty() && self.window_rejects.is_empty() {
            return Ok(());
        }
        self.window.flush()?;
        let file = std::fs::File::open(&self.window.path)
            .map_err(|e| Error::output(&self.window.path, e))?;
        let mut outlines = std::mem::take(&mut self.window_outlines);
        outlines.sort_unstable_by_key(|e| e.poi);
        let mut bytes = Vec::new();
        for e in outlines {
            bytes.clear();
            if self.features > 0 {
                bytes.push(b',');
            }
            let from = bytes.len();
            bytes.resize(from + e.bytes as usize, 0);
            std::os::unix::fs::FileExt::read_exact_at(&file, &mut bytes[from..], e.offset)
                .map_err(|err| Error::input(&self.window.path, err))?;
            self.features += u64::from(e.features);
            self.geojson.append(&bytes)?;
        }
        let mut rejects = std::mem::take(&mut self.window_rejects);
        rejects.sort_by_key(|r| r.0);
        let rejects: Vec<&Reject> = rejects.iter().map(|r| &r.1).collect();
        self.append_rejects(&rejects)?;
        self.window_closed = true;
        Ok(())
    }

    /// Appends `rejects` to the rejects part, as CSV lines.
    fn append_rejects(&mut self, rejects: &[&Reject]) -> Result<()> {
        if rejects.is_empty() {
            return Ok(());
        }
        let mut csv = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        for r in rejects {
            csv.write_record([
                r.source.as_str(),
                r.id.as_deref().unwrap_or(""),
                r.reason.as_str(),
            ])
            .map_err(|e| Error::output(&self.rejects.path, e))?;
        }
        let bytes = csv
            .into_inner()
            .map_err(|e| Error::output(&self.rejects.path, e.to_string()))?;
        self.rejects.append(&bytes)
    }

    /// Flushes the parts; what a checkpoint records after a batch.
    pub fn progress(&mut self) -> Result<StreamProgress> {
        let window_bytes = self.window.flush()?;
        Ok(StreamProgress {
            geojson_bytes: self.geojson.flush()?,
            features: self.features,
            rejects_bytes: self.rejects.flush()?,
            window_bytes: if self.window_closed { 0 } else { window_bytes },
        })
    }

    /// Closes the last window and puts `isochrones.geojson` and `rejects.csv` into `out`.
    /// Returns where the parts then stand (no window open), for a checkpoint to record.
    pub fn finish(mut self, out: &Path) -> Result<StreamProgress> {
        self.close_window()?;
        let mut last = self.progress()?;
        last.window_bytes = 0;
        let StreamedOutputs {
            geojson, rejects, ..
        } = self;
        geojson.finish_into(&out.join("isochrones.geojson"), GEOJSON_FOOTER)?;
        rejects.finish_into(&out.join("rejects.csv"), b"")?;
        Ok(last)
    }
}

/// Empties the window file of the streamed outputs in `parts_dir` (a finished checkpointed
/// run's last window, copied out: up to gigabytes nobody reads again).
pub fn empty_window_file(parts_dir: &Path) -> Result<()> {
    let path = parts_dir.join(WINDOW_PART);
    match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(f) => f.set_len(0).map_err(|e| Error::output(&path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::output(&path, e)),
    }
}

/// Appends `v` with 7 decimals, exactly as `format!("{v:.7}")` writes it, in a fraction of its
/// time (outlines are millions of coordinates). `v·10⁷` is rounded as an integer when the
/// product lies clearly away from a rounding tie: its floating-point error (at most 1.2·10⁻⁶
/// for |v| < 1000) cannot then move it across one. Anything else takes the formatter.
fn push_7_decimals(buf: &mut String, v: f64) {
    let scaled = v * 1e7;
    let rounded = scaled.round();
    let clear_of_tie = ((scaled - rounded).abs() - 0.5).abs() > 1e-5;
    // From ±1 (no leading zeros to mind, no negative zero) to ±1000.
    if clear_of_tie && (1e7..1e10).contains(&rounded.abs()) {
        // Digits written by hand, right to left: the formatter's machinery costs several
        // times more, and a run writes about 1,600 numbers per POI.
        let mut n = rounded.abs() as u64;
        let mut digits = [0u8; 12]; // "-999.9999999"
        let mut at = digits.len();
        for k in 0.. {
            if k == 7 {
                at -= 1;
                digits[at] = b'.';
            }
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if k >= 7 && n == 0 {
                break;
            }
        }
        if v < 0.0 {
            at -= 1;
            digits[at] = b'-';
        }
        buf.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
    } else {
        let _ = write!(buf, "{v:.7}");
    }
}

/// One GeoJSON feature, coordinates as lon/lat with 7 decimals (about 1 cm).
pub fn feature_json(buf: &mut String, f: &IsochroneFeature) {
    let props = serde_json::json!({
        "poi_id": f.poi_id, "name": f.name, "minutes": f.minutes, "mode": f.mode.as_str(),
        "area_km2": (f.area_km2 * 1e6).round() / 1e6,
    });
    let _ = write!(
        buf,
        "\n{{\"type\":\"Feature\",\"properties\":{props},\"geometry\":{{\"type\":\"MultiPolygon\",\"coordinates\":["
    );
    for (pi, poly) in f.outline.0.iter().enumerate() {
        buf.push_str(if pi > 0 { ",[" } else { "[" });
        for (ri, ring) in std::iter::once(poly.exterior())
            .chain(poly.interiors())
            .enumerate()
        {
            buf.push_str(if ri > 0 { ",[" } else { "[" });
            for (ci, c) in ring.0.iter().enumerate() {
                let (lon, lat) = from_5070(*c);
                buf.push_str(if ci > 0 { ",[" } else { "[" });
                push_7_decimals(buf, lon);
                buf.push(',');
                push_7_decimals(buf, lat);
                buf.push(']');
            }
            buf.push(']');
        }
        buf.push(']');
    }
    buf.push_str("]}}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seven_decimals_are_written_as_the_formatter_writes_them() {
        let mut rng = crate::testdata::XorShift(0x9E37_79B9_7F4A_7C15);
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5e-7,
            1.00000005,
            -77.00000005,
            123.4567895,
            -0.99999995,
        ];
        for _ in 0..200_000 {
            let r = rng.next_u64();
            values.push((r % 360_000_000_000) as f64 / 1e9 - 180.0);
            // On and next to the halfway points between 7-decimal numbers.
            let half = ((r >> 3) % 3_600_000_000) as f64 / 1e7 - 180.0 + 0.5e-7;
            values.extend([
                half,
                f64::from_bits(half.to_bits() + 1),
                f64::from_bits(half.to_bits() - 1),
            ]);
        }
        let mut buf = String::new();
        for v in values {
            buf.clear();
            push_7_decimals(&mut buf, v);
            assert_eq!(buf, format!("{v:.7}"), "{v:e}");
        }
    }
}
