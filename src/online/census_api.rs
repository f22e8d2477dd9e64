//! ACS values online: the Census Data API's 5-year estimates (`{year}/acs/acs5`), one request
//! per county of the reached block groups and per group of at most [`MAX_VARIABLES`]
//! variables (the API's limit), with the key from `--census-api-key` or `CENSUS_API_KEY`
//! actually sent (the original dropped its `--api-key`).
//!
//! Answers go through the same reader as a local Census-API JSON file, so sentinels such as
//! -666666666 become empty cells the same way. Each county's answer is cached as the parsed
//! table.

use super::Online;
use super::http::{Body, Unusable};
use crate::census::AcsTable;
use crate::census::acs::parse_acs;
use crate::error::Result;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// Most variables the API takes in one request.
pub const MAX_VARIABLES: usize = 50;

/// The ACS values of `codes` for the block groups `geoids` (their counties are asked for
/// whole), from the cache or the Census API.
///
/// # Errors
/// The service's error (an unknown variable or a refused key is reported with the API's own
/// words), or the missing entries with `--offline`.
pub fn fetch_acs(
    online: &Online,
    year: u32,
    key: Option<&str>,
    codes: &[String],
    geoids: &[String],
) -> Result<AcsTable> {
    let mut variables: Vec<String> = Vec::new();
    for c in codes {
        let c = c.trim().to_ascii_uppercase();
        if !variables.contains(&c) {
            variables.push(c);
        }
    }
    let counties: BTreeSet<&str> = geoids
        .iter()
        .filter(|g| g.len() == 12)
        .map(|g| &g[..5])
        .collect();
    let groups: Vec<&[String]> = variables.chunks(MAX_VARIABLES).collect();
    let entry = |county: &str, group: &[String]| {
        format!(
            "census/acs5/{year}/{county}/{}",
            super::cache::key_hash(&group.join(","))
        )
    };
    if online.offline {
        let missing: Vec<String> = counties
            .iter()
            .filter(|c| groups.iter().any(|g| !online.cache.contains(&entry(c, g))))
            .map(|c| format!("county {c}"))
            .collect();
        if !missing.is_empty() {
            return Err(online.missing(
                &format!(
                    "ACS {year} values of {} of {} counties",
                    missing.len(),
                    counties.len()
                ),
                missing.into_iter(),
            ));
        }
    }
    let url = online.census.url(&format!("{year}/acs/acs5"));
    let mut rows: HashMap<String, Vec<Option<f64>>> = HashMap::new();
    let bar = crate::output::steps_bar(
        "Census API counties",
        (counties.len() * groups.len()) as u64,
        online.quiet,
    );
    let requests: Vec<(&str, usize)> = counties
        .iter()
        .flat_map(|c| (0..groups.len()).map(move |g| (*c, g)))
        .collect();
    let tables = super::parallel_map(&requests, online.census.concurrency(), |&(county, g)| {
        let group = groups[g];
        let (state, cty) = county.split_at(2);
        let label = Path::new(&url).join(format!("state-{state}-county-{cty}-part-{g}.json"));
        let table: AcsTable = online.cached_or_fetch(
            &entry(county, group),
            &format!("ACS {year} for county {county}"),
            || {
                let mut query = vec![
                    ("get".to_string(), group.join(",")),
                    ("for".into(), "block group:*".into()),
                    ("in".into(), format!("state:{state} county:{cty}")),
                ];
                if let Some(k) = key {
                    query.push(("key".into(), k.to_string()));
                }
                online.census.fetch(
                    &url,
                    &Body::Get(query),
                    &format!("ACS {year} for county {county}"),
                    |b| parse_answer(&label, b, group),
                )
            },
        )?;
        bar.inc(1);
        Ok((g, table))
    })?;
    for (g, table) in tables {
        let offset = g * MAX_VARIABLES;
        for (geoid, values) in table.rows {
            let row = rows
                .entry(geoid)
                .or_insert_with(|| vec![None; variables.len()]);
            for (k, v) in values.into_iter().enumerate() {
                row[offset + k] = v;
            }
        }
    }
    bar.finish_and_clear();
    Ok(AcsTable { variables, rows })
}

/// Reads one answer; the API's plain-text refusals ("Invalid Key", "error: unknown variable")
/// are reported in its words.
fn parse_answer(label: &Path, bytes: &[u8], group: &[String]) -> Result<AcsTable, Unusable> {
    let first = bytes.iter().copied().find(|c| !c.is_ascii_whitespace());
    if first != Some(b'[') {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        // The API answers a bad key with HTTP 200 and an HTML page: asking again is useless.
        if text.to_ascii_lowercase().contains("invalid key") {
            return Err(Unusable::Refused(format!(
                "the Census API rejects the key (--census-api-key or CENSUS_API_KEY): {text}"
            )));
        }
        return Err(Unusable::Retry(format!("not Census API JSON: {text}")));
    }
    parse_acs(label, bytes, group).map_err(|e| Unusable::Retry(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_with_sentinels_empty() {
        let body = br#"[["B01003_001E","B19013_001E","state","county","tract","block group"],
            ["1200","-666666666","11","001","000100","1"],
            ["900","52000","11","001","000100","2"]]"#;
        let t = parse_answer(
            Path::new("x.json"),
            body,
            &["B01003_001E".into(), "B19013_001E".into()],
        )
        .unwrap();
        assert_eq!(t.rows["110010001001"], vec![Some(1200.0), None]);
        assert_eq!(t.rows["110010001002"], vec![Some(900.0), Some(52000.0)]);
        let e = parse_answer(Path::new("x"), b"<html>Invalid Key</html>", &[]).unwrap_err();
        assert!(
            matches!(&e, Unusable::Refused(m) if m.contains("Invalid Key")),
            "{e:?}"
        );
        assert!(matches!(
            parse_answer(Path::new("x"), b"<html>busy</html>", &[]),
            Err(Unusable::Retry(_))
        ));
        assert!(
            parse_answer(
                Path::new("x"),
                b"[[\"B01003_001E\"",
                &["B01003_001E".into()]
            )
            .is_err()
        );
    }
}
