//! The project parser never panics, and every error it returns is located (file:line:column).

use proptest::prelude::*;
use tributary::Error;
use tributary::project::parse_project;

/// Pieces of the project language, so generated files get past the tokenizer into the parser.
const PIECES: &[&str] = &[
    "CREATE",
    "SOURCE",
    "SINK",
    "PROJECT",
    "SYNC",
    "TABLE",
    "TO",
    "TOPIC",
    "FROM",
    "WITH",
    "COLUMNS",
    "WHERE",
    "SHARD",
    "BY",
    "EXCEPT",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS",
    "NULL",
    "env",
    "type",
    "'kafka'",
    "'mariadb'",
    "host",
    "port",
    "=",
    "(",
    ")",
    ",",
    ";",
    ".",
    "*",
    "%",
    "_",
    "`a b`",
    "shop",
    "orders",
    "'t_${table}'",
    "'${database}'",
    "1",
    "-",
    "3307",
    "'x'",
    "'bootstrap.servers'",
    ">",
    "<>",
    "+",
    "--c\n",
    "\n",
    " ",
    "\"",
    "'",
    "${",
    "é",
    "订单",
];

fn assert_located(text: &str) {
    match parse_project(std::path::Path::new("prop.sql"), text) {
        Ok(_) | Err(Error::Project { .. }) => {}
        Err(other) => panic!("unlocated error {other:?} for {text:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        assert_located(&text);
    }

    #[test]
    fn language_like_text_never_panics(pieces in proptest::collection::vec(0..PIECES.len(), 0..60)) {
        let text: Vec<&str> = pieces.iter().map(|&i| PIECES[i]).collect();
        assert_located(&text.join(" "));
    }

    #[test]
    fn truncated_valid_files_never_panic(cut in 0usize..600) {
        let text = std::fs::read_to_string("sql/examples/filters.sql").expect("example");
        let cut = (0..=cut.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        assert_located(&text[..cut]);
    }
}
