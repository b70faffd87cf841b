//! Replay protection: the last sequence number seen from each sender.
//!
//! Every sender numbers its changes with a strictly increasing sequence, and
//! Redis delivers one channel's messages in one order, so a genuine message
//! from a known sender always starts past the last number seen from it. A
//! message that does not is a replay (or a stale copy of a batch the sender has
//! already republished as invalidations), and is rejected: it could only put
//! back what a later change replaced.
//!
//! Memory is bounded: beyond [`CAPACITY`] senders, the ones heard from least
//! recently are forgotten, and the latest send time among them becomes the
//! *horizon*. A message from a sender not remembered must have been sent after
//! the horizon; an older one may be the replay of a forgotten sender's message.
//! (A genuine newcomer whose clock runs behind the horizon is refused too; the
//! receiver then treats the message as missed, which is safe.)
//!
//! A node that resubscribes may have missed messages that it never saw, so a
//! sender's sequence alone cannot tell their replays from news. Redis delivers
//! only what is published after a SUBSCRIBE, so after each subscription the
//! *floor* is its time less [`CLOCK_TOLERANCE_MS`]: a message sent before the
//! floor cannot be genuine (or comes from a sender whose clock is far behind,
//! and is handled as missed, which is safe).
//!
//! The checks mean something only for signed messages: without a secret,
//! anyone who can publish can write any sender, sequence and time.

use std::collections::HashMap;

/// Senders remembered at most.
pub(crate) const CAPACITY: usize = 4096;

/// How far another machine's clock may be behind this one's before its
/// messages right after a subscription are refused (ms).
pub(crate) const CLOCK_TOLERANCE_MS: u64 = 2000;

/// Why a message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not newer than the last message seen from its sender.
    Replayed,
    /// From a sender not remembered, sent no later than the horizon; or sent
    /// before the current subscription's floor.
    BeforeHorizon,
}

#[derive(Clone, Copy)]
struct Seen {
    seq: u64,
    sent_at: u64,
    tick: u64,
}

/// The senders this node has heard from.
pub(crate) struct Senders {
    seen: HashMap<u64, Seen>,
    /// Latest send time of any forgotten sender (ms since the epoch).
    horizon: u64,
    /// Messages sent before this are refused (ms since the epoch).
    floor: u64,
    tick: u64,
    capacity: usize,
}

impl Default for Senders {
    fn default() -> Self {
        Senders::with_capacity(CAPACITY)
    }
}

impl Senders {
    /// Remembering at most `capacity` senders.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Senders {
            seen: HashMap::new(),
            horizon: 0,
            floor: 0,
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// Admits a message from `sender` carrying sequence numbers
    /// `first..=last`, sent at `sent_at`, and remembers it; or says why not.
    /// Messages of the previous format carry no send time (`sent_at` 0):
    /// they are admitted by sequence alone, since their values are applied
    /// only as invalidations.
    pub(crate) fn admit(
        &mut self,
        sender: u64,
        first: u64,
        last: u64,
        sent_at: u64,
    ) -> Result<(), Refusal> {
        self.tick += 1;
        let tick = self.tick;
        if sent_at != 0 && sent_at < self.floor {
            return Err(Refusal::BeforeHorizon);
        }
        match self.seen.get_mut(&sender) {
            Some(seen) if first <= seen.seq => Err(Refusal::Replayed),
            Some(seen) => {
                *seen = Seen {
                    seq: last,
                    sent_at: sent_at.max(seen.sent_at),
                    tick,
                };
                Ok(())
            }
            None if sent_at != 0 && sent_at <= self.horizon => Err(Refusal::BeforeHorizon),
            None => {
                self.seen.insert(
                    sender,
                    Seen {
                        seq: last,
                        sent_at,
                        tick,
                    },
                );
                if self.seen.len() > self.capacity {
                    self.forget_oldest();
                }
                Ok(())
            }
        }
    }

    /// A subscription began at `now` (ms since the epoch): nothing sent well
    /// before it can arrive genuinely.
    pub(crate) fn subscribed(&mut self, now: u64) {
        self.floor = self.floor.max(now.saturating_sub(CLOCK_TOLERANCE_MS));
    }

    /// Forgets the least recently heard quarter of the senders at once, so
    /// the cost of a scan is shared by many admissions.
    fn forget_oldest(&mut self) {
        let mut ticks: Vec<u64> = self.seen.values().map(|seen| seen.tick).collect();
        let cut = ticks.len() / 4;
        let (_, &mut threshold, _) = ticks.select_nth_unstable(cut);
        let horizon = &mut self.horizon;
        self.seen.retain(|_, seen| {
            let keep = seen.tick > threshold;
            if !keep {
                *horizon = (*horizon).max(seen.sent_at);
            }
            keep
        });
    }

    /// Number of senders remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::fuzz::{self, Tally};

    #[test]
    fn a_sender_must_move_forward() {
        let mut senders = Senders::default();
        assert_eq!(senders.admit(7, 1, 3, 1000), Ok(()));
        assert_eq!(senders.admit(7, 4, 4, 1001), Ok(()));
        assert_eq!(senders.admit(7, 2, 2, 1002), Err(Refusal::Replayed));
        assert_eq!(senders.admit(7, 4, 5, 1003), Err(Refusal::Replayed));
        assert_eq!(
            senders.admit(8, 1, 1, 1004),
            Ok(()),
            "senders are independent"
        );
    }

    #[test]
    fn forgotten_senders_cannot_be_replayed_and_newcomers_after_the_horizon_are_welcome() {
        let mut senders = Senders::with_capacity(8);
        for sender in 0..8 {
            assert_eq!(senders.admit(sender, 1, 1, 100 + sender), Ok(()));
        }
        assert_eq!(senders.admit(100, 1, 1, 200), Ok(()));
        assert!(senders.len() <= 8);
        // Sender 0 was forgotten; its old message comes back.
        assert_eq!(senders.admit(0, 1, 1, 100), Err(Refusal::BeforeHorizon));
        // A newcomer sending now is admitted.
        assert_eq!(senders.admit(101, 1, 1, 201), Ok(()));
        // Recently heard senders are remembered and still checked by sequence.
        assert_eq!(senders.admit(100, 1, 1, 300), Err(Refusal::Replayed));
    }

    #[test]
    fn after_a_subscription_messages_sent_well_before_it_are_refused() {
        let mut senders = Senders::default();
        assert_eq!(senders.admit(7, 1, 1, 10_000), Ok(()));
        senders.subscribed(20_000);
        // Sender 7's seq 2 was published while this node was away; a replay
        // of it is not newer to this node by sequence, but it is by time.
        assert_eq!(senders.admit(7, 2, 2, 12_000), Err(Refusal::BeforeHorizon));
        assert_eq!(
            senders.admit(7, 3, 3, 19_000),
            Ok(()),
            "within the clock tolerance"
        );
        assert_eq!(senders.admit(7, 4, 4, 0), Ok(()), "format 1 has no time");
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_senders() {
        let mut senders = Senders::with_capacity(100);
        for sender in 0..10_000 {
            let _ = senders.admit(sender, 1, 1, 1_000 + sender);
        }
        assert!(senders.len() <= 100);
    }

    // Properties over random and mutated input (see `crate::fuzz`).

    /// The last sequence number admitted from each sender, never forgotten.
    #[derive(Default)]
    struct Model(HashMap<u64, u64>);

    impl Model {
        fn is_replay(&self, sender: u64, first: u64) -> bool {
            self.0.get(&sender).is_some_and(|&last| first <= last)
        }

        fn admitted(&mut self, sender: u64, last: u64) {
            self.0.insert(sender, last);
        }
    }

    #[test]
    fn senders_agree_with_a_replay_model_while_nothing_is_forgotten() {
        // Any messages from eight senders, any times (0: format 1), no
        // subscription: nothing is forgotten and no floor rises, so the
        // sequence alone decides.
        const NAME: &str = "senders_agree_with_a_replay_model_while_nothing_is_forgotten";
        static REFUSED: Tally = Tally::new();
        let message = (
            0..8u64,
            0..40u64,
            0..4u64,
            prop_oneof![Just(0u64), any::<u64>()],
        );
        fuzz::check(
            NAME,
            (8..64usize, prop::collection::vec(message, 0..200)),
            |(capacity, messages)| {
                let mut senders = Senders::with_capacity(capacity);
                let mut model = Model::default();
                let mut refused = false;
                for (sender, first, more, sent_at) in messages {
                    let last = first + more;
                    let expected = if model.is_replay(sender, first) {
                        Err(Refusal::Replayed)
                    } else {
                        model.admitted(sender, last);
                        Ok(())
                    };
                    prop_assert_eq!(senders.admit(sender, first, last, sent_at), expected);
                    refused |= expected.is_err();
                }
                REFUSED.count(refused);
                Ok(())
            },
        );
        REFUSED.at_least(0.5, NAME, "had a replay refused");
    }

    #[derive(Clone, Debug)]
    enum Event {
        /// A sender publishes its next `changes` changes, `after` ms later.
        Send {
            sender: usize,
            changes: u64,
            after: u64,
        },
        /// Someone publishes a copy of an earlier message again.
        Replay { pick: usize },
        /// This node subscribes again, `after` ms later.
        Subscribe { after: u64 },
    }

    fn events() -> impl Strategy<Value = Vec<Event>> {
        let event = prop_oneof![
            6 => (0..24usize, 1..4u64, 0..40u64)
                .prop_map(|(sender, changes, after)| Event::Send { sender, changes, after }),
            3 => any::<usize>().prop_map(|pick| Event::Replay { pick }),
            1 => (0..5000u64).prop_map(|after| Event::Subscribe { after }),
        ];
        prop::collection::vec(event, 0..300)
    }

    #[test]
    fn senders_never_admit_a_replay_of_an_honest_sender() {
        // Honest senders number their changes in order and stamp them with a
        // clock that never goes back (each off this node's by up to 3 s);
        // some write format 1 (no time). Anyone may publish copies of earlier
        // messages. Few senders are remembered, so most are forgotten again
        // and again. Refusing a genuine message is safe (it counts as
        // missed); admitting a copy of a format-2 message whose changes were
        // already applied is not. Format-1 copies may be admitted once their
        // sender is forgotten: they carry only invalidations.
        const NAME: &str = "senders_never_admit_a_replay_of_an_honest_sender";
        static ADMITTED: Tally = Tally::new();
        static REFUSED: Tally = Tally::new();
        let pool = (
            prop::collection::vec(-3000..3000i64, 24),
            prop::collection::vec(prop::bool::weighted(0.2), 24),
        );
        fuzz::check(
            NAME,
            (1..12usize, pool, events()),
            |(capacity, (skews, format_1), events)| {
                let mut senders = Senders::with_capacity(capacity);
                let mut model = Model::default();
                let mut now: u64 = 1_700_000_000_000;
                let mut next_seq = [1u64; 24];
                let mut published: Vec<(u64, u64, u64, u64)> = Vec::new();
                let (mut admitted, mut refused) = (false, false);
                for event in events {
                    let message = match event {
                        Event::Send {
                            sender,
                            changes,
                            after,
                        } => {
                            now += after;
                            let first = next_seq[sender];
                            next_seq[sender] += changes;
                            let sent_at = if format_1[sender] {
                                0
                            } else {
                                now.saturating_add_signed(skews[sender])
                            };
                            let message = (sender as u64, first, first + changes - 1, sent_at);
                            published.push(message);
                            message
                        }
                        Event::Replay { pick } if !published.is_empty() => {
                            published[pick % published.len()]
                        }
                        Event::Replay { .. } => continue,
                        Event::Subscribe { after } => {
                            now += after;
                            senders.subscribed(now);
                            continue;
                        }
                    };
                    let (sender, first, last, sent_at) = message;
                    let replay = model.is_replay(sender, first);
                    match senders.admit(sender, first, last, sent_at) {
                        Ok(()) => {
                            prop_assert!(
                                !replay || sent_at == 0,
                                "admitted {message:?} after seq {:?}",
                                model.0.get(&sender)
                            );
                            model.admitted(
                                sender,
                                last.max(model.0.get(&sender).copied().unwrap_or(0)),
                            );
                            admitted |= !replay;
                        }
                        Err(_) => refused |= replay,
                    }
                    prop_assert!(senders.len() <= capacity);
                }
                ADMITTED.count(admitted);
                REFUSED.count(refused);
                Ok(())
            },
        );
        ADMITTED.at_least(0.5, NAME, "had genuine messages admitted");
        REFUSED.at_least(0.5, NAME, "had copies refused");
    }

    #[test]
    fn senders_stay_bounded_and_remember_the_latest_under_floods() {
        // A flood of newcomers, each sending after the last: every one is
        // welcome (it is after the horizon), the one just admitted is
        // remembered, and memory never passes the capacity.
        fuzz::check(
            "senders_stay_bounded_and_remember_the_latest_under_floods",
            (
                1..300usize,
                0..3000usize,
                prop::collection::vec(1..1000u64, 1..8),
            ),
            |(capacity, flood, steps)| {
                let mut senders = Senders::with_capacity(capacity);
                let mut sent_at = 1_700_000_000_000;
                for sender in 0..flood as u64 {
                    sent_at += steps[sender as usize % steps.len()];
                    prop_assert_eq!(
                        senders.admit(sender, 1, 1, sent_at),
                        Ok(()),
                        "newcomer {}",
                        sender
                    );
                    prop_assert!(senders.len() <= capacity);
                    prop_assert_eq!(senders.admit(sender, 1, 1, sent_at), Err(Refusal::Replayed));
                }
                Ok(())
            },
        );
    }
}
