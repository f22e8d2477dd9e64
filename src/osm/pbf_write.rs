//! Writing roads as a `.osm.pbf`: what `socialmapper synth` uses to hand its synthetic networks
//! to `run` through the same reader as real extracts.
//!
//! A minimal writer of the OSM PBF format (wiki.openstreetmap.org/wiki/PBF_Format): an
//! `OSMHeader` blob requiring `OsmSchema-V0.6` and `DenseNodes`, then `OSMData` blobs of up to
//! 8,000 nodes (DenseNodes, delta-coded) or ways (tags and delta-coded node references).
//! Blobs are stored raw (uncompressed): simpler, and the files are for benchmarks.

use super::OsmRoads;
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Entities per data block, as osmium and the format's guidance suggest.
const BLOCK_ENTITIES: usize = 8000;

/// Protobuf encoding into a byte vector.
#[derive(Default)]
struct Pb(Vec<u8>);

impl Pb {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(((field << 3) | wire) as u64);
    }
    fn uint(&mut self, field: u32, v: u64) {
        self.key(field, 0);
        self.varint(v);
    }
    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    /// A packed repeated field of varints.
    fn packed(&mut self, field: u32, values: impl IntoIterator<Item = u64>) {
        let mut inner = Pb::default();
        for v in values {
            inner.varint(v);
        }
        self.bytes(field, &inner.0);
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Delta-codes `values` as zigzag varints (sint64 with the format's delta convention).
fn deltas(values: impl IntoIterator<Item = i64>) -> Vec<u64> {
    let mut last = 0i64;
    values
        .into_iter()
        .map(|v| {
            let d = zigzag(v - last);
            last = v;
            d
        })
        .collect()
}

/// Writes one blob (header + raw data) to `w`.
fn write_blob(w: &mut impl Write, kind: &str, data: &[u8]) -> std::io::Result<()> {
    let mut blob = Pb::default();
    blob.bytes(1, data); // raw
    let mut header = Pb::default();
    header.bytes(1, kind.as_bytes());
    header.uint(3, blob.0.len() as u64);
    w.write_all(&(header.0.len() as u32).to_be_bytes())?;
    w.write_all(&header.0)?;
    w.write_all(&blob.0)
}

/// A primitive block with its string table and one group.
fn primitive_block<S: AsRef<str>>(strings: &[S], group: &Pb) -> Vec<u8> {
    let mut table = Pb::default();
    for s in strings {
        table.bytes(1, s.as_ref().as_bytes());
    }
    let mut block = Pb::default();
    block.bytes(1, &table.0);
    block.bytes(2, &group.0);
    block.uint(17, 100); // granularity: coordinates in 1e-7 degrees
    block.0
}

/// Writes `roads` (nodes and ways with their tags) to `path` as an `.osm.pbf`.
pub fn write_roads(path: &Path, roads: &OsmRoads) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| Error::output(path, e))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| Error::output(path, e);

    let mut header = Pb::default();
    header.bytes(4, b"OsmSchema-V0.6");
    header.bytes(4, b"DenseNodes");
    header.bytes(16, b"socialmapper synth");
    write_blob(&mut w, "OSMHeader", &header.0).map_err(io)?;

    let mut ids: Vec<i64> = roads.nodes.keys().copied().collect();
    ids.sort_unstable();
    for chunk in ids.chunks(BLOCK_ENTITIES) {
        let coord = |id: &i64, k: usize| {
            let c = roads.nodes[id];
            ((if k == 0 { c.1 } else { c.0 }) * 1e7).round() as i64
        };
        let mut dense = Pb::default();
        dense.packed(1, deltas(chunk.iter().copied()));
        dense.packed(8, deltas(chunk.iter().map(|id| coord(id, 0))));
        dense.packed(9, deltas(chunk.iter().map(|id| coord(id, 1))));
        let mut group = Pb::default();
        group.bytes(2, &dense.0);
        write_blob(&mut w, "OSMData", &primitive_block(&[""], &group)).map_err(io)?;
    }

    for chunk in roads.ways.chunks(BLOCK_ENTITIES) {
        // The string table: index 0 is empty by the format's rule.
        let mut strings: Vec<String> = vec![String::new()];
        let mut index: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
        let mut intern = |s: &str| -> u64 {
            if let Some(&k) = index.get(s) {
                return k;
            }
            strings.push(s.to_string());
            index.insert(s.to_string(), (strings.len() - 1) as u64);
            (strings.len() - 1) as u64
        };
        let mut group = Pb::default();
        for way in chunk {
            let (mut keys, mut vals) = (Vec::new(), Vec::new());
            for (k, v) in &way.tags {
                keys.push(intern(k));
                vals.push(intern(v));
            }
            let mut pw = Pb::default();
            pw.uint(1, way.id as u64);
            pw.packed(2, keys);
            pw.packed(3, vals);
            pw.packed(8, deltas(way.nodes.iter().copied()));
            group.bytes(3, &pw.0);
        }
        write_blob(&mut w, "OSMData", &primitive_block(&strings, &group)).map_err(io)?;
    }
    w.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::osm::OsmWay;

    #[test]
    fn varints_and_zigzag() {
        let mut p = Pb::default();
        p.varint(300);
        assert_eq!(p.0, [0xAC, 0x02]);
        assert_eq!((zigzag(0), zigzag(-1), zigzag(1), zigzag(-2)), (0, 1, 2, 3));
        assert_eq!(deltas([5, 7, 4]), [10, 4, 5]);
    }

    /// What we write, our reader (osmpbf) reads back exactly: nodes to 1e-7 degrees, ways
    /// with their node order and tags, across several blocks.
    #[test]
    fn round_trip_through_the_reader() {
        let mut roads = OsmRoads::default();
        for k in 0..20_000i64 {
            roads
                .nodes
                .insert(k + 1, (-77.0 + k as f64 * 1e-5, 38.9 - k as f64 * 2e-6));
        }
        for w in 0..9_000i64 {
            roads.ways.push(OsmWay {
                id: 1_000_000 + w,
                nodes: vec![w + 1, w + 2, w + 3],
                tags: vec![
                    (
                        "highway".into(),
                        if w % 2 == 0 { "residential" } else { "primary" }.into(),
                    ),
                    ("name".into(), format!("Street {w}")),
                ],
            });
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.osm.pbf");
        write_roads(&path, &roads).unwrap();
        let back = crate::osm::pbf::read_roads(&path).unwrap();
        assert_eq!(back.ways.len(), roads.ways.len());
        assert_eq!(back.ways[8_999], roads.ways[8_999]);
        let mut tags = back.ways[4].tags.clone();
        tags.sort();
        assert_eq!(
            tags,
            [
                ("highway".to_string(), "residential".to_string()),
                ("name".to_string(), "Street 4".to_string())
            ]
        );
        // Only nodes used by ways are read back: 1 ..= 9,002.
        assert_eq!(back.nodes.len(), 9_002);
        for id in [1i64, 4_711, 9_002] {
            let (a, b) = (roads.nodes[&id], back.nodes[&id]);
            assert!(
                (a.0 - b.0).abs() < 1e-7 && (a.1 - b.1).abs() < 1e-7,
                "node {id}: {a:?} {b:?}"
            );
        }
    }
}
