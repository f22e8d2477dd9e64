//! The embedded synthetic town: a deterministic road network, block groups, ACS values and POIs made by the project itself, so the whole job runs with no files and no internet.
