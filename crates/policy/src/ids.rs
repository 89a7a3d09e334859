//! Dense ids and the fixed-size bitsets that make a policy decision a few instructions.
//!
//! Every declared category, purpose, feature, role and recipient gets a dense index when the
//! policy is compiled; sets of them are `IdSet`s. Names never appear on the hot path.

use std::fmt;

/// Most items of one kind a policy may declare (the width of an [`IdSet`]).
pub const MAX_IDS: usize = 256;

macro_rules! dense_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub(crate) u16);

        impl $name {
            /// The dense index of this item in its policy.
            pub fn index(self) -> usize {
                usize::from(self.0)
            }
        }
    };
}

dense_id!(
    /// A declared category of personal information.
    CategoryId
);
dense_id!(
    /// A declared purpose of processing.
    PurposeId
);
dense_id!(
    /// A declared feature that collects personal information.
    FeatureId
);
dense_id!(
    /// A declared role that staff or services act under.
    RoleId
);
dense_id!(
    /// A registered recipient of disclosures.
    RecipientId
);

impl RoleId {
    /// Data subjects acting on their own data (self-service). Never a declared role, so no
    /// policy operation or purpose is granted through it; what a subject may do is fixed in
    /// code and bound to their own records.
    pub const SUBJECT: RoleId = RoleId(u16::MAX);
    /// Steward itself, finishing on schedule what staff started (a request's erasure once
    /// the provider's databases are done). Never a declared role either: nothing is permitted
    /// through it; it only names the actor of what was already permitted.
    pub const SYSTEM: RoleId = RoleId(u16::MAX - 1);
}

/// A set of up to [`MAX_IDS`] dense ids of one kind.
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct IdSet([u64; 4]);

impl IdSet {
    /// The empty set.
    pub const EMPTY: IdSet = IdSet([0; 4]);

    /// Adds `index`; indexes at or past [`MAX_IDS`] are ignored (the compiler never makes them).
    pub fn insert(&mut self, index: usize) {
        if let Some(word) = self.0.get_mut(index / 64) {
            *word |= 1u64 << (index % 64);
        }
    }

    /// Whether `index` is in the set.
    #[inline]
    pub fn contains(&self, index: usize) -> bool {
        self.0
            .get(index / 64)
            .is_some_and(|word| word & (1u64 << (index % 64)) != 0)
    }

    /// Members of `self` that are not in `other`.
    #[inline]
    pub fn difference(&self, other: &IdSet) -> IdSet {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = other.0;
        IdSet([a0 & !b0, a1 & !b1, a2 & !b2, a3 & !b3])
    }

    /// Members in both sets.
    #[inline]
    pub fn intersection(&self, other: &IdSet) -> IdSet {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = other.0;
        IdSet([a0 & b0, a1 & b1, a2 & b2, a3 & b3])
    }

    /// Members in either set.
    #[inline]
    pub fn union(&self, other: &IdSet) -> IdSet {
        let [a0, a1, a2, a3] = self.0;
        let [b0, b1, b2, b3] = other.0;
        IdSet([a0 | b0, a1 | b1, a2 | b2, a3 | b3])
    }

    /// Whether the set has no members.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    /// Whether every member of `self` is in `other`.
    #[inline]
    pub fn is_subset(&self, other: &IdSet) -> bool {
        self.difference(other).is_empty()
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The members, in ascending order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        (0..MAX_IDS).filter(|i| self.contains(*i))
    }
}

impl fmt::Debug for IdSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl FromIterator<usize> for IdSet {
    fn from_iter<T: IntoIterator<Item = usize>>(iter: T) -> Self {
        let mut set = IdSet::EMPTY;
        for i in iter {
            set.insert(i);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations() {
        let a: IdSet = [1, 64, 200].into_iter().collect();
        let b: IdSet = [1, 200].into_iter().collect();
        assert!(b.is_subset(&a));
        assert!(!a.is_subset(&b));
        assert_eq!(a.difference(&b).iter().collect::<Vec<_>>(), vec![64]);
        assert_eq!(a.len(), 3);
        let mut c = IdSet::EMPTY;
        c.insert(MAX_IDS);
        assert!(c.is_empty());
    }
}
