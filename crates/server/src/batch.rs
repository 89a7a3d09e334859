//! Group commit for the requests that write on every call: purpose-checked reads (each writes
//! an audit entry in the same transaction as the read, P21), consent changes and visitors'
//! cookie choices. One
//! transaction per request would make the commit the bottleneck under load. Requests queue;
//! whoever commits takes everything waiting (up to [`MAX_BATCH`]), commits it together, and
//! answers each caller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use steward_core::{
    Actor, ConsentChange, ConsentTarget, Error, Read, SignedDocument, SubjectId, Value, Vault,
};
use tokio::sync::oneshot;

/// Most requests committed together.
pub const MAX_BATCH: usize = 256;

/// One queued purpose-checked read, owning what it reads.
pub struct ReadJob {
    /// Who reads.
    pub actor: Actor,
    /// Whose data.
    pub subject: SubjectId,
    /// Categories.
    pub categories: Vec<String>,
    /// Purpose.
    pub purpose: String,
    /// Justification, for staff roles.
    pub justification: Option<String>,
}

/// One queued consent change, owning what it records.
pub struct ConsentJob {
    /// Who records it.
    pub actor: Actor,
    /// Whose consent.
    pub subject: SubjectId,
    /// To what.
    pub target: ConsentTarget,
    /// Granted, or withdrawn.
    pub granted: bool,
    /// Given separately.
    pub separate: bool,
    /// Where it was given.
    pub channel: String,
    /// The request carried `Sec-GPC: 1`.
    pub gpc: bool,
    /// The person's explicit action, if the caller recorded one.
    pub action: Option<String>,
}

/// One queued request of a visitor's cookie choices, owning what it records.
pub struct VisitorJob {
    /// The device id the banner keeps.
    pub device: String,
    /// The choices.
    pub choices: Vec<steward_core::visitors::VisitorChoice>,
    /// `button` or `toggle`.
    pub action: String,
    /// The request carried Global Privacy Control.
    pub gpc: bool,
    /// Sign and return the receipts now.
    pub receipts: bool,
    /// The caller's address: new visitors count against its hourly limit.
    pub client: String,
}

/// What a batch of jobs is committed with: one answer per job, in order.
pub trait Commit: Sized + Send + 'static {
    /// The answer a caller waits for.
    type Answer: Send + 'static;
    /// Commits `jobs` together.
    fn commit(vault: &Vault, jobs: &[Self]) -> Vec<Self::Answer>;
}

impl Commit for ReadJob {
    type Answer = Result<Vec<Value>, Error>;

    fn commit(vault: &Vault, jobs: &[ReadJob]) -> Vec<Self::Answer> {
        let cats: Vec<Vec<&str>> = jobs
            .iter()
            .map(|j| j.categories.iter().map(String::as_str).collect())
            .collect();
        let batch: Vec<(&Actor, Read<'_>)> = jobs
            .iter()
            .zip(&cats)
            .map(|(j, c)| {
                (
                    &j.actor,
                    Read {
                        subject: j.subject,
                        categories: c,
                        purpose: &j.purpose,
                        justification: j.justification.as_deref(),
                    },
                )
            })
            .collect();
        crate::api::blocking(vault, || vault.read_batch(&batch))
    }
}

impl Commit for ConsentJob {
    type Answer = Result<SignedDocument, Error>;

    fn commit(vault: &Vault, jobs: &[ConsentJob]) -> Vec<Self::Answer> {
        let changes: Vec<ConsentChange<'_>> = jobs
            .iter()
            .map(|j| ConsentChange {
                actor: &j.actor,
                subject: j.subject,
                target: j.target,
                granted: j.granted,
                separate: j.separate,
                channel: &j.channel,
                gpc: j.gpc,
                action: j.action.as_deref(),
            })
            .collect();
        crate::api::blocking(vault, || vault.consent_each(&changes))
    }
}

impl Commit for VisitorJob {
    type Answer = Result<Vec<SignedDocument>, Error>;

    fn commit(vault: &Vault, jobs: &[VisitorJob]) -> Vec<Self::Answer> {
        let requests: Vec<steward_core::visitors::VisitorChoices<'_>> = jobs
            .iter()
            .map(|j| steward_core::visitors::VisitorChoices {
                device: &j.device,
                choices: &j.choices,
                action: &j.action,
                gpc: j.gpc,
                receipts: j.receipts,
                client: Some(&j.client),
            })
            .collect();
        crate::api::blocking(vault, || vault.visitor_choose_each(&requests))
    }
}

/// The queue, and who is committing it.
struct Queue<J: Commit> {
    jobs: Mutex<Vec<(J, oneshot::Sender<J::Answer>)>>,
    leading: AtomicBool,
}

/// Group commit without a thread of its own: the first caller to find nobody committing lets
/// the requests that arrived with it queue behind it (it yields once), then becomes the
/// leader: it commits everything queued (its own job included) on its worker, and keeps going
/// while more arrives. A lone request is committed at once by its own caller.
pub struct Batcher<J: Commit> {
    vault: Arc<Vault>,
    queue: Arc<Queue<J>>,
}

impl<J: Commit> Clone for Batcher<J> {
    fn clone(&self) -> Self {
        Batcher {
            vault: Arc::clone(&self.vault),
            queue: Arc::clone(&self.queue),
        }
    }
}

impl<J: Commit> Batcher<J> {
    /// A batcher over `vault`.
    pub fn new(vault: Arc<Vault>) -> Batcher<J> {
        Batcher {
            vault,
            queue: Arc::new(Queue {
                jobs: Mutex::new(Vec::new()),
                leading: AtomicBool::new(false),
            }),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Vec<(J, oneshot::Sender<J::Answer>)>> {
        self.queue.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn commit(&self, queued: Vec<(J, oneshot::Sender<J::Answer>)>) {
        let (jobs, replies): (Vec<J>, Vec<_>) = queued.into_iter().unzip();
        for (reply, answer) in replies.into_iter().zip(J::commit(&self.vault, &jobs)) {
            // A caller that went away no longer needs its answer.
            let _ = reply.send(answer);
        }
    }

    /// Leads while there is work and nobody else leads.
    fn lead(&self) {
        /// Gives up leadership however the leader leaves, a panic included, so that requests
        /// never wait on a leader that is gone.
        struct Resign<'a>(&'a AtomicBool);
        impl Drop for Resign<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        while !self.queue.leading.swap(true, Ordering::AcqRel) {
            let resign = Resign(&self.queue.leading);
            loop {
                let jobs: Vec<_> = {
                    let mut q = self.jobs();
                    let n = q.len().min(MAX_BATCH);
                    q.drain(..n).collect()
                };
                if jobs.is_empty() {
                    break;
                }
                self.commit(jobs);
            }
            drop(resign);
            // A job queued after the last drain but before the release would be stranded:
            // look once more, and lead again if so.
            if self.jobs().is_empty() {
                break;
            }
        }
    }

    /// Queues a job, commits it (with whatever else waits) if nobody is committing, and waits
    /// for its answer.
    pub async fn submit(&self, job: J) -> Result<J::Answer, Error> {
        let (reply, answer) = oneshot::channel();
        self.jobs().push((job, reply));
        if !self.queue.leading.load(Ordering::Acquire) {
            // Let the requests that arrived with this one queue their jobs first, so that
            // they share its transaction. (On the embedded store's single event loop nothing
            // could join otherwise: the commit runs on the same thread.)
            tokio::task::yield_now().await;
        }
        self.lead();
        answer
            .await
            .map_err(|_| Error::Invalid("the request was dropped before it was committed".into()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use steward_core::Vault;

    use super::{Batcher, Commit};

    /// A job that answers with its own number and the size of the batch it was committed in.
    struct Echo(usize);

    impl Commit for Echo {
        type Answer = (usize, usize);

        fn commit(_: &Vault, jobs: &[Echo]) -> Vec<(usize, usize)> {
            jobs.iter().map(|j| (j.0, jobs.len())).collect()
        }
    }

    fn vault(dir: &std::path::Path) -> Arc<Vault> {
        let master = steward_crypto::MasterKey::from_hex(&"42".repeat(32)).unwrap();
        Arc::new(
            Vault::open_sqlite(
                dir,
                steward_policy::Policy::example().unwrap(),
                &master,
                Arc::new(steward_core::clock::ManualClock::new(1_767_225_600_000)),
                None,
            )
            .unwrap(),
        )
    }

    /// On the embedded store's single event loop, requests that arrive together share one
    /// commit, and each gets its own answer; a lone request is committed at once.
    #[test]
    fn requests_that_arrive_together_share_one_commit() {
        let dir = tempfile::tempdir().unwrap();
        let batcher: Batcher<Echo> = Batcher::new(vault(dir.path()));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let answers = rt.block_on(async {
            let tasks: Vec<_> = (0..16)
                .map(|i| {
                    let b = batcher.clone();
                    tokio::spawn(async move { b.submit(Echo(i)).await.unwrap() })
                })
                .collect();
            let mut answers = Vec::new();
            for t in tasks {
                answers.push(t.await.unwrap());
            }
            answers
        });
        assert_eq!(answers, (0..16).map(|i| (i, 16)).collect::<Vec<_>>());
        let lone = rt.block_on(batcher.submit(Echo(99))).unwrap();
        assert_eq!(lone, (99, 1));
    }
}
