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
        Command::Watch(args) => watch(&args, cli.quiet),
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

/// `socialmapper watch`: until the input ends, is idle, or Ctrl-C / SIGTERM asks to stop.
fn watch(args: &socialmapper::cli::WatchArgs, quiet: bool) -> socialmapper::Result<()> {
    use socialmapper::watch::{Input, WatchOptions};
    let idle_exit = match args.idle_exit {
        Some(s) if !(s.is_finite() && s >= 0.0) => {
            return Err(socialmapper::Error::Config(format!(
                "--idle-exit {s}: expected a number of seconds, 0 or more"
            )));
        }
        s => s.map(std::time::Duration::from_secs_f64),
    };
    let opts = WatchOptions {
        checkpoint: args.checkpoint.clone(),
        input: if args.input.as_os_str() == "-" {
            Input::Stdin
        } else {
            Input::File(args.input.clone())
        },
        epoch_events: usize::try_from(args.epoch_events).unwrap_or(usize::MAX),
        epoch_ms: args.epoch_ms,
        poll_ms: args.poll_ms,
        idle_exit,
        quiet,
    };
    stop_on_signals();
    let s = socialmapper::watch::watch(&opts, &STOP)?;
    if !quiet {
        eprintln!(
            "watch: {} epochs, {} lines ({} malformed){}",
            s.epochs,
            s.lines,
            s.malformed,
            if s.stopped { "; stopped" } else { "" }
        );
    }
    Ok(())
}

/// Raised by SIGINT or SIGTERM: `watch` applies the events it has read and returns.
static STOP: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Makes SIGINT and SIGTERM raise [`STOP`] instead of killing the process, once: a second
/// signal kills it as usual (for a stop that takes too long).
fn stop_on_signals() {
    #[cfg(unix)]
    {
        extern "C" fn on_signal(signal: libc::c_int) {
            STOP.store(true, std::sync::atomic::Ordering::Relaxed);
            // SAFETY: signal() is async-signal-safe; it restores the default action.
            unsafe {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SAFETY: the handler only stores to an atomic and calls signal(), both
        // async-signal-safe.
        unsafe {
            libc::signal(libc::SIGINT, handler);
            libc::signal(libc::SIGTERM, handler);
        }
    }
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
