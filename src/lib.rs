//! SocialMapper: who can reach these places, and how far are they?
//!
//! Points of interest flow through `cluster → network-fetch → isochrone → distance → census
//! join → sinks`. Each stage is a function of a batch of POIs with serializable results, so that
//! the same code runs sequentially, as timely/differential operators, and from checkpoints.

#![warn(missing_docs)]

pub mod census;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod dataflow;
pub mod demo;
pub mod error;
pub mod geom;
pub mod graph;
pub mod incremental;
pub mod online;
pub mod osm;
pub mod output;
pub mod pipeline;
pub mod poi;
pub mod stages;
pub mod synth;
pub mod testdata;
pub mod types;
pub mod watch;

pub use error::{Error, Result};
