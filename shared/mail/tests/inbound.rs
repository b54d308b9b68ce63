//! Parsing received mail: real-looking messages from Postfix, Gmail and Exchange in `fixtures/`.

use linkcrm_mail::inbound::MAX_SIZE;
use linkcrm_mail::{parse, BounceKind, ParseError};

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn a_postfix_bounce_reports_a_hard_failure_for_the_recipient() {
    let email = parse(&fixture("dsn_hard_bounce.eml")).expect("parses");
    let bounce = email.bounce.expect("a bounce");
    assert_eq!(bounce.recipient.as_deref(), Some("j.doe@gardening-blog.example.net"));
    assert_eq!(bounce.status, "5.1.1");
    assert_eq!(bounce.kind, BounceKind::Hard);
    assert_eq!(bounce.action, "failed");
    assert!(bounce.diagnostic.as_deref().is_some_and(|d| d.contains("User unknown in virtual mailbox table")));
    // From the returned headers: this is how the bounce finds our send.
    assert_eq!(bounce.original_message_id.as_deref(), Some("0195b3c2a1e47d3c9f00a1b2c3d4e5f6@outreach.example.com"));
    assert_eq!(email.from.expect("From").address, "MAILER-DAEMON@mx1.outreach.example.com");
    assert_eq!(email.auto_submitted.as_deref(), Some("auto-replied"));
}

#[test]
fn a_gmail_delay_notice_is_a_soft_bounce() {
    let email = parse(&fixture("dsn_delayed.eml")).expect("parses");
    let bounce = email.bounce.expect("a bounce");
    assert_eq!(bounce.kind, BounceKind::Soft);
    assert_eq!(bounce.status, "4.4.1");
    assert_eq!(bounce.action, "delayed");
    assert_eq!(bounce.recipient.as_deref(), Some("editor@slow-host.example.org"));
    // From the returned copy (message/rfc822).
    assert_eq!(bounce.original_message_id.as_deref(), Some("0195b7aa00017c0e8e11a2b3c4d5e6f7@outreach.example.com"));
}

#[test]
fn an_exchange_auto_reply_keeps_threading_and_the_plain_text() {
    let email = parse(&fixture("ooo_auto_reply.eml")).expect("parses");
    assert_eq!(email.auto_submitted.as_deref(), Some("auto-replied"));
    assert_eq!(email.in_reply_to.as_deref(), Some("0195bc01e9a27f3e8d10b2c3d4e5f6a7@outreach.example.com"));
    assert_eq!(email.references, ["0195bc01e9a27f3e8d10b2c3d4e5f6a7@outreach.example.com"]);
    assert_eq!(email.subject, "Automatische Antwort: Kurze Frage zu Ihrem Reiseführer");
    assert!(email.text.starts_with("Vielen Dank für Ihre Nachricht."), "{}", email.text);
    assert!(email.text.contains("I am out of the office until 17 March"));
    assert_eq!(email.to[0].name.as_deref(), Some("Zoë Müller"));
    assert!(email.bounce.is_none());
}

#[test]
fn a_gmail_reply_has_its_sender_ids_and_date() {
    let email = parse(&fixture("reply_price_gmail.eml")).expect("parses");
    assert_eq!(email.message_id.as_deref(), Some("CAKx7pQ3f9Vw+2hN1d0oQ=8mZ_R4tY6uE1aB2cD3eF4gH5iJ6kL@mail.gmail.com"));
    assert_eq!(email.in_reply_to.as_deref(), Some("0195c0a1b2c37d4e8f90a1b2c3d4e5f6@outreach.example.com"));
    let from = email.from.expect("From");
    assert_eq!(
        (from.address.as_str(), from.name.as_deref()),
        ("jamie@gardening-blog.example.net", Some("Jamie O'Neill"))
    );
    assert_eq!(email.date.expect("Date").to_rfc3339(), "2025-03-07T13:22:09+00:00");
    assert!(email.text.starts_with("Hi Zoë,"), "the plain part is preferred: {}", email.text);
    assert!(email.text.contains("> I loved your composting guide"));
    assert!(email.reply_text.ends_with("Cheers,\nJamie"), "{}", email.reply_text);
    assert_eq!(email.auto_submitted, None);
    assert!(!email.x_autoreply);
    assert!(email.bounce.is_none());
}

#[test]
fn an_html_only_reply_is_read_as_text() {
    let email = parse(&fixture("reply_html_only.eml")).expect("parses");
    assert!(email.text.contains("Sounds good – please send over a couple of topic ideas"), "{}", email.text);
    assert!(!email.text.contains("<div>"));
    // The quoted original (with its "rates" and "Unsubscribe") is not part of what Priya wrote.
    assert_eq!(
        email.reply_text,
        "Hi Zoë,\nSounds good – please send over a couple of topic ideas and we'll pick one.\nPriya"
    );
}

#[test]
fn ids_lose_their_brackets_and_folded_references_are_split() {
    let raw = b"From: a@example.com\r\nMessage-ID:  <abc.1@example.com>\r\n\
        In-Reply-To: <p2@example.com> <p1@example.com>\r\n\
        References: <p1@example.com>\r\n  <p2@example.com>\r\n\tX-Autoreply: no\r\n\
        X-Autoreply: yes\r\nPrecedence: Bulk\r\n\r\nHello\r\n";
    let email = parse(raw).expect("parses");
    assert_eq!(email.message_id.as_deref(), Some("abc.1@example.com"));
    assert_eq!(email.in_reply_to.as_deref(), Some("p2@example.com"));
    assert_eq!(email.references, ["p1@example.com", "p2@example.com"]);
    assert!(email.x_autoreply);
    assert_eq!(email.precedence.as_deref(), Some("bulk"));
    assert_eq!(email.text, "Hello");
}

#[test]
fn reports_that_are_not_failures_are_not_bounces() {
    let delivered = b"From: postmaster@example.com\r\nMessage-ID: <r1@example.com>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nDelivered.\r\n\
        --b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.com\r\n\r\n\
        Final-Recipient: rfc822; x@example.org\r\nAction: delivered\r\nStatus: 2.0.0\r\n\r\n--b--\r\n";
    assert!(parse(delivered).expect("parses").bounce.is_none());
    let read_receipt = b"From: x@example.org\r\nMessage-ID: <r2@example.org>\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/report; report-type=disposition-notification; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nYour message was read.\r\n\
        --b\r\nContent-Type: message/disposition-notification\r\n\r\nFinal-Recipient: rfc822; x@example.org\r\n\
        Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--b--\r\n";
    assert!(parse(read_receipt).expect("parses").bounce.is_none());
}

#[test]
fn messages_over_the_limit_are_refused_unread() {
    let mut raw = b"From: a@example.com\r\nSubject: big\r\n\r\n".to_vec();
    raw.resize(MAX_SIZE, b'x');
    assert!(parse(&raw).is_ok(), "exactly the limit is fine");
    raw.push(b'x');
    assert_eq!(parse(&raw), Err(ParseError::TooLarge { size: MAX_SIZE + 1, limit: 400 * 1024 }));
}

#[test]
fn text_that_is_not_an_email_is_malformed() {
    assert!(matches!(parse(b""), Err(ParseError::Malformed(_))));
    assert!(matches!(parse(b"hello, this is just a note\r\nnothing more"), Err(ParseError::Malformed(_))));
}
