//! Row mapping and the per-subject reads an export makes.

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::{
    ApiKeyRow, ConsentRow, DisclosureRow, HoldRow, Reader, RecordRow, RequestRow, RequestState,
    StoreError, SubjectKey, SubjectRecords, SubjectRow, SubjectState,
};

use super::*;

pub(super) fn hold_row(r: &Row) -> Result<HoldRow, StoreError> {
    Ok(HoldRow {
        id: col(r, 0)?,
        subject: key16(col(r, 1)?)?,
        categories: col(r, 2)?,
        reason: col(r, 3)?,
        reference: col(r, 4)?,
        placed_ms: col(r, 5)?,
        until_ms: col(r, 6)?,
        lifted_ms: col(r, 7)?,
        tag: col(r, 8)?,
    })
}

pub(super) fn request_row(r: &Row) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        id: col(r, 0)?,
        subject: key16(col(r, 1)?)?,
        kind: col(r, 2)?,
        state: RequestState::parse(col(r, 3)?).ok_or_else(|| corrupt("unknown request state"))?,
        target: col(r, 4)?,
        received_ms: col(r, 5)?,
        due_ms: col(r, 6)?,
        updated_ms: col(r, 7)?,
        verification: col(r, 8)?,
        outcome: col(r, 9)?,
        sealed_text: col(r, 10)?,
    })
}

pub(super) fn api_key_row(r: &Row) -> Result<ApiKeyRow, StoreError> {
    Ok(ApiKeyRow {
        id: col(r, 0)?,
        name: col(r, 1)?,
        role: col(r, 2)?,
        digest: hash32(col(r, 3)?)?,
        created_ms: col(r, 4)?,
        revoked: col(r, 5)?,
    })
}

pub(super) async fn subject_row(
    c: &Conn,
    id: &SubjectKey,
) -> Result<Option<SubjectRow>, StoreError> {
    c.opt(
        "SELECT state, created_ms, closed_ms, tag FROM subjects WHERE id = $1",
        &[&&id[..]],
    )
    .await?
    .map(|r| {
        Ok(SubjectRow {
            id: *id,
            state: SubjectState::parse(col(&r, 0)?)
                .ok_or_else(|| corrupt("unknown subject state"))?,
            created_ms: col(&r, 1)?,
            closed_ms: col(&r, 2)?,
            tag: col(&r, 3)?,
        })
    })
    .transpose()
}

pub(super) async fn records_of(
    c: &Conn,
    subject: &SubjectKey,
) -> Result<Vec<RecordRow>, StoreError> {
    c.query(
        "SELECT id, category, feature, source, collected_ms, sealed
         FROM records WHERE subject = $1 ORDER BY id",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(RecordRow {
            id: col(r, 0)?,
            subject: *subject,
            category: col(r, 1)?,
            feature: col(r, 2)?,
            source: col(r, 3)?,
            collected_ms: col(r, 4)?,
            sealed: col(r, 5)?,
        })
    })
    .collect()
}

pub(super) async fn consents_in_force(
    c: &Conn,
    subject: &SubjectKey,
) -> Result<Vec<ConsentRow>, StoreError> {
    c.query(
        "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
         FROM consent_current WHERE subject = $1 ORDER BY target",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(consent_row)
    .collect()
}

pub(super) async fn consent_history(
    c: &Conn,
    subject: &SubjectKey,
) -> Result<Vec<ConsentRow>, StoreError> {
    c.query(
        "SELECT subject, target, granted, separate, channel, policy_version, at_ms, audit_seq, tag
         FROM consent_events WHERE subject = $1 ORDER BY id",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(consent_row)
    .collect()
}

pub(super) async fn disclosures_of(
    c: &Conn,
    subject: &SubjectKey,
) -> Result<Vec<DisclosureRow>, StoreError> {
    c.query(
        "SELECT subject, recipient, categories, purpose, legal_basis, at_ms, audit_seq
         FROM disclosures WHERE subject = $1 ORDER BY id",
        &[&&subject[..]],
    )
    .await?
    .iter()
    .map(|r| {
        Ok(DisclosureRow {
            subject: key16(col(r, 0)?)?,
            recipient: col(r, 1)?,
            categories: col(r, 2)?,
            purpose: col(r, 3)?,
            legal_basis: col(r, 4)?,
            at_ms: col(r, 5)?,
            audit_seq: seq_in(col(r, 6)?)?,
        })
    })
    .collect()
}

impl PgStore {
    pub(super) fn rows<T>(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        map: impl Fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.pool
            .run(async |c| c.query(sql, params).await)?
            .iter()
            .map(map)
            .collect()
    }

    pub(super) fn row<T>(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
        map: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.pool
            .run(async |c| c.opt(sql, params).await)?
            .as_ref()
            .map(map)
            .transpose()
    }
}

/// One request by id, on `c`.
pub(super) async fn request_by_id(c: &Conn, id: &str) -> Result<Option<RequestRow>, StoreError> {
    c.opt(concat!(request_columns!(), " WHERE id = $1"), &[&id])
        .await?
        .map(|r| request_row(&r))
        .transpose()
}

/// The subjects holding a lookup digest (every shard is asked: see `citus::FAN_OUT`).
pub(super) async fn index_holders(
    c: &Conn,
    digest: &[u8; 16],
) -> Result<Vec<SubjectKey>, StoreError> {
    c.query(
        "SELECT DISTINCT subject FROM lookup WHERE digest = $1 ORDER BY subject",
        &[&&digest[..]],
    )
    .await?
    .iter()
    .map(|r| key16(col(r, 0)?))
    .collect()
}

impl Reader for PgStore {
    fn index_holders(&self, digest: &[u8; 16]) -> Result<Vec<SubjectKey>, StoreError> {
        self.pool.run(async |c| index_holders(c, digest).await)
    }

    fn request(&self, id: &str) -> Result<Option<RequestRow>, StoreError> {
        self.pool.run(async |c| request_by_id(c, id).await)
    }

    fn subject_records(
        &self,
        subject: &SubjectKey,
        consent_target: Option<&str>,
        categories: &[&str],
    ) -> Result<Option<SubjectRecords>, StoreError> {
        self.pool
            .run(async |c| subject_records(c, subject, consent_target, categories).await)
    }

    fn consent(
        &self,
        subject: &SubjectKey,
        target: &str,
    ) -> Result<Option<ConsentRow>, StoreError> {
        self.pool.run(async |c| consent(c, subject, target).await)
    }
}

/// The columns of `outbox`, in the order [`outbox_row`] reads them.
macro_rules! outbox_columns {
    () => {
        "id, channel, destination, event, payload, state, attempts, next_ms, lease_ms, created_ms, updated_ms, last_error"
    };
}
pub(super) use outbox_columns;

pub(super) fn outbox_row(r: &Row) -> Result<crate::OutboxRow, StoreError> {
    Ok(crate::OutboxRow {
        id: col(r, 0)?,
        channel: col(r, 1)?,
        destination: col(r, 2)?,
        event: col(r, 3)?,
        payload: col(r, 4)?,
        state: crate::OutboxState::parse(col(r, 5)?)
            .ok_or_else(|| corrupt("unknown outbox state"))?,
        attempts: u32::try_from(col::<i32>(r, 6)?)
            .map_err(|_| corrupt("an outbox row's attempts are negative"))?,
        next_ms: col(r, 7)?,
        lease_ms: col(r, 8)?,
        created_ms: col(r, 9)?,
        updated_ms: col(r, 10)?,
        last_error: col(r, 11)?,
    })
}

pub(super) fn endpoint_row(r: &Row) -> Result<crate::EndpointRow, StoreError> {
    Ok(crate::EndpointRow {
        id: col(r, 0)?,
        url: col(r, 1)?,
        events: col(r, 2)?,
        secret: col(r, 3)?,
        created_ms: col(r, 4)?,
        disabled: col(r, 5)?,
    })
}

/// A case revision from `SELECT id, revision, kind, at_ms, doc`.
pub(super) fn case_row(r: &Row) -> Result<crate::CaseRow, StoreError> {
    Ok(crate::CaseRow {
        id: col(r, 0)?,
        revision: col(r, 1)?,
        kind: col(r, 2)?,
        at_ms: col(r, 3)?,
        doc: col(r, 4)?,
    })
}
