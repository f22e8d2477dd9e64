//! EPSG:5070 (NAD83 / Conus Albers) forward and inverse projection.
