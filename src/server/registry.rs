//! Live sessions and the admission counters: who is connected, who holds an admission permit, and
//! what `GET /sessions` lists. The map's lock is taken only when a session starts or ends; the
//! counters are atomics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::session::{SessionSnapshot, SessionState};

/// Live sessions, by id: the lock is taken only when a session starts or ends.
#[derive(Debug, Default)]
pub struct Registry {
    sessions: Mutex<HashMap<uuid::Uuid, Arc<SessionState>>>,
    /// Sessions admitted (handshake passed the limit check), including ones still upgrading.
    admitted: AtomicUsize,
    /// Connection threads alive (any phase), public port.
    connections: AtomicUsize,
    /// Connection threads alive, admin port.
    admin_connections: AtomicUsize,
}

impl Registry {
    /// Snapshots of every live session.
    pub fn sessions(&self) -> Vec<SessionSnapshot> {
        self.sessions.lock().values().map(|s| s.snapshot()).collect()
    }

    /// Connection threads alive (both ports).
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst) + self.admin_connections.load(Ordering::SeqCst)
    }

    /// Sessions admitted (upgrading or running).
    pub(crate) fn admitted(&self) -> usize {
        self.admitted.load(Ordering::SeqCst)
    }

    /// Sessions in the map (upgraded and running).
    pub(crate) fn live(&self) -> usize {
        self.sessions.lock().len()
    }

    /// Take an admission permit; returns how many were taken before (release with a
    /// [`CountGuard`] of [`Counter::Admitted`]).
    pub(crate) fn admit(&self) -> usize {
        self.admitted.fetch_add(1, Ordering::SeqCst)
    }

    /// The value of `counter`.
    pub(crate) fn count(&self, counter: Counter) -> usize {
        self.counter(counter).load(Ordering::SeqCst)
    }

    /// Count one in `counter`; the guard counts it out when dropped.
    pub(crate) fn count_in(self: &Arc<Self>, counter: Counter) -> CountGuard {
        self.counter(counter).fetch_add(1, Ordering::SeqCst);
        CountGuard(Arc::clone(self), counter)
    }

    fn counter(&self, counter: Counter) -> &AtomicUsize {
        match counter {
            Counter::Connections => &self.connections,
            Counter::AdminConnections => &self.admin_connections,
            Counter::Admitted => &self.admitted,
        }
    }

    /// A session started: list it, holding its admission `permit`, until the returned guard is
    /// dropped (when the session ends, or its thread unwinds from a panic).
    pub(crate) fn list(self: &Arc<Self>, state: Arc<SessionState>, permit: CountGuard) -> Listed {
        let id = state.session_id;
        self.sessions.lock().insert(id, state);
        Listed { registry: Arc::clone(self), id, permit: Some(permit) }
    }
}

/// A listed session. Dropping it removes the session and releases its admission permit under
/// the map's lock, so nobody sees it listed without its permit, or its permit free while it is
/// still listed; being a drop guard, it does so on every path, a panic included (no ghost in
/// `/sessions`, the gauge or admission).
pub(crate) struct Listed {
    registry: Arc<Registry>,
    id: uuid::Uuid,
    permit: Option<CountGuard>,
}

impl Drop for Listed {
    fn drop(&mut self) {
        // parking_lot's mutex is not poisoned by a panic elsewhere.
        let mut sessions = self.registry.sessions.lock();
        sessions.remove(&self.id);
        drop(self.permit.take());
        drop(sessions);
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Counter {
    /// Connection threads of the public port.
    Connections,
    /// Connection threads of the admin port.
    AdminConnections,
    /// Admission permits taken.
    Admitted,
}

/// Decrements its counter when dropped, whatever path the thread takes.
pub(crate) struct CountGuard(pub(crate) Arc<Registry>, pub(crate) Counter);

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.0.counter(self.1).fetch_sub(1, Ordering::SeqCst);
    }
}
