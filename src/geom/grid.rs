//! The global analysis grid in EPSG:5070 and tracing cell sets into polygons.
