//! Settings: command-line flags, then `MESHOS_*` environment variables, then an optional TOML
//! file, then defaults — in that order of precedence. Clap resolves flags and environment;
//! this module folds in the file and the defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// TOML settings file (keys as the long flags with underscores, e.g. data_dir).
    #[arg(long, env = "MESHOS_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Directory for the embedded database and the ledger signing key [default: ./meshos-data].
    #[arg(long, env = "MESHOS_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL: postgres://… for PostgreSQL; default is SQLite in the data directory.
    #[arg(long, env = "MESHOS_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "MESHOS_LOG_JSON", global = true)]
    pub log_json: bool,
    /// Log filter, e.g. info or meshos=debug [default: info].
    #[arg(long, env = "MESHOS_LOG", global = true)]
    pub log: Option<String>,
    /// Largest `content` accepted by policy_check, in bytes [default: 1048576].
    #[arg(long, env = "MESHOS_MAX_CONTENT_BYTES", global = true)]
    pub max_content_bytes: Option<usize>,
    /// Trust scores below this breach the SLA [default: 70].
    #[arg(long, env = "MESHOS_SLA_THRESHOLD", global = true)]
    pub sla_threshold: Option<f64>,
    /// Directory of a Cedar policy bundle to use instead of the shipped default.
    #[arg(long, env = "MESHOS_POLICY_DIR", global = true)]
    pub policy_dir: Option<PathBuf>,
    /// Origin prefix of the ledger checkpoints; the tenant is appended [default: meshos.local/ledger].
    #[arg(long, env = "MESHOS_LEDGER_ORIGIN", global = true)]
    pub ledger_origin: Option<String>,
}

/// The optional TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_json: Option<bool>,
    pub log: Option<String>,
    pub max_content_bytes: Option<usize>,
    pub sla_threshold: Option<f64>,
    pub policy_dir: Option<PathBuf>,
    pub ledger_origin: Option<String>,
    pub bind: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub log_json: bool,
    pub log: String,
    pub max_content_bytes: usize,
    pub sla_threshold: f64,
    pub policy_dir: Option<PathBuf>,
    pub ledger_origin: String,
    pub bind: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:7700";

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

impl Settings {
    pub fn resolve(args: &CommonArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("meshos-data"));
        let database_url = match args.database_url.clone().or(file.database_url) {
            Some(url) => url,
            None => meshos_store::sqlite_url_for_data_dir(&data_dir),
        };
        let max_content_bytes = args
            .max_content_bytes
            .or(file.max_content_bytes)
            .unwrap_or(1024 * 1024);
        if max_content_bytes == 0 {
            bail!("max_content_bytes must be at least 1");
        }
        let sla_threshold = args.sla_threshold.or(file.sla_threshold).unwrap_or(70.0);
        if !(0.0..=100.0).contains(&sla_threshold) {
            bail!("sla_threshold must be between 0 and 100, got {sla_threshold}");
        }
        Ok(Settings {
            data_dir,
            database_url,
            log_json: args.log_json || file.log_json.unwrap_or(false),
            log: args
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| "info".into()),
            max_content_bytes,
            sla_threshold,
            policy_dir: args.policy_dir.clone().or(file.policy_dir),
            ledger_origin: args
                .ledger_origin
                .clone()
                .or(file.ledger_origin)
                .unwrap_or_else(|| "meshos.local/ledger".into()),
            bind: file.bind,
            allowed_hosts: file.allowed_hosts,
        })
    }

    /// The listen address: flag/env first, then the file, then the default.
    pub fn bind_addr(&self, flag: Option<&str>) -> anyhow::Result<SocketAddr> {
        let text = flag
            .map(str::to_string)
            .or_else(|| self.bind.clone())
            .unwrap_or_else(|| DEFAULT_BIND.to_string());
        text.parse()
            .with_context(|| format!("bind address {text:?} is not HOST:PORT, e.g. 127.0.0.1:7700"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> CommonArgs {
        CommonArgs {
            config: None,
            data_dir: None,
            database_url: None,
            log_json: false,
            log: None,
            max_content_bytes: None,
            sla_threshold: None,
            policy_dir: None,
            ledger_origin: None,
        }
    }

    #[test]
    fn flags_override_file_and_file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meshos.toml");
        std::fs::write(
            &path,
            "data_dir = \"/from/file\"\nmax_content_bytes = 10\nbind = \"127.0.0.1:9999\"\n",
        )
        .unwrap();
        let mut a = args();
        a.config = Some(path);
        let s = Settings::resolve(&a).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/from/file"));
        assert_eq!(s.max_content_bytes, 10);
        assert_eq!(s.bind_addr(None).unwrap().port(), 9999);
        assert_eq!(s.bind_addr(Some("127.0.0.1:1234")).unwrap().port(), 1234);
        a.data_dir = Some(PathBuf::from("/from/flag"));
        assert_eq!(
            Settings::resolve(&a).unwrap().data_dir,
            PathBuf::from("/from/flag")
        );
        assert!(
            Settings::resolve(&a)
                .unwrap()
                .database_url
                .contains("/from/flag/meshos.db")
        );
    }

    #[test]
    fn defaults_apply_without_file() {
        let s = Settings::resolve(&args()).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("meshos-data"));
        assert_eq!(s.max_content_bytes, 1024 * 1024);
        assert_eq!(s.bind_addr(None).unwrap().to_string(), DEFAULT_BIND);
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meshos.toml");
        std::fs::write(&path, "data_dri = \"x\"\n").unwrap();
        let mut a = args();
        a.config = Some(path);
        let err = format!("{:#}", Settings::resolve(&a).unwrap_err());
        assert!(err.contains("data_dri"), "{err}");
    }
}
