//! DDL text → changes to the schema history, parsed with sqlparser's MySQL dialect, so that a
//! restart replays every DDL between the checkpoint and now with the schema each event was
//! written with. CREATE TABLE with its columns and keys, column changes (ADD/DROP/MODIFY/CHANGE/
//! RENAME COLUMN with FIRST/AFTER), table renames and drops are applied here; anything else (CREATE
//! TABLE ... LIKE / AS SELECT, new keys, a statement that does not parse) makes the caller read the
//! live catalog.
//!
//! Text columns keep their character set: the one the column names (`CHARACTER SET`, or its
//! `COLLATE`), else the table's default. A CREATE TABLE that names no character set takes its
//! database's default, which the statement does not say: it is applied with the set unknown, for
//! the caller to fill in. `CONVERT TO CHARACTER SET` (it may change column types too) and table
//! option changes make the caller read the catalog.

use sqlparser::ast::{
    AlterTableOperation, ColumnOption, CreateTable, CreateTableOptions, DataType, Expr, Ident,
    IndexColumn, MySQLColumnPosition, ObjectName, RenameTableNameKind, SqlOption, Statement,
    TableConstraint, TableObject, visit_relations,
};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;

use super::history::{ColumnSchema, TableSchema};
use crate::plan::charset::Charset;

/// The `db.table` names a DDL statement touches; `None` when it does not parse.
pub fn tables_named(schema: &str, query: &str) -> Option<Vec<String>> {
    let statements = Parser::parse_sql(&MySqlDialect {}, query).ok()?;
    let mut names = Vec::new();
    for statement in &statements {
        match statement {
            Statement::CreateTable(create) => names.push(qualify(schema, &create.name)),
            Statement::AlterTable(alter) => {
                names.push(qualify(schema, &alter.name));
                for operation in &alter.operations {
                    if let AlterTableOperation::RenameTable { table_name } = operation {
                        names.push(qualify(schema, renamed(table_name)));
                    }
                }
            }
            Statement::Drop { names: dropped, .. } => {
                names.extend(dropped.iter().map(|n| qualify(schema, n)))
            }
            Statement::Truncate(truncate) => names.extend(
                truncate
                    .table_names
                    .iter()
                    .map(|t| qualify(schema, &t.name)),
            ),
            Statement::RenameTable(renames) => {
                for rename in renames {
                    names.push(qualify(schema, &rename.old_name));
                    names.push(qualify(schema, &rename.new_name));
                }
            }
            Statement::CreateIndex(index) => names.push(qualify(schema, &index.table_name)),
            _ => {}
        }
    }
    Some(names)
}

/// For a statement that writes rows (INSERT, REPLACE, UPDATE, DELETE, LOAD DATA — what a session
/// with `binlog_format = STATEMENT` logs as text): the tables it may write, `db.table`; an
/// empty list when it does not parse (it may write anything). `None` for any other statement.
pub fn rows_written(schema: &str, query: &str) -> Option<Vec<String>> {
    const WRITES: [&str; 5] = ["INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD"];
    let first = first_word(query)?;
    if !WRITES.iter().any(|w| first.eq_ignore_ascii_case(w)) {
        return None;
    }
    let Ok(statements) = Parser::parse_sql(&MySqlDialect {}, query) else {
        return Some(Vec::new());
    };
    let mut names = Vec::new();
    for statement in &statements {
        match statement {
            // The target only: the tables an INSERT … SELECT reads are not written.
            Statement::Insert(insert) => match &insert.table {
                TableObject::TableName(name) => names.push(qualify(schema, name)),
                _ => return Some(Vec::new()),
            },
            Statement::LoadData { table_name, .. } => names.push(qualify(schema, table_name)),
            // Multi-table UPDATE and DELETE may write any table they name.
            other => {
                let _ = visit_relations(other, |name| {
                    names.push(qualify(schema, name));
                    std::ops::ControlFlow::<()>::Continue(())
                });
            }
        }
    }
    Some(names)
}

/// The statement's first word, after comments and opening parentheses.
fn first_word(query: &str) -> Option<&str> {
    let mut rest = query.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/")?.1.trim_start();
        } else if rest.starts_with("--") || rest.starts_with('#') {
            rest = rest.split_once('\n')?.1.trim_start();
        } else if let Some(after) = rest.strip_prefix('(') {
            rest = after.trim_start();
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

fn renamed(kind: &RenameTableNameKind) -> &ObjectName {
    match kind {
        RenameTableNameKind::As(name) | RenameTableNameKind::To(name) => name,
    }
}

fn qualify(schema: &str, name: &ObjectName) -> String {
    let parts: Vec<&str> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident().map(|i| i.value.as_str()))
        .collect();
    match parts.as_slice() {
        [table] => format!("{schema}.{table}"),
        [database, table] => format!("{database}.{table}"),
        _ => parts.join("."),
    }
}

/// What became of a DDL statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The schemas now reflect it.
    Yes,
    /// It needs the live catalog (new keys, CREATE TABLE ... LIKE, a statement that does not
    /// parse, ...).
    No,
}

fn column_type(data_type: &DataType) -> String {
    data_type.to_string().to_ascii_lowercase()
}

fn nullable(options: &[ColumnOption]) -> bool {
    !options.iter().any(|o| matches!(o, ColumnOption::NotNull))
}

fn find<'a>(schemas: &'a mut [TableSchema], name: &str) -> Option<&'a mut TableSchema> {
    schemas
        .iter_mut()
        .find(|t| format!("{}.{}", t.database, t.name).eq_ignore_ascii_case(name))
}

fn position(table: &TableSchema, column: &Ident) -> Option<usize> {
    table
        .columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(&column.value))
}

/// A column as its definition says, its character set the one it names or else the table's
/// (`table_charset`; unknown when that is), its collation the one it names (`COLLATE`), else
/// its named set's default where every server agrees on it (all but the Unicode sets), else the
/// table's (`table_collation`); unknown otherwise, for the caller to fill in. `None` when it
/// names `binary`, which makes it a binary column of another type: only the catalog knows which.
fn column_schema(
    name: &Ident,
    data_type: &DataType,
    options: &[ColumnOption],
    table_charset: Option<&str>,
    table_collation: Option<&str>,
) -> Option<ColumnSchema> {
    let column_type = column_type(data_type);
    let mut column = ColumnSchema::new(name.value.clone(), column_type, nullable(options));
    let named_collation = options.iter().find_map(|o| match o {
        ColumnOption::Collation(name) => Some(name.to_string().to_ascii_lowercase()),
        _ => None,
    });
    let named_set = options.iter().find_map(|o| match o {
        ColumnOption::CharacterSet(name) => Some(name.to_string().to_ascii_lowercase()),
        _ => None,
    });
    let named = named_collation
        .as_deref()
        .or(named_set.as_deref())
        .map(Charset::of_collation);
    if column.is_text() {
        column.charset = named.or_else(|| table_charset.map(str::to_string));
        if column.charset.as_deref() == Some("binary") {
            return None;
        }
        column.collation = match (named_collation, named_set) {
            (Some(collation), _) => Some(collation),
            (None, Some(set)) => default_collation(&set).map(str::to_string),
            (None, None) => table_collation.map(str::to_string),
        };
    }
    Some(column)
}

/// A column added to or redefined in an existing table: `None` when it is text and its set is
/// unknown (a history from before character sets were recorded), which the catalog then says.
fn altered_column(
    name: &Ident,
    data_type: &DataType,
    options: &[ColumnOption],
    table: &TableSchema,
) -> Option<ColumnSchema> {
    column_schema(
        name,
        data_type,
        options,
        table.charset.as_deref(),
        table.collation.as_deref(),
    )
    .filter(|column| !column.is_text() || column.charset.is_some())
}

/// The default collation of a character set where every MySQL, MariaDB and OceanBase agrees on
/// it: all but the Unicode sets.
fn default_collation(charset: &str) -> Option<&'static str> {
    Some(match charset {
        "latin1" => "latin1_swedish_ci",
        "latin2" => "latin2_general_ci",
        "latin5" => "latin5_turkish_ci",
        "latin7" => "latin7_general_ci",
        "ascii" => "ascii_general_ci",
        "cp1250" => "cp1250_general_ci",
        "cp1251" => "cp1251_general_ci",
        "cp1256" => "cp1256_general_ci",
        "cp1257" => "cp1257_general_ci",
        "cp866" => "cp866_general_ci",
        "koi8r" => "koi8r_general_ci",
        "koi8u" => "koi8u_general_ci",
        "greek" => "greek_general_ci",
        "hebrew" => "hebrew_general_ci",
        "macroman" => "macroman_general_ci",
        "gbk" => "gbk_chinese_ci",
        "gb2312" => "gb2312_chinese_ci",
        "big5" => "big5_chinese_ci",
        "euckr" => "euckr_korean_ci",
        "sjis" => "sjis_japanese_ci",
        "cp932" => "cp932_japanese_ci",
        "ujis" => "ujis_japanese_ci",
        "eucjpms" => "eucjpms_japanese_ci",
        "tis620" => "tis620_thai_ci",
        _ => return None,
    })
}

/// A CREATE TABLE option's value by key (`[DEFAULT] CHARSET`, `COLLATE`, …), lower case.
fn table_option(options: &CreateTableOptions, keys: &[&str]) -> Option<String> {
    let options = match options {
        CreateTableOptions::None => return None,
        CreateTableOptions::With(o)
        | CreateTableOptions::Options(o)
        | CreateTableOptions::Plain(o)
        | CreateTableOptions::TableProperties(o) => o,
    };
    options.iter().find_map(|option| match option {
        SqlOption::KeyValue { key, value } => {
            let key = key.value.to_ascii_uppercase();
            let key = key.strip_prefix("DEFAULT ").unwrap_or(&key);
            let value = match value {
                Expr::Identifier(ident) => ident.value.clone(),
                other => other
                    .to_string()
                    .trim_matches(|c| c == '\'' || c == '"' || c == '`')
                    .to_string(),
            };
            keys.contains(&key).then(|| value.to_ascii_lowercase())
        }
        _ => None,
    })
}

/// The table's character set from CREATE TABLE's options (`[DEFAULT] CHARSET`, `CHARACTER SET`,
/// `COLLATE`).
fn table_charset(options: &CreateTableOptions) -> Option<String> {
    table_option(options, &["CHARSET", "CHARACTER SET", "COLLATE"])
        .map(|value| Charset::of_collation(&value))
}

/// The table's collation: its `COLLATE`, else its character set's default where that is the
/// same on every server.
fn table_collation(options: &CreateTableOptions) -> Option<String> {
    table_option(options, &["COLLATE"]).or_else(|| {
        let charset = table_option(options, &["CHARSET", "CHARACTER SET"])?;
        default_collation(&charset).map(str::to_string)
    })
}

fn insert_at(
    table: &mut TableSchema,
    column: ColumnSchema,
    at: &Option<MySQLColumnPosition>,
) -> Applied {
    // A column that is already there means the schema is ahead of this DDL: let the caller
    // re-read the catalog rather than add it twice.
    if table
        .columns
        .iter()
        .any(|c| c.name.eq_ignore_ascii_case(&column.name))
    {
        return Applied::No;
    }
    let index = match at {
        None => table.columns.len(),
        Some(MySQLColumnPosition::First) => 0,
        Some(MySQLColumnPosition::After(after)) => match position(table, after) {
            Some(i) => i + 1,
            None => return Applied::No,
        },
    };
    table.columns.insert(index, column);
    Applied::Yes
}

/// Applies a DDL statement to the schemas (`schema` is the statement's default database).
pub fn apply(schemas: &mut Vec<TableSchema>, schema: &str, query: &str) -> Applied {
    let Ok(statements) = Parser::parse_sql(&MySqlDialect {}, query) else {
        return Applied::No;
    };
    for statement in &statements {
        let applied = match statement {
            Statement::AlterTable(alter) => {
                let name = qualify(schema, &alter.name);
                let Some(table) = find(schemas, &name) else {
                    return Applied::No;
                };
                for operation in &alter.operations {
                    if alter_column(table, operation, schema) == Applied::No {
                        return Applied::No;
                    }
                }
                Applied::Yes
            }
            Statement::Drop { names, .. } => {
                for name in names {
                    let name = qualify(schema, name);
                    schemas.retain(|t| {
                        !format!("{}.{}", t.database, t.name).eq_ignore_ascii_case(&name)
                    });
                }
                Applied::Yes
            }
            Statement::Truncate(_) => Applied::Yes,
            Statement::CreateTable(create) => create_table(schemas, schema, create),
            Statement::RenameTable(renames) => {
                for rename in renames {
                    let old = qualify(schema, &rename.old_name);
                    let new = qualify(schema, &rename.new_name);
                    let Some(table) = find(schemas, &old) else {
                        return Applied::No;
                    };
                    let Some((database, name)) = new.split_once('.') else {
                        return Applied::No;
                    };
                    table.database = database.to_string();
                    table.name = name.to_string();
                }
                Applied::Yes
            }
            _ => Applied::No,
        };
        if applied == Applied::No {
            return Applied::No;
        }
    }
    Applied::Yes
}

/// A new table, as its CREATE TABLE defines it: a restart that replays the statement must not
/// take today's columns for it (later DDL may have changed them).
fn create_table(schemas: &mut Vec<TableSchema>, schema: &str, create: &CreateTable) -> Applied {
    let name = qualify(schema, &create.name);
    let Some((database, table)) = name.split_once('.') else {
        return Applied::No;
    };
    if find(schemas, &name).is_some() {
        // IF NOT EXISTS on a known table changes nothing; without it, the history and the
        // stream disagree and only the catalog can say what the table is.
        return if create.if_not_exists {
            Applied::Yes
        } else {
            Applied::No
        };
    }
    if create.temporary {
        // A session's temporary table is not a table to sync.
        return Applied::Yes;
    }
    if create.like.is_some() || create.query.is_some() || create.columns.is_empty() {
        return Applied::No;
    }
    // Without a character set of its own the table takes its database's, which the statement
    // does not say: the set (and the collation) stays unknown here, for the caller to fill in
    // (see `TableSchema::take_database_defaults`).
    let mut new = TableSchema {
        database: database.to_string(),
        name: table.to_string(),
        columns: Vec::new(),
        primary_key: Vec::new(),
        unique_keys: Vec::new(),
        charset: table_charset(&create.table_options),
        collation: table_collation(&create.table_options),
    };
    for column in &create.columns {
        let name = column.name.value.clone();
        let options: Vec<ColumnOption> = column.options.iter().map(|o| o.option.clone()).collect();
        for option in &options {
            match option {
                ColumnOption::PrimaryKey(_) => new.primary_key = vec![name.clone()],
                ColumnOption::Unique(_) => new.unique_keys.push((name.clone(), vec![name.clone()])),
                _ => {}
            }
        }
        let Some(column) = column_schema(
            &column.name,
            &column.data_type,
            &options,
            new.charset.as_deref(),
            new.collation.as_deref(),
        ) else {
            return Applied::No;
        };
        new.columns.push(column);
    }
    for constraint in &create.constraints {
        match constraint {
            TableConstraint::PrimaryKey(key) => match key_columns(&key.columns) {
                Some(columns) => new.primary_key = columns,
                None => return Applied::No,
            },
            TableConstraint::Unique(key) => match key_columns(&key.columns) {
                Some(columns) => {
                    let name = match key.index_name.as_ref().or(key.name.as_ref()) {
                        Some(name) => name.value.clone(),
                        None => unnamed_index(&new, &columns[0]),
                    };
                    new.unique_keys.push((name, columns));
                }
                None => return Applied::No,
            },
            _ => {}
        }
    }
    // Primary key columns are NOT NULL whether or not the statement says so.
    for column in &mut new.columns {
        if new
            .primary_key
            .iter()
            .any(|k| k.eq_ignore_ascii_case(&column.name))
        {
            column.nullable = false;
        }
    }
    schemas.push(new);
    Applied::Yes
}

/// MySQL names an unnamed index after its first column, then `_2`, `_3`, ... when taken.
fn unnamed_index(table: &TableSchema, column: &str) -> String {
    let taken = |name: &str| table.unique_keys.iter().any(|(n, _)| n == name);
    if !taken(column) {
        return column.to_string();
    }
    (2..)
        .map(|n| format!("{column}_{n}"))
        .find(|name| !taken(name))
        .unwrap_or_default()
}

/// A key's columns; `None` for a functional key part or a prefix the history cannot follow.
fn key_columns(columns: &[IndexColumn]) -> Option<Vec<String>> {
    let names: Option<Vec<String>> = columns
        .iter()
        .map(|c| match &c.column.expr {
            Expr::Identifier(ident) => Some(ident.value.clone()),
            _ => None,
        })
        .collect();
    names.filter(|n| !n.is_empty())
}

fn alter_column(table: &mut TableSchema, operation: &AlterTableOperation, schema: &str) -> Applied {
    match operation {
        AlterTableOperation::AddColumn {
            column_def,
            column_position,
            ..
        } => {
            let options: Vec<ColumnOption> = column_def
                .options
                .iter()
                .map(|o| o.option.clone())
                .collect();
            if options
                .iter()
                .any(|o| matches!(o, ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_)))
            {
                return Applied::No;
            }
            let Some(column) =
                altered_column(&column_def.name, &column_def.data_type, &options, table)
            else {
                return Applied::No;
            };
            insert_at(table, column, column_position)
        }
        AlterTableOperation::DropColumn { column_names, .. } => {
            for column in column_names {
                let Some(i) = position(table, column) else {
                    return Applied::No;
                };
                let name = table.columns.remove(i).name;
                if table.primary_key.contains(&name)
                    || table
                        .unique_keys
                        .iter()
                        .any(|(_, cols)| cols.contains(&name))
                {
                    return Applied::No;
                }
            }
            Applied::Yes
        }
        AlterTableOperation::ModifyColumn {
            col_name,
            data_type,
            options,
            column_position,
        } => change(
            table,
            col_name,
            col_name,
            data_type,
            options,
            column_position,
        ),
        AlterTableOperation::ChangeColumn {
            old_name,
            new_name,
            data_type,
            options,
            column_position,
        } => change(
            table,
            old_name,
            new_name,
            data_type,
            options,
            column_position,
        ),
        AlterTableOperation::RenameColumn {
            old_column_name,
            new_column_name,
        } => {
            let Some(i) = position(table, old_column_name) else {
                return Applied::No;
            };
            let old = std::mem::replace(&mut table.columns[i].name, new_column_name.value.clone());
            rename_in_keys(table, &old, &new_column_name.value);
            Applied::Yes
        }
        AlterTableOperation::RenameTable { table_name } => {
            let new = qualify(schema, renamed(table_name));
            match new.split_once('.') {
                Some((database, name)) => {
                    table.database = database.to_string();
                    table.name = name.to_string();
                    Applied::Yes
                }
                None => Applied::No,
            }
        }
        _ => Applied::No,
    }
}

fn change(
    table: &mut TableSchema,
    old: &Ident,
    new: &Ident,
    data_type: &DataType,
    options: &[ColumnOption],
    at: &Option<MySQLColumnPosition>,
) -> Applied {
    let Some(i) = position(table, old) else {
        return Applied::No;
    };
    // MODIFY and CHANGE define the column anew: without a character set it takes the table's.
    let Some(column) = altered_column(new, data_type, options, table) else {
        return Applied::No;
    };
    let old_name = table.columns.remove(i).name;
    rename_in_keys(table, &old_name, &new.value);
    match at {
        None => {
            table.columns.insert(i, column);
            Applied::Yes
        }
        Some(_) => insert_at(table, column, at),
    }
}

fn rename_in_keys(table: &mut TableSchema, old: &str, new: &str) {
    for key in table.primary_key.iter_mut().chain(
        table
            .unique_keys
            .iter_mut()
            .flat_map(|(_, cols)| cols.iter_mut()),
    ) {
        if key == old {
            *key = new.to_string();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_write_rows_name_their_tables() {
        let written = |q: &str| rows_written("shop", q);
        assert_eq!(
            written("INSERT INTO orders SELECT * FROM archive.orders"),
            Some(vec!["shop.orders".to_string()])
        );
        assert_eq!(
            written("/* app */ replace into crm.users values (1)"),
            Some(vec!["crm.users".to_string()])
        );
        assert_eq!(
            written("UPDATE orders o JOIN users u ON o.u = u.id SET o.x = 1"),
            Some(vec!["shop.orders".to_string(), "shop.users".to_string()])
        );
        assert_eq!(
            written("DELETE FROM shop.orders WHERE id = 1"),
            Some(vec!["shop.orders".to_string()])
        );
        // A write that does not parse may write anything; other statements are not writes.
        assert_eq!(written("INSERT INTO orders VALUES (((("), Some(vec![]));
        assert_eq!(written("SAVEPOINT a"), None);
        assert_eq!(written("ALTER TABLE orders ADD COLUMN x INT"), None);
    }

    fn orders() -> Vec<TableSchema> {
        vec![TableSchema {
            database: "shop".into(),
            name: "orders".into(),
            columns: vec![
                ColumnSchema::new("id".into(), "bigint".into(), false),
                ColumnSchema {
                    charset: Some("utf8mb4".into()),
                    collation: Some("utf8mb4_general_ci".into()),
                    ..ColumnSchema::new("note".into(), "varchar(32)".into(), true)
                },
            ],
            primary_key: vec!["id".into()],
            unique_keys: vec![],
            charset: Some("utf8mb4".into()),
            collation: Some("utf8mb4_general_ci".into()),
        }]
    }

    fn columns(schemas: &[TableSchema]) -> Vec<String> {
        schemas[0]
            .columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    c.name,
                    c.column_type,
                    if c.nullable { "" } else { " not null" }
                )
            })
            .collect()
    }

    fn collations(table: &TableSchema) -> Vec<String> {
        table
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.collation.as_deref().unwrap_or("-")))
            .collect()
    }

    fn charsets(table: &TableSchema) -> Vec<String> {
        table
            .columns
            .iter()
            .map(|c| format!("{} {}", c.name, c.charset.as_deref().unwrap_or("-")))
            .collect()
    }

    #[test]
    fn text_columns_keep_their_character_sets_through_ddl() {
        let mut schemas = orders();
        let created = apply(
            &mut schemas,
            "shop",
            "CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b VARCHAR(10) CHARACTER SET gbk,
               c TEXT COLLATE big5_chinese_ci, e ENUM('x','y')) ENGINE=InnoDB DEFAULT CHARSET=latin1",
        );
        assert_eq!(created, Applied::Yes);
        let t =
            |schemas: &[TableSchema]| schemas.iter().find(|t| t.name == "t").cloned().expect("t");
        assert_eq!(t(&schemas).charset.as_deref(), Some("latin1"));
        assert_eq!(
            charsets(&t(&schemas)),
            ["id -", "a latin1", "b gbk", "c big5", "e latin1"]
        );
        assert_eq!(t(&schemas).collation.as_deref(), Some("latin1_swedish_ci"));
        assert_eq!(
            collations(&t(&schemas)),
            [
                "id -",
                "a latin1_swedish_ci",
                "b gbk_chinese_ci",
                "c big5_chinese_ci",
                "e latin1_swedish_ci"
            ]
        );
        for step in [
            "ALTER TABLE t ADD COLUMN d VARCHAR(5)",
            // MODIFY defines the column anew: without a set it takes the table's.
            "ALTER TABLE t MODIFY b VARCHAR(20)",
            "ALTER TABLE t CHANGE c c2 TEXT CHARACTER SET cp1251",
            "ALTER TABLE t ADD COLUMN n INT",
        ] {
            assert_eq!(apply(&mut schemas, "shop", step), Applied::Yes, "{step}");
        }
        assert_eq!(
            charsets(&t(&schemas)),
            [
                "id -",
                "a latin1",
                "b latin1",
                "c2 cp1251",
                "e latin1",
                "d latin1",
                "n -"
            ]
        );
        // A table created without a set has its database's, which the caller fills in.
        assert_eq!(
            apply(
                &mut schemas,
                "shop",
                "CREATE TABLE u (id INT, v VARCHAR(10), g TEXT CHARACTER SET gbk)"
            ),
            Applied::Yes
        );
        let mut u = schemas.iter().find(|t| t.name == "u").cloned().expect("u");
        assert_eq!(u.charset, None);
        assert_eq!(charsets(&u), ["id -", "v -", "g gbk"]);
        assert_eq!(collations(&u), ["id -", "v -", "g gbk_chinese_ci"]);
        u.take_database_defaults("big5", "big5_bin");
        assert_eq!(u.charset.as_deref(), Some("big5"));
        assert_eq!(u.collation.as_deref(), Some("big5_bin"));
        assert_eq!(charsets(&u), ["id -", "v big5", "g gbk"]);
        assert_eq!(collations(&u), ["id -", "v big5_bin", "g gbk_chinese_ci"]);
        // A Unicode set's default collation is the server's choice (utf8mb4_general_ci,
        // utf8mb4_0900_ai_ci, utf8mb4_uca1400_ai_ci): unknown here, for the caller to fill in.
        assert_eq!(
            apply(
                &mut schemas,
                "shop",
                "ALTER TABLE t ADD COLUMN w VARCHAR(3) CHARACTER SET utf8mb4"
            ),
            Applied::Yes
        );
        assert_eq!(
            collations(&t(&schemas)).last().map(String::as_str),
            Some("w -")
        );
        assert_eq!(
            collations(&t(&schemas)),
            [
                "id -",
                "a latin1_swedish_ci",
                "b latin1_swedish_ci",
                "c2 cp1251_general_ci",
                "e latin1_swedish_ci",
                "d latin1_swedish_ci",
                "n -",
                "w -"
            ]
        );
        // What the statement does not say, the catalog does.
        for statement in [
            "ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4",
            "ALTER TABLE t DEFAULT CHARSET = gbk",
            "ALTER TABLE t ADD COLUMN raw VARCHAR(10) CHARACTER SET binary",
        ] {
            let mut copy = schemas.clone();
            assert_eq!(
                apply(&mut copy, "shop", statement),
                Applied::No,
                "{statement}"
            );
        }
        // A history from before character sets were recorded takes new text columns from the
        // catalog, other columns as they are.
        let mut old = orders();
        old[0].charset = None;
        assert_eq!(
            apply(
                &mut old,
                "shop",
                "ALTER TABLE orders ADD COLUMN v VARCHAR(3)"
            ),
            Applied::No
        );
        assert_eq!(
            apply(&mut old, "shop", "ALTER TABLE orders ADD COLUMN q INT"),
            Applied::Yes
        );
    }

    #[test]
    fn column_changes_apply_in_order_and_place() {
        let mut schemas = orders();
        let steps = [
            "ALTER TABLE orders ADD COLUMN qty INT NOT NULL",
            "ALTER TABLE shop.orders ADD COLUMN code CHAR(4) FIRST",
            "ALTER TABLE orders ADD flag TINYINT(1) AFTER id",
            "ALTER TABLE orders MODIFY note TEXT",
            "ALTER TABLE orders CHANGE COLUMN qty quantity BIGINT UNSIGNED",
            "ALTER TABLE orders RENAME COLUMN code TO sku",
            "ALTER TABLE orders DROP COLUMN flag",
        ];
        for step in steps {
            assert_eq!(apply(&mut schemas, "shop", step), Applied::Yes, "{step}");
        }
        assert_eq!(
            columns(&schemas),
            [
                "sku char(4)",
                "id bigint not null",
                "note text",
                "quantity bigint unsigned"
            ]
        );
        assert_eq!(
            apply(&mut schemas, "shop", "RENAME TABLE orders TO orders_v2"),
            Applied::Yes
        );
        assert_eq!(schemas[0].name, "orders_v2");
        assert_eq!(
            apply(&mut schemas, "shop", "DROP TABLE orders_v2"),
            Applied::Yes
        );
        assert!(schemas.is_empty());
    }

    #[test]
    fn create_table_adds_the_table_with_its_columns_and_keys() {
        let mut schemas = orders();
        let created = apply(
            &mut schemas,
            "shop",
            "CREATE TABLE `items` (id BIGINT UNSIGNED NOT NULL, sku VARCHAR(20) NOT NULL,
               price DECIMAL(10,2), note TEXT, code INT UNIQUE,
               PRIMARY KEY (id), UNIQUE KEY by_sku (sku), UNIQUE (code, sku)) CHARSET utf8mb4",
        );
        assert_eq!(created, Applied::Yes);
        let items = schemas.iter().find(|t| t.name == "items").expect("items");
        assert_eq!(items.database, "shop");
        let columns: Vec<(&str, &str, bool)> = items
            .columns
            .iter()
            .map(|c| (c.name.as_str(), c.column_type.as_str(), c.nullable))
            .collect();
        assert_eq!(
            columns,
            [
                ("id", "bigint unsigned", false),
                ("sku", "varchar(20)", false),
                ("price", "decimal(10,2)", true),
                ("note", "text", true),
                ("code", "int", true),
            ]
        );
        assert_eq!(items.primary_key, ["id"]);
        assert_eq!(
            items.unique_keys,
            [
                ("code".to_string(), vec!["code".to_string()]),
                ("by_sku".to_string(), vec!["sku".to_string()]),
                (
                    "code_2".to_string(),
                    vec!["code".to_string(), "sku".to_string()]
                )
            ]
        );
        assert_eq!(
            apply(
                &mut schemas,
                "shop",
                "CREATE TEMPORARY TABLE scratch (x INT)"
            ),
            Applied::Yes
        );
        assert!(schemas.iter().all(|t| t.name != "scratch"));
        // Known already: IF NOT EXISTS changes nothing.
        let before = schemas.clone();
        assert_eq!(
            apply(
                &mut schemas,
                "shop",
                "CREATE TABLE IF NOT EXISTS items (x INT)"
            ),
            Applied::Yes
        );
        assert_eq!(schemas, before);
    }

    #[test]
    fn what_needs_the_catalog_says_so() {
        let mut schemas = orders();
        for statement in [
            "CREATE TABLE shop.t2 LIKE shop.orders",
            "CREATE TABLE shop.t3 AS SELECT * FROM shop.orders",
            "CREATE TABLE shop.orders (id INT PRIMARY KEY)",
            "ALTER TABLE orders ADD PRIMARY KEY (note)",
            "ALTER TABLE orders DROP COLUMN id",
            "ALTER TABLE nope ADD COLUMN x INT",
            "this is not sql",
        ] {
            let mut copy = schemas.clone();
            assert_eq!(
                apply(&mut copy, "shop", statement),
                Applied::No,
                "{statement}"
            );
        }
        assert_eq!(
            tables_named("shop", "ALTER TABLE orders RENAME TO archive.orders"),
            Some(vec![
                "shop.orders".to_string(),
                "archive.orders".to_string()
            ])
        );
        assert_eq!(
            apply(&mut schemas, "shop", "TRUNCATE TABLE orders"),
            Applied::Yes
        );
    }
}
