//! Plain data shared by every stage: POIs, rejects, travel modes and directions.
//!
//! Everything here serializes (serde, hence bincode) because the dataflow runs these values
//! through timely operators and RocksDB checkpoints.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A point of interest as read from the user's input, before it is snapped to the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Poi {
    /// Unique id within the run (from the input's id column, or `custom_{i}` as the original).
    pub id: String,
    /// Human name (`Custom POI {i}` when the input has none).
    pub name: String,
    /// The original's `type` column (`custom` by default; `node`/`way` for OSM POIs).
    pub kind: String,
    /// Longitude in degrees (WGS84 / NAD83; treated as identical, as PROJ does).
    pub lon: f64,
    /// Latitude in degrees.
    pub lat: f64,
    /// Optional two-letter state, as in the original's custom-coordinates form.
    pub state: Option<String>,
    /// Every other input column, kept as text.
    pub tags: BTreeMap<String, String>,
    /// Where the POI came from in its file: a 1-based line (CSV) or record number (JSON).
    pub source: String,
}

/// A POI that was not processed, with the reason. Every input record ends as a `Poi` that is
/// processed or as exactly one `Reject`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// Where the record came from (`line 12`, `feature 3`, an OSM id...).
    pub source: String,
    /// The record's id, when it had one.
    pub id: Option<String>,
    /// Why it was rejected, one line of plain text.
    pub reason: String,
}

/// How people travel. Decides the usable roads, their speeds and the default grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// On foot: footways, paths, steps and streets, both directions, speeds capped at 7 km/h.
    Walk,
    /// By bicycle: cycleways, paths and streets, both directions, speeds capped at 30 km/h.
    Bike,
    /// By car: roads open to cars, `oneway` honoured, `maxspeed` used.
    Drive,
}

impl Mode {
    /// The name used on the command line and in outputs.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Walk => "walk",
            Mode::Bike => "bike",
            Mode::Drive => "drive",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "walk" | "walking" | "foot" => Ok(Mode::Walk),
            "bike" | "cycling" | "bicycle" => Ok(Mode::Bike),
            "drive" | "driving" | "car" => Ok(Mode::Drive),
            other => Err(format!(
                "unknown travel mode {other:?} (expected walk, bike or drive)"
            )),
        }
    }
}

/// Which way travel time is measured between a POI and the places around it. Only matters
/// where roads are one-way (drive mode).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Travel that starts at the POI (the original tool's isochrones: `ego_graph` follows
    /// out-edges).
    #[default]
    FromPoi,
    /// Travel that ends at the POI: how long people need to get there.
    ToPoi,
}

impl FromStr for Direction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "from-poi" | "from" => Ok(Direction::FromPoi),
            "to-poi" | "to" => Ok(Direction::ToPoi),
            other => Err(format!(
                "unknown direction {other:?} (expected from-poi or to-poi)"
            )),
        }
    }
}
