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
