//! The binlog-read baseline of `scripts/bench incremental`: one replication connection reading
//! the binlog from a position to the server's current end and decoding every row of every rows
//! event into values (before and after images), counting them and doing nothing else. It is the
//! source's limit for catch-up measured in the same run, as `raw_produce` is the broker's for
//! full sync. Rows are decoded as tributary decodes them ([`RowLayout`], worked out once per
//! table map): the baseline is the fastest decode there is, not mysql_common's slower `BinlogRow`.
//!
//! `raw_binlog MYSQL_URL FILE:POS SERVER_ID`

use std::collections::HashMap;
use std::time::Instant;

use futures::StreamExt;
use mysql_async::binlog::events::{EventData, TableMapEvent};
use mysql_async::{BinlogStreamRequest, Conn};
use tributary::source::rows::RowLayout;

// The allocator tributary uses, set up as tributary sets it: the baseline decodes with the same
// costs.
tributary::allocator!();

fn fail(what: &str, e: impl std::fmt::Display) -> ! {
    eprintln!("raw_binlog: {what}: {e}");
    std::process::exit(1);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, position, server_id] = args.as_slice() else {
        eprintln!("usage: raw_binlog MYSQL_URL FILE:POS SERVER_ID");
        std::process::exit(1);
    };
    let Some((file, pos)) = position
        .rsplit_once(':')
        .and_then(|(file, pos)| Some((file, pos.parse::<u64>().ok()?)))
    else {
        fail("FILE:POS", format!("{position:?} is not FILE:POS"));
    };
    let server_id: u32 = server_id.parse().unwrap_or_else(|e| fail("SERVER_ID", e));

    let start = Instant::now();
    let conn = Conn::from_url(url.as_str())
        .await
        .unwrap_or_else(|e| fail("connecting", e));
    let request = BinlogStreamRequest::new(server_id)
        .with_filename(file.as_bytes())
        .with_pos(pos)
        .with_non_blocking();
    let mut stream = conn
        .get_binlog_stream(request)
        .await
        .unwrap_or_else(|e| fail("requesting the binlog stream", e));
    let mut rows = 0u64;
    let mut layouts: HashMap<u64, (TableMapEvent<'static>, RowLayout)> = HashMap::new();
    while let Some(event) = stream.next().await {
        let event = event.unwrap_or_else(|e| fail("reading the binlog stream", e));
        let data = event
            .read_data()
            .unwrap_or_else(|e| fail("decoding an event", e));
        let Some(EventData::RowsEvent(data)) = data else {
            continue;
        };
        let Some(tme) = stream.get_tme(data.table_id()) else {
            fail("a rows event", "its table map is missing");
        };
        let layout = match layouts.get(&data.table_id()) {
            Some((seen, layout)) if seen == tme => layout,
            _ => {
                let layout = RowLayout::of(tme, tme.columns_count());
                layouts.insert(data.table_id(), (tme.clone().into_owned(), layout));
                &layouts[&data.table_id()].1
            }
        };
        for row in layout.rows(&data) {
            let images = row.unwrap_or_else(|e| fail("decoding a row", e));
            std::hint::black_box(images);
            rows += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "raw_binlog: {rows} rows in {seconds:.2} s = {:.0} rows/s",
        rows as f64 / seconds
    );
}
