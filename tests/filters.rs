//! Row filters against the real MariaDB, the server as the oracle: for each of a hundred WHERE
//! texts over a table with NULLs, mixed case, non-ASCII text, zero dates, decimals and zeros,
//! the rows tributary sends — in the snapshot and in the stream — are the rows
//! `SELECT id FROM t WHERE <the same text>` returns. And a filter tributary cannot evaluate
//! exactly is refused by `check` (and by `run`, before anything is written), naming what.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use mysql_async::prelude::*;
use serde_json::Value;
use tributary::plan::mysql::collation::{Collation, general_ci_weight};

/// The filters, each on a table of its own. Every one is also run by MariaDB.
const FILTERS: &[&str] = &[
    // Strings.
    "SUBSTR(name, 1, 3) = 'ali'",
    "SUBSTRING(name, 2) = 'LICE'",
    "SUBSTRING(name FROM -3 FOR 2) = 'os'",
    "SUBSTRING(name, 0) = ''",
    "MID(code, 2, 1) = 'b'",
    "SUBSTRING(code, qty) = 'c'",
    "LEFT(name, 2) = 'jo'",
    "RIGHT(code, 2) = 'Xy'",
    "LEFT(name, -1) = ''",
    "CONCAT(name, '-', code) LIKE 'a%-a%'",
    "CONCAT(code, qty) = 'abc3'",
    "CONCAT(price, '') = '3.50'",
    "CONCAT(born, '') LIKE '2024%'",
    "CONCAT_WS(',', name, code) = 'BOB,Xy'",
    "LOWER(name) = 'josé'",
    "UPPER(code) = 'ABC'",
    "LOWER(code) = 'abc'",
    "LENGTH(name) > 6",
    "LENGTH(city) = 7",
    "CHAR_LENGTH(name) BETWEEN 4 AND 5",
    "CHAR_LENGTH(city) = 6",
    "TRIM(name) = 'alice'",
    "RTRIM(code) = 'abc'",
    "TRIM(LEADING 'a' FROM code) = 'bc'",
    "REPLACE(name, 'a', 'A') = 'ALICE'",
    // NULL functions and conditionals.
    "IFNULL(qty, 0) > 2",
    "IFNULL(name, 'none') = 'NONE'",
    "COALESCE(qty, price, 0) > 2",
    "IF(flag, qty, -1) >= 3",
    "IF(note, 'num', 'text') = 'num'",
    "CASE WHEN qty > 5 THEN 'big' WHEN qty > 0 THEN 'small' ELSE 'none' END = 'SMALL'",
    "CASE kind WHEN 'A' THEN 1 WHEN 'c' THEN 2 ELSE 0 END > 0",
    "NULLIF(qty, 0) IS NULL",
    "ISNULL(name)",
    // Dates.
    "DATE(created) = '2024-03-01'",
    "DATE(created) = born",
    "YEAR(born) = 1990",
    "YEAR(born) = 0",
    "MONTH(created) = 3",
    "DAY(born) = 31",
    "DAYOFMONTH(created) = 29",
    "QUARTER(born) = 1",
    "HOUR(created) >= 12",
    "created > DATE_SUB('2024-03-01 00:00:00', INTERVAL 1 DAY)",
    "born + INTERVAL 1 MONTH > '2024-02-28'",
    "DATE_ADD(born, INTERVAL 1 YEAR) < '2000-01-01'",
    "DATE_SUB(born, INTERVAL 1 MONTH) = '2024-02-29'",
    "created - INTERVAL 30 MINUTE < '2024-01-01'",
    "DATEDIFF(created, born) > 10000",
    "born >= '2000-01-01'",
    "born = '0000-00-00'",
    "created BETWEEN '2024-02-29' AND '2024-03-01'",
    "born < created",
    "EXTRACT(MONTH FROM born) = 12",
    // Casts.
    "CAST(note AS SIGNED) = 12",
    "CAST(note AS SIGNED) < 0",
    "CAST(price AS SIGNED) = 4",
    "CAST(qty AS CHAR) = '3'",
    "CAST(ratio AS DECIMAL(10,1)) = 1.3",
    "CAST(qty AS UNSIGNED) > 100",
    "CONVERT(note, SIGNED) > 5",
    "CAST(note AS DECIMAL(5,1)) = 3.5",
    "CAST(note AS DECIMAL(5,1)) = -3.5",
    "CAST(created AS DATE) = '2024-03-31'",
    // LIKE and REGEXP.
    "name LIKE 'a%'",
    "name LIKE '%É%'",
    "name LIKE 'jos_'",
    "code LIKE 'a%'",
    "code LIKE 'a\\_b'",
    "code LIKE 'a!%b' ESCAPE '!'",
    "name NOT LIKE '%o%'",
    "tag LIKE 'A%'",
    "note LIKE '1%'",
    "qty LIKE '1%'",
    "name REGEXP '^[a-c]'",
    "code REGEXP 'x'",
    "name REGEXP 'é'",
    "name NOT REGEXP 'i'",
    "tag RLIKE '^[a-z]+$'",
    // IN and BETWEEN.
    "qty IN (1, 3, 5)",
    "name IN ('alice', 'BOB')",
    "code IN ('abc', 'XY')",
    "qty NOT IN (1, NULL)",
    "kind IN ('a', 'c')",
    "price BETWEEN 2 AND 10",
    "name BETWEEN 'a' AND 'c'",
    "note NOT BETWEEN 5 AND 50",
    // Arithmetic.
    "qty DIV 2 = 1",
    "price DIV qty >= 2",
    "MOD(qty, 3) = 0",
    "qty MOD 2 = 1",
    "qty % 2 = 0",
    "price % 3 > 1",
    "price / qty > 1",
    "price / qty = 0.333333",
    "qty / 4 = 0.75",
    "qty / 3 * 3 = qty",
    "ratio / qty > 0.1",
    "ratio / 0 IS NULL",
    "-qty > 2",
    "qty * price > 20",
    "qty + 0.5 > 3",
    "ABS(qty) = 3",
    // Comparisons: strings and numbers, collations, NULL.
    "note = 12",
    "note > 10",
    "note = 0",
    "name = 0",
    "price > '9.5'",
    "name = 'ALICE'",
    "name = 'jose'",
    "name = 'strase'",
    "code = 'abc'",
    "name = 'alice   '",
    "name < 'b'",
    "name > 'Z'",
    "tag < 'a_c'",
    "tag = 'APPLE'",
    "kind = 'A'",
    "price = 10",
    "ratio = 2.5",
    "flag = TRUE",
    "qty <=> NULL",
    "NOT (qty > 2)",
    "qty > 2 XOR flag",
    "qty",
    "note",
    "flag IS TRUE",
    "note IS NOT FALSE",
    "BINARY name = 'alice'",
    "name COLLATE utf8mb4_bin = 'Alice'",
    "code COLLATE utf8mb4_general_ci = 'abc'",
    "name = code",
    "city = code",
];

const COLUMNS: &str = "id INT PRIMARY KEY, name VARCHAR(40), code VARCHAR(20) COLLATE utf8mb4_bin, \
     tag VARCHAR(20) COLLATE utf8mb4_unicode_ci, city VARCHAR(20) CHARACTER SET latin1, qty INT, \
     price DECIMAL(10,2), ratio DOUBLE, note VARCHAR(40), born DATE, created DATETIME, \
     flag TINYINT(1), kind ENUM('a','b','C')";

/// `(name, code, tag, city, qty, price, ratio, note, born, created, flag, kind)`; ids are the
/// position from 1 (the snapshot) and from 101 (the stream).
const ROWS: &[&str] = &[
    "'alice', 'abc', 'apple', 'Paris', 3, 9.99, 0.5, '12abc', '1990-05-31', '2024-03-01 10:00:00', 1, 'a'",
    "'Alice', 'ABC', 'Apple', 'paris', 0, 1.00, 2.5, ' 7', '1990-12-31', '2024-02-29 23:59:59', 0, 'b'",
    "'BOB', 'Xy', 'banana', 'München', NULL, 3.50, NULL, '1e2', '2000-01-31', '2024-03-01 00:00:00', NULL, 'C'",
    "'josé', 'aXy', 'cherry', 'Zürich', 5, 10.00, 1.25, 'abc', '2024-01-31', '2023-12-31 12:00:00', 1, NULL",
    "'JOSÉ', NULL, 'Date', NULL, 1, 0.00, 0, '0x10', '0000-00-00', NULL, 0, 'a'",
    "NULL, 'xyz', NULL, 'Oslo', 2, NULL, 3.0, NULL, NULL, '2024-03-01 00:00:01', 1, 'b'",
    "'alice   ', 'abc ', 'apple ', 'Rome', 7, 21.00, -1.5, '12', '1999-12-31', '2024-01-15 08:30:00', 0, 'a'",
    "'Ünïcødé', 'ümlaut', 'zeta', 'Köln', -3, -4.50, 0.1, '-3.5', '2024-02-29', '2024-03-31 12:00:00', 1, 'C'",
    "'中文字符', 'emoji😀', 'Mango', 'Lyon', 4, 2.00, NULL, '.5', '1985-07-04', '2024-07-04 00:00:00', NULL, 'b'",
    "'straße', 'STRASSE', 'kiwi', NULL, 6, 7.77, 2.0, '+5', '2012-02-29', '2012-02-29 13:14:15', 0, 'a'",
    "'o''brien', 'a_b', 'a_b', 'Nice', 10, 3.33, 3.33, '10', '2024-03-31', '2024-03-31 00:00:00', 1, 'C'",
    "'percent%', 'a%b', 'a%b', 'Metz', 12, 100.00, NULL, '100', '2023-03-31', '2023-03-30 23:00:00', 0, 'b'",
    "'', '', '', '', 0, 0.01, 0, '', '2001-01-01', '2001-01-01 00:00:00', 0, 'a'",
    "'third', 'c', 'a c', 'Bern', 3, 1.00, 1.0, '3.5', '2024-12-31', '2024-12-31 23:59:59', 1, 'b'",
    "'Éclair', 'éclair', 'eclair', 'Écully', 8, 12.34, -0.25, '-0', '1990-01-01', '1990-01-01 12:00:00', NULL, 'C'",
];

fn insert_rows(db: &str, table: &str, first_id: usize) -> String {
    let values: Vec<String> = ROWS
        .iter()
        .enumerate()
        .map(|(i, row)| format!("({}, {row})", first_id + i))
        .collect();
    format!("INSERT INTO {db}.{table} VALUES {}", values.join(", "))
}

/// The oracle: the ids MariaDB's own evaluation of the filter keeps.
async fn server_ids(
    conn: &mut mysql_async::Conn,
    db: &str,
    table: &str,
    filter: &str,
) -> BTreeSet<i64> {
    conn.query::<i64, _>(format!("SELECT id FROM {db}.{table} WHERE {filter}"))
        .await
        .unwrap_or_else(|e| panic!("MariaDB runs `{filter}`: {e}"))
        .into_iter()
        .collect()
}

/// `{table → (snapshot ids, stream INSERT ids)}` of the topic's messages.
fn sent_ids(messages: &[common::Consumed]) -> BTreeMap<String, (BTreeSet<i64>, BTreeSet<i64>)> {
    let mut sent: BTreeMap<String, (BTreeSet<i64>, BTreeSet<i64>)> = BTreeMap::new();
    for message in messages {
        let payload: Value = serde_json::from_str(&message.payload).expect("JSON payload");
        let table = payload["allMetaData"]["table_name"]
            .as_str()
            .expect("a table name")
            .to_string();
        let key: Value =
            serde_json::from_str(message.key.as_deref().expect("a key")).expect("a JSON key");
        let id = key["id"].as_i64().expect("an id");
        let entry = sent.entry(table).or_default();
        match payload["recordType"].as_str() {
            Some("ROW") => entry.0.insert(id),
            Some("INSERT") => entry.1.insert(id),
            other => panic!("unexpected record {other:?}: {payload}"),
        };
    }
    sent
}

fn check(project: &common::Project) -> common::Outcome {
    common::tributary(&["check", project.file.to_str().expect("a UTF-8 path")])
}

#[tokio::test]
async fn where_keeps_the_rows_mysql_keeps_in_snapshot_and_stream() {
    let mut conn = common::mariadb().await;
    let db = common::unique("where_oracle");
    let topic = common::unique("where_oracle");
    let mut script = format!(
        "CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;\n\
         SET SESSION sql_mode = ''"
    );
    let mut syncs = String::new();
    for (i, filter) in FILTERS.iter().enumerate() {
        script.push_str(&format!(";\nCREATE TABLE {db}.t{i} ({COLUMNS})"));
        script.push_str(&format!(";\n{}", insert_rows(&db, &format!("t{i}"), 1)));
        syncs.push_str(&format!(
            "SYNC TABLE {db}.t{i} TO TOPIC '{topic}' WHERE {filter};\n"
        ));
    }
    common::run_sql(&mut conn, &script).await;

    let project = common::Project::new(
        "where_oracle",
        &common::mariadb_source("where_oracle"),
        "sync = 'schema, full, incremental', topic_partitions = 1, full_concurrency = 8",
        &syncs,
    );
    let check = check(&project);
    assert_eq!(check.code, 0, "check:\n{}{}", check.stdout, check.stderr);
    project.catch_up();

    // The same rows again, written while the project streams.
    let mut script = String::from("SET SESSION sql_mode = ''");
    for i in 0..FILTERS.len() {
        script.push_str(&format!(";\n{}", insert_rows(&db, &format!("t{i}"), 101)));
    }
    common::run_sql(&mut conn, &script).await;
    project.catch_up();

    let mut expected = BTreeMap::new();
    let mut total = 0;
    for (i, filter) in FILTERS.iter().enumerate() {
        let ids = server_ids(&mut conn, &db, &format!("t{i}"), filter).await;
        total += ids.len();
        let snapshot: BTreeSet<i64> = ids.iter().copied().filter(|id| *id < 100).collect();
        let stream: BTreeSet<i64> = ids.iter().copied().filter(|id| *id > 100).collect();
        expected.insert(format!("t{i}"), (snapshot, stream));
    }
    let messages = common::consume_all(&topic, total, Duration::from_secs(120));
    let sent = sent_ids(&messages);
    let mut wrong = Vec::new();
    for (i, filter) in FILTERS.iter().enumerate() {
        let table = format!("t{i}");
        let want = &expected[&table];
        let got = sent.get(&table).cloned().unwrap_or_default();
        if &got != want {
            wrong.push(format!(
                "{filter}\n    MariaDB: snapshot {:?}, stream {:?}\n    sent:    snapshot {:?}, stream {:?}",
                want.0, want.1, got.0, got.1
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} filters disagree with MariaDB:\n{}",
        wrong.len(),
        FILTERS.len(),
        wrong.join("\n")
    );
    // The filters keep some rows and drop others: the comparison is not vacuous.
    assert!(total > FILTERS.len() * 2, "{total} rows matched in all");
}

/// Writes a one-table project with `filter` over a table of [`COLUMNS`].
async fn project_with(name: &str, filter: &str) -> (common::Project, String, String) {
    let mut conn = common::mariadb().await;
    let db = common::unique(name);
    let topic = common::unique(name);
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;\n\
             CREATE TABLE {db}.t ({COLUMNS});\n{}",
            insert_rows(&db, "t", 1)
        ),
    )
    .await;
    let project = common::Project::new(
        name,
        &common::mariadb_source(name),
        "sync = 'schema, full, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}' WHERE {filter};"),
    );
    (project, db, topic)
}

#[tokio::test]
async fn a_filter_tributary_cannot_evaluate_exactly_is_refused_naming_it() {
    let refused = [
        ("created > NOW()", "NOW()"),
        ("SOUNDEX(name) = 'A420'", "SOUNDEX()"),
        ("TO_HEX(qty) = 'ff'", "TO_HEX()"),
        ("name REGEXP '(?<=a)l'", "REGEXP"),
        ("name COLLATE utf8mb4_czech_ci = 'x'", "utf8mb4_czech_ci"),
        ("city = 'Köln'", "latin1_swedish_ci"),
        ("tag LIKE 'é%'", "utf8mb4_unicode_ci"),
        ("tag < 'b' COLLATE utf8mb4_0900_ai_ci", "utf8mb4_0900_ai_ci"),
        ("ratio LIKE '1%'", "DOUBLE"),
        ("name = tag", "Illegal mix of collations"),
        ("kind < 'b'", "ENUM"),
        ("born = 20240131", "DATE"),
        ("name || code = 'x'", "||"),
    ];
    // The planner, as `check` and `run` call it, against the live catalog.
    let (project, db, _) = project_with("where_refused", "qty > 0").await;
    let mut conn = common::mariadb().await;
    let catalog = tributary::source::catalog::load_catalog(
        &mut conn,
        &tributary::project::Databases::Matching(vec![tributary::project::NamePattern::Exact(
            db.clone(),
        )]),
    )
    .await
    .expect("catalog");
    let text = std::fs::read_to_string(&project.file).expect("project");
    for (filter, named) in refused {
        let file = project.file.with_file_name("refused.sql");
        std::fs::write(
            &file,
            text.replace("WHERE qty > 0", &format!("WHERE {filter}")),
        )
        .expect("write project");
        let planned = tributary::project::ProjectFile::load(&file)
            .and_then(|p| tributary::plan::plan(p, &catalog));
        match planned {
            Ok(_) => panic!("`{filter}` is accepted"),
            Err(e) => assert!(
                e.to_string().contains(named),
                "the refusal of `{filter}` does not name {named}: {e}"
            ),
        }
    }

    // `check` says so and exits 1; `run` refuses too, before it creates a topic or writes a
    // checkpoint.
    let (project, _, topic) = project_with("where_refused_run", "created > NOW()").await;
    let check = check(&project);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("NOW()"), "{}", check.stdout);
    let run = project.run(&["--until-caught-up"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("NOW()"), "{}", run.stderr);
    assert!(
        !project.checkpoint_path().exists(),
        "a checkpoint was written"
    );
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = common::kafka_config().create().expect("consumer");
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    assert!(
        !metadata.topics().iter().any(|t| t.name() == topic),
        "topic {topic} was created"
    );
}

/// Tables created while the project streams compare under the collation the server gave them:
/// the database's default when the statement names no character set, the set's default when
/// it names one without a collation — neither of which the DDL text says.
#[tokio::test]
async fn tables_created_while_streaming_compare_under_their_collations() {
    let mut conn = common::mariadb().await;
    let db = common::unique("where_ddl");
    let topic = common::unique("where_ddl");
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE DATABASE {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;\n\
             CREATE TABLE {db}.base (id INT PRIMARY KEY, name VARCHAR(10))"
        ),
    )
    .await;
    let project = common::Project::new(
        "where_ddl",
        &common::mariadb_source("where_ddl"),
        "sync = 'schema, full, incremental', topic_partitions = 1",
        &format!("SYNC TABLE {db}.* TO TOPIC '{topic}' WHERE name = 'alice';"),
    );
    project.catch_up();
    let rows = "(1, 'alice'), (2, 'ALICE'), (3, 'bob')";
    common::run_sql(
        &mut conn,
        &format!(
            "CREATE TABLE {db}.db_default (id INT PRIMARY KEY, name VARCHAR(10));\n\
             INSERT INTO {db}.db_default VALUES {rows};\n\
             CREATE TABLE {db}.set_default (id INT PRIMARY KEY, name VARCHAR(10)) CHARSET utf8mb4;\n\
             INSERT INTO {db}.set_default VALUES {rows};\n\
             CREATE TABLE {db}.named (id INT PRIMARY KEY, name VARCHAR(10) COLLATE utf8mb4_general_ci);\n\
             INSERT INTO {db}.named VALUES {rows}"
        ),
    )
    .await;
    project.catch_up();
    let sent = sent_ids(&common::consume_all(&topic, 5, Duration::from_secs(60)));
    for table in ["db_default", "set_default", "named"] {
        let want = server_ids(&mut conn, &db, table, "name = 'alice'").await;
        let got = sent
            .get(table)
            .map(|(_, stream)| stream.clone())
            .unwrap_or_default();
        assert_eq!(got, want, "{table}");
    }
    assert_eq!(sent["db_default"].1, BTreeSet::from([1]));
    assert_eq!(sent["named"].1, BTreeSet::from([1, 2]));
}

/// Text a collation cannot weigh exactly (here `'München'` under latin1_swedish_ci, whose table
/// tributary carries for ASCII only) stops the run, naming it, rather than passing or dropping
/// the row by guess.
#[tokio::test]
async fn text_a_collation_cannot_weigh_stops_the_run_naming_it() {
    let (project, _, _) = project_with("where_inexact", "city = 'paris'").await;
    let run = project.run(&["--until-caught-up"]);
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("latin1_swedish_ci"), "{}", run.stderr);
    assert!(run.stderr.contains("München"), "{}", run.stderr);
}

/// The collation tables tributary carries are the server's: `utf8mb4_general_ci` for every
/// character of the BMP (and U+FFFD beyond it), the ASCII tables for each of their collations.
#[tokio::test]
async fn collation_weights_are_the_servers() {
    let mut conn = common::mariadb().await;
    // The sequence tables (seq_0_to_65535) need a current database.
    let db = common::unique("weights");
    common::run_sql(&mut conn, &format!("CREATE DATABASE {db};\nUSE {db}")).await;
    let rows: Vec<(u32, String)> = conn
        .query(
            "SELECT seq, HEX(WEIGHT_STRING(CONVERT(CHAR(seq USING utf32) USING utf8mb4) \
             COLLATE utf8mb4_general_ci)) FROM seq_0_to_65535 \
             WHERE seq NOT BETWEEN 55296 AND 57343",
        )
        .await
        .expect("general_ci weights");
    assert_eq!(rows.len(), 65536 - 2048);
    for (code, weight) in rows {
        let c = char::from_u32(code).expect("a character");
        let weight = u32::from_str_radix(&weight, 16).expect("hex");
        assert_eq!(general_ci_weight(c), weight, "U+{code:04X}");
    }
    assert_eq!(general_ci_weight('😀'), 0xFFFD);

    let collations: Vec<String> = conn
        .query(
            "SELECT COLLATION_NAME FROM information_schema.COLLATIONS WHERE COLLATION_NAME IN \
             ('utf8mb4_unicode_ci', 'utf8mb4_unicode_520_ci', 'latin1_swedish_ci', \
              'latin1_general_ci', 'latin2_general_ci', 'cp1251_general_ci', 'gbk_chinese_ci', \
              'big5_chinese_ci', 'euckr_korean_ci', 'sjis_japanese_ci', 'latin5_turkish_ci', \
              'latin7_general_ci', 'ascii_general_ci', 'utf8mb3_unicode_ci')",
        )
        .await
        .expect("collations");
    assert!(collations.len() >= 13, "{collations:?}");
    for name in collations {
        let collation = Collation::from_name(&name).expect("a collation tributary weighs");
        let charset = tributary::plan::charset::Charset::of_collation(&name);
        let weights: Vec<(u32, String)> = conn
            .query(format!(
                "SELECT seq, HEX(WEIGHT_STRING(CONVERT(CHAR(seq USING ascii) USING {charset}) \
                 COLLATE {name})) FROM seq_0_to_126 WHERE seq IN (9, 10, 13) OR seq >= 32"
            ))
            .await
            .expect("ASCII weights");
        for (code, weight) in weights {
            let c = char::from_u32(code).expect("ASCII");
            let weight = u32::from_str_radix(&weight, 16).expect("hex");
            assert_eq!(collation.weight(c, true), Some(weight), "{name} {c:?}");
        }
    }
}
