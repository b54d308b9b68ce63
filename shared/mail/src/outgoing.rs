//! The email we send, and its RFC 5322 rendering.
//!
//! Message ids are held without angle brackets everywhere in linkcrm (as [`crate::inbound`] reads
//! them) and only get their brackets in the header. Every outreach message carries a one-click
//! unsubscribe (RFC 8058): bulk-sender rules at the large mailbox providers require it, and an
//! unsubscribe we make easy is better than a spam report.

use crate::inbound::InboundEmail;
use crate::MailError;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::{Address, Message};

/// One plain-text email to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Display name of the sender; may be empty.
    pub from_name: String,
    pub from_address: String,
    pub to: String,
    pub subject: String,
    pub body_text: String,
    /// Without angle brackets, e.g. from [`new_message_id`]. Chosen before sending so that the send
    /// can be claimed, and a reply matched, by it.
    pub message_id: String,
    /// The message this one answers, without angle brackets.
    pub in_reply_to: Option<String>,
    /// The thread's message ids, oldest first, without angle brackets.
    pub references: Vec<String>,
    /// An `https://` URL that unsubscribes the recipient on a POST with no further interaction.
    pub unsubscribe_url: String,
    /// Further headers (e.g. `X-Linkcrm-Send`); may not replace the ones this type sets.
    pub extra_headers: Vec<(String, String)>,
    /// When set, the message also carries an HTML part (the same text) with a 1×1 image at this
    /// URL, whose loading records an open. Off by default: pixels hurt cold-email deliverability
    /// and privacy-protecting mail clients load them for everyone.
    pub tracking_pixel_url: Option<String>,
    /// An HTML version of the message, sent with `body_text` as its plain-text alternative (the
    /// tracking image, when set, goes at its end).
    pub body_html: Option<String>,
}

/// A new globally unique message id, `<uuid>@<domain>` without brackets.
///
/// `domain` should be the sender's domain: some filters score ids whose right-hand side does not
/// match the From domain, and the domain keeps ids from different senders apart.
pub fn new_message_id(domain: &str) -> String {
    format!("{}@{}", uuid::Uuid::now_v7().simple(), domain.trim().trim_end_matches('.').to_ascii_lowercase())
}

/// Headers this type sets itself; `extra_headers` may not set them again.
const OWN_HEADERS: &[&str] = &[
    "message-id",
    "date",
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "subject",
    "in-reply-to",
    "references",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
];

impl OutgoingEmail {
    /// The domain of `from_address`, for [`new_message_id`].
    pub fn sender_domain(&self) -> Option<&str> {
        self.from_address.rsplit_once('@').map(|(_, d)| d).filter(|d| !d.is_empty())
    }

    /// Makes this email a reply in `parent`'s thread: `In-Reply-To` is the parent's id and
    /// `References` the parent's references followed by the parent's id (RFC 5322 section 3.6.4),
    /// which is what mail clients use to group the conversation.
    pub fn thread_onto(&mut self, parent: &InboundEmail) {
        self.references = parent.references.clone();
        if let Some(id) = &parent.message_id {
            self.in_reply_to = Some(id.clone());
            if !self.references.contains(id) {
                self.references.push(id.clone());
            }
        }
    }

    /// The full message as sent: headers and a UTF-8 plain-text body, CRLF line endings.
    pub fn render(&self) -> Result<Vec<u8>, MailError> {
        Ok(self.message()?.formatted())
    }

    /// The message with its SMTP envelope (`MAIL FROM` = From, `RCPT TO` = To).
    pub(crate) fn message(&self) -> Result<Message, MailError> {
        let from = parse_address("from_address", &self.from_address)?;
        let to = parse_address("to", &self.to)?;
        no_line_breaks("from_name", &self.from_name)?;
        no_line_breaks("subject", &self.subject)?;
        let name = self.from_name.trim();
        let from = Mailbox::new((!name.is_empty()).then(|| name.to_owned()), from);

        let mut builder = Message::builder()
            .message_id(Some(bracketed(&checked_id("message_id", &self.message_id)?)))
            .date_now()
            .from(from)
            .to(Mailbox::new(None, to))
            .subject(self.subject.clone());
        if let Some(parent) = &self.in_reply_to {
            builder = builder.in_reply_to(bracketed(&checked_id("in_reply_to", parent)?));
        }
        if !self.references.is_empty() {
            let ids = self
                .references
                .iter()
                .map(|id| checked_id("references", id).map(|id| bracketed(&id)))
                .collect::<Result<Vec<_>, _>>()?;
            // One header, ids separated by spaces: lettre folds the line at those spaces.
            builder = builder.references(ids.join(" "));
        }
        builder = builder
            .raw_header(header("List-Unsubscribe", format!("<{}>", checked_unsubscribe_url(&self.unsubscribe_url)?))?)
            .raw_header(header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".to_owned())?);
        for (name, value) in &self.extra_headers {
            if OWN_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(MailError::Invalid(format!("extra header {name} would replace one the mailer sets")));
            }
            no_line_breaks("extra header value", value)?;
            builder = builder.raw_header(header(name, value.clone())?);
        }
        if let Some(url) = &self.tracking_pixel_url {
            if !url.starts_with("https://") && !url.starts_with("http://") || url.contains(['"', '<', '>', ' ']) {
                return Err(MailError::Invalid(format!("tracking pixel URL {url:?} is not a plain http(s) URL")));
            }
        }
        let built = match (&self.body_html, &self.tracking_pixel_url) {
            (None, None) => builder.header(ContentType::TEXT_PLAIN).body(self.body_text.clone()),
            (None, Some(url)) => builder.multipart(lettre::message::MultiPart::alternative_plain_html(
                self.body_text.clone(),
                html_with_pixel(&self.body_text, url),
            )),
            (Some(html), pixel) => builder.multipart(lettre::message::MultiPart::alternative_plain_html(
                self.body_text.clone(),
                match pixel {
                    Some(url) => html_plus_pixel(html, url),
                    None => html.clone(),
                },
            )),
        };
        built.map_err(|e| MailError::Invalid(format!("cannot build the message: {e}")))
    }
}

/// The sender's HTML with the tracking image added at the end of its body.
fn html_plus_pixel(html: &str, pixel: &str) -> String {
    let img = format!("<img src=\"{pixel}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\">");
    match html.to_ascii_lowercase().rfind("</body>") {
        Some(i) => format!("{}{img}{}", &html[..i], &html[i..]),
        None => format!("{html}{img}"),
    }
}

/// The plain text as HTML (escaped, paragraphs and line breaks kept) with the tracking image last.
fn html_with_pixel(text: &str, pixel: &str) -> String {
    let escape = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let paragraphs: Vec<String> = text
        .replace("\r\n", "\n")
        .split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| format!("<p>{}</p>", escape(p).replace('\n', "<br>\n")))
        .collect();
    format!(
        "<!doctype html><html><body>\n{}\n<img src=\"{pixel}\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;border:0\"></body></html>\n",
        paragraphs.join("\n")
    )
}

fn parse_address(field: &str, value: &str) -> Result<Address, MailError> {
    value.trim().parse::<Address>().map_err(|e| MailError::Invalid(format!("{field} {value:?}: {e}")))
}

fn header(name: &str, value: String) -> Result<HeaderValue, MailError> {
    let name = HeaderName::new_from_ascii(name.to_owned())
        .map_err(|_| MailError::Invalid(format!("bad header name {name:?}")))?;
    Ok(HeaderValue::new(name, value))
}

fn bracketed(id: &str) -> String {
    format!("<{id}>")
}

/// A message id as we keep it: `left@right`, printable ASCII, no brackets or spaces. Brackets a
/// caller copied from a header are tolerated and removed.
fn checked_id(field: &str, id: &str) -> Result<String, MailError> {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let well_formed = id.split_once('@').is_some_and(|(l, r)| !l.is_empty() && !r.is_empty())
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>');
    if well_formed {
        Ok(id.to_owned())
    } else {
        Err(MailError::Invalid(format!("{field} {id:?} is not a message id (left@right)")))
    }
}

/// RFC 8058 section 3.1: the one-click URI must be HTTPS; a POST to it must unsubscribe. Plain
/// `http://` is accepted only for loopback hosts (a server running locally, and tests), where
/// nobody on the path could read or change it.
fn checked_unsubscribe_url(url: &str) -> Result<&str, MailError> {
    let url = url.trim();
    let lower = url.to_ascii_lowercase();
    let loopback = [
        "http://127.0.0.1:",
        "http://127.0.0.1/",
        "http://localhost:",
        "http://localhost/",
        "http://[::1]:",
        "http://[::1]/",
    ]
    .iter()
    .any(|p| lower.starts_with(p));
    let ok = ((url.len() > "https://".len() && url[..8].eq_ignore_ascii_case("https://")) || loopback)
        && url.len() <= 900
        && url.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b','));
    if ok {
        Ok(url)
    } else {
        Err(MailError::Invalid(format!("unsubscribe_url {url:?} must be an https:// URL (RFC 8058)")))
    }
}

/// A header value with a line break in it would let its content start a new header (injection).
fn no_line_breaks(field: &str, value: &str) -> Result<(), MailError> {
    if value.contains(['\r', '\n']) {
        Err(MailError::Invalid(format!("{field} may not contain line breaks")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_html_message_carries_its_text_alternative_and_the_pixel_inside_its_body() {
        let mut e = sample();
        e.body_html = Some("<html><body><p>Hi <b>Ana</b></p></body></html>".into());
        let raw = String::from_utf8(e.render().unwrap()).unwrap();
        assert!(raw.contains("multipart/alternative") && raw.contains("text/plain") && raw.contains("text/html"));
        assert!(raw.contains("<b>Ana</b>") && raw.contains("I enjoyed your guide."), "{raw}");
        assert!(!raw.contains("<img"), "{raw}");
        e.tracking_pixel_url = Some("https://api.example.com/v1/t/o/tok.gif".into());
        let raw = String::from_utf8(e.render().unwrap()).unwrap().replace("=\r\n", "");
        let img = raw.find("<img").expect("the pixel");
        assert!(img < raw.find("</body>").unwrap(), "{raw}");
    }

    #[test]
    fn a_tracked_message_carries_the_text_and_an_html_part_with_the_pixel() {
        let mut e = sample();
        e.body_text = "Hi <Ana>,\n\nA & B.\nDana".into();
        e.tracking_pixel_url = Some("https://api.example.com/v1/t/o/tok.gif".into());
        let raw = String::from_utf8(e.render().unwrap()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("Hi <Ana>,"), "the plain part is unchanged");
        assert!(raw.contains("<p>Hi &lt;Ana&gt;,</p>"), "{raw}");
        assert!(
            raw.contains("<img src=3D\"https://api.example.com/v1/t/o/tok.gif\"")
                || raw.contains("<img src=\"https://api.example.com/v1/t/o/tok.gif\""),
            "{raw}"
        );
        e.tracking_pixel_url = Some("javascript:alert(1)".into());
        assert!(e.render().is_err());
        e.tracking_pixel_url = None;
        let raw = String::from_utf8(e.render().unwrap()).unwrap();
        assert!(!raw.contains("multipart") && !raw.contains("<img"), "untracked mail stays plain text");
    }

    pub(crate) fn sample() -> OutgoingEmail {
        OutgoingEmail {
            from_name: "Dana from Linkcrm".into(),
            from_address: "dana@outreach.example.com".into(),
            to: "editor@blog.example.org".into(),
            subject: "Quick question about your guides".into(),
            body_text: "Hi,\n\nI enjoyed your guide.\n\nDana".into(),
            message_id: new_message_id("outreach.example.com"),
            in_reply_to: None,
            references: vec![],
            unsubscribe_url: "https://app.example.com/u/tok123".into(),
            extra_headers: vec![],
            tracking_pixel_url: None,
            body_html: None,
        }
    }

    #[test]
    fn loopback_http_unsubscribe_is_allowed() {
        let mut e = sample();
        e.unsubscribe_url = "http://127.0.0.1:3000/v1/unsubscribe/abc.def".into();
        assert!(rendered(&e).contains("List-Unsubscribe: <http://127.0.0.1:3000/v1/unsubscribe/abc.def>"));
    }

    fn rendered(email: &OutgoingEmail) -> String {
        String::from_utf8(email.render().expect("renders")).expect("7-bit output")
    }

    #[test]
    fn message_ids_are_unique_and_carry_the_senders_domain() {
        let a = new_message_id("Outreach.Example.com.");
        assert_ne!(a, new_message_id("outreach.example.com"));
        assert!(a.ends_with("@outreach.example.com"), "{a}");
        assert!(checked_id("id", &a).is_ok());
    }

    #[test]
    fn renders_the_headers_a_first_message_needs() {
        let email = sample();
        let text = rendered(&email);
        assert!(text.contains(&format!("Message-ID: <{}>\r\n", email.message_id)), "{text}");
        assert!(text.contains("List-Unsubscribe: <https://app.example.com/u/tok123>\r\n"));
        assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(text.contains("\r\nDate: "));
        assert!(!text.contains("In-Reply-To"));
        assert!(!text.contains("References"));
    }

    #[test]
    fn refuses_what_cannot_be_sent_safely() {
        type Change = Box<dyn Fn(&mut OutgoingEmail)>;
        let cases: Vec<(&str, Change)> = vec![
            ("http unsubscribe", Box::new(|e| e.unsubscribe_url = "http://app.example.com/u/1".into())),
            ("http lookalike", Box::new(|e| e.unsubscribe_url = "http://127.0.0.1.evil.example/u/1".into())),
            ("bad recipient", Box::new(|e| e.to = "not an address".into())),
            ("subject injection", Box::new(|e| e.subject = "Hi\r\nBcc: victim@example.com".into())),
            ("bad message id", Box::new(|e| e.message_id = "no-at-sign".into())),
            ("own header", Box::new(|e| e.extra_headers = vec![("message-id".into(), "<x@y>".into())])),
            ("header name", Box::new(|e| e.extra_headers = vec![("X Bad".into(), "1".into())])),
        ];
        for (what, change) in cases {
            let mut email = sample();
            change(&mut email);
            assert!(matches!(email.render(), Err(MailError::Invalid(_))), "{what} was accepted");
        }
    }

    #[test]
    fn extra_headers_are_added() {
        let mut email = sample();
        email.extra_headers = vec![("X-Linkcrm-Send".into(), "snd_123".into())];
        assert!(rendered(&email).contains("X-Linkcrm-Send: snd_123\r\n"));
    }
}
