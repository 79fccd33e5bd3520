//! The process's allocator: mimalloc, with transparent huge pages off.
//!
//! Decoding rows allocates a buffer per value, which mimalloc keeps cheap on every thread
//! (`docs/architecture.md`). It returns memory it stopped using to the system and faults it in
//! again later; where the system grants transparent huge pages, each such fault zeroes 2 MiB —
//! `perf` put 30 % of a Parquet full sync's CPU in the kernel's page clearing. mimalloc reads
//! its options when it starts, in a constructor that runs before `main`, so [`allocator!`]
//! sets the option from a constructor that runs before that one.

pub use mimalloc::MiMalloc;

/// Declares mimalloc as the global allocator of a binary, with transparent huge pages off
/// (unless `MIMALLOC_ALLOW_THP` says otherwise). For the `tributary` binary and the bench
/// baselines, which measure with the same allocator.
#[macro_export]
macro_rules! allocator {
    () => {
        #[global_allocator]
        static ALLOCATOR: $crate::alloc::MiMalloc = $crate::alloc::MiMalloc;

        // mimalloc starts from `.init_array.00101` (constructor priority 101); lower numbers
        // run first.
        #[cfg(target_os = "linux")]
        #[used]
        #[unsafe(link_section = ".init_array.00100")]
        static NO_HUGE_PAGES: extern "C" fn() = $crate::alloc::no_huge_pages;
    };
}

/// Turns mimalloc's transparent huge pages off, unless the environment already chose.
/// Runs before `main` (and before mimalloc starts): only libc, no allocation by Rust.
#[cfg(target_os = "linux")]
#[doc(hidden)]
pub extern "C" fn no_huge_pages() {
    // SAFETY: called once, before any thread exists; both strings are NUL-terminated, and
    // `overwrite = 0` keeps an operator's own setting.
    unsafe {
        libc::setenv(c"MIMALLOC_ALLOW_THP".as_ptr(), c"0".as_ptr(), 0);
    }
}
