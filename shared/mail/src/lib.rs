//! Email out (the `Mailer` port and its SMTP adapter) and in (parsing and classifying received mail).
