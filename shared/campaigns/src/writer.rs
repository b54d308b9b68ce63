//! The `Writer` port (issue: "A `Writer` port"): what writes one partner's draft from the
//! placeholder values and the campaign's brief. Two adapters: [`TemplateWriter`] renders the
//! campaign's subject and body deterministically (free; a placeholder with no value and no
//! fallback skips the partner, never reaching a recipient), and [`LlmWriter`] asks an
//! OpenAI-compatible model (CONTRACT: 3 credits a draft), from the template when there is one.
//! A writer answers the draft, or the reason the partner gets none; it never half-writes one.

use crate::placeholders::{self, Values};
use crate::App;
use futures::future::BoxFuture;
use linkcrm_providers::llm::Tone;
use linkcrm_providers::{EmailBrief, LlmClient};
use serde_json::{json, Value};

/// What a campaign asks its writer for, beyond the values.
#[derive(Clone, Debug, Default)]
pub struct Brief {
    /// The campaign's subject and body (placeholders in them).
    pub template: Option<(String, String)>,
    /// What the email is about (the keyword, the competitor, a topic).
    pub topic: String,
    pub tone: Tone,
    pub angle: Option<String>,
}

/// A draft, or why the partner gets none (`{code, message, ...}`, the per-domain result).
pub type Outcome = Result<(String, String), Value>;

pub trait Writer: Send + Sync {
    /// What one draft costs, in thousandths of a credit.
    fn cost_milli(&self) -> i64;
    fn write<'a>(&'a self, values: &'a Values, brief: &'a Brief) -> BoxFuture<'a, Outcome>;
}

/// Renders the campaign's subject and body.
pub struct TemplateWriter;

impl Writer for TemplateWriter {
    fn cost_milli(&self) -> i64 {
        0
    }

    fn write<'a>(&'a self, values: &'a Values, brief: &'a Brief) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let Some((subject, body)) = &brief.template else {
                return Err(json!({ "code": "no_template",
                    "message": "The campaign has no template, subject and body, or LLM drafting" }));
            };
            let render = |t: &str| placeholders::render(t, values).unwrap_or_else(|_| Err(vec![]));
            match (render(subject), render(body)) {
                (Ok(s), Ok(b)) => Ok((s, b)),
                (s, b) => {
                    let mut missing: Vec<String> = s.err().unwrap_or_default();
                    for m in b.err().unwrap_or_default() {
                        if !missing.contains(&m) {
                            missing.push(m);
                        }
                    }
                    let names: Vec<String> = missing.iter().map(|m| format!("{{{m}}}")).collect();
                    Err(json!({ "code": "missing_placeholder_value",
                        "message": format!("No value for {}", names.join(", ")), "placeholders": missing }))
                }
            }
        })
    }
}

/// Asks the LLM (the workspace's key, else the platform's); each answer or failure is recorded
/// as the workspace's `llm` health.
pub struct LlmWriter<'a> {
    client: LlmClient,
    owner: &'static str,
    app: &'a App,
    ws: &'a str,
}

/// CONTRACT: an LLM-written draft costs 3 credits.
pub const LLM_DRAFT_MILLI: i64 = 3000;

impl<'a> LlmWriter<'a> {
    /// The workspace's writer, or why there is none (`provider_unavailable` naming the setting).
    pub async fn for_workspace(app: &'a App, ws: &'a str) -> Result<LlmWriter<'a>, Value> {
        crate::providers::llm(app, ws)
            .await
            .map(|(client, owner)| LlmWriter { client, owner, app, ws })
            .map_err(|e| json!({ "code": e.code, "message": e.message }))
    }
}

impl Writer for LlmWriter<'_> {
    fn cost_milli(&self) -> i64 {
        LLM_DRAFT_MILLI
    }

    fn write<'a>(&'a self, values: &'a Values, brief: &'a Brief) -> BoxFuture<'a, Outcome> {
        Box::pin(async move {
            let v = |k: &str| values.0.get(k).cloned();
            let email = EmailBrief {
                topic: brief.topic.clone(),
                tone: brief.tone,
                angle: brief.angle.clone(),
                recipient_name: v("firstName"),
                recipient_site: v("domain"),
                target_post: v("targetBlogPost"),
                our_content: v("ourContent"),
                sender_name: v("senderName"),
                template: brief.template.clone(),
            };
            let written = self.client.write_email(&email).await;
            linkcrm_core::health::observe(self.app, self.ws, "llm", &written).await;
            written.map(|w| (w.subject, w.body)).map_err(|e| {
                let e = crate::providers::failed("llm", self.owner, e);
                json!({ "code": e.code, "message": e.message })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_template_writer_renders_or_says_which_value_is_missing() {
        let mut values = Values::default();
        values.set("domain", Some("blog.example"));
        let brief = Brief {
            template: Some(("For {domain}".into(), "Hi {firstName|there}, {position}".into())),
            ..Brief::default()
        };
        let w = TemplateWriter;
        assert_eq!(w.cost_milli(), 0);
        let missing = w.write(&values, &brief).await.unwrap_err();
        assert_eq!(missing["code"], "missing_placeholder_value");
        assert_eq!(missing["placeholders"], json!(["position"]));
        values.set("position", Some("Editor"));
        assert_eq!(w.write(&values, &brief).await.unwrap(), ("For blog.example".into(), "Hi there, Editor".into()));
        let none = w.write(&values, &Brief::default()).await.unwrap_err();
        assert_eq!(none["code"], "no_template");
    }
}
