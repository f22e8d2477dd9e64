//! Incremental benchmark (issue 4): single POIs added to, then taken out of, a finished run of
//! many POIs on a synthetic region, against the full run measured in the same invocation.
//!
//! ```text
//! cargo bench --bench incremental -- [--nodes 2000000] [--pois 100000] [--epochs 20]
//!     [--mode drive] [--minutes 15] [--workers 2] [--dir target/incremental] [--bin PATH]
//! ```
//!
//! It writes (once, then reuses) a region of `pois + epochs` POIs with `socialmapper synth`,
//! runs the first `pois` with `socialmapper run` in a fresh process (the full recompute, timed
//! whole: reading inputs, dataflow, outputs), then opens the checkpoint in this process
//! ([`LiveRun::open`], timed as loading) and applies `epochs` epochs each adding one of the
//! remaining POIs, then as many each removing one. An epoch's latency is from the change
//! handed over to every output written (`census.csv`, `isochrones.geojson`, `changes.jsonl`,
//! `rejects.csv`, `epochs.jsonl`), committed to RocksDB first. At the end `census.csv` must be
//! byte for byte what the run wrote: the benchmark measures real updates, not no-ops.
//!
//! `--reuse` takes the finished run of an earlier invocation as it is (its time from its
//! `run.json`) instead of running it again; its checkpoint then carries the earlier epochs.
//!
//! `--bin` runs the full recompute with another build (a copy, so that rebuilding during a
//! long measurement does not change the program measured).

mod common;

use socialmapper::incremental::{Change, EpochReport, LiveRun};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Args {
    nodes: usize,
    pois: usize,
    epochs: usize,
    mode: String,
    minutes: String,
    workers: usize,
    dir: PathBuf,
    bin: PathBuf,
    /// Reuse the finished run of an earlier invocation (its time read from its `run.json`).
    reuse: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        nodes: 2_000_000,
        pois: 100_000,
        epochs: 20,
        mode: "drive".into(),
        minutes: "15".into(),
        workers: 2,
        dir: PathBuf::from("target/incremental"),
        bin: PathBuf::from(env!("CARGO_BIN_EXE_socialmapper")),
        reuse: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--nodes" => a.nodes = value().parse().expect("--nodes N"),
            "--pois" => a.pois = value().parse().expect("--pois N"),
            "--epochs" => a.epochs = value().parse().expect("--epochs N"),
            "--mode" => a.mode = value(),
            "--minutes" => a.minutes = value(),
            "--workers" => a.workers = value().parse().expect("--workers N"),
            "--dir" => a.dir = PathBuf::from(value()),
            "--bin" => a.bin = PathBuf::from(value()),
            "--reuse" => a.reuse = true,
            // cargo bench passes --bench; anything else unknown is a mistake.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// The region (written unless it is there), the run's POI file (its first `pois` POIs) and
/// one single-POI file per epoch (the rest).
fn region(args: &Args) -> (PathBuf, PathBuf, Vec<(String, PathBuf)>) {
    let total = args.pois + args.epochs;
    let dir = common::synth_region(&args.bin, &args.dir, args.nodes, total, "incremental");
    let text = std::fs::read_to_string(dir.join("pois.csv")).expect("read pois.csv");
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    let rows: Vec<&str> = lines.collect();
    assert!(rows.len() >= total, "pois.csv holds {} POIs", rows.len());
    let base = dir.join("base.csv");
    let mut run_rows = format!("{header}\n");
    for r in &rows[..args.pois] {
        run_rows.push_str(r);
        run_rows.push('\n');
    }
    std::fs::write(&base, run_rows).expect("write base.csv");
    let adds = rows[args.pois..total]
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let path = dir.join(format!("add_{k}.csv"));
            std::fs::write(&path, format!("{header}\n{r}\n")).expect("write an added POI");
            (r.split(',').next().unwrap_or_default().to_string(), path)
        })
        .collect();
    (dir, base, adds)
}

/// Runs the first `pois` POIs with `socialmapper run` in a fresh process; returns its wall
/// time (reading inputs, dataflow, outputs).
fn full_run(args: &Args, dir: &Path, base: &Path, out: &Path, cp: &Path) -> f64 {
    let t = Instant::now();
    let status = Command::new(&args.bin)
        .arg("run")
        .arg(dir.join("flow.toml"))
        .arg("--pois")
        .arg(base)
        .args(["--mode", &args.mode, "--travel-time", &args.minutes])
        .args(["-w", &args.workers.to_string(), "-q", "--fresh", "--out"])
        .arg(out)
        .arg("--checkpoint")
        .arg(cp)
        .status()
        .expect("run socialmapper run");
    assert!(status.success(), "the full run failed");
    let full_s = t.elapsed().as_secs_f64();
    println!("full run: {full_s:.1} s");
    full_s
}

/// Median, 90th percentile and largest of `xs` (sorted in place).
fn spread(xs: &mut [f64]) -> (f64, f64, f64) {
    xs.sort_by(f64::total_cmp);
    let at = |q: f64| xs[((xs.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), at(1.0))
}

fn main() {
    let args = parse_args();
    let (dir, base, adds) = region(&args);
    let (out, cp) = (dir.join("out"), dir.join("checkpoint"));
    println!(
        "incremental: {} nodes, {} POIs, {} {} min, {} workers, {} epochs each way",
        args.nodes, args.pois, args.mode, args.minutes, args.workers, args.epochs
    );

    // The full recompute, in its own process.
    let run_json = out.join("run.json");
    let full_s = if args.reuse && run_json.is_file() {
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&run_json).expect("run.json")).expect("JSON");
        let total = report["timings_s"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|t| t[0] == "total")
                    .and_then(|t| t[1].as_f64())
            })
            .expect("the run's total time");
        println!("full run (reused): {total:.1} s");
        total
    } else {
        full_run(&args, &dir, &base, &out, &cp)
    };
    let census_before = std::fs::read(out.join("census.csv")).expect("census.csv");

    // Updates, in this process.
    let t = Instant::now();
    let mut live = LiveRun::open(&cp, true).expect("open the run for updates");
    let load_s = t.elapsed().as_secs_f64();
    println!("open (inputs, network, state): {load_s:.1} s");
    let changes: Vec<(String, Change)> = adds
        .iter()
        .map(|(id, path)| {
            (
                id.clone(),
                Change::add_file(path).expect("read an added POI"),
            )
        })
        .collect();
    let mut epoch = |change: &Change| -> (EpochReport, f64) {
        let t = Instant::now();
        let report = live.apply(change).expect("apply an epoch");
        (report, t.elapsed().as_secs_f64())
    };
    let mut add_ms = Vec::new();
    let mut rows = Vec::new();
    for (_, change) in &changes {
        let (report, wall) = epoch(change);
        assert_eq!(report.pois_added, 1, "{report:?}");
        add_ms.push(wall * 1e3);
        rows.push(report.rows_changed as f64);
    }
    let mut remove_ms = Vec::new();
    for (id, _) in &changes {
        let change = Change {
            remove_ids: vec![id.clone()],
            add: Vec::new(),
        };
        let (report, wall) = epoch(&change);
        assert_eq!(report.pois_removed, 1, "{report:?}");
        remove_ms.push(wall * 1e3);
    }
    let census_after = std::fs::read(out.join("census.csv")).expect("census.csv");
    assert!(
        census_after == census_before,
        "adding and removing the same POIs changed census.csv"
    );

    let first_add = add_ms[0];
    let (a50, a90, amax) = spread(&mut add_ms);
    let (r50, r90, rmax) = spread(&mut remove_ms);
    let (rows50, _, _) = spread(&mut rows);
    println!(
        "add 1 POI:    median {a50:.1} ms, p90 {a90:.1} ms, max {amax:.1} ms (first {first_add:.1} ms); {rows50:.0} rows changed (median)"
    );
    println!("remove 1 POI: median {r50:.1} ms, p90 {r90:.1} ms, max {rmax:.1} ms");
    println!(
        "full run / add median: {:.0}×",
        full_s * 1e3 / a50.max(f64::MIN_POSITIVE)
    );
    println!("census.csv after the adds and removes: byte-identical to the run's");
    let _ = std::fs::remove_file(dir.join("base.csv"));
    for (_, p) in &adds {
        let _ = std::fs::remove_file(p);
    }
}
