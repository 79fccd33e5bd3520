//! The schema history: the source's table schemas as of a binlog position. A restart decodes the
//! events after its checkpoint with the schemas they were written with, not today's; DDL read
//! from the binlog moves the history forward (see `ddl`), and the checkpoint stores it.

use serde::{Deserialize, Serialize};

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

/// What a statement read from the binlog means for the tables a project syncs.
#[derive(Debug, PartialEq)]
pub struct Ddl {
    /// The tables the statement names (`db.table`, lower case); `None` when it does not parse.
    pub named: Option<Vec<String>>,
    /// The synced tables it changes: their DDL message goes out as it is read.
    pub synced: Vec<String>,
    /// Whether it brings a table into a SYNC pattern (CREATE, RENAME).
    pub reaches_new: bool,
}

impl Ddl {
    /// The statement's meaning for the project, or `None` when it touches no synced table and
    /// brings none in (nothing to do). `synced` lists the synced tables (`db.table`, lower case);
    /// `syncs(database, table)` says whether a SYNC statement would take a table. A statement
    /// that does not parse is taken to change every synced table of its default database.
    pub fn of(
        schema: &str,
        query: &str,
        synced: &[&str],
        syncs: impl Fn(&str, &str) -> bool,
    ) -> Option<Ddl> {
        let named: Option<Vec<String>> = super::ddl::tables_named(schema, query)
            .map(|tables| tables.iter().map(|t| t.to_ascii_lowercase()).collect());
        let is_synced = |name: &str| synced.contains(&name);
        let (changed, reaches_new) = match &named {
            Some(tables) => (
                tables.iter().filter(|t| is_synced(t)).cloned().collect(),
                tables
                    .iter()
                    .any(|t| !is_synced(t) && t.split_once('.').is_some_and(|(d, n)| syncs(d, n))),
            ),
            None => {
                tracing::warn!(statement = %query, "a statement tributary cannot parse is passed through as DDL");
                let prefix = format!("{}.", schema.to_ascii_lowercase());
                let changed: Vec<String> = synced
                    .iter()
                    .filter(|t| t.starts_with(&prefix))
                    .map(|t| t.to_string())
                    .collect();
                (changed, false)
            }
        };
        if changed.is_empty() && !reaches_new {
            return None;
        }
        Some(Ddl {
            named,
            synced: changed,
            reaches_new,
        })
    }
}

/// The schema history moved past `query`: the new schemas when the statement could be applied
/// to them, `None` when it cannot (then the live catalog is the history's next state).
pub fn after(schemas: &[TableSchema], schema: &str, query: &str) -> Option<Vec<TableSchema>> {
    let mut next = schemas.to_vec();
    match super::ddl::apply(&mut next, schema, query) {
        super::ddl::Applied::Yes => Some(next),
        super::ddl::Applied::No => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_means_what_it_names() {
        let synced = ["shop.orders", "shop.users"];
        let syncs = |d: &str, t: &str| d == "shop" && t.starts_with("o");
        let alter = Ddl::of(
            "shop",
            "ALTER TABLE orders ADD COLUMN x INT",
            &synced,
            syncs,
        );
        assert_eq!(
            alter.map(|d| (d.synced, d.reaches_new)),
            Some((vec!["shop.orders".to_string()], false))
        );
        // A table created into a pattern is new; one outside every pattern means nothing.
        let create = Ddl::of("shop", "CREATE TABLE orders_2024 (id INT)", &synced, syncs);
        assert_eq!(
            create.map(|d| (d.synced.len(), d.reaches_new)),
            Some((0, true))
        );
        assert_eq!(
            Ddl::of("shop", "CREATE TABLE misc (id INT)", &synced, syncs),
            None
        );
    }
}
