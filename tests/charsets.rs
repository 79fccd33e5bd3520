//! Text in the source's character sets against the real MariaDB and Kafka, the server as the
//! oracle: the snapshot (read over a utf8mb4 connection, converted by the server) and the stream
//! (binlog bytes in each column's own set, decoded by tributary) carry the same text, the text
//! `SELECT` returns over utf8mb4 — whether the character sets come from the binlog's table maps
//! or, with `binlog_row_metadata = NO_LOG`, from the schema history through DDL. And the
//! decoders themselves agree with the server's conversion on every code of every set.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::Value;
use tributary::plan::charset::Charset;

/// Non-ASCII text each character set holds.
const SAMPLES: &[(&str, &str)] = &[
    ("latin1", "café crème — “€5” ¿sí?"),
    ("gbk", "中文字符，简体"),
    ("big5", "繁體中文，臺灣"),
    ("cp1251", "Привет, мир"),
    ("latin2", "Żółć gęślą jaźń"),
    ("utf8mb4", "emoji 😀 中文 café"),
];

/// `{table → {id → record}}` of a topic's row records (snapshot ROW and stream INSERT/UPDATE).
fn records(topic: &str, expected: usize) -> Vec<Value> {
    common::consume_all(topic, expected, Duration::from_secs(90))
        .iter()
        .map(|m| serde_json::from_str(&m.payload).expect("JSON"))
        .collect()
}

fn find<'a>(records: &'a [Value], kind: &str, table: &str, id: i64) -> &'a Value {
    records
        .iter()
        .find(|r| {
            r["recordType"] == kind
                && r["allMetaData"]["table_name"] == table
                && (r["postStruct"]["id"] == id || r["prevStruct"]["id"] == id)
        })
        .unwrap_or_else(|| panic!("no {kind} of {table} id {id} in {records:#?}"))
}

/// What the server returns over a utf8mb4 connection: the oracle.
async fn server_text(conn: &mut mysql_async::Conn, table: &str, column: &str, id: i64) -> String {
    conn.query_first(format!("SELECT {column} FROM {table} WHERE id = {id}"))
        .await
        .expect("select")
        .expect("a row")
}

#[tokio::test]
async fn text_in_every_character_set_is_the_same_in_snapshot_and_stream() {
    let mut conn = common::mariadb().await;
    let db = common::unique("cs_all");
    let mut script = format!("CREATE DATABASE {db}");
    for (charset, _) in SAMPLES {
        script.push_str(&format!(
            ";\nCREATE TABLE {db}.t_{charset} (id INT PRIMARY KEY, e ENUM('x', 'y'), \
             v VARCHAR(64), t TEXT, c CHAR(20), raw VARBINARY(32)) DEFAULT CHARSET = {charset}"
        ));
    }
    // A table mixing sets column by column (the table map's COLUMN_CHARSET form); the ENUM
    // before them is not one of the character columns the table map counts.
    script.push_str(&format!(
        ";\nCREATE TABLE {db}.t_mixed (id INT PRIMARY KEY, e ENUM('x', 'y') CHARACTER SET gbk, \
         v VARCHAR(64) CHARACTER SET latin1, t TEXT CHARACTER SET gbk, \
         c CHAR(20) CHARACTER SET cp1251, raw VARBINARY(32)) DEFAULT CHARSET = utf8mb4"
    ));
    common::run_sql(&mut conn, &script).await;
    let samples: Vec<(String, String, String, String)> = SAMPLES
        .iter()
        .map(|(charset, text)| {
            (
                format!("t_{charset}"),
                text.to_string(),
                text.to_string(),
                text.chars().take(20).collect(),
            )
        })
        .chain(std::iter::once((
            "t_mixed".to_string(),
            "café crème".to_string(),
            "中文字符".to_string(),
            "Привет".to_string(),
        )))
        .collect();
    // Row 1 before the snapshot, row 2 while streaming; the VARBINARY holds latin1 bytes that
    // must stay bytes.
    let insert = |id: i64| {
        samples
            .iter()
            .map(|(table, v, t, c)| {
                format!(
                    "INSERT INTO {db}.{table} VALUES ({id}, 'y', '{v}', '{t}', '{c}', \
                     x'636166E920C3A9')"
                )
            })
            .collect::<Vec<_>>()
            .join(";\n")
    };
    common::run_sql(&mut conn, &insert(1)).await;

    let topic = common::unique("cs_all");
    let project = common::Project::new(
        "cs_all",
        &common::mariadb_source("cs_all"),
        "sync = 'schema, full, incremental', partitioning = 'one'",
        &format!("SYNC TABLE {db}.* TO TOPIC '{topic}';"),
    );
    project.catch_up();
    common::run_sql(&mut conn, &insert(2)).await;
    // An update: its before image is decoded too.
    let updates: Vec<String> = samples
        .iter()
        .map(|(table, ..)| format!("UPDATE {db}.{table} SET v = CONCAT(v, '!') WHERE id = 1"))
        .collect();
    common::run_sql(&mut conn, &updates.join(";\n")).await;
    project.catch_up();

    let records = records(&topic, samples.len() * 3);
    for (table, ..) in &samples {
        let snapshot = find(&records, "ROW", table, 1);
        let stream = find(&records, "INSERT", table, 2);
        let update = find(&records, "UPDATE", table, 1);
        for column in ["e", "v", "t", "c"] {
            let expected = server_text(&mut conn, &format!("{db}.{table}"), column, 2).await;
            assert_eq!(
                stream["postStruct"][column], expected,
                "{table}.{column}: the stream's text is what the server returns"
            );
            assert_eq!(
                snapshot["postStruct"][column], stream["postStruct"][column],
                "{table}.{column}: snapshot and stream agree"
            );
        }
        let updated = server_text(&mut conn, &format!("{db}.{table}"), "v", 1).await;
        assert_eq!(update["postStruct"]["v"], updated, "{table}");
        assert_eq!(
            update["prevStruct"]["v"], snapshot["postStruct"]["v"],
            "{table}: the before image"
        );
        // Bytes stay bytes: the same encoding of x'636166E920C3A9' either way, not text.
        assert_eq!(
            snapshot["postStruct"]["raw"], stream["postStruct"]["raw"],
            "{table}.raw"
        );
        assert_ne!(stream["postStruct"]["raw"], "café é", "{table}.raw");
    }
}

#[tokio::test]
async fn a_column_in_a_character_set_tributary_cannot_decode_is_refused_by_check() {
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(
        &mut conn,
        "cs_refused",
        "id INT PRIMARY KEY, name VARCHAR(20) CHARACTER SET armscii8, note VARCHAR(20)",
    )
    .await;
    let source = common::mariadb_source("cs_refused");
    let refused = common::Project::new(
        "cs_refused",
        &source,
        "sync = 'schema, full, incremental'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let outcome = common::tributary(&["check", refused.file.to_str().unwrap()]);
    let said = format!("{}{}", outcome.stdout, outcome.stderr);
    assert_eq!(outcome.code, 1, "{said}");
    assert!(
        said.contains(&format!("column {db}.t.name is in character set armscii8")),
        "{said}"
    );
    // Left out, the column is no obstacle.
    let without = common::Project::new(
        "cs_refused_ok",
        &source,
        "sync = 'schema, full, incremental'",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}' COLUMNS (id, note);"),
    );
    let outcome = common::tributary(&["check", without.file.to_str().unwrap()]);
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
}

/// Without table-map metadata the schema history is the only record of the character sets:
/// from the catalog at the start, through `ALTER TABLE … ADD COLUMN` and a CREATE TABLE (which
/// takes its database's set) while streaming. A
/// checkpoint whose history has none (written before tributary recorded them) stops the run
/// with a definite error at the first value that is not UTF-8, never U+FFFD.
#[tokio::test]
async fn without_table_map_metadata_the_schema_history_decodes_text_through_ddl() {
    let server = common::PrivateMariaDb::start(&["binlog_row_metadata=NO_LOG"]).await;
    let mut conn = server.conn().await;
    let db = common::unique("cs_nolog");
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db} CHARACTER SET latin1;
CREATE TABLE {db}.t (id INT PRIMARY KEY, v VARCHAR(40)) DEFAULT CHARSET = latin1;
CREATE TABLE {db}.g (id INT PRIMARY KEY, v VARCHAR(40)) DEFAULT CHARSET = gbk;
INSERT INTO {db}.t VALUES (1, 'café');
INSERT INTO {db}.g VALUES (1, '中文')"
        ),
    )
    .await;
    let topic = common::unique("cs_nolog");
    let project = common::Project::new(
        "cs_nolog",
        &server.source_options(),
        "sync = 'schema, full, incremental', partitioning = 'one'",
        &format!("SYNC TABLE {db}.* TO TOPIC '{topic}';"),
    );
    project.catch_up();
    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.t VALUES (2, 'crème brûlée');
ALTER TABLE {db}.t ADD COLUMN w VARCHAR(40);
ALTER TABLE {db}.t ADD COLUMN k TEXT CHARACTER SET cp1251 AFTER v;
INSERT INTO {db}.t VALUES (3, 'naïve', 'Привет', 'façade');
INSERT INTO {db}.g VALUES (2, '字符集');
CREATE TABLE {db}.n (id INT PRIMARY KEY, v VARCHAR(20));
INSERT INTO {db}.n VALUES (1, 'Ærøskøbing');
ALTER TABLE {db}.n ADD COLUMN w VARCHAR(20);
INSERT INTO {db}.n VALUES (2, 'Ålborg', 'Øresund')"
        ),
    )
    .await;
    project.catch_up();
    let records = records(&topic, 8);
    let by_id = |table: &str, id: i64| find(&records, "INSERT", table, id)["postStruct"].clone();
    let expected: HashMap<&str, String> = [
        (
            "v",
            server_text(&mut conn, &format!("{db}.t"), "v", 3).await,
        ),
        (
            "k",
            server_text(&mut conn, &format!("{db}.t"), "k", 3).await,
        ),
        (
            "w",
            server_text(&mut conn, &format!("{db}.t"), "w", 3).await,
        ),
    ]
    .into();
    assert_eq!(by_id("t", 2)["v"], "crème brûlée");
    for (column, text) in &expected {
        assert_eq!(&by_id("t", 3)[*column], text, "{column}");
    }
    assert_eq!(by_id("g", 2)["v"], "字符集");
    // Created while streaming without a set of its own: the database's latin1, replayed from
    // the statements (the table as created, then altered), not from today's catalog.
    assert_eq!(
        by_id("n", 1),
        serde_json::json!({"id": 1, "v": "Ærøskøbing"})
    );
    assert_eq!(
        by_id("n", 2),
        serde_json::json!({"id": 2, "v": "Ålborg", "w": "Øresund"})
    );

    // The same history as an older tributary stored it: no character sets.
    let path = project.checkpoint_path();
    let mut checkpoint: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("checkpoint")).unwrap();
    for table in checkpoint["schemas"].as_array_mut().expect("schemas") {
        table.as_object_mut().unwrap().remove("charset");
        for column in table["columns"].as_array_mut().unwrap() {
            column.as_array_mut().unwrap().truncate(3);
        }
    }
    std::fs::write(&path, serde_json::to_string(&checkpoint).unwrap()).unwrap();
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t VALUES (4, 'plain', 'ascii', 'text')"),
    )
    .await;
    // ASCII is UTF-8: it goes through.
    project.catch_up();
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t VALUES (5, 'déjà vu', 'x', 'y')"),
    )
    .await;
    let outcome = project.run(&["--until-caught-up"]);
    assert_eq!(outcome.code, 2, "{}{}", outcome.stdout, outcome.stderr);
    for part in [
        &format!("table {db}.t, column `v`"),
        "the column's character set is unknown",
        "tributary reset",
        "mysql-bin.",
    ] {
        assert!(outcome.stderr.contains(part), "{part}: {}", outcome.stderr);
    }
    let after = records_of(&topic);
    assert!(
        !after.contains('\u{FFFD}'),
        "nothing was sent with replacement characters"
    );
}

fn records_of(topic: &str) -> String {
    common::consume_all(topic, 0, Duration::from_secs(10))
        .iter()
        .map(|m| m.payload.clone())
        .collect()
}

/// Every code of every supported character set decodes to what the server converts it to,
/// wherever the server has a character for it (where it has none it shows `?`; tributary then
/// decodes as encoding_rs does, or refuses). `TRIBUTARY_REGENERATE_CHARSETS=1` rewrites
/// `src/plan/charset/mysql_tables.rs`, MySQL's own codes for big5, ujis and eucjpms, from the
/// server.
#[tokio::test]
async fn charsets_decode_as_the_server_does() {
    let mut conn = common::mariadb().await;
    let single = [
        "latin1", "latin2", "latin5", "latin7", "cp1250", "cp1251", "cp1256", "cp1257", "cp866",
        "koi8r", "koi8u", "greek", "hebrew", "macroman", "tis620", "ascii",
    ];
    let double = [
        "big5", "gbk", "gb2312", "euckr", "sjis", "cp932", "ujis", "eucjpms",
    ];
    let mut queries: Vec<(&str, String)> = Vec::new();
    for charset in single.iter().chain(&double) {
        queries.push((
            charset,
            "SELECT UNHEX(LPAD(HEX(seq), 2, '0')) AS b FROM seq_0_to_255".into(),
        ));
    }
    for charset in &double {
        queries.push((
            charset,
            "SELECT UNHEX(CONCAT(LPAD(HEX(l.seq), 2, '0'), LPAD(HEX(t.seq), 2, '0'))) AS b \
             FROM seq_128_to_255 l, seq_64_to_255 t"
                .into(),
        ));
    }
    for charset in ["ujis", "eucjpms"] {
        queries.push((
            charset,
            "SELECT UNHEX(CONCAT('8F', LPAD(HEX(l.seq), 2, '0'), LPAD(HEX(t.seq), 2, '0'))) AS b \
             FROM seq_161_to_254 l, seq_161_to_254 t"
                .into(),
        ));
    }
    let mut mismatches = Vec::new();
    let mut tables: HashMap<&str, Vec<(u32, char)>> = HashMap::new();
    conn.query_drop("USE mysql").await.expect("use");
    for (charset, codes) in queries {
        let decoder = Charset::from_name(charset).expect(charset);
        let rows: Vec<(Vec<u8>, String)> = conn
            .query(format!(
                "SELECT b, CONVERT(CONVERT(b USING {charset}) USING utf8mb4) FROM ({codes}) x"
            ))
            .await
            .unwrap_or_else(|e| panic!("{charset}: {e}"));
        for (bytes, server) in rows {
            // Only codes the server has one character for: `?` is its "no mapping".
            let one_char = server.chars().count() == 1 || bytes.len() == 1;
            if bytes.contains(&b'?') || server.contains(['?', '\u{FFFD}']) || !one_char {
                continue;
            }
            let ours = decoder.decode(&bytes);
            if ours.as_deref() != Ok(server.as_str()) {
                mismatches.push(format!(
                    "{charset} {bytes:02x?}: server {server:?}, ours {ours:?}"
                ));
            }
            if let Some(encoding) = match charset {
                "big5" => Some(encoding_rs::BIG5),
                "ujis" | "eucjpms" => Some(encoding_rs::EUC_JP),
                _ => None,
            } {
                let raw = encoding.decode_without_bom_handling_and_without_replacement(&bytes);
                if raw.as_deref() != Some(server.as_str()) && bytes.len() > 1 {
                    let code = bytes.iter().fold(0u32, |c, b| c << 8 | u32::from(*b));
                    let char = server.chars().next().expect("one character");
                    tables.entry(charset).or_default().push((code, char));
                }
            }
        }
    }
    if std::env::var("TRIBUTARY_REGENERATE_CHARSETS").is_ok_and(|v| v == "1") {
        regenerate(tables);
        return;
    }
    assert!(
        mismatches.is_empty(),
        "{} codes decode otherwise than the server does:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(40)].join("\n")
    );
}

fn regenerate(mut tables: HashMap<&str, Vec<(u32, char)>>) {
    let mut out = String::from(
        "//! MySQL's own mappings where they differ from encoding_rs (the WHATWG Encoding Standard), for the
//! multi-byte character sets that need many: every code below decodes, on MariaDB 10.11, to the
//! character given (`SELECT CONVERT(CONVERT(x USING cs) USING utf8mb4)`), and encoding_rs gives
//! another character or none. Generated from the server by the `charsets_decode_as_the_server_does`
//! test (`TRIBUTARY_REGENERATE_CHARSETS=1` rewrites this file); not edited by hand.
",
    );
    for (charset, name) in [("big5", "BIG5"), ("ujis", "UJIS"), ("eucjpms", "EUCJPMS")] {
        let mut codes = tables.remove(charset).unwrap_or_default();
        codes.sort();
        codes.dedup();
        out.push_str(&format!(
            "\n/// `{charset}`: {} codes.\n#[rustfmt::skip]\npub const {name}: &[(u32, char)] = &[\n",
            codes.len()
        ));
        for line in codes.chunks(6) {
            let entries: Vec<String> = line
                .iter()
                .map(|(code, c)| format!("(0x{code:X}, '\\u{{{:04X}}}'),", *c as u32))
                .collect();
            out.push_str(&format!("    {}\n", entries.join(" ")));
        }
        out.push_str("];\n");
    }
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/plan/charset/mysql_tables.rs"
    );
    std::fs::write(path, out).expect("write mysql_tables.rs");
}
