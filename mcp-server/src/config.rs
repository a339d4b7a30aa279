//! Settings: command-line flags, then `MESHOS_*` environment variables, then an optional TOML
//! file, then defaults — in that order of precedence. Clap resolves flags and environment;
//! this module folds in the file and the defaults.
//!
//! Trust settings live in the file's `[trust]` section:
//!
//! ```toml
//! [trust]
//! sla_threshold = 70            # fleet default (flag --sla-threshold / MESHOS_SLA_THRESHOLD wins)
//! sla_recovery_margin = 2       # points above the threshold a breached agent must reach to recover
//! sla_min_breach_samples = 1    # consecutive scores below the threshold that make a breach
//! webhook_max_attempts = 5      # per delivery, the first included
//! webhook_retry_base_ms = 500   # first retry wait; doubles per retry, with jitter
//! webhook_timeout_ms = 10000    # per attempt
//!
//! [[trust.sla]]                 # per tenant, team of a tenant, or agent of a tenant; most specific wins
//! tenant = "acme"
//! team = "billing"              # or agent = "bot-1", not both; neither = the whole tenant
//! threshold = 80
//! recovery_margin = 5           # optional
//!
//! [[trust.webhooks]]
//! url = "https://hooks.example.com/meshos"
//! secret_env = "MESHOS_WEBHOOK_SECRET"   # HMAC key read from this variable, never from the file
//! tenant = "acme"                        # optional: only this tenant's alerts
//! events = ["sla.breach", "sla.recovery"]   # optional: default every event
//! ```
//!
//! Limits on what clients send live in `[limits]` (every key, its default and its meaning:
//! `limits.rs`). Metrics settings live in `[metrics]`:
//!
//! ```toml
//! [metrics]
//! bind = "127.0.0.1:9464"   # also serve /metrics here, with no token (flag --metrics-bind)
//! agent_labels = false      # one trust-score series per agent (flag --metrics-agent-labels)
//! ```
//!
//! `--webhook-url` / `MESHOS_WEBHOOK_URL` adds one more endpoint (all tenants, all events) keyed
//! with `MESHOS_WEBHOOK_SECRET`. A missing secret variable is a start-up error naming it.

use std::env::VarError;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use clap::Args;
use meshos_trust::sla::{BREACH_EVENT, RECOVERY_EVENT, SlaPolicy, SlaRule};
use serde::Deserialize;

use meshos_service::webhook::{DeliveryOptions, WebhookEndpoint, WebhookSecret};

use crate::limits::{LimitsFile, ServerLimits};

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
    /// Trust scores below this breach the SLA, fleet-wide; per tenant/team/agent rules go in
    /// the config file's [[trust.sla]] [default: 70].
    #[arg(long, env = "MESHOS_SLA_THRESHOLD", global = true)]
    pub sla_threshold: Option<f64>,
    /// POST SLA alerts of every tenant to this URL, signed with the key in
    /// MESHOS_WEBHOOK_SECRET (more endpoints and filters: [[trust.webhooks]] in the config file).
    #[arg(long, env = "MESHOS_WEBHOOK_URL", global = true)]
    pub webhook_url: Option<String>,
    /// Directory of a Cedar policy bundle to use instead of the shipped default.
    #[arg(long, env = "MESHOS_POLICY_DIR", global = true)]
    pub policy_dir: Option<PathBuf>,
    /// Origin prefix of the ledger checkpoints; the tenant is appended [default: meshos.local/ledger].
    #[arg(long, env = "MESHOS_LEDGER_ORIGIN", global = true)]
    pub ledger_origin: Option<String>,
    /// Directory of eval suites (`<id>.yaml`) [default: ./evals/suites when it exists].
    #[arg(long, env = "MESHOS_EVALS_DIR", global = true)]
    pub evals_dir: Option<PathBuf>,
    /// Submit every new checkpoint to this C2SP tlog-witness and keep its cosignatures:
    /// "<url> <witness verifier key>" (repeatable; more in the config file's [[witnesses]]).
    #[arg(
        long = "witness",
        env = "MESHOS_WITNESSES",
        value_delimiter = ',',
        global = true
    )]
    pub witness: Vec<String>,
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
    /// Only here to say where the key went: it belongs in `[trust]`.
    sla_threshold: Option<toml::Value>,
    pub policy_dir: Option<PathBuf>,
    pub ledger_origin: Option<String>,
    pub evals_dir: Option<PathBuf>,
    pub bind: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    #[serde(default)]
    pub trust: TrustFileConfig,
    /// `[[witnesses]]`: url and key of each witness checkpoints are submitted to.
    #[serde(default)]
    pub witnesses: Vec<crate::witness::WitnessFileConfig>,
    #[serde(default)]
    pub limits: LimitsFile,
    #[serde(default)]
    pub metrics: MetricsFileConfig,
}

/// The file's `[metrics]` section (see the module doc).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFileConfig {
    pub bind: Option<String>,
    pub agent_labels: Option<bool>,
}

/// The file's `[trust]` section (see the module doc).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustFileConfig {
    pub sla_threshold: Option<f64>,
    pub sla_recovery_margin: Option<f64>,
    pub sla_min_breach_samples: Option<u32>,
    #[serde(default)]
    pub sla: Vec<SlaRule>,
    #[serde(default)]
    pub webhooks: Vec<WebhookFileConfig>,
    pub webhook_max_attempts: Option<u32>,
    pub webhook_retry_base_ms: Option<u64>,
    pub webhook_timeout_ms: Option<u64>,
}

/// One `[[trust.webhooks]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookFileConfig {
    pub url: String,
    /// Name of the environment variable holding the HMAC key.
    pub secret_env: String,
    pub tenant: Option<String>,
    pub events: Option<Vec<String>>,
}

/// Resolved trust settings: SLA rules and where alerts go.
// Read by the trust runtime, which is wired in separately.
#[derive(Debug, Clone)]
pub struct TrustSettings {
    pub sla: SlaPolicy,
    pub webhooks: Vec<WebhookEndpoint>,
    pub delivery: DeliveryOptions,
}

/// Event names a webhook may filter on.
pub const WEBHOOK_EVENTS: &[&str] = &[BREACH_EVENT, RECOVERY_EVENT];

/// The variable `--webhook-url` takes its key from.
pub const WEBHOOK_SECRET_ENV: &str = "MESHOS_WEBHOOK_SECRET";

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: String,
    pub log_json: bool,
    pub log: String,
    pub policy_dir: Option<PathBuf>,
    pub ledger_origin: String,
    /// Where eval suites are read from, when there is such a directory.
    pub evals_dir: Option<PathBuf>,
    pub bind: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub trust: TrustSettings,
    pub witnesses: Vec<meshos_service::WitnessEndpoint>,
    pub limits: ServerLimits,
    /// A second address serving `/metrics` with no token (for a scraper on a private network).
    pub metrics_bind: Option<String>,
    /// Per-agent trust-score series, labelled with tenant and agent.
    pub metrics_agent_labels: bool,
}

pub const DEFAULT_BIND: &str = "127.0.0.1:7700";

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {} is not valid", path.display()))
}

impl Settings {
    pub fn resolve(args: &CommonArgs) -> anyhow::Result<Settings> {
        Self::resolve_with_env(args, &|name| std::env::var(name))
    }

    /// `resolve` with the environment lookup for webhook secrets passed in (tests cannot set
    /// process variables safely).
    fn resolve_with_env(
        args: &CommonArgs,
        env: &dyn Fn(&str) -> Result<String, VarError>,
    ) -> anyhow::Result<Settings> {
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
        if file.sla_threshold.is_some() {
            bail!(
                "sla_threshold belongs in the [trust] section of the config file: [trust] sla_threshold = …"
            );
        }
        let sla_threshold = args
            .sla_threshold
            .or(file.trust.sla_threshold)
            .unwrap_or(meshos_trust::sla::DEFAULT_SLA_THRESHOLD);
        if !(0.0..=100.0).contains(&sla_threshold) {
            bail!("sla_threshold must be between 0 and 100, got {sla_threshold}");
        }
        let trust = resolve_trust(sla_threshold, file.trust, args.webhook_url.as_deref(), env)?;
        let witnesses = crate::witness::resolve_endpoints(&args.witness, file.witnesses)?;
        let limits = ServerLimits::resolve(file.limits, max_content_bytes)?;
        Ok(Settings {
            data_dir,
            database_url,
            log_json: args.log_json || file.log_json.unwrap_or(false),
            log: args
                .log
                .clone()
                .or(file.log)
                .unwrap_or_else(|| "info".into()),
            policy_dir: args.policy_dir.clone().or(file.policy_dir),
            ledger_origin: args
                .ledger_origin
                .clone()
                .or(file.ledger_origin)
                .unwrap_or_else(|| "meshos.local/ledger".into()),
            evals_dir: args
                .evals_dir
                .clone()
                .or(file.evals_dir)
                .or_else(|| Some(PathBuf::from("evals/suites")).filter(|d| d.is_dir())),
            bind: file.bind,
            allowed_hosts: file.allowed_hosts,
            trust,
            witnesses,
            limits,
            metrics_bind: file.metrics.bind,
            metrics_agent_labels: file.metrics.agent_labels.unwrap_or(false),
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

fn resolve_trust(
    sla_threshold: f64,
    file: TrustFileConfig,
    webhook_url: Option<&str>,
    env: &dyn Fn(&str) -> Result<String, VarError>,
) -> anyhow::Result<TrustSettings> {
    let mut sla = SlaPolicy::new(sla_threshold, file.sla)
        .context("[[trust.sla]] is invalid (rules are numbered from 1 in file order)")?;
    if let Some(margin) = file.sla_recovery_margin {
        sla = sla
            .with_recovery_margin(margin)
            .context("[trust] sla_recovery_margin is invalid")?;
    }
    if let Some(samples) = file.sla_min_breach_samples {
        sla = sla
            .with_min_breach_samples(samples)
            .context("[trust] sla_min_breach_samples is invalid")?;
    }

    let defaults = DeliveryOptions::default();
    let max_attempts = file.webhook_max_attempts.unwrap_or(defaults.max_attempts);
    if max_attempts == 0 {
        bail!("[trust] webhook_max_attempts must be at least 1, got 0");
    }
    let timeout = file
        .webhook_timeout_ms
        .map(Duration::from_millis)
        .unwrap_or(defaults.timeout);
    if timeout.is_zero() {
        bail!("[trust] webhook_timeout_ms must be at least 1, got 0");
    }
    let delivery = DeliveryOptions {
        max_attempts,
        base_delay: file
            .webhook_retry_base_ms
            .map(Duration::from_millis)
            .unwrap_or(defaults.base_delay),
        timeout,
        connect_timeout: defaults.connect_timeout.min(timeout),
        max_delay: defaults.max_delay,
    };

    let mut webhooks = Vec::with_capacity(file.webhooks.len() + 1);
    for (i, hook) in file.webhooks.into_iter().enumerate() {
        let name = format!("[[trust.webhooks]] #{}", i + 1);
        webhooks.push(webhook_endpoint(&name, hook, env)?);
    }
    if let Some(url) = webhook_url {
        let hook = WebhookFileConfig {
            url: url.to_string(),
            secret_env: WEBHOOK_SECRET_ENV.to_string(),
            tenant: None,
            events: None,
        };
        webhooks.push(webhook_endpoint(
            "--webhook-url (MESHOS_WEBHOOK_URL)",
            hook,
            env,
        )?);
    }
    Ok(TrustSettings {
        sla,
        webhooks,
        delivery,
    })
}

/// `name` says where the entry came from, for errors. URLs stay out of messages: a webhook URL
/// often carries a token in its path.
fn webhook_endpoint(
    name: &str,
    hook: WebhookFileConfig,
    env: &dyn Fn(&str) -> Result<String, VarError>,
) -> anyhow::Result<WebhookEndpoint> {
    let url: reqwest::Url = hook.url.parse().map_err(|e| {
        anyhow!(
            "{name}: url is not a valid URL ({e}); expected e.g. https://hooks.example.com/meshos"
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        bail!(
            "{name}: url scheme {:?} is not supported; expected http or https",
            url.scheme()
        );
    }
    let var = hook.secret_env.trim();
    if var.is_empty() {
        bail!(
            "{name}: secret_env is empty; expected the name of the environment variable holding the HMAC key"
        );
    }
    let secret = match env(var) {
        Ok(value) if value.is_empty() => {
            bail!(
                "{name}: environment variable {var} (its secret_env) is empty; it must hold the webhook's HMAC key"
            )
        }
        Ok(value) => WebhookSecret::new(value),
        Err(VarError::NotPresent) => {
            bail!(
                "{name}: environment variable {var} (its secret_env) is not set; it must hold the webhook's HMAC key"
            )
        }
        Err(VarError::NotUnicode(_)) => {
            bail!("{name}: environment variable {var} (its secret_env) is not valid UTF-8")
        }
    };
    if let Some(tenant) = &hook.tenant {
        meshos_types::validate_id("tenant", tenant).map_err(|e| anyhow!("{name}: {e}"))?;
    }
    if let Some(events) = &hook.events {
        if events.is_empty() {
            bail!(
                "{name}: events is empty, so nothing would be sent; leave it out to receive every event"
            );
        }
        if let Some(unknown) = events
            .iter()
            .find(|e| !WEBHOOK_EVENTS.contains(&e.as_str()))
        {
            bail!(
                "{name}: unknown event {unknown:?} in events; expected some of {}",
                WEBHOOK_EVENTS.join(", ")
            );
        }
    }
    Ok(WebhookEndpoint {
        url,
        secret,
        tenant: hook.tenant,
        events: hook.events,
    })
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
            webhook_url: None,
            policy_dir: None,
            ledger_origin: None,
            evals_dir: None,
            witness: vec![],
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
        assert_eq!(s.limits.service.max_content_bytes, 10);
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
        assert_eq!(s.limits.service.max_content_bytes, 1024 * 1024);
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

#[cfg(test)]
mod trust_tests {
    use super::*;

    fn args_with_file(text: &str) -> (tempfile::TempDir, CommonArgs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meshos.toml");
        std::fs::write(&path, text).unwrap();
        let args = CommonArgs {
            config: Some(path),
            data_dir: None,
            database_url: None,
            log_json: false,
            log: None,
            max_content_bytes: None,
            sla_threshold: None,
            webhook_url: None,
            policy_dir: None,
            ledger_origin: None,
            evals_dir: None,
            witness: vec![],
        };
        (dir, args)
    }

    fn env_with_secret(name: &str) -> Result<String, VarError> {
        match name {
            "HOOK_KEY" | "MESHOS_WEBHOOK_SECRET" => Ok(format!("key-from-{name}")),
            _ => Err(VarError::NotPresent),
        }
    }

    /// The full error chain, as main prints it.
    fn error_of(text: &str) -> String {
        let (_dir, args) = args_with_file(text);
        format!(
            "{:#}",
            Settings::resolve_with_env(&args, &env_with_secret).unwrap_err()
        )
    }

    const FULL: &str = r#"
[trust]
sla_threshold = 65
sla_recovery_margin = 3
webhook_max_attempts = 7
webhook_retry_base_ms = 20

[[trust.sla]]
tenant = "acme"
threshold = 75

[[trust.sla]]
tenant = "acme"
team = "billing"
threshold = 80

[[trust.sla]]
tenant = "acme"
agent = "bot-1"
threshold = 90
recovery_margin = 1

[[trust.webhooks]]
url = "https://hooks.example.com/meshos"
secret_env = "HOOK_KEY"
tenant = "acme"
events = ["sla.breach"]

[[trust.webhooks]]
url = "http://127.0.0.1:9000/alerts"
secret_env = "HOOK_KEY"
"#;

    #[test]
    fn the_trust_section_configures_sla_rules_and_webhooks() {
        let (_dir, args) = args_with_file(FULL);
        let s = Settings::resolve_with_env(&args, &env_with_secret).unwrap();
        assert_eq!(s.trust.sla.default_threshold(), 65.0);
        let sla = &s.trust.sla;
        assert_eq!(sla.resolve("globex", None, "a").threshold, 65.0);
        assert_eq!(sla.resolve("acme", None, "a").threshold, 75.0);
        let team = sla.resolve("acme", Some("billing"), "a");
        assert_eq!((team.threshold, team.recovery_margin), (80.0, 3.0));
        let agent = sla.resolve("acme", Some("billing"), "bot-1");
        assert_eq!((agent.threshold, agent.recovery_margin), (90.0, 1.0));

        assert_eq!(s.trust.webhooks.len(), 2);
        let first = &s.trust.webhooks[0];
        assert_eq!(first.url.as_str(), "https://hooks.example.com/meshos");
        assert_eq!(first.secret.as_bytes(), b"key-from-HOOK_KEY");
        assert!(first.accepts("acme", "sla.breach"));
        assert!(!first.accepts("acme", "sla.recovery"));
        assert!(!first.accepts("globex", "sla.breach"));
        assert!(s.trust.webhooks[1].accepts("globex", "sla.recovery"));
        assert_eq!(s.trust.delivery.max_attempts, 7);
        assert_eq!(s.trust.delivery.base_delay, Duration::from_millis(20));
    }

    #[test]
    fn the_flag_threshold_beats_the_file() {
        let (_dir, mut args) = args_with_file("[trust]\nsla_threshold = 65\n");
        args.sla_threshold = Some(50.0);
        let s = Settings::resolve_with_env(&args, &env_with_secret).unwrap();
        assert_eq!(s.trust.sla.default_threshold(), 50.0);
        assert_eq!(s.trust.sla.default_threshold(), 50.0);
    }

    #[test]
    fn without_a_trust_section_the_defaults_apply() {
        let (_dir, args) = args_with_file("");
        let s = Settings::resolve_with_env(&args, &env_with_secret).unwrap();
        assert_eq!(s.trust.sla.resolve("acme", None, "a").threshold, 70.0);
        assert!(s.trust.webhooks.is_empty());
        assert_eq!(s.trust.delivery, DeliveryOptions::default());
    }

    #[test]
    fn a_top_level_sla_threshold_points_to_the_trust_section() {
        let err = error_of("sla_threshold = 60\n");
        assert!(err.contains("[trust] sla_threshold"), "{err}");
    }

    #[test]
    fn a_missing_secret_variable_is_named() {
        let err = error_of(
            "[[trust.webhooks]]\nurl = \"https://h.example/x\"\nsecret_env = \"NOT_SET_ANYWHERE\"\n",
        );
        assert!(
            err.contains("[[trust.webhooks]] #1")
                && err.contains("NOT_SET_ANYWHERE")
                && err.contains("not set"),
            "{err}"
        );
    }

    #[test]
    fn the_webhook_url_shortcut_needs_its_secret() {
        let (_dir, mut args) = args_with_file("");
        args.webhook_url = Some("http://127.0.0.1:9/hook".into());
        let s = Settings::resolve_with_env(&args, &env_with_secret).unwrap();
        assert_eq!(s.trust.webhooks.len(), 1);
        assert_eq!(
            s.trust.webhooks[0].secret.as_bytes(),
            b"key-from-MESHOS_WEBHOOK_SECRET"
        );
        let err = format!(
            "{:#}",
            Settings::resolve_with_env(&args, &|_| Err(VarError::NotPresent)).unwrap_err()
        );
        assert!(
            err.contains("--webhook-url") && err.contains("MESHOS_WEBHOOK_SECRET"),
            "{err}"
        );
    }

    #[test]
    fn bad_trust_settings_name_the_key() {
        let err = error_of(
            "[[trust.sla]]\ntenant = \"acme\"\nthreshold = 70\n[[trust.sla]]\ntenant = \"acme\"\nteam = \"ops\"\nthreshold = 170\n",
        );
        assert!(
            err.contains("[[trust.sla]]") && err.contains("SLA rule #2") && err.contains("170"),
            "{err}"
        );
        let err = error_of("[[trust.sla]]\ntenant = \"acme\"\nthreshhold = 70\n");
        assert!(err.contains("threshhold"), "{err}");
        let err = error_of("[trust]\nsla_treshold = 70\n");
        assert!(err.contains("sla_treshold"), "{err}");
        let err = error_of(
            "[[trust.webhooks]]\nurl = \"https://h.example/x\"\nsecret_env = \"HOOK_KEY\"\nevents = [\"sla.breached\"]\n",
        );
        assert!(
            err.contains("[[trust.webhooks]] #1") && err.contains("\"sla.breached\""),
            "{err}"
        );
        let err = error_of(
            "[[trust.webhooks]]\nurl = \"ftp://h.example/x\"\nsecret_env = \"HOOK_KEY\"\n",
        );
        assert!(err.contains("scheme \"ftp\""), "{err}");
        let err = error_of("[[trust.webhooks]]\nurl = \"not a url\"\nsecret_env = \"HOOK_KEY\"\n");
        assert!(err.contains("url is not a valid URL"), "{err}");
        let err = error_of("[trust]\nwebhook_max_attempts = 0\n");
        assert!(err.contains("webhook_max_attempts"), "{err}");
        let err = error_of("[trust]\nsla_min_breach_samples = 0\n");
        assert!(err.contains("sla_min_breach_samples"), "{err}");
    }
}
