//! Parsing and the format's rules, with errors that name the file, line and field path.

use serde_json::Value;

use crate::PlaybookError;
use crate::model::{Approval, Playbook, Step, action_params};
use crate::plan::TEMPLATE_VARIABLES;

pub(crate) fn parse(file: &str, text: &str) -> Result<Playbook, PlaybookError> {
    let pb: Playbook = serde_yaml::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        // serde_yaml puts the field path first ("steps[1].approval: unknown field …").
        let msg = e.to_string();
        let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
        let (field, message) = match msg.split_once(": ") {
            Some((path, rest)) if !path.contains(' ') => (path.to_string(), rest.to_string()),
            _ => ("(document)".to_string(), msg),
        };
        PlaybookError::Invalid {
            file: file.into(),
            line,
            field,
            message,
        }
    })?;
    check(&pb).map_err(|(field, message)| PlaybookError::Invalid {
        file: file.into(),
        line: line_of(text, &field),
        field,
        message,
    })?;
    Ok(pb)
}

type Problem = (String, String);

fn check(pb: &Playbook) -> Result<(), Problem> {
    let bad = |field: &str, message: String| Err((field.to_string(), message));
    if pb.id.is_empty()
        || !pb
            .id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad(
            "id",
            format!(
                "`{}` is not a valid id; use lowercase letters, digits and `-`",
                pb.id
            ),
        );
    }
    if pb.description.trim().is_empty() {
        return bad("description", "must say what the playbook does".into());
    }
    if pb.max_attempts == 0 {
        return bad("max_attempts", "must be at least 1".into());
    }
    if pb.timeout_seconds == 0 {
        return bad("timeout_seconds", "must be at least 1".into());
    }
    if let Some(r) = pb.rate_limit
        && (r.max == 0 || r.per_seconds == 0)
    {
        return bad(
            "rate_limit",
            "`max` and `per_seconds` must be at least 1".into(),
        );
    }
    if let Some(b) = pb.blast_radius
        && !(b.max_fleet_share > 0.0 && b.max_fleet_share <= 1.0)
    {
        return bad(
            "blast_radius.max_fleet_share",
            format!(
                "{} is outside (0, 1]; give the largest share of the fleet the playbook may touch",
                b.max_fleet_share
            ),
        );
    }
    for (i, c) in pb.conditions.iter().enumerate() {
        let given = usize::from(c.trust_score_below.is_some())
            + usize::from(c.affected_agents_at_least.is_some());
        if given != 1 {
            return bad(
                &format!("conditions[{i}]"),
                "give exactly one of `trust_score_below`, `affected_agents_at_least`".into(),
            );
        }
    }
    if pb.steps.is_empty() {
        return bad("steps", "a playbook needs at least one step".into());
    }
    let mut ids: Vec<&str> = Vec::new();
    for (list, steps) in [("steps", &pb.steps), ("rollback", &pb.rollback)] {
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{list}[{i}]");
            if ids.contains(&step.id.as_str()) {
                return bad(
                    &format!("{at}.id"),
                    format!(
                        "step id `{}` is used twice; step ids must be unique",
                        step.id
                    ),
                );
            }
            ids.push(&step.id);
            check_step(&at, step)?;
            if list == "rollback" && step.approval != Approval::Auto {
                return bad(
                    &format!("{at}.approval"),
                    "rollback steps run without waiting; remove the approval".into(),
                );
            }
        }
    }
    let v = &pb.verify;
    if v.window_seconds == 0 {
        return bad("verify.window_seconds", "must be at least 1".into());
    }
    if v.trust_score_at_least.is_none() && v.metric.is_none() {
        return bad(
            "verify",
            "needs `trust_score_at_least`, `metric`, or both: an incident is resolved only by a passing check"
                .into(),
        );
    }
    if let Some(t) = v.trust_score_at_least
        && !(0.0..=100.0).contains(&t)
    {
        return bad(
            "verify.trust_score_at_least",
            format!("{t} is outside 0-100"),
        );
    }
    if let Some(m) = &v.metric {
        if !["latency", "error_rate", "violation_rate", "cost"].contains(&m.name.as_str()) {
            return bad(
                "verify.metric.name",
                format!(
                    "unknown metric `{}`; expected latency, error_rate, violation_rate or cost",
                    m.name
                ),
            );
        }
        if m.below.is_some() && m.above.is_some() {
            return bad(
                "verify.metric",
                "give at most one of `below` and `above` (neither: back to the pre-fault baseline)"
                    .into(),
            );
        }
        if m.samples == 0 || m.failure_limit == 0 {
            return bad(
                "verify.metric",
                "`samples` and `failure_limit` must be at least 1".into(),
            );
        }
    }
    Ok(())
}

fn check_step(at: &str, step: &Step) -> Result<(), Problem> {
    let bad = |field: String, message: String| Err((field, message));
    if step.id.trim().is_empty() {
        return bad(format!("{at}.id"), "empty step id".into());
    }
    if step.timeout_seconds == Some(0) {
        return bad(format!("{at}.timeout_seconds"), "must be at least 1".into());
    }
    if let Approval::Required(r) = &step.approval {
        if r.role != "operator" && r.role != "admin" {
            return bad(
                format!("{at}.approval.required.role"),
                format!(
                    "`{}` cannot approve heal actions; expected operator or admin",
                    r.role
                ),
            );
        }
        if r.expires_after_seconds == 0 {
            return bad(
                format!("{at}.approval.required.expires_after_seconds"),
                "must be at least 1".into(),
            );
        }
    }
    let (required, optional) = action_params(step.action);
    for (name, value) in &step.params {
        let field = format!("{at}.params.{name}");
        if !required.contains(&name.as_str()) && !optional.contains(&name.as_str()) {
            return bad(
                field,
                format!(
                    "`{}` has no parameter `{name}` {}",
                    step.action,
                    params_hint(required, optional)
                ),
            );
        }
        check_templates(&field, value)?;
    }
    for name in required {
        if !step.params.contains_key(*name) {
            return bad(
                format!("{at}.params"),
                format!(
                    "`{}` needs parameter `{name}` {}",
                    step.action,
                    params_hint(required, optional)
                ),
            );
        }
    }
    let p = &step.params;
    let s = |k: &str| p.get(k).and_then(Value::as_str);
    match step.action.as_str() {
        "policy_overlay" if !matches!(s("effect"), Some("deny" | "redact")) => {
            return bad(
                format!("{at}.params.effect"),
                "expected `deny` or `redact`".into(),
            );
        }
        "cap_budget" => {
            if !matches!(s("scope"), Some("agent" | "team" | "tenant")) {
                return bad(
                    format!("{at}.params.scope"),
                    "expected `agent`, `team` or `tenant`".into(),
                );
            }
            let limits = [
                "max_cost_usd_per_day",
                "max_tokens_per_day",
                "max_requests_per_minute",
            ];
            if !limits.iter().any(|k| p.contains_key(*k)) {
                return bad(
                    format!("{at}.params"),
                    format!("`cap_budget` needs at least one of {}", limits.join(", ")),
                );
            }
            for k in limits {
                let template = |v: &serde_json::Value| {
                    v.as_str()
                        .is_some_and(|s| s.trim() == "{{spend_cap_usd_per_day}}")
                };
                if let Some(v) = p.get(k)
                    && !v.as_f64().is_some_and(|x| x > 0.0)
                    && !template(v)
                {
                    return bad(
                        format!("{at}.params.{k}"),
                        "expected a positive number or `{{spend_cap_usd_per_day}}`".into(),
                    );
                }
            }
        }
        "webhook" => {
            if p.contains_key("url") == p.contains_key("url_env") {
                return bad(
                    format!("{at}.params"),
                    "give exactly one of `url` and `url_env`".into(),
                );
            }
            if let Some(v) = p.get("payload")
                && !v.is_object()
            {
                return bad(format!("{at}.params.payload"), "expected a mapping".into());
            }
        }
        _ => {}
    }
    Ok(())
}

/// `(required: a, b; optional: c)` for error messages.
fn params_hint(required: &[&str], optional: &[&str]) -> String {
    format!(
        "(required: {}; optional: {})",
        required.join(", "),
        if optional.is_empty() {
            "none".to_string()
        } else {
            optional.join(", ")
        }
    )
}

/// Every `{{name}}` in a string value must be a known variable.
fn check_templates(field: &str, value: &Value) -> Result<(), Problem> {
    match value {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let after = &rest[start + 2..];
                let Some(end) = after.find("}}") else {
                    return Err((field.into(), format!("unclosed `{{{{` in `{s}`")));
                };
                let name = after[..end].trim();
                if !TEMPLATE_VARIABLES.contains(&name) {
                    return Err((
                        field.into(),
                        format!(
                            "unknown template variable `{name}`; expected one of {}",
                            TEMPLATE_VARIABLES.join(", ")
                        ),
                    ));
                }
                rest = &after[end + 2..];
            }
            Ok(())
        }
        Value::Array(items) => items.iter().try_for_each(|v| check_templates(field, v)),
        Value::Object(map) => map.values().try_for_each(|v| check_templates(field, v)),
        _ => Ok(()),
    }
}

/// The 1-based line where a field path (`steps[1].params.agent`) is written, found by walking
/// the YAML text: each segment's key is searched for below the previous one, and `[i]` moves to
/// the i-th list item after it. A path that ends inside a flow mapping gives the mapping's line;
/// `None` when not even the first key is found.
pub(crate) fn line_of(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0usize;
    let mut min_indent = 0usize;
    let mut found = None;
    for segment in path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let indent = |l: &str| l.len() - l.trim_start().len();
        // A key not written on its own line is inside its parent's flow mapping
        // (`params: { message: … }`): the parent's line is the answer.
        let Some(at) = (from..lines.len()).find(|&i| {
            let l = lines[i];
            let t = l.trim_start().trim_start_matches("- ");
            indent(l) >= min_indent && (t.starts_with(&format!("{key}:")) || t == key)
        }) else {
            return found;
        };
        found = Some(at + 1);
        from = at + 1;
        min_indent = indent(lines[at]);
        if let Some(n) = index {
            let items: Vec<usize> = (from..lines.len())
                .take_while(|&i| {
                    lines[i].trim().is_empty()
                        || indent(lines[i]) > min_indent
                        || lines[i].trim_start().starts_with("- ")
                })
                .filter(|&i| lines[i].trim_start().starts_with("- "))
                .collect();
            let item_indent = items.first().map(|&i| indent(lines[i]))?;
            let item = *items
                .iter()
                .filter(|&&i| indent(lines[i]) == item_indent)
                .nth(n)?;
            found = Some(item + 1);
            from = item;
            min_indent = item_indent;
        }
    }
    found
}
