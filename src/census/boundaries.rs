//! Reading block-group boundaries from shapefile zips and GeoJSON.
