//! Positions in the source: where a binlog stream stands (file and offset, GTID sets of both
//! flavors) and where a snapshot chunk starts and ends (key values). They sit low in the house:
//! `project` validates `start_gtid` with them, `source` reads from them, `sink` commits them with
//! the data and `checkpoint` stores them — and this module imports none of those.

pub mod gtid;

use serde::{Deserialize, Serialize};

/// A point in the binlog: the handoff, where a stream resumes, a transaction's end — or a point
/// inside a large transaction, which is sent as it is read: the transaction starting at `file`
/// and `pos` (and after `gtid`), of which the first `row_events` row events were delivered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BinlogPosition {
    pub file: String,
    pub pos: u64,
    /// MariaDB `gtid_binlog_pos` / MySQL `Executed_Gtid_Set`, when the server has one.
    pub gtid: Option<String>,
    /// Row events of the transaction starting here already delivered; 0 at a transaction
    /// boundary (and in checkpoints written before large transactions were split).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub row_events: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl BinlogPosition {
    /// The start of the binlog file `file`.
    pub fn at(file: &str, pos: u64) -> BinlogPosition {
        BinlogPosition {
            file: file.to_string(),
            pos,
            ..BinlogPosition::default()
        }
    }
}

impl std::fmt::Display for BinlogPosition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)?;
        if self.row_events > 0 {
            write!(f, " (+{} row events)", self.row_events)?;
        }
        Ok(())
    }
}

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

/// A primary-key range of a snapshot chunk: rows with `lower < key <= upper`; `None` is
/// unbounded.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRange {
    pub lower: Option<Vec<KeyValue>>,
    pub upper: Option<Vec<KeyValue>>,
}
