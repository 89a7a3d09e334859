//! The rows of the transactional outbox and of webhook endpoints, as every backend stores
//! them. A message is written in the unit of work of the act that causes it
//! ([`crate::Op::Enqueue`]); a dispatcher claims due messages for a lease
//! ([`crate::Store::claim_outbox`]), delivers them and records the outcome
//! ([`crate::Store::settle_outbox`]). Delivery is at least once: a message whose dispatcher
//! died is claimed again once its lease ends, under the same id.

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OutboxState {
    /// Waiting for its next attempt.
    Pending,
    /// Delivered.
    Delivered,
    /// Given up after the last attempt allowed; `retry` puts it back.
    Dead,
}

impl OutboxState {
    /// Every state, in order.
    pub const ALL: [OutboxState; 3] = [
        OutboxState::Pending,
        OutboxState::Delivered,
        OutboxState::Dead,
    ];

    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Dead => "dead",
        }
    }

    /// From its stored word.
    pub fn parse(word: &str) -> Option<OutboxState> {
        OutboxState::ALL.into_iter().find(|s| s.as_str() == word)
    }
}

/// One message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    /// Stable id: every attempt carries it (the `webhook-id`, the mail's `Message-ID`), so a
    /// receiver can drop a repeat.
    pub id: String,
    /// `email` or `webhook`.
    pub channel: String,
    /// Where: `subject:<uuid>` for a subject's email (the address is looked up when it is
    /// sent), `contact:<address>` for a configured staff contact, the endpoint's id for a
    /// webhook.
    pub destination: String,
    /// The event (`request.refused`, ...).
    pub event: String,
    /// JSON: what the message says, without PI values.
    pub payload: String,
    /// Where it stands.
    pub state: OutboxState,
    /// Attempts made.
    pub attempts: u32,
    /// When it is next due, Unix ms.
    pub next_ms: i64,
    /// Claimed by a dispatcher until then, Unix ms (0: not claimed).
    pub lease_ms: i64,
    /// When written.
    pub created_ms: i64,
    /// When last changed.
    pub updated_ms: i64,
    /// Why the last attempt failed, in words that hold no PI; empty if none did.
    pub last_error: String,
}

/// What an attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered at this time.
    Delivered {
        /// When.
        at_ms: i64,
    },
    /// Failed: try again at `next_ms`, or, if `dead`, no more.
    Failed {
        /// When.
        at_ms: i64,
        /// When to try again.
        next_ms: i64,
        /// No more attempts.
        dead: bool,
        /// Why, without PI.
        error: String,
    },
}

/// A webhook endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointRow {
    /// Id (`whe_…`).
    pub id: String,
    /// Where events are POSTed.
    pub url: String,
    /// Event types it takes, comma-separated; empty for every event.
    pub events: String,
    /// The signing secret, sealed under a key derived from the master key.
    pub secret: Vec<u8>,
    /// When registered.
    pub created_ms: i64,
    /// No longer sent to.
    pub disabled: bool,
}
