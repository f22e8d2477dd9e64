//! CSV POI input: the original's custom-coordinates form, one POI per row under a header.

use super::{
    Candidate, Collector, ID_NAMES, LAT_NAMES, LON_NAMES, PoiInput, coord_from_text, non_empty,
    take_state,
};
use crate::error::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Which column holds what, resolved once from the header.
struct Columns {
    /// Header names as written (trimmed), used as tag keys.
    header: Vec<String>,
    lat: usize,
    lon: usize,
    id: Option<usize>,
    name: Option<usize>,
    kind: Option<usize>,
    state: Option<usize>,
    /// Every column not used above.
    tags: Vec<usize>,
}

/// The index of the best-ranked name of `names` among `columns` (already lower-cased).
fn pick(columns: &[String], names: &[&str]) -> Option<usize> {
    names
        .iter()
        .find_map(|n| columns.iter().position(|c| c == n))
}

impl Columns {
    /// Matches header names case-insensitively; the first present name of each list wins,
    /// whatever the column order. No latitude or longitude column is an input error.
    fn resolve(header: Vec<String>, origin: &Path) -> Result<Columns> {
        let lower: Vec<String> = header.iter().map(|h| h.to_lowercase()).collect();
        let (lat, lon) = (pick(&lower, &LAT_NAMES), pick(&lower, &LON_NAMES));
        let (Some(lat), Some(lon)) = (lat, lon) else {
            let missing = match (lat, lon) {
                (None, None) => "no latitude or longitude column",
                (None, _) => "no latitude column",
                _ => "no longitude column",
            };
            let found = if header.iter().all(|h| h.is_empty()) {
                "none (the file is empty)".to_string()
            } else {
                header.join(", ")
            };
            let cause = format!(
                "{missing} (latitude: {}; longitude: {}); columns found: {found}",
                LAT_NAMES.join(", "),
                LON_NAMES.join(", ")
            );
            return Err(Error::input(origin, cause));
        };
        let id = pick(&lower, &ID_NAMES);
        let name = pick(&lower, &["name"]);
        let kind = pick(&lower, &["type"]);
        let state = pick(&lower, &["state"]);
        let used = [Some(lat), Some(lon), id, name, kind, state];
        let tags = (0..header.len())
            .filter(|c| !used.contains(&Some(*c)))
            .collect();
        Ok(Columns {
            header,
            lat,
            lon,
            id,
            name,
            kind,
            state,
            tags,
        })
    }

    /// A full-width row as a candidate POI.
    fn candidate(&self, row: &csv::StringRecord, source: String, index: usize) -> Candidate {
        let mut tags: BTreeMap<String, String> = self
            .tags
            .iter()
            .map(|&c| (self.header[c].clone(), row[c].to_string()))
            .collect();
        let state = self.state.and_then(|c| take_state(&row[c], &mut tags));
        Candidate {
            source,
            index,
            id: self.id.and_then(|c| non_empty(&row[c])),
            name: self.name.and_then(|c| non_empty(&row[c])),
            kind: self.kind.and_then(|c| non_empty(&row[c])),
            state,
            tags,
            lat: coord_from_text("latitude", &row[self.lat], 90.0),
            lon: coord_from_text("longitude", &row[self.lon], 180.0),
        }
    }
}

/// Turns the csv crate's record positions into physical line numbers.
///
/// csv reports where it started reading a record, which is before the previous record's line
/// end and any blank lines; the record's own first line is after those. The cursor only moves
/// forward, so counting lines costs one pass over the text in all.
struct LineCounter<'a> {
    bytes: &'a [u8],
    /// 1-based line of `at`.
    line: usize,
    at: usize,
}

impl LineCounter<'_> {
    fn line_of(&mut self, position: Option<&csv::Position>) -> usize {
        let mut start = position.map_or(self.at, |p| p.byte() as usize).max(self.at);
        while matches!(self.bytes.get(start), Some(b'\n' | b'\r')) {
            start += 1;
        }
        let end = start.min(self.bytes.len());
        self.line += self.bytes[self.at..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.at = end;
        self.line
    }
}

/// Parses CSV text (BOM already removed). Each non-blank row after the header is one record,
/// `line N` (1-based physical line; the header is line 1 of a file that starts with it).
pub(super) fn parse_csv(text: &str, origin: &Path) -> Result<PoiInput> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true) // a short or long row is a reject, not the end of the run
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| Error::input(origin, format!("cannot read the CSV header: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    let columns = Columns::resolve(header, origin)?;
    let width = columns.header.len();
    let mut lines = LineCounter {
        bytes: text.as_bytes(),
        line: 1,
        at: 0,
    };
    let mut collector = Collector::default();
    // One POI per line at most: reserving up front saves the copies of a growing Vec, which
    // on millions of rows cost more than the parsing.
    collector
        .out
        .pois
        .reserve(text.bytes().filter(|&b| b == b'\n').count() + 1);
    let mut row = csv::StringRecord::new();
    let mut index = 0usize;
    loop {
        match reader.read_record(&mut row) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(Error::input(origin, format!("corrupt CSV: {e}"))),
        }
        // csv skips empty lines itself; a line of only spaces is blank too (one empty field
        // after trimming) unless the file really has a single column.
        if width > 1 && row.len() == 1 && row[0].is_empty() {
            continue;
        }
        let source = format!("line {}", lines.line_of(row.position()));
        index += 1;
        if row.len() != width {
            let id = columns.id.and_then(|c| row.get(c)).and_then(non_empty);
            let reason = format!("expected {width} fields, found {}", row.len());
            collector.reject(source, id, reason);
            continue;
        }
        collector.offer(columns.candidate(&row, source, index - 1));
    }
    Ok(collector.out)
}
