//! Where a rights request stands, and the one function that moves it.

/// Where a rights request stands (P23-P28, P31). A request moves only by
/// [`RequestState::on`]: received -> verified -> in progress -> completed, or refused from
/// any open state. The SQL that lists open requests binds [`RequestState::OPEN`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RequestState {
    /// Taken in; the requester's identity is not yet verified (P25).
    Received,
    /// Identity verified.
    Verified,
    /// Being worked on.
    InProgress,
    /// Carried out.
    Completed,
    /// Refused, in whole, for a reason from the fixed list (P26).
    Refused,
}

/// What can happen to a request.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RequestEvent {
    /// The requester's identity was verified.
    Verify,
    /// Staff started working on it.
    Start,
    /// It was carried out.
    Complete,
    /// It was refused.
    Refuse,
}

impl RequestEvent {
    /// The event as a verb's past participle, for messages (`verified`).
    pub fn as_str(self) -> &'static str {
        match self {
            RequestEvent::Verify => "verified",
            RequestEvent::Start => "started",
            RequestEvent::Complete => "completed",
            RequestEvent::Refuse => "refused",
        }
    }
}

impl RequestState {
    /// Every state.
    pub const ALL: [RequestState; 5] = [
        RequestState::Received,
        RequestState::Verified,
        RequestState::InProgress,
        RequestState::Completed,
        RequestState::Refused,
    ];

    /// The states of a request still to be answered, with a clock running (P32).
    pub const OPEN: [RequestState; 3] = [
        RequestState::Received,
        RequestState::Verified,
        RequestState::InProgress,
    ];

    /// The one transition function: the state `event` leads to, or `None` if a request in
    /// this state cannot take it.
    pub fn on(self, event: RequestEvent) -> Option<RequestState> {
        use RequestEvent as E;
        use RequestState as S;
        match (self, event) {
            (S::Received, E::Verify) => Some(S::Verified),
            (S::Verified, E::Start) => Some(S::InProgress),
            (S::Verified | S::InProgress, E::Complete) => Some(S::Completed),
            (S::Received | S::Verified | S::InProgress, E::Refuse) => Some(S::Refused),
            (
                S::Received | S::Verified | S::InProgress | S::Completed | S::Refused,
                E::Verify | E::Start | E::Complete | E::Refuse,
            ) => None,
        }
    }

    /// Whether the request is still to be answered.
    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }

    /// Stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Received => "received",
            RequestState::Verified => "verified",
            RequestState::InProgress => "in_progress",
            RequestState::Completed => "completed",
            RequestState::Refused => "refused",
        }
    }

    /// The state a stored word names.
    pub fn parse(s: &str) -> Option<RequestState> {
        Self::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// The stored words of the open states, for SQL that binds them.
    pub fn open_words() -> Vec<&'static str> {
        Self::OPEN.iter().map(|s| s.as_str()).collect()
    }
}
