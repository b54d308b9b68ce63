//! `SmtpMailer` against a real SMTP server (aiosmtpd) on loopback: what the server answers and
//! what it stored are what a recipient's mail server would see.

use linkcrm_mail::{new_message_id, parse, MailError, Mailer, OutgoingEmail, Security, SmtpMailer, SmtpSettings};
use linkcrm_netguard::Guard;
use linkcrm_testkit::{ServerTls, SmtpOptions, SmtpServer};
use std::time::{Duration, Instant};

/// The test servers listen on loopback, which the SSRF guard refuses unless told otherwise.
fn mailer() -> SmtpMailer {
    SmtpMailer::new().with_guard(Guard::allowing_private())
}

fn settings(port: u16) -> SmtpSettings {
    SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        security: Security::None,
        operator_configured: false,
        xoauth2: false,
    }
}

fn email(to: &str) -> OutgoingEmail {
    OutgoingEmail {
        from_name: "Zoë Müller".into(),
        from_address: "zoe@outreach.example.com".into(),
        to: to.into(),
        subject: "Zusammenarbeit für Ihren Blog – kurze Frage ✓".into(),
        body_text:
            "Hallo Jürgen,\n\nIhr Artikel über Gärtnern hat mir gefallen 🌱.\nLine starting with a dot:\n.done\n\nZoë"
                .into(),
        message_id: new_message_id("outreach.example.com"),
        in_reply_to: None,
        references: vec![],
        unsubscribe_url: "https://app.linkcrm.example/u/w1/5f2c9e?sig=ab12".into(),
        extra_headers: vec![("X-Linkcrm-Send".into(), "snd_01J9".into())],
        tracking_pixel_url: None,
        body_html: None,
    }
}

#[tokio::test]
async fn a_first_message_arrives_with_its_headers_and_utf8_intact() {
    let server = SmtpServer::start().expect("SMTP server");
    let sent = email("editor@blog.example.org");
    let accepted = mailer().send(&settings(server.port), &sent).await.expect("accepted");

    assert_eq!(accepted.message_id, sent.message_id);
    assert!(accepted.server_response.starts_with("250 "), "{}", accepted.server_response);
    let received = server.received();
    assert_eq!(received.len(), 1);
    let message = &received[0];
    assert_eq!(message.mail_from, "zoe@outreach.example.com");
    assert_eq!(message.rcpt_tos, vec!["editor@blog.example.org".to_owned()]);
    assert_eq!(message.header("Message-ID"), Some(format!("<{}>", accepted.message_id)));
    assert_eq!(
        message.header("List-Unsubscribe").as_deref(),
        Some("<https://app.linkcrm.example/u/w1/5f2c9e?sig=ab12>")
    );
    assert_eq!(message.header("List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert_eq!(message.header("X-Linkcrm-Send").as_deref(), Some("snd_01J9"));
    assert_eq!(message.header("In-Reply-To"), None);
    assert_eq!(message.header("References"), None);
    assert!(!message.tls);

    // Decoded the way a recipient's client decodes it.
    let parsed = parse(&message.raw).expect("parses");
    assert_eq!(parsed.message_id.as_deref(), Some(sent.message_id.as_str()));
    assert_eq!(parsed.subject, sent.subject);
    assert_eq!(parsed.text.replace("\r\n", "\n"), sent.body_text);
    let from = parsed.from.expect("From");
    assert_eq!((from.address.as_str(), from.name.as_deref()), ("zoe@outreach.example.com", Some("Zoë Müller")));
    assert_eq!(parsed.to[0].address, "editor@blog.example.org");
    let age = chrono::Utc::now() - parsed.date.expect("Date");
    assert!(age.num_seconds().abs() < 120, "Date is {age} away from now");
}

#[tokio::test]
async fn a_reply_carries_in_reply_to_and_references() {
    let server = SmtpServer::start().expect("SMTP server");
    let mut sent = email("editor@blog.example.org");
    sent.in_reply_to = Some("CAF=reply-2@mail.gmail.com".into());
    sent.references = vec!["first-1@outreach.example.com".into(), "CAF=reply-2@mail.gmail.com".into()];
    mailer().send(&settings(server.port), &sent).await.expect("accepted");

    let message = &server.received()[0];
    assert_eq!(message.header("In-Reply-To").as_deref(), Some("<CAF=reply-2@mail.gmail.com>"));
    let references = message.header("References").expect("References");
    assert_eq!(
        references.split_whitespace().collect::<Vec<_>>(),
        ["<first-1@outreach.example.com>", "<CAF=reply-2@mail.gmail.com>"]
    );
    let parsed = parse(&message.raw).expect("parses");
    assert_eq!(parsed.in_reply_to.as_deref(), Some("CAF=reply-2@mail.gmail.com"));
    assert_eq!(parsed.references, sent.references);
}

#[tokio::test]
async fn a_550_is_a_permanent_rejection_and_nothing_is_delivered() {
    let server = SmtpServer::start().expect("SMTP server");
    let err = mailer().send(&settings(server.port), &email("reject-me@blog.example.org")).await.unwrap_err();
    match &err {
        MailError::Rejected { code: 550, message } => assert!(message.contains("mailbox unavailable"), "{message}"),
        other => panic!("expected Rejected 550, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_451_is_deferred_and_may_be_retried() {
    let server = SmtpServer::start().expect("SMTP server");
    let err = mailer().send(&settings(server.port), &email("defer@blog.example.org")).await.unwrap_err();
    match &err {
        MailError::Deferred { code: 451, message } => assert!(message.contains("try again later"), "{message}"),
        other => panic!("expected Deferred 451, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_closed_port_is_unavailable_at_once() {
    // A port that was just free: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let started = Instant::now();
    let err = mailer().send(&settings(port), &email("editor@blog.example.org")).await.unwrap_err();
    assert!(matches!(err, MailError::Unavailable(_)), "{err:?}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_server_that_stops_answering_times_out_as_unavailable() {
    let server = SmtpServer::start().expect("SMTP server");
    let started = Instant::now();
    let mailer = SmtpMailer::with_timeout(Duration::from_millis(500)).with_guard(Guard::allowing_private());
    let err = mailer.send(&settings(server.port), &email("slow@blog.example.org")).await.unwrap_err();
    assert!(matches!(err, MailError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn a_connection_lost_after_the_data_is_uncertain_not_retryable() {
    // The server keeps the message and hangs up before saying so: exactly the case in which a
    // retry would deliver twice.
    let server = SmtpServer::start().expect("SMTP server");
    let err = mailer().send(&settings(server.port), &email("drop@blog.example.org")).await.unwrap_err();
    assert!(matches!(err, MailError::Uncertain(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn credentials_are_used_and_a_wrong_password_is_rejected() {
    let server = SmtpServer::start_with_user("zoe@outreach.example.com", "s3cret pass").expect("SMTP server");
    let mut mailbox = settings(server.port);
    mailbox.username = Some("zoe@outreach.example.com".into());
    mailbox.password = Some("s3cret pass".into());
    mailer().send(&mailbox, &email("editor@blog.example.org")).await.expect("accepted");
    assert_eq!(server.received()[0].authenticated_as.as_deref(), Some("zoe@outreach.example.com"));

    mailbox.password = Some("wrong".into());
    let err = mailer().send(&mailbox, &email("editor@blog.example.org")).await.unwrap_err();
    assert!(matches!(err, MailError::Rejected { code: 535, .. }), "{err:?}");
    assert_eq!(server.received().len(), 1);
    assert!(!format!("{mailbox:?}").contains("wrong"), "password printed: {mailbox:?}");
}

#[tokio::test]
async fn starttls_required_never_falls_back_to_plain_text() {
    // The test server does not offer STARTTLS, like a server whose offer was stripped in transit.
    let server = SmtpServer::start_with_user("zoe", "pw").expect("SMTP server");
    let mut mailbox = settings(server.port);
    mailbox.security = Security::StartTls;
    mailbox.host = "localhost".into();
    mailbox.username = Some("zoe".into());
    mailbox.password = Some("pw".into());
    let err = mailer().send(&mailbox, &email("editor@blog.example.org")).await.unwrap_err();
    assert!(matches!(&err, MailError::Unavailable(m) if m.contains("STARTTLS")), "{err:?}");
    assert!(server.received().is_empty());
}

/// A mailer that trusts the test server's own CA (and the system's), as an operator would with
/// `LINKCRM_SMTP_CA_FILE` for a private mail server.
fn trusting(server: &SmtpServer) -> SmtpMailer {
    mailer().with_root_certificates(&server.ca_pem().expect("a TLS server")).expect("CA accepted")
}

#[tokio::test]
async fn starttls_upgrades_then_the_message_arrives_encrypted() {
    let server = SmtpServer::start_starttls().expect("SMTP server");
    let mut mailbox = settings(server.port);
    mailbox.host = "localhost".into();
    mailbox.security = Security::StartTls;
    let sent = email("editor@blog.example.org");
    let accepted = trusting(&server).send(&mailbox, &sent).await.expect("accepted");

    assert!(accepted.server_response.starts_with("250 "), "{}", accepted.server_response);
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls, "the server saw the message in plain text");
    assert_eq!(received[0].header("Message-ID"), Some(format!("<{}>", sent.message_id)));
    assert_eq!(parse(&received[0].raw).expect("parses").subject, sent.subject);
}

#[tokio::test]
async fn implicit_tls_sends_encrypted_from_the_first_byte() {
    // By IP address: the certificate names 127.0.0.1 too, and that is checked as well.
    let server = SmtpServer::start_implicit_tls().expect("SMTP server");
    let mut mailbox = settings(server.port);
    mailbox.security = Security::Tls;
    trusting(&server).send(&mailbox, &email("editor@blog.example.org")).await.expect("accepted");

    let received = server.received();
    assert_eq!(received.len(), 1);
    assert!(received[0].tls);
    assert_eq!(received[0].rcpt_tos, vec!["editor@blog.example.org".to_owned()]);
}

#[tokio::test]
async fn auth_happens_after_starttls() {
    // The server offers AUTH only once the session is encrypted, as real submission servers do.
    let server = SmtpServer::start_with(SmtpOptions {
        user: Some(("zoe@outreach.example.com".into(), "s3cret pass".into())),
        tls: ServerTls::StartTls,
        cert_name: None,
        introspection_url: None,
    })
    .expect("SMTP server");
    let mut mailbox = settings(server.port);
    mailbox.host = "localhost".into();
    mailbox.security = Security::StartTls;
    mailbox.username = Some("zoe@outreach.example.com".into());
    mailbox.password = Some("s3cret pass".into());
    trusting(&server).send(&mailbox, &email("editor@blog.example.org")).await.expect("accepted");
    let received = server.received();
    assert_eq!(received[0].authenticated_as.as_deref(), Some("zoe@outreach.example.com"));
    assert!(received[0].tls);

    mailbox.password = Some("wrong".into());
    let err = trusting(&server).send(&mailbox, &email("editor@blog.example.org")).await.unwrap_err();
    assert!(matches!(err, MailError::Rejected { code: 535, .. }), "{err:?}");
    assert_eq!(server.received().len(), 1);
}

#[tokio::test]
async fn an_untrusted_certificate_fails_for_good_and_nothing_is_sent() {
    // The system's CAs do not know the test CA: exactly a private server nobody configured trust
    // for, or someone in the middle. Retrying cannot help, so the send fails without a retry.
    for (tls, security, host) in
        [(ServerTls::StartTls, Security::StartTls, "localhost"), (ServerTls::Implicit, Security::Tls, "127.0.0.1")]
    {
        let server =
            SmtpServer::start_with(SmtpOptions { user: Some(("zoe".into(), "pw".into())), tls, ..Default::default() })
                .expect("SMTP server");
        let mut mailbox = settings(server.port);
        mailbox.host = host.into();
        mailbox.security = security;
        mailbox.username = Some("zoe".into());
        mailbox.password = Some("pw".into());
        let err = mailer().send(&mailbox, &email("editor@blog.example.org")).await.unwrap_err();
        match &err {
            MailError::Invalid(m) => {
                assert!(m.contains("certificate") && m.contains(host) && m.contains("LINKCRM_SMTP_CA_FILE"), "{m}")
            }
            other => panic!("{security:?}: expected Invalid, got {other:?}"),
        }
        assert!(!err.is_retryable());
        assert!(server.received().is_empty());
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_even_from_a_trusted_ca() {
    // The server's certificate, from the CA the mailer trusts, is for another host: a trusted CA
    // alone must not be enough.
    let server = SmtpServer::start_with(SmtpOptions {
        tls: ServerTls::Implicit,
        cert_name: Some("mail.example.net".into()),
        ..SmtpOptions::default()
    })
    .expect("SMTP server");
    let mut mailbox = settings(server.port);
    mailbox.security = Security::Tls;
    let err = trusting(&server).send(&mailbox, &email("editor@blog.example.org")).await.unwrap_err();
    assert!(matches!(&err, MailError::Invalid(m) if m.contains("certificate")), "{err:?}");
    assert!(server.received().is_empty());
}

#[test]
fn extra_ca_certificates_must_hold_a_certificate() {
    let err = mailer().with_root_certificates(b"not a certificate").unwrap_err();
    assert!(matches!(&err, MailError::Invalid(m) if m.contains("no PEM certificate")), "{err:?}");
    let missing = std::path::Path::new("/nonexistent/linkcrm-ca.pem");
    let err = mailer().with_root_certificates_file(missing).unwrap_err();
    assert!(matches!(&err, MailError::Invalid(m) if m.contains("/nonexistent/linkcrm-ca.pem")), "{err:?}");
}

#[tokio::test]
async fn an_invalid_email_is_refused_before_connecting() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut bad = email("editor@blog.example.org");
    bad.unsubscribe_url = "mailto:unsubscribe@example.com".into();
    // Invalid, not Unavailable: the closed port was never tried.
    let err = mailer().send(&settings(port), &bad).await.unwrap_err();
    assert!(matches!(err, MailError::Invalid(_)), "{err:?}");
}

/// With the guard on (the default), a mail server on loopback, a private network or the metadata
/// address is never contacted, and a tenant cannot tell a closed port from an open one or a
/// refused address from a silent one: the error reads the same.
#[tokio::test]
async fn private_addresses_are_refused_and_failures_look_alike() {
    let server = SmtpServer::start().expect("smtp server");
    let strict = SmtpMailer::with_timeout(Duration::from_millis(500));
    for host in ["127.0.0.1", "localhost", "169.254.169.254", "10.0.0.1", "::1", "[::ffff:127.0.0.1]"] {
        let mailbox = SmtpSettings { host: host.into(), ..settings(server.port) };
        let err = strict.send(&mailbox, &email("editor@blog.example.org")).await.unwrap_err();
        assert!(matches!(&err, MailError::Invalid(m) if m.starts_with(linkcrm_mail::UNREACHABLE)), "{host}: {err:?}");
        assert!(!err.to_string().contains(host.trim_matches(['[', ']'])) || host == "localhost", "{host}: {err}");
    }
    assert!(server.received().is_empty(), "nothing reached the loopback server");
    // The operator's own relay (the platform mailbox) may sit on a private network.
    let relay = SmtpSettings { operator_configured: true, ..settings(server.port) };
    strict.send(&relay, &email("editor@blog.example.org")).await.expect("the operator's relay is reachable");
    assert_eq!(server.received().len(), 1);

    // Allowed (for local use): a closed port and a server that never answers say the same.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent = listener.local_addr().unwrap().port();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let allowed = SmtpMailer::with_timeout(Duration::from_millis(500)).with_guard(Guard::allowing_private());
    let mut texts = Vec::new();
    for port in [closed, silent] {
        let err = allowed.send(&settings(port), &email("editor@blog.example.org")).await.unwrap_err();
        assert!(matches!(err, MailError::Unavailable(_)), "{err:?}");
        texts.push(err.to_string());
    }
    assert_eq!(texts[0], texts[1], "closed and silent ports are told apart");
    drop(listener);
}
