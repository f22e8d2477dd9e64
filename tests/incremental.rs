//! `socialmapper add` and `remove` on the DC data: after any sequence of updates the outputs
//! are byte for byte those of a fresh run over the resulting POIs, the changelog replays into
//! `census.csv`, and the block groups an update reports as recomputed are the ones it can
//! affect, computed here independently from fresh runs.

mod common;

use common::updates::{
    Row, census, checkpointed_run, random_pois, replay, run, run_args, same_outputs, socialmapper,
    write_pois,
};
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// `socialmapper add|remove --checkpoint cp FLAG VALUE`.
fn update(verb: &str, cp: &Path, flag: &str, value: &str) {
    socialmapper(&[
        "-q",
        verb,
        "--checkpoint",
        &cp.display().to_string(),
        flag,
        value,
    ]);
}

#[test]
fn updates_equal_fresh_runs_and_the_changelog_replays_into_census() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let mut rng = 0x1dc_u64;
    let mut pois = random_pois(&mut rng, "p", 12);
    let (cp, live) = checkpointed_run(t, &pois);
    let (header, mut table) = census(&live);
    let mut epoch = 0;
    let initial = (
        std::fs::read(live.join("census.csv")).expect("census"),
        std::fs::read(live.join("isochrones.geojson")).expect("geojson"),
    );

    // A random sequence: adds of one or a few POIs, removals of one or two ids.
    for step in 0..6 {
        if step % 3 == 2 {
            let k = (rng % pois.len() as u64) as usize;
            let ids: Vec<String> = pois
                .iter()
                .skip(k)
                .take(1 + step % 2)
                .map(|p| p.0.clone())
                .collect();
            pois.retain(|p| !ids.contains(&p.0));
            update("remove", &cp, "--ids", &ids.join(","));
        } else {
            let new = random_pois(&mut rng, &format!("s{step}_"), 1 + step % 3);
            write_pois(&t.join("add.csv"), &new);
            pois.extend(new);
            update(
                "add",
                &cp,
                "--pois",
                &t.join("add.csv").display().to_string(),
            );
        }
        epoch += 1;
        write_pois(&t.join("now.csv"), &pois);
        let fresh = t.join(format!("fresh{step}"));
        run(&t.join("now.csv"), &fresh, None);
        same_outputs(&live, &fresh, &format!("after update {step}"));

        // The changelog of this epoch turns the previous table into the current one.
        replay(&live, &header, &mut table, Some(epoch));
        assert_eq!(
            table,
            census(&live).1,
            "changelog replay after update {step}"
        );
    }

    // Adding POIs and taking them out again gives the bytes back.
    let extra = random_pois(&mut rng, "x", 3);
    write_pois(&t.join("extra.csv"), &extra);
    let before = (
        std::fs::read(live.join("census.csv")).expect("census"),
        std::fs::read(live.join("isochrones.geojson")).expect("geojson"),
    );
    update(
        "add",
        &cp,
        "--pois",
        &t.join("extra.csv").display().to_string(),
    );
    update(
        "remove",
        &cp,
        "--pois",
        &t.join("extra.csv").display().to_string(),
    );
    let after = (
        std::fs::read(live.join("census.csv")).expect("census"),
        std::fs::read(live.join("isochrones.geojson")).expect("geojson"),
    );
    assert!(before == after, "add then remove changed the outputs");
    assert!(
        before != initial,
        "the sequence changed nothing: the test would prove nothing"
    );

    // The checkpoint now describes the updated run: running the old command again is refused.
    let o = Command::new(env!("CARGO_BIN_EXE_socialmapper"))
        .args(run_args(&t.join("base.csv"), &live, Some(&cp)))
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("updated by `socialmapper add`"));
}

#[test]
fn an_added_poi_recomputes_exactly_the_block_groups_it_can_affect() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let mut rng = 0xadd_u64;
    let base = random_pois(&mut rng, "p", 15);
    let new = random_pois(&mut rng, "n", 1);
    write_pois(&t.join("new.csv"), &new);
    let all: Vec<Row> = base.iter().chain(&new).cloned().collect();
    write_pois(&t.join("all.csv"), &all);
    let (cp, live) = checkpointed_run(t, &base);
    update(
        "add",
        &cp,
        "--pois",
        &t.join("new.csv").display().to_string(),
    );
    let epochs = std::fs::read_to_string(live.join("epochs.jsonl")).expect("epochs");
    let report: serde_json::Value =
        serde_json::from_str(epochs.lines().last().expect("a line")).expect("JSON");
    assert_eq!(report["pois_added"], 1);

    // Independently: the block groups the new POI reaches (a run of it alone), and those
    // whose nearest POI or network values differ between fresh runs without and with it.
    run(&t.join("new.csv"), &t.join("alone"), None);
    run(&t.join("base.csv"), &t.join("without"), None);
    run(&t.join("all.csv"), &t.join("with"), None);
    let geoids = |dir: &str| -> BTreeSet<String> {
        census(&t.join(dir)).1.into_keys().map(|k| k.1).collect()
    };
    let mut affected = geoids("alone");
    let (header, without) = census(&t.join("without"));
    let (_, with) = census(&t.join("with"));
    let nearest: Vec<usize> = [
        "nearest_poi_id",
        "travel_distance_km",
        "network_time_min",
        "network_distance_km",
    ]
    .iter()
    .map(|c| common::col(&header, c))
    .collect();
    for (key, row) in &with {
        if let Some(old) = without.get(key)
            && nearest.iter().any(|&c| old[c] != row[c])
        {
            affected.insert(key.1.clone());
        }
    }
    let recomputed = report["bgs_recomputed"].as_u64().expect("count") as usize;
    assert_eq!(
        recomputed,
        affected.len(),
        "recomputed vs affected {affected:?}"
    );
    let total = 571;
    assert!(
        recomputed * 4 < total,
        "{recomputed} of {total} block groups recomputed"
    );
    assert!(!geoids("alone").is_empty(), "the new POI reaches nothing");
}

/// A synthetic region: random sequences of epochs (adds, removals, both at once, unknown ids)
/// applied in one process that is closed and opened again between them (so that the state
/// comes back from snapshots and from the log of epochs after them), each checked against a
/// fresh run over the resulting POI file.
#[test]
fn random_epochs_on_a_synthetic_region_equal_fresh_runs() {
    use socialmapper::incremental::{Change, LiveRun};
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let region = t.join("region");
    let region_s = region.display().to_string();
    socialmapper(&[
        "-q", "synth", "--nodes", "30000", "--pois", "260", "--seed", "11", "--out", &region_s,
    ]);
    let text = std::fs::read_to_string(region.join("pois.csv")).expect("POIs");
    let mut lines = text.lines();
    let header = lines.next().expect("header").to_string();
    let rows: Vec<String> = lines.map(str::to_string).collect();
    let id = |row: &str| row.split(',').next().expect("id").to_string();
    let write = |path: &Path, rows: &[String]| {
        std::fs::write(path, format!("{header}\n{}\n", rows.join("\n"))).expect("write POIs");
    };
    let run_args = |pois: &Path, out: &Path, cp: Option<&Path>| {
        let mut args = vec![
            "-q".to_string(),
            "run".into(),
            region.join("flow.toml").display().to_string(),
            "--pois".into(),
            pois.display().to_string(),
            "--mode".into(),
            "walk".into(),
            "--travel-time".into(),
            "2,4".into(),
            "--out".into(),
            out.display().to_string(),
        ];
        match cp {
            Some(cp) => args.extend(["--checkpoint".into(), cp.display().to_string()]),
            None => args.push("--no-checkpoint".into()),
        }
        socialmapper(&args.iter().map(String::as_str).collect::<Vec<_>>());
    };

    let (mut active, mut pool) = (rows[..220].to_vec(), rows[220..].to_vec());
    write(&t.join("base.csv"), &active);
    let (cp, live_out) = (t.join("cp"), t.join("live"));
    run_args(&t.join("base.csv"), &live_out, Some(&cp));
    let open = || {
        LiveRun::open(&cp, true)
            .expect("open the run")
            .with_snapshot_every(3)
    };
    let mut live = open();
    let mut rng = 0x5eed_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    for epoch in 1..=14u64 {
        let mut change = Change::default();
        let kind = next(3);
        if kind != 0 {
            // Take out one or two POIs (by id: every POI with it), once an unknown id.
            for _ in 0..1 + next(2) {
                let k = next(active.len() as u64) as usize;
                let gone = id(&active[k]);
                active.retain(|r| id(r) != gone);
                change.remove_ids.push(gone);
            }
            if epoch == 5 {
                change.remove_ids.push("no-such-poi".into());
            }
        }
        if (kind != 1 || epoch == 7) && !pool.is_empty() {
            let n = (1 + next(3) as usize).min(pool.len());
            let added: Vec<String> = pool.drain(..n).collect();
            let mut file = added.clone();
            if epoch == 7 {
                // An id the run has already: rejected, as a run rejects a repeated id.
                file.push(active[0].clone());
            }
            write(&t.join("add.csv"), &file);
            change.add = Change::add_file(&t.join("add.csv")).expect("read").add;
            active.extend(added);
        }
        let report = live.apply(&change).expect("apply");
        assert_eq!(report.epoch, epoch);
        if epoch == 5 || epoch == 7 {
            assert!(report.rejected >= 1, "{report:?}");
        }
        if epoch % 4 == 0 {
            // Closed and opened again: from the snapshot and the log after it.
            drop(live);
            live = open();
            assert_eq!(live.epoch(), epoch);
        }
        if epoch % 3 == 0 || epoch == 14 {
            write(&t.join("now.csv"), &active);
            let fresh = t.join(format!("fresh{epoch}"));
            run_args(&t.join("now.csv"), &fresh, None);
            same_outputs(&live_out, &fresh, &format!("after epoch {epoch}"));
        }
    }
    let epochs = std::fs::read_to_string(live_out.join("epochs.jsonl")).expect("epochs");
    assert_eq!(epochs.lines().count(), 14);
}
