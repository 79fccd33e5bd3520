//! The run: schema sync → full sync → incremental sync. This module only wires the stages: it
//! loads the checkpoint, makes the delivery path, spawns the tasks and orders shutdown. Each
//! producer of messages is a stage of its own that turns a source into change batches for the
//! delivery path — [`full`] (chunk readers) and [`stream`] (the binlog) — and the checkpoint
//! moves only through [`Checkpointer`], on acknowledgement:
//!
//! ```text
//!   full ──┐                                                     ┌─► Acks settled ─► Checkpointer
//!          ├─► change batches ─► sink::delivery::Writer ─► Kafka ┤
//! stream ──┘                                                     └─► (exactly_once: the progress
//!                                                                     commits with the messages)
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::checkpoint::{self, Checkpoint, Checkpointer, Store};
use crate::error::{Error, Result};
use crate::metrics::{Metrics, RunPhase, Totals};
use crate::plan::{Plan, TablePlan};
use crate::position::BinlogPosition;
use crate::project::{Partitioning, ProjectFile};
use crate::sink::admin::TopicPartitions;
use crate::sink::delivery::{Delivery, Route};
use crate::source;

mod full;
mod online;
mod progress;
mod retry;
mod stream;
pub mod worker;

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub state_dir: Option<PathBuf>,
    pub until_caught_up: bool,
    pub metrics_addr: Option<String>,
    /// Set by Ctrl-C or SIGTERM (see [`Pause`]); without one, the run watches for them itself.
    pub pause: Option<Pause>,
}

/// The run's pause switch: Ctrl-C or SIGTERM sets it, every stage reads it. Watched from the
/// start of the command, so a signal during start-up (planning, the catalog, the handoff) also
/// pauses cleanly instead of killing the process.
#[derive(Debug, Clone)]
pub struct Pause {
    sender: Arc<watch::Sender<bool>>,
}

impl Pause {
    /// Starts watching for Ctrl-C and SIGTERM.
    pub fn on_signals() -> Pause {
        let (sender, _) = watch::channel(false);
        let pause = Pause {
            sender: Arc::new(sender),
        };
        tokio::spawn(pause_on_signal(Arc::clone(&pause.sender)));
        pause
    }

    /// Whether a pause was asked for.
    pub fn requested(&self) -> bool {
        *self.sender.borrow()
    }
}

/// What a run did, for the closing summary.
#[derive(Debug, Default)]
pub struct RunSummary {
    /// Tables synced, those picked up mid-stream included.
    pub tables: usize,
    /// The sink is a lake: rows are written to tables, not sent as messages to topics.
    pub lake: bool,
    pub topics: usize,
    /// The whole run: rows read, messages and bytes sent.
    pub totals: Totals,
    pub elapsed: Duration,
    pub paused: bool,
    /// Full sync, when this run did some.
    pub full: Option<PhaseSummary>,
    /// Incremental sync, when this run streamed.
    pub incremental: Option<PhaseSummary>,
    /// Where incremental sync starts (or would start).
    pub handoff: Option<BinlogPosition>,
    /// Where incremental sync stopped (acknowledged).
    pub position: Option<BinlogPosition>,
}

/// What one phase of a run did, and how long it ran: its rates are its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseSummary {
    pub totals: Totals,
    pub elapsed: Duration,
}

impl PhaseSummary {
    /// `count` per second of this phase, 0 when it took no measurable time.
    pub fn rate(&self, count: u64) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds < 0.001 {
            0.0
        } else {
            count as f64 / seconds
        }
    }
}

pub fn state_store(project: &ProjectFile, state_dir: Option<&std::path::Path>) -> Store {
    Store::new(state_dir, &project.project.name.value)
}

pub async fn run(plan: Plan, options: RunOptions) -> Result<RunSummary> {
    let started = Instant::now();
    let project = &plan.project;
    let pause = options.pause.clone().unwrap_or_else(Pause::on_signals);
    let store = state_store(project, options.state_dir.as_deref());
    let _lock = store.lock()?;
    let mut state = store.load()?.unwrap_or_else(|| Checkpoint {
        project: project.project.name.value.clone(),
        format: checkpoint::FORMAT,
        ..Checkpoint::default()
    });
    state.upgrade(project.source.kind);
    let metrics = start_metrics(&plan, &options).await?;
    let mut delivery = Delivery::new(project, &metrics, Some(pause.sender.subscribe()));
    let mut checkpoint = Checkpointer::new(state, store);

    let topics = schema_sync(&plan, &delivery, &mut checkpoint).await?;
    // A lake sink always commits its files with the progress they make, like Kafka
    // transactions do with `exactly_once`.
    if project.project.exactly_once || project.sink.is_lake() {
        delivery
            .recover(checkpoint.state_mut(), &plan.tables)
            .await?;
        checkpoint.save().await?;
    } else if !checkpoint.state().run_id.is_empty() {
        // Without transactions the file moves on alone: what the state topic holds for the old
        // run id must not overlay it if exactly_once comes back.
        checkpoint.update(|c| {
            c.run_id.clear();
            c.exactly_once_commits = 0;
        });
        checkpoint.save().await?;
    }
    let mut summary = RunSummary::default();

    let stop_tx = Arc::clone(&pause.sender);
    let mut stop = stop_tx.subscribe();
    if *stop.borrow() {
        // Asked before this receiver existed: the stages still see it as news.
        stop.mark_changed();
    }
    let result = async {
        if project.project.sync.full && !checkpoint.state().full_done {
            metrics.set_phase(RunPhase::Full);
            let full = full::FullSync {
                project,
                tables: &plan.tables,
                topics: &topics,
                metrics: &metrics,
                delivery: &delivery,
                stop: stop.clone(),
                stop_all: Arc::clone(&stop_tx),
            };
            let (before, began) = (metrics.totals(), Instant::now());
            checkpoint.start_clock(checkpoint::Clock::Full);
            let paused = full.run(&mut checkpoint).await;
            checkpoint.stop_clock();
            summary.full = Some(PhaseSummary {
                totals: metrics.totals() - before,
                elapsed: began.elapsed(),
            });
            summary.paused = paused?;
        }
        summary.handoff = checkpoint.state().handoff.clone();
        if !summary.paused && project.project.sync.incremental {
            metrics.set_phase(RunPhase::Incremental);
            let stream = stream::Stream::start(
                &plan,
                &topics,
                &metrics,
                &delivery,
                &mut checkpoint,
                options.until_caught_up,
            )
            .await?;
            let (before, began) = (metrics.totals(), Instant::now());
            checkpoint.start_clock(checkpoint::Clock::Incremental);
            metrics.stream_owner(true);
            let outcome = stream.run(&mut checkpoint, stop.clone()).await;
            metrics.stream_owner(false);
            checkpoint.stop_clock();
            summary.incremental = Some(PhaseSummary {
                totals: metrics.totals() - before,
                elapsed: began.elapsed(),
            });
            summary.paused = outcome?.paused;
            summary.position = checkpoint.state().incremental.clone();
        }
        Ok::<(), Error>(())
    }
    .await;
    summary.lake = project.sink.is_lake();
    close_run(summary, result, &metrics, started)
}

/// The run's summary once it ended well, with its totals; a failure counted by its kind.
fn close_run(
    mut summary: RunSummary,
    result: Result<()>,
    metrics: &Metrics,
    started: Instant,
) -> Result<RunSummary> {
    if let Err(e) = &result {
        metrics.error(e.kind());
    }
    result?;
    metrics.set_phase(RunPhase::Done);
    summary.totals = metrics.totals();
    summary.tables = metrics.table_count();
    summary.topics = metrics.topic_count();
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// The run's metrics, served on `--metrics-addr`; checks first what fails a run before it
/// writes: every table's route (a format this build cannot write) and, to stream, the
/// source's binlog settings.
async fn start_metrics(plan: &Plan, options: &RunOptions) -> Result<Arc<Metrics>> {
    let project = &plan.project;
    let metrics = Metrics::new(plan.tables.iter().map(TablePlan::qualified));
    for table in &plan.tables {
        Route::new(table, project, &TopicPartitions::new(), &metrics)?;
    }
    if let Some(addr) = &options.metrics_addr {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format!("cannot serve metrics on --metrics-addr {addr}"), e))?;
        tokio::spawn(crate::metrics::serve(listener, Arc::clone(&metrics)));
    }
    if project.project.sync.incremental {
        source::precheck::require_binlog_settings(&project.source).await?;
    }
    Ok(metrics)
}

/// Creates the missing topics (schema sync) and returns every topic's partition count.
async fn schema_sync(
    plan: &Plan,
    delivery: &Delivery,
    checkpoint: &mut Checkpointer,
) -> Result<TopicPartitions> {
    let topics = delivery
        .ensure_destinations(&plan.tables, "schema sync")
        .await?;
    for table in &plan.tables {
        let partitions = topics.get(&table.topic).copied().unwrap_or(0);
        if table.partitioning == Partitioning::One && table.partition as usize >= partitions {
            return Err(Error::Config(format!(
                "table {} goes to partition {} of topic {}, which has {partitions} partitions; \
                 change `partition`",
                table.qualified(),
                table.partition,
                table.topic
            )));
        }
    }
    if plan.project.project.sync.schema && !checkpoint.state().schema_done {
        checkpoint.update(|c| c.schema_done = true);
        checkpoint.save().await?;
    }
    Ok(topics)
}

/// The source's catalog now, for the databases the project's patterns reach.
pub(crate) async fn live_catalog(project: &ProjectFile) -> Result<crate::plan::Catalog> {
    let mut conn = source::connect(&project.source).await?;
    source::catalog::load_catalog(&mut conn, &project.databases()).await
}

/// The default character set and collation of a source database now (what a table created
/// without them has).
pub(crate) async fn database_defaults(
    project: &ProjectFile,
    database: &str,
) -> Result<Option<(String, String)>> {
    let mut conn = source::connect(&project.source).await?;
    source::catalog::database_defaults(&mut conn, database).await
}

/// Ctrl-C or SIGTERM asks every stage to pause: what was acknowledged is kept.
async fn pause_on_signal(stop: Arc<watch::Sender<bool>>) {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("pausing: what Kafka acknowledged is kept, the rest is sent again next run");
    // Stored even when no stage listens yet (start-up): they read it when they start.
    stop.send_replace(true);
}
