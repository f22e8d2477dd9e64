//! Online sources: POIs and roads from Overpass, block groups from TIGER (or TIGERweb), ACS
//! values from the Census Data API, addresses through the Census geocoder.
//!
//! Data flows one way: [`load_inputs`] fetches what the run needs and hands the pipeline the
//! same [`Inputs`] that local files give, so nothing downstream knows where they came from.
//! Every answer goes through the [`http`] layer (retries, backoff, `Retry-After`, timeouts,
//! per-service concurrency, validation) and, once valid, into the persistent [`cache`], so a
//! second run makes no request. `--offline` makes none at all.
//!
//! What is fetched follows the clusters: the POIs come first (from a file, Overpass or the
//! geocoder); each cluster's slice box (its POIs' box grown by the reach radius, exactly as
//! the `cluster` stage makes it) decides the road tiles asked for and the states whose block
//! groups are needed. The reach radius depends on the network's top speed, which is known only
//! once the roads are in: the roads are fetched for an upper bound of the mode's speed, and
//! fetched again for more tiles in the rare case where the roads turn out faster. The ACS
//! values are fetched last, after the dataflow, for the counties of the block groups reached.

pub mod cache;
pub mod census_api;
pub mod geocoder;
pub mod http;
pub mod overpass;
pub mod tiger;

use crate::census::AcsTable;
use crate::config::{OnlineConfig, PoiSource, RunConfig};
use crate::dataflow::{PoiRecords, RecordsInMemory};
use crate::error::{Error, Result};
use crate::geom::albers::to_5070;
use crate::osm::OsmRoads;
use crate::pipeline::Inputs;
use crate::stages::cluster::{Tile, default_tile_m, reach_radius_m};
use crate::stages::network::Network;
use crate::types::Mode;
use cache::Cache;
use geo::{Coord, Rect};
use http::{RetryPolicy, Service};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The services of a run and its cache.
pub struct Online {
    /// The download cache.
    pub cache: Cache,
    /// No requests at all.
    pub offline: bool,
    /// Overpass (one request at a time by default: the public instance gives each address a
    /// couple of slots and answers more with 429).
    pub overpass: Service,
    /// TIGER files.
    pub tiger: Service,
    /// TIGERweb queries.
    pub tigerweb: Service,
    /// The Census Data API.
    pub census: Service,
    /// The Census geocoder.
    pub geocoder: Service,
    /// No progress bars.
    pub quiet: bool,
}

impl Online {
    /// Opens the cache and sets up the services of `cfg`.
    ///
    /// # Errors
    /// The cache cannot be opened, or the HTTP client cannot be built.
    pub fn open(cfg: &OnlineConfig, quiet: bool) -> Result<Online> {
        let policy = RetryPolicy {
            retries: cfg.http_retries,
            base_delay: Duration::from_millis(cfg.http_backoff_ms),
            max_delay: Duration::from_millis(cfg.http_backoff_ms.saturating_mul(30))
                .max(Duration::from_millis(cfg.http_backoff_ms)),
            timeout: Duration::from_secs_f64(cfg.http_timeout_s),
        };
        Ok(Online {
            cache: Cache::open(&cfg.cache_dir)?,
            offline: cfg.offline,
            overpass: Service::new(
                "Overpass",
                &cfg.overpass_url,
                cfg.overpass_concurrency,
                policy,
                quiet,
            )?,
            tiger: Service::new("TIGER", &cfg.tiger_url, 2, policy, quiet)?,
            tigerweb: Service::new("TIGERweb", &cfg.tigerweb_url, 2, policy, quiet)?,
            census: Service::new("Census API", &cfg.census_url, 4, policy, quiet)?,
            geocoder: Service::new("Census geocoder", &cfg.geocoder_url, 1, policy, quiet)?,
            quiet,
        })
    }

    /// The value under `key` in the cache, else `fetch`'s (stored before it is returned).
    /// With `--offline`, a missing value is an error naming `what`.
    ///
    /// # Errors
    /// `fetch`'s error, a cache write error, or the missing value offline.
    pub fn cached_or_fetch<T: Serialize + DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
        fetch: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        if let Some(v) = self.cache.get(key) {
            return Ok(v);
        }
        if self.offline {
            return Err(self.missing(what, std::iter::empty()));
        }
        let v = fetch()?;
        self.cache.put(key, &v)?;
        Ok(v)
    }

    /// The error for entries an offline run needs but the cache lacks: `what`, then the first
    /// few `items`.
    pub fn missing(&self, what: &str, items: impl Iterator<Item = String>) -> Error {
        let items: Vec<String> = items.collect();
        let listed = if items.is_empty() {
            String::new()
        } else {
            let shown: Vec<&str> = items.iter().take(5).map(String::as_str).collect();
            let more = items.len().saturating_sub(shown.len());
            format!(
                " ({}{})",
                shown.join("; "),
                if more > 0 {
                    format!("; and {more} more")
                } else {
                    String::new()
                }
            )
        };
        Error::input(
            self.cache.dir(),
            format!(
                "--offline: {what} not in the download cache{listed}; run once without \
                 --offline to fetch them"
            ),
        )
    }

    fn services(&self) -> [&Service; 5] {
        [
            &self.overpass,
            &self.tiger,
            &self.tigerweb,
            &self.census,
            &self.geocoder,
        ]
    }

    /// Requests sent so far, over every service.
    pub fn requests(&self) -> u64 {
        self.services()
            .iter()
            .map(|s| s.counters.requests.load(Ordering::Relaxed))
            .sum()
    }

    /// One line for `run.json`: requests and bytes per service used, cache hits.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .services()
            .iter()
            .filter_map(|s| {
                let n = s.counters.requests.load(Ordering::Relaxed);
                (n > 0).then(|| {
                    format!(
                        "{}: {n} requests, {} bytes",
                        s.name,
                        s.counters.bytes.load(Ordering::Relaxed)
                    )
                })
            })
            .collect();
        parts.push(format!(
            "{} answers from the cache {}",
            self.cache.hits.load(Ordering::Relaxed),
            self.cache.dir().display()
        ));
        parts.join("; ")
    }
}

/// `f` over `items` on up to `workers` threads, results in `items`' order. The first error
/// stops the handing out of further items and is returned. The services' own permits keep the
/// requests within their limits; this only lets those limits be used.
pub fn parallel_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                while !failed.load(Ordering::Relaxed) {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(k) else { break };
                    match f(item) {
                        Ok(r) => {
                            if let Ok(mut v) = results.lock() {
                                v[k] = Some(r);
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            if let Ok(mut slot) = first_error.lock() {
                                slot.get_or_insert(e);
                            }
                        }
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect())
}

/// An upper bound of the mode's top speed in EPSG:5070 metres per second, before any road is
/// known: the fastest speed its rules give (car speeds signed above 120 km/h are rare in the
/// US), plus 2 % for the projection's scale. Roads faster than this are found after the
/// fetch and make it fetch more (see [`fetch_network`]).
fn assumed_top_speed_mps(mode: Mode) -> f64 {
    let kmh = match mode {
        Mode::Walk => crate::osm::profile::WALK_MAX_KMH,
        Mode::Bike => crate::osm::profile::BIKE_MAX_KMH,
        Mode::Drive => 120.0,
    };
    kmh / 3.6 * 1.02
}

/// The slice boxes (EPSG:5070) of the clusters the POIs at `points` make, over every batch: the
/// POIs of each tile of the `cluster` stage's grid, their box grown by `reach_m`. Every
/// cluster the dataflow makes holds POIs of one tile, so its box lies inside the tile's box
/// here.
pub fn cluster_boxes(points: &[Coord<f64>], reach_m: f64) -> Vec<Rect<f64>> {
    let tile_m = default_tile_m(reach_m);
    let mut boxes: BTreeMap<Tile, (Coord<f64>, Coord<f64>)> = BTreeMap::new();
    for &p in points {
        let e = boxes.entry(Tile::of(p, tile_m)).or_insert((p, p));
        e.0.x = e.0.x.min(p.x);
        e.0.y = e.0.y.min(p.y);
        e.1.x = e.1.x.max(p.x);
        e.1.y = e.1.y.max(p.y);
    }
    boxes
        .into_values()
        .map(|(lo, hi)| {
            Rect::new(
                Coord {
                    x: lo.x - reach_m,
                    y: lo.y - reach_m,
                },
                Coord {
                    x: hi.x + reach_m,
                    y: hi.y + reach_m,
                },
            )
        })
        .collect()
}

/// The lon/lat box (west, south, east, north) around an EPSG:5070 box, sampled along its edges.
fn lonlat_box(b: &Rect<f64>) -> Rect<f64> {
    let tiles = overpass::tiles_covering(b);
    // The road tiles hold the box; their outer edges are a box in lon/lat that holds it too,
    // at most one tile larger: tight enough to choose states and block groups.
    let (mut w, mut s, mut e, mut n) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for t in tiles {
        let [ts, tw, tn, te] = t.bounds();
        w = w.min(tw);
        s = s.min(ts);
        e = e.max(te);
        n = n.max(tn);
    }
    Rect::new(Coord { x: w, y: s }, Coord { x: e, y: n })
}

/// The reach radius of `analysis` on a network of top speed `top_mps`.
fn reach_for(analysis: &crate::config::Analysis, top_mps: f64) -> f64 {
    reach_radius_m(
        analysis.max_snap_m,
        analysis.travel_times_min.last().copied().unwrap_or(0),
        top_mps,
        analysis.buffer_m,
    )
}

/// The roads every cluster needs, from Overpass tiles: fetched for the assumed top speed, and
/// again with more tiles while the roads found are faster than assumed (so that no cluster's
/// slice box reaches past what was fetched). Returns the roads and the reach radius the
/// dataflow will use.
fn fetch_network(
    online: &Online,
    analysis: &crate::config::Analysis,
    points: &[Coord<f64>],
) -> Result<(OsmRoads, f64)> {
    let mut speed = assumed_top_speed_mps(analysis.mode);
    for _ in 0..4 {
        let reach = reach_for(analysis, speed);
        let mut tiles = BTreeSet::new();
        for b in cluster_boxes(points, reach) {
            tiles.extend(overpass::tiles_covering(&b));
        }
        let roads = overpass::fetch_roads(online, &tiles)?;
        let top = top_speed(&roads, analysis);
        if top <= speed {
            return Ok((roads, reach_for(analysis, top)));
        }
        tracing::info!(
            assumed_kmh = speed * 3.6,
            found_kmh = top * 3.6,
            "roads faster than assumed: fetching the wider surroundings"
        );
        speed = top;
    }
    Err(Error::Config(
        "the fetched roads kept getting faster than the area fetched for them allows".into(),
    ))
}

/// The top speed (EPSG:5070 m/s) of the network `roads` make for the run's mode.
fn top_speed(roads: &OsmRoads, analysis: &crate::config::Analysis) -> f64 {
    Network::from_roads(roads, analysis.mode, analysis.direction).top_speed_mps()
}

/// The EPSG:5070 positions of every POI in `records` (rejected records have none).
fn positions(mut records: Box<dyn PoiRecords>) -> Result<Vec<Coord<f64>>> {
    let mut out = Vec::new();
    while let Some(batch) = records.next_batch(8192)? {
        out.extend(
            batch
                .into_iter()
                .filter_map(|(_, r)| r.ok().map(|p| to_5070(p.lon, p.lat))),
        );
    }
    Ok(out)
}

/// Reads or fetches every input of `cfg`: local files as [`crate::pipeline::load_inputs`]
/// does, the rest online (see the module's documentation). The ACS values, when fetched,
/// come after the dataflow through [`Inputs::acs_fetch`].
///
/// # Errors
/// A local file's error, a service's error after its retries, the cache's, or what is
/// missing from the cache with `--offline`.
pub fn load_inputs(
    cfg: &RunConfig,
    timings: &mut Vec<(String, f64)>,
    quiet: bool,
) -> Result<Inputs> {
    let online = Arc::new(Online::open(&cfg.online, quiet)?);
    let mut described: Vec<(String, String)> = Vec::new();
    let path = |p: &Path| p.display().to_string();

    // POIs first: they decide everything else.
    let t = Instant::now();
    let spin = crate::output::spinner("finding POIs", quiet);
    let records: Box<dyn PoiRecords> = match &cfg.pois {
        PoiSource::File(_) | PoiSource::OsmTag(_) => crate::pipeline::open_pois(cfg)?,
        PoiSource::Overpass { tag, area } => {
            let filter = crate::osm::pois::TagFilter::parse(tag).map_err(Error::Config)?;
            let pois = overpass::fetch_pois(&online, &filter, area)?;
            Box::new(RecordsInMemory::from_pois(pois))
        }
        PoiSource::Addresses(p) => {
            Box::new(RecordsInMemory::new(geocoder::geocode_file(&online, p)?))
        }
    };
    spin.finish_and_clear();
    described.push((
        "pois".into(),
        match &cfg.pois {
            PoiSource::File(p) => path(p),
            PoiSource::OsmTag(t) => format!(
                "{t} in {}",
                cfg.network.as_deref().map(path).unwrap_or_default()
            ),
            PoiSource::Overpass { tag, area } => {
                format!("{tag} in {area} from Overpass {}", cfg.online.overpass_url)
            }
            PoiSource::Addresses(p) => {
                format!("{} geocoded by {}", path(p), cfg.online.geocoder_url)
            }
        },
    ));
    let points = positions(records.reopen()?)?;
    timings.push(("open_pois".into(), t.elapsed().as_secs_f64()));

    // Roads: the local extract, or the tiles the clusters need.
    let t = Instant::now();
    let (roads, reach) = match &cfg.network {
        Some(p) => {
            let spin = crate::output::spinner(&format!("reading {}", p.display()), quiet);
            let roads = crate::osm::pbf::read_roads(p)?;
            spin.finish_and_clear();
            described.push(("network".into(), path(p)));
            let reach = reach_for(&cfg.analysis, top_speed(&roads, &cfg.analysis));
            (roads, reach)
        }
        None => {
            let (roads, reach) = fetch_network(&online, &cfg.analysis, &points)?;
            described.push((
                "network".into(),
                format!(
                    "{} highway ways from Overpass {} ({}° tiles)",
                    roads.ways.len(),
                    cfg.online.overpass_url,
                    overpass::TILE_DEG
                ),
            ));
            (roads, reach)
        }
    };
    timings.push(("read_network".into(), t.elapsed().as_secs_f64()));

    // Block groups: the file, or those near the clusters' boxes.
    let t = Instant::now();
    let block_groups = match &cfg.block_groups {
        Some(p) => {
            described.push(("block_groups".into(), path(p)));
            crate::census::boundaries::read_block_groups(p)?
        }
        None => {
            let boxes: Vec<Rect<f64>> = cluster_boxes(&points, reach)
                .iter()
                .map(lonlat_box)
                .collect();
            let source = cfg.online.block_groups_source;
            let url = match source {
                tiger::BoundarySource::Tigerweb => &cfg.online.tigerweb_url,
                _ => &cfg.online.tiger_url,
            };
            let bgs = tiger::fetch_block_groups(&online, source, cfg.online.acs_year, &boxes)?;
            described.push((
                "block_groups".into(),
                format!(
                    "{} block groups ({source} {}) from {url}",
                    bgs.len(),
                    cfg.online.acs_year
                ),
            ));
            bgs
        }
    };
    let acs = match &cfg.acs {
        Some(p) => {
            described.push(("acs".into(), path(p)));
            crate::census::acs::read_acs(p, &cfg.analysis.variables)?
        }
        None => AcsTable::default(),
    };
    timings.push(("read_census".into(), t.elapsed().as_secs_f64()));

    let acs_fetch: Option<crate::pipeline::AcsFetch> = if cfg.online.fetch_acs {
        let online = online.clone();
        let year = cfg.online.acs_year;
        let key = cfg.online.census_api_key.clone();
        let codes = cfg.analysis.variables.clone();
        described.push((
            "acs".into(),
            format!(
                "ACS 5-year {year} from the Census API {}",
                cfg.online.census_url
            ),
        ));
        Some(Box::new(move |geoids: &[String]| {
            let table = census_api::fetch_acs(&online, year, key.as_deref(), &codes, geoids)?;
            Ok((table, vec![("online".to_string(), online.describe())]))
        }))
    } else {
        None
    };
    if acs_fetch.is_none() {
        described.push(("online".into(), online.describe()));
    }
    Ok(Inputs {
        pois: records,
        roads,
        block_groups,
        acs,
        described,
        acs_fetch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_map_keeps_order_and_stops_at_an_error() {
        let items: Vec<u32> = (0..50).collect();
        let out = parallel_map(&items, 4, |&k| Ok(k * 2)).unwrap();
        assert_eq!(out, (0..50).map(|k| k * 2).collect::<Vec<_>>());
        let err = parallel_map(&items, 3, |&k| {
            if k == 7 {
                Err(Error::Config("seven".into()))
            } else {
                Ok(k)
            }
        })
        .unwrap_err();
        assert!(err.to_string().contains("seven"));
        assert!(
            parallel_map(&[] as &[u32], 4, |&k| Ok(k))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn cluster_boxes_hold_every_poi_grown_by_the_reach() {
        let c = to_5070(-77.03, 38.9);
        let pts: Vec<Coord<f64>> = (0..20)
            .map(|k| Coord {
                x: c.x + f64::from(k) * 700.0,
                y: c.y - f64::from(k) * 300.0,
            })
            .collect();
        let reach = 4_000.0;
        let boxes = cluster_boxes(&pts, reach);
        // Tiles of 1 km (a quarter of the reach, at least 1 km): several boxes.
        assert!(boxes.len() > 1);
        for p in &pts {
            assert!(boxes.iter().any(|b| {
                b.min().x <= p.x - reach
                    && b.max().x >= p.x + reach
                    && b.min().y <= p.y - reach
                    && b.max().y >= p.y + reach
            }));
        }
        // The lon/lat box around a projected box holds its corners.
        let ll = lonlat_box(&boxes[0]);
        for corner in [boxes[0].min(), boxes[0].max()] {
            let (lon, lat) = crate::geom::albers::from_5070(corner);
            assert!(
                ll.min().x <= lon && lon <= ll.max().x && ll.min().y <= lat && lat <= ll.max().y
            );
        }
    }
}
