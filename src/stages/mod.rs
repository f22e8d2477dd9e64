//! The stages of a run, each a function of a batch with serializable results:
//!
//! `order` (the source's records cut into batches of neighbours along a Z-curve) → `cluster` (POIs of a batch grouped by tile, each group with the box of network it may use)
//! → `network` (network-fetch: the slice of the road graph serving a cluster, snap points) →
//! `isochrone` (bounded Dijkstra per POI, rasterised onto the analysis grid) → `census_join`
//! (block groups reached, coverage) → `distance` (straight-line and network nearest POI per
//! block group).
//!
//! [`crate::pipeline`] is the only place that knows their order.

pub mod census_join;
pub mod cluster;
pub mod distance;
pub mod isochrone;
pub mod network;
pub mod order;
