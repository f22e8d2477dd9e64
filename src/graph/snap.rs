//! Snapping points to the nearest point of the road network.
