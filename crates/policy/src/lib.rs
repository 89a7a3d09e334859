//! The privacy statement as code.
//!
//! Text -> [`Policy::parse`] (spanned TOML, validated, every error located) -> a compiled
//! [`Policy`] of dense ids and bitsets -> [`Policy::decide`]. Also [`diff`] between versions
//! (P29) and [`explain`] in plain language. Pure: no I/O, no clock.

mod decide;
mod diag;
mod diff;
mod explain;
mod ids;
mod model;
mod parse;

pub use decide::{ConsentState, Grant, Refusal, Request};
pub use diag::{Diagnostic, Diagnostics};
pub use diff::{Change, Class, Verb, diff};
pub use explain::explain;
pub use ids::{CategoryId, FeatureId, IdSet, MAX_IDS, PurposeId, RecipientId, RoleId};
pub use model::{
    Basis, Capabilities, Capability, Category, Cookie, Deadlines, Feature, Grade, Incidents,
    LANGUAGES, Policy, Purpose, Recipient, RecipientKind, ReportRule, Retention, RetentionFrom,
    Review, Role, days, hours,
};
pub use parse::SCHEMA_VERSION;

/// The example policy shipped with Steward, modelled on a cloud provider's statement.
pub const EXAMPLE_POLICY: &str = include_str!("../../../examples/policies/cloud-provider.toml");

impl Policy {
    /// Parses and validates a policy file; `file` names it in error positions.
    pub fn parse(src: &str, file: &str) -> Result<Policy, Diagnostics> {
        parse::parse(src, file)
    }

    /// The shipped example policy.
    pub fn example() -> Result<Policy, Diagnostics> {
        parse::parse(EXAMPLE_POLICY, "examples/policies/cloud-provider.toml")
    }
}

#[cfg(test)]
mod tests;
