//! Group commit for purpose-checked reads. Every read writes an audit entry in the same
//! transaction as the read (P21), so one transaction per read would make the commit the
//! bottleneck. Reads are queued instead; one thread takes whatever is waiting (up to
//! [`MAX_BATCH`]), reads and audits it all in one transaction, and answers each caller. A
//! lone read waits for nobody; under load, batches grow by themselves.

use std::sync::Arc;

use steward_core::{Actor, Error, Read, SubjectId, Value, Vault};
use tokio::sync::{mpsc, oneshot};

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

/// The queue's sending side.
#[derive(Clone)]
pub struct ReadBatcher {
    tx: mpsc::UnboundedSender<Job>,
}

impl ReadBatcher {
    /// Starts the committing thread; it ends when every sender is dropped.
    pub fn start(vault: Arc<Vault>) -> ReadBatcher {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        std::thread::Builder::new()
            .name("steward-read-commit".into())
            .spawn(move || {
                while let Some(first) = rx.blocking_recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(job) => jobs.push(job),
                            Err(_) => break,
                        }
                    }
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
                    let results = vault.read_batch(&batch);
                    drop(batch);
                    for (job, result) in jobs.into_iter().zip(results) {
                        // A caller that went away no longer needs its answer.
                        let _ = job.reply.send(result);
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the read committer"));
        ReadBatcher { tx }
    }

    /// Queues a read and waits for its answer.
    pub async fn read(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<Vec<Value>, Error>>) -> Job,
    ) -> Result<Vec<Value>, Error> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(job(reply))
            .map_err(|_| Error::Invalid("the read committer has stopped".into()))?;
        answer
            .await
            .map_err(|_| Error::Invalid("the read committer has stopped".into()))?
    }
}
