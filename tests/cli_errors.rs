//! What a person sees when the command line or the project file is wrong: the exit code
//! (design.md §2: 1 for anything wrong with the project, nothing written) and one clear message
//! that names the file and, where there is one, the line and column — each cause said once.

mod common;

use std::path::Path;

fn explain(path: &Path) -> common::Outcome {
    common::tributary(&["explain", path.to_str().expect("utf-8 path")])
}

/// A file in a fresh temp dir.
fn file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = common::temp_dir("cli_errors").join(name);
    std::fs::write(&path, bytes).expect("write file");
    path
}

/// The message is printed once: no cause repeats what the error already said.
fn said_once(outcome: &common::Outcome, text: &str) {
    assert_eq!(
        outcome.stderr.matches(text).count(),
        1,
        "`{text}` should appear once:\n{}",
        outcome.stderr
    );
}

#[test]
fn a_missing_project_file_is_a_project_error() {
    for command in ["check", "explain", "run", "status", "reset"] {
        let outcome = common::tributary(&[command, "/no/such/dir/project.sql"]);
        assert_eq!(outcome.code, 1, "{command}: {}", outcome.stderr);
        assert_eq!(
            outcome.stderr.trim(),
            "error: project file /no/such/dir/project.sql does not exist; check the path",
            "{command}"
        );
    }
}

#[test]
fn a_binary_file_is_told_plainly() {
    let path = file("tributary.sql", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00");
    let outcome = explain(&path);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains("is a binary file, not a project file"),
        "{}",
        outcome.stderr
    );
    assert!(
        !outcome.stderr.contains("check the path"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn a_file_that_is_not_utf8_is_located_at_the_first_bad_byte() {
    let path = file(
        "latin1.sql",
        b"-- caf\xe9 au lait\nCREATE SOURCE s WITH (type = 'mariadb');\n",
    );
    let outcome = explain(&path);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains(&format!("{}:1:7: byte 0xE9 is not UTF-8", path.display())),
        "{}",
        outcome.stderr
    );
    said_once(&outcome, "not UTF-8");
}

#[test]
fn a_byte_order_mark_is_skipped() {
    // Without its BOM the file would fail at `CREATE PROJECT` (line 2); with it, not at 1:1.
    let path = file(
        "bom.sql",
        b"\xef\xbb\xbfCREATE SOURCE s WITH (type = 'mariadb', host = 'h');\n",
    );
    let outcome = explain(&path);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("has no CREATE PROJECT statement"),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains('\u{feff}'), "{}", outcome.stderr);
}

#[test]
fn a_rejected_kafka_property_is_located_at_its_line() {
    let path = file(
        "property.sql",
        b"CREATE SOURCE s WITH (type = 'mariadb', host = '127.0.0.1');\n\
          CREATE SINK k WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092',\n\
          \x20 'acks' = 'sometimes');\n\
          CREATE PROJECT p FROM s TO k;\n\
          SYNC TABLE a.b TO TOPIC 'bbb';\n",
    );
    // Before any connection: a run fails the same way, with exit 1.
    for command in ["explain", "run"] {
        let outcome = common::tributary(&[command, path.to_str().unwrap()]);
        assert_eq!(outcome.code, 1, "{command}: {}", outcome.stderr);
        assert!(
            outcome.stderr.contains(&format!(
                "{}:3:3: librdkafka rejects 'acks' = 'sometimes' in CREATE SINK k",
                path.display()
            )),
            "{command}: {}",
            outcome.stderr
        );
        said_once(&outcome, "rejects");
    }
}

#[test]
fn an_unterminated_string_is_located_where_it_opens() {
    let path = file(
        "quote.sql",
        b"CREATE SOURCE s WITH (type = 'mariadb', host = '127.0.0.1, port = 3307);\n\
          CREATE SINK k WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');\n\
          CREATE PROJECT p FROM s TO k;\n\
          SYNC TABLE a.b TO TOPIC 'bbb';\n",
    );
    let outcome = explain(&path);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!(
            "{}:1:48: this string is not closed on its line",
            path.display()
        )),
        "{}",
        outcome.stderr
    );
}

#[test]
fn a_where_with_a_missing_operand_blames_the_operator_word() {
    let path = file(
        "where.sql",
        b"CREATE SOURCE s WITH (type = 'mariadb', host = '127.0.0.1');\n\
          CREATE SINK k WITH (type = 'kafka', 'bootstrap.servers' = '127.0.0.1:9092');\n\
          CREATE PROJECT p FROM s TO k;\n\
          SYNC TABLE a.b TO TOPIC 'bbb' WHERE qty > AND sku = 'x';\n",
    );
    let outcome = explain(&path);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains(&format!(
            "{}:4:43: the WHERE condition does not parse: an operand is missing before `AND`",
            path.display()
        )),
        "{}",
        outcome.stderr
    );
    assert!(!outcome.stderr.contains("sku"), "{}", outcome.stderr);
}

#[test]
fn import_objects_reads_excel_csv_and_locates_bad_rows() {
    // Excel's byte-order mark and CRLF line ends, a quoted filter with a comma and a quote.
    let path = file(
        "objects.csv",
        b"\xef\xbb\xbfsource database,source table,topic,row filter\r\n\
          shop,orders,orders,\"status IN ('a', 'b') AND note <> \"\"x\"\"\"\r\n",
    );
    let outcome = common::tributary(&["import-objects", path.to_str().unwrap()]);
    assert_eq!(outcome.code, 0, "{}", outcome.stderr);
    assert!(
        outcome
            .stdout
            .contains("SYNC TABLE `shop`.`orders` TO TOPIC 'orders'\n  WHERE status IN ('a', 'b') AND note <> \"x\"\n;"),
        "{}",
        outcome.stdout
    );
    let bad = file(
        "latin1.csv",
        b"source database,source table,topic\r\nshop,orders,orders\r\nshop,caf\xe9,t\r\n",
    );
    let outcome = common::tributary(&["import-objects", bad.to_str().unwrap()]);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
    assert!(
        outcome
            .stderr
            .contains(&format!("{}:3: this row is not UTF-8", bad.display())),
        "{}",
        outcome.stderr
    );
    let outcome = common::tributary(&["import-objects", "/no/such/objects.csv"]);
    assert_eq!(outcome.code, 1, "{}", outcome.stderr);
}
