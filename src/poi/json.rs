//! JSON and GeoJSON POI input. Each list element is parsed, turned into a POI or a reject and
//! dropped before the next one is read, so a file of millions of features needs memory for the
//! outcomes only, not for a whole `serde_json::Value` tree. The outcomes of the whole text are
//! collected before any is handed on (see [`super::PoiStream`]): JSON inputs are small in
//! practice, and CSV is the format for huge ones.

use super::{
    Admit, Candidate, ID_NAMES, Origin, Outcome, check_coord, coord_from_text, non_empty, rejected,
    take_state,
};
use crate::error::{Error, Result};
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// What the elements of a list are.
#[derive(Clone, Copy)]
enum Kind {
    /// Plain POI objects (`record N`).
    Record,
    /// GeoJSON features (`feature N`).
    Feature,
}

/// Parses a JSON list of POI objects, `{"pois": [...]}`, a GeoJSON FeatureCollection or a
/// single GeoJSON Feature, whichever `text` holds: the top-level shape decides, so a
/// FeatureCollection saved as `.json` still reads.
pub(super) fn parse_json(text: &str, origin: &Path) -> Result<Vec<Outcome>> {
    let mut collector = Collector::default();
    let mut de = serde_json::Deserializer::from_str(text);
    (&mut de)
        .deserialize_any(Top { c: &mut collector })
        .and_then(|()| de.end())
        .map_err(|e| Error::input(origin, format!("invalid JSON: {e}")))?;
    Ok(collector.out)
}

/// The outcomes so far, in input order.
#[derive(Default)]
struct Collector {
    out: Vec<Outcome>,
    admit: Admit,
}

impl Collector {
    fn reject(&mut self, origin: Origin, id: Option<String>, reason: String) {
        self.out.push(rejected(origin, id, reason));
    }

    fn offer(&mut self, c: Candidate) {
        let outcome = self.admit.offer(c);
        self.out.push(outcome);
    }
}

/// The top-level value.
struct Top<'a> {
    c: &'a mut Collector,
}

const EXPECTED: &str =
    "a list of POI objects, {\"pois\": [...]}, or a GeoJSON FeatureCollection or Feature";

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        List {
            c: self.c,
            kind: Kind::Record,
        }
        .visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut rest = Map::new();
        let mut saw_list = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "pois" => {
                    map.next_value_seed(List {
                        c: self.c,
                        kind: Kind::Record,
                    })?;
                    saw_list = true;
                }
                "features" => {
                    map.next_value_seed(List {
                        c: self.c,
                        kind: Kind::Feature,
                    })?;
                    saw_list = true;
                }
                _ => {
                    rest.insert(key, map.next_value()?);
                }
            }
        }
        if saw_list {
            return Ok(());
        }
        match rest.get("type").and_then(Value::as_str) {
            Some("Feature") => {
                feature(self.c, Value::Object(rest));
                Ok(())
            }
            Some(t) => Err(de::Error::custom(format!(
                "expected {EXPECTED}, found a GeoJSON {t}"
            ))),
            None => {
                let keys: Vec<&str> = rest.keys().map(String::as_str).collect();
                Err(de::Error::custom(format!(
                    "expected {EXPECTED}, found an object with keys {}",
                    keys.join(", ")
                )))
            }
        }
    }
}

/// A list whose elements are handed to the collector one by one.
struct List<'a> {
    c: &'a mut Collector,
    kind: Kind,
}

impl<'de> DeserializeSeed<'de> for List<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for List<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.kind {
            Kind::Record => f.write_str("a list of POI objects"),
            Kind::Feature => f.write_str("a list of GeoJSON features"),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(value) = seq.next_element::<Value>()? {
            match self.kind {
                Kind::Record => record(self.c, value),
                Kind::Feature => feature(self.c, value),
            }
        }
        Ok(())
    }
}

/// "a string", "an object"...: how a JSON value is named in reasons.
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A value as tag text: strings as they are, anything else in compact JSON; `None` for null.
fn tag_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// A name, type or state value: trimmed text, `None` when null or empty.
fn field_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => non_empty(s),
        other => tag_text(other),
    }
}

/// An id: a non-empty string or a number (`7`, not `7.0`, when the input wrote `7`).
fn id_text(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(non_empty(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        other => Err(format!(
            "id '{other}' is {}, expected a string or a number",
            describe(other)
        )),
    }
}

/// A latitude/longitude given as a JSON number or a numeric string.
fn coord_from_json(what: &str, v: Option<&Value>, limit: f64) -> Result<f64, String> {
    match v {
        None | Some(Value::Null) => Err(format!("{what} is missing")),
        Some(Value::String(s)) => coord_from_text(what, s, limit),
        Some(Value::Number(n)) => {
            let shown = n.to_string();
            match n.as_f64() {
                Some(x) => check_coord(what, &shown, x, limit),
                None => Err(format!("{what} '{shown}' is not a number")),
            }
        }
        Some(other) => Err(format!("{what} '{other}' is not a number")),
    }
}

/// The recognised members of a POI object or of a feature's properties.
#[derive(Default)]
struct Fields {
    lat: Option<Value>,
    lon: Option<Value>,
    id: Option<Value>,
    name: Option<Value>,
    kind: Option<Value>,
    state: Option<Value>,
    tags: Option<Value>,
    /// Every other member, as tag text (nulls dropped).
    rest: BTreeMap<String, String>,
}

const LAT: usize = 0;
const LON: usize = 1;
const ID: usize = 2;
const NAME: usize = 3;
const TYPE: usize = 4;
const STATE: usize = 5;
const TAGS: usize = 6;

/// Member names (lower case) of each role, best first.
const ROLE_NAMES: [&[&str]; 7] = [
    &["lat", "latitude"],
    &["lon", "lng", "longitude"],
    &ID_NAMES,
    &["name"],
    &["type"],
    &["state"],
    &["tags"],
];

/// Sorts an object's members into roles. Names match case-insensitively and the best-ranked
/// name of a role wins (`lat` over `latitude`), as CSV columns do; the losers become tags.
/// Without `coords` (GeoJSON properties, where the geometry holds the position) latitude and
/// longitude members are ordinary tags.
fn split_fields(obj: Map<String, Value>, coords: bool) -> Fields {
    let first_role = if coords { 0 } else { ID };
    let role_of = |key: &str| -> Option<(usize, usize)> {
        let lower = key.to_lowercase();
        (first_role..ROLE_NAMES.len()).find_map(|r| {
            ROLE_NAMES[r]
                .iter()
                .position(|n| *n == lower)
                .map(|rank| (r, rank))
        })
    };
    // Pass 1: for each role, the (rank, member index) that wins.
    let mut best: [Option<(usize, usize)>; 7] = [None; 7];
    for (i, key) in obj.keys().enumerate() {
        if let Some((role, rank)) = role_of(key)
            && best[role].is_none_or(|(r, _)| rank < r)
        {
            best[role] = Some((rank, i));
        }
    }
    // Pass 2: move the values out.
    let mut f = Fields::default();
    for (i, (key, value)) in obj.into_iter().enumerate() {
        let role = (0..best.len()).find(|&r| best[r].is_some_and(|(_, idx)| idx == i));
        let slot = match role {
            Some(LAT) => &mut f.lat,
            Some(LON) => &mut f.lon,
            Some(ID) => &mut f.id,
            Some(NAME) => &mut f.name,
            Some(TYPE) => &mut f.kind,
            Some(STATE) => &mut f.state,
            Some(TAGS) => &mut f.tags,
            _ => {
                if let Some(text) = tag_text(&value) {
                    f.rest.insert(key, text);
                }
                continue;
            }
        };
        *slot = Some(value);
    }
    f
}

/// The tags of a record: its unrecognised members, then the entries of its `tags` member
/// (which win on a clash, being the more deliberate of the two). A `tags` member that is not
/// an object is kept whole under the key `tags`.
fn merge_tags(mut rest: BTreeMap<String, String>, tags: Option<Value>) -> BTreeMap<String, String> {
    match tags {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                if let Some(text) = tag_text(&v) {
                    rest.insert(k, text);
                }
            }
        }
        Some(other) => {
            if let Some(text) = tag_text(&other) {
                rest.insert("tags".to_string(), text);
            }
        }
        None => {}
    }
    rest
}

/// One element of a plain JSON list.
fn record(c: &mut Collector, value: Value) {
    let index = c.out.len();
    let source = Origin::Record(index as u64 + 1);
    let obj = match value {
        Value::Object(obj) => obj,
        other => {
            let reason = format!("expected an object, found {}", describe(&other));
            return c.reject(source, None, reason);
        }
    };
    let f = split_fields(obj, true);
    let id = match f.id.as_ref().map(id_text).transpose() {
        Ok(id) => id.flatten(),
        Err(reason) => return c.reject(source, None, reason),
    };
    let lat = coord_from_json("latitude", f.lat.as_ref(), 90.0);
    let lon = coord_from_json("longitude", f.lon.as_ref(), 180.0);
    c.offer(candidate(source, index, id, f, lat, lon));
}

/// One GeoJSON feature.
fn feature(c: &mut Collector, value: Value) {
    let index = c.out.len();
    let source = Origin::Feature(index as u64 + 1);
    let mut obj = match value {
        Value::Object(obj) => obj,
        other => {
            let reason = format!("expected a Feature object, found {}", describe(&other));
            return c.reject(source, None, reason);
        }
    };
    if let Some(t) = obj.get("type").and_then(Value::as_str)
        && t != "Feature"
    {
        return c.reject(source, None, format!("type is {t}, expected Feature"));
    }
    let props = match obj.remove("properties") {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => Map::new(),
        Some(other) => {
            let reason = format!("properties is {}, expected an object", describe(&other));
            return c.reject(source, None, reason);
        }
    };
    let f = split_fields(props, false);
    // A property id wins over the feature's own id: it is what the user's data calls the POI.
    let id = match f.id.as_ref().or(obj.get("id")).map(id_text).transpose() {
        Ok(id) => id.flatten(),
        Err(reason) => return c.reject(source, None, reason),
    };
    let (lon, lat) = match point_of(obj.get("geometry")) {
        Ok(Some((lon, lat))) => (
            coord_from_json("longitude", Some(lon), 180.0),
            coord_from_json("latitude", Some(lat), 90.0),
        ),
        Ok(None) => {
            let reason = "Point coordinates are not [longitude, latitude]".to_string();
            return c.reject(source, id, reason);
        }
        Err(reason) => return c.reject(source, id, reason),
    };
    c.offer(candidate(source, index, id, f, lat, lon));
}

/// A candidate POI from a record's recognised fields (shared by JSON records and GeoJSON
/// features, which differ only in where the id and coordinates come from).
fn candidate(
    source: Origin,
    index: usize,
    id: Option<String>,
    f: Fields,
    lat: Result<f64, String>,
    lon: Result<f64, String>,
) -> Candidate {
    let mut tags = merge_tags(f.rest, f.tags);
    let state = f
        .state
        .as_ref()
        .and_then(field_text)
        .and_then(|s| take_state(&s, &mut tags));
    Candidate {
        origin: source,
        index,
        id,
        name: f.name.as_ref().and_then(field_text),
        kind: f.kind.as_ref().and_then(field_text),
        state,
        lat,
        lon,
        tags,
    }
}

/// The `[lon, lat]` members of a Point geometry; `Ok(None)` for a Point without two
/// coordinates; `Err` for anything that is not a Point.
fn point_of(geometry: Option<&Value>) -> Result<Option<(&Value, &Value)>, String> {
    let g = match geometry {
        None | Some(Value::Null) => return Err("geometry is null, expected Point".to_string()),
        Some(Value::Object(g)) => g,
        Some(other) => return Err(format!("geometry is {}, expected Point", describe(other))),
    };
    match g.get("type").and_then(Value::as_str) {
        Some("Point") => {}
        Some(t) => return Err(format!("geometry is {t}, expected Point")),
        None => return Err("geometry has no type, expected Point".to_string()),
    }
    Ok(match g.get("coordinates") {
        Some(Value::Array(a)) if a.len() >= 2 => Some((&a[0], &a[1])),
        _ => None,
    })
}
