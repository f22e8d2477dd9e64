//! `socialmapper watch`: a finished, checkpointed run kept up to date from a stream of events.
//!
//! The input is JSON Lines, from a file that may keep growing or from standard input:
//!
//! ```text
//! {"op":"add","poi":{"id":"c-17","name":"Clinic 17","lat":38.9,"lon":-77.02,"type":"clinic"}}
//! {"op":"remove","id":"c-4"}
//! ```
//!
//! `poi` is a POI object as `run` reads JSON POI files (the same parser: extra members become
//! tags), except that `id` and `name` are required: the defaults a file gives (`custom_{i}`,
//! `Custom POI {i}`) number records within one file and mean nothing in an endless stream.
//!
//! Events are grouped into epochs — at most `epoch_events` events, and no more than
//! `epoch_ms` after the epoch's first event — and each epoch is applied with
//! [`LiveRun::apply_with`] on one [`LiveRun`] opened at the start, so the inputs and state are
//! loaded once. Its outputs (`census.csv`, `isochrones.geojson`, `changes.jsonl`,
//! `epochs.jsonl`, `rejects.csv`) are those `add` and `remove` write.
//!
//! Exactly once: an epoch commits the input position after its last event (byte offset and
//! line number for a file; lines consumed for standard input) in the same atomic checkpoint
//! write as the epoch itself. A process killed before that write loses only events it had not
//! committed, which the next start reads again; killed after it, the epoch is whole in the
//! checkpoint and [`LiveRun::open`] finishes its output edits (they are recorded with the
//! epoch and idempotent), while the position makes the next start skip its events. No event is
//! thus applied twice or lost, and `changes.jsonl` holds each epoch's records once.
//!
//! Malformed events (not JSON, an unknown `op`, missing members, bad coordinates) go to
//! `rejects.csv` as `line N` with the reason, committed with the epoch they fall in.

use crate::checkpoint::encode;
use crate::error::{Error, Result};
use crate::incremental::{Change, LiveRun};
use crate::poi::{PoiFormat, parse_pois_str};
use crate::types::Reject;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// Checkpoint keys of the positions reached: `watch/input/<absolute path>`, or
/// `watch/input/-` for standard input. Each input has its own, so watching a second file
/// after a first starts at the second's beginning.
const POSITION_PREFIX: &str = "watch/input/";

/// Where the events come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A file, read as it grows.
    File(PathBuf),
    /// Standard input, until its end.
    Stdin,
}

/// How `watch` reads and groups events.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// The run's checkpoint directory.
    pub checkpoint: PathBuf,
    /// The event stream.
    pub input: Input,
    /// An epoch holds at most this many events (at least 1).
    pub epoch_events: usize,
    /// An epoch is applied at the latest this long after its first event arrived.
    pub epoch_ms: u64,
    /// How often a file is read again once its end is reached.
    pub poll_ms: u64,
    /// Stop once the input has brought no event for this long (standard input also stops at
    /// its end). `None`: a file is watched until `stop` is raised.
    pub idle_exit: Option<Duration>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            checkpoint: PathBuf::new(),
            input: Input::Stdin,
            epoch_events: 1000,
            epoch_ms: 1000,
            poll_ms: 200,
            idle_exit: None,
            quiet: false,
        }
    }
}

/// What a `watch` session did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchSummary {
    /// Epochs applied by this session.
    pub epochs: u64,
    /// Lines read and committed by this session (blank ones included).
    pub lines: u64,
    /// Events rejected before reaching the run (malformed lines).
    pub malformed: u64,
    /// Whether the session ended because `stop` was raised.
    pub stopped: bool,
}

/// How far the input has been applied: the end of the last line of the last committed epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    /// Bytes from the start of the input (files; for standard input, bytes of this session's
    /// stream and not used to resume).
    offset: u64,
    /// Lines consumed: the number of the last line read, 1-based.
    line: u64,
}

/// What the reader hands the loop.
enum Item {
    /// A whole line (without its newline) and the position after it.
    Line(Vec<u8>, Position),
    /// Standard input ended.
    End,
    /// The input could not be read.
    Failed(Error),
}

/// One parsed event.
#[derive(Debug)]
enum Event {
    Add(Box<crate::types::Poi>),
    Remove(String),
    /// A malformed line, as its reject.
    Bad(Reject),
    /// A blank line.
    Nothing,
}

/// The epoch being gathered.
#[derive(Default)]
struct PendingEpoch {
    change: Change,
    /// Ids added and taken out so far in this epoch (see [`PendingEpoch::must_cut_before`]).
    added: HashSet<String>,
    removed: HashSet<String>,
    /// Events in it, malformed ones included.
    events: usize,
    malformed: u64,
    /// When its first event arrived.
    since: Option<Instant>,
    /// The position after its last line.
    end: Option<Position>,
}

impl PendingEpoch {
    /// Whether `event` must start a new epoch for the events to act as if applied one by one.
    ///
    /// An epoch takes out its removed ids first, then adds its POIs in order. That equals
    /// applying its events one by one in stream order except when a removal follows, in the
    /// same epoch, an event it depends on:
    ///
    /// * a removal of an id added earlier in the epoch: one by one it takes the new POI out;
    ///   removals-first would miss it (the id is not in the run yet) and keep the POI;
    /// * a removal of an id removed earlier in the epoch: one by one the second is rejected as
    ///   unknown; in one change the id is found once and neither is rejected.
    ///
    /// Every other mix gives the same result: a removal of an id that no earlier event of the
    /// epoch added or removed finds exactly the POIs it would find at its place in the
    /// stream (only adds can have come between, and they added other ids), and moving it
    /// ahead of adds of other ids changes nothing, since the run's outputs depend on the
    /// resulting POIs and their order only; an add after a removal of its id stays after it.
    /// Adds keep their stream order. (What differs is only the order of an epoch's lines in
    /// `rejects.csv`: unknown-id removals come before its other rejects.)
    fn must_cut_before(&self, event: &Event) -> bool {
        match event {
            Event::Remove(id) => self.added.contains(id) || self.removed.contains(id),
            _ => false,
        }
    }

    fn push(&mut self, event: Event, at: Position) {
        match event {
            Event::Add(poi) => {
                self.added.insert(poi.id.clone());
                self.change.add.push((0, Ok(*poi)));
            }
            Event::Remove(id) => {
                self.removed.insert(id.clone());
                self.change.remove_ids.push(id);
            }
            Event::Bad(reject) => {
                // A reject in the change is written to rejects.csv with the epoch (and takes
                // a sequence number, as a rejected row of a file does: only the order of the
                // POIs matters).
                self.change.add.push((0, Err(reject)));
                self.malformed += 1;
            }
            Event::Nothing => {
                // Not an event: it neither counts nor starts the epoch's clock.
                self.end = Some(at);
                return;
            }
        }
        self.events += 1;
        self.since.get_or_insert_with(Instant::now);
        self.end = Some(at);
    }
}

/// Applies the events of `opts.input` to the run checkpointed in `opts.checkpoint`, epoch by
/// epoch, until standard input ends, the input is idle for `opts.idle_exit`, or `stop` is
/// raised (then the events read so far are applied as a last epoch before returning).
///
/// # Errors
/// The run cannot be opened (see [`LiveRun::open`]); the input cannot be read, or is shorter
/// than the position committed for it (truncated or replaced); an epoch cannot be committed or
/// its outputs written. Epochs applied before the error stay applied.
pub fn watch(opts: &WatchOptions, stop: &AtomicBool) -> Result<WatchSummary> {
    let mut live = LiveRun::open(&opts.checkpoint, opts.quiet)?;
    let key = position_key(&opts.input)?;
    let start: Position = live.checkpoint().get(&key)?.unwrap_or_default();
    if !opts.quiet {
        let what = match &opts.input {
            Input::File(p) => p.display().to_string(),
            Input::Stdin => "standard input".into(),
        };
        eprintln!(
            "watch: {what} from line {} (epoch {} applied so far)",
            start.line + 1,
            live.epoch()
        );
    }
    let reader = spawn_reader(
        &opts.input,
        start,
        Duration::from_millis(opts.poll_ms.max(1)),
    )?;
    let epoch_len = Duration::from_millis(opts.epoch_ms);
    let tick = Duration::from_millis(opts.poll_ms.clamp(1, 200));
    let mut summary = WatchSummary::default();
    let mut pending = PendingEpoch::default();
    let mut last_event = Instant::now();
    let mut commit = |live: &mut LiveRun, pending: &mut PendingEpoch| -> Result<()> {
        let epoch = std::mem::take(pending);
        // Nothing, or blank lines only: nothing to apply (blank lines are read again next time).
        let Some(end) = epoch.end.filter(|_| !epoch.change.is_empty()) else {
            return Ok(());
        };
        live.apply_with(&epoch.change, vec![(key.clone(), Some(encode(&end)))])?;
        summary.epochs += 1;
        summary.lines = end.line - start.line;
        summary.malformed += epoch.malformed;
        Ok(())
    };
    let mut stopped = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            // Events already read are applied rather than read again by the next session
            // (standard input could not give them again).
            commit(&mut live, &mut pending)?;
            stopped = true;
            break;
        }
        let wait = match pending.since {
            Some(since) => (since + epoch_len).saturating_duration_since(Instant::now()),
            None => tick,
        }
        .min(tick);
        match reader.rx.recv_timeout(wait) {
            Ok(Item::Line(bytes, at)) => {
                last_event = Instant::now();
                let event = parse_event(&bytes, at.line);
                if pending.must_cut_before(&event) {
                    commit(&mut live, &mut pending)?;
                }
                pending.push(event, at);
                if pending.events >= opts.epoch_events.max(1) {
                    commit(&mut live, &mut pending)?;
                }
            }
            Ok(Item::End) => {
                commit(&mut live, &mut pending)?;
                break;
            }
            Ok(Item::Failed(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(Error::State("the input reader stopped".into()));
            }
        }
        if pending.since.is_some_and(|s| s.elapsed() >= epoch_len) {
            commit(&mut live, &mut pending)?;
        }
        if opts
            .idle_exit
            .is_some_and(|idle| last_event.elapsed() >= idle)
        {
            commit(&mut live, &mut pending)?;
            break;
        }
    }
    summary.stopped = stopped;
    Ok(summary)
}

/// The checkpoint key of `input`'s position.
fn position_key(input: &Input) -> Result<String> {
    Ok(match input {
        Input::Stdin => format!("{POSITION_PREFIX}-"),
        Input::File(p) => {
            let abs = std::fs::canonicalize(p).map_err(|e| Error::input(p, e))?;
            format!("{POSITION_PREFIX}{}", abs.display())
        }
    })
}

/// The reading thread's end of the channel. Dropping it tells a thread polling a file to
/// stop (one blocked on standard input ends with the process).
struct Reader {
    rx: Receiver<Item>,
    quit: Arc<AtomicBool>,
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.quit.store(true, Ordering::Relaxed);
    }
}

/// Starts the thread that reads `input` from `start` and hands over whole lines. A bounded
/// channel keeps it at most a few thousand lines ahead.
fn spawn_reader(input: &Input, start: Position, poll: Duration) -> Result<Reader> {
    let (tx, rx) = std::sync::mpsc::sync_channel(4096);
    let quit = Arc::new(AtomicBool::new(false));
    match input {
        Input::File(path) => {
            let mut file = std::fs::File::open(path).map_err(|e| Error::input(path, e))?;
            let len = file.metadata().map_err(|e| Error::input(path, e))?.len();
            if len < start.offset {
                return Err(Error::input(
                    path,
                    format!(
                        "the checkpoint has applied it up to byte {} (line {}), but it has {len} \
                         bytes: was it truncated or replaced?",
                        start.offset, start.line
                    ),
                ));
            }
            file.seek(SeekFrom::Start(start.offset))
                .map_err(|e| Error::input(path, e))?;
            let (path, quit) = (path.clone(), Some(quit.clone()));
            std::thread::spawn(move || read_lines(file, start, quit.zip(Some(poll)), &path, &tx));
        }
        Input::Stdin => {
            std::thread::spawn(move || {
                let path = PathBuf::from("<stdin>");
                let mut stdin = std::io::stdin().lock();
                // Lines committed by earlier sessions are skipped: the stream is expected to
                // start again from its beginning.
                let mut line = Vec::new();
                for _ in 0..start.line {
                    line.clear();
                    match stdin.read_until(b'\n', &mut line) {
                        Ok(0) => {
                            let _ = tx.send(Item::End);
                            return;
                        }
                        Ok(_) => {}
                        Err(e) => {
                            let _ = tx.send(Item::Failed(Error::input(&path, e)));
                            return;
                        }
                    }
                }
                read_lines(stdin, start, None, &path, &tx);
            });
        }
    }
    Ok(Reader { rx, quit })
}

/// Sends each whole line of `source` with the position after it. At the end: with `poll`
/// (a growing file), waits and reads again until `quit`, never handing over a last line
/// without its newline (it may still be being written); without, a last unterminated line
/// counts and the end is reported. Returns when the receiver is gone.
fn read_lines(
    source: impl Read,
    start: Position,
    poll: Option<(Arc<AtomicBool>, Duration)>,
    path: &Path,
    tx: &SyncSender<Item>,
) {
    let mut reader = std::io::BufReader::with_capacity(1 << 16, source);
    let mut at = start;
    let mut line = Vec::new();
    loop {
        // `read_until` appends: a partial line read at the end is completed by the next read.
        match reader.read_until(b'\n', &mut line) {
            Ok(_) if line.last() == Some(&b'\n') => {
                at.offset += line.len() as u64;
                at.line += 1;
                line.pop();
                // Blocks while the loop is busy; fails once it has returned.
                if tx.send(Item::Line(std::mem::take(&mut line), at)).is_err() {
                    return;
                }
            }
            Ok(_) => match &poll {
                Some((quit, pause)) => {
                    if quit.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(*pause);
                }
                None => {
                    if !line.is_empty() {
                        at.offset += line.len() as u64;
                        at.line += 1;
                        if tx.send(Item::Line(std::mem::take(&mut line), at)).is_err() {
                            return;
                        }
                    }
                    let _ = tx.send(Item::End);
                    return;
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Item::Failed(Error::input(
                    path,
                    format!("cannot read: {e}"),
                )));
                return;
            }
        }
    }
}

/// Parses line `n` of the stream into an event; anything malformed becomes its reject.
fn parse_event(bytes: &[u8], n: u64) -> Event {
    let source = format!("line {n}");
    let bad = |id: Option<String>, reason: String| {
        Event::Bad(Reject {
            source: source.clone(),
            id,
            reason,
        })
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return bad(None, "not valid UTF-8".into());
    };
    let text = text.trim();
    if text.is_empty() {
        return Event::Nothing;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return bad(None, format!("not JSON: {e}")),
    };
    let Value::Object(mut event) = value else {
        return bad(None, "an event is a JSON object with an \"op\"".into());
    };
    let id_of = |v: Option<&Value>| match v {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    match event.get("op").and_then(Value::as_str) {
        Some("remove") => match id_of(event.get("id")) {
            Some(id) => Event::Remove(id),
            None => bad(None, "remove needs an \"id\" (a string or a number)".into()),
        },
        Some("add") => {
            let Some(Value::Object(poi)) = event.remove("poi") else {
                return bad(None, "add needs a \"poi\" object".into());
            };
            // The members the JSON POI reader takes as the id (`ID_NAMES` in crate::poi) and
            // the name, matched as it matches them, case-insensitively.
            let member = |names: &[&str]| {
                poi.iter()
                    .find(|(k, v)| names.contains(&k.to_lowercase().as_str()) && !v.is_null())
                    .map(|(_, v)| v)
            };
            let id = id_of(member(&["id", "poi_id", "osm_id", "osm_node_id"]));
            let Some(id) = id else {
                return bad(None, "the poi has no \"id\"".into());
            };
            if member(&["name"]).is_none() {
                return bad(Some(id), "the poi has no \"name\"".into());
            }
            let list = Value::Array(vec![Value::Object(poi)]).to_string();
            match parse_pois_str(&list, PoiFormat::Json, &source) {
                Ok(mut read) => match (read.pois.pop(), read.rejects.pop()) {
                    (Some(mut poi), _) => {
                        poi.source = source;
                        Event::Add(Box::new(poi))
                    }
                    (None, Some(r)) => bad(r.id.or(Some(id)), r.reason),
                    (None, None) => bad(Some(id), "the poi could not be read".into()),
                },
                Err(e) => bad(Some(id), e.to_string()),
            }
        }
        Some(other) => bad(
            id_of(event.get("id")),
            format!("unknown op {other:?} (expected \"add\" or \"remove\")"),
        ),
        None => bad(
            id_of(event.get("id")),
            "no \"op\" (expected \"add\" or \"remove\")".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: Event) -> String {
        match e {
            Event::Bad(r) => {
                assert_eq!(r.source, "line 7");
                r.reason
            }
            other => panic!("not a reject: {other:?}"),
        }
    }

    #[test]
    fn events_parse_and_malformed_ones_say_why() {
        let add = br#"{"op":"add","poi":{"id":"a1","name":"A","lat":38.9,"lon":-77.0,"kind":"x"}}"#;
        let Event::Add(p) = parse_event(add, 7) else {
            panic!("not an add")
        };
        assert_eq!(
            (p.id.as_str(), p.name.as_str(), p.lat, p.lon),
            ("a1", "A", 38.9, -77.0)
        );
        assert_eq!(p.tags.get("kind").map(String::as_str), Some("x"));
        assert_eq!(p.source, "line 7");
        assert!(
            matches!(parse_event(br#"{"op":"remove","id":17}"#, 7), Event::Remove(id) if id == "17")
        );
        assert!(matches!(parse_event(b"   \r", 7), Event::Nothing));
        for (line, why) in [
            (&b"nope"[..], "not JSON"),
            (b"[1]", "JSON object"),
            (br#"{"op":"frob","id":"a"}"#, "unknown op"),
            (br#"{"id":"a"}"#, "no \"op\""),
            (br#"{"op":"remove"}"#, "needs an \"id\""),
            (br#"{"op":"add"}"#, "\"poi\" object"),
            (
                br#"{"op":"add","poi":{"name":"n","lat":1,"lon":2}}"#,
                "no \"id\"",
            ),
            (
                br#"{"op":"add","poi":{"id":"a","lat":1,"lon":2}}"#,
                "no \"name\"",
            ),
            (
                br#"{"op":"add","poi":{"id":"a","name":"n","lat":"x","lon":2}}"#,
                "not a number",
            ),
            (
                br#"{"op":"add","poi":{"id":"a","name":"n","lat":91,"lon":2}}"#,
                "out of range",
            ),
            (
                br#"{"op":"add","poi":{"id":"a","name":"n","lon":2}}"#,
                "missing",
            ),
            (b"\xff\xfe", "UTF-8"),
        ] {
            let r = reason(parse_event(line, 7));
            assert!(r.contains(why), "{}: {r}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn an_epoch_is_cut_before_a_removal_of_an_id_it_added_or_removed() {
        let mut p = PendingEpoch::default();
        let at = Position::default();
        let add = |id: &str| {
            parse_event(
                format!(r#"{{"op":"add","poi":{{"id":"{id}","name":"n","lat":1,"lon":2}}}}"#)
                    .as_bytes(),
                1,
            )
        };
        p.push(Event::Remove("x".into()), at);
        assert!(!p.must_cut_before(&add("x")), "re-adding a removed id");
        p.push(add("a"), at);
        assert!(!p.must_cut_before(&Event::Remove("b".into())));
        assert!(p.must_cut_before(&Event::Remove("a".into())));
        assert!(p.must_cut_before(&Event::Remove("x".into())));
    }
}
