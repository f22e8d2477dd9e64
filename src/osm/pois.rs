//! POIs selected by OSM tag (`amenity=library`) out of a `.osm.pbf`: nodes, and way centroids.
