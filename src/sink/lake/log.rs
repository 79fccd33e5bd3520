//! The lake sink's commit log: the one place where a commit happens.
//!
//! A writer first writes its data files where no reader looks (plain Parquet: a `_staging`
//! directory; Delta: data files no log entry names yet). Then it writes one record —
//! `_tributary/<project>/<run>/<role>/<number>.json` under the sink's path, a single atomic
//! PUT — naming those files and the source progress they make. That record *is* the commit.
//! Only then are the files published (renamed into place; added to the Delta log with the
//! transaction id `(app id, number)`), which a rerun repeats for any record whose files are
//! not published yet. So the source position is committed with the data: a crash before the
//! record loses nothing (the rows are read again), a crash after it repeats nothing (the rerun
//! finishes the publication and starts after the recorded position).

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::store::Store;
use crate::checkpoint::Progress;
use crate::error::{Error, Result};

/// Records of a role older than this many are deleted as new ones are written: a rerun needs
/// only those the local checkpoint may not have saved yet (it saves every 500 ms).
pub const KEEP_RECORDS: u64 = 64;

/// One commit of one writer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub role: String,
    pub number: u64,
    pub progress: Vec<Progress>,
    pub files: Vec<DataFile>,
}

/// A data file a record publishes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataFile {
    /// The lake table, relative to the sink's path (`db/table`).
    pub table: String,
    /// Where the file was written, relative to the table.
    pub written: String,
    /// Where readers find it once published, relative to the table.
    pub published: String,
    pub size: u64,
    pub rows: u64,
    /// Delta: the table's schema (Delta's JSON) the file was written with, when it differs
    /// from the table's when the writer opened it: publishing evolves the table first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    /// An upsert table's key columns: publishing merges the file's changes by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
}

/// The directory of a run's records.
fn run_dir(store: &Store, project: &str, run: &str) -> Path {
    store.path(&format!("_tributary/{project}/{run}"))
}

fn record_path(store: &Store, project: &str, run: &str, role: &str, number: u64) -> Path {
    run_dir(store, project, run)
        .join(role)
        .join(format!("{number:020}.json").as_str())
}

/// Writes `record`: the commit point. Older records of the role beyond [`KEEP_RECORDS`] go.
pub async fn write(store: &Store, project: &str, run: &str, record: &Record) -> Result<()> {
    let path = record_path(store, project, run, &record.role, record.number);
    let body = serde_json::to_vec(record)
        .map_err(|e| Error::Sink(format!("lake commit record {path}: {e}")))?;
    store
        .objects
        .put(&path, PutPayload::from(body))
        .await
        .map_err(|e| store_error(&format!("writing the commit record {path}"), e))?;
    if let Some(old) = record.number.checked_sub(KEEP_RECORDS) {
        let old = record_path(store, project, run, &record.role, old);
        match store.objects.delete(&old).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::debug!(error = %e, "could not delete an old lake commit record"),
        }
    }
    Ok(())
}

/// Every record the run left, by role, in order.
pub async fn read_all(store: &Store, project: &str, run: &str) -> Result<Vec<Record>> {
    use futures::TryStreamExt;
    let dir = run_dir(store, project, run);
    let listed: Vec<_> = store
        .objects
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| store_error(&format!("listing the commit records under {dir}"), e))?;
    let mut records = Vec::with_capacity(listed.len());
    for meta in listed {
        if !meta.location.as_ref().ends_with(".json") {
            continue;
        }
        let bytes = store
            .objects
            .get(&meta.location)
            .await
            .map_err(|e| store_error(&format!("reading {}", meta.location), e))?
            .bytes()
            .await
            .map_err(|e| store_error(&format!("reading {}", meta.location), e))?;
        let record: Record = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Definite(format!(
                "the lake commit record {} is not readable ({e}); it was written by this \
                 project: restore it, or reset the project and sync again",
                meta.location
            ))
        })?;
        records.push(record);
    }
    records.sort_by(|a, b| (a.role.as_str(), a.number).cmp(&(b.role.as_str(), b.number)));
    Ok(records)
}

pub fn store_error(what: &str, e: object_store::Error) -> Error {
    Error::Sink(format!("lake sink: {what}: {e}"))
}
