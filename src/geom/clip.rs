//! Clipping polygons to axis-aligned rectangles (exact intersection areas).
