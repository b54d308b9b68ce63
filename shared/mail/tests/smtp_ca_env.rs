//! `SmtpMailer::from_env` and `LINKCRM_SMTP_CA_FILE`. A test binary of its own: it changes the
//! process environment, which no other test may read at the same time.

use linkcrm_mail::{new_message_id, MailError, Mailer, OutgoingEmail, Security, SmtpMailer, SmtpSettings, CA_FILE_VAR};
use linkcrm_testkit::SmtpServer;

fn email() -> OutgoingEmail {
    OutgoingEmail {
        from_name: "Zoë".into(),
        from_address: "zoe@outreach.example.com".into(),
        to: "editor@blog.example.org".into(),
        subject: "Hello".into(),
        body_text: "Hi".into(),
        message_id: new_message_id("outreach.example.com"),
        in_reply_to: None,
        references: vec![],
        unsubscribe_url: "https://app.linkcrm.example/u/w1/5f2c9e?sig=ab12".into(),
        extra_headers: vec![],
        tracking_pixel_url: None,
        body_html: None,
    }
}

#[tokio::test]
async fn the_ca_file_from_the_environment_is_trusted_and_a_bad_one_is_an_error() {
    let server = SmtpServer::start_starttls().expect("SMTP server");
    // The test server is on loopback, which `from_env`'s guard allows only when told to.
    std::env::set_var("LINKCRM_ALLOW_PRIVATE_TARGETS", "true");
    let mailbox = SmtpSettings {
        host: "localhost".into(),
        port: server.port,
        username: None,
        password: None,
        security: Security::StartTls,
        operator_configured: false,
        xoauth2: false,
    };

    // Unset or empty: the system's CAs only, which do not know the test CA.
    for value in [None, Some("")] {
        match value {
            Some(v) => std::env::set_var(CA_FILE_VAR, v),
            None => std::env::remove_var(CA_FILE_VAR),
        }
        let err = SmtpMailer::from_env().expect("no extra CA").send(&mailbox, &email()).await.unwrap_err();
        assert!(matches!(&err, MailError::Invalid(m) if m.contains("certificate")), "{err:?}");
    }

    std::env::set_var(CA_FILE_VAR, server.ca_file.as_ref().expect("a TLS server"));
    SmtpMailer::from_env().expect("CA file read").send(&mailbox, &email()).await.expect("accepted");
    assert!(server.received()[0].tls);

    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    for path in [not_pem, dir.path().join("missing.pem")] {
        std::env::set_var(CA_FILE_VAR, &path);
        let err = SmtpMailer::from_env().unwrap_err();
        assert!(matches!(&err, MailError::Invalid(m) if m.contains(path.to_str().unwrap())), "{err:?}");
    }
    std::env::remove_var(CA_FILE_VAR);
}
