//! The outbox's delivery rate (issue 12), against raw sends of the same messages in the same
//! run: emails to a local SMTP sink and webhook calls to a local HTTP receiver, both on
//! loopback threads of this process. Steward's side is the dispatcher draining the outbox:
//! claim, write each email from its request and the subject's stored address (decrypted), or
//! sign each webhook call, send, record the outcome (and a `message.sent` audit entry per
//! mail). The raw side sends the same bytes with the same clients, nothing else.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow};
use serde::Serialize;
use steward_core::Mailer;
use steward_core::dispatch::{Dispatcher, WebhookClient};

/// What the outbox phase measured.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct OutboxFigures {
    pub outbox_emails: usize,
    pub outbox_email_per_s: f64,
    pub outbox_email_raw_per_s: f64,
    pub outbox_email_ratio: f64,
    pub outbox_webhooks: usize,
    pub outbox_webhook_per_s: f64,
    pub outbox_webhook_raw_per_s: f64,
    pub outbox_webhook_ratio: f64,
}

/// A server on a loopback port that runs `session` on a thread per connection; what the
/// sessions count (messages taken) is shared.
fn on_loopback(
    session: fn(TcpStream, &AtomicUsize) -> std::io::Result<()>,
) -> Result<(u16, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    let taken = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&taken);
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let count = Arc::clone(&count);
            std::thread::spawn(move || {
                let _ = session(stream, &count);
            });
        }
    });
    Ok((port, taken))
}

/// A minimal SMTP server's session: takes every message and counts it.
fn smtp_session(stream: TcpStream, count: &AtomicUsize) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    out.write_all(b"220 sink\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" | "HELO" => out.write_all(b"250-sink\r\n250 8BITMIME\r\n")?,
            "DATA" => {
                out.write_all(b"354 go on\r\n")?;
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                }
                count.fetch_add(1, Ordering::Relaxed);
                out.write_all(b"250 taken\r\n")?;
            }
            "QUIT" => {
                out.write_all(b"221 bye\r\n")?;
                return Ok(());
            }
            _ => out.write_all(b"250 ok\r\n")?,
        }
    }
}

/// A minimal HTTP/1.1 receiver's session: answers every request `204` and counts it.
fn http_session(stream: TcpStream, count: &AtomicUsize) -> std::io::Result<()> {
    let mut out = stream.try_clone()?;
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            if lines.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        lines.read_exact(&mut body)?;
        count.fetch_add(1, Ordering::Relaxed);
        out.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")?;
    }
}

/// Runs the dispatcher until the outbox has nothing due: what it delivered, and the seconds.
fn drain(dispatcher: &Dispatcher) -> Result<(usize, f64)> {
    let t = Instant::now();
    let mut delivered = 0;
    loop {
        let r = dispatcher.run_once()?;
        delivered += r.delivered;
        if r.claimed == 0 {
            return Ok((delivered, t.elapsed().as_secs_f64()));
        }
    }
}

fn wait_for(count: &AtomicUsize, n: usize) -> Result<()> {
    let started = Instant::now();
    while count.load(Ordering::Relaxed) < n {
        if started.elapsed().as_secs() > 60 {
            return Err(anyhow!("the local receiver did not get every message"));
        }
        std::thread::yield_now();
    }
    Ok(())
}

/// Measures delivery of `emails` emails and `webhooks` webhook calls on a fresh store of
/// `backend`.
pub(crate) fn measure(
    backend: &steward_core::Backend,
    emails: usize,
    webhooks: usize,
) -> Result<OutboxFigures> {
    let vault = Arc::new(crate::bench::fresh_vault(backend)?.with_local_webhooks(true));
    let app = crate::bench::actor(&vault, "service:bench", "service")?;
    let officer = crate::bench::actor(&vault, "staff:bench-officer", "privacy_officer")?;

    // Emails: one `request.received` mail for each of `emails` requests, a subject each.
    let (smtp_port, mails) = on_loopback(smtp_session)?;
    let mailer = Arc::new(
        steward_server::mail::SmtpMailer::new("127.0.0.1", smtp_port, "Bench <bench@example.com>")
            .map_err(|e| anyhow!(e))?,
    );
    for _ in 0..emails {
        let s = crate::bench::subject_with_email(&vault, &app, "mail.")?;
        vault.open_request(&officer, s, "inquiry", None, None)?;
    }
    let dispatcher = Dispatcher::new(
        Arc::clone(&vault),
        Some(mailer.clone() as Arc<dyn Mailer>),
        None,
    );
    let (delivered, email_s) = drain(&dispatcher)?;
    if delivered != emails {
        return Err(anyhow!("{delivered} of {emails} emails delivered"));
    }
    wait_for(&mails, emails)?;
    // Raw: the same client sending a mail of the same size, as many times.
    let body = "We received your request for a question or complaint about your personal information.\nReference: req_0123456789abcdef01234567\nWe will answer by 2026-12-31.\n\nIf you did not make this request, reply to this email.\n\nExample Cloud Privacy Statement, privacy team\n";
    let t = Instant::now();
    for i in 0..emails {
        mailer
            .send_message(
                &format!("msg_raw{i:020}"),
                "mail.0123456789ab@example.cn",
                "We received your request (req_0123456789abcdef01234567)",
                body,
            )
            .map_err(|e| anyhow!(e))?;
    }
    let email_raw_s = t.elapsed().as_secs_f64();
    wait_for(&mails, 2 * emails)?;

    // Webhooks: one `consent.changed` call for each of `webhooks` consent changes.
    let (http_port, calls) = on_loopback(http_session)?;
    let url = format!("http://127.0.0.1:{http_port}/hooks");
    vault.create_endpoint(None, &url, &["consent.changed"])?;
    let subjects: Vec<_> = (0..64)
        .map(|_| vault.register(&app))
        .collect::<Result<_, _>>()?;
    let target = vault.consent_target("purpose:surveys")?;
    let changes: Vec<steward_core::ConsentChange<'_>> = (0..webhooks)
        .map(|i| {
            subjects
                .get(i % subjects.len())
                .map(|s| steward_core::ConsentChange {
                    actor: &app,
                    subject: *s,
                    target,
                    granted: i % 2 == 0,
                    separate: false,
                    channel: "web",
                    gpc: false,
                    action: None,
                })
                .ok_or_else(|| anyhow!("no subject"))
        })
        .collect::<Result<_>>()?;
    for chunk in changes.chunks(100) {
        for r in vault.consent_each(chunk) {
            r?;
        }
    }
    let client = Arc::new(steward_server::webhook::HttpWebhooks::default());
    let dispatcher = Dispatcher::new(
        Arc::clone(&vault),
        None,
        Some(client.clone() as Arc<dyn WebhookClient>),
    );
    let (delivered, hook_s) = drain(&dispatcher)?;
    if delivered != webhooks {
        return Err(anyhow!("{delivered} of {webhooks} webhook calls delivered"));
    }
    wait_for(&calls, webhooks)?;
    let payload = r#"{"type":"consent.changed","timestamp":"2026-12-07T00:00:00.000Z","data":{"subject":"62ea5a8b2eb42ce4ce4c6cdad55be3c1","target":"purpose:surveys","granted":true,"separate":false}}"#;
    let headers = [
        ("content-type", "application/json".to_string()),
        ("webhook-id", "msg_0123456789abcdef01234567".to_string()),
        ("webhook-timestamp", "1796601600".to_string()),
        (
            "webhook-signature",
            "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=".to_string(),
        ),
    ];
    let t = Instant::now();
    for _ in 0..webhooks {
        let status = client
            .post(&url, &headers, payload)
            .map_err(|e| anyhow!(e))?;
        if status != 204 {
            return Err(anyhow!("the receiver answered {status}"));
        }
    }
    let hook_raw_s = t.elapsed().as_secs_f64();
    let per_s = |n: usize, s: f64| n as f64 / s.max(1e-9);
    Ok(OutboxFigures {
        outbox_emails: emails,
        outbox_email_per_s: per_s(emails, email_s),
        outbox_email_raw_per_s: per_s(emails, email_raw_s),
        outbox_email_ratio: email_raw_s / email_s.max(1e-9),
        outbox_webhooks: webhooks,
        outbox_webhook_per_s: per_s(webhooks, hook_s),
        outbox_webhook_raw_per_s: per_s(webhooks, hook_raw_s),
        outbox_webhook_ratio: hook_raw_s / hook_s.max(1e-9),
    })
}
