//! The commands: `check`, `explain`, `import-objects`. Each returns an error whose kind decides
//! the exit code in `main`.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::error::{Error, Result};
use crate::plan::{self, Plan};
use crate::project::{ProjectFile, SourceKind};
use crate::source::precheck::{self, CheckItem};
use crate::{sink, source};

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
        Command::ImportObjects { csv } => {
            print!("{}", crate::project::csv_import::import_objects(&csv)?);
            Ok(())
        }
    }
}

/// Parses the project, reads the source's catalog and plans every table.
pub async fn load_plan(path: &Path) -> Result<Plan> {
    let project = ProjectFile::load(path)?;
    let mut conn = source::connect(&project.source).await?;
    plan_with(&mut conn, project).await
}

async fn plan_with(conn: &mut mysql_async::Conn, project: ProjectFile) -> Result<Plan> {
    let databases = plan::databases_needed(&project);
    let catalog = source::catalog::load_catalog(conn, databases.as_deref()).await?;
    plan::plan(project, &catalog)
}

async fn check(path: &Path) -> Result<()> {
    let project = ProjectFile::load(path)?;
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
                Err(e) => items.push(CheckItem::fail("project plan", e.to_string())),
            }
            items.extend(
                precheck::check_source(&mut conn, &source_def, plan.as_ref(), incremental).await,
            );
            if incremental && source_def.kind == SourceKind::OceanBase {
                items.extend(check_binlog_service(&source_def).await);
            }
        }
    }
    items.extend(sink::admin::check_sink(&sink_def, plan.as_ref()).await);

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
