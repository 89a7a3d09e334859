//! The transactional outbox (P26, P30, P32, and the channel P14, P15 and P22 use): every
//! message an act causes — an email to the subject it concerns, a signed webhook call to each
//! endpoint that takes its event — is written as a row in the act's own unit of work, so it
//! exists exactly when the act committed; [`crate::dispatch`] delivers it afterwards, at least
//! once, under the same id. Rows carry ids, pseudonyms and event names, never PI values: a
//! subject's address is looked up when the mail is sent (an erased subject gets nothing).
//! Webhook endpoints and their signing secrets are registered here too. Does not own delivery.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value as Json, json};
use steward_policy::Capability;
use steward_store::{EndpointRow, Op, OutboxRow, OutboxState};

use crate::clock::rfc3339;
use crate::error::Error;
use crate::vault::{Actor, SubjectId, Vault};

/// Every event Steward announces, by webhook (and, where it concerns a subject, by email).
pub const EVENTS: [&str; 19] = [
    "request.received",
    "request.verified",
    "request.completed",
    "request.refused",
    "request.due_soon",
    "request.overdue",
    "consent.changed",
    "subject.erased",
    "policy.published",
    "policy.effective",
    "notice.sent",
    "incident.opened",
    "incident.announced",
    "incident.push",
    "incident.report_due_soon",
    "incident.report_overdue",
    "transfer.planned",
    "transfer.push",
    "dataset.request",
];

/// How long a process trusts its copy of a list another process may change (webhook
/// endpoints, cases); this one's own changes are seen at once.
const FRESH_FOR: Duration = Duration::from_secs(2);

/// A process's copy of a list read from the store, trusted for [`FRESH_FOR`].
pub(crate) struct Fresh<T>(std::sync::Mutex<Option<(Instant, Arc<T>)>>);

impl<T> Default for Fresh<T> {
    fn default() -> Fresh<T> {
        Fresh(std::sync::Mutex::new(None))
    }
}

impl<T> Fresh<T> {
    /// The copy while it is fresh, else what `load` reads now.
    pub(crate) fn get(&self, load: impl FnOnce() -> Result<T, Error>) -> Result<Arc<T>, Error> {
        let mut copy = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, value)) = copy.as_ref()
            && at.elapsed() < FRESH_FOR
        {
            return Ok(Arc::clone(value));
        }
        let value = Arc::new(load()?);
        *copy = Some((Instant::now(), Arc::clone(&value)));
        Ok(value)
    }

    /// Drops the copy: this process changed the list.
    pub(crate) fn forget(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

/// A webhook endpoint as shown to staff (its secret is shown once, when made).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Endpoint {
    /// Id (`whe_…`).
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// The events it takes; empty for all of them.
    pub events: Vec<String>,
    /// When registered.
    pub created_at: String,
    /// No longer sent to.
    pub disabled: bool,
}

/// A new endpoint and its signing secret, shown this once (Standard Webhooks: `whsec_` and
/// the base64 of 24 random bytes).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize)]
pub struct NewEndpoint {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The secret its calls are signed with.
    pub secret: String,
}

/// A message in the outbox, as staff see it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Message {
    /// Stable id: every attempt carries it.
    pub id: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// `subject:<id>` for a subject's email, the endpoint's id for a webhook.
    pub destination: String,
    /// The event.
    pub event: String,
    /// `pending`, `delivered` or `dead`.
    pub state: String,
    /// Attempts made.
    pub attempts: u32,
    /// When next tried (pending).
    pub next_at: String,
    /// When written.
    pub created_at: String,
    /// When last changed.
    pub updated_at: String,
    /// Why the last attempt failed; empty if none did.
    pub last_error: String,
}

impl From<OutboxRow> for Message {
    fn from(r: OutboxRow) -> Message {
        Message {
            id: r.id,
            channel: r.channel,
            destination: r.destination,
            event: r.event,
            state: r.state.as_str().into(),
            attempts: r.attempts,
            next_at: rfc3339(r.next_ms),
            created_at: rfc3339(r.created_ms),
            updated_at: rfc3339(r.updated_ms),
            last_error: r.last_error,
        }
    }
}

/// The secret's prefix (Standard Webhooks).
const SECRET_PREFIX: &str = "whsec_";

impl Vault {
    /// The outbox rows `event` makes now: a webhook call for each endpoint that takes it,
    /// with `data` (ids and pseudonyms, never PI values) as the Standard Webhooks payload's
    /// `data`. Written by the caller in the act's own unit of work.
    pub(crate) fn event_messages(&self, event: &str, data: Json) -> Result<Vec<OutboxRow>, Error> {
        let endpoints = self.cached_endpoints()?;
        self.event_messages_to(&endpoints, event, data)
    }

    /// [`Vault::event_messages`] to endpoints already read: what a unit of work, which must
    /// not call the store while it holds the transaction, uses.
    pub(crate) fn event_messages_to(
        &self,
        endpoints: &[EndpointRow],
        event: &str,
        data: Json,
    ) -> Result<Vec<OutboxRow>, Error> {
        let takes = |e: &&EndpointRow| {
            !e.disabled && (e.events.is_empty() || e.events.split(',').any(|x| x == event))
        };
        if !endpoints.iter().any(|e| takes(&e)) {
            return Ok(Vec::new());
        }
        let now = self.clock.now_ms();
        let body = json!({ "type": event, "timestamp": rfc3339(now), "data": data }).to_string();
        endpoints
            .iter()
            .filter(takes)
            .map(|e| self.outbox_row("webhook", e.id.clone(), event, body.clone()))
            .collect()
    }

    /// Adds the messages `rows` to a unit's `ops` (nothing when there are none).
    pub(crate) fn enqueue(ops: &mut Vec<Op>, rows: Vec<OutboxRow>) {
        if !rows.is_empty() {
            ops.push(Op::Enqueue(rows));
        }
    }

    /// The webhook calls a consent change makes (`consent.changed`).
    pub(crate) fn consent_messages(
        &self,
        row: &steward_store::ConsentRow,
    ) -> Result<Vec<OutboxRow>, Error> {
        self.event_messages(
            "consent.changed",
            json!({
                "subject": self.pseudonym(SubjectId(row.subject)),
                "target": row.target,
                "granted": row.granted,
                "separate": row.separate,
            }),
        )
    }

    /// The messages a rights request's move makes: a webhook call for `event`, and an email
    /// to the subject unless `mail` is false (an erasure the request carried out leaves no
    /// one to write to).
    pub(crate) fn request_messages(
        &self,
        endpoints: &[EndpointRow],
        event: &str,
        row: &steward_store::RequestRow,
        mail: bool,
    ) -> Result<Vec<OutboxRow>, Error> {
        let subject = SubjectId(row.subject);
        let mut data = json!({
            "request": row.id,
            "kind": row.kind,
            "state": row.state.as_str(),
            "subject": self.pseudonym(subject),
            "due_at": rfc3339(row.due_ms),
        });
        let outcome: Json = serde_json::from_str(&row.outcome).unwrap_or(Json::Null);
        if let (Some(map), Some(reason)) = (
            data.as_object_mut(),
            outcome
                .get("refused")
                .and_then(Json::as_str)
                .or_else(|| outcome.get("refused_in_part").and_then(Json::as_str)),
        ) {
            map.insert("reason".into(), json!(reason));
        }
        let mut rows = self.event_messages_to(endpoints, event, data)?;
        if mail {
            rows.push(self.subject_mail(event, subject, json!({ "request": row.id }))?);
        }
        Ok(rows)
    }

    /// An email to a subject about `event`: `data` names what it is about (a request's id),
    /// never PI; the text is made, in the subject's language, when it is sent.
    pub(crate) fn subject_mail(
        &self,
        event: &str,
        subject: SubjectId,
        data: Json,
    ) -> Result<OutboxRow, Error> {
        // The language is the subject's, looked up when the mail is written.
        let payload = json!({ "data": data }).to_string();
        self.outbox_row("email", format!("subject:{subject}"), event, payload)
    }

    /// Records the language a subject is written to in (`zh-CN` or `en`, P30): by a caller whose
    /// role registers subjects, or by the subject (`None`: the privacy centre). Audited as
    /// `subject.language`.
    pub fn set_language(
        &self,
        actor: Option<&Actor>,
        subject: SubjectId,
        language: &str,
    ) -> Result<(), Error> {
        let by_subject = crate::selfservice::subject_actor();
        let actor = match actor {
            Some(a) => {
                self.permit(a, Capability::SubjectsRegister, Some(subject))?;
                a
            }
            None => &by_subject,
        };
        if !steward_policy::LANGUAGES.contains(&language) {
            return Err(Error::Invalid(format!(
                "a language is one of: {}",
                steward_policy::LANGUAGES.join(", ")
            )));
        }
        self.active_subject(subject)?;
        self.store.commit(
            vec![Op::SetLanguage {
                subject: subject.0,
                language: Some(language.into()),
                at_ms: self.clock.now_ms(),
            }],
            vec![self.act(
                actor,
                "subject.language",
                Some(subject),
                json!({ "language": language }),
            )],
        )?;
        Ok(())
    }

    /// The language a subject is written to in: theirs if recorded, else the policy's.
    pub(crate) fn language_of(&self, subject: SubjectId) -> Result<String, Error> {
        Ok(self
            .store
            .subject_language(&subject.0)?
            .unwrap_or_else(|| self.policy.language.clone()))
    }

    /// An email about `event` to `destination` (`subject:<id>`, or `contact:<address>` for a
    /// staff contact), in the policy's language.
    pub(crate) fn mail(
        &self,
        event: &str,
        destination: String,
        data: Json,
    ) -> Result<OutboxRow, Error> {
        let payload = json!({ "language": self.policy.language, "data": data }).to_string();
        self.outbox_row("email", destination, event, payload)
    }

    pub(crate) fn outbox_row(
        &self,
        channel: &str,
        destination: String,
        event: &str,
        payload: String,
    ) -> Result<OutboxRow, Error> {
        let now = self.clock.now_ms();
        Ok(OutboxRow {
            id: self.new_id("msg")?,
            channel: channel.into(),
            destination,
            event: event.into(),
            payload,
            state: OutboxState::Pending,
            attempts: 0,
            next_ms: now,
            lease_ms: 0,
            created_ms: now,
            updated_ms: now,
            last_error: String::new(),
        })
    }

    /// The endpoints, from this process's copy while it is fresh.
    pub(crate) fn cached_endpoints(&self) -> Result<Arc<Vec<EndpointRow>>, Error> {
        self.endpoint_cache.get(|| Ok(self.store.endpoints()?))
    }

    fn forget_endpoints(&self) {
        self.endpoint_cache.forget();
    }

    /// Registers a webhook endpoint for `events` (all when empty); returns it with its signing
    /// secret, shown this once. `url` is `https://…`, or `http://…` to a loopback or private
    /// address only where the deployment allows local endpoints (`webhooks_allow_local`).
    /// Audited as `webhook.create` (the id and events; never the secret).
    pub fn create_endpoint(
        &self,
        actor: Option<&Actor>,
        url: &str,
        events: &[&str],
    ) -> Result<NewEndpoint, Error> {
        self.permit_manage(actor)?;
        self.check_endpoint_url(url)?;
        if let Some(_unknown) = events.iter().find(|e| !EVENTS.contains(e)) {
            return Err(Error::Invalid(format!(
                "an endpoint's events are among: {}",
                EVENTS.join(", ")
            )));
        }
        let id = self.new_id("whe")?;
        let mut raw = [0u8; 24];
        ring::rand::SecureRandom::fill(&self.rng, &mut raw)
            .map_err(|_| Error::Crypto(steward_crypto::CryptoError::Random))?;
        let sealed = self
            .keys
            .secrets_key()
            .seal(&self.nonces, &secret_aad(&id), &raw)?;
        let row = EndpointRow {
            id: id.clone(),
            url: url.into(),
            events: events.join(","),
            secret: sealed,
            created_ms: self.clock.now_ms(),
            disabled: false,
        };
        self.store.commit(
            vec![Op::PutEndpoint(row.clone())],
            vec![self.managed(
                actor,
                "webhook.create",
                json!({ "endpoint": id, "events": events }),
            )],
        )?;
        self.forget_endpoints();
        Ok(NewEndpoint {
            endpoint: endpoint_view(&row),
            secret: format!(
                "{SECRET_PREFIX}{}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ),
        })
    }

    /// Every endpoint.
    pub fn endpoints(&self, actor: Option<&Actor>) -> Result<Vec<Endpoint>, Error> {
        self.permit_manage(actor)?;
        Ok(self.store.endpoints()?.iter().map(endpoint_view).collect())
    }

    /// Stops sending to an endpoint (its messages not yet delivered go dead when next tried).
    /// Audited as `webhook.disable`.
    pub fn disable_endpoint(&self, actor: Option<&Actor>, id: &str) -> Result<Endpoint, Error> {
        self.permit_manage(actor)?;
        let Some(row) = self.store.endpoints()?.into_iter().find(|e| e.id == id) else {
            return Err(Error::NotFound(crate::Missing::Endpoint));
        };
        self.store.commit(
            vec![Op::DisableEndpoint { id: id.into() }],
            vec![self.managed(actor, "webhook.disable", json!({ "endpoint": id }))],
        )?;
        self.forget_endpoints();
        Ok(endpoint_view(&EndpointRow {
            disabled: true,
            ..row
        }))
    }

    /// The outbox and endpoints are managed by a caller whose role has `outbox.manage`, or
    /// (`None`) by the operator at the console, who holds the store's keys anyway.
    fn permit_manage(&self, actor: Option<&Actor>) -> Result<(), Error> {
        match actor {
            Some(a) => self.permit(a, Capability::OutboxManage, None),
            None => Ok(()),
        }
    }

    /// The raw signing secret of an endpoint, opened.
    pub(crate) fn endpoint_secret(&self, e: &EndpointRow) -> Result<Vec<u8>, Error> {
        Ok(self
            .keys
            .secrets_key()
            .open(&secret_aad(&e.id), &e.secret)?)
    }

    fn check_endpoint_url(&self, url: &str) -> Result<(), Error> {
        let bad = || {
            Error::Invalid(
                "an endpoint's url is `https://host/…` (or `http://` to a local address where webhooks_allow_local is set), at most 2,000 characters".into(),
            )
        };
        if url.len() > 2_000 || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host = authority.rsplit('@').next().unwrap_or("");
        let host = match host.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => host.split(':').next().unwrap_or(""),
        };
        if host.is_empty() || authority.contains('@') {
            return Err(bad());
        }
        let local = is_local(host);
        match (scheme, local, self.webhooks_allow_local) {
            (_, true, false) => Err(Error::Invalid(
                "an endpoint on a loopback or private address needs webhooks_allow_local".into(),
            )),
            ("https", _, _) | ("http", true, true) => Ok(()),
            _ => Err(bad()),
        }
    }

    /// Messages in the outbox, newest first: those in `state` (`pending`, `delivered`,
    /// `dead`), or all.
    pub fn outbox(
        &self,
        actor: Option<&Actor>,
        state: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Message>, Error> {
        self.permit_manage(actor)?;
        let state = match state {
            None => None,
            Some(s) => Some(OutboxState::parse(s).ok_or_else(|| {
                Error::Invalid("a message's state is `pending`, `delivered` or `dead`".into())
            })?),
        };
        Ok(self
            .store
            .outbox(state, limit.min(1_000))?
            .into_iter()
            .map(Message::from)
            .collect())
    }

    /// Puts a message back to be tried now, its attempts counted afresh (a dead one, after
    /// the cause was mended). Audited as `outbox.retry`.
    pub fn retry_message(&self, actor: Option<&Actor>, id: &str) -> Result<Message, Error> {
        self.permit_manage(actor)?;
        if self.store.message(id)?.is_none() {
            return Err(Error::NotFound(crate::Missing::Message));
        }
        let now = self.clock.now_ms();
        self.store.commit(
            vec![Op::RetryMessage {
                id: id.into(),
                at_ms: now,
            }],
            vec![self.managed(actor, "outbox.retry", json!({ "message": id }))],
        )?;
        self.store
            .message(id)?
            .map(Message::from)
            .ok_or(Error::NotFound(crate::Missing::Message))
    }
}

fn endpoint_view(e: &EndpointRow) -> Endpoint {
    Endpoint {
        id: e.id.clone(),
        url: e.url.clone(),
        events: e
            .events
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        created_at: rfc3339(e.created_ms),
        disabled: e.disabled,
    }
}

fn secret_aad(id: &str) -> Vec<u8> {
    let mut aad = b"steward.webhook-secret\0".to_vec();
    aad.extend_from_slice(id.as_bytes());
    aad
}

/// Whether a host is a loopback or private address (or a name for one): what a webhook may
/// target only where the deployment allows it.
fn is_local(host: &str) -> bool {
    use std::net::IpAddr;
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            a.is_loopback() || a.is_private() || a.is_link_local() || a.is_unspecified()
        }
        Ok(IpAddr::V6(a)) => {
            a.is_loopback()
                || a.is_unspecified()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_addresses_are_known() {
        for h in [
            "127.0.0.1",
            "localhost",
            "10.1.2.3",
            "192.168.0.1",
            "::1",
            "fd00::1",
            "a.localhost",
        ] {
            assert!(is_local(h), "{h}");
        }
        for h in ["93.184.216.34", "example.com", "2001:db8::1"] {
            assert!(!is_local(h), "{h}");
        }
    }
}
