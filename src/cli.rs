//! The commands: `check`, `explain`, `import-objects`. Each returns an error whose kind decides
//! the exit code in `main`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::check::CheckItem;
use crate::error::{Error, ErrorKind, Result};
use crate::plan::{self, Plan};
use crate::project::{ProjectFile, SourceKind, StartPoint, Zone};
use crate::source::precheck;
use crate::{pipeline, sink, source};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, plan and precheck a project against the live source and Kafka; exit 1 with every
    /// failure listed.
    Check {
        /// The project file.
        project: PathBuf,
    },
    /// Show per table its topic, columns, filter, key, shard columns, partitioning and format.
    Explain {
        /// The project file.
        project: PathBuf,
    },
    /// Run the sync types the project enables: schema → full → incremental, resuming from the
    /// checkpoint. Ctrl-C or SIGTERM pauses cleanly.
    Run {
        /// The project file.
        project: PathBuf,
        /// Stop (exit 0) once full sync is done and incremental sync has caught up.
        #[arg(long)]
        until_caught_up: bool,
        /// Where the checkpoint lives (default `.tributary/<project>/`).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9464.
        #[arg(long)]
        metrics_addr: Option<String>,
        /// Be one of several workers of the project (each with its own --state-dir), which
        /// share its full-sync chunks and hand the binlog stream over through a Kafka consumer
        /// group.
        #[arg(long)]
        worker: bool,
    },
    /// Show the phase and per-table progress from the checkpoint.
    Status {
        /// The project file.
        project: PathBuf,
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// The project's workers (`run --worker`), as Kafka knows them: the chunks done, each
        /// worker's partitions and pending chunks, and which one streams.
        #[arg(long)]
        worker: bool,
    },
    /// Ask for an online snapshot: the tables' rows (or those matching --where) are sent again
    /// while the stream keeps flowing. Records the request and exits; a running `run` picks it
    /// up, a stopped project does it on its next run.
    Snapshot {
        /// The project file.
        project: PathBuf,
        /// The tables, as `db.table`; each must be synced by the project.
        #[arg(required = true)]
        tables: Vec<String>,
        /// Only the rows matching this condition (SQL, evaluated by the source).
        #[arg(long = "where")]
        condition: Option<String>,
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Forget the checkpoint: the next run starts over.
    Reset {
        /// The project file.
        project: PathBuf,
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Forget the workers' plan and progress in Kafka (every worker stopped): the next
        /// workers start over.
        #[arg(long)]
        worker: bool,
    },
    /// Print the SYNC statements equivalent to an OMS object CSV.
    ImportObjects {
        /// The CSV exported from OMS ("Download Project Configuration") or its template.
        csv: PathBuf,
    },
}

pub async fn run(command: Command) -> Result<()> {
    match command {
        Command::Check { project } => check(&project).await,
        Command::Explain { project } => {
            let plan = load_plan(&project).await?;
            print!("{}", plan.explain());
            Ok(())
        }
        Command::Run {
            project,
            until_caught_up,
            state_dir,
            metrics_addr,
            worker,
        } => {
            // Signals pause from here on, planning included.
            let pause = pipeline::Pause::on_signals();
            let plan = load_plan(&project).await?;
            for warning in &plan.warnings {
                tracing::warn!("{warning}");
            }
            let options = pipeline::RunOptions {
                state_dir,
                until_caught_up,
                metrics_addr,
                pause: Some(pause),
            };
            let summary = match worker {
                true => pipeline::worker::run(plan, options).await?,
                false => pipeline::run(plan, options).await?,
            };
            print_summary(&summary);
            Ok(())
        }
        Command::Status {
            project,
            state_dir,
            json,
            worker,
        } => match worker {
            true => worker_status(&project, json).await,
            false => status(&project, state_dir.as_deref(), json),
        },
        Command::Snapshot {
            project,
            tables,
            condition,
            state_dir,
        } => request_snapshot(&project, tables, condition, state_dir.as_deref()).await,
        Command::Reset {
            project,
            worker: true,
            ..
        } => {
            let project = ProjectFile::load(&project)?;
            let forgotten = pipeline::worker::reset(&project).await?;
            println!(
                "reset: forgot the workers' plan and progress ({forgotten} records); the next \
                 workers start over"
            );
            Ok(())
        }
        Command::Reset {
            project, state_dir, ..
        } => {
            let project = ProjectFile::load(&project)?;
            let store = pipeline::state_store(&project, state_dir.as_deref());
            if store.reset()? {
                println!(
                    "reset: forgot {}; the next run starts over",
                    store.path().display()
                );
            } else {
                println!("reset: no checkpoint at {}", store.path().display());
            }
            Ok(())
        }
        Command::ImportObjects { csv } => {
            print!("{}", crate::project::csv_import::import_objects(&csv)?);
            Ok(())
        }
    }
}

/// `tributary snapshot`: the tables are checked against the plan (each synced by the project)
/// and the condition against the source (`SELECT … WHERE condition LIMIT 0` on each table), then
/// the request is left in the state dir for the run.
async fn request_snapshot(
    path: &Path,
    tables: Vec<String>,
    condition: Option<String>,
    state_dir: Option<&Path>,
) -> Result<()> {
    let plan = load_plan(path).await?;
    if !plan.project.project.sync.incremental {
        return Err(Error::Config(format!(
            "project {} does not stream (`sync` has no `incremental`), and online snapshots are \
             sent by the stream; `tributary reset` and a new run send every table again",
            plan.project.project.name.value
        )));
    }
    let mut wanted = Vec::new();
    for name in &tables {
        let Some(table) = plan
            .tables
            .iter()
            .find(|t| t.qualified().eq_ignore_ascii_case(name))
        else {
            let synced: Vec<String> = plan.tables.iter().map(|t| t.qualified()).collect();
            return Err(Error::Config(format!(
                "table {name} is not synced by project {}; give tables as db.table, one of: {}",
                plan.project.project.name.value,
                synced.join(", ")
            )));
        };
        wanted.push(table);
    }
    if let Some(condition) = &condition {
        let mut conn = source::connect(&plan.project.source).await?;
        for table in &wanted {
            let sql = format!(
                "SELECT 1 FROM `{}`.`{}` WHERE ({condition}) LIMIT 0",
                table.database.replace('`', "``"),
                table.table.replace('`', "``")
            );
            if let Err(e) = mysql_async::prelude::Queryable::query_drop(&mut conn, &sql).await {
                return Err(Error::Config(format!(
                    "--where {condition:?} does not work on {}: {e}; write a condition the \
                     source accepts in `SELECT … FROM {} WHERE …`",
                    table.qualified(),
                    table.qualified()
                )));
            }
        }
    }
    let store = pipeline::state_store(&plan.project, state_dir);
    let request = crate::checkpoint::SnapshotRequest {
        tables: wanted.iter().map(|t| t.qualified()).collect(),
        condition,
    };
    store.request_snapshot(&request)?;
    println!(
        "snapshot requested for {}{}: a running `run` picks it up; otherwise the next run does",
        request.tables.join(", "),
        request
            .condition
            .as_ref()
            .map(|c| format!(" (rows where {c})"))
            .unwrap_or_default()
    );
    Ok(())
}

/// Reads and parses the project file, and checks the sink's librdkafka properties.
fn load_project(path: &Path) -> Result<ProjectFile> {
    let project = ProjectFile::load(path)?;
    sink::check_properties(&project)?;
    Ok(project)
}

/// Parses the project, reads the source's catalog and plans every table.
///
/// Nothing is written before this succeeds, so a source that cannot be reached here (refused,
/// no answer, the connection lost) fails at once with exit 1 — "nothing was written" — like a
/// failed precheck: there is nothing to ride out yet, and a wrong address should not wait
/// through retries. Once a run has written (topics, the checkpoint, rows), the same faults are
/// retried and end with exit 2.
pub async fn load_plan(path: &Path) -> Result<Plan> {
    let project = load_project(path)?;
    let planned = async move {
        let mut conn = source::connect(&project.source).await?;
        plan_with(&mut conn, project).await
    };
    planned.await.map_err(|error| match error.kind() {
        ErrorKind::Transient => Error::Precheck(format!(
            "{error}; nothing was written: start the source (or correct `host` and `port`) and \
             run again"
        )),
        _ => error,
    })
}

async fn plan_with(conn: &mut mysql_async::Conn, mut project: ProjectFile) -> Result<Plan> {
    read_in_server_zone(conn, &mut project).await?;
    let catalog = source::catalog::load_catalog(conn, &project.databases()).await?;
    plan::plan(project, &catalog)
}

/// Without a `timezone` option the source's zone is the server's: asked once, for the row
/// filters (TIMESTAMP values as wall-clock times) and a `start_timestamp` date-time.
async fn read_in_server_zone(
    conn: &mut mysql_async::Conn,
    project: &mut ProjectFile,
) -> Result<()> {
    if project.source.timezone.is_some() {
        return Ok(());
    }
    project.source.zone = source::catalog::server_zone(conn).await?;
    let Some(start) = &project.project.start else {
        return Ok(());
    };
    let StartPoint::WallClock(wall_clock) = start.value else {
        return Ok(());
    };
    let epoch = match &project.source.zone {
        Zone::Offset(offset) => Some(wall_clock - offset),
        Zone::Varying(_) => source::catalog::epoch_of_wall_clock(conn, wall_clock).await?,
    };
    let Some(epoch) = epoch.filter(|e| *e >= 0) else {
        let zone = match &project.source.zone {
            Zone::Varying(name) => name.clone(),
            Zone::Offset(offset) => format!("{offset} s from UTC"),
        };
        return Err(project.error_at(
            start.pos,
            format!(
                "the server cannot read `start_timestamp` in its time_zone ({zone}); set the \
                 source's `timezone` option to the offset it means, e.g. '+08:00'"
            ),
        ));
    };
    if let Some(start) = &mut project.project.start {
        start.value = StartPoint::Timestamp(epoch);
    }
    Ok(())
}

async fn check(path: &Path) -> Result<()> {
    let project = ProjectFile::load(path)?;
    let properties = sink::check_properties(&project);
    let incremental = project.project.sync.incremental;
    let source_def = project.source.clone();
    let sink_def = project.sink.clone();
    let what = format!("source {}", source_def.name.value);
    let mut items = Vec::new();
    let mut warnings = Vec::new();

    let mut plan = None;
    match source::connect(&source_def).await {
        Err(e) => items.push(CheckItem::fail(
            format!("{what}: connection"),
            e.to_string(),
        )),
        Ok(mut conn) => {
            let version: String =
                mysql_async::prelude::Queryable::query_first(&mut conn, "SELECT VERSION()")
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
            items.push(CheckItem::pass(
                format!("{what}: connection"),
                format!(
                    "connected to {} as {} (server {version})",
                    source_def.address(),
                    source_def.user
                ),
            ));
            match plan_with(&mut conn, project).await {
                Ok(p) => {
                    items.push(CheckItem::pass(
                        "project plan",
                        format!("{} tables planned", p.tables.len()),
                    ));
                    warnings.clone_from(&p.warnings);
                    plan = Some(p);
                }
                Err(e) => items.extend(
                    e.each()
                        .into_iter()
                        .map(|e| CheckItem::fail("project plan", e.to_string())),
                ),
            }
            items.extend(
                precheck::check_source(&mut conn, &source_def, plan.as_ref(), incremental).await,
            );
            if incremental && source_def.kind == SourceKind::OceanBase {
                items.extend(check_binlog_service(&source_def).await);
            }
        }
    }
    match properties {
        Ok(()) => items.extend(sink::precheck::check_sink(&sink_def, plan.as_ref()).await),
        Err(e) => items.push(CheckItem::fail(
            format!("sink {}: settings", sink_def.name.value),
            e.to_string(),
        )),
    }

    for item in &items {
        let mark = if item.passed { "ok  " } else { "FAIL" };
        println!("{mark} {}: {}", item.what, item.detail);
    }
    for warning in &warnings {
        println!("warning: {warning}");
    }
    let failed = items.iter().filter(|i| !i.passed).count();
    if failed == 0 {
        println!("check: all {} checks passed", items.len());
        Ok(())
    } else {
        Err(Error::Precheck(format!(
            "{failed} of {} checks failed",
            items.len()
        )))
    }
}

/// OceanBase writes no binlog itself: incremental sync reads the OceanBase Binlog Service at
/// `binlog_host:binlog_port`, which must answer like a MySQL server with a row-based binlog.
async fn check_binlog_service(source: &crate::project::SourceDef) -> Vec<CheckItem> {
    let what = format!(
        "source {}: binlog service {}:{}",
        source.name.value, source.binlog_host, source.binlog_port
    );
    let mut conn = match source::connect_to(source, &source.binlog_host, source.binlog_port).await {
        Ok(conn) => conn,
        Err(e) => return vec![CheckItem::fail(what, e.to_string())],
    };
    let status: std::result::Result<Option<mysql_async::Row>, _> =
        mysql_async::prelude::Queryable::query_first(&mut conn, "SHOW MASTER STATUS").await;
    match status {
        Ok(Some(_)) => precheck::check_binlog_settings(&mut conn, &what).await,
        Ok(None) | Err(_) => vec![CheckItem::fail(
            what,
            "this server has no binlog (SHOW MASTER STATUS fails); incremental sync from \
             OceanBase reads the OceanBase Binlog Service: set `binlog_host` and `binlog_port` \
             to it, or remove 'incremental' from `sync`",
        )],
    }
}

/// `n thing` or `n things`.
fn count(n: u64, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// The closing lines of `run`: the whole run, then each phase with its own rate (snapshot rows
/// over the full sync's time, changes over the stream's).
fn print_summary(summary: &pipeline::RunSummary) {
    let verb = if summary.paused { "paused" } else { "done" };
    let totals = &summary.totals;
    // A lake sink writes rows to tables; Kafka sends messages to topics.
    let (message, sent, destination) = if summary.lake {
        ("row", "written", "lake table")
    } else {
        ("message", "sent", "topic")
    };
    println!(
        "run {verb}: {} read, {} {sent} ({} bytes) to {} from {} in {:.1} s",
        count(totals.rows_read, "row"),
        count(totals.messages, message),
        crate::display::grouped(totals.bytes),
        count(summary.topics as u64, destination),
        count(summary.tables as u64, "table"),
        summary.elapsed.as_secs_f64(),
    );
    if let Some(full) = &summary.full {
        println!(
            "full sync: {} read, {} {sent} in {:.1} s ({:.0} rows/s)",
            count(full.totals.rows_read, "row"),
            count(full.totals.messages, message),
            full.elapsed.as_secs_f64(),
            full.rate(full.totals.rows_read),
        );
    }
    match (&summary.incremental, &summary.position) {
        (Some(stream), Some(position)) => println!(
            "incremental sync: {} {sent} in {:.1} s ({:.0}/s); acknowledged up to {}:{}",
            count(stream.totals.messages, "change"),
            stream.elapsed.as_secs_f64(),
            stream.rate(stream.totals.messages),
            position.file,
            position.pos
        ),
        _ => {
            if let Some(handoff) = &summary.handoff {
                println!(
                    "incremental sync starts at {}:{}{}",
                    handoff.file,
                    handoff.pos,
                    handoff
                        .gtid
                        .as_ref()
                        .map(|g| format!(" (GTID {g})"))
                        .unwrap_or_default()
                );
            }
        }
    }
}

async fn worker_status(path: &Path, json: bool) -> Result<()> {
    let project = ProjectFile::load(path)?;
    let status = pipeline::worker::status(&project).await?;
    if json {
        println!("{status}");
        return Ok(());
    }
    let number = |key: &str| status[key].as_u64().unwrap_or(0);
    println!(
        "status: {} (workers, from Kafka)",
        project.project.name.value
    );
    if status["planned"].as_bool() != Some(true) {
        println!("  not planned yet: no worker has started");
        return Ok(());
    }
    if project.project.sync.full {
        println!(
            "  full sync: {} of {} chunks done (about {} rows)",
            number("chunks_done"),
            number("chunks"),
            number("rows_estimate")
        );
    }
    if project.project.sync.incremental {
        let position = status["incremental"]
            .as_object()
            .map(|p| format!("{}:{}", p["file"].as_str().unwrap_or(""), p["pos"]))
            .unwrap_or_else(|| "not started".to_string());
        println!(
            "  stream: {} at {position} ({} changes)",
            status["stream_owner"]
                .as_str()
                .map_or("no owner".to_string(), |w| format!("owned by {w}")),
            number("incremental_changes")
        );
    }
    let workers = status["workers"].as_array().cloned().unwrap_or_default();
    println!("  {} workers:", workers.len());
    for worker in workers {
        let partitions: Vec<String> = worker["partitions"]
            .as_array()
            .map(|p| p.iter().map(|v| v.to_string()).collect())
            .unwrap_or_default();
        println!(
            "    {} ({}): partitions {}; {} chunks pending{}",
            worker["worker"].as_str().unwrap_or(""),
            worker["host"].as_str().unwrap_or(""),
            if partitions.is_empty() {
                "none".to_string()
            } else {
                partitions.join(", ")
            },
            worker["chunks_pending"],
            if worker["partitions"]
                .as_array()
                .is_some_and(|p| p.iter().any(|v| v == 0))
            {
                "; streams"
            } else {
                ""
            }
        );
    }
    Ok(())
}

fn status(path: &Path, state_dir: Option<&Path>, json: bool) -> Result<()> {
    let project = ProjectFile::load(path)?;
    let store = pipeline::state_store(&project, state_dir);
    let Some(checkpoint) = store.load()? else {
        if json {
            println!("{{\"phase\":\"not started\"}}");
        } else {
            println!("status: {} has not run yet", project.project.name.value);
        }
        return Ok(());
    };
    let sync = project.project.sync;
    let phase = if sync.full && !checkpoint.full_done {
        "full"
    } else if sync.incremental {
        "incremental"
    } else {
        "done"
    };
    let rows_done: u64 = checkpoint.tables.values().map(|t| t.rows_done()).sum();
    let rate = full_rate(&checkpoint, rows_done);
    if json {
        let tables: serde_json::Map<String, serde_json::Value> = checkpoint
            .tables
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    serde_json::json!({
                        "rows_done": t.rows_done(),
                        "rows_estimate": t.rows_estimate,
                        "chunks_done": t.chunks.iter().filter(|c| c.done).count(),
                        "chunks": t.chunks.len(),
                        "done": t.is_done(),
                    }),
                )
            })
            .collect();
        let value = serde_json::json!({
            "project": checkpoint.project,
            "phase": phase,
            "schema_done": checkpoint.schema_done,
            "full_done": checkpoint.full_done,
            "rows_done": rows_done,
            "rows_per_sec": rate.round(),
            "handoff": checkpoint.handoff,
            "incremental": checkpoint.incremental,
            "incremental_changes": checkpoint.incremental_changes,
            "incremental_changes_per_sec": incremental_rate(&checkpoint).round(),
            "incremental_lag_seconds": incremental_lag(&checkpoint),
            "tables": tables,
            "online_snapshots": checkpoint.online.iter().map(|s| serde_json::json!({
                "table": s.table,
                "reason": s.reason,
                "condition": s.condition,
                "chunks_done": s.chunks.iter().filter(|c| c.done).count(),
                "chunks": s.chunks.len(),
                "rows_done": s.rows_done(),
                "rows_estimate": s.rows_estimate,
            })).collect::<Vec<_>>(),
            "updated_at": checkpoint.updated_at,
        });
        println!("{value}");
        return Ok(());
    }
    println!(
        "project {}: phase {phase}; schema sync {}, full sync {}; {rows_done} rows done at {rate:.0} rows/s",
        checkpoint.project,
        if checkpoint.schema_done {
            "done"
        } else {
            "not done"
        },
        if !sync.full {
            "off"
        } else if checkpoint.full_done {
            "done"
        } else {
            "not done"
        },
    );
    for (name, t) in &checkpoint.tables {
        println!(
            "  {name}: {} of ~{} rows, {}/{} chunks{}",
            t.rows_done(),
            t.rows_estimate,
            t.chunks.iter().filter(|c| c.done).count(),
            t.chunks.len(),
            if t.is_done() { ", done" } else { "" }
        );
    }
    for s in &checkpoint.online {
        println!(
            "  online snapshot of {} ({}{}): {}",
            s.table,
            s.reason,
            s.condition
                .as_ref()
                .map(|c| format!(", rows where {c}"))
                .unwrap_or_default(),
            if s.planned() {
                format!(
                    "{} of ~{} rows, {}/{} chunks",
                    s.rows_done(),
                    s.rows_estimate,
                    s.chunks.iter().filter(|c| c.done).count(),
                    s.chunks.len()
                )
            } else {
                "waiting".to_string()
            }
        );
    }
    match (&checkpoint.incremental, &checkpoint.handoff) {
        (Some(position), _) => println!(
            "  incremental: acknowledged up to {}:{}{}; {} changes at {:.0}/s; lag {} s at the last save",
            position.file,
            position.pos,
            position
                .gtid
                .as_ref()
                .map(|g| format!(" (GTID {g})"))
                .unwrap_or_default(),
            checkpoint.incremental_changes,
            incremental_rate(&checkpoint),
            incremental_lag(&checkpoint),
        ),
        (None, Some(handoff)) => {
            println!("  incremental starts at {}:{}", handoff.file, handoff.pos)
        }
        (None, None) => {}
    }
    Ok(())
}

/// Rows per second of full sync's running time (pauses left out), as `run` prints it.
fn full_rate(checkpoint: &crate::checkpoint::Checkpoint, rows_done: u64) -> f64 {
    phase_rate(
        rows_done,
        checkpoint.full_millis,
        checkpoint.full_started_at,
        checkpoint.updated_at,
    )
}

/// Changes per second of incremental sync's running time (pauses left out).
fn incremental_rate(checkpoint: &crate::checkpoint::Checkpoint) -> f64 {
    phase_rate(
        checkpoint.incremental_changes,
        checkpoint.incremental_millis,
        checkpoint.incremental_started_at,
        checkpoint.updated_at,
    )
}

/// `count` over a phase's running time; a checkpoint from before the phase clocks has only the
/// wall time from the phase's start to the last save.
fn phase_rate(count: u64, millis: u64, started_at: u64, updated_at: u64) -> f64 {
    let seconds = match millis {
        0 => updated_at.saturating_sub(started_at).max(1) as f64,
        millis => millis as f64 / 1000.0,
    };
    count as f64 / seconds
}

/// Seconds from the last acknowledged commit to the checkpoint's last write.
fn incremental_lag(checkpoint: &crate::checkpoint::Checkpoint) -> u64 {
    if checkpoint.incremental_committed == 0 {
        return 0;
    }
    checkpoint
        .updated_at
        .saturating_sub(checkpoint.incremental_committed)
}
