//! OpenStreetMap input: highway ways and their node coordinates out of a `.osm.pbf`, the
//! per-mode access and speed rules, and POIs selected by tag.

pub mod pbf;
pub mod pbf_write;
pub mod pois;
pub mod profile;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One OSM way with its node references and tags.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OsmWay {
    /// OSM way id.
    pub id: i64,
    /// Node ids in way order.
    pub nodes: Vec<i64>,
    /// Tags as key/value pairs.
    pub tags: Vec<(String, String)>,
}

impl OsmWay {
    /// The value of tag `key`, if present.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// The road-relevant part of an OSM extract: every way with a `highway` tag and the
/// coordinates (lon, lat in degrees) of the nodes they use.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct OsmRoads {
    /// Node id → (lon, lat).
    pub nodes: HashMap<i64, (f64, f64)>,
    /// Ways that carry a `highway` tag.
    pub ways: Vec<OsmWay>,
}
