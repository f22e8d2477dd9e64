//! Run checkpoints in RocksDB: every completed batch's results, committed atomically with the
//! streamed outputs' progress, so that a run killed at any moment resumes without recomputing
//! finished batches and ends with byte-identical outputs.
//!
//! Layout (one RocksDB database per run, by default `checkpoints/<run name>/`):
//!
//! | key | value |
//! |---|---|
//! | `meta/format` | format version, u32 little-endian |
//! | `meta/fingerprint` | bincode of [`Fingerprint`]: what the results depend on |
//! | `batch/<id, u64 big-endian>` | bincode of the batch's record (see [`crate::pipeline`]) |
//!
//! Batches are committed in batch order, each in one write once the sink has appended its
//! outputs to the files in `sinks/` beside the database (`isochrones.geojson.part`,
//! `rejects.csv.part`, and the open order window's `isochrones.window.part`, see
//! [`crate::output::StreamedOutputs`]); the record holds the files' lengths after the batch.
//! A resumed run replays the committed records, truncates the files to the lengths of the last
//! one, rebuilds the open window and goes on from the next batch. Writes are not fsynced: a
//! killed process loses nothing the operating system has accepted; a power cut may lose the
//! last batches, which are then recomputed.

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Version of the layout above; a checkpoint of another version is refused.
pub const FORMAT: u32 = 6;

/// Everything a run's results depend on. A checkpoint is only resumed by a run with the same
/// fingerprint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Program version that wrote the checkpoint.
    pub version: String,
    /// The analysis settings (travel times, mode, variables, grid, batch size...), as TOML.
    pub analysis: String,
    /// Each input: role, path, size in bytes and modification time (seconds since the epoch).
    pub inputs: Vec<(String, String, u64, u64)>,
}

impl Fingerprint {
    /// The differences between two fingerprints, in words.
    pub fn differences(&self, other: &Fingerprint) -> Vec<String> {
        let mut d = Vec::new();
        if self.version != other.version {
            d.push(format!(
                "program version {} → {}",
                self.version, other.version
            ));
        }
        if self.analysis != other.analysis {
            let (a, b): (Vec<&str>, Vec<&str>) = (
                self.analysis.lines().collect(),
                other.analysis.lines().collect(),
            );
            for line in &b {
                if !a.contains(line) {
                    d.push(format!("setting {line}"));
                }
            }
        }
        for input in &other.inputs {
            match self.inputs.iter().find(|i| i.0 == input.0) {
                Some(old) if old == input => {}
                Some(old) if old.1 != input.1 => {
                    d.push(format!("{} file {} → {}", input.0, old.1, input.1))
                }
                Some(_) => d.push(format!(
                    "{} file {} changed (size or modification time)",
                    input.0, input.1
                )),
                None => d.push(format!("new input {} {}", input.0, input.1)),
            }
        }
        d
    }
}

/// Role, path, size and modification time of an input file, for a [`Fingerprint`].
pub fn file_identity(role: &str, path: &Path) -> Result<(String, String, u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| Error::input(path, e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Ok((
        role.to_string(),
        shown.display().to_string(),
        meta.len(),
        mtime,
    ))
}

/// An open checkpoint.
pub struct Checkpoint {
    db: rocksdb::DB,
    dir: PathBuf,
}

const KEY_FORMAT: &[u8] = b"meta/format";
const KEY_FINGERPRINT: &[u8] = b"meta/fingerprint";
const BATCH_PREFIX: &[u8] = b"batch/";

fn key(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// A value as the checkpoint stores it (bincode 2, standard configuration).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Encoding plain serde data into a Vec cannot fail.
    bincode::serde::encode_to_vec(v, bincode::config::standard()).unwrap_or_default()
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> std::result::Result<T, String> {
    bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map(|(v, _)| v)
        .map_err(|e| e.to_string())
}

impl Checkpoint {
    /// Opens the checkpoint in `dir` for a run with `fingerprint`, creating it when `dir` does
    /// not exist or is empty. With `fresh`, whatever is in `dir` is deleted first. Without it, a
    /// directory that is not a checkpoint, a corrupt one, or one made with another
    /// configuration is refused and left as it is.
    pub fn open(dir: &Path, fingerprint: &Fingerprint, fresh: bool) -> Result<Checkpoint> {
        let (cp, stored) = Checkpoint::open_with(dir, Some(fingerprint), fresh)?;
        if let Some(stored) = stored
            && &stored != fingerprint
        {
            return Err(Error::Config(format!(
                "the checkpoint in {} was made with a different configuration: {}; use --fresh to discard it, or another --checkpoint",
                dir.display(),
                stored.differences(fingerprint).join("; ")
            )));
        }
        Ok(cp)
    }

    /// Opens an existing checkpoint, whatever its fingerprint, which it returns (for
    /// `socialmapper add` and `remove`, which compare only the inputs they use).
    pub fn open_existing(dir: &Path) -> Result<(Checkpoint, Fingerprint)> {
        if !dir.join("CURRENT").is_file() {
            return Err(Error::input(
                dir,
                "no socialmapper checkpoint here (run `socialmapper run` with --checkpoint first)",
            ));
        }
        let (cp, stored) = Checkpoint::open_with(dir, None, false)?;
        let stored =
            stored.ok_or_else(|| Error::input(dir, "the checkpoint has no fingerprint"))?;
        Ok((cp, stored))
    }

    /// Opens (or, given a fingerprint, creates) the checkpoint in `dir`; returns the stored
    /// fingerprint of an existing one.
    fn open_with(
        dir: &Path,
        fingerprint: Option<&Fingerprint>,
        fresh: bool,
    ) -> Result<(Checkpoint, Option<Fingerprint>)> {
        let fix = "(use --fresh to discard it and start over)";
        if fresh && dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| {
                Error::output(dir, format!("cannot remove the old checkpoint: {e}"))
            })?;
        }
        let existing = dir.is_dir()
            && std::fs::read_dir(dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false);
        if existing && !dir.join("CURRENT").is_file() {
            return Err(Error::input(
                dir,
                format!("this directory is not a socialmapper checkpoint {fix}"),
            ));
        }
        if !existing && fingerprint.is_none() {
            return Err(Error::input(dir, "no socialmapper checkpoint here"));
        }
        std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(!existing);
        opts.set_keep_log_file_num(2);
        // Batch records are written once, in key order, and read back only on resume: small
        // memtables keep the checkpoint's memory (up to 2 × 64 MB by default) out of the
        // run's flat budget, and cost nothing in speed at a few hundred KB per batch.
        opts.set_write_buffer_size(8 << 20);
        opts.set_max_write_buffer_number(2);
        opts.set_target_file_size_base(32 << 20);
        let db = rocksdb::DB::open(&opts, dir)
            .map_err(|e| Error::input(dir, format!("cannot open the checkpoint: {e} {fix}")))?;
        let read = |key: &[u8]| {
            db.get(key)
                .map_err(|e| Error::input(dir, format!("cannot read the checkpoint: {e} {fix}")))
        };
        if existing {
            let format = read(KEY_FORMAT)?;
            let stored = read(KEY_FINGERPRINT)?;
            let (Some(format), Some(stored)) = (format, stored) else {
                return Err(Error::input(
                    dir,
                    format!("this RocksDB database is not a socialmapper checkpoint {fix}"),
                ));
            };
            if format.as_slice() != FORMAT.to_le_bytes() {
                return Err(Error::input(
                    dir,
                    format!("checkpoint format {format:?} is not {FORMAT} {fix}"),
                ));
            }
            let stored: Fingerprint = decode(&stored).map_err(|e| {
                Error::input(dir, format!("corrupt checkpoint metadata: {e} {fix}"))
            })?;
            return Ok((
                Checkpoint {
                    db,
                    dir: dir.to_path_buf(),
                },
                Some(stored),
            ));
        }
        let mut wb = rocksdb::WriteBatch::default();
        wb.put(KEY_FORMAT, FORMAT.to_le_bytes());
        if let Some(f) = fingerprint {
            wb.put(KEY_FINGERPRINT, encode(f));
        }
        db.write(wb).map_err(|e| Error::output(dir, e))?;
        Ok((
            Checkpoint {
                db,
                dir: dir.to_path_buf(),
            },
            None,
        ))
    }

    /// The value stored under `name` (outside the batch records), if any.
    pub fn get<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<Option<T>> {
        let bytes = self
            .db
            .get(name.as_bytes())
            .map_err(|e| Error::input(&self.dir, format!("cannot read {name}: {e}")))?;
        bytes
            .map(|b| {
                decode(&b).map_err(|e| {
                    Error::input(&self.dir, format!("corrupt {name} in the checkpoint: {e}"))
                })
            })
            .transpose()
    }

    /// Stores every `(name, value)` (`None` deletes) in one atomic write.
    pub fn put_all(&self, items: &[(&str, Option<Vec<u8>>)]) -> Result<()> {
        let mut wb = rocksdb::WriteBatch::default();
        for (name, value) in items {
            match value {
                Some(v) => wb.put(name.as_bytes(), v),
                None => wb.delete(name.as_bytes()),
            }
        }
        self.db
            .write(wb)
            .map_err(|e| Error::output(&self.dir, format!("cannot write the checkpoint: {e}")))
    }

    /// How many batches are committed: batches `0 .. n` (they are committed in order).
    pub fn committed(&self) -> Result<u64> {
        let mut n = 0u64;
        for item in self.db.prefix_iterator(BATCH_PREFIX) {
            let (k, _) = item
                .map_err(|e| Error::input(&self.dir, format!("cannot read the checkpoint: {e}")))?;
            if !k.starts_with(BATCH_PREFIX) {
                break;
            }
            let id = k[BATCH_PREFIX.len()..]
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| {
                    Error::input(
                        &self.dir,
                        "corrupt batch key in the checkpoint (use --fresh)",
                    )
                })?;
            if id != n {
                return Err(Error::input(
                    &self.dir,
                    format!("the checkpoint lacks batch {n} but has batch {id} (use --fresh)"),
                ));
            }
            n += 1;
        }
        Ok(n)
    }

    /// Commits batch `id`'s record atomically.
    pub fn commit<T: Serialize>(&self, id: u64, record: &T) -> Result<()> {
        self.db
            .put(key(BATCH_PREFIX, id), encode(record))
            .map_err(|e| Error::output(&self.dir, format!("cannot write the checkpoint: {e}")))
    }

    /// A committed batch's record.
    pub fn load<T: for<'de> Deserialize<'de>>(&self, id: u64) -> Result<T> {
        let bytes = self
            .db
            .get(key(BATCH_PREFIX, id))
            .map_err(|e| Error::input(&self.dir, format!("cannot read batch {id}: {e}")))?
            .ok_or_else(|| {
                Error::input(
                    &self.dir,
                    format!("batch {id} is missing from the checkpoint"),
                )
            })?;
        decode(&bytes).map_err(|e| {
            Error::input(
                &self.dir,
                format!("corrupt batch {id} in the checkpoint: {e} (use --fresh)"),
            )
        })
    }

    /// Where the sinks keep their part files.
    pub fn sinks_dir(&self) -> PathBuf {
        self.dir.join("sinks")
    }

    /// The checkpoint's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
