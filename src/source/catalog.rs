//! Loads a [`Catalog`] — tables, columns, keys, character sets — from a live source's
//! `information_schema`.

use mysql_async::Conn;
use mysql_async::prelude::*;

use super::query_error;
use crate::error::Result;
use crate::plan::charset::Charset;
use crate::plan::{Catalog, ColumnDef, SqlType, TableDef};
use crate::project::ProjectFile;

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

/// Reads the tables of the databases `project`'s patterns can match. A pattern's database part
/// is matched against the server's database names first (one cheap query): reading every
/// database's columns takes seconds on a server with a thousand databases, and `_` — common
/// in database names — makes a name a pattern.
pub async fn load_for_project(conn: &mut Conn, project: &ProjectFile) -> Result<Catalog> {
    let databases = match crate::plan::databases_needed(project) {
        Some(names) => names,
        None => {
            let names: Vec<String> = conn
                .query("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
                .await
                .map_err(query_error("listing the source's databases"))?;
            names
                .into_iter()
                .filter(|name| !SYSTEM_SCHEMAS.contains(&name.as_str()))
                .filter(|name| {
                    project
                        .syncs
                        .iter()
                        .any(|s| s.tables.database.matches(name))
                })
                .collect()
        }
    };
    load_catalog(conn, Some(&databases)).await
}

/// Reads the base tables of `databases` (`None`: every non-system database).
pub async fn load_catalog(conn: &mut Conn, databases: Option<&[String]>) -> Result<Catalog> {
    let (schema_filter, params): (String, Vec<String>) = match databases {
        Some(names) if !names.is_empty() => (
            format!("IN ({})", vec!["?"; names.len()].join(", ")),
            names.to_vec(),
        ),
        Some(_) => return Ok(Catalog::default()),
        None => (
            format!("NOT IN ({})", vec!["?"; SYSTEM_SCHEMAS.len()].join(", ")),
            SYSTEM_SCHEMAS.iter().map(|s| s.to_string()).collect(),
        ),
    };
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
                 WHERE t.TABLE_TYPE = 'BASE TABLE' AND c.TABLE_SCHEMA {schema_filter} \
                   AND t.TABLE_SCHEMA {schema_filter} \
                 ORDER BY c.TABLE_SCHEMA, c.TABLE_NAME, c.ORDINAL_POSITION"
            ),
            // The filter on both sides: MariaDB does not carry it across the join, and without
            // it reads every table of every database (15 s with a thousand databases).
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
                 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA {schema_filter} \
                 ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"
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
