//! Busy polling on the embedded store's single event loop.
//!
//! With few clients the event loop goes idle between requests: it sleeps in `epoll_wait`, and
//! the next request has to wake it. On the 2-core virtual machines measured, that sleep and
//! wake-up (a context switch, and for the sender an inter-processor interrupt) cost about a
//! sixth of the loop's time per purpose-checked read with 4 clients. So for a short window
//! after each request the loop keeps polling its sockets instead of sleeping: a task yields
//! over and over, and a runtime holding a yielded task polls for I/O without blocking. Once no
//! request has started for a whole window, the task waits to be woken by the next one, so an
//! idle server burns nothing.
//!
//! The cost: while requests keep arriving less than a window apart, the event loop's core is
//! busy even when it has nothing to do. `busy_poll_us = 0` turns it off.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// What the event loop's poller knows of the requests.
#[derive(Debug)]
pub struct BusyPoll {
    window: Duration,
    /// Requests started so far.
    started: AtomicU64,
    /// The poller is waiting to be woken.
    parked: AtomicBool,
    wake: Notify,
}

impl BusyPoll {
    /// A poller that keeps polling for `window` after each request.
    pub fn new(window: Duration) -> BusyPoll {
        BusyPoll {
            window,
            started: AtomicU64::new(0),
            parked: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// A request has started.
    pub fn started(&self) {
        self.started.fetch_add(1, Ordering::Relaxed);
        if self.parked.swap(false, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Polls the event loop for a window after each request, until the runtime stops. Spawn it
    /// on a current-thread runtime: on a multi-threaded one its yields would hold a worker.
    pub async fn run(&self) {
        loop {
            self.parked.store(true, Ordering::Release);
            self.wake.notified().await;
            let mut spin = Spin::new(self.started.load(Ordering::Relaxed), Instant::now());
            loop {
                tokio::task::yield_now().await;
                let started = self.started.load(Ordering::Relaxed);
                if !spin.goes_on(started, Instant::now(), self.window) {
                    break;
                }
            }
        }
    }
}

/// One stretch of polling: it goes on until no request has started for a window.
#[derive(Debug)]
struct Spin {
    seen: u64,
    quiet_since: Instant,
}

impl Spin {
    fn new(seen: u64, now: Instant) -> Spin {
        Spin {
            seen,
            quiet_since: now,
        }
    }

    /// Whether to poll again, given the requests started so far and the time.
    fn goes_on(&mut self, started: u64, now: Instant, window: Duration) -> bool {
        if started != self.seen {
            self.seen = started;
            self.quiet_since = now;
            return true;
        }
        now.saturating_duration_since(self.quiet_since) < window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polling_stops_a_window_after_the_last_request() {
        let t0 = Instant::now();
        let at = |us: u64| t0 + Duration::from_micros(us);
        let window = Duration::from_micros(100);
        let mut spin = Spin::new(5, t0);
        assert!(spin.goes_on(5, at(60), window), "inside the window");
        // A request at 90 µs starts the window again.
        assert!(spin.goes_on(6, at(90), window));
        assert!(spin.goes_on(6, at(150), window), "100 µs after 90 is 190");
        assert!(
            !spin.goes_on(6, at(190), window),
            "quiet for a whole window"
        );
        let mut off = Spin::new(0, t0);
        assert!(
            !off.goes_on(0, t0, Duration::ZERO),
            "a zero window never polls"
        );
    }

    /// The poller parks once requests stop, and the next request wakes it.
    #[test]
    fn the_poller_parks_when_idle_and_wakes_for_a_request() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let poll = std::sync::Arc::new(BusyPoll::new(Duration::ZERO));
        rt.block_on(async {
            let p = std::sync::Arc::clone(&poll);
            tokio::spawn(async move { p.run().await });
            // Let it park.
            while !poll.parked.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
            poll.started();
            assert!(
                !poll.parked.load(Ordering::Acquire),
                "the request unparks it"
            );
            // With a zero window it parks again after one poll.
            while !poll.parked.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
        });
    }
}
