//! Where the real data for tests and benchmarks lives: `$SOCIALMAPPER_DATA`, else
//! `../shared/data` beside the repository. It is never copied into the repository.
//!
//! These helpers panic when the data is missing: a test that needs real data must fail, not
//! pass by skipping.

use std::path::{Path, PathBuf};

/// The real-data directory. Panics when it does not exist.
pub fn shared_data_dir() -> PathBuf {
    let dir = std::env::var_os("SOCIALMAPPER_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data"));
    assert!(
        dir.is_dir(),
        "real data not found at {} (set SOCIALMAPPER_DATA)",
        dir.display()
    );
    dir
}

/// A file under the real-data directory (`"dc/roads.osm.pbf"`). Panics when it is missing.
pub fn shared_data(rel: &str) -> PathBuf {
    let p = shared_data_dir().join(rel);
    assert!(
        p.is_file(),
        "real data file {} is missing (set SOCIALMAPPER_DATA)",
        p.display()
    );
    p
}
