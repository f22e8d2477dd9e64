//! Reading highway ways out of a `.osm.pbf` file.
//!
//! Two passes over the file, each decoding blobs on all cores: the first keeps every way with
//! a `highway` tag, the second keeps only the nodes those ways reference. Memory therefore grows
//! with the road network, not with the extract (most nodes of an extract are building corners).

use super::{OsmRoads, OsmWay};
use crate::{Error, Result};
use osmpbf::{BlobDecode, BlobReader, PrimitiveBlock};
use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Reads every way with a `highway` tag and the lon/lat of the nodes those ways use.
///
/// Ways come sorted by id. A way keeps its node references exactly as in the file, even when
/// some of those nodes are missing from the extract (a clipped extract cuts ways at its border):
/// `nodes` then lacks those ids, the count is logged as a warning, and
/// [`crate::graph::build::build_graph`] breaks such ways at the gaps rather than joining the
/// present nodes with a straight line that no road follows.
///
/// # Errors
/// [`Error::Input`] naming `path` when the file is missing or unreadable, is not an OSM PBF
/// file, or is corrupt or truncated inside a block.
pub fn read_roads(path: &Path) -> Result<OsmRoads> {
    // Pass 1: highway ways.
    let parts = for_each_block(path, Vec::new, |ways: &mut Vec<OsmWay>, block| {
        for group in block.groups() {
            for w in group.ways() {
                if !w.tags().any(|(k, _)| k == "highway") {
                    continue;
                }
                ways.push(OsmWay {
                    id: w.id(),
                    nodes: w.refs().collect(),
                    tags: w
                        .tags()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                });
            }
        }
    })?;
    let mut ways: Vec<OsmWay> = parts.into_iter().flatten().collect();
    // Blocks are decoded in parallel, so arrival order varies from run to run.
    ways.sort_by_key(|w| w.id);

    let mut wanted: Vec<i64> = ways.iter().flat_map(|w| w.nodes.iter().copied()).collect();
    wanted.sort_unstable();
    wanted.dedup();

    // Pass 2: the coordinates of referenced nodes only.
    let nodes = read_node_coords(path, &wanted)?;

    let mut missing_refs = 0usize;
    let mut ways_with_missing = 0usize;
    for w in &ways {
        let m = w.nodes.iter().filter(|n| !nodes.contains_key(n)).count();
        missing_refs += m;
        ways_with_missing += usize::from(m > 0);
    }
    if missing_refs > 0 {
        tracing::warn!(
            file = %path.display(),
            ways = ways_with_missing,
            node_refs = missing_refs,
            "highway ways reference nodes missing from the extract; they keep their present nodes"
        );
    }
    tracing::debug!(
        file = %path.display(),
        ways = ways.len(),
        nodes = nodes.len(),
        "read highway ways"
    );
    Ok(OsmRoads { nodes, ways })
}

/// Coordinates (lon, lat) of the nodes whose ids are in `wanted` (sorted, deduplicated).
pub(crate) fn read_node_coords(path: &Path, wanted: &[i64]) -> Result<HashMap<i64, (f64, f64)>> {
    let parts = for_each_block(path, Vec::new, |found: &mut Vec<(i64, f64, f64)>, block| {
        let mut cursor = SortedCursor::new(wanted);
        for group in block.groups() {
            for n in group.dense_nodes() {
                if cursor.contains(n.id()) {
                    found.push((n.id(), n.lon(), n.lat()));
                }
            }
            for n in group.nodes() {
                if cursor.contains(n.id()) {
                    found.push((n.id(), n.lon(), n.lat()));
                }
            }
        }
    })?;
    let mut nodes = HashMap::with_capacity(wanted.len());
    for (id, lon, lat) in parts.into_iter().flatten() {
        nodes.insert(id, (lon, lat));
    }
    Ok(nodes)
}

/// Membership test in a sorted id list, fast when queries come in ascending order (as they do
/// inside a PBF block, which is sorted by id): it gallops forward from the last position and
/// only falls back to a full binary search when the ids go backwards.
struct SortedCursor<'a> {
    ids: &'a [i64],
    pos: usize,
    last: i64,
}

impl<'a> SortedCursor<'a> {
    fn new(ids: &'a [i64]) -> Self {
        SortedCursor {
            ids,
            pos: 0,
            last: i64::MIN,
        }
    }

    fn contains(&mut self, id: i64) -> bool {
        if id < self.last {
            self.pos = self.ids.partition_point(|&x| x < id);
        } else {
            // Gallop: find a bound `pos + step` with ids[..] >= id, then binary-search below it.
            let mut step = 1;
            let mut lo = self.pos;
            while lo + step < self.ids.len() && self.ids[lo + step] < id {
                lo += step;
                step *= 2;
            }
            let hi = (lo + step + 1).min(self.ids.len());
            self.pos = lo + self.ids[lo..hi].partition_point(|&x| x < id);
        }
        self.last = id;
        self.ids.get(self.pos) == Some(&id)
    }
}

/// Decodes every data block of the PBF at `path` on all cores and folds each into a per-thread
/// accumulator made by `init`; returns the accumulators (in no particular order).
///
/// Reading the file is sequential (one lock around the blob reader); decompressing and parsing
/// the blobs, the expensive part, runs in parallel. The first error stops every worker.
///
/// # Errors
/// [`Error::Input`] naming `path` when the file cannot be opened, is not an OSM PBF (no
/// `OSMHeader` block first) or is corrupt.
pub(crate) fn for_each_block<T, I, F>(path: &Path, init: I, f: F) -> Result<Vec<T>>
where
    T: Send,
    I: Fn() -> T + Sync,
    F: Fn(&mut T, &PrimitiveBlock) + Sync,
{
    let mut reader = BlobReader::from_path(path).map_err(|e| Error::input(path, describe(&e)))?;
    // The format requires an OSMHeader blob first; checking it here turns "some other file"
    // into a clear error instead of an empty result.
    match reader.next() {
        None => return Err(Error::input(path, "not an OSM PBF file: the file is empty")),
        Some(Err(e)) => {
            return Err(Error::input(
                path,
                format!("not an OSM PBF file: {}", describe(&e)),
            ));
        }
        Some(Ok(blob)) => match blob.decode() {
            Ok(BlobDecode::OsmHeader(_)) => {}
            Ok(_) => {
                return Err(Error::input(
                    path,
                    "not an OSM PBF file: no OSMHeader block first",
                ));
            }
            Err(e) => {
                return Err(Error::input(
                    path,
                    format!("corrupt OSMHeader block: {}", describe(&e)),
                ));
            }
        },
    }

    let reader: Mutex<BlobReader<BufReader<File>>> = Mutex::new(reader);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<String>> = Mutex::new(None);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);

    let record_error = |msg: String| {
        failed.store(true, Ordering::Relaxed);
        if let Ok(mut slot) = first_error.lock() {
            slot.get_or_insert(msg);
        }
    };

    let results: Vec<T> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let mut acc = init();
                    while !failed.load(Ordering::Relaxed) {
                        let next = match reader.lock() {
                            Ok(mut r) => r.next(),
                            Err(_) => None, // another worker panicked; it reports below
                        };
                        let blob = match next {
                            None => break,
                            Some(Ok(b)) => b,
                            Some(Err(e)) => {
                                record_error(format!("corrupt or truncated: {}", describe(&e)));
                                break;
                            }
                        };
                        match blob.decode() {
                            Ok(BlobDecode::OsmData(block)) => f(&mut acc, &block),
                            Ok(_) => {}
                            Err(e) => {
                                record_error(format!("corrupt data block: {}", describe(&e)));
                                break;
                            }
                        }
                    }
                    acc
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(acc) => Some(acc),
                Err(_) => {
                    record_error("corrupt data: the PBF decoder failed".to_owned());
                    None
                }
            })
            .collect()
    });

    if let Some(msg) = first_error.into_inner().ok().flatten() {
        return Err(Error::input(path, msg));
    }
    Ok(results)
}

/// One line of plain text for an osmpbf error, including the underlying I/O or protobuf cause.
fn describe(e: &osmpbf::Error) -> String {
    use osmpbf::ErrorKind;
    match e.kind() {
        ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            "file not found".to_owned()
        }
        ErrorKind::Io(io) => format!("cannot read: {io}"),
        ErrorKind::Protobuf { err, location } => format!("cannot decode {location}: {err}"),
        _ => e.to_string(),
    }
}

#[cfg(test)]
pub(crate) use crate::testdata::shared_data as test_data;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sorted_cursor_matches_binary_search() {
        let ids: Vec<i64> = vec![-5, 1, 2, 3, 10, 11, 50, 51, 52, 1000, 1_000_000];
        let queries: Vec<i64> = vec![
            -10, -5, 0, 1, 3, 4, 10, 49, 51, 52, 999, 1000, 5, 2, 1_000_000, 2_000_000, -5,
        ];
        let mut c = SortedCursor::new(&ids);
        for q in queries {
            assert_eq!(c.contains(q), ids.binary_search(&q).is_ok(), "{q}");
        }
        let mut empty = SortedCursor::new(&[]);
        assert!(!empty.contains(3));
    }

    #[test]
    fn dc_extract_has_all_highway_ways() {
        let path = test_data("dc/roads.osm.pbf");
        let roads = read_roads(&path).expect("read");
        // README: 8,619 ways of which 8,593 carry `highway`.
        assert_eq!(roads.ways.len(), 8593);
        assert!(
            roads.ways.windows(2).all(|w| w[0].id < w[1].id),
            "sorted by id, unique"
        );
        assert!(roads.ways.iter().all(|w| w.tag("highway").is_some()));
        // Every referenced node is present in this extract, and no others are kept.
        let referenced: HashSet<i64> = roads
            .ways
            .iter()
            .flat_map(|w| w.nodes.iter().copied())
            .collect();
        assert_eq!(roads.nodes.len(), referenced.len());
        assert!(referenced.iter().all(|n| roads.nodes.contains_key(n)));
        // Inside the README's bounding box of the extract (with margin for the sparse fringe).
        for &(lon, lat) in roads.nodes.values() {
            assert!(
                (-77.2..-76.8).contains(&lon) && (38.8..39.1).contains(&lat),
                "{lon} {lat}"
            );
        }
    }

    #[test]
    fn reading_is_deterministic() {
        let path = test_data("dc/roads.osm.pbf");
        let a = read_roads(&path).expect("read");
        let b = read_roads(&path).expect("read");
        assert_eq!(a.ways, b.ways);
        assert_eq!(a.nodes, b.nodes);
    }

    #[test]
    fn missing_file_is_an_input_error() {
        let p = Path::new("/nonexistent/dir/roads.osm.pbf");
        match read_roads(p) {
            Err(Error::Input { path, cause }) => {
                assert_eq!(path, p);
                assert!(cause.contains("not found"), "{cause}");
            }
            other => panic!("expected Input error, got {other:?}"),
        }
    }

    #[test]
    fn non_pbf_files_are_input_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: &[(&str, &[u8])] = &[
            ("empty.osm.pbf", b""),
            (
                "text.osm.pbf",
                b"<?xml version='1.0'?><osm version='0.6'></osm>\n",
            ),
            ("short.osm.pbf", &[0, 0, 0, 5, 1, 2]),
            ("zeros.osm.pbf", &[0u8; 64]),
        ];
        for (name, bytes) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).expect("write");
            match read_roads(&p) {
                Err(Error::Input { path, cause }) => {
                    assert_eq!(path, p);
                    assert!(!cause.is_empty());
                }
                other => panic!("{name}: expected Input error, got {other:?}"),
            }
        }
    }

    #[test]
    fn truncated_pbf_is_an_input_error() {
        let bytes = std::fs::read(test_data("dc/roads.osm.pbf")).expect("read");
        let dir = tempfile::tempdir().expect("tempdir");
        // Cut inside the header blob, inside the first data blob, and in the middle.
        for cut in [10, 200, bytes.len() / 2, bytes.len() - 7] {
            let p = dir.path().join(format!("cut{cut}.osm.pbf"));
            std::fs::write(&p, &bytes[..cut]).expect("write");
            match read_roads(&p) {
                Err(Error::Input { path, cause }) => {
                    assert_eq!(path, p);
                    assert!(!cause.is_empty());
                }
                Ok(r) => panic!(
                    "cut at {cut}: expected an error, read {} ways",
                    r.ways.len()
                ),
                Err(e) => panic!("cut at {cut}: wrong error kind {e:?}"),
            }
        }
    }
}
