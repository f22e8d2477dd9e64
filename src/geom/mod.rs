//! Geometry kernels: the EPSG:5070 projection, the global analysis grid, polygon clipping,
//! tracing cell sets and lane-mask rasters into polygons.

pub mod albers;
pub mod clip;
pub mod corridor;
pub mod grid;
pub mod mask_trace;
