//! The source half of `tributary check` (OMS precheck, reference §9): connectivity, privileges,
//! binlog settings and readable tables. Each item names the setting, the value it needs and the
//! value it found.

use mysql_async::Conn;
use mysql_async::prelude::*;

use crate::check::CheckItem;
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::project::{SourceDef, SourceKind};

/// The privileges a user holds, from `SHOW GRANTS`.
#[derive(Debug, Default)]
struct Grants {
    lines: Vec<String>,
}

impl Grants {
    /// Whether `privilege` is granted on `*.*` (or, with `database`, on `database.*`).
    fn has(&self, privilege: &str, database: Option<&str>) -> bool {
        self.lines.iter().any(|line| {
            let upper = line.to_ascii_uppercase();
            let Some(rest) = upper.strip_prefix("GRANT ") else {
                return false;
            };
            let Some((privileges, on)) = rest.split_once(" ON ") else {
                return false;
            };
            let target = on.split_whitespace().next().unwrap_or("").replace('`', "");
            // `db`.* grants may use LIKE wildcards and escapes (`shop\_db`, `shop%`).
            let scope_ok = target == "*.*"
                || database.is_some_and(|db| {
                    target.strip_suffix(".*").is_some_and(|pattern| {
                        crate::project::NamePattern::Like(pattern.to_string()).matches(db)
                    })
                });
            scope_ok
                && privileges
                    .split(',')
                    .map(str::trim)
                    .any(|p| p == "ALL PRIVILEGES" || p == "ALL" || p == privilege)
        })
    }
}

/// Runs the source checks. `plan` is `None` when planning failed (the tables are then unknown).
pub async fn check_source(
    conn: &mut Conn,
    source: &SourceDef,
    plan: Option<&Plan>,
    incremental: bool,
) -> Vec<CheckItem> {
    let mut items = Vec::new();
    let what = format!("source {}", source.name.value);

    let grants: Vec<String> = conn.query("SHOW GRANTS").await.unwrap_or_default();
    let grants = Grants { lines: grants };
    let mut databases: Vec<&str> = plan
        .map(|p| p.tables.iter().map(|t| t.database.as_str()).collect())
        .unwrap_or_default();
    databases.sort_unstable();
    databases.dedup();
    let missing_select: Vec<&str> = databases
        .iter()
        .copied()
        .filter(|db| !grants.has("SELECT", Some(db)))
        .collect();
    if grants.lines.is_empty() {
        items.push(CheckItem::fail(
            format!("{what}: privileges"),
            "SHOW GRANTS returned nothing; cannot tell whether the user may read the tables",
        ));
    } else if !missing_select.is_empty() {
        items.push(CheckItem::fail(
            format!("{what}: privileges"),
            format!(
                "user `{}` lacks SELECT on {}; run GRANT SELECT ON <db>.* TO the user",
                source.user,
                missing_select.join(", ")
            ),
        ));
    } else {
        items.push(CheckItem::pass(
            format!("{what}: privileges"),
            "SELECT on every synced database",
        ));
    }

    if incremental && source.kind != SourceKind::OceanBase {
        let replication_client = grants.has("REPLICATION CLIENT", None)
            || grants.has("BINLOG MONITOR", None)
            || grants.has("SUPER", None);
        let replication_slave = grants.has("REPLICATION SLAVE", None);
        let mut missing = Vec::new();
        if !replication_slave {
            missing.push("REPLICATION SLAVE");
        }
        if !replication_client {
            missing.push("REPLICATION CLIENT (BINLOG MONITOR on MariaDB)");
        }
        if missing.is_empty() {
            items.push(CheckItem::pass(
                format!("{what}: replication privileges"),
                "REPLICATION SLAVE and REPLICATION CLIENT",
            ));
        } else {
            items.push(CheckItem::fail(
                format!("{what}: replication privileges"),
                format!(
                    "incremental sync needs {} on *.* for user `{}`",
                    missing.join(" and "),
                    source.user
                ),
            ));
        }
        items.extend(check_binlog_settings(conn, &what).await);
        items.push(check_replica_id(conn, source, &what).await);
        if source.kind == SourceKind::MySql {
            let start_gtid = plan.is_some_and(|p| {
                matches!(
                    p.project.project.start.as_ref().map(|s| &s.value),
                    Some(crate::project::StartPoint::Gtid(_))
                )
            });
            items.push(check_gtid_mode(conn, &what, start_gtid).await);
        }
    }

    if let Some(plan) = plan {
        let mut unreadable = Vec::new();
        for table in &plan.tables {
            let sql = format!(
                "SELECT * FROM `{}`.`{}` LIMIT 0",
                table.database.replace('`', "``"),
                table.table.replace('`', "``")
            );
            if let Err(e) = conn.query_drop(sql).await {
                unreadable.push(format!("{} ({e})", table.qualified()));
            }
        }
        if unreadable.is_empty() {
            items.push(CheckItem::pass(
                format!("{what}: tables"),
                format!("{} tables exist and are readable", plan.tables.len()),
            ));
        } else {
            items.push(CheckItem::fail(
                format!("{what}: tables"),
                format!("cannot read {}", unreadable.join("; ")),
            ));
        }
    }
    items
}

/// Whether another replica connected to the server uses the project's replica id: the server
/// drops one of two replicas with one id as soon as the other connects, so two projects (or a
/// project and a real replica) with one id knock each other off the binlog.
async fn check_replica_id(conn: &mut Conn, source: &SourceDef, what: &str) -> CheckItem {
    let name = format!("{what}: server_id");
    let mut replicas: Option<Vec<mysql_async::Row>> = None;
    for statement in ["SHOW REPLICAS", "SHOW SLAVE HOSTS"] {
        if let Ok(rows) = conn.query(statement).await {
            replicas = Some(rows);
            break;
        }
    }
    let Some(replicas) = replicas else {
        return CheckItem::pass(
            name,
            format!(
                "server_id {}; the server does not list its replicas, so a clash is not checked",
                source.server_id
            ),
        );
    };
    let clash = replicas.iter().find(|row| {
        row.get_opt::<u32, _>(0)
            .and_then(|id| id.ok())
            .is_some_and(|id| id == source.server_id)
    });
    match clash {
        Some(row) => {
            let host: String = row
                .get_opt::<String, _>(1)
                .and_then(|h| h.ok())
                .unwrap_or_default();
            // Replicas that do not report their port list 0.
            let port: String = row
                .get_opt::<String, _>(2)
                .and_then(|p| p.ok())
                .filter(|p| p != "0")
                .map(|p| format!(":{p}"))
                .unwrap_or_default();
            CheckItem::fail(
                name,
                format!(
                    "server_id {} is already used by a replica connected from {host}{port} \
                     (another tributary project, a real replica, or this project's own run): \
                     the server drops one of two replicas with one id as soon as the other \
                     connects; set server_id in CREATE SOURCE to a number no other replica uses \
                     (a replica that just went away is listed until the server next writes to \
                     its binlog)",
                    source.server_id
                ),
            )
        }
        None => CheckItem::pass(
            name,
            format!(
                "server_id {} is not used by any of the {} connected replicas",
                source.server_id,
                replicas.len()
            ),
        ),
    }
}

/// How a MySQL stream is positioned: by GTID set with `gtid_mode = ON`, else by file and position
/// — which `start_gtid` cannot use.
async fn check_gtid_mode(conn: &mut Conn, what: &str, start_gtid: bool) -> CheckItem {
    let mode: Option<String> = conn
        .query_first("SELECT @@GLOBAL.gtid_mode")
        .await
        .ok()
        .flatten();
    let mode = mode.unwrap_or_else(|| "unset".to_string());
    let on = mode.eq_ignore_ascii_case("ON");
    let item = format!("{what}: gtid_mode");
    match (on, start_gtid) {
        (true, _) => CheckItem::pass(
            item,
            "gtid_mode=ON: the stream is positioned by GTID set (resumes across a failover)",
        ),
        (false, false) => CheckItem::pass(
            item,
            format!("gtid_mode={mode}: the stream is positioned by binlog file and position"),
        ),
        (false, true) => CheckItem::fail(
            item,
            format!(
                "`start_gtid` needs gtid_mode=ON, found {mode}; turn GTIDs on or use \
                 `start_position` / `start_timestamp`"
            ),
        ),
    }
}

/// `@@log_bin`, `@@binlog_format`, `@@binlog_row_image`; NULL when a server does not have one.
type BinlogSettings = (Option<String>, Option<String>, Option<String>);

/// `log_bin`, `binlog_format` and `binlog_row_image` as incremental sync needs them. Global
/// values: they are what the sessions writing the data get.
pub async fn check_binlog_settings(conn: &mut Conn, what: &str) -> Vec<CheckItem> {
    let mut row: Result<Option<BinlogSettings>, _> = conn
        .query_first(
            "SELECT CAST(@@GLOBAL.log_bin AS CHAR), CAST(@@GLOBAL.binlog_format AS CHAR), \
             CAST(@@GLOBAL.binlog_row_image AS CHAR)",
        )
        .await;
    if row.is_err() {
        // Some MySQL-compatible servers cannot cast their enum variables; the text protocol
        // returns them as text anyway.
        row = conn
            .query_first(
                "SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image",
            )
            .await;
    }
    let (log_bin, format, image) = match row {
        Ok(Some((log_bin, format, image))) => {
            let unset = || "unset".to_string();
            (
                log_bin.unwrap_or_else(unset),
                format.unwrap_or_else(unset),
                image.unwrap_or_else(unset),
            )
        }
        Ok(None) => return vec![CheckItem::fail(format!("{what}: binlog"), "no answer")],
        Err(e) => {
            return vec![CheckItem::fail(
                format!("{what}: binlog"),
                format!("cannot read the binlog settings: {e}"),
            )];
        }
    };
    let needs = [
        ("log_bin", log_bin, "ON", "start the server with log_bin"),
        (
            "binlog_format",
            format,
            "ROW",
            "SET GLOBAL binlog_format = 'ROW' and put binlog_format=ROW in the server's config",
        ),
        (
            "binlog_row_image",
            image,
            "FULL",
            "SET GLOBAL binlog_row_image = 'FULL' and put binlog_row_image=FULL in the server's \
             config",
        ),
    ];
    needs
        .into_iter()
        .map(|(variable, found, wanted, fix)| {
            let ok = found.eq_ignore_ascii_case(wanted) || (variable == "log_bin" && found == "1");
            if ok {
                CheckItem::pass(
                    format!("{what}: {variable}"),
                    format!("{variable}={wanted}"),
                )
            } else {
                CheckItem::fail(
                    format!("{what}: {variable}"),
                    format!(
                        "{variable} is {found}; incremental sync needs {variable}={wanted}: {fix}"
                    ),
                )
            }
        })
        .collect()
}

/// What `run` checks before it streams, as `check` does: the server's binlog must hold row
/// images, or changes would be missed or half-known. Checked on every run, not only at `check`:
/// a server's settings can change between the two.
pub async fn require_binlog_settings(source: &SourceDef) -> Result<()> {
    let what = format!("source `{}`", source.name.value);
    let mut conn = super::connect_to(source, &source.binlog_host, source.binlog_port).await?;
    let failures: Vec<String> = check_binlog_settings(&mut conn, &what)
        .await
        .into_iter()
        .filter(|item| !item.passed)
        .map(|item| format!("  {}: {}", item.what, item.detail))
        .collect();
    if failures.is_empty() {
        return Ok(());
    }
    Err(Error::Precheck(format!(
        "incremental sync cannot start; nothing was written:\n{}",
        failures.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_are_read_from_show_grants_lines() {
        let grants = Grants {
            lines: vec![
                "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `cdc`@`%`".into(),
                "GRANT SELECT ON `shop`.* TO `cdc`@`%`".into(),
            ],
        };
        assert!(grants.has("SELECT", Some("shop")));
        assert!(!grants.has("SELECT", Some("other")));
        let wildcard = Grants {
            lines: vec!["GRANT SELECT ON `shop\\_%`.* TO `cdc`@`%`".into()],
        };
        assert!(wildcard.has("SELECT", Some("shop_eu")));
        assert!(!wildcard.has("SELECT", Some("shopx")));
        assert!(grants.has("REPLICATION SLAVE", None));
        assert!(grants.has("BINLOG MONITOR", None));
        assert!(!grants.has("REPLICATION CLIENT", None));
        let root = Grants {
            lines: vec!["GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost`".into()],
        };
        assert!(root.has("REPLICATION SLAVE", None));
        assert!(root.has("SELECT", Some("x")));
    }
}
