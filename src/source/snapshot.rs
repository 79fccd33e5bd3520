//! Full sync's reader: the handoff position, primary-key range chunks, and consistent-snapshot
//! reads of one chunk over the binary protocol, row by row to a [`RowHandler`] (the batch stage
//! builds the Arrow batches).
//!
//! Chunks are planned once per table and stored in the checkpoint, so a rerun reads the same
//! ranges and skips the finished ones. Each holds at most `chunk_rows` rows of the table as
//! planned: a dense integer key is cut every `chunk_rows` values, any other key is walked
//! (`ORDER BY key LIMIT 1 OFFSET chunk_rows - 1`; see [`plan_chunks`]). A table without a key is
//! one chunk, one scan that cannot resume midway. Each chunk is read in its own
//! `START TRANSACTION WITH CONSISTENT SNAPSHOT`; chunks are
//! not consistent with each other, which is why the binlog position is taken before the first
//! chunk: incremental sync replays everything after it (design.md §4, handoff).

use mysql_async::prelude::*;
use mysql_async::{Conn, Params, Value};

use super::query_error;
use crate::error::{Error, Result};
use crate::plan::TablePlan;
use crate::position::{BinlogPosition, KeyRange, KeyValue};
use crate::project::{SourceDef, SourceKind};

/// A reader's connection: `conn`, or a new one prepared for reading when it is `None` (the
/// last one failed, or none was opened yet).
pub async fn session<'c>(conn: &'c mut Option<Conn>, source: &SourceDef) -> Result<&'c mut Conn> {
    if conn.is_none() {
        let mut new = super::connect(source).await?;
        prepare_session(&mut new, source.kind).await?;
        *conn = Some(new);
    }
    Ok(conn.as_mut().expect("connected above"))
}

/// Session settings for reading: TIMESTAMP values in UTC, and OceanBase's short default query
/// timeout lifted for long scans.
pub async fn prepare_session(conn: &mut Conn, kind: SourceKind) -> Result<()> {
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .map_err(query_error("setting the session time zone"))?;
    if kind == SourceKind::OceanBase {
        conn.query_drop("SET ob_query_timeout = 86400000000, ob_trx_timeout = 86400000000")
            .await
            .map_err(query_error("raising OceanBase's query timeout"))?;
    }
    Ok(())
}

/// The binlog position now, from the server that serves the binlog; `None` when it has none.
/// A MySQL-flavor server with `gtid_mode = ON` also gives its executed GTID set (empty when it has
/// executed nothing yet), which is where a GTID stream starts.
pub async fn binlog_position(source: &SourceDef) -> Result<Option<BinlogPosition>> {
    let mut conn = super::connect_to(source, &source.binlog_host, source.binlog_port).await?;
    // MySQL 8.4 renamed SHOW MASTER STATUS.
    let status = match conn
        .query_first::<mysql_async::Row, _>("SHOW MASTER STATUS")
        .await
    {
        Ok(row) => Ok(row),
        Err(_) if source.kind == SourceKind::OceanBase => return Ok(None),
        Err(e) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|_| e),
    };
    let row = status.map_err(query_error(
        "reading the binlog position (SHOW MASTER STATUS)",
    ))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let file: Option<String> = row.get(0);
    let pos: Option<u64> = row.get(1);
    let (Some(file), Some(pos)) = (file, pos) else {
        return Ok(None);
    };
    let gtid: Option<String> = match source.kind {
        SourceKind::MariaDb => conn
            .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
            .await
            .ok()
            .flatten()
            .filter(|g: &String| !g.is_empty()),
        _ => {
            let mode: Option<String> = conn
                .query_first("SELECT @@GLOBAL.gtid_mode")
                .await
                .ok()
                .flatten();
            let executed = row
                .get::<Option<String>, _>(4)
                .flatten()
                .unwrap_or_default();
            match mode {
                // Auto-positioning needs gtid_mode = ON; otherwise the file and position rule.
                Some(mode) if mode.eq_ignore_ascii_case("ON") => Some(executed),
                _ => None,
            }
        }
    };
    Ok(Some(BinlogPosition {
        file,
        pos,
        gtid,
        row_events: 0,
    }))
}

fn quote(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

fn table_name(table: &TablePlan) -> String {
    format!("{}.{}", quote(&table.database), quote(&table.table))
}

fn key_list(table: &TablePlan) -> String {
    table
        .key
        .iter()
        .map(|&i| quote(&table.columns[i].name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `(a, b) > (?, ?)` (or `a > ?` for one column).
fn key_compare(table: &TablePlan, op: &str) -> String {
    let placeholders = vec!["?"; table.key.len()].join(", ");
    if table.key.len() == 1 {
        format!("{} {op} ?", key_list(table))
    } else {
        format!("({}) {op} ({placeholders})", key_list(table))
    }
}

fn to_key(value: Value) -> KeyValue {
    match value {
        Value::NULL => KeyValue::Bytes(Vec::new()),
        Value::Bytes(b) => KeyValue::Bytes(b),
        Value::Int(i) => KeyValue::Int(i),
        Value::UInt(u) => KeyValue::UInt(u),
        Value::Float(f) => KeyValue::Double(f as f64),
        Value::Double(d) => KeyValue::Double(d),
        Value::Date(y, mo, d, h, mi, s, us) => KeyValue::DateTime([
            y as u32, mo as u32, d as u32, h as u32, mi as u32, s as u32, us,
        ]),
        Value::Time(neg, d, h, m, s, us) => KeyValue::Time(neg, d, h, m, s, us),
    }
}

fn from_key(value: &KeyValue) -> Value {
    match value {
        KeyValue::Int(i) => Value::Int(*i),
        KeyValue::UInt(u) => Value::UInt(*u),
        KeyValue::Double(d) => Value::Double(*d),
        KeyValue::Bytes(b) => Value::Bytes(b.clone()),
        KeyValue::DateTime([y, mo, d, h, mi, s, us]) => Value::Date(
            *y as u16, *mo as u8, *d as u8, *h as u8, *mi as u8, *s as u8, *us,
        ),
        KeyValue::Time(neg, d, h, m, s, us) => Value::Time(*neg, *d, *h, *m, *s, *us),
    }
}

/// The error of a read of `table`. Built only when one fails: it is asked for once per row read.
fn table_error<'a>(
    table: &'a TablePlan,
    what: &'a str,
) -> impl FnOnce(mysql_async::Error) -> Error + 'a {
    move |e| match &e {
        mysql_async::Error::Server(server) if server.code == 1146 => Error::Definite(format!(
            "table {} no longer exists (it was dropped during full sync): {}; remove it from the \
             project or re-create it, then rerun",
            table.qualified(),
            server.message
        )),
        _ => Error::Source {
            context: format!("{what} of table {}", table.qualified()),
            source: e,
        },
    }
}

/// Splits a table into key ranges of at most `chunk_rows` rows each (as the table is when they
/// are planned), whatever its keys look like and however wrong the source's row estimate is. A
/// table without a key is one chunk, read in one scan. Returns the chunks and the source's row
/// estimate. `stopped` is asked between the steps of an index walk: when it says yes, planning
/// ends with [`Error::Paused`].
///
/// Two ways, chosen per table (docs/full-sync.md has the measurements behind the choice):
/// - a single integer key whose MIN..MAX span is at most twice the estimate is cut every
///   `chunk_rows` key values: two index lookups, and no chunk can hold more than `chunk_rows`
///   rows because the key values are distinct integers. The estimate only picks this way; a
///   wrong one makes chunks emptier, never larger.
/// - every other key (sparse or skewed integers, text, composite keys, an estimate of 0) is
///   walked: `ORDER BY key LIMIT 1 OFFSET chunk_rows - 1` from the last bound finds each bound
///   on the keys that exist, so every chunk holds exactly `chunk_rows` rows but the last. The walk
///   reads the whole key index once.
pub async fn plan_chunks(
    conn: &mut Conn,
    table: &TablePlan,
    chunk_rows: u64,
    stopped: impl Fn() -> bool,
) -> Result<(Vec<KeyRange>, u64)> {
    let estimate: Option<u64> = conn
        .exec_first(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND \
             TABLE_NAME = ?",
            (&table.database, &table.table),
        )
        .await
        .map_err(table_error(table, "estimating the size"))?
        .flatten();
    let estimate = estimate.unwrap_or(0);
    let chunk_rows = chunk_rows.max(1);
    let whole = KeyRange {
        lower: None,
        upper: None,
    };
    if table.key.is_empty() {
        return Ok((vec![whole], estimate));
    }
    if let Some(bounds) = dense_integer_bounds(conn, table, estimate, chunk_rows).await? {
        return Ok((chunks_between(bounds), estimate));
    }
    let mut bounds: Vec<Vec<KeyValue>> = Vec::new();
    loop {
        if stopped() {
            return Err(Error::Paused);
        }
        let (filter, params) = match bounds.last() {
            Some(last) => (
                format!("WHERE {}", key_compare(table, ">")),
                Params::Positional(last.iter().map(from_key).collect()),
            ),
            None => (String::new(), Params::Empty),
        };
        let sql = format!(
            "SELECT {keys} FROM {name} {filter} ORDER BY {keys} LIMIT 1 OFFSET {offset}",
            keys = key_list(table),
            name = table_name(table),
            offset = chunk_rows - 1,
        );
        let row: Option<mysql_async::Row> = conn
            .exec_first(sql, params)
            .await
            .map_err(table_error(table, "splitting into chunks"))?;
        match row {
            Some(row) => bounds.push(row.unwrap().into_iter().map(to_key).collect()),
            None => break,
        }
    }
    Ok((chunks_between(bounds), estimate))
}

/// Chunks `(-inf, b1], (b1, b2], ..., (bn, +inf)`.
fn chunks_between(bounds: Vec<Vec<KeyValue>>) -> Vec<KeyRange> {
    let mut chunks = Vec::with_capacity(bounds.len() + 1);
    let mut lower = None;
    for bound in bounds {
        chunks.push(KeyRange {
            lower: lower.take(),
            upper: Some(bound.clone()),
        });
        lower = Some(bound);
    }
    chunks.push(KeyRange { lower, upper: None });
    chunks
}

/// The bounds `MIN + chunk_rows - 1`, `MIN + 2 * chunk_rows - 1`, ... below MAX of a single
/// integer key that is dense enough for them (MAX - MIN + 1 at most twice the estimate); `None`
/// when the key must be walked. An empty table has no bounds (one chunk).
async fn dense_integer_bounds(
    conn: &mut Conn,
    table: &TablePlan,
    estimate: u64,
    chunk_rows: u64,
) -> Result<Option<Vec<Vec<KeyValue>>>> {
    use crate::plan::SqlType::*;
    let [key] = table.key[..] else {
        return Ok(None);
    };
    let unsigned = match table.columns[key].sql_type {
        TinyInt { unsigned }
        | SmallInt { unsigned }
        | MediumInt { unsigned }
        | Int { unsigned }
        | BigInt { unsigned } => unsigned,
        _ => return Ok(None),
    };
    let column = quote(&table.columns[key].name);
    let range: Option<(Option<i128>, Option<i128>)> = conn
        .query_first(format!(
            "SELECT CAST(MIN({column}) AS CHAR), CAST(MAX({column}) AS CHAR) FROM {}",
            table_name(table)
        ))
        .await
        .map_err(table_error(table, "reading the key range"))?
        .map(|(min, max): (Option<String>, Option<String>)| {
            (
                min.and_then(|m| m.parse().ok()),
                max.and_then(|m| m.parse().ok()),
            )
        });
    let Some((Some(min), Some(max))) = range else {
        return Ok(Some(Vec::new()));
    };
    let Some(bounds) = integer_cuts(min, max, estimate, chunk_rows) else {
        return Ok(None);
    };
    Ok(Some(
        bounds
            .map(|bound| {
                vec![if unsigned {
                    KeyValue::UInt(bound as u64)
                } else {
                    KeyValue::Int(bound as i64)
                }]
            })
            .collect(),
    ))
}

/// The cuts of `min..=max` every `chunk_rows` values, when the span is at most twice the
/// estimate; `None` otherwise (or for an estimate of 0).
fn integer_cuts(
    min: i128,
    max: i128,
    estimate: u64,
    chunk_rows: u64,
) -> Option<impl Iterator<Item = i128>> {
    let span = max - min + 1;
    if estimate == 0 || span > 2 * estimate as i128 {
        return None;
    }
    let step = chunk_rows as i128;
    Some(
        (1..)
            .map(move |i| min + i * step - 1)
            .take_while(move |bound| *bound < max),
    )
}

/// A chunk's key range in SQL terms, for messages: `` `id` > 5000 AND `id` <= 10000 ``.
pub fn describe_range(table: &TablePlan, range: &KeyRange) -> String {
    let side = |op: &str, values: &[KeyValue]| {
        let values: Vec<String> = values.iter().map(key_literal).collect();
        if values.len() == 1 {
            format!("{} {op} {}", key_list(table), values[0])
        } else {
            format!("({}) {op} ({})", key_list(table), values.join(", "))
        }
    };
    let mut sides = Vec::new();
    if let Some(lower) = &range.lower {
        sides.push(side(">", lower));
    }
    if let Some(upper) = &range.upper {
        sides.push(side("<=", upper));
    }
    if sides.is_empty() {
        return "the whole table".to_string();
    }
    sides.join(" AND ")
}

/// A key value as a SQL literal, for messages.
fn key_literal(value: &KeyValue) -> String {
    match value {
        KeyValue::Int(i) => i.to_string(),
        KeyValue::UInt(u) => u.to_string(),
        KeyValue::Double(d) => d.to_string(),
        KeyValue::Bytes(b) => format!("'{}'", String::from_utf8_lossy(b).replace('\'', "''")),
        KeyValue::DateTime([y, mo, d, h, mi, s, us]) => {
            format!("'{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}'")
        }
        KeyValue::Time(negative, days, h, m, s, us) => format!(
            "'{}{}:{m:02}:{s:02}.{us:06}'",
            if *negative { "-" } else { "" },
            days * 24 + *h as u32
        ),
    }
}

/// What a chunk reader hands its rows to: the batch stage, which builds them into Arrow batches
/// and passes each full one on down the flow.
pub trait RowHandler {
    /// Takes one row (every column of the table, in order); `true` when a batch is full and
    /// [`RowHandler::flush`] should pass it on.
    fn push(&mut self, values: &[Value]) -> Result<bool>;

    /// Passes on the rows taken so far (nothing when there are none).
    fn flush(&mut self) -> impl std::future::Future<Output = Result<()>> + Send;
}

/// Reads one chunk in a consistent snapshot, handing each row (all table columns, in key order)
/// to `handler`; with a `condition` (SQL, a re-snapshot's `--where`), only the rows the source
/// finds matching it. Returns the rows read.
/// `sees`: the snapshot must hold every transaction up to this binlog position (an online
/// chunk read while the stream stands there); see [`start_snapshot_seeing`].
pub async fn read_chunk<H: RowHandler + Send>(
    conn: &mut Conn,
    table: &TablePlan,
    chunk: &KeyRange,
    condition: Option<&str>,
    sees: Option<&BinlogPosition>,
    handler: &mut H,
) -> Result<u64> {
    let columns = table
        .columns
        .iter()
        .map(|c| quote(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut conditions = Vec::new();
    let mut params = Vec::new();
    if let Some(lower) = &chunk.lower {
        conditions.push(key_compare(table, ">"));
        params.extend(lower.iter().map(from_key));
    }
    if let Some(upper) = &chunk.upper {
        conditions.push(key_compare(table, "<="));
        params.extend(upper.iter().map(from_key));
    }
    if let Some(condition) = condition {
        conditions.push(format!("({condition})"));
    }
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    let order = if table.key.is_empty() {
        String::new()
    } else {
        format!("ORDER BY {}", key_list(table))
    };
    let sql = format!(
        "SELECT {columns} FROM {name} {filter} {order}",
        name = table_name(table)
    );
    let params = if params.is_empty() {
        Params::Empty
    } else {
        Params::Positional(params)
    };

    match sees {
        Some(at) => start_snapshot_seeing(conn, table, at).await?,
        None => conn
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(table_error(table, "starting the snapshot"))?,
    }
    let mut rows = 0u64;
    {
        let mut result = conn
            .exec_iter(sql, params)
            .await
            .map_err(table_error(table, "reading"))?;
        while let Some(row) = result.next().await.map_err(table_error(table, "reading"))? {
            rows += 1;
            if handler.push(&row.unwrap())? {
                handler.flush().await?;
            }
        }
    }
    handler.flush().await?;
    conn.query_drop("COMMIT")
        .await
        .map_err(table_error(table, "ending the snapshot"))?;
    Ok(rows)
}

/// Attempts at a snapshot that sees the stream's position before the read gives up (10 ms
/// apart: the window is a commit's engine step).
const SEE_ATTEMPTS: u32 = 200;

/// Starts a consistent snapshot that holds every transaction up to `at`.
///
/// A server writes a transaction to its binlog a moment before the storage engine makes it
/// visible, so a snapshot taken just after the stream read a transaction could still miss it.
/// MySQL with GTIDs: `WAIT_FOR_EXECUTED_GTID_SET` first waits until the position's GTIDs are
/// committed. MariaDB reports the binlog position its consistent snapshot corresponds to
/// (`Binlog_snapshot_file` / `_position`): a snapshot older than `at` is ended and taken again.
/// Servers with neither (OceanBase's Binlog Service, Dolt) keep the caveat
/// docs/online-snapshots.md describes.
async fn start_snapshot_seeing(
    conn: &mut Conn,
    table: &TablePlan,
    at: &BinlogPosition,
) -> Result<()> {
    if let Some(gtid) = at.gtid.as_deref().filter(|g| g.contains(':')) {
        // Not every MySQL-flavor server has the function: then only the caveat remains.
        let waited: std::result::Result<Option<i64>, _> = conn
            .exec_first("SELECT WAIT_FOR_EXECUTED_GTID_SET(?, 10)", (gtid,))
            .await;
        if let Ok(Some(1)) = waited {
            return Err(Error::Transient(format!(
                "table {}: the server did not commit the stream's GTIDs within 10 s",
                table.qualified()
            )));
        }
    }
    for _ in 0..SEE_ATTEMPTS {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(table_error(table, "starting the snapshot"))?;
        let status: Vec<(String, String)> = conn
            .query("SHOW SESSION STATUS LIKE 'binlog_snapshot_%'")
            .await
            .unwrap_or_default();
        let value = |name: &str| {
            status
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let seen = match (
            value("Binlog_snapshot_file"),
            value("Binlog_snapshot_position"),
        ) {
            (Some(file), Some(pos)) => pos
                .parse::<u64>()
                .ok()
                .filter(|_| !file.is_empty())
                .map(|pos| (file, pos)),
            _ => None,
        };
        match seen {
            Some((file, pos)) if binlog_before(&file, pos, &at.file, at.pos) => {
                conn.query_drop("COMMIT")
                    .await
                    .map_err(table_error(table, "ending the snapshot"))?;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            _ => return Ok(()),
        }
    }
    Err(Error::Transient(format!(
        "table {}: the server's snapshots stayed behind the binlog position {}:{} for 2 s",
        table.qualified(),
        at.file,
        at.pos
    )))
}

/// Whether binlog position `(file, pos)` comes before `(at_file, at_pos)`: files of one binlog
/// compare by their number. Positions of different binlogs (another base name) are not ordered
/// and count as not before.
fn binlog_before(file: &str, pos: u64, at_file: &str, at_pos: u64) -> bool {
    let split = |f: &str| {
        f.rsplit_once('.')
            .and_then(|(base, n)| Some((base.to_string(), n.parse::<u64>().ok()?)))
    };
    match (split(file), split(at_file)) {
        (Some((base, n)), Some((at_base, at_n))) if base == at_base => (n, pos) < (at_n, at_pos),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binlog_positions_compare_by_file_number_then_offset() {
        assert!(binlog_before(
            "mysql-bin.000009",
            900,
            "mysql-bin.000010",
            4
        ));
        assert!(binlog_before("mysql-bin.000010", 4, "mysql-bin.000010", 5));
        assert!(!binlog_before("mysql-bin.000010", 5, "mysql-bin.000010", 5));
        assert!(!binlog_before(
            "mysql-bin.000011",
            4,
            "mysql-bin.000010",
            900
        ));
        // A number past the padding still orders.
        assert!(binlog_before("mysql-bin.999999", 4, "mysql-bin.1000000", 4));
        assert!(!binlog_before("other-bin.000001", 4, "mysql-bin.000010", 4));
    }

    fn cuts(min: i128, max: i128, estimate: u64, chunk_rows: u64) -> Option<Vec<i128>> {
        integer_cuts(min, max, estimate, chunk_rows).map(Iterator::collect)
    }

    #[test]
    fn a_dense_key_is_cut_every_chunk_rows_values() {
        assert_eq!(
            cuts(1, 5000, 5000, 700),
            Some(vec![700, 1400, 2100, 2800, 3500, 4200, 4900])
        );
        assert_eq!(cuts(-10, 10, 21, 5), Some(vec![-6, -1, 4, 9]));
        // Half the values used (auto_increment_increment = 2) is still dense enough.
        assert_eq!(cuts(1, 20, 10, 8), Some(vec![8, 16]));
        // An estimate far too high makes emptier chunks, never larger ones.
        assert_eq!(cuts(1, 1000, 1_000_000_000, 400), Some(vec![400, 800]));
        assert_eq!(cuts(7, 7, 1, 100), Some(vec![]));
        let unsigned = cuts(0, u64::MAX as i128, u64::MAX, u64::MAX / 2).unwrap();
        assert_eq!(
            unsigned,
            vec![u64::MAX as i128 / 2 - 1, u64::MAX as i128 - 2]
        );
    }

    #[test]
    fn sparse_keys_and_missing_estimates_are_walked() {
        // 49,999 rows with ids 1..49,999 and one at 10^15.
        assert_eq!(cuts(1, 1_000_000_000_000_000, 50_000, 5000), None);
        assert_eq!(cuts(1, 50_000, 0, 5000), None);
        // Fewer than half the values used, by the estimate.
        assert_eq!(cuts(1, 21, 10, 5), None);
    }
}
