//! Helpers of the update tests (`add`/`remove`, `watch`) on the DC data: random POI files,
//! the DC drive run, `census.csv` as a keyed table, and the changelog replayed into it.

use super::{data_dir, read_csv};
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A POI row: id, name, lat, lon.
pub type Row = (String, String, f64, f64);

/// `socialmapper args...`, which must succeed; returns its stderr.
pub fn socialmapper<S: AsRef<OsStr> + std::fmt::Debug>(args: &[S]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_socialmapper"))
        .args(args)
        .output()
        .expect("run socialmapper");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "socialmapper {args:?}: {err}");
    err
}

/// Writes `rows` as a POI CSV file.
pub fn write_pois(path: &Path, rows: &[Row]) {
    let mut s = String::from("id,name,lat,lon\n");
    for (id, name, lat, lon) in rows {
        s.push_str(&format!("{id},{name},{lat:.6},{lon:.6}\n"));
    }
    std::fs::write(path, s).expect("write POIs");
}

/// `n` POIs at random places of central DC (a few off the roads' reach are fine: rejected).
pub fn random_pois(rng: &mut u64, prefix: &str, n: usize) -> Vec<Row> {
    let mut unit = || {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        (*rng >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n)
        .map(|i| {
            (
                format!("{prefix}{i}"),
                format!("Place {prefix}{i}"),
                38.891 + 0.07 * unit(),
                -77.083 + 0.093 * unit(),
            )
        })
        .collect()
}

/// Runs the DC drive analysis (3 and 6 minutes) over `pois` into `out`.
pub fn run(pois: &Path, out: &Path, checkpoint: Option<&Path>) {
    socialmapper(&run_args(pois, out, checkpoint));
}

/// Writes `pois` to `t/base.csv` and runs them into `t/live`, checkpointed in `t/cp`: the
/// finished run an update test starts from. Returns (checkpoint, outputs).
pub fn checkpointed_run(t: &Path, pois: &[Row]) -> (PathBuf, PathBuf) {
    write_pois(&t.join("base.csv"), pois);
    let (cp, live) = (t.join("cp"), t.join("live"));
    run(&t.join("base.csv"), &live, Some(&cp));
    (cp, live)
}

/// The arguments of [`run`].
pub fn run_args(pois: &Path, out: &Path, checkpoint: Option<&Path>) -> Vec<String> {
    let dc = |f: &str| data_dir().join("dc").join(f).display().to_string();
    let (pois, out) = (pois.display().to_string(), out.display().to_string());
    let mut args = vec![
        "-q".to_string(),
        "run".into(),
        "--pois".into(),
        pois,
        "--network".into(),
        dc("roads.osm.pbf"),
        "--block-groups".into(),
        dc("cb_2020_11_bg_500k.zip"),
        "--acs".into(),
        dc("acs5_2021_bg_api.json"),
        "--mode".into(),
        "drive".into(),
        "--travel-time".into(),
        "3,6".into(),
        "--out".into(),
        out,
    ];
    match checkpoint {
        Some(cp) => args.extend(["--checkpoint".into(), cp.display().to_string()]),
        None => args.push("--no-checkpoint".into()),
    }
    args
}

/// Asserts that `census.csv` and `isochrones.geojson` of `a` and `b` are the same bytes.
pub fn same_outputs(a: &Path, b: &Path, what: &str) {
    for f in ["census.csv", "isochrones.geojson"] {
        let (x, y) = (
            std::fs::read(a.join(f)).expect("output"),
            std::fs::read(b.join(f)).expect("output"),
        );
        assert!(x == y, "{what}: {f} differs from a fresh run");
    }
}

/// `census.csv` rows keyed by (travel time, GEOID).
pub type Table = BTreeMap<(String, String), Vec<String>>;

/// The header and rows of `census.csv` in `dir`.
pub fn census(dir: &Path) -> (Vec<String>, Table) {
    let (header, rows) = read_csv(&dir.join("census.csv"));
    let (g, t) = (
        super::col(&header, "census_block_group"),
        super::col(&header, "travel_time_minutes"),
    );
    let rows = rows
        .into_iter()
        .map(|r| ((r[t].clone(), r[g].clone()), r))
        .collect();
    (header, rows)
}

/// Applies the records of `changes.jsonl` in `dir` (those of epoch `only`, or all) to `table`,
/// checking that each insert is of a new row, each update and delete of an existing one, and
/// that the epochs come in order, each once (a block of records per epoch).
pub fn replay(dir: &Path, header: &[String], table: &mut Table, only: Option<u64>) {
    let changes = std::fs::read_to_string(dir.join("changes.jsonl")).expect("changelog");
    let mut seen = Vec::new();
    for line in changes.lines() {
        let c: serde_json::Value = serde_json::from_str(line).expect("JSON line");
        let epoch = c["epoch"].as_u64().expect("epoch");
        if seen.last() != Some(&epoch) {
            assert!(!seen.contains(&epoch), "epoch {epoch}'s records come twice");
            seen.push(epoch);
        }
        if only.is_some_and(|e| e != epoch) {
            continue;
        }
        let key = (
            c["travel_time_minutes"]
                .as_u64()
                .expect("minutes")
                .to_string(),
            c["key"].as_str().expect("key").to_string(),
        );
        match c["op"].as_str().expect("op") {
            "delete" => assert!(table.remove(&key).is_some(), "delete of a missing row"),
            op => {
                let row: Vec<String> = header
                    .iter()
                    .map(|h| c["row"][h].as_str().expect("cell").to_string())
                    .collect();
                let old = table.insert(key, row);
                assert_eq!(old.is_some(), op == "update", "{op} of {line}");
            }
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "epochs out of order: {seen:?}"
    );
}
