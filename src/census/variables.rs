//! ACS variable names of the original tool and their codes.
//!
//! The table is the original's `VARIABLE_MAPPING` (v0.6.1) plus the names its 0.9+ API added.
//! Names are case-insensitive. Raw ACS codes such as `B01003_001E` pass through unchanged
//! (lower case is accepted and upper-cased), so any variable the Census publishes can be asked
//! for even when it has no name here.
//!
//! Choices where the original's versions disagree:
//! - `hispanic_population` stays `B03003_003E` (v0.6.1, the pipeline this port follows). The
//!   0.9+ API moved it to `B03002_012E`; both tables count the same "Hispanic or Latino"
//!   population, and the later code can be requested raw.
//! - `households_no_vehicle` stays with `percent_without_vehicle` on the B25044 pair (v0.6.1).
//!   0.9+ mapped it, and a mislabelled `households_with_vehicle`, to `B08201_002E`; that
//!   mislabel is not copied.
//! - A name mapping to several codes returns all of them; like the original, they are separate
//!   columns and are never summed.

/// Every known name with its code(s), in listing order. Aliases are separate entries.
const KNOWN: &[(&str, &[&str])] = &[
    ("population", &["B01003_001E"]),
    ("total_population", &["B01003_001E"]),
    ("median_income", &["B19013_001E"]),
    ("median_household_income", &["B19013_001E"]),
    ("median_age", &["B01002_001E"]),
    ("households", &["B11001_001E"]),
    ("housing_units", &["B25001_001E"]),
    ("median_home_value", &["B25077_001E"]),
    ("white_population", &["B02001_002E"]),
    ("black_population", &["B02001_003E"]),
    ("asian_population", &["B02001_005E"]),
    ("hispanic_population", &["B03003_003E"]),
    ("education_bachelors_plus", &["B15003_022E"]),
    ("bachelors_degree", &["B15003_022E"]),
    ("high_school", &["B15003_017E"]),
    // A count of people below the poverty level, not a percent, despite the original's name.
    ("percent_poverty", &["B17001_002E"]),
    ("poverty", &["B17001_002E"]),
    ("occupied_housing", &["B25003_001E"]),
    ("owner_occupied", &["B25003_002E"]),
    ("renter_occupied", &["B25003_003E"]),
    ("median_rent", &["B25064_001E"]),
    // Owner- and renter-occupied households with no vehicle: two counts, not a percent.
    ("percent_without_vehicle", &["B25044_003E", "B25044_010E"]),
    ("households_no_vehicle", &["B25044_003E", "B25044_010E"]),
];

/// Every known variable name and the ACS code(s) it stands for, for a `--list-variables`
/// style listing. Aliases appear as separate entries.
pub fn known() -> &'static [(&'static str, &'static [&'static str])] {
    KNOWN
}

/// Upper-cases `s` if it is a raw ACS code: a table id (letter, five digits, and an optional
/// race-iteration letter such as the `A` of `B19013A`), `_`, a three-digit line and a suffix
/// (`E` estimate, `M` margin, `PE`...). The original's pattern is `^[A-Z]\d{5}_\d{3}[A-Z]$`;
/// this one also admits the iteration tables and multi-letter suffixes.
fn as_raw_code(s: &str) -> Option<String> {
    let up = s.to_ascii_uppercase();
    let (table, rest) = up.split_once('_')?;
    let t = table.as_bytes();
    let table_ok = (t.len() == 6 || (t.len() == 7 && t[6].is_ascii_uppercase()))
        && t[0].is_ascii_uppercase()
        && t[1..6].iter().all(u8::is_ascii_digit);
    let r = rest.as_bytes();
    let rest_ok = r.len() >= 4
        && r[..3].iter().all(u8::is_ascii_digit)
        && r[3..].iter().all(u8::is_ascii_uppercase);
    (table_ok && rest_ok).then_some(up)
}

/// Resolves one variable name (case-insensitive) or raw ACS code to its code(s).
///
/// `Err` holds a one-line message for the user naming the nearest known names.
///
/// ```
/// use socialmapper::census::variables::resolve;
/// assert_eq!(resolve("Median_Income").unwrap(), ["B19013_001E"]);
/// assert_eq!(resolve("b25044_003e").unwrap(), ["B25044_003E"]);
/// assert!(resolve("populaton").unwrap_err().contains("population"));
/// ```
pub fn resolve(name: &str) -> Result<Vec<String>, String> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err("empty census variable name".to_string());
    }
    let lower = trimmed.to_ascii_lowercase();
    if let Some((_, codes)) = KNOWN.iter().find(|(n, _)| *n == lower) {
        return Ok(codes.iter().map(|c| c.to_string()).collect());
    }
    if let Some(code) = as_raw_code(trimmed) {
        return Ok(vec![code]);
    }
    Err(format!(
        "unknown census variable '{trimmed}'; nearest known names: {} (or give a raw ACS code \
         such as B01003_001E)",
        nearest(&lower).join(", ")
    ))
}

/// Resolves every name and returns the codes, duplicates removed, in first-seen order.
/// Every unknown name is reported, one per line, not just the first.
pub fn resolve_all(names: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for name in names {
        match resolve(name) {
            Ok(codes) => {
                for c in codes {
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors.join("\n"))
    }
}

/// The three known names closest to `name`: names containing it (or contained in it) first,
/// then by edit distance.
fn nearest(name: &str) -> Vec<&'static str> {
    let mut scored: Vec<(usize, &'static str)> = KNOWN
        .iter()
        .map(|(n, _)| {
            let d = levenshtein(name, n);
            let contained = name.len() >= 3 && (n.contains(name) || name.contains(n));
            (if contained { d.min(1) } else { d }, *n)
        })
        .collect();
    scored.sort();
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}

/// Edit distance between two ASCII-ish strings (bytes), two-row dynamic programme.
fn levenshtein(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn original_names_map_to_original_codes() {
        let cases = [
            ("population", "B01003_001E"),
            ("total_population", "B01003_001E"),
            ("median_income", "B19013_001E"),
            ("median_household_income", "B19013_001E"),
            ("median_age", "B01002_001E"),
            ("households", "B11001_001E"),
            ("housing_units", "B25001_001E"),
            ("median_home_value", "B25077_001E"),
            ("white_population", "B02001_002E"),
            ("black_population", "B02001_003E"),
            ("hispanic_population", "B03003_003E"),
            ("education_bachelors_plus", "B15003_022E"),
            ("percent_poverty", "B17001_002E"),
            ("asian_population", "B02001_005E"),
            ("occupied_housing", "B25003_001E"),
            ("owner_occupied", "B25003_002E"),
            ("renter_occupied", "B25003_003E"),
            ("poverty", "B17001_002E"),
            ("bachelors_degree", "B15003_022E"),
            ("high_school", "B15003_017E"),
            ("median_rent", "B25064_001E"),
        ];
        for (name, code) in cases {
            assert_eq!(resolve(name).unwrap(), [code], "{name}");
        }
        assert_eq!(known().len(), cases.len() + 2);
    }

    #[test]
    fn names_are_case_insensitive_and_trimmed() {
        assert_eq!(resolve("  MEDIAN_Income ").unwrap(), ["B19013_001E"]);
        assert_eq!(resolve("Population").unwrap(), ["B01003_001E"]);
    }

    #[test]
    fn multi_code_names_return_every_code() {
        for n in ["percent_without_vehicle", "households_no_vehicle"] {
            assert_eq!(resolve(n).unwrap(), ["B25044_003E", "B25044_010E"]);
        }
    }

    #[test]
    fn raw_codes_pass_through_upper_cased() {
        assert_eq!(resolve("B01001_001E").unwrap(), ["B01001_001E"]);
        assert_eq!(resolve("b19013_001m").unwrap(), ["B19013_001M"]);
        assert_eq!(resolve("B19013A_001E").unwrap(), ["B19013A_001E"]);
        assert_eq!(resolve("C17002_002PE").unwrap(), ["C17002_002PE"]);
        for bad in [
            "B0100_001E",
            "B01001_01E",
            "B01001_001",
            "1B0100_001E",
            "B01001-001E",
        ] {
            assert!(resolve(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unknown_names_suggest_the_nearest() {
        let e = resolve("median_incme").unwrap_err();
        assert!(
            e.contains("'median_incme'") && e.contains("median_income"),
            "{e}"
        );
        let e = resolve("vehicle").unwrap_err();
        assert!(e.contains("percent_without_vehicle"), "{e}");
        assert!(resolve("").is_err());
    }

    #[test]
    fn resolve_all_dedupes_in_order_and_reports_every_unknown() {
        let codes = resolve_all(&s(&[
            "median_income",
            "population",
            "B19013_001E",
            "total_population",
            "households_no_vehicle",
            "percent_without_vehicle",
        ]))
        .unwrap();
        assert_eq!(
            codes,
            s(&["B19013_001E", "B01003_001E", "B25044_003E", "B25044_010E"])
        );
        let e = resolve_all(&s(&["population", "foo", "median_incom"])).unwrap_err();
        assert_eq!(e.lines().count(), 2, "{e}");
        assert!(e.contains("'foo'") && e.contains("'median_incom'"));
        assert_eq!(resolve_all(&[]).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn levenshtein_known_values() {
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("same", "same"), 0);
    }
}
