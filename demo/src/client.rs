//! The demo's HTTP client: bearer-authenticated JSON over the server's REST interface.

use serde_json::Value;

pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Result<Api, String> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Api {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    async fn send(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, String> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| format!("{what}: {e}"))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|e| format!("{what}: the reply is not JSON: {e}"))?;
        if !status.is_success() {
            return Err(format!(
                "{what}: HTTP {status}: {}",
                body.get("error").and_then(Value::as_str).unwrap_or("")
            ));
        }
        Ok(body)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(&url).json(body), &format!("POST {path}"))
            .await
    }

    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.base);
        self.send(self.http.get(&url), &format!("GET {path}")).await
    }
}
