//! The gateway's rate limits on client payloads, as pure bookkeeping: the
//! connection decides what to do when one is exceeded.
//!
//! - [`CommandWindow`]: every client payload counts against
//!   [`SimConfig::command_limit`](crate::SimConfig::command_limit) per sliding
//!   [`SimConfig::command_window`](crate::SimConfig::command_window) (120 per
//!   60 s on Discord); the peak is logged as
//!   [`ConnectionLog::max_in_window`](crate::ConnectionLog::max_in_window).
//! - [`MemberRequests`]: requesting all members of a guild (op 8 with
//!   `query: ""` and `limit: 0`) is allowed once per guild per
//!   [`SimConfig::member_request_window`](crate::SimConfig::member_request_window)
//!   (30 s on Discord since 2025); an excess request gets a `RATE_LIMITED`
//!   dispatch instead of a member chunk.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::ids::GuildId;

/// The times of one connection's recent payloads.
#[derive(Debug, Default)]
pub(crate) struct CommandWindow {
    /// When each payload still inside the window was read.
    times: VecDeque<Instant>,
    /// The most payloads ever inside one window.
    peak: u32,
}

impl CommandWindow {
    /// Count a payload read at `now`; returns how many are inside the window
    /// ending at `now` (this one included) and whether that set a new peak.
    pub(crate) fn record(&mut self, now: Instant, window: Duration) -> (u32, bool) {
        while self
            .times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            self.times.pop_front();
        }
        self.times.push_back(now);
        let n = u32::try_from(self.times.len()).unwrap_or(u32::MAX);
        let new_peak = n > self.peak;
        self.peak = self.peak.max(n);
        (n, new_peak)
    }
}

/// When each guild's members were last requested in full, for one session.
#[derive(Debug, Default)]
pub(crate) struct MemberRequests {
    /// The accepted request time per guild.
    last: HashMap<GuildId, Instant>,
}

impl MemberRequests {
    /// Allow a full member request for `guild` at `now`, or say how long
    /// until one is allowed again.
    pub(crate) fn check(
        &mut self,
        guild: GuildId,
        now: Instant,
        window: Duration,
    ) -> Result<(), Duration> {
        if let Some(&prev) = self.last.get(&guild) {
            let since = now.duration_since(prev);
            if since < window {
                return Err(window - since);
            }
        }
        self.last.insert(guild, now);
        Ok(())
    }
}

/// Whether an op 8 `d` asks for all members of its guild (`query: ""`,
/// `limit: 0`, no `user_ids`), the form Discord rate-limits.
pub(crate) fn requests_all_members(d: &serde_json::Value) -> bool {
    d.get("user_ids").is_none_or(serde_json::Value::is_null)
        && d.get("query").and_then(serde_json::Value::as_str) == Some("")
        && d.get("limit").and_then(serde_json::Value::as_u64) == Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_window_slides_and_keeps_the_peak() {
        let mut w = CommandWindow::default();
        let t = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(w.record(t, s), (1, true));
        assert_eq!(w.record(t + s / 2, s), (2, true));
        assert_eq!(w.record(t + s, s), (2, false));
        assert_eq!(w.record(t + s * 3, s), (1, false));
    }

    #[test]
    fn member_requests_are_per_guild() {
        let mut m = MemberRequests::default();
        let t = Instant::now();
        let w = Duration::from_secs(30);
        assert!(m.check(GuildId(1), t, w).is_ok());
        assert!(m.check(GuildId(2), t, w).is_ok());
        assert_eq!(
            m.check(GuildId(1), t + Duration::from_secs(10), w),
            Err(Duration::from_secs(20))
        );
        assert!(m.check(GuildId(1), t + w, w).is_ok());
    }

    #[test]
    fn only_the_all_members_form_is_limited() {
        use serde_json::json;
        assert!(requests_all_members(
            &json!({ "guild_id": "1", "query": "", "limit": 0 })
        ));
        assert!(!requests_all_members(
            &json!({ "guild_id": "1", "query": "ab", "limit": 0 })
        ));
        assert!(!requests_all_members(
            &json!({ "guild_id": "1", "query": "", "limit": 10 })
        ));
        assert!(!requests_all_members(
            &json!({ "guild_id": "1", "user_ids": ["2"], "limit": 0 })
        ));
    }
}
