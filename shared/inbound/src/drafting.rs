//! What the negotiator asks the LLM (an intent, a yes/no gate question, a reply) and the replies
//! it writes without one.

use linkcrm_core::App;
use linkcrm_domain::enums::InboundIntent;
use linkcrm_providers::LlmClient;
use serde_json::Value;

/// The workspace's LLM, whose every answer (or failure) is recorded as its `llm` health.
pub struct Llm<'a> {
    client: LlmClient,
    app: &'a App,
    ws: &'a str,
}

impl<'a> Llm<'a> {
    pub fn new(client: LlmClient, app: &'a App, ws: &'a str) -> Self {
        Llm { client, app, ws }
    }

    async fn ask(&self, system: &str, user: &str) -> Option<Value> {
        let answer = self.client.complete_json(system, user).await;
        linkcrm_core::health::observe(self.app, self.ws, "llm", &answer).await;
        answer.ok()
    }
}

/// What a reply is written from.
pub struct ReplyBrief<'a> {
    pub sender_name: Option<&'a str>,
    pub subject: &'a str,
    pub text: &'a str,
    pub intent: InboundIntent,
    pub tone: &'a str,
    pub angles: &'a [String],
    pub workspace_name: &'a str,
    pub sender_site: Option<&'a str>,
}

fn excerpt(text: &str) -> String {
    text.chars().take(4000).collect()
}

const CLASSIFY: &str = "You classify an email someone sent to a website's team about links. \
Answer with a JSON object {\"intent\": one of \"guest_post_pitch\" (they offer to write an article), \
\"link_swap\" (they propose exchanging links), \"link_insertion\" (they ask to add a link to an existing page, \
no payment offered), \"paid_link_insertion\" (they offer or ask for money for a link or post), \"spam\" \
(bulk, irrelevant or deceptive), \"other\"}.";

/// The LLM's reading of a request's intent; `None` when it gave no usable answer.
pub async fn classify(llm: &Llm<'_>, subject: &str, text: &str) -> Option<InboundIntent> {
    let user = format!("Subject: {subject}\n\n{}", excerpt(text));
    let v = llm.ask(CLASSIFY, &user).await?;
    v.get("intent").and_then(Value::as_str).and_then(InboundIntent::parse)
}

const CHECK: &str = "You answer one yes/no question about an email. Answer with a JSON object \
{\"answer\": \"yes\"} or {\"answer\": \"no\"}, nothing else.";

/// The LLM's yes/no to a gate's question about the request; `None` when it could not answer.
pub async fn check(llm: &Llm<'_>, question: &str, subject: &str, text: &str) -> Option<bool> {
    let user = format!("Question: {question}\n\nThe email:\nSubject: {subject}\n\n{}", excerpt(text));
    let v = llm.ask(CHECK, &user).await?;
    match v.get("answer").and_then(Value::as_str).map(|a| a.trim().to_ascii_lowercase()) {
        Some(a) if a == "yes" || a == "true" => Some(true),
        Some(a) if a == "no" || a == "false" => Some(false),
        _ => None,
    }
}

const DRAFT: &str = "You answer, for a website's team, someone who wrote to them about links \
(a guest post, a link swap, a link insertion, a paid placement). Write a short, honest reply that moves \
the conversation on: ask for what is missing (topics, the page, the price, examples), never promise a \
link or a payment, and sign with the team's name. Answer with a JSON object with exactly these string \
fields: \"subject\" (the original subject with \"Re: \" in front unless it has it) and \"body\" (plain text).";

/// An LLM-written reply (3 credits); `None` when it gave none.
pub async fn draft(llm: &Llm<'_>, b: &ReplyBrief<'_>) -> Option<(String, String)> {
    let angles = if b.angles.is_empty() { "none".to_owned() } else { b.angles.join("; ") };
    let user = format!(
        "Team: {}\nTone: {}\nWhat we want to steer towards: {angles}\nTheir intent: {}\nTheir site: {}\nFrom: {}\n\
         Subject: {}\n\n{}",
        b.workspace_name,
        b.tone,
        b.intent.as_str(),
        b.sender_site.unwrap_or("not named"),
        b.sender_name.unwrap_or("unknown"),
        b.subject,
        excerpt(b.text)
    );
    let v = llm.ask(DRAFT, &user).await?;
    let subject = v.get("subject").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())?;
    let body = v.get("body").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())?;
    Some((one_line(subject), body.to_owned()))
}

fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ").chars().take(998).collect()
}

/// `Re: <subject>` unless it already starts so.
pub fn re(subject: &str) -> String {
    let s = subject.trim();
    if s.len() >= 3 && s[..3].eq_ignore_ascii_case("re:") {
        one_line(s)
    } else if s.is_empty() {
        "Re: your message".to_owned()
    } else {
        one_line(&format!("Re: {s}"))
    }
}

fn greeting(name: Option<&str>, tone: &str) -> String {
    let first = name.and_then(|n| n.split_whitespace().next()).filter(|n| !n.is_empty());
    match (tone, first) {
        ("formal", Some(n)) => format!("Dear {n},"),
        ("formal", None) => "Dear Sir or Madam,".to_owned(),
        (_, Some(n)) => format!("Hi {n},"),
        (_, None) => "Hi,".to_owned(),
    }
}

/// A reply written from the intent alone (no LLM, no credits).
pub fn template_reply(b: &ReplyBrief<'_>) -> (String, String) {
    let ask = match b.intent {
        InboundIntent::GuestPostPitch => {
            "Thanks for the guest post idea. Could you send two or three topic ideas and a link to something you have written?"
        }
        InboundIntent::LinkSwap => "Thanks for suggesting a link exchange. Which page of yours would link to us, and which of ours do you have in mind?",
        InboundIntent::LinkInsertion => "Thanks for getting in touch. Which page and which link did you have in mind?",
        InboundIntent::PaidLinkInsertion => "Thanks for getting in touch. Could you tell us which page you have in mind and what you are proposing?",
        _ => "Thanks for getting in touch. Could you tell us a little more about what you have in mind?",
    };
    let angle = b.angles.first().map(|a| format!("\n\n{a}")).unwrap_or_default();
    let body = format!("{}\n\n{ask}{angle}\n\nBest regards,\n{}", greeting(b.sender_name, b.tone), b.workspace_name);
    (re(b.subject), body)
}

/// A short, polite decline.
pub fn decline_reply(b: &ReplyBrief<'_>) -> (String, String) {
    let body = format!(
        "{}\n\nThank you for thinking of us. We are not taking this up at the moment, but we appreciate you reaching out.\n\n\
         Best regards,\n{}",
        greeting(b.sender_name, b.tone),
        b.workspace_name
    );
    (re(b.subject), body)
}
