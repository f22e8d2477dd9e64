//! Reading POIs from CSV (the original's custom-coordinates form), GeoJSON and JSON.
