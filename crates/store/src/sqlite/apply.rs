//! Applying a unit of work inside a write transaction: each [`Op`] as SQL, then the audit
//! entries chained after the head (P21: no audit, no act).

use rusqlite::params;
use steward_audit::Entry;

use crate::{Op, StoreError, Unit};

use super::rows::chain_head;
use super::{Head, backend};

pub(super) fn apply(
    tx: &rusqlite::Transaction<'_>,
    op: Op,
    audit_seq: u64,
) -> rusqlite::Result<()> {
    match op {
        Op::InsertSubject(s) => {
            tx.prepare_cached(
                "INSERT INTO subjects (id, state, created_ms, tag) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&s.id[..], s.state.as_str(), s.created_ms, s.tag])?;
        }
        Op::SetSubjectState {
            subject,
            state,
            tag,
        } => {
            tx.prepare_cached("UPDATE subjects SET state = ?2, tag = ?3 WHERE id = ?1")?
                .execute(params![&subject[..], state.as_str(), tag])?;
        }
        Op::InsertRecords(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT INTO records (id, subject, category, feature, source, collected_ms, sealed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for r in rows {
                st.execute(params![
                    r.id,
                    &r.subject[..],
                    r.category,
                    r.feature,
                    r.source,
                    r.collected_ms,
                    r.sealed
                ])?;
            }
        }
        Op::InsertIndex(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO lookup (digest, subject, record) VALUES (?1, ?2, ?3)",
            )?;
            for r in rows {
                st.execute(params![&r.digest[..], &r.subject[..], r.record])?;
            }
        }
        Op::RecordConsent(c) => {
            let seq = if c.audit_seq == 0 {
                audit_seq
            } else {
                c.audit_seq
            };
            tx.prepare_cached(
                "INSERT INTO consent_events
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                &c.subject[..],
                c.target,
                c.granted,
                c.separate,
                c.channel,
                c.policy_version,
                c.at_ms,
                seq,
                c.tag
            ])?;
            tx.prepare_cached(
                "INSERT OR REPLACE INTO consent_current
                 (subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                &c.subject[..],
                c.target,
                c.granted,
                c.separate,
                c.channel,
                c.policy_version,
                c.at_ms,
                seq,
                c.tag
            ])?;
        }
        Op::InsertDisclosure(d) => {
            let seq = if d.audit_seq == 0 {
                audit_seq
            } else {
                d.audit_seq
            };
            tx.prepare_cached(
                "INSERT INTO disclosures
                 (subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                &d.subject[..],
                d.recipient,
                d.categories,
                d.purpose,
                d.legal_basis,
                d.at_ms,
                seq
            ])?;
        }
        Op::EnqueuePurge { subject, at_ms } => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO purge_queue (subject, queued_ms) VALUES (?1, ?2)",
            )?
            .execute(params![&subject[..], at_ms])?;
        }
        Op::DequeuePurge { subject } => {
            tx.prepare_cached("DELETE FROM purge_queue WHERE subject = ?1")?
                .execute(params![&subject[..]])?;
        }
        Op::StoreCertificate { subject, document } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO certificates (subject, document) VALUES (?1, ?2)",
            )?
            .execute(params![&subject[..], document])?;
        }
        Op::CloseSubject {
            subject,
            at_ms,
            tag,
        } => {
            tx.prepare_cached(
                "UPDATE subjects SET state = 'closed', closed_ms = ?2, tag = ?3 WHERE id = ?1",
            )?
            .execute(params![&subject[..], at_ms, tag])?;
        }
        Op::DeleteRecords(keys) => {
            let mut index =
                tx.prepare_cached("DELETE FROM lookup WHERE subject = ?1 AND record = ?2")?;
            let mut records = tx.prepare_cached(
                "DELETE FROM records WHERE subject = ?1 AND category = ?2 AND id = ?3",
            )?;
            for k in keys {
                index.execute(params![&k.subject[..], k.id])?;
                records.execute(params![&k.subject[..], k.category, k.id])?;
            }
        }
        Op::PlaceHold(h) => {
            tx.prepare_cached(
                "INSERT INTO legal_holds (id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms, tag)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                h.id,
                &h.subject[..],
                h.categories,
                h.reason,
                h.reference,
                h.placed_ms,
                h.until_ms,
                h.lifted_ms,
                h.tag
            ])?;
        }
        Op::LiftHold {
            subject,
            id,
            at_ms,
            tag,
        } => {
            tx.prepare_cached(
                "UPDATE legal_holds SET lifted_ms = ?3, tag = ?4 WHERE subject = ?1 AND id = ?2",
            )?
            .execute(params![&subject[..], id, at_ms, tag])?;
        }
        Op::TagConsent {
            subject,
            target,
            tag,
        } => {
            tx.prepare_cached(
                "UPDATE consent_current SET tag = ?3 WHERE subject = ?1 AND target = ?2",
            )?
            .execute(params![&subject[..], target, tag])?;
        }
        Op::TagHold { subject, id, tag } => {
            tx.prepare_cached("UPDATE legal_holds SET tag = ?3 WHERE subject = ?1 AND id = ?2")?
                .execute(params![&subject[..], id, tag])?;
        }
        Op::PutRequest(r) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO rights_requests (id, subject, kind, state, target, received_ms,
                 due_ms, updated_ms, verification, outcome, sealed_text)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?
            .execute(params![
                r.id,
                &r.subject[..],
                r.kind,
                r.state.as_str(),
                r.target,
                r.received_ms,
                r.due_ms,
                r.updated_ms,
                r.verification,
                r.outcome,
                r.sealed_text
            ])?;
        }
        Op::RequestStep(step) => {
            tx.prepare_cached(
                "INSERT OR IGNORE INTO request_steps (subject, request, state, at_ms, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &step.subject[..],
                step.request,
                step.state.as_str(),
                step.at_ms,
                step.actor
            ])?;
        }
        Op::PutRequestSystem(r) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO request_systems (subject, request, system, state, attempts,
                 next_ms, reason, sealed_plan, result, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                &r.subject[..],
                r.request,
                r.system,
                r.state,
                r.attempts,
                r.next_ms,
                r.reason,
                r.sealed_plan,
                r.result,
                r.updated_ms
            ])?;
        }
        Op::PutOtp(o) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO otp_codes (subject, digest, expires_ms, attempts) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![&o.subject[..], &o.digest[..], o.expires_ms, o.attempts])?;
        }
        Op::DeleteOtp { subject } => {
            tx.prepare_cached("DELETE FROM otp_codes WHERE subject = ?1")?
                .execute(params![&subject[..]])?;
        }
        Op::PutAttempts {
            key,
            window_ms,
            count,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO attempts (key, window_ms, count) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![key, window_ms, count])?;
        }
        Op::PutSession {
            digest,
            subject,
            expires_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO sessions (digest, subject, expires_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&digest[..], &subject[..], expires_ms])?;
        }
        Op::PutStaff(st) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO staff (username, role, password_hash, created_ms, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                st.username,
                st.role,
                st.password_hash,
                st.created_ms,
                st.disabled
            ])?;
        }
        Op::PutStaffSession {
            digest,
            username,
            expires_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO staff_sessions (digest, username, expires_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&digest[..], username, expires_ms])?;
        }
        Op::InsertApiKey(k) => {
            tx.prepare_cached(
                "INSERT INTO api_keys (id, name, role, digest, created_ms, revoked)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![
                k.id,
                k.name,
                k.role,
                &k.digest[..],
                k.created_ms,
                k.revoked
            ])?;
        }
        Op::RevokeApiKey { id } => {
            tx.prepare_cached("UPDATE api_keys SET revoked = 1 WHERE id = ?1")?
                .execute(params![id])?;
        }
        Op::SetMeta { key, value } => {
            tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
                .execute(params![key, value])?;
        }
        Op::SetLanguage {
            subject,
            language: Some(language),
            at_ms,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO subject_languages (subject, language, set_ms) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&subject[..], language, at_ms])?;
        }
        Op::SetLanguage {
            subject,
            language: None,
            ..
        } => {
            tx.prepare_cached("DELETE FROM subject_languages WHERE subject = ?1")?
                .execute(params![&subject[..]])?;
        }
        Op::PublishPolicy(v) => {
            tx.prepare_cached(
                "INSERT INTO policy_versions (version, serial, digest, text, effective_ms,
                 published_ms, published_by, changes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                v.version,
                v.serial,
                v.digest,
                v.text,
                v.effective_ms,
                v.published_ms,
                v.published_by,
                v.changes
            ])?;
        }
        Op::PutCase(c) => {
            tx.prepare_cached(
                "INSERT INTO cases (id, revision, kind, at_ms, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![c.id, c.revision, c.kind, c.at_ms, c.doc])?;
        }
        Op::PutCaseSet {
            id,
            version,
            chunks,
        } => {
            let mut st = tx.prepare_cached(
                "INSERT INTO case_sets (id, version, chunk, subjects) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (i, c) in chunks.iter().enumerate() {
                st.execute(params![id, version, i as i64, c])?;
            }
        }
        Op::PolicyEvents(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO policy_events (subject, version, event, how, at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for e in rows {
                st.execute(params![&e.subject[..], e.version, e.event, e.how, e.at_ms])?;
            }
        }
        Op::ForgetPolicyEvents { subject } => {
            tx.prepare_cached("DELETE FROM policy_events WHERE subject = ?1")?
                .execute(params![&subject[..]])?;
        }
        Op::LinkDevice {
            subject,
            visitor,
            at_ms,
        } => {
            let mut st = tx.prepare_cached(
                "INSERT OR IGNORE INTO subject_links (subject, other, kind, linked_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            st.execute(params![&subject[..], &visitor[..], "device", at_ms])?;
            st.execute(params![&visitor[..], &subject[..], "owner", at_ms])?;
        }
        Op::ForgetLinks { subject } => {
            tx.prepare_cached("DELETE FROM subject_links WHERE subject = ?1")?
                .execute(params![&subject[..]])?;
        }
        Op::Enqueue(rows) => {
            let mut st = tx.prepare_cached(
                "INSERT INTO outbox (id, channel, destination, event, payload, state, attempts,
                 next_ms, lease_ms, created_ms, updated_ms, last_error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for m in rows {
                st.execute(params![
                    m.id,
                    m.channel,
                    m.destination,
                    m.event,
                    m.payload,
                    m.state.as_str(),
                    m.attempts,
                    m.next_ms,
                    m.lease_ms,
                    m.created_ms,
                    m.updated_ms,
                    m.last_error
                ])?;
            }
        }
        Op::RetryMessage { id, at_ms } => {
            tx.prepare_cached(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_ms = ?2, lease_ms = 0,
                 updated_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id, at_ms])?;
        }
        Op::PutEndpoint(e) => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO webhook_endpoints (id, url, events, secret, created_ms, disabled)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?
            .execute(params![e.id, e.url, e.events, e.secret, e.created_ms, e.disabled])?;
        }
        Op::DisableEndpoint { id } => {
            tx.prepare_cached("UPDATE webhook_endpoints SET disabled = 1 WHERE id = ?1")?
                .execute(params![id])?;
        }
    }
    Ok(())
}

/// The chain's head as it stands inside a write transaction. Another process (a CLI command
/// beside a running server) may have extended the chain since this connection last wrote:
/// `data_version` moves only for other connections' commits, so the head is re-read, inside
/// the write lock, exactly when it must be.
pub(super) fn head_in(
    tx: &rusqlite::Transaction<'_>,
    head: &mut Head,
    data_version: &mut i64,
) -> Result<Head, StoreError> {
    let version: i64 = tx
        .query_row("PRAGMA data_version", [], |r| r.get(0))
        .map_err(backend)?;
    if version != *data_version {
        *head = chain_head(tx)?;
        *data_version = version;
    }
    Ok(*head)
}

/// Applies one unit's changes and appends its entries after `head`; the new head and the
/// entries.
pub(super) fn append(
    tx: &rusqlite::Transaction<'_>,
    head: Head,
    (ops, audit): Unit,
) -> Result<(Head, Vec<Entry>), StoreError> {
    let first_seq = if audit.is_empty() { 0 } else { head.0 + 1 };
    for op in ops {
        apply(tx, op, first_seq).map_err(backend)?;
    }
    let mut entries = Vec::with_capacity(audit.len());
    let (mut seq, mut hash) = head;
    let mut st = tx
        .prepare_cached("INSERT INTO audit (seq, entry, hash) VALUES (?1, ?2, ?3)")
        .map_err(backend)?;
    for d in audit {
        let (e, bytes) = Entry::chain_encoded(seq, hash, d);
        st.execute(params![e.seq, bytes, &e.hash[..]])
            .map_err(backend)?;
        seq = e.seq;
        hash = e.hash;
        entries.push(e);
    }
    Ok(((seq, hash), entries))
}
