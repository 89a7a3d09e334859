//! The one catalogue of error codes. Every error Steward reports — from the domain, the policy
//! decision, storage or the HTTP edge — maps to exactly one [`Code`], and each code has one
//! HTTP status and one meaning, written here once. `docs/errors.md` lists the same codes and
//! the OpenAPI document's `ErrorDetail.code` enumerates them; a test fails when the three drift.

macro_rules! catalogue {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:literal, $meaning:literal; )*) => {
        /// A stable error code: what an API client, an exit status and the audit log branch on.
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(rename_all = "snake_case")]
        pub enum Code {
            $( $(#[$doc])* #[serde(rename = $code)] $variant, )*
        }

        impl Code {
            /// Every code, in catalogue order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as clients see it (`consent_required`).
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $code),* }
            }

            /// The HTTP status it answers with.
            pub fn status(self) -> u16 {
                match self { $(Code::$variant => $status),* }
            }

            /// What it means, in one sentence.
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$variant => $meaning),* }
            }
        }
    };
}

catalogue! {
    // Requests the server cannot take.
    /// A value is malformed; the message names the field.
    InvalidInput = "invalid_input", 400, "a value sent is malformed or out of range; the message names the field, never the value";
    /// The body is not JSON.
    InvalidJson = "invalid_json", 400, "the request body is not valid JSON";
    /// The body is JSON of the wrong shape.
    InvalidBody = "invalid_body", 422, "the request body is JSON but lacks a field, has one too many or one of the wrong type; the message names the field";
    /// The query string cannot be read.
    InvalidQuery = "invalid_query", 400, "the query string has a parameter of the wrong type or one the operation does not take";
    /// A path segment cannot be decoded.
    InvalidPath = "invalid_path", 400, "a path segment cannot be decoded";
    /// The body is larger than allowed.
    BodyTooLarge = "body_too_large", 413, "the request body is larger than `max_body_bytes`";
    /// The body did not arrive in time.
    BodyTimeout = "body_timeout", 408, "the request body did not arrive within 10 s of its head; the connection is closed";
    /// The body is not `application/json`.
    UnsupportedMediaType = "unsupported_media_type", 415, "the request body is not sent as `Content-Type: application/json`";
    /// The request line is too long.
    UriTooLong = "uri_too_long", 414, "the request's path and query are longer than the server accepts";
    /// The headers are too large.
    HeadersTooLarge = "headers_too_large", 431, "the request's headers are larger, or more, than the server accepts";
    /// No such endpoint.
    NotFound = "not_found", 404, "no endpoint has this path; see /openapi.json";
    /// The endpoint takes other methods.
    MethodNotAllowed = "method_not_allowed", 405, "the endpoint exists but not with this method; the `Allow` header lists those it takes";

    // Who is asking.
    /// No valid credentials.
    Unauthenticated = "unauthenticated", 401, "no valid API key or session was presented";
    /// A staff sign-in failed.
    SignInFailed = "sign_in_failed", 401, "the username or password is wrong, or the account is disabled";
    /// A one-time code failed.
    CodeInvalid = "code_invalid", 401, "the one-time code is wrong, expired or used up";
    /// Too many attempts.
    TooManyAttempts = "too_many_attempts", 429, "too many attempts from this client or for this account; wait and try again";

    // Names the policy does not declare.
    /// Unknown category.
    UnknownCategory = "unknown_category", 400, "the policy declares no such category";
    /// Unknown purpose.
    UnknownPurpose = "unknown_purpose", 400, "the policy declares no such purpose";
    /// Unknown feature.
    UnknownFeature = "unknown_feature", 400, "the policy declares no such feature";
    /// Unknown role.
    UnknownRole = "unknown_role", 400, "the policy declares no such role";
    /// Unknown recipient.
    UnknownRecipient = "unknown_recipient", 400, "the policy declares no such recipient";
    /// Not a lookup category.
    CategoryNotLookup = "category_not_lookup", 400, "the category has no blind index, so it cannot be looked up";

    // Refusals: the act is not allowed (P3, P5, P9-P13, P21).
    /// The role may not perform the operation.
    OperationNotPermitted = "operation_not_permitted", 403, "the caller's role may not perform this operation at all (its `may` list)";
    /// The role does not cover the purpose.
    RoleNotPermitted = "role_not_permitted", 403, "the caller's role does not cover this purpose";
    /// The purpose may not read these categories.
    PurposeNotAllowed = "purpose_not_allowed", 403, "the purpose may not read some of the categories asked for";
    /// A justification is required.
    JustificationRequired = "justification_required", 403, "the caller's role must state a justification for this act";
    /// Consent is not in force.
    ConsentRequired = "consent_required", 403, "the act needs the subject's consent, which is not in force";
    /// Separate consent is not in force.
    SeparateConsentRequired = "separate_consent_required", 403, "the act needs the subject's separate, explicit consent, which is not in force";
    /// The account is closed.
    SubjectClosed = "subject_closed", 403, "the subject's account is closed: nothing more is collected for it, and only purposes resting on a legal obligation may read it";
    /// Outside the recipient's scope.
    DisclosureOutOfScope = "disclosure_out_of_scope", 403, "the disclosure is outside the recipient's registered purposes or categories";
    /// The feature does not collect the category.
    CategoryNotDeclared = "category_not_declared", 422, "the feature does not declare some of the categories sent (P3)";
    /// A required category is missing.
    RequiredCategoryMissing = "required_category_missing", 422, "the feature requires a category that was not sent (P3)";
    /// Fresh consent is needed (P11).
    ReconsentRequired = "reconsent_required", 403, "the purpose is new or wider in a policy version later than the subject's data, and the subject has not consented since that version took effect (P11)";
    /// A browser call from another site (P7).
    OriginNotAllowed = "origin_not_allowed", 403, "the calling page's origin is not one of the provider's sites listed in `allowed_origins`";
    /// A grant under Global Privacy Control without an explicit action (P7).
    GpcSignal = "gpc_signal", 403, "the request carries `Sec-GPC: 1`, the person's refusal of every non-essential use (P7): a grant is recorded only with the explicit action that gave it (`action`)";
    /// Consent does not apply.
    ConsentNotApplicable = "consent_not_applicable", 422, "the target does not rest on consent, so consent cannot be given or withdrawn for it";

    // The state of things.
    /// No such subject.
    SubjectNotFound = "subject_not_found", 404, "no subject has this id";
    /// No such request.
    RequestNotFound = "request_not_found", 404, "no rights request has this id";
    /// No such hold.
    HoldNotFound = "hold_not_found", 404, "no legal hold has this id";
    /// No such API key.
    KeyNotFound = "key_not_found", 404, "no API key has this id";
    /// No audit entry of this subject has this seq.
    EntryNotFound = "entry_not_found", 404, "no audit entry has this seq, or it names another subject";
    /// No webhook endpoint has this id.
    EndpointNotFound = "endpoint_not_found", 404, "no webhook endpoint has this id";
    /// No such policy version.
    VersionNotFound = "version_not_found", 404, "no published policy version has this name";
    /// No message in the outbox has this id.
    MessageNotFound = "message_not_found", 404, "no message in the outbox has this id";
    /// No incident has this id.
    IncidentNotFound = "incident_not_found", 404, "no incident has this id";
    /// No transfer plan has this id.
    TransferNotFound = "transfer_not_found", 404, "no transfer plan has this id";
    /// No external system has this key.
    SystemNotFound = "system_not_found", 404, "no external system (a dataset asked by webhook) has this key";
    /// The subject was erased.
    SubjectErased = "subject_erased", 410, "the subject has been erased";
    /// The data key is gone.
    DataKeyDestroyed = "data_key_destroyed", 410, "the subject's data key has been destroyed; the data cannot be read (P28)";
    /// A legal hold pauses deletion.
    LegalHold = "legal_hold", 409, "a legal hold pauses deletion of this data (P18)";
    /// The request cannot move that way.
    RequestState = "request_state", 409, "the rights request is in a state from which it cannot move that way";
    /// A lookup value belongs to another subject (P25).
    IdentityInUse = "identity_in_use", 409, "a lookup value sent (an email, a phone number, a linked account) already belongs to another subject; each belongs to one (P25)";
    /// The act conflicts with what is stored.
    Conflict = "conflict", 409, "the act conflicts with what is stored (a name already taken, a hold no longer in force)";
    /// Too soon for a material change (P29, P30).
    NoticePeriod = "notice_period", 409, "the version makes material changes and takes effect sooner than the policy's notice period allows; the message names the earliest date";
    /// A transfer planned too soon (P14).
    TransferTooSoon = "transfer_too_soon", 409, "a transfer must be planned at least `change_notice_days` ahead, so subjects are told before their data moves (P14); the message names the earliest date";
    /// A transfer run before its date (P14).
    TransferNotDue = "transfer_not_due", 409, "the transfer's date has not come; it cannot run before it (P14)";
    /// A policy text that does not validate.
    PolicyInvalid = "policy_invalid", 422, "the policy text does not validate, or renumbers what the version before it declared";
    /// The audit log is empty.
    AuditLogEmpty = "audit_log_empty", 409, "the audit log is empty, so there is no head to sign";

    // The deployment.
    /// Mail cannot be sent.
    MailUnavailable = "mail_unavailable", 503, "email cannot be sent now (no SMTP server configured, or it is down)";
    /// The store's region is not allowed.
    RegionNotAllowed = "region_not_allowed", 503, "the store's region is not one the policy allows (P16)";
    /// The policy's effective date has not come (P29).
    PolicyNotEffective = "policy_not_effective", 503, "the policy given takes effect at a later date and is not enforced before it; give the version in force (P29, P30)";
    /// No store where the settings point.
    StoreNotFound = "store_not_found", 404, "no store is where the settings point; only `serve`, `migrate`, `demo` and `backup restore` make one";
    /// The master key is not the store's.
    MasterKeyMismatch = "master_key_mismatch", 503, "the master key given is not the one the store was made with; the store refuses to open and nothing is written";
    /// A provider database cannot be reached (issue 16).
    DatasetUnavailable = "dataset_unavailable", 503, "a database a dataset declares (docs/datasets.md) cannot be reached or refused a statement; the request was left as it was, and the same call may succeed later; the message names the system, never a value";
    /// Storage cannot be reached.
    StorageUnavailable = "storage_unavailable", 503, "the storage backend cannot be reached now; nothing was applied and the same call may succeed later";
    /// Storage is full.
    StorageFull = "storage_full", 507, "the storage backend is out of space; nothing was applied";
    /// Stored data is damaged.
    StorageCorrupt = "storage_corrupt", 500, "stored data is not in the shape this build expects";
    /// Storage failed otherwise.
    StorageFailed = "storage_failed", 500, "the storage backend failed";
    /// A ciphertext failed its check.
    IntegrityFailure = "integrity_failure", 500, "a stored value, or a row of state a decision rests on (subject, consent, hold), failed its integrity check: changed outside Steward, or moved to another row (docs/audit-format.md §7)";
    /// Key handling failed.
    KeyFailure = "key_failure", 500, "a key could not be derived, wrapped or unwrapped";
    /// A file could not be read or written.
    IoFailed = "io_failed", 500, "a file could not be read or written; the message names it";
    /// The audit log failed verification.
    AuditLogTampered = "audit_log_tampered", 500, "the audit log or its signed checkpoints failed verification (entries rewritten, removed or checkpoints deleted); nothing was signed and the fault is logged";
    /// Something that should not happen did.
    Internal = "internal", 500, "the server failed in a way it did not expect; nothing was applied";

    // Files the command line reads.
    /// A backup file is damaged or foreign.
    BackupInvalid = "backup_invalid", 422, "the backup file is damaged, of the other half, of another backend, or made under another master key";
    /// A piece of evidence does not verify.
    EvidenceInvalid = "evidence_invalid", 422, "the document, log or key given does not verify or cannot be read as evidence";
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_with_error_statuses() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{} twice", c.as_str());
            assert!(
                c.as_str()
                    .chars()
                    .all(|ch| ch.is_ascii_lowercase() || ch == '_'),
                "{}",
                c.as_str()
            );
            assert!((400..600).contains(&c.status()), "{}", c.as_str());
            assert!(!c.meaning().is_empty());
            assert_eq!(
                serde_json::to_value(c).ok(),
                Some(serde_json::Value::String(c.as_str().into()))
            );
        }
    }
}
