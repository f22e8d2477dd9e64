//! Addresses to POIs with the Census geocoder's batch endpoint
//! (`locations/addressbatch`, at most [`MAX_BATCH`] addresses per request).
//!
//! The address file is a CSV with a header: the street in `street` or `address`, and
//! optional `city`, `state`, `zip` (also `zipcode`, `postal_code`), `id` and `name`; other
//! columns are kept as tags. Every row becomes a POI at the matched position or a reject
//! naming why (no street, no match, a tie between candidates), in file order.

use super::Online;
use super::http::Body;
use crate::error::{Error, Result};
use crate::poi::PoiRecord;
use crate::types::{Poi, Reject};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

/// Most addresses the batch endpoint takes in one request.
pub const MAX_BATCH: usize = 10_000;

/// The geocoder's benchmark (address ranges release).
const BENCHMARK: &str = "Public_AR_Current";

/// One address row of the input.
struct AddressRow {
    line: usize,
    id: String,
    name: Option<String>,
    street: String,
    city: String,
    state: String,
    zip: String,
    tags: BTreeMap<String, String>,
}

/// The geocoder's verdict on one address.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Geocoded {
    /// Matched at (lon, lat), with the matched address.
    Match(f64, f64, String),
    /// Not matched: the geocoder's status (`No_Match`, `Tie`).
    NoMatch(String),
}

/// Reads `path`, geocodes it (cached per batch), and returns one record per data row.
///
/// # Errors
/// [`Error::Input`] naming the file when it cannot be read or has no street column; the
/// service's error; the missing batches with `--offline`.
pub fn geocode_file(online: &Online, path: &Path) -> Result<Vec<PoiRecord>> {
    let (rows, rejects) = read_addresses(path)?;
    let mut results: HashMap<String, Geocoded> = HashMap::new();
    let batches: Vec<&[AddressRow]> = rows.chunks(MAX_BATCH).collect();
    let bodies: Vec<String> = batches.iter().map(|b| batch_csv(b)).collect();
    let key = |body: &str| format!("geocoder/batch/{}", super::cache::key_hash(body));
    if online.offline {
        let missing = bodies
            .iter()
            .filter(|b| !online.cache.contains(&key(b)))
            .count();
        if missing > 0 {
            return Err(online.missing(
                &format!(
                    "{missing} of {} geocoder batches of {}",
                    bodies.len(),
                    path.display()
                ),
                std::iter::empty(),
            ));
        }
    }
    let url = online.geocoder.url("locations/addressbatch");
    for (batch, body) in batches.iter().zip(&bodies) {
        let ids: HashSet<&str> = batch.iter().map(|r| r.id.as_str()).collect();
        let answer: Vec<(String, Geocoded)> = online.cached_or_fetch(
            &key(body),
            &format!("geocoded batch of {} addresses", batch.len()),
            || {
                let (content_type, bytes) = multipart(body);
                online.geocoder.fetch(
                    &url,
                    &Body::Raw {
                        content_type,
                        bytes,
                    },
                    &format!("{} addresses", batch.len()),
                    |b| parse_batch(b, &ids),
                )
            },
        )?;
        results.extend(answer);
    }
    let mut records: Vec<(usize, std::result::Result<Poi, Reject>)> = rejects;
    for r in rows {
        let source = format!("line {}", r.line);
        let rec = match results.remove(&r.id) {
            Some(Geocoded::Match(lon, lat, matched)) => {
                let mut tags = r.tags;
                tags.insert("matched_address".into(), matched);
                Ok(Poi {
                    name: r.name.unwrap_or_else(|| r.street.clone()),
                    id: r.id,
                    kind: "address".into(),
                    lon,
                    lat,
                    state: crate::poi::state_code(&r.state),
                    tags,
                    source,
                })
            }
            Some(Geocoded::NoMatch(status)) => Err(Reject {
                source,
                id: Some(r.id),
                reason: format!("address not found by the Census geocoder ({status})"),
            }),
            None => Err(Reject {
                source,
                id: Some(r.id),
                reason: "the Census geocoder did not answer for this address".into(),
            }),
        };
        records.push((r.line, rec));
    }
    records.sort_by_key(|r| r.0);
    Ok(records
        .into_iter()
        .enumerate()
        .map(|(k, (_, r))| (k as u32, r))
        .collect())
}

type Rejected = Vec<(usize, std::result::Result<Poi, Reject>)>;

/// The address rows of a CSV, and the rows rejected on reading (no street, duplicate id).
fn read_addresses(path: &Path) -> Result<(Vec<AddressRow>, Rejected)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| Error::input(path, format!("no header row: {e}")))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    let find = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| header.iter().position(|h| h == n))
    };
    let Some(street) = find(&["street", "address", "street_address"]) else {
        return Err(Error::input(
            path,
            format!(
                "no street column: expected street or address (columns: {})",
                header.join(", ")
            ),
        ));
    };
    let cols = [
        find(&["city"]),
        find(&["state"]),
        find(&["zip", "zipcode", "zip_code", "postal_code"]),
        find(&["id"]),
        find(&["name"]),
    ];
    let used: Vec<usize> = cols.iter().flatten().copied().chain([street]).collect();
    let mut rows = Vec::new();
    let mut rejects = Vec::new();
    let mut seen = HashSet::new();
    for (k, rec) in reader.records().enumerate() {
        let line = k + 2;
        let rec = rec.map_err(|e| Error::input(path, format!("line {line}: {e}")))?;
        if rec.iter().all(str::is_empty) {
            continue;
        }
        let get = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or("").to_string();
        let id = Some(get(cols[3]))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("address_{k}"));
        let source = format!("line {line}");
        let street_text = get(Some(street));
        if street_text.is_empty() {
            rejects.push((
                line,
                Err(Reject {
                    source,
                    id: Some(id),
                    reason: "no street address".into(),
                }),
            ));
            continue;
        }
        if !seen.insert(id.clone()) {
            rejects.push((
                line,
                Err(Reject {
                    source,
                    id: Some(id.clone()),
                    reason: format!("duplicate id {id}"),
                }),
            ));
            continue;
        }
        let tags = header
            .iter()
            .enumerate()
            .filter(|(c, _)| !used.contains(c))
            .filter_map(|(c, h)| Some((h.clone(), rec.get(c)?.to_string())))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        rows.push(AddressRow {
            line,
            name: Some(get(cols[4])).filter(|s| !s.is_empty()),
            street: street_text,
            city: get(cols[0]),
            state: get(cols[1]),
            zip: get(cols[2]),
            id,
            tags,
        });
    }
    Ok((rows, rejects))
}

/// The batch file the geocoder takes: `id, street, city, state, zip`, no header.
fn batch_csv(rows: &[AddressRow]) -> String {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    for r in rows {
        // Writing to a Vec cannot fail.
        let _ = w.write_record([&r.id, &r.street, &r.city, &r.state, &r.zip]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A `multipart/form-data` body with the benchmark and the address file.
fn multipart(csv_body: &str) -> (String, Vec<u8>) {
    let boundary = format!("socialmapper-{}", super::cache::key_hash(csv_body));
    let mut b = String::new();
    b.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"benchmark\"\r\n\r\n{BENCHMARK}\r\n"
    ));
    b.push_str(&format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"addressFile\"; \
         filename=\"addresses.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv_body}\r\n--{boundary}--\r\n"
    ));
    (
        format!("multipart/form-data; boundary={boundary}"),
        b.into_bytes(),
    )
}

/// The geocoder's answer: CSV rows `id, input address, Match|No_Match|Tie, Exact|Non_Exact,
/// matched address, "lon,lat", TIGER line id, side`. An answer missing any id of the batch is
/// cut short.
fn parse_batch(
    bytes: &[u8],
    ids: &HashSet<&str>,
) -> std::result::Result<Vec<(String, Geocoded)>, String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| format!("not the geocoder's CSV: {e}"))?;
        let id = rec.get(0).unwrap_or("").trim().to_string();
        if !ids.contains(id.as_str()) {
            return Err(format!("answer for an id not asked for: {id:?}"));
        }
        let status = rec.get(2).unwrap_or("").trim();
        let g = if status.eq_ignore_ascii_case("match") {
            let coords = rec.get(5).unwrap_or("");
            let (lon, lat) = coords
                .split_once(',')
                .and_then(|(x, y)| {
                    Some((x.trim().parse::<f64>().ok()?, y.trim().parse::<f64>().ok()?))
                })
                .filter(|(x, y)| x.abs() <= 180.0 && y.abs() <= 90.0)
                .ok_or_else(|| format!("id {id}: bad coordinates {coords:?}"))?;
            Geocoded::Match(lon, lat, rec.get(4).unwrap_or("").trim().to_string())
        } else if status.is_empty() {
            return Err(format!("id {id}: no match status"));
        } else {
            Geocoded::NoMatch(status.to_string())
        };
        out.push((id, g));
    }
    if out.len() < ids.len() {
        return Err(format!("{} answers for {} addresses", out.len(), ids.len()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_answers_parse_and_must_be_complete() {
        let ids: HashSet<&str> = ["1", "2", "3"].into_iter().collect();
        let answer = b"\"1\",\"4600 Silver Hill Rd, Washington, DC, 20233\",\"Match\",\"Exact\",\"4600 SILVER HILL RD, WASHINGTON, DC, 20233\",\"-76.92744,38.845985\",\"76355984\",\"L\"\n\
\"2\",\"1 Nowhere, X, DC, 00000\",\"No_Match\"\n\
\"3\",\"Main St, Y, DC, 1\",\"Tie\"\n";
        let got = parse_batch(answer, &ids).unwrap();
        assert_eq!(
            got[0],
            (
                "1".to_string(),
                Geocoded::Match(
                    -76.92744,
                    38.845985,
                    "4600 SILVER HILL RD, WASHINGTON, DC, 20233".into()
                )
            )
        );
        assert_eq!(got[1].1, Geocoded::NoMatch("No_Match".into()));
        assert_eq!(got[2].1, Geocoded::NoMatch("Tie".into()));
        let cut = &answer[..answer.len() - 30];
        assert!(parse_batch(cut, &ids).is_err());
    }

    #[test]
    fn the_upload_is_a_multipart_form() {
        let (ct, body) = multipart("1,Main St,X,NC,27526\n");
        let boundary = ct.split("boundary=").nth(1).unwrap();
        let text = String::from_utf8(body).unwrap();
        assert!(text.starts_with(&format!("--{boundary}\r\n")));
        assert!(text.contains("name=\"addressFile\"; filename=\"addresses.csv\""));
        assert!(text.contains("\r\n\r\nPublic_AR_Current\r\n"));
        assert!(text.ends_with(&format!("--{boundary}--\r\n")));
    }
}
