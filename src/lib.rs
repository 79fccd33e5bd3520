//! tributary streams a MySQL-compatible database (OceanBase CE, MySQL, MariaDB) into Kafka, or
//! into Parquet files and Delta Lake tables.
//!
//! ```text
//! project (sql/*.sql) ──► plan ──► source ──► batch ──► transform ──► partition ──► encode ──► sink
//!                                   │ full: parallel PK-range scans        (DataFusion)   (Kafka)
//!                                   │ incremental: binlog stream (MySQL protocol)     or lake files
//! checkpoint ◄──────────── positions saved only after the sink has acknowledged delivery ◄──┘
//! ```
//!
//! Each module is one stage of that flow; dependencies point down the flow, and nothing imports
//! [`cli`], which holds the commands; `main` turns their errors into exit codes.
//!
//! Who owns what:
//! - [`position`] (low in the house): binlog positions, GTID sets, chunk key ranges — used by
//!   `project`, `source`, `sink` and `checkpoint`, importing none of them. [`check`]: the items
//!   `tributary check` reports, for `source` and `sink` alike.
//! - [`source`] reads (snapshot chunks, the binlog) and owns the schema history.
//! - [`batch`] turns snapshot rows and binlog row events alike into change batches.
//! - [`transform`] applies the row filter and its crossing rules, and splits key changes.
//! - [`sink::delivery`] is the one delivery path: encode and partition (through [`encode`] and
//!   [`partition`]), in-flight bytes, acknowledgements, transactions, metrics, and creating the
//!   topics it writes to. [`sink::lake`] stands behind the same writer for Parquet and Delta
//!   tables: the change batches go straight into Parquet, committed with their progress.
//! - [`checkpoint`] stores the positions; it moves only on acknowledged progress.
//! - [`pipeline`] wires the stages, spawns the tasks and orders shutdown; nothing else.
//! - [`metrics`] names every metric and serves them; [`display`] owns stderr (log format, colour,
//!   the terminal's bars).

pub mod alloc;
pub mod batch;
pub mod check;
pub mod checkpoint;
pub mod cli;
pub mod display;
pub mod encode;
pub mod error;
pub mod metrics;
pub mod partition;
pub mod pipeline;
pub mod plan;
pub mod position;
pub mod project;
pub mod sink;
pub mod source;
pub mod temporal;
pub mod transform;

pub use error::{Error, ErrorKind, Result};
