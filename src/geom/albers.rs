//! EPSG:5070 (NAD83 / Conus Albers) forward and inverse projection.
//!
//! Albers equal-area conic on the GRS80 ellipsoid: standard parallels 29.5° and 45.5°, origin
//! 23° N 96° W, no false easting or northing (Snyder, *Map Projections: A Working Manual*,
//! USGS PP 1395, eqs. 3-12, 14-12 … 14-21). The original tool measures every "travel
//! distance" in this projection, so ours does too; it is also equal-area, which makes cell
//! counts on the analysis grid exact areas.
//!
//! WGS84 and NAD83 coordinates are treated as identical, as PROJ does for EPSG:4326 → 5070 by
//! default (a null transformation).

use geo::Coord;
use std::sync::LazyLock;

/// GRS80 semi-major axis, metres.
const A: f64 = 6_378_137.0;
/// GRS80 inverse flattening.
const INV_F: f64 = 298.257_222_101;

/// Precomputed constants of the projection.
struct Albers {
    e: f64,
    e2: f64,
    n: f64,
    c: f64,
    rho0: f64,
    lon0: f64,
}

impl Albers {
    fn new(lat1: f64, lat2: f64, lat0: f64, lon0: f64) -> Self {
        let f = 1.0 / INV_F;
        let e2 = f * (2.0 - f);
        let e = e2.sqrt();
        let m = |phi: f64| phi.cos() / (1.0 - e2 * phi.sin().powi(2)).sqrt();
        let (p1, p2, p0) = (lat1.to_radians(), lat2.to_radians(), lat0.to_radians());
        let (m1, m2) = (m(p1), m(p2));
        let (q1, q2, q0) = (q(e, e2, p1), q(e, e2, p2), q(e, e2, p0));
        let n = (m1 * m1 - m2 * m2) / (q2 - q1);
        let c = m1 * m1 + n * q1;
        let rho0 = A * (c - n * q0).sqrt() / n;
        Albers {
            e,
            e2,
            n,
            c,
            rho0,
            lon0: lon0.to_radians(),
        }
    }
}

/// Snyder's q(φ) (eq. 3-12), the authalic function.
fn q(e: f64, e2: f64, phi: f64) -> f64 {
    let s = phi.sin();
    (1.0 - e2) * (s / (1.0 - e2 * s * s) - (1.0 / (2.0 * e)) * ((1.0 - e * s) / (1.0 + e * s)).ln())
}

static CONUS: LazyLock<Albers> = LazyLock::new(|| Albers::new(29.5, 45.5, 23.0, -96.0));

/// Projects lon/lat degrees to EPSG:5070 metres (x east, y north).
///
/// ```
/// let p = socialmapper::geom::albers::to_5070(-96.0, 23.0);
/// assert!(p.x.abs() < 1e-6 && p.y.abs() < 1e-6);
/// ```
pub fn to_5070(lon: f64, lat: f64) -> Coord<f64> {
    let p = &*CONUS;
    let rho = A * (p.c - p.n * q(p.e, p.e2, lat.to_radians())).sqrt() / p.n;
    let theta = p.n * (lon.to_radians() - p.lon0);
    Coord {
        x: rho * theta.sin(),
        y: p.rho0 - rho * theta.cos(),
    }
}

/// Inverse of [`to_5070`]: EPSG:5070 metres to (lon, lat) degrees.
pub fn from_5070(xy: Coord<f64>) -> (f64, f64) {
    let p = &*CONUS;
    let dy = p.rho0 - xy.y;
    let rho = (xy.x * xy.x + dy * dy).sqrt();
    let theta = xy.x.atan2(dy);
    let qv = (p.c - rho * rho * p.n * p.n / (A * A)) / p.n;
    // Snyder eq. 3-16, iterated; converges to 1e-12 rad in 2-4 steps for any CONUS latitude.
    let mut phi = (qv / 2.0).clamp(-1.0, 1.0).asin();
    for _ in 0..15 {
        let s = phi.sin();
        let one_m = 1.0 - p.e2 * s * s;
        let delta = one_m * one_m / (2.0 * phi.cos())
            * (qv / (1.0 - p.e2) - s / one_m
                + (1.0 / (2.0 * p.e)) * ((1.0 - p.e * s) / (1.0 + p.e * s)).ln());
        phi += delta;
        if delta.abs() < 1e-13 {
            break;
        }
    }
    ((p.lon0 + theta / p.n).to_degrees(), phi.to_degrees())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values from PROJ 9 via pyproj (`Transformer.from_crs("EPSG:4326",
    /// "EPSG:5070", always_xy=True)`), to the micrometre.
    const PROJ: [(f64, f64, f64, f64); 5] = [
        (-77.0435238, 38.9097773, 1617740.285268, 1926681.864992), // Dupont Circle
        (-78.7801361, 35.5853861, 1538371.652405, 1532073.147504), // Fuquay-Varina library
        (-122.3321, 47.6062, -1967991.169007, 3009111.139217),     // Seattle
        (-66.1, 18.4, 3225908.118607, 16387.285965),               // San Juan, PR
        (-96.0, 23.0, 0.0, 0.0),                                   // projection origin
    ];

    #[test]
    fn forward_matches_proj_to_a_millimetre() {
        for (lon, lat, x, y) in PROJ {
            let p = to_5070(lon, lat);
            assert!(
                (p.x - x).abs() < 1e-3 && (p.y - y).abs() < 1e-3,
                "{lon},{lat}: {p:?}"
            );
        }
    }

    #[test]
    fn inverse_round_trips() {
        for (lon, lat, _, _) in PROJ {
            let (lo, la) = from_5070(to_5070(lon, lat));
            assert!(
                (lo - lon).abs() < 1e-9 && (la - lat).abs() < 1e-9,
                "{lon},{lat}"
            );
        }
    }
}
