//! Reading POIs from CSV (the original's custom-coordinates form), GeoJSON and JSON.
//!
//! Every input record ends up in exactly one of [`PoiInput::pois`] or [`PoiInput::rejects`]:
//! a record with bad coordinates, the wrong shape or an id already used is a [`Reject`] with a
//! one-line reason, never an error. Only a file that cannot be read at all (missing, not UTF-8,
//! not CSV/JSON, no coordinate columns) is an [`Error::Input`].
//!
//! Defaults follow the original tool (`parse_custom_coordinates`): a record without an id gets
//! `custom_{i}`, without a name `Custom POI {i}`, without a type `custom`, where `i` is the
//! 0-based index of the record among the file's data records (CSV: non-blank rows after the
//! header, rejected rows included; JSON: list elements; GeoJSON: features). Ids must be unique
//! within a file: the first record with an id is kept and later ones are rejected.
//!
//! Differences from the original, all deliberate: fields are trimmed; an *empty* id, name,
//! type or state cell counts as absent (the original would keep the empty string, giving a POI
//! named ""); a state that is neither two letters nor a state name stays in the tags instead
//! of becoming a state; rows with missing or bad coordinates are reported as rejects instead
//! of a log warning.

mod csv_file;
mod json;

use crate::error::{Error, Result};
use crate::types::{Poi, Reject};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;
use std::str::FromStr;

/// The POIs read from one input, and the records that were rejected.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PoiInput {
    /// Accepted POIs, in input order, with unique ids.
    pub pois: Vec<Poi>,
    /// Rejected records, in input order.
    pub rejects: Vec<Reject>,
    /// Number of input records: always `pois.len() + rejects.len()`.
    pub records: usize,
}

/// The layout of a POI file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PoiFormat {
    /// Comma-separated values with a header row (the original's custom-coordinates CSV).
    Csv,
    /// A GeoJSON FeatureCollection (or a single Feature) of Point features.
    GeoJson,
    /// A JSON list of objects with `lat`/`lon`, or `{"pois": [...]}`.
    Json,
}

impl PoiFormat {
    /// The format implied by a file name's extension (`.csv`, `.txt`, `.geojson`, `.json`,
    /// case-insensitive), or `None` when the extension says nothing.
    pub fn from_path(path: &Path) -> Option<PoiFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "txt" => Some(PoiFormat::Csv),
            "geojson" => Some(PoiFormat::GeoJson),
            "json" => Some(PoiFormat::Json),
            _ => None,
        }
    }

    /// Guesses the format from the text: JSON when the first non-blank character opens an
    /// object or array (GeoJSON when a `Feature`/`FeatureCollection` type shows up near the
    /// start), CSV otherwise.
    pub fn sniff(text: &str) -> PoiFormat {
        let body = text.strip_prefix('\u{feff}').unwrap_or(text).trim_start();
        if !(body.starts_with('{') || body.starts_with('[')) {
            return PoiFormat::Csv;
        }
        // Only the head is looked at, so sniffing a huge file stays O(1).
        let mut end = body.len().min(4096);
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        let head = &body[..end];
        if body.starts_with('{')
            && (head.contains("\"FeatureCollection\"") || head.contains("\"Feature\""))
        {
            PoiFormat::GeoJson
        } else {
            PoiFormat::Json
        }
    }

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            PoiFormat::Csv => "csv",
            PoiFormat::GeoJson => "geojson",
            PoiFormat::Json => "json",
        }
    }
}

impl fmt::Display for PoiFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PoiFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "csv" => Ok(PoiFormat::Csv),
            "geojson" => Ok(PoiFormat::GeoJson),
            "json" => Ok(PoiFormat::Json),
            other => Err(format!(
                "unknown POI format {other:?} (expected csv, geojson or json)"
            )),
        }
    }
}

/// Reads the POIs of `path`. The format comes from the extension, or from the content when
/// the extension is missing or unknown (see [`PoiFormat::sniff`]). A `.json` file holding a
/// GeoJSON FeatureCollection is read as GeoJSON.
///
/// Errors (all [`Error::Input`] naming the file): the file cannot be read, is not UTF-8, is
/// not valid JSON, or is a CSV without a latitude or longitude column.
pub fn read_pois(path: &Path) -> Result<PoiInput> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let text = decode_utf8(&bytes).map_err(|cause| Error::input(path, cause))?;
    let format = PoiFormat::from_path(path).unwrap_or_else(|| PoiFormat::sniff(text));
    parse(text, format, path)
}

/// Parses POIs from `text` (for tests and standard input). `origin` names the input in
/// errors, as a path would. A leading UTF-8 byte-order mark is ignored.
pub fn parse_pois_str(text: &str, format: PoiFormat, origin: &str) -> Result<PoiInput> {
    parse(text, format, Path::new(origin))
}

fn parse(text: &str, format: PoiFormat, origin: &Path) -> Result<PoiInput> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match format {
        PoiFormat::Csv => csv_file::parse_csv(text, origin),
        PoiFormat::GeoJson | PoiFormat::Json => json::parse_json(text, origin),
    }
}

/// Validates UTF-8 and drops a byte-order mark; the error says where the bad byte is, because
/// "not UTF-8" alone does not help anyone find a Latin-1 character in a million-row file.
fn decode_utf8(bytes: &[u8]) -> Result<&str, String> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        format!(
            "not valid UTF-8: invalid byte 0x{:02x} at line {line} (byte offset {at}); save the file as UTF-8",
            bytes[at]
        )
    })
}

/// Column names (lower case) that may hold each field, best first, as in the original.
const LAT_NAMES: [&str; 3] = ["lat", "latitude", "y"];
const LON_NAMES: [&str; 4] = ["lon", "lng", "longitude", "x"];
const ID_NAMES: [&str; 4] = ["id", "poi_id", "osm_id", "osm_node_id"];

/// One input record, after the format-specific parsing and before validation.
struct Candidate {
    /// `line N`, `feature N`, `record N`.
    source: String,
    /// 0-based index among the input's records, for the default id and name.
    index: usize,
    /// The record's own id (non-empty), if any.
    id: Option<String>,
    name: Option<String>,
    kind: Option<String>,
    state: Option<String>,
    tags: BTreeMap<String, String>,
    lat: Result<f64, String>,
    lon: Result<f64, String>,
}

/// Accumulates accepted POIs and rejects, enforcing unique ids.
#[derive(Default)]
struct Collector {
    out: PoiInput,
    /// The ids taken so far.
    ids: IdIndex,
}

/// Which ids are taken, without a second copy of every id string: a table from a 64-bit hash
/// of the id to the POI holding it, confirmed against that POI's id on a hit. On millions of
/// POIs this halves the allocations of a `HashMap<String, _>` and skips SipHash.
#[derive(Default)]
struct IdIndex {
    by_hash: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
    /// Ids whose hash was already taken by a different id (practically never happens).
    collided: HashMap<String, usize>,
}

impl IdIndex {
    /// The index of the POI already holding `id`; otherwise records `id` as held by POI
    /// `next` and returns `None`.
    fn claim(&mut self, id: &str, next: usize, pois: &[Poi]) -> Option<usize> {
        match self.by_hash.entry(hash_id(id)) {
            Entry::Vacant(e) => {
                e.insert(next);
                None
            }
            Entry::Occupied(e) if pois[*e.get()].id == id => Some(*e.get()),
            Entry::Occupied(_) => match self.collided.entry(id.to_string()) {
                Entry::Occupied(e) => Some(*e.get()),
                Entry::Vacant(e) => {
                    e.insert(next);
                    None
                }
            },
        }
    }
}

/// FxHash-style mixing of the id's bytes, finished with the splitmix64 finalizer so that the
/// low bits the table indexes by are well spread even for ids like "1", "2", "3".
fn hash_id(id: &str) -> u64 {
    let mut h = id.len() as u64;
    for chunk in id.as_bytes().chunks(8) {
        let mut word = [0u8; 8];
        word[..chunk.len()].copy_from_slice(chunk);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in rather than panic.
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Collector {
    /// Records a reject for a record that never became a candidate.
    fn reject(&mut self, source: String, id: Option<String>, reason: String) {
        self.out.records += 1;
        self.out.rejects.push(Reject { source, id, reason });
    }

    /// Validates a candidate's coordinates and id, then keeps it as a POI or rejects it.
    fn offer(&mut self, c: Candidate) {
        self.out.records += 1;
        let (lat, lon) = match (c.lat, c.lon) {
            (Ok(lat), Ok(lon)) => (lat, lon),
            (lat, lon) => {
                // Report both coordinates' problems at once, so one fix round is enough.
                let reason = [lat.err(), lon.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                self.out.rejects.push(Reject {
                    source: c.source,
                    id: c.id,
                    reason,
                });
                return;
            }
        };
        let id = c.id.unwrap_or_else(|| format!("custom_{}", c.index));
        let next = self.out.pois.len();
        if let Some(first) = self.ids.claim(&id, next, &self.out.pois) {
            let reason = format!(
                "duplicate id {id} (first at {})",
                self.out.pois[first].source
            );
            let (source, id) = (c.source, Some(id));
            self.out.rejects.push(Reject { source, id, reason });
            return;
        }
        self.out.pois.push(Poi {
            id,
            name: c.name.unwrap_or_else(|| format!("Custom POI {}", c.index)),
            kind: c.kind.unwrap_or_else(|| "custom".to_string()),
            lon,
            lat,
            state: c.state,
            tags: c.tags,
            source: c.source,
        });
    }
}

/// Trimmed text, or `None` when empty.
fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// US states, DC and Puerto Rico: (name in lower case, USPS code).
#[rustfmt::skip]
const STATES: [(&str, &str); 52] = [
    ("alabama", "AL"), ("alaska", "AK"), ("arizona", "AZ"), ("arkansas", "AR"),
    ("california", "CA"), ("colorado", "CO"), ("connecticut", "CT"), ("delaware", "DE"),
    ("district of columbia", "DC"), ("florida", "FL"), ("georgia", "GA"), ("hawaii", "HI"),
    ("idaho", "ID"), ("illinois", "IL"), ("indiana", "IN"), ("iowa", "IA"), ("kansas", "KS"),
    ("kentucky", "KY"), ("louisiana", "LA"), ("maine", "ME"), ("maryland", "MD"),
    ("massachusetts", "MA"), ("michigan", "MI"), ("minnesota", "MN"), ("mississippi", "MS"),
    ("missouri", "MO"), ("montana", "MT"), ("nebraska", "NE"), ("nevada", "NV"),
    ("new hampshire", "NH"), ("new jersey", "NJ"), ("new mexico", "NM"), ("new york", "NY"),
    ("north carolina", "NC"), ("north dakota", "ND"), ("ohio", "OH"), ("oklahoma", "OK"),
    ("oregon", "OR"), ("pennsylvania", "PA"), ("puerto rico", "PR"), ("rhode island", "RI"),
    ("south carolina", "SC"), ("south dakota", "SD"), ("tennessee", "TN"), ("texas", "TX"),
    ("utah", "UT"), ("vermont", "VT"), ("virginia", "VA"), ("washington", "WA"),
    ("west virginia", "WV"), ("wisconsin", "WI"), ("wyoming", "WY"),
];

/// Normalizes a state field to a two-letter code: two letters are upper-cased, a full name
/// (`North Carolina`) becomes its code, as the original normalizes. Anything else (the
/// trailhead data says `Unknown` for 1,560 rows) cannot be a state: it is returned as the
/// `Err` text so the caller keeps it as a `state` tag instead of inventing a state `UNKNOWN`.
fn state_of(raw: &str) -> Result<Option<String>, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    if t.len() == 2 && t.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(Some(t.to_ascii_uppercase()));
    }
    let lower = t.to_lowercase();
    match STATES.iter().find(|(name, _)| *name == lower) {
        Some((_, code)) => Ok(Some(code.to_string())),
        None => Err(t.to_string()),
    }
}

/// Applies [`state_of`]: the state, with an unrecognised value kept in `tags["state"]`.
fn take_state(raw: &str, tags: &mut BTreeMap<String, String>) -> Option<String> {
    state_of(raw).unwrap_or_else(|other| {
        tags.insert("state".to_string(), other);
        None
    })
}

/// Parses a latitude (`limit` 90) or longitude (`limit` 180) written as text.
fn coord_from_text(what: &str, text: &str, limit: f64) -> Result<f64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(format!("{what} is empty"));
    }
    let v: f64 = t
        .parse()
        .map_err(|_| format!("{what} '{t}' is not a number"))?;
    check_coord(what, t, v, limit)
}

/// Checks a parsed coordinate; `shown` is how the input wrote it.
fn check_coord(what: &str, shown: &str, v: f64, limit: f64) -> Result<f64, String> {
    if !v.is_finite() {
        Err(format!("{what} '{shown}' is not a finite number"))
    } else if v.abs() > limit {
        Err(format!(
            "{what} '{shown}' is out of range [-{limit}, {limit}]"
        ))
    } else {
        Ok(v)
    }
}

#[cfg(test)]
mod tests;
