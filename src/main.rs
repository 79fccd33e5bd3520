//! The `tributary` command.

use clap::Parser;

/// Stream MySQL, MariaDB and OceanBase tables into Kafka, driven by a SQL project file.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about)]
struct Args {}

fn main() {
    let _args = Args::parse();
}
