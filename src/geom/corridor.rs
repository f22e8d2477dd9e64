//! The grid cells near a polyline: every cell whose centre lies within a buffer distance of
//! the line, each with the stretch of the line within that distance of its centre.
//!
//! This is what an isochrone needs from a road: a cell is reached as early as the earliest
//! reached point of a road within the buffer of its centre, and along one road that point is
//! an end of the stretch. Computed once per road and grid, it turns rasterising a reached
//! network into a scan of short precomputed lists.

use super::grid::{Cell, Grid};
use geo::Coord;
use serde::{Deserialize, Serialize};

/// A cell near a line, with the stretch of the line within the buffer of the cell's centre,
/// as fractions `lo ..= hi` of the line's length from its start. Where the line leaves the
/// buffer and comes back (a hairpin), the stretch spans both visits.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellSpan {
    /// The cell.
    pub cell: Cell,
    /// First fraction of the line within the buffer of the cell's centre.
    pub lo: f32,
    /// Last fraction.
    pub hi: f32,
}

/// Appends to `out` the cells whose centre lies within `buffer_m` of the polyline `points`
/// (EPSG:5070 metres), sorted by cell, one span per cell. `offsets[k]` is the distance along
/// the line from its start to `points[k]`. `scratch` is reused working space.
///
/// Cost: for each segment, the cells of its bounding box grown by the buffer.
pub fn polyline_cells(
    points: &[Coord<f64>],
    offsets: &[f64],
    grid: &Grid,
    buffer_m: f64,
    scratch: &mut Vec<CellSpan>,
    out: &mut Vec<CellSpan>,
) {
    let (c, b) = (grid.cell_m, buffer_m);
    let total = offsets.last().copied().unwrap_or(0.0);
    let frac = |s: f64| {
        if total > 0.0 {
            (s / total).clamp(0.0, 1.0) as f32
        } else {
            0.0
        }
    };
    scratch.clear();
    let nseg = points.len().saturating_sub(1).max(1);
    for k in 0..nseg {
        let p = points[k];
        let q = if points.len() > 1 { points[k + 1] } else { p };
        let (dx, dy) = (q.x - p.x, q.y - p.y);
        let a = dx * dx + dy * dy;
        let len = a.sqrt();
        let i0 = ceil_i32((p.x.min(q.x) - b) / c - 0.5);
        let i1 = floor_i32((p.x.max(q.x) + b) / c - 0.5);
        let j0 = ceil_i32((p.y.min(q.y) - b) / c - 0.5);
        let j1 = floor_i32((p.y.max(q.y) + b) / c - 0.5);
        for i in i0..=i1 {
            let cx = (i as f64 + 0.5) * c;
            for j in j0..=j1 {
                let cy = (j as f64 + 0.5) * c;
                let (ex, ey) = (p.x - cx, p.y - cy);
                // |p + u·d − centre|² ≤ b², solved for u in [0, 1].
                let (u0, u1) = if a > 0.0 {
                    let half_b = dx * ex + dy * ey;
                    let cq = ex * ex + ey * ey - b * b;
                    let disc = half_b * half_b - a * cq;
                    if disc < 0.0 {
                        continue;
                    }
                    let r = disc.sqrt();
                    (((-half_b - r) / a).max(0.0), ((-half_b + r) / a).min(1.0))
                } else if ex * ex + ey * ey <= b * b {
                    (0.0, 0.0)
                } else {
                    continue;
                };
                if u0 > u1 {
                    continue;
                }
                let s = offsets[k];
                scratch.push(CellSpan {
                    cell: Cell { i, j },
                    lo: frac(s + u0 * len),
                    hi: frac(s + u1 * len),
                });
            }
        }
    }
    scratch.sort_unstable_by_key(|s| s.cell);
    for s in scratch.iter() {
        match out.last_mut() {
            Some(last) if last.cell == s.cell => {
                last.lo = last.lo.min(s.lo);
                last.hi = last.hi.max(s.hi);
            }
            _ => out.push(*s),
        }
    }
}

/// `x.floor() as i32` without a libm call (the baseline x86-64 target has no rounding
/// instruction).
#[inline]
fn floor_i32(x: f64) -> i32 {
    let t = x as i32;
    if (t as f64) > x { t - 1 } else { t }
}

/// `x.ceil() as i32`, as [`floor_i32`].
#[inline]
fn ceil_i32(x: f64) -> i32 {
    let t = x as i32;
    if (t as f64) < x { t + 1 } else { t }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(points: &[(f64, f64)], c: f64, b: f64) -> Vec<CellSpan> {
        let pts: Vec<Coord<f64>> = points.iter().map(|&(x, y)| Coord { x, y }).collect();
        let mut offs = vec![0.0];
        for w in pts.windows(2) {
            offs.push(offs.last().unwrap() + (w[1].x - w[0].x).hypot(w[1].y - w[0].y));
        }
        let mut out = vec![];
        polyline_cells(&pts, &offs, &Grid { cell_m: c }, b, &mut vec![], &mut out);
        out
    }

    // A 100 m segment along y = 0, cells of 10 m, buffer 10 m: centres at x = -5 ..= 105,
    // y = ±5; the centre (45, 5) sees x in 45 ± √75.
    #[test]
    fn straight_segment_spans() {
        let out = cells(&[(0.0, 0.0), (100.0, 0.0)], 10.0, 10.0);
        assert_eq!(out.len(), 12 * 2);
        assert!(out.windows(2).all(|w| w[0].cell < w[1].cell));
        let s = out.iter().find(|s| s.cell == Cell { i: 4, j: 0 }).unwrap();
        let r = 75f64.sqrt();
        assert!(
            (s.lo as f64 - (45.0 - r) / 100.0).abs() < 1e-6
                && (s.hi as f64 - (45.0 + r) / 100.0).abs() < 1e-6
        );
        let end = out
            .iter()
            .find(|s| s.cell == Cell { i: 10, j: -1 })
            .unwrap();
        assert_eq!(end.hi, 1.0);
    }

    // An L-shaped line: the corner cell's span covers both legs; spans are fractions of the
    // whole line (200 m).
    #[test]
    fn polyline_spans_merge_across_segments() {
        let out = cells(&[(0.0, 0.0), (100.0, 0.0), (100.0, 100.0)], 10.0, 10.0);
        let corner = out.iter().find(|s| s.cell == Cell { i: 9, j: 0 }).unwrap();
        let r = 75f64.sqrt();
        assert!((corner.lo as f64 - (95.0 - r) / 200.0).abs() < 1e-6);
        assert!((corner.hi as f64 - (100.0 + 5.0 + r) / 200.0).abs() < 1e-6);
        // No cell twice.
        assert!(out.windows(2).all(|w| w[0].cell < w[1].cell));
    }

    #[test]
    fn a_point_line_and_a_buffer_below_half_a_diagonal() {
        assert_eq!(cells(&[(3.0, 3.0)], 10.0, 5.0).len(), 1);
        // A 1 m buffer around a point at a cell corner touches no centre.
        assert!(cells(&[(10.0, 10.0), (10.0, 10.0)], 10.0, 1.0).is_empty());
    }
}
