//! tributary streams a MySQL-compatible database (OceanBase CE, MySQL, MariaDB) into Kafka.
//!
//! ```text
//! project (sql/*.sql) ──► plan ──► source ──► batch ──► transform ──► partition ──► encode ──► sink
//!                                   │ full: parallel PK-range scans        (DataFusion)   (Kafka)
//!                                   │ incremental: binlog stream (MySQL protocol)
//! checkpoint ◄──────────── positions saved only after the sink has acknowledged delivery ◄──┘
//! ```
//!
//! Each module is one stage of that flow; dependencies point down the flow, and nothing imports
//! [`cli`], which holds the commands; `main` turns their errors into exit codes.

pub mod batch;
pub mod checkpoint;
pub mod cli;
pub mod encode;
pub mod error;
pub mod metrics;
pub mod partition;
pub mod pipeline;
pub mod plan;
pub mod project;
pub mod sink;
pub mod source;
pub mod temporal;
pub mod transform;

pub use error::{Error, ErrorKind, Result};
