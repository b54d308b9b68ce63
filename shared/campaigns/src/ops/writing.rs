//! `link_building.emails.*`: the writing operations of seed 003, natively: generate an email on a
//! topic (optionally from a template), personalise one for a lead, suggest subject lines, write a
//! follow-up. They need an LLM (the platform's `LINKCRM_LLM_*` or the workspace's own key); without
//! one they answer 503 `provider_unavailable` naming the setting, never a canned text. Credits
//! (CONTRACT): generate, personalize and follow-up 3 each, subject suggestions 1, charged only
//! for an answer the model gave and we accepted (an LLM failure costs nothing and writes nothing).

use crate::catalogue::{Effect, Family, Operation, Reply, WorkspaceRule};
use crate::context::Ctx;
use crate::error::{ApiError, ApiResult};
use axum::http::StatusCode;
use linkcrm_crm::records::str_of;
use linkcrm_providers::llm::Tone as LlmTone;
use linkcrm_providers::{EmailBrief, LlmClient, WrittenEmail};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::future::Future;

const TAG: &str = "Writing";
const EMAIL_MILLI: i64 = 3000;
const SUBJECTS_MILLI: i64 = 1000;

/// CONTRACT tones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tone {
    #[default]
    Professional,
    Friendly,
    Casual,
    Formal,
}

impl From<Tone> for LlmTone {
    fn from(t: Tone) -> LlmTone {
        match t {
            Tone::Professional => LlmTone::Professional,
            Tone::Friendly => LlmTone::Friendly,
            Tone::Casual => LlmTone::Casual,
            Tone::Formal => LlmTone::Formal,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Email {
    pub subject: String,
    pub body: String,
    pub credits_charged: f64,
}

/// Checks the balance, asks the model, and charges `cost` for an accepted answer, committing the
/// answer with the charge (a retry with the same Idempotency-Key gets it back, not a new one).
async fn write<R, T, F, Fut>(
    ctx: &Ctx,
    skill: &str,
    cost: i64,
    call: F,
    answer: impl FnOnce(T) -> R,
) -> ApiResult<Reply<R>>
where
    R: Serialize,
    F: FnOnce(LlmClient) -> Fut,
    Fut: Future<Output = Result<T, linkcrm_providers::ProviderError>>,
{
    let ws = ctx.workspace().to_owned();
    let workspace = linkcrm_core::workspace::from_record(ctx.workspace_record())?;
    let pool = linkcrm_core::workspace::pool_of(&workspace);
    let (client, owner) = crate::providers::llm(&ctx.app, &ws).await?;
    if !linkcrm_core::credits::covers(&ctx.app.store, &pool, cost).await? {
        return Err(linkcrm_core::credits::insufficient(&ctx.app.store, &pool, skill, cost).await);
    }
    let written = call(client).await;
    linkcrm_core::health::observe(&ctx.app, &ws, "llm", &written).await;
    let written = written.map_err(|e| crate::providers::failed("llm", owner, e))?;
    let reply = Reply::ok(answer(written));
    let reference = linkcrm_core::context::current_request_id();
    match ctx.commit(linkcrm_core::credits::spend(&pool, &ws, skill, &reference, cost), &reply).await {
        Ok(()) => Ok(reply),
        Err(linkcrm_storage::StoreError::ConditionFailed { .. }) => {
            Err(linkcrm_core::credits::insufficient(&ctx.app.store, &pool, skill, cost).await)
        }
        Err(e) => Err(e.into()),
    }
}

fn email(w: WrittenEmail, cost: i64) -> Email {
    Email { subject: w.subject, body: w.body, credits_charged: cost as f64 / 1000.0 }
}

fn text(field: &str, v: String, max: usize) -> ApiResult<String> {
    linkcrm_core::validate::text(field, Some(v), max)?
        .ok_or_else(|| ApiError::invalid_field(field, "invalid_request", "is required"))
}

fn opt(field: &str, v: Option<String>, max: usize) -> ApiResult<Option<String>> {
    linkcrm_core::validate::text(field, v, max)
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateInput {
    #[schemars(length(min = 1, max = 500), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub topic: String,
    pub tone: Option<Tone>,
    /// The hook: why you are writing to them.
    #[schemars(length(max = 1000))]
    pub angle: Option<String>,
    /// A template of this workspace to start from.
    pub template_id: Option<crate::ids::Id<crate::ids::Template>>,
}

pub struct Generate;
impl Operation for Generate {
    const NAME: &'static str = "link_building.emails.generate";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = EMAIL_MILLI as u64;
    const SUMMARY: &'static str =
        "Write an outreach email on a topic with the LLM (3 credits; 503 when no LLM is configured)";
    const TAG: &'static str = TAG;
    type Input = GenerateInput;
    type Output = Email;

    async fn run(ctx: Ctx, input: GenerateInput) -> ApiResult<Reply<Email>> {
        let topic = text("topic", input.topic, 500)?;
        let angle = opt("angle", input.angle, 1000)?;
        let template = match &input.template_id {
            Some(t) => {
                let tpl = crate::ops::templates::load(&ctx, t).await?;
                Some((
                    str_of(&tpl, "subject").unwrap_or_default().to_owned(),
                    str_of(&tpl, "body").unwrap_or_default().to_owned(),
                ))
            }
            None => None,
        };
        let brief =
            EmailBrief { topic, tone: input.tone.unwrap_or_default().into(), angle, template, ..EmailBrief::default() };
        let r = write(
            &ctx,
            Self::NAME,
            EMAIL_MILLI,
            |c| async move { c.write_email(&brief).await },
            |w| email(w, EMAIL_MILLI),
        )
        .await?;
        Ok(r)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PersonalizeInput {
    #[schemars(length(min = 1, max = 20000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub base_email: String,
    /// The person written to (optional: without it the email greets no one by name).
    #[schemars(length(max = 200))]
    pub lead_name: Option<String>,
    /// Their site (optional).
    #[schemars(length(max = 500))]
    pub lead_website: Option<String>,
    #[schemars(length(max = 500))]
    pub content_topic: Option<String>,
}

pub struct Personalize;
impl Operation for Personalize {
    const NAME: &'static str = "link_building.emails.personalize";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = EMAIL_MILLI as u64;
    const SUMMARY: &'static str =
        "Personalise an email for a lead with the LLM (3 credits; 503 when no LLM is configured)";
    const TAG: &'static str = TAG;
    type Input = PersonalizeInput;
    type Output = Email;

    async fn run(ctx: Ctx, input: PersonalizeInput) -> ApiResult<Reply<Email>> {
        let base = text("baseEmail", input.base_email, 20_000)?;
        let name = opt("leadName", input.lead_name, 200)?;
        let site = opt("leadWebsite", input.lead_website, 500)?;
        let topic = opt("contentTopic", input.content_topic, 500)?;
        let r = write(
            &ctx,
            Self::NAME,
            EMAIL_MILLI,
            |c| async move { c.personalize(&base, name.as_deref(), site.as_deref(), topic.as_deref()).await },
            |w| email(w, EMAIL_MILLI),
        )
        .await?;
        Ok(r)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubjectsInput {
    #[schemars(length(min = 1, max = 500), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub topic: String,
    pub tone: Option<Tone>,
    /// How many (default 5, at most 10).
    #[schemars(range(min = 1, max = 10))]
    pub count: Option<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subjects {
    pub suggestions: Vec<String>,
    pub credits_charged: f64,
}

pub struct SubjectSuggestions;
impl Operation for SubjectSuggestions {
    const NAME: &'static str = "link_building.emails.subject_suggestions";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = SUBJECTS_MILLI as u64;
    const SUMMARY: &'static str =
        "Suggest subject lines for a topic with the LLM (1 credit; 503 when no LLM is configured)";
    const TAG: &'static str = TAG;
    type Input = SubjectsInput;
    type Output = Subjects;

    async fn run(ctx: Ctx, input: SubjectsInput) -> ApiResult<Reply<Subjects>> {
        let topic = text("topic", input.topic, 500)?;
        let tone: LlmTone = input.tone.unwrap_or_default().into();
        if input.count.is_some_and(|n| !(1..=10).contains(&n)) {
            return Err(ApiError::invalid_field("count", "invalid_request", "must be 1 to 10"));
        }
        let n = input.count.unwrap_or(5) as usize;
        let r = write(
            &ctx,
            Self::NAME,
            SUBJECTS_MILLI,
            |c| async move { c.subject_suggestions(&topic, tone, n).await },
            |s| Subjects { suggestions: s, credits_charged: 1.0 },
        )
        .await?;
        Ok(r)
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FollowUpEmailInput {
    #[schemars(length(min = 1, max = 998), pattern(linkcrm_core::rules::ONE_LINE))]
    pub original_subject: String,
    #[schemars(length(min = 1, max = 20000), pattern(linkcrm_core::rules::NOT_BLANK))]
    pub original_body: String,
    pub tone: Option<Tone>,
}

pub struct FollowUp;
impl Operation for FollowUp {
    const NAME: &'static str = "link_building.emails.follow_up";
    const EFFECT: Effect = Effect::Action;
    const FAMILY: Family = Family::Campaigns;
    const SUCCESS: Option<StatusCode> = Some(StatusCode::OK);
    const SCOPE: Option<&'static str> = Some("campaigns:write");
    const WORKSPACE: WorkspaceRule = WorkspaceRule::Required;
    const COST_MILLICREDITS: u64 = EMAIL_MILLI as u64;
    const SUMMARY: &'static str =
        "Write a follow-up to an email with the LLM (3 credits; 503 when no LLM is configured)";
    const TAG: &'static str = TAG;
    type Input = FollowUpEmailInput;
    type Output = Email;

    async fn run(ctx: Ctx, input: FollowUpEmailInput) -> ApiResult<Reply<Email>> {
        let subject = linkcrm_core::validate::header_text("originalSubject", Some(input.original_subject), 998)?
            .ok_or_else(|| ApiError::invalid_field("originalSubject", "invalid_request", "is required"))?;
        let body = text("originalBody", input.original_body, 20_000)?;
        let tone: LlmTone = input.tone.unwrap_or_default().into();
        let r = write(
            &ctx,
            Self::NAME,
            EMAIL_MILLI,
            |c| async move { c.follow_up(&subject, &body, tone).await },
            |w| email(w, EMAIL_MILLI),
        )
        .await?;
        Ok(r)
    }
}
