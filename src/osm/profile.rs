//! Per-mode access and speed rules for OSM highway ways.
//!
//! Which ways a mode may use follows osmnx's `network_type` filters (`drive`, `walk`, `bike`)
//! with the access exceptions spelled out below; speeds follow the original tool's `hwy_speeds`
//! tables and fallbacks (reference study §6): drive 50 km/h, walk 5 km/h, bike 15 km/h.
//!
//! Deliberate differences from the original v0.6.1:
//! - OSM `maxspeed` is used for drive only. The original let car speed limits leak into walk and
//!   bike edges (divergence §6.1 #2); later versions capped walk at 7 km/h and bike at
//!   30 km/h, which we keep as caps.
//! - `highway=busway` (a bus-only road, newer than the original's osmnx filters) is excluded
//!   for every mode, like `bus_guideway`.
//! - Walk and bike are both-ways on every way (osmnx treats bike as oneway-respecting; the
//!   project decided that cyclists and pedestrians are not bound by car oneways).

use super::OsmWay;
use crate::types::Mode;

/// Which physical directions of a way may be travelled, relative to the order of its nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oneway {
    /// Both directions.
    Both,
    /// Only in node order (first node → last node).
    Forward,
    /// Only against node order (last node → first node).
    Backward,
}

impl Oneway {
    /// Whether travel in node order is allowed.
    pub fn forward(self) -> bool {
        matches!(self, Oneway::Both | Oneway::Forward)
    }

    /// Whether travel against node order is allowed.
    pub fn backward(self) -> bool {
        matches!(self, Oneway::Both | Oneway::Backward)
    }
}

/// How a mode may use one way: its speed and its allowed directions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WayRule {
    /// Travel speed in km/h (always > 0).
    pub speed_kmh: f64,
    /// Allowed directions.
    pub oneway: Oneway,
}

/// Fallback speed (km/h) for drive ways whose `highway` value is not in the table.
pub const DRIVE_FALLBACK_KMH: f64 = 50.0;
/// Fallback speed (km/h) for walk ways whose `highway` value is not in the table.
pub const WALK_FALLBACK_KMH: f64 = 5.0;
/// Fallback speed (km/h) for bike ways whose `highway` value is not in the table.
pub const BIKE_FALLBACK_KMH: f64 = 15.0;
/// Upper bound on walking speeds (the original's `MAX_WALKING_SPEED_KPH`).
pub const WALK_MAX_KMH: f64 = 7.0;
/// Upper bound on cycling speeds (the original's `MAX_CYCLING_SPEED_KPH`).
pub const BIKE_MAX_KMH: f64 = 30.0;

/// The original's drive `hwy_speeds` (km/h).
fn drive_table(highway: &str) -> Option<f64> {
    Some(match highway {
        "motorway" => 110.0,
        "motorway_link" => 70.0,
        "trunk" => 90.0,
        "trunk_link" => 50.0,
        "primary" => 65.0,
        "primary_link" => 40.0,
        "secondary" => 55.0,
        "secondary_link" => 35.0,
        "tertiary" => 45.0,
        "tertiary_link" => 30.0,
        "residential" => 30.0,
        "living_street" => 20.0,
        "service" => 25.0,
        "unclassified" => 40.0,
        "road" => 40.0,
        _ => return None,
    })
}

/// The original's walk `hwy_speeds` (km/h).
fn walk_table(highway: &str) -> Option<f64> {
    Some(match highway {
        "footway" => 5.0,
        "path" => 4.5,
        "pedestrian" => 5.0,
        "steps" => 1.5,
        "sidewalk" => 5.0,
        "residential" => 4.8,
        "living_street" => 4.5,
        "service" => 4.5,
        "primary" => 4.5,
        "secondary" => 4.5,
        "tertiary" => 4.8,
        "trunk" => 4.0,
        "motorway" => 3.0,
        _ => return None,
    })
}

/// The original's bike `hwy_speeds` (km/h).
fn bike_table(highway: &str) -> Option<f64> {
    Some(match highway {
        "cycleway" => 18.0,
        "path" => 12.0,
        "footway" => 8.0,
        "pedestrian" => 8.0,
        "residential" => 15.0,
        "living_street" => 10.0,
        "service" => 12.0,
        "tertiary" => 16.0,
        "secondary" => 18.0,
        "primary" => 20.0,
        "trunk" => 15.0,
        "motorway" => 10.0,
        _ => return None,
    })
}

/// `highway` values that are never part of the drive network.
const DRIVE_EXCLUDED: &[&str] = &[
    "footway",
    "path",
    "cycleway",
    "steps",
    "pedestrian",
    "bridleway",
    "track",
    "corridor",
    "elevator",
    "escalator",
    "platform",
    "proposed",
    "construction",
    "abandoned",
    "planned",
    "raceway",
    "razed",
    "bus_guideway",
    "busway",
    "no",
    "bus_stop",
    "sidewalk",
    "crossing",
];

/// `highway` values that are never part of the walk network (cycleway has an exception).
const WALK_EXCLUDED: &[&str] = &[
    "motorway",
    "motorway_link",
    "bus_guideway",
    "busway",
    "construction",
    "proposed",
    "planned",
    "abandoned",
    "platform",
    "raceway",
    "razed",
    "no",
];

/// `highway` values that are never part of the bike network (the pedestrian-only values have
/// an exception, see [`way_rule`]).
const BIKE_EXCLUDED: &[&str] = &[
    "motorway",
    "motorway_link",
    "bus_guideway",
    "busway",
    "construction",
    "proposed",
    "planned",
    "abandoned",
    "platform",
    "raceway",
    "razed",
    "no",
    "elevator",
    "escalator",
];

/// Pedestrian-only `highway` values a bike may use only with explicit `bicycle` permission.
const BIKE_NEEDS_PERMISSION: &[&str] = &["footway", "steps", "pedestrian", "corridor"];

/// Whether `v` is one of the values that grant access despite a general restriction.
fn grants(v: Option<&str>) -> bool {
    matches!(v, Some("yes" | "designated" | "permissive"))
}

/// Whether the general `access` tag closes the way (`private` or `no`).
fn access_closed(way: &OsmWay) -> bool {
    matches!(way.tag("access"), Some("private" | "no"))
}

/// How `mode` may use `way`, or `None` when the way is not part of that mode's network.
///
/// Ways without a `highway` tag are never usable.
pub fn way_rule(mode: Mode, way: &OsmWay) -> Option<WayRule> {
    let highway = way.tag("highway")?;
    if way.tag("area") == Some("yes") {
        return None;
    }
    match mode {
        Mode::Drive => drive_rule(way, highway),
        Mode::Walk => walk_rule(way, highway),
        Mode::Bike => bike_rule(way, highway),
    }
}

fn drive_rule(way: &OsmWay, highway: &str) -> Option<WayRule> {
    if DRIVE_EXCLUDED.contains(&highway) {
        return None;
    }
    let motor_vehicle = way.tag("motor_vehicle");
    let motorcar = way.tag("motorcar");
    if motor_vehicle == Some("no") || motorcar == Some("no") {
        return None;
    }
    // A specific permission for cars overrides a general `access=private|no`.
    if access_closed(way) && !grants(motor_vehicle) && !grants(motorcar) {
        return None;
    }
    if matches!(way.tag("service"), Some("private" | "emergency_access")) {
        return None;
    }
    let speed_kmh = way
        .tag("maxspeed")
        .and_then(parse_maxspeed)
        .or_else(|| drive_table(highway))
        .unwrap_or(DRIVE_FALLBACK_KMH);
    Some(WayRule {
        speed_kmh,
        oneway: drive_oneway(way, highway),
    })
}

/// The allowed car directions. An explicit `oneway` wins; roundabouts and motorways are
/// one-way in node order unless tagged `oneway=no`.
fn drive_oneway(way: &OsmWay, highway: &str) -> Oneway {
    match way.tag("oneway") {
        Some("yes" | "true" | "1") => Oneway::Forward,
        Some("-1" | "reverse") => Oneway::Backward,
        Some("no" | "false" | "0") => Oneway::Both,
        _ => {
            let implied = matches!(way.tag("junction"), Some("roundabout" | "circular"))
                || highway == "motorway";
            if implied {
                Oneway::Forward
            } else {
                Oneway::Both
            }
        }
    }
}

fn walk_rule(way: &OsmWay, highway: &str) -> Option<WayRule> {
    if WALK_EXCLUDED.contains(&highway) {
        return None;
    }
    let foot = way.tag("foot");
    if foot == Some("no") {
        return None;
    }
    if highway == "cycleway" && !matches!(foot, Some("yes" | "designated")) {
        return None;
    }
    if access_closed(way) && !grants(foot) {
        return None;
    }
    if way.tag("service") == Some("private") {
        return None;
    }
    let speed_kmh = walk_table(highway)
        .unwrap_or(WALK_FALLBACK_KMH)
        .min(WALK_MAX_KMH);
    Some(WayRule {
        speed_kmh,
        oneway: Oneway::Both,
    })
}

fn bike_rule(way: &OsmWay, highway: &str) -> Option<WayRule> {
    if BIKE_EXCLUDED.contains(&highway) {
        return None;
    }
    let bicycle = way.tag("bicycle");
    if bicycle == Some("no") {
        return None;
    }
    if BIKE_NEEDS_PERMISSION.contains(&highway) && !grants(bicycle) {
        return None;
    }
    if access_closed(way) && !grants(bicycle) {
        return None;
    }
    if way.tag("service") == Some("private") {
        return None;
    }
    let speed_kmh = bike_table(highway)
        .unwrap_or(BIKE_FALLBACK_KMH)
        .min(BIKE_MAX_KMH);
    Some(WayRule {
        speed_kmh,
        oneway: Oneway::Both,
    })
}

/// Parses an OSM `maxspeed` value into km/h.
///
/// Accepts a bare number (km/h), `"<n> km/h"`, `"<n> kmh"`, `"<n> kph"`, `"<n> mph"` (with or
/// without the space) and `;`-separated lists, which give the mean of their parts (as osmnx
/// does). Returns `None` for symbolic values (`none`, `signals`, `walk`, `RU:urban`...), for
/// anything else it cannot read, and for non-positive or non-finite speeds, so that the caller
/// falls back to the highway table.
pub fn parse_maxspeed(value: &str) -> Option<f64> {
    let mut sum = 0.0;
    let mut count = 0u32;
    for part in value.split(';') {
        sum += parse_one_speed(part)?;
        count += 1;
    }
    // `split` always yields at least one part, so `count > 0` here.
    Some(sum / f64::from(count))
}

fn parse_one_speed(part: &str) -> Option<f64> {
    let s = part.trim();
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(digits_end);
    let n: f64 = number.parse().ok()?;
    let factor = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "km/h" | "kmh" | "kph" | "kmph" => 1.0,
        "mph" => 1.609_344,
        _ => return None,
    };
    let kmh = n * factor;
    (kmh.is_finite() && kmh > 0.0).then_some(kmh)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn way(tags: &[(&str, &str)]) -> OsmWay {
        OsmWay {
            id: 1,
            nodes: vec![1, 2],
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn rule(mode: Mode, tags: &[(&str, &str)]) -> Option<WayRule> {
        way_rule(mode, &way(tags))
    }

    fn speed(mode: Mode, tags: &[(&str, &str)]) -> f64 {
        rule(mode, tags).expect("usable").speed_kmh
    }

    fn oneway(tags: &[(&str, &str)]) -> Oneway {
        rule(Mode::Drive, tags).expect("drivable").oneway
    }

    #[test]
    fn maxspeed_parsing() {
        assert_eq!(parse_maxspeed("50"), Some(50.0));
        assert_eq!(parse_maxspeed("50 km/h"), Some(50.0));
        assert_eq!(parse_maxspeed("50km/h"), Some(50.0));
        assert_eq!(parse_maxspeed("50 kmh"), Some(50.0));
        assert_eq!(parse_maxspeed(" 60 kph "), Some(60.0));
        assert!((parse_maxspeed("25 mph").unwrap() - 40.2336).abs() < 1e-9);
        assert!((parse_maxspeed("25mph").unwrap() - 40.2336).abs() < 1e-9);
        assert!((parse_maxspeed("25 MPH").unwrap() - 40.2336).abs() < 1e-9);
        assert_eq!(parse_maxspeed("30;40"), Some(35.0));
        assert_eq!(parse_maxspeed("30; 50 km/h"), Some(40.0));
        assert!((parse_maxspeed("25 mph;35 mph").unwrap() - 48.28032).abs() < 1e-9);
        assert_eq!(parse_maxspeed("7.5"), Some(7.5));
        for junk in [
            "none", "signals", "walk", "RU:urban", "", " ", "fast", "50 knots", "mph", "0", "-30",
            "30;none", "1.2.3", ";",
        ] {
            assert_eq!(parse_maxspeed(junk), None, "{junk:?}");
        }
    }

    #[test]
    fn drive_speed_precedence() {
        // maxspeed first, then the table, then the fallback.
        assert_eq!(
            speed(
                Mode::Drive,
                &[("highway", "residential"), ("maxspeed", "40")]
            ),
            40.0
        );
        assert!(
            (speed(
                Mode::Drive,
                &[("highway", "primary"), ("maxspeed", "25 mph")]
            ) - 40.2336)
                .abs()
                < 1e-9
        );
        assert_eq!(
            speed(
                Mode::Drive,
                &[("highway", "residential"), ("maxspeed", "none")]
            ),
            30.0
        );
        assert_eq!(
            speed(
                Mode::Drive,
                &[("highway", "primary"), ("maxspeed", "signals")]
            ),
            65.0
        );
        assert_eq!(
            speed(
                Mode::Drive,
                &[("highway", "primary"), ("maxspeed", "30;40")]
            ),
            35.0
        );
        assert_eq!(speed(Mode::Drive, &[("highway", "motorway")]), 110.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "motorway_link")]), 70.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "trunk")]), 90.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "trunk_link")]), 50.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "primary_link")]), 40.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "secondary")]), 55.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "secondary_link")]), 35.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "tertiary")]), 45.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "tertiary_link")]), 30.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "living_street")]), 20.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "service")]), 25.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "unclassified")]), 40.0);
        assert_eq!(speed(Mode::Drive, &[("highway", "road")]), 40.0);
        assert_eq!(
            speed(Mode::Drive, &[("highway", "rest_area")]),
            DRIVE_FALLBACK_KMH
        );
    }

    #[test]
    fn drive_exclusions() {
        for hw in DRIVE_EXCLUDED {
            assert_eq!(rule(Mode::Drive, &[("highway", hw)]), None, "{hw}");
        }
        assert_eq!(rule(Mode::Drive, &[("name", "no highway tag")]), None);
        let blocked: &[&[(&str, &str)]] = &[
            &[("highway", "residential"), ("access", "private")],
            &[("highway", "residential"), ("access", "no")],
            &[
                ("highway", "residential"),
                ("access", "no"),
                ("foot", "yes"),
            ],
            &[("highway", "residential"), ("motor_vehicle", "no")],
            &[("highway", "residential"), ("motorcar", "no")],
            &[
                ("highway", "residential"),
                ("access", "yes"),
                ("motorcar", "no"),
            ],
            &[("highway", "residential"), ("area", "yes")],
            &[("highway", "service"), ("service", "private")],
            &[("highway", "service"), ("service", "emergency_access")],
        ];
        for tags in blocked {
            assert_eq!(rule(Mode::Drive, tags), None, "{tags:?}");
        }
        let allowed: &[&[(&str, &str)]] = &[
            &[
                ("highway", "residential"),
                ("access", "private"),
                ("motor_vehicle", "yes"),
            ],
            &[
                ("highway", "residential"),
                ("access", "no"),
                ("motorcar", "designated"),
            ],
            &[
                ("highway", "residential"),
                ("access", "private"),
                ("motorcar", "permissive"),
            ],
            &[("highway", "residential"), ("access", "destination")],
            &[("highway", "residential"), ("access", "customers")],
            &[("highway", "residential"), ("area", "no")],
            &[("highway", "service"), ("service", "driveway")],
            &[("highway", "service"), ("service", "parking_aisle")],
            &[("highway", "residential"), ("foot", "no")],
            &[("highway", "residential"), ("bicycle", "no")],
        ];
        for tags in allowed {
            assert!(rule(Mode::Drive, tags).is_some(), "{tags:?}");
        }
    }

    #[test]
    fn drive_oneway_rules() {
        assert_eq!(oneway(&[("highway", "residential")]), Oneway::Both);
        for v in ["yes", "true", "1"] {
            assert_eq!(
                oneway(&[("highway", "residential"), ("oneway", v)]),
                Oneway::Forward
            );
        }
        for v in ["-1", "reverse"] {
            assert_eq!(
                oneway(&[("highway", "residential"), ("oneway", v)]),
                Oneway::Backward
            );
        }
        assert_eq!(
            oneway(&[("highway", "residential"), ("oneway", "no")]),
            Oneway::Both
        );
        assert_eq!(
            oneway(&[("highway", "residential"), ("oneway", "reversible")]),
            Oneway::Both
        );
        for j in ["roundabout", "circular"] {
            assert_eq!(
                oneway(&[("highway", "primary"), ("junction", j)]),
                Oneway::Forward
            );
            assert_eq!(
                oneway(&[("highway", "primary"), ("junction", j), ("oneway", "no")]),
                Oneway::Both
            );
            assert_eq!(
                oneway(&[("highway", "primary"), ("junction", j), ("oneway", "-1")]),
                Oneway::Backward
            );
        }
        assert_eq!(
            oneway(&[("highway", "primary"), ("junction", "jughandle")]),
            Oneway::Both
        );
        assert_eq!(oneway(&[("highway", "motorway")]), Oneway::Forward);
        assert_eq!(
            oneway(&[("highway", "motorway"), ("oneway", "no")]),
            Oneway::Both
        );
        // Links are not implied one-way.
        assert_eq!(oneway(&[("highway", "motorway_link")]), Oneway::Both);
        assert!(Oneway::Both.forward() && Oneway::Both.backward());
        assert!(Oneway::Forward.forward() && !Oneway::Forward.backward());
        assert!(!Oneway::Backward.forward() && Oneway::Backward.backward());
    }

    #[test]
    fn walk_rules() {
        for hw in WALK_EXCLUDED {
            assert_eq!(rule(Mode::Walk, &[("highway", hw)]), None, "{hw}");
        }
        assert_eq!(rule(Mode::Walk, &[("highway", "cycleway")]), None);
        assert_eq!(
            rule(
                Mode::Walk,
                &[("highway", "cycleway"), ("foot", "permissive")]
            ),
            None
        );
        assert_eq!(
            speed(Mode::Walk, &[("highway", "cycleway"), ("foot", "yes")]),
            5.0
        );
        assert_eq!(
            speed(
                Mode::Walk,
                &[("highway", "cycleway"), ("foot", "designated")]
            ),
            5.0
        );
        let blocked: &[&[(&str, &str)]] = &[
            &[("highway", "footway"), ("foot", "no")],
            &[("highway", "residential"), ("access", "private")],
            &[("highway", "residential"), ("access", "no")],
            &[
                ("highway", "residential"),
                ("access", "no"),
                ("motorcar", "yes"),
            ],
            &[("highway", "pedestrian"), ("area", "yes")],
            &[("highway", "service"), ("service", "private")],
        ];
        for tags in blocked {
            assert_eq!(rule(Mode::Walk, tags), None, "{tags:?}");
        }
        for v in ["yes", "designated", "permissive"] {
            assert!(
                rule(
                    Mode::Walk,
                    &[("highway", "path"), ("access", "no"), ("foot", v)]
                )
                .is_some()
            );
        }
        // Table speeds, the fallback, no maxspeed, always both ways.
        assert_eq!(speed(Mode::Walk, &[("highway", "footway")]), 5.0);
        assert_eq!(speed(Mode::Walk, &[("highway", "path")]), 4.5);
        assert_eq!(speed(Mode::Walk, &[("highway", "pedestrian")]), 5.0);
        assert_eq!(speed(Mode::Walk, &[("highway", "steps")]), 1.5);
        assert_eq!(speed(Mode::Walk, &[("highway", "sidewalk")]), 5.0);
        assert_eq!(speed(Mode::Walk, &[("highway", "residential")]), 4.8);
        assert_eq!(speed(Mode::Walk, &[("highway", "living_street")]), 4.5);
        assert_eq!(speed(Mode::Walk, &[("highway", "service")]), 4.5);
        assert_eq!(speed(Mode::Walk, &[("highway", "primary")]), 4.5);
        assert_eq!(speed(Mode::Walk, &[("highway", "secondary")]), 4.5);
        assert_eq!(speed(Mode::Walk, &[("highway", "tertiary")]), 4.8);
        assert_eq!(speed(Mode::Walk, &[("highway", "trunk")]), 4.0);
        assert_eq!(
            speed(Mode::Walk, &[("highway", "track")]),
            WALK_FALLBACK_KMH
        );
        assert_eq!(
            speed(Mode::Walk, &[("highway", "primary"), ("maxspeed", "30")]),
            4.5
        );
        assert_eq!(
            speed(
                Mode::Walk,
                &[("highway", "unclassified"), ("maxspeed", "3")]
            ),
            5.0
        );
        for tags in [
            &[("highway", "residential"), ("oneway", "yes")][..],
            &[("highway", "primary"), ("junction", "roundabout")][..],
            &[("highway", "trunk"), ("oneway", "-1")][..],
        ] {
            assert_eq!(
                rule(Mode::Walk, tags).unwrap().oneway,
                Oneway::Both,
                "{tags:?}"
            );
        }
    }

    #[test]
    fn bike_rules() {
        for hw in BIKE_EXCLUDED {
            assert_eq!(rule(Mode::Bike, &[("highway", hw)]), None, "{hw}");
        }
        for hw in BIKE_NEEDS_PERMISSION {
            assert_eq!(rule(Mode::Bike, &[("highway", hw)]), None, "{hw}");
            assert_eq!(
                rule(Mode::Bike, &[("highway", hw), ("bicycle", "no")]),
                None
            );
            for v in ["yes", "designated", "permissive"] {
                assert!(
                    rule(Mode::Bike, &[("highway", hw), ("bicycle", v)]).is_some(),
                    "{hw} {v}"
                );
            }
        }
        assert_eq!(
            speed(Mode::Bike, &[("highway", "footway"), ("bicycle", "yes")]),
            8.0
        );
        assert_eq!(
            speed(Mode::Bike, &[("highway", "steps"), ("bicycle", "yes")]),
            15.0
        );
        let blocked: &[&[(&str, &str)]] = &[
            &[("highway", "cycleway"), ("bicycle", "no")],
            &[("highway", "residential"), ("bicycle", "no")],
            &[("highway", "residential"), ("access", "private")],
            &[
                ("highway", "residential"),
                ("access", "no"),
                ("foot", "yes"),
            ],
            &[("highway", "cycleway"), ("area", "yes")],
            &[("highway", "service"), ("service", "private")],
        ];
        for tags in blocked {
            assert_eq!(rule(Mode::Bike, tags), None, "{tags:?}");
        }
        assert!(
            rule(
                Mode::Bike,
                &[("highway", "track"), ("access", "no"), ("bicycle", "yes")]
            )
            .is_some()
        );
        assert_eq!(speed(Mode::Bike, &[("highway", "cycleway")]), 18.0);
        assert_eq!(speed(Mode::Bike, &[("highway", "path")]), 12.0);
        assert_eq!(
            speed(Mode::Bike, &[("highway", "pedestrian"), ("bicycle", "yes")]),
            8.0
        );
        assert_eq!(speed(Mode::Bike, &[("highway", "residential")]), 15.0);
        assert_eq!(speed(Mode::Bike, &[("highway", "living_street")]), 10.0);
        assert_eq!(speed(Mode::Bike, &[("highway", "service")]), 12.0);
        assert_eq!(speed(Mode::Bike, &[("highway", "tertiary")]), 16.0);
        assert_eq!(speed(Mode::Bike, &[("highway", "secondary")]), 18.0);
        assert_eq!(speed(Mode::Bike, &[("highway", "primary")]), 20.0);
        assert_eq!(speed(Mode::Bike, &[("highway", "trunk")]), 15.0);
        assert_eq!(
            speed(Mode::Bike, &[("highway", "track")]),
            BIKE_FALLBACK_KMH
        );
        assert_eq!(
            speed(Mode::Bike, &[("highway", "primary"), ("maxspeed", "100")]),
            20.0
        );
        assert_eq!(
            rule(Mode::Bike, &[("highway", "residential"), ("oneway", "yes")])
                .unwrap()
                .oneway,
            Oneway::Both
        );
    }

    #[test]
    fn caps_hold_for_every_table_entry() {
        let all = [
            "motorway",
            "trunk",
            "primary",
            "secondary",
            "tertiary",
            "residential",
            "service",
            "cycleway",
            "path",
            "footway",
            "living_street",
            "unclassified",
            "road",
        ];
        for hw in all {
            let tags = [
                ("highway", hw),
                ("foot", "yes"),
                ("bicycle", "yes"),
                ("maxspeed", "120"),
            ];
            if let Some(r) = rule(Mode::Walk, &tags) {
                assert!(r.speed_kmh > 0.0 && r.speed_kmh <= WALK_MAX_KMH, "{hw}");
            }
            if let Some(r) = rule(Mode::Bike, &tags) {
                assert!(r.speed_kmh > 0.0 && r.speed_kmh <= BIKE_MAX_KMH, "{hw}");
            }
        }
    }
}
