//! Incremental sync's reader: the MySQL replication protocol (through mysql_async's binlog
//! stream) turned into transactions of row changes, in commit order, each with the binlog
//! position just after its commit — the position a checkpoint may name once Kafka acknowledged
//! every message before it.
//!
//! A transaction is held only up to [`PIECE_BYTES`]: a larger one comes in pieces as it is read
//! (the binlog holds only committed transactions, so nothing sent is ever taken back), each
//! with a position inside the transaction — its start plus the row events read so far. A reader
//! opened at such a position skips those row events of the first transaction, so a checkpoint
//! inside a 10M-row transaction resumes exactly after what was delivered, and memory stays
//! bounded whatever the transaction's size.
//!
//! MariaDB is asked for the MySQL-compatible event stream (no `@mariadb_slave_capability`), so a
//! transaction arrives as `BEGIN` … row events … `XID` (or `COMMIT`), whichever flavor the server
//! is. Values are normalized here to what the snapshot reader produces for the same column
//! (ENUM/SET names, TIMESTAMP instants, unsigned integers, YEAR), so one batch builder serves both.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use mysql_async::binlog::events::{
    Event, EventData, OptionalMetaExtractor, OptionalMetadataField, RowsEventData, TableMapEvent,
};
use mysql_async::consts::ColumnType;
use mysql_async::{BinlogStream, BinlogStreamRequest, Value};
use mysql_common::binlog::EventStreamReader;
use mysql_common::binlog::consts::BinlogVersion;

use super::query_error;
#[cfg(any(test, fuzzing))]
use super::rows;
use super::rows::RowLayout;
use crate::error::{Error, Result};
use crate::plan::SqlType;
use crate::plan::charset::{BinlogCharsets, ColumnText};
use crate::position::BinlogPosition;
use crate::position::gtid::{self, GtidPosition, MariaDbGtidPos, MysqlGtidSet};
use crate::project::{SourceDef, SourceKind};

/// What a row change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

/// One row change: the table's values before and after (full row images).
#[derive(Debug, Clone)]
pub struct RowChange {
    pub database: Arc<str>,
    pub table: Arc<str>,
    /// The columns the binlog says the row has, shared by the rows of one event.
    pub columns: Arc<TableMap>,
    pub op: Op,
    pub before: Option<Vec<Value>>,
    pub after: Option<Vec<Value>>,
    /// The character set of each column as the table-map event names it (with
    /// `binlog_row_metadata` MINIMAL or FULL); `None` when it does not.
    pub charsets: Option<BinlogCharsets>,
}

/// A transaction's rows are handed on once they take about this much memory, before its commit.
pub const PIECE_BYTES: usize = 512 * 1024;

/// Where a transaction (or statement) starts and when: every message of it names these.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The end of the transaction before it: a reader resumes here to read it again.
    pub position: BinlogPosition,
    /// The time of its first event, Unix seconds (the server's clock).
    pub timestamp: u32,
}

/// What the stream yields.
#[derive(Debug)]
pub enum Change {
    /// Row changes of a committed transaction, in source order: all of them at its commit, or,
    /// for a large transaction, a piece of them as they are read.
    Transaction {
        changes: Vec<RowChange>,
        origin: Origin,
        /// Where a reader resumes after these rows: after the commit, or inside the transaction
        /// (`row_events` > 0) for a piece before its end.
        end: BinlogPosition,
        /// The time of the last event read, Unix seconds: the commit's, once it is read.
        timestamp: u32,
    },
    /// A statement outside row events: DDL and the like.
    Statement {
        schema: String,
        query: String,
        origin: Origin,
        end: BinlogPosition,
        timestamp: u32,
    },
    /// `XA PREPARE`: an XA transaction whose rows (`synced`: any of the project's tables) are
    /// sent at its `XA COMMIT`, read again from `origin`.
    XaPrepared {
        xid: String,
        synced: bool,
        origin: Origin,
        end: BinlogPosition,
        timestamp: u32,
    },
    /// `XA COMMIT` (`commit`) or `XA ROLLBACK` of a prepared XA transaction.
    XaFinished {
        xid: String,
        commit: bool,
        origin: Origin,
        end: BinlogPosition,
        timestamp: u32,
    },
}

impl Change {
    /// Whether this ends a transaction or statement (not a piece of a large transaction).
    pub fn is_complete(&self) -> bool {
        match self {
            Change::Transaction { end, .. } => end.row_events == 0,
            _ => true,
        }
    }

    /// Where it starts and when.
    pub fn origin(&self) -> &Origin {
        match self {
            Change::Transaction { origin, .. }
            | Change::Statement { origin, .. }
            | Change::XaPrepared { origin, .. }
            | Change::XaFinished { origin, .. } => origin,
        }
    }

    /// Where a reader resumes after it, and the time of its last event.
    pub fn end(&self) -> (&BinlogPosition, u32) {
        match self {
            Change::Transaction { end, timestamp, .. }
            | Change::Statement { end, timestamp, .. }
            | Change::XaPrepared { end, timestamp, .. }
            | Change::XaFinished { end, timestamp, .. } => (end, *timestamp),
        }
    }
}

/// Whether rows of `database.table` matter to the caller.
pub type TableFilter = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

/// Where events come from: a server's binlog stream, or a recorded binlog file.
enum Events {
    Live(Box<BinlogStream>),
    Recorded {
        reader: Box<EventStreamReader>,
        input: std::io::Cursor<Vec<u8>>,
    },
}

impl Events {
    async fn next(&mut self, file: &str) -> Option<Result<Event>> {
        match self {
            Events::Live(stream) => stream.next().await.map(|event| {
                event.map_err(|e| {
                    let position = BinlogPosition::at(file, 4);
                    purged_or(e, &position, "reading the binlog stream")
                })
            }),
            Events::Recorded { reader, input } => {
                // The decoder allocates the size an event header claims before it reads the
                // event: a damaged header must not ask for gigabytes the file does not hold.
                let at = input.position();
                let rest = &input.get_ref()[at as usize..];
                if let Some(size) = rest.get(9..13) {
                    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]);
                    if size as usize > rest.len() {
                        return Some(Err(Error::Definite(format!(
                            "the recorded binlog {file} is damaged at offset {at}: an event of \
                             {size} bytes where {} remain",
                            rest.len()
                        ))));
                    }
                }
                reader.read(input).transpose().map(|event| {
                    event.map_err(|e| {
                        Error::Definite(format!("cannot read the recorded binlog {file}: {e}"))
                    })
                })
            }
        }
    }

    fn table_map(&self, table_id: u64) -> Option<&TableMapEvent<'static>> {
        match self {
            Events::Live(stream) => stream.get_tme(table_id),
            Events::Recorded { reader, .. } => reader.get_tme(table_id),
        }
    }
}

/// A binlog stream from a position.
pub struct BinlogReader {
    stream: Events,
    /// The server appends CRC32 checksums to events and no format description has arrived
    /// yet: the decoder leaves the checksum on the events before it (the artificial rotate).
    checksum_unknown: bool,
    /// The position as GTIDs, when it is known as such: every committed transaction's GTID is
    /// added to it. `None` for a MySQL-flavor stream started at a file and position, whose GTID
    /// set is not known.
    gtids: Option<GtidPosition>,
    /// The GTID of the transaction being read.
    current_gtid: Option<TransactionGtid>,
    /// With `until_end` on a GTID stream: the server's executed set, and its binlog file and
    /// position, when the stream started. Reading either ends the stream.
    caught_up_at: Option<(MysqlGtidSet, BinlogPosition)>,
    /// The end of the last transaction or statement returned.
    read_to: Option<(String, u64)>,
    /// Which tables' rows to keep: rows of other tables are not held until the commit.
    keep: TableFilter,
    file: String,
    /// Where the transaction being read (or the next one) starts.
    origin: Origin,
    /// Row events of the transaction being read so far, kept or not.
    row_events: u64,
    /// Row events at the start of the first transaction that an earlier run delivered.
    skip_row_events: u64,
    pending: Vec<RowChange>,
    /// About how much memory `pending` takes.
    pending_bytes: usize,
    /// Whether rows of the transaction being read were handed on before its end.
    handed_on: bool,
    in_transaction: bool,
    /// The XA transaction being read (between `XA START` and `XA PREPARE`).
    xa: Option<XaGroup>,
    /// Reading a prepared XA transaction again at its commit, from its origin: it is the first
    /// XA transaction there (each earlier one was a change of its own, which moved the origin).
    /// Its rows are kept, other transactions' are not, and its `XA PREPARE` ends it like a
    /// commit.
    replay_xa: bool,
    /// Whether that transaction was read.
    replayed: bool,
    /// The server's collations: id → character set name, for the table-map events' metadata.
    collations: HashMap<u16, Arc<str>>,
    /// Each table id's last table-map event, with what it says of the columns and the
    /// character sets it names, worked out once per table map rather than per row.
    table_maps: HashMap<u64, MappedTable>,
}

/// A table id's last table-map event and what it says, worked out once.
struct MappedTable {
    event: TableMapEvent<'static>,
    columns: Arc<TableMap>,
    charsets: Option<BinlogCharsets>,
    /// How its rows are laid out (for events of as many columns as it maps).
    layout: Arc<RowLayout>,
}

impl BinlogReader {
    /// Starts reading at `from`. With `until_end`, the stream ends at the server's current end
    /// of the binlog instead of waiting for new events.
    ///
    /// MariaDB starts at `from`'s file and position, or at its GTID state when it has no file
    /// (a `start_gtid` that has not seen its first event yet). MySQL-flavor servers start at
    /// `from`'s GTID set whenever it has one (`COM_BINLOG_DUMP_GTID`, as a MySQL replica with
    /// auto-positioning): that survives a failover and is the only way some servers stream.
    pub async fn open(source: &SourceDef, from: &BinlogPosition, until_end: bool) -> Result<Self> {
        let mut conn = super::connect_to(source, &source.binlog_host, source.binlog_port).await?;
        let checksum: Option<String> = mysql_async::prelude::Queryable::query_first(
            &mut conn,
            "SELECT @@GLOBAL.binlog_checksum",
        )
        .await
        .map_err(query_error("reading binlog_checksum"))?;
        let checksummed = checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE"));
        let collations = collations(source).await?;
        let gtids = start_gtids(source.kind, from)?;
        let mut request = BinlogStreamRequest::new(source.server_id);
        let mut caught_up_at = None;
        match &gtids {
            Some(GtidPosition::MariaDb(_)) | None => {
                request = request
                    .with_filename(from.file.as_bytes())
                    .with_pos(from.pos);
            }
            Some(GtidPosition::MySql(set)) => {
                let sids = set.sids().map_err(Error::Definite)?;
                request = request.with_gtid().with_gtid_set(sids).with_pos(4);
                if until_end {
                    // Not every server takes the non-blocking flag with a GTID request (Dolt
                    // refuses it): the stream ends once it has read what the server had
                    // executed when it started.
                    caught_up_at = match super::snapshot::binlog_position(source).await? {
                        Some(end) => {
                            let set = MysqlGtidSet::parse(end.gtid.as_deref().unwrap_or_default())
                                .map_err(Error::Definite)?;
                            Some((set, end))
                        }
                        None => None,
                    };
                }
            }
        }
        if source.kind == crate::project::SourceKind::MariaDb {
            // MariaDB's own events: GTID events instead of `BEGIN`, and annotate-rows events.
            let mut setup = vec!["SET @mariadb_slave_capability = 4".to_string()];
            if from.file.is_empty()
                && let Some(state) = gtids.as_ref().and_then(GtidPosition::render)
            {
                setup.push(format!("SET @slave_connect_state = '{state}'"));
                setup.push("SET @slave_gtid_strict_mode = 0".to_string());
            }
            for statement in setup {
                mysql_async::prelude::Queryable::query_drop(&mut conn, &statement)
                    .await
                    .map_err(query_error(format!(
                        "preparing the binlog stream ({statement})"
                    )))?;
            }
        }
        if until_end && caught_up_at.is_none() {
            request = request.with_non_blocking();
        }
        let stream = conn.get_binlog_stream(request).await.map_err(|e| {
            purged_or(
                e,
                from,
                "requesting the binlog stream (is the position still on the server?)",
            )
        })?;
        let mut reader =
            BinlogReader::new(Events::Live(Box::new(stream)), checksummed, gtids, from)
                .with_caught_up_at(caught_up_at);
        reader.collations = collations;
        Ok(reader)
    }

    fn new(
        stream: Events,
        checksum_unknown: bool,
        gtids: Option<GtidPosition>,
        from: &BinlogPosition,
    ) -> BinlogReader {
        BinlogReader {
            stream,
            checksum_unknown,
            gtids,
            current_gtid: None,
            caught_up_at: None,
            read_to: None,
            keep: Box::new(|_, _| true),
            file: from.file.clone(),
            origin: Origin {
                position: BinlogPosition {
                    row_events: 0,
                    ..from.clone()
                },
                timestamp: 0,
            },
            row_events: 0,
            skip_row_events: from.row_events,
            pending: Vec::new(),
            pending_bytes: 0,
            handed_on: false,
            in_transaction: false,
            xa: None,
            replay_xa: false,
            replayed: false,
            collations: HashMap::new(),
            table_maps: HashMap::new(),
        }
    }

    fn with_caught_up_at(mut self, caught_up_at: Option<(MysqlGtidSet, BinlogPosition)>) -> Self {
        self.caught_up_at = caught_up_at;
        self
    }

    /// Keeps only the rows of tables `keep` accepts.
    pub fn with_table_filter(mut self, keep: TableFilter) -> Self {
        self.keep = keep;
        self
    }

    /// Reads a recorded binlog file (`testdata/binlog/`): the same decoding as a live stream.
    pub fn recorded(bytes: Vec<u8>, file: &str) -> Result<BinlogReader> {
        if bytes.get(..4) != Some(b"\xfebin".as_slice()) {
            return Err(Error::Definite(format!("{file} is not a binlog file")));
        }
        let mut input = std::io::Cursor::new(bytes);
        input.set_position(4);
        let events = Events::Recorded {
            reader: Box::new(EventStreamReader::new(BinlogVersion::Version4)),
            input,
        };
        // A recorded file is read from its start: every GTID in it is the position's.
        let gtids = Some(GtidPosition::MySql(MysqlGtidSet::default()));
        Ok(BinlogReader::new(
            events,
            false,
            gtids,
            &BinlogPosition::at(file, 4),
        ))
    }

    /// The next committed transaction or statement; `None` when a non-blocking stream reached
    /// the end of the binlog.
    pub async fn next(&mut self) -> Result<Option<Change>> {
        if let Some((end_set, end)) = &self.caught_up_at {
            let set_read =
                matches!(&self.gtids, Some(GtidPosition::MySql(read)) if read.contains(end_set));
            // GTIDs the binlog does not hold (added with gtid_purged) never arrive: the file
            // and position of the same moment end the stream too.
            let position_read = self
                .read_to
                .as_ref()
                .is_some_and(|(file, pos)| (file.as_str(), *pos) >= (end.file.as_str(), end.pos));
            if set_read || position_read {
                return Ok(None);
            }
        }
        let change = self.next_change().await?;
        if let Some(change) = &change
            && change.is_complete()
        {
            let end = change.end().0;
            self.read_to = Some((end.file.clone(), end.pos));
            // What comes next starts here; only the first transaction was partly delivered.
            self.origin.position = end.clone();
            self.skip_row_events = 0;
        }
        Ok(change)
    }

    async fn next_change(&mut self) -> Result<Option<Change>> {
        loop {
            let Some(event) = self.stream.next(&self.file).await else {
                return Ok(None);
            };
            let event = event?;
            let header = event.header();
            let mut end = BinlogPosition::at(&self.file, u64::from(header.log_pos()));
            let timestamp = header.timestamp();
            if !self.in_transaction {
                // The first event of what comes next (a GTID event, `BEGIN`, a statement).
                self.origin.timestamp = timestamp;
            }
            match header.event_type_raw() {
                MARIADB_GTID_EVENT => {
                    self.mariadb_gtid(event.data(), header.server_id());
                    continue;
                }
                MARIADB_ANNOTATE_ROWS_EVENT
                | MARIADB_BINLOG_CHECKPOINT_EVENT
                | MARIADB_GTID_LIST_EVENT => continue,
                _ => {}
            }
            if IGNORED_EVENTS.contains(&header.event_type_raw()) {
                continue;
            }
            if header.event_type_raw() == TRANSACTION_PAYLOAD_EVENT {
                // Not decoded at all: tributary does not read them, and mysql_common's decoder
                // panics on a damaged one (found by the binlog_events fuzz target).
                return Err(Error::Definite(format!(
                    "a compressed transaction at {}:{}; tributary reads uncompressed row \
                     events: SET GLOBAL binlog_transaction_compression = OFF on the source \
                     (and in its config) and start again after this transaction",
                    end.file, end.pos
                )));
            }
            let data = event.read_data().map_err(|e| {
                Error::Definite(format!(
                    "cannot decode a binlog event at {}:{}: {e}",
                    end.file, end.pos
                ))
            })?;
            match data {
                Some(EventData::RotateEvent(rotate)) => {
                    let mut name = rotate.name_raw().to_vec();
                    // The server's first (artificial) rotate event comes before the format
                    // description, so the decoder cannot know it ends with a checksum. Later
                    // rotates (at the end of each binlog file) arrive without it.
                    if self.checksum_unknown && name.len() > 4 {
                        name.truncate(name.len() - 4);
                    }
                    self.file = String::from_utf8_lossy(&name).into_owned();
                }
                Some(EventData::FormatDescriptionEvent(_)) => self.checksum_unknown = false,
                Some(EventData::QueryEvent(query)) => {
                    let text = query.query();
                    let trimmed = text.trim();
                    if trimmed.eq_ignore_ascii_case("BEGIN") {
                        self.begin();
                    } else if trimmed.eq_ignore_ascii_case("ROLLBACK") {
                        // Non-transactional tables log a ROLLBACK: nothing to send, but the
                        // position moves past it. Rows already handed on cannot be taken back.
                        if self.handed_on {
                            return Err(Error::Definite(format!(
                                "a transaction of more than {} KiB of rows ended with ROLLBACK at \
                                 {}:{} after its first rows were sent (changes to \
                                 non-transactional tables inside a rolled-back transaction); \
                                 check the rows sent for it, then start after it with \
                                 start_position = '{}:{}' and `tributary reset`",
                                PIECE_BYTES / 1024,
                                end.file,
                                end.pos,
                                end.file,
                                end.pos
                            )));
                        }
                        self.pending.clear();
                        return Ok(Some(self.commit(end, timestamp)));
                    } else if let Some(command) = XaCommand::parse(trimmed) {
                        match command {
                            XaCommand::Start => {
                                self.begin();
                                self.xa = Some(XaGroup { synced: false });
                            }
                            XaCommand::End => {}
                            XaCommand::Finish { xid, commit } => {
                                return Ok(Some(self.xa_finish(xid, commit, end, timestamp)));
                            }
                        }
                    } else if let Some(tables) = super::ddl::rows_written(&query.schema(), trimmed)
                    {
                        // Rows changed by a statement (a session with binlog_format STATEMENT or
                        // MIXED): the binlog holds no row images to send. Other tables' are none
                        // of the project's business.
                        let synced = tables.is_empty()
                            || tables.iter().any(|t| {
                                t.split_once('.')
                                    .is_some_and(|(db, table)| (self.keep)(db, table))
                            });
                        if synced {
                            return Err(Error::Definite(format!(
                                "rows changed by a statement logged as text at {}:{} ({}): \
                                 tributary reads row images and cannot know which rows it \
                                 changed. The session that wrote it used binlog_format STATEMENT \
                                 or MIXED: SET GLOBAL binlog_format = 'ROW' (and in the server's \
                                 config), make sure no session overrides it, then send the \
                                 table again with `tributary reset` and a new run",
                                end.file,
                                end.pos,
                                statement_excerpt(trimmed)
                            )));
                        }
                    } else if self.in_transaction && !trimmed.eq_ignore_ascii_case("COMMIT") {
                        // Inside a transaction a statement is never a checkpoint: SAVEPOINT and
                        // the like are skipped.
                    } else if trimmed.eq_ignore_ascii_case("COMMIT") {
                        return Ok(Some(self.commit(end, timestamp)));
                    } else {
                        end.gtid = self.commit_gtid();
                        return Ok(Some(Change::Statement {
                            schema: query.schema().into_owned(),
                            query: text.into_owned(),
                            origin: self.origin.clone(),
                            end,
                            timestamp,
                        }));
                    }
                }
                Some(EventData::GtidEvent(gtid)) => {
                    let tag = gtid.tag().map(|t| t.to_string());
                    self.current_gtid = Some(TransactionGtid::MySql {
                        source: gtid::source_name(gtid.sid(), tag.as_deref()),
                        gno: gtid.gno(),
                    });
                }
                Some(EventData::XidEvent(_)) => return Ok(Some(self.commit(end, timestamp))),
                // `XA PREPARE`: the group's rows are durable but not committed. One phase (MySQL's
                // `XA COMMIT … ONE PHASE`) is a commit.
                Some(EventData::XaPrepareLogEvent(data)) => {
                    let one_phase = data.first().is_some_and(|b| *b != 0);
                    if self.replaying() {
                        self.replayed = true;
                    }
                    return Ok(Some(match self.xa.take() {
                        Some(xa) if !one_phase && !self.replay_xa => {
                            self.xa_prepared(xid_of_prepare(&data), xa, end, timestamp)
                        }
                        _ => self.commit(end, timestamp),
                    }));
                }
                Some(EventData::RowsEvent(rows)) => {
                    self.collect_rows(&rows, &end)?;
                    if self.pending_bytes >= PIECE_BYTES {
                        return Ok(Some(self.piece(timestamp)));
                    }
                }
                None if self.in_transaction => {
                    return Err(Error::Definite(format!(
                        "an unsupported binlog event (type {}) inside a transaction at {}:{}; \
                         compressed binlog events (log_bin_compress) are not supported",
                        header.event_type_raw(),
                        end.file,
                        end.pos
                    )));
                }
                _ => {}
            }
        }
    }

    /// A MariaDB GTID event: sequence number (8 bytes), domain (4), flags (1); the server id is
    /// the event header's.
    fn mariadb_gtid(&mut self, data: &[u8], server_id: u32) {
        if data.len() >= 12 {
            self.current_gtid = Some(TransactionGtid::MariaDb {
                domain: u32::from_le_bytes(data[8..12].try_into().unwrap_or_default()),
                server_id,
                sequence: u64::from_le_bytes(data[0..8].try_into().unwrap_or_default()),
            });
        }
        // A standalone GTID (DDL) is followed by its statement, not by a transaction.
        const FL_STANDALONE: u8 = 1;
        // MariaDB marks the first part of an XA transaction (up to `XA PREPARE`) here instead
        // of logging `XA START`.
        const FL_PREPARED_XA: u8 = 64;
        let flags = data.get(12).copied().unwrap_or(0);
        if flags & FL_STANDALONE == 0 {
            self.begin();
        }
        if flags & FL_PREPARED_XA != 0 {
            self.xa = Some(XaGroup { synced: false });
        }
    }

    /// A transaction starts (MariaDB's GTID event, or `BEGIN`).
    fn begin(&mut self) {
        if !self.in_transaction {
            self.in_transaction = true;
            self.row_events = 0;
            self.pending.clear();
            self.pending_bytes = 0;
            self.handed_on = false;
            self.xa = None;
        }
    }

    /// Reads a prepared XA transaction again, for its commit; the reader starts at its origin.
    pub fn replaying_xa(mut self) -> Self {
        self.replay_xa = true;
        self
    }

    /// Whether the XA transaction being replayed was read whole.
    pub fn replayed(&self) -> bool {
        self.replayed
    }

    /// Whether the rows being read are the XA transaction being replayed.
    fn replaying(&self) -> bool {
        self.replay_xa && self.xa.is_some() && !self.replayed
    }

    /// An XA transaction was prepared: its rows wait for `XA COMMIT`, which may come much later
    /// (after a restart); they are not held but read again from the binlog then.
    fn xa_prepared(
        &mut self,
        xid: String,
        xa: XaGroup,
        mut end: BinlogPosition,
        timestamp: u32,
    ) -> Change {
        self.in_transaction = false;
        self.pending.clear();
        self.pending_bytes = 0;
        end.gtid = self.commit_gtid();
        Change::XaPrepared {
            xid,
            synced: xa.synced,
            origin: self.origin.clone(),
            end,
            timestamp,
        }
    }

    /// `XA COMMIT` or `XA ROLLBACK` of a transaction prepared earlier.
    fn xa_finish(
        &mut self,
        xid: String,
        commit: bool,
        mut end: BinlogPosition,
        timestamp: u32,
    ) -> Change {
        self.in_transaction = false;
        self.pending.clear();
        end.gtid = self.commit_gtid();
        Change::XaFinished {
            xid,
            commit,
            origin: self.origin.clone(),
            end,
            timestamp,
        }
    }

    /// The rows read so far of a large transaction, with the position inside it.
    fn piece(&mut self, timestamp: u32) -> Change {
        self.pending_bytes = 0;
        self.handed_on = true;
        Change::Transaction {
            changes: std::mem::take(&mut self.pending),
            origin: self.origin.clone(),
            end: BinlogPosition {
                row_events: self.row_events,
                ..self.origin.position.clone()
            },
            timestamp,
        }
    }

    /// The transaction that just committed (`XID` or `COMMIT`; an empty one for `ROLLBACK`).
    fn commit(&mut self, mut end: BinlogPosition, timestamp: u32) -> Change {
        self.in_transaction = false;
        self.pending_bytes = 0;
        end.gtid = self.commit_gtid();
        Change::Transaction {
            changes: std::mem::take(&mut self.pending),
            origin: self.origin.clone(),
            end,
            timestamp,
        }
    }

    /// Records the committed transaction's GTID and returns the GTID state after it.
    fn commit_gtid(&mut self) -> Option<String> {
        match (self.current_gtid.take(), &mut self.gtids) {
            (
                Some(TransactionGtid::MariaDb {
                    domain,
                    server_id,
                    sequence,
                }),
                Some(GtidPosition::MariaDb(pos)),
            ) => pos.set(domain, server_id, sequence),
            (Some(TransactionGtid::MySql { source, gno }), Some(GtidPosition::MySql(set))) => {
                set.add(&source, gno)
            }
            _ => {}
        }
        self.gtids.as_ref().and_then(GtidPosition::render)
    }

    fn collect_rows(&mut self, rows: &RowsEventData<'_>, at: &BinlogPosition) -> Result<()> {
        let Some(tme) = self.stream.table_map(rows.table_id()) else {
            return Err(Error::Definite(format!(
                "row event without its table map at {}:{}",
                at.file, at.pos
            )));
        };
        let op = match rows {
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Op::Insert,
            RowsEventData::UpdateRowsEvent(_)
            | RowsEventData::UpdateRowsEventV1(_)
            | RowsEventData::PartialUpdateRowsEvent(_) => Op::Update,
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Op::Delete,
        };
        // Counted whether kept or not: a resumed reader skips by this count.
        self.row_events += 1;
        if self.row_events <= self.skip_row_events {
            return Ok(());
        }
        let database: Arc<str> = tme.database_name().into();
        let table: Arc<str> = tme.table_name().into();
        if !(self.keep)(&database, &table) {
            return Ok(());
        }
        if self.replay_xa && !self.replaying() {
            // Replaying one XA transaction: every other one was sent in its time.
            return Ok(());
        }
        if let Some(xa) = &mut self.xa
            && !self.replay_xa
        {
            // Read again at the commit; here only whether there is anything to send then.
            xa.synced = true;
            return Ok(());
        }
        let mapped = match self.table_maps.get(&rows.table_id()) {
            Some(mapped) if mapped.event == *tme => mapped,
            _ => {
                // mysql_common decodes a value with its column's metadata and indexes it without
                // a check: a table map whose metadata runs short would panic there.
                let columns_count = tme.columns_count() as usize;
                let damaged = |i: usize| match (tme.get_column_type(i), tme.get_column_metadata(i))
                {
                    (Ok(Some(column_type)), Some(meta)) => !metadata_fits(column_type, meta),
                    _ => true,
                };
                if let Some(column) = (0..columns_count).find(|&i| damaged(i)) {
                    return Err(Error::Definite(format!(
                        "the table map of {database}.{table} at {}:{} has no valid metadata for \
                         column {}; the binlog is damaged",
                        at.file,
                        at.pos,
                        column + 1
                    )));
                }
                if self.table_maps.len() >= 4096 {
                    self.table_maps.clear();
                }
                let mapped = MappedTable {
                    event: tme.clone(),
                    columns: Arc::new(TableMap::of(tme)),
                    charsets: table_map_charsets(tme, &self.collations),
                    layout: Arc::new(RowLayout::of(tme, tme.columns_count())),
                };
                self.table_maps.insert(rows.table_id(), mapped);
                &self.table_maps[&rows.table_id()]
            }
        };
        let columns = Arc::clone(&mapped.columns);
        let charsets = mapped.charsets.clone();
        // A rows event naming another column count than its table map (a damaged binlog) is
        // read as `BinlogRow` would read it, with a layout of its own.
        let layout = if rows.num_columns() == tme.columns_count() {
            Arc::clone(&mapped.layout)
        } else {
            Arc::new(RowLayout::of(tme, rows.num_columns()))
        };
        #[cfg(any(test, fuzzing))]
        rows::assert_same_as_binlog_row(&layout, rows, tme);
        // Every row a server writes takes at least a byte: a rows event whose rows take none
        // (no column present) would otherwise yield rows without end.
        let most_rows = rows.rows_data().len();
        for (n, row) in layout.rows(rows).enumerate() {
            if n >= most_rows {
                return Err(Error::Definite(format!(
                    "the rows event of {database}.{table} at {}:{} holds more rows than bytes, \
                     which no server writes; the binlog is damaged",
                    at.file, at.pos
                )));
            }
            let (before, after) = row.map_err(|e| {
                Error::Definite(format!(
                    "cannot decode a row of {database}.{table} at {}:{}: {e}",
                    at.file, at.pos
                ))
            })?;
            let change = RowChange {
                database: Arc::clone(&database),
                table: Arc::clone(&table),
                columns: Arc::clone(&columns),
                op,
                before,
                after,
                charsets: charsets.clone(),
            };
            self.pending_bytes += change.size();
            self.pending.push(change);
        }
        Ok(())
    }
}

/// The metadata bytes a table map carries for a column of `column_type`, which mysql_common's
/// value decoder reads without checking.
fn metadata_bytes(column_type: ColumnType) -> usize {
    use ColumnType::*;
    match column_type {
        MYSQL_TYPE_STRING
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_BIT
        | MYSQL_TYPE_NEWDECIMAL
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET => 2,
        MYSQL_TYPE_TYPED_ARRAY
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP2
        | MYSQL_TYPE_TIME2
        | MYSQL_TYPE_FLOAT
        | MYSQL_TYPE_DOUBLE
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_GEOMETRY
        | MYSQL_TYPE_JSON => 1,
        _ => 0,
    }
}

/// Whether a table map's metadata for a column of `column_type` is what a server writes: long
/// enough, and for DECIMAL a precision and scale MySQL allows (the decoder sizes its buffer
/// from them).
fn metadata_fits(column_type: ColumnType, meta: &[u8]) -> bool {
    if meta.len() < metadata_bytes(column_type) {
        return false;
    }
    match column_type {
        ColumnType::MYSQL_TYPE_NEWDECIMAL => {
            let (precision, scale) = (meta[0], meta[1]);
            (1..=65).contains(&precision) && scale <= precision && scale <= 38
        }
        _ => true,
    }
}

/// A table's columns as the binlog's table-map event describes them.
#[derive(Debug, PartialEq)]
pub struct TableMap {
    /// Each column's type (the real one for ENUM and SET), `None` when unknown.
    pub types: Vec<Option<ColumnType>>,
    /// The column names, when the server sends them (`binlog_row_metadata = FULL`).
    pub names: Vec<String>,
}

impl TableMap {
    fn of(tme: &TableMapEvent<'_>) -> TableMap {
        let types = (0..tme.columns_count() as usize)
            .map(|i| tme.get_column_type(i).ok().flatten())
            .collect();
        let mut names = Vec::new();
        for field in tme.iter_optional_meta().flatten() {
            if let OptionalMetadataField::ColumnName(list) = field {
                names = list
                    .iter_names()
                    .flatten()
                    .map(|n| n.name().into_owned())
                    .collect();
            }
        }
        TableMap { types, names }
    }

    /// Where the binlog's columns disagree with the schema history's (`columns`: name and
    /// type): the count, a type of another kind, a name. `None` when they agree.
    pub fn disagreement(&self, columns: &[(&str, &SqlType)]) -> Option<String> {
        if self.types.len() != columns.len() {
            return Some(format!(
                "the binlog has {} columns, the schema history {}",
                self.types.len(),
                columns.len()
            ));
        }
        for (i, ((name, sql_type), binlog)) in columns.iter().zip(&self.types).enumerate() {
            if let Some(binlog_name) = self.names.get(i)
                && !binlog_name.eq_ignore_ascii_case(name)
            {
                return Some(format!(
                    "column {} is `{binlog_name}` in the binlog, `{name}` in the schema history",
                    i + 1
                ));
            }
            if let (Some(expected), Some(binlog)) =
                (kind_of_sql(sql_type), binlog.and_then(kind_of_binlog))
                && expected != binlog
            {
                return Some(format!(
                    "column `{name}` holds {binlog:?} values in the binlog, {expected:?} in the \
                     schema history"
                ));
            }
        }
        None
    }
}

/// What kind of value a column holds, coarsely: a DDL that changes it (or a column order the
/// history has wrong) shows as a change of kind.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum ValueKind {
    Integer,
    Real,
    Decimal,
    Text,
    Date,
    Time,
    DateTime,
    Bits,
    Json,
    Geometry,
}

fn kind_of_sql(sql_type: &SqlType) -> Option<ValueKind> {
    use SqlType::*;
    Some(match sql_type {
        Bool
        | TinyInt { .. }
        | SmallInt { .. }
        | MediumInt { .. }
        | Int { .. }
        | BigInt { .. }
        | Year => ValueKind::Integer,
        Float | Double => ValueKind::Real,
        Decimal { .. } => ValueKind::Decimal,
        Char { .. }
        | VarChar { .. }
        | Text
        | Binary { .. }
        | VarBinary { .. }
        | Blob
        | Enum { .. }
        | Set { .. } => ValueKind::Text,
        Date => ValueKind::Date,
        Time { .. } => ValueKind::Time,
        DateTime { .. } | Timestamp { .. } => ValueKind::DateTime,
        Bit { .. } => ValueKind::Bits,
        Json => ValueKind::Json,
        Geometry => ValueKind::Geometry,
        Unsupported(_) => return None,
    })
}

fn kind_of_binlog(column_type: ColumnType) -> Option<ValueKind> {
    use ColumnType::*;
    Some(match column_type {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => ValueKind::Integer,
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => ValueKind::Real,
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => ValueKind::Decimal,
        MYSQL_TYPE_STRING
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_ENUM
        | MYSQL_TYPE_SET => ValueKind::Text,
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => ValueKind::Date,
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => ValueKind::Time,
        MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_TIMESTAMP2 => ValueKind::DateTime,
        MYSQL_TYPE_BIT => ValueKind::Bits,
        MYSQL_TYPE_JSON => ValueKind::Json,
        MYSQL_TYPE_GEOMETRY => ValueKind::Geometry,
        _ => return None,
    })
}

/// The server's collations, id → character set name: the table-map events name collations
/// by number, and the numbers differ between MySQL, MariaDB and OceanBase. Read from the SQL
/// endpoint (a binlog service may not answer queries).
async fn collations(source: &SourceDef) -> Result<HashMap<u16, Arc<str>>> {
    let mut conn = super::connect(source).await?;
    let rows: Vec<(Option<u64>, Option<String>)> = mysql_async::prelude::Queryable::query(
        &mut conn,
        "SELECT ID, CHARACTER_SET_NAME FROM information_schema.COLLATIONS",
    )
    .await
    .map_err(query_error(
        "reading the source's collations (information_schema.COLLATIONS)",
    ))?;
    let _ = conn.disconnect().await;
    let mut names: HashMap<String, Arc<str>> = HashMap::new();
    let mut collations = HashMap::new();
    for (id, charset) in rows {
        if let (Some(id), Some(charset)) = (id.and_then(|id| u16::try_from(id).ok()), charset) {
            let name = names
                .entry(charset.to_ascii_lowercase())
                .or_insert_with_key(|name| Arc::from(name.as_str()))
                .clone();
            collations.insert(id, name);
        }
    }
    Ok(collations)
}

/// The character set of each column as a table-map event's optional metadata names it
/// (`DEFAULT_CHARSET` or `COLUMN_CHARSET`, which count the character columns only; ENUM and SET
/// have fields of their own and are decoded from their members' names anyway). `None` when the
/// event carries no character sets (`binlog_row_metadata = NO_LOG`, older servers).
fn table_map_charsets(
    tme: &TableMapEvent<'_>,
    collations: &HashMap<u16, Arc<str>>,
) -> Option<BinlogCharsets> {
    let metadata = OptionalMetaExtractor::new(tme.iter_optional_meta()).ok()?;
    let mut named = metadata.iter_charset();
    let mut any = false;
    let mut charsets = Vec::with_capacity(tme.columns_count() as usize);
    for i in 0..tme.columns_count() as usize {
        let character = tme
            .get_column_type(i)
            .ok()
            .flatten()
            .is_some_and(|t| t.is_character_type());
        let charset = match character.then(|| named.next()).flatten() {
            Some(Ok(collation)) => {
                any = true;
                collations.get(&collation).cloned()
            }
            Some(Err(_)) => return None,
            None => None,
        };
        charsets.push(charset);
    }
    any.then(|| charsets.into())
}

impl RowChange {
    /// About how much memory the change takes.
    fn size(&self) -> usize {
        let image = |values: &Option<Vec<Value>>| {
            values.as_ref().map_or(0, |values| {
                values
                    .iter()
                    .map(|v| {
                        std::mem::size_of::<Value>()
                            + match v {
                                Value::Bytes(bytes) => bytes.len(),
                                _ => 0,
                            }
                    })
                    .sum()
            })
        };
        std::mem::size_of::<RowChange>()
            + self.database.len()
            + self.table.len()
            + image(&self.before)
            + image(&self.after)
    }
}

/// A statement's first 120 characters, for an error message.
fn statement_excerpt(statement: &str) -> String {
    let mut excerpt: String = statement.chars().take(120).collect();
    if excerpt.len() < statement.len() {
        excerpt.push('…');
    }
    excerpt
}

/// The XA transaction being read.
struct XaGroup {
    /// Whether it changed any of the project's tables.
    synced: bool,
}

/// The xid of an `XA PREPARE` event (one-phase flag 1 byte, formatID 4, gtrid and bqual lengths
/// 4 each, then gtrid and bqual), as the server writes it in `XA COMMIT X'…',X'…',n`.
fn xid_of_prepare(data: &[u8]) -> String {
    let number = |at: usize| {
        data.get(at..at + 4)
            .map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let (format, gtrid, bqual) = (number(1), number(5) as usize, number(9) as usize);
    let hex = |bytes: &[u8]| -> String { bytes.iter().map(|b| format!("{b:02X}")).collect() };
    let gtrid_bytes = data.get(13..13 + gtrid).unwrap_or_default();
    let bqual_bytes = data.get(13 + gtrid..13 + gtrid + bqual).unwrap_or_default();
    format!("X'{}',X'{}',{format}", hex(gtrid_bytes), hex(bqual_bytes))
}

/// An XA statement as the binlog logs it: `XA START X'78',X'',1`, `XA END …`,
/// `XA COMMIT X'78',X'',1`, `XA ROLLBACK X'78',X'',1`.
#[derive(Debug, PartialEq)]
enum XaCommand {
    Start,
    End,
    /// `XA COMMIT` (`commit`) or `XA ROLLBACK` of a prepared transaction.
    Finish {
        xid: String,
        commit: bool,
    },
}

impl XaCommand {
    /// By characters: a statement may open with a multi-byte character, which byte slicing
    /// would split (a panic).
    fn parse(statement: &str) -> Option<XaCommand> {
        let rest = statement
            .get(..3)
            .filter(|prefix| prefix.eq_ignore_ascii_case("XA "))
            .map(|_| statement[3..].trim_start())?;
        let (verb, xid) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        // Comments the server adds are not part of the name; hex digits in either case.
        let xid = xid
            .split("/*")
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase();
        match verb.to_ascii_uppercase().as_str() {
            "START" | "BEGIN" => Some(XaCommand::Start),
            "END" => Some(XaCommand::End),
            "COMMIT" => Some(XaCommand::Finish { xid, commit: true }),
            "ROLLBACK" => Some(XaCommand::Finish { xid, commit: false }),
            _ => None,
        }
    }
}

/// The first binlog position at or after `timestamp` (Unix seconds): the start of the newest
/// binlog file created at or before it. Transactions in that file committed before `timestamp`
/// are skipped by the caller.
pub async fn position_at(source: &SourceDef, timestamp: i64) -> Result<BinlogPosition> {
    use mysql_async::prelude::Queryable;
    let mut conn = super::connect_to(source, &source.binlog_host, source.binlog_port).await?;
    let logs: Vec<mysql_async::Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(query_error("listing the binlog files (SHOW BINARY LOGS)"))?;
    let files: Vec<String> = logs.iter().filter_map(|row| row.get(0)).collect();
    let mut oldest = None;
    for file in files.iter().rev() {
        let from = BinlogPosition::at(file, 4);
        let created = first_event_time(source, &from).await?;
        oldest = Some((file.clone(), created));
        if i64::from(created) <= timestamp {
            return Ok(from);
        }
    }
    Err(Error::Config(match oldest {
        Some((file, created)) => format!(
            "start_timestamp {timestamp} is before the oldest binlog on the server ({file}, \
             started at {created}); choose a later time or run a full sync"
        ),
        None => "the server lists no binlog files; is log_bin on?".to_string(),
    }))
}

/// When a binlog file was started: its format description event's timestamp.
async fn first_event_time(source: &SourceDef, from: &BinlogPosition) -> Result<u32> {
    let conn = super::connect_to(source, &source.binlog_host, source.binlog_port).await?;
    let request = BinlogStreamRequest::new(source.server_id)
        .with_filename(from.file.as_bytes())
        .with_pos(from.pos)
        .with_non_blocking();
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .map_err(|e| purged_or(e, from, "reading a binlog file's first event"))?;
    while let Some(event) = stream.next().await {
        let event = event.map_err(|e| purged_or(e, from, "reading a binlog file's first event"))?;
        if event.header().timestamp() != 0 {
            return Ok(event.header().timestamp());
        }
    }
    Ok(0)
}

/// A binlog request the server refuses because the file is gone is a definite error: only a new
/// full sync can recover.
fn purged_or(e: mysql_async::Error, from: &BinlogPosition, what: &str) -> Error {
    match &e {
        mysql_async::Error::Server(server)
            if server.code == 1236
                || server.message.contains("purged")
                || server.message.contains("Could not find first log file") =>
        {
            Error::Definite(format!(
                "the binlog at {}:{} is no longer on the server ({}); the checkpoint cannot \
                 resume: run `tributary reset` and a new full sync",
                from.file, from.pos, server.message
            ))
        }
        _ => query_error(what.to_string())(e),
    }
}

/// Converts binlog values to what the snapshot reader sends for the same columns.
pub fn normalize_row(values: &mut [Value], types: &[SqlType]) {
    for (value, sql_type) in values.iter_mut().zip(types) {
        let converted = match (sql_type, &*value) {
            (SqlType::Enum { members }, Value::Int(index)) => Some(Value::Bytes(
                members
                    .get((*index as usize).wrapping_sub(1))
                    .map(|m| m.as_bytes().to_vec())
                    .unwrap_or_default(),
            )),
            (SqlType::Set { members }, Value::Bytes(mask)) => {
                let mut bits = 0u64;
                for (i, byte) in mask.iter().enumerate().take(8) {
                    bits |= u64::from(*byte) << (8 * i);
                }
                let names: Vec<&str> = members
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, m)| m.as_str())
                    .collect();
                Some(Value::Bytes(names.join(",").into_bytes()))
            }
            // The binlog strips BINARY(n)'s trailing zero bytes; the column always holds n.
            (SqlType::Binary { length }, Value::Bytes(bytes)) if bytes.len() < *length as usize => {
                let mut padded = bytes.clone();
                padded.resize(*length as usize, 0);
                Some(Value::Bytes(padded))
            }
            (SqlType::Timestamp { .. }, Value::Bytes(text)) => timestamp_value(text),
            (SqlType::Timestamp { .. }, Value::Int(0)) => Some(Value::Date(0, 0, 0, 0, 0, 0, 0)),
            (SqlType::Year, Value::Bytes(text)) if text.as_slice() == b"1900" => {
                Some(Value::Int(0))
            }
            (SqlType::TinyInt { unsigned: true }, Value::Int(v)) if *v < 0 => {
                Some(Value::UInt(*v as u8 as u64))
            }
            (SqlType::SmallInt { unsigned: true }, Value::Int(v)) if *v < 0 => {
                Some(Value::UInt(*v as u16 as u64))
            }
            // A 24-bit value read without its sign: restore it.
            (SqlType::MediumInt { unsigned: false }, Value::Int(v)) if *v >= 1 << 23 => {
                Some(Value::Int(*v - (1 << 24)))
            }
            (SqlType::MediumInt { unsigned: true }, Value::Int(v)) if *v < 0 => {
                Some(Value::UInt((*v as u32 & 0x00ff_ffff) as u64))
            }
            (SqlType::Int { unsigned: true }, Value::Int(v)) if *v < 0 => {
                Some(Value::UInt(*v as u32 as u64))
            }
            (SqlType::BigInt { unsigned: true }, Value::Int(v)) if *v < 0 => {
                Some(Value::UInt(*v as u64))
            }
            _ => None,
        };
        if let Some(converted) = converted {
            *value = converted;
        }
    }
}

/// Decodes the text columns of a binlog row to UTF-8 by their character sets (`text`, one per
/// column, resolved once per table version or table map): the binlog carries text in the
/// column's own set, where a snapshot reads it converted by the server. Columns that need
/// nothing (UTF-8 text, numbers, bytes) are not touched, so a UTF-8 table costs no copy. The
/// error names the column by index.
pub fn decode_text(
    values: &mut [Value],
    text: &[ColumnText],
) -> std::result::Result<(), (usize, String)> {
    for (i, (value, text)) in values.iter_mut().zip(text).enumerate() {
        let Value::Bytes(bytes) = value else {
            continue;
        };
        match text {
            ColumnText::Keep => {}
            ColumnText::Decode(decoding) => {
                if let std::borrow::Cow::Owned(decoded) = decoding
                    .decode(bytes)
                    .map_err(|e| (i, format!("{e} (character set {})", decoding.name)))?
                {
                    *bytes = decoded.into_bytes();
                }
            }
            ColumnText::Unknown => {
                if let Err(e) = std::str::from_utf8(bytes) {
                    return Err((
                        i,
                        format!(
                            "the bytes are not UTF-8 from byte {} on, and the column's character \
                             set is unknown: the schema history comes from a checkpoint written \
                             before tributary recorded character sets, and the binlog does not \
                             name them (binlog_row_metadata = NO_LOG). Run `tributary reset` and \
                             sync again: a new full sync records them (with binlog_row_metadata = \
                             MINIMAL or FULL the binlog names them too)",
                            e.valid_up_to()
                        ),
                    ));
                }
            }
            ColumnText::Unsupported(charset) => {
                return Err((
                    i,
                    format!(
                        "the column is in character set {charset} (as the binlog's table map \
                         says), which tributary cannot decode; convert the column (ALTER TABLE … \
                         MODIFY … CHARACTER SET utf8mb4) or leave it out with COLUMNS (...)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `"1714528800.123456"` (epoch seconds, as the binlog carries TIMESTAMP) → the UTC date-time.
fn timestamp_value(text: &[u8]) -> Option<Value> {
    let text = std::str::from_utf8(text).ok()?;
    let (seconds, fraction) = text.split_once('.').unwrap_or((text, ""));
    let seconds: i64 = seconds.parse().ok()?;
    if seconds == 0 && fraction.trim_matches('0').is_empty() {
        return Some(Value::Date(0, 0, 0, 0, 0, 0, 0));
    }
    // The fraction's first six digits, right-padded with zeros: microseconds, no String.
    let mut micros = 0u32;
    for i in 0..6 {
        let digit = match fraction.as_bytes().get(i) {
            Some(d) if d.is_ascii_digit() => u32::from(d - b'0'),
            Some(_) => return None,
            None => 0,
        };
        micros = micros * 10 + digit;
    }
    let (y, m, d) = crate::temporal::civil_from_days(seconds.div_euclid(86_400));
    let in_day = seconds.rem_euclid(86_400);
    Some(Value::Date(
        y as u16,
        m as u8,
        d as u8,
        (in_day / 3600) as u8,
        (in_day / 60 % 60) as u8,
        (in_day % 60) as u8,
        micros,
    ))
}

/// Events tributary has no use for, skipped without decoding: INTVAR, RAND, USER_VAR,
/// HEARTBEAT, ROWS_QUERY, PREVIOUS_GTIDS. mysql_common's decoders trust their lengths (a damaged
/// PREVIOUS_GTIDS asked for a multi-gigabyte allocation — found by the binlog_events fuzz
/// target).
const IGNORED_EVENTS: [u8; 6] = [5, 13, 14, 27, 29, 35];

/// MySQL 8's compressed transaction (`binlog_transaction_compression`).
const TRANSACTION_PAYLOAD_EVENT: u8 = 40;

/// MariaDB's event types that mysql_common does not decode.
const MARIADB_ANNOTATE_ROWS_EVENT: u8 = 160;
const MARIADB_BINLOG_CHECKPOINT_EVENT: u8 = 161;
const MARIADB_GTID_EVENT: u8 = 162;
const MARIADB_GTID_LIST_EVENT: u8 = 163;

/// The GTID of the transaction being read.
enum TransactionGtid {
    MariaDb {
        domain: u32,
        server_id: u32,
        sequence: u64,
    },
    MySql {
        source: String,
        gno: u64,
    },
}

/// Where a stream's GTID tracking starts: MariaDB tracks its domains from wherever it starts;
/// a MySQL-flavor stream knows its GTID set only when `from` has one.
fn start_gtids(kind: SourceKind, from: &BinlogPosition) -> Result<Option<GtidPosition>> {
    let bad = |e: String| {
        Error::Config(format!(
            "the start GTID `{}` does not fit this {} source: {e}",
            from.gtid.as_deref().unwrap_or_default(),
            kind.name()
        ))
    };
    Ok(match (kind, &from.gtid) {
        (SourceKind::MariaDb, gtid) => Some(GtidPosition::MariaDb(
            MariaDbGtidPos::parse(gtid.as_deref().unwrap_or_default()).map_err(bad)?,
        )),
        (_, Some(set)) => Some(GtidPosition::MySql(MysqlGtidSet::parse(set).map_err(bad)?)),
        (_, None) => None,
    })
}

/// Table schemas by `db.table`, for normalizing values of the tables the project syncs.
pub type TableTypes = HashMap<String, Vec<SqlType>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_claiming_more_bytes_than_the_file_holds_is_a_located_error() {
        // A 19-byte v4 header: timestamp, type (WRITE_ROWS), server id, event size 4 GiB - 1,
        // log_pos, flags. The decoder used to allocate the claimed size first (found by the
        // binlog_events fuzz target as an out-of-memory).
        let mut bytes = b"\xfebin".to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 0, 30, 1, 0, 0, 0]);
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut reader = BinlogReader::recorded(bytes, "mysql-bin.000009").unwrap();
        let error = futures::executor::block_on(reader.next()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("mysql-bin.000009 is damaged at offset 4: an event of 4294967295 bytes"),
            "{error}"
        );
    }

    #[test]
    fn inputs_the_fuzz_target_crashed_on_are_errors() {
        // Each file under testdata/fuzz/binlog_events is the bytes after the binlog magic.
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/fuzz/binlog_events");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let mut bytes = b"\xfebin".to_vec();
            bytes.extend(std::fs::read(&path).unwrap());
            let mut reader = BinlogReader::recorded(bytes, "fuzz-bin.000001").unwrap();
            let mut outcome = Ok(None);
            for _ in 0..100 {
                outcome = futures::executor::block_on(reader.next());
                if !matches!(outcome, Ok(Some(_))) {
                    break;
                }
            }
            assert!(outcome.is_err(), "{}: {outcome:?}", path.display());
        }
    }

    #[test]
    fn statements_opening_with_multibyte_characters_are_not_xa() {
        // `trimmed[..3]` split the `é` and panicked on these.
        assert_eq!(XaCommand::parse("ééé = 1"), None);
        assert_eq!(XaCommand::parse("a日本"), None);
        assert_eq!(XaCommand::parse("XA"), None);
        assert_eq!(
            XaCommand::parse("xa commit X'7831',X'',1"),
            Some(XaCommand::Finish {
                xid: "X'7831',X'',1".into(),
                commit: true
            })
        );
        assert_eq!(
            XaCommand::parse("XA START X'7831',X'',1/*!*/"),
            Some(XaCommand::Start)
        );
        assert_eq!(
            XaCommand::parse("xa rollback x'7a31',X'',1"),
            Some(XaCommand::Finish {
                xid: "X'7A31',X'',1".into(),
                commit: false
            })
        );
        // The prepare event's xid reads like the statement's.
        let mut prepare = vec![0u8];
        prepare.extend_from_slice(&1u32.to_le_bytes());
        prepare.extend_from_slice(&2u32.to_le_bytes());
        prepare.extend_from_slice(&0u32.to_le_bytes());
        prepare.extend_from_slice(b"z1");
        assert_eq!(xid_of_prepare(&prepare), "X'7A31',X'',1");
        assert_eq!(
            XaCommand::parse("XA END X'7831',X'',1"),
            Some(XaCommand::End)
        );
    }

    #[test]
    fn binlog_values_become_snapshot_values() {
        let types = vec![
            SqlType::parse("enum('a','b')"),
            SqlType::parse("set('x','y','z')"),
            SqlType::parse("timestamp(6)"),
            SqlType::parse("int(10) unsigned"),
            SqlType::parse("bigint(20) unsigned"),
            SqlType::parse("year(4)"),
            SqlType::parse("timestamp"),
            SqlType::parse("mediumint(9)"),
        ];
        let mut row = vec![
            Value::Int(2),
            Value::Bytes(vec![0b101]),
            Value::Bytes(b"1714528800.123456".to_vec()),
            Value::Int(-1),
            Value::Int(-1),
            Value::Bytes(b"1900".to_vec()),
            Value::Bytes(b"0".to_vec()),
            Value::Int(8_388_608),
        ];
        normalize_row(&mut row, &types);
        assert_eq!(
            row,
            vec![
                Value::Bytes(b"b".to_vec()),
                Value::Bytes(b"x,z".to_vec()),
                Value::Date(2024, 5, 1, 2, 0, 0, 123_456),
                Value::UInt(u32::MAX as u64),
                Value::UInt(u64::MAX),
                Value::Int(0),
                Value::Date(0, 0, 0, 0, 0, 0, 0),
                Value::Int(-8_388_608),
            ]
        );
    }
}
