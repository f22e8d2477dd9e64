use super::*;
use crate::error::Error;
use std::path::PathBuf;

use crate::testdata::shared_data_dir as data_dir;

fn csv(text: &str) -> PoiInput {
    let input = parse_pois_str(text, PoiFormat::Csv, "test.csv").expect("parses");
    assert_eq!(input.records, input.pois.len() + input.rejects.len());
    input
}

fn json(text: &str) -> PoiInput {
    let input = parse_pois_str(text, PoiFormat::Json, "test.json").expect("parses");
    assert_eq!(input.records, input.pois.len() + input.rejects.len());
    input
}

fn geojson(text: &str) -> PoiInput {
    let input = parse_pois_str(text, PoiFormat::GeoJson, "test.geojson").expect("parses");
    assert_eq!(input.records, input.pois.len() + input.rejects.len());
    input
}

fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn reject(source: &str, id: Option<&str>, reason: &str) -> Reject {
    Reject {
        source: source.into(),
        id: id.map(Into::into),
        reason: reason.into(),
    }
}

fn input_error(r: Result<PoiInput>) -> (PathBuf, String) {
    match r {
        Err(Error::Input { path, cause }) => (path, cause),
        other => panic!("expected an input error, got {other:?}"),
    }
}

// ---------------------------------------------------------------- CSV

#[test]
fn csv_full_row() {
    let input = csv("id,name,lat,lon,state,amenity\n7,Main Library,35.5,-78.75,nc,library\n");
    assert_eq!(input.records, 1);
    assert_eq!(
        input.pois,
        vec![Poi {
            id: "7".into(),
            name: "Main Library".into(),
            kind: "custom".into(),
            lon: -78.75,
            lat: 35.5,
            state: Some("NC".into()),
            tags: tags(&[("amenity", "library")]),
            source: "line 2".into(),
        }]
    );
    assert!(input.rejects.is_empty());
}

#[test]
fn csv_header_is_case_insensitive_and_bom_tolerated() {
    let input = csv("\u{feff}Name,LATITUDE,Lng,Type\nA,1.5,2.5,park\n");
    let p = &input.pois[0];
    assert_eq!((p.lat, p.lon), (1.5, 2.5));
    assert_eq!(p.name, "A");
    assert_eq!(p.kind, "park");
    assert_eq!(p.id, "custom_0");
    assert!(p.tags.is_empty());
}

#[test]
fn csv_first_present_coordinate_column_wins_and_others_become_tags() {
    // lat beats y and lon beats x, whatever the column order; the losers are ordinary tags.
    let input = csv("y,x,lon,lat\n1,2,3,4\n");
    let p = &input.pois[0];
    assert_eq!((p.lat, p.lon), (4.0, 3.0));
    assert_eq!(p.tags, tags(&[("x", "2"), ("y", "1")]));
    // x/y alone are enough.
    let p = &csv("x,y\n-77.5,38.25\n").pois[0];
    assert_eq!((p.lat, p.lon), (38.25, -77.5));
}

#[test]
fn csv_id_columns_in_order_of_preference() {
    let p = &csv("osm_node_id,poi_id,lat,lon\n11,22,1,1\n").pois[0];
    assert_eq!(p.id, "22");
    assert_eq!(p.tags, tags(&[("osm_node_id", "11")]));
    let p = &csv("osm_id,lat,lon\n33,1,1\n").pois[0];
    assert_eq!(p.id, "33");
    assert!(p.tags.is_empty());
}

#[test]
fn csv_defaults_use_the_data_record_index() {
    // i counts data records (rejected ones too), not physical lines: blank lines are skipped
    // and do not count.
    let input = csv("lat,lon,name\n1,1,\n\nbad,1,x\n   \n2,2,\n");
    assert_eq!(input.records, 3);
    assert_eq!(
        input.rejects,
        vec![reject("line 4", None, "latitude 'bad' is not a number")]
    );
    let got: Vec<_> = input
        .pois
        .iter()
        .map(|p| (&*p.id, &*p.name, &*p.kind, &*p.source))
        .collect();
    assert_eq!(
        got,
        vec![
            ("custom_0", "Custom POI 0", "custom", "line 2"),
            ("custom_2", "Custom POI 2", "custom", "line 6")
        ]
    );
}

#[test]
fn csv_source_is_the_physical_line_of_the_record_start() {
    // A quoted field spanning two lines: the next record starts two lines later.
    let input = csv("id,name,lat,lon\r\n1,\"two\r\nlines\",1,1\r\n2,b,2,2\r\n");
    let sources: Vec<_> = input.pois.iter().map(|p| p.source.as_str()).collect();
    assert_eq!(sources, ["line 2", "line 4"]);
    assert_eq!(input.pois[0].name, "two\r\nlines");
}

#[test]
fn csv_fields_are_trimmed_and_empty_fields_are_absent() {
    let input = csv("id , name ,lat,lon,state,note\n  , ,  1.25 , 2 , ,\n");
    let p = &input.pois[0];
    assert_eq!(p.id, "custom_0");
    assert_eq!(p.name, "Custom POI 0");
    assert_eq!((p.lat, p.lon), (1.25, 2.0));
    assert_eq!(p.state, None);
    // Other columns are kept as text, empty or not.
    assert_eq!(p.tags, tags(&[("note", "")]));
}

#[test]
fn csv_state_is_normalized_to_a_code_or_kept_as_a_tag() {
    let input = csv("lat,lon,state\n1,1,ky\n1,1,North Carolina\n1,1,Unknown\n");
    let states: Vec<_> = input.pois.iter().map(|p| p.state.as_deref()).collect();
    assert_eq!(states, [Some("KY"), Some("NC"), None]);
    assert_eq!(input.pois[2].tags, tags(&[("state", "Unknown")]));
    assert!(input.pois[0].tags.is_empty());
}

#[test]
fn csv_bad_coordinates_are_rejected_with_reasons_and_ids() {
    let text = "id,lat,lon\n\
                a,abc,1\n\
                b,,1\n\
                c,NaN,1\n\
                d,1,inf\n\
                e,90.5,1\n\
                f,1,-180.25\n\
                g,-90,180\n\
                ,x,\n";
    let input = csv(text);
    assert_eq!(input.records, 8);
    assert_eq!(input.pois.len(), 1);
    assert_eq!(
        (
            input.pois[0].id.as_str(),
            input.pois[0].lat,
            input.pois[0].lon
        ),
        ("g", -90.0, 180.0)
    );
    assert_eq!(
        input.rejects,
        vec![
            reject("line 2", Some("a"), "latitude 'abc' is not a number"),
            reject("line 3", Some("b"), "latitude is empty"),
            reject("line 4", Some("c"), "latitude 'NaN' is not a finite number"),
            reject(
                "line 5",
                Some("d"),
                "longitude 'inf' is not a finite number"
            ),
            reject(
                "line 6",
                Some("e"),
                "latitude '90.5' is out of range [-90, 90]"
            ),
            reject(
                "line 7",
                Some("f"),
                "longitude '-180.25' is out of range [-180, 180]"
            ),
            reject(
                "line 9",
                None,
                "latitude 'x' is not a number; longitude is empty"
            ),
        ]
    );
}

#[test]
fn csv_wrong_field_count_is_a_reject() {
    let input = csv("id,name,lat,lon\n1,a,1,1\n2,b,1\n3,c,1,1,extra\n4,d,2,2\n");
    assert_eq!(input.records, 4);
    assert_eq!(
        input.rejects,
        vec![
            reject("line 3", Some("2"), "expected 4 fields, found 3"),
            reject("line 4", Some("3"), "expected 4 fields, found 5"),
        ]
    );
    let ids: Vec<_> = input.pois.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["1", "4"]);
}

#[test]
fn csv_duplicate_ids_keep_the_first() {
    let input =
        csv("id,name,lat,lon\n5,x,1,1\n7,first,1,1\n7,second,2,2\n5,y,bad,1\n7,third,3,3\n");
    let kept: Vec<_> = input
        .pois
        .iter()
        .map(|p| (p.id.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(kept, [("5", "x"), ("7", "first")]);
    assert_eq!(
        input.rejects,
        vec![
            reject("line 4", Some("7"), "duplicate id 7 (first at line 3)"),
            reject("line 5", Some("5"), "latitude 'bad' is not a number"),
            reject("line 6", Some("7"), "duplicate id 7 (first at line 3)"),
        ]
    );
}

#[test]
fn csv_an_invalid_first_occurrence_does_not_claim_its_id() {
    let input = csv("id,lat,lon\n7,999,1\n7,1,1\n");
    assert_eq!(input.pois.len(), 1);
    assert_eq!(input.pois[0].source, "line 3");
    assert_eq!(
        input.rejects,
        vec![reject(
            "line 2",
            Some("7"),
            "latitude '999' is out of range [-90, 90]"
        )]
    );
}

#[test]
fn csv_without_coordinate_columns_is_an_input_error() {
    let (path, cause) = input_error(parse_pois_str(
        "id,name,lon\n1,a,2\n",
        PoiFormat::Csv,
        "pois.csv",
    ));
    assert_eq!(path, PathBuf::from("pois.csv"));
    assert_eq!(
        cause,
        "no latitude column (latitude: lat, latitude, y; longitude: lon, lng, longitude, x); \
         columns found: id, name, lon"
    );
    let (_, cause) = input_error(parse_pois_str("id,name\n", PoiFormat::Csv, "pois.csv"));
    assert!(
        cause.starts_with("no latitude or longitude column"),
        "{cause}"
    );
    assert!(cause.ends_with("columns found: id, name"), "{cause}");
    let (_, cause) = input_error(parse_pois_str("", PoiFormat::Csv, "pois.csv"));
    assert!(
        cause.ends_with("columns found: none (the file is empty)"),
        "{cause}"
    );
}

#[test]
fn csv_header_only_gives_no_records() {
    let input = csv("lat,lon\n");
    assert_eq!(input, PoiInput::default());
}

// ---------------------------------------------------------------- GeoJSON

const FC: &str = r#"{"type": "FeatureCollection", "features": [
  {"type": "Feature", "id": 99,
   "geometry": {"type": "Point", "coordinates": [-77.03, 38.9]},
   "properties": {"id": "lib-1", "name": "Library", "type": "library", "state": "dc",
                  "floors": 3, "open": true, "hours": {"mon": "9-5"}, "note": null, "lat": 1}},
  {"type": "Feature", "id": 42, "geometry": {"type": "Point", "coordinates": [-77.0, 38.8, 12.5]},
   "properties": null},
  {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]},
   "properties": {"osm_id": 5}},
  {"type": "Feature", "geometry": null, "properties": {}},
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [200, 10]}, "properties": {}},
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1]}, "properties": {}},
  {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]},
   "properties": {"id": "lib-1"}}
]}"#;

#[test]
fn geojson_feature_collection() {
    let input = geojson(FC);
    assert_eq!(input.records, 7);
    assert_eq!(
        input.pois,
        vec![
            Poi {
                id: "lib-1".into(),
                name: "Library".into(),
                kind: "library".into(),
                lon: -77.03,
                lat: 38.9,
                state: Some("DC".into()),
                // Non-strings in compact JSON; null properties dropped; lat is just a tag here.
                tags: tags(&[
                    ("floors", "3"),
                    ("hours", r#"{"mon":"9-5"}"#),
                    ("lat", "1"),
                    ("open", "true")
                ]),
                source: "feature 1".into(),
            },
            Poi {
                id: "42".into(),
                name: "Custom POI 1".into(),
                kind: "custom".into(),
                lon: -77.0,
                lat: 38.8,
                state: None,
                tags: BTreeMap::new(),
                source: "feature 2".into(),
            },
        ]
    );
    assert_eq!(
        input.rejects,
        vec![
            reject(
                "feature 3",
                Some("5"),
                "geometry is LineString, expected Point"
            ),
            reject("feature 4", None, "geometry is null, expected Point"),
            reject(
                "feature 5",
                None,
                "longitude '200' is out of range [-180, 180]"
            ),
            reject(
                "feature 6",
                None,
                "Point coordinates are not [longitude, latitude]"
            ),
            reject(
                "feature 7",
                Some("lib-1"),
                "duplicate id lib-1 (first at feature 1)"
            ),
        ]
    );
}

#[test]
fn geojson_single_feature_and_json_extension() {
    let text = r#"{"type":"Feature","properties":{"name":"X","poi_id":3},
                   "geometry":{"type":"Point","coordinates":[10.5,-20.25]}}"#;
    for format in [PoiFormat::GeoJson, PoiFormat::Json] {
        let input = parse_pois_str(text, format, "one").expect("parses");
        assert_eq!(input.pois.len(), 1);
        let p = &input.pois[0];
        assert_eq!(
            (p.id.as_str(), p.name.as_str(), p.lon, p.lat),
            ("3", "X", 10.5, -20.25)
        );
        assert_eq!(p.source, "feature 1");
    }
    // A FeatureCollection read as plain JSON is still read as features.
    let input = json(FC);
    assert_eq!((input.pois.len(), input.rejects.len()), (2, 5));
}

#[test]
fn geojson_other_top_level_objects_are_input_errors() {
    let (_, cause) = input_error(parse_pois_str(
        r#"{"type":"Point","coordinates":[1,2]}"#,
        PoiFormat::GeoJson,
        "p.geojson",
    ));
    assert!(cause.contains("found a GeoJSON Point"), "{cause}");
    let (_, cause) = input_error(parse_pois_str(
        r#"{"type":"FeatureCollection","features":7}"#,
        PoiFormat::GeoJson,
        "p",
    ));
    assert!(
        cause.contains("expected a list of GeoJSON features"),
        "{cause}"
    );
}

#[test]
fn geojson_feature_level_problems_are_rejects() {
    let text = r#"{"type":"FeatureCollection","features":[
        7,
        {"type":"Polygon","coordinates":[]},
        {"type":"Feature","geometry":{"type":"Point","coordinates":[1,1]},"properties":[1]},
        {"type":"Feature","geometry":{"type":"Point","coordinates":[1,1]},"properties":{"id":[1]}},
        {"type":"Feature","geometry":{"type":"Point","coordinates":["1.5","2.5"]},"properties":{"id":""}}
    ]}"#;
    let input = geojson(text);
    assert_eq!(
        input.rejects,
        vec![
            reject(
                "feature 1",
                None,
                "expected a Feature object, found a number"
            ),
            reject("feature 2", None, "type is Polygon, expected Feature"),
            reject(
                "feature 3",
                None,
                "properties is an array, expected an object"
            ),
            reject(
                "feature 4",
                None,
                "id '[1]' is an array, expected a string or a number"
            ),
        ]
    );
    // Numeric strings are accepted; an empty id is no id.
    let p = &input.pois[0];
    assert_eq!((p.id.as_str(), p.lon, p.lat), ("custom_4", 1.5, 2.5));
}

// ---------------------------------------------------------------- JSON

#[test]
fn json_list_of_objects() {
    let text = r#"[
        {"id": 7, "name": "Clinic", "type": "clinic", "lat": 35.5, "lon": -78.5, "state": "NC",
         "phone": "555", "beds": 12, "tags": {"amenity": "clinic", "level": 2, "phone": "556"}},
        {"Latitude": "36.25", "LNG": -79, "tags": "a=b"},
        {"latitude": 1, "longitude": 2, "lat": 3, "lon": 4},
        "not an object",
        {"lon": 1},
        {"lat": "x", "lon": true},
        {"id": 7, "lat": 1, "lon": 1},
        {"id": {"a": 1}, "lat": 1, "lon": 1},
        {"id": 7.5, "lat": 1e1, "lon": -0.0}
    ]"#;
    let input = json(text);
    assert_eq!(input.records, 9);
    assert_eq!(
        input.pois[0],
        Poi {
            id: "7".into(),
            name: "Clinic".into(),
            kind: "clinic".into(),
            lon: -78.5,
            lat: 35.5,
            state: Some("NC".into()),
            // Other fields become tags; the tags object wins a clash.
            tags: tags(&[
                ("amenity", "clinic"),
                ("beds", "12"),
                ("level", "2"),
                ("phone", "556")
            ]),
            source: "record 1".into(),
        }
    );
    let p = &input.pois[1];
    assert_eq!((p.id.as_str(), p.lat, p.lon), ("custom_1", 36.25, -79.0));
    assert_eq!(p.tags, tags(&[("tags", "a=b")]));
    // lat beats latitude and lon beats longitude; the losers are tags.
    let p = &input.pois[2];
    assert_eq!((p.lat, p.lon), (3.0, 4.0));
    assert_eq!(p.tags, tags(&[("latitude", "1"), ("longitude", "2")]));
    let p = &input.pois[3];
    assert_eq!(
        (p.id.as_str(), p.lat, p.lon, p.source.as_str()),
        ("7.5", 10.0, -0.0, "record 9")
    );
    assert_eq!(
        input.rejects,
        vec![
            reject("record 4", None, "expected an object, found a string"),
            reject("record 5", None, "latitude is missing"),
            reject(
                "record 6",
                None,
                "latitude 'x' is not a number; longitude 'true' is not a number"
            ),
            reject("record 7", Some("7"), "duplicate id 7 (first at record 1)"),
            reject(
                "record 8",
                None,
                r#"id '{"a":1}' is an object, expected a string or a number"#
            ),
        ]
    );
}

#[test]
fn json_pois_object() {
    let input = json(r#"{"pois": [{"lat": 1, "lon": 2, "name": "A"}], "name_field": "name"}"#);
    assert_eq!(input.pois.len(), 1);
    assert_eq!(
        (
            input.pois[0].name.as_str(),
            input.pois[0].lat,
            input.pois[0].lon
        ),
        ("A", 1.0, 2.0)
    );
    assert_eq!(json("[]"), PoiInput::default());
}

#[test]
fn json_corrupt_or_wrong_shape_is_an_input_error() {
    let (path, cause) = input_error(parse_pois_str("[{\"lat\": 1,", PoiFormat::Json, "in.json"));
    assert_eq!(path, PathBuf::from("in.json"));
    assert!(
        cause.starts_with("invalid JSON: EOF while parsing"),
        "{cause}"
    );
    assert!(cause.contains("line 1"), "{cause}");
    let (_, cause) = input_error(parse_pois_str("[] []", PoiFormat::Json, "in.json"));
    assert!(cause.contains("trailing characters"), "{cause}");
    let (_, cause) = input_error(parse_pois_str("\"hello\"", PoiFormat::Json, "in.json"));
    assert!(cause.contains("expected a list of POI objects"), "{cause}");
    let (_, cause) = input_error(parse_pois_str(
        r#"{"a": 1, "b": 2}"#,
        PoiFormat::Json,
        "in.json",
    ));
    assert!(cause.contains("found an object with keys a, b"), "{cause}");
}

// ---------------------------------------------------------------- formats and files

#[test]
fn format_from_extension_and_content() {
    assert_eq!(
        PoiFormat::from_path(Path::new("a/b.CSV")),
        Some(PoiFormat::Csv)
    );
    assert_eq!(
        PoiFormat::from_path(Path::new("b.geojson")),
        Some(PoiFormat::GeoJson)
    );
    assert_eq!(
        PoiFormat::from_path(Path::new("b.json")),
        Some(PoiFormat::Json)
    );
    assert_eq!(PoiFormat::from_path(Path::new("b.dat")), None);
    assert_eq!(PoiFormat::from_path(Path::new("pois")), None);
    assert_eq!(PoiFormat::sniff("\u{feff}  [ {}"), PoiFormat::Json);
    assert_eq!(PoiFormat::sniff("{\"pois\": []}"), PoiFormat::Json);
    assert_eq!(
        PoiFormat::sniff("\n{\"type\": \"FeatureCollection\"}"),
        PoiFormat::GeoJson
    );
    assert_eq!(PoiFormat::sniff("lat,lon\n1,2"), PoiFormat::Csv);
    assert_eq!("GeoJSON".parse::<PoiFormat>(), Ok(PoiFormat::GeoJson));
    assert!("xml".parse::<PoiFormat>().is_err());
}

#[test]
fn read_pois_sniffs_files_without_a_known_extension() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("stdin-copy");
    std::fs::write(&path, "[{\"lat\": 1, \"lon\": 2}]").expect("write");
    assert_eq!(read_pois(&path).expect("reads").pois[0].lon, 2.0);
    let path = dir.path().join("pois.dat");
    std::fs::write(&path, "\u{feff}lat,lon\n1,2\n").expect("write");
    assert_eq!(read_pois(&path).expect("reads").pois[0].lat, 1.0);
}

#[test]
fn read_pois_missing_file() {
    let path = Path::new("/nonexistent/dir/pois.csv");
    let (p, cause) = input_error(read_pois(path));
    assert_eq!(p, path);
    assert!(cause.starts_with("cannot read: "), "{cause}");
    let msg = read_pois(path).unwrap_err().to_string();
    assert!(
        msg.starts_with("/nonexistent/dir/pois.csv: cannot read"),
        "{msg}"
    );
}

#[test]
fn read_pois_rejects_non_utf8_with_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("latin1.csv");
    // "Bogot\xe1" in Latin-1 on line 3.
    std::fs::write(&path, b"name,lat,lon\nA,1,2\nBogot\xe1,4,-74\n").expect("write");
    let (p, cause) = input_error(read_pois(&path));
    assert_eq!(p, path);
    assert_eq!(
        cause,
        "not valid UTF-8: invalid byte 0xe1 at line 3 (byte offset 24); save the file as UTF-8"
    );
}

// ---------------------------------------------------------------- real data

#[test]
fn real_trailheads() {
    let input = read_pois(&data_dir().join("trailheads/trail_heads.csv")).expect("reads");
    assert_eq!(
        (input.records, input.pois.len(), input.rejects.len()),
        (2659, 2659, 0)
    );
    for (i, p) in input.pois.iter().enumerate() {
        assert_eq!(p.id, i.to_string());
    }
    // Line 1634: 1632,"MAIN TRAIL, PT 6 TO DEADEND",36.76736163800001,-88.096105819,KY
    let p = &input.pois[1632];
    assert_eq!(
        *p,
        Poi {
            id: "1632".into(),
            name: "MAIN TRAIL, PT 6 TO DEADEND".into(),
            kind: "custom".into(),
            lon: -88.096105819,
            lat: 36.76736163800001,
            state: Some("KY".into()),
            tags: BTreeMap::new(),
            source: "line 1634".into(),
        }
    );
    // 1,560 rows say state "Unknown": no state, the text kept as a tag.
    let unknown = input
        .pois
        .iter()
        .filter(|p| p.tags.get("state").map(String::as_str) == Some("Unknown"));
    assert_eq!(unknown.clone().count(), 1560);
    assert!(unknown.clone().all(|p| p.state.is_none()));
    assert_eq!(input.pois[2658].name, "ZILPO MOUNTAIN");
}

#[test]
fn real_dc_pois() {
    let input = read_pois(&data_dir().join("dc/pois.csv")).expect("reads");
    assert_eq!((input.pois.len(), input.rejects.len()), (7, 0));
    let p = input
        .pois
        .iter()
        .find(|p| p.name == "Dupont Circle")
        .expect("Dupont Circle");
    assert_eq!(p.id, "738182031");
    assert_eq!(p.tags, tags(&[("tags", "railway=station")]));
    assert_eq!((p.lat, p.lon), (38.9097773, -77.0435238));
    assert_eq!(p.source, "line 4");
    assert_eq!(p.kind, "custom");
}

#[test]
fn real_fuquay_varina_without_trailing_newline() {
    let input = read_pois(&data_dir().join("fuquay_varina_nc/pois.csv")).expect("reads");
    assert_eq!(input.records, 1);
    assert_eq!(
        input.pois,
        vec![Poi {
            id: "3".into(),
            name: "Fuquay-Varina Community Library".into(),
            kind: "custom".into(),
            lon: -78.7801361,
            lat: 35.5853861,
            state: Some("NC".into()),
            tags: BTreeMap::new(),
            source: "line 2".into(),
        }]
    );
}

// ---------------------------------------------------------------- streams

/// Inputs with every kind of record: bad rows, duplicates, a BOM, blank lines, CRLF, a quoted
/// field over two lines, defaults.
const STREAM_INPUTS: [(&str, &str); 6] = [
    (
        "mixed.csv",
        "\u{feff}id,name,lat,lon,state\n\
         1,a,1,1,nc\n\
         \n\
         2,b,bad,1,\n\
         1,dup,2,2,\n\
         \x20\x20\n\
         3,c,1\n\
         ,\"two\nlines\",3,3,Unknown\n\
         4,d,4,4,\n\
         2,e,5,5,\n\
         ,,6,6,\n",
    ),
    (
        "crlf.csv",
        "lat,lon,id\r\n1,1,x\r\n\r\n2,2,x\r\n3,3,\r\n4,4,y\r\n5,5,\r\n",
    ),
    ("header_only.csv", "lat,lon\n"),
    ("no_newline.csv", "lat,lon\n1,2"),
    (
        "list.json",
        r#"[{"id": 7, "lat": 1, "lon": 2}, 3, {"id": 7, "lat": 1, "lon": 2}, {"lat": 9},
            {"lat": 4, "lon": 5}]"#,
    ),
    ("fc.geojson", FC),
];

/// All records of a stream read in chunks of `size`.
fn chunks_of(path: &Path, size: usize) -> Vec<PoiRecord> {
    let mut stream = open_pois(path).expect("opens");
    let mut all = Vec::new();
    while let Some(chunk) = stream.next_chunk(size).expect("reads") {
        assert!(!chunk.is_empty() && chunk.len() <= size);
        all.extend(chunk);
    }
    assert!(stream.next_chunk(size).expect("stays at the end").is_none());
    all
}

/// The records of a `PoiInput` in input order, given the index of each (from a stream).
fn split(records: &[PoiRecord]) -> PoiInput {
    let mut out = PoiInput::default();
    for (k, (i, outcome)) in records.iter().enumerate() {
        assert_eq!(*i as usize, k, "record indices count from 0 without gaps");
        out.records += 1;
        match outcome {
            Ok(p) => out.pois.push(p.clone()),
            Err(r) => out.rejects.push(r.clone()),
        }
    }
    out
}

#[test]
fn stream_chunks_concatenate_to_read_pois() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in STREAM_INPUTS {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let whole = read_pois(&path).expect("reads");
        // The same outcomes as parsing the text in memory (a different reader underneath).
        let format = PoiFormat::from_path(&path).expect("known extension");
        assert_eq!(parse_pois_str(text, format, name).expect("parses"), whole);
        let first = chunks_of(&path, 1);
        assert_eq!(split(&first), whole, "{name}");
        for size in [2, 3, 1000] {
            assert_eq!(chunks_of(&path, size), first, "{name}, chunks of {size}");
        }
    }
    // The mixed CSV really has every kind of outcome, in file order.
    let path = dir.path().join("mixed.csv");
    let got: Vec<_> = chunks_of(&path, 4)
        .into_iter()
        .map(|(i, o)| match o {
            Ok(p) => (i, p.id, p.source),
            Err(r) => (i, r.reason, r.source),
        })
        .collect();
    let want = [
        (0, "1", "line 2"),
        (1, "latitude 'bad' is not a number", "line 4"),
        (2, "duplicate id 1 (first at line 2)", "line 5"),
        (3, "expected 5 fields, found 3", "line 7"),
        (4, "custom_4", "line 8"),
        (5, "4", "line 10"),
        (6, "2", "line 11"),
        (7, "custom_7", "line 12"),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|&(i, a, b)| (i, a.to_string(), b.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// A reader that hands out a few bytes per call, so that characters, the BOM and line ends
/// fall across reads.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    step: usize,
}

impl std::io::Read for Trickle {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        // Sizes 1, 2, ..., step, 1, 2, ...
        let want = 1 + self.at % self.step;
        let n = want.min(out.len()).min(self.bytes.len() - self.at);
        out[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn trickle(text: &[u8], step: usize) -> PoiStream {
    let reader = Trickle {
        bytes: text.to_vec(),
        at: 0,
        step,
    };
    PoiStream::from_reader(reader, PoiFormat::Csv, Path::new("t.csv")).expect("opens")
}

#[test]
fn stream_csv_from_a_reader_that_returns_a_few_bytes_at_a_time() {
    let text =
        "\u{feff}id,name,lat,lon\r\n1,Bogotá ñandú 東京,1,1\r\n\r\n2,\"é\r\nü\",2,2\r\n1,x,3,3\r\n";
    let want = parse_pois_str(text, PoiFormat::Csv, "t.csv").expect("parses");
    assert_eq!(want.pois[0].name, "Bogotá ñandú 東京");
    assert_eq!(want.pois[1].source, "line 4");
    assert_eq!(want.rejects[0].source, "line 6");
    for step in 1..8 {
        let got: Vec<_> = trickle(text.as_bytes(), step)
            .map(|r| r.expect("reads"))
            .collect();
        assert_eq!(split(&got), want, "step {step}");
    }
}

#[test]
fn stream_reports_bad_utf8_after_the_records_before_it() {
    // As read_pois_rejects_non_utf8_with_the_line, behind a BOM (offsets count after it), with
    // more good records before the bad byte than one chunk holds.
    let mut text = b"\xef\xbb\xbfname,lat,lon\n".to_vec();
    for i in 0..5 {
        text.extend_from_slice(format!("p{i},1,2\n").as_bytes());
    }
    let at = text.len() - 3 + "Bogot".len();
    text.extend_from_slice(b"Bogot\xe1,4,-74\nlater,1,1\n");
    let want = format!(
        "not valid UTF-8: invalid byte 0xe1 at line 7 (byte offset {at}); save the file as UTF-8"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("latin1.csv");
    std::fs::write(&path, &text).expect("write");
    let (_, cause) = input_error(read_pois(&path));
    assert_eq!(cause, want);
    for step in [1, 3, 64] {
        let mut stream = trickle(&text, step);
        let chunk = stream.next_chunk(3).expect("good records").expect("some");
        assert_eq!(chunk.len(), 3);
        // The last good records come in a short chunk, then the error, then nothing.
        let chunk = stream.next_chunk(3).expect("good records").expect("some");
        assert_eq!(chunk.len(), 2);
        match stream.next_chunk(3) {
            Err(Error::Input { cause, .. }) => assert_eq!(cause, want),
            other => panic!("expected the UTF-8 error, got {other:?}"),
        }
        assert!(stream.next_chunk(3).expect("ended").is_none());
    }
    // A character cut off by the end of the input is bad too.
    let cause = match trickle(b"lat,lon\n1,2\xc3", 2).find_map(|r| r.err()) {
        Some(Error::Input { cause, .. }) => cause,
        other => panic!("expected the UTF-8 error, got {other:?}"),
    };
    assert_eq!(
        cause,
        "not valid UTF-8: invalid byte 0xc3 at line 2 (byte offset 11); save the file as UTF-8"
    );
}

#[test]
fn stream_line_numbers_survive_records_longer_than_the_buffers() {
    // A 200 kB quoted field with 5,000 line breaks, then ordinary rows.
    let long: String = (0..5000).map(|i| format!("{i:038}\n")).collect();
    let text = format!("id,note,lat,lon\na,\"{long}\",1,1\n\nb,x,2,2\r\n\r\nc,y,3,3\n");
    let mut stream = trickle(text.as_bytes(), 7000);
    let got: Vec<_> = stream
        .by_ref()
        .map(|r| r.expect("reads").1.expect("a POI").source)
        .collect();
    assert_eq!(got, ["line 2", "line 5004", "line 5006"]);
    assert_eq!(stream.records_read(), 3);
}

#[test]
fn stream_sniffs_like_read_pois_and_names_the_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (text, format, records) in [
        (
            "\u{feff}\n \t [{\"lat\": 1, \"lon\": 2}]",
            PoiFormat::Json,
            1,
        ),
        ("lat,lon\n1,2\n3,4\n", PoiFormat::Csv, 2),
        ("", PoiFormat::Csv, 0),
    ] {
        let path = dir.path().join("pois.dat");
        std::fs::write(&path, text).expect("write");
        match open_pois(&path) {
            Ok(stream) => {
                assert_eq!(stream.format(), format);
                assert_eq!(stream.count(), records);
            }
            // The empty file: a CSV without columns, as read_pois says.
            Err(Error::Input { cause, .. }) => {
                assert!(text.is_empty(), "{cause}");
                assert!(cause.ends_with("none (the file is empty)"), "{cause}");
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn pois_at_fetches_accepted_pois_by_record_index() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mixed.csv");
    std::fs::write(&path, STREAM_INPUTS[0].1).expect("write");
    let all = read_pois(&path).expect("reads");
    // Unsorted with repeats; 1 and 2 are rejects, 99 is past the end.
    let got = pois_at(&path, &[7, 99, 0, 2, 5, 7, 1]).expect("reads");
    let ids: Vec<_> = got.iter().map(|(i, p)| (*i, p.id.as_str())).collect();
    assert_eq!(ids, [(0, "1"), (5, "4"), (7, "custom_7")]);
    assert_eq!(got[1].1, all.pois[2]);
    assert!(pois_at(&path, &[]).expect("nothing to read").is_empty());
    let (p, _) = input_error(pois_at(Path::new("/nonexistent/p.csv"), &[0]).map(|_| all));
    assert_eq!(p, Path::new("/nonexistent/p.csv"));
}

#[test]
fn real_trailheads_stream_in_chunks() {
    let path = data_dir().join("trailheads/trail_heads.csv");
    let whole = read_pois(&path).expect("reads");
    for size in [1, 7, 1000] {
        assert_eq!(split(&chunks_of(&path, size)), whole);
    }
    let at = pois_at(&path, &[2658, 1632]).expect("reads");
    assert_eq!(at[0], (1632, whole.pois[1632].clone()));
    assert_eq!(at[1].1.name, "ZILPO MOUNTAIN");
}
