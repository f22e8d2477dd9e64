//! The source's order: POI records are read a window of batches at a time and cut into
//! batches along a Z-curve (Morton order) of the map.
//!
//! A file in random order scatters every batch over the whole region: each tile then holds one
//! or two of a batch's POIs, a worker's network slice serves one cluster, and POIs never share
//! a lane search ([`crate::stages::isochrone::lane_isochrones`]). Sorted along a Z-curve,
//! consecutive POIs are neighbours at every scale, so a batch covers a compact part of the
//! map and consecutive batches cover neighbouring parts. Only the order of computation
//! changes: the sink puts every output back into record order
//! ([`crate::output::StreamedOutputs`]), so results do not depend on the window.
//!
//! Batches are still numbered from 0 and every batch but the last has `batch_size` records,
//! so a run's batch count is the same whatever the window; window `w` holds batches
//! `w·window .. (w + 1)·window` and the records `w·window·batch_size ..` of the file.

use crate::dataflow::PoiRecords;
use crate::error::{Error, Result};
use crate::geom::albers::to_5070;
use crate::poi::PoiRecord;
use crate::stages::cluster::z_order;

/// Whether batch `batch` is the last of its window of `window` batches (the run's last batch
/// may end a shorter window too: the sink closes that one when the run ends).
pub fn closes_window(batch: u64, window: u64) -> bool {
    (batch + 1).is_multiple_of(window.max(1))
}

/// The first batch of the window that batch `batch` belongs to.
pub fn window_start(batch: u64, window: u64) -> u64 {
    batch - batch % window.max(1)
}

/// Batches cut from windows of records sorted along a Z-curve.
pub struct WindowedBatches {
    records: Box<dyn PoiRecords>,
    batch_size: usize,
    window_records: usize,
    /// The current window's records, encoded one after the other: a record held as a
    /// [`PoiRecord`] takes about 330 bytes, encoded about 70 (plus 32 in `window`), so a
    /// window of 256 batches of 1024 records holds about 25 MB.
    encoded: Vec<u8>,
    /// The window's records, sorted, reversed (batches are cut from the end): sort key and
    /// where the record lies in `encoded`.
    window: Vec<((u8, u64, u32), usize, usize)>,
}

impl WindowedBatches {
    /// Batches of `batch_size` records from `records`, ordered `window` batches at a time
    /// (a `window` of 1 keeps the file's order).
    pub fn new(records: Box<dyn PoiRecords>, batch_size: usize, window: usize) -> Self {
        let batch_size = batch_size.max(1);
        WindowedBatches {
            records,
            batch_size,
            window_records: batch_size.saturating_mul(window.max(1)),
            encoded: Vec::new(),
            window: Vec::new(),
        }
    }

    /// The next batch; `None` at the end of the records.
    pub fn next_batch(&mut self) -> Result<Option<Vec<PoiRecord>>> {
        if self.window.is_empty() {
            self.fill()?;
        }
        if self.window.is_empty() {
            return Ok(None);
        }
        let from = self.window.len().saturating_sub(self.batch_size);
        let mut batch = Vec::with_capacity(self.window.len() - from);
        for &(_, start, end) in self.window[from..].iter().rev() {
            let (record, _) = bincode::serde::decode_from_slice::<PoiRecord, _>(
                &self.encoded[start..end],
                bincode::config::standard(),
            )
            .map_err(|e| Error::Config(format!("internal: a buffered POI record: {e}")))?;
            batch.push(record);
        }
        self.window.truncate(from);
        Ok(Some(batch))
    }

    /// Reads the next window and sorts it: records rejected while reading first (they have no
    /// position), then POIs along the Z-curve, ties in record order.
    fn fill(&mut self) -> Result<()> {
        self.encoded.clear();
        let mut held = 0;
        while held < self.window_records {
            let want = (self.window_records - held).min(self.batch_size);
            let records = match self.records.next_batch(want)? {
                Some(records) if !records.is_empty() => records,
                _ => break,
            };
            held += records.len();
            for record in records {
                let key = match &record.1 {
                    Err(_) => (0, 0, record.0),
                    Ok(p) => (1, z_order(to_5070(p.lon, p.lat)), record.0),
                };
                let start = self.encoded.len();
                bincode::serde::encode_into_std_write(
                    &record,
                    &mut self.encoded,
                    bincode::config::standard(),
                )
                .map_err(|e| Error::Config(format!("internal: buffering a POI record: {e}")))?;
                self.window.push((key, start, self.encoded.len()));
            }
        }
        if self.window_records > self.batch_size {
            self.window.sort_unstable_by_key(|e| e.0);
        }
        self.window.reverse();
        Ok(())
    }

    /// The records source, read as far as the batches taken.
    pub fn into_records(self) -> Box<dyn PoiRecords> {
        self.records
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataflow::RecordsInMemory;
    use crate::types::{Poi, Reject};

    fn poi(k: u32, lon: f64, lat: f64) -> PoiRecord {
        (
            k,
            Ok(Poi {
                id: format!("p{k}"),
                name: String::new(),
                kind: "custom".into(),
                lon,
                lat,
                state: None,
                tags: Default::default(),
                source: format!("line {}", k + 2),
            }),
        )
    }

    fn ids(batch: &[PoiRecord]) -> Vec<u32> {
        batch.iter().map(|r| r.0).collect()
    }

    /// Every batch's record indices; each record must come out as it went in.
    fn all(mut b: WindowedBatches) -> Vec<Vec<u32>> {
        let originals = records();
        let mut out = Vec::new();
        while let Some(batch) = b.next_batch().unwrap() {
            for r in &batch {
                assert_eq!(Some(r), originals.iter().find(|o| o.0 == r.0));
            }
            out.push(ids(&batch));
        }
        out
    }

    /// Eleven records alternating between two towns 50 km apart, and one reject.
    fn records() -> Vec<PoiRecord> {
        let mut r: Vec<PoiRecord> = (0..11)
            .map(|k| {
                let east = if k % 2 == 0 { 0.0 } else { 0.6 };
                poi(k, -77.0 + east + 0.001 * f64::from(k), 38.9)
            })
            .collect();
        r.insert(
            5,
            (
                11,
                Err(Reject {
                    source: "line 13".into(),
                    id: None,
                    reason: "no coordinates".into(),
                }),
            ),
        );
        r
    }

    #[test]
    fn a_window_is_cut_into_batches_of_neighbours() {
        let b = WindowedBatches::new(Box::new(RecordsInMemory::new(records())), 3, 2);
        // Window 1: the first six records (0 1 2 3 4 and the reject 11); window 2: the rest.
        // In each, the reject first, then the western town (even), then the eastern (odd).
        assert_eq!(
            all(b),
            vec![vec![11, 0, 2], vec![4, 1, 3], vec![6, 8, 10], vec![5, 7, 9],]
        );
    }

    #[test]
    fn windows_are_fixed_runs_of_batches() {
        let closing: Vec<u64> = (0..7).filter(|&b| closes_window(b, 3)).collect();
        assert_eq!(closing, [2, 5]);
        assert_eq!(
            (0..7).map(|b| window_start(b, 3)).collect::<Vec<_>>(),
            [0, 0, 0, 3, 3, 3, 6]
        );
        assert!((0..4).all(|b| closes_window(b, 1) && window_start(b, 1) == b));
    }

    #[test]
    fn a_window_of_one_batch_keeps_the_file_order() {
        let b = WindowedBatches::new(Box::new(RecordsInMemory::new(records())), 5, 1);
        assert_eq!(
            all(b),
            vec![vec![0, 1, 2, 3, 4], vec![11, 5, 6, 7, 8], vec![9, 10],]
        );
    }
}
