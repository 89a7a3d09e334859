//! Group commit for purpose-checked reads. Every read writes an audit entry in the same
//! transaction as the read (P21), so one transaction per read would make the commit the
//! bottleneck under load. Reads queue; whoever commits takes everything waiting (up to
//! [`MAX_BATCH`]), reads and audits it in one transaction, and answers each caller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use steward_core::{Actor, Error, Read, SubjectId, Value, Vault};
use tokio::sync::oneshot;

/// Most reads committed together.
pub const MAX_BATCH: usize = 256;

/// One queued read, owning what it reads.
pub struct Job {
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
    /// Where the answer goes.
    pub reply: oneshot::Sender<Result<Vec<Value>, Error>>,
}

/// The queue, and who is committing it.
struct Queue {
    jobs: Mutex<Vec<Job>>,
    leading: AtomicBool,
}

/// Group commit without a thread of its own: the first reader to find nobody committing
/// becomes the leader, commits everything queued (its own read included) on its worker, and
/// keeps going while more arrives. A lone read is committed at once by its own caller; under
/// load, readers queue behind the leader and their reads share its transactions.
#[derive(Clone)]
pub struct ReadBatcher {
    vault: Arc<Vault>,
    queue: Arc<Queue>,
}

impl ReadBatcher {
    /// A batcher over `vault`.
    pub fn new(vault: Arc<Vault>) -> ReadBatcher {
        ReadBatcher {
            vault,
            queue: Arc::new(Queue {
                jobs: Mutex::new(Vec::new()),
                leading: AtomicBool::new(false),
            }),
        }
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Vec<Job>> {
        self.queue.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn commit(&self, jobs: Vec<Job>) {
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
        let results = crate::api::blocking(&self.vault, || self.vault.read_batch(&batch));
        drop(batch);
        for (job, result) in jobs.into_iter().zip(results) {
            // A caller that went away no longer needs its answer.
            let _ = job.reply.send(result);
        }
    }

    /// Leads while there is work and nobody else leads.
    fn lead(&self) {
        /// Gives up leadership however the leader leaves, a panic included, so that reads
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
                let jobs: Vec<Job> = {
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
            // A read queued after the last drain but before the release would be stranded:
            // look once more, and lead again if so.
            if self.jobs().is_empty() {
                break;
            }
        }
    }

    /// Queues a read, commits it (with whatever else waits) if nobody is committing, and
    /// waits for its answer.
    pub async fn read(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<Vec<Value>, Error>>) -> Job,
    ) -> Result<Vec<Value>, Error> {
        let (reply, answer) = oneshot::channel();
        self.jobs().push(job(reply));
        self.lead();
        answer
            .await
            .map_err(|_| Error::Invalid("the read was dropped before it was committed".into()))?
    }
}
