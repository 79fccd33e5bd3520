//! The schema history: the source's table schemas as of a binlog position. A restart decodes the
//! events after its checkpoint with the schemas they were written with, not today's; DDL read
//! from the binlog moves the history forward (see `ddl`), and the checkpoint stores it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One table's schema in the schema history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableSchema {
    pub database: String,
    pub name: String,
    pub columns: Vec<ColumnSchema>,
    pub primary_key: Vec<String>,
    pub unique_keys: Vec<(String, Vec<String>)>,
    /// The table's default character set, which a text column added without one gets; `None`
    /// in a checkpoint written before tributary recorded character sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charset: Option<String>,
    /// The table's default collation (what row filters give text literals); `None` in a
    /// checkpoint written before tributary recorded collations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collation: Option<String>,
}

/// One column in the schema history. Stored as `[name, COLUMN_TYPE, nullable]`, with the
/// character set of a text column as a fourth element and its collation as a fifth: a
/// checkpoint written before tributary recorded them loads with them unknown.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSchema {
    pub name: String,
    pub column_type: String,
    pub nullable: bool,
    pub charset: Option<String>,
    pub collation: Option<String>,
}

impl ColumnSchema {
    pub fn new(name: String, column_type: String, nullable: bool) -> ColumnSchema {
        ColumnSchema {
            name,
            column_type,
            nullable,
            charset: None,
            collation: None,
        }
    }

    /// Whether the column has a character set (CHAR, VARCHAR, TEXT, ENUM, SET).
    pub fn is_text(&self) -> bool {
        use crate::plan::SqlType;
        matches!(
            SqlType::parse(&self.column_type),
            SqlType::Char { .. }
                | SqlType::VarChar { .. }
                | SqlType::Text
                | SqlType::Enum { .. }
                | SqlType::Set { .. }
        )
    }
}

/// The stored forms of a [`ColumnSchema`].
#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum StoredColumn {
    WithCollation(String, String, bool, Option<String>, Option<String>),
    WithCharset(String, String, bool, Option<String>),
    Plain(String, String, bool),
}

impl Serialize for ColumnSchema {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (name, column_type) = (self.name.clone(), self.column_type.clone());
        match (&self.charset, &self.collation) {
            (_, Some(collation)) => StoredColumn::WithCollation(
                name,
                column_type,
                self.nullable,
                self.charset.clone(),
                Some(collation.clone()),
            ),
            (Some(charset), None) => {
                StoredColumn::WithCharset(name, column_type, self.nullable, Some(charset.clone()))
            }
            (None, None) => StoredColumn::Plain(name, column_type, self.nullable),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ColumnSchema {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ColumnSchema, D::Error> {
        Ok(match StoredColumn::deserialize(deserializer)? {
            StoredColumn::WithCollation(name, column_type, nullable, charset, collation) => {
                ColumnSchema {
                    name,
                    column_type,
                    nullable,
                    charset,
                    collation,
                }
            }
            StoredColumn::WithCharset(name, column_type, nullable, charset) => ColumnSchema {
                name,
                column_type,
                nullable,
                charset,
                collation: None,
            },
            StoredColumn::Plain(name, column_type, nullable) => {
                ColumnSchema::new(name, column_type, nullable)
            }
        })
    }
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
                    .map(|c| ColumnSchema {
                        name: c.name.clone(),
                        column_type: c.column_type.clone(),
                        nullable: c.nullable,
                        charset: c.charset.clone(),
                        collation: c.collation.clone(),
                    })
                    .collect(),
                primary_key: t.primary_key.clone(),
                unique_keys: t.unique_keys.clone(),
                charset: t.charset.clone(),
                collation: t.collation.clone(),
            })
            .collect()
    }

    /// A table created without a character set of its own has its database's defaults
    /// (`charset`, `collation`): the table, and each text column that named no set.
    pub fn take_database_defaults(&mut self, charset: &str, collation: &str) {
        self.charset = Some(charset.to_string());
        self.collation = Some(collation.to_string());
        for column in &mut self.columns {
            if column.charset.is_none() && column.is_text() {
                column.charset = Some(charset.to_string());
                if column.collation.is_none() {
                    column.collation = Some(collation.to_string());
                }
            }
        }
    }

    /// Whether a collation the table or one of its text columns has is not known.
    pub fn lacks_collations(&self) -> bool {
        (self.charset.is_some() && self.collation.is_none())
            || self
                .columns
                .iter()
                .any(|c| c.is_text() && c.charset.is_some() && c.collation.is_none())
    }

    /// The collations the schema history does not know, from the live catalog: the table's, and
    /// each text column's whose name and character set the catalog has too.
    pub fn take_live_collations(&mut self, live: &crate::plan::Catalog) {
        let Some(table) = live
            .tables
            .iter()
            .find(|t| t.database == self.database && t.name == self.name)
        else {
            return;
        };
        if self.collation.is_none() && table.charset == self.charset {
            self.collation = table.collation.clone();
        }
        for column in self.columns.iter_mut().filter(|c| c.is_text()) {
            if column.collation.is_some() {
                continue;
            }
            if let Some(known) = table
                .columns
                .iter()
                .find(|l| l.name.eq_ignore_ascii_case(&column.name) && l.charset == column.charset)
            {
                column.collation = known.collation.clone();
            }
        }
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
                        .map(|c| crate::plan::ColumnDef {
                            name: c.name.clone(),
                            sql_type: crate::plan::SqlType::parse(&c.column_type),
                            column_type: c.column_type.clone(),
                            nullable: c.nullable,
                            charset: c.charset.clone(),
                            collation: c.collation.clone(),
                        })
                        .collect(),
                    primary_key: t.primary_key.clone(),
                    unique_keys: t.unique_keys.clone(),
                    charset: t.charset.clone(),
                    collation: t.collation.clone(),
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
    /// The statement's meaning for the project. `synced` lists the synced tables (`db.table`,
    /// lower case); `syncs(database, table)` says whether a SYNC statement would take a table.
    /// A statement that does not parse is taken to change every synced table of its default
    /// database.
    pub fn of(
        schema: &str,
        query: &str,
        synced: &[&str],
        syncs: impl Fn(&str, &str) -> bool,
    ) -> Ddl {
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
                let prefix = format!("{}.", schema.to_ascii_lowercase());
                let changed: Vec<String> = synced
                    .iter()
                    .filter(|t| t.starts_with(&prefix))
                    .map(|t| t.to_string())
                    .collect();
                if !changed.is_empty() {
                    tracing::warn!(statement = %query, "a statement tributary cannot parse is passed through as DDL");
                }
                (changed, false)
            }
        };
        Ddl {
            named,
            synced: changed,
            reaches_new,
        }
    }

    /// Whether the project sends or plans anything for it: it changes a synced table or brings
    /// one in. Other statements only move the schema history.
    pub fn concerns_project(&self) -> bool {
        !self.synced.is_empty() || self.reaches_new
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
    fn schemas_of_old_checkpoints_load_with_unknown_charsets() {
        let old = r#"{"database":"shop","name":"t","columns":[["id","int(11)",false],
            ["note","varchar(20)",true]],"primary_key":["id"],"unique_keys":[]}"#;
        let schema: TableSchema = serde_json::from_str(old).unwrap();
        assert_eq!(schema.charset, None);
        assert_eq!(
            schema.columns[1],
            ColumnSchema::new("note".into(), "varchar(20)".into(), true)
        );
        let mut new = schema.clone();
        new.charset = Some("latin1".into());
        new.columns[1].charset = Some("latin1".into());
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(r#"["id","int(11)",false],["note","varchar(20)",true,"latin1"]"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<TableSchema>(&text).unwrap(), new);
        new.collation = Some("latin1_swedish_ci".into());
        new.columns[1].collation = Some("latin1_bin".into());
        let text = serde_json::to_string(&new).unwrap();
        assert!(
            text.contains(r#"["note","varchar(20)",true,"latin1","latin1_bin"]"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<TableSchema>(&text).unwrap(), new);
    }

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
            (alter.synced, alter.reaches_new),
            (vec!["shop.orders".to_string()], false)
        );
        // A table created into a pattern is new; one outside every pattern only moves the history.
        let create = Ddl::of("shop", "CREATE TABLE orders_2024 (id INT)", &synced, syncs);
        assert_eq!((create.synced.len(), create.reaches_new), (0, true));
        let misc = Ddl::of("shop", "CREATE TABLE misc (id INT)", &synced, syncs);
        assert!(!misc.concerns_project());
        assert_eq!(misc.named, Some(vec!["shop.misc".to_string()]));
    }
}
