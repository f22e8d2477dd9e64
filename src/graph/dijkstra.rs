//! Bounded and multi-source Dijkstra over a [`super::RoadGraph`].
