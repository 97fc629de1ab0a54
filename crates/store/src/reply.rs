//! Waiting for the writer's reply to a durable write.
//!
//! A write's caller waits on a oneshot that the writer thread completes after the commit (and
//! its fsync). When that caller is the only write in flight, the runtime worker it runs on
//! usually has nothing else to do and parks; on a virtual machine the vCPU then halts, and
//! waking it for the reply costs tens of microseconds on every write of a client that writes
//! one item at a time. So while a write is alone in flight, its wait re-polls the reply
//! (yielding to the runtime in between, so other tasks and I/O still run) for up to
//! [`SPIN_LIMIT`], then waits normally. With other writes in flight, the worker has work and
//! nothing spins.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Longest a lone write's wait keeps its worker busy (about one fsync at the 99th percentile
/// on this project's machines).
const SPIN_LIMIT: Duration = Duration::from_micros(500);

/// Writes submitted and not yet answered, store-wide.
#[derive(Debug, Default)]
pub(crate) struct InFlight(AtomicUsize);

/// The writer dropped the reply's sender (it stopped).
#[derive(Debug)]
pub(crate) struct Closed;

/// Keeps a write counted as in flight until it is dropped.
struct Counted(Arc<InFlight>);

impl Drop for Counted {
    fn drop(&mut self) {
        self.0 .0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl InFlight {
    /// Waits for a submitted write's reply; see the module docs.
    pub(crate) async fn wait<T>(
        self: &Arc<Self>,
        mut rx: oneshot::Receiver<T>,
    ) -> Result<T, Closed> {
        self.0.fetch_add(1, Ordering::AcqRel);
        let _counted = Counted(self.clone());
        let until = Instant::now() + SPIN_LIMIT;
        loop {
            match rx.try_recv() {
                Ok(v) => return Ok(v),
                Err(oneshot::error::TryRecvError::Closed) => return Err(Closed),
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if self.0.load(Ordering::Acquire) != 1 || Instant::now() >= until {
                break;
            }
            // Runs again after every other ready task and an I/O poll.
            tokio::task::yield_now().await;
        }
        rx.await.map_err(|_| Closed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_arrives_with_or_without_spinning() {
        let in_flight = Arc::new(InFlight::default());
        // Alone: spins, then gets the reply sent later from another thread.
        let (tx, rx) = oneshot::channel();
        let wait = in_flight.wait(rx);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(2));
            let _ = tx.send(7);
        });
        assert_eq!(wait.await.expect("reply"), 7);
        assert_eq!(in_flight.0.load(Ordering::Acquire), 0);
        // Two in flight: neither spins, both complete.
        let (tx1, rx1) = oneshot::channel();
        let (tx2, rx2) = oneshot::channel();
        let one = in_flight.clone();
        let w1 = tokio::spawn(async move { one.wait(rx1).await.expect("1") });
        let two = in_flight.clone();
        let w2 = tokio::spawn(async move { two.wait(rx2).await.expect("2") });
        while in_flight.0.load(Ordering::Acquire) < 2 {
            tokio::task::yield_now().await;
        }
        tx2.send(2).expect("send");
        tx1.send(1).expect("send");
        assert_eq!(
            (w1.await.expect("task 1"), w2.await.expect("task 2")),
            (1, 2)
        );
        // A dropped sender ends the wait with an error, and the count goes back.
        let (tx, rx) = oneshot::channel::<i32>();
        drop(tx);
        assert!(in_flight.wait(rx).await.is_err());
        assert_eq!(in_flight.0.load(Ordering::Acquire), 0);
    }
}
