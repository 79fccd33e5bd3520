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

/// A key value as stored in chunk bounds; mirrors the MySQL protocol's value kinds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyValue {
    Int(i64),
    UInt(u64),
    Double(f64),
    /// Text and binary keys, kept byte-exact.
    Bytes(Vec<u8>),
    /// Year, month, day, hour, minute, second, microsecond.
    DateTime([u32; 7]),
    /// Negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
}

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

/// One table's schema in the schema history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub database: String,
    pub name: String,
    /// Name, `COLUMN_TYPE`, nullable.
    pub columns: Vec<(String, String, bool)>,
    pub primary_key: Vec<String>,
    pub unique_keys: Vec<(String, Vec<String>)>,
}

impl TableSchema {
    pub fn of(catalog: &crate::plan::Catalog) -> Vec<TableSchema> {
        catalog
            .tables
            .iter()
            .map(|t| TableSchema {
                database: t.database.clone(),
                name: t.name.clone(),
                columns: t
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.column_type.clone(), c.nullable))
                    .collect(),
                primary_key: t.primary_key.clone(),
                unique_keys: t.unique_keys.clone(),
            })
            .collect()
    }

    pub fn catalog(schemas: &[TableSchema]) -> crate::plan::Catalog {
        crate::plan::Catalog {
            tables: schemas
                .iter()
                .map(|t| crate::plan::TableDef {
                    database: t.database.clone(),
                    name: t.name.clone(),
                    columns: t
                        .columns
                        .iter()
                        .map(|(name, column_type, nullable)| crate::plan::ColumnDef {
                            name: name.clone(),
                            sql_type: crate::plan::SqlType::parse(column_type),
                            column_type: column_type.clone(),
                            nullable: *nullable,
                        })
                        .collect(),
                    primary_key: t.primary_key.clone(),
                    unique_keys: t.unique_keys.clone(),
                })
                .collect(),
        }
    }
}

/// Where incremental sync starts after full sync (design.md §4, handoff).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
    /// MariaDB `gtid_binlog_pos` / MySQL `Executed_Gtid_Set`, when the server has one.
    pub gtid: Option<String>,
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
    /// Unix seconds when full sync first started, for the rate `status` shows.
    #[serde(default)]
    pub full_started_at: u64,
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
    /// The layout this file was written with (0: before MySQL positions held whole GTID sets).
    #[serde(default)]
    pub format: u32,
}

/// The checkpoint layout this build writes: MySQL positions hold the whole executed GTID set.
pub const FORMAT: u32 = 1;

impl Checkpoint {
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
        checkpoint.updated_at = unix_now();
        let io = |what: &str, e| Error::io(format!("{what} in {}", self.dir.display()), e);
        std::fs::create_dir_all(&self.dir).map_err(|e| io("cannot create the state dir", e))?;
        let bytes = serde_json::to_vec_pretty(checkpoint)
            .map_err(|e| Error::Definite(format!("cannot serialize the checkpoint: {e}")))?;
        let temp = self.dir.join("checkpoint.json.tmp");
        let mut file =
            std::fs::File::create(&temp).map_err(|e| io("cannot write the checkpoint", e))?;
        file.write_all(&bytes)
            .and_then(|_| file.sync_all())
            .map_err(|e| io("cannot write the checkpoint", e))?;
        std::fs::rename(&temp, self.path()).map_err(|e| io("cannot replace the checkpoint", e))?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(())
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
