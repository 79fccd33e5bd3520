//! Loads a [`Catalog`] — tables, columns, keys, character sets — from a live source's
//! `information_schema`.

use mysql_async::Conn;
use mysql_async::prelude::*;

use super::query_error;
use crate::error::Result;
use crate::plan::charset::Charset;
use crate::plan::{Catalog, ColumnDef, SqlType, TableDef};
use crate::project::{Databases, NamePattern, Zone};

/// Schemas that hold the server's own tables, never synced.
const SYSTEM_SCHEMAS: &[&str] = &[
    "information_schema",
    "mysql",
    "performance_schema",
    "sys",
    "oceanbase",
    "__recyclebin",
    "__public",
    "LBACSYS",
    "ORAAUDITOR",
];

/// Reads the base tables of `databases`. The databases are chosen in the query itself: a
/// catalog read over every database of a server with thousands of tables takes seconds
/// (MariaDB opens each table to list its columns).
pub async fn load_catalog(conn: &mut Conn, databases: &Databases) -> Result<Catalog> {
    let (schema_filter, params): (String, Vec<String>) = match databases {
        Databases::Matching(patterns) if patterns.is_empty() => return Ok(Catalog::default()),
        Databases::Matching(patterns) => {
            // `{0}` stands for the schema column of each query. LIKE patterns match
            // case-insensitively, as the project's do.
            let terms: Vec<&str> = patterns
                .iter()
                .map(|p| match p {
                    NamePattern::Like(_) => "LOWER({0}) LIKE LOWER(?)",
                    _ => "{0} = ?",
                })
                .collect();
            let params = patterns
                .iter()
                .map(|p| match p {
                    NamePattern::Exact(name) | NamePattern::Like(name) => name.clone(),
                    NamePattern::Any => String::new(),
                })
                .collect();
            (format!("({})", terms.join(" OR ")), params)
        }
        Databases::All => (
            format!(
                "{{0}} NOT IN ({})",
                vec!["?"; SYSTEM_SCHEMAS.len()].join(", ")
            ),
            SYSTEM_SCHEMAS.iter().map(|s| s.to_string()).collect(),
        ),
    };
    let on = |column: &str| schema_filter.replace("{0}", column);
    type ColumnRow = (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let columns: Vec<ColumnRow> = conn
        .exec(
            format!(
                "SELECT c.TABLE_SCHEMA, c.TABLE_NAME, c.COLUMN_NAME, c.COLUMN_TYPE, c.IS_NULLABLE, \
                   c.CHARACTER_SET_NAME, t.TABLE_COLLATION, c.COLLATION_NAME \
                 FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
                   ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
                 WHERE t.TABLE_TYPE = 'BASE TABLE' AND {} AND {} \
                 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION",
                on("c.TABLE_SCHEMA"),
                on("t.TABLE_SCHEMA")
            ),
            [params.clone(), params.clone()].concat(),
        )
        .await
        .map_err(query_error(
            "reading the source's columns from information_schema",
        ))?;
    let indexes: Vec<(String, String, String, i64, Option<String>)> = conn
        .exec(
            format!(
                "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, NON_UNIQUE, COLUMN_NAME \
                 FROM information_schema.STATISTICS WHERE {} \
                 ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
                on("TABLE_SCHEMA")
            ),
            params,
        )
        .await
        .map_err(query_error(
            "reading the source's indexes from information_schema",
        ))?;

    let mut catalog = Catalog::default();
    for (database, table, column, column_type, nullable, charset, table_collation, collation) in
        columns
    {
        let same_table = catalog
            .tables
            .last()
            .is_some_and(|t| t.database == database && t.name == table);
        if !same_table {
            catalog.tables.push(TableDef {
                database: database.clone(),
                name: table.clone(),
                columns: Vec::new(),
                primary_key: Vec::new(),
                unique_keys: Vec::new(),
                charset: table_collation.as_deref().map(Charset::of_collation),
                collation: table_collation.clone(),
            });
        }
        if let Some(t) = catalog.tables.last_mut() {
            t.columns.push(ColumnDef {
                sql_type: SqlType::parse(&column_type),
                name: column,
                column_type,
                nullable: nullable.eq_ignore_ascii_case("YES"),
                charset,
                collation,
            });
        }
    }
    // A functional index part (MySQL 8) has no column name: such an index cannot be a key.
    let mut functional: Vec<(String, String, String)> = Vec::new();
    for (database, table, index, non_unique, column) in indexes {
        let Some(column) = column else {
            functional.push((database, table, index));
            continue;
        };
        if non_unique != 0 {
            continue;
        }
        let Some(t) = catalog
            .tables
            .iter_mut()
            .find(|t| t.database == database && t.name == table)
        else {
            continue;
        };
        if index == "PRIMARY" {
            t.primary_key.push(column);
        } else if let Some((_, cols)) = t.unique_keys.iter_mut().find(|(name, _)| *name == index) {
            cols.push(column);
        } else {
            t.unique_keys.push((index, vec![column]));
        }
    }
    for table in &mut catalog.tables {
        table.unique_keys.retain(|(index, _)| {
            !functional
                .iter()
                .any(|(d, t, i)| *d == table.database && *t == table.name && i == index)
        });
    }
    Ok(catalog)
}

/// A database's default character set and collation, which a table created without them takes.
pub async fn database_defaults(
    conn: &mut Conn,
    database: &str,
) -> Result<Option<(String, String)>> {
    conn.exec_first(
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA \
         WHERE SCHEMA_NAME = ?",
        (database,),
    )
    .await
    .map_err(query_error(format!(
        "reading the default character set and collation of database {database}"
    )))
}

/// The zone the server's sessions read date-times in (`@@global.time_zone`): a fixed offset,
/// or a named zone whose offset moves during the year. `SYSTEM` and named zones are measured in
/// January and in July; a zone the server cannot convert (its time zone tables are not loaded)
/// counts as moving, so nothing depends on a guess.
pub async fn server_zone(conn: &mut Conn) -> Result<Zone> {
    let read = "reading the server's time_zone";
    let name: String = conn
        .query_first("SELECT @@global.time_zone")
        .await
        .map_err(query_error(read))?
        .unwrap_or_default();
    if let Some(offset) = crate::temporal::parse_offset(&name) {
        return Ok(Zone::Offset(offset));
    }
    // A server that cannot run the conversion (no CONVERT_TZ) leaves the zone unknown too.
    let offsets: Option<(Option<i64>, Option<i64>)> = conn
        .query_first(
            "SELECT TIMESTAMPDIFF(SECOND, '2024-01-15 12:00:00', \
               CONVERT_TZ('2024-01-15 12:00:00', '+00:00', @@global.time_zone)), \
             TIMESTAMPDIFF(SECOND, '2024-07-15 12:00:00', \
               CONVERT_TZ('2024-07-15 12:00:00', '+00:00', @@global.time_zone))",
        )
        .await
        .unwrap_or(None);
    Ok(match offsets {
        Some((Some(winter), Some(summer))) if winter == summer => Zone::Offset(winter),
        _ => Zone::Varying(name),
    })
}

/// The Unix time of a wall-clock time (its seconds as if UTC) in the server's zone, as the
/// server converts it (daylight saving included); `None` when it cannot.
pub async fn epoch_of_wall_clock(conn: &mut Conn, wall_clock: i64) -> Result<Option<i64>> {
    let epoch: Option<Option<i64>> = conn
        .exec_first(
            "SELECT TIMESTAMPDIFF(SECOND, '1970-01-01 00:00:00', CONVERT_TZ( \
               TIMESTAMPADD(SECOND, ?, '1970-01-01 00:00:00'), @@global.time_zone, '+00:00'))",
            (wall_clock,),
        )
        .await
        .map_err(query_error(
            "converting start_timestamp in the server's time_zone",
        ))?;
    Ok(epoch.flatten())
}
