//! The binlog event decoder on arbitrary bytes (after the file magic): it must return changes or
//! a clear error, never panic or loop. `cargo +nightly fuzz run binlog_events`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tributary::source::binlog::BinlogReader;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"\xfebin".to_vec();
    bytes.extend_from_slice(data);
    let Ok(mut reader) = BinlogReader::recorded(bytes, "fuzz-bin.000001") else {
        return;
    };
    // A recorded binlog needs no runtime: every read is ready at once.
    for _ in 0..10_000 {
        match futures::executor::block_on(reader.next()) {
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
});
