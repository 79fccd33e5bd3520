//! A Kafka broker of a test's own with a SASL_SSL listener, as OMS users run Kafka: TLS with a
//! certificate signed by a self-signed CA made here (openssl), and SASL users for PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-512. KRaft, one node, on free loopback ports, from the Kafka jars
//! `scripts/services` installed (`.services/kafka/libs`, or `TRIBUTARY_TEST_KAFKA_LIBS`).
//! Dropping the handle kills the broker (by its pid) and removes its dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

/// The users the broker knows: (mechanism, user, password).
pub const USERS: &[(&str, &str, &str)] = &[
    ("PLAIN", "alice", "alice-secret"),
    ("SCRAM-SHA-256", "bob", "bob-secret"),
    ("SCRAM-SHA-512", "carol", "carol-secret"),
];

pub struct SecureKafka {
    dir: PathBuf,
    port: u16,
    server: Child,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn kafka_libs() -> PathBuf {
    let libs = std::env::var_os("TRIBUTARY_TEST_KAFKA_LIBS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".services/kafka/libs"));
    assert!(
        libs.join(".").is_dir() && std::fs::read_dir(&libs).is_ok_and(|mut d| d.next().is_some()),
        "the Kafka jars are not at {}: run `scripts/services up kafka` (or point \
         TRIBUTARY_TEST_KAFKA_LIBS at a Kafka libs dir)",
        libs.display()
    );
    libs
}

fn run(dir: &Path, program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{program} is not installed: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl SecureKafka {
    /// Makes the CA and the broker's certificate, formats the storage with the SCRAM users and
    /// starts the broker; waits until it answers over SASL_SSL.
    pub fn start() -> SecureKafka {
        let dir = super::temp_dir("secure_kafka");
        let libs = kafka_libs();
        // A CA of its own, and the broker's key and certificate for 127.0.0.1 signed by it.
        run(
            &dir,
            "openssl",
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=tributary test CA",
            ],
        );
        run(
            &dir,
            "openssl",
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "broker.key",
                "-out",
                "broker.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        );
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("write san.ext");
        run(
            &dir,
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                "broker.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                "broker.pem",
                "-days",
                "2",
                "-extfile",
                "san.ext",
            ],
        );
        // Kafka's PEM keystore: the private key, then the certificate chain.
        let keystore = [
            std::fs::read_to_string(dir.join("broker.key")).expect("broker.key"),
            std::fs::read_to_string(dir.join("broker.pem")).expect("broker.pem"),
        ]
        .concat();
        std::fs::write(dir.join("keystore.pem"), keystore).expect("write keystore");

        let (port, internal, controller) = (free_port(), free_port(), free_port());
        let plain_users: String = USERS
            .iter()
            .filter(|(mechanism, ..)| *mechanism == "PLAIN")
            .map(|(_, user, password)| format!(" user_{user}=\"{password}\""))
            .collect();
        let config = format!(
            "process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller}
listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=SASL_SSL://127.0.0.1:{port},INTERNAL://127.0.0.1:{internal},CONTROLLER://127.0.0.1:{controller}
controller.listener.names=CONTROLLER
inter.broker.listener.name=INTERNAL
listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PEM
ssl.keystore.location={dir}/keystore.pem
ssl.client.auth=none
log.dirs={dir}/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
",
            dir = dir.display()
        );
        std::fs::write(dir.join("server.properties"), config).expect("write server.properties");
        std::fs::write(
            dir.join("log4j2.properties"),
            format!(
                "status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
",
                dir.display()
            ),
        )
        .expect("write log4j2.properties");
        let classpath = format!("{}/*", libs.display());
        let java = |args: &[&str]| {
            let mut command = Command::new("java");
            command
                .args(["-Xmx256m", "-XX:+UseSerialGC", "-Djava.awt.headless=true"])
                .arg(format!(
                    "-Dlog4j2.configurationFile={}/log4j2.properties",
                    dir.display()
                ))
                .args(["-cp", &classpath])
                .args(args)
                .current_dir(&dir);
            command
        };
        let mut format = java(&[
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            "tributaryTLStestAAAAAA",
            "-c",
            "server.properties",
        ]);
        for (mechanism, user, password) in USERS.iter().filter(|(m, ..)| m.starts_with("SCRAM")) {
            format
                .arg("--add-scram")
                .arg(format!("{mechanism}=[name={user},password={password}]"));
        }
        let formatted = format.output().expect("java (Kafka's StorageTool)");
        assert!(
            formatted.status.success(),
            "formatting the broker's storage failed: {}{}",
            String::from_utf8_lossy(&formatted.stdout),
            String::from_utf8_lossy(&formatted.stderr)
        );
        let server = java(&["kafka.Kafka", "server.properties"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the broker");
        let kafka = SecureKafka { dir, port, server };
        kafka.wait_until_ready();
        kafka
    }

    fn wait_until_ready(&self) {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        let deadline = Instant::now() + Duration::from_secs(180);
        let (mechanism, user, password) = USERS[0];
        loop {
            let consumer: BaseConsumer = self
                .client_config(mechanism, user, password)
                .create()
                .expect("an SASL_SSL client (librdkafka built with OpenSSL)");
            if consumer
                .fetch_metadata(None, Duration::from_secs(5))
                .is_ok_and(|m| !m.brokers().is_empty())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the SASL_SSL broker did not answer within 3 minutes; its log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The CA that signed the broker's certificate (what clients trust).
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// librdkafka settings for `user` over SASL_SSL with `mechanism`.
    pub fn client_config(&self, mechanism: &str, user: &str, password: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanism", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", password)
            .set("ssl.ca.location", self.ca().display().to_string())
            .set("socket.timeout.ms", "10000");
        config
    }

    pub fn log(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let start = log.len().saturating_sub(4000);
        log[log.ceil_char_boundary(start)..].to_string()
    }
}

impl Drop for SecureKafka {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
