//! The gateway's MCP server side: what clients see. Tools, resources and prompts of every
//! upstream, namespaced `<server>__<name>`; each call goes through [`Gateway::call_tool`].
//! Handlers only resolve the caller and translate; the work is in `gateway.rs`.

use std::sync::Arc;

use meshos_types::Principal;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsResult, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, Prompt, ReadResourceRequestParams, ReadResourceResponse, Resource,
    ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};

use crate::config::{namespaced, split_namespaced};
use crate::gateway::{Gateway, GatewayError, refusal};

#[derive(Clone)]
pub struct GatewayMcp {
    gateway: Arc<Gateway>,
    /// Set for stdio, where the token is given once at start; HTTP resolves it per request.
    fixed_principal: Option<Principal>,
}

impl GatewayMcp {
    pub fn new(gateway: Arc<Gateway>, fixed_principal: Option<Principal>) -> Self {
        GatewayMcp {
            gateway,
            fixed_principal,
        }
    }

    fn principal(&self, ctx: &RequestContext<RoleServer>) -> Result<Principal, McpError> {
        if let Some(p) = &self.fixed_principal {
            return Ok(p.clone());
        }
        ctx.extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<Principal>())
            .cloned()
            .ok_or_else(|| {
                McpError::invalid_request(
                    "unauthenticated: send Authorization: Bearer <token>",
                    None,
                )
            })
    }
}

/// The client's program as it names itself: in the request's metadata (protocol 2026-07-28)
/// or in `initialize` (earlier versions).
fn client_of(ctx: &RequestContext<RoleServer>) -> (String, String) {
    ctx.client_info()
        .map(|i| (i.name, i.version))
        .unwrap_or_else(|| ("unknown".into(), String::new()))
}

fn internal(e: impl std::fmt::Display) -> McpError {
    McpError::internal_error(e.to_string(), None)
}

impl ServerHandler for GatewayMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(Implementation::new(
            "meshos-gateway",
            env!("CARGO_PKG_VERSION"),
        ))
        .with_instructions(
            "Mesh OS gateway: the tools of several MCP servers, named <server>__<tool>. Every call \
             is checked by policy before it goes upstream and its result before it comes back; a \
             refused call is a tool error naming the policy and the decision.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let principal = self.principal(&ctx)?;
        let tools = self
            .gateway
            .list_tools(&principal)
            .await
            .map_err(internal)?;
        Ok(ListToolsResult::with_all_items(tools))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let principal = self.principal(&ctx)?;
        let (client, version) = client_of(&ctx);
        match self
            .gateway
            .call_tool(
                &principal,
                (&client, &version),
                &request.name,
                request.arguments,
            )
            .await
        {
            Ok(result) => Ok(result.into()),
            // Refusals and upstream failures are the agent's to read, as tool errors.
            Err(GatewayError::Refused(m)) => Ok(refusal(&m).into()),
            Err(GatewayError::Upstream(e)) => Ok(refusal(&e.to_string()).into()),
            Err(GatewayError::Mesh(e)) => match e {
                meshos_service::MeshError::Invalid { .. }
                | meshos_service::MeshError::Forbidden(_)
                | meshos_service::MeshError::NotFound(_)
                | meshos_service::MeshError::Busy(_) => Ok(refusal(&e.to_string()).into()),
                // Storage or an internal fault: nothing was decided for this call.
                other => Err(internal(other)),
            },
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        self.principal(&ctx)?;
        let mut resources: Vec<Resource> = Vec::new();
        for u in self.gateway.upstreams() {
            if !u.is_connected().await {
                continue;
            }
            for mut r in u.listing().await.resources {
                r.name = namespaced(u.name(), &r.name);
                resources.push(r);
            }
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        self.principal(&ctx)?;
        // URIs are the upstream's own; the first server that lists one answers for it.
        for u in self.gateway.upstreams() {
            if !u.is_connected().await {
                continue;
            }
            if u.listing()
                .await
                .resources
                .iter()
                .any(|r| r.uri == request.uri)
            {
                return u
                    .read_resource(&request.uri)
                    .await
                    .map(Into::into)
                    .map_err(internal);
            }
        }
        Err(McpError::resource_not_found(
            format!("no upstream lists the resource {:?}", request.uri),
            Some(serde_json::json!({ "uri": request.uri })),
        ))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        ctx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        self.principal(&ctx)?;
        let mut prompts: Vec<Prompt> = Vec::new();
        for u in self.gateway.upstreams() {
            if !u.is_connected().await {
                continue;
            }
            for mut p in u.listing().await.prompts {
                p.name = namespaced(u.name(), &p.name);
                prompts.push(p);
            }
        }
        Ok(ListPromptsResult::with_all_items(prompts))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        ctx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        self.principal(&ctx)?;
        let Some((server, name)) = split_namespaced(&request.name) else {
            return Err(McpError::invalid_params(
                format!(
                    "unknown prompt {:?}; prompts are named <server>__<prompt>",
                    request.name
                ),
                None,
            ));
        };
        let Some(u) = self.gateway.upstreams().iter().find(|u| u.name() == server) else {
            return Err(McpError::invalid_params(
                format!("no upstream named {server:?}"),
                None,
            ));
        };
        u.get_prompt(name, request.arguments)
            .await
            .map(Into::into)
            .map_err(internal)
    }
}
