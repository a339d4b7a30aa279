//! The gateway's TOML file: the upstream MCP servers it fronts.
//!
//! ```toml
//! [[upstream]]
//! name = "fs"                                   # tools appear as fs__read_file, …
//! command = "npx"                               # a stdio server, started by the gateway
//! args = ["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"]
//! env = { NODE_ENV = "production" }
//!
//! [[upstream]]
//! name = "tickets"
//! url = "http://127.0.0.1:3001/mcp"             # a streamable HTTP server
//! bearer_env = "TICKETS_TOKEN"                  # its token, read from this variable
//! call_timeout_ms = 30000
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Between a server's name and its tool's name in the names the gateway offers.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Upstreams one gateway may front.
const MAX_UPSTREAMS: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// 1-32 lowercase letters, digits and `-`; the namespace of its tools, resources and prompts.
    pub name: String,
    /// A stdio server: the program the gateway starts.
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// A streamable HTTP server: its MCP endpoint.
    #[serde(default)]
    pub url: Option<String>,
    /// The environment variable holding the bearer token the gateway sends to `url`.
    #[serde(default)]
    pub bearer_env: Option<String>,
    /// How long one call may take upstream (default 30 s).
    #[serde(default = "default_call_timeout_ms")]
    pub call_timeout_ms: u64,
    /// How often the gateway lists the server's tools again even without a change notice
    /// (default 60 s): a server can change a definition without saying so.
    #[serde(default = "default_relist_seconds")]
    pub relist_seconds: u64,
}

fn default_call_timeout_ms() -> u64 {
    30_000
}

fn default_relist_seconds() -> u64 {
    60
}

/// How the gateway reaches an upstream.
#[derive(Debug, Clone, PartialEq)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: String,
        bearer_env: Option<String>,
    },
}

impl UpstreamConfig {
    pub fn transport(&self) -> Transport {
        match (&self.command, &self.url) {
            (Some(command), _) => Transport::Stdio {
                command: command.clone(),
                args: self.args.clone(),
                env: self.env.clone(),
                cwd: self.cwd.clone(),
            },
            (None, Some(url)) => Transport::Http {
                url: url.clone(),
                bearer_env: self.bearer_env.clone(),
            },
            // `validate` refuses a config with neither.
            (None, None) => Transport::Http {
                url: String::new(),
                bearer_env: None,
            },
        }
    }
}

/// A server name is a namespace: short, plain, and without the separator.
pub fn check_server_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a server name; expected 1-32 lowercase letters, digits and '-' (it prefixes the server's tools as {name}{NAMESPACE_SEPARATOR}<tool>)"
        ))
    }
}

impl GatewayConfig {
    pub fn load(path: &Path) -> Result<GatewayConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        GatewayConfig::parse(&text).map_err(|message| ConfigError::Invalid {
            path: path.display().to_string(),
            message,
        })
    }

    pub fn parse(text: &str) -> Result<GatewayConfig, String> {
        let config: GatewayConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if self.upstreams.is_empty() {
            return Err("no [[upstream]]; expected at least one upstream MCP server".into());
        }
        if self.upstreams.len() > MAX_UPSTREAMS {
            return Err(format!(
                "{} upstreams; expected at most {MAX_UPSTREAMS}",
                self.upstreams.len()
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, u) in self.upstreams.iter().enumerate() {
            let at = format!("upstream[{i}]");
            check_server_name(&u.name).map_err(|e| format!("{at}.name: {e}"))?;
            if !seen.insert(u.name.as_str()) {
                return Err(format!(
                    "{at}.name: {:?} is used twice; expected one name per upstream",
                    u.name
                ));
            }
            match (&u.command, &u.url) {
                (Some(_), Some(_)) => {
                    return Err(format!(
                        "{at}: both command and url; expected one (command for stdio, url for streamable HTTP)"
                    ));
                }
                (None, None) => {
                    return Err(format!(
                        "{at}: neither command nor url; expected command (stdio) or url (streamable HTTP)"
                    ));
                }
                (None, Some(url)) => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(format!(
                            "{at}.url: {url:?}; expected an http:// or https:// URL"
                        ));
                    }
                    if !u.args.is_empty() || !u.env.is_empty() || u.cwd.is_some() {
                        return Err(format!(
                            "{at}: args, env and cwd are for stdio servers (command), not url"
                        ));
                    }
                }
                (Some(command), None) => {
                    if command.trim().is_empty() {
                        return Err(format!("{at}.command: empty; expected a program"));
                    }
                    if u.bearer_env.is_some() {
                        return Err(format!(
                            "{at}.bearer_env: for url upstreams; a stdio server gets env instead"
                        ));
                    }
                }
            }
            if u.relist_seconds == 0 || u.relist_seconds > 86_400 {
                return Err(format!(
                    "{at}.relist_seconds: {}; expected 1-86400",
                    u.relist_seconds
                ));
            }
            if u.call_timeout_ms == 0 || u.call_timeout_ms > 600_000 {
                return Err(format!(
                    "{at}.call_timeout_ms: {}; expected 1-600000",
                    u.call_timeout_ms
                ));
            }
        }
        Ok(())
    }
}

/// `server__tool` for the tool `tool` of `server`.
pub fn namespaced(server: &str, name: &str) -> String {
    format!("{server}{NAMESPACE_SEPARATOR}{name}")
}

/// The server and the upstream name of a namespaced name (the server part has no separator).
pub fn split_namespaced(name: &str) -> Option<(&str, &str)> {
    let (server, rest) = name.split_once(NAMESPACE_SEPARATOR)?;
    (!server.is_empty() && !rest.is_empty()).then_some((server, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_with_both_kinds_of_upstream_loads() {
        let c = GatewayConfig::parse(
            r#"
            [[upstream]]
            name = "fs"
            command = "npx"
            args = ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]
            [[upstream]]
            name = "tickets"
            url = "http://127.0.0.1:3001/mcp"
            bearer_env = "T"
            "#,
        )
        .unwrap();
        assert_eq!(c.upstreams.len(), 2);
        assert!(matches!(
            c.upstreams[0].transport(),
            Transport::Stdio { .. }
        ));
        assert!(matches!(c.upstreams[1].transport(), Transport::Http { .. }));
        assert_eq!(c.upstreams[1].call_timeout_ms, 30_000);
    }

    #[test]
    fn mistakes_are_refused_naming_the_upstream_and_field() {
        let cases = [
            ("", "no [[upstream]]"),
            (
                "[[upstream]]\nname = \"Fs\"\ncommand = \"x\"",
                "upstream[0].name",
            ),
            (
                "[[upstream]]\nname = \"a__b\"\ncommand = \"x\"",
                "upstream[0].name",
            ),
            ("[[upstream]]\nname = \"a\"", "neither command nor url"),
            (
                "[[upstream]]\nname = \"a\"\ncommand = \"x\"\nurl = \"http://h\"",
                "both",
            ),
            (
                "[[upstream]]\nname = \"a\"\nurl = \"ftp://h\"",
                "upstream[0].url",
            ),
            (
                "[[upstream]]\nname = \"a\"\ncommand = \"x\"\n[[upstream]]\nname = \"a\"\ncommand = \"y\"",
                "used twice",
            ),
            (
                "[[upstream]]\nname = \"a\"\ncommand = \"x\"\nport = 3",
                "unknown field",
            ),
        ];
        for (text, expected) in cases {
            let err = GatewayConfig::parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn namespaced_names_split_back() {
        assert_eq!(namespaced("fs", "read_file"), "fs__read_file");
        assert_eq!(split_namespaced("fs__read_file"), Some(("fs", "read_file")));
        // A tool whose own name has the separator keeps it.
        assert_eq!(split_namespaced("fs__a__b"), Some(("fs", "a__b")));
        assert_eq!(split_namespaced("fs"), None);
        assert_eq!(split_namespaced("__x"), None);
    }
}
