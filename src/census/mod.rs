//! Census inputs: block-group boundaries (TIGER/cartographic-boundary shapefile zips, GeoJSON)
//! and American Community Survey values (Census-API JSON, CSV), with the original tool's
//! variable names.

pub mod acs;
pub mod boundaries;
pub mod variables;

use geo::MultiPolygon;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A census block group: its 12-digit GEOID and its boundary in lon/lat degrees (NAD83).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockGroup {
    /// `SS CCC TTTTTT B`, 12 digits.
    pub geoid: String,
    /// Boundary, lon/lat degrees.
    pub boundary: MultiPolygon<f64>,
}

/// ACS values for a set of variables, keyed by GEOID. A missing value (an API sentinel such as
/// -666666666, `NA`, or an empty cell) is `None`, never a number.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AcsTable {
    /// Variable codes, in output column order (e.g. `B01003_001E`).
    pub variables: Vec<String>,
    /// GEOID → one value per variable, in `variables` order.
    pub rows: HashMap<String, Vec<Option<f64>>>,
}
