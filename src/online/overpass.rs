//! Overpass: POIs by tag inside a named place or a box, and highway ways by tile.
//!
//! POIs are asked for as the original asked for them (`nwr[k=v](area.searchArea); out center;`,
//! the area being a place by name inside a state), so a place the original found is found here
//! too. Roads are asked for in fixed tiles of [`TILE_DEG`] degrees: `way[highway](box); out
//! body; >; out skel qt;`, every highway way touching the tile with all its nodes. Tiles do not
//! depend on the mode, the travel time or the POIs, so one cached tile serves every later run
//! and every cluster that needs it, and the union of tiles makes the same [`OsmRoads`] as the
//! `.osm.pbf` reader.

use super::Online;
use crate::error::{Error, Result};
use crate::geom::albers::from_5070;
use crate::osm::pois::TagFilter;
use crate::osm::{OsmRoads, OsmWay};
use crate::types::Poi;
use geo::Rect;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Side of a road tile, degrees (about 11 × 9 km at 38° N: a few MB of JSON in a city).
pub const TILE_DEG: f64 = 0.1;

/// Seconds Overpass may spend on one query (its `[timeout:]` setting).
const QUERY_TIMEOUT_S: u32 = 180;

/// Where to look for POIs.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Area {
    /// A place by name (an OSM area named so), optionally inside a state: `Fuquay-Varina, NC`.
    Place {
        /// The place's name.
        name: String,
        /// Two-letter state code, or a state name as written when it is not a US state.
        state: Option<String>,
    },
    /// A box: south, west, north, east (degrees).
    BBox([f64; 4]),
}

impl Area {
    /// Parses `--place`: `Name`, `Name, ST` or `Name, State Name`.
    ///
    /// # Errors
    /// A message for an empty name.
    pub fn place(text: &str) -> std::result::Result<Area, String> {
        let (name, state) = match text.rsplit_once(',') {
            Some((n, s)) if !s.trim().is_empty() => (n.trim(), Some(s.trim())),
            _ => (text.trim().trim_end_matches(',').trim(), None),
        };
        if name.is_empty() {
            return Err(format!("--place {text:?} has no place name"));
        }
        let state = state.map(|s| crate::poi::state_code(s).unwrap_or_else(|| s.to_string()));
        Ok(Area::Place {
            name: name.to_string(),
            state,
        })
    }

    /// Parses `--bbox S,W,N,E` (degrees).
    ///
    /// # Errors
    /// A message for anything but four numbers with S < N and W < E inside lat/lon ranges.
    pub fn bbox(text: &str) -> std::result::Result<Area, String> {
        let v: Vec<f64> = text
            .split(',')
            .map(|t| t.trim().parse::<f64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| format!("--bbox {text:?}: expected four numbers S,W,N,E"))?;
        let [s, w, n, e] = v[..] else {
            return Err(format!("--bbox {text:?}: expected four numbers S,W,N,E"));
        };
        if !(s.is_finite() && w.is_finite() && n.is_finite() && e.is_finite())
            || s >= n
            || w >= e
            || s < -90.0
            || n > 90.0
            || w < -180.0
            || e > 180.0
        {
            return Err(format!(
                "--bbox {text:?}: expected south < north in [-90, 90] and west < east in \
                 [-180, 180]"
            ));
        }
        Ok(Area::BBox([s, w, n, e]))
    }

    /// The state POIs found in this area are given (a two-letter code only).
    fn poi_state(&self) -> Option<String> {
        match self {
            Area::Place { state: Some(s), .. } if s.len() == 2 => Some(s.clone()),
            _ => None,
        }
    }
}

impl std::fmt::Display for Area {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Area::Place { name, state: None } => write!(f, "{name}"),
            Area::Place {
                name,
                state: Some(s),
            } => write!(f, "{name}, {s}"),
            Area::BBox([s, w, n, e]) => write!(f, "box {s},{w},{n},{e}"),
        }
    }
}

/// A string literal for Overpass QL.
fn ql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\n"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The tag filter as an Overpass QL filter: `["amenity"]`, `["amenity"="library"]`, or a
/// regex for alternatives.
fn ql_filter(filter: &TagFilter) -> String {
    let key = ql_string(filter.key());
    match filter.values() {
        None => format!("[{key}]"),
        Some([v]) => format!("[{key}={}]", ql_string(v)),
        Some(vs) => {
            let alts: Vec<String> = vs.iter().map(|v| regex_escape(v)).collect();
            format!("[{key}~{}]", ql_string(&format!("^({})$", alts.join("|"))))
        }
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The POI query, as the original wrote it (`query/__init__.py`).
pub fn poi_query(filter: &TagFilter, area: &Area) -> String {
    let f = ql_filter(filter);
    let head = format!("[out:json][timeout:{QUERY_TIMEOUT_S}];\n");
    match area {
        Area::BBox([s, w, n, e]) => format!("{head}nwr{f}({s},{w},{n},{e});\nout center;\n"),
        Area::Place { name, state } => {
            let n = ql_string(name);
            let (state_line, inside) = match state {
                Some(s) if s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase()) => (
                    format!(
                        "area[\"ISO3166-2\"={}]->.state;\n",
                        ql_string(&format!("US-{s}"))
                    ),
                    "(area.state)",
                ),
                Some(s) => (
                    format!(
                        "area[name={}][\"admin_level\"=\"4\"]->.state;\n",
                        ql_string(s)
                    ),
                    "(area.state)",
                ),
                None => (String::new(), ""),
            };
            let search = if state.is_some() {
                format!(
                    "(\n  area[name={n}][\"place\"=\"city\"]{inside};\n  \
                     area[name={n}][\"admin_level\"=\"8\"]{inside};\n  \
                     area[name={n}][\"boundary\"=\"administrative\"]{inside};\n)->.searchArea;\n"
                )
            } else {
                format!("area[name={n}]->.searchArea;\n")
            };
            format!("{head}{state_line}{search}nwr{f}(area.searchArea);\nout center;\n")
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    elements: Vec<Element>,
    #[serde(default)]
    remark: Option<String>,
}

#[derive(Deserialize)]
struct Element {
    #[serde(rename = "type")]
    kind: String,
    id: i64,
    lat: Option<f64>,
    lon: Option<f64>,
    center: Option<Center>,
    #[serde(default)]
    nodes: Vec<i64>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Center {
    lat: f64,
    lon: f64,
}

/// Parses an Overpass JSON answer; an error remark (a query that timed out or ran out of
/// memory on the server, answered with HTTP 200 and partial data) makes it unusable.
fn parse_answer(bytes: &[u8]) -> std::result::Result<Vec<Element>, String> {
    let a: Answer = serde_json::from_slice(bytes).map_err(|e| format!("not Overpass JSON: {e}"))?;
    if let Some(r) = &a.remark
        && r.to_ascii_lowercase().contains("error")
    {
        return Err(format!("Overpass says: {r}"));
    }
    Ok(a.elements)
}

fn valid_coord(lon: f64, lat: f64) -> bool {
    lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0
}

/// POIs out of an answer to [`poi_query`]: nodes at their position, ways and relations at
/// the centre Overpass gives (skipped without one, as the original does); sorted by kind
/// (node, way, relation) and id, like [`crate::osm::pois::pois_by_tag`].
pub fn parse_pois(bytes: &[u8], state: Option<&str>) -> std::result::Result<Vec<Poi>, String> {
    let mut pois = Vec::new();
    for e in parse_answer(bytes)? {
        let (lon, lat) = match (&e.kind[..], e.lon, e.lat, &e.center) {
            ("node", Some(lon), Some(lat), _) => (lon, lat),
            ("way" | "relation", _, _, Some(c)) => (c.lon, c.lat),
            _ => continue,
        };
        if !valid_coord(lon, lat) {
            continue;
        }
        let id = format!("{}/{}", e.kind, e.id);
        pois.push(Poi {
            id: id.clone(),
            name: e
                .tags
                .get("name")
                .cloned()
                .unwrap_or_else(|| format!("poi_{}", e.id)),
            kind: e.kind.clone(),
            lon,
            lat,
            state: state.map(str::to_string),
            tags: e.tags,
            source: id,
        });
    }
    let rank = |k: &str| match k {
        "node" => 0,
        "way" => 1,
        _ => 2,
    };
    pois.sort_by(|a, b| {
        (rank(&a.kind), osm_number(&a.id)).cmp(&(rank(&b.kind), osm_number(&b.id)))
    });
    Ok(pois)
}

fn osm_number(id: &str) -> i64 {
    id.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// POIs with a tag passing `filter` inside `area`, from the cache or Overpass.
///
/// # Errors
/// The service's error when Overpass cannot answer; an [`Error::Config`] naming the place when
/// it holds no such POI (usually a place name that matches no OSM area in the state); the
/// missing cache entry with `--offline`.
pub fn fetch_pois(online: &Online, filter: &TagFilter, area: &Area) -> Result<Vec<Poi>> {
    let query = poi_query(filter, area);
    let key = format!("overpass/pois/{}", super::cache::key_hash(&query));
    let state = area.poi_state();
    let pois: Vec<Poi> =
        online.cached_or_fetch(&key, &format!("Overpass POIs {filter} in {area}"), || {
            online.overpass.fetch(
                &online.overpass.base_url,
                &super::http::Body::Form(vec![("data".into(), query.clone())]),
                &format!("POIs {filter} in {area}"),
                |b| parse_pois(b, state.as_deref()),
            )
        })?;
    if pois.is_empty() {
        return Err(Error::Config(format!(
            "Overpass found no {filter} in {area}{}",
            match area {
                Area::Place { .. } => {
                    " (the name must be an OSM area: a place=city, admin_level=8 or \
                     administrative boundary inside the state; try --bbox S,W,N,E)"
                }
                Area::BBox(_) => "",
            }
        )));
    }
    Ok(pois)
}

/// A road tile: `[i·TILE_DEG, (i+1)·TILE_DEG)` of longitude by `[j·TILE_DEG, ...)` of
/// latitude.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoadTile {
    /// Column (longitude).
    pub i: i32,
    /// Row (latitude).
    pub j: i32,
}

impl RoadTile {
    /// South, west, north, east, rounded to the tile grid (so a query is the same text on
    /// every machine).
    pub fn bounds(self) -> [f64; 4] {
        let r = |k: i32| (f64::from(k) * TILE_DEG * 1e4).round() / 1e4;
        [r(self.j), r(self.i), r(self.j + 1), r(self.i + 1)]
    }

    fn key(self) -> String {
        format!("overpass/roads/{TILE_DEG}/{}/{}", self.i, self.j)
    }

    fn label(self) -> String {
        let [s, w, n, e] = self.bounds();
        format!("{s},{w},{n},{e}")
    }
}

/// The road tiles covering the EPSG:5070 box `want`: its edges are sampled densely (an Albers
/// rectangle is slightly curved in lon/lat), and a margin of 0.001° absorbs the curvature
/// between samples.
pub fn tiles_covering(want: &Rect<f64>) -> BTreeSet<RoadTile> {
    let (min, max) = (want.min(), want.max());
    let (mut w, mut s, mut e, mut n) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    const STEPS: usize = 32;
    for k in 0..=STEPS {
        let t = k as f64 / STEPS as f64;
        let x = min.x + t * (max.x - min.x);
        let y = min.y + t * (max.y - min.y);
        for p in [
            geo::Coord { x, y: min.y },
            geo::Coord { x, y: max.y },
            geo::Coord { x: min.x, y },
            geo::Coord { x: max.x, y },
        ] {
            let (lon, lat) = from_5070(p);
            w = w.min(lon);
            e = e.max(lon);
            s = s.min(lat);
            n = n.max(lat);
        }
    }
    let m = 0.001;
    let cell = |v: f64| (v / TILE_DEG).floor() as i32;
    let mut tiles = BTreeSet::new();
    for i in cell(w - m)..=cell(e + m) {
        for j in cell(s - m)..=cell(n + m) {
            tiles.insert(RoadTile { i, j });
        }
    }
    tiles
}

/// The road query for one tile.
pub fn roads_query(tile: RoadTile) -> String {
    let [s, w, n, e] = tile.bounds();
    format!(
        "[out:json][timeout:{QUERY_TIMEOUT_S}];\nway[\"highway\"]({s},{w},{n},{e});\nout body;\n>;\nout skel qt;\n"
    )
}

/// The highway ways and their nodes out of an answer to [`roads_query`]. An answer in which a
/// way refers to a node it does not include is cut or garbled: `>` always sends every node.
pub fn parse_roads(bytes: &[u8]) -> std::result::Result<OsmRoads, String> {
    let mut roads = OsmRoads::default();
    for e in parse_answer(bytes)? {
        match &e.kind[..] {
            "node" => {
                let (Some(lon), Some(lat)) = (e.lon, e.lat) else {
                    return Err(format!("node {} without coordinates", e.id));
                };
                roads.nodes.insert(e.id, (lon, lat));
            }
            "way" if e.tags.contains_key("highway") => roads.ways.push(OsmWay {
                id: e.id,
                nodes: e.nodes,
                tags: e.tags.into_iter().collect(),
            }),
            _ => {}
        }
    }
    if let Some((w, n)) = roads.ways.iter().find_map(|w| {
        w.nodes
            .iter()
            .find(|n| !roads.nodes.contains_key(n))
            .map(|n| (w.id, *n))
    }) {
        return Err(format!(
            "way {w} refers to node {n}, which the answer does not include"
        ));
    }
    roads.ways.sort_by_key(|w| w.id);
    Ok(roads)
}

/// The highway ways of every tile in `tiles`, from the cache or Overpass (one query per tile
/// not cached, each stored as soon as it is validated, so an interrupted download keeps what
/// it got), merged into one [`OsmRoads`] with ways sorted by id as the `.osm.pbf` reader
/// gives them.
///
/// # Errors
/// The service's error for a tile Overpass cannot answer; with `--offline`, the tiles missing
/// from the cache.
pub fn fetch_roads(online: &Online, tiles: &BTreeSet<RoadTile>) -> Result<OsmRoads> {
    let missing: Vec<RoadTile> = tiles
        .iter()
        .copied()
        .filter(|t| !online.cache.contains(&t.key()))
        .collect();
    if online.offline && !missing.is_empty() {
        return Err(online.missing(
            &format!(
                "{} of {} Overpass road tiles of the network",
                missing.len(),
                tiles.len()
            ),
            missing.iter().map(|t| t.label()),
        ));
    }
    let bar = crate::output::steps_bar("Overpass road tiles", missing.len() as u64, online.quiet);
    let tiles: Vec<RoadTile> = tiles.iter().copied().collect();
    let parts = super::parallel_map(&tiles, online.overpass.concurrency(), |&tile| {
        online.cached_or_fetch(
            &tile.key(),
            &format!("Overpass road tile {}", tile.label()),
            || {
                let r = online.overpass.fetch(
                    &online.overpass.base_url,
                    &super::http::Body::Form(vec![("data".into(), roads_query(tile))]),
                    &format!("roads of tile {}", tile.label()),
                    parse_roads,
                );
                bar.inc(1);
                r
            },
        )
    })?;
    let mut nodes: HashMap<i64, (f64, f64)> = HashMap::new();
    let mut ways: BTreeMap<i64, OsmWay> = BTreeMap::new();
    for part in parts {
        let part: OsmRoads = part;
        nodes.extend(part.nodes);
        for w in part.ways {
            ways.entry(w.id).or_insert(w);
        }
    }
    bar.finish_and_clear();
    Ok(OsmRoads {
        nodes,
        ways: ways.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_and_boxes_parse() {
        assert_eq!(
            Area::place("Fuquay-Varina, NC").unwrap(),
            Area::Place {
                name: "Fuquay-Varina".into(),
                state: Some("NC".into())
            }
        );
        assert_eq!(
            Area::place(" Raleigh , north carolina").unwrap(),
            Area::Place {
                name: "Raleigh".into(),
                state: Some("NC".into())
            }
        );
        assert_eq!(
            Area::place("Paris").unwrap(),
            Area::Place {
                name: "Paris".into(),
                state: None
            }
        );
        assert!(Area::place(" , NC").is_err());
        assert_eq!(
            Area::bbox("38.9,-77.1,38.95,-77.0").unwrap(),
            Area::BBox([38.9, -77.1, 38.95, -77.0])
        );
        for bad in ["1,2,3", "38.95,-77.1,38.9,-77.0", "a,b,c,d", "0,0,91,1"] {
            assert!(Area::bbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_poi_query_is_the_originals() {
        let f = TagFilter::parse("amenity=library").unwrap();
        let q = poi_query(&f, &Area::place("Fuquay-Varina, NC").unwrap());
        assert_eq!(
            q,
            "[out:json][timeout:180];\n\
             area[\"ISO3166-2\"=\"US-NC\"]->.state;\n\
             (\n  area[name=\"Fuquay-Varina\"][\"place\"=\"city\"](area.state);\n  \
             area[name=\"Fuquay-Varina\"][\"admin_level\"=\"8\"](area.state);\n  \
             area[name=\"Fuquay-Varina\"][\"boundary\"=\"administrative\"](area.state);\n\
             )->.searchArea;\n\
             nwr[\"amenity\"=\"library\"](area.searchArea);\nout center;\n"
        );
        let f = TagFilter::parse("amenity=library|school").unwrap();
        let q = poi_query(&f, &Area::BBox([1.0, 2.0, 3.0, 4.0]));
        assert!(
            q.contains("nwr[\"amenity\"~\"^(library|school)$\"](1,2,3,4);"),
            "{q}"
        );
        let q = poi_query(
            &TagFilter::parse("shop").unwrap(),
            &Area::place("O\"Hare").unwrap(),
        );
        assert!(q.contains("area[name=\"O\\\"Hare\"]->.searchArea;"), "{q}");
    }

    #[test]
    fn answers_become_pois_and_roads() {
        let json = br#"{"version":0.6,"elements":[
            {"type":"way","id":5,"center":{"lat":38.91,"lon":-77.02},"nodes":[1,2],"tags":{"amenity":"library"}},
            {"type":"node","id":9,"lat":38.9,"lon":-77.0,"tags":{"amenity":"library","name":"A"}},
            {"type":"relation","id":3,"tags":{"amenity":"library"}}]}"#;
        let pois = parse_pois(json, Some("DC")).unwrap();
        let ids: Vec<&str> = pois.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["node/9", "way/5"]);
        assert_eq!(
            (pois[0].name.as_str(), pois[1].name.as_str()),
            ("A", "poi_5")
        );
        assert_eq!(pois[1].kind, "way");
        assert_eq!(pois[0].state.as_deref(), Some("DC"));
        assert!(
            parse_pois(
                br#"{"elements":[], "remark": "runtime error: Query timed out"}"#,
                None
            )
            .is_err()
        );
        assert!(parse_pois(br#"{"elements":[{"type":"node""#, None).is_err());

        let roads = br#"{"elements":[
            {"type":"way","id":7,"nodes":[1,2],"tags":{"highway":"residential"}},
            {"type":"way","id":3,"nodes":[2,1],"tags":{"highway":"service","oneway":"yes"}},
            {"type":"node","id":1,"lat":38.9,"lon":-77.0},
            {"type":"node","id":2,"lat":38.91,"lon":-77.0}]}"#;
        let r = parse_roads(roads).unwrap();
        assert_eq!(r.ways.iter().map(|w| w.id).collect::<Vec<_>>(), [3, 7]);
        assert_eq!(r.ways[0].tag("oneway"), Some("yes"));
        assert_eq!(r.nodes[&2], (-77.0, 38.91));
        let cut = br#"{"elements":[{"type":"way","id":7,"nodes":[1,2],"tags":{"highway":"x"}},
            {"type":"node","id":1,"lat":38.9,"lon":-77.0}]}"#;
        assert!(parse_roads(cut).unwrap_err().contains("node 2"));
    }

    #[test]
    fn tiles_cover_a_projected_box() {
        let c = crate::geom::albers::to_5070(-77.03, 38.9);
        let want = Rect::new(
            geo::Coord {
                x: c.x - 5_000.0,
                y: c.y - 5_000.0,
            },
            geo::Coord {
                x: c.x + 5_000.0,
                y: c.y + 5_000.0,
            },
        );
        let tiles = tiles_covering(&want);
        // ±5 km is ±0.058° of longitude and ±0.045° of latitude at 38.9° N.
        let is: BTreeSet<i32> = tiles.iter().map(|t| t.i).collect();
        let js: BTreeSet<i32> = tiles.iter().map(|t| t.j).collect();
        assert_eq!(is.into_iter().collect::<Vec<_>>(), [-771, -770]);
        assert_eq!(js.into_iter().collect::<Vec<_>>(), [388, 389]);
        assert_eq!(
            RoadTile { i: -771, j: 389 }.bounds(),
            [38.9, -77.1, 39.0, -77.0]
        );
    }
}
