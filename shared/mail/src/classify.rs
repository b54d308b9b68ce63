//! Classification by named rules, first match wins, so a person can see why a message got its
//! class (the rule name is stored with it) and a wrong class can be traced to one rule.
//!
//! Rules read only what the sender wrote ([`InboundEmail::reply_text`]: no quoted pitch, no
//! signature). Words are matched whole, and a keyword preceded closely by a negation ("we don't
//! accept sponsored posts") does not count.

use crate::inbound::InboundEmail;
use linkcrm_domain::enums::{InboundIntent, ReplyClass};

/// The class of a reply to our outreach and the name of the rule that decided it.
pub fn classify_reply(email: &InboundEmail) -> (ReplyClass, &'static str) {
    if email.bounce.is_some() {
        return (ReplyClass::Bounce, "dsn_report");
    }
    let subject = Text::new(&email.subject);
    if is_mailer_daemon(email) && subject.has_any(BOUNCE_SUBJECTS) {
        return (ReplyClass::Bounce, "mailer_daemon_notice");
    }
    if email.auto_submitted.as_deref().is_some_and(|v| v.to_ascii_lowercase().starts_with("auto-replied"))
        || email.x_autoreply
    {
        return (ReplyClass::OutOfOffice, "auto_reply_header");
    }
    if subject.has_any(OOO_SUBJECTS) {
        return (ReplyClass::OutOfOffice, "ooo_subject");
    }
    let body = Text::new(&email.reply_text);
    if body.has_any(OOO_BODY) {
        return (ReplyClass::OutOfOffice, "ooo_body");
    }
    if email.precedence.as_deref().is_some_and(|p| matches!(p, "bulk" | "list" | "junk")) {
        return (ReplyClass::Other, "bulk_precedence");
    }
    if body.has_any(UNSUBSCRIBE) {
        return (ReplyClass::Unsubscribe, "unsubscribe_request");
    }
    if body.has_affirmed(PRICE) || body.has_amount() {
        return (ReplyClass::AsksPrice, "price_question");
    }
    if body.has_any(DECLINE) {
        return (ReplyClass::NotInterested, "decline");
    }
    if body.has_affirmed(POSITIVE) {
        return (ReplyClass::Interested, "positive_reply");
    }
    (ReplyClass::Other, "no_rule_matched")
}

/// The intent of an unsolicited message (someone pitching us) and the rule that decided it.
pub fn classify_request(email: &InboundEmail) -> (InboundIntent, &'static str) {
    let text = Text::new(&format!("{}.\n\n{}", email.subject, email.reply_text));
    let spam_score = SPAM.iter().filter(|p| text.has(p)).count();
    if text.has_any(SPAM_ALWAYS) || spam_score >= 2 {
        return (InboundIntent::Spam, "spam_signals");
    }
    let insertion = text.has_any(LINK_INSERTION);
    if insertion && (text.has_affirmed(PRICE) || text.has_amount()) {
        return (InboundIntent::PaidLinkInsertion, "paid_link_insertion");
    }
    if insertion {
        return (InboundIntent::LinkInsertion, "link_insertion");
    }
    if text.has_any(LINK_SWAP) {
        return (InboundIntent::LinkSwap, "link_swap");
    }
    if text.has_any(GUEST_POST) {
        return (InboundIntent::GuestPostPitch, "guest_post_pitch");
    }
    (InboundIntent::Other, "no_rule_matched")
}

const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "delivery failure",
    "returned mail",
    "failure notice",
];
const OOO_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto response",
    "away from the office",
    "on vacation",
    "on leave",
    "abwesenheitsnotiz",
    "automatische antwort",
    "réponse automatique",
    "respuesta automática",
];
const OOO_BODY: &[&str] = &[
    "i am out of the office",
    "i'm out of the office",
    "i am currently out of",
    "i'm currently out of",
    "i am away from",
    "i'm away from",
    "i am on vacation",
    "i'm on vacation",
    "i am on annual leave",
    "i'm on annual leave",
    "on parental leave",
    "on maternity leave",
    "with limited access to email",
    "with limited access to my email",
    "i will be back on",
    "i'll be back on",
    "i will return on",
    "i will respond when i return",
    "i will reply when i return",
    "i will have limited access",
];
const UNSUBSCRIBE: &[&str] = &[
    "unsubscribe",
    "remove me",
    "remove my email",
    "remove us",
    "take me off",
    "take us off",
    "stop emailing",
    "stop contacting",
    "stop sending",
    "stop spamming",
    "do not contact",
    "don't contact",
    "do not email",
    "don't email",
    "opt out",
    "no more emails",
];
const PRICE: &[&str] = &[
    "how much",
    "price",
    "prices",
    "pricing",
    "rate",
    "rates",
    "fee",
    "fees",
    "cost",
    "costs",
    "charge",
    "charges",
    "sponsored",
    "paid",
    "budget",
    "compensation",
    "payment",
    "paypal",
    "invoice",
];
const DECLINE: &[&str] = &[
    "not interested",
    "no thanks",
    "no thank you",
    "not at this time",
    "not right now",
    "we don't accept",
    "we do not accept",
    "we don't publish",
    "we do not publish",
    "we don't do",
    "we do not do",
    "not accepting",
    "no longer accept",
    "not a good fit",
    "not a fit",
    "we'll pass",
    "we will pass",
    "pass on this",
    "not looking for",
    "not open to",
    "have to decline",
    "must decline",
];
const POSITIVE: &[&str] = &[
    "interested",
    "sounds good",
    "sounds great",
    "sounds interesting",
    "sure",
    "yes",
    "happy to",
    "glad to",
    "go ahead",
    "let's do",
    "send it over",
    "send over",
    "please send",
    "send me",
    "i'd love",
    "we'd love",
    "would love",
    "works for me",
    "count me in",
    "why not",
    "open to",
    "let's discuss",
];
const SPAM_ALWAYS: &[&str] =
    &["viagra", "cialis", "lottery", "you have won", "adult dating", "porn", "inheritance", "wire transfer"];
const SPAM: &[&str] = &[
    "casino",
    "betting",
    "gambling",
    "crypto",
    "bitcoin",
    "forex",
    "payday loan",
    "cbd",
    "dear sir",
    "dear sir/madam",
    "dear webmaster",
    "dear site owner",
    "dear website owner",
    "first page of google",
    "rank #1",
    "guaranteed",
    "click here",
    "act now",
    "limited time",
    "bulk backlinks",
    "backlinks package",
    "cheap backlinks",
    "seo services",
];
const LINK_INSERTION: &[&str] = &[
    "link insertion",
    "insert a link",
    "insert our link",
    "insert my link",
    "insert a backlink",
    "add a link",
    "add our link",
    "add my link",
    "add a backlink",
    "include a link",
    "include our link",
    "place a link",
    "niche edit",
    "existing article",
    "existing post",
    "existing blog post",
    "insert",
];
const LINK_SWAP: &[&str] = &[
    "link exchange",
    "exchange links",
    "link swap",
    "swap links",
    "reciprocal link",
    "reciprocal links",
    "link back to us",
    "three way link",
    "3 way link",
    "abc link",
];
const GUEST_POST: &[&str] = &[
    "guest post",
    "guest posts",
    "guest posting",
    "guest article",
    "guest blog",
    "write for us",
    "write for you",
    "write for your",
    "contribute an article",
    "contribute a post",
    "submit an article",
    "publish my article",
    "publish our article",
    "article for your",
    "sponsored post",
];
/// Words that, just before a keyword, turn it around ("we don't do paid posts").
const NEGATIONS: &[&str] = &["no", "not", "don't", "dont", "never", "doesn't", "won't", "cannot", "can't", "nor"];
/// How many words before a keyword a negation still applies to.
const NEGATION_REACH: usize = 3;

fn is_mailer_daemon(email: &InboundEmail) -> bool {
    email.from.as_ref().is_some_and(|f| {
        let local = f.address.split('@').next().unwrap_or("").to_ascii_lowercase();
        matches!(local.as_str(), "mailer-daemon" | "postmaster" | "mail-daemon")
    })
}

/// Text as sentences of lowercase words, for whole-word phrase matching.
struct Text {
    sentences: Vec<Vec<String>>,
}

impl Text {
    fn new(text: &str) -> Text {
        let text = text.to_lowercase().replace(['\u{2019}', '\u{2018}'], "'");
        // Plain-text mail is hard-wrapped, so a single newline is not a sentence end; a blank line is.
        let sentences = text
            .split("\n\n")
            .flat_map(|para| para.split(['.', '!', '?', ';']))
            .map(|s| {
                s.split(|c: char| !(c.is_alphanumeric() || "'$€£#/".contains(c)))
                    .map(|w| w.trim_matches('\''))
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|s| !s.is_empty())
            .collect();
        Text { sentences }
    }

    /// Start positions of `phrase` in each sentence.
    fn matches<'a>(&'a self, phrase: &'a str) -> impl Iterator<Item = (&'a [String], usize)> + 'a {
        let wanted: Vec<&str> = phrase.split(' ').collect();
        self.sentences.iter().flat_map(move |words| {
            let n = wanted.len();
            let wanted = wanted.clone();
            (0..words.len().saturating_sub(n - 1))
                .filter(move |&i| words[i..i + n].iter().zip(&wanted).all(|(w, p)| w == p))
                .map(move |i| (words.as_slice(), i))
        })
    }

    fn has(&self, phrase: &str) -> bool {
        self.matches(phrase).next().is_some()
    }

    fn has_any(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.has(p))
    }

    /// Some phrase occurs without a negation just before it.
    fn has_affirmed(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| {
            self.matches(p).any(|(words, i)| {
                !words[i.saturating_sub(NEGATION_REACH)..i].iter().any(|w| NEGATIONS.contains(&w.as_str()))
            })
        })
    }

    /// A sum of money: `$150`, `150€`, `150 usd`, `200 dollars`.
    fn has_amount(&self) -> bool {
        self.sentences.iter().any(|words| {
            words.iter().enumerate().any(|(i, w)| {
                let digits = w.chars().any(|c| c.is_ascii_digit());
                digits
                    && (w.contains(['$', '€', '£'])
                        || words.get(i + 1).is_some_and(|n| {
                            matches!(n.as_str(), "usd" | "eur" | "gbp" | "dollars" | "euros" | "pounds")
                        }))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_match_whole_words_only() {
        let t = Text::new("We separate accurate moderate content.");
        assert!(!t.has("rate"));
        assert!(Text::new("What is your rate?").has("rate"));
        assert!(Text::new("Hi,\nhow\nmuch would it be").has("how much"), "hard-wrapped lines still match");
    }

    #[test]
    fn negation_turns_a_keyword_around() {
        assert!(!Text::new("We don't accept sponsored posts").has_affirmed(PRICE));
        assert!(Text::new("Not interested in swaps. What is your budget?").has_affirmed(PRICE));
        assert!(!Text::new("I'm not sure this fits").has_affirmed(POSITIVE));
    }

    #[test]
    fn amounts_are_recognised() {
        assert!(Text::new("Our price is $150 per post").has_amount());
        assert!(Text::new("It's 120 USD").has_amount());
        assert!(!Text::new("We have 150 posts").has_amount());
    }
}
