//! Geometry kernels: the EPSG:5070 projection, the global analysis grid, polygon clipping.

pub mod albers;
pub mod clip;
pub mod corridor;
pub mod grid;
