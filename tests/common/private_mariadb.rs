//! A MariaDB server of a test's own, for faults the shared one must not see: stopped and started
//! again mid-run, or started with a global setting the other tests do not expect.
//!
//! The data dir lives in a fresh temp dir and is initialised with `mariadb-install-db`, with the
//! settings `scripts/services` gives the shared server (row-based binlog with full images and
//! metadata, loopback only) plus the caller's lines. The server keeps its port across a stop and
//! a start, so a running `tributary` finds it again. Dropping the handle kills the server and
//! removes the dir.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::{Conn, OptsBuilder};

/// How long a start (or a clean stop) may take before the test fails.
const READY_WITHIN: Duration = Duration::from_secs(120);

pub struct PrivateMariaDb {
    dir: PathBuf,
    port: u16,
    server: Option<Child>,
}

impl PrivateMariaDb {
    /// Initialises a data dir with `extra_config_lines` added to the `[mariadbd]` section (e.g.
    /// `"binlog_row_image=MINIMAL"`), starts the server on a free loopback port and waits until it
    /// answers.
    pub async fn start(extra_config_lines: &[&str]) -> PrivateMariaDb {
        let dir = super::temp_dir("private_mariadb");
        let port = free_port();
        let config = format!(
            "[mariadbd]
user=root
datadir={data}
socket={dir}/mariadbd.sock
# Its own tmpdir: at start-up MariaDB deletes every `#sql*` file in its tmpdir, which in /tmp
# would pull the shared server's temporary tables from under it.
tmpdir={dir}
pid-file={dir}/mariadbd.pid
log_error={dir}/mariadbd.err
port={port}
bind-address=127.0.0.1
skip-name-resolve
log_bin=mysql-bin
binlog_format=ROW
binlog_row_image=FULL
binlog_row_metadata=FULL
server_id=1
max_binlog_size=64M
innodb_buffer_pool_size=128M
max_allowed_packet=64M
character-set-server=utf8mb4
collation-server=utf8mb4_general_ci
{extra}
",
            data = dir.join("data").display(),
            dir = dir.display(),
            extra = extra_config_lines.join("\n"),
        );
        std::fs::write(dir.join("my.cnf"), config).expect("write my.cnf");
        let install = Command::new("mariadb-install-db")
            .arg(format!("--defaults-file={}", dir.join("my.cnf").display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .output()
            .unwrap_or_else(|e| {
                panic!("mariadb-install-db (the MariaDB server package) is not installed: {e}")
            });
        assert!(
            install.status.success(),
            "mariadb-install-db failed in {}: {}{}",
            dir.display(),
            String::from_utf8_lossy(&install.stdout),
            String::from_utf8_lossy(&install.stderr)
        );
        let mut server = PrivateMariaDb {
            dir,
            port,
            server: None,
        };
        server.start_again().await;
        server
    }

    /// Starts the server again on the same port and data dir (after [`PrivateMariaDb::stop`]) and
    /// waits until it answers.
    pub async fn start_again(&mut self) {
        assert!(self.server.is_none(), "the private MariaDB is running");
        let child = Command::new("mariadbd")
            .arg(format!(
                "--defaults-file={}",
                self.dir.join("my.cnf").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start mariadbd: {e}"));
        self.server = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Ok(Ok(conn)) =
                tokio::time::timeout(Duration::from_secs(5), Conn::new(self.opts())).await
            {
                let _ = conn.disconnect().await;
                return;
            }
            if let Some(status) = self
                .server
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.server = None;
                panic!(
                    "the private MariaDB exited ({status}) while starting: {}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the private MariaDB did not answer within {READY_WITHIN:?}: {}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server cleanly (SIGTERM, as a service manager does) and waits until it exited.
    pub fn stop(&mut self) {
        let mut child = self
            .server
            .take()
            .expect("the private MariaDB is not running");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM {} failed", child.id());
        let deadline = Instant::now() + READY_WITHIN;
        while child.try_wait().expect("wait for mariadbd").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the private MariaDB did not stop within {READY_WITHIN:?}: {}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `CREATE SOURCE` options for this server, with a replica id of its own.
    pub fn source_options(&self) -> String {
        format!(
            "type = 'mariadb', host = '127.0.0.1', port = {}, user = 'root', password = '', \
             server_id = {}",
            self.port,
            6000 + self.port as u32 % 1000
        )
    }

    /// A connection as root.
    pub async fn conn(&self) -> Conn {
        match tokio::time::timeout(Duration::from_secs(20), Conn::new(self.opts())).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => panic!("the private MariaDB on port {}: {e}", self.port),
            Err(_) => panic!("the private MariaDB on port {} did not answer", self.port),
        }
    }

    fn opts(&self) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"))
            .prefer_socket(false)
    }

    /// The end of the server's error log, for failure messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("mariadbd.err")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free loopback port")
}
