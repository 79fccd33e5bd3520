//! Feeds arbitrary bytes to the project parser: it must never panic, and every error must be
//! located in the file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match tributary::project::parse_project(std::path::Path::new("fuzz.sql"), text) {
            Ok(_) | Err(tributary::Error::Project { .. }) => {}
            Err(other) => panic!("unlocated error: {other}"),
        }
    }
});
