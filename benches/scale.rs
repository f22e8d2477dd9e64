//! Scale runner: the whole job on synthetic regions far beyond the DC extract, one fresh
//! process per POI count, so that each peak RSS is that run's own. For every POI count it
//! writes (once, then reuses) a region with `socialmapper synth`, runs
//! `socialmapper run DIR/flow.toml` with a fresh checkpoint, and prints wall time, time per
//! POI, peak RSS and its ratio to the first (smallest) run.
//!
//! ```text
//! cargo bench --bench scale -- [--nodes 2000000] [--pois 10000,100000,1000000]
//!     [--mode drive] [--minutes 15] [--workers 2] [--dir target/scale] [--keep]
//!     [--bin PATH]
//! ```
//!
//! `--bin` runs another build of `socialmapper` (a copy, so that rebuilding during a long
//! measurement does not change the program measured) instead of this one.
//!
//! Outputs of a run are deleted after it is measured (a million 15-minute drive outlines are
//! gigabytes) unless `--keep` is given.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Args {
    nodes: usize,
    pois: Vec<usize>,
    mode: String,
    minutes: String,
    workers: usize,
    dir: PathBuf,
    keep: bool,
    bin: PathBuf,
}

fn parse_args() -> Args {
    let mut a = Args {
        nodes: 2_000_000,
        pois: vec![10_000, 100_000, 1_000_000],
        mode: "drive".into(),
        minutes: "15".into(),
        workers: 2,
        dir: PathBuf::from("target/scale"),
        keep: false,
        bin: PathBuf::from(env!("CARGO_BIN_EXE_socialmapper")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match arg.as_str() {
            "--nodes" => a.nodes = value().parse().expect("--nodes N"),
            "--pois" => {
                a.pois = value()
                    .split(',')
                    .map(|v| v.trim().parse().expect("--pois N,N,..."))
                    .collect()
            }
            "--mode" => a.mode = value(),
            "--minutes" => a.minutes = value(),
            "--workers" => a.workers = value().parse().expect("--workers N"),
            "--dir" => a.dir = PathBuf::from(value()),
            "--keep" => a.keep = true,
            "--bin" => a.bin = PathBuf::from(value()),
            // cargo bench passes --bench; anything else unknown is a mistake.
            "--bench" => {}
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).expect("read run.json")).expect("parse run.json")
}

fn main() {
    let args = parse_args();
    println!(
        "scale: {} nodes, {} {} min, {} workers",
        args.nodes, args.mode, args.minutes, args.workers
    );
    println!(
        "{:>9} {:>9} {:>9} {:>10} {:>12} {:>10} {:>9} {:>11}",
        "POIs", "wall s", "ms/POI", "batches s", "iso ms/POI", "RSS MB", "RSS ×", "settled/POI"
    );
    let mut first_rss = None;
    for &n in &args.pois {
        let dir = common::synth_region(&args.bin, &args.dir, args.nodes, n, "scale");
        let (out, cp) = (dir.join("out"), dir.join("checkpoint"));
        let t = Instant::now();
        let status = Command::new(&args.bin)
            .arg("run")
            .arg(dir.join("flow.toml"))
            .args(["--mode", &args.mode, "--travel-time", &args.minutes])
            .args(["-w", &args.workers.to_string(), "-q", "--fresh", "--out"])
            .arg(&out)
            .arg("--checkpoint")
            .arg(&cp)
            .status()
            .expect("run socialmapper run");
        assert!(status.success(), "run failed for {n} POIs");
        let wall = t.elapsed().as_secs_f64();
        let report = json(&out.join("run.json"));
        let timing = |stage: &str| {
            report["timings_s"]
                .as_array()
                .and_then(|a| a.iter().find(|t| t[0] == stage).and_then(|t| t[1].as_f64()))
                .unwrap_or(0.0)
        };
        let rss = report["peak_rss_mb"].as_f64().unwrap_or(0.0);
        let base = *first_rss.get_or_insert(rss);
        let settled = report["settled_nodes"].as_f64().unwrap_or(0.0);
        println!(
            "{:>9} {:>9.1} {:>9.3} {:>10.1} {:>12.3} {:>10.0} {:>9.2} {:>11.0}",
            n,
            wall,
            wall * 1e3 / n as f64,
            timing("batches"),
            timing("isochrone") * 1e3 / n as f64,
            rss,
            rss / base,
            settled / n as f64
        );
        if !args.keep {
            let _ = std::fs::remove_dir_all(&out);
            let _ = std::fs::remove_dir_all(&cp);
        }
    }
}
