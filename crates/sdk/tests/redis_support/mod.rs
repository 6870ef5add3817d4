//! A `redis-server` child process per test, on a free loopback port, killed
//! when the guard drops. Without `redis-server` on the PATH a test is
//! skipped with a note, unless `CI` is set: then it fails.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn spawn(port: u16) -> std::io::Result<Child> {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn wait_listening(port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl RedisServer {
    /// Starts a server, or `None` (after printing why) when `redis-server`
    /// is not installed and `CI` is not set.
    pub fn start() -> Option<RedisServer> {
        for _ in 0..5 {
            let port = free_port();
            match spawn(port) {
                Ok(child) => {
                    let mut server = RedisServer {
                        child: Some(child),
                        port,
                    };
                    if wait_listening(port) {
                        return Some(server);
                    }
                    server.kill();
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if std::env::var_os("CI").is_some() {
                        panic!(
                            "redis-server is not on the PATH, and CI is set: the Redis tests must run"
                        );
                    }
                    eprintln!(
                        "skipped: redis-server is not on the PATH (install it to run the Redis tests)"
                    );
                    return None;
                }
                Err(e) => panic!("could not start redis-server: {e}"),
            }
        }
        panic!("redis-server did not start listening");
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let child = spawn(self.port).expect("redis-server restarts");
            self.child = Some(child);
            if wait_listening(self.port) {
                return;
            }
            self.kill();
            assert!(Instant::now() < deadline, "redis-server did not restart");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A raw command through a plain connection, for test setup.
    pub fn cmd(&self, args: &[&str]) -> redis::Value {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn).unwrap()
    }

    /// `GET key` as text.
    pub fn get(&self, key: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd("GET").arg(key).query(&mut conn).unwrap()
    }

    /// `PTTL key`.
    pub fn pttl(&self, key: &str) -> i64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        redis::cmd("PTTL").arg(key).query(&mut conn).unwrap()
    }

    /// `INFO stats` field `name`.
    pub fn info_stat(&self, name: &str) -> u64 {
        let client = redis::Client::open(self.url()).unwrap();
        let mut conn = client.get_connection().unwrap();
        let info: String = redis::cmd("INFO").arg("stats").query(&mut conn).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
