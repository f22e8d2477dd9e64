//! Clipping polygons to axis-aligned rectangles (exact intersection areas).
//!
//! Two kernels:
//! - [`ring_rect_area`] / [`polygon_rect_area`] / [`multipolygon_rect_area`]: the area of a
//!   polygon inside one rectangle, by Sutherland–Hodgman clipping;
//! - [`cell_overlaps`]: the area of a polygon inside *every* cell of the analysis grid it
//!   touches, in one pass over its boundary. This is how a block group is joined to isochrone
//!   cells: computed once per block group, then reused by every POI.
//!
//! Coordinates are EPSG:5070 metres (planar, equal-area), so planar areas are ground areas.

use crate::geom::grid::{Cell, Grid};
use geo::{Coord, MultiPolygon, Polygon, Rect};

/// Reusable buffers for the clipping kernels, so that clipping many rings or polygons does not
/// allocate after warm-up. One per thread; the contents between calls are meaningless.
#[derive(Clone, Debug, Default)]
pub struct ClipScratch {
    a: Vec<Coord<f64>>,
    b: Vec<Coord<f64>>,
    pieces: Vec<Piece>,
}

impl ClipScratch {
    /// Empty buffers.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The ring without its closing point (if it has one).
#[inline]
fn open_ring(ring: &[Coord<f64>]) -> &[Coord<f64>] {
    match ring {
        [first, .., last] if first == last => &ring[..ring.len() - 1],
        _ => ring,
    }
}

/// Twice the signed (counter-clockwise positive) area of a ring given without its closing
/// point.
#[inline]
fn twice_signed_area(pts: &[Coord<f64>]) -> f64 {
    let Some(&last) = pts.last() else { return 0.0 };
    let mut prev = last;
    let mut sum = 0.0;
    for &p in pts {
        sum += prev.x * p.y - p.x * prev.y;
        prev = p;
    }
    sum
}

/// One Sutherland–Hodgman stage: keeps the part of the closed ring `input` on the inner side
/// of the line `x = bound` (`X`) or `y = bound` (`!X`), the inner side being `≥ bound` when
/// `ABOVE`, else `≤ bound`.
#[inline]
fn clip_side<const X: bool, const ABOVE: bool>(
    input: &[Coord<f64>],
    out: &mut Vec<Coord<f64>>,
    bound: f64,
) {
    out.clear();
    let Some(&last) = input.last() else { return };
    let inside = |p: Coord<f64>| {
        let v = if X { p.x } else { p.y };
        if ABOVE { v >= bound } else { v <= bound }
    };
    // Only called with p and q on different sides, so the denominator is never zero; the
    // crossing coordinate is set to `bound` exactly so that later stages see it on the line.
    let cross = |p: Coord<f64>, q: Coord<f64>| {
        if X {
            let t = (bound - p.x) / (q.x - p.x);
            Coord {
                x: bound,
                y: p.y + t * (q.y - p.y),
            }
        } else {
            let t = (bound - p.y) / (q.y - p.y);
            Coord {
                x: p.x + t * (q.x - p.x),
                y: bound,
            }
        }
    };
    let mut prev = last;
    let mut prev_in = inside(prev);
    for &cur in input {
        let cur_in = inside(cur);
        if cur_in != prev_in {
            out.push(cross(prev, cur));
        }
        if cur_in {
            out.push(cur);
        }
        prev = cur;
        prev_in = cur_in;
    }
}

/// Area (m², always ≥ 0) of the intersection of a simple ring with an axis-aligned rectangle.
///
/// `ring` may be closed (first point repeated at the end) or not, in either orientation. An
/// empty or degenerate rectangle, a ring of fewer than three points or a ring with a
/// non-finite coordinate gives 0.
///
/// Method: Sutherland–Hodgman against the rectangle's four sides, then the shoelace formula.
/// For a concave ring SH does not return the true intersection polygon: where the ring leaves
/// the window and comes back, the output runs along the window side, and if the intersection
/// falls apart into several pieces they stay joined by such "bridges" that go along the side
/// and back. The *area* is still exact, because the shoelace sum is the integral of the
/// output's winding number, and that winding number equals the ring's inside the window and 0
/// outside: each excursion of the ring beyond a side is replaced by the straight path along
/// the side between the same two points, and the loop formed by an excursion and its
/// replacement lies wholly beyond the side, so it winds around no point inside the window.
/// The bridges enclose no area (they are segments traversed both ways). Hence the signed area
/// of the SH output is the signed area of ring ∩ window, for any convex window.
///
/// Coordinates are shifted to the rectangle's corner first, so that areas of small pieces of
/// a polygon far from the projection origin do not lose digits. Cost O(V) for V vertices,
/// with no allocation once `scratch` has grown; rings whose bounding box is inside or outside
/// the rectangle skip clipping.
pub fn ring_rect_area(ring: &[Coord<f64>], rect: &Rect<f64>, scratch: &mut ClipScratch) -> f64 {
    let (lo, hi) = (rect.min(), rect.max());
    let (w, h) = (hi.x - lo.x, hi.y - lo.y);
    if !(w > 0.0 && h > 0.0 && lo.x.is_finite() && lo.y.is_finite()) {
        return 0.0;
    }
    let pts = open_ring(ring);
    if pts.len() < 3 {
        return 0.0;
    }
    let a = &mut scratch.a;
    a.clear();
    let (mut minx, mut miny) = (f64::INFINITY, f64::INFINITY);
    let (mut maxx, mut maxy) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut finite = true;
    for p in pts {
        let q = Coord {
            x: p.x - lo.x,
            y: p.y - lo.y,
        };
        finite &= q.x.is_finite() && q.y.is_finite();
        minx = minx.min(q.x);
        miny = miny.min(q.y);
        maxx = maxx.max(q.x);
        maxy = maxy.max(q.y);
        a.push(q);
    }
    if !finite || maxx <= 0.0 || maxy <= 0.0 || minx >= w || miny >= h {
        return 0.0;
    }
    // Clip only against the sides the ring's bounding box crosses.
    if minx < 0.0 {
        clip_side::<true, true>(&scratch.a, &mut scratch.b, 0.0);
        std::mem::swap(&mut scratch.a, &mut scratch.b);
    }
    if maxx > w {
        clip_side::<true, false>(&scratch.a, &mut scratch.b, w);
        std::mem::swap(&mut scratch.a, &mut scratch.b);
    }
    if miny < 0.0 {
        clip_side::<false, true>(&scratch.a, &mut scratch.b, 0.0);
        std::mem::swap(&mut scratch.a, &mut scratch.b);
    }
    if maxy > h {
        clip_side::<false, false>(&scratch.a, &mut scratch.b, h);
        std::mem::swap(&mut scratch.a, &mut scratch.b);
    }
    (0.5 * twice_signed_area(&scratch.a)).abs()
}

/// Area (m²) of `poly ∩ rect`: the exterior's clipped area minus the holes'. Assumes a valid
/// polygon (holes inside the exterior, not overlapping); rounding never makes it negative.
pub fn polygon_rect_area(poly: &Polygon<f64>, rect: &Rect<f64>, scratch: &mut ClipScratch) -> f64 {
    let outer = ring_rect_area(&poly.exterior().0, rect, scratch);
    if outer == 0.0 {
        return 0.0;
    }
    let holes: f64 = poly
        .interiors()
        .iter()
        .map(|h| ring_rect_area(&h.0, rect, scratch))
        .sum();
    (outer - holes).max(0.0)
}

/// Area (m²) of `mp ∩ rect`: the sum over its polygons (valid multipolygons do not overlap).
pub fn multipolygon_rect_area(
    mp: &MultiPolygon<f64>,
    rect: &Rect<f64>,
    scratch: &mut ClipScratch,
) -> f64 {
    mp.0.iter()
        .map(|p| polygon_rect_area(p, rect, scratch))
        .sum()
}

/// A piece of a polygon edge inside one grid cell, in cell units (see [`cell_overlaps_with`]).
#[derive(Clone, Copy, Debug)]
struct Piece {
    /// `strip << 32 | column`, both relative to the polygon's grid origin.
    key: u64,
    /// `∫ (u − u_col) dv` over the piece, oriented.
    a: f64,
    /// `∫ dv` over the piece, oriented.
    d: f64,
}

/// Cells whose area, in cell units, is below this are rounding noise and not reported
/// (6·10⁻⁷ m² for 25 m cells).
const MIN_FRACTION: f64 = 1e-9;

/// Every grid cell with a positive intersection area with `poly`, and that area (m²), sorted by
/// cell. `out` is cleared first.
///
/// Allocates a fresh [`ClipScratch`]; see [`cell_overlaps_with`] for the method, the cost and
/// a variant that reuses buffers.
pub fn cell_overlaps(poly: &MultiPolygon<f64>, grid: &Grid, out: &mut Vec<(Cell, f64)>) {
    cell_overlaps_with(poly, grid, &mut ClipScratch::new(), out);
}

/// [`cell_overlaps`] with caller-provided buffers.
///
/// Assumes a valid multipolygon (rings simple, holes inside their exterior, polygons not
/// overlapping); ring orientation does not matter. Rings with a non-finite coordinate are
/// skipped. Cells below 10⁻⁹ of a cell's area are dropped as rounding noise, and nothing is
/// reported for a polygon whose cells would fall outside the `i32` index range.
///
/// # Method
///
/// No polygon is ever clipped against a cell. Let `v` be the coordinate across the grid's
/// column strips (x, giving `i`) and `u` the coordinate along a strip (y, giving `j`), both in
/// cell units. For one strip, the area of the polygon at or above `u = u_k` is the boundary
/// integral `∮ (u − u_k) dv` over the parts of the boundary inside the strip and above `u_k`:
/// the closing segments along the strip's sides have `dv = 0` and those along `u = u_k` have
/// `u − u_k = 0`, so neither contributes. Cutting every edge where it crosses a grid line
/// into pieces, each inside one cell, and differencing at consecutive `u_k` gives for cell `k`
///
/// `area(k) = Σ_{pieces in k} ∫ (u − u_k) dv + Σ_{pieces in cells k' > k of the strip} ∫ dv`,
///
/// the first term being the partial coverage next to the boundary and the second the full
/// height covered above it ("coverage" of exactextract-like rasterisers). Since the `∫ dv`
/// of a whole strip is zero, the second term is minus the running sum of `∫ dv` from the
/// strip's lowest cell, so one ascending sweep per strip yields every cell in order, including
/// the fully covered cells between boundary pieces, which need no piece and no
/// point-in-polygon test. Holes enter with the opposite orientation and subtract. The sum over
/// all cells is `∮ u dv`, the polygon's area, whatever the rounding of the cut points.
///
/// # Cost
///
/// For V vertices, K crossings of the boundary with grid lines (about perimeter / cell side
/// × 1.3) and N reported cells: O(V + K) to cut the edges into at most V + K pieces,
/// O((V + K) log(V + K)) to sort them by cell, O(N) for the sweep. The interior is never
/// visited cell by cell except to write its output. A polygon of 100,000 cells with a
/// boundary of 2,000 cells costs about the sort of 2,000 pieces plus writing 100,000 results.
/// With an integer-valued `cell_m`, a polygon whose vertices are on cell corners gets exact
/// full-cell areas.
pub fn cell_overlaps_with(
    poly: &MultiPolygon<f64>,
    grid: &Grid,
    scratch: &mut ClipScratch,
    out: &mut Vec<(Cell, f64)>,
) {
    out.clear();
    let c = grid.cell_m;
    if !(c.is_finite() && c > 0.0) {
        return;
    }
    let rings = || {
        poly.0.iter().flat_map(|p| {
            std::iter::once((true, &p.exterior().0))
                .chain(p.interiors().iter().map(|h| (false, &h.0)))
        })
    };
    let usable =
        |r: &[Coord<f64>]| r.len() >= 3 && r.iter().all(|p| p.x.is_finite() && p.y.is_finite());

    // Grid origin of the polygon, one cell below its bounding box so that rounding can never
    // put a point at a negative local index.
    let (mut minx, mut miny) = (f64::INFINITY, f64::INFINITY);
    let (mut maxx, mut maxy) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for (_, r) in rings() {
        if usable(r) {
            for p in r {
                minx = minx.min(p.x);
                miny = miny.min(p.y);
                maxx = maxx.max(p.x);
                maxy = maxy.max(p.y);
            }
        }
    }
    if minx > maxx {
        return;
    }
    let i0 = (minx / c).floor() - 1.0;
    let j0 = (miny / c).floor() - 1.0;
    let (i1, j1) = ((maxx / c).floor() + 1.0, (maxy / c).floor() + 1.0);
    let lim = f64::from(i32::MAX);
    if i0 < f64::from(i32::MIN) || j0 < f64::from(i32::MIN) || i1 > lim || j1 > lim {
        return;
    }
    let (ox, oy) = (i0 * c, j0 * c);

    let pieces = &mut scratch.pieces;
    pieces.clear();
    for (exterior, r) in rings() {
        if !usable(r) {
            continue;
        }
        let pts = open_ring(r);
        let local = |p: &Coord<f64>| ((p.y - oy) / c, (p.x - ox) / c); // (u, v)
        // Orientation in the (u, v) frame: ∮ u dv > 0 is counter-clockwise there.
        let mut sigma = 0.0;
        let mut prev = local(&pts[pts.len() - 1]);
        for p in pts {
            let q = local(p);
            sigma += (prev.0 + q.0) * (q.1 - prev.1);
            prev = q;
        }
        if sigma == 0.0 {
            continue;
        }
        let s = if exterior {
            sigma.signum()
        } else {
            -sigma.signum()
        };
        let mut prev = local(&pts[pts.len() - 1]);
        for p in pts {
            let q = local(p);
            push_edge_pieces(prev, q, s, pieces);
            prev = q;
        }
    }
    pieces.sort_unstable_by_key(|p| p.key);

    let area_m2 = c * c;
    let mut emit = |strip: u64, col: u64, frac: f64| {
        if frac > MIN_FRACTION {
            let cell = Cell {
                i: (i0 + strip as f64) as i32,
                j: (j0 + col as f64) as i32,
            };
            out.push((cell, frac.min(1.0) * area_m2));
        }
    };
    let mut k = 0;
    while k < pieces.len() {
        let strip = pieces[k].key >> 32;
        let mut running = 0.0; // Σ ∫dv over the strip's cells up to the current one
        let mut prev_col: Option<u64> = None;
        while k < pieces.len() && pieces[k].key >> 32 == strip {
            let key = pieces[k].key;
            let col = key & 0xffff_ffff;
            if let Some(pc) = prev_col {
                // Cells strictly between two boundary cells: fully covered or empty.
                let gap = -running;
                if gap > MIN_FRACTION {
                    for g in pc + 1..col {
                        emit(strip, g, gap);
                    }
                }
            }
            let (mut a, mut d) = (0.0, 0.0);
            while k < pieces.len() && pieces[k].key == key {
                a += pieces[k].a;
                d += pieces[k].d;
                k += 1;
            }
            running += d;
            emit(strip, col, a - running);
            prev_col = Some(col);
        }
    }
}

/// Number and first of the integer lines strictly between `a` and `b`, and the step towards
/// `b`.
#[inline]
fn crossings(a: f64, b: f64) -> (f64, f64, u64) {
    if b > a {
        let (first, last) = (a.floor() + 1.0, b.ceil() - 1.0);
        (
            first,
            1.0,
            if last >= first {
                (last - first) as u64 + 1
            } else {
                0
            },
        )
    } else if b < a {
        let (first, last) = (a.ceil() - 1.0, b.floor() + 1.0);
        (
            first,
            -1.0,
            if first >= last {
                (first - last) as u64 + 1
            } else {
                0
            },
        )
    } else {
        (0.0, 0.0, 0)
    }
}

/// Cuts the edge `p → q` ((u, v), cell units) at every grid line and records each piece's
/// contribution, with orientation factor `s`. Edges along a strip (`dv = 0`) contribute
/// nothing and are skipped.
#[inline]
fn push_edge_pieces(p: (f64, f64), q: (f64, f64), s: f64, pieces: &mut Vec<Piece>) {
    let (ua, va) = p;
    let (ub, vb) = q;
    let dv = vb - va;
    if dv == 0.0 {
        return;
    }
    let du = ub - ua;
    let (mut kv, sv, mut nv) = crossings(va, vb);
    let (mut ku, su, mut nu) = crossings(ua, ub);
    // Integer counters (not float comparisons) bound the loop, whatever the rounding.
    let (mut cu, mut cv) = (ua, va);
    loop {
        let tv = if nv > 0 {
            (kv - va) / dv
        } else {
            f64::INFINITY
        };
        let tu = if nu > 0 {
            (ku - ua) / du
        } else {
            f64::INFINITY
        };
        let (nu_, nv_, last) = if nv == 0 && nu == 0 {
            (ub, vb, true)
        } else if tv <= tu {
            let r = (ua + tv * du, kv);
            kv += sv;
            nv -= 1;
            (r.0, r.1, false)
        } else {
            let r = (ku, va + tu * dv);
            ku += su;
            nu -= 1;
            (r.0, r.1, false)
        };
        let dvp = nv_ - cv;
        if dvp != 0.0 {
            let um = 0.5 * (cu + nu_);
            let col = um.floor();
            let strip = (0.5 * (cv + nv_)).floor();
            // `as u64` saturates: rounding cannot push a piece below the origin margin, and if
            // it did, the piece would only move to a neighbouring cell.
            let key = ((strip as u64) << 32) | (col as u64 & 0xffff_ffff);
            pieces.push(Piece {
                key,
                a: s * (um - col) * dvp,
                d: s * dvp,
            });
        }
        if last {
            break;
        }
        cu = nu_;
        cv = nv_;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geom::albers::to_5070;
    use geo::{Area, BooleanOps, LineString, MapCoords};

    fn ring(v: &[(f64, f64)]) -> Vec<Coord<f64>> {
        let mut r: Vec<Coord<f64>> = v.iter().map(|&(x, y)| Coord { x, y }).collect();
        r.push(r[0]);
        r
    }

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> Rect<f64> {
        Rect::new(Coord { x: x0, y: y0 }, Coord { x: x1, y: y1 })
    }

    fn poly(ext: &[(f64, f64)], holes: &[&[(f64, f64)]]) -> Polygon<f64> {
        Polygon::new(
            LineString(ring(ext)),
            holes.iter().map(|h| LineString(ring(h))).collect(),
        )
    }

    #[test]
    fn unit_square_half_over_rectangle() {
        let s = &mut ClipScratch::new();
        let sq = ring(&[(0., 0.), (1., 0.), (1., 1.), (0., 1.)]);
        assert_eq!(ring_rect_area(&sq, &rect(0.5, 0.0, 1.5, 1.0), s), 0.5);
        // Reversed orientation and open ring give the same.
        let mut rev = sq.clone();
        rev.reverse();
        assert_eq!(ring_rect_area(&rev, &rect(0.5, 0.0, 1.5, 1.0), s), 0.5);
        assert_eq!(ring_rect_area(&sq[..4], &rect(0.5, 0.0, 1.5, 1.0), s), 0.5);
        // Inside, containing, disjoint, touching, degenerate.
        assert_eq!(ring_rect_area(&sq, &rect(-1., -1., 2., 2.), s), 1.0);
        assert_eq!(ring_rect_area(&sq, &rect(0.25, 0.25, 0.75, 0.5), s), 0.125);
        assert_eq!(ring_rect_area(&sq, &rect(2., 2., 3., 3.), s), 0.0);
        assert_eq!(ring_rect_area(&sq, &rect(1., 0., 2., 1.), s), 0.0);
        assert_eq!(ring_rect_area(&sq, &rect(0.5, 0., 0.5, 1.), s), 0.0);
        assert_eq!(ring_rect_area(&sq[..2], &rect(-1., -1., 2., 2.), s), 0.0);
        let bad = ring(&[(0., 0.), (f64::NAN, 0.), (1., 1.)]);
        assert_eq!(ring_rect_area(&bad, &rect(-1., -1., 2., 2.), s), 0.0);
    }

    #[test]
    fn triangle() {
        let s = &mut ClipScratch::new();
        let t = ring(&[(0., 0.), (4., 0.), (0., 4.)]);
        // x ∈ [1,2]: full height 2 → 2; x ∈ [2,3]: height 4 − x, mean 1.5 → 1.5.
        assert!((ring_rect_area(&t, &rect(1., 0., 3., 2.), s) - 3.5).abs() < 1e-12);
        // The square's corner (2,2) lies on the hypotenuse: all of it is inside.
        assert!((ring_rect_area(&t, &rect(0., 0., 2., 2.), s) - 4.0).abs() < 1e-12);
        // Corner cut: x + y ≤ 4 within [1.5,3]×[1.5,3] is the triangle with legs 1.
        assert!((ring_rect_area(&t, &rect(1.5, 1.5, 3., 3.), s) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn concave_u_with_both_arms_crossing() {
        let s = &mut ClipScratch::new();
        // [0,3]² without the notch [1,2]×[1,3]: two arms x ∈ [0,1] and [2,3] above y = 1.
        let u = ring(&[
            (0., 0.),
            (3., 0.),
            (3., 3.),
            (2., 3.),
            (2., 1.),
            (1., 1.),
            (1., 3.),
            (0., 3.),
        ]);
        // The window cuts both arms: two separate pieces of 1 × 0.5 each.
        assert!((ring_rect_area(&u, &rect(-1., 2., 4., 2.5), s) - 1.0).abs() < 1e-12);
        // A window over the notch's mouth: arms only (the notch contributes nothing).
        assert!((ring_rect_area(&u, &rect(0.5, 1.5, 2.5, 4.0), s) - 1.5).abs() < 1e-12);
        let mut rev = u.clone();
        rev.reverse();
        assert!((ring_rect_area(&rev, &rect(-1., 2., 4., 2.5), s) - 1.0).abs() < 1e-12);
        // Whole polygon: 9 − 2.
        assert!((ring_rect_area(&u, &rect(-1., -1., 4., 4.), s) - 7.0).abs() < 1e-12);
    }

    #[test]
    fn polygon_with_hole() {
        let s = &mut ClipScratch::new();
        let p = poly(
            &[(0., 0.), (4., 0.), (4., 4.), (0., 4.)],
            &[&[(1., 1.), (3., 1.), (3., 3.), (1., 3.)]],
        );
        assert!((polygon_rect_area(&p, &rect(0., 0., 2., 2.), s) - 3.0).abs() < 1e-12);
        assert_eq!(polygon_rect_area(&p, &rect(1.5, 1.5, 2.5, 2.5), s), 0.0);
        assert!((polygon_rect_area(&p, &rect(-1., -1., 5., 5.), s) - 12.0).abs() < 1e-12);
        let mp = MultiPolygon(vec![
            p,
            poly(&[(10., 0.), (11., 0.), (11., 1.), (10., 1.)], &[]),
        ]);
        assert!(
            (multipolygon_rect_area(&mp, &rect(0., 0., 10.5, 0.5), s) - (2.0 + 0.25)).abs() < 1e-12
        );
    }

    use crate::testdata::XorShift;

    /// A random star-shaped polygon around `(cx, cy)` with `n ≥ 6` vertices at jittered,
    /// increasing angles (gaps below a quarter turn, so the ring is simple and stays farther
    /// than 0.35 r from the centre), with a star-shaped hole of radius below 0.3 r when `hole`.
    fn random_star(
        rng: &mut XorShift,
        cx: f64,
        cy: f64,
        r: f64,
        n: usize,
        hole: bool,
    ) -> Polygon<f64> {
        let star = |rng: &mut XorShift, rmin: f64, rmax: f64, n: usize| {
            let v: Vec<(f64, f64)> = (0..n)
                .map(|k| {
                    let a = (k as f64 + 0.5 * rng.unit()) / n as f64 * std::f64::consts::TAU;
                    let rr = rmin + (rmax - rmin) * rng.unit();
                    (cx + rr * a.cos(), cy + rr * a.sin())
                })
                .collect();
            LineString(ring(&v))
        };
        let n = n.max(6);
        let ext = star(rng, 0.5 * r, r, n);
        let holes = if hole {
            vec![star(rng, 0.05 * r, 0.3 * r, n.div_ceil(2))]
        } else {
            vec![]
        };
        Polygon::new(ext, holes)
    }

    #[test]
    fn random_polygons_match_boolean_ops() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let s = &mut ClipScratch::new();
        let mut nonzero = 0;
        for k in 0..300 {
            let p = random_star(
                &mut rng,
                1_500_000.0,
                -400_000.0,
                500.0,
                5 + k % 40,
                k % 3 == 0,
            );
            let (x0, y0) = (
                1_500_000.0 - 700.0 + 1400.0 * rng.unit(),
                -400_000.0 - 700.0 + 1400.0 * rng.unit(),
            );
            let r = rect(
                x0,
                y0,
                x0 + 50.0 + 600.0 * rng.unit(),
                y0 + 50.0 + 600.0 * rng.unit(),
            );
            let ours = polygon_rect_area(&p, &r, s);
            let theirs = p.intersection(&r.to_polygon()).unsigned_area();
            // BooleanOps is itself off by up to a few 1e-9 of the polygon's area: in one case
            // here (k = 154) it gives 211562.544494 m² where exact rational arithmetic gives
            // 211562.543941 m², as do we to 1e-10 m².
            assert!(
                (ours - theirs).abs() <= 1e-8 * p.unsigned_area(),
                "case {k}: ours {ours} vs BooleanOps {theirs}"
            );
            nonzero += usize::from(theirs > 0.0);
        }
        assert!(nonzero > 150, "test must exercise overlaps, got {nonzero}");
    }

    fn check_overlaps(mp: &MultiPolygon<f64>, grid: &Grid) -> Vec<(Cell, f64)> {
        let mut out = Vec::new();
        cell_overlaps(mp, grid, &mut out);
        assert!(
            out.windows(2).all(|w| w[0].0 < w[1].0),
            "sorted, no duplicates"
        );
        let total: f64 = out.iter().map(|x| x.1).sum();
        let area = mp.unsigned_area();
        assert!(
            (total - area).abs() <= 1e-9 * area,
            "sum {total} vs area {area}"
        );
        // Every cell against Sutherland–Hodgman on that cell alone, including every cell of
        // the bounding box that is not reported.
        let s = &mut ClipScratch::new();
        let cell_area = grid.cell_area_m2();
        let bb = geo::BoundingRect::bounding_rect(mp).unwrap();
        let (lo, hi) = (grid.cell_of(bb.min()), grid.cell_of(bb.max()));
        let mut it = out.iter().peekable();
        for i in lo.i - 1..=hi.i + 1 {
            for j in lo.j - 1..=hi.j + 1 {
                let cell = Cell { i, j };
                let sh = multipolygon_rect_area(mp, &grid.cell_rect(cell), s);
                let ours = match it.peek() {
                    Some(&&(c, a)) if c == cell => {
                        it.next();
                        a
                    }
                    _ => 0.0,
                };
                assert!(
                    (ours - sh).abs() <= 1e-7 * cell_area,
                    "cell {cell:?}: {ours} vs SH {sh}"
                );
            }
        }
        assert!(it.next().is_none(), "cells outside the bounding box");
        out
    }

    #[test]
    fn random_polygons_cell_overlaps() {
        let mut rng = XorShift(99);
        for k in 0..40 {
            let n = 3 + (k * 7) % 60;
            let cx = 1_234_567.0 + 1000.0 * rng.unit();
            let cy = 1_987_654.0 + 1000.0 * rng.unit();
            let mut polys = vec![random_star(&mut rng, cx, cy, 300.0, n, k % 2 == 0)];
            if k % 4 == 1 {
                // A second, disjoint polygon.
                polys.push(random_star(
                    &mut rng,
                    cx + 1000.0,
                    cy - 50.0,
                    150.0,
                    n,
                    false,
                ));
            }
            let mp = MultiPolygon(polys);
            for cell_m in [25.0, 100.0, 37.5] {
                check_overlaps(&mp, &Grid { cell_m });
            }
        }
    }

    #[test]
    fn orientation_does_not_matter() {
        let mut rng = XorShift(5);
        let p = random_star(&mut rng, -2_000_000.0, 500_000.0, 400.0, 30, true);
        let mut q = p.clone();
        q.exterior_mut(|r| r.0.reverse());
        q.interiors_mut(|hs| hs.iter_mut().for_each(|h| h.0.reverse()));
        let g = Grid { cell_m: 30.0 };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        cell_overlaps(&MultiPolygon(vec![p]), &g, &mut a);
        cell_overlaps(&MultiPolygon(vec![q]), &g, &mut b);
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.0, y.0);
            assert!((x.1 - y.1).abs() < 1e-9 * 900.0);
        }
    }

    #[test]
    fn aligned_polygon_gives_exact_full_cells() {
        // An L of cells i ∈ 60000..60004 × j ∈ −20..−18, plus i ∈ 60000..60002 × j ∈ −18..−15,
        // with a one-cell hole at (60001, −17), in 25 m cells far from the origin.
        let c = 25.0;
        let v = |i: f64, j: f64| (i * c, j * c);
        let p = poly(
            &[
                v(60000., -20.),
                v(60004., -20.),
                v(60004., -18.),
                v(60002., -18.),
                v(60002., -15.),
                v(60000., -15.),
            ],
            &[&[
                v(60001., -17.),
                v(60001., -16.),
                v(60002., -16.),
                v(60002., -17.),
            ]],
        );
        let mut out = Vec::new();
        cell_overlaps(&MultiPolygon(vec![p]), &Grid { cell_m: c }, &mut out);
        let mut expect: Vec<Cell> = Vec::new();
        for i in 60000..60004 {
            for j in -20..-18 {
                expect.push(Cell { i, j });
            }
        }
        for i in 60000..60002 {
            for j in -18..-15 {
                if (i, j) != (60001, -17) {
                    expect.push(Cell { i, j });
                }
            }
        }
        expect.sort();
        assert_eq!(out.iter().map(|x| x.0).collect::<Vec<_>>(), expect);
        assert!(out.iter().all(|x| x.1 == 625.0), "{out:?}");
    }

    #[test]
    fn degenerate_inputs() {
        let mut out = vec![(Cell { i: 0, j: 0 }, 1.0)];
        let g = Grid { cell_m: 25.0 };
        cell_overlaps(&MultiPolygon(vec![]), &g, &mut out);
        assert!(out.is_empty());
        let nan = poly(&[(0., 0.), (f64::NAN, 0.), (10., 10.)], &[]);
        cell_overlaps(&MultiPolygon(vec![nan]), &g, &mut out);
        assert!(out.is_empty());
        let flat = poly(&[(0., 0.), (100., 0.), (200., 0.)], &[]);
        cell_overlaps(&MultiPolygon(vec![flat]), &g, &mut out);
        assert!(out.is_empty());
        let sq = MultiPolygon(vec![poly(
            &[(0., 0.), (10., 0.), (10., 10.), (0., 10.)],
            &[],
        )]);
        cell_overlaps(&sq, &Grid { cell_m: 0.0 }, &mut out);
        assert!(out.is_empty());
        cell_overlaps(&sq, &Grid { cell_m: 1e-9 }, &mut out); // beyond the i32 range
        assert!(out.is_empty());
        // A polygon inside one cell.
        cell_overlaps(&sq, &Grid { cell_m: 100.0 }, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0, Cell { i: 0, j: 0 });
        assert!((out[0].1 - 100.0).abs() < 1e-9);
    }

    use crate::testdata::shared_data_dir as data_dir;

    /// DC's block groups, projected to EPSG:5070: (GEOID, boundary).
    fn dc_block_groups() -> Vec<(String, MultiPolygon<f64>)> {
        let path = data_dir().join("dc/block_groups.geojson");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let gj: geojson::GeoJson = text.parse().expect("block_groups.geojson parses");
        let geojson::GeoJson::FeatureCollection(fc) = gj else {
            panic!("not a FeatureCollection")
        };
        fc.features
            .iter()
            .map(|f| {
                let geoid = f
                    .property("GEOID")
                    .and_then(|v| v.as_str())
                    .expect("GEOID")
                    .to_string();
                let g: geo::Geometry<f64> = f
                    .geometry
                    .as_ref()
                    .expect("geometry")
                    .try_into()
                    .expect("geo");
                let mp = match g {
                    geo::Geometry::Polygon(p) => MultiPolygon(vec![p]),
                    geo::Geometry::MultiPolygon(mp) => mp,
                    other => panic!("{geoid}: unexpected {other:?}"),
                };
                (geoid, mp.map_coords(|c| to_5070(c.x, c.y)))
            })
            .collect()
    }

    #[test]
    fn dc_block_groups_cell_overlaps() {
        let bgs = dc_block_groups();
        assert_eq!(bgs.len(), 571);
        let g = Grid { cell_m: 100.0 };
        let mut out = Vec::new();
        let mut s = ClipScratch::new();
        let mut cells = 0;
        for (geoid, mp) in &bgs {
            cell_overlaps_with(mp, &g, &mut s, &mut out);
            let total: f64 = out.iter().map(|x| x.1).sum();
            let area = mp.unsigned_area();
            assert!(
                (total - area).abs() <= 1e-9 * area,
                "{geoid}: {total} vs {area}"
            );
            cells += out.len();
        }
        assert!(cells > 571 * 4);
        // The first feature (GEOID 110010076034, ALAND 302,605 m², no water): every cell
        // checked against per-cell clipping at both resolutions, and its projected area is
        // within 0.5 % of the Census land area (the 500k file is generalised).
        let (geoid, mp) = &bgs[0];
        assert_eq!(geoid, "110010076034");
        assert!(
            (mp.unsigned_area() / 302_605.0 - 1.0).abs() < 0.005,
            "{}",
            mp.unsigned_area()
        );
        check_overlaps(mp, &Grid { cell_m: 25.0 });
        check_overlaps(mp, &Grid { cell_m: 100.0 });
    }
}
