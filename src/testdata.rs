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

/// A tiny seeded random generator (xorshift64*) for tests and benchmarks that need
/// reproducible random inputs without a `rand` dependency.
#[derive(Clone, Debug)]
pub struct XorShift(pub u64);

impl XorShift {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `0 .. n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
