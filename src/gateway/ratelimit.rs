//! The outgoing command limit: 120 payloads per 60 s per connection, with
//! room kept for heartbeats.
//!
//! Going over the limit gets a connection closed with 4008. User commands
//! (presence, member requests, voice states) may use the budget minus a
//! reserve; heartbeats, identifies and resumes may use all of it, so no
//! amount of user commands can starve a heartbeat.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Payloads allowed per window by the gateway.
pub(crate) const LIMIT: usize = 120;
/// The gateway's window.
pub(crate) const WINDOW: Duration = Duration::from_secs(60);

/// A sliding-window counter of sent payloads; see the module docs.
#[derive(Debug)]
pub(crate) struct CommandLimiter {
    /// When each payload of the current window was sent, oldest first.
    sent: VecDeque<Instant>,
    /// Slots user commands may not use.
    reserved: usize,
}

impl CommandLimiter {
    /// A limiter reserving room for heartbeats at `heartbeat_interval`.
    pub(crate) fn new(heartbeat_interval: Duration) -> Self {
        let mut limiter = Self {
            // Grows on demand: most shards send a few payloads a minute.
            sent: VecDeque::new(),
            reserved: 0,
        };
        limiter.set_heartbeat_interval(heartbeat_interval);
        limiter
    }

    /// Re-sizes the reserve for a new heartbeat interval: every heartbeat of
    /// a window, plus room for server-requested heartbeats and a resume.
    pub(crate) fn set_heartbeat_interval(&mut self, interval: Duration) {
        let millis = interval.as_millis().max(1);
        let beats = WINDOW.as_millis().div_ceil(millis);
        self.reserved = usize::try_from(beats)
            .unwrap_or(LIMIT)
            .saturating_add(4)
            .min(LIMIT - 1);
    }

    fn prune(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|&t| now.duration_since(t) >= WINDOW)
        {
            self.sent.pop_front();
        }
    }

    /// How long until a user command may be sent; zero if now.
    pub(crate) fn command_delay(&mut self, now: Instant) -> Duration {
        self.delay_within(LIMIT - self.reserved, now)
    }

    /// Whether a heartbeat (or identify, resume) may be sent now.
    #[cfg(test)]
    pub(crate) fn control_allowed(&mut self, now: Instant) -> bool {
        self.control_delay(now).is_zero()
    }

    /// How long until a heartbeat (or identify, resume) may be sent; zero
    /// if now. Never zero while the window is full: the limit holds for
    /// every payload.
    pub(crate) fn control_delay(&mut self, now: Instant) -> Duration {
        self.delay_within(LIMIT, now)
    }

    /// How long until fewer than `budget` payloads are in the window.
    fn delay_within(&mut self, budget: usize, now: Instant) -> Duration {
        self.prune(now);
        if self.sent.len() < budget {
            return Duration::ZERO;
        }
        // The entry whose expiry brings the count back under the budget.
        let oldest_blocking = self.sent[self.sent.len() - budget];
        (oldest_blocking + WINDOW).saturating_duration_since(now)
    }

    /// Records a payload sent at `now`.
    pub(crate) fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
    }

    /// Payloads sent within the window ending at `now`.
    #[cfg(test)]
    pub(crate) fn in_window(&mut self, now: Instant) -> usize {
        self.prune(now);
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn user_commands_leave_room_for_heartbeats() {
        let mut limiter = CommandLimiter::new(Duration::from_millis(41_250));
        let start = Instant::now();
        let mut commands = 0;
        while limiter.command_delay(Instant::now()).is_zero() {
            limiter.record(Instant::now());
            commands += 1;
        }
        assert!(commands < LIMIT - 2, "{commands} commands left no room");
        // Heartbeats still fit, up to the gateway's own limit.
        let mut beats = 0;
        while limiter.control_allowed(Instant::now()) {
            limiter.record(Instant::now());
            beats += 1;
        }
        assert_eq!(commands + beats, LIMIT);
        // A full window holds back even heartbeats, until its oldest entry
        // leaves it.
        let wait = limiter.control_delay(Instant::now());
        assert!(wait > Duration::from_secs(59) && wait <= WINDOW, "{wait:?}");
        // The next command waits for the first to leave the window.
        let wait = limiter.command_delay(Instant::now());
        assert!(wait > Duration::from_secs(59) && wait <= WINDOW, "{wait:?}");
        tokio::time::advance(WINDOW).await;
        assert!(limiter.command_delay(Instant::now()).is_zero());
        assert_eq!(limiter.in_window(Instant::now()), 0);
        let _ = start;
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_flood_never_exceeds_the_gateway_limit() {
        let mut limiter = CommandLimiter::new(Duration::from_secs(1));
        let mut max_in_window = 0;
        let end = Instant::now() + Duration::from_secs(300);
        let mut next_beat = Instant::now();
        while Instant::now() < end {
            let now = Instant::now();
            if now >= next_beat {
                assert!(limiter.control_allowed(now), "a heartbeat was starved");
                limiter.record(now);
                next_beat = now + Duration::from_secs(1);
            }
            let wait = limiter.command_delay(now);
            if wait.is_zero() {
                limiter.record(now);
            } else {
                tokio::time::advance(wait.min(next_beat - now)).await;
            }
            max_in_window = max_in_window.max(limiter.in_window(Instant::now()));
        }
        assert!(max_in_window <= LIMIT);
    }
}
