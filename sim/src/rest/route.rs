//! The REST routes the sim serves: a path under `/api/v10` parsed into a
//! [`Route`], with its template (as clients and the log name it), its
//! rate-limit group, its major parameter, and whether it needs the bot token
//! and counts against the global limit.
//!
//! Parameters stay strings here; handlers turn them into snowflakes, so a
//! malformed id still has a route, a bucket and a log entry.

use axum::http::Method;

use super::limits::RouteGroup;

/// Which message of an interaction's webhook a path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WebhookMessage {
    /// `@original`: the interaction's response.
    Original,
    /// A follow-up's id.
    Id(String),
}

/// A parsed REST route with its path parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /gateway`.
    GetGateway,
    /// `GET /gateway/bot`.
    GetGatewayBot,
    /// `GET /users/@me`.
    GetCurrentUser,
    /// `GET /channels/{channel_id}`.
    GetChannel {
        /// The channel.
        channel: String,
    },
    /// `POST /channels/{channel_id}/messages`.
    CreateMessage {
        /// The channel.
        channel: String,
    },
    /// `GET /channels/{channel_id}/messages/{message_id}`.
    GetMessage {
        /// The channel.
        channel: String,
        /// The message.
        message: String,
    },
    /// `PATCH /channels/{channel_id}/messages/{message_id}`.
    EditMessage {
        /// The channel.
        channel: String,
        /// The message.
        message: String,
    },
    /// `DELETE /channels/{channel_id}/messages/{message_id}`.
    DeleteMessage {
        /// The channel.
        channel: String,
        /// The message.
        message: String,
    },
    /// `PUT` (`add`) or `DELETE` `/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me`.
    Reaction {
        /// Add (PUT) or remove (DELETE).
        add: bool,
        /// The channel.
        channel: String,
        /// The message.
        message: String,
        /// The emoji, percent-decoded (`👍` or `name:id`).
        emoji: String,
    },
    /// `GET /guilds/{guild_id}`.
    GetGuild {
        /// The guild.
        guild: String,
    },
    /// `GET /guilds/{guild_id}/members/{user_id}`.
    GetMember {
        /// The guild.
        guild: String,
        /// The user.
        user: String,
    },
    /// `GET` or `PUT` (`overwrite`) `/applications/{application_id}/commands`,
    /// or the same under `/guilds/{guild_id}`.
    Commands {
        /// Bulk overwrite (PUT) or list (GET).
        overwrite: bool,
        /// The application.
        application: String,
        /// The guild, for guild commands.
        guild: Option<String>,
    },
    /// `POST /interactions/{interaction_id}/{token}/callback`.
    InteractionCallback {
        /// The interaction.
        id: String,
        /// Its token.
        token: String,
    },
    /// `POST /webhooks/{application_id}/{token}`: a follow-up message.
    CreateFollowup {
        /// The application.
        application: String,
        /// The interaction token.
        token: String,
    },
    /// `GET`, `PATCH` or `DELETE` `/webhooks/{application_id}/{token}/messages/{message}`.
    WebhookMessage {
        /// The method.
        method: Method,
        /// The application.
        application: String,
        /// The interaction token.
        token: String,
        /// `@original` or a follow-up.
        message: WebhookMessage,
    },
}

impl Route {
    /// Parse `method` and `path` (after `/api/v10`, without the query).
    /// `None` for a path the sim does not serve.
    pub(crate) fn parse(method: &Method, path: &str) -> Option<Self> {
        let segs: Vec<String> = path
            .trim_start_matches('/')
            .split('/')
            .map(percent_decode)
            .collect();
        let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
        let s = |v: &&str| (*v).to_owned();
        let m = method.clone();
        let route = match (m, segs.as_slice()) {
            (Method::GET, ["gateway"]) => Self::GetGateway,
            (Method::GET, ["gateway", "bot"]) => Self::GetGatewayBot,
            (Method::GET, ["users", "@me"]) => Self::GetCurrentUser,
            (Method::GET, ["channels", c]) => Self::GetChannel { channel: s(c) },
            (Method::POST, ["channels", c, "messages"]) => Self::CreateMessage { channel: s(c) },
            (Method::GET, ["channels", c, "messages", m]) => Self::GetMessage {
                channel: s(c),
                message: s(m),
            },
            (Method::PATCH, ["channels", c, "messages", m]) => Self::EditMessage {
                channel: s(c),
                message: s(m),
            },
            (Method::DELETE, ["channels", c, "messages", m]) => Self::DeleteMessage {
                channel: s(c),
                message: s(m),
            },
            (
                method @ (Method::PUT | Method::DELETE),
                ["channels", c, "messages", m, "reactions", e, "@me"],
            ) => Self::Reaction {
                add: method == Method::PUT,
                channel: s(c),
                message: s(m),
                emoji: s(e),
            },
            (Method::GET, ["guilds", g]) => Self::GetGuild { guild: s(g) },
            (Method::GET, ["guilds", g, "members", u]) => Self::GetMember {
                guild: s(g),
                user: s(u),
            },
            (method @ (Method::GET | Method::PUT), ["applications", a, "commands"]) => {
                Self::Commands {
                    overwrite: method == Method::PUT,
                    application: s(a),
                    guild: None,
                }
            }
            (
                method @ (Method::GET | Method::PUT),
                ["applications", a, "guilds", g, "commands"],
            ) => Self::Commands {
                overwrite: method == Method::PUT,
                application: s(a),
                guild: Some(s(g)),
            },
            (Method::POST, ["interactions", i, t, "callback"]) => Self::InteractionCallback {
                id: s(i),
                token: s(t),
            },
            (Method::POST, ["webhooks", a, t]) => Self::CreateFollowup {
                application: s(a),
                token: s(t),
            },
            (
                method @ (Method::GET | Method::PATCH | Method::DELETE),
                ["webhooks", a, t, "messages", m],
            ) => Self::WebhookMessage {
                method,
                application: s(a),
                token: s(t),
                message: if *m == "@original" {
                    WebhookMessage::Original
                } else {
                    WebhookMessage::Id(s(m))
                },
            },
            _ => return None,
        };
        Some(route)
    }

    /// The method and path template, e.g. `POST /channels/{channel_id}/messages`.
    pub(crate) fn template(&self) -> &'static str {
        match self {
            Self::GetGateway => "GET /gateway",
            Self::GetGatewayBot => "GET /gateway/bot",
            Self::GetCurrentUser => "GET /users/@me",
            Self::GetChannel { .. } => "GET /channels/{channel_id}",
            Self::CreateMessage { .. } => "POST /channels/{channel_id}/messages",
            Self::GetMessage { .. } => "GET /channels/{channel_id}/messages/{message_id}",
            Self::EditMessage { .. } => "PATCH /channels/{channel_id}/messages/{message_id}",
            Self::DeleteMessage { .. } => "DELETE /channels/{channel_id}/messages/{message_id}",
            Self::Reaction { add: true, .. } => {
                "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
            }
            Self::Reaction { add: false, .. } => {
                "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me"
            }
            Self::GetGuild { .. } => "GET /guilds/{guild_id}",
            Self::GetMember { .. } => "GET /guilds/{guild_id}/members/{user_id}",
            Self::Commands {
                overwrite: true,
                guild: None,
                ..
            } => "PUT /applications/{application_id}/commands",
            Self::Commands {
                overwrite: false,
                guild: None,
                ..
            } => "GET /applications/{application_id}/commands",
            Self::Commands {
                overwrite: true,
                guild: Some(_),
                ..
            } => "PUT /applications/{application_id}/guilds/{guild_id}/commands",
            Self::Commands {
                overwrite: false,
                guild: Some(_),
                ..
            } => "GET /applications/{application_id}/guilds/{guild_id}/commands",
            Self::InteractionCallback { .. } => {
                "POST /interactions/{interaction_id}/{token}/callback"
            }
            Self::CreateFollowup { .. } => "POST /webhooks/{application_id}/{token}",
            Self::WebhookMessage {
                method, message, ..
            } => match (method.as_str(), message) {
                ("GET", WebhookMessage::Original) => {
                    "GET /webhooks/{application_id}/{token}/messages/@original"
                }
                ("PATCH", WebhookMessage::Original) => {
                    "PATCH /webhooks/{application_id}/{token}/messages/@original"
                }
                (_, WebhookMessage::Original) => {
                    "DELETE /webhooks/{application_id}/{token}/messages/@original"
                }
                ("GET", WebhookMessage::Id(_)) => {
                    "GET /webhooks/{application_id}/{token}/messages/{message_id}"
                }
                ("PATCH", WebhookMessage::Id(_)) => {
                    "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"
                }
                (_, WebhookMessage::Id(_)) => {
                    "DELETE /webhooks/{application_id}/{token}/messages/{message_id}"
                }
            },
        }
    }

    /// The rate-limit group, if the route has a per-route limit
    /// (`GET /gateway` has none).
    pub(crate) fn group(&self) -> Option<RouteGroup> {
        Some(match self {
            Self::GetGateway => return None,
            Self::GetGatewayBot
            | Self::GetCurrentUser
            | Self::GetChannel { .. }
            | Self::GetMessage { .. }
            | Self::GetGuild { .. }
            | Self::GetMember { .. }
            | Self::Commands {
                overwrite: false, ..
            } => RouteGroup::Get,
            Self::WebhookMessage { method, .. } if method == Method::GET => RouteGroup::Get,
            Self::CreateMessage { .. } => RouteGroup::CreateMessage,
            Self::EditMessage { .. } => RouteGroup::EditMessage,
            Self::DeleteMessage { .. } => RouteGroup::DeleteMessage,
            Self::Reaction { .. } => RouteGroup::Reactions,
            Self::Commands {
                overwrite: true, ..
            } => RouteGroup::Commands,
            Self::InteractionCallback { .. } => RouteGroup::InteractionCallback,
            Self::CreateFollowup { .. } | Self::WebhookMessage { .. } => RouteGroup::Webhook,
        })
    }

    /// The major parameter: the channel or guild id, `{application_id}/{token}`
    /// for webhooks, `{interaction_id}/{token}` for callbacks; `None` for
    /// routes without one.
    pub(crate) fn major(&self) -> Option<String> {
        match self {
            Self::GetGateway | Self::GetGatewayBot | Self::GetCurrentUser => None,
            Self::GetChannel { channel }
            | Self::CreateMessage { channel }
            | Self::GetMessage { channel, .. }
            | Self::EditMessage { channel, .. }
            | Self::DeleteMessage { channel, .. }
            | Self::Reaction { channel, .. } => Some(channel.clone()),
            Self::GetGuild { guild } | Self::GetMember { guild, .. } => Some(guild.clone()),
            Self::Commands { guild, .. } => guild.clone(),
            Self::InteractionCallback { id, token } => Some(format!("{id}/{token}")),
            Self::CreateFollowup { application, token }
            | Self::WebhookMessage {
                application, token, ..
            } => Some(format!("{application}/{token}")),
        }
    }

    /// Whether the route is authenticated by the token in its path (the
    /// interaction endpoints): these need no `Authorization` header and are
    /// exempt from the global limit, as on Discord.
    pub(crate) fn is_interaction(&self) -> bool {
        matches!(
            self,
            Self::InteractionCallback { .. }
                | Self::CreateFollowup { .. }
                | Self::WebhookMessage { .. }
        )
    }

    /// Whether the route needs `Authorization: Bot <token>`.
    pub(crate) fn needs_auth(&self) -> bool {
        !self.is_interaction() && *self != Self::GetGateway
    }
}

/// Decode `%XX` escapes (invalid ones stay as they are; invalid UTF-8 is
/// replaced).
pub(crate) fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| char::from(c).to_digit(16);
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            )
        {
            // Two hex digits: below 256.
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn routes_parse_with_template_group_and_major() {
        let r = Route::parse(&Method::POST, "/channels/12/messages").unwrap();
        assert_eq!(r.template(), "POST /channels/{channel_id}/messages");
        assert_eq!(r.group(), Some(RouteGroup::CreateMessage));
        assert_eq!(r.major().as_deref(), Some("12"));
        assert!(r.needs_auth() && !r.is_interaction());

        let r = Route::parse(
            &Method::PUT,
            "/channels/1/messages/2/reactions/%F0%9F%91%8D/@me",
        )
        .unwrap();
        assert_eq!(
            r,
            Route::Reaction {
                add: true,
                channel: "1".into(),
                message: "2".into(),
                emoji: "\u{1f44d}".into()
            }
        );

        let r = Route::parse(&Method::PATCH, "/webhooks/5/tok/messages/@original").unwrap();
        assert_eq!(
            r.template(),
            "PATCH /webhooks/{application_id}/{token}/messages/@original"
        );
        assert_eq!(r.major().as_deref(), Some("5/tok"));
        assert!(r.is_interaction() && !r.needs_auth());

        let r = Route::parse(&Method::PUT, "/applications/5/guilds/7/commands").unwrap();
        assert_eq!(r.group(), Some(RouteGroup::Commands));
        assert_eq!(r.major().as_deref(), Some("7"));
        let r = Route::parse(&Method::PUT, "/applications/5/commands").unwrap();
        assert_eq!(r.major(), None);

        assert!(!Route::GetGateway.needs_auth());
        assert!(Route::parse(&Method::POST, "/channels/1").is_none());
        assert!(Route::parse(&Method::GET, "/nothing/here").is_none());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%3Ab"), "a:b");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%F0%9F%8E%89"), "\u{1f389}");
    }
}
