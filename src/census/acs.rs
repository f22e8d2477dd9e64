//! Reading ACS values from Census-API JSON or CSV.
//!
//! Two layouts are accepted, recognised by content (a JSON array first, anything else CSV):
//! - the Census Data API's answer: an array of string arrays, header first, e.g.
//!   `[["NAME","B01003_001E","state","county","tract","block group"], ...]`;
//! - a CSV with a header row.
//!
//! The GEOID comes from a `GEOID` column, else `GEO_ID` (`1500000US110010001011`), else the
//! `state`, `county`, `tract` and `block group` columns, zero-padded to 2/3/6/1 digits as the
//! original does (`state.zfill(2) + county.zfill(3) + tract.zfill(6) + block_group`). Column
//! names match case-insensitively.
//!
//! # Missing values
//!
//! A value is `None`, never a number, when it is:
//! - empty, `null`, `NA`, `N/A`, `NaN`, `(X)`, `-`, `**`, `***` or `*****` (the API's and
//!   data.census.gov's annotations; case-insensitive);
//! - one of the API's sentinels -999999999, -888888888, -666666666, -555555555, -333333333,
//!   -222222222, -111111111, whatever its spelling (`"-666666666"`, `-666666666.0`, a JSON
//!   number);
//! - like the original (`census_service.py`), any value below −100000, and any negative value
//!   of a `B19*` (income) or `B25*` (housing) code: such values are undocumented sentinels,
//!   not measurements;
//! - any other text that is not a finite number. These are counted and reported once per file
//!   as a warning, since they suggest a mangled file rather than the Census's own markers.

use crate::census::AcsTable;
use crate::{Error, Result};
use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;

/// The Census Data API's missing-value sentinels (jam values).
const SENTINELS: [f64; 7] = [
    -999_999_999.0,
    -888_888_888.0,
    -666_666_666.0,
    -555_555_555.0,
    -333_333_333.0,
    -222_222_222.0,
    -111_111_111.0,
];

/// Cell texts that mean "no value" (compared case-insensitively after trimming).
const MISSING_TEXT: [&str; 10] = [
    "", "null", "na", "n/a", "nan", "(x)", "-", "**", "***", "*****",
];

/// Reads the ACS values of `codes` for every GEOID in a Census-API JSON or CSV file.
///
/// The table's columns are `codes` in the given order (a code repeated in `codes` is kept
/// once). A requested code missing from the file, a duplicate GEOID, a malformed GEOID, or a
/// file that is corrupt or of the wrong shape is an [`Error::Input`] naming the file.
pub fn read_acs(path: &Path, codes: &[String]) -> Result<AcsTable> {
    let (table, odd) = read_acs_counting(path, codes)?;
    odd.warn(path);
    Ok(table)
}

/// [`read_acs`] without the warning: the table and the unexpected-text tally.
fn read_acs_counting(path: &Path, codes: &[String]) -> Result<(AcsTable, Oddities)> {
    let bytes = std::fs::read(path).map_err(|e| Error::input(path, format!("cannot read: {e}")))?;
    parse_acs_counting(path, &bytes, codes)
}

/// [`read_acs`] of bytes already in memory (a Census API answer); `label` names them in
/// errors and warnings.
pub fn parse_acs(label: &Path, bytes: &[u8], codes: &[String]) -> Result<AcsTable> {
    let (table, odd) = parse_acs_counting(label, bytes, codes)?;
    odd.warn(label);
    Ok(table)
}

fn parse_acs_counting(path: &Path, bytes: &[u8], codes: &[String]) -> Result<(AcsTable, Oddities)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.iter().copied().find(|c| !c.is_ascii_whitespace());
    let mut variables: Vec<String> = Vec::with_capacity(codes.len());
    for c in codes {
        let c = c.trim().to_ascii_uppercase();
        if !variables.contains(&c) {
            variables.push(c);
        }
    }
    match first {
        None => Err(Error::input(path, "empty file")),
        Some(b'[') => read_api_json(path, bytes, variables),
        Some(b'{') => Err(Error::input(
            path,
            "a JSON object; expected the Census API layout: an array of string arrays, header \
             first",
        )),
        Some(_) => read_csv(path, bytes, variables),
    }
}

/// How a row's GEOID is found.
enum GeoidSource {
    /// A 12-digit `GEOID` column.
    Geoid(usize),
    /// A `GEO_ID` column, `1500000US` + GEOID.
    GeoId(usize),
    /// `state`, `county`, `tract`, `block group` columns.
    Parts([usize; 4]),
}

/// The parsed header: where the GEOID comes from and the column of each requested code.
struct Layout {
    geoid: GeoidSource,
    columns: Vec<usize>,
    /// Whether each requested code treats negatives as missing (`B19*`, `B25*`).
    negative_missing: Vec<bool>,
}

/// Finds the GEOID column(s) and the requested codes in a header row.
fn layout(path: &Path, header: &[&str], variables: &[String]) -> Result<Layout> {
    let find = |name: &str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(name))
    };
    let geoid = if let Some(i) = find("GEOID") {
        GeoidSource::Geoid(i)
    } else if let Some(i) = find("GEO_ID") {
        GeoidSource::GeoId(i)
    } else if let (Some(s), Some(c), Some(t), Some(b)) = (
        find("state"),
        find("county"),
        find("tract"),
        find("block group"),
    ) {
        GeoidSource::Parts([s, c, t, b])
    } else {
        return Err(Error::input(
            path,
            format!(
                "no GEOID column: expected GEOID, GEO_ID, or state+county+tract+block group \
                 (columns: {})",
                header.join(", ")
            ),
        ));
    };
    let mut columns = Vec::with_capacity(variables.len());
    let mut missing = Vec::new();
    for v in variables {
        let hits: Vec<usize> = (0..header.len())
            .filter(|&i| header[i].trim().eq_ignore_ascii_case(v))
            .collect();
        match hits.as_slice() {
            [i] => columns.push(*i),
            [] => missing.push(v.as_str()),
            _ => {
                return Err(Error::input(
                    path,
                    format!("column {v} appears {} times", hits.len()),
                ));
            }
        }
    }
    if !missing.is_empty() {
        // List the columns that look like ACS codes (all of them if none do).
        let mut there: Vec<&str> = header
            .iter()
            .map(|h| h.trim())
            .filter(|h| {
                crate::census::variables::resolve(h)
                    .is_ok_and(|c| c.len() == 1 && c[0].eq_ignore_ascii_case(h))
            })
            .collect();
        if there.is_empty() {
            there = header.to_vec();
        }
        return Err(Error::input(
            path,
            format!(
                "requested variable(s) not in the file: {}; the file has: {}",
                missing.join(", "),
                there.join(", ")
            ),
        ));
    }
    let negative_missing = variables
        .iter()
        .map(|v| v.starts_with("B19") || v.starts_with("B25"))
        .collect();
    Ok(Layout {
        geoid,
        columns,
        negative_missing,
    })
}

/// A row's GEOID from its cells; `Err` says what is wrong.
fn row_geoid(
    src: &GeoidSource,
    cell: impl Fn(usize) -> Option<String>,
) -> std::result::Result<String, String> {
    let twelve = |g: &str, what: &str| {
        if g.len() == 12 && g.bytes().all(|b| b.is_ascii_digit()) {
            Ok(g.to_string())
        } else {
            Err(format!("{what} '{g}' is not a 12-digit block-group GEOID"))
        }
    };
    match *src {
        GeoidSource::Geoid(i) => twelve(cell(i).unwrap_or_default().trim(), "GEOID"),
        GeoidSource::GeoId(i) => {
            let g = cell(i).unwrap_or_default();
            // The part after `US`; a 15-digit block GEO_ID must not pass as a block group.
            let tail = g.trim().rsplit_once("US").map_or(g.trim(), |(_, t)| t);
            twelve(tail, "GEO_ID")
        }
        GeoidSource::Parts(cols) => {
            let mut g = String::with_capacity(12);
            for ((i, width), name) in
                cols.into_iter()
                    .zip([2, 3, 6, 1])
                    .zip(["state", "county", "tract", "block group"])
            {
                let v = cell(i).unwrap_or_default();
                let v = v.trim();
                if v.is_empty() || v.len() > width || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!("{name} '{v}' is not a {width}-digit code"));
                }
                g.extend(std::iter::repeat_n('0', width - v.len()));
                g.push_str(v);
            }
            Ok(g)
        }
    }
}

/// Counts cells that were neither numbers nor known missing markers, keeping one example.
#[derive(Default)]
struct Oddities {
    count: usize,
    example: Option<(String, String, String)>,
}

impl Oddities {
    fn warn(&self, path: &Path) {
        if let Some((geoid, code, text)) = &self.example {
            tracing::warn!(
                file = %path.display(),
                count = self.count,
                "{} ACS value(s) are neither numbers nor Census missing-value markers and were \
                 read as missing (first: {code} = {text:?} for GEOID {geoid})",
                self.count
            );
        }
    }
}

/// Parses one cell's text. `Ok(None)` is a missing value; `Err(())` is unexpected text.
fn parse_value(text: &str, negative_missing: bool) -> std::result::Result<Option<f64>, ()> {
    let t = text.trim();
    if MISSING_TEXT.iter().any(|m| t.eq_ignore_ascii_case(m)) {
        return Ok(None);
    }
    let v: f64 = t.parse().map_err(|_| ())?;
    if !v.is_finite() {
        return Err(());
    }
    Ok(number_value(v, negative_missing))
}

/// Applies the sentinel rules to a number.
fn number_value(v: f64, negative_missing: bool) -> Option<f64> {
    if SENTINELS.contains(&v) || v < -100_000.0 || (negative_missing && v < 0.0) {
        None
    } else {
        Some(v)
    }
}

/// Accumulates rows into a table, refusing duplicate GEOIDs.
struct Builder<'a> {
    path: &'a Path,
    layout: Layout,
    table: AcsTable,
    /// GEOID → where it was first seen, for the duplicate message.
    seen: HashMap<String, String>,
    odd: Oddities,
}

impl<'a> Builder<'a> {
    fn new(path: &'a Path, layout: Layout, variables: Vec<String>) -> Self {
        Builder {
            path,
            layout,
            table: AcsTable {
                variables,
                rows: HashMap::new(),
            },
            seen: HashMap::new(),
            odd: Oddities::default(),
        }
    }

    /// Adds one row; `cell(i)` is column `i` as text (`None` for JSON null), `num(i)` the
    /// column as a JSON number when it is one.
    fn add(
        &mut self,
        where_: String,
        cell: impl Fn(usize) -> Option<String>,
        num: impl Fn(usize) -> Option<f64>,
    ) -> Result<()> {
        let geoid = row_geoid(&self.layout.geoid, &cell)
            .map_err(|e| Error::input(self.path, format!("{where_}: {e}")))?;
        let mut values = Vec::with_capacity(self.layout.columns.len());
        for (k, &col) in self.layout.columns.iter().enumerate() {
            let neg = self.layout.negative_missing[k];
            let v = if let Some(n) = num(col) {
                number_value(n, neg)
            } else {
                match cell(col) {
                    None => None,
                    Some(text) => parse_value(&text, neg).unwrap_or_else(|()| {
                        self.odd.count += 1;
                        if self.odd.example.is_none() {
                            self.odd.example =
                                Some((geoid.clone(), self.table.variables[k].clone(), text));
                        }
                        None
                    }),
                }
            };
            values.push(v);
        }
        if let Some(first) = self.seen.get(&geoid) {
            return Err(Error::input(
                self.path,
                format!("duplicate GEOID {geoid} ({first} and {where_})"),
            ));
        }
        self.seen.insert(geoid.clone(), where_);
        self.table.rows.insert(geoid, values);
        Ok(())
    }

    fn finish(self) -> Result<(AcsTable, Oddities)> {
        if self.table.rows.is_empty() {
            return Err(Error::input(self.path, "no data rows after the header"));
        }
        Ok((self.table, self.odd))
    }
}

/// Reads the Census Data API's array-of-arrays JSON.
fn read_api_json(
    path: &Path,
    bytes: &[u8],
    variables: Vec<String>,
) -> Result<(AcsTable, Oddities)> {
    let shape = "expected the Census API layout: an array of string arrays, header first";
    let rows: Vec<Vec<Value>> = serde_json::from_slice(bytes)
        .map_err(|e| Error::input(path, format!("invalid Census API JSON ({shape}): {e}")))?;
    let Some((header, data)) = rows.split_first() else {
        return Err(Error::input(path, "empty JSON array: no header row"));
    };
    let header: Vec<&str> = header
        .iter()
        .map(|v| {
            v.as_str().ok_or_else(|| {
                Error::input(path, format!("header cell {v} is not a string; {shape}"))
            })
        })
        .collect::<Result<_>>()?;
    let layout = layout(path, &header, &variables)?;
    let mut b = Builder::new(path, layout, variables);
    for (i, row) in data.iter().enumerate() {
        // Row 0 is the header, so data row i is array element i + 1.
        let where_ = format!("row {}", i + 1);
        if row.len() != header.len() {
            return Err(Error::input(
                path,
                format!(
                    "{where_} has {} cells, the header {}",
                    row.len(),
                    header.len()
                ),
            ));
        }
        let cell = |c: usize| match &row[c] {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        };
        let num = |c: usize| row[c].as_f64();
        b.add(where_, cell, num)?;
    }
    b.finish()
}

/// Reads a CSV with a header row.
fn read_csv(path: &Path, bytes: &[u8], variables: Vec<String>) -> Result<(AcsTable, Oddities)> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(bytes);
    let header: Vec<String> = rdr
        .headers()
        .map_err(|e| Error::input(path, format!("invalid CSV header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let layout = layout(path, &header_refs, &variables)?;
    let mut b = Builder::new(path, layout, variables);
    let mut record = csv::StringRecord::new();
    loop {
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(Error::input(path, format!("invalid CSV: {e}"))),
        }
        let line = record.position().map_or(0, |p| p.line());
        let cell = |c: usize| record.get(c).map(str::to_string);
        b.add(format!("line {line}"), cell, |_| None)?;
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::census::boundaries::tests::data_dir;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn get(t: &AcsTable, geoid: &str) -> Vec<Option<f64>> {
        t.rows
            .get(geoid)
            .unwrap_or_else(|| panic!("no row {geoid}"))
            .clone()
    }

    fn err_text(r: Result<AcsTable>) -> String {
        match r {
            Err(e @ Error::Input { .. }) => e.to_string(),
            Err(e) => panic!("expected an input error, got {e}"),
            Ok(t) => panic!("expected an error, got {} rows", t.rows.len()),
        }
    }

    #[test]
    fn dc_api_json_values() {
        let p = data_dir().join("dc/acs5_2021_bg_api.json");
        let t = read_acs(&p, &s(&["B19013_001E", "B01001_001E"])).unwrap();
        assert_eq!(t.variables, s(&["B19013_001E", "B01001_001E"]));
        assert_eq!(t.rows.len(), 571);
        // Rows read from the file by hand.
        assert_eq!(get(&t, "110010001011"), [Some(157276.0), Some(1281.0)]);
        assert_eq!(get(&t, "110010001021"), [Some(170721.0), Some(1423.0)]);
        // "-666666666" income: missing, population kept (even when zero).
        assert_eq!(get(&t, "110010002011"), [None, Some(0.0)]);
        assert_eq!(get(&t, "110010002012"), [None, Some(3938.0)]);
        // Top-coded income stays a number.
        assert_eq!(get(&t, "110010002021"), [Some(250001.0), Some(1068.0)]);
        let incomes: Vec<Option<f64>> = t.rows.values().map(|r| r[0]).collect();
        assert_eq!(incomes.iter().filter(|v| v.is_none()).count(), 74);
        assert_eq!(incomes.iter().filter(|v| **v == Some(250001.0)).count(), 25);
        assert_eq!(t.rows.values().filter(|r| r[1] == Some(0.0)).count(), 16);
        assert!(t.rows.values().flatten().flatten().all(|v| *v >= 0.0));
    }

    #[test]
    fn dc_json_and_csv_agree() {
        let d = data_dir();
        let codes = s(&["B01001_001E", "B19013_001E"]);
        let j = read_acs(&d.join("dc/acs5_2021_bg_api.json"), &codes).unwrap();
        let c = read_acs(&d.join("dc/acs5_2021_bg.csv"), &codes).unwrap();
        assert_eq!(j.rows.len(), 571);
        assert_eq!(j, c);
        let m = read_acs(&d.join("dc/acs5_2021_bg.csv"), &s(&["B19013_001M"])).unwrap();
        assert_eq!(get(&m, "110010001011"), [Some(77174.0)]);
        assert_eq!(get(&m, "110010002011"), [None]);
    }

    #[test]
    fn fuquay_api_json_has_112_rows_with_four_codes() {
        let codes = s(&["B01003_001E", "B19013_001E", "B25077_001E", "B15003_022E"]);
        let t = read_acs(
            &data_dir().join("fuquay_varina_nc/acs5_2021_bg_api.json"),
            &codes,
        )
        .unwrap();
        assert_eq!(t.rows.len(), 112);
        assert_eq!(t.variables, codes);
        assert_eq!(
            get(&t, "370370207024"),
            [Some(827.0), Some(58833.0), Some(190000.0), Some(85.0)]
        );
        assert_eq!(
            get(&t, "370850708011"),
            [Some(2097.0), Some(50893.0), Some(173700.0), Some(244.0)]
        );
        assert_eq!(t.rows.values().filter(|r| r[1].is_none()).count(), 3);
    }

    #[test]
    fn sentinels_and_markers_are_missing() {
        for text in [
            "-999999999",
            "-888888888",
            "-666666666",
            "-555555555",
            "-333333333",
            "-222222222",
            "-111111111",
            "-666666666.0",
            "null",
            "",
            " NA ",
            "N/A",
            "(X)",
            "-",
            "**",
            "***",
            "nan",
        ] {
            assert_eq!(parse_value(text, false), Ok(None), "{text:?}");
        }
        assert_eq!(parse_value("-150000", false), Ok(None));
        assert_eq!(parse_value("-5", false), Ok(Some(-5.0)));
        assert_eq!(parse_value("-5", true), Ok(None));
        assert_eq!(parse_value("250001", true), Ok(Some(250001.0)));
        assert_eq!(parse_value("12.5", false), Ok(Some(12.5)));
        assert_eq!(parse_value("0", true), Ok(Some(0.0)));
        assert_eq!(parse_value("abc", false), Err(()));
        assert_eq!(parse_value("inf", false), Err(()));
        assert_eq!(number_value(-666666666.0, false), None);
    }

    #[test]
    fn hand_made_json_with_numbers_nulls_and_geo_id() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("acs.json");
        std::fs::write(
            &p,
            r#"[["GEO_ID","B25077_001E","B01003_001E","B19013_001M"],
               ["1500000US371830528011", -666666666.0, 120, "**"],
               ["1500000US371830528012", "-5", null, "-555555555"],
               ["1500000US371830528013", "garbage", "-7", "***"],
               ["1500000US371830528014", 350000, "15", "oops"]]"#,
        )
        .unwrap();
        let (t, odd) =
            read_acs_counting(&p, &s(&["b01003_001e", "B25077_001E", "B01003_001E"])).unwrap();
        assert_eq!(t.variables, s(&["B01003_001E", "B25077_001E"]));
        // Only "garbage" is unexpected; "oops" is in a column that was not asked for.
        assert_eq!(odd.count, 1);
        let example = (
            "371830528013".to_string(),
            "B25077_001E".to_string(),
            "garbage".into(),
        );
        assert_eq!(odd.example, Some(example));
        assert_eq!(get(&t, "371830528011"), [Some(120.0), None]);
        assert_eq!(get(&t, "371830528012"), [None, None]);
        assert_eq!(get(&t, "371830528013"), [Some(-7.0), None]);
        assert_eq!(get(&t, "371830528014"), [Some(15.0), Some(350000.0)]);
    }

    #[test]
    fn csv_markers_and_unexpected_text() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("acs.csv");
        std::fs::write(
            &p,
            "\u{feff}geoid,NAME,B19013_001E,B01001_001E\n\
             110010001011,\"a, b\",(X),12\n\
             110010001012,c,-666666666.0,N/A\n\
             110010001013,d,\"250,000+\",-\n\
             110010001014,e,-1,abc\n\
             110010001015,f,250001,7.5\n",
        )
        .unwrap();
        let (t, odd) = read_acs_counting(&p, &s(&["B01001_001E", "B19013_001E"])).unwrap();
        assert_eq!(get(&t, "110010001011"), [Some(12.0), None]);
        assert_eq!(get(&t, "110010001012"), [None, None]);
        assert_eq!(get(&t, "110010001013"), [None, None]);
        assert_eq!(get(&t, "110010001014"), [None, None]);
        assert_eq!(get(&t, "110010001015"), [Some(7.5), Some(250001.0)]);
        assert_eq!(odd.count, 2, "\"250,000+\" and \"abc\"");
    }

    #[test]
    fn api_parts_are_zero_padded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("acs.json");
        std::fs::write(
            &p,
            r#"[["B01003_001E","state","county","tract","block group"],["10","1","1","20100","1"]]"#,
        )
        .unwrap();
        let t = read_acs(&p, &s(&["B01003_001E"])).unwrap();
        assert_eq!(get(&t, "010010201001"), [Some(10.0)]);
    }

    #[test]
    fn errors_name_the_file_and_the_cause() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p
        };
        let codes = s(&["B01003_001E"]);

        let e = err_text(read_acs(&dir.path().join("none.json"), &codes));
        assert!(e.contains("none.json") && e.contains("cannot read"), "{e}");

        let e = err_text(read_acs(&write("empty.json", "  \n"), &codes));
        assert!(e.contains("empty file"), "{e}");

        let e = err_text(read_acs(
            &write("cut.json", r#"[["GEOID","B01003_001E"],["1100"#),
            &codes,
        ));
        assert!(
            e.contains("cut.json") && e.contains("invalid Census API JSON"),
            "{e}"
        );

        let e = err_text(read_acs(&write("obj.json", r#"{"GEOID": 1}"#), &codes));
        assert!(e.contains("a JSON object"), "{e}");

        let e = err_text(read_acs(
            &write("flat.json", r#"["GEOID","B01003_001E"]"#),
            &codes,
        ));
        assert!(e.contains("invalid Census API JSON"), "{e}");

        let e = err_text(read_acs(&write("hdr.json", "[]"), &codes));
        assert!(e.contains("no header row"), "{e}");

        let e = err_text(read_acs(
            &write("nodata.csv", "GEOID,B01003_001E\n"),
            &codes,
        ));
        assert!(e.contains("no data rows"), "{e}");

        let e = err_text(read_acs(
            &write(
                "short.json",
                r#"[["GEOID","B01003_001E"],["110010001011"]]"#,
            ),
            &codes,
        ));
        assert!(e.contains("row 1 has 1 cells, the header 2"), "{e}");

        let e = err_text(read_acs(
            &write(
                "dup.csv",
                "GEOID,B01003_001E\n110010001011,5\n110010001011,6\n",
            ),
            &codes,
        ));
        assert!(
            e.contains("duplicate GEOID 110010001011 (line 2 and line 3)"),
            "{e}"
        );

        let e = err_text(read_acs(
            &write("tract.csv", "GEOID,B01003_001E\n11001000101,5\n"),
            &codes,
        ));
        assert!(
            e.contains("line 2") && e.contains("'11001000101' is not a 12-digit"),
            "{e}"
        );

        let e = err_text(read_acs(
            &write("nogeo.csv", "NAME,B01003_001E\nx,5\n"),
            &codes,
        ));
        assert!(e.contains("no GEOID column"), "{e}");

        let e = err_text(read_acs(
            &write("ragged.csv", "GEOID,B01003_001E\n110010001011,5,7\n"),
            &codes,
        ));
        assert!(e.contains("invalid CSV"), "{e}");

        let dc = data_dir().join("dc/acs5_2021_bg_api.json");
        let e = err_text(read_acs(
            &dc,
            &s(&["B01001_001E", "B25077_001E", "B99999_001E"]),
        ));
        assert!(
            e.contains("acs5_2021_bg_api.json")
                && e.contains("not in the file: B25077_001E, B99999_001E")
                && e.contains("the file has: B01001_001E, B01003_001E, B19013_001E"),
            "{e}"
        );
    }
}
