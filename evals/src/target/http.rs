//! An agent's own HTTP endpoint as a target: `POST url` with `{item_id, messages, tools?}` as
//! JSON, answered by `{text, tool_calls?, input_tokens?, output_tokens?, cost_usd?, model?}`.
//! Header values may reference environment variables as `${NAME}`, resolved once when the
//! target is built.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::{
    ChatRequest, Price, Target, TargetError, TargetFuture, default_max_response_bytes, expand_env,
    read_body_limited, status_error, transport_error,
};
use crate::output::{Output, ToolCall};

/// An agent's HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpTargetConfig {
    pub url: String,
    /// Extra request headers; values may contain `${ENV_VAR}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Price for the tokens the agent reports, when it reports tokens but no cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

impl HttpTargetConfig {
    pub fn new(url: impl Into<String>) -> Self {
        HttpTargetConfig {
            url: url.into(),
            headers: BTreeMap::new(),
            price: None,
            max_response_bytes: default_max_response_bytes(),
        }
    }
}

/// What the agent sends back.
#[derive(Debug, Deserialize)]
struct AgentAnswer {
    #[serde(default)]
    text: String,
    #[serde(default)]
    tool_calls: Vec<ToolCall>,
    #[serde(default)]
    input_tokens: u64,
    #[serde(default)]
    output_tokens: u64,
    #[serde(default)]
    cost_usd: Option<f64>,
    #[serde(default)]
    model: Option<String>,
}

#[derive(Serialize)]
struct AgentRequest<'a> {
    item_id: &'a str,
    messages: &'a [super::ChatMessage],
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<&'a Vec<serde_json::Value>>,
}

/// An agent's HTTP endpoint as an eval target.
#[derive(Debug, Clone)]
pub struct HttpTarget {
    http: reqwest_013::Client,
    url: reqwest_013::Url,
    headers: reqwest_013::header::HeaderMap,
    config: HttpTargetConfig,
}

impl HttpTarget {
    /// Builds the target, resolving `${VAR}` references in header values (an error names a
    /// missing variable and its header).
    pub fn new(config: HttpTargetConfig) -> Result<Self, TargetError> {
        let url = reqwest_013::Url::parse(&config.url)
            .map_err(|e| TargetError::Config(format!("url {:?}: {e}", config.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TargetError::Config(format!(
                "url must be http(s), got {:?}",
                config.url
            )));
        }
        let mut headers = reqwest_013::header::HeaderMap::new();
        for (name, value) in &config.headers {
            let field = format!("headers.{name}");
            let value = expand_env(value, &field)?;
            let name = reqwest_013::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|e| TargetError::Config(format!("{field}: {e}")))?;
            let mut value = reqwest_013::header::HeaderValue::from_str(&value)
                .map_err(|e| TargetError::Config(format!("{field}: {e}")))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        Ok(HttpTarget {
            http: super::http_client()?,
            url,
            headers,
            config,
        })
    }

    async fn answer(&self, request: &ChatRequest) -> Result<Output, TargetError> {
        let started = Instant::now();
        let body = AgentRequest {
            item_id: &request.item_id,
            messages: &request.messages,
            tools: request.tools.as_ref(),
        };
        let response = self
            .http
            .post(self.url.clone())
            .headers(self.headers.clone())
            .json(&body)
            .send()
            .await
            .map_err(transport_error)?;
        if !response.status().is_success() {
            return Err(status_error(response).await);
        }
        let bytes = read_body_limited(response, self.config.max_response_bytes).await?;
        let answer: AgentAnswer = serde_json::from_slice(&bytes)
            .map_err(|e| TargetError::Decode(format!("agent answer: {e}")))?;
        let cost_usd = answer.cost_usd.unwrap_or_else(|| {
            self.config
                .price
                .map(|p| p.cost(answer.input_tokens, answer.output_tokens))
                .unwrap_or(0.0)
        });
        Ok(Output {
            text: answer.text,
            tool_calls: answer.tool_calls,
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
            input_tokens: answer.input_tokens,
            output_tokens: answer.output_tokens,
            cost_usd,
            model: answer.model,
        })
    }
}

impl Target for HttpTarget {
    fn identity(&self) -> String {
        // Header names, not values: values may be secrets.
        let names: Vec<&str> = self.config.headers.keys().map(String::as_str).collect();
        format!("http {} headers={}", self.url, names.join(","))
    }

    fn complete<'a>(&'a self, request: &'a ChatRequest) -> TargetFuture<'a> {
        Box::pin(self.answer(request))
    }
}
