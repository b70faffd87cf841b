//! Things the application should hear about, told once per cause.
//!
//! The bus threads cannot call Ruby (they never hold the GVL), so they leave
//! notices here and the Ruby side drains them on its own threads and logs them.
//! Each cause is told once per node: a peer signing with another secret sends
//! every message that way, and one log line says what a thousand would.

use std::collections::HashSet;

use parking_lot::Mutex;

use crate::bus::message::Rejection;

/// Most notices kept waiting to be drained; more are dropped (each cause is
/// told once anyway, so this bounds only a flood of distinct causes).
const CAPACITY: usize = 64;

/// One thing to tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    /// What happened, as a short name (`bad_signature`, `unknown_format` …).
    pub(crate) cause: &'static str,
    /// A sentence for a log.
    pub(crate) message: String,
}

#[derive(Default)]
struct Inner {
    waiting: Vec<Notice>,
    told: HashSet<&'static str>,
}

/// The notices of one node.
#[derive(Default)]
pub(crate) struct Notices {
    inner: Mutex<Inner>,
}

impl Notices {
    /// A message that may have carried a change could not be applied, so L1
    /// was dropped.
    pub(crate) fn missed(&self, why: Rejection) {
        self.once(
            why.name(),
            format!(
                "synced_memory_store: {} arrived on the bus; this process dropped its in-memory \
                 entries (reads go to the second level until they are refilled), as it does \
                 for every such message. Check that every process has the same secret: and a \
                 compatible version.",
                why.describe()
            ),
        );
    }

    fn once(&self, cause: &'static str, message: String) {
        let mut inner = self.inner.lock();
        if inner.told.insert(cause) && inner.waiting.len() < CAPACITY {
            inner.waiting.push(Notice { cause, message });
        }
    }

    /// Takes the notices not yet drained.
    pub(crate) fn drain(&self) -> Vec<Notice> {
        std::mem::take(&mut self.inner.lock().waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_is_told_once() {
        let notices = Notices::default();
        notices.missed(Rejection::BadSignature);
        notices.missed(Rejection::BadSignature);
        notices.missed(Rejection::UnknownFormat);
        let told: Vec<_> = notices.drain().into_iter().map(|n| n.cause).collect();
        assert_eq!(told, ["bad_signature", "unknown_format"]);
        notices.missed(Rejection::BadSignature);
        assert!(notices.drain().is_empty());
    }
}
