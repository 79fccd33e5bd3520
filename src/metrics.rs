//! Metric names in one place, counted per batch (never per row), exposed on `--metrics-addr`
//! in the Prometheus/OpenMetrics text format by `prometheus-client`, served by `hyper`.
//!
//! Per-table series appear as soon as a table is routed — tables picked up mid-stream
//! included. `deploy/` holds a Grafana dashboard and alert rules over these names; a test keeps
//! them in step (`tests/metrics.rs`).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::error::ErrorKind;

/// The sync phase a series counts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Full,
    Incremental,
}

impl Phase {
    fn label(self) -> &'static str {
        match self {
            Phase::Full => "full",
            Phase::Incremental => "incremental",
        }
    }
}

/// Where the run is: one of these is 1 in `tributary_phase`, the others 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    Starting,
    Full,
    Incremental,
    Done,
}

impl RunPhase {
    const ALL: [RunPhase; 4] = [
        RunPhase::Starting,
        RunPhase::Full,
        RunPhase::Incremental,
        RunPhase::Done,
    ];

    fn label(self) -> &'static str {
        match self {
            RunPhase::Starting => "starting",
            RunPhase::Full => "full",
            RunPhase::Incremental => "incremental",
            RunPhase::Done => "done",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    table: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SentLabels {
    table: String,
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabels {
    phase: &'static str,
}

/// One table's counters: handles on its series, taken once when the table is routed so the
/// hot path only adds to atomics.
#[derive(Debug, Clone)]
pub struct TableMetrics {
    rows_read: Counter,
    rows_filtered: Counter,
    full_messages: Counter,
    full_bytes: Counter,
    incremental_messages: Counter,
    incremental_bytes: Counter,
    ddl_messages: Counter,
    chunks: Gauge,
    chunks_done: Gauge,
    online_chunks: Gauge,
    online_chunks_done: Gauge,
}

impl TableMetrics {
    /// A batch read from the source: `read` rows, of which `kept` produced a message (the row
    /// filter, the DML filter).
    pub fn read(&self, read: u64, kept: u64) {
        self.rows_read.inc_by(read);
        self.rows_filtered.inc_by(read.saturating_sub(kept));
    }

    /// A batch handed to the sink: `messages` messages of `bytes` payload bytes.
    pub fn sent(&self, phase: Phase, messages: u64, bytes: u64) {
        let (m, b) = match phase {
            Phase::Full => (&self.full_messages, &self.full_bytes),
            Phase::Incremental => (&self.incremental_messages, &self.incremental_bytes),
        };
        m.inc_by(messages);
        b.inc_by(bytes);
    }

    /// DDL messages sent (also counted by [`TableMetrics::sent`]).
    pub fn ddl(&self, messages: u64) {
        self.ddl_messages.inc_by(messages);
    }

    /// The table's full-sync chunks: planned, and done (over all runs).
    pub fn chunks(&self, done: usize, planned: usize) {
        self.chunks.set(planned as i64);
        self.chunks_done.set(done as i64);
    }

    /// An online snapshot of the table planned with `planned` chunks (none done yet).
    pub fn online_planned(&self, planned: usize) {
        self.online_chunks.set(planned as i64);
        self.online_chunks_done.set(0);
    }

    /// One more chunk of the table's online snapshot acknowledged.
    pub fn online_chunk_done(&self) {
        self.online_chunks_done.inc();
    }

    pub fn rows_read(&self) -> u64 {
        self.rows_read.get()
    }

    /// Payload bytes full sync sent for this table.
    pub fn full_bytes(&self) -> u64 {
        self.full_bytes.get()
    }
}

/// What the run has done so far, summed over its tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub rows_read: u64,
    pub messages: u64,
    pub bytes: u64,
}

impl std::ops::Sub for Totals {
    type Output = Totals;
    fn sub(self, earlier: Totals) -> Totals {
        Totals {
            rows_read: self.rows_read.saturating_sub(earlier.rows_read),
            messages: self.messages.saturating_sub(earlier.messages),
            bytes: self.bytes.saturating_sub(earlier.bytes),
        }
    }
}

/// The run's metrics.
pub struct Metrics {
    registry: Registry,
    tables: Mutex<BTreeMap<String, TableMetrics>>,
    /// The topics routed to, for the summary.
    topics: Mutex<std::collections::BTreeSet<String>>,
    rows_read: Family<TableLabels, Counter>,
    rows_filtered: Family<TableLabels, Counter>,
    messages: Family<SentLabels, Counter>,
    bytes: Family<SentLabels, Counter>,
    ddl_messages: Family<TableLabels, Counter>,
    chunks: Family<TableLabels, Gauge>,
    chunks_done: Family<TableLabels, Gauge>,
    online_chunks: Family<TableLabels, Gauge>,
    online_chunks_done: Family<TableLabels, Gauge>,
    errors: Family<KindLabels, Counter>,
    phase: Family<PhaseLabels, Gauge>,
    reconnects: Counter,
    heartbeats: Counter,
    throttled: Counter<f64, AtomicU64>,
    lag_seconds: Gauge<f64, AtomicU64>,
    last_commit: Gauge,
    ack_latency: Histogram,
    transaction_commit: Histogram,
    full_rows_estimate: Gauge,
    worker_chunks: Counter,
    stream_owner: Gauge,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    pub fn new(tables: impl IntoIterator<Item = String>) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("tributary");
        let rows_read = Family::<TableLabels, Counter>::default();
        registry.register(
            "rows_read",
            "Rows read from the source: snapshot rows and binlog row changes of synced tables",
            rows_read.clone(),
        );
        let rows_filtered = Family::<TableLabels, Counter>::default();
        registry.register(
            "rows_filtered",
            "Rows read that produced no message (the row filter or the DML filter)",
            rows_filtered.clone(),
        );
        let messages = Family::<SentLabels, Counter>::default();
        registry.register(
            "messages_sent",
            "Messages handed to Kafka, by table and phase (DDL and row changes alike)",
            messages.clone(),
        );
        let bytes = Family::<SentLabels, Counter>::default();
        registry.register_with_unit(
            "sent",
            "Message payload bytes handed to Kafka, by table and phase",
            Unit::Bytes,
            bytes.clone(),
        );
        let ddl_messages = Family::<TableLabels, Counter>::default();
        registry.register(
            "ddl_messages_sent",
            "DDL messages handed to Kafka (also in messages_sent)",
            ddl_messages.clone(),
        );
        let chunks = Family::<TableLabels, Gauge>::default();
        registry.register("full_chunks", "Full-sync chunks planned", chunks.clone());
        let chunks_done = Family::<TableLabels, Gauge>::default();
        registry.register(
            "full_chunks_done",
            "Full-sync chunks acknowledged and checkpointed, over all runs",
            chunks_done.clone(),
        );
        let online_chunks = Family::<TableLabels, Gauge>::default();
        registry.register(
            "online_snapshot_chunks",
            "Chunks of the table's latest online snapshot in this run",
            online_chunks.clone(),
        );
        let online_chunks_done = Family::<TableLabels, Gauge>::default();
        registry.register(
            "online_snapshot_chunks_done",
            "Chunks of the table's latest online snapshot acknowledged in this run",
            online_chunks_done.clone(),
        );
        let full_rows_estimate = Gauge::default();
        registry.register(
            "full_rows_estimate",
            "The source's row estimate of the tables full sync reads",
            full_rows_estimate.clone(),
        );
        let errors = Family::<KindLabels, Counter>::default();
        registry.register(
            "errors",
            "Errors by kind: transient ones retried (kind=transient), and the one that stopped \
             the run",
            errors.clone(),
        );
        let phase = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "phase",
            "The phase the run is in: 1 for the current one",
            phase.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "reconnects",
            "Binlog connections re-opened after a loss",
            reconnects.clone(),
        );
        let heartbeats = Counter::default();
        registry.register(
            "heartbeats_sent",
            "HEARTBEAT records sent while a stream is idle (not in messages_sent)",
            heartbeats.clone(),
        );
        let throttled = Counter::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "throttled",
            "Time writers waited for max_rows_per_second / max_bytes_per_second",
            Unit::Seconds,
            throttled.clone(),
        );
        let lag_seconds = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "incremental_lag",
            "Incremental: from the source's commit of the last acknowledged transaction to its \
             acknowledgement; 0 once the stream has caught up and is idle",
            Unit::Seconds,
            lag_seconds.clone(),
        );
        let last_commit = Gauge::default();
        registry.register_with_unit(
            "incremental_last_commit_timestamp",
            "Incremental: source commit time (Unix) of the last acknowledged transaction",
            Unit::Seconds,
            last_commit.clone(),
        );
        let ack_latency = Histogram::new(exponential_buckets(0.01, 2.0, 16));
        registry.register_with_unit(
            "commit_to_ack",
            "Incremental: source commit to Kafka acknowledgement, per transaction (the commit \
             time has a resolution of one second)",
            Unit::Seconds,
            ack_latency.clone(),
        );
        let transaction_commit = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "kafka_transaction_commit",
            "exactly_once: time to commit a Kafka transaction",
            Unit::Seconds,
            transaction_commit.clone(),
        );
        let worker_chunks = Counter::default();
        registry.register(
            "worker_chunks_committed",
            "Workers (run --worker): full-sync chunks this worker committed",
            worker_chunks.clone(),
        );
        let stream_owner = Gauge::default();
        registry.register(
            "stream_owner",
            "1 while this process streams the binlog (with --worker: holds the stream's \
             partition), else 0",
            stream_owner.clone(),
        );
        let metrics = Metrics {
            registry,
            tables: Mutex::new(BTreeMap::new()),
            topics: Mutex::default(),
            rows_read,
            rows_filtered,
            messages,
            bytes,
            ddl_messages,
            chunks,
            chunks_done,
            online_chunks,
            online_chunks_done,
            errors,
            phase,
            reconnects,
            heartbeats,
            throttled,
            lag_seconds,
            last_commit,
            ack_latency,
            transaction_commit,
            full_rows_estimate,
            worker_chunks,
            stream_owner,
        };
        for table in tables {
            metrics.table(&table);
        }
        for kind in ["config", "precheck", "transient", "definite", "sink"] {
            metrics.errors.get_or_create_owned(&KindLabels { kind });
        }
        metrics.set_phase(RunPhase::Starting);
        Arc::new(metrics)
    }

    /// A worker committed a full-sync chunk.
    pub fn worker_chunk_committed(&self) {
        self.worker_chunks.inc();
    }

    /// Whether this process streams the binlog now.
    pub fn stream_owner(&self, owns: bool) {
        self.stream_owner.set(i64::from(owns));
    }

    /// The counters of `table` (`db.table`), exported from now on.
    pub fn table(&self, table: &str) -> TableMetrics {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(metrics) = tables.get(table) {
            return metrics.clone();
        }
        let labels = TableLabels {
            table: table.to_string(),
        };
        let sent = |phase: Phase| SentLabels {
            table: table.to_string(),
            phase: phase.label(),
        };
        let metrics = TableMetrics {
            rows_read: self.rows_read.get_or_create_owned(&labels),
            rows_filtered: self.rows_filtered.get_or_create_owned(&labels),
            full_messages: self.messages.get_or_create_owned(&sent(Phase::Full)),
            full_bytes: self.bytes.get_or_create_owned(&sent(Phase::Full)),
            incremental_messages: self.messages.get_or_create_owned(&sent(Phase::Incremental)),
            incremental_bytes: self.bytes.get_or_create_owned(&sent(Phase::Incremental)),
            ddl_messages: self.ddl_messages.get_or_create_owned(&labels),
            chunks: self.chunks.get_or_create_owned(&labels),
            chunks_done: self.chunks_done.get_or_create_owned(&labels),
            online_chunks: self.online_chunks.get_or_create_owned(&labels),
            online_chunks_done: self.online_chunks_done.get_or_create_owned(&labels),
        };
        tables.insert(table.to_string(), metrics.clone());
        metrics
    }

    /// A table is routed to `topic`.
    pub fn topic(&self, topic: &str) {
        if let Ok(mut topics) = self.topics.lock()
            && !topics.contains(topic)
        {
            topics.insert(topic.to_string());
        }
    }

    /// Topics routed to so far.
    pub fn topic_count(&self) -> usize {
        self.topics.lock().map_or(0, |t| t.len())
    }

    /// Tables with series: the planned ones and those picked up since.
    pub fn table_count(&self) -> usize {
        self.tables.lock().map_or(0, |t| t.len())
    }

    /// Rows read, messages and bytes sent, over every table.
    pub fn totals(&self) -> Totals {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let mut totals = Totals::default();
        for t in tables.values() {
            totals.rows_read += t.rows_read.get();
            totals.messages += t.full_messages.get() + t.incremental_messages.get();
            totals.bytes += t.full_bytes.get() + t.incremental_bytes.get();
        }
        totals
    }

    /// An error of `kind`: retried (transient) or the one that stopped the run.
    pub fn error(&self, kind: ErrorKind) {
        let kind = match kind {
            ErrorKind::Config => "config",
            ErrorKind::Precheck => "precheck",
            ErrorKind::Transient => "transient",
            ErrorKind::Definite => "definite",
            ErrorKind::Sink => "sink",
        };
        self.errors.get_or_create(&KindLabels { kind }).inc();
    }

    pub fn set_phase(&self, now: RunPhase) {
        for phase in RunPhase::ALL {
            self.phase
                .get_or_create(&PhaseLabels {
                    phase: phase.label(),
                })
                .set(i64::from(phase == now));
        }
    }

    pub fn heartbeats(&self, records: u64) {
        self.heartbeats.inc_by(records);
    }

    /// A writer waited `pause` for the throttle.
    pub fn throttled(&self, pause: std::time::Duration) {
        if !pause.is_zero() {
            self.throttled.inc_by(pause.as_secs_f64());
        }
    }

    pub fn reconnected(&self) {
        self.reconnects.inc();
    }

    /// A source transaction committed at `committed` (Unix seconds) was acknowledged now.
    pub fn acknowledged(&self, committed: u64) {
        // An online snapshot chunk sent before the run saw any transaction carries no commit
        // time: it says nothing about the lag (it read 56 years).
        if committed == 0 {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let lag = (now - committed as f64).max(0.0);
        self.lag_seconds.set(lag);
        self.ack_latency.observe(lag);
        self.last_commit.set(committed as i64);
    }

    /// The stream has nothing left to send: it is as current as the source.
    pub fn caught_up(&self) {
        self.lag_seconds.set(0.0);
    }

    pub fn lag_seconds(&self) -> f64 {
        self.lag_seconds.get()
    }

    pub fn last_commit(&self) -> u64 {
        self.last_commit.get().max(0) as u64
    }

    pub fn transaction_committed(&self, took: std::time::Duration) {
        self.transaction_commit.observe(took.as_secs_f64());
    }

    pub fn full_rows_estimate(&self, rows: u64) {
        self.full_rows_estimate.set(rows as i64);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The content type of [`Metrics::render`].
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let metrics = Arc::clone(&metrics);
                async move { Ok::<_, Infallible>(respond(&metrics, &request)) }
            });
            // One scrape per connection: a client that reads to the end of the stream (curl
            // --http1.0, a plain socket) is not left waiting on a kept-alive connection.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(false)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond<B>(metrics: &Metrics, request: &hyper::Request<B>) -> hyper::Response<Full<Bytes>> {
    let (status, content_type, body) = match (request.method(), request.uri().path()) {
        (&hyper::Method::GET, "/metrics") => (200, CONTENT_TYPE, metrics.render()),
        (&hyper::Method::GET, _) => (
            404,
            "text/plain; charset=utf-8",
            "tributary serves its metrics at /metrics\n".to_string(),
        ),
        _ => (405, "text/plain; charset=utf-8", "use GET\n".to_string()),
    };
    hyper::Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| hyper::Response::new(Full::new(Bytes::new())))
}

/// Bytes for people: `2.6 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn counters_are_served_at_metrics_with_escaped_labels() {
        let metrics = Metrics::new(["shop.orders".to_string()]);
        metrics.table("shop.orders").read(42, 40);
        // A table name with a quote and a backslash (MySQL allows them) is escaped.
        metrics
            .table("shop.we\"ird\\")
            .sent(Phase::Incremental, 3, 30);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, Arc::clone(&metrics)));
        let get = |path: &'static str| async move {
            let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
            socket
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await
                .unwrap();
            let mut response = String::new();
            socket.read_to_string(&mut response).await.unwrap();
            response
        };
        let response = get("/metrics").await;
        assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
        assert!(
            response.contains("tributary_rows_read_total{table=\"shop.orders\"} 42"),
            "{response}"
        );
        assert!(
            response.contains("tributary_rows_filtered_total{table=\"shop.orders\"} 2"),
            "{response}"
        );
        assert!(
            response.contains(
                "tributary_messages_sent_total{table=\"shop.we\\\"ird\\\\\",phase=\"incremental\"} 3"
            ),
            "{response}"
        );
        assert!(response.contains("# EOF"), "{response}");
        assert!(get("/other").await.starts_with("HTTP/1.1 404"));
    }

    #[test]
    fn totals_sum_every_table_and_phase() {
        let metrics = Metrics::new(["a.t".to_string()]);
        metrics.table("a.t").read(10, 10);
        metrics.table("a.t").sent(Phase::Full, 10, 100);
        let before = metrics.totals();
        metrics.table("b.new").read(2, 1);
        metrics.table("b.new").sent(Phase::Incremental, 1, 7);
        assert_eq!(
            metrics.totals() - before,
            Totals {
                rows_read: 2,
                messages: 1,
                bytes: 7
            }
        );
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(2_600_000), "2.6 MB");
    }
}
