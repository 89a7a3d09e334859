//! Delivering the outbox ([`crate::outbox`]): claim due messages for a lease, send each —
//! email through a [`Mailer`], webhooks through a [`WebhookClient`], signed per Standard
//! Webhooks 1.0 — and record the outcome: delivered, failed and due again after an
//! exponential backoff with jitter, or dead after the last attempt allowed. At least once: a
//! dispatcher that dies mid-batch leaves its messages claimed until the lease ends, and the
//! next one sends them again under the same id (`webhook-id`), so receivers can drop repeats.
//! The only code that talks to the outside; time comes from the vault's clock.

use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value as Json, json};
use steward_store::{Delivery, OutboxRow};

use crate::error::Error;
use crate::selfservice::Mailer;
use crate::vault::{SubjectId, Vault};

/// Sends a webhook call. Implementations: HTTP in the server; tests post to a local receiver.
pub trait WebhookClient: Send + Sync {
    /// POSTs `body` (JSON) to `url` with `headers`; the HTTP status, or why nothing was
    /// answered (in words that hold no PI).
    fn post(&self, url: &str, headers: &[(&str, String)], body: &str) -> Result<u16, String>;
}

/// When failed messages are tried again.
#[derive(Clone, Copy, Debug)]
pub struct RetrySchedule {
    /// Attempts before a message is dead.
    pub max_attempts: u32,
    /// The wait after the first failure, ms; it doubles after each one.
    pub first_ms: i64,
    /// The longest wait, ms.
    pub max_ms: i64,
}

impl Default for RetrySchedule {
    /// 12 attempts: 5 s, 10 s, 20 s, … up to an hour between them (the last about 2 h 25 min
    /// after the first).
    fn default() -> RetrySchedule {
        RetrySchedule {
            max_attempts: 12,
            first_ms: 5_000,
            max_ms: 3_600_000,
        }
    }
}

/// What one pass delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DispatchReport {
    /// Messages claimed.
    pub claimed: usize,
    /// Delivered.
    pub delivered: usize,
    /// Failed, to be tried again.
    pub failed: usize,
    /// Failed for the last time.
    pub dead: usize,
}

/// Delivers the outbox of one vault.
pub struct Dispatcher {
    vault: Arc<Vault>,
    mailer: Option<Arc<dyn Mailer>>,
    webhooks: Option<Arc<dyn WebhookClient>>,
    /// When failures are tried again.
    pub schedule: RetrySchedule,
    /// How long a claim holds, ms: longer than a batch takes to send.
    pub lease_ms: i64,
    /// Messages claimed per pass.
    pub batch: usize,
}

impl Dispatcher {
    /// A dispatcher sending mail through `mailer` and webhooks through `webhooks`; a channel
    /// without one fails its messages (and keeps them) until one is configured.
    pub fn new(
        vault: Arc<Vault>,
        mailer: Option<Arc<dyn Mailer>>,
        webhooks: Option<Arc<dyn WebhookClient>>,
    ) -> Dispatcher {
        Dispatcher {
            vault,
            mailer,
            webhooks,
            schedule: RetrySchedule::default(),
            lease_ms: 120_000,
            batch: 100,
        }
    }

    /// The vault it delivers for.
    pub fn vault(&self) -> &Arc<Vault> {
        &self.vault
    }

    /// One pass: claims up to a batch of due messages, delivers each and records how it went.
    pub fn run_once(&self) -> Result<DispatchReport, Error> {
        let v = &self.vault;
        let now = v.clock.now_ms();
        let claimed = v
            .store
            .claim_outbox(now, now.saturating_add(self.lease_ms), self.batch)?;
        let mut report = DispatchReport {
            claimed: claimed.len(),
            ..DispatchReport::default()
        };
        let mut settled = Vec::with_capacity(claimed.len());
        let mut sent = Vec::new();
        for m in claimed {
            let outcome = match self.deliver(&m, &mut sent) {
                Ok(()) => {
                    report.delivered += 1;
                    Delivery::Delivered {
                        at_ms: v.clock.now_ms(),
                    }
                }
                Err(why) => {
                    let at_ms = v.clock.now_ms();
                    let dead = why.last || m.attempts + 1 >= self.schedule.max_attempts;
                    if dead {
                        report.dead += 1;
                        tracing::warn!(message = %m.id, event = %m.event, error = %why.text, "message not delivered, and not tried again");
                    } else {
                        report.failed += 1;
                        tracing::info!(message = %m.id, event = %m.event, error = %why.text, attempts = m.attempts + 1, "message not delivered; will retry");
                    }
                    Delivery::Failed {
                        at_ms,
                        next_ms: at_ms.saturating_add(self.backoff(m.attempts)),
                        dead,
                        error: why.text,
                    }
                }
            };
            settled.push((m.id, outcome));
        }
        // P21: each subject's address or identities read and sent, in the log (one unit for
        // the pass); then every outcome at once.
        if !sent.is_empty()
            && let Err(e) = v.note_sent(&sent)
        {
            tracing::warn!(code = e.code().as_str(), "recording sent messages failed");
        }
        v.store.settle_outbox_many(&settled)?;
        if report.claimed > 0 {
            tracing::info!(
                claimed = report.claimed,
                delivered = report.delivered,
                failed = report.failed,
                dead = report.dead,
                "outbox pass"
            );
        }
        Ok(report)
    }

    /// The wait before the next attempt after `attempts` earlier ones failed: doubling from
    /// `first_ms` up to `max_ms`, then spread by ±20% so that failures together do not come
    /// back together.
    fn backoff(&self, attempts: u32) -> i64 {
        let s = &self.schedule;
        let base = s
            .first_ms
            .saturating_mul(1_i64.checked_shl(attempts.min(40)).unwrap_or(i64::MAX))
            .min(s.max_ms);
        let spread = base / 5;
        let jitter = match self.vault.random_u32() {
            Ok(r) if spread > 0 => i64::from(r) % (2 * spread + 1) - spread,
            _ => 0,
        };
        base.saturating_add(jitter).max(1)
    }

    fn deliver(
        &self,
        m: &OutboxRow,
        sent: &mut Vec<(OutboxRow, SubjectId)>,
    ) -> Result<(), Failure> {
        match m.channel.as_str() {
            "webhook" => self.deliver_webhook(m, sent),
            "email" => self.deliver_email(m, sent),
            _ => Err(Failure::last("unknown channel")),
        }
    }

    fn deliver_webhook(
        &self,
        m: &OutboxRow,
        sent: &mut Vec<(OutboxRow, SubjectId)>,
    ) -> Result<(), Failure> {
        let v = &self.vault;
        let Some(client) = &self.webhooks else {
            return Err(Failure::again("no webhook client is configured"));
        };
        let endpoints = v
            .cached_endpoints()
            .map_err(|_| Failure::again("storage failed"))?;
        let Some(endpoint) = endpoints.iter().find(|e| e.id == m.destination) else {
            return Err(Failure::last("the endpoint no longer exists"));
        };
        if endpoint.disabled {
            return Err(Failure::last("the endpoint is disabled"));
        }
        let secret = v
            .endpoint_secret(endpoint)
            .map_err(|_| Failure::last("the endpoint's secret cannot be opened"))?;
        // An external system's request carries the subject's identities, added now (the
        // outbox row holds none); the disclosure is logged once it is made.
        let (payload, about) = if m.event == crate::external::REQUEST_EVENT {
            match v.render_dataset_request(m) {
                Ok(Some((body, subject))) => (body, Some(subject)),
                Ok(None) => {
                    return Err(Failure::last(
                        "the subject was erased, or Steward holds none of the identities the system takes",
                    ));
                }
                Err(Error::Store(_)) => return Err(Failure::again("storage failed")),
                Err(_) => return Err(Failure::last("the request could not be written")),
            }
        } else {
            (m.payload.clone(), None)
        };
        let timestamp = (v.clock.now_ms() / 1000).to_string();
        let signature = sign(&secret, &m.id, &timestamp, &payload);
        let headers = [
            ("content-type", "application/json".to_string()),
            ("webhook-id", m.id.clone()),
            ("webhook-timestamp", timestamp),
            ("webhook-signature", format!("v1,{signature}")),
        ];
        match client.post(&endpoint.url, &headers, &payload) {
            Ok(status) if (200..300).contains(&status) => {
                if let Some(subject) = about {
                    sent.push((m.clone(), subject));
                }
                Ok(())
            }
            Ok(status) => Err(Failure::again(&format!("HTTP {status}"))),
            Err(why) => Err(Failure::again(&why)),
        }
    }

    fn deliver_email(
        &self,
        m: &OutboxRow,
        sent: &mut Vec<(OutboxRow, SubjectId)>,
    ) -> Result<(), Failure> {
        let v = &self.vault;
        let Some(mailer) = &self.mailer else {
            return Err(Failure::again("no mail server is configured"));
        };
        let mail = match v.render_mail(m) {
            Ok(Some(mail)) => mail,
            Ok(None) => {
                return Err(Failure::last(
                    "the subject has no email address, or was erased",
                ));
            }
            Err(Error::Store(_)) => return Err(Failure::again("storage failed")),
            Err(_) => return Err(Failure::last("the message could not be written")),
        };
        mailer
            .send_message(&m.id, &mail.to, &mail.subject, &mail.body)
            .map_err(|_| Failure::again("sending failed"))?;
        // P21: a subject's address was read and used; the log will say so, without it.
        if let Some(subject) = mail.subject_id {
            sent.push((m.clone(), subject));
        }
        Ok(())
    }
}

/// Why an attempt failed, and whether trying again could help.
struct Failure {
    text: String,
    last: bool,
}

impl Failure {
    fn again(text: &str) -> Failure {
        Failure {
            text: text.into(),
            last: false,
        }
    }

    fn last(text: &str) -> Failure {
        Failure {
            text: text.into(),
            last: true,
        }
    }
}

/// The Standard Webhooks signature: base64 of HMAC-SHA256 under the secret's bytes of
/// `{id}.{timestamp}.{body}`.
pub fn sign(secret: &[u8], id: &str, timestamp: &str, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// An email made from an outbox row, in the subject's language.
pub(crate) struct Mail {
    pub(crate) to: String,
    pub(crate) subject: String,
    pub(crate) body: String,
    pub(crate) subject_id: Option<SubjectId>,
}

impl Vault {
    /// The email an outbox row stands for, made now: to the subject's stored address, in the
    /// language the row names. `None` when the subject has no address or was erased.
    pub(crate) fn render_mail(&self, m: &OutboxRow) -> Result<Option<Mail>, Error> {
        let payload: Json = serde_json::from_str(&m.payload)
            .map_err(|_| Error::Internal("an outbox payload is not JSON"))?;
        let (to, subject, lang) = match m.destination.split_once(':') {
            Some(("subject", id)) => {
                let subject = id
                    .parse::<SubjectId>()
                    .map_err(|_| Error::Internal("an email's subject is not a subject id"))?;
                match self.subject_address(subject)? {
                    Some(to) => (to, Some(subject), self.language_of(subject)?),
                    None => return Ok(None),
                }
            }
            // A staff contact from the configuration: a reminder or an escalation, in the
            // language the row names (the policy's).
            Some(("contact", address)) => (
                address.to_string(),
                None,
                payload
                    .get("language")
                    .and_then(Json::as_str)
                    .unwrap_or(&self.policy.language)
                    .to_string(),
            ),
            _ => return Err(Error::Internal("an email's destination is unknown")),
        };
        let lang = lang.as_str();
        let data = payload.get("data").unwrap_or(&Json::Null);
        let case = || {
            data.get("case")
                .and_then(Json::as_str)
                .ok_or(Error::Internal("a notice names no case"))
        };
        let (title, body) = match m.event.as_str() {
            "policy.notice" => {
                let version = data
                    .get("version")
                    .and_then(Json::as_str)
                    .ok_or(Error::Internal("a notice names no version"))?;
                self.notice_mail(version, lang)?
            }
            "incident.notice" => self.incident_mail(case()?, lang)?,
            "transfer.notice" => self.transfer_mail(case()?, lang)?,
            "disclosure.legal" => self.legal_disclosure_mail(subject, lang, data)?,
            "incident.opened" | "incident.report_due_soon" | "incident.report_overdue" => {
                self.incident_staff_mail(&m.event, lang, data)?
            }
            _ => self.mail_text(&m.event, lang, data)?,
        };
        let signature = self.catalogue.text(
            lang,
            "signature",
            None,
            &[("provider", self.policy.name.as_str())],
        )?;
        Ok(Some(Mail {
            to,
            subject: title,
            body: format!("{}\n\n{signature}\n", body.trim_end()),
            subject_id: subject,
        }))
    }

    /// The subject line and text of an email about `event`.
    fn mail_text(&self, event: &str, lang: &str, data: &Json) -> Result<(String, String), Error> {
        let c = &self.catalogue;
        let request_id = data
            .get("request")
            .and_then(Json::as_str)
            .ok_or(Error::Internal("an email names no request"))?;
        let row = self
            .store
            .request(request_id)?
            .ok_or(Error::NotFound(crate::Missing::Request))?;
        let view = self.request_view(&row)?;
        let kind = c.text(lang, &format!("request-kind-{}", row.kind), None, &[])?;
        let due = view.due_at.get(..10).unwrap_or(&view.due_at).to_string();
        let outcome = view.outcome.clone().unwrap_or(Json::Null);
        let note = match outcome.get("note").and_then(Json::as_str) {
            Some(n) if !n.is_empty() => c.text(lang, "note-some", None, &[("note", n)])?,
            _ => String::new(),
        };
        // A refusal, or a completion that refused a part (a legal hold).
        let refused = outcome
            .get("refused")
            .and_then(Json::as_str)
            .or_else(|| outcome.get("refused_in_part").and_then(Json::as_str));
        let id = match (event, refused) {
            ("request.refused", _) | ("request.completed", Some(_)) => "request-refused",
            ("request.received", _) => "request-received",
            ("request.verified", _) => "request-verified",
            ("request.completed", None) => "request-completed",
            ("request.due_soon", _) => "reminder-due-soon",
            ("request.overdue", _) => "reminder-overdue",
            _ => return Err(Error::Internal("no email is written for this event")),
        };
        let reason = match refused {
            Some(r) => c.text(lang, &format!("refusal-reason-{r}"), None, &[])?,
            None => String::new(),
        };
        let args = [
            ("kind", kind.as_str()),
            ("request", request_id),
            ("due", due.as_str()),
            ("note", note.as_str()),
            ("reason", reason.as_str()),
        ];
        Ok((
            c.text(lang, id, None, &args)?,
            c.text(lang, id, Some("body"), &args)?,
        ))
    }

    /// Records that subjects were mailed, or their identities sent to an external system
    /// (P21): a `message.sent` entry each, with the message's id, event and channel, never
    /// the address or the text; and which notice each was sent (P30).
    fn note_sent(&self, sent: &[(OutboxRow, SubjectId)]) -> Result<(), Error> {
        let mut ops = Vec::new();
        let mut drafts = Vec::with_capacity(sent.len());
        for (m, subject) in sent {
            let mut draft = self.system_draft(
                "message.sent",
                json!({ "message": m.id, "event": m.event, "channel": m.channel }),
            );
            draft.subject = self.pseudonym(*subject);
            drafts.push(draft);
            if m.event == "policy.notice"
                && let Some(v) = serde_json::from_str::<Json>(&m.payload)
                    .ok()
                    .as_ref()
                    .and_then(|p| p.pointer("/data/version"))
                    .and_then(Json::as_str)
            {
                ops.push(self.told(*subject, v, "notified", "email"));
            }
        }
        self.store.commit(ops, drafts)?;
        Ok(())
    }
}
