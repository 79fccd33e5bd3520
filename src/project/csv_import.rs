//! `tributary import-objects FILE.csv`: OMS's "Import Objects" CSV (reference §2.6) → `SYNC`
//! statements. OMS does not document the exact header strings, so both the zh-CN names of its
//! template and plain English names are accepted (docs/project-language.md).

use std::path::Path;

use crate::error::{Error, Result};

/// The columns of the CSV that we understand, by every name we accept for them.
const DATABASE: &[&str] = &[
    "源端库名",
    "source database",
    "source database name",
    "source db name",
    "database",
];
const TABLE: &[&str] = &["源端表名", "source table", "source table name", "table"];
const TOPIC: &[&str] = &["topic 名", "topic名", "topic", "topic name"];
const COLUMNS: &[&str] = &["选择列", "selected columns", "columns"];
const MAPPING: &[&str] = &["列映射", "column mapping"];
const SHARD: &[&str] = &["分片列", "sharding columns", "shard columns"];
const FILTER: &[&str] = &["行过滤条件", "row filter", "row filter condition", "filter"];

/// Reads an objects CSV and returns the equivalent `SYNC` statements, one per row.
pub fn import_objects(path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!(
                "cannot read objects file {} (check the path)",
                path.display()
            ),
            e,
        )
    })?;
    let file = path.display().to_string();
    let located = |line: usize, message: String| Error::Config(format!("{file}:{line}: {message}"));
    let rows =
        parse_csv(text.trim_start_matches('\u{feff}')).map_err(|(line, m)| located(line, m))?;
    let Some((_, header)) = rows.first() else {
        return Err(located(
            1,
            "the file is empty; expected a header row".to_string(),
        ));
    };
    let find = |names: &[&str]| {
        header
            .iter()
            .position(|h| names.iter().any(|n| h.trim().eq_ignore_ascii_case(n)))
    };
    let required = |names: &[&str]| {
        find(names).ok_or_else(|| {
            located(
                1,
                format!(
                    "the header has no `{}` column (also accepted: {}); found: {}",
                    names[0],
                    names[1..].join(", "),
                    header.join(", ")
                ),
            )
        })
    };
    let (db_col, table_col, topic_col) = (required(DATABASE)?, required(TABLE)?, required(TOPIC)?);
    let (columns_col, mapping_col, shard_col, filter_col) =
        (find(COLUMNS), find(MAPPING), find(SHARD), find(FILTER));

    let mut out = format!("-- SYNC statements imported from {file}\n");
    for (line, row) in rows.iter().skip(1) {
        if row.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        let cell =
            |col: Option<usize>| col.and_then(|c| row.get(c)).map(|s| s.trim()).unwrap_or("");
        let need = |col: usize, names: &[&str]| {
            let value = cell(Some(col));
            if value.is_empty() {
                Err(located(*line, format!("`{}` is empty", names[0])))
            } else {
                Ok(value)
            }
        };
        let database = need(db_col, DATABASE)?;
        let table = need(table_col, TABLE)?;
        let topic = need(topic_col, TOPIC)?;
        if !cell(mapping_col).is_empty() {
            return Err(located(
                *line,
                format!(
                    "table {database}.{table} has a column mapping ({}); tributary does not rename \
                     columns for Kafka, so clear the cell",
                    cell(mapping_col)
                ),
            ));
        }
        let mut statement = format!(
            "SYNC TABLE {}.{} TO TOPIC '{}'",
            quote_ident(database),
            quote_ident(table),
            topic.replace('\'', "''")
        );
        let columns = name_list(cell(columns_col));
        if !columns.is_empty() {
            statement.push_str(&format!("\n  COLUMNS ({columns})"));
        }
        let filter = cell(filter_col);
        if !filter.is_empty() {
            super::parse::check_filter_text(filter).map_err(|m| {
                located(
                    *line,
                    format!("the row filter of {database}.{table} does not parse: {m}"),
                )
            })?;
            statement.push_str(&format!("\n  WHERE {filter}"));
        }
        let shard = name_list(cell(shard_col));
        if !shard.is_empty() {
            statement.push_str(&format!("\n  SHARD BY ({shard})"));
        }
        // On its own line: a filter ending in a `--` comment must not swallow the `;`.
        statement.push_str("\n;\n");
        out.push_str(&statement);
    }
    Ok(out)
}

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `a;b;c` (OMS's multi-value cells) → "`a`, `b`, `c`".
fn name_list(cell: &str) -> String {
    cell.split([';', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(quote_ident)
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 4180 CSV: quoted cells may hold commas, newlines and doubled quotes. Returns each record
/// with the line it starts on.
/// CSV records, each with the line it starts on; an error has its line too.
type Records = Vec<(usize, Vec<String>)>;

fn parse_csv(text: &str) -> std::result::Result<Records, (usize, String)> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut cell = String::new();
    let mut line = 1;
    let mut row_line = 1;
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    cell.push('"');
                }
                '"' => quoted = false,
                '\n' => {
                    line += 1;
                    cell.push(c);
                }
                _ => cell.push(c),
            }
            continue;
        }
        match c {
            '"' if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            ',' => row.push(std::mem::take(&mut cell)),
            '\r' => {}
            '\n' => {
                row.push(std::mem::take(&mut cell));
                rows.push((row_line, std::mem::take(&mut row)));
                line += 1;
                row_line = line;
            }
            _ => cell.push(c),
        }
    }
    if quoted {
        return Err((row_line, "a quoted cell is not closed".to_string()));
    }
    if !cell.is_empty() || !row.is_empty() {
        row.push(cell);
        rows.push((row_line, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_may_hold_quotes_commas_and_newlines() {
        let rows = parse_csv("a,b\n\"x, y\",\"say \"\"hi\"\"\nthere\"\nlast,\n").unwrap();
        assert_eq!(rows[0], (1, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            rows[1],
            (2, vec!["x, y".to_string(), "say \"hi\"\nthere".to_string()])
        );
        assert_eq!(rows[2], (4, vec!["last".to_string(), String::new()]));
        assert!(parse_csv("\"open").is_err());
    }
}
