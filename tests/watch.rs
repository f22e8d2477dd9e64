//! `socialmapper watch` on the DC data: a stream of events applied in epochs gives the outputs
//! of a fresh run over the resulting POIs, byte for byte; malformed lines are rejected with
//! their line numbers; the changelog replays into `census.csv`; a watch killed at any moment
//! and started again applies every event exactly once.

mod common;

use common::read_csv;
use common::updates::{
    Row, Table, census, checkpointed_run, random_pois, replay, run, same_outputs, socialmapper,
    write_pois,
};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `watch -q --checkpoint cp --input input ...extra`.
fn watch_args(cp: &Path, input: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = ["-q", "watch", "--checkpoint"].map(String::from).to_vec();
    args.push(cp.display().to_string());
    args.extend(["--input".into(), input.into()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

/// The event line adding `p` (coordinates written as the POI file writes them).
fn add(p: &Row) -> String {
    format!(
        r#"{{"op":"add","poi":{{"id":"{}","name":"{}","lat":{:.6},"lon":{:.6}}}}}"#,
        p.0, p.1, p.2, p.3
    )
}

fn remove(id: &str) -> String {
    format!(r#"{{"op":"remove","id":"{id}"}}"#)
}

/// The `epochs.jsonl` reports of `dir`.
fn epochs(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("epochs.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// Checks `live` against a fresh run over `pois`, and its changelog against `before`.
fn check(t: &Path, live: &Path, pois: &[Row], before: &(Vec<String>, Table), what: &str) {
    write_pois(&t.join("now.csv"), pois);
    let fresh = t.join(format!("fresh-{what}"));
    run(&t.join("now.csv"), &fresh, None);
    same_outputs(live, &fresh, what);
    let (header, mut table) = before.clone();
    replay(live, &header, &mut table, None);
    assert_eq!(table, census(live).1, "{what}: changelog replay");
    let numbers: Vec<u64> = epochs(live)
        .iter()
        .map(|e| e["epoch"].as_u64().expect("epoch"))
        .collect();
    assert_eq!(
        numbers,
        (1..=numbers.len() as u64).collect::<Vec<_>>(),
        "{what}: epochs.jsonl"
    );
}

#[test]
fn a_stream_of_events_equals_a_fresh_run_and_rejects_malformed_lines() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let mut rng = 0x3a7c4_u64;
    let base = random_pois(&mut rng, "p", 12);
    let new = random_pois(&mut rng, "a", 6);
    let (cp, live) = checkpointed_run(t, &base);
    let before = census(&live);

    let moved: Row = ("p5".into(), "Place p5 moved".into(), new[5].2, new[5].3);
    let lines = [
        add(&new[0]),
        add(&new[1]),
        "this is not JSON".into(),
        add(&new[2]),
        r#"{"op":"frob","id":"z"}"#.into(),
        remove("p3"),
        r#"{"op":"add","poi":{"id":"bad","name":"Bad","lat":"north","lon":-77.0}}"#.into(),
        // Added earlier in the same epoch: the epoch is cut before it.
        remove("a1"),
        remove("nope"),
        add(&new[3]),
        r#"{"op":"add","poi":{"name":"No id","lat":38.9,"lon":-77.0}}"#.into(),
        r#"{"op":"remove"}"#.into(),
        // Taken out and added again, elsewhere: as one by one, in one epoch.
        remove("p5"),
        add(&moved),
        String::new(),
        add(&new[4]).replace(r#""lat""#, r#""kind":"clinic","lat""#),
    ];
    std::fs::write(t.join("events.jsonl"), lines.join("\n") + "\n").expect("events");
    let args = watch_args(
        &cp,
        &t.join("events.jsonl").display().to_string(),
        &[
            "--epoch-events",
            "100",
            "--epoch-ms",
            "60000",
            "--idle-exit",
            "0.5",
        ],
    );
    socialmapper(&args);

    let mut pois: Vec<Row> = base
        .iter()
        .filter(|p| p.0 != "p3" && p.0 != "p5")
        .cloned()
        .collect();
    pois.extend([&new[0], &new[2], &new[3], &moved, &new[4]].map(Clone::clone));
    check(t, &live, &pois, &before, "stream");

    let reports = epochs(&live);
    assert_eq!(reports.len(), 2, "one cut, before `remove a1`: {reports:?}");
    assert_eq!(reports[0]["pois_removed"], 1);
    let (header, rejects) = read_csv(&live.join("rejects.csv"));
    assert_eq!(header, ["source", "id", "reason"]);
    let rejected = |source: &str, id: &str, why: &str| {
        assert!(
            rejects
                .iter()
                .any(|r| r[0] == source && r[1] == id && r[2].contains(why)),
            "no reject {source} {id} ({why}) in {rejects:?}"
        );
    };
    rejected("line 3", "", "not JSON");
    rejected("line 5", "z", "unknown op");
    rejected("line 7", "bad", "latitude 'north' is not a number");
    rejected("remove", "nope", "no POI with this id");
    rejected("line 11", "", "no \"id\"");
    rejected("line 12", "", "needs an \"id\"");
    let malformed = rejects.iter().filter(|r| r[0].starts_with("line ")).count();
    let off_road = reports
        .iter()
        .map(|r| r["rejected"].as_u64().expect("count"))
        .sum::<u64>() as usize
        - malformed
        - 1;
    assert_eq!(off_road, 0, "an added POI was rejected: {rejects:?}");

    // Started again on the same file, it has nothing left to do.
    socialmapper(&args);
    assert_eq!(epochs(&live).len(), 2, "events applied twice");
}

#[test]
fn events_from_standard_input_end_with_it_and_are_not_applied_again() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let mut rng = 0x57d1_u64;
    let base = random_pois(&mut rng, "p", 8);
    let new = random_pois(&mut rng, "s", 4);
    let (cp, live) = checkpointed_run(t, &base);
    let before = census(&live);
    let lines = [
        add(&new[0]),
        remove("p1"),
        add(&new[1]),
        add(&new[2]),
        remove("s0"),
        add(&new[3]),
    ];
    // The last line has no newline: at the end of standard input it still counts.
    let stream = lines.join("\n");
    let watch = |what: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_socialmapper"))
            .args(watch_args(&cp, "-", &["--epoch-events", "2"]))
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start watch");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stream.as_bytes())
            .expect("write events");
        let o = child.wait_with_output().expect("watch");
        assert!(
            o.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    watch("first");
    let mut pois: Vec<Row> = base.iter().filter(|p| p.0 != "p1").cloned().collect();
    pois.extend([&new[1], &new[2], &new[3]].map(Clone::clone));
    check(t, &live, &pois, &before, "stdin");
    assert_eq!(epochs(&live).len(), 3, "two events per epoch");

    // The same stream again: its lines are committed, none is applied twice.
    watch("again");
    assert_eq!(epochs(&live).len(), 3, "events applied twice");
}

/// Appends `text` to `path`.
fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .expect("open events");
    f.write_all(text.as_bytes()).expect("append events");
    f.flush().expect("flush");
}

/// Waits until `dir`'s `epochs.jsonl` has at least `n` lines.
fn wait_epochs(dir: &Path, n: usize, child: &mut Child) {
    let t = Instant::now();
    while epochs(dir).len() < n {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "watch ended before epoch {n}"
        );
        assert!(t.elapsed() < Duration::from_secs(60), "no epoch {n}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_watch_killed_at_any_moment_and_restarted_applies_every_event_once() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let t = tmp.path();
    let mut rng = 0x6b11_u64;
    let base = random_pois(&mut rng, "p", 10);
    let new = random_pois(&mut rng, "k", 16);
    let (cp, live) = checkpointed_run(t, &base);
    let before = census(&live);

    // Adds, removals of run POIs and of added ones (some in the epoch that added them), and a
    // malformed line, in 4 parts written while watches run and are killed.
    let mut lines: Vec<String> = Vec::new();
    let mut pois = base.clone();
    for (k, p) in new.iter().enumerate() {
        lines.push(add(p));
        pois.push(p.clone());
        if k % 3 == 1 {
            let id = if k % 2 == 0 {
                format!("p{}", k / 2)
            } else {
                new[k - 1].0.clone()
            };
            lines.push(remove(&id));
            pois.retain(|q| q.0 != id);
        }
        if k == 7 {
            lines.push("{not json".into());
        }
    }
    let events = t.join("events.jsonl");
    let text: Vec<String> = lines.iter().map(|l| format!("{l}\n")).collect();
    let parts = [0, 7, 13, 18, text.len()];
    // A watch with small, quick epochs; stderr kept for the failure message.
    let start = |name: &str| -> Child {
        let args = watch_args(
            &cp,
            &events.display().to_string(),
            &[
                "--epoch-events",
                "3",
                "--epoch-ms",
                "100",
                "--poll-ms",
                "20",
                "--idle-exit",
                "1.5",
            ],
        );
        let log = std::fs::File::create(t.join(format!("{name}.log"))).expect("log");
        Command::new(env!("CARGO_BIN_EXE_socialmapper"))
            .args(args)
            .stderr(log)
            .spawn()
            .expect("start watch")
    };
    let kill = |mut child: Child| {
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        // Where it died, for the record (`--nocapture`).
        eprintln!("killed after epoch {}", epochs(&live).len());
    };

    // 1. Part 1 and half a line of part 2 (never read as a line); killed after 2 epochs.
    append(&events, &text[parts[0]..parts[1]].concat());
    let half = text[parts[1]].len() / 2;
    append(&events, &text[parts[1]][..half]);
    let mut a = start("a");
    wait_epochs(&live, 2, &mut a);
    kill(a);

    // 2. The rest of part 2; killed while loading or in its first epochs.
    append(&events, &text[parts[1]][half..]);
    append(&events, &text[parts[1] + 1..parts[2]].concat());
    let b = start("b");
    std::thread::sleep(Duration::from_millis(350));
    kill(b);

    // 3. Part 3 written line by line while it runs; killed one epoch after it starts.
    let done = epochs(&live).len();
    let mut c = start("c");
    for line in &text[parts[2]..parts[3]] {
        append(&events, line);
        std::thread::sleep(Duration::from_millis(40));
    }
    wait_epochs(&live, done + 1, &mut c);
    kill(c);

    // 4. Half of the rest; SIGTERM once an epoch is applied: it applies what it read, exits.
    let middle = (parts[3] + parts[4]) / 2;
    let done = epochs(&live).len();
    let mut d = start("d");
    append(&events, &text[parts[3]..middle].concat());
    wait_epochs(&live, done + 1, &mut d);
    let term = Command::new("kill")
        .args(["-TERM", &d.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(term.success());
    let o = d.wait().expect("watch");
    let log =
        |name: &str| std::fs::read_to_string(t.join(format!("{name}.log"))).unwrap_or_default();
    assert!(o.success(), "SIGTERM: {o:?} {}", log("d"));

    // 5. The rest; this one ends by itself once the file is idle.
    append(&events, &text[middle..].concat());
    let o = start("e").wait().expect("watch");
    assert!(o.success(), "{}", log("e"));

    check(t, &live, &pois, &before, "killed");
    let (_, rejects) = read_csv(&live.join("rejects.csv"));
    let malformed: Vec<_> = rejects
        .iter()
        .filter(|r| r[0].starts_with("line "))
        .collect();
    assert_eq!(malformed.len(), 1, "{rejects:?}");
    assert!(malformed[0][2].contains("not JSON"), "{malformed:?}");
}
