//! Email over SMTP (lettre), for one-time sign-in codes (P25).

use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use steward_core::Mailer;

/// Sends through one SMTP server.
pub struct SmtpMailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `host:port`, sending as `from`. Plain SMTP: use it with a relay on the
    /// same host or network (the relay handles TLS onward).
    pub fn new(host: &str, port: u16, from: &str) -> Result<SmtpMailer, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| "the sender address is not a valid mailbox".to_string())?;
        Ok(SmtpMailer {
            transport: SmtpTransport::builder_dangerous(host)
                .port(port)
                .timeout(Some(std::time::Duration::from_secs(10)))
                .build(),
            from,
        })
    }
}

impl Mailer for SmtpMailer {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        self.deliver(None, to, subject, body)
    }

    fn send_message(&self, id: &str, to: &str, subject: &str, body: &str) -> Result<(), String> {
        self.deliver(Some(id), to, subject, body)
    }
}

impl SmtpMailer {
    /// Sends, with `Message-ID: <id@sender's domain>` when the outbox gave an id.
    fn deliver(&self, id: Option<&str>, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| "the recipient address is not a valid mailbox".to_string())?;
        let message_id = id.map(|id| format!("<{id}@{}>", self.from.email.domain()));
        let message = Message::builder()
            .message_id(message_id)
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            // UTF-8 text (the Chinese half), quoted-printable: the ASCII lines stay readable
            // as they are, and no relay has to carry 8-bit data.
            .singlepart(
                lettre::message::SinglePart::builder()
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .header(lettre::message::header::ContentTransferEncoding::QuotedPrintable)
                    .body(body.to_string()),
            )
            .map_err(|_| "the message could not be built".to_string())?;
        self.transport.send(&message).map(|_| ()).map_err(|e| {
            // The SMTP error names the server's reply, not the message.
            tracing::warn!(error = %e, "sending email failed");
            "sending failed".to_string()
        })
    }
}
