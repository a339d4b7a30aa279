//! Connections to upstream MCP servers, as an rmcp client: a stdio server is started as a child
//! process, a streamable HTTP server is reached over reqwest. An upstream that is down is
//! retried in the background; its tools are offered only while it is connected.

use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig,
    GetPromptRequestParams, GetPromptResult, Implementation, Prompt, ReadResourceRequestParams,
    ReadResourceResult, Resource, ResultType, Tool,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use tokio::sync::{Notify, RwLock};

use crate::config::{Transport, UpstreamConfig};

/// Calls to one HTTP upstream in flight at once.
const MAX_CALLS_IN_FLIGHT: usize = 256;

/// How long connecting and the first listing may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {server} is not connected: {reason}")]
    Unavailable { server: String, reason: String },
    #[error("upstream {server} did not answer within {ms} ms")]
    Timeout { server: String, ms: u64 },
    #[error("upstream {server}: {message}")]
    Failed { server: String, message: String },
}

/// What the gateway's client side tells the upstream, and hears from it.
#[derive(Clone)]
struct UpstreamClient {
    /// Woken when the upstream says its tool list changed (a rug pull shows up here first).
    tools_changed: Arc<Notify>,
}

impl ClientHandler for UpstreamClient {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("meshos-gateway", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.tools_changed.notify_one();
    }
}

type Session = RunningService<RoleClient, UpstreamClient>;

/// What an upstream offers, as last listed.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub tools: Vec<Tool>,
    pub resources: Vec<Resource>,
    pub prompts: Vec<Prompt>,
}

/// One upstream server: its configuration, its session (while connected) and its listing.
pub struct Upstream {
    pub config: UpstreamConfig,
    session: RwLock<Option<Arc<Session>>>,
    listing: RwLock<Listing>,
    last_error: std::sync::Mutex<Option<String>>,
    pub(crate) tools_changed: Arc<Notify>,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Upstream {
        Upstream {
            config,
            session: RwLock::new(None),
            listing: RwLock::new(Listing::default()),
            last_error: std::sync::Mutex::new(None),
            tools_changed: Arc::new(Notify::new()),
        }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub async fn is_connected(&self) -> bool {
        self.session
            .read()
            .await
            .as_ref()
            .is_some_and(|s| !s.is_closed())
    }

    pub fn last_error(&self) -> Option<String> {
        match self.last_error.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set_error(&self, e: Option<String>) {
        match self.last_error.lock() {
            Ok(mut g) => *g = e,
            Err(p) => *p.into_inner() = e,
        }
    }

    /// Connects (or reconnects) and lists what the server offers.
    pub async fn connect(&self) -> Result<(), UpstreamError> {
        let client = UpstreamClient {
            tools_changed: self.tools_changed.clone(),
        };
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, self.start(client)).await;
        let session = match connected {
            Ok(Ok(s)) => Arc::new(s),
            Ok(Err(e)) => {
                self.set_error(Some(e.to_string()));
                return Err(e);
            }
            Err(_) => {
                let e = UpstreamError::Timeout {
                    server: self.name().to_string(),
                    ms: CONNECT_TIMEOUT.as_millis() as u64,
                };
                self.set_error(Some(e.to_string()));
                return Err(e);
            }
        };
        *self.session.write().await = Some(session);
        self.set_error(None);
        self.refresh().await.map(|_| ())
    }

    async fn start(&self, client: UpstreamClient) -> Result<Session, UpstreamError> {
        let failed = |message: String| UpstreamError::Failed {
            server: self.name().to_string(),
            message,
        };
        match self.config.transport() {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let mut cmd = tokio::process::Command::new(&command);
                cmd.args(&args).envs(&env);
                if let Some(dir) = cwd {
                    cmd.current_dir(dir);
                }
                // The server's own diagnostics go to the gateway's stderr, not into the protocol.
                let (transport, _stderr) = rmcp::transport::TokioChildProcess::builder(cmd)
                    .stderr(std::process::Stdio::inherit())
                    .spawn()
                    .map_err(|e| failed(format!("cannot start {command:?}: {e}")))?;
                client
                    .serve(transport)
                    .await
                    .map_err(|e| failed(format!("initialize failed: {e}")))
            }
            Transport::Http { url, bearer_env } => {
                // rmcp's default of 16 POSTs in flight would cap every agent's calls to this
                // upstream together at 16 at a time.
                let mut config =
                    rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(
                        url.clone(),
                    )
                    .max_concurrent_requests(MAX_CALLS_IN_FLIGHT);
                if let Some(var) = bearer_env {
                    let token = std::env::var(&var).map_err(|_| {
                        failed(format!(
                            "bearer_env {var} is not set; expected the upstream's token in it"
                        ))
                    })?;
                    config = config.auth_header(token);
                }
                let http = meshos_evals::target::http_client()
                    .map_err(|e| failed(format!("HTTP client: {e}")))?;
                let transport =
                    rmcp::transport::StreamableHttpClientTransport::with_client(http, config);
                client
                    .serve(transport)
                    .await
                    .map_err(|e| failed(format!("initialize at {url} failed: {e}")))
            }
        }
    }

    async fn session(&self) -> Result<Arc<Session>, UpstreamError> {
        match self.session.read().await.as_ref() {
            Some(s) if !s.is_closed() => Ok(s.clone()),
            _ => Err(UpstreamError::Unavailable {
                server: self.name().to_string(),
                reason: self
                    .last_error()
                    .unwrap_or_else(|| "the connection closed".into()),
            }),
        }
    }

    /// Lists the server's tools, resources and prompts again; true when the tools changed.
    pub async fn refresh(&self) -> Result<bool, UpstreamError> {
        let session = self.session().await?;
        let peer = session.peer();
        let failed = |what: &str, e: rmcp::ServiceError| UpstreamError::Failed {
            server: self.name().to_string(),
            message: format!("{what}: {e}"),
        };
        let info = peer.peer_info();
        let caps = info.map(|i| i.capabilities.clone());
        let tools = if caps.as_ref().is_none_or(|c| c.tools.is_some()) {
            peer.list_all_tools()
                .await
                .map_err(|e| failed("tools/list", e))?
        } else {
            Vec::new()
        };
        let resources = if caps.as_ref().is_some_and(|c| c.resources.is_some()) {
            peer.list_all_resources().await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let prompts = if caps.as_ref().is_some_and(|c| c.prompts.is_some()) {
            peer.list_all_prompts().await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let mut listing = self.listing.write().await;
        let changed = listing.tools != tools;
        *listing = Listing {
            tools,
            resources,
            prompts,
        };
        Ok(changed)
    }

    pub async fn listing(&self) -> Listing {
        self.listing.read().await.clone()
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.call_timeout_ms)
    }

    async fn bounded<T>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, rmcp::ServiceError>>,
    ) -> Result<T, UpstreamError> {
        match tokio::time::timeout(self.timeout(), fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(UpstreamError::Failed {
                server: self.name().to_string(),
                message: format!("{what}: {e}"),
            }),
            Err(_) => Err(UpstreamError::Timeout {
                server: self.name().to_string(),
                ms: self.config.call_timeout_ms,
            }),
        }
    }

    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<CallToolResult, UpstreamError> {
        let session = self.session().await?;
        let mut params = CallToolRequestParams::new(name.to_string());
        if let Some(a) = arguments {
            params = params.with_arguments(a);
        }
        let mut result = self
            .bounded("tools/call", session.peer().call_tool(params))
            .await?;
        // An upstream on an older protocol leaves the result type out; a client on the
        // current one needs it.
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, UpstreamError> {
        let session = self.session().await?;
        let mut result = self
            .bounded(
                "resources/read",
                session
                    .peer()
                    .read_resource(ReadResourceRequestParams::new(uri.to_string())),
            )
            .await?;
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<GetPromptResult, UpstreamError> {
        let session = self.session().await?;
        let mut params = GetPromptRequestParams::new(name.to_string());
        if let Some(a) = arguments {
            params = params.with_arguments(a);
        }
        let mut result = self
            .bounded("prompts/get", session.peer().get_prompt(params))
            .await?;
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    /// Closes the session (the child process of a stdio server ends with it).
    pub async fn close(&self) {
        if let Some(session) = self.session.write().await.take()
            && let Ok(s) = Arc::try_unwrap(session)
        {
            let _ = s.cancel().await;
        }
    }
}
