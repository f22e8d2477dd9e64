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
    /// q at the pole, and the coefficients of sin 2β, sin 4β and sin 6β in the series from
    /// the authalic latitude β to the latitude (Snyder eq. 3-18).
    qp: f64,
    series: [f64; 3],
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
            qp: q(e, e2, std::f64::consts::FRAC_PI_2),
            series: [
                e2 / 3.0 + 31.0 * e2 * e2 / 180.0 + 517.0 * e2 * e2 * e2 / 5040.0,
                23.0 * e2 * e2 / 360.0 + 251.0 * e2 * e2 * e2 / 3780.0,
                761.0 * e2 * e2 * e2 / 45360.0,
            ],
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
///
/// The latitude comes from the authalic latitude β by the series of Snyder eq. 3-18 (cut
/// after e⁶, it is off by under 3e-10 rad on GRS80 from the equator to the pole), then one
/// Newton step on eq. 3-16, which squares that error to far below the last bit (tested
/// against iterating to convergence). That is two rounds of `sin`, `cos` and `ln` fewer than
/// iterating from β: the outlines' vertices are all projected back, about 800 per POI.
pub fn from_5070(xy: Coord<f64>) -> (f64, f64) {
    let p = &*CONUS;
    let dy = p.rho0 - xy.y;
    let rho = (xy.x * xy.x + dy * dy).sqrt();
    let theta = xy.x.atan2(dy);
    let qv = (p.c - rho * rho * p.n * p.n / (A * A)) / p.n;
    let beta = (qv / p.qp).clamp(-1.0, 1.0).asin();
    let (s2, c2) = (2.0 * beta).sin_cos();
    // sin 4β = 2 sin 2β cos 2β and sin 6β = sin 2β (3 − 4 sin² 2β).
    let [b2, b4, b6] = p.series;
    let phi = beta + s2 * (b2 + 2.0 * c2 * b4 + (3.0 - 4.0 * s2 * s2) * b6);
    let phi = phi + newton_step(p, qv, phi);
    ((p.lon0 + theta / p.n).to_degrees(), phi.to_degrees())
}

/// The Newton step of Snyder eq. 3-16 from latitude `phi` towards q(φ) = `qv`.
#[inline]
fn newton_step(p: &Albers, qv: f64, phi: f64) -> f64 {
    let (s, c) = phi.sin_cos();
    let one_m = 1.0 - p.e2 * s * s;
    one_m * one_m / (2.0 * c)
        * (qv / (1.0 - p.e2) - s / one_m
            + (1.0 / (2.0 * p.e)) * ((1.0 - p.e * s) / (1.0 + p.e * s)).ln())
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

    /// The inverse iterated to convergence from β = asin(q / 2), as Snyder does.
    fn from_5070_iterated(xy: Coord<f64>) -> (f64, f64) {
        let p = &*CONUS;
        let dy = p.rho0 - xy.y;
        let rho = (xy.x * xy.x + dy * dy).sqrt();
        let theta = xy.x.atan2(dy);
        let qv = (p.c - rho * rho * p.n * p.n / (A * A)) / p.n;
        let mut phi = (qv / 2.0).clamp(-1.0, 1.0).asin();
        for _ in 0..30 {
            let delta = newton_step(p, qv, phi);
            phi += delta;
            if delta.abs() < 1e-15 {
                break;
            }
        }
        ((p.lon0 + theta / p.n).to_degrees(), phi.to_degrees())
    }

    #[test]
    fn one_newton_step_from_the_series_has_converged() {
        // Every 10 km from Hawaii and Puerto Rico to north of Alaska.
        let (mut worst, mut tested): (f64, usize) = (0.0, 0);
        for i in -700..=400 {
            for j in -300..=600 {
                let xy = Coord {
                    x: f64::from(i) * 1e4,
                    y: f64::from(j) * 1e4,
                };
                let (lon, lat) = from_5070(xy);
                let (lon_i, lat_i) = from_5070_iterated(xy);
                let back = to_5070(lon_i, lat_i);
                if lat_i.abs() > 80.0 || (back.x - xy.x).hypot(back.y - xy.y) > 1e-3 {
                    // Beyond the pole (no point projects there), or towards it, far north of
                    // Alaska, where Newton's steps on eq. 3-16 go astray from any start.
                    continue;
                }
                assert_eq!(lon, lon_i);
                tested += 1;
                worst = worst.max((lat - lat_i).abs());
            }
        }
        // 1e-12 degrees is 0.1 µm, five orders below the 7 decimals written.
        assert!(tested > 900_000, "{tested} points");
        assert!(worst < 1e-12, "worst latitude difference {worst:e}°");
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
