//! What a person (or a log collector) sees on stderr: log lines, as text or JSON, and — on a
//! terminal — progress bars drawn between them.
//!
//! - On a terminal with text logs: colour, and the bars of [`bars`]; log lines print above them.
//! - Otherwise (a file, a pipe, systemd, Kubernetes): no colour codes and no bars; the stages log
//!   a structured progress line every [`LOG_PROGRESS_EVERY`] instead.
//! - `RUST_LOG` chooses what is logged; by default warnings, and tributary's own information
//!   (progress lines, phases), so a service's log shows progress without configuration.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// How log lines are written (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-11-30T10:00:00Z  INFO full sync progress rows_read=1200 ...`
    #[default]
    Text,
    /// One JSON object per line: `{"timestamp":…,"level":"INFO","message":…,"rows_read":1200}`.
    Json,
}

/// What is logged when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "warn,tributary=info";

/// How often a progress line is logged where there are no bars.
pub const LOG_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// How often bars are redrawn.
pub const BAR_PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// The bars of this process: `Some` on a terminal with text logs.
static BARS: OnceLock<Option<indicatif::MultiProgress>> = OnceLock::new();

/// Sets up logging for the process; decides whether there are bars.
pub fn init(format: LogFormat) {
    let terminal = std::io::stderr().is_terminal();
    let colour = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let bars = terminal && format == LogFormat::Text;
    let _ = BARS.set(bars.then(indicatif::MultiProgress::new));
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(AboveBars);
    match format {
        LogFormat::Text => builder.with_ansi(colour).with_target(false).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .init(),
    }
}

/// The terminal's bars, or `None` when progress is logged as lines.
pub fn bars() -> Option<&'static indicatif::MultiProgress> {
    BARS.get().and_then(Option::as_ref)
}

/// How often the stages report progress: bars are redrawn often, log lines every few seconds.
pub fn progress_every() -> Duration {
    if bars().is_some() {
        BAR_PROGRESS_EVERY
    } else {
        LOG_PROGRESS_EVERY
    }
}

/// Takes `bar` off the screen and leaves `line` where it was, for good: the terminal's cursor
/// is below everything again, so what is printed next (the summary) starts on its own line.
pub fn retire(bar: &indicatif::ProgressBar, line: &str) {
    if let Some(multi) = bars() {
        let _ = multi.println(line);
        bar.finish_and_clear();
        multi.remove(bar);
    }
}

/// Log lines on stderr, written above the bars (which are cleared and redrawn around them).
struct AboveBars;

impl<'a> MakeWriter<'a> for AboveBars {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// One log line, written whole when the formatter is done with it.
struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.0);
        let write = || {
            let _ = std::io::stderr().lock().write_all(&line);
        };
        match bars() {
            Some(bars) => bars.suspend(write),
            None => write(),
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate for people: whole numbers, grouped (`7,612/s`), never a dozen decimals.
pub fn rate(per_second: f64) -> String {
    if per_second.is_finite() && per_second >= 0.0 {
        format!("{}/s", grouped(per_second.round() as u64))
    } else {
        "-/s".to_string()
    }
}

/// A duration for people: `45s`, `12m05s`, `3h20m`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1234567), "1,234,567");
        assert_eq!(rate(63144.941039864294), "63,145/s");
        assert_eq!(rate(f64::NAN), "-/s");
        assert_eq!(duration(Duration::from_secs(45)), "45s");
        assert_eq!(duration(Duration::from_secs(725)), "12m05s");
        assert_eq!(duration(Duration::from_secs(12000)), "3h20m");
    }
}
