//! Building a [`super::RoadGraph`] from [`crate::osm::OsmRoads`] for one mode and direction.
