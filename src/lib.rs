//! tributary streams a MySQL-compatible database (OceanBase CE, MySQL, MariaDB) into Kafka.
//!
//! ```text
//! project (sql/*.sql) ──► plan ──► source ──► batch ──► transform ──► partition ──► encode ──► sink
//!                                   │ full: parallel PK-range scans        (DataFusion)   (Kafka)
//!                                   │ incremental: binlog stream (MySQL protocol)
//! checkpoint ◄──────────── positions saved only after the sink has acknowledged delivery ◄──┘
//! ```

pub mod error;

pub use error::{Error, ErrorKind, Result};
