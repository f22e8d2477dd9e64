//! CSV POI input: the original's custom-coordinates form, one POI per row under a header.

use super::{
    Admit, Candidate, ID_NAMES, LAT_NAMES, LON_NAMES, Origin, Outcome, coord_from_text, non_empty,
    rejected, take_state,
};
use crate::error::{Error, Result};
use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

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
    fn candidate(&self, row: &csv::StringRecord, origin: Origin, index: usize) -> Candidate {
        let mut tags: BTreeMap<String, String> = self
            .tags
            .iter()
            .map(|&c| (self.header[c].clone(), row[c].to_string()))
            .collect();
        let state = self.state.and_then(|c| take_state(&row[c], &mut tags));
        Candidate {
            origin,
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

/// CSV records read one at a time from any reader, in memory independent of the input's size:
/// the csv crate's buffer, the current row, the id table of [`Admit`] and the line breaks of
/// the row being read (see [`Utf8Input`]).
///
/// Each non-blank row after the header is one record, `line N` (1-based physical line; the
/// header is line 1 of a file that starts with it).
pub(super) struct CsvRecords<R: Read> {
    reader: csv::Reader<Utf8Input<R>>,
    columns: Columns,
    row: csv::StringRecord,
    /// Records read so far: the 0-based index of the next one.
    index: usize,
    admit: Admit,
    origin: PathBuf,
}

impl<R: Read> CsvRecords<R> {
    /// Reads the header of `input` (a leading byte-order mark is skipped). `origin` names the
    /// input in errors. No latitude or longitude column, or bytes that are not UTF-8 in the
    /// header, is an [`Error::Input`].
    pub(super) fn new(input: R, origin: &Path) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true) // a short or long row is a reject, not the end of the run
            .trim(csv::Trim::All)
            .from_reader(Utf8Input::new(input));
        let header = reader
            .headers()
            .map_err(|e| read_error(e, "cannot read the CSV header", origin))?
            .iter()
            .map(str::to_string)
            .collect();
        let columns = Columns::resolve(header, origin)?;
        Ok(CsvRecords {
            reader,
            columns,
            row: csv::StringRecord::new(),
            index: 0,
            admit: Admit::default(),
            origin: origin.to_path_buf(),
        })
    }

    /// The next record as a POI or a reject; `None` at the end of the input. Bytes that are
    /// not UTF-8 or a failing read are an [`Error::Input`] when the reader reaches them.
    pub(super) fn next_record(&mut self) -> Result<Option<Outcome>> {
        let width = self.columns.header.len();
        loop {
            match self.reader.read_record(&mut self.row) {
                Ok(true) => {}
                Ok(false) => return Ok(None),
                Err(e) => return Err(read_error(e, "corrupt CSV", &self.origin)),
            }
            let row = &self.row;
            let start = row.position().map_or(0, csv::Position::byte);
            let line = self.reader.get_mut().line_of(start);
            // csv skips empty lines itself; a line of only spaces is blank too (one empty
            // field after trimming) unless the file really has a single column.
            if width > 1 && row.len() == 1 && row[0].is_empty() {
                continue;
            }
            let origin = Origin::Line(line);
            self.index += 1;
            if row.len() != width {
                let id = self.columns.id.and_then(|c| row.get(c)).and_then(non_empty);
                let reason = format!("expected {width} fields, found {}", row.len());
                return Ok(Some(rejected(origin, id, reason)));
            }
            let candidate = self.columns.candidate(row, origin, self.index - 1);
            return Ok(Some(self.admit.offer(candidate)));
        }
    }
}

/// An error of the csv reader as an input error: the UTF-8 check's own message, a failed
/// read, or `context: {e}` for anything the csv crate itself objects to.
fn read_error(e: csv::Error, context: &str, origin: &Path) -> Error {
    if let csv::ErrorKind::Io(io) = e.kind() {
        if let Some(bad) = io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<NotUtf8>())
        {
            return Error::input(origin, &bad.0);
        }
        return Error::input(origin, format!("cannot read: {io}"));
    }
    Error::input(origin, format!("{context}: {e}"))
}

/// The input is not UTF-8: the message names the line and byte offset of the first bad byte.
#[derive(Debug)]
struct NotUtf8(String);

impl std::fmt::Display for NotUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotUtf8 {}

/// A reader that passes on only valid UTF-8, drops a leading byte-order mark and remembers
/// where line breaks are, for the csv reader in front of it.
///
/// * Bytes are validated a buffer at a time (a character split between two reads waits for
///   the rest). Everything before the first bad byte is passed on; the read after that fails
///   with [`NotUtf8`], naming the byte, its line and its offset (counted after the BOM, as
///   [`super::decode_utf8`] does for a whole file).
/// * The csv crate reports where it *started* reading a record: before the previous record's
///   line end and any blank lines. To turn that into the record's own first line, the
///   positions of the `\r`/`\n` bytes passed on are kept until the record reading them is
///   done ([`Utf8Input::line_of`]); that is a record's worth plus the csv crate's 8 KiB
///   read-ahead, never the file.
struct Utf8Input<R> {
    inner: R,
    buf: Box<[u8]>,
    /// `buf[start..valid]` is checked and not yet passed on; `buf[valid..end]` is the start of
    /// a character that needs more bytes.
    start: usize,
    valid: usize,
    end: usize,
    /// Stream offset (after the BOM) of `buf[0]`.
    base: u64,
    /// Whether a leading BOM has been looked for.
    bom_done: bool,
    eof: bool,
    /// `\n` bytes checked so far.
    newlines: u64,
    /// The first bad byte's message, once reached.
    bad: Option<String>,
    /// Stream offsets of the checked `\r` and `\n` bytes not yet looked at by
    /// [`Utf8Input::line_of`], times two, plus one for `\n`.
    breaks: VecDeque<u64>,
    /// `\n` bytes already dropped from `breaks`.
    newlines_before: u64,
}

const BOM: &[u8] = b"\xef\xbb\xbf";

impl<R: Read> Utf8Input<R> {
    fn new(inner: R) -> Self {
        Utf8Input {
            inner,
            buf: vec![0; 64 * 1024].into_boxed_slice(),
            start: 0,
            valid: 0,
            end: 0,
            base: 0,
            bom_done: false,
            eof: false,
            newlines: 0,
            bad: None,
            breaks: VecDeque::new(),
            newlines_before: 0,
        }
    }

    /// Reads more input and checks it. Leaves `start == valid` only at the end of the input,
    /// at a bad byte, or when a BOM or character still needs more bytes (call again).
    fn fill(&mut self) -> io::Result<()> {
        let tail = self.end - self.valid;
        self.buf.copy_within(self.valid..self.end, 0);
        self.base += self.valid as u64;
        (self.start, self.valid, self.end) = (0, 0, tail);
        let n = loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        self.end += n;
        self.eof = n == 0;
        if !self.bom_done {
            if self.end < BOM.len() && !self.eof {
                return Ok(());
            }
            if self.buf[..self.end].starts_with(BOM) {
                self.buf.copy_within(BOM.len()..self.end, 0);
                self.end -= BOM.len();
            }
            self.bom_done = true;
        }
        let (valid, bad) = match std::str::from_utf8(&self.buf[..self.end]) {
            Ok(_) => (self.end, false),
            // An incomplete character at the end is bad only when no more bytes will come.
            Err(e) => (e.valid_up_to(), e.error_len().is_some() || self.eof),
        };
        for (i, &b) in self.buf[..valid].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                let lf = u64::from(b == b'\n');
                self.newlines += lf;
                self.breaks.push_back(((self.base + i as u64) << 1) | lf);
            }
        }
        self.valid = valid;
        if bad {
            let at = self.base + valid as u64;
            self.bad = Some(format!(
                "not valid UTF-8: invalid byte 0x{:02x} at line {} (byte offset {at}); save the file as UTF-8",
                self.buf[valid],
                self.newlines + 1
            ));
        }
        Ok(())
    }

    /// The 1-based physical line of the first byte at or after stream offset `at` that is not a
    /// line break: where a record the csv crate says starts at `at` really starts. Offsets
    /// must not decrease from one call to the next.
    fn line_of(&mut self, at: u64) -> u64 {
        let mut at = at;
        while let Some(&b) = self.breaks.front() {
            if b >> 1 > at {
                break;
            }
            if b >> 1 == at {
                at += 1;
            }
            self.newlines_before += b & 1;
            self.breaks.pop_front();
        }
        self.newlines_before + 1
    }
}

impl<R: Read> Read for Utf8Input<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.start == self.valid {
            if let Some(bad) = &self.bad {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    NotUtf8(bad.clone()),
                ));
            }
            if self.eof {
                return Ok(0);
            }
            self.fill()?;
        }
        let n = out.len().min(self.valid - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}
