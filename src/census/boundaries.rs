//! Reading block-group boundaries from shapefile zips and GeoJSON.
//!
//! Accepted inputs, recognised by their first bytes (the extension only sharpens the error
//! message when the content does not match it):
//! - a TIGER/Line or cartographic-boundary shapefile ZIP such as `cb_2020_11_bg_500k.zip` or
//!   `tl_2023_37_bg.zip`, read in memory; the `.shp`, `.dbf` (and `.shx`, `.prj` when present)
//!   members are found whatever folder they sit in;
//! - a bare `.shp` with its sibling `.dbf` (and optional `.shx`, `.prj`);
//! - a GeoJSON FeatureCollection (or a single Feature), such as TIGERweb's `f=geojson` answer.
//!
//! The GEOID comes from the `GEOID` property, else `GEO_ID`/`AFFGEOID`
//! (`1500000US110010001011`), else the parts `STATEFP+COUNTYFP+TRACTCE+BLKGRPCE` or
//! `STATE+COUNTY+TRACT+BLKGRP`; property names are matched case-insensitively. It must be 12
//! digits: an 11-digit tract GEOID is refused rather than padded into a wrong block group.

use crate::census::BlockGroup;
use crate::{Error, Result};
use geo::{Coord, LineString, MultiPolygon, Polygon};
use serde::Deserialize;
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde_json::{Map, Value};
use shapefile::dbase;
use shapefile::record::traits::HasXY;
use std::fmt;
use std::io::{Cursor, Read};
use std::path::Path;

/// Message for coordinates that cannot be longitude/latitude.
const PROJECTED: &str = "coordinates look projected; expected lon/lat degrees (EPSG:4269/4326)";

/// Above this many outer rings in one shape, holes find their candidate outers through an
/// R-tree of ring bounding boxes instead of a linear scan.
const RTREE_MIN_OUTERS: usize = 32;

/// Reads block groups from a shapefile ZIP, a `.shp` (with its `.dbf`) or a GeoJSON file.
///
/// Output is sorted by GEOID. Every problem (missing or empty file, unknown format, a zip
/// without `.shp`/`.dbf`, a corrupt shapefile, a feature without a usable GEOID, a duplicate
/// GEOID, projected coordinates) is an [`Error::Input`] naming the file and the cause.
pub fn read_block_groups(path: &Path) -> Result<Vec<BlockGroup>> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    parse_block_groups(path, bytes)
}

/// [`read_block_groups`] of a shapefile zip or GeoJSON already in memory (a download); `path`
/// names it in errors, and its extension sharpens them as for a file.
pub fn parse_block_groups(path: &Path, bytes: Vec<u8>) -> Result<Vec<BlockGroup>> {
    if bytes.is_empty() {
        return Err(Error::input(path, "empty file"));
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let features = if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        read_zip(path, bytes)?
    } else if ext == "zip" {
        return Err(Error::input(
            path,
            "not a zip archive (no zip signature at the start)",
        ));
    } else if bytes.starts_with(&[0x00, 0x00, 0x27, 0x0a]) {
        read_shp_with_siblings(path, bytes)?
    } else if ext == "shp" {
        return Err(Error::input(
            path,
            "not a shapefile (.shp file code 9994 missing)",
        ));
    } else if first_non_blank(&bytes) == Some(b'{') {
        read_geojson(path, &bytes)?
    } else {
        return Err(Error::input(
            path,
            "unrecognised format: expected a shapefile .zip, a .shp or a GeoJSON \
             FeatureCollection",
        ));
    };
    finish(path, features)
}

/// The states in a cartographic-boundary state shapefile zip (`cb_2023_us_state_20m.zip`):
/// (2-digit FIPS code from `STATEFP` or `GEOID`, boundary), sorted by code. `path` names the
/// bytes in errors. Used to find which states' block-group files a run needs.
pub fn parse_state_boundaries(
    path: &Path,
    bytes: Vec<u8>,
) -> Result<Vec<(String, MultiPolygon<f64>)>> {
    let mut states = read_zip_keyed(path, bytes, Key::State)?;
    if states.is_empty() {
        return Err(Error::input(path, "no states: the file holds no features"));
    }
    states.sort_by(|a, b| a.0.geoid.cmp(&b.0.geoid));
    Ok(states
        .into_iter()
        .map(|(s, _)| (s.geoid, s.boundary))
        .collect())
}

/// A state's 2-digit FIPS code from `STATEFP`, else `GEOID`.
fn state_fips_from(get: impl Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    let v = get("STATEFP")
        .or_else(|| get("GEOID"))
        .ok_or("no STATEFP or GEOID attribute")?;
    let v = v.trim();
    if v.len() == 2 && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(v.to_string())
    } else {
        Err(format!("state code '{v}' is not 2 digits"))
    }
}

/// The first byte that is not whitespace or a UTF-8 byte-order mark.
fn first_non_blank(bytes: &[u8]) -> Option<u8> {
    let b = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    b.iter().copied().find(|c| !c.is_ascii_whitespace())
}

/// Shapefile rings: (is an outer ring, closed lon/lat ring).
type Rings = Vec<(bool, Vec<Coord<f64>>)>;

/// A block group with the index of the feature it came from, for error messages.
type Indexed = (BlockGroup, usize);

/// Refuses empty and duplicate results and sorts by GEOID.
fn finish(path: &Path, mut features: Vec<Indexed>) -> Result<Vec<BlockGroup>> {
    if features.is_empty() {
        return Err(Error::input(
            path,
            "no block groups: the file holds no features",
        ));
    }
    features.sort_by(|a, b| a.0.geoid.cmp(&b.0.geoid).then(a.1.cmp(&b.1)));
    if let Some(w) = features.windows(2).find(|w| w[0].0.geoid == w[1].0.geoid) {
        return Err(Error::input(
            path,
            format!(
                "duplicate GEOID {} (features {} and {})",
                w[0].0.geoid, w[0].1, w[1].1
            ),
        ));
    }
    Ok(features.into_iter().map(|(bg, _)| bg).collect())
}

// ---------------------------------------------------------------------------------------------
// GEOID

/// Builds the 12-digit GEOID from a feature's attributes; `get` looks a property up by name,
/// case-insensitively, and returns it as text (numbers as integers).
fn geoid_from(get: impl Fn(&str) -> Option<String>) -> std::result::Result<String, String> {
    if let Some(g) = get("GEOID") {
        return check_geoid(&g, "GEOID");
    }
    for key in ["GEO_ID", "AFFGEOID"] {
        if let Some(g) = get(key) {
            // `1500000US110010001011`: the part after `US` is the GEOID. Taking the last 12
            // characters blindly would turn a 15-digit block GEOID into a wrong block group.
            let tail = g.rsplit_once("US").map_or(g.as_str(), |(_, t)| t);
            return check_geoid(tail, key);
        }
    }
    for parts in [
        ["STATEFP", "COUNTYFP", "TRACTCE", "BLKGRPCE"],
        ["STATE", "COUNTY", "TRACT", "BLKGRP"],
    ] {
        let values: Vec<Option<String>> = parts.iter().map(|k| get(k)).collect();
        if values.iter().all(Option::is_some) {
            let mut geoid = String::with_capacity(12);
            for ((v, width), key) in values.iter().flatten().zip([2, 3, 6, 1]).zip(parts) {
                let v = v.trim();
                if v.is_empty() || v.len() > width || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{key} '{v}' is not a {width}-digit code"));
                }
                geoid.extend(std::iter::repeat_n('0', width - v.len()));
                geoid.push_str(v);
            }
            return Ok(geoid);
        }
    }
    Err(
        "no GEOID: expected a GEOID, GEO_ID or AFFGEOID property, or STATEFP+COUNTYFP+\
         TRACTCE+BLKGRPCE, or STATE+COUNTY+TRACT+BLKGRP"
            .to_string(),
    )
}

/// Checks that `g` is a 12-digit block-group GEOID.
fn check_geoid(g: &str, key: &str) -> std::result::Result<String, String> {
    let g = g.trim();
    if g.len() == 12 && g.bytes().all(|b| b.is_ascii_digit()) {
        Ok(g.to_string())
    } else {
        Err(format!("{key} '{g}' is not a 12-digit block-group GEOID"))
    }
}

/// A JSON property as GEOID text: strings as they are, integral numbers without a fraction.
fn json_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => match (n.as_u64(), n.as_f64()) {
            (Some(u), _) => Some(u.to_string()),
            (None, Some(f)) if f.fract() == 0.0 && f >= 0.0 => Some(format!("{f:.0}")),
            _ => Some(n.to_string()),
        },
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Geometry helpers

/// Checks one position is a plausible lon/lat.
fn lonlat(x: f64, y: f64) -> std::result::Result<Coord<f64>, String> {
    if x.is_finite() && y.is_finite() && x.abs() <= 180.0 && y.abs() <= 90.0 {
        Ok(Coord { x, y })
    } else {
        Err(format!("{PROJECTED} (found {x}, {y})"))
    }
}

/// Closes a ring in place; returns false if it has fewer than three distinct positions
/// (a degenerate sliver, dropped rather than turned into an invalid polygon).
fn close_ring(ring: &mut Vec<Coord<f64>>) -> bool {
    if ring.first() != ring.last() {
        let first = ring[0];
        ring.push(first);
    }
    ring.len() >= 4
}

/// Axis-aligned bounding box of a ring, `[min_x, min_y, max_x, max_y]`.
fn bbox(ring: &[Coord<f64>]) -> [f64; 4] {
    ring.iter().fold(
        [
            f64::INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
        ],
        |b, c| [b[0].min(c.x), b[1].min(c.y), b[2].max(c.x), b[3].max(c.y)],
    )
}

/// Shoelace area of a closed ring, unsigned (degrees², only compared between rings).
fn ring_area(ring: &[Coord<f64>]) -> f64 {
    ring.windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum::<f64>()
        .abs()
        / 2.0
}

/// Where a point lies relative to a closed ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Inside,
    Outside,
    Boundary,
}

/// Crossing-number point-in-ring test that also reports points on an edge, so a hole that
/// touches its outer ring is judged by a vertex that is not shared.
fn point_in_ring(p: Coord<f64>, ring: &[Coord<f64>]) -> Side {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        let cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
        if cross == 0.0
            && p.x >= a.x.min(b.x)
            && p.x <= a.x.max(b.x)
            && p.y >= a.y.min(b.y)
            && p.y <= a.y.max(b.y)
        {
            return Side::Boundary;
        }
        if (a.y > p.y) != (b.y > p.y) {
            let x = a.x + (p.y - a.y) * (b.x - a.x) / (b.y - a.y);
            if p.x < x {
                inside = !inside;
            }
        }
    }
    if inside { Side::Inside } else { Side::Outside }
}

/// Whether `hole` lies inside `outer`, judged by its first vertex not on `outer`'s boundary.
fn ring_inside(hole: &[Coord<f64>], outer: &[Coord<f64>]) -> bool {
    for &p in hole {
        match point_in_ring(p, outer) {
            Side::Inside => return true,
            Side::Outside => return false,
            Side::Boundary => {}
        }
    }
    // Every vertex on the boundary: the same ring twice; treat it as inside.
    true
}

/// Turns shapefile rings (outer rings clockwise, holes counter-clockwise) into polygons: each
/// hole goes to the smallest outer ring that contains it, candidates being found by bounding
/// box first and then by a point-in-ring test. A hole inside no outer ring is kept as an outer ring of its own (some writers get
/// the orientation wrong); if a shape has no clockwise ring at all, its orientation is taken
/// as reversed throughout.
fn assemble(rings: Rings) -> MultiPolygon<f64> {
    let any_outer = rings.iter().any(|(outer, _)| *outer);
    let mut outers: Vec<Vec<Coord<f64>>> = Vec::new();
    let mut holes: Vec<Vec<Coord<f64>>> = Vec::new();
    for (is_outer, ring) in rings {
        if is_outer == any_outer {
            outers.push(ring);
        } else {
            holes.push(ring);
        }
    }
    if holes.is_empty() {
        return MultiPolygon(
            outers
                .into_iter()
                .map(|r| Polygon::new(LineString(r), Vec::new()))
                .collect(),
        );
    }

    let boxes: Vec<[f64; 4]> = outers.iter().map(|r| bbox(r)).collect();
    let areas: Vec<f64> = outers.iter().map(|r| ring_area(r)).collect();
    let tree = (outers.len() > RTREE_MIN_OUTERS).then(|| {
        use rstar::primitives::{GeomWithData, Rectangle};
        rstar::RTree::bulk_load(
            boxes
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    GeomWithData::new(Rectangle::from_corners([b[0], b[1]], [b[2], b[3]]), i)
                })
                .collect(),
        )
    });
    let contains_box =
        |o: &[f64; 4], h: &[f64; 4]| o[0] <= h[0] && o[1] <= h[1] && o[2] >= h[2] && o[3] >= h[3];

    let mut interiors: Vec<Vec<LineString<f64>>> = vec![Vec::new(); outers.len()];
    let mut orphans = Vec::new();
    for hole in holes {
        let hb = bbox(&hole);
        let candidates: Vec<usize> = match &tree {
            Some(t) => t
                .locate_in_envelope_intersecting(&rstar::AABB::from_corners(
                    [hb[0], hb[1]],
                    [hb[2], hb[3]],
                ))
                .map(|g| g.data)
                .filter(|&i| contains_box(&boxes[i], &hb))
                .collect(),
            None => (0..outers.len())
                .filter(|&i| contains_box(&boxes[i], &hb))
                .collect(),
        };
        // Even a single bounding-box candidate is checked: a mis-oriented outer ring lying in
        // a concave outer's box must not become a hole outside its polygon.
        let owner = candidates
            .into_iter()
            .filter(|&i| ring_inside(&hole, &outers[i]))
            .min_by(|&a, &b| areas[a].total_cmp(&areas[b]));
        match owner {
            Some(i) => interiors[i].push(LineString(hole)),
            None => orphans.push(hole),
        }
    }
    outers
        .into_iter()
        .zip(interiors)
        .map(|(o, h)| Polygon::new(LineString(o), h))
        .chain(
            orphans
                .into_iter()
                .map(|r| Polygon::new(LineString(r), Vec::new())),
        )
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Shapefiles

/// The members of one shapefile, in memory.
struct ShapefileParts {
    shp: Vec<u8>,
    shx: Option<Vec<u8>>,
    dbf: Vec<u8>,
    prj: Option<String>,
}

/// Reads the shapefile inside a zip archive.
fn read_zip(path: &Path, bytes: Vec<u8>) -> Result<Vec<Indexed>> {
    read_zip_keyed(path, bytes, Key::BlockGroup)
}

/// What identifies a feature: a block group's 12-digit GEOID or a state's 2-digit FIPS code.
#[derive(Clone, Copy)]
enum Key {
    BlockGroup,
    State,
}

/// [`read_zip`] with features keyed by `key`.
fn read_zip_keyed(path: &Path, bytes: Vec<u8>, key: Key) -> Result<Vec<Indexed>> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::input(path, format!("corrupt zip archive: {e}")))?;
    // Member names by lower-cased extension; macOS resource forks (`__MACOSX/`, `._x.shp`) are
    // not shapefiles.
    let names: Vec<String> = zip
        .file_names()
        .filter(|n| {
            !n.starts_with("__MACOSX/") && !n.rsplit('/').next().unwrap_or(n).starts_with("._")
        })
        .map(str::to_string)
        .collect();
    let with_ext = |ext: &str| -> Vec<&String> {
        names
            .iter()
            .filter(|n| n.to_ascii_lowercase().ends_with(ext))
            .collect()
    };
    let shps = with_ext(".shp");
    let shp_name = match shps.as_slice() {
        [one] => (*one).clone(),
        [] => {
            return Err(Error::input(
                path,
                format!("zip archive holds no .shp (members: {})", names.join(", ")),
            ));
        }
        many => {
            return Err(Error::input(
                path,
                format!(
                    "zip archive holds several shapefiles ({}); expected one",
                    many.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    };
    let stem = &shp_name[..shp_name.len() - 4];
    let sibling = |ext: &str| -> Option<String> {
        names
            .iter()
            .find(|n| {
                n.len() == stem.len() + 4
                    && n.starts_with(stem)
                    && n[stem.len()..].eq_ignore_ascii_case(ext)
            })
            .cloned()
    };
    let Some(dbf_name) = sibling(".dbf") else {
        return Err(Error::input(
            path,
            format!("zip archive has {shp_name} but no matching .dbf (the GEOIDs live there)"),
        ));
    };
    let mut member = |name: &str| -> Result<Vec<u8>> {
        let mut f = zip
            .by_name(name)
            .map_err(|e| Error::input(path, format!("zip member {name}: {e}")))?;
        let mut buf = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0).min(1 << 30));
        f.read_to_end(&mut buf)
            .map_err(|e| Error::input(path, format!("zip member {name}: {e}")))?;
        Ok(buf)
    };
    let parts = ShapefileParts {
        shp: member(&shp_name)?,
        dbf: member(&dbf_name)?,
        shx: sibling(".shx").map(|n| member(&n)).transpose()?,
        prj: sibling(".prj")
            .map(|n| member(&n))
            .transpose()?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
    };
    read_shapefile(path, &format!("{shp_name}: "), parts, key)
}

/// Reads a bare `.shp` (already in memory) and its sibling files.
fn read_shp_with_siblings(path: &Path, shp: Vec<u8>) -> Result<Vec<Indexed>> {
    // Sibling extensions may be lower or upper case, whatever the .shp's case.
    let sibling = |ext: &str| -> Option<std::path::PathBuf> {
        [ext.to_string(), ext.to_ascii_uppercase()]
            .into_iter()
            .map(|e| path.with_extension(e))
            .find(|p| p.is_file())
    };
    let read =
        |p: &Path| std::fs::read(p).map_err(|e| Error::input(p, format!("cannot read: {e}")));
    let Some(dbf_path) = sibling("dbf") else {
        return Err(Error::input(
            path,
            format!(
                "no {} beside it (the GEOIDs live there)",
                path.with_extension("dbf").display()
            ),
        ));
    };
    let parts = ShapefileParts {
        shp,
        dbf: read(&dbf_path)?,
        shx: sibling("shx").map(|p| read(&p)).transpose()?,
        prj: sibling("prj")
            .map(|p| read(&p))
            .transpose()?
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
    };
    read_shapefile(path, "", parts, Key::BlockGroup)
}

/// Reads shapes and attribute records in step. `ctx` prefixes messages (the zip member).
fn read_shapefile(path: &Path, ctx: &str, parts: ShapefileParts, key: Key) -> Result<Vec<Indexed>> {
    let fail = |cause: String| Error::input(path, format!("{ctx}{cause}"));
    if let Some(prj) = &parts.prj {
        let prj = prj.trim_start();
        if prj.starts_with("PROJCS") {
            let name = prj.split('"').nth(1).unwrap_or("unnamed");
            return Err(fail(format!(
                "the .prj declares the projected system '{name}': {PROJECTED}"
            )));
        }
    }
    let shp = Cursor::new(parts.shp);
    let mut shapes = match parts.shx {
        Some(shx) => shapefile::ShapeReader::with_shx(shp, Cursor::new(shx)),
        None => shapefile::ShapeReader::new(shp),
    }
    .map_err(|e| fail(format!("corrupt shapefile (.shp/.shx): {e}")))?;
    let shape_type = shapes.header().shape_type;
    use shapefile::ShapeType as T;
    if !matches!(
        shape_type,
        T::Polygon | T::PolygonM | T::PolygonZ | T::NullShape
    ) {
        return Err(fail(format!(
            "holds {shape_type} shapes; block groups must be polygons"
        )));
    }
    let mut dbf = dbase::ReaderBuilder::new()
        // TIGER .dbf files are UTF-8 (their .cpg says so), older ones Latin-1; names are not
        // used, so a lossy decode beats refusing an unknown code page.
        .with_encoding(dbase::UnicodeLossy)
        .build(Cursor::new(parts.dbf))
        .map_err(|e| fail(format!("corrupt .dbf: {e}")))?;
    let fields: Vec<String> = dbf.fields().iter().map(|f| f.name().to_string()).collect();

    let mut out = Vec::new();
    let mut shape_iter = shapes.iter_shapes();
    let mut record_iter = dbf.iter_records();
    for index in 0.. {
        let (shape, record) = match (shape_iter.next(), record_iter.next()) {
            (None, None) => break,
            (Some(Err(e)), _) => return Err(fail(format!("corrupt .shp at feature {index}: {e}"))),
            (_, Some(Err(e))) => return Err(fail(format!("corrupt .dbf at record {index}: {e}"))),
            (Some(Ok(s)), Some(Ok(r))) => (s, r),
            (Some(_), None) => {
                return Err(fail(format!(
                    "the .shp has more shapes than the .dbf's {index} records"
                )));
            }
            (None, Some(_)) => {
                return Err(fail(format!(
                    "the .dbf has more records than the .shp's {index} shapes"
                )));
            }
        };
        let get = |key: &str| -> Option<String> {
            let name = fields.iter().find(|f| f.eq_ignore_ascii_case(key))?;
            match record.get(name)? {
                dbase::FieldValue::Character(Some(s)) => Some(s.clone()),
                dbase::FieldValue::Numeric(Some(f)) if f.fract() == 0.0 && *f >= 0.0 => {
                    Some(format!("{f:.0}"))
                }
                dbase::FieldValue::Integer(i) => Some(i.to_string()),
                _ => None,
            }
        };
        let geoid = match key {
            Key::BlockGroup => geoid_from(get),
            Key::State => state_fips_from(get),
        }
        .map_err(|e| fail(format!("feature {index}: {e}")))?;
        let rings = match &shape {
            shapefile::Shape::Polygon(p) => shape_rings(p.rings()),
            shapefile::Shape::PolygonM(p) => shape_rings(p.rings()),
            shapefile::Shape::PolygonZ(p) => shape_rings(p.rings()),
            shapefile::Shape::NullShape => {
                return Err(fail(format!(
                    "feature {index} (GEOID {geoid}) has no geometry"
                )));
            }
            other => {
                return Err(fail(format!(
                    "feature {index} (GEOID {geoid}) is a {}, not a polygon",
                    other.shapetype()
                )));
            }
        }
        .map_err(|e| fail(format!("feature {index} (GEOID {geoid}): {e}")))?;
        let boundary = assemble(rings);
        if boundary.0.is_empty() {
            return Err(fail(format!(
                "feature {index} (GEOID {geoid}) has an empty polygon"
            )));
        }
        out.push((BlockGroup { geoid, boundary }, index));
    }
    Ok(out)
}

/// Shapefile rings as (is-outer, closed lon/lat ring), degenerate rings dropped.
fn shape_rings<P: HasXY>(
    rings: &[shapefile::PolygonRing<P>],
) -> std::result::Result<Rings, String> {
    let mut out = Vec::with_capacity(rings.len());
    for ring in rings {
        let mut pts = ring
            .points()
            .iter()
            .map(|p| lonlat(p.x(), p.y()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if !pts.is_empty() && close_ring(&mut pts) {
            out.push((matches!(ring, shapefile::PolygonRing::Outer(_)), pts));
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// GeoJSON
//
// Parsed with lean serde structs rather than the geojson crate: its types flatten foreign
// members, which makes serde buffer every feature (coordinates included) before decoding it
// again; a state's block groups are tens of megabytes.

/// Top level: a FeatureCollection, or a single Feature.
#[derive(Deserialize)]
struct RawTop {
    #[serde(rename = "type")]
    kind: Option<String>,
    features: Option<Vec<RawFeature>>,
    properties: Option<Map<String, Value>>,
    geometry: Option<RawGeometry>,
}

/// One feature: its properties and geometry, nothing else.
#[derive(Deserialize)]
struct RawFeature {
    properties: Option<Map<String, Value>>,
    geometry: Option<RawGeometry>,
}

/// A geometry; only polygons (and collections of them) are accepted later.
#[derive(Deserialize)]
struct RawGeometry {
    #[serde(rename = "type")]
    kind: String,
    coordinates: Option<Nested>,
    geometries: Option<Vec<RawGeometry>>,
}

/// Nested coordinate arrays; a position keeps x and y and drops any z.
enum Nested {
    Pos(f64, f64),
    List(Vec<Nested>),
}

/// An array element: a number (part of a position) or a deeper array.
enum Elem {
    Num(f64),
    Nest(Nested),
}

impl<'de> Deserialize<'de> for Nested {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match Elem::deserialize(d)? {
            Elem::Nest(n) => Ok(n),
            Elem::Num(_) => Err(de::Error::custom(
                "expected an array of coordinates, found a number",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Elem {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Elem;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a coordinate array or number")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Elem, E> {
                Ok(Elem::Num(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Elem, E> {
                Ok(Elem::Num(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Elem, E> {
                Ok(Elem::Num(v as f64))
            }
            fn visit_seq<A: SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Elem, A::Error> {
                match seq.next_element::<Elem>()? {
                    None => Ok(Elem::Nest(Nested::List(Vec::new()))),
                    Some(Elem::Num(x)) => {
                        let y: f64 = seq
                            .next_element()?
                            .ok_or_else(|| de::Error::custom("a position needs two numbers"))?;
                        while seq.next_element::<IgnoredAny>()?.is_some() {}
                        Ok(Elem::Nest(Nested::Pos(x, y)))
                    }
                    Some(Elem::Nest(first)) => {
                        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(8) + 1);
                        v.push(first);
                        while let Some(n) = seq.next_element::<Nested>()? {
                            v.push(n);
                        }
                        Ok(Elem::Nest(Nested::List(v)))
                    }
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Reads a GeoJSON FeatureCollection (or one Feature).
fn read_geojson(path: &Path, bytes: &[u8]) -> Result<Vec<Indexed>> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let top: RawTop = serde_json::from_slice(bytes)
        .map_err(|e| Error::input(path, format!("invalid GeoJSON: {e}")))?;
    let features = match top.kind.as_deref() {
        Some("FeatureCollection") => top.features.unwrap_or_default(),
        Some("Feature") => vec![RawFeature {
            properties: top.properties,
            geometry: top.geometry,
        }],
        Some(other) => {
            return Err(Error::input(
                path,
                format!("GeoJSON {other}: expected a FeatureCollection of block groups"),
            ));
        }
        None => return Err(Error::input(path, "not GeoJSON: no \"type\" member")),
    };
    let mut out = Vec::with_capacity(features.len());
    for (index, f) in features.into_iter().enumerate() {
        let props = f.properties.unwrap_or_default();
        let get = |key: &str| -> Option<String> {
            props
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .and_then(|(_, v)| json_text(v))
        };
        let geoid =
            geoid_from(get).map_err(|e| Error::input(path, format!("feature {index}: {e}")))?;
        let fail = |e: String| Error::input(path, format!("feature {index} (GEOID {geoid}): {e}"));
        let Some(geometry) = f.geometry else {
            return Err(fail("has no geometry".to_string()));
        };
        let mut polygons = Vec::new();
        geojson_polygons(geometry, &mut polygons).map_err(fail)?;
        if polygons.is_empty() {
            return Err(fail("has an empty polygon".to_string()));
        }
        out.push((
            BlockGroup {
                geoid,
                boundary: MultiPolygon(polygons),
            },
            index,
        ));
    }
    Ok(out)
}

/// Appends the polygons of a Polygon, MultiPolygon or GeometryCollection of them.
fn geojson_polygons(
    g: RawGeometry,
    out: &mut Vec<Polygon<f64>>,
) -> std::result::Result<(), String> {
    match (g.kind.as_str(), g.coordinates) {
        ("Polygon", Some(c)) => {
            if let Some(p) = geojson_polygon(c)? {
                out.push(p);
            }
        }
        ("MultiPolygon", Some(Nested::List(polys))) => {
            for c in polys {
                if let Some(p) = geojson_polygon(c)? {
                    out.push(p);
                }
            }
        }
        ("GeometryCollection", _) => {
            for member in g.geometries.unwrap_or_default() {
                geojson_polygons(member, out)?;
            }
        }
        ("Polygon" | "MultiPolygon", _) => return Err(format!("malformed {} coordinates", g.kind)),
        (other, _) => return Err(format!("is a {other}, not a polygon")),
    }
    Ok(())
}

/// One GeoJSON polygon (exterior ring first); `None` if its exterior is degenerate.
fn geojson_polygon(c: Nested) -> std::result::Result<Option<Polygon<f64>>, String> {
    let Nested::List(rings) = c else {
        return Err("malformed Polygon coordinates".to_string());
    };
    let mut closed = Vec::with_capacity(rings.len());
    for (i, r) in rings.into_iter().enumerate() {
        let Nested::List(positions) = r else {
            return Err("malformed Polygon coordinates".to_string());
        };
        let mut ring = Vec::with_capacity(positions.len() + 1);
        for p in positions {
            let Nested::Pos(x, y) = p else {
                return Err("malformed Polygon coordinates".to_string());
            };
            ring.push(lonlat(x, y)?);
        }
        if ring.is_empty() || !close_ring(&mut ring) {
            if i == 0 {
                return Ok(None);
            }
            continue;
        }
        closed.push(LineString(ring));
    }
    let mut it = closed.into_iter();
    Ok(it.next().map(|ext| Polygon::new(ext, it.collect())))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::geom::albers::to_5070;
    use geo::{Area, MapCoords};
    use std::collections::BTreeSet;
    use std::io::Write;
    use std::path::PathBuf;

    pub(crate) use crate::testdata::shared_data_dir as data_dir;

    fn area_m2(mp: &MultiPolygon<f64>) -> f64 {
        mp.map_coords(|c| to_5070(c.x, c.y)).unsigned_area()
    }

    fn err_text(r: Result<Vec<BlockGroup>>) -> String {
        match r {
            Err(e @ Error::Input { .. }) => e.to_string(),
            Err(e) => panic!("expected an input error, got {e}"),
            Ok(v) => panic!("expected an error, got {} block groups", v.len()),
        }
    }

    fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Vec<Coord<f64>> {
        vec![
            Coord { x: x0, y: y0 },
            Coord { x: x1, y: y0 },
            Coord { x: x1, y: y1 },
            Coord { x: x0, y: y1 },
            Coord { x: x0, y: y0 },
        ]
    }

    #[test]
    fn dc_zip_has_571_sorted_block_groups() {
        let bgs = read_block_groups(&data_dir().join("dc/cb_2020_11_bg_500k.zip")).unwrap();
        assert_eq!(bgs.len(), 571);
        assert!(bgs.windows(2).all(|w| w[0].geoid < w[1].geoid));
        assert!(
            bgs.iter()
                .all(|b| b.geoid.starts_with("11001") && b.geoid.len() == 12)
        );
        // DC's land plus water is 177.0 km² (Census: 158.3 land + 18.7 water).
        let total: f64 = bgs.iter().map(|b| area_m2(&b.boundary)).sum::<f64>() / 1e6;
        assert!((total - 177.0).abs() < 3.0, "{total} km²");
    }

    #[test]
    fn dc_zip_and_geojson_agree() {
        let d = data_dir();
        let zip = read_block_groups(&d.join("dc/cb_2020_11_bg_500k.zip")).unwrap();
        let gj = read_block_groups(&d.join("dc/block_groups.geojson")).unwrap();
        let ids = |v: &[BlockGroup]| v.iter().map(|b| b.geoid.clone()).collect::<Vec<_>>();
        assert_eq!(ids(&zip), ids(&gj));
        let (mut tz, mut tg) = (0.0, 0.0);
        for (a, b) in zip.iter().zip(&gj) {
            let (aa, ab) = (area_m2(&a.boundary), area_m2(&b.boundary));
            assert!(
                (aa - ab).abs() <= 1e-6 * aa.max(1.0),
                "{}: {aa} vs {ab}",
                a.geoid
            );
            assert_eq!(a.boundary.0.len(), b.boundary.0.len(), "{}", a.geoid);
            tz += aa;
            tg += ab;
        }
        assert!((tz - tg).abs() / tz < 1e-9, "{tz} vs {tg}");
    }

    #[test]
    fn tigerweb_fuquay_has_112_block_groups() {
        let bgs =
            read_block_groups(&data_dir().join("fuquay_varina_nc/block_groups_tigerweb.geojson"))
                .unwrap();
        assert_eq!(bgs.len(), 112);
        let counties: BTreeSet<&str> = bgs.iter().map(|b| &b.geoid[..5]).collect();
        assert_eq!(
            counties,
            BTreeSet::from(["37037", "37085", "37101", "37183"])
        );
        assert!(bgs.iter().any(|b| b.geoid == "370370207024"));
    }

    /// A hand-made GeoJSON: a 0.1° square with a 0.02° hole, a MultiPolygon, and GEOIDs built
    /// from each supported property set.
    #[test]
    fn geojson_hand_made_with_hole_and_geoid_variants() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bg.json");
        std::fs::write(
            &p,
            r#"{"type":"FeatureCollection","features":[
             {"type":"Feature","properties":{"STATE":"37","COUNTY":"183","TRACT":"52801","BLKGRP":2},
              "geometry":{"type":"Polygon","coordinates":[
                [[-78.8,35.5],[-78.7,35.5],[-78.7,35.6],[-78.8,35.6],[-78.8,35.5]],
                [[-78.76,35.54],[-78.76,35.56],[-78.74,35.56],[-78.74,35.54],[-78.76,35.54]]]}},
             {"type":"Feature","properties":{"GEO_ID":"1500000US110010001011"},
              "geometry":{"type":"MultiPolygon","coordinates":[
                [[[-77.1,38.9,0],[-77.0,38.9,0],[-77.0,39.0,0],[-77.1,38.9,0]]],
                [[[-76.9,38.9],[-76.8,38.9],[-76.8,39.0]]]]}},
             {"type":"Feature","properties":{"statefp":"01","countyfp":"1","tractce":"20100","blkgrpce":"1"},
              "geometry":{"type":"Polygon","coordinates":[[[-86.5,32.4],[-86.4,32.4],[-86.4,32.5],[-86.5,32.4]]]}}
            ]}"#,
        )
        .unwrap();
        let bgs = read_block_groups(&p).unwrap();
        let ids: Vec<&str> = bgs.iter().map(|b| b.geoid.as_str()).collect();
        assert_eq!(ids, ["010010201001", "110010001011", "371830528012"]);
        let nc = &bgs[2].boundary;
        assert_eq!(nc.0.len(), 1);
        assert_eq!(nc.0[0].interiors().len(), 1);
        // 0.1² − 0.02² = 0.0096 deg²
        assert!(
            (nc.unsigned_area() - 0.0096).abs() < 1e-12,
            "{}",
            nc.unsigned_area()
        );
        // The unclosed second part of the MultiPolygon is closed, the z is dropped.
        let dc = &bgs[1].boundary;
        assert_eq!(dc.0.len(), 2);
        assert_eq!(dc.0[1].exterior().0.len(), 4);
        assert!((dc.unsigned_area() - 0.01).abs() < 1e-12);
    }

    /// Writes a shapefile with the shapefile crate: feature 0 is a square with a hole plus a
    /// separate island; feature 1 a square. Returns the .shp path.
    fn write_shapefile(dir: &Path, geoids: &[&str], lon0: f64) -> PathBuf {
        use shapefile::{Point, PolygonRing};
        let shp = dir.join("tl_test_bg.shp");
        let table = dbase::TableWriterBuilder::new()
            .add_character_field("GEOID".try_into().unwrap(), 12)
            .add_character_field("NAMELSAD".try_into().unwrap(), 20);
        let mut w = shapefile::Writer::from_path(&shp, table).unwrap();
        let pts = |r: Vec<Coord<f64>>| {
            r.into_iter()
                .map(|c| Point::new(c.x, c.y))
                .collect::<Vec<_>>()
        };
        let big = shapefile::Polygon::with_rings(vec![
            // The island is listed first, so the hole must find its outer ring by containment.
            PolygonRing::Outer(pts(square(lon0 + 0.2, 35.0, lon0 + 0.3, 35.1))),
            PolygonRing::Outer(pts(square(lon0, 35.0, lon0 + 0.1, 35.1))),
            PolygonRing::Inner(pts(square(lon0 + 0.02, 35.02, lon0 + 0.04, 35.04))),
        ]);
        let small = shapefile::Polygon::new(PolygonRing::Outer(pts(square(
            lon0,
            36.0,
            lon0 + 0.05,
            36.05,
        ))));
        for (shape, geoid) in [big, small].iter().zip(geoids) {
            let mut rec = dbase::Record::default();
            rec.insert(
                "GEOID".into(),
                dbase::FieldValue::Character(Some(geoid.to_string())),
            );
            rec.insert(
                "NAMELSAD".into(),
                dbase::FieldValue::Character(Some("Block Group".into())),
            );
            w.write_shape_and_record(shape, &rec).unwrap();
        }
        drop(w);
        shp
    }

    fn zip_files(zip_path: &Path, files: &[(&str, &Path)]) {
        let mut z = zip::ZipWriter::new(std::fs::File::create(zip_path).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        for (name, p) in files {
            z.start_file(*name, opts).unwrap();
            z.write_all(&std::fs::read(p).unwrap()).unwrap();
        }
        z.finish().unwrap();
    }

    fn check_written(bgs: &[BlockGroup]) {
        assert_eq!(bgs.len(), 2);
        assert_eq!(bgs[0].geoid, "371830528011");
        let b = &bgs[0].boundary;
        assert_eq!(b.0.len(), 2);
        let holes: Vec<usize> = b.0.iter().map(|p| p.interiors().len()).collect();
        assert_eq!(
            holes,
            [0, 1],
            "the hole belongs to the second (containing) ring"
        );
        // 0.01 + 0.01 − 0.0004 deg²
        assert!(
            (b.unsigned_area() - 0.0196).abs() < 1e-12,
            "{}",
            b.unsigned_area()
        );
        assert!((bgs[1].boundary.unsigned_area() - 0.0025).abs() < 1e-12);
    }

    #[test]
    fn hand_made_shapefile_zip_and_bare_shp() {
        let dir = tempfile::tempdir().unwrap();
        let shp = write_shapefile(dir.path(), &["371830528012", "371830528011"], -78.8);
        // Deliberately out of GEOID order in the file: output is sorted.
        let bare = read_block_groups(&shp).unwrap();
        let (b0, b1) = (&bare[1], &bare[0]);
        assert_eq!(
            (b0.geoid.as_str(), b1.geoid.as_str()),
            ("371830528012", "371830528011")
        );
        assert_eq!(
            b0.boundary
                .0
                .iter()
                .map(|p| p.interiors().len())
                .collect::<Vec<_>>(),
            [0, 1]
        );

        let shp2 = write_shapefile(
            &dir.path().join("sorted").tap_mkdir(),
            &["371830528011", "371830528012"],
            -78.8,
        );
        let zip = dir.path().join("tl_test.zip");
        let (dbf, shx) = (shp2.with_extension("dbf"), shp2.with_extension("shx"));
        zip_files(
            &zip,
            &[
                ("inner/folder/tl_test_bg.shp", &shp2),
                ("inner/folder/tl_test_bg.dbf", &dbf),
                ("inner/folder/tl_test_bg.shx", &shx),
                ("__MACOSX/inner/folder/._tl_test_bg.shp", &shx),
            ],
        );
        check_written(&read_block_groups(&zip).unwrap());
    }

    #[test]
    fn hole_assignment_scales_with_many_rings() {
        // 200 islands in a row, each with a hole: exercises the R-tree path.
        let mut rings = Vec::new();
        for i in 0..200 {
            let x = -100.0 + i as f64 * 0.1;
            rings.push((false, square(x + 0.02, 40.02, x + 0.03, 40.03)));
            rings.push((true, square(x, 40.0, x + 0.05, 40.05)));
        }
        let mp = assemble(rings);
        assert_eq!(mp.0.len(), 200);
        assert!(mp.0.iter().all(|p| p.interiors().len() == 1));
        assert!((mp.unsigned_area() - 200.0 * (0.0025 - 0.0001)).abs() < 1e-9);
    }

    #[test]
    fn nested_island_in_lake_goes_to_the_smallest_container() {
        // outer 0..10, lake 1..9 (hole), island 2..8 (outer), pond 3..4 (hole of the island).
        let rings = vec![
            (true, square(0.0, 0.0, 10.0, 10.0)),
            (false, square(1.0, 1.0, 9.0, 9.0)),
            (true, square(2.0, 2.0, 8.0, 8.0)),
            (false, square(3.0, 3.0, 4.0, 4.0)),
        ];
        let mp = assemble(rings);
        assert_eq!(mp.0.len(), 2);
        assert_eq!(mp.0[0].interiors().len(), 1);
        assert_eq!(mp.0[1].interiors().len(), 1);
        assert_eq!(mp.0[1].interiors()[0].0[0], Coord { x: 3.0, y: 3.0 });
        assert!((mp.unsigned_area() - (100.0 - 64.0 + 36.0 - 1.0)).abs() < 1e-9);
        // A hole outside every outer ring is kept as an outer ring; all-"inner" shapes are
        // taken as reversed.
        let orphan = assemble(vec![
            (true, square(0.0, 0.0, 1.0, 1.0)),
            (false, square(5.0, 5.0, 6.0, 6.0)),
        ]);
        assert_eq!(orphan.0.len(), 2);
        // A "hole" in the notch of a U-shaped ring is inside its box but outside the ring.
        let u = [
            (0.0, 0.0),
            (3.0, 0.0),
            (3.0, 3.0),
            (2.0, 3.0),
            (2.0, 1.0),
            (1.0, 1.0),
        ];
        let mut u: Vec<Coord<f64>> = u.iter().map(|&(x, y)| Coord { x, y }).collect();
        u.extend([
            Coord { x: 1.0, y: 3.0 },
            Coord { x: 0.0, y: 3.0 },
            Coord { x: 0.0, y: 0.0 },
        ]);
        let notch = assemble(vec![(true, u), (false, square(1.2, 2.0, 1.8, 2.5))]);
        assert_eq!(notch.0.len(), 2);
        assert!(notch.0.iter().all(|p| p.interiors().is_empty()));
        let reversed = assemble(vec![(false, square(0.0, 0.0, 1.0, 1.0))]);
        assert_eq!(reversed.0.len(), 1);
    }

    #[test]
    fn errors_name_the_file_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let write = |name: &str, body: &[u8]| {
            let p = d.join(name);
            std::fs::write(&p, body).unwrap();
            p
        };

        let missing = d.join("nope.zip");
        let e = err_text(read_block_groups(&missing));
        assert!(e.contains("nope.zip") && e.contains("cannot read"), "{e}");

        let e = err_text(read_block_groups(&write("fake.zip", b"this is text")));
        assert!(e.contains("fake.zip") && e.contains("not a zip"), "{e}");

        let e = err_text(read_block_groups(&write("empty.geojson", b"")));
        assert!(e.contains("empty file"), "{e}");

        let e = err_text(read_block_groups(&write(
            "nothing.geojson",
            br#"{"type":"FeatureCollection","features":[]}"#,
        )));
        assert!(e.contains("no block groups"), "{e}");

        let e = err_text(read_block_groups(&write(
            "bad.geojson",
            b"{\"type\": \"FeatureCollection\", \"features\": [",
        )));
        assert!(e.contains("invalid GeoJSON"), "{e}");

        let feat = |props: &str, coords: &str| {
            format!(
                r#"{{"type":"Feature","properties":{{{props}}},"geometry":{{"type":"Polygon","coordinates":[{coords}]}}}}"#
            )
        };
        let ring = "[[-78.8,35.5],[-78.7,35.5],[-78.7,35.6],[-78.8,35.5]]";
        let fc = |fs: &[String]| {
            format!(
                r#"{{"type":"FeatureCollection","features":[{}]}}"#,
                fs.join(",")
            )
        };

        let body = fc(&[
            feat(r#""GEOID":"371830528011""#, ring),
            feat(r#""NAME":"x""#, ring),
        ]);
        let e = err_text(read_block_groups(&write(
            "nogeoid.geojson",
            body.as_bytes(),
        )));
        assert!(e.contains("feature 1") && e.contains("no GEOID"), "{e}");

        let body = fc(&[feat(r#""GEOID":"37183052801""#, ring)]);
        let e = err_text(read_block_groups(&write("tract.geojson", body.as_bytes())));
        assert!(e.contains("'37183052801' is not a 12-digit"), "{e}");

        let body = fc(&[feat(r#""GEO_ID":"1000000US371830528011000""#, ring)]);
        let e = err_text(read_block_groups(&write("block.geojson", body.as_bytes())));
        assert!(e.contains("GEO_ID"), "{e}");

        let body = fc(&[
            feat(r#""GEOID":"371830528011""#, ring),
            feat(r#""GEOID":"371830528011""#, ring),
        ]);
        let e = err_text(read_block_groups(&write("dup.geojson", body.as_bytes())));
        assert!(
            e.contains("duplicate GEOID 371830528011 (features 0 and 1)"),
            "{e}"
        );

        let body = fc(&[feat(
            r#""GEOID":"371830528011""#,
            "[[1538371.6,1532073.1],[1538471.6,1532073.1],[1538471.6,1532173.1],[1538371.6,1532073.1]]",
        )]);
        let e = err_text(read_block_groups(&write("proj.geojson", body.as_bytes())));
        assert!(
            e.contains("proj.geojson") && e.contains(PROJECTED) && e.contains("feature 0"),
            "{e}"
        );

        let body = r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"GEOID":"371830528011"},"geometry":{"type":"Point","coordinates":[-78.8,35.5]}}]}"#;
        let e = err_text(read_block_groups(&write("point.geojson", body.as_bytes())));
        assert!(e.contains("is a Point, not a polygon"), "{e}");

        let e = err_text(read_block_groups(&write("notes.txt", b"GEOID,x\n")));
        assert!(e.contains("unrecognised format"), "{e}");

        // Shapefile cases.
        let shp = write_shapefile(d, &["371830528011", "371830528012"], -78.8);
        let (dbf, shx) = (shp.with_extension("dbf"), shp.with_extension("shx"));

        let z = d.join("noshp.zip");
        zip_files(&z, &[("a/x.dbf", &dbf), ("a/x.shx", &shx)]);
        let e = err_text(read_block_groups(&z));
        assert!(e.contains("noshp.zip") && e.contains("no .shp"), "{e}");

        let z = d.join("nodbf.zip");
        zip_files(&z, &[("a/x.shp", &shp), ("a/x.shx", &shx)]);
        let e = err_text(read_block_groups(&z));
        assert!(e.contains("no matching .dbf"), "{e}");

        let mut cut = std::fs::read(&shp).unwrap();
        cut.truncate(cut.len() - 40);
        let cut_path = write("cut.shp", &cut);
        std::fs::copy(&dbf, d.join("cut.dbf")).unwrap();
        let e = err_text(read_block_groups(&cut_path));
        assert!(
            e.contains("cut.shp") && e.contains("corrupt .shp at feature 1"),
            "{e}"
        );

        let z = d.join("corrupt.zip");
        let mut bytes = std::fs::read(&shp).unwrap();
        bytes[32..36].copy_from_slice(&99i32.to_le_bytes()); // shape type 99 does not exist
        let bad_shp = write("badtype.shp", &bytes);
        zip_files(&z, &[("badtype.shp", &bad_shp), ("badtype.dbf", &dbf)]);
        let e = err_text(read_block_groups(&z));
        assert!(e.contains("corrupt shapefile"), "{e}");

        let bare = write("lonely.shp", &std::fs::read(&shp).unwrap());
        let e = err_text(read_block_groups(&bare));
        assert!(e.contains("lonely.dbf"), "{e}");

        let dup = write_shapefile(
            &d.join("dup").tap_mkdir(),
            &["371830528011", "371830528011"],
            -78.8,
        );
        let e = err_text(read_block_groups(&dup));
        assert!(
            e.contains("duplicate GEOID 371830528011 (features 0 and 1)"),
            "{e}"
        );

        let projected = write_shapefile(
            &d.join("proj").tap_mkdir(),
            &["371830528011", "371830528012"],
            1_538_371.0,
        );
        let e = err_text(read_block_groups(&projected));
        assert!(
            e.contains(PROJECTED) && e.contains("feature 0 (GEOID 371830528011)"),
            "{e}"
        );

        std::fs::write(
            shp.with_extension("prj"),
            r#"PROJCS["NAD83 / Conus Albers",GEOGCS["NAD83"]]"#,
        )
        .unwrap();
        let e = err_text(read_block_groups(&shp));
        assert!(
            e.contains("'NAD83 / Conus Albers'") && e.contains(PROJECTED),
            "{e}"
        );
    }

    trait TapMkdir {
        fn tap_mkdir(self) -> PathBuf;
    }
    impl TapMkdir for PathBuf {
        fn tap_mkdir(self) -> PathBuf {
            std::fs::create_dir_all(&self).unwrap();
            self
        }
    }
}
