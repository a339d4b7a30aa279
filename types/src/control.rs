//! The healer's controls: what a remediation sets on the mesh until it is released.
//!
//! One vocabulary for the three places a control appears: the stored row (a kind string, a
//! subject and a JSON spec — the on-disk format, which [`Control::from_stored`] reads and
//! [`Control::kind`], [`Control::subject`] and [`Control::spec`] write), the names policies see
//! in `context.heal_controls` ([`Control::policy_name`]), and whether a control holds one
//! request ([`Control::applies_to`], [`heal_control_names`]). The spec of a stored control may
//! also carry `canary_share` (the release's canary, see the healer); that is release state, not
//! part of the control, so parsing ignores it.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// The spec key holding a control's canary share while it is being released.
pub const CANARY_SHARE_KEY: &str = "canary_share";

/// Which control a row is: the `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ControlKind {
    Quarantine,
    ToolRevoked,
    PolicyOverlay,
    ModelPin,
    RegionAvoid,
    BudgetCap,
}

impl ControlKind {
    pub const ALL: [ControlKind; 6] = [
        ControlKind::Quarantine,
        ControlKind::ToolRevoked,
        ControlKind::PolicyOverlay,
        ControlKind::ModelPin,
        ControlKind::RegionAvoid,
        ControlKind::BudgetCap,
    ];

    /// The stored kind string.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlKind::Quarantine => "agent_quarantine",
            ControlKind::ToolRevoked => "tool_revoked",
            ControlKind::PolicyOverlay => "policy_overlay",
            ControlKind::ModelPin => "model_pin",
            ControlKind::RegionAvoid => "region_avoid",
            ControlKind::BudgetCap => "budget_cap",
        }
    }
}

impl fmt::Display for ControlKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ControlKind {
    type Err = ControlError;
    fn from_str(s: &str) -> Result<Self, ControlError> {
        ControlKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ControlError::UnknownKind(s.to_string()))
    }
}

/// Why a stored control (or a playbook step's parameters) is not a control.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error(
        "unknown control kind {0:?}; expected one of agent_quarantine, tool_revoked, \
         policy_overlay, model_pin, region_avoid, budget_cap"
    )]
    UnknownKind(String),
    #[error("{kind} control: the spec is not a JSON object")]
    NotAnObject { kind: ControlKind },
    #[error("{kind} control: `{field}` is missing")]
    Missing {
        kind: ControlKind,
        field: &'static str,
    },
    #[error("{kind} control: `{field}` {problem}")]
    Invalid {
        kind: ControlKind,
        field: &'static str,
        problem: String,
    },
}

/// What a policy overlay does to the actions it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OverlayEffect {
    Deny,
    Redact,
}

impl OverlayEffect {
    pub fn as_str(self) -> &'static str {
        match self {
            OverlayEffect::Deny => "deny",
            OverlayEffect::Redact => "redact",
        }
    }
}

/// Whose spend a budget cap limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CapScope {
    Agent,
    Team,
    Tenant,
}

impl CapScope {
    pub fn as_str(self) -> &'static str {
        match self {
            CapScope::Agent => "agent",
            CapScope::Team => "team",
            CapScope::Tenant => "tenant",
        }
    }
}

/// The limits of a budget cap; each absent one leaves the bundle's limit alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BudgetLimits {
    pub max_cost_usd_per_day: Option<f64>,
    pub max_tokens_per_day: Option<f64>,
    pub max_requests_per_minute: Option<f64>,
}

/// A control the healer sets on the mesh.
#[derive(Debug, Clone, PartialEq)]
pub enum Control {
    /// Kill switch: every policy check of the agent is held.
    Quarantine { agent: String },
    /// Calls with the tool are held, by one agent or (`agent: None`, stored as `*`) by all.
    ToolRevoked { agent: Option<String>, tool: String },
    /// A deny or redact overlay on the actions matching `action` (`*`, `prefix.*` or exact),
    /// for one agent or (`None`) all.
    PolicyOverlay {
        agent: Option<String>,
        action: String,
        effect: OverlayEffect,
        /// Entity kinds a redact overlay names, as the playbook gave them.
        entities: Option<Vec<String>>,
    },
    /// A model version treated as not approved; `to` names the replacement policy.
    ModelPin { model: String, to: Option<String> },
    /// The carbon router leaves the region out (optionally only for one provider).
    RegionAvoid {
        region: String,
        provider: Option<String>,
    },
    /// Lower limits than the bundle's for an agent, a team or the tenant (`subject` `*`).
    BudgetCap {
        scope: CapScope,
        subject: String,
        limits: BudgetLimits,
    },
}

/// The request a control may hold, as `policy_check` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlRequest<'a> {
    pub agent: &'a str,
    pub action: &'a str,
    pub tool: Option<&'a str>,
    pub model: Option<&'a str>,
}

/// An agent field: `*` and absent both mean every agent.
fn any_agent(a: Option<&str>) -> Option<String> {
    a.filter(|a| *a != "*").map(str::to_string)
}

/// `*` matches everything, `prefix.*` an action under the prefix, anything else itself.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => action.starts_with(prefix),
        None => pattern == action,
    }
}

/// Reads the fields of one kind of spec, naming the field that is wrong.
struct Fields<'a> {
    kind: ControlKind,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(kind: ControlKind, spec: &'a Value) -> Result<Self, ControlError> {
        spec.as_object()
            .map(|map| Fields { kind, map })
            .ok_or(ControlError::NotAnObject { kind })
    }

    /// An optional string; JSON `null` counts as absent.
    fn text(&self, field: &'static str) -> Result<Option<&'a str>, ControlError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.invalid(field, format!("is {other}, expected a string"))),
        }
    }

    fn required(&self, field: &'static str) -> Result<&'a str, ControlError> {
        self.text(field)?.ok_or(ControlError::Missing {
            kind: self.kind,
            field,
        })
    }

    /// An optional limit: a number ≥ 0.
    fn limit(&self, field: &'static str) -> Result<Option<f64>, ControlError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => match v.as_f64() {
                Some(x) if x >= 0.0 => Ok(Some(x)),
                _ => Err(self.invalid(field, format!("is {v}, expected a number ≥ 0"))),
            },
        }
    }

    fn strings(&self, field: &'static str) -> Result<Option<Vec<String>>, ControlError> {
        match self.map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| {
                    i.as_str().map(str::to_string).ok_or_else(|| {
                        self.invalid(field, format!("holds {i}, expected strings only"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(self.invalid(field, format!("is {other}, expected a list"))),
        }
    }

    fn invalid(&self, field: &'static str, problem: String) -> ControlError {
        ControlError::Invalid {
            kind: self.kind,
            field,
            problem,
        }
    }
}

/// A limit as JSON: whole numbers stay integers, as a playbook writes them.
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

impl Control {
    /// A control from a playbook step's resolved parameters (which become its stored spec).
    pub fn from_params(kind: ControlKind, params: &Value) -> Result<Control, ControlError> {
        Self::from_spec_fields(&Fields::new(kind, params)?)
    }

    /// A stored control. Quarantines and avoided regions are read by their subject (the agent,
    /// the region), as every reader always has; the other kinds by their spec.
    pub fn from_stored(kind: &str, subject: &str, spec: &Value) -> Result<Control, ControlError> {
        let kind: ControlKind = kind.parse()?;
        let f = Fields::new(kind, spec)?;
        Ok(match kind {
            ControlKind::Quarantine => Control::Quarantine {
                agent: subject.to_string(),
            },
            ControlKind::RegionAvoid => Control::RegionAvoid {
                region: subject.to_string(),
                provider: f.text("provider")?.map(str::to_string),
            },
            _ => Self::from_spec_fields(&f)?,
        })
    }

    fn from_spec_fields(f: &Fields<'_>) -> Result<Control, ControlError> {
        Ok(match f.kind {
            ControlKind::Quarantine => Control::Quarantine {
                agent: f.required("agent")?.to_string(),
            },
            ControlKind::RegionAvoid => Control::RegionAvoid {
                region: f.required("region")?.to_string(),
                provider: f.text("provider")?.map(str::to_string),
            },
            ControlKind::ToolRevoked => Control::ToolRevoked {
                agent: any_agent(f.text("agent")?),
                tool: f.required("tool")?.to_string(),
            },
            ControlKind::PolicyOverlay => Control::PolicyOverlay {
                agent: any_agent(f.text("agent")?),
                action: f.required("action")?.to_string(),
                effect: match f.required("effect")? {
                    "deny" => OverlayEffect::Deny,
                    "redact" => OverlayEffect::Redact,
                    other => {
                        return Err(
                            f.invalid("effect", format!("is {other:?}, expected deny or redact"))
                        );
                    }
                },
                entities: f.strings("entities")?,
            },
            ControlKind::ModelPin => Control::ModelPin {
                model: f.required("model")?.to_string(),
                to: f.text("to")?.map(str::to_string),
            },
            ControlKind::BudgetCap => {
                let scope = match f.required("scope")? {
                    "agent" => CapScope::Agent,
                    "team" => CapScope::Team,
                    "tenant" => CapScope::Tenant,
                    other => {
                        return Err(f.invalid(
                            "scope",
                            format!("is {other:?}, expected agent, team or tenant"),
                        ));
                    }
                };
                // A tenant cap needs no subject: there is one tenant.
                let subject = match (scope, f.text("subject")?) {
                    (_, Some(s)) => s.to_string(),
                    (CapScope::Tenant, None) => "*".to_string(),
                    (_, None) => {
                        return Err(ControlError::Missing {
                            kind: f.kind,
                            field: "subject",
                        });
                    }
                };
                Control::BudgetCap {
                    scope,
                    subject,
                    limits: BudgetLimits {
                        max_cost_usd_per_day: f.limit("max_cost_usd_per_day")?,
                        max_tokens_per_day: f.limit("max_tokens_per_day")?,
                        max_requests_per_minute: f.limit("max_requests_per_minute")?,
                    },
                }
            }
        })
    }

    pub fn kind(&self) -> ControlKind {
        match self {
            Control::Quarantine { .. } => ControlKind::Quarantine,
            Control::ToolRevoked { .. } => ControlKind::ToolRevoked,
            Control::PolicyOverlay { .. } => ControlKind::PolicyOverlay,
            Control::ModelPin { .. } => ControlKind::ModelPin,
            Control::RegionAvoid { .. } => ControlKind::RegionAvoid,
            Control::BudgetCap { .. } => ControlKind::BudgetCap,
        }
    }

    /// The stored subject: with the kind and the incident, what makes a control unique.
    pub fn subject(&self) -> String {
        let all = |a: &Option<String>| a.clone().unwrap_or_else(|| "*".to_string());
        match self {
            Control::Quarantine { agent } => agent.clone(),
            Control::ToolRevoked { agent, tool } => format!("{}/{tool}", all(agent)),
            Control::PolicyOverlay {
                agent,
                action,
                effect,
                ..
            } => format!("{}/{action}/{}", all(agent), effect.as_str()),
            Control::ModelPin { model, .. } => model.clone(),
            Control::RegionAvoid { region, .. } => region.clone(),
            Control::BudgetCap { scope, subject, .. } => {
                format!("{}:{subject}", scope.as_str())
            }
        }
    }

    /// The stored spec: the playbook step's parameters.
    pub fn spec(&self) -> Value {
        let mut m = Map::new();
        let mut put = |k: &str, v: Value| {
            m.insert(k.to_string(), v);
        };
        let agent = |a: &Option<String>| Value::String(a.clone().unwrap_or_else(|| "*".into()));
        match self {
            Control::Quarantine { agent } => put("agent", agent.as_str().into()),
            Control::ToolRevoked { agent: a, tool } => {
                put("agent", agent(a));
                put("tool", tool.as_str().into());
            }
            Control::PolicyOverlay {
                agent: a,
                action,
                effect,
                entities,
            } => {
                put("agent", agent(a));
                put("action", action.as_str().into());
                put("effect", effect.as_str().into());
                if let Some(e) = entities {
                    put("entities", e.clone().into());
                }
            }
            Control::ModelPin { model, to } => {
                put("model", model.as_str().into());
                if let Some(t) = to {
                    put("to", t.as_str().into());
                }
            }
            Control::RegionAvoid { region, provider } => {
                put("region", region.as_str().into());
                if let Some(p) = provider {
                    put("provider", p.as_str().into());
                }
            }
            Control::BudgetCap {
                scope,
                subject,
                limits,
            } => {
                put("scope", scope.as_str().into());
                put("subject", subject.as_str().into());
                for (k, v) in [
                    ("max_cost_usd_per_day", limits.max_cost_usd_per_day),
                    ("max_tokens_per_day", limits.max_tokens_per_day),
                    ("max_requests_per_minute", limits.max_requests_per_minute),
                ] {
                    if let Some(v) = v {
                        put(k, number(v));
                    }
                }
            }
        }
        Value::Object(m)
    }

    /// The name policies see in `context.heal_controls` when the control holds a request.
    /// Avoided regions reach routing and budget caps reach the budget lines instead.
    pub fn policy_name(&self) -> Option<&'static str> {
        match self {
            Control::Quarantine { .. } => Some("quarantined"),
            Control::ToolRevoked { .. } => Some("tool_revoked"),
            Control::PolicyOverlay {
                effect: OverlayEffect::Deny,
                ..
            } => Some("overlay_deny"),
            Control::PolicyOverlay {
                effect: OverlayEffect::Redact,
                ..
            } => Some("overlay_redact"),
            Control::ModelPin { .. } => Some("model_pinned"),
            Control::RegionAvoid { .. } | Control::BudgetCap { .. } => None,
        }
    }

    /// Whether the control holds a policy check: a quarantine of its agent, a revoked tool it
    /// asks for, an overlay whose action pattern matches, a pin of its model.
    pub fn applies_to(&self, req: &ControlRequest<'_>) -> bool {
        let agent_matches = |a: &Option<String>| a.as_deref().is_none_or(|a| a == req.agent);
        match self {
            Control::Quarantine { agent } => agent == req.agent,
            Control::ToolRevoked { agent, tool } => {
                agent_matches(agent) && req.tool == Some(tool.as_str())
            }
            Control::PolicyOverlay { agent, action, .. } => {
                agent_matches(agent) && action_matches(action, req.action)
            }
            Control::ModelPin { model, .. } => req.model == Some(model.as_str()),
            Control::RegionAvoid { .. } | Control::BudgetCap { .. } => false,
        }
    }

    /// The region routing must leave out, for an avoided region.
    pub fn avoided_region(&self) -> Option<&str> {
        match self {
            Control::RegionAvoid { region, .. } => Some(region),
            _ => None,
        }
    }

    /// For a budget cap that applies to `agent` (a cap on the agent, on its team, or on the
    /// whole tenant): the scope, the scope id its budget line is counted under, and the limits.
    pub fn cap_for(
        &self,
        tenant: &str,
        agent: &str,
        team: Option<&str>,
    ) -> Option<(CapScope, String, &BudgetLimits)> {
        let Control::BudgetCap {
            scope,
            subject,
            limits,
        } = self
        else {
            return None;
        };
        let applies = match scope {
            CapScope::Agent => subject == agent,
            CapScope::Team => team == Some(subject.as_str()),
            CapScope::Tenant => subject == tenant || subject == "*",
        };
        let scope_id = match scope {
            CapScope::Tenant => tenant.to_string(),
            _ => subject.clone(),
        };
        applies.then_some((*scope, scope_id, limits))
    }
}

/// The names (as Cedar sees them in `context.heal_controls`) of the controls that hold a
/// request, each once, in the order the controls come.
pub fn heal_control_names<'a>(
    controls: impl IntoIterator<Item = &'a Control>,
    req: &ControlRequest<'_>,
) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for c in controls {
        if let Some(name) = c.policy_name().filter(|_| c.applies_to(req))
            && !out.contains(&name)
        {
            out.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stored(kind: &str, subject: &str, spec: Value) -> Control {
        Control::from_stored(kind, subject, &spec).unwrap()
    }

    /// Every shipped playbook's control step, as stored today, reads back and writes the same
    /// kind, subject and spec.
    #[test]
    fn the_stored_form_round_trips() {
        let rows = [
            ("agent_quarantine", "agent-3", json!({"agent": "agent-3"})),
            ("tool_revoked", "*/kb", json!({"agent": "*", "tool": "kb"})),
            (
                "policy_overlay",
                "*/linkhound.*/deny",
                json!({"agent": "*", "action": "linkhound.*", "effect": "deny"}),
            ),
            (
                "policy_overlay",
                "agent-3/*/redact",
                json!({"agent": "agent-3", "action": "*", "effect": "redact",
                       "entities": ["EMAIL", "PHONE"]}),
            ),
            (
                "model_pin",
                "gpt-new",
                json!({"model": "gpt-new", "to": "previous-approved"}),
            ),
            ("region_avoid", "eu", json!({"region": "eu"})),
            (
                "budget_cap",
                "agent:ops-bot",
                json!({"scope": "agent", "subject": "ops-bot",
                       "max_cost_usd_per_day": 1.57, "max_requests_per_minute": 30}),
            ),
        ];
        for (kind, subject, spec) in rows {
            let c = stored(kind, subject, spec.clone());
            assert_eq!(c.kind().as_str(), kind);
            assert_eq!(c.subject(), subject);
            assert_eq!(c.spec(), spec);
            assert_eq!(Control::from_params(c.kind(), &spec).unwrap(), c);
        }
    }

    #[test]
    fn a_canary_share_is_release_state_not_part_of_the_control() {
        let c = stored(
            "tool_revoked",
            "*/kb",
            json!({"agent": "*", "tool": "kb", "canary_share": 0.25}),
        );
        assert_eq!(c.spec(), json!({"agent": "*", "tool": "kb"}));
    }

    #[test]
    fn errors_name_the_kind_and_the_field() {
        let err = Control::from_stored("tool_revoked", "*/kb", &json!({"agent": "*"})).unwrap_err();
        assert_eq!(err.to_string(), "tool_revoked control: `tool` is missing");
        let err = Control::from_stored("policy_overlay", "s", &json!({"action": "*", "effect": 3}))
            .unwrap_err();
        assert!(err.to_string().contains("`effect` is 3"), "{err}");
        let err = Control::from_stored(
            "budget_cap",
            "s",
            &json!({"scope": "agent", "subject": "a",
            "max_tokens_per_day": -1}),
        )
        .unwrap_err();
        assert!(err.to_string().contains("max_tokens_per_day"), "{err}");
        assert!(matches!(
            Control::from_stored("freeze", "s", &json!({})),
            Err(ControlError::UnknownKind(k)) if k == "freeze"
        ));
        assert!(matches!(
            Control::from_stored("model_pin", "m", &json!("m")),
            Err(ControlError::NotAnObject { .. })
        ));
    }

    #[test]
    fn overlays_match_agents_and_action_patterns() {
        let controls = [
            stored(
                "policy_overlay",
                "s",
                json!({"agent": "*", "action": "crm.*", "effect": "deny"}),
            ),
            stored(
                "policy_overlay",
                "s",
                json!({"agent": "bot", "action": "*", "effect": "redact"}),
            ),
            stored("tool_revoked", "s", json!({"agent": "*", "tool": "kb"})),
            stored("model_pin", "s", json!({"model": "gpt-4o"})),
            stored("agent_quarantine", "other", json!({})),
        ];
        let mut req = ControlRequest {
            agent: "bot",
            action: "crm.update",
            tool: None,
            model: None,
        };
        assert_eq!(
            heal_control_names(&controls, &req),
            ["overlay_deny", "overlay_redact"]
        );
        req.agent = "other";
        assert_eq!(
            heal_control_names(&controls, &req),
            ["overlay_deny", "quarantined"]
        );
        req.action = "email.send";
        req.tool = Some("kb");
        req.model = Some("gpt-4o");
        assert_eq!(
            heal_control_names(&controls, &req),
            ["tool_revoked", "model_pinned", "quarantined"]
        );
    }

    #[test]
    fn caps_apply_to_their_agent_team_or_tenant() {
        let cap = |scope: &str, subject: Option<&str>| {
            let mut spec = json!({"scope": scope, "max_tokens_per_day": 100});
            if let Some(s) = subject {
                spec["subject"] = json!(s);
            }
            Control::from_params(ControlKind::BudgetCap, &spec).unwrap()
        };
        let (scope, id, limits) = cap("agent", Some("a1"))
            .cap_for("acme", "a1", None)
            .map(|(s, id, l)| (s, id, l.clone()))
            .unwrap();
        assert_eq!((scope, id.as_str()), (CapScope::Agent, "a1"));
        assert_eq!(limits.max_tokens_per_day, Some(100.0));
        assert!(
            cap("agent", Some("a1"))
                .cap_for("acme", "a2", None)
                .is_none()
        );
        assert!(
            cap("team", Some("ops"))
                .cap_for("acme", "a2", Some("ops"))
                .is_some()
        );
        assert!(
            cap("team", Some("ops"))
                .cap_for("acme", "a2", None)
                .is_none()
        );
        let (_, id, _) = cap("tenant", None).cap_for("acme", "a2", None).unwrap();
        assert_eq!(id, "acme");
        let no_subject = Control::from_params(ControlKind::BudgetCap, &json!({"scope": "team"}));
        assert!(matches!(
            no_subject,
            Err(ControlError::Missing {
                field: "subject",
                ..
            })
        ));
    }
}
