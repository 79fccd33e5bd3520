//! Metric names in one place, counted per batch (never per row), and their Prometheus text
//! exposition on `--metrics-addr`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A per-table counter: name, help text, and how to read it.
type Series = (&'static str, &'static str, fn(&TableMetrics) -> u64);

/// Counters of one table.
#[derive(Debug, Default)]
pub struct TableMetrics {
    pub rows_read: AtomicU64,
    pub messages_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub rows_filtered: AtomicU64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub tables: BTreeMap<String, Arc<TableMetrics>>,
    pub errors: AtomicU64,
    pub chunks_done: AtomicU64,
    /// Incremental: seconds from the commit of the last acknowledged transaction to its
    /// acknowledgement.
    pub lag_seconds: AtomicU64,
    /// Incremental: row changes and DDL messages sent.
    pub changes_sent: AtomicU64,
    /// Incremental: reconnects after a lost binlog connection.
    pub reconnects: AtomicU64,
}

impl TableMetrics {
    /// A batch read from the source: `read` rows, of which the row filter kept `kept`.
    pub fn read(&self, read: u64, kept: u64) {
        self.rows_read.fetch_add(read, Ordering::Relaxed);
        self.rows_filtered
            .fetch_add(read.saturating_sub(kept), Ordering::Relaxed);
    }

    /// A batch handed to the sink: `messages` messages of `bytes` payload bytes.
    pub fn sent(&self, messages: u64, bytes: u64) {
        self.messages_sent.fetch_add(messages, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn new(tables: impl IntoIterator<Item = String>) -> Arc<Metrics> {
        Arc::new(Metrics {
            tables: tables.into_iter().map(|t| (t, Arc::default())).collect(),
            ..Metrics::default()
        })
    }

    pub fn table(&self, name: &str) -> Arc<TableMetrics> {
        self.tables.get(name).cloned().unwrap_or_default()
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let series: [Series; 4] = [
            (
                "tributary_rows_read_total",
                "Rows read from the source.",
                |t| t.rows_read.load(Ordering::Relaxed),
            ),
            (
                "tributary_rows_filtered_total",
                "Rows read that produced no message (the row filter, or the DML filter).",
                |t| t.rows_filtered.load(Ordering::Relaxed),
            ),
            (
                "tributary_messages_sent_total",
                "Messages handed to Kafka.",
                |t| t.messages_sent.load(Ordering::Relaxed),
            ),
            (
                "tributary_bytes_sent_total",
                "Message payload bytes handed to Kafka.",
                |t| t.bytes_sent.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, read) in series {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (table, metrics) in &self.tables {
                let _ = writeln!(out, "{name}{{table=\"{table}\"}} {}", read(metrics));
            }
        }
        let _ = writeln!(
            out,
            "# HELP tributary_chunks_done_total Full-sync chunks acknowledged and checkpointed.\n\
             # TYPE tributary_chunks_done_total counter\ntributary_chunks_done_total {}",
            self.chunks_done.load(Ordering::Relaxed)
        );
        let gauges = [
            (
                "tributary_incremental_lag_seconds",
                "gauge",
                "Commit to Kafka acknowledgement of the last transaction.",
                self.lag_seconds.load(Ordering::Relaxed),
            ),
            (
                "tributary_changes_sent_total",
                "counter",
                "Incremental messages handed to Kafka.",
                self.changes_sent.load(Ordering::Relaxed),
            ),
            (
                "tributary_reconnects_total",
                "counter",
                "Binlog connections re-opened after a loss.",
                self.reconnects.load(Ordering::Relaxed),
            ),
        ];
        for (name, kind, help, value) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tributary_errors_total Errors that stopped the run.\n\
             # TYPE tributary_errors_total counter\ntributary_errors_total {}",
            self.errors.load(Ordering::Relaxed)
        );
        out
    }
}

/// Serves `GET /metrics` (any path) until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request).await;
            let body = metrics.render();
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: \
                 {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counters_are_served_in_prometheus_text() {
        let metrics = Metrics::new(["shop.orders".to_string()]);
        metrics
            .table("shop.orders")
            .rows_read
            .fetch_add(42, Ordering::Relaxed);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::clone(&metrics)));
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.contains("tributary_rows_read_total{table=\"shop.orders\"} 42"),
            "{response}"
        );
        assert!(response.contains("# TYPE tributary_messages_sent_total counter"));
    }
}
