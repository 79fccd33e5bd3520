//! The source-scan baseline of `scripts/bench lake`: one connection reading a whole table with
//! the binary protocol (a prepared `SELECT *`, every row decoded into values), counting the
//! rows and doing nothing else — what a full sync's readers could get from the server at most.
//!
//! `raw_scan MYSQL_URL DB.TABLE`

use std::time::Instant;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

// The allocator tributary uses, set up as tributary sets it: the baseline decodes with the same
// costs.
tributary::allocator!();

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("raw_scan: {what}: {e}");
    std::process::exit(1);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, table] = args.as_slice() else {
        fail("usage", "raw_scan MYSQL_URL DB.TABLE");
    };
    let mut conn = Conn::from_url(url.as_str())
        .await
        .unwrap_or_else(|e| fail("connecting", e));
    let started = Instant::now();
    let mut result = conn
        .exec_iter(format!("SELECT * FROM {table}"), ())
        .await
        .unwrap_or_else(|e| fail("querying", e));
    let mut rows = 0u64;
    let mut values = 0usize;
    while let Some(row) = result.next().await.unwrap_or_else(|e| fail("reading", e)) {
        let row: Row = row;
        values += row.unwrap().len();
        rows += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "raw_scan: {rows} rows ({values} values) in {seconds:.2} s = {:.0} rows/s",
        rows as f64 / seconds
    );
}
