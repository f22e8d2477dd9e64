//! Online sources end to end, against fake services on 127.0.0.1 that answer in the real
//! formats from the real DC data: Overpass JSON (POIs and highway ways out of
//! `dc/roads.osm.pbf`), TIGER zips (the real cartographic-boundary file), Census API JSON (with
//! its -666666666 sentinels) and the geocoder's batch CSV. No test touches the internet.

mod common;

use common::fake_http::{FakeServer, Fault, Request, Response};
use common::{data_dir, read_csv};
use serde_json::{Value, json};
use socialmapper::osm::OsmRoads;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const OVERPASS: &str = "/api/interpreter";
const TIGER: &str = "/geo/tiger/";
const TIGERWEB: &str = "/arcgis/rest/services/";
const CENSUS: &str = "/data/";
const GEOCODER: &str = "/geocoder/";

fn dc(file: &str) -> std::path::PathBuf {
    data_dir().join("dc").join(file)
}

fn roads() -> &'static OsmRoads {
    static ROADS: OnceLock<OsmRoads> = OnceLock::new();
    ROADS.get_or_init(|| socialmapper::osm::pbf::read_roads(&dc("roads.osm.pbf")).unwrap())
}

/// The text between `open` and the next `close` after it.
fn between<'a>(s: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let a = s.find(open)? + open.len();
    let b = s[a..].find(close)? + a;
    Some(&s[a..b])
}

/// Overpass: POI queries answered from `dc/pois.csv` (only for the area "Washington" in
/// US-DC, like the real area lookup), road queries from the ways of the DC extract that touch
/// the box, with every node they use.
fn overpass(req: &Request) -> Response {
    let form = req.form();
    let Some((_, q)) = form.iter().find(|(k, _)| k == "data") else {
        return Response::status(400, "no data");
    };
    let mut elements = Vec::new();
    if q.contains("out center") {
        let filter = between(q, "nwr[", "](").unwrap_or("");
        let parts: Vec<&str> = filter.split('"').collect();
        let (key, value) = (parts.get(1).copied().unwrap_or(""), parts.get(3).copied());
        let right_area =
            q.contains("area[\"ISO3166-2\"=\"US-DC\"]") && q.contains("area[name=\"Washington\"]");
        let (_, rows) = read_csv(&dc("pois.csv"));
        for r in rows.iter().filter(|_| right_area) {
            let tags: Vec<(&str, &str)> =
                r[2].split('|').filter_map(|t| t.split_once('=')).collect();
            if !tags
                .iter()
                .any(|(k, v)| *k == key && value.is_none_or(|want| want == *v))
            {
                continue;
            }
            let mut t: serde_json::Map<String, Value> = tags
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            t.insert("name".into(), json!(r[1]));
            elements.push(json!({"type": "node", "id": r[0].parse::<i64>().unwrap(),
                "lat": r[3].parse::<f64>().unwrap(), "lon": r[4].parse::<f64>().unwrap(), "tags": t}));
        }
    } else if q.contains("way[\"highway\"]") {
        let b: Vec<f64> = between(q, "way[\"highway\"](", ")")
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        let r = roads();
        let inside = |id: &i64| {
            r.nodes
                .get(id)
                .is_some_and(|&(lon, lat)| lat >= b[0] && lon >= b[1] && lat <= b[2] && lon <= b[3])
        };
        let mut nodes = std::collections::BTreeSet::new();
        for w in r.ways.iter().filter(|w| w.nodes.iter().any(inside)) {
            // The extract cuts ways at its border; Overpass never does: keep the nodes present.
            let refs: Vec<i64> = w
                .nodes
                .iter()
                .copied()
                .filter(|n| r.nodes.contains_key(n))
                .collect();
            nodes.extend(refs.iter().copied());
            let tags: serde_json::Map<String, Value> =
                w.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            elements.push(json!({"type": "way", "id": w.id, "nodes": refs, "tags": tags}));
        }
        for n in nodes {
            let (lon, lat) = r.nodes[&n];
            elements.push(json!({"type": "node", "id": n, "lat": lat, "lon": lon}));
        }
    } else {
        return Response::status(400, "unknown query");
    }
    let body = json!({"version": 0.6, "generator": "fake Overpass", "elements": elements});
    Response::ok("application/json", body.to_string())
}

/// TIGER: the state outlines and DC's block groups are both answered with the real DC
/// cartographic-boundary zip (its features carry STATEFP 11); any other state is 404.
fn tiger(req: &Request) -> Response {
    if req.path.ends_with("_us_state_20m.zip") || req.path.ends_with("_11_bg.zip") {
        Response::ok(
            "application/zip",
            std::fs::read(dc("cb_2020_11_bg_500k.zip")).unwrap(),
        )
    } else {
        Response::status(404, "Not Found")
    }
}

/// TIGERweb: DC's block groups whose box meets the envelope, at most 200 per page.
fn tigerweb(req: &Request) -> Response {
    static FEATURES: OnceLock<Vec<Value>> = OnceLock::new();
    let features = FEATURES.get_or_init(|| {
        let v: Value =
            serde_json::from_slice(&std::fs::read(dc("block_groups.geojson")).unwrap()).unwrap();
        v["features"].as_array().unwrap().clone()
    });
    let env: Vec<f64> = req
        .param("geometry")
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let offset: usize = req.param("resultOffset").unwrap_or("0").parse().unwrap();
    let count: usize = req
        .param("resultRecordCount")
        .unwrap_or("1000")
        .parse::<usize>()
        .unwrap()
        .min(200);
    let meets = |f: &&Value| {
        let mut b = [f64::MAX, f64::MAX, f64::MIN, f64::MIN];
        let mut visit = |c: &Value| {
            for ring in c.as_array().unwrap() {
                for p in ring.as_array().unwrap() {
                    let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
                    b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
                }
            }
        };
        let g = &f["geometry"];
        match g["type"].as_str().unwrap() {
            "Polygon" => visit(&g["coordinates"]),
            _ => g["coordinates"]
                .as_array()
                .unwrap()
                .iter()
                .for_each(&mut visit),
        }
        b[0] <= env[2] && b[2] >= env[0] && b[1] <= env[3] && b[3] >= env[1]
    };
    let hits: Vec<&Value> = features.iter().filter(meets).collect();
    let page: Vec<Value> = hits
        .iter()
        .skip(offset)
        .take(count)
        .map(|f| {
            let p = &f["properties"];
            json!({"type": "Feature", "geometry": f["geometry"], "properties": {
            "GEOID": p["GEOID"], "STATE": p["STATEFP"], "COUNTY": p["COUNTYFP"],
            "TRACT": p["TRACTCE"], "BLKGRP": p["BLKGRPCE"]}})
        })
        .collect();
    let more = offset + page.len() < hits.len();
    let mut body = json!({"type": "FeatureCollection", "features": page});
    if more {
        body["exceededTransferLimit"] = json!(true);
    }
    Response::ok("application/geo+json", body.to_string())
}

/// The Census Data API: the requested columns of `dc/acs5_2021_bg_api.json` for the county
/// asked for, in the API's layout; 400 for an unknown variable, as the API does.
fn census(req: &Request) -> Response {
    if !req.path.ends_with("/2021/acs/acs5") {
        return Response::status(404, "unknown dataset");
    }
    if req.param("key") == Some("bad-key") {
        // What the API sends for a key it does not know: an HTML page, with HTTP 200.
        return Response::ok(
            "text/html",
            "<html><body><h1>Invalid Key</h1>A valid key must be included with each data API \
             request.</body></html>",
        );
    }
    let all: Vec<Vec<String>> =
        serde_json::from_slice(&std::fs::read(dc("acs5_2021_bg_api.json")).unwrap()).unwrap();
    let header = &all[0];
    let get: Vec<&str> = req.param("get").unwrap().split(',').collect();
    let mut cols = Vec::new();
    for g in &get {
        match header.iter().position(|h| h == g) {
            Some(i) => cols.push(i),
            None => return Response::status(400, &format!("error: unknown variable '{g}'")),
        }
    }
    let geo = ["state", "county", "tract", "block group"]
        .map(|g| header.iter().position(|h| h == g).unwrap());
    let inside = req.param("in").unwrap_or("");
    let mut out = vec![
        get.iter()
            .map(|s| s.to_string())
            .chain(["state", "county", "tract", "block group"].map(String::from))
            .collect::<Vec<_>>(),
    ];
    for row in &all[1..] {
        if inside != format!("state:{} county:{}", row[geo[0]], row[geo[1]]) {
            continue;
        }
        out.push(cols.iter().chain(&geo).map(|&i| row[i].clone()).collect());
    }
    Response::ok("application/json", serde_json::to_string(&out).unwrap())
}

/// The geocoder's batch endpoint: a few DC streets are known, at POIs of `dc/pois.csv`.
fn geocoder(req: &Request) -> Response {
    let body = String::from_utf8_lossy(&req.body).into_owned();
    let ct = req.header("content-type").unwrap_or("");
    let Some(boundary) = ct.split("boundary=").nth(1) else {
        return Response::status(400, "not multipart");
    };
    let Some(part) = body
        .split(&format!("--{boundary}"))
        .find(|p| p.contains("name=\"addressFile\""))
    else {
        return Response::status(400, "no addressFile");
    };
    let benchmark_ok = body.contains("name=\"benchmark\"\r\n\r\nPublic_AR_Current\r\n");
    let file = part
        .split_once("\r\n\r\n")
        .unwrap()
        .1
        .trim_end_matches("\r\n");
    let known = [
        ("1 Dupont Cir NW", "-77.0435238,38.9097773"),
        ("1900 Q St NW", "-77.0359882,38.9336155"),
    ];
    let mut out = String::new();
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(file.as_bytes());
    for rec in r.records() {
        let rec = rec.unwrap();
        let input = format!("{}, {}, {}, {}", &rec[1], &rec[2], &rec[3], &rec[4]);
        match known.iter().find(|(s, _)| *s == &rec[1]).filter(|_| benchmark_ok) {
            Some((s, xy)) => out.push_str(&format!(
                "\"{}\",\"{input}\",\"Match\",\"Exact\",\"{}, WASHINGTON, DC, 20036\",\"{xy}\",\"1\",\"L\"\n",
                &rec[0],
                s.to_uppercase()
            )),
            None => out.push_str(&format!("\"{}\",\"{input}\",\"No_Match\"\n", &rec[0])),
        }
    }
    Response::ok("text/csv", out)
}

fn services() -> FakeServer {
    let s = FakeServer::start();
    s.route(OVERPASS, overpass);
    s.route(TIGER, tiger);
    s.route(TIGERWEB, tigerweb);
    s.route(CENSUS, census);
    s.route(GEOCODER, geocoder);
    s
}

/// `socialmapper run` against `server`, caching in `cache`, writing `out`.
fn run_online(server: &FakeServer, cache: &Path, out: &Path, extra: &[&str]) -> Output {
    let b = &server.base;
    let mut args: Vec<String> = vec!["run".into(), "-q".into()];
    if !extra.contains(&"--checkpoint") {
        args.push("--no-checkpoint".into());
    }
    // Defaults for the tests; a flag given in `extra` replaces its default.
    for (flag, v) in [
        ("--mode", "walk".to_string()),
        ("--travel-time", "10".into()),
        (
            "--variables",
            "total_population,median_household_income".into(),
        ),
        ("--acs-year", "2021".into()),
        ("--http-backoff-ms", "50".into()),
        ("--http-retries", "3".into()),
        ("--http-timeout-s", "3".into()),
        ("--overpass-url", format!("{b}{OVERPASS}")),
        ("--tiger-url", format!("{b}/geo/tiger")),
        ("--tigerweb-url", format!("{b}/arcgis/rest/services")),
        ("--census-url", format!("{b}/data")),
        ("--geocoder-url", format!("{b}/geocoder")),
        ("--cache-dir", cache.display().to_string()),
        ("--out", out.display().to_string()),
    ] {
        if !extra.contains(&flag) {
            args.push(flag.into());
            args.push(v);
        }
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    Command::new(env!("CARGO_BIN_EXE_socialmapper"))
        .args(&args)
        .env("CENSUS_API_KEY", "test-key-123")
        .env_remove("SOCIALMAPPER_LOG")
        .output()
        .expect("run socialmapper")
}

const PLACE: [&str; 4] = ["--place", "Washington, DC", "--poi-tag", "tourism"];

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The same job on the local files, for comparison: the two POIs Overpass finds.
fn local_reference(dir: &Path) -> Vec<Vec<String>> {
    let pois = dir.join("ref_pois.csv");
    std::fs::write(
        &pois,
        "id,name,lat,lon\n\
         node/2926117835,Elephant Community Center,38.9312045,-77.0511187\n\
         node/358955156,General Meade Statue,38.8927042,-77.0177294\n",
    )
    .unwrap();
    let out = dir.join("ref_out");
    let o = Command::new(env!("CARGO_BIN_EXE_socialmapper"))
        .args([
            "run",
            "-q",
            "--no-checkpoint",
            "--mode",
            "walk",
            "--travel-time",
            "10",
        ])
        .args(["--variables", "total_population,median_household_income"])
        .arg("--pois")
        .arg(&pois)
        .arg("--network")
        .arg(dc("roads.osm.pbf"))
        .arg("--block-groups")
        .arg(dc("cb_2020_11_bg_500k.zip"))
        .arg("--acs")
        .arg(dc("acs5_2021_bg_api.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    read_csv(&out.join("census.csv")).1
}

#[test]
fn a_place_name_runs_to_census_csv_and_a_second_run_makes_no_request() {
    let server = services();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out");
    let o = run_online(&server, &cache, &out, &PLACE);
    assert!(o.status.success(), "{}", stderr(&o));

    // The same rows as the run on local files: same POIs, same roads, same block groups,
    // same ACS values (sentinels empty).
    let (h, rows) = read_csv(&out.join("census.csv"));
    assert!(!rows.is_empty());
    assert_eq!(rows, local_reference(dir.path()));
    let inc = common::col(&h, "B19013_001E");
    let pop = common::col(&h, "B01003_001E");
    assert!(rows.iter().all(|r| !r[pop].is_empty()));
    // Block group 11001005600 1 ... some incomes are the API's -666666666: empty, never a number.
    assert!(rows.iter().all(|r| !r[inc].starts_with('-')), "{rows:?}");
    let ids: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r[common::col(&h, "nearest_poi_id")].as_str())
        .collect();
    assert_eq!(
        ids.into_iter().collect::<Vec<_>>(),
        ["node/2926117835", "node/358955156"]
    );

    // What was asked: one POI query, the road tiles around the two POIs (10-minute walk:
    // about 1.7 km of reach, inside 0.1° tiles -77.1..-76.9, 38.8..39.0), the state outlines
    // and DC's block groups, and one county of ACS values with the key.
    assert_eq!(
        server.count(OVERPASS),
        1 + 4,
        "{:?}",
        server
            .log()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(server.count(TIGER), 2);
    assert_eq!(server.count(CENSUS), 1);
    let log = server.log();
    let acs = log.iter().find(|r| r.path.starts_with(CENSUS)).unwrap();
    assert_eq!(acs.param("key"), Some("test-key-123"));
    assert_eq!(acs.param("in"), Some("state:11 county:001"));
    assert_eq!(acs.param("for"), Some("block group:*"));
    assert_eq!(acs.param("get"), Some("B01003_001E,B19013_001E"));
    assert!(log.iter().all(|r| {
        r.header("user-agent")
            .is_some_and(|u| u.starts_with("socialmapper-rs/"))
    }));
    let run: Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    let inputs = run["inputs"].to_string();
    assert!(inputs.contains("Overpass: 5 requests"), "{inputs}");

    // A second run: everything from the cache, the same rows.
    server.reset_counts();
    let out2 = dir.path().join("out2");
    let o = run_online(&server, &cache, &out2, &PLACE);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(server.total(), 0, "{:?}", server.log());
    assert_eq!(read_csv(&out2.join("census.csv")).1, rows);

    // With a checkpoint: a second run resumes its batch and still asks nothing.
    let cp = dir.path().join("cp").display().to_string();
    let with_cp = [&PLACE[..], &["--checkpoint", &cp]].concat();
    for resumed in [0, 1] {
        let o = run_online(&server, &cache, &out2, &with_cp);
        assert!(o.status.success(), "{}", stderr(&o));
        let run: Value =
            serde_json::from_slice(&std::fs::read(out2.join("run.json")).unwrap()).unwrap();
        assert_eq!(
            run["batches"]["batches_resumed"], resumed,
            "{}",
            run["batches"]
        );
        assert_eq!(read_csv(&out2.join("census.csv")).1, rows);
    }
    assert_eq!(server.total(), 0, "{:?}", server.log());
    // The run's network came online: `add` refuses it and says why, the outputs untouched.
    let o = Command::new(env!("CARGO_BIN_EXE_socialmapper"))
        .args(["remove", "--checkpoint", &cp, "--ids", "x"])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("fetched its roads"), "{}", stderr(&o));
    assert_eq!(read_csv(&out2.join("census.csv")).1, rows);
    assert!(!out2.join("changes.jsonl").exists());

    // TIGERweb instead of the TIGER zips: the same block groups, paged; only TIGERweb asked.
    let out3 = dir.path().join("out3");
    let o = run_online(
        &server,
        &cache,
        &out3,
        &[&PLACE[..], &["--block-groups-source", "tigerweb"]].concat(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read_csv(&out3.join("census.csv")).1, rows);
    assert!(server.count(TIGERWEB) >= 2, "{}", server.count(TIGERWEB));
    assert_eq!(server.total(), server.count(TIGERWEB));
    assert!(log_has_pages(&server.log()));
}

fn log_has_pages(log: &[Request]) -> bool {
    log.iter()
        .any(|r| r.param("resultOffset").is_some_and(|o| o != "0"))
}

#[test]
fn offline_makes_no_request_and_names_what_is_missing() {
    let server = services();
    let dir = tempfile::tempdir().unwrap();
    let o = run_online(
        &server,
        &dir.path().join("cache"),
        &dir.path().join("out"),
        &[&PLACE[..], &["--offline"]].concat(),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("--offline") && e.contains("Overpass POIs tourism=* in Washington, DC"),
        "{e}"
    );
    assert_eq!(server.total(), 0);
    assert!(!dir.path().join("out").join("census.csv").exists());
}

#[test]
fn service_faults_are_retried_and_nothing_bad_is_cached() {
    let server = services();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    // Overpass: 429 with Retry-After, a 500 and a cut body on the POI query. TIGER: an answer
    // slower than the 3 s timeout, then its "Request Rejected" page with HTTP 200. Census
    // API: a 503, then a cut body.
    server.inject(
        OVERPASS,
        &[
            Fault::Status(429, Some(1)),
            Fault::Status(500, None),
            Fault::Truncated,
        ],
    );
    server.inject(
        TIGER,
        &[
            Fault::Slow(Duration::from_secs(4)),
            Fault::Garbage("<html><body>Request Rejected</body></html>"),
        ],
    );
    server.inject(CENSUS, &[Fault::Status(503, None), Fault::Truncated]);
    let started = Instant::now();
    let o = run_online(&server, &cache, &dir.path().join("out"), &PLACE);
    let took = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    // Every failed attempt was retried: 4 POI attempts and 4 tiles; 3 attempts at the state
    // outlines and one zip; 3 Census API attempts. Waited 1 s as asked, and 3 s of timeout.
    assert_eq!(server.count(OVERPASS), 4 + 4);
    assert_eq!(server.count(TIGER), 3 + 1);
    assert_eq!(server.count(CENSUS), 3);
    assert!(took >= Duration::from_secs(4), "{took:?}");
    let rows = read_csv(&dir.path().join("out").join("census.csv")).1;
    assert_eq!(rows, local_reference(dir.path()));

    // The Census API down for good: retried 3 times, then a clear error; the tiles and
    // the zips fetched before stay cached, so the next run asks only the Census API.
    let cache2 = dir.path().join("cache2");
    std::fs::create_dir_all(&cache2).unwrap();
    server.reset_counts();
    server.inject(CENSUS, &[Fault::Status(500, None); 4]);
    let o = run_online(&server, &cache2, &dir.path().join("out2"), &PLACE);
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("Census API") && e.contains("failed after 4 attempts") && e.contains("HTTP 500"),
        "{e}"
    );
    assert_eq!(server.count(CENSUS), 4);
    server.reset_counts();
    let o = run_online(&server, &cache2, &dir.path().join("out2"), &PLACE);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((server.total(), server.count(CENSUS)), (1, 1));
    assert_eq!(
        read_csv(&dir.path().join("out2").join("census.csv")).1,
        rows
    );
}

#[test]
fn a_request_the_service_refuses_fails_at_once_with_its_words() {
    let server = services();
    let dir = tempfile::tempdir().unwrap();
    let o = run_online(
        &server,
        &dir.path().join("cache"),
        &dir.path().join("out"),
        &[&PLACE[..], &["--variables", "B99999_001E"]].concat(),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("unknown variable 'B99999_001E'") && e.contains("failed after 1 attempt"),
        "{e}"
    );
    assert_eq!(server.count(CENSUS), 1);

    // A key the API rejects: said at once, not retried.
    let o = run_online(
        &server,
        &dir.path().join("cache"),
        &dir.path().join("out"),
        &[&PLACE[..], &["--census-api-key", "bad-key"]].concat(),
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("rejects the key") && e.contains("failed after 1 attempt"),
        "{e}"
    );
    assert_eq!(server.count(CENSUS), 2);
}

#[test]
fn addresses_are_geocoded_into_pois_and_unmatched_ones_rejected() {
    let server = services();
    let dir = tempfile::tempdir().unwrap();
    let addresses = dir.path().join("addresses.csv");
    std::fs::write(
        &addresses,
        "id,name,street,city,state,zip\n\
         a1,Dupont,1 Dupont Cir NW,Washington,DC,20036\n\
         a2,Nowhere,999 Nowhere Ave,Washington,DC,20001\n\
         a3,HacDC,1900 Q St NW,Washington,DC,20009\n\
         a4,No street,,Washington,DC,20009\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let local = [
        "--addresses",
        &addresses.display().to_string(),
        "--network",
        &dc("roads.osm.pbf").display().to_string(),
        "--block-groups",
        &dc("cb_2020_11_bg_500k.zip").display().to_string(),
        "--acs",
        &dc("acs5_2021_bg_api.json").display().to_string(),
    ]
    .map(String::from);
    let local: Vec<&str> = local.iter().map(String::as_str).collect();
    let o = run_online(&server, &dir.path().join("cache"), &out, &local);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!((server.count(GEOCODER), server.total()), (1, 1));
    let (_, rejects) = read_csv(&out.join("rejects.csv"));
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert_eq!(rejects[0][..2], ["line 3".to_string(), "a2".to_string()]);
    assert!(rejects[0][2].contains("No_Match"), "{rejects:?}");
    assert_eq!(
        rejects[1][..3],
        [
            "line 5".to_string(),
            "a4".to_string(),
            "no street address".to_string()
        ]
    );
    let (h, rows) = read_csv(&out.join("census.csv"));
    let near: std::collections::BTreeSet<&str> = rows
        .iter()
        .map(|r| r[common::col(&h, "nearest_poi_name")].as_str())
        .collect();
    assert_eq!(near.into_iter().collect::<Vec<_>>(), ["Dupont", "HacDC"]);
    let run: Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["counts"]["pois_in"], 4, "{}", run["counts"]);
}
