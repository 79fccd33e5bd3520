//! Secured Kafka, as OMS users run it: a private broker with a SASL_SSL listener and a
//! certificate from a self-signed CA (`common::SecureKafka`). tributary's sink passes the
//! librdkafka properties through: SASL PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 over TLS each carry
//! a full sync and a stream into the broker, with the password read by `env()`; a wrong password
//! and an untrusted certificate fail `check`, naming the sink.

mod common;

use std::process::Command;
use std::time::Duration;

use common::secure_kafka_users as users;

/// A project file for the secure broker: the SASL mechanism and user, the password from
/// `env('TRIBUTARY_TEST_SASL_PASSWORD')`, and `ca` as the trusted CA (none: the system's).
fn project(
    kafka: &common::SecureKafka,
    name: &str,
    mechanism: &str,
    user: &str,
    ca: Option<&std::path::Path>,
    syncs: &str,
) -> common::Project {
    // A name of its own, so its replica id (derived from the name) is no other run's.
    let project = common::Project::new(
        &common::unique(name),
        &common::mariadb_source_default_id(),
        "",
        syncs,
    );
    let ca = ca
        .map(|ca| format!(",\n  'ssl.ca.location' = '{}'", ca.display()))
        .unwrap_or_default();
    let text = std::fs::read_to_string(&project.file).expect("project file");
    let sink = format!(
        "CREATE SINK kafka WITH (type = 'kafka', 'bootstrap.servers' = '{}',
  'security.protocol' = 'SASL_SSL', 'sasl.mechanism' = '{mechanism}',
  'sasl.username' = '{user}', 'sasl.password' = env('TRIBUTARY_TEST_SASL_PASSWORD'){ca});",
        kafka.bootstrap()
    );
    let text: String = text
        .lines()
        .map(|l| {
            if l.starts_with("CREATE SINK") {
                sink.clone()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&project.file, text).expect("write project");
    project
}

/// `tributary command project...` with the SASL password in the environment.
fn tributary(
    project: &common::Project,
    command: &str,
    extra: &[&str],
    password: &str,
) -> common::Outcome {
    // `check` takes no state dir.
    let args = match command {
        "check" => vec![command.to_string(), project.file.display().to_string()],
        _ => project.args(command, extra),
    };
    let output = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(args)
        .env("TRIBUTARY_TEST_SASL_PASSWORD", password)
        .output()
        .expect("run tributary");
    common::Outcome {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Every message of `topic`, read over SASL_SSL.
fn consume(kafka: &common::SecureKafka, topic: &str, expected: usize) -> Vec<String> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let (mechanism, user, password) = users()[0];
    let consumer: BaseConsumer = kafka
        .client_config(mechanism, user, password)
        .set("group.id", common::unique("secure_consumer"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[topic]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut keys = Vec::new();
    while keys.len() < expected && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.unwrap_or_else(|e| panic!("consuming {topic}: {e}"));
            keys.push(String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned());
        }
    }
    keys
}

#[tokio::test]
async fn sasl_plain_and_scram_over_tls_carry_full_and_incremental_sync() {
    let kafka = common::SecureKafka::start();
    let mut conn = common::mariadb().await;
    for (i, (mechanism, user, password)) in users().iter().enumerate() {
        let name = format!(
            "secure_{}",
            mechanism.to_ascii_lowercase().replace('-', "_")
        );
        let (db, topic) = common::new_table(&mut conn, &name, "id INT PRIMARY KEY").await;
        common::run_sql(
            &mut conn,
            &format!("INSERT INTO {db}.t SELECT seq FROM {db}.seq_1_to_50"),
        )
        .await;
        let project = project(
            &kafka,
            &name,
            mechanism,
            user,
            Some(&kafka.ca()),
            &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
        );
        let check = tributary(&project, "check", &[], password);
        assert_eq!(
            check.code, 0,
            "{mechanism}: {}{}",
            check.stdout, check.stderr
        );
        let outcome = tributary(&project, "run", &["--until-caught-up"], password);
        assert_eq!(
            outcome.code, 0,
            "{mechanism}: {}{}",
            outcome.stdout, outcome.stderr
        );
        common::run_sql(
            &mut conn,
            &format!("INSERT INTO {db}.t VALUES (1000), ({})", 1001 + i),
        )
        .await;
        let outcome = tributary(&project, "run", &["--until-caught-up"], password);
        assert_eq!(
            outcome.code, 0,
            "{mechanism}: {}{}",
            outcome.stdout, outcome.stderr
        );
        assert!(
            outcome.stdout.contains("incremental sync: 2 changes sent"),
            "{mechanism}: {}",
            outcome.stdout
        );
        let keys = consume(&kafka, &topic, 52);
        assert_eq!(
            keys.len(),
            52,
            "{mechanism}: 50 snapshot rows and 2 changes"
        );
        assert!(keys.contains(&"{\"id\":1000}".to_string()), "{keys:?}");
    }
}

#[tokio::test]
async fn exactly_once_on_a_fresh_secure_broker_starts_without_warnings() {
    let kafka = common::SecureKafka::start();
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "secure_eo", "id INT PRIMARY KEY").await;
    common::run_sql(
        &mut conn,
        &format!("INSERT INTO {db}.t SELECT seq FROM {db}.seq_1_to_20"),
    )
    .await;
    let (mechanism, user, password) = users()[2];
    let project = project(
        &kafka,
        "secure_eo",
        mechanism,
        user,
        Some(&kafka.ca()),
        &format!("SYNC TABLE {db}.t TO TOPIC '{topic}';"),
    );
    let text = std::fs::read_to_string(&project.file).unwrap();
    std::fs::write(
        &project.file,
        text.replace("TO kafka WITH ()", "TO kafka WITH (exactly_once = true)"),
    )
    .unwrap();
    // The broker's transaction coordinator is loading its state on a first transactional run:
    // librdkafka retries, and says so only at debug level.
    let outcome = tributary(&project, "run", &["--until-caught-up"], password);
    assert_eq!(outcome.code, 0, "{}{}", outcome.stdout, outcome.stderr);
    assert!(
        !outcome.stderr.contains("WARN") && !outcome.stderr.contains("ERROR"),
        "a first run starts quietly: {}",
        outcome.stderr
    );
    assert_eq!(consume(&kafka, &topic, 20).len(), 20);
}

#[tokio::test]
async fn a_wrong_password_or_an_untrusted_certificate_fails_check() {
    let kafka = common::SecureKafka::start();
    let mut conn = common::mariadb().await;
    let (db, topic) = common::new_table(&mut conn, "secure_bad", "id INT PRIMARY KEY").await;
    let syncs = format!("SYNC TABLE {db}.t TO TOPIC '{topic}';");
    let (mechanism, user, _) = users()[1];

    // A wrong password; then the broker's CA left out, which is not among the system's.
    let cases = [
        (
            "secure_wrong",
            Some(kafka.ca()),
            "not-the-password",
            "authentication",
        ),
        (
            "secure_untrusted",
            None,
            "bob-secret",
            "certificate verify failed",
        ),
    ];
    for (name, ca, password, why) in cases {
        let project = project(&kafka, name, mechanism, user, ca.as_deref(), &syncs);
        let outcome = tributary(&project, "check", &[], password);
        assert_eq!(
            outcome.code, 1,
            "{name}: {}{}",
            outcome.stdout, outcome.stderr
        );
        let failure = outcome
            .stdout
            .lines()
            .find(|l| l.starts_with("FAIL sink kafka: connection:"))
            .unwrap_or_else(|| panic!("{name}: {}", outcome.stdout));
        assert!(
            failure.contains(why) && failure.contains("refused the connection"),
            "{name}: the failure says why: {failure}"
        );
    }
}
