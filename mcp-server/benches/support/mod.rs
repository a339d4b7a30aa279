//! Shared by the HTTP benches: start the real `meshos serve` on a fresh data directory with an
//! operator token, and the small measuring helpers they all need.

// Each bench includes this module and uses a different subset of it.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The binary cargo built for this bench run; `BENCH_BIN` picks another (e.g. an older build).
pub fn meshos_bin() -> String {
    std::env::var("BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_meshos").to_string())
}

/// A running `meshos serve`, killed when dropped.
pub struct BenchServer {
    child: Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub authority: String,
    pub port: u16,
    /// An operator token of tenant `bench`.
    pub token: String,
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl BenchServer {
    /// Starts `meshos serve` on a fresh data directory (and `database_url` when given) and
    /// waits until it accepts connections.
    pub fn start(database_url: Option<&str>) -> BenchServer {
        BenchServer::start_with(database_url, &[])
    }

    /// [`BenchServer::start`] with more `serve` flags.
    pub fn start_with(database_url: Option<&str>, serve_args: &[&str]) -> BenchServer {
        let bin = meshos_bin();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store_args = vec![
            "--data-dir".to_string(),
            dir.path().to_string_lossy().to_string(),
        ];
        if let Some(url) = database_url {
            store_args.extend(["--database-url".to_string(), url.to_string()]);
        }
        let out = Command::new(&bin)
            .args(["token", "create", "--tenant", "bench", "--role", "operator"])
            .args(&store_args)
            .output()
            .expect("meshos token create");
        assert!(
            out.status.success(),
            "meshos token create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let port = free_port();
        let authority = format!("127.0.0.1:{port}");
        let child = Command::new(&bin)
            .args(["serve", "--bind", &authority, "--log", "warn"])
            .args(serve_args)
            .args(&store_args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("meshos serve");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&authority).is_err() {
            assert!(Instant::now() < deadline, "meshos did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        BenchServer {
            child,
            _dir: dir,
            authority,
            port,
            token,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs another `meshos` command against the server's store (e.g. `token create`, `gateway
    /// approve`); its stdout, trimmed.
    pub fn meshos(&self, args: &[&str]) -> String {
        let out = Command::new(meshos_bin())
            .args(args)
            .arg("--data-dir")
            .arg(self._dir.path())
            .output()
            .expect("meshos");
        assert!(
            out.status.success(),
            "meshos {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(47_700)
}

/// User + system CPU seconds of a process, from /proc/<pid>/stat.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

/// Resident memory of a process in KiB, from /proc/<pid>/status.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The `p` quantile (0–1) of sorted samples; NaN without samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
