//! What a person watching full sync sees: bars on a terminal, log lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::metrics::TableMetrics;
use crate::plan::TablePlan;

/// A table as the display sees it.
pub(super) struct Watched<'a> {
    pub plan: &'a TablePlan,
    pub metrics: Arc<TableMetrics>,
}

/// Progress a person can watch: bars on a terminal, log lines otherwise.
pub(super) struct Progress {
    bars: Option<(indicatif::MultiProgress, Vec<indicatif::ProgressBar>)>,
    started: Instant,
    base: Vec<u64>,
}

impl Progress {
    pub(super) fn new(tables: &[Watched<'_>], checkpoint: &Checkpoint) -> Progress {
        let base: Vec<u64> = tables
            .iter()
            .map(|t| checkpoint.tables[&t.plan.qualified()].rows_done())
            .collect();
        let bars = std::io::stderr().is_terminal().then(|| {
            let multi = indicatif::MultiProgress::new();
            let style = indicatif::ProgressStyle::with_template(
                "{prefix:>28} {bar:30} {pos:>10}/{len:10} rows {per_sec:>12} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            let bars = tables
                .iter()
                .map(|t| {
                    let estimate = checkpoint.tables[&t.plan.qualified()].rows_estimate;
                    let bar = multi.add(indicatif::ProgressBar::new(estimate.max(1)));
                    bar.set_style(style.clone());
                    bar.set_prefix(t.plan.qualified());
                    bar
                })
                .collect();
            (multi, bars)
        });
        Progress {
            bars,
            started: Instant::now(),
            base,
        }
    }

    pub(super) fn interval(&self) -> Duration {
        if self.bars.is_some() {
            Duration::from_millis(250)
        } else {
            Duration::from_secs(5)
        }
    }

    pub(super) fn report(&mut self, tables: &[Watched<'_>], checkpoint: &Checkpoint) {
        let read: Vec<u64> = tables
            .iter()
            .map(|t| t.metrics.rows_read.load(Ordering::Relaxed))
            .collect();
        if let Some((_, bars)) = &self.bars {
            for ((bar, base), read) in bars.iter().zip(&self.base).zip(&read) {
                bar.set_position(base + read);
            }
            return;
        }
        let total: u64 = read.iter().sum();
        let chunks_done: usize = checkpoint
            .tables
            .values()
            .map(|t| t.chunks.iter().filter(|c| c.done).count())
            .sum();
        let chunks: usize = checkpoint.tables.values().map(|t| t.chunks.len()).sum();
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        tracing::info!(
            rows_read = total,
            rows_per_sec = (total as f64 / elapsed) as u64,
            chunks_done,
            chunks,
            "full sync progress"
        );
    }

    pub(super) fn finish(&mut self, tables: &[Watched<'_>], checkpoint: &Checkpoint) {
        self.report(tables, checkpoint);
        if let Some((_, bars)) = &self.bars {
            for bar in bars {
                bar.finish();
            }
        }
    }
}
