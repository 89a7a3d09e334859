//! Published policy versions and what each subject was told of them and accepted (P29, P30).

/// One published version of the policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyVersionRow {
    /// The policy's `version` (`2026.2`): unique.
    pub version: String,
    /// Publication order, from 1.
    pub serial: i64,
    /// SHA-256 of `text`, lowercase hex.
    pub digest: String,
    /// The policy file as published.
    pub text: String,
    /// When it takes effect, Unix ms.
    pub effective_ms: i64,
    /// When it was published, Unix ms.
    pub published_ms: i64,
    /// Who published it (`staff:<name>`, `service:<name>`, `system`).
    pub published_by: String,
    /// JSON: its classified differences from the version before.
    pub changes: String,
}

/// One thing that happened between a subject and a version, the first time it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyEventRow {
    /// Whose.
    pub subject: crate::SubjectKey,
    /// Which version.
    pub version: String,
    /// `notified`, `shown` or `accepted`.
    pub event: String,
    /// `email`, `page`, `explicit`, `staff` or `continued_use`.
    pub how: String,
    /// When, Unix ms.
    pub at_ms: i64,
}
