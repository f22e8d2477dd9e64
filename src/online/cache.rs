//! The persistent download cache: a RocksDB database of validated answers (road tiles, POI
//! queries, block-group files, ACS tables, geocoded batches), shared by every run and every
//! cluster that uses the same directory (default `checkpoints/_cache/`).
//!
//! Values are bincode (serde, `config::standard`). Keys carry a format version, so a change of
//! what is stored never reads an old value as a new one. Only answers that passed validation
//! are written, so a cut or garbled download is never served from here. A value that does not
//! decode (a damaged database) counts as absent and is fetched again.

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Version of the stored values; part of every key.
const VERSION: &str = "v1";

/// An open cache.
pub struct Cache {
    db: rocksdb::DB,
    dir: PathBuf,
    /// Lookups answered from the cache.
    pub hits: AtomicU64,
}

impl Cache {
    /// Opens (creating) the cache in `dir`.
    ///
    /// # Errors
    /// [`Error::Input`] naming `dir` when it cannot be created or opened, for example while
    /// another run holds it.
    pub fn open(dir: &Path) -> Result<Cache> {
        std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.set_keep_log_file_num(2);
        // Answers are written once and read rarely: small memtables keep the run's memory low.
        opts.set_write_buffer_size(8 << 20);
        opts.set_max_write_buffer_number(2);
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let db = rocksdb::DB::open(&opts, dir).map_err(|e| {
            Error::input(
                dir,
                format!(
                    "cannot open the download cache: {e} (another run may be using it; give \
                     another --cache-dir)"
                ),
            )
        })?;
        Ok(Cache {
            db,
            dir: dir.to_path_buf(),
            hits: AtomicU64::new(0),
        })
    }

    /// The cache's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn full_key(key: &str) -> Vec<u8> {
        format!("{VERSION}/{key}").into_bytes()
    }

    /// Whether `key` holds a value (without decoding it).
    pub fn contains(&self, key: &str) -> bool {
        matches!(self.db.get_pinned(Self::full_key(key)), Ok(Some(_)))
    }

    /// The value stored under `key`, if any and if it decodes.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = match self.db.get_pinned(Self::full_key(key)) {
            Ok(Some(b)) => b,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(cache = %self.dir.display(), key, "cannot read: {e}");
                return None;
            }
        };
        match bincode::serde::decode_from_slice(&bytes, bincode::config::standard()) {
            Ok((v, _)) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(v)
            }
            Err(e) => {
                tracing::warn!(cache = %self.dir.display(), key, "undecodable entry, fetching again: {e}");
                None
            }
        }
    }

    /// Stores `value` under `key`.
    ///
    /// # Errors
    /// [`Error::Output`] naming the cache when the write fails.
    pub fn put<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| Error::output(&self.dir, format!("cannot encode {key}: {e}")))?;
        self.db
            .put(Self::full_key(key), bytes)
            .map_err(|e| Error::output(&self.dir, format!("cannot store {key}: {e}")))
    }

    /// Number of entries whose key starts with `prefix` (tests, reports).
    pub fn count(&self, prefix: &str) -> usize {
        let p = Self::full_key(prefix);
        self.db
            .prefix_iterator(&p)
            .take_while(|item| item.as_ref().is_ok_and(|(k, _)| k.starts_with(&p)))
            .count()
    }
}

/// A short stable hash of `text` (FNV-1a, 64 bits, hex) for keys made from long queries.
pub fn key_hash(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_survive_a_reopen_and_garbage_reads_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        {
            let c = Cache::open(dir.path()).unwrap();
            c.put("roads/1/2", &vec![(1i64, "a".to_string())]).unwrap();
            c.db.put(Cache::full_key("bad"), [0xffu8; 3]).unwrap();
            assert!(c.contains("roads/1/2"));
            assert_eq!(c.count("roads/"), 1);
        }
        let c = Cache::open(dir.path()).unwrap();
        let v: Option<Vec<(i64, String)>> = c.get("roads/1/2");
        assert_eq!(v, Some(vec![(1, "a".to_string())]));
        assert_eq!(c.get::<Vec<String>>("bad"), None);
        assert_eq!(c.get::<u32>("missing"), None);
        assert_eq!(c.hits.load(Ordering::Relaxed), 1);
        assert_ne!(key_hash("a"), key_hash("b"));
    }
}
