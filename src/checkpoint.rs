//! The checkpoint: what a rerun may skip. Stored as JSON in the state dir (default
//! `.tributary/<project>/checkpoint.json`), written atomically (temp file, fsync, rename).
//!
//! Correctness argument: a full-sync chunk is marked done only after Kafka acknowledged every
//! message produced from it (the pipeline awaits the chunk's delivery count before it reports the
//! chunk), and the file is replaced atomically, so after any crash the checkpoint names only
//! chunks whose rows are all in Kafka. A rerun re-reads the unfinished chunks: rows that were in
//! flight when the process died may be sent twice, never lost. The handoff position is recorded
//! before the first chunk is read, so incremental sync starting there misses nothing the
//! snapshot could have missed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::position::{BinlogPosition, KeyRange, KeyValue};
use crate::source::history::TableSchema;

/// A primary-key range: rows with `lower < key <= upper`; `None` is unbounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub lower: Option<Vec<KeyValue>>,
    pub upper: Option<Vec<KeyValue>>,
    pub done: bool,
    /// Rows read from the source for this chunk (after it finished).
    #[serde(default)]
    pub rows: u64,
}

impl Chunk {
    /// A planned chunk, not read yet.
    pub fn planned(range: KeyRange) -> Chunk {
        Chunk {
            lower: range.lower,
            upper: range.upper,
            done: false,
            rows: 0,
        }
    }

    /// The key range the chunk covers.
    pub fn range(&self) -> KeyRange {
        KeyRange {
            lower: self.lower.clone(),
            upper: self.upper.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableProgress {
    /// The planned chunks; empty until the table's chunks are planned.
    pub chunks: Vec<Chunk>,
    /// The source's row estimate when the chunks were planned (for progress only).
    pub rows_estimate: u64,
}

impl TableProgress {
    pub fn rows_done(&self) -> u64 {
        self.chunks.iter().filter(|c| c.done).map(|c| c.rows).sum()
    }

    pub fn is_done(&self) -> bool {
        !self.chunks.is_empty() && self.chunks.iter().all(|c| c.done)
    }
}

/// An online snapshot: a table's rows sent while the stream flows (a table new to the project,
/// or `tributary snapshot`), chunk by chunk (see `pipeline::online`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineSnapshot {
    /// Unique within the checkpoint: what progress records name.
    pub id: u64,
    /// `db.table`.
    pub table: String,
    /// Only the rows matching this condition (`snapshot --where`), evaluated by the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// Why: "new to the project", "requested".
    pub reason: String,
    /// The planned chunks; empty until planned.
    #[serde(default)]
    pub chunks: Vec<Chunk>,
    #[serde(default)]
    pub rows_estimate: u64,
}

impl OnlineSnapshot {
    pub fn planned(&self) -> bool {
        !self.chunks.is_empty()
    }

    pub fn rows_done(&self) -> u64 {
        self.chunks.iter().filter(|c| c.done).map(|c| c.rows).sum()
    }
}

/// `tributary snapshot`: tables to send again, whole or the rows matching `condition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRequest {
    pub tables: Vec<String>,
    #[serde(default)]
    pub condition: Option<String>,
}

/// What a synced table was sent with, to tell a changed SYNC statement on the next run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncedTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    pub columns: Vec<String>,
}

/// One step of acknowledged progress: the only way the checkpoint moves while a run sends
/// (see [`Checkpoint::record`]), and, with `exactly_once`, what a Kafka transaction commits with
/// the messages it covers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Progress {
    /// A full-sync chunk: all of its messages are in this transaction.
    Chunk {
        table: String,
        chunk: usize,
        rows: u64,
    },
    /// Incremental sync: every source transaction up to `position` is in this or an earlier
    /// transaction.
    Incremental {
        /// With `exactly_once`, which Kafka transaction of incremental sync this is (1, 2,
        /// ...); 0 for progress Kafka acknowledged outside of that count (always recorded).
        commit: u64,
        position: BinlogPosition,
        /// Commit time (Unix seconds) of the last transaction.
        committed: u64,
        /// Messages sent by incremental sync over all runs, this transaction's included.
        changes: u64,
    },
    /// The schema history after a DDL in this transaction.
    Schemas {
        commit: u64,
        schemas: Vec<TableSchema>,
    },
    /// An XA transaction was prepared; `at` is where its rows are read again at its commit
    /// (`None`: it changed none of the project's tables).
    XaPrepared {
        commit: u64,
        xid: String,
        at: Option<BinlogPosition>,
    },
    /// A prepared XA transaction was committed (and its rows sent) or rolled back.
    XaFinished { commit: u64, xid: String },
    /// A chunk of online snapshot `id`: all of its messages are in this transaction.
    OnlineChunk {
        commit: u64,
        id: u64,
        chunk: usize,
        rows: u64,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub project: String,
    pub schema_done: bool,
    /// Recorded before full sync reads anything; `None` when the source has no binlog.
    pub handoff: Option<BinlogPosition>,
    pub full_done: bool,
    /// Where incremental sync continues: the end of the last transaction whose messages Kafka
    /// all acknowledged.
    #[serde(default)]
    pub incremental: Option<BinlogPosition>,
    /// Commit time (Unix seconds) of the last acknowledged transaction, for the lag `status` shows.
    #[serde(default)]
    pub incremental_committed: u64,
    /// Row changes sent by incremental sync over all runs, and when it first started, for the
    /// rate `status` shows.
    #[serde(default)]
    pub incremental_changes: u64,
    #[serde(default)]
    pub incremental_started_at: u64,
    /// The source's table schemas as of `incremental`: a restart decodes the events after it
    /// with the schemas they were written with, not today's.
    #[serde(default)]
    pub schemas: Option<Vec<TableSchema>>,
    /// XA transactions prepared before `incremental` and not yet committed or rolled back:
    /// where to read their rows again at the commit (`None`: nothing of the project's).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prepared_xa: BTreeMap<String, Option<BinlogPosition>>,
    /// Unix seconds when full sync first started, for the rate `status` shows.
    #[serde(default)]
    pub full_started_at: u64,
    /// Milliseconds full sync and incremental sync have run, over all runs (pauses left out):
    /// what `status` divides by, so its rates match those a run prints.
    #[serde(default)]
    pub full_millis: u64,
    #[serde(default)]
    pub incremental_millis: u64,
    pub tables: BTreeMap<String, TableProgress>,
    /// Unix seconds of the last write, for `status`.
    pub updated_at: u64,
    /// With `exactly_once`: the id under which this checkpoint's progress is committed to the
    /// state topic (see `sink::transactions`).
    #[serde(default)]
    pub run_id: String,
    /// With `exactly_once`: how many Kafka transactions of incremental sync the state below
    /// includes; the state topic's records overlay only what is newer.
    #[serde(default)]
    pub exactly_once_commits: u64,
    /// The tables the project synced when it last streamed, and how: a table new to the
    /// project gets an online snapshot (`None`: a checkpoint from before tributary kept them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced: Option<BTreeMap<String, SyncedTable>>,
    /// Online snapshots requested and not finished, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub online: Vec<OnlineSnapshot>,
    #[serde(default)]
    pub next_online_id: u64,
    /// The layout this file was written with (0: before MySQL positions held whole GTID sets).
    #[serde(default)]
    pub format: u32,
}

/// The checkpoint layout this build writes: MySQL positions hold the whole executed GTID set.
pub const FORMAT: u32 = 1;

impl Checkpoint {
    /// Moves the checkpoint by one step of acknowledged progress. A step older than what the
    /// checkpoint already holds (an exactly-once commit number below its own: a state-topic
    /// record read past a newer file) is ignored; a chunk it does not know too.
    pub fn record(&mut self, progress: Progress) {
        match progress {
            Progress::Chunk { table, chunk, rows } => {
                if let Some(c) = self
                    .tables
                    .get_mut(&table)
                    .and_then(|t| t.chunks.get_mut(chunk))
                {
                    c.done = true;
                    c.rows = rows;
                }
            }
            Progress::Incremental {
                commit,
                position,
                committed,
                changes,
            } if commit == 0 || commit > self.exactly_once_commits => {
                self.incremental = Some(position);
                self.incremental_committed = committed;
                self.incremental_changes = changes;
                self.exactly_once_commits = self.exactly_once_commits.max(commit);
            }
            // Written with the position of the same commit, which may come first.
            Progress::Schemas { commit, schemas }
                if commit == 0 || commit >= self.exactly_once_commits =>
            {
                self.schemas = Some(schemas)
            }
            Progress::XaPrepared { commit, xid, at }
                if commit == 0 || commit >= self.exactly_once_commits =>
            {
                self.prepared_xa.insert(xid, at);
            }
            Progress::XaFinished { commit, xid }
                if commit == 0 || commit >= self.exactly_once_commits =>
            {
                self.prepared_xa.remove(&xid);
            }
            Progress::OnlineChunk {
                commit,
                id,
                chunk,
                rows,
            } if commit == 0 || commit >= self.exactly_once_commits => {
                if let Some(c) = self
                    .online
                    .iter_mut()
                    .find(|s| s.id == id)
                    .and_then(|s| s.chunks.get_mut(chunk))
                {
                    c.done = true;
                    c.rows = rows;
                }
                // A finished snapshot leaves the list; `status` shows the ones still going.
                self.online
                    .retain(|s| !(s.id == id && s.chunks.iter().all(|c| c.done)));
            }
            Progress::Incremental { .. }
            | Progress::Schemas { .. }
            | Progress::XaPrepared { .. }
            | Progress::XaFinished { .. }
            | Progress::OnlineChunk { .. } => {}
        }
    }

    /// Brings a checkpoint of an older layout up to [`FORMAT`].
    pub fn upgrade(&mut self, source: crate::project::SourceKind) {
        if self.format >= FORMAT {
            return;
        }
        // Older builds kept only a MySQL stream's last GTID, not its executed set: resuming from
        // it by GTID would replay the binlog. The file and position still hold.
        if source != crate::project::SourceKind::MariaDb
            && let Some(position) = &mut self.incremental
        {
            position.gtid = None;
        }
        self.format = FORMAT;
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A run's checkpoint and where it is saved: every change of the checkpoint during a run goes
/// through here. Progress is recorded as it is acknowledged; the file is written when a caller
/// asks (a state transition, a pause, the end) or at most every [`SAVE_EVERY`] while progress
/// streams in — so the bytes a run writes grow with its duration, not with the square of its
/// chunk count. The write itself (and its fsync) runs on a blocking thread.
pub struct Checkpointer {
    state: Checkpoint,
    store: Store,
    saved_at: std::time::Instant,
    dirty: bool,
    /// The phase whose running time each save brings up to date, since when, and its time
    /// before this run.
    clock: Option<(Clock, std::time::Instant, u64)>,
}

/// A phase whose running time the checkpoint keeps (`full_millis`, `incremental_millis`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Full,
    Incremental,
}

/// How often recorded progress is written while it streams in.
pub const SAVE_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

impl Checkpointer {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn new(state: Checkpoint, store: Store) -> Checkpointer {
        Checkpointer {
            state,
            store,
            saved_at: std::time::Instant::now(),
            dirty: false,
            clock: None,
        }
    }

    /// From now on, saves count the time `phase` runs.
    pub fn start_clock(&mut self, phase: Clock) {
        let before = match phase {
            Clock::Full => self.state.full_millis,
            Clock::Incremental => self.state.incremental_millis,
        };
        self.clock = Some((phase, std::time::Instant::now(), before));
    }

    /// The phase ended: its time is final (saved with the next save).
    pub fn stop_clock(&mut self) {
        self.tick();
        self.clock = None;
    }

    fn tick(&mut self) {
        if let Some((phase, since, before)) = self.clock {
            let millis = before + since.elapsed().as_millis() as u64;
            match phase {
                Clock::Full => self.state.full_millis = millis,
                Clock::Incremental => self.state.incremental_millis = millis,
            }
        }
    }

    pub fn state(&self) -> &Checkpoint {
        &self.state
    }

    /// The checkpoint to change in place (a state transition), to be saved next.
    pub fn state_mut(&mut self) -> &mut Checkpoint {
        self.dirty = true;
        &mut self.state
    }

    /// Changes the checkpoint outside of progress (a state transition), to be saved next.
    pub fn update(&mut self, change: impl FnOnce(&mut Checkpoint)) {
        change(&mut self.state);
        self.dirty = true;
    }

    /// Records acknowledged progress; saved within [`SAVE_EVERY`] by [`Checkpointer::save_due`].
    pub fn record(&mut self, progress: Progress) {
        self.state.record(progress);
        self.dirty = true;
    }

    /// Writes the checkpoint now.
    pub async fn save(&mut self) -> Result<()> {
        self.tick();
        let bytes = Store::serialize(&mut self.state)?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.write(&bytes))
            .await
            .map_err(|e| Error::Definite(format!("saving the checkpoint failed: {e}")))??;
        self.saved_at = std::time::Instant::now();
        self.dirty = false;
        Ok(())
    }

    /// Writes the checkpoint if it changed and the last write is [`SAVE_EVERY`] old.
    pub async fn save_due(&mut self) -> Result<()> {
        if self.dirty && self.saved_at.elapsed() >= SAVE_EVERY {
            self.save().await?;
        }
        Ok(())
    }
}

/// A run's hold on its state dir; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _file: std::fs::File,
}

/// The state directory of one project.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(state_dir: Option<&Path>, project: &str) -> Store {
        let dir = match state_dir {
            Some(dir) => dir.to_path_buf(),
            None => Path::new(".tributary").join(project),
        };
        Store { dir }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("checkpoint.json")
    }

    /// The saved checkpoint, or `None` when the project has not run yet.
    pub fn load(&self) -> Result<Option<Checkpoint>> {
        let path = self.path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Definite(format!(
                    "checkpoint {} is damaged ({e}); `tributary reset` forgets it (the next run \
                     starts over)",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
        }
    }

    /// Replaces the checkpoint atomically: a crash leaves the old or the new file, never half.
    pub fn save(&self, checkpoint: &mut Checkpoint) -> Result<()> {
        let bytes = Self::serialize(checkpoint)?;
        self.write(&bytes)
    }

    /// The file's bytes: compact JSON, stamped with the time of the save.
    fn serialize(checkpoint: &mut Checkpoint) -> Result<Vec<u8>> {
        checkpoint.updated_at = unix_now();
        serde_json::to_vec(checkpoint)
            .map_err(|e| Error::Definite(format!("cannot serialize the checkpoint: {e}")))
    }

    fn write(&self, bytes: &[u8]) -> Result<()> {
        let io = |what: &str, e| Error::io(format!("{what} in {}", self.dir.display()), e);
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create the state dir", e))?;
        let temp = self.dir.join("checkpoint.json.tmp");
        let mut file =
            std::fs::File::create(&temp).map_err(|e| io("cannot write the checkpoint", e))?;
        file.write_all(bytes)
            .and_then(|_| file.sync_all())
            .map_err(|e| io("cannot write the checkpoint", e))?;
        std::fs::rename(&temp, self.path()).map_err(|e| io("cannot replace the checkpoint", e))?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Takes the state dir for one run: a second `run` of the project (or any run with the same
    /// state dir) is refused, naming the holder's pid, until this one ends. The lock is the
    /// operating system's, so it goes with the process however that ends.
    pub fn lock(&self) -> Result<StateLock> {
        let io = |what: &str, e| Error::io(format!("{what} in {}", self.dir.display()), e);
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create the state dir", e))?;
        let path = self.dir.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io("cannot open the lock file", e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::Config(format!(
                    "the state dir {} is in use by another run (pid {}); stop that run first, or \
                     give this one its own --state-dir",
                    self.dir.display(),
                    if holder.is_empty() { "unknown" } else { holder }
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io("cannot lock the state dir", e)),
        }
        file.set_len(0)
            .and_then(|_| writeln!(file, "{}", std::process::id()))
            .map_err(|e| io("cannot write the lock file", e))?;
        Ok(StateLock { _file: file })
    }

    fn requests_dir(&self) -> PathBuf {
        self.dir.join("requests")
    }

    /// Records a `tributary snapshot` request for the run to pick up: a file of its own,
    /// written whole and renamed into place, so it needs no lock and a reader never sees half.
    pub fn request_snapshot(&self, request: &SnapshotRequest) -> Result<PathBuf> {
        let dir = self.requests_dir();
        let io = |what: &str, e| Error::io(format!("{what} in {}", dir.display()), e);
        std::fs::create_dir_all(&dir).map_err(|e| io("cannot create the requests dir", e))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let name = format!("{nanos}-{}", std::process::id());
        let temp = dir.join(format!(".{name}.tmp"));
        let path = dir.join(format!("{name}.json"));
        let bytes = serde_json::to_vec(request)
            .map_err(|e| Error::Definite(format!("cannot serialize the request: {e}")))?;
        std::fs::write(&temp, bytes).map_err(|e| io("cannot write the request", e))?;
        std::fs::rename(&temp, &path).map_err(|e| io("cannot write the request", e))?;
        Ok(path)
    }

    /// The snapshot requests waiting, oldest first, with their files (removed once the
    /// checkpoint holds them). A file that does not parse is named and left alone.
    pub fn snapshot_requests(&self) -> Vec<(PathBuf, SnapshotRequest)> {
        let Ok(entries) = std::fs::read_dir(self.requests_dir()) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .filter_map(|path| {
                let parsed = std::fs::read(&path)
                    .ok()
                    .and_then(|bytes| serde_json::from_slice(&bytes).ok());
                if parsed.is_none() {
                    tracing::warn!(file = %path.display(), "a snapshot request that does not parse is left alone");
                }
                parsed.map(|request| (path, request))
            })
            .collect()
    }

    /// Forgets the checkpoint: the next run starts over.
    pub fn reset(&self) -> Result<bool> {
        match std::fs::remove_file(self.path()) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io(
                format!("cannot remove {}", self.path().display()),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_mysql_positions_lose_their_last_gtid_but_keep_the_file() {
        let position = BinlogPosition {
            file: "mysql-bin.000007".into(),
            pos: 1234,
            gtid: Some("3e11fa47-71ca-11e1-9e33-c80aa9429562:57".into()),
            row_events: 0,
        };
        let mut old = Checkpoint {
            incremental: Some(position.clone()),
            ..Checkpoint::default()
        };
        let mut mariadb = old.clone();
        old.upgrade(crate::project::SourceKind::MySql);
        let upgraded = old.incremental.as_ref().unwrap();
        assert_eq!(
            (upgraded.file.as_str(), upgraded.pos),
            ("mysql-bin.000007", 1234)
        );
        assert_eq!(upgraded.gtid, None);
        assert_eq!(old.format, FORMAT);
        // MariaDB positions were always whole; a current checkpoint is left alone.
        mariadb.upgrade(crate::project::SourceKind::MariaDb);
        assert_eq!(mariadb.incremental, Some(position.clone()));
        let mut current = Checkpoint {
            incremental: Some(position.clone()),
            format: FORMAT,
            ..Checkpoint::default()
        };
        current.upgrade(crate::project::SourceKind::MySql);
        assert_eq!(current.incremental, Some(position));
    }

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = std::env::temp_dir().join(format!("tributary_ckpt_{}", std::process::id()));
        let store = Store::new(Some(&dir), "p");
        assert_eq!(store.load().unwrap(), None);
        let mut checkpoint = Checkpoint {
            project: "p".into(),
            handoff: Some(BinlogPosition {
                file: "mysql-bin.000001".into(),
                pos: 4,
                gtid: Some("0-1-5".into()),
                row_events: 0,
            }),
            ..Checkpoint::default()
        };
        checkpoint.tables.insert(
            "shop.orders".into(),
            TableProgress {
                chunks: vec![Chunk {
                    lower: None,
                    upper: Some(vec![
                        KeyValue::UInt(u64::MAX),
                        KeyValue::Bytes(b"a\0".to_vec()),
                    ]),
                    done: true,
                    rows: 10,
                }],
                rows_estimate: 10,
            },
        );
        store.save(&mut checkpoint).unwrap();
        assert!(!dir.join("checkpoint.json.tmp").exists());
        assert_eq!(store.load().unwrap(), Some(checkpoint));
        assert!(store.reset().unwrap());
        assert_eq!(store.load().unwrap(), None);
        std::fs::write(store.path(), b"{not json").unwrap();
        assert!(
            store
                .load()
                .unwrap_err()
                .to_string()
                .contains("tributary reset")
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
