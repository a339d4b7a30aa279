//! OpenAI-compatible chat endpoints through async-openai (OpenAI, vLLM, Ollama, llama.cpp
//! server...), streaming or not, with token usage turned into cost.
//!
//! Retries: async-openai's default client wraps every request in its own `OpenAIRetryLayer`
//! (exponential backoff on 429/5xx/connection errors, reading `Retry-After`). Ours are in charge
//! instead — the runner counts attempts, honours `Retry-After` under a cap and shares one policy
//! with the other targets — so [`OpenAiEndpoint`] installs its own HTTP service with
//! `Client::with_http_service`, which replaces that layer: every call here is exactly one HTTP
//! attempt. The same service turns a non-success status into [`TargetError::Status`] with its
//! `Retry-After` (async-openai's own error drops the headers) and bounds the bytes read from a
//! successful answer (async-openai reads whole bodies unbounded).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use async_openai::types::chat::{
    ChatCompletionMessageToolCalls, ChatCompletionRequestMessage, ChatCompletionStreamOptions,
    ChatCompletionTools, CompletionUsage, CreateChatCompletionRequest,
    CreateChatCompletionResponse,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{
    ChatRequest, Price, Target, TargetError, TargetFuture, default_max_response_bytes,
    parse_arguments, read_env, status_error, transport_error,
};
use crate::output::{Output, ToolCall};

/// An OpenAI-compatible chat endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiTargetConfig {
    /// The API base, up to and including `/v1` (e.g. `http://127.0.0.1:11434/v1`).
    pub base_url: String,
    pub model: String,
    /// The environment variable holding the API key; none for local servers without keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Ask for a streamed answer and assemble its deltas.
    #[serde(default)]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// The most bytes read from one answer.
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

impl OpenAiTargetConfig {
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        OpenAiTargetConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key_env: None,
            stream: false,
            price: None,
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

/// A configured async-openai client: the target and the judge both talk through it.
#[derive(Clone)]
pub(crate) struct OpenAiEndpoint {
    client: Client<OpenAIConfig>,
    http: reqwest_013::Client,
    openai_config: OpenAIConfig,
    pub(crate) config: OpenAiTargetConfig,
}

impl std::fmt::Debug for OpenAiEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiEndpoint")
            .field("base_url", &self.config.base_url)
            .field("model", &self.config.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiEndpoint {
    pub(crate) fn new(config: OpenAiTargetConfig) -> Result<Self, TargetError> {
        let base = config.base_url.trim_end_matches('/').to_string();
        let scheme_ok = base.starts_with("http://") || base.starts_with("https://");
        if !scheme_ok {
            return Err(TargetError::Config(format!(
                "base_url must be an http(s) URL, got {:?}",
                config.base_url
            )));
        }
        let key = match &config.api_key_env {
            Some(var) => read_env(var, "api_key_env")?,
            None => String::new(),
        };
        // Set every field explicitly: async-openai's defaults read OPENAI_API_KEY, OPENAI_ORG_ID
        // and OPENAI_PROJECT_ID from the environment, which must not leak to another endpoint.
        let openai_config = OpenAIConfig::new()
            .with_api_base(base)
            .with_api_key(key)
            .with_org_id("")
            .with_project_id("");
        let http = super::http_client()?;
        let client = client_over(&http, &openai_config, config.max_response_bytes, None);
        Ok(OpenAiEndpoint {
            client,
            http,
            openai_config,
            config,
        })
    }

    pub(crate) fn identity(&self) -> String {
        format!(
            "openai {} model={} stream={}",
            self.config.base_url.trim_end_matches('/'),
            self.config.model,
            self.config.stream
        )
    }

    /// One non-streaming chat completion, as async-openai types.
    pub(crate) async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, TargetError> {
        let limit = self.config.max_response_bytes;
        self.client
            .chat()
            .create(request)
            .await
            .map_err(|e| map_error(e, limit))
    }

    /// One streamed chat completion, its deltas assembled into the answer it adds up to.
    pub(crate) async fn create_streamed(
        &self,
        mut request: CreateChatCompletionRequest,
    ) -> Result<Assembled, TargetError> {
        let limit = self.config.max_response_bytes;
        request.stream = Some(true);
        request.stream_options = Some(ChatCompletionStreamOptions {
            include_usage: Some(true),
            include_obfuscation: None,
        });
        // async-openai reads a stream's body in a task of its own and reports a failed read as
        // text only, so a streamed call gets a client of its own whose service raises this flag
        // when it cuts the body off (a client is a few Arcs; the connection pool is shared).
        let tripped = Arc::new(AtomicBool::new(false));
        let client = client_over(
            &self.http,
            &self.openai_config,
            limit,
            Some(tripped.clone()),
        );
        let too_large = |e: OpenAIError| {
            if tripped.load(Ordering::SeqCst) {
                TargetError::TooLarge { limit }
            } else {
                map_error(e, limit)
            }
        };
        let mut stream = client
            .chat()
            .create_stream(request)
            .await
            .map_err(too_large)?;
        let mut out = Assembled::default();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(too_large)?;
            if !chunk.model.is_empty() {
                out.model = Some(chunk.model);
            }
            if let Some(usage) = chunk.usage {
                out.usage = Some(usage);
            }
            // Only the first choice is an answer (n is never set).
            for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
                if let Some(text) = choice.delta.content {
                    out.text.push_str(&text);
                }
                for delta in choice.delta.tool_calls.unwrap_or_default() {
                    let at = delta.index as usize;
                    if at > out.tool_calls.len() + 64 {
                        return Err(TargetError::Decode(format!(
                            "tool call delta index {at} out of range"
                        )));
                    }
                    if out.tool_calls.len() <= at {
                        out.tool_calls.resize_with(at + 1, Default::default);
                    }
                    let call = &mut out.tool_calls[at];
                    if let Some(function) = delta.function {
                        if let Some(name) = function.name {
                            call.0.push_str(&name);
                        }
                        if let Some(arguments) = function.arguments {
                            call.1.push_str(&arguments);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn cost(&self, input_tokens: u64, output_tokens: u64) -> f64 {
        self.config
            .price
            .map(|p| p.cost(input_tokens, output_tokens))
            .unwrap_or(0.0)
    }
}

/// A streamed answer put back together.
#[derive(Debug, Default)]
pub(crate) struct Assembled {
    pub(crate) text: String,
    /// (name, arguments as sent) per tool-call index.
    pub(crate) tool_calls: Vec<(String, String)>,
    pub(crate) usage: Option<CompletionUsage>,
    pub(crate) model: Option<String>,
}

/// An OpenAI-compatible chat endpoint as an eval target.
#[derive(Debug, Clone)]
pub struct OpenAiTarget {
    endpoint: OpenAiEndpoint,
}

impl OpenAiTarget {
    /// Builds the client; reads the API key's environment variable now (an error names it).
    pub fn new(config: OpenAiTargetConfig) -> Result<Self, TargetError> {
        Ok(OpenAiTarget {
            endpoint: OpenAiEndpoint::new(config)?,
        })
    }

    async fn answer(&self, request: &ChatRequest) -> Result<Output, TargetError> {
        let started = Instant::now();
        let body = build_request(&self.endpoint.config.model, request)?;
        let (text, tool_calls, usage, model) = if self.endpoint.config.stream {
            let a = self.endpoint.create_streamed(body).await?;
            let calls = a
                .tool_calls
                .into_iter()
                .filter(|(name, _)| !name.is_empty())
                .map(|(name, args)| ToolCall {
                    name,
                    arguments: parse_arguments(&args),
                })
                .collect();
            (a.text, calls, a.usage, a.model)
        } else {
            let response = self.endpoint.create(body).await?;
            let model = Some(response.model).filter(|m| !m.is_empty());
            let choice = response
                .choices
                .into_iter()
                .find(|c| c.index == 0)
                .ok_or_else(|| TargetError::Decode("the answer has no choices".into()))?;
            let calls = choice
                .message
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(|call| match call {
                    ChatCompletionMessageToolCalls::Function(f) => ToolCall {
                        name: f.function.name,
                        arguments: parse_arguments(&f.function.arguments),
                    },
                    ChatCompletionMessageToolCalls::Custom(c) => ToolCall {
                        name: c.custom_tool.name,
                        arguments: serde_json::Value::String(c.custom_tool.input),
                    },
                })
                .collect();
            let text = choice.message.content.unwrap_or_default();
            (text, calls, response.usage, model)
        };
        let (input_tokens, output_tokens) = usage
            .map(|u| (u64::from(u.prompt_tokens), u64::from(u.completion_tokens)))
            .unwrap_or((0, 0));
        Ok(Output {
            text,
            tool_calls,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            input_tokens,
            output_tokens,
            cost_usd: self.endpoint.cost(input_tokens, output_tokens),
            model,
        })
    }
}

impl Target for OpenAiTarget {
    fn identity(&self) -> String {
        self.endpoint.identity()
    }

    fn answers_depend_on_item_id(&self) -> bool {
        false
    }

    fn complete<'a>(&'a self, request: &'a ChatRequest) -> TargetFuture<'a> {
        Box::pin(self.answer(request))
    }
}

/// The async-openai request for one [`ChatRequest`]. Messages and tools go through serde, so an
/// unknown role or a malformed tool definition is a typed error naming the item.
pub(crate) fn build_request(
    model: &str,
    request: &ChatRequest,
) -> Result<CreateChatCompletionRequest, TargetError> {
    let invalid = |message: String| TargetError::Request {
        item_id: request.item_id.clone(),
        message,
    };
    let messages = request
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            serde_json::from_value::<ChatCompletionRequestMessage>(serde_json::json!({
                "role": m.role, "content": m.content
            }))
            .map_err(|e| invalid(format!("messages[{i}] (role {:?}): {e}", m.role)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if messages.is_empty() {
        return Err(invalid("no messages".into()));
    }
    let tools = match &request.tools {
        None => None,
        Some(tools) => Some(
            tools
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    serde_json::from_value::<ChatCompletionTools>(t.clone())
                        .map_err(|e| invalid(format!("tools[{i}]: {e}")))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    // `seed` is deprecated by OpenAI but still honoured by vLLM, llama.cpp, Ollama and most
    // compatible servers: it is what makes a sampled run repeatable.
    #[allow(deprecated)]
    Ok(CreateChatCompletionRequest {
        model: model.to_string(),
        messages,
        tools,
        temperature: request.temperature,
        max_completion_tokens: request.max_tokens,
        seed: request.seed,
        ..Default::default()
    })
}

fn map_error(e: OpenAIError, limit: u64) -> TargetError {
    match e {
        OpenAIError::Boxed(boxed) => match boxed.downcast::<TargetError>() {
            Ok(ours) => *ours,
            Err(other) => TargetError::Transport(other.to_string()),
        },
        OpenAIError::Reqwest(e) => {
            if chain_has_too_large(&e) {
                TargetError::TooLarge { limit }
            } else {
                transport_error(e)
            }
        }
        OpenAIError::ApiError(api) => TargetError::Status {
            status: api.status_code.as_u16(),
            retry_after: None,
            body: api.api_error.message,
        },
        OpenAIError::JSONDeserialize(e, content) => {
            let mut content = content;
            truncate_utf8(&mut content, 512);
            TargetError::Decode(format!("{e}: {content}"))
        }
        OpenAIError::StreamError(e) => TargetError::Transport(format!("stream: {e}")),
        OpenAIError::InvalidArgument(m) => TargetError::Config(m),
        other => TargetError::Transport(other.to_string()),
    }
}

fn truncate_utf8(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("response body exceeds the limit of {0} bytes")]
struct BodyTooLarge(u64);

fn chain_has_too_large(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.is::<BodyTooLarge>() {
            return true;
        }
        current = err.source();
    }
    false
}

/// An async-openai client over our reqwest client and [`BoundedService`]. `Client::build` gives
/// it our reqwest client (it builds requests with it); `with_http_service` replaces the default
/// executor and, with it, async-openai's retry layer.
fn client_over(
    http: &reqwest_013::Client,
    config: &OpenAIConfig,
    max_bytes: u64,
    tripped: Option<Arc<AtomicBool>>,
) -> Client<OpenAIConfig> {
    let service = BoundedService {
        http: http.clone(),
        max_bytes,
        tripped,
    };
    Client::build(http.clone(), config.clone()).with_http_service(service)
}

/// The HTTP service under async-openai: one attempt, non-success statuses as
/// [`TargetError::Status`] (with `Retry-After`), successful bodies cut off past `max_bytes`.
#[derive(Clone)]
struct BoundedService {
    http: reqwest_013::Client,
    max_bytes: u64,
    /// Raised when a body is cut off (per-call clients only).
    tripped: Option<Arc<AtomicBool>>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

type ServiceFuture =
    Pin<Box<dyn Future<Output = Result<reqwest_013::Response, OpenAIError>> + Send + 'static>>;

impl tower::Service<HttpRequestFactory> for BoundedService {
    type Response = reqwest_013::Response;
    type Error = OpenAIError;
    type Future = ServiceFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, factory: HttpRequestFactory) -> Self::Future {
        let http = self.http.clone();
        let max_bytes = self.max_bytes;
        let tripped = self.tripped.clone();
        Box::pin(async move {
            let mut request = factory.build().await?;
            // async-openai sends `Authorization: Bearer ` even with no key; a keyless local
            // server gets no Authorization header at all instead.
            let auth = reqwest_013::header::AUTHORIZATION;
            if request
                .headers()
                .get(&auth)
                .is_some_and(|v| v.as_bytes().trim_ascii() == b"Bearer")
            {
                request.headers_mut().remove(&auth);
            }
            let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
            if !response.status().is_success() {
                return Err(OpenAIError::Boxed(Box::new(status_error(response).await)));
            }
            if response.content_length().is_some_and(|n| n > max_bytes) {
                return Err(OpenAIError::Boxed(Box::new(TargetError::TooLarge {
                    limit: max_bytes,
                })));
            }
            let mut builder = http::Response::builder()
                .status(response.status())
                .version(response.version());
            if let Some(headers) = builder.headers_mut() {
                *headers = response.headers().clone();
            }
            let mut seen: u64 = 0;
            let limited = response.bytes_stream().map(move |chunk| {
                let chunk = chunk.map_err(BoxError::from)?;
                seen += chunk.len() as u64;
                if seen > max_bytes {
                    if let Some(flag) = &tripped {
                        flag.store(true, Ordering::SeqCst);
                    }
                    return Err(BoxError::from(BodyTooLarge(max_bytes)));
                }
                Ok(chunk)
            });
            let rebuilt = builder
                .body(reqwest_013::Body::wrap_stream(limited))
                .map_err(|e| OpenAIError::Boxed(Box::new(TargetError::Decode(e.to_string()))))?;
            Ok(reqwest_013::Response::from(rebuilt))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::ChatMessage;

    #[test]
    fn builds_messages_and_tools() {
        let request = ChatRequest {
            item_id: "i1".into(),
            messages: vec![
                ChatMessage::new("system", "be brief"),
                ChatMessage::new("user", "hi"),
            ],
            tools: Some(vec![serde_json::json!({
                "type": "function",
                "function": {"name": "f", "parameters": {"type": "object"}}
            })]),
            temperature: Some(0.0),
            max_tokens: Some(5),
            seed: Some(7),
        };
        let built = build_request("m", &request).unwrap_or_else(|e| panic!("{e}"));
        let json = serde_json::to_value(&built).unwrap_or_default();
        assert_eq!(json["messages"][1]["role"], "user");
        assert_eq!(json["tools"][0]["function"]["name"], "f");
        assert_eq!(json["seed"], 7);
        assert_eq!(json["max_completion_tokens"], 5);
    }

    #[test]
    fn unknown_role_names_the_item_and_message() {
        let request = ChatRequest {
            item_id: "i9".into(),
            messages: vec![ChatMessage::new("wizard", "hi")],
            ..Default::default()
        };
        match build_request("m", &request) {
            Err(TargetError::Request { item_id, message }) => {
                assert_eq!(item_id, "i9");
                assert!(message.contains("messages[0]"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_key_variable_is_named() {
        let mut config = OpenAiTargetConfig::new("http://127.0.0.1:9/v1", "m");
        config.api_key_env = Some("MESHOS_EVALS_TEST_NO_SUCH_KEY".into());
        match OpenAiTarget::new(config) {
            Err(TargetError::MissingEnv { var, .. }) => {
                assert_eq!(var, "MESHOS_EVALS_TEST_NO_SUCH_KEY")
            }
            other => panic!("{other:?}"),
        }
    }
}
