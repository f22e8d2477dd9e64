//! The `socialmapper` command: parse flags, run, report errors with the file and the cause.

use clap::Parser;
use socialmapper::cli::{Cli, Command, DemoArgs};
use socialmapper::config::{Analysis, RunConfig, RunSettings, TravelTimes};
use socialmapper::pipeline::{self, RunOptions};
use std::process::ExitCode;

fn main() -> ExitCode {
    limit_heap_fragmentation();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SOCIALMAPPER_LOG").unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if cli.quiet { "error" } else { "warn" })
            }),
        )
        .with_writer(std::io::stderr)
        .init();
    let show = RunOptions {
        quiet: cli.quiet,
        workers: cli.workers,
        fresh: false,
    };
    let result = match cli.command {
        Command::Run(args) => run(*args, show),
        Command::Demo(args) => demo(args, show),
        Command::Synth(args) => {
            let spec = socialmapper::synth::SynthSpec {
                nodes: args.nodes,
                pois: args.pois,
                seed: args.seed,
            };
            socialmapper::synth::write_region(&spec, &args.out).map(|s| {
                if !cli.quiet {
                    eprintln!(
                        "socialmapper: wrote {} nodes, {} ways, {} block groups, {} POIs to {}; run it with `socialmapper run {}`",
                        s.nodes,
                        s.ways,
                        s.block_groups,
                        s.pois,
                        args.out.display(),
                        args.out.join("flow.toml").display()
                    );
                }
            })
        }
        Command::Add(args) => socialmapper::incremental::Change::add_file(&args.pois)
            .and_then(|change| {
                socialmapper::incremental::update(&args.checkpoint, &change, cli.quiet)
            })
            .map(|_| ()),
        Command::Remove(args) => remove_ids(&args).and_then(|ids| {
            socialmapper::incremental::update(
                &args.checkpoint,
                &socialmapper::incremental::Change {
                    remove_ids: ids,
                    ..Default::default()
                },
                cli.quiet,
            )
            .map(|_| ())
        }),
        Command::Variables => {
            for (name, codes) in socialmapper::census::variables::known() {
                println!("{name:<28} {}", codes.join(","));
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("socialmapper: error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The ids `socialmapper remove` takes out: given, or read from a POI file's id column.
fn remove_ids(args: &socialmapper::cli::RemoveArgs) -> socialmapper::Result<Vec<String>> {
    let Some(path) = &args.pois else {
        return Ok(args.ids.clone());
    };
    let mut ids = Vec::new();
    let mut stream = socialmapper::poi::open_pois(path)?;
    while let Some(chunk) = stream.next_chunk(4096)? {
        for (_, record) in chunk {
            match record {
                Ok(p) => ids.push(p.id),
                Err(r) => ids.extend(r.id),
            }
        }
    }
    Ok(ids)
}

fn run(args: socialmapper::cli::RunArgs, show: RunOptions) -> socialmapper::Result<()> {
    let settings = match &args.flow {
        Some(flow) => RunSettings::from_flow_file(flow)?.overridden_by(args.settings()),
        None => args.settings(),
    };
    let mut cfg = RunConfig::resolve(settings)?;
    if args.no_checkpoint {
        cfg.checkpoint = None;
    }
    // The key comes from the flag or the environment only: a flow file is no place for it.
    cfg.online.census_api_key = args.census_api_key.clone().filter(|k| !k.trim().is_empty());
    pipeline::run(
        &cfg,
        RunOptions {
            fresh: args.fresh,
            ..show
        },
    )
    .map(|_| ())
}

fn demo(args: DemoArgs, show: RunOptions) -> socialmapper::Result<()> {
    let town = socialmapper::demo::synthetic_town(&socialmapper::demo::TownSpec::default());
    let analysis = Analysis::resolve(&RunSettings {
        travel_time: Some(TravelTimes::Text(args.travel_time)),
        mode: Some(args.mode),
        direction: args.direction,
        variables: Some(socialmapper::config::Variables::List(
            town.acs.variables.clone(),
        )),
        ..Default::default()
    })?;
    let inputs = pipeline::town_inputs(town);
    pipeline::execute(&analysis, inputs, &args.out, Vec::new(), show, None).map(|_| ())
}

/// Makes glibc serve every allocation of 128 KiB or more (a batch's results, a checkpoint
/// record: hundreds of KB, a few per batch) with its own mapping, returned to the system when
/// freed. By default glibc raises that threshold after the first such free and serves them
/// from its per-thread arenas, which then fragment: a million-POI run ended with ~140 MB
/// more resident than it needed, enough to break the flat-memory budget.
fn limit_heap_fragmentation() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; called first thing, before any other
    // thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
