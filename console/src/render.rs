//! Templates compiled into the binary (minijinja, HTML autoescaped) and the static files the
//! pages load: nothing is read from disk or fetched from elsewhere at run time.

use minijinja::Environment;
use serde::Serialize;

use crate::ConsoleError;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("fleet.html", include_str!("../templates/fleet.html")),
    ("agent.html", include_str!("../templates/agent.html")),
    (
        "incidents.html",
        include_str!("../templates/incidents.html"),
    ),
    ("incident.html", include_str!("../templates/incident.html")),
    (
        "approvals.html",
        include_str!("../templates/approvals.html"),
    ),
    ("evidence.html", include_str!("../templates/evidence.html")),
    ("record.html", include_str!("../templates/record.html")),
    ("policy.html", include_str!("../templates/policy.html")),
];

/// The static files under `/ui/static/`: name, content type, bytes.
pub const STATIC_FILES: &[(&str, &str, &[u8])] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/app.js"),
    ),
    (
        "verify.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/verify.js"),
    ),
];

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Parses every template once, at start-up.
    pub fn load() -> Result<Templates, ConsoleError> {
        let mut env = Environment::new();
        // Every page is HTML, whatever its name: escape everything a template prints unless
        // it is explicitly marked safe (server-made SVG only).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .map_err(|e| ConsoleError::Template {
                    name: (*name).to_string(),
                    message: e.to_string(),
                })?;
        }
        Ok(Templates { env })
    }

    /// Renders a page.
    pub fn render<S: Serialize>(&self, name: &str, context: S) -> Result<String, ConsoleError> {
        let fail = |e: minijinja::Error| ConsoleError::Template {
            name: name.to_string(),
            message: format!("{e:#}"),
        };
        self.env
            .get_template(name)
            .map_err(fail)?
            .render(minijinja::Value::from(minijinja::value::Serde(&context)))
            .map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_text_is_escaped() {
        let t = Templates::load().expect("templates");
        let html = t
            .render(
                "error.html",
                serde_json::json!({
                    "status": 400, "message": "<script>alert(1)</script>", "title": "x",
                    "user": null,
                }),
            )
            .expect("render");
        assert!(html.contains("&lt;script&gt;alert(1)"), "{html}");
        assert!(!html.contains("<script>alert(1)"));
    }
}
