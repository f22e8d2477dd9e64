//! A run's settings, from a flow file (`dataflows/*.toml`) and command-line flags (flags win),
//! validated once into a [`RunConfig`] that nothing downstream needs to second-guess.

use crate::error::{Error, Result};
use crate::types::{Direction, Mode};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Every setting of `socialmapper run`, as written in a flow file or given as flags. All
/// optional here; [`RunConfig::resolve`] applies defaults and checks them. Paths in a flow file
/// are relative to the flow file's directory.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Run name (output and checkpoint naming); defaults to the flow file's stem or "run".
    pub name: Option<String>,
    /// POI file: CSV, GeoJSON or JSON.
    pub pois: Option<PathBuf>,
    /// POIs by OSM tag out of the network `.osm.pbf` instead of a file (`amenity=library`).
    pub poi_tag: Option<String>,
    /// Road network `.osm.pbf`.
    pub network: Option<PathBuf>,
    /// Block-group boundaries: shapefile zip or GeoJSON.
    pub block_groups: Option<PathBuf>,
    /// ACS values: Census-API JSON or CSV. Without it, no ACS columns are written.
    pub acs: Option<PathBuf>,
    /// Travel times in minutes: `15`, `[5, 10, 15]` or `"5,10,15"`.
    pub travel_time: Option<TravelTimes>,
    /// `walk`, `bike` or `drive`.
    pub mode: Option<String>,
    /// `from-poi` (default, the original's isochrones) or `to-poi`.
    pub direction: Option<String>,
    /// ACS variables by code or by the original's names.
    pub variables: Option<Variables>,
    /// Output directory.
    pub out: Option<PathBuf>,
    /// Largest distance from a POI to its road, metres (default 500).
    pub max_snap_m: Option<f64>,
    /// Analysis grid cell, metres (default by mode: walk 25, bike 50, drive 100).
    pub cell_m: Option<f64>,
    /// Distance from the reached network a cell centre may lie, metres (default: one cell).
    pub buffer_m: Option<f64>,
    /// Unreached areas enclosed by an isochrone up to this size are filled, km² (default
    /// 0.5: city blocks; large parks and water stay out). 0 keeps every hole.
    pub max_hole_km2: Option<f64>,
    /// POIs per batch.
    pub batch_size: Option<usize>,
    /// Batches read ahead and computed in map order (see [`Analysis::order_window`]).
    pub order_window: Option<usize>,
    /// Checkpoint directory (default `checkpoints/<run name>/`).
    pub checkpoint: Option<PathBuf>,
    /// POIs online with `poi_tag`: the place to search (`Fuquay-Varina, NC`), as the original.
    pub place: Option<String>,
    /// POIs online with `poi_tag`: the box to search, `S,W,N,E` degrees.
    pub bbox: Option<String>,
    /// POIs from addresses (CSV), geocoded by the Census geocoder.
    pub addresses: Option<PathBuf>,
    /// ACS 5-year vintage fetched from the Census API (default 2023); giving it fetches ACS
    /// values online even when block groups are local files.
    pub acs_year: Option<u32>,
    /// Where block groups come from online: `tiger` (default), `cb` or `tigerweb`.
    pub block_groups_source: Option<String>,
    /// Overpass interpreter URL.
    pub overpass_url: Option<String>,
    /// Root of the TIGER/Line and cartographic-boundary files (`.../geo/tiger`).
    pub tiger_url: Option<String>,
    /// Root of TIGERweb's ArcGIS services (`.../arcgis/rest/services`).
    pub tigerweb_url: Option<String>,
    /// Root of the Census Data API (`.../data`).
    pub census_url: Option<String>,
    /// Root of the Census geocoder (`.../geocoder`).
    pub geocoder_url: Option<String>,
    /// Download cache directory (default `checkpoints/_cache/`).
    pub cache_dir: Option<PathBuf>,
    /// Make no request: everything online must already be in the cache.
    pub offline: Option<bool>,
    /// Timeout of one HTTP request, seconds (default 180).
    pub http_timeout_s: Option<f64>,
    /// Retries of a failed HTTP request (default 4).
    pub http_retries: Option<u32>,
    /// Delay before the first retry, milliseconds, doubled for each further one (default 2000).
    pub http_backoff_ms: Option<u64>,
    /// Overpass requests at a time (default 1, the public instance's polite share).
    pub overpass_concurrency: Option<usize>,
}

/// Travel times as a number, a list, or a comma-separated string.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TravelTimes {
    /// One travel time.
    One(u32),
    /// Several.
    Many(Vec<u32>),
    /// `"5,10,15"`.
    Text(String),
}

/// Variables as a list or a comma-separated string.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Variables {
    /// `["total_population", "B19013_001E"]`.
    List(Vec<String>),
    /// `"total_population,B19013_001E"`.
    Text(String),
}

impl RunSettings {
    /// Reads a flow file; relative paths in it become relative to its directory.
    pub fn from_flow_file(path: &Path) -> Result<RunSettings> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::input(path, e))?;
        let mut s: RunSettings = toml::from_str(&text).map_err(|e| Error::input(path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        for p in [
            &mut s.pois,
            &mut s.network,
            &mut s.block_groups,
            &mut s.acs,
            &mut s.out,
            &mut s.addresses,
            &mut s.cache_dir,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if s.name.is_none() {
            s.name = path.file_stem().map(|n| n.to_string_lossy().into_owned());
        }
        Ok(s)
    }

    /// `self` with every setting present in `flags` replaced by it.
    pub fn overridden_by(self, flags: RunSettings) -> RunSettings {
        RunSettings {
            name: flags.name.or(self.name),
            pois: flags.pois.or(self.pois),
            poi_tag: flags.poi_tag.or(self.poi_tag),
            network: flags.network.or(self.network),
            block_groups: flags.block_groups.or(self.block_groups),
            acs: flags.acs.or(self.acs),
            travel_time: flags.travel_time.or(self.travel_time),
            mode: flags.mode.or(self.mode),
            direction: flags.direction.or(self.direction),
            variables: flags.variables.or(self.variables),
            out: flags.out.or(self.out),
            max_snap_m: flags.max_snap_m.or(self.max_snap_m),
            cell_m: flags.cell_m.or(self.cell_m),
            buffer_m: flags.buffer_m.or(self.buffer_m),
            max_hole_km2: flags.max_hole_km2.or(self.max_hole_km2),
            batch_size: flags.batch_size.or(self.batch_size),
            order_window: flags.order_window.or(self.order_window),
            checkpoint: flags.checkpoint.or(self.checkpoint),
            place: flags.place.or(self.place),
            bbox: flags.bbox.or(self.bbox),
            addresses: flags.addresses.or(self.addresses),
            acs_year: flags.acs_year.or(self.acs_year),
            block_groups_source: flags.block_groups_source.or(self.block_groups_source),
            overpass_url: flags.overpass_url.or(self.overpass_url),
            tiger_url: flags.tiger_url.or(self.tiger_url),
            tigerweb_url: flags.tigerweb_url.or(self.tigerweb_url),
            census_url: flags.census_url.or(self.census_url),
            geocoder_url: flags.geocoder_url.or(self.geocoder_url),
            cache_dir: flags.cache_dir.or(self.cache_dir),
            offline: flags.offline.or(self.offline),
            http_timeout_s: flags.http_timeout_s.or(self.http_timeout_s),
            http_retries: flags.http_retries.or(self.http_retries),
            http_backoff_ms: flags.http_backoff_ms.or(self.http_backoff_ms),
            overpass_concurrency: flags.overpass_concurrency.or(self.overpass_concurrency),
        }
    }
}

/// Where POIs come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PoiSource {
    /// A CSV, GeoJSON or JSON file.
    File(PathBuf),
    /// OSM objects with a tag, out of the network `.osm.pbf`.
    OsmTag(String),
    /// OSM objects with a tag (`amenity=library`) in a place or box, from Overpass.
    Overpass {
        /// The tag filter.
        tag: String,
        /// Where to look.
        area: crate::online::overpass::Area,
    },
    /// Addresses (CSV) geocoded by the Census geocoder.
    Addresses(PathBuf),
}

/// Default Overpass interpreter.
pub const OVERPASS_URL: &str = "https://overpass-api.de/api/interpreter";
/// Default root of the TIGER/Line and cartographic-boundary files.
pub const TIGER_URL: &str = "https://www2.census.gov/geo/tiger";
/// Default root of TIGERweb's services.
pub const TIGERWEB_URL: &str = "https://tigerweb.geo.census.gov/arcgis/rest/services";
/// Default root of the Census Data API.
pub const CENSUS_URL: &str = "https://api.census.gov/data";
/// Default root of the Census geocoder.
pub const GEOCODER_URL: &str = "https://geocoding.geo.census.gov/geocoder";
/// Default ACS 5-year vintage (the original's).
pub const DEFAULT_ACS_YEAR: u32 = 2023;

/// How inputs that are not local files are fetched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnlineConfig {
    /// Overpass interpreter URL.
    pub overpass_url: String,
    /// Root of the TIGER files.
    pub tiger_url: String,
    /// Root of TIGERweb's services.
    pub tigerweb_url: String,
    /// Root of the Census Data API.
    pub census_url: String,
    /// Root of the Census geocoder.
    pub geocoder_url: String,
    /// Where block groups come from when no file is given.
    pub block_groups_source: crate::online::tiger::BoundarySource,
    /// ACS 5-year vintage (also the TIGER vintage of downloaded block groups).
    pub acs_year: u32,
    /// Whether ACS values come from the Census API (no `--acs` file, and block groups online
    /// or `--acs-year` given).
    pub fetch_acs: bool,
    /// Census API key; never written anywhere.
    #[serde(skip)]
    pub census_api_key: Option<String>,
    /// Download cache directory.
    pub cache_dir: PathBuf,
    /// No requests: the cache must hold everything.
    pub offline: bool,
    /// Timeout of one request, seconds.
    pub http_timeout_s: f64,
    /// Retries of a failed request.
    pub http_retries: u32,
    /// Delay before the first retry, milliseconds.
    pub http_backoff_ms: u64,
    /// Overpass requests at a time.
    pub overpass_concurrency: usize,
}

/// A validated run configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// Run name.
    pub name: String,
    /// POI source.
    pub pois: PoiSource,
    /// Road network `.osm.pbf`; `None`: from Overpass.
    pub network: Option<PathBuf>,
    /// Block-group boundaries; `None`: from TIGER (or TIGERweb).
    pub block_groups: Option<PathBuf>,
    /// ACS values, if any.
    pub acs: Option<PathBuf>,
    /// Analysis settings shared with the demo.
    pub analysis: Analysis,
    /// Output directory.
    pub out: PathBuf,
    /// Checkpoint directory; `None` runs without checkpoints.
    pub checkpoint: Option<PathBuf>,
    /// How online inputs are fetched.
    pub online: OnlineConfig,
}

impl RunConfig {
    /// Whether any input comes from a web service.
    pub fn is_online(&self) -> bool {
        self.network.is_none()
            || self.block_groups.is_none()
            || self.online.fetch_acs
            || matches!(
                self.pois,
                PoiSource::Overpass { .. } | PoiSource::Addresses(_)
            )
    }
}

/// The settings that shape the results (as opposed to where inputs come from).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Travel times in minutes, ascending, unique.
    pub travel_times_min: Vec<u32>,
    /// Travel mode.
    pub mode: Mode,
    /// Search direction.
    pub direction: Direction,
    /// ACS variable codes, in output order.
    pub variables: Vec<String>,
    /// Largest POI-to-road distance, metres.
    pub max_snap_m: f64,
    /// Grid cell, metres.
    pub cell_m: f64,
    /// Buffer around the reached network, metres.
    pub buffer_m: f64,
    /// Largest enclosed hole filled, km².
    pub max_hole_km2: f64,
    /// POIs per batch.
    pub batch_size: usize,
    /// Batches read ahead and computed in map order: the source reads this many batches of
    /// records at a time (a window) and cuts them into batches along a Z-curve, so that a
    /// batch's POIs lie close together and share network slices and lane searches, whatever
    /// the order of the file. Outputs stay in record order. 1 computes in file order.
    pub order_window: usize,
}

impl Analysis {
    /// The isochrone stage's settings for this analysis.
    pub fn isochrone_params(&self) -> crate::stages::isochrone::IsochroneParams {
        crate::stages::isochrone::IsochroneParams {
            travel_times_min: self.travel_times_min.clone(),
            cell_m: self.cell_m,
            buffer_m: self.buffer_m,
            max_snap_m: self.max_snap_m,
            max_hole_m2: self.max_hole_km2 * 1e6,
        }
    }
}

/// Longest travel time accepted, minutes (the original's limit).
pub const MAX_TRAVEL_TIME_MIN: u32 = 120;
/// Default POIs per batch.
pub const DEFAULT_BATCH_SIZE: usize = 1024;
/// Default batches per order window. The denser a window's POIs, the more of them share lane
/// searches: on a synthetic region of 2 M nodes, 100,000 POIs in random order took 2.76 ms
/// each with windows of 64 batches of 1024, 2.36 with one window of 98 (3.26 in file order).
/// 256 batches of 1024 records take about 25 MB of memory; their outlines wait in the window
/// file (about 5 GB for 15-minute drives in a city) before they are put in record order.
pub const DEFAULT_ORDER_WINDOW: usize = 256;

impl Analysis {
    /// Validates the analysis part of `s` and fills in defaults.
    pub fn resolve(s: &RunSettings) -> Result<Analysis> {
        let mode: Mode = s
            .mode
            .as_deref()
            .unwrap_or("drive")
            .parse()
            .map_err(Error::Config)?;
        let direction: Direction = s
            .direction
            .as_deref()
            .unwrap_or("from-poi")
            .parse()
            .map_err(Error::Config)?;
        let mut times = match &s.travel_time {
            None => vec![15],
            Some(TravelTimes::One(t)) => vec![*t],
            Some(TravelTimes::Many(v)) => v.clone(),
            Some(TravelTimes::Text(t)) => parse_list(t, "travel time")?,
        };
        times.sort_unstable();
        times.dedup();
        if times.is_empty() || times.iter().any(|t| *t == 0 || *t > MAX_TRAVEL_TIME_MIN) {
            return Err(Error::Config(format!(
                "travel times must be whole minutes from 1 to {MAX_TRAVEL_TIME_MIN}, got {times:?}"
            )));
        }
        let names: Vec<String> = match &s.variables {
            None => vec!["total_population".into()],
            Some(Variables::List(v)) => v.clone(),
            Some(Variables::Text(t)) => t
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect(),
        };
        let variables = crate::census::variables::resolve_all(&names).map_err(Error::Config)?;
        let cell_m = s.cell_m.unwrap_or(match mode {
            Mode::Walk => 25.0,
            Mode::Bike => 50.0,
            Mode::Drive => 100.0,
        });
        let buffer_m = s.buffer_m.unwrap_or(cell_m);
        let max_snap_m = s.max_snap_m.unwrap_or(500.0);
        let batch_size = s.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        let max_hole_km2 = s.max_hole_km2.unwrap_or(0.5);
        if !(max_hole_km2.is_finite() && max_hole_km2 >= 0.0) {
            return Err(Error::Config(format!(
                "--max-hole-km2 must be ≥ 0, got {max_hole_km2}"
            )));
        }
        if !(1.0..=10_000.0).contains(&cell_m) {
            return Err(Error::Config(format!(
                "cell size must be 1 to 10000 m, got {cell_m}"
            )));
        }
        if !(buffer_m >= cell_m / 2.0 && buffer_m <= 100.0 * cell_m) {
            // Below half a cell, a straight road can miss every cell centre along it.
            return Err(Error::Config(format!(
                "buffer must be between half a cell ({}) and 100 cells, got {buffer_m}",
                cell_m / 2.0
            )));
        }
        if !(max_snap_m.is_finite() && max_snap_m >= 0.0) {
            return Err(Error::Config(format!(
                "--max-snap-m must be ≥ 0, got {max_snap_m}"
            )));
        }
        if batch_size == 0 {
            return Err(Error::Config("--batch-size must be at least 1".into()));
        }
        let order_window = s.order_window.unwrap_or(DEFAULT_ORDER_WINDOW);
        if order_window == 0 {
            return Err(Error::Config("--order-window must be at least 1".into()));
        }
        Ok(Analysis {
            travel_times_min: times,
            mode,
            direction,
            variables,
            max_snap_m,
            cell_m,
            buffer_m,
            max_hole_km2,
            batch_size,
            order_window,
        })
    }
}

impl RunConfig {
    /// Validates settings (from a flow file, flags, or both) into a configuration.
    pub fn resolve(s: RunSettings) -> Result<RunConfig> {
        let analysis = Analysis::resolve(&s)?;
        use crate::online::overpass::Area;
        let area = match (&s.place, &s.bbox) {
            (Some(_), Some(_)) => {
                return Err(Error::Config(
                    "give either --place or --bbox, not both".into(),
                ));
            }
            (Some(p), None) => Some(Area::place(p).map_err(Error::Config)?),
            (None, Some(b)) => Some(Area::bbox(b).map_err(Error::Config)?),
            (None, None) => None,
        };
        let pois = match (s.pois, s.poi_tag, s.addresses) {
            (Some(p), None, None) => PoiSource::File(p),
            (None, Some(t), None) => {
                crate::osm::pois::TagFilter::parse(&t).map_err(Error::Config)?;
                match area.clone() {
                    Some(area) => PoiSource::Overpass { tag: t, area },
                    None if s.network.is_some() => PoiSource::OsmTag(t),
                    None => {
                        return Err(Error::Config(
                            "--poi-tag needs --place or --bbox to search online, or a --network \
                             file to search in"
                                .into(),
                        ));
                    }
                }
            }
            (None, None, Some(a)) => PoiSource::Addresses(a),
            (None, None, None) => {
                return Err(Error::Config(
                    "no POIs given (--pois FILE, --poi-tag KEY=VALUE with --place or --bbox, or \
                     --addresses FILE)"
                        .into(),
                ));
            }
            _ => {
                return Err(Error::Config(
                    "give only one of --pois, --poi-tag and --addresses".into(),
                ));
            }
        };
        if area.is_some() && !matches!(pois, PoiSource::Overpass { .. }) {
            return Err(Error::Config(
                "--place and --bbox choose where --poi-tag looks online; give --poi-tag".into(),
            ));
        }
        let acs_year = s.acs_year.unwrap_or(DEFAULT_ACS_YEAR);
        if !(2009..=2100).contains(&acs_year) {
            return Err(Error::Config(format!(
                "--acs-year {acs_year}: the ACS 5-year estimates start in 2009"
            )));
        }
        let http_timeout_s = s.http_timeout_s.unwrap_or(180.0);
        if !(http_timeout_s.is_finite() && http_timeout_s > 0.0) {
            return Err(Error::Config(format!(
                "--http-timeout-s must be > 0, got {http_timeout_s}"
            )));
        }
        let online = OnlineConfig {
            overpass_url: s
                .overpass_url
                .clone()
                .unwrap_or_else(|| OVERPASS_URL.into()),
            tiger_url: s.tiger_url.clone().unwrap_or_else(|| TIGER_URL.into()),
            tigerweb_url: s
                .tigerweb_url
                .clone()
                .unwrap_or_else(|| TIGERWEB_URL.into()),
            census_url: s.census_url.clone().unwrap_or_else(|| CENSUS_URL.into()),
            geocoder_url: s
                .geocoder_url
                .clone()
                .unwrap_or_else(|| GEOCODER_URL.into()),
            block_groups_source: s
                .block_groups_source
                .as_deref()
                .unwrap_or("tiger")
                .parse()
                .map_err(Error::Config)?,
            acs_year,
            fetch_acs: s.acs.is_none() && (s.block_groups.is_none() || s.acs_year.is_some()),
            census_api_key: None,
            cache_dir: s
                .cache_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("checkpoints").join("_cache")),
            offline: s.offline.unwrap_or(false),
            http_timeout_s,
            http_retries: s.http_retries.unwrap_or(4),
            http_backoff_ms: s.http_backoff_ms.unwrap_or(2000),
            overpass_concurrency: s.overpass_concurrency.unwrap_or(1).max(1),
        };
        let out = s.out.unwrap_or_else(|| PathBuf::from("out"));
        // The run name names the default checkpoint: the flow file's name, else the output
        // directory's.
        let name = s.name.clone().unwrap_or_else(|| {
            out.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "run".into())
        });
        let checkpoint = Some(
            s.checkpoint
                .clone()
                .unwrap_or_else(|| PathBuf::from("checkpoints").join(&name)),
        );
        Ok(RunConfig {
            name,
            checkpoint,
            pois,
            network: s.network,
            block_groups: s.block_groups,
            acs: s.acs,
            online,
            analysis,
            out,
        })
    }
}

fn parse_list(text: &str, what: &str) -> Result<Vec<u32>> {
    text.split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse().map_err(|_| {
                Error::Config(format!("{what} {t:?} is not a whole number of minutes"))
            })
        })
        .collect()
}
