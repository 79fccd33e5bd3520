//! The lake sink in a build without it (`--no-default-features`, as `scripts/demo` builds for
//! Kafka alone): the same names, and a lake sink in a project is a clear error when it is used.
//! Nothing of this module can be constructed, so the writer's lake arms are never taken.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arrow::record_batch::RecordBatch;

use super::kafka::Acks;
use crate::batch::ChangeMeta;
use crate::checkpoint::{Checkpoint, Progress};
use crate::encode::ChangeImages;
use crate::error::{Error, Result};
use crate::plan::TablePlan;
use crate::project::ProjectFile;
use crate::transform::Emit;

pub const STREAM_ROLE: &str = "incremental";

fn missing(sink: &str) -> Error {
    Error::Config(format!(
        "sink `{sink}` is a lake sink, but this build of tributary has none; build it with the \
         default features (`cargo build --release`)"
    ))
}

pub enum Lake {}

impl Lake {
    pub fn open(project: &ProjectFile, _run: &str) -> Result<Arc<Lake>> {
        Err(missing(&project.sink.name.value))
    }

    pub async fn recover(&self) -> Result<(Vec<Progress>, HashMap<String, u64>)> {
        match *self {}
    }

    pub fn refuse_keyless_tables(&self, _tables: &[TablePlan]) -> Result<()> {
        match *self {}
    }

    pub async fn refuse_filled_tables(&self, _tables: &[TablePlan]) -> Result<()> {
        match *self {}
    }

    pub async fn ensure_tables(&self, _tables: &[TablePlan]) -> Result<()> {
        match *self {}
    }
}

/// Holds a [`Lake`], which cannot exist.
pub struct LakeWriter {
    never: Lake,
}

impl LakeWriter {
    pub fn new(lake: &Arc<Lake>, _role: &str, _number: u64) -> LakeWriter {
        match **lake {}
    }

    pub fn commit_interval(&self) -> Duration {
        match self.never {}
    }

    pub fn continue_sequence(&mut self, _last: u64) {
        match self.never {}
    }

    pub async fn snapshot(
        &mut self,
        _plan: &TablePlan,
        _batch: &RecordBatch,
        _acks: &Arc<Acks>,
    ) -> Result<u64> {
        match self.never {}
    }

    pub async fn changes(
        &mut self,
        _plan: &TablePlan,
        _images: &ChangeImages<'_>,
        _emits: &[Emit],
        _meta: &ChangeMeta,
        _acks: &Arc<Acks>,
    ) -> Result<(usize, u64)> {
        match self.never {}
    }

    pub async fn ddl(
        &mut self,
        _plan: &TablePlan,
        _statement: &str,
        _meta: &ChangeMeta,
        _acks: &Arc<Acks>,
    ) -> Result<()> {
        match self.never {}
    }

    pub async fn commit_when_full(&mut self, _progress: &[Progress]) -> Result<()> {
        match self.never {}
    }

    pub fn holds_enough(&self) -> bool {
        match self.never {}
    }

    pub async fn commit(&mut self, _progress: &[Progress]) -> Result<()> {
        match self.never {}
    }

    pub fn abort(&mut self) {
        match self.never {}
    }
}

pub async fn check(sink: &crate::project::SinkDef) -> Vec<crate::check::CheckItem> {
    vec![crate::check::CheckItem::fail(
        format!("sink {}: settings", sink.name.value),
        missing(&sink.name.value).to_string(),
    )]
}

pub fn overlay(checkpoint: &mut Checkpoint, progress: Vec<Progress>) {
    for record in progress {
        checkpoint.record(record);
    }
}
