//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod fake_http;
pub mod updates;

/// The real data beside the repository: `$SOCIALMAPPER_DATA`, else `../shared/data`.
/// Fails loudly when missing: these tests must not pass by skipping.
pub fn data_dir() -> PathBuf {
    socialmapper::testdata::shared_data_dir()
}

/// Reads a CSV file into a header and rows of strings.
pub fn read_csv(path: &std::path::Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let header = r.headers().unwrap().iter().map(String::from).collect();
    let rows = r
        .records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect();
    (header, rows)
}

/// Column index by name.
pub fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

/// EPSG:5070 written independently of the library, after PROJ's `aea.cpp` (which uses
/// `pj_qsfn` and the authalic constants in this grouping), for cross-checks.
pub fn albers_5070(lon: f64, lat: f64) -> (f64, f64) {
    let a = 6378137.0f64;
    let f: f64 = 1.0 / 298.257222101;
    let es = 2.0 * f - f * f;
    let e = es.sqrt();
    let one_es = 1.0 - es;
    let qsfn = |sinphi: f64| {
        let con = e * sinphi;
        one_es * (sinphi / (1.0 - con * con) - (0.5 / e) * ((1.0 - con) / (1.0 + con)).ln())
    };
    let msfn = |sinphi: f64, cosphi: f64| cosphi / (1.0 - es * sinphi * sinphi).sqrt();
    let (phi1, phi2, phi0, lam0) = (
        29.5f64.to_radians(),
        45.5f64.to_radians(),
        23f64.to_radians(),
        -96f64.to_radians(),
    );
    let m1 = msfn(phi1.sin(), phi1.cos());
    let ml1 = qsfn(phi1.sin());
    let m2 = msfn(phi2.sin(), phi2.cos());
    let ml2 = qsfn(phi2.sin());
    let n = (m1 * m1 - m2 * m2) / (ml2 - ml1);
    let c = m1 * m1 + n * ml1;
    let dd = 1.0 / n;
    let rho0 = dd * (c - n * qsfn(phi0.sin())).sqrt();
    let rho = dd * (c - n * qsfn(lat.to_radians().sin())).sqrt();
    let lam = (lon.to_radians() - lam0) * n;
    (a * rho * lam.sin(), a * (rho0 - rho * lam.cos()))
}

#[test]
fn independent_albers_matches_proj() {
    // PROJ 9 via pyproj, EPSG:4326 → EPSG:5070.
    let (x, y) = albers_5070(-77.0435238, 38.9097773);
    assert!(
        (x - 1617740.285268).abs() < 1e-3 && (y - 1926681.864992).abs() < 1e-3,
        "{x} {y}"
    );
}
