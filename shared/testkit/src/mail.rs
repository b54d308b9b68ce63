//! Messages as mail servers write them, for inbound-mail tests.

/// A delivery status notification (RFC 3464) with its own Message-ID `<id>`, reporting that the
/// message `original` (a Message-ID) could not be delivered to `recipient` (5.1.1, a hard bounce).
pub fn hard_bounce(id: &str, recipient: &str, original: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net\r\nTo: dana@outreach.example.com\r\n\
Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <{id}>\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"b1\"\r\n\r\n\
--b1\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
--b1\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n\r\n\
--b1\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{original}>\r\nTo: {recipient}\r\nSubject: Hello\r\n\r\n\
--b1--\r\n"
    )
}
