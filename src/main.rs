//! The `tributary` command. Parses arguments, sets up logging and maps errors to exit codes
//! (design.md §2): 0 success, 1 project or precheck error, 2 runtime failure.

use clap::Parser;

// mimalloc, without transparent huge pages (see `tributary::alloc`).
tributary::allocator!();

/// Stream MySQL, MariaDB and OceanBase tables into Kafka, driven by a SQL project file.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about)]
struct Args {
    #[command(subcommand)]
    command: tributary::cli::Command,
    /// How log lines on stderr are written: `text`, or `json` (one object per line, for log
    /// collectors). Progress bars appear only with text on a terminal.
    #[arg(long, global = true, value_enum, default_value_t, ignore_case = true)]
    log_format: tributary::display::LogFormat,
}

fn main() {
    let args = Args::parse();
    tributary::display::init(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(2);
        }
    };
    let result = runtime.block_on(tributary::cli::run(args.command));
    // Do not wait for tasks blocked on the network (the metrics server, a stuck read).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    if let Err(tributary::Error::Paused) = result {
        return;
    }
    if let Err(error) = result {
        for error in error.each() {
            eprintln!("error: {}", tributary::error::report(error));
        }
        std::process::exit(error.exit_code());
    }
}
