//! Every classification rule, on messages like the ones partners and strangers actually send.

use linkcrm_domain::enums::{InboundIntent, ReplyClass};
use linkcrm_mail::{classify_reply, classify_request, parse, InboundEmail};

fn fixture(name: &str) -> InboundEmail {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    parse(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).expect("parses")
}

/// A plain-text reply from a partner to our first message.
fn reply(extra_headers: &str, subject: &str, body: &str) -> InboundEmail {
    let raw = format!(
        "From: Sam Lee <sam@partner-site.example.com>\r\nTo: zoe@outreach.example.com\r\n\
         Subject: {subject}\r\nDate: Mon, 10 Mar 2025 10:00:00 +0000\r\n\
         Message-ID: <r{n}@partner-site.example.com>\r\nIn-Reply-To: <first@outreach.example.com>\r\n\
         {extra_headers}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        n = body.len(),
        body = body.replace('\n', "\r\n"),
    );
    parse(raw.as_bytes()).expect("parses")
}

fn says(body: &str) -> InboundEmail {
    reply("", "Re: Quick question about your guides", body)
}

#[test]
fn delivery_status_notifications_are_bounces() {
    assert_eq!(classify_reply(&fixture("dsn_hard_bounce.eml")), (ReplyClass::Bounce, "dsn_report"));
    assert_eq!(classify_reply(&fixture("dsn_delayed.eml")), (ReplyClass::Bounce, "dsn_report"));
}

#[test]
fn an_old_style_bounce_without_a_report_is_recognised_by_its_sender() {
    let raw = "From: MAILER-DAEMON@mail.partner-site.example.com\r\nTo: zoe@outreach.example.com\r\n\
        Subject: failure notice\r\nDate: Mon, 10 Mar 2025 10:00:00 +0000\r\n\r\n\
        Hi. This is the qmail-send program at mail.partner-site.example.com.\r\n\
        I'm afraid I wasn't able to deliver your message to the following addresses.\r\n\r\n\
        <sam@partner-site.example.com>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n";
    assert_eq!(classify_reply(&parse(raw.as_bytes()).unwrap()), (ReplyClass::Bounce, "mailer_daemon_notice"));
    // The same subject from a person is not a bounce.
    assert_ne!(classify_reply(&reply("", "failure notice", "Sure, send it over")).0, ReplyClass::Bounce);
}

#[test]
fn auto_reply_headers_mean_out_of_office() {
    assert_eq!(classify_reply(&fixture("ooo_auto_reply.eml")), (ReplyClass::OutOfOffice, "auto_reply_header"));
    let x_autoreply = reply("X-Autoreply: yes\r\n", "Re: Quick question", "Thanks, I'll get back to you.");
    assert_eq!(classify_reply(&x_autoreply), (ReplyClass::OutOfOffice, "auto_reply_header"));
}

#[test]
fn an_out_of_office_subject_or_body_without_headers() {
    let by_subject = reply("", "Out of Office: Re: Quick question about your guides", "Back on the 17th.");
    assert_eq!(classify_reply(&by_subject), (ReplyClass::OutOfOffice, "ooo_subject"));
    let by_body = says(
        "Hello,\n\nI'm currently out of the office until Monday 17 March, with limited\naccess to email. \
         For urgent matters please contact editors@partner-site.example.com.\n\nSam",
    );
    assert_eq!(classify_reply(&by_body), (ReplyClass::OutOfOffice, "ooo_body"));
}

#[test]
fn bulk_mail_is_never_a_personal_answer() {
    let newsletter = reply("Precedence: bulk\r\n", "Our March deals", "Interested in 20% off? Sure you are!");
    assert_eq!(classify_reply(&newsletter), (ReplyClass::Other, "bulk_precedence"));
}

#[test]
fn requests_to_stop_are_unsubscribes() {
    for body in ["Please remove me from your list.", "Stop emailing me. This is the third time.", "unsubscribe"] {
        assert_eq!(classify_reply(&says(body)), (ReplyClass::Unsubscribe, "unsubscribe_request"), "{body}");
    }
}

#[test]
fn talk_of_money_is_a_price_question() {
    assert_eq!(classify_reply(&fixture("reply_price_gmail.eml")), (ReplyClass::AsksPrice, "price_question"));
    for body in [
        "Hi Zoë, how much are you offering for this?",
        "Sure, happy to. Our fee is $120 per post, paid upfront.",
        "We only publish sponsored content at the moment.",
        "It would be 150 EUR.",
    ] {
        assert_eq!(classify_reply(&says(body)), (ReplyClass::AsksPrice, "price_question"), "{body}");
    }
}

#[test]
fn clear_declines_are_not_interested() {
    for body in [
        "Thanks, but we don't accept sponsored posts or guest contributions.",
        "No thanks, not interested.",
        "Appreciate the note but we'll pass on this one.",
    ] {
        assert_eq!(classify_reply(&says(body)), (ReplyClass::NotInterested, "decline"), "{body}");
    }
}

#[test]
fn positive_answers_are_interested() {
    assert_eq!(classify_reply(&fixture("reply_html_only.eml")), (ReplyClass::Interested, "positive_reply"));
    for body in ["Sure, send me a draft.", "Yes please, this sounds interesting!", "Go ahead and pitch 3 topics."] {
        assert_eq!(classify_reply(&says(body)), (ReplyClass::Interested, "positive_reply"), "{body}");
    }
}

#[test]
fn anything_else_is_other() {
    for body in ["Who is this?", "I'm not sure what you mean."] {
        assert_eq!(classify_reply(&says(body)), (ReplyClass::Other, "no_rule_matched"), "{body}");
    }
}

#[test]
fn our_own_quoted_pitch_does_not_decide_the_class() {
    let body = "Got it, I'll forward this to our editor.\n\n\
        On Mon, 10 Mar 2025 at 09:00, Zoë <zoe@outreach.example.com> wrote:\n\
        > Would you be interested in a guest post? Happy to discuss rates.\n\
        > Not interested? Unsubscribe: https://app.linkcrm.example/u/1";
    assert_eq!(classify_reply(&says(body)), (ReplyClass::Other, "no_rule_matched"));
}

fn request(subject: &str, body: &str) -> InboundEmail {
    let raw = format!(
        "From: someone@pitcher.example.net\r\nTo: hello@ourblog.example.com\r\nSubject: {subject}\r\n\
         Date: Tue, 11 Mar 2025 07:40:00 +0000\r\nMessage-ID: <q1@pitcher.example.net>\r\n\r\n{body}\r\n"
    );
    parse(raw.as_bytes()).expect("parses")
}

#[test]
fn a_guest_post_offer_is_a_pitch() {
    assert_eq!(
        classify_request(&fixture("request_guest_post.eml")),
        (InboundIntent::GuestPostPitch, "guest_post_pitch")
    );
}

#[test]
fn a_link_exchange_is_a_swap() {
    let email =
        request("Partnership?", "Would you be up for a link exchange? We link to your guide, you link to ours.");
    assert_eq!(classify_request(&email), (InboundIntent::LinkSwap, "link_swap"));
}

#[test]
fn adding_a_link_is_an_insertion_and_paid_when_money_is_offered() {
    let free = request("Resource suggestion", "Could you add a link to our free calculator in your existing article?");
    assert_eq!(classify_request(&free), (InboundIntent::LinkInsertion, "link_insertion"));
    let paid = request(
        "Link insertion inquiry",
        "We'd like to insert a link into your post on budgeting. We can pay $80 via PayPal.",
    );
    assert_eq!(classify_request(&paid), (InboundIntent::PaidLinkInsertion, "paid_link_insertion"));
    let unpaid = request("Link", "Could you add a link to our guide? We can't pay, sorry.");
    assert_eq!(classify_request(&unpaid), (InboundIntent::LinkInsertion, "link_insertion"));
}

#[test]
fn spam_needs_strong_or_several_signals() {
    let seo = request("Rank #1 on Google", "Dear Webmaster, our SEO services get you to the first page of Google.");
    assert_eq!(classify_request(&seo), (InboundIntent::Spam, "spam_signals"));
    let pills = request("Hello", "Cheap viagra, fast delivery.");
    assert_eq!(classify_request(&pills), (InboundIntent::Spam, "spam_signals"));
    // One weak signal in an ordinary pitch is not spam.
    let pitch = request("Guest post", "I'd love to write for you; originality guaranteed.");
    assert_eq!(classify_request(&pitch), (InboundIntent::GuestPostPitch, "guest_post_pitch"));
}

#[test]
fn an_unrelated_message_has_no_intent() {
    let email = request("Question", "Hi, I have a question about your privacy policy.");
    assert_eq!(classify_request(&email), (InboundIntent::Other, "no_rule_matched"));
}
