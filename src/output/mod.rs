//! The sinks: `census.csv`, `isochrones.geojson` (streamed as batches complete), `rejects.csv`,
//! `run.json`, and the summary on stderr. Files are written to a temporary name and renamed,
//! so a reader never sees half a file.

use crate::config::Analysis;
use crate::error::{Error, Result};
use crate::geom::albers::from_5070;
use crate::geom::grid::{Grid, trace_cells};
use crate::stages::distance::{MILES_PER_KM, NetworkNearest, StraightNearest, ms_to_minutes};
use crate::stages::isochrone::{PoiIsochrone, minutes_to_ms};
use crate::types::{Mode, Poi, Reject};
use geo::MultiPolygon;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
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
        IsochroneFeature {
            poi_id: poi.id.clone(),
            name: poi.name.clone(),
            minutes,
            mode,
            area_km2: cells.len() as f64 * grid.cell_area_m2() / 1e6,
            outline: trace_cells(&cells, grid.cell_m),
        }
    }
}

/// Everything the sinks write.
pub struct RunOutputs<'a> {
    /// Analysis settings.
    pub analysis: &'a Analysis,
    /// The run's POIs (rows refer to them by index).
    pub pois: &'a [Poi],
    /// Census rows, sorted by travel time then GEOID.
    pub rows: &'a [CensusRow],
    /// Every POI not processed.
    pub rejects: &'a [Reject],
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

/// A progress bar on stderr, hidden when quiet or when stderr is not a terminal.
pub fn progress_bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        Some(len),
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    pb
}

/// A spinner on stderr for a step of unknown length (reading an input), hidden when quiet or
/// when stderr is not a terminal. Finish it with `finish_and_clear`.
pub fn spinner(what: &str, quiet: bool) -> ProgressBar {
    let pb = ProgressBar::with_draw_target(
        None,
        if quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        },
    );
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
        pb.set_style(style);
    }
    pb.set_message(what.to_string());
    pb.enable_steady_tick(std::time::Duration::from_millis(120));
    pb
}

/// The population variable among the joined ones, if any.
fn population_column(vars: &[String]) -> Option<usize> {
    ["B01003_001E", "B01001_001E"]
        .iter()
        .find_map(|code| vars.iter().position(|v| v == code))
}

/// Writes census.csv and rejects.csv (isochrones.geojson is streamed by [`IsochroneWriter`]);
/// returns the report (without timings).
pub fn write_all(dir: &Path, o: &RunOutputs<'_>) -> Result<RunReport> {
    write_atomic(&dir.join("census.csv"), |w| write_census_csv(w, o))?;
    write_atomic(&dir.join("rejects.csv"), |w| write_rejects(w, o.rejects))?;

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
            rejected: o.rejects.len(),
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
    })
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

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map(|x| format!("{x:.decimals$}")).unwrap_or_default()
}

/// An ACS value: whole numbers without a decimal point, others as they are.
fn acs_cell(v: Option<f64>) -> String {
    v.map(|x| format!("{x}")).unwrap_or_default()
}

fn write_census_csv(w: &mut dyn Write, o: &RunOutputs<'_>) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    let mut header: Vec<&str> = CENSUS_COLUMNS.to_vec();
    header.extend(o.acs_variables.iter().map(String::as_str));
    csv.write_record(&header)?;
    for r in o.rows {
        let g = &r.geoid;
        let nearest = r.nearest_poi().map(|k| &o.pois[k as usize]);
        let km = r.straight.map(|s| s.distance_m / 1000.0);
        let (time_min, net_km) = match r.network {
            NetworkNearest::Reached {
                time_ms, length_m, ..
            } => (Some(ms_to_minutes(time_ms)), Some(length_m / 1000.0)),
            _ => (None, None),
        };
        let mut rec = vec![
            g.clone(),
            g[0..2].to_string(),
            g[0..5].to_string(),
            g[5..11].to_string(),
            g[11..12].to_string(),
            format!("{:.6}", r.centroid_lonlat.0),
            format!("{:.6}", r.centroid_lonlat.1),
            nearest.map(|p| p.id.clone()).unwrap_or_default(),
            nearest.map(|p| p.name.clone()).unwrap_or_default(),
            opt(km, 4),
            opt(km.map(|k| k * MILES_PER_KM), 4),
            opt(time_min, 3),
            opt(net_km, 4),
            format!("{:.4}", r.coverage_share),
            r.pois_reaching.to_string(),
            r.minutes.to_string(),
            o.analysis.mode.to_string(),
        ];
        for k in 0..o.acs_variables.len() {
            rec.push(acs_cell(r.acs.as_ref().and_then(|v| v[k])));
        }
        csv.write_record(&rec)?;
    }
    csv.flush()
}

fn write_rejects(w: &mut dyn Write, rejects: &[Reject]) -> std::io::Result<()> {
    let mut csv = csv::Writer::from_writer(w);
    csv.write_record(["source", "id", "reason"])?;
    for r in rejects {
        csv.write_record([
            r.source.as_str(),
            r.id.as_deref().unwrap_or(""),
            r.reason.as_str(),
        ])?;
    }
    csv.flush()
}

/// `isochrones.geojson`, streamed feature by feature as batches complete, into a temporary
/// file that replaces the real one on [`IsochroneWriter::finish`]. Dropped unfinished (a run
/// that failed), it removes the temporary file: no partial output is ever left.
pub struct IsochroneWriter {
    path: PathBuf,
    tmp: PathBuf,
    w: Option<std::io::BufWriter<std::fs::File>>,
    count: usize,
    buf: String,
}

impl IsochroneWriter {
    /// Starts `isochrones.geojson` in `dir`.
    pub fn create(dir: &Path) -> Result<IsochroneWriter> {
        let path = dir.join("isochrones.geojson");
        let tmp = dir.join("isochrones.geojson.tmp");
        let file = std::fs::File::create(&tmp).map_err(|e| Error::output(&tmp, e))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 16, file);
        w.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")
            .map_err(|e| Error::output(&tmp, e))?;
        Ok(IsochroneWriter {
            path,
            tmp,
            w: Some(w),
            count: 0,
            buf: String::new(),
        })
    }

    /// Appends one feature.
    pub fn write(&mut self, f: &IsochroneFeature) -> Result<()> {
        self.buf.clear();
        if self.count > 0 {
            self.buf.push(',');
        }
        feature_json(&mut self.buf, f);
        self.count += 1;
        let w = self
            .w
            .as_mut()
            .ok_or_else(|| Error::output(&self.path, "already finished"))?;
        w.write_all(self.buf.as_bytes())
            .map_err(|e| Error::output(&self.tmp, e))
    }

    /// Closes the collection and moves the file into place.
    pub fn finish(mut self) -> Result<()> {
        let mut w = self
            .w
            .take()
            .ok_or_else(|| Error::output(&self.path, "already finished"))?;
        w.write_all(b"\n]}\n")
            .map_err(|e| Error::output(&self.tmp, e))?;
        w.flush().map_err(|e| Error::output(&self.tmp, e))?;
        w.get_ref()
            .sync_all()
            .map_err(|e| Error::output(&self.tmp, e))?;
        drop(w);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| Error::output(&self.path, e))
    }
}

impl Drop for IsochroneWriter {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// One GeoJSON feature, coordinates as lon/lat with 7 decimals (about 1 cm).
fn feature_json(buf: &mut String, f: &IsochroneFeature) {
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
                let _ = write!(buf, "{}[{lon:.7},{lat:.7}]", if ci > 0 { "," } else { "" });
            }
            buf.push(']');
        }
        buf.push(']');
    }
    buf.push_str("]}}");
}
