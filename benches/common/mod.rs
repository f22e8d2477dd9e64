//! Shared set-up for the benchmarks: the DC data, random POIs in its dense core.
#![allow(dead_code)]

use std::path::PathBuf;

/// The real data beside the repository (`$SOCIALMAPPER_DATA`, else `../shared/data`).
pub fn data_dir() -> PathBuf {
    socialmapper::testdata::shared_data_dir()
}

/// `n` deterministic random (lon, lat) points in the DC extract's dense core.
pub fn random_points_in_dc_core(n: usize, seed: u64) -> Vec<(f64, f64)> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| (-77.075 + 0.075 * next(), 38.895 + 0.06 * next()))
        .collect()
}
