//! `FileMailer`: what a developer opens is the message `SmtpMailer` would have sent.

use linkcrm_mail::{new_message_id, parse, FileMailer, Mailer, OutgoingEmail, Security, SmtpSettings};

#[tokio::test]
async fn each_send_writes_one_eml_that_parses_back() {
    let dir = tempfile::tempdir().unwrap();
    let mailer = FileMailer::new(dir.path().join("outbox"));
    let mailbox = SmtpSettings {
        host: "unused.invalid".into(),
        port: 25,
        username: None,
        password: None,
        security: Security::None,
        operator_configured: false,
        xoauth2: false,
    };
    let email = OutgoingEmail {
        from_name: "Zoë".into(),
        from_address: "zoe@outreach.example.com".into(),
        to: "editor@blog.example.org".into(),
        subject: "Grüße".into(),
        body_text: "Hallo!".into(),
        message_id: new_message_id("outreach.example.com"),
        in_reply_to: None,
        references: vec![],
        unsubscribe_url: "https://app.linkcrm.example/u/1".into(),
        extra_headers: vec![],
        tracking_pixel_url: None,
        body_html: None,
    };
    let accepted = mailer.send(&mailbox, &email).await.expect("written");
    assert_eq!(accepted.message_id, email.message_id);

    let files: Vec<_> = std::fs::read_dir(mailer.dir()).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].extension().and_then(|e| e.to_str()), Some("eml"));
    let parsed = parse(&std::fs::read(&files[0]).unwrap()).expect("parses");
    assert_eq!(parsed.message_id.as_deref(), Some(email.message_id.as_str()));
    assert_eq!((parsed.subject.as_str(), parsed.text.as_str()), ("Grüße", "Hallo!"));
}
