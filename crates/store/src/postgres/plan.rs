//! Planning a unit of work: each [`Op`] as statements with owned parameters, and the audit
//! rows chained after the head, so the lot can be sent in one round trip.

use steward_audit::Entry;

use crate::{ConsentRow, Op, StoreError, Unit};

use super::*;

/// A unit of work planned against a chain head: its audit entries, its statements, and the
/// head after it.
pub(super) struct Planned {
    pub(super) entries: Vec<Entry>,
    pub(super) stmts: Vec<Stmt>,
    pub(super) head: (u64, [u8; 32]),
}

impl Planned {
    pub(super) fn new(
        (mut seq, mut hash): (u64, [u8; 32]),
        (ops, audit): Unit,
    ) -> Result<Planned, StoreError> {
        let first = seq_out(if audit.is_empty() { 0 } else { seq + 1 })?;
        let mut entries = Vec::with_capacity(audit.len());
        let mut seqs = Vec::with_capacity(audit.len());
        let mut encoded = Vec::with_capacity(audit.len());
        let mut hashes = Vec::with_capacity(audit.len());
        for d in audit {
            let (e, b) = Entry::chain_encoded(seq, hash, d);
            seq = e.seq;
            hash = e.hash;
            seqs.push(seq_out(e.seq)?);
            encoded.push(b);
            hashes.push(e.hash.to_vec());
            entries.push(e);
        }
        let mut stmts = Vec::with_capacity(ops.len() + 1);
        for op in ops {
            plan(op, first, &mut stmts)?;
        }
        if !seqs.is_empty() {
            stmts.push(stmt(
                "INSERT INTO audit (seq, entry, hash)
                 SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::bytea[])",
                vec![Box::new(seqs), Box::new(encoded), Box::new(hashes)],
            ));
        }
        Ok(Planned {
            entries,
            stmts,
            head: (seq, hash),
        })
    }
}

/// Plans one change as statements. Batches go as one statement over arrays.
pub(super) fn plan(op: Op, audit_seq: i64, out: &mut Vec<Stmt>) -> Result<(), StoreError> {
    let seq_or =
        |s: u64| -> Result<i64, StoreError> { if s == 0 { Ok(audit_seq) } else { seq_out(s) } };
    match op {
        Op::InsertSubject(s) => out.push(stmt(
            "INSERT INTO subjects (id, state, created_ms, tag) VALUES ($1, $2, $3, $4)",
            vec![
                bytes(&s.id),
                Box::new(s.state.as_str()),
                Box::new(s.created_ms),
                Box::new(s.tag),
            ],
        )),
        Op::SetSubjectState {
            subject,
            state,
            tag,
        } => out.push(stmt(
            "UPDATE subjects SET state = $2, tag = $3 WHERE id = $1",
            vec![bytes(&subject), Box::new(state.as_str()), Box::new(tag)],
        )),
        Op::InsertRecords(rows) => {
            let mut ids = Vec::with_capacity(rows.len());
            let mut subjects = Vec::with_capacity(rows.len());
            let mut categories = Vec::with_capacity(rows.len());
            let mut features = Vec::with_capacity(rows.len());
            let mut sources = Vec::with_capacity(rows.len());
            let mut at = Vec::with_capacity(rows.len());
            let mut sealed = Vec::with_capacity(rows.len());
            for r in rows {
                ids.push(r.id);
                subjects.push(r.subject.to_vec());
                categories.push(r.category);
                features.push(r.feature);
                sources.push(r.source);
                at.push(r.collected_ms);
                sealed.push(r.sealed);
            }
            out.push(stmt(
                "INSERT INTO records (id, subject, category, feature, source, collected_ms, sealed)
                 SELECT * FROM UNNEST($1::bigint[], $2::bytea[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::bytea[])",
                vec![
                    Box::new(ids),
                    Box::new(subjects),
                    Box::new(categories),
                    Box::new(features),
                    Box::new(sources),
                    Box::new(at),
                    Box::new(sealed),
                ],
            ));
        }
        Op::InsertIndex(rows) => {
            let digests: Vec<Vec<u8>> = rows.iter().map(|r| r.digest.to_vec()).collect();
            let subjects: Vec<Vec<u8>> = rows.iter().map(|r| r.subject.to_vec()).collect();
            let records: Vec<i64> = rows.iter().map(|r| r.record).collect();
            out.push(stmt(
                "INSERT INTO lookup (digest, subject, record)
                 SELECT * FROM UNNEST($1::bytea[], $2::bytea[], $3::bigint[])
                 ON CONFLICT DO NOTHING",
                vec![Box::new(digests), Box::new(subjects), Box::new(records)],
            ));
        }
        Op::RecordConsent(c) => {
            let seq = seq_or(c.audit_seq)?;
            let params = |c: &ConsentRow| -> Vec<Param> {
                vec![
                    bytes(&c.subject),
                    Box::new(c.target.clone()),
                    Box::new(c.granted),
                    Box::new(c.separate),
                    Box::new(c.channel.clone()),
                    Box::new(c.policy_version.clone()),
                    Box::new(c.at_ms),
                    Box::new(seq),
                    Box::new(c.tag.clone()),
                ]
            };
            out.push(stmt(
                "INSERT INTO consent_events
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                params(&c),
            ));
            out.push(stmt(
                "INSERT INTO consent_current
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (subject, target) DO UPDATE SET granted = EXCLUDED.granted,
                 separate = EXCLUDED.separate, channel = EXCLUDED.channel,
                 policy_version = EXCLUDED.policy_version, at_ms = EXCLUDED.at_ms,
                 audit_seq = EXCLUDED.audit_seq, tag = EXCLUDED.tag",
                params(&c),
            ));
        }
        Op::InsertDisclosure(d) => out.push(stmt(
            "INSERT INTO disclosures
             (subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                bytes(&d.subject),
                Box::new(d.recipient),
                Box::new(d.categories),
                Box::new(d.purpose),
                Box::new(d.legal_basis),
                Box::new(d.at_ms),
                Box::new(seq_or(d.audit_seq)?),
            ],
        )),
        Op::EnqueuePurge { subject, at_ms } => out.push(stmt(
            "INSERT INTO purge_queue (subject, queued_ms) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            vec![bytes(&subject), Box::new(at_ms)],
        )),
        Op::DequeuePurge { subject } => out.push(stmt(
            "DELETE FROM purge_queue WHERE subject = $1",
            vec![bytes(&subject)],
        )),
        Op::StoreCertificate { subject, document } => out.push(stmt(
            "INSERT INTO certificates (subject, document) VALUES ($1, $2)
             ON CONFLICT (subject) DO UPDATE SET document = EXCLUDED.document",
            vec![bytes(&subject), Box::new(document)],
        )),
        Op::CloseSubject {
            subject,
            at_ms,
            tag,
        } => out.push(stmt(
            "UPDATE subjects SET state = 'closed', closed_ms = $2, tag = $3 WHERE id = $1",
            vec![bytes(&subject), Box::new(at_ms), Box::new(tag)],
        )),
        Op::DeleteRecords(keys) => {
            // One pair of statements per subject, each naming it: a router query on a
            // distributed PostgreSQL. Record ids are unique, so (subject, id) names a record.
            let mut by_subject: Vec<(SubjectKey, Vec<i64>)> = Vec::new();
            for k in keys {
                match by_subject.iter_mut().find(|(s, _)| *s == k.subject) {
                    Some((_, ids)) => ids.push(k.id),
                    None => by_subject.push((k.subject, vec![k.id])),
                }
            }
            for (subject, ids) in by_subject {
                out.push(stmt(
                    "DELETE FROM lookup WHERE subject = $1 AND record = ANY($2)",
                    vec![bytes(&subject), Box::new(ids.clone())],
                ));
                out.push(stmt(
                    "DELETE FROM records WHERE subject = $1 AND id = ANY($2)",
                    vec![bytes(&subject), Box::new(ids)],
                ));
            }
        }
        Op::PlaceHold(h) => out.push(stmt(
            "INSERT INTO legal_holds (id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms, tag)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                Box::new(h.id),
                bytes(&h.subject),
                Box::new(h.categories),
                Box::new(h.reason),
                Box::new(h.reference),
                Box::new(h.placed_ms),
                Box::new(h.until_ms),
                Box::new(h.lifted_ms),
                Box::new(h.tag),
            ],
        )),
        Op::LiftHold {
            subject,
            id,
            at_ms,
            tag,
        } => out.push(stmt(
            "UPDATE legal_holds SET lifted_ms = $3, tag = $4 WHERE subject = $1 AND id = $2",
            vec![bytes(&subject), Box::new(id), Box::new(at_ms), Box::new(tag)],
        )),
        Op::TagConsent {
            subject,
            target,
            tag,
        } => out.push(stmt(
            "UPDATE consent_current SET tag = $3 WHERE subject = $1 AND target = $2",
            vec![bytes(&subject), Box::new(target), Box::new(tag)],
        )),
        Op::TagHold { subject, id, tag } => out.push(stmt(
            "UPDATE legal_holds SET tag = $3 WHERE subject = $1 AND id = $2",
            vec![bytes(&subject), Box::new(id), Box::new(tag)],
        )),
        Op::PutRequest(r) => out.push(stmt(
            "INSERT INTO rights_requests (id, subject, kind, state, target, received_ms,
             due_ms, updated_ms, verification, outcome, sealed_text)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (subject, id) DO UPDATE SET kind = EXCLUDED.kind,
             state = EXCLUDED.state, target = EXCLUDED.target,
             received_ms = EXCLUDED.received_ms, due_ms = EXCLUDED.due_ms,
             updated_ms = EXCLUDED.updated_ms, verification = EXCLUDED.verification,
             outcome = EXCLUDED.outcome, sealed_text = EXCLUDED.sealed_text",
            vec![
                Box::new(r.id),
                bytes(&r.subject),
                Box::new(r.kind),
                Box::new(r.state.as_str()),
                Box::new(r.target),
                Box::new(r.received_ms),
                Box::new(r.due_ms),
                Box::new(r.updated_ms),
                Box::new(r.verification),
                Box::new(r.outcome),
                Box::new(r.sealed_text),
            ],
        )),
        Op::RequestStep(step) => out.push(stmt(
            "INSERT INTO request_steps (subject, request, state, at_ms, actor)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            vec![
                bytes(&step.subject),
                Box::new(step.request),
                Box::new(step.state.as_str()),
                Box::new(step.at_ms),
                Box::new(step.actor),
            ],
        )),
        Op::PutRequestSystem(r) => out.push(stmt(
            "INSERT INTO request_systems (subject, request, system, state, attempts, next_ms,
             reason, sealed_plan, result, updated_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (subject, request, system) DO UPDATE SET state = EXCLUDED.state,
             attempts = EXCLUDED.attempts, next_ms = EXCLUDED.next_ms, reason = EXCLUDED.reason,
             sealed_plan = EXCLUDED.sealed_plan, result = EXCLUDED.result,
             updated_ms = EXCLUDED.updated_ms",
            vec![
                bytes(&r.subject),
                Box::new(r.request),
                Box::new(r.system),
                Box::new(r.state),
                Box::new(i64::from(r.attempts)),
                Box::new(r.next_ms),
                Box::new(r.reason),
                Box::new(r.sealed_plan),
                Box::new(r.result),
                Box::new(r.updated_ms),
            ],
        )),
        Op::PutOtp(o) => out.push(stmt(
            "INSERT INTO otp_codes (subject, digest, expires_ms, attempts) VALUES ($1, $2, $3, $4)
             ON CONFLICT (subject) DO UPDATE SET digest = EXCLUDED.digest,
             expires_ms = EXCLUDED.expires_ms, attempts = EXCLUDED.attempts",
            vec![
                bytes(&o.subject),
                bytes(&o.digest),
                Box::new(o.expires_ms),
                Box::new(i64::from(o.attempts)),
            ],
        )),
        Op::DeleteOtp { subject } => out.push(stmt(
            "DELETE FROM otp_codes WHERE subject = $1",
            vec![bytes(&subject)],
        )),
        Op::PutAttempts {
            key,
            window_ms,
            count,
        } => out.push(stmt(
            "INSERT INTO attempts (key, window_ms, count) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET window_ms = EXCLUDED.window_ms, count = EXCLUDED.count",
            vec![Box::new(key), Box::new(window_ms), Box::new(i64::from(count))],
        )),
        Op::PutSession {
            digest,
            subject,
            expires_ms,
        } => out.push(stmt(
            "INSERT INTO sessions (digest, subject, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (subject, digest) DO UPDATE SET expires_ms = EXCLUDED.expires_ms",
            vec![bytes(&digest), bytes(&subject), Box::new(expires_ms)],
        )),
        Op::PutStaff(st) => out.push(stmt(
            "INSERT INTO staff (username, role, password_hash, created_ms, disabled)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role,
             password_hash = EXCLUDED.password_hash, created_ms = EXCLUDED.created_ms,
             disabled = EXCLUDED.disabled",
            vec![
                Box::new(st.username),
                Box::new(st.role),
                Box::new(st.password_hash),
                Box::new(st.created_ms),
                Box::new(st.disabled),
            ],
        )),
        Op::PutStaffSession {
            digest,
            username,
            expires_ms,
        } => out.push(stmt(
            "INSERT INTO staff_sessions (digest, username, expires_ms) VALUES ($1, $2, $3)
             ON CONFLICT (digest) DO UPDATE SET username = EXCLUDED.username,
             expires_ms = EXCLUDED.expires_ms",
            vec![bytes(&digest), Box::new(username), Box::new(expires_ms)],
        )),
        Op::InsertApiKey(k) => out.push(stmt(
            "INSERT INTO api_keys (id, name, role, digest, created_ms, revoked)
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Box::new(k.id),
                Box::new(k.name),
                Box::new(k.role),
                bytes(&k.digest),
                Box::new(k.created_ms),
                Box::new(k.revoked),
            ],
        )),
        Op::RevokeApiKey { id } => out.push(stmt(
            "UPDATE api_keys SET revoked = true WHERE id = $1",
            vec![Box::new(id)],
        )),
        Op::SetMeta { key, value } => out.push(stmt(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            vec![Box::new(key), Box::new(value)],
        )),
        Op::SetLanguage {
            subject,
            language: Some(language),
            at_ms,
        } => out.push(stmt(
            "INSERT INTO subject_languages (subject, language, set_ms) VALUES ($1, $2, $3)
             ON CONFLICT (subject) DO UPDATE SET language = EXCLUDED.language,
             set_ms = EXCLUDED.set_ms",
            vec![bytes(&subject), Box::new(language), Box::new(at_ms)],
        )),
        Op::SetLanguage {
            subject,
            language: None,
            ..
        } => out.push(stmt(
            "DELETE FROM subject_languages WHERE subject = $1",
            vec![bytes(&subject)],
        )),
        Op::LinkDevice {
            subject,
            visitor,
            at_ms,
        } => {
            // One statement per end: each routed by its own key on Citus.
            for (this, other, kind) in [(subject, visitor, "device"), (visitor, subject, "owner")] {
                out.push(stmt(
                    "INSERT INTO subject_links (subject, other, kind, linked_ms)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (subject, other) DO NOTHING",
                    vec![bytes(&this), bytes(&other), Box::new(kind), Box::new(at_ms)],
                ));
            }
        }
        Op::ForgetLinks { subject } => out.push(stmt(
            "DELETE FROM subject_links WHERE subject = $1",
            vec![bytes(&subject)],
        )),
        Op::Enqueue(rows) => {
            // One statement for the batch, however many messages (a notice campaign's).
            let text = |f: fn(&crate::OutboxRow) -> &str| -> Param {
                Box::new(rows.iter().map(|m| f(m).to_string()).collect::<Vec<String>>())
            };
            let time = |f: fn(&crate::OutboxRow) -> i64| -> Param {
                Box::new(rows.iter().map(f).collect::<Vec<i64>>())
            };
            let attempts: Vec<i32> = rows
                .iter()
                .map(|m| i32::try_from(m.attempts).unwrap_or(i32::MAX))
                .collect();
            out.push(stmt(
                "INSERT INTO outbox (id, channel, destination, event, payload, state, attempts,
                 next_ms, lease_ms, created_ms, updated_ms, last_error)
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                 $6::text[], $7::int[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[],
                 $12::text[])",
                vec![
                    text(|m| &m.id),
                    text(|m| &m.channel),
                    text(|m| &m.destination),
                    text(|m| &m.event),
                    text(|m| &m.payload),
                    text(|m| m.state.as_str()),
                    Box::new(attempts),
                    time(|m| m.next_ms),
                    time(|m| m.lease_ms),
                    time(|m| m.created_ms),
                    time(|m| m.updated_ms),
                    text(|m| &m.last_error),
                ],
            ));
        }
        Op::PublishPolicy(v) => out.push(stmt(
            "INSERT INTO policy_versions (version, serial, digest, text, effective_ms,
             published_ms, published_by, changes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            vec![
                Box::new(v.version),
                Box::new(v.serial),
                Box::new(v.digest),
                Box::new(v.text),
                Box::new(v.effective_ms),
                Box::new(v.published_ms),
                Box::new(v.published_by),
                Box::new(v.changes),
            ],
        )),
        Op::PutCase(c) => out.push(stmt(
            "INSERT INTO cases (id, revision, kind, at_ms, doc) VALUES ($1, $2, $3, $4, $5)",
            vec![
                Box::new(c.id),
                Box::new(c.revision),
                Box::new(c.kind),
                Box::new(c.at_ms),
                Box::new(c.doc),
            ],
        )),
        Op::PutCaseSet {
            id,
            version,
            chunks,
        } => {
            let n = chunks.len();
            out.push(stmt(
                "INSERT INTO case_sets (id, version, chunk, subjects)
                 SELECT $1, $2, * FROM UNNEST($3::bigint[], $4::bytea[])",
                vec![
                    Box::new(id),
                    Box::new(version),
                    Box::new((0..n as i64).collect::<Vec<i64>>()),
                    Box::new(chunks),
                ],
            ));
        }
        Op::PolicyEvents(rows) => {
            let text = |f: fn(&crate::PolicyEventRow) -> &str| -> Param {
                Box::new(rows.iter().map(|e| f(e).to_string()).collect::<Vec<String>>())
            };
            out.push(stmt(
                "INSERT INTO policy_events (subject, version, event, how, at_ms)
                 SELECT * FROM UNNEST($1::bytea[], $2::text[], $3::text[], $4::text[], $5::bigint[])
                 ON CONFLICT DO NOTHING",
                vec![
                    Box::new(rows.iter().map(|e| e.subject.to_vec()).collect::<Vec<Vec<u8>>>()),
                    text(|e| &e.version),
                    text(|e| &e.event),
                    text(|e| &e.how),
                    Box::new(rows.iter().map(|e| e.at_ms).collect::<Vec<i64>>()),
                ],
            ));
        }
        Op::ForgetPolicyEvents { subject } => out.push(stmt(
            "DELETE FROM policy_events WHERE subject = $1",
            vec![bytes(&subject)],
        )),
        Op::RetryMessage { id, at_ms } => out.push(stmt(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = $2, lease_ms = 0,
             updated_ms = $2 WHERE id = $1",
            vec![Box::new(id), Box::new(at_ms)],
        )),
        Op::PutEndpoint(e) => out.push(stmt(
            "INSERT INTO webhook_endpoints (id, url, events, secret, created_ms, disabled)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, events = EXCLUDED.events,
             secret = EXCLUDED.secret, disabled = EXCLUDED.disabled",
            vec![
                Box::new(e.id),
                Box::new(e.url),
                Box::new(e.events),
                Box::new(e.secret),
                Box::new(e.created_ms),
                Box::new(e.disabled),
            ],
        )),
        Op::DisableEndpoint { id } => out.push(stmt(
            "UPDATE webhook_endpoints SET disabled = TRUE WHERE id = $1",
            vec![Box::new(id)],
        )),
    }
    Ok(())
}

macro_rules! hold_columns {
    () => {
        "SELECT id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms, tag FROM legal_holds"
    };
}

macro_rules! request_columns {
    () => {
        "SELECT id, subject, kind, state, target, received_ms, due_ms, updated_ms, verification, outcome, sealed_text FROM rights_requests"
    };
}
