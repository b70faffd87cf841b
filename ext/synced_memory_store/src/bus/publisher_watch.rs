//! Noticing, from the subscriber thread, a publisher that does not publish.
//!
//! Other processes cannot tell a writer whose changes never leave it from a
//! writer that wrote nothing: their subscriptions are up, their L1 stays
//! trusted, and they keep the values its changes replaced. So the writer
//! watches itself. At every answered PING the subscriber looks at the outbox:
//! changes waiting while nothing has been published for longer than a healthy
//! publisher can take (one reconnect pause, `reconnect_max`, plus one attempt
//! within `health_timeout`) mean the publisher is stuck or refused (a PUBLISH
//! the server denies). That is reported once per stall (`stats[:last_error]`
//! and an event); the changes themselves stay queued, so once publishing
//! resumes every process gets them, in order.

use std::time::{Duration, Instant};

/// What one look at the outbox found.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Verdict {
    /// Nothing waiting, or progress within the limit.
    Fine,
    /// Changes have waited longer than the limit with nothing published
    /// (reported once per stall): for how long.
    Stalled { waited: Duration },
    /// Publishing resumed after a reported stall.
    Resumed,
}

/// The watch over one publisher.
#[derive(Default)]
pub(crate) struct PublisherWatch {
    /// The outbox's `published_through` at the last look.
    through: u64,
    /// Since when changes have waited with `through` unchanged.
    since: Option<Instant>,
    /// Whether the current stall was reported.
    told: bool,
}

impl PublisherWatch {
    /// Looks at the outbox: everything up to `published_through` has been
    /// published, and changes up to `last_queued` were queued.
    pub(crate) fn look(
        &mut self,
        published_through: u64,
        last_queued: u64,
        now: Instant,
        limit: Duration,
    ) -> Verdict {
        let progressed = published_through != self.through;
        self.through = published_through;
        if progressed || published_through >= last_queued {
            self.since = (published_through < last_queued).then_some(now);
            return if std::mem::take(&mut self.told) {
                Verdict::Resumed
            } else {
                Verdict::Fine
            };
        }
        let since = *self.since.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        if self.told || waited <= limit {
            return Verdict::Fine;
        }
        self.told = true;
        Verdict::Stalled { waited }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: Duration = Duration::from_secs(2);

    fn at(start: Instant, millis: u64) -> Instant {
        start + Duration::from_millis(millis)
    }

    #[test]
    fn a_backlog_that_moves_is_fine_however_long_it_lasts() {
        let start = Instant::now();
        let mut watch = PublisherWatch::default();
        for step in 0..10 {
            let verdict = watch.look(step * 100, step * 100 + 50, at(start, step * 1000), LIMIT);
            assert_eq!(verdict, Verdict::Fine);
        }
    }

    #[test]
    fn a_backlog_that_does_not_move_is_reported_once_then_its_end() {
        let start = Instant::now();
        let mut watch = PublisherWatch::default();
        assert_eq!(watch.look(3, 4, at(start, 0), LIMIT), Verdict::Fine);
        assert_eq!(watch.look(3, 4, at(start, 2000), LIMIT), Verdict::Fine);
        assert_eq!(
            watch.look(3, 6, at(start, 2100), LIMIT),
            Verdict::Stalled {
                waited: Duration::from_millis(2100)
            }
        );
        assert_eq!(watch.look(3, 7, at(start, 5000), LIMIT), Verdict::Fine);
        assert_eq!(watch.look(7, 7, at(start, 5100), LIMIT), Verdict::Resumed);
        assert_eq!(watch.look(7, 7, at(start, 9000), LIMIT), Verdict::Fine);
    }

    #[test]
    fn a_partial_resumption_ends_the_report_and_starts_a_new_watch() {
        let start = Instant::now();
        let mut watch = PublisherWatch::default();
        watch.look(0, 2, at(start, 0), LIMIT);
        assert!(matches!(
            watch.look(0, 2, at(start, 2500), LIMIT),
            Verdict::Stalled { .. }
        ));
        assert_eq!(watch.look(1, 2, at(start, 2600), LIMIT), Verdict::Resumed);
        assert_eq!(watch.look(1, 2, at(start, 4000), LIMIT), Verdict::Fine);
        assert!(matches!(
            watch.look(1, 2, at(start, 4700), LIMIT),
            Verdict::Stalled { .. }
        ));
    }

    #[test]
    fn nothing_waiting_is_fine() {
        let start = Instant::now();
        let mut watch = PublisherWatch::default();
        assert_eq!(watch.look(0, 0, at(start, 0), LIMIT), Verdict::Fine);
        assert_eq!(watch.look(0, 0, at(start, 60_000), LIMIT), Verdict::Fine);
    }
}
