//! What a person watching a run sees (see `display` for where it goes): on a terminal, a bar per
//! table during full sync and a status line while streaming; otherwise a structured log line
//! every few seconds.
//!
//! Rates count only this run's work over this run's time: a resumed full sync starts its bars
//! at the rows done before, but does not count them as read now (which made rates and ETAs
//! soar after a resume).

use std::time::{Duration, Instant};

use crate::checkpoint::Checkpoint;
use crate::display;
use crate::metrics::{Metrics, TableMetrics, Totals};
use crate::plan::TablePlan;
use crate::position::BinlogPosition;

/// A table as the display sees it.
pub(super) struct Watched<'a> {
    pub plan: &'a TablePlan,
    pub metrics: TableMetrics,
}

/// Full sync's progress.
pub(super) struct Progress {
    bars: Option<Vec<indicatif::ProgressBar>>,
    started: Instant,
    /// Rows each table had done before this run.
    base: Vec<u64>,
    estimate: Vec<u64>,
}

impl Progress {
    pub(super) fn new(tables: &[Watched<'_>], checkpoint: &Checkpoint) -> Progress {
        let progress = |t: &Watched<'_>| checkpoint.tables.get(&t.plan.qualified());
        let base: Vec<u64> = tables
            .iter()
            .map(|t| progress(t).map_or(0, |p| p.rows_done()))
            .collect();
        let estimate: Vec<u64> = tables
            .iter()
            .map(|t| progress(t).map_or(0, |p| p.rows_estimate))
            .collect();
        let bars = display::bars().map(|multi| {
            let style = indicatif::ProgressStyle::with_template("{prefix:>28} {bar:30} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> ");
            tables
                .iter()
                .zip(base.iter().zip(&estimate))
                .map(|(t, (base, estimate))| {
                    let bar = multi.add(indicatif::ProgressBar::new((*estimate).max(*base)));
                    bar.set_style(style.clone());
                    bar.set_prefix(t.plan.qualified());
                    bar.set_position(*base);
                    bar
                })
                .collect()
        });
        Progress {
            bars,
            started: Instant::now(),
            base,
            estimate,
        }
    }

    pub(super) fn interval(&self) -> Duration {
        display::progress_every()
    }

    pub(super) fn report(&mut self, tables: &[Watched<'_>], checkpoint: &Checkpoint) {
        let elapsed = self.started.elapsed();
        let read: Vec<u64> = tables.iter().map(|t| t.metrics.rows_read()).collect();
        if let Some(bars) = &self.bars {
            for (i, bar) in bars.iter().enumerate() {
                let done = self.base[i] + read[i];
                // The estimate is the source's guess: the bar grows past it rather than stop.
                bar.set_length(self.estimate[i].max(done));
                bar.set_position(done);
                let bytes = tables[i].metrics.full_bytes();
                bar.set_message(table_line(read[i], done, self.estimate[i], bytes, elapsed));
            }
            return;
        }
        let read_now: u64 = read.iter().sum();
        let done = self.base.iter().sum::<u64>() + read_now;
        let estimate: u64 = self.estimate.iter().sum();
        let bytes: u64 = tables.iter().map(|t| t.metrics.full_bytes()).sum();
        let chunks_done: usize = checkpoint
            .tables
            .values()
            .map(|t| t.chunks.iter().filter(|c| c.done).count())
            .sum();
        let chunks: usize = checkpoint.tables.values().map(|t| t.chunks.len()).sum();
        let per_second = per_second(read_now, elapsed);
        tracing::info!(
            rows_done = done,
            rows_estimate = estimate,
            rows_per_sec = per_second.round() as u64,
            bytes_sent = bytes,
            chunks_done,
            chunks,
            eta_seconds = eta(done, estimate, per_second).map(|d| d.as_secs()),
            "full sync progress"
        );
    }

    /// The last report; on a pause the bars stay where they are (not at 100 %).
    pub(super) fn finish(&mut self, tables: &[Watched<'_>], checkpoint: &Checkpoint, paused: bool) {
        let finished: Vec<bool> = tables
            .iter()
            .map(|t| {
                checkpoint
                    .tables
                    .get(&t.plan.qualified())
                    .is_some_and(|p| p.is_done())
            })
            .collect();
        // A finished table has all its rows: the estimate was only a guess, above or below.
        for (i, table) in tables.iter().enumerate() {
            if finished[i] {
                self.estimate[i] = self.base[i] + table.metrics.rows_read();
            }
        }
        self.report(tables, checkpoint);
        if let Some(bars) = &self.bars {
            for ((bar, table), finished) in bars.iter().zip(tables).zip(finished) {
                let (done, of) = (bar.position(), bar.length().unwrap_or(0));
                let state = if finished {
                    "done".to_string()
                } else {
                    let percent = (done as f64 * 100.0 / of.max(1) as f64).floor();
                    format!(
                        "{} at {percent:.0} %",
                        if paused { "paused" } else { "stopped" }
                    )
                };
                display::retire(
                    bar,
                    &format!("{:>28} {}  {state}", table.plan.qualified(), bar.message()),
                );
            }
        }
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds < 0.001 {
        0.0
    } else {
        count as f64 / seconds
    }
}

/// Time left at `per_second` for the rows of the estimate not done yet; `None` when unknown.
fn eta(done: u64, estimate: u64, per_second: f64) -> Option<Duration> {
    (per_second >= 1.0 && estimate > done)
        .then(|| Duration::from_secs_f64((estimate - done) as f64 / per_second))
}

/// A table's bar text: `12,345/~100,000 rows  1.2 MB  7,612/s  eta 11s`. The rate is this run's
/// reads over this run's time.
fn table_line(read: u64, done: u64, estimate: u64, bytes: u64, elapsed: Duration) -> String {
    let per_second = per_second(read, elapsed);
    let eta = eta(done, estimate, per_second)
        .map(display::duration)
        .unwrap_or_else(|| "-".to_string());
    format!(
        "{}/~{} rows  {}  {}  eta {eta}",
        display::grouped(done),
        display::grouped(estimate.max(done)),
        crate::metrics::human_bytes(bytes),
        display::rate(per_second),
    )
}

/// Incremental sync's progress: changes per second over the last interval, the lag, the
/// acknowledged position and the last commit's time; and a bar per online snapshot (chunks
/// done of planned, rows).
pub(super) struct StreamProgress {
    bar: Option<indicatif::ProgressBar>,
    /// On a terminal, the bar of each online snapshot in the checkpoint, by id.
    online: std::collections::BTreeMap<u64, indicatif::ProgressBar>,
    every: Duration,
    last: Instant,
    /// The totals at the last report (at the start: what full sync did before).
    last_totals: Totals,
    started: Totals,
}

impl StreamProgress {
    pub(super) fn new(metrics: &Metrics, start: &BinlogPosition) -> StreamProgress {
        let bar = display::bars().map(|multi| {
            let bar = multi.add(indicatif::ProgressBar::new_spinner());
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} streaming  {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(format!("from {start}"));
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        let totals = metrics.totals();
        StreamProgress {
            bar,
            online: std::collections::BTreeMap::new(),
            every: display::progress_every(),
            last: Instant::now(),
            last_totals: totals,
            started: totals,
        }
    }

    /// Reports when the last report is an interval old.
    pub(super) fn tick(&mut self, metrics: &Metrics, state: &Checkpoint) {
        if self.last.elapsed() < self.every {
            return;
        }
        let position = state.incremental.as_ref();
        self.online_bars(state);
        let totals = metrics.totals();
        let interval = self.last.elapsed();
        let per_second = per_second(
            totals.messages.saturating_sub(self.last_totals.messages),
            interval,
        );
        self.last = Instant::now();
        self.last_totals = totals;
        let changes = totals.messages.saturating_sub(self.started.messages);
        let lag = metrics.lag_seconds();
        let committed = metrics.last_commit();
        let at = position.map(|p| format!("{}:{}", p.file, p.pos));
        match &self.bar {
            Some(bar) => bar.set_message(stream_line(
                changes,
                per_second,
                lag,
                at.as_deref(),
                committed,
            )),
            None => tracing::info!(
                changes_sent = changes,
                changes_per_sec = per_second.round() as u64,
                lag_seconds = (lag * 10.0).round() / 10.0,
                position = at.as_deref().unwrap_or("-"),
                last_commit = %commit_time(committed),
                online_snapshots = %online_summary(state),
                "incremental sync progress"
            ),
        }
    }

    /// A bar per online snapshot while it runs; a line when it is done.
    fn online_bars(&mut self, state: &Checkpoint) {
        let Some(multi) = display::bars() else {
            return;
        };
        for snapshot in &state.online {
            let bar = self.online.entry(snapshot.id).or_insert_with(|| {
                let bar = multi.add(indicatif::ProgressBar::new(0));
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{prefix:>28} {bar:30} {msg}")
                        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                bar.set_prefix(format!("online {}", snapshot.table));
                bar
            });
            let done = snapshot.chunks.iter().filter(|c| c.done).count();
            bar.set_length(snapshot.chunks.len().max(1) as u64);
            bar.set_position(done as u64);
            bar.set_message(online_line(snapshot));
        }
        let finished: Vec<u64> = self
            .online
            .keys()
            .filter(|id| !state.online.iter().any(|s| s.id == **id))
            .copied()
            .collect();
        for id in finished {
            if let Some(bar) = self.online.remove(&id) {
                let name = bar.prefix();
                display::retire(&bar, &format!("{name:>28} done"));
            }
        }
    }

    pub(super) fn finish(&mut self, metrics: &Metrics, state: &Checkpoint) {
        self.last = Instant::now() - self.every;
        self.tick(metrics, state);
        for bar in std::mem::take(&mut self.online).into_values() {
            let line = format!("{:>28} {}", bar.prefix(), bar.message());
            display::retire(&bar, &line);
        }
        if let Some(bar) = &self.bar {
            display::retire(bar, &format!("  streamed  {}", bar.message()));
        }
    }
}

/// An online snapshot's state: `3/15 chunks, 30,000/~150,000 rows` (`planning` before its
/// chunks are).
fn online_line(snapshot: &crate::checkpoint::OnlineSnapshot) -> String {
    if !snapshot.planned() {
        return format!("planning ({})", snapshot.reason);
    }
    let done = snapshot.chunks.iter().filter(|c| c.done).count();
    format!(
        "{done}/{} chunks, {}/~{} rows ({})",
        snapshot.chunks.len(),
        display::grouped(snapshot.rows_done()),
        display::grouped(snapshot.rows_estimate.max(snapshot.rows_done())),
        snapshot.reason
    )
}

/// The progress line's online snapshots: `db.t 3/15 chunks; db.u planning`, or `-`.
fn online_summary(state: &Checkpoint) -> String {
    if state.online.is_empty() {
        return "-".to_string();
    }
    state
        .online
        .iter()
        .map(|s| {
            if s.planned() {
                let done = s.chunks.iter().filter(|c| c.done).count();
                format!("{} {done}/{} chunks", s.table, s.chunks.len())
            } else {
                format!("{} planning", s.table)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The streaming line: `1,234 changes  56/s  lag 0.4 s  at mysql-bin.000003:1234  last commit
/// 2026-11-30 10:00:03 UTC`.
fn stream_line(
    changes: u64,
    per_second: f64,
    lag: f64,
    at: Option<&str>,
    committed: u64,
) -> String {
    format!(
        "{} changes  {}  lag {lag:.1} s  at {}  last commit {}",
        display::grouped(changes),
        display::rate(per_second),
        at.unwrap_or("-"),
        commit_time(committed),
    )
}

/// A commit's Unix seconds as UTC date and time; `-` before the first.
fn commit_time(seconds: u64) -> String {
    if seconds == 0 {
        return "-".to_string();
    }
    let days = (seconds / 86_400) as i64;
    let (year, month, day) = crate::temporal::civil_from_days(days);
    let rest = seconds % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn online_snapshots_show_their_chunks_and_rows() {
        use crate::checkpoint::{Chunk, OnlineSnapshot};
        let chunk = |done: bool, rows: u64| Chunk {
            lower: None,
            upper: None,
            done,
            rows,
        };
        let mut state = Checkpoint::default();
        assert_eq!(online_summary(&state), "-");
        state.online.push(OnlineSnapshot {
            id: 1,
            table: "shop.orders".into(),
            condition: None,
            reason: "new to the project".into(),
            chunks: vec![chunk(true, 10_000), chunk(true, 10_000), chunk(false, 0)],
            rows_estimate: 30_000,
        });
        state.online.push(OnlineSnapshot {
            id: 2,
            table: "shop.items".into(),
            condition: Some("id < 10".into()),
            reason: "requested".into(),
            chunks: Vec::new(),
            rows_estimate: 0,
        });
        assert_eq!(
            online_summary(&state),
            "shop.orders 2/3 chunks; shop.items planning"
        );
        assert_eq!(
            online_line(&state.online[0]),
            "2/3 chunks, 20,000/~30,000 rows (new to the project)"
        );
        assert_eq!(online_line(&state.online[1]), "planning (requested)");
    }

    #[test]
    fn a_resumed_table_counts_only_this_runs_rows() {
        // 90,000 rows done before, 7,600 read in the 1 s of this run: 7,600/s, not 97,600/s.
        let line = table_line(7_600, 97_600, 100_000, 1_500_000, Duration::from_secs(1));
        assert_eq!(line, "97,600/~100,000 rows  1.5 MB  7,600/s  eta 0s");
        // Past the estimate, the total follows the rows.
        let line = table_line(120_000, 120_000, 100_000, 0, Duration::from_secs(10));
        assert!(line.starts_with("120,000/~120,000 rows"), "{line}");
        assert!(line.ends_with("12,000/s  eta -"), "{line}");
    }

    #[test]
    fn the_stream_line_says_rate_lag_position_and_commit_time() {
        let line = stream_line(
            1234,
            56.4,
            0.42,
            Some("mysql-bin.000003:1234"),
            1_796_083_203,
        );
        assert_eq!(
            line,
            "1,234 changes  56/s  lag 0.4 s  at mysql-bin.000003:1234  last commit 2026-12-01 \
             00:00:03 UTC"
        );
        assert_eq!(commit_time(0), "-");
    }
}
