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

/// `<parent>/n<nodes>_p<pois>`: a synthetic region written by `bin synth` (seed 42) unless it
/// is there already, so that repeated benchmark runs share it. `who` names the benchmark in
/// the progress line.
pub fn synth_region(
    bin: &std::path::Path,
    parent: &std::path::Path,
    nodes: usize,
    pois: usize,
    who: &str,
) -> PathBuf {
    let dir = parent.join(format!("n{nodes}_p{pois}"));
    if !dir.join("flow.toml").is_file() {
        let t = std::time::Instant::now();
        let status = std::process::Command::new(bin)
            .args(["synth", "--nodes", &nodes.to_string()])
            .args(["--pois", &pois.to_string(), "--seed", "42", "--out"])
            .arg(&dir)
            .status()
            .expect("run socialmapper synth");
        assert!(status.success(), "synth failed");
        eprintln!(
            "{who}: wrote {} in {:.1} s",
            dir.display(),
            t.elapsed().as_secs_f64()
        );
    }
    dir
}
