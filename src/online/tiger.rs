//! Block-group boundaries online: the TIGER/Line (`tl_YYYY_SS_bg.zip`) or cartographic-boundary
//! (`cb_YYYY_SS_bg_500k.zip`) file of every state the clusters' boxes touch, or TIGERweb's
//! query service by box.
//!
//! Which states: the boxes are tested against the Census's generalized state outlines
//! (`cb_YYYY_us_state_20m.zip`, about 100 KB, downloaded once), grown by a margin that covers
//! their generalization. Each state file goes through the same shapefile-zip reader as a local
//! `--block-groups` file, and is cached as downloaded once it has been read without error.

use super::Online;
use super::http::Body;
use crate::census::BlockGroup;
use crate::census::boundaries::{parse_block_groups, parse_state_boundaries};
use crate::error::{Error, Result};
use geo::{BoundingRect, Intersects, MultiPolygon, Rect};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;

/// Where block groups come from online.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoundarySource {
    /// TIGER/Line shapefiles, one zip per state (full detail, shorelines included).
    Tiger,
    /// Cartographic-boundary shapefiles at 1:500,000, one zip per state (smaller, clipped to
    /// the shoreline).
    Cb,
    /// TIGERweb's ArcGIS query service, by box, as GeoJSON.
    Tigerweb,
}

impl std::str::FromStr for BoundarySource {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tiger" | "tiger-line" | "tl" => Ok(BoundarySource::Tiger),
            "cb" | "cartographic" => Ok(BoundarySource::Cb),
            "tigerweb" => Ok(BoundarySource::Tigerweb),
            other => Err(format!(
                "unknown block-group source {other:?} (expected tiger, cb or tigerweb)"
            )),
        }
    }
}

impl std::fmt::Display for BoundarySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BoundarySource::Tiger => "tiger",
            BoundarySource::Cb => "cb",
            BoundarySource::Tigerweb => "tigerweb",
        })
    }
}

/// Degrees a box is grown by before testing it against the 1:20,000,000 state outlines, whose
/// edges stray from the true border by up to a few kilometres.
const STATE_MARGIN_DEG: f64 = 0.05;

/// Side of a TIGERweb query box, degrees: big enough for few requests, small enough that a
/// query stays well under the service's limits.
const TIGERWEB_TILE_DEG: f64 = 0.5;

/// Features per TIGERweb page (the service's own maximum is usually 1000 or 2000).
const TIGERWEB_PAGE: usize = 1000;

/// Path of a state's block-group file under `--tiger-url`.
pub fn state_file_path(source: BoundarySource, year: u32, fips: &str) -> String {
    match source {
        BoundarySource::Cb => format!("GENZ{year}/shp/cb_{year}_{fips}_bg_500k.zip"),
        _ => format!("TIGER{year}/BG/tl_{year}_{fips}_bg.zip"),
    }
}

/// Path of the generalized state outlines under `--tiger-url`.
pub fn states_path(year: u32) -> String {
    format!("GENZ{year}/shp/cb_{year}_us_state_20m.zip")
}

/// Every block group whose bounding box meets one of `boxes` (lon/lat: west, south, east,
/// north), sorted by GEOID, from the state files or TIGERweb.
///
/// # Errors
/// The service's error when a file cannot be downloaded or read, the missing entries with
/// `--offline`, or an [`Error::Config`] when no block group lies in the boxes.
pub fn fetch_block_groups(
    online: &Online,
    source: BoundarySource,
    year: u32,
    boxes: &[Rect<f64>],
) -> Result<Vec<BlockGroup>> {
    let all = match source {
        BoundarySource::Tigerweb => fetch_tigerweb(online, boxes)?,
        _ => {
            let states = states_touched(online, year, boxes)?;
            if states.is_empty() {
                return Err(Error::Config(
                    "the POIs' surroundings touch no US state: no block groups to fetch".into(),
                ));
            }
            let states: Vec<String> = states.into_iter().collect();
            super::parallel_map(&states, online.tiger.concurrency(), |fips| {
                fetch_state_file(online, source, year, fips)
            })?
            .into_iter()
            .flatten()
            .collect()
        }
    };
    let mut kept: Vec<BlockGroup> = all
        .into_iter()
        .filter(|bg| {
            bg.boundary
                .bounding_rect()
                .is_some_and(|r| boxes.iter().any(|b| b.intersects(&r)))
        })
        .collect();
    kept.sort_by(|a, b| a.geoid.cmp(&b.geoid));
    kept.dedup_by(|a, b| a.geoid == b.geoid);
    if kept.is_empty() {
        return Err(Error::Config(format!(
            "no block groups from {source} lie near the POIs"
        )));
    }
    Ok(kept)
}

/// The FIPS codes of the states whose outline (grown by [`STATE_MARGIN_DEG`]) meets a box.
fn states_touched(online: &Online, year: u32, boxes: &[Rect<f64>]) -> Result<BTreeSet<String>> {
    let states = fetch_zip(
        online,
        &states_path(year),
        &format!("tiger/states/{year}"),
        &format!("TIGER state outlines {year}"),
        "state outlines",
        parse_state_boundaries,
    )?;
    let grown: Vec<Rect<f64>> = boxes
        .iter()
        .map(|b| {
            Rect::new(
                geo::Coord {
                    x: b.min().x - STATE_MARGIN_DEG,
                    y: b.min().y - STATE_MARGIN_DEG,
                },
                geo::Coord {
                    x: b.max().x + STATE_MARGIN_DEG,
                    y: b.max().y + STATE_MARGIN_DEG,
                },
            )
        })
        .collect();
    Ok(states
        .into_iter()
        .filter(|(_, outline): &(String, MultiPolygon<f64>)| {
            grown.iter().any(|b| outline.intersects(&b.to_polygon()))
        })
        .map(|(fips, _)| fips)
        .collect())
}

/// One state's block groups, from the cache or `--tiger-url`.
fn fetch_state_file(
    online: &Online,
    source: BoundarySource,
    year: u32,
    fips: &str,
) -> Result<Vec<BlockGroup>> {
    fetch_zip(
        online,
        &state_file_path(source, year, fips),
        &format!("tiger/bg/{source}/{year}/{fips}"),
        &format!("{source} block groups {year} of state {fips}"),
        &format!("block groups of state {fips}"),
        parse_block_groups,
    )
}

/// The zip at `path` under `--tiger-url`, read by `parse`: from the cache (`key`), or
/// downloaded and read whole before it is cached, so that a cut zip fails (and is retried)
/// instead of being cached. A fresh download is read once: its reading is kept.
fn fetch_zip<T>(
    online: &Online,
    path: &str,
    key: &str,
    describe: &str,
    what: &str,
    parse: impl Fn(&Path, Vec<u8>) -> Result<T>,
) -> Result<T> {
    let url = online.tiger.url(path);
    let label = Path::new(path);
    let fresh = std::cell::RefCell::new(None);
    let bytes: Vec<u8> = online.cached_or_fetch(key, describe, || {
        online.tiger.fetch(&url, &Body::Get(Vec::new()), what, |b| {
            let read = parse(label, b.to_vec()).map_err(|e| e.to_string())?;
            *fresh.borrow_mut() = Some(read);
            Ok::<_, String>(b.to_vec())
        })
    })?;
    match fresh.into_inner() {
        Some(read) => Ok(read),
        None => parse(label, bytes),
    }
}

/// TIGERweb tiles (west, south corner indices) covering `boxes`.
fn tigerweb_tiles(boxes: &[Rect<f64>]) -> BTreeSet<(i32, i32)> {
    let cell = |v: f64| (v / TIGERWEB_TILE_DEG).floor() as i32;
    let mut tiles = BTreeSet::new();
    for b in boxes {
        for i in cell(b.min().x)..=cell(b.max().x) {
            for j in cell(b.min().y)..=cell(b.max().y) {
                tiles.insert((i, j));
            }
        }
    }
    tiles
}

/// Block groups meeting `boxes` from TIGERweb's query service, one paged query per tile.
fn fetch_tigerweb(online: &Online, boxes: &[Rect<f64>]) -> Result<Vec<BlockGroup>> {
    let tiles = tigerweb_tiles(boxes);
    let key = |(i, j): (i32, i32)| format!("tigerweb/bg/{TIGERWEB_TILE_DEG}/{i}/{j}");
    if online.offline {
        let missing: Vec<String> = tiles
            .iter()
            .filter(|t| !online.cache.contains(&key(**t)))
            .map(|&(i, j)| {
                format!(
                    "{},{}",
                    f64::from(i) * TIGERWEB_TILE_DEG,
                    f64::from(j) * TIGERWEB_TILE_DEG
                )
            })
            .collect();
        if !missing.is_empty() {
            return Err(online.missing(
                &format!(
                    "{} of {} TIGERweb block-group tiles",
                    missing.len(),
                    tiles.len()
                ),
                missing.into_iter(),
            ));
        }
    }
    let url = online
        .tigerweb
        .url("TIGERweb/Tracts_Blocks/MapServer/1/query");
    let mut all = Vec::new();
    for &(i, j) in &tiles {
        let (w, s) = (
            f64::from(i) * TIGERWEB_TILE_DEG,
            f64::from(j) * TIGERWEB_TILE_DEG,
        );
        let envelope = format!(
            "{w},{s},{},{}",
            w + TIGERWEB_TILE_DEG,
            s + TIGERWEB_TILE_DEG
        );
        let part: Vec<BlockGroup> = online.cached_or_fetch(
            &key((i, j)),
            &format!("TIGERweb block groups in {envelope}"),
            || {
                let mut found: Vec<BlockGroup> = Vec::new();
                for page in 0.. {
                    // The service may send fewer features than asked for (its own maximum):
                    // the next page starts after those received.
                    let query = vec![
                        ("where".to_string(), "1=1".to_string()),
                        ("geometry".into(), envelope.clone()),
                        ("geometryType".into(), "esriGeometryEnvelope".into()),
                        ("inSR".into(), "4326".into()),
                        ("spatialRel".into(), "esriSpatialRelIntersects".into()),
                        ("outFields".into(), "GEOID,STATE,COUNTY,TRACT,BLKGRP".into()),
                        ("returnGeometry".into(), "true".into()),
                        ("outSR".into(), "4326".into()),
                        ("resultOffset".into(), found.len().to_string()),
                        ("resultRecordCount".into(), TIGERWEB_PAGE.to_string()),
                        ("f".into(), "geojson".into()),
                    ];
                    let (bgs, more) = online.tigerweb.fetch(
                        &url,
                        &Body::Get(query),
                        &format!("block groups in {envelope}, page {}", page + 1),
                        parse_tigerweb_page,
                    )?;
                    let got = bgs.len();
                    found.extend(bgs);
                    if !more || got == 0 {
                        break;
                    }
                }
                Ok(found)
            },
        )?;
        all.extend(part);
    }
    Ok(all)
}

/// One page of a TIGERweb GeoJSON answer: its block groups and whether more pages follow
/// (`exceededTransferLimit`). Its "Request Rejected" HTML page and ArcGIS `{"error": ...}`
/// answers (both sent with HTTP 200) are unusable answers.
fn parse_tigerweb_page(b: &[u8]) -> std::result::Result<(Vec<BlockGroup>, bool), String> {
    let v: serde_json::Value = serde_json::from_slice(b).map_err(|_| {
        let text = String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned();
        format!(
            "not GeoJSON: {}",
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        )
    })?;
    if let Some(e) = v.get("error") {
        return Err(format!("TIGERweb error: {e}"));
    }
    let features = v
        .get("features")
        .and_then(|f| f.as_array())
        .ok_or("GeoJSON without features")?;
    let more = v
        .get("exceededTransferLimit")
        .or_else(|| {
            v.get("properties")
                .and_then(|p| p.get("exceededTransferLimit"))
        })
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    if features.is_empty() {
        return Ok((Vec::new(), false));
    }
    let bgs =
        parse_block_groups(Path::new("tigerweb.geojson"), b.to_vec()).map_err(|e| e.to_string())?;
    Ok((bgs, more))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_sources() {
        assert_eq!(
            state_file_path(BoundarySource::Tiger, 2023, "37"),
            "TIGER2023/BG/tl_2023_37_bg.zip"
        );
        assert_eq!(
            state_file_path(BoundarySource::Cb, 2020, "11"),
            "GENZ2020/shp/cb_2020_11_bg_500k.zip"
        );
        assert_eq!(states_path(2023), "GENZ2023/shp/cb_2023_us_state_20m.zip");
        assert_eq!("TIGERweb".parse(), Ok(BoundarySource::Tigerweb));
        assert!("x".parse::<BoundarySource>().is_err());
    }

    #[test]
    fn tigerweb_pages_and_rejections() {
        let page = br#"{"type":"FeatureCollection","exceededTransferLimit":true,"features":[
          {"type":"Feature","properties":{"GEOID":"110010001011"},"geometry":{"type":"Polygon",
           "coordinates":[[[-77.0,38.9],[-77.0,38.91],[-76.99,38.91],[-77.0,38.9]]]}}]}"#;
        let (bgs, more) = parse_tigerweb_page(page).unwrap();
        assert_eq!((bgs.len(), more), (1, true));
        assert_eq!(
            parse_tigerweb_page(br#"{"type":"FeatureCollection","features":[]}"#)
                .unwrap()
                .0,
            vec![]
        );
        let e = parse_tigerweb_page(b"<html><body>Request Rejected</body></html>").unwrap_err();
        assert!(e.contains("Request Rejected"), "{e}");
        assert!(parse_tigerweb_page(br#"{"error":{"code":400}}"#).is_err());
    }
}
