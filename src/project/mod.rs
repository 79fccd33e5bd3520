//! The project file: SQL statements → a typed model, with no I/O beyond reading the file and
//! `env('NAME')` lookups.
//!
//! [`parse`] keeps a [`Pos`] for everything it reads, so that every later error — an unknown
//! option, a column that does not exist, a filter that does not type-check — points at the
//! file, line and column a person has to fix.

pub mod csv_import;
pub mod dialect;
mod options;
mod parse;

use std::fmt;
use std::path::{Path, PathBuf};

pub use options::{
    DmlTypes, Format, IncrementalContent, LakeMode, Partitioning, SinkKind, SyncTypes,
};
pub use parse::parse_project;

use crate::error::{Error, Result};

/// A line and column in the project file (both 1-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A value read from the project file, with where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub pos: Pos,
}

/// A whole project file.
#[derive(Debug, Clone)]
pub struct ProjectFile {
    pub path: PathBuf,
    pub source: SourceDef,
    pub sink: SinkDef,
    pub project: ProjectDef,
    pub syncs: Vec<SyncDef>,
}

/// The databases a project's SYNC statements reach: what the catalog reads and the schema
/// history follows.
#[derive(Debug, Clone, PartialEq)]
pub enum Databases {
    /// A SYNC names databases by `*`: every database but the server's own.
    All,
    /// Database names and `LIKE` patterns.
    Matching(Vec<NamePattern>),
}

impl Databases {
    pub fn covers(&self, database: &str) -> bool {
        match self {
            Databases::All => true,
            Databases::Matching(patterns) => patterns.iter().any(|p| p.matches(database)),
        }
    }
}

impl ProjectFile {
    /// The databases the SYNC statements' patterns could match.
    pub fn databases(&self) -> Databases {
        let mut patterns: Vec<NamePattern> = Vec::new();
        for sync in &self.syncs {
            match &sync.tables.database {
                NamePattern::Any => return Databases::All,
                pattern if !patterns.contains(pattern) => patterns.push(pattern.clone()),
                _ => {}
            }
        }
        Databases::Matching(patterns)
    }

    /// Whether a SYNC statement takes `database.table` (tables created later included).
    pub fn syncs_table(&self, database: &str, table: &str) -> bool {
        self.syncs.iter().any(|s| {
            s.tables.matches(database, table)
                && !s.except.iter().any(|e| e.matches(database, table))
        })
    }

    /// Reads and parses a project file. A file that cannot be read, is binary or is not UTF-8
    /// is a project error (exit 1, nothing was written); a UTF-8 byte-order mark is skipped.
    pub fn load(path: &Path) -> Result<ProjectFile> {
        let bytes = std::fs::read(path).map_err(|e| {
            let what = match e.kind() {
                std::io::ErrorKind::NotFound => "does not exist; check the path".to_string(),
                std::io::ErrorKind::PermissionDenied => {
                    "cannot be read: permission denied; check its permissions".to_string()
                }
                std::io::ErrorKind::IsADirectory => {
                    "is a directory; name the project's .sql file".to_string()
                }
                _ => format!("cannot be read: {e}"),
            };
            Error::Config(format!("project file {} {what}", path.display()))
        })?;
        let text = project_text(&bytes).map_err(|(pos, problem)| match pos {
            Some(pos) => Error::Project {
                file: path.to_path_buf(),
                line: pos.line,
                column: pos.column,
                message: problem,
            },
            None => Error::Config(format!("project file {} {problem}", path.display())),
        })?;
        parse_project(path, text)
    }
    /// An error located in this file.
    pub fn error_at(&self, pos: Pos, message: impl Into<String>) -> Error {
        Error::Project {
            file: self.path.clone(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        }
    }
}

/// A project file's bytes as text: UTF-8, without a byte-order mark (editors on Windows add
/// one). The error says what the file is instead, and where the first bad byte is.
fn project_text(bytes: &[u8]) -> std::result::Result<&str, (Option<Pos>, String)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Err((None, "is UTF-16 text; save it as UTF-8".to_string()));
    }
    // Text files hold no NUL byte: this is an executable, an archive, an image...
    if bytes.contains(&0) {
        return Err((
            None,
            "is a binary file, not a project file; name the project's .sql file".to_string(),
        ));
    }
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = &bytes[..e.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        // Columns count characters, as in every other message.
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let pos = Pos {
            line: line as u64,
            column: column as u64,
        };
        let message = format!(
            "byte 0x{:02X} is not UTF-8; project files are UTF-8 text: save the file as UTF-8 \
             (e.g. `iconv -f latin1 -t utf-8`)",
            bytes[e.valid_up_to()]
        );
        (Some(pos), message)
    })
}

/// Which server a source is; decides the SQL dialect of the catalog and the binlog flavor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    OceanBase,
    MySql,
    MariaDb,
}

impl SourceKind {
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::OceanBase => "oceanbase",
            SourceKind::MySql => "mysql",
            SourceKind::MariaDb => "mariadb",
        }
    }
}

/// `CREATE SOURCE name WITH (...)`.
#[derive(Debug, Clone)]
pub struct SourceDef {
    pub name: Spanned<String>,
    pub kind: SourceKind,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    /// Where the binlog is read: the OceanBase Binlog Service, or the server itself.
    pub binlog_host: String,
    pub binlog_port: u16,
    /// The replica id of the binlog connection.
    pub server_id: u32,
    /// The `timezone` option as written (`+HH:MM`); `None`: the server's `time_zone`.
    pub timezone: Option<Spanned<String>>,
    /// The zone a MySQL session of this source reads date-times in: the `timezone` option, or
    /// the server's, which planning asks for (`Zone::Offset(0)` until then).
    pub zone: Zone,
}

/// A session time zone: what TIMESTAMP values and date-time text mean as wall-clock times.
#[derive(Debug, Clone, PartialEq)]
pub enum Zone {
    /// Seconds east of UTC, the same all year.
    Offset(i64),
    /// A named zone whose offset changes during the year (daylight saving): its name.
    Varying(String),
}

impl SourceDef {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// `CREATE SINK name WITH (...)`: for Kafka, librdkafka properties passed through unchanged;
/// for a lake sink, where and how its tables are written.
#[derive(Debug, Clone)]
pub struct SinkDef {
    pub name: Spanned<String>,
    pub kind: SinkKind,
    /// Quoted properties: librdkafka's for Kafka, the object store's (`'s3.endpoint'`, ...) for
    /// a lake sink.
    pub properties: Vec<(Spanned<String>, String)>,
    /// A lake sink's own options; `None` for Kafka.
    pub lake: Option<LakeDef>,
}

/// The options of a Parquet or Delta Lake sink.
#[derive(Debug, Clone)]
pub struct LakeDef {
    /// `file:///dir`, a plain local directory, or `s3://bucket/prefix`.
    pub path: Spanned<String>,
    /// A data file is closed once it holds about this many bytes.
    pub file_bytes: u64,
    /// How often incremental sync commits what it wrote.
    pub commit_interval_ms: u64,
}

/// The quoted properties a lake sink takes (the object store's), besides its options.
pub const LAKE_PROPERTIES: &[&str] = &[
    "s3.endpoint",
    "s3.region",
    "s3.access_key_id",
    "s3.secret_access_key",
    "s3.session_token",
    "s3.allow_http",
];

impl SinkDef {
    pub fn is_lake(&self) -> bool {
        self.lake.is_some()
    }

    /// A quoted property's value.
    pub fn property(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k.value.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }

    pub fn bootstrap_servers(&self) -> &str {
        self.properties
            .iter()
            .find(|(k, _)| k.value == "bootstrap.servers")
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// `CREATE PROJECT name FROM source TO sink WITH (...)`.
#[derive(Debug, Clone)]
pub struct ProjectDef {
    pub name: Spanned<String>,
    pub sync: SyncTypes,
    pub incremental: IncrementalContent,
    pub dml: DmlTypes,
    pub format: Format,
    pub partitioning: Partitioning,
    pub partition: i32,
    pub start: Option<Spanned<StartPoint>>,
    pub business_system_id: Option<String>,
    pub topic_partitions: i32,
    pub topic_replication: i32,
    pub full_concurrency: usize,
    pub batch_rows: usize,
    /// Rows per full-sync chunk: the unit of parallelism and of resuming.
    pub chunk_rows: u64,
    pub exactly_once: bool,
    /// Throttling: rows read from the source, and message payload bytes sent to Kafka, per
    /// second, for full and incremental sync alike; `None` = unlimited.
    pub max_rows_per_second: Option<u64>,
    pub max_bytes_per_second: Option<u64>,
    /// Lake sinks: a changelog or (Delta) the current state by key.
    pub mode: LakeMode,
    /// Lake changelogs: an UPDATE also writes its before image (`_op = 'update_before'`).
    pub before_images: bool,
}

/// Where incremental sync starts when it is not handed a position by full sync.
#[derive(Debug, Clone, PartialEq)]
pub enum StartPoint {
    /// Epoch seconds (from `start_timestamp`, a date-time or a Unix timestamp).
    Timestamp(i64),
    /// `start_timestamp` as a date-time without a `timezone` to read it in: its wall-clock
    /// seconds (as if UTC), turned into a [`StartPoint::Timestamp`] in the server's zone when
    /// the project is planned.
    WallClock(i64),
    /// `start_position = 'file:pos'`.
    Position { file: String, pos: u64 },
    /// `start_gtid = '...'`.
    Gtid(String),
}

/// One part of a table pattern: a database or a table name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamePattern {
    /// `*`: every name.
    Any,
    /// A name without wildcards, or one quoted with backticks.
    Exact(String),
    /// A name with `%` or `_`, matched as SQL `LIKE` (case-insensitively, as MySQL does).
    Like(String),
}

impl NamePattern {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Any => true,
            NamePattern::Exact(exact) => exact.eq_ignore_ascii_case(name),
            NamePattern::Like(pattern) => like_matches(pattern.as_bytes(), name.as_bytes()),
        }
    }
}

/// SQL `LIKE` with `%` and `_` (and `\` escapes), ASCII case-insensitive.
fn like_matches(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'%', rest)) if rest.first() == Some(&b'%') => like_matches(rest, name),
        Some((b'%', rest)) => (0..=name.len()).any(|skip| like_matches(rest, &name[skip..])),
        Some((b'_', rest)) => !name.is_empty() && like_matches(rest, &name[1..]),
        Some((b'\\', rest)) if !rest.is_empty() => {
            !name.is_empty() && rest[0].eq_ignore_ascii_case(&name[0]) && {
                like_matches(&rest[1..], &name[1..])
            }
        }
        Some((c, rest)) => {
            !name.is_empty() && c.eq_ignore_ascii_case(&name[0]) && like_matches(rest, &name[1..])
        }
    }
}

/// `db.table` where either part may be a pattern.
#[derive(Debug, Clone, PartialEq)]
pub struct TablePattern {
    pub database: NamePattern,
    pub table: NamePattern,
    /// As written, for messages.
    pub text: String,
    pub pos: Pos,
}

impl TablePattern {
    pub fn matches(&self, database: &str, table: &str) -> bool {
        self.database.matches(database) && self.table.matches(table)
    }
}

/// `SYNC TABLE ... TO TOPIC ...`.
#[derive(Debug, Clone)]
pub struct SyncDef {
    /// 1-based number of this SYNC statement in the file, for messages.
    pub number: usize,
    pub pos: Pos,
    pub tables: TablePattern,
    pub except: Vec<TablePattern>,
    /// The topic name or template (`${database}`, `${table}`); with `TO TABLE`, the lake
    /// table's path template under the sink's path.
    pub topic: Spanned<String>,
    /// `TO TABLE` (a lake sink) rather than `TO TOPIC`.
    pub to_table: bool,
    pub columns: Option<Vec<Spanned<String>>>,
    pub filter: Option<Filter>,
    pub shard_by: Option<Vec<Spanned<String>>>,
    pub format: Option<Format>,
    pub partitioning: Option<Partitioning>,
    pub partition: Option<i32>,
}

/// A row filter as written: the parsed MySQL expression and its text.
#[derive(Debug, Clone)]
pub struct Filter {
    pub expr: sqlparser::ast::Expr,
    pub text: String,
    pub pos: Pos,
}

impl SyncDef {
    pub fn describe(&self) -> String {
        format!(
            "SYNC statement #{} (line {}, `SYNC TABLE {}`)",
            self.number, self.pos.line, self.tables.text
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_text_skips_a_bom_and_names_what_is_not_text() {
        assert_eq!(project_text(b"\xEF\xBB\xBFCREATE"), Ok("CREATE"));
        assert_eq!(project_text(b"CREATE"), Ok("CREATE"));
        let (_, binary) = project_text(b"\x7FELF\x02\x01\x00\x00").unwrap_err();
        assert!(binary.contains("binary file"), "{binary}");
        let (at, latin1) = project_text(
            "-- é\nhost = 'caf\u{e9}"
                .as_bytes()
                .iter()
                .copied()
                .chain([0xE9])
                .collect::<Vec<u8>>()
                .leak(),
        )
        .unwrap_err();
        assert_eq!(
            at,
            Some(Pos {
                line: 2,
                column: 13
            }),
            "{latin1}"
        );
        assert!(latin1.contains("byte 0xE9 is not UTF-8"), "{latin1}");
        let (_, utf16) = project_text(b"\xFF\xFEC\x00").unwrap_err();
        assert!(utf16.contains("UTF-16"), "{utf16}");
    }

    #[test]
    fn like_patterns_match_as_sql_like() {
        let like = |p: &str| NamePattern::Like(p.to_string());
        assert!(like("log_%").matches("log_2024"));
        assert!(like("log_%").matches("LOG_x"));
        assert!(!like("log_%").matches("log"));
        assert!(like("a_c").matches("abc"));
        assert!(!like("a_c").matches("abbc"));
        assert!(like("%").matches(""));
        assert!(like("log\\_%").matches("log_1"));
        assert!(!like("log\\_%").matches("logx1"));
        assert!(NamePattern::Exact("Orders".into()).matches("orders"));
        assert!(NamePattern::Any.matches("anything"));
    }
}
