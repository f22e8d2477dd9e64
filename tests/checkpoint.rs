//! Checkpoints: a run killed with SIGKILL at several points resumes and ends with outputs
//! byte-identical to an uninterrupted run, recomputing only the batch it was computing;
//! foreign, corrupt or mismatched checkpoints are refused and left alone.

mod common;

use common::data_dir;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const OUTPUTS: [&str; 3] = ["census.csv", "isochrones.geojson", "rejects.csv"];

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    pois: PathBuf,
}

/// 45 POIs in the DC core (six batches of 8) and one bad row.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let pois = root.join("pois.csv");
    let mut text = String::from("id,name,lat,lon\n");
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    for k in 0..45 {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        let (a, b) = (
            (s % 10_000) as f64 / 10_000.0,
            ((s >> 20) % 10_000) as f64 / 10_000.0,
        );
        text.push_str(&format!(
            "p{k},POI {k},{},{}\n",
            38.895 + 0.06 * a,
            -77.075 + 0.075 * b
        ));
        if k == 20 {
            text.push_str("bad,Bad row,north,-77.0\n");
        }
    }
    std::fs::write(&pois, text).unwrap();
    Setup {
        _dir: dir,
        root,
        pois,
    }
}

fn run(s: &Setup, out: &Path, checkpoint: &Path, extra: &[&str], fault: Option<&str>) -> Output {
    let d = |f: &str| data_dir().join("dc").join(f).display().to_string();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_socialmapper"));
    cmd.args([
        "run",
        "-q",
        "--batch-size",
        "8",
        "--mode",
        "walk",
        "--travel-time",
        "5",
    ])
    .args([
        "--pois",
        &s.pois.display().to_string(),
        "--network",
        &d("roads.osm.pbf"),
    ])
    .args([
        "--block-groups",
        &d("cb_2020_11_bg_500k.zip"),
        "--acs",
        &d("acs5_2021_bg_api.json"),
    ])
    .args([
        "--out",
        &out.display().to_string(),
        "--checkpoint",
        &checkpoint.display().to_string(),
    ])
    .args(extra);
    match fault {
        Some(f) => cmd.env("SOCIALMAPPER_FAULT", f),
        None => cmd.env_remove("SOCIALMAPPER_FAULT"),
    };
    cmd.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn batches(out: &Path) -> (u64, u64, u64) {
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let b = &run["batches"];
    (
        b["batches_total"].as_u64().unwrap(),
        b["batches_resumed"].as_u64().unwrap(),
        b["batches_computed"].as_u64().unwrap(),
    )
}

fn same_outputs(a: &Path, b: &Path, what: &str) {
    for f in OUTPUTS {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs: {what}"
        );
    }
}

#[test]
fn killed_runs_resume_to_identical_outputs() {
    let s = setup();
    let (base, base_cp) = (s.root.join("base"), s.root.join("base.cp"));
    let o = run(&s, &base, &base_cp, &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batches(&base), (6, 0, 6));
    // The six batches are one order window, copied out at the end: the finished checkpoint
    // keeps no copy of it.
    let window = std::fs::metadata(base_cp.join("sinks/isochrones.window.part")).unwrap();
    assert_eq!(window.len(), 0, "the finished run's window file is emptied");
    // The same command again resumes every batch and recomputes nothing.
    let again = s.root.join("again");
    let o = run(&s, &again, &base_cp, &[], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batches(&again), (6, 6, 0));
    same_outputs(&base, &again, "full resume");

    // (fault, batches committed before the kill). The sink appends a batch's outputs to the
    // part files, then commits: killed while writing (sink:K), batch K is recomputed and its
    // half-written bytes are cut off; killed right after the commit (commit:K), it is not.
    for (fault, committed) in [
        ("compute:2", 2),
        ("commit:2", 3),
        ("sink:2", 2),
        ("compute:0", 0),
        ("sink:5", 5),
        ("commit:5", 6),
    ] {
        kill_and_resume(&s, &base, "", &[], fault, committed);
    }
}

/// Runs with `extra` flags killed at `fault`, then again: the kill leaves no outputs, the
/// second run resumes the `committed` batches of six and computes the rest, and its outputs
/// are those of `base`. Outputs and checkpoint go to `<prefix><fault>` under the root.
fn kill_and_resume(
    s: &Setup,
    base: &Path,
    prefix: &str,
    extra: &[&str],
    fault: &str,
    committed: u64,
) {
    let name = format!("{prefix}{}", fault.replace(':', "_"));
    let (out, cp) = (s.root.join(&name), s.root.join(format!("{name}.cp")));
    let o = run(s, &out, &cp, extra, Some(fault));
    assert!(!o.status.success(), "{fault}: the run was not killed");
    assert!(
        !out.join("census.csv").exists(),
        "{fault}: outputs written before the end"
    );
    let o = run(s, &out, &cp, extra, None);
    assert!(o.status.success(), "{fault}: resume failed: {}", stderr(&o));
    assert_eq!(batches(&out), (6, committed, 6 - committed), "{fault}");
    same_outputs(base, &out, fault);
}

/// With windows of two batches, the sink copies a window into record order when its second
/// batch arrives. Killed before the closing batch's commit (sink:3, the copy done), that
/// batch is recomputed and copied again; killed after it (commit:3), or half-way through the
/// next window (compute:4, commit:4), the window file is found again as the checkpoint left
/// it. The outputs are those of the default window (all six batches in one) every time.
#[test]
fn killed_runs_resume_inside_and_between_order_windows() {
    let s = setup();
    let (base, base_cp) = (s.root.join("base"), s.root.join("base.cp"));
    assert!(run(&s, &base, &base_cp, &[], None).status.success());
    let window = ["--order-window", "2"];
    let (whole, whole_cp) = (s.root.join("whole"), s.root.join("whole.cp"));
    let o = run(&s, &whole, &whole_cp, &window, None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batches(&whole), (6, 0, 6));
    same_outputs(&base, &whole, "windows of two batches");
    for (fault, committed) in [
        ("sink:3", 3),
        ("commit:3", 4),
        ("compute:4", 4),
        ("commit:4", 5),
        ("sink:5", 5),
    ] {
        kill_and_resume(&s, &base, "w2_", &window, fault, committed);
    }
}

#[test]
fn resumed_runs_with_two_workers_match() {
    let s = setup();
    let (base, cp) = (s.root.join("base"), s.root.join("base.cp"));
    assert!(run(&s, &base, &cp, &[], None).status.success());
    let (out, cp2) = (s.root.join("w2"), s.root.join("w2.cp"));
    let o = run(&s, &out, &cp2, &["-w", "2"], Some("commit:3"));
    assert!(!o.status.success());
    let o = run(&s, &out, &cp2, &["-w", "2"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    let (total, resumed, computed) = batches(&out);
    assert_eq!((total, resumed + computed), (6, 6));
    assert!(
        resumed >= 2,
        "two workers lose at most the two batches in flight: resumed {resumed}"
    );
    same_outputs(&base, &out, "two workers after a crash");
}

#[test]
fn foreign_corrupt_and_mismatched_checkpoints_are_refused() {
    let s = setup();
    let out = s.root.join("out");

    // A directory that is not a checkpoint is left alone.
    let foreign = s.root.join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.txt"), "precious").unwrap();
    let o = run(&s, &out, &foreign, &[], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("not a socialmapper checkpoint") && stderr(&o).contains("--fresh"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(foreign.join("thesis.txt")).unwrap(),
        "precious"
    );

    // A corrupt checkpoint: a clear error, no panic, nothing overwritten.
    let corrupt = s.root.join("corrupt");
    assert!(run(&s, &out, &corrupt, &[], None).status.success());
    let current = std::fs::read_to_string(corrupt.join("CURRENT")).unwrap();
    std::fs::write(corrupt.join(current.trim()), b"garbage, not a manifest").unwrap();
    let o = run(&s, &out, &corrupt, &[], None);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("checkpoint") && !stderr(&o).contains("panicked"),
        "{}",
        stderr(&o)
    );
    let o = run(&s, &out, &corrupt, &["--fresh"], None);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(batches(&out), (6, 0, 6));

    // Another configuration is refused with what differs, and --fresh starts over.
    let o = run(&s, &out, &corrupt, &["--max-snap-m", "400"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("different configuration") && stderr(&o).contains("max_snap_m"),
        "{}",
        stderr(&o)
    );
    let o = run(
        &s,
        &out,
        &corrupt,
        &["--max-snap-m", "400", "--fresh"],
        None,
    );
    assert!(o.status.success(), "{}", stderr(&o));
}
