//! The `socialmapper` binary end to end: bad input, rejects accounting, flow files, the demo.

mod common;

use common::{col, data_dir, read_csv};
use std::path::Path;
use std::process::{Command, Output};

fn socialmapper(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_socialmapper"))
        .args(args)
        .output()
        .expect("run socialmapper")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn dc(file: &str) -> String {
    data_dir().join("dc").join(file).display().to_string()
}

fn run_dc(pois: &Path, network: &str, block_groups: &str, out: &Path) -> Output {
    socialmapper(&[
        "run",
        "-q",
        "--no-checkpoint",
        "--pois",
        &pois.display().to_string(),
        "--network",
        network,
        "--block-groups",
        block_groups,
        "--acs",
        &dc("acs5_2021_bg_api.json"),
        "--mode",
        "walk",
        "--travel-time",
        "5",
        "--out",
        &out.display().to_string(),
    ])
}

#[test]
fn bad_rows_go_to_rejects_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let pois = dir.path().join("pois.csv");
    std::fs::write(
        &pois,
        "id,name,lat,lon\n\
         1,Dupont Circle,38.9097773,-77.0435238\n\
         2,Not a number,abc,-77.03\n\
         3,Not finite,NaN,-77.03\n\
         4,Out of range,91.5,-77.03\n\
         1,Duplicate id,38.91,-77.04\n\
         5,Far from any road,38.5,-77.5\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = run_dc(
        &pois,
        &dc("roads.osm.pbf"),
        &dc("cb_2020_11_bg_500k.zip"),
        &out,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rejects) = read_csv(&out.join("rejects.csv"));
    assert_eq!(h, ["source", "id", "reason"]);
    let ids: Vec<&str> = rejects.iter().map(|r| r[1].as_str()).collect();
    assert_eq!(ids, ["2", "3", "4", "1", "5"], "{rejects:?}");
    assert_eq!(rejects[0][0], "line 3");
    assert!(rejects[3][2].contains("duplicate"), "{:?}", rejects[3]);
    assert!(rejects[4][2].contains("road"), "{:?}", rejects[4]);
    let run: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let c = &run["counts"];
    assert_eq!(
        (
            c["pois_in"].as_u64(),
            c["processed"].as_u64(),
            c["rejected"].as_u64()
        ),
        (Some(6), Some(1), Some(5))
    );
    let (h, rows) = read_csv(&out.join("census.csv"));
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r[col(&h, "nearest_poi_id")] == "1"));
}

#[test]
fn missing_and_corrupt_files_fail_with_name_and_cause() {
    let dir = tempfile::tempdir().unwrap();
    let pois = dir.path().join("pois.csv");
    std::fs::write(&pois, "lat,lon\n38.9097773,-77.0435238\n").unwrap();
    let out = dir.path().join("out");

    let missing = dir.path().join("nowhere.osm.pbf").display().to_string();
    let o = run_dc(&pois, &missing, &dc("cb_2020_11_bg_500k.zip"), &out);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nowhere.osm.pbf"), "{}", stderr(&o));

    let garbage = dir.path().join("garbage.osm.pbf");
    std::fs::write(
        &garbage,
        b"this is not a protocol buffer at all, just text\n".repeat(20),
    )
    .unwrap();
    let o = run_dc(
        &pois,
        &garbage.display().to_string(),
        &dc("cb_2020_11_bg_500k.zip"),
        &out,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("garbage.osm.pbf"), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));

    let zip = dir.path().join("broken.zip");
    let real = std::fs::read(data_dir().join("dc/cb_2020_11_bg_500k.zip")).unwrap();
    std::fs::write(&zip, &real[..real.len() / 2]).unwrap();
    let o = run_dc(
        &pois,
        &dc("roads.osm.pbf"),
        &zip.display().to_string(),
        &out,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("broken.zip"), "{}", stderr(&o));
    assert!(
        !out.join("census.csv").exists(),
        "no partial output after a fatal error"
    );

    // Without a network file the roads come from Overpass; offline, with an empty cache,
    // the run stops before any request and says what is missing.
    let o = socialmapper(&[
        "run",
        "-q",
        "--no-checkpoint",
        "--offline",
        "--cache-dir",
        &dir.path().join("cache").display().to_string(),
        "--pois",
        &pois.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--offline") && stderr(&o).contains("road tiles of the network"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn flow_file_with_flag_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let flow = Path::new(env!("CARGO_MANIFEST_DIR")).join("dataflows/dc.toml");
    let out = dir.path().join("dc");
    let o = socialmapper(&[
        "run",
        "-q",
        "--no-checkpoint",
        &flow.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--travel-time",
        "5,10",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (h, rows) = read_csv(&out.join("census.csv"));
    let times: std::collections::BTreeSet<_> = rows
        .iter()
        .map(|r| r[col(&h, "travel_time_minutes")].clone())
        .collect();
    assert_eq!(times.into_iter().collect::<Vec<_>>(), ["10", "5"]);
    let geo: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("isochrones.geojson")).unwrap()).unwrap();
    // Seven POIs (one just outside the dense core) × two travel times.
    let features = geo["features"].as_array().unwrap();
    let processed =
        serde_json::from_slice::<serde_json::Value>(&std::fs::read(out.join("run.json")).unwrap())
            .unwrap()["counts"]["processed"]
            .as_u64()
            .unwrap();
    assert_eq!(features.len() as u64, processed * 2);
    assert!(processed >= 6);
    for f in features {
        let a = f["properties"]["area_km2"].as_f64().unwrap();
        assert!(a > 0.0 && a < 20.0, "walk isochrone of {a} km²");
    }
}

#[test]
fn demo_runs_without_files_and_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for out in [&a, &b] {
        let o = socialmapper(&["demo", "-q", "--out", &out.display().to_string()]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for f in ["census.csv", "isochrones.geojson", "rejects.csv"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs between runs"
        );
    }
    let (h, rows) = read_csv(&a.join("census.csv"));
    assert!(rows.len() > 10, "demo reaches {} block groups", rows.len());
    assert!(h.iter().any(|c| c == "B01003_001E"));
    let (_, rejects) = read_csv(&a.join("rejects.csv"));
    assert_eq!(rejects.len(), 1, "the demo's off-network POI: {rejects:?}");
}

#[test]
fn workers_and_batch_sizes_do_not_change_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let pois = dir.path().join("pois.csv");
    let mut text = String::from("id,name,lat,lon\n");
    // Seven real POIs, a bad row and an off-network POI, in an order that batches split.
    for line in std::fs::read_to_string(data_dir().join("dc/pois.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let f: Vec<&str> = line.split(',').collect();
        text.push_str(&format!(
            "{},{},{},{}\n",
            f[0],
            f[1],
            f[f.len() - 2],
            f[f.len() - 1]
        ));
    }
    text.push_str("bad,Not a number,x,-77.0\nfar,Far away,38.5,-77.5\n");
    std::fs::write(&pois, text).unwrap();
    let run = |out: &Path, workers: &str, batch: &str, window: &str| {
        let o = socialmapper(&[
            "run",
            "-q",
            "--no-checkpoint",
            "-w",
            workers,
            "--batch-size",
            batch,
            "--order-window",
            window,
            "--pois",
            &pois.display().to_string(),
            "--network",
            &dc("roads.osm.pbf"),
            "--block-groups",
            &dc("cb_2020_11_bg_500k.zip"),
            "--acs",
            &dc("acs5_2021_bg_api.json"),
            "--mode",
            "drive",
            "--travel-time",
            "3,6",
            "--out",
            &out.display().to_string(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    };
    let base = dir.path().join("w1");
    run(&base, "1", "1000", "1");
    // Batch sizes and order windows (batches computed in map order, outputs put back into
    // record order) that split the records differently.
    for (w, b, o) in [
        ("2", "1", "1"),
        ("2", "3", "1"),
        ("1", "2", "1"),
        ("1", "2", "3"),
        ("2", "1", "64"),
        ("2", "4", "2"),
    ] {
        let out = dir.path().join(format!("w{w}b{b}o{o}"));
        run(&out, w, b, o);
        for f in ["census.csv", "isochrones.geojson", "rejects.csv"] {
            assert_eq!(
                std::fs::read(base.join(f)).unwrap(),
                std::fs::read(out.join(f)).unwrap(),
                "{f} with -w {w} --batch-size {b} --order-window {o}"
            );
        }
    }
    let (_, rejects) = read_csv(&base.join("rejects.csv"));
    assert_eq!(
        rejects.iter().map(|r| r[1].as_str()).collect::<Vec<_>>(),
        ["bad", "far"]
    );
}

#[test]
fn synth_writes_a_region_that_run_takes_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for d in [&a, &b] {
        let o = socialmapper(&[
            "synth",
            "-q",
            "--nodes",
            "5000",
            "--pois",
            "40",
            "--seed",
            "7",
            "--out",
            &d.display().to_string(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    for f in [
        "roads.osm.pbf",
        "block_groups.geojson",
        "acs.csv",
        "pois.csv",
        "flow.toml",
    ] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} differs for the same seed"
        );
    }
    let roads = socialmapper::osm::pbf::read_roads(&a.join("roads.osm.pbf")).unwrap();
    assert!(
        (4_000..7_000).contains(&roads.nodes.len()),
        "{} nodes for --nodes 5000",
        roads.nodes.len()
    );
    let flow = a.join("flow.toml").display().to_string();
    let o = socialmapper(&["run", "-q", "--no-checkpoint", &flow]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = a.join("out");
    let (h, rows) = read_csv(&out.join("census.csv"));
    assert!(rows.len() > 10 && h.contains(&"B01003_001E".to_string()));
    let (_, rejects) = read_csv(&out.join("rejects.csv"));
    assert_eq!(rejects.len(), 1, "the off-network POI: {rejects:?}");
    // ACS gaps are written as the Census API's sentinel and come back as empty cells.
    assert!(
        std::fs::read_to_string(a.join("acs.csv"))
            .unwrap()
            .contains("-666666666")
    );
    assert!(rows.iter().all(|r| !r.iter().any(|c| c == "-666666666")));
}
