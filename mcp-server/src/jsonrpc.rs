//! The one check of an incoming MCP message, for both transports (`POST /mcp` in `http.rs`, each
//! line of `meshos mcp` in `stdio.rs`): input that is not a JSON-RPC 2.0 message is refused with
//! the error JSON-RPC 2.0 specifies, instead of what rmcp does with it (over stdio: drops a line
//! that is not JSON without a word, answers a malformed message with a -32600 that has no `id` at
//! all; over HTTP: a plain-text 415).
//!
//! - not JSON → -32700 parse error, `"id": null`;
//! - JSON that is not one JSON-RPC message (an array, a scalar, no `"jsonrpc": "2.0"`, a method
//!   that is not a string, `params` that is not structured, an `id` that is not a string or an
//!   integer, neither a method nor a result or error) → -32600 invalid request, with the message's
//!   `id` when it has a readable one, else `"id": null`;
//! - a request for an MCP method whose params do not fit it (tools, prompts, resources,
//!   completion) → -32602 invalid params with its id (rmcp would read it as an unknown custom
//!   method and answer -32601; the same notification it would ignore).
//!
//! A well-formed notification whose params do not fit, and a response of any shape, are never
//! answered on stdio (JSON-RPC forbids answering the first; answering the second is how two peers
//! can bounce errors at each other forever): such a rejection has `answerable: false`, and the
//! HTTP transport answers it with a 400 whose error has `"id": null`.

use rmcp::model::{
    CallToolRequestMethod, CancelledNotificationMethod, ClientJsonRpcMessage, ClientNotification,
    ClientRequest, CompleteRequestMethod, ConstString, ErrorCode, GetPromptRequestMethod,
    JsonRpcMessage, ListPromptsRequestMethod, ListResourceTemplatesRequestMethod,
    ListResourcesRequestMethod, ListToolsRequestMethod, NumberOrString, ProgressNotificationMethod,
    ReadResourceRequestMethod, RequestId,
};
use serde::Deserialize as _;
use serde_json::Value;

/// Why an incoming message was refused, and the JSON-RPC error that says so.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub code: ErrorCode,
    pub message: String,
    /// The id of the refused request, when it had one that could be read.
    pub id: Option<RequestId>,
    /// False for a notification or a response: they get no JSON-RPC reply.
    pub answerable: bool,
}

impl Rejection {
    fn parse_error(message: String) -> Self {
        Self {
            code: ErrorCode::PARSE_ERROR,
            message: format!("Parse error: {message}"),
            id: None,
            answerable: true,
        }
    }

    pub fn invalid_request(id: Option<RequestId>, message: impl std::fmt::Display) -> Self {
        Self {
            code: ErrorCode::INVALID_REQUEST,
            message: format!("Invalid request: {message}"),
            id,
            answerable: true,
        }
    }

    fn unanswerable(mut self) -> Self {
        self.id = None;
        self.answerable = false;
        self
    }

    /// The JSON-RPC error response: `"id"` is the request's, or `null` when it could not be read
    /// (JSON-RPC 2.0 §5; rmcp's own error type would leave the member out).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "jsonrpc": "2.0",
            "id": self.id,
            "error": { "code": self.code.0, "message": self.message },
        })
    }
}

/// The MCP requests and notifications a client sends in every protocol version we serve, which
/// rmcp reads into typed messages. Not the lifecycle methods (`initialize`, `ping`,
/// `logging/setLevel`, `resources/subscribe`, ...): 2026-07-28 removed them, and a stateless request
/// for one must get rmcp's -32601, whatever its params.
fn is_mcp_method(method: &str) -> bool {
    [
        CompleteRequestMethod::VALUE,
        GetPromptRequestMethod::VALUE,
        ListPromptsRequestMethod::VALUE,
        ListResourcesRequestMethod::VALUE,
        ListResourceTemplatesRequestMethod::VALUE,
        ReadResourceRequestMethod::VALUE,
        CallToolRequestMethod::VALUE,
        ListToolsRequestMethod::VALUE,
        CancelledNotificationMethod::VALUE,
        ProgressNotificationMethod::VALUE,
    ]
    .contains(&method)
}

/// A request id as MCP defines it: a string or an integer (never null).
fn readable_id(id: &Value) -> Option<RequestId> {
    match id {
        Value::String(s) => Some(NumberOrString::String(s.as_str().into())),
        Value::Number(n) => n.as_i64().map(NumberOrString::Number),
        _ => None,
    }
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads one incoming message (one stdio line, one POST body) as rmcp does, or says why it is
/// not a JSON-RPC message, with the error to answer.
pub fn parse_client_message(input: &[u8]) -> Result<ClientJsonRpcMessage, Rejection> {
    // RFC 8259 §8.1 lets a parser ignore a leading byte order mark; rmcp's stdio reader does.
    let input = input.strip_prefix(UTF8_BOM).unwrap_or(input);
    let value: Value =
        serde_json::from_slice(input).map_err(|e| Rejection::parse_error(e.to_string()))?;
    let Value::Object(object) = &value else {
        let what = if value.is_array() {
            "a batch (JSON array); MCP takes one JSON-RPC message at a time"
        } else {
            "a JSON-RPC message is a JSON object"
        };
        return Err(Rejection::invalid_request(None, what));
    };
    let id = object.get("id").and_then(readable_id);
    if object.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(Rejection::invalid_request(
            id,
            r#"the "jsonrpc" member must be "2.0""#,
        ));
    }
    let has_result = object.contains_key("result");
    let has_error = object.contains_key("error");
    let Some(method) = object.get("method") else {
        if has_result || has_error {
            // A response to one of our requests: rmcp correlates it (or ignores it); never
            // answered, whatever its shape.
            return ClientJsonRpcMessage::deserialize(value).map_err(|e| {
                Rejection::invalid_request(id, format!("malformed response: {e}")).unanswerable()
            });
        }
        return Err(Rejection::invalid_request(
            id,
            "neither a method (request or notification) nor a result or error (response)",
        ));
    };
    // Up to the params, a malformed message is answered even without an id (JSON-RPC 2.0 §7
    // answers `{"jsonrpc": "2.0", "method": 1}` with -32600 and `"id": null`): it is not a
    // notification, it is not a valid message at all.
    let Some(method) = method.as_str().map(str::to_owned) else {
        return Err(Rejection::invalid_request(
            id,
            r#""method" must be a string"#,
        ));
    };
    if has_result || has_error {
        return Err(Rejection::invalid_request(
            id,
            "a message has a method or a result/error, not both",
        ));
    }
    let is_request = object.contains_key("id");
    if is_request && id.is_none() {
        return Err(Rejection::invalid_request(
            None,
            r#""id" must be a string or an integer"#,
        ));
    }
    if object
        .get("params")
        .is_some_and(|p| !(p.is_object() || p.is_array() || p.is_null()))
    {
        return Err(Rejection::invalid_request(
            id,
            r#""params" must be an object"#,
        ));
    }
    // A well-formed notification whose params do not fit is still a notification: not answered.
    let invalid_params = |message: String| {
        let rejection = Rejection {
            code: ErrorCode::INVALID_PARAMS,
            message,
            id: id.clone(),
            answerable: true,
        };
        if is_request {
            rejection
        } else {
            rejection.unanswerable()
        }
    };
    match ClientJsonRpcMessage::deserialize(value) {
        Ok(message) if misread(&message) => Err(invalid_params(format!(
            "Invalid params: the params of {method} do not match its schema"
        ))),
        Ok(message) => Ok(message),
        Err(e) => Err(invalid_params(format!("Invalid params for {method}: {e}"))),
    }
}

/// rmcp reads an MCP method whose params do not fit it as a custom method (which it would answer
/// with -32601, or ignore).
fn misread(message: &ClientJsonRpcMessage) -> bool {
    match message {
        JsonRpcMessage::Request(r) => matches!(&r.request,
            ClientRequest::CustomRequest(c) if is_mcp_method(&c.method)),
        JsonRpcMessage::Notification(n) => matches!(&n.notification,
            ClientNotification::CustomNotification(c) if is_mcp_method(&c.method)),
        _ => false,
    }
}

#[cfg(test)]
#[path = "jsonrpc_tests.rs"]
mod tests;
