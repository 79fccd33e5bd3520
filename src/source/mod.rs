//! Sources: connections to MySQL, MariaDB and OceanBase, their catalogs and prechecks, the two
//! ways rows come out of them — snapshot chunks ([`snapshot`]) and the binlog stream
//! ([`binlog`], whose rows events [`rows`] decodes) — and the schema history that DDL moves
//! ([`history`], [`ddl`]). Positions are `crate::position`'s; turning rows into Arrow is
//! `crate::batch`'s.

pub mod binlog;
pub mod catalog;
pub mod ddl;
pub mod history;
pub mod precheck;
pub mod rows;
pub mod snapshot;

use std::time::Duration;

use mysql_async::{Conn, OptsBuilder};

use crate::error::{Error, Result};
use crate::project::SourceDef;

/// How long a connection attempt may take before the source counts as unreachable.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Connects to `host:port` with the source's credentials.
pub async fn connect_to(source: &SourceDef, host: &str, port: u16) -> Result<Conn> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(host.to_string())
        .tcp_port(port)
        .user(Some(source.user.clone()))
        .pass(source.password.clone())
        .prefer_socket(false)
        .conn_ttl(None);
    let what = format!(
        "source `{}` at {host}:{port} as user `{}`",
        source.name.value, source.user
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(mysql_async::Error::Server(e))) if e.code == 1045 => Err(Error::Config(format!(
            "{what}: the server rejected the credentials ({}); check `user` and `password`",
            e.message
        ))),
        Ok(Err(e)) => Err(Error::Source {
            context: format!("cannot connect to {what}; is the server running and reachable?"),
            source: e,
        }),
        // A server that is restarting or overloaded answers late: a fault to retry, like a
        // refused connection. Before a run has written anything, `cli::load_plan` reports
        // either as exit 1 (a wrong address looks the same).
        Err(_) => Err(Error::Transient(format!(
            "cannot connect to {what}: no answer within {} s; is the server running, and are \
             `host` and `port` right?",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// Connects to the source's SQL endpoint.
pub async fn connect(source: &SourceDef) -> Result<Conn> {
    connect_to(source, &source.host, source.port).await
}

/// Wraps a driver error with what we were doing.
pub fn query_error(context: impl Into<String>) -> impl FnOnce(mysql_async::Error) -> Error {
    let context = context.into();
    move |source| Error::Source { context, source }
}
