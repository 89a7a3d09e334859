//! Email over SMTP: sign-in codes (P25) and the outbox's mails (P26, P30).
//!
//! lettre builds each message (headers, RFC 2047 subjects, quoted-printable UTF-8 text) and its
//! envelope; the SMTP exchange itself is this module's, on a socket with `TCP_NODELAY` and
//! kept open between messages. lettre 0.11.23 (the newest release) writes the body and the
//! closing `.` as two writes on a socket with Nagle's algorithm on, so every message waits
//! for the relay's delayed ACK: 40 ms on Linux, a ceiling of about 22 messages a second per
//! connection (lettre pull request #1159 fixes it upstream, not yet released). Here the body
//! and its terminator go in one write, and a message costs about what the relay takes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::time::Duration;

use lettre::Message;
use lettre::address::Envelope;
use lettre::message::Mailbox;
use lettre::transport::smtp::extension::ClientId;
use steward_core::Mailer;

/// How long a connect, a read or a write may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Connections kept open for the next messages.
const IDLE_CONNECTIONS: usize = 4;
/// The longest reply line a relay may send; anything longer ends the session.
const MAX_REPLY_LINE: usize = 4096;

/// Sends through one SMTP server.
pub struct SmtpMailer {
    host: String,
    port: u16,
    from: Mailbox,
    hello: String,
    idle: Mutex<Vec<Session>>,
}

impl SmtpMailer {
    /// A mailer for `host:port`, sending as `from`. Plain SMTP: use it with a relay on the
    /// same host or network (the relay handles TLS onward).
    pub fn new(host: &str, port: u16, from: &str) -> Result<SmtpMailer, String> {
        let from: Mailbox = from
            .parse()
            .map_err(|_| "the sender address is not a valid mailbox".to_string())?;
        Ok(SmtpMailer {
            host: host.to_string(),
            port,
            from,
            hello: ClientId::default().to_string(),
            idle: Mutex::new(Vec::new()),
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

/// A message as Steward sends it: `Message-ID: <id@sender's domain>` when the outbox gave an
/// id; UTF-8 text (the Chinese half), quoted-printable, so that the ASCII lines stay readable
/// as they are and no relay has to carry 8-bit data.
fn build(
    from: &Mailbox,
    id: Option<&str>,
    to: &str,
    subject: &str,
    body: &str,
) -> Result<Message, String> {
    let to: Mailbox = to
        .parse()
        .map_err(|_| "the recipient address is not a valid mailbox".to_string())?;
    let message_id = id.map(|id| format!("<{id}@{}>", from.email.domain()));
    Message::builder()
        .message_id(message_id)
        .from(from.clone())
        .to(to)
        .subject(subject)
        .singlepart(
            lettre::message::SinglePart::builder()
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .header(lettre::message::header::ContentTransferEncoding::QuotedPrintable)
                .body(body.to_string()),
        )
        .map_err(|_| "the message could not be built".to_string())
}

/// For trying Steward out without a mail relay: each message is written, as it would be sent,
/// to a file of its own in a directory (`<process id>-<n>.eml`, readable by its owner only). Mail holds
/// addresses and sign-in codes in clear: never for a deployment that holds real people's PI.
pub struct DirMailer {
    dir: std::path::PathBuf,
    from: Mailbox,
    next: std::sync::atomic::AtomicU64,
}

impl DirMailer {
    /// Mail to files in `dir` (made if missing), sent as `from`.
    pub fn new(dir: &std::path::Path, from: &str) -> Result<DirMailer, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let from: Mailbox = from
            .parse()
            .map_err(|_| "the sender address is not a valid mailbox".to_string())?;
        Ok(DirMailer {
            dir: dir.to_path_buf(),
            from,
            next: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn write(&self, id: Option<&str>, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let message = build(&self.from, id, to, subject, body)?;
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // In order of sending within a process; two processes never pick one name.
        let path = self.dir.join(format!("{}-{n:06}.eml", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(|_| "the mail file could not be made".to_string())?;
        file.write_all(&message.formatted())
            .map_err(|_| "the mail file could not be written".to_string())
    }
}

impl Mailer for DirMailer {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        self.write(None, to, subject, body)
    }

    fn send_message(&self, id: &str, to: &str, subject: &str, body: &str) -> Result<(), String> {
        self.write(Some(id), to, subject, body)
    }
}

impl SmtpMailer {
    /// Sends, with `Message-ID: <id@sender's domain>` when the outbox gave an id.
    fn deliver(&self, id: Option<&str>, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let message = build(&self.from, id, to, subject, body)?;
        let envelope = message.envelope().clone();
        let data = stuffed(&message.formatted());
        // A kept connection may have been closed by the relay meanwhile: a failure on one is
        // retried once on a new connection. The relay has not taken the message unless it
        // answered the final dot, so the retry cannot send it twice unless that answer was
        // lost, which the outbox's at-least-once promise (and the Message-ID) allows for.
        let kept = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let outcome = match kept {
            Some(mut session) => match session.send(&envelope, &data) {
                Ok(()) => Ok(session),
                Err(SmtpError::Network(_)) => self.fresh_send(&envelope, &data),
                Err(e) => Err(e),
            },
            None => self.fresh_send(&envelope, &data),
        };
        match outcome {
            Ok(session) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < IDLE_CONNECTIONS
                {
                    idle.push(session);
                }
                Ok(())
            }
            Err(e) => {
                // The error names the relay's reply or the network failure, not the message.
                tracing::warn!(error = %e, "sending email failed");
                Err("sending failed".to_string())
            }
        }
    }

    fn fresh_send(&self, envelope: &Envelope, data: &[u8]) -> Result<Session, SmtpError> {
        let mut session = Session::open(&self.host, self.port, &self.hello)?;
        session.send(envelope, data)?;
        Ok(session)
    }
}

/// Why an exchange with the relay failed: the network, or the relay's reply (its code).
#[derive(Debug)]
enum SmtpError {
    Network(std::io::Error),
    Refused(u16),
    Unsupported(&'static str),
}

impl std::fmt::Display for SmtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpError::Network(e) => write!(f, "network: {e}"),
            SmtpError::Refused(code) => write!(f, "the relay answered {code}"),
            SmtpError::Unsupported(what) => write!(f, "the relay does not support {what}"),
        }
    }
}

impl From<std::io::Error> for SmtpError {
    fn from(e: std::io::Error) -> Self {
        SmtpError::Network(e)
    }
}

/// One open SMTP connection, after its greeting and `EHLO`.
struct Session {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    smtputf8: bool,
}

impl Session {
    fn open(host: &str, port: u16, hello: &str) -> Result<Session, SmtpError> {
        let mut last = None;
        let mut stream = None;
        for addr in (host, port).to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, TIMEOUT) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = match (stream, last) {
            (Some(s), _) => s,
            (None, Some(e)) => return Err(e.into()),
            (None, None) => {
                return Err(SmtpError::Network(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the relay's name resolved to no address",
                )));
            }
        };
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let mut session = Session {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
            smtputf8: false,
        };
        session.expect(220)?;
        let lines = session.command(&format!("EHLO {hello}\r\n"), 250)?;
        session.smtputf8 = lines.iter().any(|l| {
            l.get(4..)
                .is_some_and(|e| e.eq_ignore_ascii_case("SMTPUTF8"))
        });
        Ok(session)
    }

    fn send(&mut self, envelope: &Envelope, data: &[u8]) -> Result<(), SmtpError> {
        let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
        let utf8 = !from.is_ascii() || envelope.to().iter().any(|a| !a.to_string().is_ascii());
        if utf8 && !self.smtputf8 {
            return Err(SmtpError::Unsupported("SMTPUTF8"));
        }
        let option = if utf8 { " SMTPUTF8" } else { "" };
        self.command(&format!("MAIL FROM:<{from}>{option}\r\n"), 250)?;
        for to in envelope.to() {
            self.command(&format!("RCPT TO:<{to}>\r\n"), 250)?;
        }
        self.command("DATA\r\n", 354)?;
        // The message and its terminator in one write.
        let mut out = Vec::with_capacity(data.len() + 5);
        out.extend_from_slice(data);
        if !data.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b".\r\n");
        self.writer.write_all(&out)?;
        self.expect(250)?;
        Ok(())
    }

    fn command(&mut self, line: &str, code: u16) -> Result<Vec<String>, SmtpError> {
        self.writer.write_all(line.as_bytes())?;
        self.expect(code)
    }

    /// Reads one reply (all its lines) and checks its code.
    fn expect(&mut self, code: u16) -> Result<Vec<String>, SmtpError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let n = (&mut self.reader)
                .take(MAX_REPLY_LINE as u64)
                .read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                return Err(SmtpError::Network(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the relay closed the connection or sent an overlong line",
                )));
            }
            let line = line.trim_end().to_string();
            let got: u16 = line.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                return if got == code {
                    Ok(lines)
                } else {
                    Err(SmtpError::Refused(got))
                };
            }
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.writer.write_all(b"QUIT\r\n");
    }
}

/// The message as SMTP carries it: CRLF line ends, and a line that starts with `.` given a
/// second one (RFC 5321 §4.5.2).
fn stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 16);
    let mut at_line_start = true;
    let mut previous = 0u8;
    for &b in message {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
        previous = b;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn a_line_that_starts_with_a_dot_is_stuffed_and_bare_newlines_become_crlf() {
        assert_eq!(
            stuffed(b"a\r\n.b\r\n..c\nd"),
            b"a\r\n..b\r\n...c\r\nd".to_vec()
        );
        assert_eq!(stuffed(b".\r\n"), b"..\r\n".to_vec());
    }

    /// A relay on loopback that records each message's data and counts connections.
    fn relay() -> (u16, Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let (g, c) = (Arc::clone(&got), Arc::clone(&connections));
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                c.fetch_add(1, Ordering::SeqCst);
                let g = Arc::clone(&g);
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut lines = BufReader::new(stream);
                    out.write_all(b"220 relay\r\n").unwrap();
                    let mut line = String::new();
                    while lines.read_line(&mut line).unwrap_or(0) > 0 {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" => b"250-relay\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
                            "DATA" => {
                                out.write_all(b"354 go on\r\n").unwrap();
                                let mut data = String::new();
                                loop {
                                    let mut l = String::new();
                                    lines.read_line(&mut l).unwrap();
                                    if l == ".\r\n" {
                                        break;
                                    }
                                    data.push_str(&l);
                                }
                                g.lock().unwrap().push(data);
                                b"250 taken\r\n"
                            }
                            "QUIT" => b"221 bye\r\n",
                            "RCPT" if line.contains("refused@") => b"550 no such user\r\n",
                            _ => b"250 ok\r\n",
                        };
                        out.write_all(reply).unwrap();
                        line.clear();
                    }
                });
            }
        });
        (port, got, connections)
    }

    #[test]
    fn messages_share_one_connection_and_arrive_whole() {
        let (port, got, connections) = relay();
        let mailer = SmtpMailer::new("127.0.0.1", port, "Steward <privacy@example.com>").unwrap();
        for i in 0..3 {
            mailer
                .send_message(
                    &format!("msg_{i}"),
                    "张三 <zhang@example.cn>",
                    "我们已收到您的请求",
                    ".a line that starts with a dot\n第二行",
                )
                .unwrap();
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        let got = got.lock().unwrap();
        assert_eq!(got.len(), 3);
        assert!(
            got[2].contains("Message-ID: <msg_2@example.com>"),
            "{}",
            got[2]
        );
        // The relay sees the stuffed line; un-stuffing gives back the text's first line.
        assert!(
            got[0].contains("\r\n..a line that starts with a dot"),
            "{}",
            got[0]
        );
        assert!(
            !got[0].contains("第二行"),
            "the text travels quoted-printable"
        );
    }

    #[test]
    fn a_refused_recipient_is_an_error_and_the_next_message_still_goes() {
        let (port, got, _) = relay();
        let mailer = SmtpMailer::new("127.0.0.1", port, "privacy@example.com").unwrap();
        assert!(mailer.send("refused@example.cn", "s", "b").is_err());
        mailer.send("ok@example.cn", "s", "b").unwrap();
        assert_eq!(got.lock().unwrap().len(), 1);
    }
}
