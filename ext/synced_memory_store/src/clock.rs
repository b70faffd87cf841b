//! The one clock module of the core.
//!
//! Two clocks, each for one purpose:
//!
//! * [`monotonic_nanos`]: CLOCK_MONOTONIC, which every process of the machine
//!   shares and which never jumps. The trust lease, waits, and the
//!   `last_applied_at` stamp that benchmarks compare across processes use it.
//! * [`unix_millis`]: the wall clock, stamped on outgoing bus messages so a
//!   receiver can tell a message from a sender it has forgotten from a replay
//!   (see `bus/senders.rs`), and as seconds ([`unix_seconds`]) on entries
//!   that arrive over the bus, whose life refresh-ahead measures. It may
//!   jump; nothing waits on it.
//!
//! ActiveSupport's logical expiry is judged with Ruby's `Time.now` by the
//! binding layer (so `travel_to` works), not here.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Nanoseconds on CLOCK_MONOTONIC.
pub(crate) fn monotonic_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own; CLOCK_MONOTONIC
    // always exists on the platforms we build for.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    (now.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(now.tv_nsec as u64)
}

/// Milliseconds since the Unix epoch by the wall clock (0 if it is before 1970).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Seconds since the Unix epoch by the wall clock, as Ruby's `Time.now.to_f`
/// reads it outside tests: the stamp L1 puts on entries that arrive over the
/// bus (see `Record::stored_at`).
pub(crate) fn unix_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// `duration` in nanoseconds, saturating.
pub(crate) fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_monotonic_clock_moves_forward_and_the_wall_clock_is_after_2020() {
        let before = monotonic_nanos();
        std::thread::sleep(Duration::from_millis(2));
        assert!(monotonic_nanos() >= before + 2_000_000);
        assert!(unix_millis() > 1_577_836_800_000);
        assert!(unix_seconds() > 1_577_836_800.0);
        assert_eq!(nanos(Duration::from_micros(3)), 3_000);
    }
}
