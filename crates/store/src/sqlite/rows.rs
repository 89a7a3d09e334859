//! Row mapping: SQLite rows to the store's row types, and the chain head.

use rusqlite::{Connection, OptionalExtension};
use steward_audit::GENESIS;

use crate::{
    ApiKeyRow, ConsentRow, HoldRow, RecordRow, RequestRow, RequestState, StoreError, SubjectKey,
};

use super::backend;

pub(super) fn chain_head(conn: &Connection) -> Result<(u64, [u8; 32]), StoreError> {
    let head = conn
        .prepare_cached("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
        .and_then(|mut st| {
            st.query_row([], |r| Ok((r.get::<_, u64>(0)?, r.get::<_, Vec<u8>>(1)?)))
                .optional()
        })
        .map_err(backend)?;
    match head {
        Some((seq, hash)) => Ok((seq, hash32(hash)?)),
        None => Ok((0, GENESIS)),
    }
}

pub(super) fn hash32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    v.try_into()
        .map_err(|_| StoreError::Corrupt("audit hash is not 32 bytes".into()))
}

pub(super) fn key16(v: Vec<u8>) -> rusqlite::Result<SubjectKey> {
    v.try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            16,
            rusqlite::types::Type::Blob,
            "subject id is not 16 bytes".into(),
        )
    })
}

pub(super) fn consent_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ConsentRow> {
    Ok(ConsentRow {
        subject: key16(r.get(0)?)?,
        target: r.get(1)?,
        granted: r.get(2)?,
        separate: r.get(3)?,
        channel: r.get(4)?,
        policy_version: r.get(5)?,
        at_ms: r.get(6)?,
        audit_seq: r.get(7)?,
        tag: r.get(8)?,
    })
}

pub(super) const HOLD_COLUMNS: &str = "SELECT id, subject, categories, reason, reference, placed_ms, until_ms, lifted_ms, tag FROM legal_holds";

pub(super) fn hold_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<HoldRow> {
    Ok(HoldRow {
        id: r.get(0)?,
        subject: key16(r.get(1)?)?,
        categories: r.get(2)?,
        reason: r.get(3)?,
        reference: r.get(4)?,
        placed_ms: r.get(5)?,
        until_ms: r.get(6)?,
        lifted_ms: r.get(7)?,
        tag: r.get(8)?,
    })
}

pub(super) const REQUEST_COLUMNS: &str = "SELECT id, subject, kind, state, target, received_ms, due_ms, updated_ms, verification, outcome, sealed_text FROM rights_requests";

pub(super) fn request_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        subject: key16(r.get(1)?)?,
        kind: r.get(2)?,
        state: {
            let word: String = r.get(3)?;
            RequestState::parse(&word).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    3,
                    rusqlite::types::Type::Text,
                    "unknown request state".into(),
                )
            })?
        },
        target: r.get(4)?,
        received_ms: r.get(5)?,
        due_ms: r.get(6)?,
        updated_ms: r.get(7)?,
        verification: r.get(8)?,
        outcome: r.get(9)?,
        sealed_text: r.get(10)?,
    })
}

pub(super) fn api_key_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKeyRow> {
    let digest: Vec<u8> = r.get(3)?;
    Ok(ApiKeyRow {
        id: r.get(0)?,
        name: r.get(1)?,
        role: r.get(2)?,
        digest: digest.try_into().map_err(|_| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Blob,
                "api key digest is not 32 bytes".into(),
            )
        })?,
        created_ms: r.get(4)?,
        revoked: r.get(5)?,
    })
}

pub(super) fn record_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecordRow> {
    Ok(RecordRow {
        id: r.get(0)?,
        subject: key16(r.get(1)?)?,
        category: r.get(2)?,
        feature: r.get(3)?,
        source: r.get(4)?,
        collected_ms: r.get(5)?,
        sealed: r.get(6)?,
    })
}

/// The columns of `outbox`, in the order [`outbox_row`] reads them.
pub(super) const OUTBOX_COLUMNS: &str = "id, channel, destination, event, payload, state, attempts, next_ms, lease_ms, created_ms, updated_ms, last_error";

pub(super) fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::OutboxRow> {
    Ok(crate::OutboxRow {
        id: r.get(0)?,
        channel: r.get(1)?,
        destination: r.get(2)?,
        event: r.get(3)?,
        payload: r.get(4)?,
        state: {
            let word: String = r.get(5)?;
            crate::OutboxState::parse(&word).ok_or_else(|| {
                rusqlite::Error::FromSqlConversionFailure(
                    5,
                    rusqlite::types::Type::Text,
                    "unknown outbox state".into(),
                )
            })?
        },
        attempts: r.get(6)?,
        next_ms: r.get(7)?,
        lease_ms: r.get(8)?,
        created_ms: r.get(9)?,
        updated_ms: r.get(10)?,
        last_error: r.get(11)?,
    })
}

pub(super) fn endpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::EndpointRow> {
    Ok(crate::EndpointRow {
        id: r.get(0)?,
        url: r.get(1)?,
        events: r.get(2)?,
        secret: r.get(3)?,
        created_ms: r.get(4)?,
        disabled: r.get(5)?,
    })
}

/// A case revision from `SELECT id, revision, kind, at_ms, doc`.
pub(super) fn case_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<crate::CaseRow> {
    Ok(crate::CaseRow {
        id: r.get(0)?,
        revision: r.get(1)?,
        kind: r.get(2)?,
        at_ms: r.get(3)?,
        doc: r.get(4)?,
    })
}
