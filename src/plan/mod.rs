//! The planner: a parsed project plus the source's live schemas → one [`TablePlan`] per synced
//! table, with everything the engines need decided and checked up front — topic, key, shard
//! columns, partitioning, format, the compiled row filter and the column projection.
//!
//! Planning does no I/O: the source stage loads a [`Catalog`] and hands it in, so the same code
//! plans against a live server and in tests.

pub mod charset;
pub mod expr;
pub mod mysql;
pub mod types;

use std::fmt::Write as _;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::project::{Format, NamePattern, Partitioning, Pos, ProjectFile, SyncDef, TablePattern};
pub use expr::CompiledFilter;
pub use types::SqlType;

/// The tables a source has, as far as the project's patterns reach.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub tables: Vec<TableDef>,
}

/// One table's schema as the source reports it.
#[derive(Debug, Clone)]
pub struct TableDef {
    pub database: String,
    pub name: String,
    pub columns: Vec<ColumnDef>,
    pub primary_key: Vec<String>,
    /// Unique indexes other than the primary key, by index name.
    pub unique_keys: Vec<(String, Vec<String>)>,
    /// The table's default character set (what a new text column gets); `None` when unknown.
    pub charset: Option<String>,
    /// The table's default collation (`TABLE_COLLATION`): row filters give it to text
    /// literals. `None` when unknown.
    pub collation: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ColumnDef {
    pub name: String,
    /// `COLUMN_TYPE` as the server reports it, e.g. `bigint(20) unsigned`.
    pub column_type: String,
    pub sql_type: SqlType,
    pub nullable: bool,
    /// The character set of a text column (`CHARACTER_SET_NAME`); `None` for other columns, and
    /// for text columns of a schema history written before tributary recorded it.
    pub charset: Option<String>,
    /// The collation of a text column (`COLLATION_NAME`), which row filters compare under;
    /// `None` for other columns and where unknown.
    pub collation: Option<String>,
}

impl ColumnDef {
    /// Whether the column is text: its values are decoded by its character set.
    pub fn is_text(&self) -> bool {
        matches!(
            self.sql_type,
            SqlType::Char { .. } | SqlType::VarChar { .. } | SqlType::Text
        )
    }

    /// The character set of a text column when tributary cannot decode it.
    pub fn undecodable_charset(&self) -> Option<charset::Unsupported> {
        let name = self.charset.as_deref().filter(|_| self.is_text())?;
        charset::Charset::from_name(name).err()
    }
}

impl TableDef {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.name)
    }

    fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .or_else(|| {
                self.columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
            })
    }
}

/// How a table's rows are identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyKind {
    Primary,
    /// A unique index whose columns are all NOT NULL.
    Unique(String),
    /// No usable key: full sync reads the table in one scan; messages have a null key unless
    /// SHARD BY names columns.
    None,
}

/// Everything the engines need to sync one table.
#[derive(Debug, Clone)]
pub struct TablePlan {
    pub database: String,
    pub table: String,
    /// The SYNC statement that matched this table (1-based).
    pub sync_number: usize,
    pub topic: String,
    pub columns: Vec<ColumnDef>,
    /// The full table as Arrow: every column the source sends, in table order.
    pub schema: SchemaRef,
    /// Indices into `columns` of the columns sent (COLUMNS; all when absent).
    pub projection: Vec<usize>,
    pub filter: Option<CompiledFilter>,
    pub key_kind: KeyKind,
    pub key: Vec<usize>,
    /// Columns whose values form the message key and the hash: SHARD BY, else the key.
    pub shard: Vec<usize>,
    pub partitioning: Partitioning,
    pub partition: i32,
    pub format: Format,
}

impl TablePlan {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.database, self.table)
    }
}

/// The plan for a whole project.
#[derive(Debug, Clone)]
pub struct Plan {
    pub project: ProjectFile,
    pub tables: Vec<TablePlan>,
    /// Things that work but deserve a look, e.g. a table falling back to table partitioning.
    pub warnings: Vec<String>,
}

/// Plans a project against the source's catalog.
pub fn plan(project: ProjectFile, catalog: &Catalog) -> Result<Plan> {
    let mut tables: Vec<TablePlan> = Vec::new();
    let mut warnings = Vec::new();
    let mut owners: Vec<(String, usize)> = Vec::new();
    let mut missing = Vec::new();
    for sync in &project.syncs {
        let matched: Vec<&TableDef> = catalog
            .tables
            .iter()
            .filter(|t| sync.tables.matches(&t.database, &t.name))
            .filter(|t| !sync.except.iter().any(|e| e.matches(&t.database, &t.name)))
            .collect();
        if matched.is_empty() {
            let message = format!(
                "{} matches no table on source `{}`",
                describe_pattern(&sync.tables),
                project.source.name.value
            );
            if is_wildcard(&sync.tables) {
                let later = if project.project.sync.incremental {
                    "tables created later that match it are picked up by incremental sync"
                } else {
                    "it syncs nothing (this project has no incremental sync to pick up tables \
                     created later); check the pattern"
                };
                warnings.push(format!(
                    "{}: {message}; {later}",
                    location(&project, sync.pos)
                ));
            } else {
                // Every missing table is listed, not only the first.
                missing.push(project.error_at(
                    sync.tables.pos,
                    format!(
                        "table `{}` does not exist on source `{}` (or the user cannot see it); \
                         check the name, or create the table",
                        sync.tables.text, project.source.name.value
                    ),
                ));
            }
        }
        for table in matched {
            let qualified = table.qualified();
            if let Some((_, first)) = owners.iter().find(|(t, _)| *t == qualified) {
                let first = &project.syncs[*first - 1];
                return Err(project.error_at(
                    sync.tables.pos,
                    format!(
                        "table `{qualified}` is matched by two statements: {} and {}; a table may \
                         be synced once, so narrow a pattern or add EXCEPT {qualified}",
                        first.describe(),
                        sync.describe()
                    ),
                ));
            }
            owners.push((qualified, sync.number));
            let (plan, warning) = plan_table(&project, sync, table)?;
            warnings.extend(warning);
            tables.push(plan);
        }
    }
    if !missing.is_empty() {
        return Err(Error::several(missing));
    }
    Ok(Plan {
        project,
        tables,
        warnings,
    })
}

fn is_wildcard(pattern: &TablePattern) -> bool {
    matches!(pattern.table, NamePattern::Any)
        || matches!(&pattern.table, NamePattern::Like(p) if p.contains('%'))
        || matches!(&pattern.database, NamePattern::Like(p) if p.contains('%'))
}

fn describe_pattern(pattern: &TablePattern) -> String {
    format!("pattern `{}`", pattern.text)
}

fn location(project: &ProjectFile, pos: Pos) -> String {
    format!("{}:{}", project.path.display(), pos)
}

fn check_ascii(project: &ProjectFile, pos: Pos, what: &str, name: &str) -> Result<()> {
    if let Some(bad) = name.chars().find(|c| !c.is_ascii()) {
        return Err(project.error_at(
            pos,
            format!(
                "{what} `{name}` has the non-ASCII character '{bad}'; OMS and tributary sync only \
                 ASCII names, so rename it or leave it out (EXCEPT, COLUMNS)"
            ),
        ));
    }
    Ok(())
}

/// `${database}` and `${table}` replaced, then checked against Kafka's topic rules.
fn expand_topic(
    project: &ProjectFile,
    sync: &SyncDef,
    table: &TableDef,
) -> Result<(String, Option<String>)> {
    let mut topic = String::new();
    let mut rest = sync.topic.value.as_str();
    while let Some(start) = rest.find("${") {
        topic.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
        let placeholder = &rest[start + 2..end];
        if placeholder.eq_ignore_ascii_case("database") {
            topic.push_str(&table.database);
        } else {
            topic.push_str(&table.name);
        }
        rest = &rest[(end + 1).min(rest.len())..];
    }
    topic.push_str(rest);
    if sync.to_table {
        let valid = topic
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
            && topic
                .split('/')
                .all(|s| !s.is_empty() && s != "." && s != "..");
        if !valid {
            return Err(project.error_at(
                sync.topic.pos,
                format!(
                    "table path `{topic}` (for table {}) is not a valid lake table path: use \
                     the characters A-Z a-z 0-9 . _ - and `/` between non-empty parts",
                    table.qualified()
                ),
            ));
        }
        return Ok((topic, None));
    }
    let valid_chars = topic
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid_chars || topic.is_empty() || topic.len() > 249 || topic == "." || topic == ".." {
        return Err(project.error_at(
            sync.topic.pos,
            format!(
                "topic `{topic}` (for table {}) is not a valid Kafka topic name: use 1 to 249 of \
                 the characters A-Z a-z 0-9 . _ -",
                table.qualified()
            ),
        ));
    }
    let warning = (!(3..=64).contains(&topic.len())).then(|| {
        format!(
            "{}: topic `{topic}` has {} characters; Kafka accepts it, but OMS allows only 3 to 64",
            location(project, sync.topic.pos),
            topic.len()
        )
    });
    Ok((topic, warning))
}

fn plan_table(
    project: &ProjectFile,
    sync: &SyncDef,
    table: &TableDef,
) -> Result<(TablePlan, Vec<String>)> {
    let mut warnings = Vec::new();
    let qualified = table.qualified();
    check_ascii(project, sync.tables.pos, "table", &qualified)?;
    let (topic, warning) = expand_topic(project, sync, table)?;
    warnings.extend(warning);

    let resolve = |names: &[crate::project::Spanned<String>], what: &str| -> Result<Vec<usize>> {
        names
            .iter()
            .map(|n| {
                table.column_index(&n.value).ok_or_else(|| {
                    project.error_at(
                        n.pos,
                        format!(
                            "{what} names column `{}`, which table {qualified} does not have; its \
                             columns are: {}",
                            n.value,
                            table
                                .columns
                                .iter()
                                .map(|c| c.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )
                })
            })
            .collect()
    };
    let projection = match &sync.columns {
        Some(columns) => resolve(columns, "COLUMNS")?,
        None => (0..table.columns.len()).collect(),
    };
    let key_of = |names: &[String]| -> Vec<usize> {
        names.iter().filter_map(|n| table.column_index(n)).collect()
    };
    let (key_kind, key) = if !table.primary_key.is_empty() {
        (KeyKind::Primary, key_of(&table.primary_key))
    } else {
        let mut unique: Vec<&(String, Vec<String>)> = table
            .unique_keys
            .iter()
            .filter(|(_, cols)| {
                cols.iter().all(|c| {
                    table
                        .column_index(c)
                        .is_some_and(|i| !table.columns[i].nullable)
                })
            })
            .collect();
        unique.sort_by(|a, b| a.0.cmp(&b.0));
        match unique.first() {
            Some((name, cols)) => (KeyKind::Unique(name.clone()), key_of(cols)),
            None => (KeyKind::None, Vec::new()),
        }
    };
    let shard = match &sync.shard_by {
        Some(columns) => resolve(columns, "SHARD BY")?,
        None => key.clone(),
    };

    // Every column the source sends must have an Arrow type, or the row cannot be decoded into a
    // batch; a column of an unsupported type has to be left out with COLUMNS at the source.
    let mut fields = Vec::with_capacity(table.columns.len());
    for (i, column) in table.columns.iter().enumerate() {
        if projection.contains(&i) || shard.contains(&i) {
            check_ascii(
                project,
                sync.tables.pos,
                "column",
                &format!("{qualified}.{}", column.name),
            )?;
        }
        // Text in a character set tributary cannot decode is as unsendable as an unknown type.
        let undecodable = column.undecodable_charset();
        match column
            .sql_type
            .arrow_field(&column.name, column.nullable, &column.column_type)
            .filter(|_| undecodable.is_none())
        {
            Some(field) => fields.push(field),
            None if !projection.contains(&i) && !shard.contains(&i) => {
                // Not sent: decode it as opaque bytes so the row still fits the schema.
                fields.push(arrow::datatypes::Field::new(
                    &column.name,
                    arrow::datatypes::DataType::Binary,
                    true,
                ));
            }
            None => {
                let message = match undecodable {
                    Some(charset::Unsupported(charset)) => format!(
                        "column {qualified}.{} is in character set {charset}, which tributary \
                         cannot decode (it decodes what encoding_rs knows: utf8mb4, latin1, gbk, \
                         gb18030, big5, cp1251, …; see docs/types.md); convert the column \
                         (ALTER TABLE … MODIFY … CHARACTER SET utf8mb4) or leave it out with \
                         COLUMNS (...)",
                        column.name
                    ),
                    None => format!(
                        "column {qualified}.{} has type {}, which tributary cannot sync; leave it \
                         out with COLUMNS (...)",
                        column.name, column.column_type
                    ),
                };
                return Err(project.error_at(sync.tables.pos, message));
            }
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));

    let filter = match &sync.filter {
        Some(filter) => Some(
            expr::compile_filter(
                &filter.expr,
                &filter.text,
                &schema,
                &expr::TableInfo {
                    name: &qualified,
                    columns: &table.columns,
                    collation: table.collation.as_deref(),
                    zone: &project.source.zone,
                    flavor: project.source.kind,
                },
            )
            .map_err(|message| project.error_at(filter.pos, message))?,
        ),
        None => None,
    };

    let mut partitioning = sync.partitioning.unwrap_or(project.project.partitioning);
    if partitioning == Partitioning::Hash && shard.is_empty() {
        warnings.push(format!(
            "{}: table {qualified} has no primary key, no non-null unique key and no SHARD BY: \
             its messages get a null key and go to one partition chosen by the table name \
             (table partitioning)",
            location(project, sync.pos)
        ));
        partitioning = Partitioning::Table;
    }
    if let Some(&i) = shard
        .iter()
        .find(|&&i| table.columns[i].sql_type.is_approximate())
    {
        warnings.push(format!(
            "{}: table {qualified} is sharded by FLOAT/DOUBLE column `{}`; equal-looking values \
             may hash differently",
            location(project, sync.pos),
            table.columns[i].name
        ));
    }
    Ok((
        TablePlan {
            database: table.database.clone(),
            table: table.name.clone(),
            sync_number: sync.number,
            topic,
            columns: table.columns.clone(),
            schema,
            projection,
            filter,
            key_kind,
            key,
            shard,
            partitioning,
            partition: sync.partition.unwrap_or(project.project.partition),
            format: sync.format.unwrap_or(project.project.format),
        },
        warnings,
    ))
}

impl Plan {
    /// The `tributary explain` text: per table its topic, columns, filter (as compiled), key,
    /// shard columns, partitioning and format. Deterministic, for golden files.
    pub fn explain(&self) -> String {
        let p = &self.project;
        let mut out = String::new();
        let lake = p.sink.lake.as_ref();
        let _ = writeln!(
            out,
            "project {}: {} source `{}` ({}) -> {} sink `{}` ({})",
            p.project.name.value,
            p.source.kind.name(),
            p.source.name.value,
            p.source.address(),
            p.sink.kind,
            p.sink.name.value,
            lake.map_or(p.sink.bootstrap_servers(), |l| l.path.value.as_str())
        );
        let _ = writeln!(out, "  sync: {}", p.project.sync);
        if p.project.sync.incremental {
            let _ = writeln!(
                out,
                "  incremental: {} (dml: {})",
                p.project.incremental, p.project.dml
            );
        }
        let _ = writeln!(
            out,
            "  full sync: {} chunks at once, {} rows per chunk, {} rows per batch",
            p.project.full_concurrency, p.project.chunk_rows, p.project.batch_rows
        );
        if let Some(lake) = lake {
            let _ = writeln!(
                out,
                "  lake: {} tables, files of about {} MiB, the stream commits every {} ms, mode {}{}",
                p.sink.kind,
                lake.file_bytes >> 20,
                lake.commit_interval_ms,
                p.project.mode,
                if p.project.before_images {
                    ", with before images"
                } else {
                    ""
                }
            );
        } else if p.project.sync.schema {
            let _ = writeln!(
                out,
                "  new topics: {} partitions, replication {}",
                p.project.topic_partitions, p.project.topic_replication
            );
        }
        if let Some(start) = &p.project.start {
            let _ = writeln!(out, "  start: {:?}", start.value);
        }
        if let Some(id) = &p.project.business_system_id {
            let _ = writeln!(out, "  business system id: {id}");
        }
        if p.project.exactly_once {
            let _ = writeln!(out, "  exactly once: Kafka transactions");
        }
        let limits: Vec<String> = [
            p.project.max_rows_per_second.map(|n| format!("{n} rows/s")),
            p.project
                .max_bytes_per_second
                .map(|n| format!("{n} bytes/s")),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !limits.is_empty() {
            let _ = writeln!(out, "  throttling: at most {}", limits.join(" and "));
        }
        for t in &self.tables {
            let name = |i: &usize| t.columns[*i].name.clone();
            let list = |ix: &[usize]| ix.iter().map(name).collect::<Vec<_>>().join(", ");
            let _ = writeln!(
                out,
                "\ntable {} -> {} {} (SYNC #{})",
                t.qualified(),
                if lake.is_some() {
                    "lake table"
                } else {
                    "topic"
                },
                t.topic,
                t.sync_number
            );
            let columns = t
                .projection
                .iter()
                .map(|&i| {
                    let c = &t.columns[i];
                    let arrow = t.schema.field(i).data_type();
                    let null = if c.nullable { "" } else { " NOT NULL" };
                    format!("{} {}{null} as {arrow}", c.name, c.sql_type)
                })
                .collect::<Vec<_>>();
            let _ = writeln!(out, "  columns: {}", columns.join(", "));
            match &t.filter {
                Some(f) => {
                    let _ = writeln!(out, "  filter: {}", f.text);
                    let _ = writeln!(out, "  compiled: {}", f.expr);
                }
                None => {
                    let _ = writeln!(out, "  filter: none");
                }
            }
            let key = match &t.key_kind {
                KeyKind::Primary => format!("primary key ({})", list(&t.key)),
                KeyKind::Unique(index) => format!("unique key {index} ({})", list(&t.key)),
                KeyKind::None => "none (full sync reads it in one scan)".to_string(),
            };
            let _ = writeln!(out, "  key: {key}");
            // Shard columns, partitions and formats are Kafka's.
            if lake.is_some() {
                continue;
            }
            let _ = writeln!(
                out,
                "  shard by: {}",
                if t.shard.is_empty() {
                    "nothing (null message key)".to_string()
                } else {
                    list(&t.shard)
                }
            );
            let partitioning = match t.partitioning {
                Partitioning::One => format!("one (partition {})", t.partition),
                other => other.to_string(),
            };
            let _ = writeln!(out, "  partitioning: {partitioning}");
            let _ = writeln!(out, "  format: {}", t.format);
        }
        for warning in &self.warnings {
            let _ = writeln!(out, "\nwarning: {warning}");
        }
        out
    }
}
