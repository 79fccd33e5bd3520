//! What an operator sees while a sync runs and when it ends, against the real MariaDB and
//! Kafka: the summary lines (rows and messages of every table, each phase's rate over its own
//! time, singular and plural), the progress log lines without a terminal (by default, no colour
//! codes, JSON on request), and the bars and status line on a terminal (through a
//! pseudo-terminal, with util-linux `script`).

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Project;
use serde_json::Value;

/// A `run` whose stdout and stderr are kept, for the summary and the log lines.
fn spawn_run(project: &Project, extra: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(project.args("run", extra))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tributary")
}

/// SIGTERM (a pause), then what the run printed; it must exit 0.
fn pause(child: std::process::Child) -> (String, String) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(0), "{stdout}{stderr}");
    (stdout, stderr)
}

/// The number before `what` in `line`, e.g. `14` in "… 14 rows read …".
fn number_before(text: &str, what: &str) -> f64 {
    let at = text
        .find(what)
        .unwrap_or_else(|| panic!("`{what}` in {text}"));
    text[..at]
        .trim_end()
        .rsplit([' ', '('])
        .next()
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("a number before `{what}` in {text}"))
}

fn line_starting<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("a line starting `{start}` in:\n{text}"))
}

#[tokio::test]
async fn the_summary_after_streaming_counts_every_table_and_the_stream_logs_progress() {
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "ops_sum", "id INT PRIMARY KEY, v TEXT").await;
    let project = Project::new(
        "ops_summary",
        &common::mariadb_source("ops_summary"),
        "sync = 'schema, incremental'",
        &format!("SYNC TABLE {db}.* TO TOPIC '{topic}';"),
    );
    let mut run = spawn_run(&project, &[]);
    project.wait_until_streaming(&mut run);
    common::run_sql(
        &mut conn,
        &format!(
            "INSERT INTO {db}.t VALUES (1, 'a'), (2, 'b'), (3, 'c');\n\
             INSERT INTO {db}.t VALUES (4, 'd');\n\
             CREATE TABLE {db}.later (id INT PRIMARY KEY);\n\
             INSERT INTO {db}.later VALUES (1), (2), (3)"
        ),
    )
    .await;
    let messages = common::consume_all(&topic, 7, Duration::from_secs(60));
    assert_eq!(messages.len(), 7);
    // Long enough for a progress line (every 5 s without a terminal).
    std::thread::sleep(Duration::from_secs(6));
    let (stdout, stderr) = pause(run);

    let head = line_starting(&stdout, "run paused:");
    assert!(
        head.starts_with("run paused: 7 rows read, 7 messages sent ("),
        "the table picked up mid-stream counts too: {stdout}"
    );
    assert!(head.contains(" to 1 topic from 2 tables in "), "{head}");
    let stream = line_starting(&stdout, "incremental sync:");
    assert!(
        stream.starts_with("incremental sync: 7 changes sent in "),
        "{stream}"
    );
    assert!(!stdout.contains("full sync:"), "no full sync ran: {stdout}");

    // Without a terminal and without RUST_LOG: progress lines, no colour codes.
    let progress = line_starting_with_text(&stderr, "incremental sync progress");
    for field in [
        "changes_sent=7",
        "changes_per_sec=",
        "lag_seconds=",
        "position=\"",
        "last_commit=",
        "online_snapshots=-",
    ] {
        assert!(progress.contains(field), "{field} in {progress}");
    }
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes in a log file:\n{stderr}"
    );
    assert!(
        !stderr.contains("chunks"),
        "no chunk talk while streaming:\n{stderr}"
    );
}

fn line_starting_with_text<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .rev()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("a line with `{needle}` in:\n{text}"))
}

#[tokio::test]
async fn full_sync_rates_are_its_own_and_match_status() {
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "ops_rate", "id INT PRIMARY KEY, v TEXT").await;
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t SELECT seq, 'v' FROM {db}.seq_1_to_20000"),
    )
    .await;
    let project = Project::new(
        "ops_rate",
        &common::mariadb_source("ops_rate"),
        "sync = 'schema, full, incremental', chunk_rows = 2000",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    // The stream runs on for a while after full sync: the full-sync rate must not include it.
    let mut run = spawn_run(&project, &["--log-format", "JSON"]);
    project.wait_until_streaming(&mut run);
    std::thread::sleep(Duration::from_secs(3));
    let (stdout, stderr) = pause(run);

    let full = line_starting(&stdout, "full sync:");
    assert!(
        full.starts_with("full sync: 20000 rows read, 20000 messages sent in "),
        "{full}"
    );
    let seconds = number_before(full, " s (");
    let rate = number_before(full, " rows/s");
    let whole: f64 = line_starting(&stdout, "run paused:")
        .trim_end()
        .trim_end_matches(" s")
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the run's time: {stdout}"));
    assert!(
        whole > seconds + 2.0,
        "the run streamed for 3 s after full sync: {stdout}"
    );
    let expected = 20000.0 / seconds;
    assert!(
        (rate - expected).abs() <= expected * 0.2 + 1.0,
        "20000 rows in {seconds} s is about {expected:.0}/s, not {rate}: {stdout}"
    );
    let status = project.status();
    let status_rate = status["rows_per_sec"].as_f64().expect("rows_per_sec");
    assert!(
        (status_rate - rate).abs() <= rate * 0.2,
        "status says {status_rate} rows/s, run said {rate}: {status}"
    );

    // --log-format json (the value is case-insensitive): every line is one JSON object.
    let mut progress = None;
    for line in stderr.lines() {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        assert!(value["level"].is_string(), "{line}");
        if value["message"] == "full sync progress" {
            progress = Some(value);
        }
    }
    let progress = progress.unwrap_or_else(|| panic!("a full sync progress line:\n{stderr}"));
    assert_eq!(progress["rows_done"], 20000, "{progress}");
    assert_eq!(progress["chunks_done"], progress["chunks"], "{progress}");
}

/// `command` on a pseudo-terminal (util-linux `script`), its output — what a person at a
/// terminal sees, escape codes included — piped.
fn spawn_on_a_terminal(command: &str) -> std::process::Child {
    Command::new("script")
        .args(["-q", "-e", "-c", command, "/dev/null"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs a command on a pseudo-terminal")
}

fn on_a_terminal(command: &str) -> String {
    let output = spawn_on_a_terminal(command)
        .wait_with_output()
        .expect("script");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn shell_words(project: &Project, command: &str, extra: &[&str]) -> String {
    let mut words = vec![env!("CARGO_BIN_EXE_tributary").to_string()];
    words.extend(project.args(command, extra));
    words.join(" ")
}

#[tokio::test]
async fn a_terminal_shows_bars_per_table_and_a_stream_status_line() {
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "ops_tty", "id INT PRIMARY KEY, v TEXT").await;
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t SELECT seq, REPEAT('v', 200) FROM {db}.seq_1_to_400000"),
    )
    .await;
    let project = Project::new(
        "ops_tty",
        &common::mariadb_source("ops_tty"),
        "sync = 'schema, full, incremental', chunk_rows = 10000, full_concurrency = 2",
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let table = format!("{db}.t");

    // Ctrl-C during full sync, once a chunk is done: the bar stays where it was, with the rows,
    // bytes, rate and ETA.
    let pid_file = project.state.with_file_name("tty.pid");
    let terminal = spawn_on_a_terminal(&format!(
        "echo $$ > {}; exec {}",
        pid_file.display(),
        shell_words(&project, "run", &[])
    ));
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(project.checkpoint_path())
        .is_ok_and(|c| c.replace(' ', "").contains("\"done\":true"))
    {
        assert!(
            Instant::now() < deadline,
            "no chunk was done within 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = std::fs::read_to_string(&pid_file).expect("the run's pid");
    let status = Command::new("kill")
        .args(["-INT", pid.trim()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let output = terminal.wait_with_output().expect("script");
    let paused = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(paused.contains("run paused:"), "{paused}");
    let bar = paused
        .split(['\r', '\n'])
        .rfind(|l| l.contains(&table) && l.contains("paused at"))
        .unwrap_or_else(|| panic!("a paused bar for {table}:\n{paused}"));
    assert!(bar.contains("/~"), "rows of the estimate: {bar}");
    assert!(bar.contains(" MB") || bar.contains(" kB"), "bytes: {bar}");
    assert!(bar.contains("/s  eta "), "rate and ETA: {bar}");
    assert!(!bar.contains("100 %"), "a pause is not 100 %: {bar}");
    let rate = bar
        .split("/s")
        .next()
        .and_then(|b| b.rsplit(' ').next())
        .unwrap_or_default()
        .to_string();
    assert!(
        !rate.contains('.') && !rate.is_empty(),
        "a whole rate: {rate} in {bar}"
    );

    // Resumed to the end, then streaming: the table's bar is done, and the stream's status line
    // says changes, rate, lag, position and the last commit.
    let done = on_a_terminal(&shell_words(&project, "run", &["--until-caught-up"]));
    assert!(done.contains("run done:"), "{done}");
    let bar = done
        .split(['\r', '\n'])
        .rfind(|l| l.contains(&table) && l.contains("  done"))
        .unwrap_or_else(|| panic!("a finished bar for {table}:\n{done}"));
    assert!(bar.contains("400,000/~"), "{bar}");
    let stream = done
        .split(['\r', '\n'])
        .rfind(|l| l.contains("streamed"))
        .unwrap_or_else(|| panic!("the stream's last status line:\n{done}"));
    for part in ["changes", "/s", "lag ", " s  at ", "last commit "] {
        assert!(stream.contains(part), "`{part}` in {stream}");
    }
    // The summary starts on a line of its own, below the bars.
    assert!(
        done.split(['\r', '\n']).any(|l| l
            .trim_start_matches(|c: char| c == '\u{1b}' || "[0123456789ABK".contains(c))
            .starts_with("run done:")),
        "{done}"
    );
    let _ = topic;
}

/// The allocator's option as mimalloc itself reports it (`MIMALLOC_VERBOSE=1`) when the
/// process starts with `extra` in its environment.
fn allow_thp(extra: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("--version")
        .env_remove("MIMALLOC_ALLOW_THP")
        .env("MIMALLOC_VERBOSE", "1")
        .envs(extra.iter().copied())
        .output()
        .expect("run tributary");
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr
        .lines()
        .find_map(|line| line.trim().strip_prefix("option 'allow_thp': "))
        .unwrap_or_else(|| panic!("mimalloc did not report allow_thp:\n{stderr}"))
        .trim()
        .to_string()
}

#[test]
fn the_allocator_starts_without_transparent_huge_pages_unless_told_otherwise() {
    // With huge pages, each of mimalloc's page faults zeroed 2 MiB: 30 % of a full sync's CPU.
    assert_eq!(allow_thp(&[]), "0");
    assert_eq!(allow_thp(&[("MIMALLOC_ALLOW_THP", "1")]), "1");
}
