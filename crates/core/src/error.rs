//! The one error type of the domain, each variant with a stable code. Messages name policy
//! terms (categories, purposes, features) and never PI values.

use steward_crypto::CryptoError;
use steward_store::StoreError;

/// Everything an operation on the vault can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name the policy does not declare. A name that could not be a policy name at all is
    /// not repeated back: it may be a value sent in the wrong field.
    #[error("unknown {kind} {}", shown_name(.name))]
    Unknown {
        /// `category`, `purpose`, `feature`, `role` or `recipient`.
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// P3: the feature does not declare these categories.
    #[error("feature `{feature}` does not collect {categories}")]
    CategoryNotDeclared {
        /// The feature.
        feature: String,
        /// The categories, quoted.
        categories: String,
    },
    /// P3: a required category is missing.
    #[error("feature `{feature}` requires {categories}")]
    RequiredMissing {
        /// The feature.
        feature: String,
        /// The missing categories, quoted.
        categories: String,
    },
    /// A consent that the act needs is not in force.
    #[error("{what} needs the subject's consent to `{target}`, which is not in force")]
    ConsentRequired {
        /// What was attempted.
        what: String,
        /// The consent target (`feature:face_recognition`, ...).
        target: String,
    },
    /// P5: sensitive categories need the subject's separate consent to the feature.
    #[error(
        "sensitive categories {categories} need the subject's separate consent to feature `{feature}`"
    )]
    SeparateConsentRequired {
        /// The feature.
        feature: String,
        /// The sensitive categories, quoted.
        categories: String,
    },
    /// A purpose decision refused the read (P9, P10, P21).
    #[error("{message} (rule `{rule}`)")]
    Refused {
        /// Stable refusal code.
        code: &'static str,
        /// The policy rule that refused.
        rule: String,
        /// Plain explanation.
        message: String,
    },
    /// P21: the caller's role may not perform this operation at all.
    #[error("role `{role}` may not perform `{operation}`")]
    NotPermitted {
        /// The caller's role.
        role: String,
        /// The operation (`pi.read`, `subject.erase`, ...).
        operation: &'static str,
    },
    /// P13: the disclosure is outside the recipient's registered scope.
    #[error("recipient `{recipient}` may not receive this: {reason}")]
    DisclosureOutOfScope {
        /// The recipient.
        recipient: String,
        /// Why.
        reason: String,
    },
    /// Consent cannot be given to something that does not rest on consent.
    #[error("`{target}` does not rest on consent: {reason}")]
    ConsentNotApplicable {
        /// The target.
        target: String,
        /// Why.
        reason: String,
    },
    /// P18: a legal hold pauses deletion of this data.
    #[error("a legal hold pauses deletion of {categories}")]
    LegalHold {
        /// What is held.
        categories: String,
    },
    /// The subject's account is closed; only legal obligations may still read it (P28).
    #[error(
        "the subject's account is closed; only purposes resting on a legal obligation may read it"
    )]
    SubjectClosed,
    /// A rights request cannot move that way.
    #[error("the request is `{state}`; it cannot be {wanted}")]
    RequestState {
        /// Where it is.
        state: String,
        /// What was asked.
        wanted: &'static str,
    },
    /// Too many attempts from this client or for this subject; try again later (P25).
    #[error("too many attempts; try again later")]
    TooManyAttempts,
    /// The one-time code is wrong, expired or used up.
    #[error("the code is wrong, expired or used up; ask for a new one")]
    CodeInvalid,
    /// Email cannot be sent right now.
    #[error("email cannot be sent right now; try again later")]
    MailUnavailable,
    /// No valid credentials were presented.
    #[error("authentication required: present a valid API key as `Authorization: Bearer <key>`")]
    Unauthenticated,
    /// No such subject.
    #[error("subject not found")]
    SubjectNotFound,
    /// The subject has been erased.
    #[error("subject has been erased")]
    SubjectErased,
    /// The subject's data key no longer exists: the data is unreadable by design (P28).
    #[error("the subject's data key has been destroyed; the data cannot be read")]
    KeyDestroyed,
    /// A category that has no blind index was used for a lookup.
    #[error("category `{0}` is not a lookup category")]
    NotLookup(String),
    /// P16: the store's region is not one the policy allows.
    #[error("storage region `{region}` is not allowed by the policy (allowed: {allowed})")]
    RegionNotAllowed {
        /// The store's region.
        region: String,
        /// The policy's regions.
        allowed: String,
    },
    /// Malformed input.
    #[error("{0}")]
    Invalid(String),
    /// A ciphertext failed to open: altered, or moved to another row (P20).
    #[error("a stored value failed its integrity check")]
    Integrity,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Key handling failed.
    #[error(transparent)]
    Crypto(CryptoError),
}

impl From<CryptoError> for Error {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Open => Error::Integrity,
            other => Error::Crypto(other),
        }
    }
}

impl Error {
    /// The stable code for APIs, exit statuses and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Unknown { kind, .. } => match *kind {
                "category" => "unknown_category",
                "purpose" => "unknown_purpose",
                "feature" => "unknown_feature",
                "role" => "unknown_role",
                _ => "unknown_recipient",
            },
            Error::CategoryNotDeclared { .. } => "category_not_declared",
            Error::RequiredMissing { .. } => "required_category_missing",
            Error::ConsentRequired { .. } => "consent_required",
            Error::SeparateConsentRequired { .. } => "separate_consent_required",
            Error::Refused { code, .. } => code,
            Error::NotPermitted { .. } => "operation_not_permitted",
            Error::DisclosureOutOfScope { .. } => "disclosure_out_of_scope",
            Error::ConsentNotApplicable { .. } => "consent_not_applicable",
            Error::LegalHold { .. } => "legal_hold",
            Error::SubjectClosed => "subject_closed",
            Error::RequestState { .. } => "request_state",
            Error::TooManyAttempts => "too_many_attempts",
            Error::CodeInvalid => "code_invalid",
            Error::MailUnavailable => "mail_unavailable",
            Error::Unauthenticated => "unauthenticated",
            Error::SubjectNotFound => "subject_not_found",
            Error::SubjectErased => "subject_erased",
            Error::KeyDestroyed => "data_key_destroyed",
            Error::NotLookup(_) => "category_not_lookup",
            Error::RegionNotAllowed { .. } => "region_not_allowed",
            Error::Invalid(_) => "invalid_input",
            Error::Integrity => "integrity_failure",
            Error::Store(StoreError::Unavailable(_)) => "storage_unavailable",
            Error::Store(_) => "storage_failed",
            Error::Crypto(_) => "key_failure",
        }
    }
}

/// A caller-supplied name as a message may show it: only if it has the shape of a policy name.
fn shown_name(name: &str) -> String {
    let is_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if is_name {
        format!("`{name}`")
    } else {
        "(the name given is not a policy name)".to_string()
    }
}

/// Quotes names for messages: `a`, `b`.
pub(crate) fn quoted<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
