//! The REST API's rate limits: their configuration ([`RestLimits`],
//! [`RouteLimit`]) and the bookkeeping, as pure functions of the time they
//! are given, so the pipeline in `mod.rs` decides what to answer.
//!
//! - **Per-route buckets.** Every route belongs to a [`RouteGroup`]; its
//!   bucket is the group plus the route's major parameter (a channel, a
//!   guild, or a webhook's application id and token). Windows are fixed: one
//!   starts at a bucket's first request and lasts the group's `window`; the
//!   next request after it ends starts a new one.
//! - **Global.** At most [`SimConfig::global_limit`](crate::SimConfig::global_limit)
//!   requests per fixed one-second window over all routes except the
//!   interaction endpoints.
//! - **Invalid requests.** 401, 403 and 429 answers (not shared-scope 429s)
//!   are counted per fixed window of
//!   [`SimConfig::invalid_request_window`](crate::SimConfig::invalid_request_window);
//!   more than [`SimConfig::invalid_request_limit`](crate::SimConfig::invalid_request_limit)
//!   of them ban the client (every request gets 403) until that window ends.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// The limit of one group of routes: `limit` requests per fixed `window`,
/// per major parameter.
///
/// ```
/// use std::time::Duration;
/// use shardbus_sim::RouteLimit;
///
/// let reactions = RouteLimit::new(1, Duration::from_millis(250)).shared();
/// assert!(reactions.shared);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteLimit {
    /// Requests allowed per window (at least 1).
    pub limit: u32,
    /// The window's length (not zero). It starts at the bucket's first
    /// request after the previous window ended.
    pub window: Duration,
    /// Whether a 429 of this bucket says `X-RateLimit-Scope: shared` (a
    /// per-resource limit, as Discord answers for some channel-wide limits)
    /// rather than `user`. Shared 429s do not count as invalid requests.
    pub shared: bool,
}

impl RouteLimit {
    /// `limit` requests per `window`, scope `user`.
    #[must_use]
    pub const fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            shared: false,
        }
    }

    /// The same limit with scope `shared`.
    #[must_use]
    pub const fn shared(self) -> Self {
        Self {
            shared: true,
            ..self
        }
    }
}

/// The per-route limits of the REST API, by group of routes. Routes of one
/// group share its limit and its `X-RateLimit-Bucket` id; each major
/// parameter (channel, guild, or webhook) has its own counter.
///
/// The defaults are Discord-like (Discord does not publish most of them and
/// may change them; clients must read the headers):
///
/// ```
/// use std::time::Duration;
/// use shardbus_sim::{RestLimits, RouteLimit, SimConfig};
///
/// let config = SimConfig {
///     rest_limits: RestLimits {
///         create_message: RouteLimit::new(2, Duration::from_secs(60)),
///         ..RestLimits::default()
///     },
///     ..SimConfig::default()
/// };
/// assert_eq!(config.rest_limits.get.limit, 50);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestLimits {
    /// `POST /channels/{channel_id}/messages`, per channel: 5 per 5 s.
    pub create_message: RouteLimit,
    /// `PATCH /channels/{channel_id}/messages/{message_id}`, per channel: 5 per 5 s.
    pub edit_message: RouteLimit,
    /// `DELETE /channels/{channel_id}/messages/{message_id}`, per channel:
    /// 5 per 5 s, in a bucket of its own (Discord limits deletes separately).
    pub delete_message: RouteLimit,
    /// `PUT` and `DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me`,
    /// per channel: 1 per 250 ms, scope `shared`.
    pub reactions: RouteLimit,
    /// Every `GET` (channel, message, guild, member, current user,
    /// commands, webhook messages, `/gateway/bot`), per major parameter:
    /// 50 per 1 s.
    pub get: RouteLimit,
    /// `PUT /applications/{application_id}/commands` (no major parameter)
    /// and `PUT /applications/{application_id}/guilds/{guild_id}/commands`
    /// (per guild): 2 per 10 s.
    pub commands: RouteLimit,
    /// `POST /interactions/{interaction_id}/{token}/callback`, per
    /// interaction: 5 per 1 s.
    pub interaction_callback: RouteLimit,
    /// `POST /webhooks/{application_id}/{token}` (follow-ups) and
    /// `PATCH`/`DELETE /webhooks/{application_id}/{token}/messages/…`, per
    /// application id and token: 5 per 2 s.
    pub webhook: RouteLimit,
}

impl Default for RestLimits {
    fn default() -> Self {
        Self {
            create_message: RouteLimit::new(5, Duration::from_secs(5)),
            edit_message: RouteLimit::new(5, Duration::from_secs(5)),
            delete_message: RouteLimit::new(5, Duration::from_secs(5)),
            reactions: RouteLimit::new(1, Duration::from_millis(250)).shared(),
            get: RouteLimit::new(50, Duration::from_secs(1)),
            commands: RouteLimit::new(2, Duration::from_secs(10)),
            interaction_callback: RouteLimit::new(5, Duration::from_secs(1)),
            webhook: RouteLimit::new(5, Duration::from_secs(2)),
        }
    }
}

impl RestLimits {
    /// Every group's limit, with the group's name.
    pub(crate) fn all(&self) -> [(RouteGroup, RouteLimit); 8] {
        RouteGroup::ALL.map(|g| (g, self.of(g)))
    }

    /// The limit of `group`.
    pub(crate) fn of(&self, group: RouteGroup) -> RouteLimit {
        match group {
            RouteGroup::CreateMessage => self.create_message,
            RouteGroup::EditMessage => self.edit_message,
            RouteGroup::DeleteMessage => self.delete_message,
            RouteGroup::Reactions => self.reactions,
            RouteGroup::Get => self.get,
            RouteGroup::Commands => self.commands,
            RouteGroup::InteractionCallback => self.interaction_callback,
            RouteGroup::Webhook => self.webhook,
        }
    }
}

/// The groups of routes that share a limit (one field of [`RestLimits`] each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum RouteGroup {
    /// [`RestLimits::create_message`].
    CreateMessage,
    /// [`RestLimits::edit_message`].
    EditMessage,
    /// [`RestLimits::delete_message`].
    DeleteMessage,
    /// [`RestLimits::reactions`].
    Reactions,
    /// [`RestLimits::get`].
    Get,
    /// [`RestLimits::commands`].
    Commands,
    /// [`RestLimits::interaction_callback`].
    InteractionCallback,
    /// [`RestLimits::webhook`].
    Webhook,
}

impl RouteGroup {
    /// Every group.
    const ALL: [Self; 8] = [
        Self::CreateMessage,
        Self::EditMessage,
        Self::DeleteMessage,
        Self::Reactions,
        Self::Get,
        Self::Commands,
        Self::InteractionCallback,
        Self::Webhook,
    ];

    /// The name of its [`RestLimits`] field.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Self::CreateMessage => "create_message",
            Self::EditMessage => "edit_message",
            Self::DeleteMessage => "delete_message",
            Self::Reactions => "reactions",
            Self::Get => "get",
            Self::Commands => "commands",
            Self::InteractionCallback => "interaction_callback",
            Self::Webhook => "webhook",
        }
    }

    /// Its `X-RateLimit-Bucket`: 32 hex digits derived from the group's
    /// name only, so they are the same in every sim and every run.
    pub(crate) fn bucket_id(self) -> String {
        let name = self.name().as_bytes();
        format!(
            "{:016x}{:016x}",
            fnv1a(0xcbf2_9ce4_8422_2325, name),
            fnv1a(0x6c62_272e_07bb_0142, name)
        )
    }
}

/// 64-bit FNV-1a of `bytes` from `basis`.
fn fnv1a(basis: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// One fixed window's count.
#[derive(Clone, Copy, Debug)]
struct Window {
    /// When it started.
    start: Instant,
    /// Requests taken in it.
    count: u32,
}

/// What a counter said about one more request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Take {
    /// Allowed: this many are left in the window, which resets in `reset_after`.
    Allowed {
        /// Requests left after this one.
        remaining: u32,
        /// Until the window ends.
        reset_after: Duration,
    },
    /// Over the limit until `retry_after` from now.
    Limited {
        /// Until the window ends.
        retry_after: Duration,
    },
}

impl Window {
    /// Take one request of `limit` per `len` at `now` from `slot`.
    fn take(slot: &mut Option<Self>, now: Instant, limit: u32, len: Duration) -> Take {
        let w = match slot {
            Some(w) if now.duration_since(w.start) < len => w,
            _ => slot.insert(Self {
                start: now,
                count: 0,
            }),
        };
        let reset_after = len.saturating_sub(now.duration_since(w.start));
        if w.count >= limit {
            return Take::Limited {
                retry_after: reset_after,
            };
        }
        w.count += 1;
        Take::Allowed {
            remaining: limit - w.count,
            reset_after,
        }
    }

    /// Whether the window has ended at `now`.
    fn ended(&self, now: Instant, len: Duration) -> bool {
        now.duration_since(self.start) >= len
    }
}

/// Above this many buckets, ended ones are dropped.
const PRUNE_ABOVE: usize = 4096;

/// Every counter of the REST API.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    /// Per group and major parameter.
    buckets: HashMap<(RouteGroup, String), Option<Window>>,
    /// The global window.
    global: Option<Window>,
    /// The invalid-request window.
    invalid: Option<Window>,
    /// Banned until then.
    banned_until: Option<Instant>,
}

impl Limiter {
    /// Take one request of `group`'s bucket for `major` at `now`.
    pub(crate) fn take_route(
        &mut self,
        group: RouteGroup,
        major: &str,
        limits: &RestLimits,
        now: Instant,
    ) -> Take {
        if self.buckets.len() > PRUNE_ABOVE {
            self.buckets
                .retain(|(g, _), w| w.is_some_and(|w| !w.ended(now, limits.of(*g).window)));
        }
        let limit = limits.of(group);
        let slot = self.buckets.entry((group, major.to_owned())).or_default();
        Window::take(slot, now, limit.limit, limit.window)
    }

    /// Take one request of the global limit (`limit` per second) at `now`.
    pub(crate) fn take_global(&mut self, limit: u32, now: Instant) -> Take {
        Window::take(&mut self.global, now, limit, Duration::from_secs(1))
    }

    /// How long the ban lasts from `now`, if the client is banned.
    pub(crate) fn banned(&mut self, now: Instant) -> Option<Duration> {
        match self.banned_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                self.banned_until = None;
                None
            }
            None => None,
        }
    }

    /// Count one invalid request at `now`. Returns the ban's length and the
    /// window's count if this one started a ban (the count went past `limit`
    /// within `window`).
    pub(crate) fn record_invalid(
        &mut self,
        now: Instant,
        limit: u32,
        window: Duration,
    ) -> Option<(Duration, u32)> {
        let w = match &mut self.invalid {
            Some(w) if !w.ended(now, window) => w,
            slot => slot.insert(Window {
                start: now,
                count: 0,
            }),
        };
        w.count = w.count.saturating_add(1);
        if w.count > limit && self.banned_until.is_none() {
            let until = w.start + window;
            self.banned_until = Some(until);
            return Some((until.saturating_duration_since(now), w.count));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_fixed_window_starts_at_the_first_request() {
        let mut l = Limiter::default();
        let t = Instant::now();
        let limits = RestLimits {
            create_message: RouteLimit::new(2, MS * 100),
            ..RestLimits::default()
        };
        let take = |l: &mut Limiter, major: &str, at: Duration| {
            l.take_route(RouteGroup::CreateMessage, major, &limits, t + at)
        };
        assert_eq!(
            take(&mut l, "1", MS * 10),
            Take::Allowed {
                remaining: 1,
                reset_after: MS * 100
            }
        );
        assert_eq!(
            take(&mut l, "1", MS * 60),
            Take::Allowed {
                remaining: 0,
                reset_after: MS * 50
            }
        );
        assert_eq!(
            take(&mut l, "1", MS * 90),
            Take::Limited {
                retry_after: MS * 20
            }
        );
        // Another major parameter has its own counter.
        assert!(matches!(
            take(&mut l, "2", MS * 90),
            Take::Allowed { remaining: 1, .. }
        ));
        // The window ends 100 ms after its first request.
        assert!(matches!(
            take(&mut l, "1", MS * 110),
            Take::Allowed { remaining: 1, .. }
        ));
    }

    #[test]
    fn the_global_window_is_one_second() {
        let mut l = Limiter::default();
        let t = Instant::now();
        assert!(matches!(l.take_global(1, t), Take::Allowed { .. }));
        assert_eq!(
            l.take_global(1, t + MS * 400),
            Take::Limited {
                retry_after: MS * 600
            }
        );
        assert!(matches!(
            l.take_global(1, t + MS * 1000),
            Take::Allowed { .. }
        ));
    }

    #[test]
    fn past_the_invalid_limit_the_client_is_banned_until_the_window_ends() {
        let mut l = Limiter::default();
        let t = Instant::now();
        let w = Duration::from_secs(10);
        assert_eq!(l.record_invalid(t, 2, w), None);
        assert_eq!(l.record_invalid(t + MS, 2, w), None);
        assert_eq!(l.banned(t + MS), None);
        assert_eq!(
            l.record_invalid(t + MS * 1000, 2, w),
            Some((w - MS * 1000, 3))
        );
        assert_eq!(l.banned(t + MS * 2000), Some(w - MS * 2000));
        // Counting on while banned starts no second ban.
        assert_eq!(l.record_invalid(t + MS * 3000, 2, w), None);
        assert_eq!(l.banned(t + w), None);
        // A new window counts from zero.
        assert_eq!(l.record_invalid(t + w, 2, w), None);
    }

    #[test]
    fn bucket_ids_are_stable_and_distinct() {
        let ids: Vec<String> = RouteGroup::ALL.iter().map(|g| g.bucket_id()).collect();
        assert!(ids.iter().all(|id| id.len() == 32));
        for (i, a) in ids.iter().enumerate() {
            assert!(ids[i + 1..].iter().all(|b| a != b));
        }
        assert_eq!(
            RouteGroup::Get.bucket_id(),
            RouteGroup::Get.bucket_id(),
            "derived from the name alone"
        );
    }
}
