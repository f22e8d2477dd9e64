//! Reading highway ways out of a `.osm.pbf` file.
