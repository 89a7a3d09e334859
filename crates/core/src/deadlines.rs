//! One deadline board (P32): every clock Steward keeps, in one list — rights requests and
//! inquiries (their answer is due), legal holds (they end), closed accounts (their erasure is
//! due), retention (the oldest value of a category expires), policy versions' notice periods,
//! incidents' reports to authorities ([`crate::incidents`]) and notices of legal disclosures
//! waiting for a restriction to end ([`crate::legal`]) — each marked overdue, due soon or
//! later; and the reminders that go with them: before a request's deadline, at each of the
//! configured lead times, a reminder to the staff contacts who answer requests; once it is
//! overdue, an escalation to the privacy officer's contacts (incident reports have reminders of
//! their own, in hours). Reminders are messages in the outbox ([`crate::outbox`]), each sent
//! once (the store remembers which). All on the vault's clock.

use serde::Serialize;
use serde_json::json;
use steward_policy::{Capability, RetentionFrom};
use steward_store::{Op, OutboxRow};

use crate::clock::rfc3339;
use crate::error::Error;
use crate::retention::DAY_MS;
use crate::vault::{Actor, SubjectId, Vault};

/// Items due within this many days are "due soon".
pub const DUE_SOON_DAYS: i64 = 7;

/// Who is written to about deadlines (email addresses of staff, not subjects).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contacts {
    /// Those who answer requests: reminded before a request's deadline.
    pub requests: Vec<String>,
    /// The privacy officer: told when a deadline has passed (escalation).
    pub escalation: Vec<String>,
    /// Days before a deadline at which reminders go (7 and 1 by default).
    pub reminder_days: Vec<u32>,
}

/// One clock on the board.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Deadline {
    /// `request`, `inquiry`, `system_answer` (an external system's answer to a request,
    /// escalated while it has not come), `hold_end`, `erasure`, `retention`, `notice_period`,
    /// `incident_report` or `disclosure_notice`.
    pub kind: String,
    /// What it is about: a request's or hold's id, a category's name.
    pub id: String,
    /// The subject, by pseudonym, when it concerns one.
    pub subject: Option<String>,
    /// In words: `access request`, `legal hold ends`, `erasure after account closure`, ...
    pub what: String,
    /// When.
    pub due_at: String,
    /// When, Unix ms.
    pub due_ms: i64,
    /// Whole days left (negative: days overdue).
    pub days_left: i64,
    /// `overdue`, `due_soon` (within 7 days) or `later`.
    pub status: String,
}

/// What one round of reminders queued.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Reminders {
    /// Reminders before a deadline.
    pub due_soon: usize,
    /// Escalations after one.
    pub overdue: usize,
}

impl Vault {
    /// Every clock due within `within_ms` from now (and every one already overdue), soonest
    /// first. For a caller whose role may work requests (`requests.manage`), or the operator.
    pub fn deadlines(&self, actor: Option<&Actor>, within_ms: i64) -> Result<Vec<Deadline>, Error> {
        if let Some(a) = actor {
            self.permit(a, Capability::RequestsManage, None)?;
        }
        let now = self.clock.now_ms();
        let until = now.saturating_add(within_ms);
        let mut out = Vec::new();
        for r in self.store.requests_due(until)? {
            let kind = if r.kind == "inquiry" {
                "inquiry"
            } else {
                "request"
            };
            let mut what = if r.kind == "inquiry" {
                "inquiry or complaint answered".to_string()
            } else {
                format!("{} request answered", r.kind.replace('_', " "))
            };
            // A request waiting on the provider's systems says on which, and why; an external
            // system that has not answered is escalated: a clock of its own, due with the
            // request.
            let mut unanswered = Vec::new();
            let reaches = r.kind.starts_with("deletion")
                || (r.kind == "access" && self.has_external_systems());
            if reaches && self.datasets().is_some() {
                let mut waiting = Vec::new();
                for s in self.store.request_systems(&r.subject, &r.id)? {
                    if crate::datasets::settled(&s.state) {
                        continue;
                    }
                    if s.state == "asked" {
                        let asked = match s.attempts {
                            1 => "asked 1 time".to_string(),
                            n => format!("asked {n} times"),
                        };
                        waiting.push(format!(
                            "{} ({asked}, no answer; reminded {})",
                            s.system,
                            rfc3339(s.next_ms)
                        ));
                        unanswered.push(format!(
                            "{} answers {} request {} ({asked})",
                            s.system,
                            r.kind.replace('_', " "),
                            r.id,
                        ));
                    } else {
                        waiting.push(format!(
                            "{} ({}, attempt {}, next {})",
                            s.system,
                            if s.reason.is_empty() {
                                s.state.as_str()
                            } else {
                                s.reason.as_str()
                            },
                            s.attempts,
                            rfc3339(s.next_ms)
                        ));
                    }
                }
                if !waiting.is_empty() {
                    what = format!("{what}; waiting on {}", waiting.join(", "));
                }
            }
            for line in unanswered {
                out.push(self.deadline(
                    "system_answer",
                    r.id.clone(),
                    Some(SubjectId(r.subject)),
                    line,
                    r.due_ms,
                    now,
                ));
            }
            out.push(self.deadline(kind, r.id, Some(SubjectId(r.subject)), what, r.due_ms, now));
        }
        for h in self.store.active_holds(now)? {
            if h.until_ms <= until {
                out.push(self.deadline(
                    "hold_end",
                    h.id,
                    Some(SubjectId(h.subject)),
                    format!("legal hold ({}) ends", h.reason.replace('_', " ")),
                    h.until_ms,
                    now,
                ));
            }
        }
        let grace = i64::from(self.policy.deadlines.erasure_days) * DAY_MS;
        for (subject, closed_ms) in self.store.closed_before(until.saturating_sub(grace))? {
            out.push(self.deadline(
                "erasure",
                self.pseudonym(SubjectId(subject)),
                Some(SubjectId(subject)),
                "erasure after account closure".into(),
                closed_ms.saturating_add(grace),
                now,
            ));
        }
        for c in &self.policy.categories {
            if c.retention.from != RetentionFrom::Collected {
                continue;
            }
            let days = i64::from(c.retention.days) * DAY_MS;
            let oldest = self
                .store
                .records_collected_before(&c.name, i64::MAX, None, 1)?;
            if let Some((collected, _)) = oldest.first()
                && collected.saturating_add(days) <= until
            {
                out.push(self.deadline(
                    "retention",
                    c.name.clone(),
                    None,
                    format!("`{}` values past their retention deleted", c.name),
                    collected.saturating_add(days),
                    now,
                ));
            }
        }
        // P29, P30: a published version's notice period runs until it takes effect.
        for v in self.policy.all().iter() {
            if v.row.effective_ms > now && v.row.effective_ms <= until {
                let what = if v.material {
                    format!("policy {} takes effect (notice period ends)", v.row.version)
                } else {
                    format!("policy {} takes effect", v.row.version)
                };
                out.push(self.deadline(
                    "notice_period",
                    v.row.version.clone(),
                    None,
                    what,
                    v.row.effective_ms,
                    now,
                ));
            }
        }
        // P22: reports owed to authorities.
        out.extend(self.incident_deadlines(now, until)?);
        // P15: notices of legal disclosures waiting for a restriction on telling to end.
        for m in self.store.pending_messages("disclosure.legal")? {
            if m.next_ms > now && m.next_ms <= until {
                let subject = m
                    .destination
                    .strip_prefix("subject:")
                    .and_then(|s| s.parse::<SubjectId>().ok());
                out.push(self.deadline(
                    "disclosure_notice",
                    m.id,
                    subject,
                    "notice of a legal disclosure sent (restriction on telling ends)".into(),
                    m.next_ms,
                    now,
                ));
            }
        }
        out.sort_by(|a, b| (a.due_ms, &a.kind, &a.id).cmp(&(b.due_ms, &b.kind, &b.id)));
        Ok(out)
    }

    pub(crate) fn deadline(
        &self,
        kind: &str,
        id: String,
        subject: Option<SubjectId>,
        what: String,
        due_ms: i64,
        now: i64,
    ) -> Deadline {
        let left = due_ms.saturating_sub(now);
        // Whole days: "1 day overdue" from the first millisecond past to the end of the next day.
        let days_left = if left >= 0 {
            left / DAY_MS
        } else {
            -(left.saturating_neg() / DAY_MS).max(1)
        };
        let status = if left < 0 {
            "overdue"
        } else if left <= DUE_SOON_DAYS * DAY_MS {
            "due_soon"
        } else {
            "later"
        };
        Deadline {
            kind: kind.into(),
            id,
            subject: subject.map(|s| self.pseudonym(s)),
            what,
            due_at: rfc3339(due_ms),
            due_ms,
            days_left,
            status: status.into(),
        }
    }

    /// Queues the reminders now due (P32): for each open request or inquiry, one before its
    /// deadline at each lead time in `reminder_days` to the request contacts, and one
    /// escalation once it is overdue to the escalation contacts — each with a webhook call
    /// (`request.due_soon`, `request.overdue`) to the endpoints that take it. Each is sent
    /// once: the store remembers it (a `meta` fact `reminder:<request>:<lead>`), in the same
    /// unit as its messages.
    pub fn send_reminders(&self) -> Result<Reminders, Error> {
        let now = self.clock.now_ms();
        let contacts = &self.contacts;
        let leads: Vec<i64> = contacts
            .reminder_days
            .iter()
            .map(|d| i64::from(*d) * DAY_MS)
            .collect();
        let furthest = leads.iter().copied().max().unwrap_or(0);
        let endpoints = self.cached_endpoints()?;
        let mut done = Reminders::default();
        for r in self.store.requests_due(now.saturating_add(furthest))? {
            // The one reminder due now: the nearest lead time passed, or the escalation.
            let (event, lead, to): (&str, String, &[String]) = if r.due_ms <= now {
                ("request.overdue", "overdue".into(), &contacts.escalation)
            } else {
                let Some(lead) = leads
                    .iter()
                    .copied()
                    .filter(|l| r.due_ms.saturating_sub(*l) <= now)
                    .min()
                else {
                    continue;
                };
                (
                    "request.due_soon",
                    format!("{}d", lead / DAY_MS),
                    &contacts.requests,
                )
            };
            let key = format!("reminder:{}:{lead}", r.id);
            if self.store.meta(&key)?.is_some() {
                continue;
            }
            let mut messages = self.request_messages(&endpoints, event, &r, false)?;
            for address in to {
                messages.push(self.contact_mail(event, address, &r.id)?);
            }
            let mut ops = vec![Op::SetMeta {
                key,
                value: now.to_string(),
            }];
            Vault::enqueue(&mut ops, messages);
            let mut draft = self.system_draft(
                "deadline.remind",
                json!({ "request": r.id, "event": event, "lead": lead }),
            );
            draft.subject = self.pseudonym(SubjectId(r.subject));
            self.store.commit(ops, vec![draft])?;
            if r.due_ms <= now {
                done.overdue += 1;
            } else {
                done.due_soon += 1;
            }
        }
        self.incident_reminders(&mut done)?;
        if done.due_soon + done.overdue > 0 {
            tracing::info!(
                due_soon = done.due_soon,
                overdue = done.overdue,
                "reminders queued"
            );
        }
        Ok(done)
    }

    /// An email to a staff contact about a request's deadline.
    fn contact_mail(&self, event: &str, address: &str, request: &str) -> Result<OutboxRow, Error> {
        self.mail(
            event,
            format!("contact:{address}"),
            json!({ "request": request }),
        )
    }
}
