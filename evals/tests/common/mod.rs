//! The fake OpenAI-compatible server (`tests/fake_openai/server.py`) as a subprocess on a free
//! port, for the integration tests and the throughput bench.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct FakeServer {
    child: Child,
    pub port: u16,
}

impl FakeServer {
    /// Starts the server with `args`; `None` (after saying so on stderr) when python3 is not on
    /// PATH, so the calling test can skip.
    pub fn start(args: &[&str]) -> Option<FakeServer> {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fake_openai/server.py");
        let spawned = Command::new("python3")
            .arg(&script)
            .args(["--port", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                eprintln!("SKIPPED: python3 is not on PATH; the fake OpenAI server cannot start");
                return None;
            }
            Err(e) => panic!("starting {}: {e}", script.display()),
        };
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("reading the server's port: {e}"));
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line from the server: {line:?}"));
        Some(FakeServer { child, port })
    }

    /// The server process's id (the bench reads its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The OpenAI API base (`…/v1`).
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `GET /stats`.
    pub fn stats(&self) -> serde_json::Value {
        self.request("GET", "/stats", "")
    }

    pub fn reset(&self) {
        self.request("POST", "/admin/reset", "{}");
    }

    /// A plain HTTP/1.1 exchange over std (no client library in the way).
    pub fn request(&self, method: &str, path: &str, body: &str) -> serde_json::Value {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connecting to the fake server: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap_or_else(|e| panic!("{e}"));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .unwrap_or_else(|e| panic!("{e}"));
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .unwrap_or_else(|e| panic!("{e}"));
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
