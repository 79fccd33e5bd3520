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
    let bytes = std::fs::read(path).map_err(|e| {
        Error::Config(format!(
            "cannot read objects file {}: {e}; check the path",
            path.display()
        ))
    })?;
    let file = path.display().to_string();
    let located = |line: usize, message: String| Error::Config(format!("{file}:{line}: {message}"));
    let rows = parse_csv(&bytes).map_err(|(line, m)| located(line, m))?;
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

/// CSV records, each with the line it starts on; an error has its line too.
type Records = Vec<(usize, Vec<String>)>;

/// RFC 4180 CSV (the `csv` crate): quoted cells may hold commas, newlines and doubled quotes;
/// rows may have fewer cells than the header (OMS's template leaves trailing ones out); a UTF-8
/// byte-order mark (Excel writes one) is skipped.
fn parse_csv(bytes: &[u8]) -> std::result::Result<Records, (usize, String)> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    // Lines from byte offsets: the reader's own line count misses CRLF line ends.
    let line_at = |position: Option<&csv::Position>| {
        let mut end = position.map_or(0, |p| (p.byte() as usize).min(bytes.len()));
        // After a CRLF the record starts at its `\n`.
        if bytes.get(end) == Some(&b'\n') {
            end += 1;
        }
        bytes[..end].iter().filter(|b| **b == b'\n').count() + 1
    };
    let mut rows: Records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = line_at(e.position());
            let message = match e.kind() {
                csv::ErrorKind::Utf8 { .. } => {
                    "this row is not UTF-8 text; save the file as UTF-8".to_string()
                }
                _ => format!("this row is not valid CSV: {e}"),
            };
            (line, message)
        })?;
        let line = line_at(record.position());
        rows.push((line, record.iter().map(str::to_string).collect()));
    }
    // The csv crate reads an unclosed quote to the end of the file as one cell: a cell that
    // swallowed the rest of the file is said to be open.
    if let Some((line, row)) = rows.last()
        && row.last().is_some_and(|cell| cell.contains('\n'))
        && bytes.iter().filter(|b| **b == b'"').count() % 2 == 1
    {
        return Err((*line, "a quoted cell is not closed".to_string()));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_may_hold_quotes_commas_and_newlines() {
        let rows = parse_csv(b"a,b\n\"x, y\",\"say \"\"hi\"\"\nthere\"\nlast,\n").unwrap();
        assert_eq!(rows[0], (1, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(
            rows[1],
            (2, vec!["x, y".to_string(), "say \"hi\"\nthere".to_string()])
        );
        assert_eq!(rows[2], (4, vec!["last".to_string(), String::new()]));
        assert!(parse_csv(b"a\n\"open,x\n").is_err());
        // Excel's BOM, CRLF line ends and a short row.
        let rows = parse_csv(b"\xEF\xBB\xBFdb,table,topic\r\nshop,orders\r\n").unwrap();
        assert_eq!(rows[0].1[0], "db");
        assert_eq!(rows[1], (2, vec!["shop".to_string(), "orders".to_string()]));
        let (line, message) = parse_csv(b"db\nok\ncaf\xE9\n").unwrap_err();
        assert_eq!(line, 3, "{message}");
        assert!(message.contains("not UTF-8"), "{message}");
    }
}
