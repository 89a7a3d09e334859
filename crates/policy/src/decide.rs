//! The purpose decision (P9, P10, P21): the policy allows the purpose for these categories, the
//! caller's role covers the purpose, a staff read states its justification, and consent holds
//! where the purpose needs it. Compiled ids and bitsets only: no names, no maps.

use crate::ids::{IdSet, PurposeId, RoleId};
use crate::model::Policy;

/// What is being asked.
#[derive(Copy, Clone, Debug)]
pub struct Request {
    /// The caller's role.
    pub role: RoleId,
    /// The declared purpose of the read.
    pub purpose: PurposeId,
    /// The categories to be read.
    pub categories: IdSet,
    /// Whether the caller stated a justification.
    pub justified: bool,
}

/// The subject's consents in force, as bitsets.
#[derive(Copy, Clone, Debug, Default)]
pub struct ConsentState {
    /// Purposes the subject has consented to.
    pub purposes: IdSet,
    /// Features the subject has given separate consent to (P5).
    pub features: IdSet,
}

/// The policy-side grant: the read may go ahead if consent holds where needed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The purpose rests on consent, so the subject's consent must hold.
    pub needs_consent: bool,
}

/// Why a read was refused. Each names the rule that refused it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The role does not cover the purpose (P21).
    RoleLacksPurpose {
        /// The caller's role.
        role: RoleId,
        /// The purpose asked for.
        purpose: PurposeId,
    },
    /// The purpose may not read some of the categories (P9).
    CategoriesNotAllowed {
        /// The purpose asked for.
        purpose: PurposeId,
        /// The categories it may not read.
        categories: IdSet,
    },
    /// The role's reads need a stated justification (P21).
    JustificationRequired {
        /// The caller's role.
        role: RoleId,
    },
    /// The purpose needs the subject's consent, which does not hold (P10, P27).
    ConsentRequired {
        /// The purpose asked for.
        purpose: PurposeId,
    },
}

impl Refusal {
    /// Stable code for APIs and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::RoleLacksPurpose { .. } => "role_not_permitted",
            Refusal::CategoriesNotAllowed { .. } => "purpose_not_allowed",
            Refusal::JustificationRequired { .. } => "justification_required",
            Refusal::ConsentRequired { .. } => "consent_required",
        }
    }

    /// The policy rule that refused, as a path into the policy file.
    pub fn rule(&self, policy: &Policy) -> String {
        match *self {
            Refusal::RoleLacksPurpose { role, .. } => {
                format!("roles.{}.purposes", policy.role_name(role))
            }
            Refusal::CategoriesNotAllowed { purpose, .. } => {
                format!("purposes.{}.reads", policy.purpose(purpose).name)
            }
            Refusal::JustificationRequired { role } => {
                format!("roles.{}.justification", policy.role_name(role))
            }
            Refusal::ConsentRequired { purpose } => {
                format!("purposes.{}.basis", policy.purpose(purpose).name)
            }
        }
    }

    /// A plain sentence for the person refused. Names only, never values.
    pub fn explain(&self, policy: &Policy) -> String {
        match *self {
            Refusal::RoleLacksPurpose { role, purpose } => format!(
                "role `{}` may not act for purpose `{}`",
                policy.role_name(role),
                policy.purpose(purpose).name
            ),
            Refusal::CategoriesNotAllowed {
                purpose,
                categories,
            } => format!(
                "purpose `{}` may not read {}",
                policy.purpose(purpose).name,
                policy
                    .category_names(&categories)
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::JustificationRequired { role } => format!(
                "role `{}` must state a justification to read personal information",
                policy.role_name(role)
            ),
            Refusal::ConsentRequired { purpose } => format!(
                "purpose `{}` needs the subject's consent, which is not on record",
                policy.purpose(purpose).name
            ),
        }
    }
}

impl Policy {
    /// The policy-side decision. Consent is checked by [`Policy::decide`] or by the caller.
    #[inline]
    pub fn check(&self, req: &Request) -> Result<Grant, Refusal> {
        let (Some(role), Some(purpose)) = (
            self.roles.get(req.role.index()),
            self.purposes.get(req.purpose.index()),
        ) else {
            // Ids from another policy: treat as not covered rather than panic.
            return Err(Refusal::RoleLacksPurpose {
                role: req.role,
                purpose: req.purpose,
            });
        };
        if !role.purposes.contains(req.purpose.index()) {
            return Err(Refusal::RoleLacksPurpose {
                role: req.role,
                purpose: req.purpose,
            });
        }
        let outside = req.categories.difference(&purpose.reads);
        if !outside.is_empty() {
            return Err(Refusal::CategoriesNotAllowed {
                purpose: req.purpose,
                categories: outside,
            });
        }
        if role.justification && !req.justified {
            return Err(Refusal::JustificationRequired { role: req.role });
        }
        Ok(Grant {
            needs_consent: purpose.needs_consent(),
        })
    }

    /// The whole decision, given the subject's consents in force.
    #[inline]
    pub fn decide(&self, req: &Request, consent: &ConsentState) -> Result<(), Refusal> {
        let grant = self.check(req)?;
        if grant.needs_consent && !consent.purposes.contains(req.purpose.index()) {
            return Err(Refusal::ConsentRequired {
                purpose: req.purpose,
            });
        }
        Ok(())
    }
}
