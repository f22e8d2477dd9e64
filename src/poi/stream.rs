//! POI input as a stream of records, so that millions of POIs never have to be in memory at
//! once.
//!
//! [`open_pois`] gives a [`PoiStream`]: every input record in order, tagged with its 0-based
//! record index (see the [module docs](super) for what a record is), as a POI or a
//! [`Reject`], with exactly [`read_pois`](super::read_pois)'s outcomes. CSV, the format for
//! huge inputs, is read a row at a time: memory does not grow with the file except for the
//! duplicate-id table (about 25 bytes per accepted POI, see `IdIndex`). JSON and GeoJSON are
//! parsed whole when the stream opens and then handed out in chunks: they are small in
//! practice.

use super::csv_file::CsvRecords;
use super::{Outcome, PoiFormat, decode_utf8, json};
use crate::error::{Error, Result};
use crate::types::{Poi, Reject};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// One input record: its 0-based record index and what became of it.
pub type PoiRecord = (u32, std::result::Result<Poi, Reject>);

/// The records of one POI input, in order. Iterate it record by record, or take
/// [`PoiStream::next_chunk`]s.
///
/// An error (bytes that are not UTF-8, a failing read, corrupt CSV quoting, more than 2³²
/// records) ends the stream: it is returned once, after every record before it, and the
/// stream yields nothing more. For CSV that can be after many records were handed out, where
/// [`read_pois`](super::read_pois) reports it before any.
pub struct PoiStream {
    origin: PathBuf,
    format: PoiFormat,
    records: Records,
    /// Index of the next record.
    next: u64,
    /// An error met while filling a chunk that already held records: the next call's result.
    pending: Option<Error>,
    done: bool,
}

enum Records {
    Csv(Box<CsvRecords<Box<dyn Read + Send>>>),
    /// JSON outcomes, parsed up front.
    Parsed(std::vec::IntoIter<Outcome>),
}

/// Opens the POI input at `path` as a stream. The format comes from the extension, or from
/// the content when the extension is missing or unknown: JSON when the first non-blank
/// character opens an object or a list, CSV otherwise, as [`PoiFormat::sniff`] decides.
///
/// Errors, all [`Error::Input`] naming the file: it cannot be opened or read; CSV without a
/// latitude or longitude column or with a header that is not UTF-8; JSON that is not UTF-8 or
/// not valid JSON (JSON is parsed here, whole).
pub fn open_pois(path: &Path) -> Result<PoiStream> {
    let cannot = |e: io::Error| Error::input(path, format!("cannot read: {e}"));
    let mut file = File::open(path).map_err(cannot)?;
    let format = match PoiFormat::from_path(path) {
        Some(format) => format,
        None => {
            let json = starts_like_json(&mut file).map_err(cannot)?;
            file.seek(SeekFrom::Start(0)).map_err(cannot)?;
            // GeoJSON or plain JSON only names the format: the parser follows the content.
            if json {
                PoiFormat::Json
            } else {
                PoiFormat::Csv
            }
        }
    };
    PoiStream::from_reader(file, format, path)
}

/// Whether the first non-blank character of the input opens a JSON object or list. Reads
/// only up to that character. Input that is not UTF-8 before it counts as CSV, whose reader
/// then reports the bad byte.
fn starts_like_json(file: &mut File) -> io::Result<bool> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        head.extend_from_slice(&chunk[..n]);
        let bytes = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&head);
        let (text, broken) = match std::str::from_utf8(bytes) {
            Ok(text) => (text, false),
            Err(e) => (
                std::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or_default(),
                e.error_len().is_some(),
            ),
        };
        if let Some(c) = text.chars().find(|c| !c.is_whitespace()) {
            return Ok(c == '{' || c == '[');
        }
        if n == 0 || broken {
            return Ok(false);
        }
    }
}

impl PoiStream {
    /// A stream over any reader holding `format`; `origin` names it in errors. For JSON the
    /// reader is read to its end here.
    pub fn from_reader(
        reader: impl Read + Send + 'static,
        format: PoiFormat,
        origin: &Path,
    ) -> Result<PoiStream> {
        let records = match format {
            PoiFormat::Csv => {
                let reader: Box<dyn Read + Send> = Box::new(reader);
                Records::Csv(Box::new(CsvRecords::new(reader, origin)?))
            }
            PoiFormat::GeoJson | PoiFormat::Json => {
                let mut reader = reader;
                let mut bytes = Vec::new();
                reader
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::input(origin, format!("cannot read: {e}")))?;
                let text = decode_utf8(&bytes).map_err(|cause| Error::input(origin, cause))?;
                Records::Parsed(json::parse_json(text, origin)?.into_iter())
            }
        };
        Ok(PoiStream {
            origin: origin.to_path_buf(),
            format,
            records,
            next: 0,
            pending: None,
            done: false,
        })
    }

    /// The input's format (a GeoJSON file without a `.geojson` extension says `Json`; it is
    /// read as GeoJSON all the same).
    pub fn format(&self) -> PoiFormat {
        self.format
    }

    /// How many records have been handed out so far.
    pub fn records_read(&self) -> u64 {
        self.next
    }

    /// The next at most `max` records (at least one is asked for even when `max` is 0), or
    /// `None` at the end. When an error ends the stream after some records of a chunk, those
    /// records come first and the error is the next call's result.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<Vec<PoiRecord>>> {
        let max = max.max(1);
        let mut chunk = Vec::with_capacity(max.min(4096));
        while chunk.len() < max {
            match self.next() {
                None => break,
                Some(Ok(record)) => chunk.push(record),
                Some(Err(e)) if chunk.is_empty() => return Err(e),
                Some(Err(e)) => {
                    self.pending = Some(e);
                    break;
                }
            }
        }
        Ok((!chunk.is_empty()).then_some(chunk))
    }

    fn next_outcome(&mut self) -> Result<Option<Outcome>> {
        match &mut self.records {
            Records::Csv(csv) => csv.next_record(),
            Records::Parsed(outcomes) => Ok(outcomes.next()),
        }
    }
}

impl Iterator for PoiStream {
    type Item = Result<PoiRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.pending.take() {
            return Some(Err(e));
        }
        if self.done {
            return None;
        }
        let outcome = match self.next_outcome() {
            Ok(Some(outcome)) => outcome,
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        let Ok(index) = u32::try_from(self.next) else {
            self.done = true;
            let cause = "more than 4,294,967,296 records (record indices are 32-bit)";
            return Some(Err(Error::input(&self.origin, cause)));
        };
        self.next += 1;
        Some(Ok((index, outcome)))
    }
}

/// The accepted POIs of `path` at the record indices `indices` (any order, repeats allowed),
/// in increasing index order, read again from the file as a stream: only the POIs asked for
/// are kept, and reading stops after the last of them. An index whose record was rejected,
/// or that is past the end of the input, has no entry in the result.
///
/// For the end of a run, to name the POIs that results refer to without having held every
/// POI. The file must not have changed since the indices were taken.
pub fn pois_at(path: &Path, indices: &[u32]) -> Result<Vec<(u32, Poi)>> {
    let mut wanted = indices.to_vec();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = Vec::with_capacity(wanted.len());
    let Some(&last) = wanted.last() else {
        return Ok(out);
    };
    let mut wanted = wanted.into_iter().peekable();
    for record in open_pois(path)? {
        let (index, outcome) = record?;
        while wanted.next_if(|&w| w < index).is_some() {}
        if wanted.next_if_eq(&index).is_some()
            && let Ok(poi) = outcome
        {
            out.push((index, poi));
        }
        if index >= last {
            break;
        }
    }
    Ok(out)
}
