//! `socialmapper synth`: a deterministic synthetic region of any size — a road network written
//! as a real `.osm.pbf`, block groups as GeoJSON, ACS values as CSV, POIs as CSV and a
//! `flow.toml` that `socialmapper run DIR/flow.toml` takes as it is — for benchmarks far beyond
//! the DC extract. The region is the demo town ([`crate::demo`]) grown to the requested size.

use crate::demo::{TownSpec, synthetic_town};
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSpec {
    /// Approximate number of road nodes.
    pub nodes: usize,
    /// Number of POIs on the network (one more, off the network, shows up in the rejects).
    pub pois: usize,
    /// Seed of every random choice: the same spec gives the same files.
    pub seed: u64,
}

/// What was written.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSummary {
    /// OSM nodes and ways written.
    pub nodes: usize,
    /// Ways written.
    pub ways: usize,
    /// Block groups written.
    pub block_groups: usize,
    /// POIs written.
    pub pois: usize,
}

/// Writes the region of `spec` into `dir`: `roads.osm.pbf`, `block_groups.geojson`, `acs.csv`,
/// `pois.csv` and `flow.toml`.
pub fn write_region(spec: &SynthSpec, dir: &Path) -> Result<SynthSummary> {
    std::fs::create_dir_all(dir).map_err(|e| Error::output(dir, e))?;
    let town = synthetic_town(&TownSpec {
        poi_count: spec.pois,
        seed: spec.seed,
        ..TownSpec::with_nodes(spec.nodes)
    });
    crate::osm::pbf_write::write_roads(&dir.join("roads.osm.pbf"), &town.roads)?;

    let path = dir.join("block_groups.geojson");
    write_file(&path, |w| {
        w.write_all(b"{\"type\":\"FeatureCollection\",\"features\":[")?;
        for (k, bg) in town.block_groups.iter().enumerate() {
            let geometry = geojson::Geometry::new(geojson::GeometryValue::from(&bg.boundary));
            let props = serde_json::json!({ "GEOID": bg.geoid });
            write!(
                w,
                "{}\n{{\"type\":\"Feature\",\"properties\":{props},\"geometry\":{}}}",
                if k > 0 { "," } else { "" },
                serde_json::to_string(&geometry).map_err(std::io::Error::other)?
            )?;
        }
        w.write_all(b"\n]}\n")
    })?;

    let path = dir.join("acs.csv");
    write_file(&path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        let mut header = vec!["GEOID".to_string()];
        header.extend(town.acs.variables.iter().cloned());
        csv.write_record(&header)?;
        let mut geoids: Vec<&String> = town.acs.rows.keys().collect();
        geoids.sort();
        for g in geoids {
            let mut rec = vec![g.clone()];
            rec.extend(town.acs.rows[g].iter().map(|v| {
                v.map(|x| format!("{x}"))
                    .unwrap_or_else(|| "-666666666".into())
            }));
            csv.write_record(&rec)?;
        }
        csv.flush()
    })?;

    let path = dir.join("pois.csv");
    write_file(&path, |w| {
        let mut csv = csv::Writer::from_writer(w);
        csv.write_record(["id", "name", "type", "lat", "lon"])?;
        for p in &town.pois {
            csv.write_record([
                p.id.as_str(),
                p.name.as_str(),
                p.kind.as_str(),
                &format!("{:.7}", p.lat),
                &format!("{:.7}", p.lon),
            ])?;
        }
        csv.flush()
    })?;

    let path = dir.join("flow.toml");
    let vars: Vec<String> = town
        .acs
        .variables
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect();
    write_file(&path, |w| {
        write!(
            w,
            "# A synthetic region made by `socialmapper synth --nodes {} --pois {} --seed {}`.\n\
             pois = \"pois.csv\"\nnetwork = \"roads.osm.pbf\"\nblock_groups = \"block_groups.geojson\"\n\
             acs = \"acs.csv\"\ntravel_time = [15]\nmode = \"drive\"\nvariables = [{}]\nout = \"out\"\n",
            spec.nodes,
            spec.pois,
            spec.seed,
            vars.join(", ")
        )
    })?;
    Ok(SynthSummary {
        nodes: town.roads.nodes.len(),
        ways: town.roads.ways.len(),
        block_groups: town.block_groups.len(),
        pois: town.pois.len(),
    })
}

fn write_file(path: &Path, f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    crate::output::write_atomic(path, f)
}
