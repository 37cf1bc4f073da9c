//! Interactions: injecting INTERACTION_CREATE ([`Sim::inject_interaction`](crate::Sim::inject_interaction),
//! `POST /sim/interaction`), the callback endpoint, and the interaction
//! webhook (follow-ups and `@original`).
//!
//! A callback is accepted once per interaction: a second one gets 400
//! `Interaction has already been acknowledged` (40060); an unknown id or
//! token gets 404 `Unknown interaction` (10062). The callback types allowed
//! depend on the interaction type, as Discord documents them. Types 4 and 5
//! create the response message (`@original`; type 5 with the `LOADING`
//! flag until it is edited), dispatched as MESSAGE_CREATE unless ephemeral;
//! type 7 edits the message a component came from. Follow-ups need an
//! acknowledged interaction.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::error::{RestError, Unknown};
use super::messages::{
    Draft, FLAG_EPHEMERAL, FLAG_LOADING, Origin, apply_edit, new_message, too_long,
};
use super::route::WebhookMessage;
use super::routes::{create, message_view, snowflake, with_member};
use super::store::{InteractionState, Lookup, Store, StoredMessage};
use super::{Reply, Request};
use crate::error::SimError;
use crate::ids::GuildId;
use crate::log::InteractionRecord;
use crate::payloads::{EVERYONE_PERMISSIONS, member_json, user_json};
use crate::shared::Shared;
use crate::world::{ChannelRef, World};

/// The type of an injected interaction (Discord's interaction types 2–5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InteractionType {
    /// 2: a slash command (`data.type` 1, `CHAT_INPUT`).
    #[default]
    ApplicationCommand,
    /// 3: a button or select menu on a message; `name` is its `custom_id`.
    MessageComponent,
    /// 4: autocomplete of a slash command's option.
    ApplicationCommandAutocomplete,
    /// 5: a submitted modal; `name` is its `custom_id`.
    ModalSubmit,
}

impl InteractionType {
    /// Discord's number for it.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::ApplicationCommand => 2,
            Self::MessageComponent => 3,
            Self::ApplicationCommandAutocomplete => 4,
            Self::ModalSubmit => 5,
        }
    }

    /// The type with Discord's number `code` (2–5).
    #[must_use]
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            2 => Some(Self::ApplicationCommand),
            3 => Some(Self::MessageComponent),
            4 => Some(Self::ApplicationCommandAutocomplete),
            5 => Some(Self::ModalSubmit),
            _ => None,
        }
    }

    /// The callback types Discord accepts for it.
    const fn callbacks(self) -> &'static [u8] {
        match self {
            Self::ApplicationCommand => &[4, 5, 9, 10, 12],
            Self::MessageComponent => &[4, 5, 6, 7, 9, 10, 12],
            Self::ApplicationCommandAutocomplete => &[8],
            Self::ModalSubmit => &[4, 5, 6, 7, 10],
        }
    }
}

/// An interaction to inject with [`Sim::inject_interaction`](crate::Sim::inject_interaction).
///
/// ```
/// use serde_json::json;
/// use shardbus_sim::{GuildId, InteractionType, NewInteraction};
///
/// let ping = NewInteraction::command(GuildId::nth(0), "ping");
/// assert_eq!(ping.kind, InteractionType::ApplicationCommand);
/// let echo = NewInteraction {
///     options: vec![json!({ "name": "text", "type": 3, "value": "hi" })],
///     ..NewInteraction::command(GuildId::nth(0), "echo")
/// };
/// assert_eq!(echo.options.len(), 1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct NewInteraction {
    /// The guild it happens in (one of the sim's).
    pub guild: GuildId,
    /// The channel (one of the guild's); its first text channel if `None`.
    pub channel: Option<u64>,
    /// The interaction type.
    pub kind: InteractionType,
    /// The command name, or the `custom_id` of a component or modal.
    pub name: String,
    /// The command's `options` (for a command or autocomplete), the
    /// selected `values` (for a component: strings make it a string
    /// select, none a button), or the modal's `components` (for a modal submit).
    pub options: Vec<Value>,
    /// The user who invoked it (a member of the guild); its first non-bot
    /// member if `None`.
    pub user: Option<u64>,
}

impl NewInteraction {
    /// A slash command `name` without options in `guild`'s first text
    /// channel, by its first member.
    #[must_use]
    pub fn command(guild: impl Into<GuildId>, name: impl Into<String>) -> Self {
        Self {
            guild: guild.into(),
            channel: None,
            kind: InteractionType::ApplicationCommand,
            name: name.into(),
            options: Vec::new(),
            user: None,
        }
    }
}

/// An injected interaction: what a client needs to answer it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectedInteraction {
    /// Its id.
    pub id: u64,
    /// Its token (for the callback and the webhook endpoints).
    pub token: String,
    /// How many sessions INTERACTION_CREATE was queued on (0 if no session
    /// owns the guild).
    pub sessions: usize,
}

/// 64 random bits: a fresh `RandomState` per call (its keys come from the
/// OS once per thread, then change for every instance) over a counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A token like Discord's: `aW50ZXJhY3Rpb246` ("interaction:" in base64),
/// the id, and 64 random alphanumerics. Safe in a URL path.
fn new_token(id: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = format!("aW50ZXJhY3Rpb246{id}");
    for _ in 0..8 {
        let mut r = random_u64();
        for _ in 0..8 {
            // Below 62, so the index is in range.
            out.push(char::from(ALPHABET[(r % 62) as usize]));
            r /= 62;
        }
    }
    out
}

/// A channel object with its `guild_id`, as `GET /channels/{id}` returns it.
pub(crate) fn channel_with_guild(g: &crate::world::GuildFixture, c: ChannelRef) -> Value {
    let mut v = World::channel_json(g, c);
    v["guild_id"] = json!(g.id.0.to_string());
    v
}

/// Queue INTERACTION_CREATE for `new` on the sessions owning its guild.
pub(crate) fn inject(
    shared: &Shared,
    new: NewInteraction,
) -> Result<InjectedInteraction, SimError> {
    let world = &shared.world;
    let g = world.guild(new.guild).ok_or(SimError::Unknown {
        what: "guild",
        id: new.guild.0,
    })?;
    let (channel, channel_ref) = match new.channel {
        Some(c) => match world.channel(c) {
            Some((cg, r)) if cg.id == g.id => (c, r),
            _ => {
                return Err(SimError::Unknown {
                    what: "channel",
                    id: c,
                });
            }
        },
        None => (g.text_channels[0], ChannelRef::Text(0)),
    };
    let user = match new.user {
        Some(u) => g.member(u).ok_or(SimError::Unknown {
            what: "member",
            id: u,
        })?,
        None => g.members.iter().find(|u| !u.bot).unwrap_or(&world.bot),
    };
    let kind = new.kind;
    let gid = g.id.0.to_string();
    let app = world.bot.id;
    let now = shared.elapsed();
    let bot = user_json(&world.bot);

    let mut store = shared.rest.store();
    store.expire_interactions(now, shared.config.interaction_token_lifetime);
    let id = store.next_id();
    let token = new_token(id);
    let data = match kind {
        InteractionType::ApplicationCommand | InteractionType::ApplicationCommandAutocomplete => {
            let (command, guild_command) = command_id(&mut store, g.id, &new.name);
            let mut d = json!({ "id": command.to_string(), "name": new.name, "type": 1 });
            if !new.options.is_empty() {
                d["options"] = json!(new.options);
            }
            if guild_command {
                d["guild_id"] = json!(gid);
            }
            d
        }
        InteractionType::MessageComponent if new.options.is_empty() => {
            json!({ "custom_id": new.name, "component_type": 2 })
        }
        InteractionType::MessageComponent => {
            json!({ "custom_id": new.name, "component_type": 3, "values": new.options })
        }
        InteractionType::ModalSubmit => {
            json!({ "custom_id": new.name, "components": new.options })
        }
    };
    // A component sits on a message of the bot: the channel's newest, or
    // a stand-in the sim keeps as the bot's (never dispatched).
    let target = (kind == InteractionType::MessageComponent).then(|| {
        if let Some(m) = store.latest_in(channel) {
            return m.json.clone();
        }
        let mid = store.next_id();
        let origin = Origin {
            channel,
            guild: Some(g.id),
            author: bot.clone(),
            kind: 0,
            webhook: None,
        };
        let draft = Draft {
            content: Some("Pick one".to_owned()),
            ..Draft::default()
        };
        let m = new_message(mid, &origin, &draft, Vec::new(), None, 0);
        store.insert_message(
            mid,
            StoredMessage {
                channel,
                json: m.clone(),
                ephemeral: false,
            },
        );
        m
    });
    let owners = json!({ "0": gid });
    let mut metadata = json!({
        "id": id.to_string(),
        "type": kind.code(),
        "user": user_json(user),
        "authorizing_integration_owners": owners,
    });
    let mut member = member_json(user, true);
    member["permissions"] = json!(EVERYONE_PERMISSIONS);
    let mut payload = json!({
        "id": id.to_string(),
        "application_id": app.to_string(),
        "type": kind.code(),
        "token": token,
        "data": data,
        "guild_id": gid,
        "guild": { "id": gid, "locale": "en-US", "features": [] },
        "channel_id": channel.to_string(),
        "channel": channel_with_guild(g, channel_ref),
        "member": member,
        "version": 1,
        "locale": "en-US",
        "guild_locale": "en-US",
        "app_permissions": EVERYONE_PERMISSIONS,
        "entitlements": [],
        "authorizing_integration_owners": owners,
        "context": 0,
        "attachment_size_limit": super::MAX_UPLOAD,
    });
    let target_id = target
        .as_ref()
        .and_then(|m| m["id"].as_str())
        .and_then(|s| s.parse::<u64>().ok());
    if let Some(m) = target {
        metadata["interacted_message_id"] = m["id"].clone();
        payload["message"] = m;
    }
    store.tokens.insert(token.clone(), id);
    store.interactions.insert(
        id,
        InteractionState {
            token: token.clone(),
            kind: kind.code(),
            guild: g.id,
            channel,
            dispatched_at: now,
            acked: None,
            original: None,
            target: target_id,
            followups: Vec::new(),
            metadata,
        },
    );
    drop(store);

    shared.log_with(|log| {
        log.interactions.push(InteractionRecord {
            id,
            name: new.name.clone(),
            kind: kind.code(),
            guild_id: g.id,
            channel_id: channel,
            sessions: 0,
            dispatched_at: now,
            answered_at: None,
            callback_type: None,
            within_3s: false,
            data: Value::Null,
            followups: 0,
            edits: 0,
            rejected_callbacks: 0,
        });
    });
    let sessions =
        shared.dispatch_where("INTERACTION_CREATE", true, &payload, |s| s.shard.owns(g.id));
    shared.log_with(|log| {
        if let Some(r) = log.interaction_mut(id) {
            r.sessions = sessions;
        }
    });
    Ok(InjectedInteraction {
        id,
        token,
        sessions,
    })
}

/// The id of command `name` (chat input): the guild's, then the global
/// one, else a new id. Also whether it is a guild command.
fn command_id(store: &mut Store, guild: GuildId, name: &str) -> (u64, bool) {
    for (scope, is_guild) in [(Some(guild.0), true), (None, false)] {
        let found = store.commands.get(&scope).and_then(|list| {
            list.iter()
                .find(|c| c.json["name"] == name && c.json["type"].as_u64().unwrap_or(1) == 1)
        });
        if let Some(id) = found.and_then(|c| c.json["id"].as_str()?.parse().ok()) {
            return (id, is_guild);
        }
    }
    (store.next_id(), false)
}

/// What a callback did, for the log.
struct Answered {
    /// The callback type.
    kind: u8,
    /// Its `data`.
    data: Value,
    /// When the interaction was dispatched.
    dispatched_at: std::time::Duration,
}

/// `POST /interactions/{interaction_id}/{token}/callback`.
pub(crate) fn callback(req: &Request<'_>, id: &str, token: &str) -> Result<Reply, RestError> {
    let shared = req.shared;
    let now = shared.elapsed();
    let Ok(id) = id.parse::<u64>() else {
        return Err(RestError::Unknown(Unknown::Interaction));
    };
    let with_response = req
        .query_param("with_response")
        .is_some_and(|v| v == "true" || v == "1");
    let mut known = false;
    let result = {
        let mut store = shared.rest.store();
        callback_locked(req, &mut store, id, token, now, with_response, &mut known)
    };
    match result {
        Ok((reply, answered)) => {
            let deadline = shared.config.interaction_deadline;
            shared.log_with(|log| {
                if let Some(r) = log.interaction_mut(id) {
                    r.answered_at = Some(now);
                    r.callback_type = Some(answered.kind);
                    r.within_3s = now.saturating_sub(answered.dispatched_at) <= deadline;
                    r.data = answered.data;
                }
            });
            Ok(reply)
        }
        Err(e) => {
            if known {
                shared.log_with(|log| {
                    if let Some(r) = log.interaction_mut(id) {
                        r.rejected_callbacks += 1;
                    }
                });
            }
            Err(e)
        }
    }
}

/// The callback under the store's lock. Sets `known` once the id and token match.
fn callback_locked(
    req: &Request<'_>,
    store: &mut Store,
    id: u64,
    token: &str,
    now: std::time::Duration,
    with_response: bool,
    known: &mut bool,
) -> Result<(Reply, Answered), RestError> {
    let shared = req.shared;
    let config = &shared.config;
    store.expire_interactions(now, config.interaction_token_lifetime);
    let st = store
        .interactions
        .get(&id)
        .filter(|s| s.token == token)
        .cloned()
        .ok_or(RestError::Unknown(Unknown::Interaction))?;
    *known = true;
    if st.acked.is_some() {
        return Err(RestError::AlreadyAcknowledged);
    }
    if config.reject_late_interactions
        && now.saturating_sub(st.dispatched_at) > config.interaction_deadline
    {
        return Err(RestError::Unknown(Unknown::Interaction));
    }
    let body = req.body()?;
    let Some(obj) = body.json.as_object() else {
        return Err(RestError::field(
            "type",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        ));
    };
    let kind = InteractionType::from_code(st.kind).unwrap_or_default();
    let allowed = kind.callbacks();
    let callback_type = obj
        .get("type")
        .and_then(Value::as_u64)
        .and_then(|t| u8::try_from(t).ok())
        .filter(|t| allowed.contains(t));
    let Some(callback_type) = callback_type else {
        let choices: Vec<String> = allowed.iter().map(u8::to_string).collect();
        return Err(RestError::field(
            "type",
            "BASE_TYPE_CHOICES",
            format!("Value must be one of {{{}}}.", choices.join(", ")),
        ));
    };
    let data = obj.get("data").cloned().unwrap_or(Value::Null);
    let app = shared.world.bot.id;
    let origin = Origin {
        channel: st.channel,
        guild: Some(st.guild),
        author: user_json(&shared.world.bot),
        kind: if st.kind == 2 { 20 } else { 0 },
        webhook: Some((app, st.metadata.clone())),
    };
    let mut reply_message = None;
    let mut dispatches = Vec::new();
    let mut original = None;
    match callback_type {
        4 | 5 => {
            let draft = if callback_type == 4 {
                let d = Draft::parse(&data)?;
                if d.is_empty(body.files.len()) {
                    return Err(RestError::EmptyMessage);
                }
                d
            } else {
                // A deferred response: only its flags count.
                Draft {
                    flags: data.get("flags").and_then(Value::as_u64),
                    ..Draft::default()
                }
            };
            let loading = if callback_type == 5 { FLAG_LOADING } else { 0 };
            let files = if callback_type == 4 {
                &body.files[..]
            } else {
                &[]
            };
            let m = create(shared, store, &origin, &draft, files, loading);
            let mid = m["id"].as_str().and_then(|s| s.parse().ok());
            original = mid;
            let ephemeral = draft.flags.unwrap_or(0) & FLAG_EPHEMERAL != 0;
            if let Some(mid) = mid
                && let Some(stored) = store.message_mut(mid)
            {
                stored.ephemeral = ephemeral;
            }
            if !ephemeral {
                dispatches.push(("MESSAGE_CREATE", with_member(shared, m.clone())));
            }
            reply_message = Some(m);
        }
        6 | 7 => {
            original = st.target;
            if callback_type == 7 {
                let draft = Draft::parse(&data)?;
                if let Some(target) = st.target
                    && let Lookup::Own(stored) = store.lookup(st.channel, target)
                {
                    let mut json = stored.json.clone();
                    apply_edit(&mut json, &draft, Vec::new(), 0)?;
                    stored.json = json.clone();
                    dispatches.push(("MESSAGE_UPDATE", with_member(shared, json.clone())));
                    reply_message = Some(json);
                }
            }
        }
        8 => match data.get("choices") {
            Some(Value::Array(c)) if c.len() > 25 => return Err(too_long("data.choices", 25)),
            Some(Value::Array(_)) => {}
            _ => {
                return Err(RestError::field(
                    "data.choices",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ));
            }
        },
        9 => {
            for key in ["custom_id", "title", "components"] {
                if data.get(key).is_none_or(Value::is_null) {
                    return Err(RestError::field(
                        &format!("data.{key}"),
                        "BASE_TYPE_REQUIRED",
                        "This field is required",
                    ));
                }
            }
        }
        _ => {}
    }
    if let Some(s) = store.interactions.get_mut(&id) {
        s.acked = Some(callback_type);
        s.original = original;
    }
    let mut reply = if with_response {
        let mut interaction = json!({ "id": id.to_string(), "type": st.kind });
        let mut resource = json!({ "type": callback_type });
        if let Some(m) = &reply_message {
            let flags = m["flags"].as_u64().unwrap_or(0);
            interaction["response_message_id"] = m["id"].clone();
            interaction["response_message_loading"] = json!(flags & FLAG_LOADING != 0);
            interaction["response_message_ephemeral"] = json!(flags & FLAG_EPHEMERAL != 0);
            resource["message"] = m.clone();
        }
        Reply::json(json!({ "interaction": interaction, "resource": resource }))
    } else {
        Reply::status(StatusCode::NO_CONTENT)
    };
    for (event, d) in dispatches {
        reply = reply.dispatch(Some(st.guild), event, d);
    }
    Ok((
        reply,
        Answered {
            kind: callback_type,
            data,
            dispatched_at: st.dispatched_at,
        },
    ))
}

/// The interaction a webhook path names, with (a copy of) its state:
/// application id and token checked, expired tokens dropped.
fn resolve(
    shared: &Shared,
    store: &mut Store,
    application: &str,
    token: &str,
) -> Result<(u64, InteractionState), RestError> {
    let app = snowflake("webhook_id", application)?;
    if app != shared.world.bot.id {
        return Err(RestError::Unknown(Unknown::Webhook));
    }
    store.expire_interactions(shared.elapsed(), shared.config.interaction_token_lifetime);
    let id = store
        .tokens
        .get(token)
        .copied()
        .ok_or(RestError::InvalidWebhookToken)?;
    let state = store
        .interactions
        .get(&id)
        .cloned()
        .ok_or(RestError::InvalidWebhookToken)?;
    Ok((id, state))
}

/// `POST /webhooks/{application_id}/{token}`: a follow-up message.
pub(crate) fn followup(
    req: &Request<'_>,
    application: &str,
    token: &str,
) -> Result<Reply, RestError> {
    let shared = req.shared;
    let body = req.body();
    let mut store = shared.rest.store();
    let (id, st) = resolve(shared, &mut store, application, token)?;
    if st.acked.is_none() {
        return Err(RestError::Unknown(Unknown::Webhook));
    }
    let body = body?;
    let draft = Draft::parse(&body.json)?;
    if draft.is_empty(body.files.len()) {
        return Err(RestError::EmptyMessage);
    }
    let origin = Origin {
        channel: st.channel,
        guild: Some(st.guild),
        author: user_json(&shared.world.bot),
        kind: 0,
        webhook: Some((shared.world.bot.id, st.metadata.clone())),
    };
    let m = create(shared, &mut store, &origin, &draft, &body.files, 0);
    let ephemeral = draft.flags.unwrap_or(0) & FLAG_EPHEMERAL != 0;
    let mid = m["id"].as_str().and_then(|s| s.parse::<u64>().ok());
    if let Some(mid) = mid {
        if let Some(stored) = store.message_mut(mid) {
            stored.ephemeral = ephemeral;
        }
        if let Some(s) = store.interactions.get_mut(&id) {
            s.followups.push(mid);
        }
    }
    drop(store);
    shared.log_with(|log| {
        if let Some(r) = log.interaction_mut(id) {
            r.followups += 1;
        }
    });
    let mut reply = Reply::json(m.clone());
    if !ephemeral {
        reply = reply.dispatch(Some(st.guild), "MESSAGE_CREATE", with_member(shared, m));
    }
    Ok(reply)
}

/// `GET`, `PATCH` or `DELETE` `/webhooks/{application_id}/{token}/messages/{@original|message_id}`.
pub(crate) fn webhook_message(
    req: &Request<'_>,
    method: &Method,
    application: &str,
    token: &str,
    message: &WebhookMessage,
) -> Result<Reply, RestError> {
    let shared = req.shared;
    let body = req.body();
    let mut store = shared.rest.store();
    let (id, st) = resolve(shared, &mut store, application, token)?;
    let target = match message {
        WebhookMessage::Original => {
            if st.acked.is_none() {
                return Err(RestError::Unknown(Unknown::Webhook));
            }
            st.original.ok_or(RestError::Unknown(Unknown::Message))?
        }
        WebhookMessage::Id(m) => {
            let m = snowflake("message_id", m)?;
            if st.followups.contains(&m) || st.original == Some(m) {
                m
            } else {
                return Err(RestError::Unknown(Unknown::Message));
            }
        }
    };
    let Lookup::Own(stored) = store.lookup(st.channel, target) else {
        return Err(RestError::Unknown(Unknown::Message));
    };
    let ephemeral = stored.ephemeral;
    match *method {
        Method::GET => {
            let json = stored.json.clone();
            Ok(Reply::json(message_view(&store, target, json)))
        }
        Method::PATCH => {
            let body = body?;
            let draft = Draft::parse(&body.json)?;
            let mut json = stored.json.clone();
            let new_files =
                super::routes::store_files(shared, &mut store, st.channel, &draft, &body.files);
            apply_edit(&mut json, &draft, new_files, FLAG_LOADING)?;
            if let Some(stored) = store.message_mut(target) {
                stored.json = json.clone();
            }
            let view = message_view(&store, target, json);
            drop(store);
            if *message == WebhookMessage::Original {
                shared.log_with(|log| {
                    if let Some(r) = log.interaction_mut(id) {
                        r.edits += 1;
                    }
                });
            }
            let mut reply = Reply::json(view.clone());
            if !ephemeral {
                reply = reply.dispatch(Some(st.guild), "MESSAGE_UPDATE", with_member(shared, view));
            }
            Ok(reply)
        }
        _ => {
            store.delete_message(target);
            if let Some(s) = store.interactions.get_mut(&id) {
                if s.original == Some(target) {
                    s.original = None;
                }
                s.followups.retain(|f| *f != target);
            }
            let mut reply = Reply::status(StatusCode::NO_CONTENT);
            if !ephemeral {
                reply = reply.dispatch(
                    Some(st.guild),
                    "MESSAGE_DELETE",
                    json!({
                        "id": target.to_string(),
                        "channel_id": st.channel.to_string(),
                        "guild_id": st.guild.0.to_string(),
                    }),
                );
            }
            Ok(reply)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_and_distinct() {
        let a = new_token(1);
        let b = new_token(1);
        assert_ne!(a, b);
        assert!(a.starts_with("aW50ZXJhY3Rpb2461"));
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(a.len(), "aW50ZXJhY3Rpb246".len() + 1 + 64);
    }

    #[test]
    fn interaction_types_round_trip() {
        for t in [
            InteractionType::ApplicationCommand,
            InteractionType::MessageComponent,
            InteractionType::ApplicationCommandAutocomplete,
            InteractionType::ModalSubmit,
        ] {
            assert_eq!(InteractionType::from_code(t.code()), Some(t));
        }
        assert_eq!(InteractionType::from_code(1), None);
    }
}
