//! Reading POIs from CSV (the original's custom-coordinates form), GeoJSON and JSON.
//!
//! [`open_pois`] streams the records of a file (CSV in memory independent of its size, see
//! [`PoiStream`]); [`read_pois`] collects that stream; [`pois_at`] fetches chosen records again.
//!
//! Every input record ends up in exactly one of [`PoiInput::pois`] or [`PoiInput::rejects`]:
//! a record with bad coordinates, the wrong shape or an id already used is a [`Reject`] with a
//! one-line reason, never an error. Only a file that cannot be read at all (missing, not UTF-8,
//! not CSV/JSON, no coordinate columns) is an [`Error::Input`](crate::Error::Input).
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
mod stream;

pub use stream::{PoiRecord, PoiStream, open_pois, pois_at};

use crate::error::Result;
use crate::types::{Poi, Reject};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, DefaultHasher, Hash, Hasher};
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
/// Errors (all [`Error::Input`](crate::Error::Input) naming the file): the file cannot be
/// read, is not UTF-8, is not valid JSON, or is a CSV without a latitude or longitude column.
///
/// This collects [`open_pois`]'s stream; for inputs too big to hold, read that stream instead.
pub fn read_pois(path: &Path) -> Result<PoiInput> {
    collect(open_pois(path)?)
}

/// Parses POIs from `text` (for tests and standard input). `origin` names the input in
/// errors, as a path would. A leading UTF-8 byte-order mark is ignored.
pub fn parse_pois_str(text: &str, format: PoiFormat, origin: &str) -> Result<PoiInput> {
    let reader = std::io::Cursor::new(text.as_bytes().to_vec());
    collect(PoiStream::from_reader(reader, format, Path::new(origin))?)
}

/// Gathers a whole stream: accepted POIs and rejects, each in input order.
fn collect(stream: PoiStream) -> Result<PoiInput> {
    let mut out = PoiInput::default();
    for record in stream {
        let (_, outcome) = record?;
        out.records += 1;
        match outcome {
            Ok(poi) => out.pois.push(poi),
            Err(reject) => out.rejects.push(reject),
        }
    }
    Ok(out)
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

/// Where a record sits in its input, kept as a number until it is shown: the duplicate-id
/// table stores it in 8 bytes instead of a string per POI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Origin {
    /// A CSV record starting on this 1-based physical line.
    Line(u64),
    /// The N-th (1-based) element of a JSON list.
    Record(u64),
    /// The N-th (1-based) GeoJSON feature.
    Feature(u64),
}

impl Origin {
    /// The kind in the top two bits, the number below.
    fn pack(self) -> u64 {
        let (kind, n) = match self {
            Origin::Line(n) => (0, n),
            Origin::Record(n) => (1, n),
            Origin::Feature(n) => (2, n),
        };
        (kind << 62) | (n & (u64::MAX >> 2))
    }

    fn unpack(packed: u64) -> Origin {
        let n = packed & (u64::MAX >> 2);
        match packed >> 62 {
            0 => Origin::Line(n),
            1 => Origin::Record(n),
            _ => Origin::Feature(n),
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(n) => write!(f, "line {n}"),
            Origin::Record(n) => write!(f, "record {n}"),
            Origin::Feature(n) => write!(f, "feature {n}"),
        }
    }
}

/// One input record, after the format-specific parsing and before validation.
struct Candidate {
    /// `line N`, `feature N`, `record N`.
    origin: Origin,
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

/// What became of one input record.
type Outcome = std::result::Result<Poi, Reject>;

/// A reject for a record that never became a candidate.
fn rejected(origin: Origin, id: Option<String>, reason: String) -> Outcome {
    Err(Reject {
        source: origin.to_string(),
        id,
        reason,
    })
}

/// Turns candidates into POIs or rejects, enforcing unique ids. Its memory is the id table:
/// about 25 bytes per accepted POI (see [`IdIndex`]), whatever the ids' length.
#[derive(Default)]
struct Admit {
    ids: IdIndex,
}

impl Admit {
    /// Validates a candidate's coordinates and id: a POI, or a reject with the reason.
    fn offer(&mut self, c: Candidate) -> Outcome {
        let (lat, lon) = match (c.lat, c.lon) {
            (Ok(lat), Ok(lon)) => (lat, lon),
            (lat, lon) => {
                // Report both coordinates' problems at once, so one fix round is enough.
                let reason = [lat.err(), lon.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("; ");
                return rejected(c.origin, c.id, reason);
            }
        };
        let id = c.id.unwrap_or_else(|| format!("custom_{}", c.index));
        if let Some(first) = self.ids.claim(&id, c.origin) {
            let reason = format!("duplicate id {id} (first at {first})");
            return rejected(c.origin, Some(id), reason);
        }
        Ok(Poi {
            id,
            name: c.name.unwrap_or_else(|| format!("Custom POI {}", c.index)),
            kind: c.kind.unwrap_or_else(|| "custom".to_string()),
            lon,
            lat,
            state: c.state,
            tags: c.tags,
            source: c.origin.to_string(),
        })
    }
}

/// Which ids are taken, without keeping any id string: a table from a 128-bit hash of the id
/// to where its first POI was (for the reject's "first at"). An entry is 24 bytes (16 of
/// hash, 8 of packed [`Origin`]) plus the table's control byte and slack, so a million POIs
/// cost 25-50 MB at most whatever their ids look like.
///
/// The hash is two SipHash-1-3 values (std's `DefaultHasher`, fixed keys) of the id behind
/// two different prefixes. Two different ids share both only by accident, with odds of about
/// n²/2¹²⁹ that any pair among n ids does: 1.5·10⁻²⁵ for ten million ids. Such a collision
/// would reject the later POI as a duplicate; nothing else can go wrong.
#[derive(Default)]
struct IdIndex {
    first: HashMap<IdKey, u64, BuildHasherDefault<PassThrough>>,
}

/// A 128-bit id hash as two words (not `u128`, whose 16-byte alignment would pad an entry to
/// 32 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
struct IdKey(u64, u64);

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Already a hash: the table indexes by the first word as it is.
        state.write_u64(self.0);
    }
}

impl IdKey {
    fn of(id: &str) -> IdKey {
        let half = |prefix: u8| {
            let mut h = DefaultHasher::new();
            h.write_u8(prefix);
            h.write(id.as_bytes());
            h.finish()
        };
        IdKey(half(0x5a), half(0xa5))
    }
}

impl IdIndex {
    /// Where the POI already holding `id` was; otherwise records `id` as held by the POI at
    /// `origin` and returns `None`.
    fn claim(&mut self, id: &str, origin: Origin) -> Option<Origin> {
        match self.first.entry(IdKey::of(id)) {
            Entry::Vacant(e) => {
                e.insert(origin.pack());
                None
            }
            Entry::Occupied(e) => Some(Origin::unpack(*e.get())),
        }
    }
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

/// The two-letter code of a US state written as a code (any case) or by name
/// (`North Carolina`); `None` for anything else.
pub fn state_code(raw: &str) -> Option<String> {
    state_of(raw).ok().flatten()
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
