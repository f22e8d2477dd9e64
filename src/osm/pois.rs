//! POIs selected by an OSM tag, read offline from a `.osm.pbf` (the original asked Overpass for
//! `nwr[key=value]; out center;`).
//!
//! Nodes are placed at their own position; ways at the centroid of their nodes, computed in
//! EPSG:5070 (equal-area, so an area centroid there is a true area centroid up to the tiny
//! projection curvature). Relations are not read: multipolygon POIs (some large parks, campus
//! buildings) are therefore missing, where the original placed them at Overpass's bounding-box
//! center.

use super::pbf::{for_each_block, read_node_coords};
use crate::Result;
use crate::geom::albers::{from_5070, to_5070};
use crate::types::Poi;
use geo::Coord;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Which tag a POI must carry: a key with any value, or a key with one of several values.
///
/// Written `key`, `key=*` (any value), `key=value` or `key=value1|value2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagFilter {
    key: String,
    /// `None` for any value.
    values: Option<Vec<String>>,
}

impl TagFilter {
    /// Parses `amenity`, `amenity=*`, `amenity=library` or `amenity=library|school`
    /// (whitespace around parts is ignored).
    ///
    /// # Errors
    /// A message naming the problem for an empty filter, an empty key, an empty value or
    /// alternative, or a `*` mixed into alternatives.
    ///
    /// ```
    /// use socialmapper::osm::pois::TagFilter;
    /// let f = TagFilter::parse("amenity=library|school").unwrap();
    /// assert!(f.matches("amenity", "school") && !f.matches("amenity", "cafe"));
    /// assert!(TagFilter::parse("amenity=").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty tag filter (expected key, key=value or key=v1|v2)".to_owned());
        }
        let (key, value) = match s.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (s, None),
        };
        if key.is_empty() {
            return Err(format!("tag filter {s:?} has no key before '='"));
        }
        let values = match value {
            None | Some("*") => None,
            Some("") => {
                return Err(format!(
                    "tag filter {s:?} has no value after '=' (use {key:?} or \"{key}=*\" for any value)"
                ));
            }
            Some(v) => {
                let alts: Vec<String> = v.split('|').map(|a| a.trim().to_owned()).collect();
                if alts.iter().any(String::is_empty) {
                    return Err(format!("tag filter {s:?} has an empty alternative"));
                }
                if alts.iter().any(|a| a == "*") {
                    return Err(format!(
                        "tag filter {s:?} mixes '*' with values (use \"{key}=*\" for any value)"
                    ));
                }
                Some(alts)
            }
        };
        Ok(TagFilter {
            key: key.to_owned(),
            values,
        })
    }

    /// The tag key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The accepted values, or `None` when any value is accepted.
    pub fn values(&self) -> Option<&[String]> {
        self.values.as_deref()
    }

    /// Whether the tag `key=value` passes the filter.
    pub fn matches(&self, key: &str, value: &str) -> bool {
        key == self.key
            && self
                .values
                .as_ref()
                .is_none_or(|vs| vs.iter().any(|v| v == value))
    }

    /// Whether any of `tags` passes the filter.
    fn matches_any<'a>(&self, mut tags: impl Iterator<Item = (&'a str, &'a str)>) -> bool {
        tags.any(|(k, v)| self.matches(k, v))
    }
}

impl FromStr for TagFilter {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        TagFilter::parse(s)
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.values {
            None => write!(f, "{}=*", self.key),
            Some(vs) => write!(f, "{}={}", self.key, vs.join("|")),
        }
    }
}

/// A tagged way found in pass 1, waiting for its node coordinates.
struct TaggedWay {
    id: i64,
    nodes: Vec<i64>,
    tags: BTreeMap<String, String>,
}

#[derive(Default)]
struct Found {
    nodes: Vec<Poi>,
    ways: Vec<TaggedWay>,
}

fn collect_tags<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> BTreeMap<String, String> {
    tags.map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// Every node and way of the PBF at `path` that carries a tag passing `filter`, as POIs
/// sorted by kind (`node` before `way`) and OSM id.
///
/// - `id` and `source` are `node/<id>` or `way/<id>`; `kind` is `node` or `way`.
/// - `name` is the `name` tag, else `poi_<osm id>` (the original's `poi_name` rule).
/// - `tags` holds all the element's OSM tags; `state` is `None`.
/// - Ways are placed at the area centroid of their ring when closed and not degenerate,
///   else at the length-weighted centroid of their line. Ways none of whose nodes are in the
///   file are skipped, with a warning.
///
/// # Errors
/// [`crate::Error::Input`] naming `path` when it is missing, not an OSM PBF or corrupt.
pub fn pois_by_tag(path: &Path, filter: &TagFilter) -> Result<Vec<Poi>> {
    let parts = for_each_block(path, Found::default, |found: &mut Found, block| {
        for group in block.groups() {
            for n in group.dense_nodes() {
                if filter.matches_any(n.tags()) {
                    found
                        .nodes
                        .push(node_poi(n.id(), n.lon(), n.lat(), collect_tags(n.tags())));
                }
            }
            for n in group.nodes() {
                if filter.matches_any(n.tags()) {
                    found
                        .nodes
                        .push(node_poi(n.id(), n.lon(), n.lat(), collect_tags(n.tags())));
                }
            }
            for w in group.ways() {
                if filter.matches_any(w.tags()) {
                    found.ways.push(TaggedWay {
                        id: w.id(),
                        nodes: w.refs().collect(),
                        tags: collect_tags(w.tags()),
                    });
                }
            }
        }
    })?;
    let mut pois = Vec::new();
    let mut ways = Vec::new();
    for f in parts {
        pois.extend(f.nodes);
        ways.extend(f.ways);
    }

    if !ways.is_empty() {
        let mut wanted: Vec<i64> = ways.iter().flat_map(|w| w.nodes.iter().copied()).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let coords = read_node_coords(path, &wanted)?;
        let mut skipped = 0usize;
        for w in ways {
            let present: Vec<Coord<f64>> = w
                .nodes
                .iter()
                .filter_map(|n| coords.get(n).map(|&(lon, lat)| to_5070(lon, lat)))
                .collect();
            if present.is_empty() {
                skipped += 1;
                continue;
            }
            let closed = w.nodes.len() >= 4
                && w.nodes.first() == w.nodes.last()
                && present.len() == w.nodes.len();
            let (lon, lat) = from_5070(centroid(&present, closed));
            let name = w
                .tags
                .get("name")
                .cloned()
                .unwrap_or_else(|| format!("poi_{}", w.id));
            let id = format!("way/{}", w.id);
            pois.push(Poi {
                id: id.clone(),
                name,
                kind: "way".to_owned(),
                lon,
                lat,
                state: None,
                tags: w.tags,
                source: id,
            });
        }
        if skipped > 0 {
            tracing::warn!(
                file = %path.display(),
                %filter,
                ways = skipped,
                "tagged ways skipped: none of their nodes are in the extract"
            );
        }
    }

    // Parallel decoding returns blocks in varying order.
    pois.sort_by_cached_key(|p| (p.kind.clone(), osm_id(&p.id)));
    Ok(pois)
}

fn node_poi(id: i64, lon: f64, lat: f64, tags: BTreeMap<String, String>) -> Poi {
    let name = tags
        .get("name")
        .cloned()
        .unwrap_or_else(|| format!("poi_{id}"));
    let id = format!("node/{id}");
    Poi {
        id: id.clone(),
        name,
        kind: "node".to_owned(),
        lon,
        lat,
        state: None,
        tags,
        source: id,
    }
}

/// The numeric part of `node/123` / `way/456`.
fn osm_id(id: &str) -> i64 {
    id.rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Centroid of a way's projected points: the area centroid when `closed` (first point repeated
/// last) and the ring encloses a non-negligible area, else the length-weighted centroid of the
/// polyline, else (all points equal) the first point.
fn centroid(pts: &[Coord<f64>], closed: bool) -> Coord<f64> {
    // Work relative to the first point: 5070 coordinates are ~10⁶ m, and products of such
    // numbers would lose the centimetres that small buildings are made of.
    let o = pts[0];
    let rel: Vec<Coord<f64>> = pts
        .iter()
        .map(|p| Coord {
            x: p.x - o.x,
            y: p.y - o.y,
        })
        .collect();
    if closed {
        let (mut a2, mut cx, mut cy) = (0.0, 0.0, 0.0);
        let (mut lo, mut hi) = (rel[0], rel[0]);
        for w in rel.windows(2) {
            let cross = w[0].x * w[1].y - w[1].x * w[0].y;
            a2 += cross;
            cx += (w[0].x + w[1].x) * cross;
            cy += (w[0].y + w[1].y) * cross;
            lo = Coord {
                x: lo.x.min(w[1].x),
                y: lo.y.min(w[1].y),
            };
            hi = Coord {
                x: hi.x.max(w[1].x),
                y: hi.y.max(w[1].y),
            };
        }
        let extent = (hi.x - lo.x).max(hi.y - lo.y);
        if a2.abs() > 1e-9 * extent * extent && a2 != 0.0 {
            return Coord {
                x: o.x + cx / (3.0 * a2),
                y: o.y + cy / (3.0 * a2),
            };
        }
    }
    let (mut len, mut cx, mut cy) = (0.0, 0.0, 0.0);
    for w in rel.windows(2) {
        let l = (w[1].x - w[0].x).hypot(w[1].y - w[0].y);
        len += l;
        cx += l * (w[0].x + w[1].x) * 0.5;
        cy += l * (w[0].y + w[1].y) * 0.5;
    }
    if len > 0.0 {
        Coord {
            x: o.x + cx / len,
            y: o.y + cy / len,
        }
    } else {
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::osm::pbf::test_data;

    #[test]
    fn parse_filters() {
        let f = TagFilter::parse("amenity=library").expect("parse");
        assert_eq!(
            (f.key(), f.values()),
            ("amenity", Some(&["library".to_owned()][..]))
        );
        assert!(f.matches("amenity", "library"));
        assert!(!f.matches("amenity", "school"));
        assert!(!f.matches("shop", "library"));
        for any in ["amenity", "amenity=*", " amenity = * ", "amenity "] {
            let f = TagFilter::parse(any).expect(any);
            assert_eq!((f.key(), f.values()), ("amenity", None), "{any}");
            assert!(f.matches("amenity", "anything") && !f.matches("leisure", "park"));
            assert_eq!(f.to_string(), "amenity=*");
        }
        let f: TagFilter = "amenity = library | school".parse().expect("parse");
        assert_eq!(f.values().expect("values"), ["library", "school"]);
        assert!(f.matches("amenity", "school") && f.matches("amenity", "library"));
        assert!(!f.matches("amenity", "library|school"));
        assert_eq!(f.to_string(), "amenity=library|school");
        // A value may itself contain '=' (only the first one splits).
        assert_eq!(
            TagFilter::parse("ref=a=b")
                .expect("parse")
                .values()
                .expect("v"),
            ["a=b"]
        );
        for bad in [
            "",
            "  ",
            "=library",
            "amenity=",
            "amenity=library|",
            "amenity=|school",
            "a=b||c",
            "amenity=*|school",
        ] {
            let e = TagFilter::parse(bad).expect_err(bad);
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn centroids() {
        let c = |x, y| Coord { x, y };
        // A 100 × 50 rectangle far from the origin, closed: its centre.
        let o = (1_600_000.0, 1_900_000.0);
        let sq = [
            c(o.0, o.1),
            c(o.0 + 100.0, o.1),
            c(o.0 + 100.0, o.1 + 50.0),
            c(o.0, o.1 + 50.0),
            c(o.0, o.1),
        ];
        let m = centroid(&sq, true);
        assert!(
            (m.x - (o.0 + 50.0)).abs() < 1e-6 && (m.y - (o.1 + 25.0)).abs() < 1e-6,
            "{m:?}"
        );
        // The same ring in the other orientation.
        let mut rev = sq;
        rev.reverse();
        let m = centroid(&rev, true);
        assert!((m.x - (o.0 + 50.0)).abs() < 1e-6 && (m.y - (o.1 + 25.0)).abs() < 1e-6);
        // An L-shaped area: not the vertex average. Squares [0,2]×[0,1] and [0,1]×[1,2]:
        // area 3, centroid ((2·1 + 1·0.5)/3, (2·0.5 + 1·1.5)/3) = (5/6, 5/6).
        let l = [
            c(0.0, 0.0),
            c(2.0, 0.0),
            c(2.0, 1.0),
            c(1.0, 1.0),
            c(1.0, 2.0),
            c(0.0, 2.0),
            c(0.0, 0.0),
        ];
        let m = centroid(&l, true);
        assert!(
            (m.x - 5.0 / 6.0).abs() < 1e-12 && (m.y - 5.0 / 6.0).abs() < 1e-12,
            "{m:?}"
        );
        // Open line: length-weighted, 100 m east then 300 m north → (12.5 + ... ) check.
        let line = [c(0.0, 0.0), c(100.0, 0.0), c(100.0, 300.0)];
        let m = centroid(&line, false);
        assert!((m.x - (100.0 * 50.0 + 300.0 * 100.0) / 400.0).abs() < 1e-9);
        assert!((m.y - (300.0 * 150.0) / 400.0).abs() < 1e-9);
        // Degenerate closed ring (there and back): falls back to the line centroid.
        let flat = [c(0.0, 0.0), c(10.0, 0.0), c(20.0, 0.0), c(0.0, 0.0)];
        let m = centroid(&flat, true);
        assert!((m.x - 10.0).abs() < 1e-9 && m.y.abs() < 1e-9, "{m:?}");
        // A single point, or repeats of one.
        assert_eq!(centroid(&[c(5.0, 6.0)], false), c(5.0, 6.0));
        assert_eq!(centroid(&[c(5.0, 6.0), c(5.0, 6.0)], true), c(5.0, 6.0));
    }

    #[test]
    fn baltimore_libraries() {
        let f = TagFilter::parse("amenity=library").expect("parse");
        let pois = pois_by_tag(&test_data("osm_more/baltimore_md.osm.pbf"), &f).expect("read");
        // README: 6 libraries; all are nodes in this extract.
        assert_eq!(pois.len(), 6);
        assert!(pois.iter().all(|p| p.kind == "node"));
        let p = &pois[0];
        assert_eq!(p.id, "node/367797601");
        assert_eq!(p.name, "Patterson Park Branch Enoch Pratt Free Library");
        assert!((p.lat - 39.2942739).abs() < 1e-7 && (p.lon - -76.5769101).abs() < 1e-7);
        assert!(
            pois.iter()
                .all(|p| p.tags.get("amenity").map(String::as_str) == Some("library"))
        );
        assert!(pois.iter().all(|p| p.source == p.id && p.state.is_none()));
        let keys: Vec<(String, i64)> = pois
            .iter()
            .map(|p| (p.kind.clone(), osm_id(&p.id)))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
    }

    #[test]
    fn baltimore_schools_and_parks_include_ways() {
        let path = test_data("osm_more/baltimore_md.osm.pbf");
        let count = |f: &str| {
            let pois = pois_by_tag(&path, &TagFilter::parse(f).expect("parse")).expect("read");
            let ways = pois.iter().filter(|p| p.kind == "way").count();
            (pois.len(), ways, pois)
        };
        // README: 54 schools (the nodes) and about 60 parks.
        let (n, w, _) = count("amenity=school");
        assert_eq!((n, w), (73, 19));
        let (n, w, parks) = count("leisure=park");
        assert_eq!((n, w), (60, 52));
        let unnamed = parks
            .iter()
            .find(|p| !p.tags.contains_key("name"))
            .expect("unnamed");
        assert_eq!(unnamed.name, format!("poi_{}", osm_id(&unnamed.id)));

        // Patterson Park (a closed way) sits at its area centroid: check against geo's.
        let park = parks
            .iter()
            .find(|p| p.id == "way/49664223")
            .expect("Patterson Park");
        assert_eq!(
            (park.name.as_str(), park.kind.as_str()),
            ("Patterson Park", "way")
        );
        let refs = for_each_block(&path, Vec::new, |acc: &mut Vec<i64>, block| {
            for g in block.groups() {
                for w in g.ways().filter(|w| w.id() == 49664223) {
                    acc.extend(w.refs());
                }
            }
        })
        .expect("read")
        .concat();
        assert!(
            refs.len() >= 4 && refs.first() == refs.last(),
            "closed ring"
        );
        let mut wanted = refs.clone();
        wanted.sort_unstable();
        wanted.dedup();
        let coords = read_node_coords(&path, &wanted).expect("nodes");
        let ring: Vec<Coord<f64>> = refs
            .iter()
            .map(|n| {
                let (lon, lat) = coords[n];
                to_5070(lon, lat)
            })
            .collect();
        use geo::Centroid;
        let expected = geo::Polygon::new(geo::LineString(ring), vec![])
            .centroid()
            .expect("area");
        let (lon, lat) = from_5070(expected.0);
        assert!((park.lon - lon).abs() < 1e-9 && (park.lat - lat).abs() < 1e-9);
        // Roughly the middle of the park (39.2889 N, 76.5793 W).
        assert!((park.lat - 39.2889).abs() < 5e-4 && (park.lon - -76.5793).abs() < 5e-4);
    }

    #[test]
    fn dc_nodes_from_pois_csv() {
        let path = test_data("dc/roads.osm.pbf");
        let f = TagFilter::parse("leisure=hackerspace").expect("parse");
        let pois = pois_by_tag(&path, &f).expect("read");
        assert_eq!(pois.len(), 1);
        let p = &pois[0];
        assert_eq!(
            (p.id.as_str(), p.kind.as_str(), p.name.as_str()),
            ("node/426993011", "node", "HacDC")
        );
        assert!((p.lat - 38.9336155).abs() < 1e-7 && (p.lon - -77.0359882).abs() < 1e-7);
        assert_eq!(
            p.tags.get("leisure").map(String::as_str),
            Some("hackerspace")
        );

        let f = TagFilter::parse("railway=station").expect("parse");
        let pois = pois_by_tag(&path, &f).expect("read");
        let dupont = pois
            .iter()
            .find(|p| p.id == "node/738182031")
            .expect("Dupont Circle");
        assert_eq!(dupont.name, "Dupont Circle");
        assert!((dupont.lat - 38.9097773).abs() < 1e-7 && (dupont.lon - -77.0435238).abs() < 1e-7);
    }

    #[test]
    fn missing_file_is_an_input_error() {
        let f = TagFilter::parse("amenity").expect("parse");
        let p = Path::new("/nonexistent/x.osm.pbf");
        assert!(matches!(pois_by_tag(p, &f), Err(Error::Input { path, .. }) if path == p));
    }
}
