//! Command-line interface: `socialmapper run`, `demo`, `variables`, `synth`, `add`, `remove`
//! and `watch`.

use crate::config::{RunSettings, TravelTimes, Variables};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Who can reach these places, and how far are they? Travel-time isochrones on the
/// OpenStreetMap road network, the census block groups they reach with their ACS demographics,
/// and each block group's distance to the nearest POI.
#[derive(Debug, Parser)]
#[command(name = "socialmapper", version, about, long_about = None)]
pub struct Cli {
    /// No progress bars and no summary on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Worker threads of the dataflow. Results are identical for any number.
    #[arg(short = 'w', long, global = true, default_value_t = 1)]
    pub workers: usize,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole job on local files, from a flow file, flags, or both (flags win).
    Run(Box<RunArgs>),
    /// Run the job on the embedded synthetic town: no files, no internet.
    Demo(DemoArgs),
    /// List the ACS variable names this tool knows and their codes.
    Variables,
    /// Write a deterministic synthetic region of any size (a real .osm.pbf, block groups, ACS
    /// values, POIs and a flow.toml) for benchmarks.
    Synth(SynthArgs),
    /// Add POIs to a finished, checkpointed run: only what they change is computed; the outputs
    /// are updated in place and the changed rows appended to changes.jsonl.
    Add(AddArgs),
    /// Take POIs out of a finished, checkpointed run, by id (as `add`, the other way).
    Remove(RemoveArgs),
    /// Keep a finished, checkpointed run up to date from a stream of JSON Lines events
    /// (`{"op":"add","poi":{...}}`, `{"op":"remove","id":"..."}`), applied in epochs; restarted
    /// with the same arguments it goes on after the last committed epoch.
    Watch(WatchArgs),
}

/// Flags of `socialmapper watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// The run's checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The events: a file, read as it grows, or `-` for standard input (read to its end).
    #[arg(long)]
    pub input: PathBuf,
    /// An epoch holds at most this many events.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub epoch_events: u64,
    /// An epoch is applied at the latest this many milliseconds after its first event.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    pub epoch_ms: u64,
    /// Stop once the input has brought no event for this many seconds (default: a file is
    /// watched until Ctrl-C or SIGTERM, which apply the events read and stop; standard input
    /// until its end).
    #[arg(long, value_name = "SECONDS")]
    pub idle_exit: Option<f64>,
    /// How often the file is read again at its end, milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub poll_ms: u64,
}

/// Flags of `socialmapper add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The run's checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// POIs to add (CSV, GeoJSON or JSON, as `run` reads them), appended in file order.
    #[arg(long)]
    pub pois: PathBuf,
}

/// Flags of `socialmapper remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The run's checkpoint directory.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Ids of the POIs to take out, comma-separated (every POI with such an id goes).
    #[arg(long, value_delimiter = ',', required_unless_present = "pois")]
    pub ids: Vec<String>,
    /// A POI file whose ids are taken out (its other columns are not read).
    #[arg(long, conflicts_with = "ids")]
    pub pois: Option<PathBuf>,
}

/// Flags of `socialmapper synth`.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Approximate number of road nodes.
    #[arg(long, default_value_t = 100_000)]
    pub nodes: usize,
    /// Number of POIs.
    #[arg(long, default_value_t = 1_000)]
    pub pois: usize,
    /// Seed: the same flags give the same files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

/// Flags of `socialmapper run`.
#[derive(Debug, Args, Default)]
pub struct RunArgs {
    /// A flow file (TOML) with the same keys as these flags (`dataflows/dc.toml`).
    pub flow: Option<PathBuf>,
    /// Run name (defaults to the flow file's name, or "run").
    #[arg(long)]
    pub name: Option<String>,
    /// POIs: CSV (lat/lon columns, as the original's custom coordinates), GeoJSON or JSON.
    #[arg(long)]
    pub pois: Option<PathBuf>,
    /// POIs by OSM tag out of the network file instead: `amenity=library`, `shop`, `a=b|c`.
    #[arg(long)]
    pub poi_tag: Option<String>,
    /// Road network: an OpenStreetMap `.osm.pbf` extract.
    #[arg(long)]
    pub network: Option<PathBuf>,
    /// Block groups: TIGER/Line or cartographic-boundary shapefile zip, or GeoJSON.
    #[arg(long)]
    pub block_groups: Option<PathBuf>,
    /// ACS values: Census-API JSON or CSV with a GEOID column.
    #[arg(long)]
    pub acs: Option<PathBuf>,
    /// Travel times in minutes: `15` or `5,10,15` (1 to 120).
    #[arg(long, value_name = "MINUTES")]
    pub travel_time: Option<String>,
    /// Travel mode: walk, bike or drive.
    #[arg(long)]
    pub mode: Option<String>,
    /// from-poi (travel starting at the POI, the original's isochrones) or to-poi.
    #[arg(long)]
    pub direction: Option<String>,
    /// ACS variables by code or name: `total_population,B19013_001E`.
    #[arg(long)]
    pub variables: Option<String>,
    /// Output directory.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A POI farther than this from a usable road is rejected (metres, default 500).
    #[arg(long)]
    pub max_snap_m: Option<f64>,
    /// Analysis grid cell size in metres (default: walk 25, bike 50, drive 100).
    #[arg(long)]
    pub cell_m: Option<f64>,
    /// How far around the reached roads an isochrone extends, metres (default: one cell).
    #[arg(long)]
    pub buffer_m: Option<f64>,
    /// Unreached areas enclosed by an isochrone up to this size are part of it, km²
    /// (default 0.5: city blocks; big parks and water stay out; 0 keeps every hole).
    #[arg(long)]
    pub max_hole_km2: Option<f64>,
    /// POIs per batch.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Batches read ahead and computed in map order, outputs still in record order (default
    /// 256; 1 computes in file order).
    #[arg(long)]
    pub order_window: Option<usize>,
    /// Checkpoint directory (RocksDB; default `checkpoints/<run name>/`). Running the same
    /// command again resumes from it.
    #[arg(long, conflicts_with = "no_checkpoint")]
    pub checkpoint: Option<PathBuf>,
    /// Run without a checkpoint.
    #[arg(long)]
    pub no_checkpoint: bool,
    /// Discard an existing checkpoint (made with another configuration, or corrupt) and start over.
    #[arg(long)]
    pub fresh: bool,
    /// With --poi-tag: find the POIs online (Overpass) in this place, `Fuquay-Varina, NC`.
    #[arg(long, help_heading = "Online")]
    pub place: Option<String>,
    /// With --poi-tag: find the POIs online (Overpass) in this box, `S,W,N,E` degrees.
    #[arg(
        long,
        value_name = "S,W,N,E",
        allow_hyphen_values = true,
        help_heading = "Online"
    )]
    pub bbox: Option<String>,
    /// POIs from addresses: a CSV with street (or address), city, state, zip, and optional
    /// id and name, geocoded by the Census geocoder; unmatched addresses go to rejects.csv.
    #[arg(long, help_heading = "Online")]
    pub addresses: Option<PathBuf>,
    /// ACS 5-year vintage from the Census API (default 2023). ACS values are fetched when no
    /// --acs file is given and the block groups are fetched too, or when this is given.
    #[arg(long, value_name = "YEAR", help_heading = "Online")]
    pub acs_year: Option<u32>,
    /// Census API key (sent with every Census API request).
    #[arg(
        long,
        env = "CENSUS_API_KEY",
        hide_env_values = true,
        help_heading = "Online"
    )]
    pub census_api_key: Option<String>,
    /// Block groups online, when no --block-groups file is given: tiger (TIGER/Line state
    /// zips, default), cb (cartographic-boundary state zips) or tigerweb (TIGERweb queries).
    #[arg(long, value_name = "SOURCE", help_heading = "Online")]
    pub block_groups_source: Option<String>,
    /// Overpass interpreter URL.
    #[arg(long, value_name = "URL", help_heading = "Online")]
    pub overpass_url: Option<String>,
    /// Root of the TIGER files (`https://www2.census.gov/geo/tiger`).
    #[arg(long, value_name = "URL", help_heading = "Online")]
    pub tiger_url: Option<String>,
    /// Root of TIGERweb's services (`https://tigerweb.geo.census.gov/arcgis/rest/services`).
    #[arg(long, value_name = "URL", help_heading = "Online")]
    pub tigerweb_url: Option<String>,
    /// Root of the Census Data API (`https://api.census.gov/data`).
    #[arg(long, value_name = "URL", help_heading = "Online")]
    pub census_url: Option<String>,
    /// Root of the Census geocoder (`https://geocoding.geo.census.gov/geocoder`).
    #[arg(long, value_name = "URL", help_heading = "Online")]
    pub geocoder_url: Option<String>,
    /// Download cache (RocksDB), shared by runs (default `checkpoints/_cache/`).
    #[arg(long, value_name = "DIR", help_heading = "Online")]
    pub cache_dir: Option<PathBuf>,
    /// Make no request: online inputs must be in the cache; what is missing is named.
    #[arg(long, help_heading = "Online")]
    pub offline: bool,
    /// Timeout of one HTTP request, seconds (default 180).
    #[arg(long, value_name = "SECONDS", help_heading = "Online")]
    pub http_timeout_s: Option<f64>,
    /// Retries of a failed HTTP request (default 4), with exponential backoff and jitter.
    #[arg(long, value_name = "N", help_heading = "Online")]
    pub http_retries: Option<u32>,
    /// Delay before the first retry, milliseconds (default 2000), doubled for each further one.
    #[arg(long, value_name = "MS", help_heading = "Online")]
    pub http_backoff_ms: Option<u64>,
    /// Overpass requests at a time (default 1: the public instance gives each address a couple
    /// of slots; raise it for your own instance).
    #[arg(long, value_name = "N", help_heading = "Online")]
    pub overpass_concurrency: Option<usize>,
}

impl RunArgs {
    /// The settings given as flags (absent flags stay `None`).
    pub fn settings(&self) -> RunSettings {
        RunSettings {
            name: self.name.clone(),
            pois: self.pois.clone(),
            poi_tag: self.poi_tag.clone(),
            network: self.network.clone(),
            block_groups: self.block_groups.clone(),
            acs: self.acs.clone(),
            travel_time: self.travel_time.clone().map(TravelTimes::Text),
            mode: self.mode.clone(),
            direction: self.direction.clone(),
            variables: self.variables.clone().map(Variables::Text),
            out: self.out.clone(),
            max_snap_m: self.max_snap_m,
            cell_m: self.cell_m,
            buffer_m: self.buffer_m,
            max_hole_km2: self.max_hole_km2,
            batch_size: self.batch_size,
            order_window: self.order_window,
            checkpoint: self.checkpoint.clone(),
            place: self.place.clone(),
            bbox: self.bbox.clone(),
            addresses: self.addresses.clone(),
            acs_year: self.acs_year,
            block_groups_source: self.block_groups_source.clone(),
            overpass_url: self.overpass_url.clone(),
            tiger_url: self.tiger_url.clone(),
            tigerweb_url: self.tigerweb_url.clone(),
            census_url: self.census_url.clone(),
            geocoder_url: self.geocoder_url.clone(),
            cache_dir: self.cache_dir.clone(),
            offline: self.offline.then_some(true),
            http_timeout_s: self.http_timeout_s,
            http_retries: self.http_retries,
            http_backoff_ms: self.http_backoff_ms,
            overpass_concurrency: self.overpass_concurrency,
        }
    }
}

/// Flags of `socialmapper demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Output directory.
    #[arg(long, default_value = "out/demo")]
    pub out: PathBuf,
    /// Travel times in minutes.
    #[arg(long, default_value = "5,10,15", value_name = "MINUTES")]
    pub travel_time: String,
    /// Travel mode: walk, bike or drive.
    #[arg(long, default_value = "walk")]
    pub mode: String,
    /// from-poi or to-poi.
    #[arg(long)]
    pub direction: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_flags_parse_into_settings() {
        let cli = Cli::parse_from([
            "socialmapper",
            "run",
            "flow.toml",
            "--pois",
            "p.csv",
            "--travel-time",
            "5,10",
            "--mode",
            "walk",
            "--variables",
            "total_population,B19013_001E",
            "--max-snap-m",
            "250",
            "-q",
        ]);
        assert!(cli.quiet);
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.flow, Some(PathBuf::from("flow.toml")));
        let s = args.settings();
        assert_eq!(s.pois, Some(PathBuf::from("p.csv")));
        assert_eq!(s.travel_time, Some(TravelTimes::Text("5,10".into())));
        assert_eq!(s.max_snap_m, Some(250.0));
        assert_eq!(s.network, None);
    }

    #[test]
    fn demo_defaults() {
        let cli = Cli::parse_from(["socialmapper", "demo"]);
        let Command::Demo(d) = cli.command else {
            panic!("not demo")
        };
        assert_eq!(
            (d.out, d.mode.as_str(), d.travel_time.as_str()),
            (PathBuf::from("out/demo"), "walk", "5,10,15")
        );
    }
}
