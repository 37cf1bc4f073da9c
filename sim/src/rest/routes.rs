//! The handlers of the REST routes (interactions are in `interactions.rs`):
//! the gateway URLs, channels, messages, reactions, guilds, members, the
//! current user and application commands.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::error::{RestError, Unknown};
use super::interactions::{self, channel_with_guild};
use super::messages::{
    Draft, FLAG_EPHEMERAL, Origin, Upload, apply_edit, attachment_json, new_message,
    sanitize_filename, too_long,
};
use super::route::Route;
use super::store::{Lookup, Store, StoredCommand, StoredFile, StoredMessage};
use super::{Reply, Request};
use crate::ids::GuildId;
use crate::payloads::{member_json, user_json};
use crate::shared::Shared;

/// Answer `req`.
pub(crate) fn handle(req: &Request<'_>) -> Result<Reply, RestError> {
    let shared = req.shared;
    match req.route {
        Route::GetGateway => Ok(Reply::json(json!({ "url": shared.gateway_url() }))),
        Route::GetGatewayBot => Ok(Reply::json(gateway_bot(shared))),
        Route::GetCurrentUser => Ok(Reply::json(shared.world.bot_user_json())),
        Route::GetChannel { channel } => {
            let id = snowflake("channel_id", channel)?;
            let (g, c) = shared
                .world
                .channel(id)
                .ok_or(RestError::Unknown(Unknown::Channel))?;
            Ok(Reply::json(channel_with_guild(g, c)))
        }
        Route::CreateMessage { channel } => create_message(req, channel),
        Route::GetMessage { channel, message } => {
            let (channel, _) = channel_of(shared, channel)?;
            let id = snowflake("message_id", message)?;
            let mut store = shared.rest.store();
            match store.lookup(channel, id) {
                Lookup::Own(m) => {
                    let json = m.json.clone();
                    Ok(Reply::json(message_view(&store, id, json)))
                }
                Lookup::Other | Lookup::Unknown => Err(RestError::Unknown(Unknown::Message)),
            }
        }
        Route::EditMessage { channel, message } => edit_message(req, channel, message),
        Route::DeleteMessage { channel, message } => {
            let (channel, guild) = channel_of(shared, channel)?;
            let id = snowflake("message_id", message)?;
            let mut store = shared.rest.store();
            let ephemeral = match store.lookup(channel, id) {
                Lookup::Own(m) => m.ephemeral,
                Lookup::Other => false,
                Lookup::Unknown => return Err(RestError::Unknown(Unknown::Message)),
            };
            store.delete_message(id);
            drop(store);
            let mut reply = Reply::status(StatusCode::NO_CONTENT);
            if !ephemeral {
                reply = reply.dispatch(
                    Some(guild),
                    "MESSAGE_DELETE",
                    json!({
                        "id": id.to_string(),
                        "channel_id": channel.to_string(),
                        "guild_id": guild.0.to_string(),
                    }),
                );
            }
            Ok(reply)
        }
        Route::Reaction {
            add,
            channel,
            message,
            emoji,
        } => reaction(shared, *add, channel, message, emoji),
        Route::GetGuild { guild } => {
            let id = snowflake("guild_id", guild)?;
            let g = shared
                .world
                .guild(GuildId(id))
                .ok_or(RestError::Unknown(Unknown::Guild))?;
            Ok(Reply::json(shared.world.guild_json(g)))
        }
        Route::GetMember { guild, user } => {
            let id = snowflake("guild_id", guild)?;
            let g = shared
                .world
                .guild(GuildId(id))
                .ok_or(RestError::Unknown(Unknown::Guild))?;
            let user = snowflake("user_id", user)?;
            let u = g.member(user).ok_or(RestError::Unknown(Unknown::Member))?;
            Ok(Reply::json(member_json(u, true)))
        }
        Route::Commands {
            overwrite,
            application,
            guild,
        } => commands(req, *overwrite, application, guild.as_deref()),
        Route::InteractionCallback { id, token } => interactions::callback(req, id, token),
        Route::CreateFollowup { application, token } => {
            interactions::followup(req, application, token)
        }
        Route::WebhookMessage {
            method,
            application,
            token,
            message,
        } => interactions::webhook_message(req, method, application, token, message),
    }
}

/// A path parameter as a snowflake, or Discord's 50035 for it.
pub(crate) fn snowflake(field: &str, value: &str) -> Result<u64, RestError> {
    value.parse::<u64>().ok().filter(|v| *v > 0).ok_or_else(|| {
        RestError::field(
            field,
            "NUMBER_TYPE_COERCE",
            format!("Value \"{value}\" is not snowflake."),
        )
    })
}

/// A channel path parameter: the channel id and its guild.
fn channel_of(shared: &Shared, channel: &str) -> Result<(u64, GuildId), RestError> {
    let id = snowflake("channel_id", channel)?;
    let (g, _) = shared
        .world
        .channel(id)
        .ok_or(RestError::Unknown(Unknown::Channel))?;
    Ok((id, g.id))
}

/// The body of `GET /gateway/bot`.
fn gateway_bot(shared: &Shared) -> Value {
    let state = shared.state();
    let reset_after = state
        .starts_reset_at
        .saturating_duration_since(std::time::Instant::now());
    json!({
        "url": shared.gateway_url(),
        "shards": state.shards,
        "session_start_limit": {
            "total": shared.config.session_start_limit.total,
            "remaining": state.starts_remaining,
            "reset_after": u64::try_from(reset_after.as_millis()).unwrap_or(u64::MAX),
            "max_concurrency": shared.config.max_concurrency,
        }
    })
}

/// A message as MESSAGE_CREATE and MESSAGE_UPDATE carry it in a guild:
/// with the author's `member` (the bot's).
pub(crate) fn with_member(shared: &Shared, mut message: Value) -> Value {
    if message.get("guild_id").is_some() {
        message["member"] = member_json(&shared.world.bot, false);
    }
    message
}

/// A stored message with its `reactions`, as GET and PATCH return it.
pub(crate) fn message_view(store: &Store, id: u64, mut json: Value) -> Value {
    let reactions = store.reactions_of(id);
    if !reactions.is_empty() {
        json["reactions"] = reactions
            .iter()
            .map(|e| {
                json!({
                    "count": 1,
                    "count_details": { "burst": 0, "normal": 1 },
                    "me": true,
                    "me_burst": false,
                    "burst_colors": [],
                    "emoji": emoji_json(e),
                })
            })
            .collect();
    }
    json
}

/// Keep `files` for `channel` and return their Attachment objects.
pub(crate) fn store_files(
    shared: &Shared,
    store: &mut Store,
    channel: u64,
    draft: &Draft,
    files: &[Upload],
) -> Vec<Value> {
    files
        .iter()
        .map(|f| {
            let id = store.next_id();
            let meta = draft.attachment_meta(f.index);
            let name = meta
                .and_then(|m| m.get("filename"))
                .and_then(Value::as_str)
                .or(f.filename.as_deref())
                .map_or_else(|| format!("file{}", f.index), sanitize_filename);
            let url = format!("http://{}/attachments/{channel}/{id}/{name}", shared.addr);
            let a = attachment_json(id, &name, f, meta, &url);
            store.insert_file(
                id,
                StoredFile {
                    filename: name,
                    content_type: f.content_type.clone(),
                    data: f.data.clone(),
                },
            );
            a
        })
        .collect()
}

/// Create and keep a message from `draft` and `files`; returns its object.
pub(crate) fn create(
    shared: &Shared,
    store: &mut Store,
    origin: &Origin,
    draft: &Draft,
    files: &[Upload],
    extra_flags: u64,
) -> Value {
    let id = store.next_id();
    let attachments = store_files(shared, store, origin.channel, draft, files);
    let referenced = draft
        .reference
        .as_ref()
        .and_then(|r| match &r["message_id"] {
            Value::String(s) => s.parse::<u64>().ok(),
            v => v.as_u64(),
        })
        .and_then(|rid| store.message(rid))
        .filter(|m| m.channel == origin.channel)
        .map(|m| m.json.clone());
    let json = new_message(id, origin, draft, attachments, referenced, extra_flags);
    store.insert_message(
        id,
        StoredMessage {
            channel: origin.channel,
            json: json.clone(),
            ephemeral: false,
        },
    );
    json
}

/// `POST /channels/{channel_id}/messages`.
fn create_message(req: &Request<'_>, channel: &str) -> Result<Reply, RestError> {
    let shared = req.shared;
    let (channel, guild) = channel_of(shared, channel)?;
    let body = req.body()?;
    let mut draft = Draft::parse(&body.json)?;
    if draft.is_empty(body.files.len()) {
        return Err(RestError::EmptyMessage);
    }
    // Only interaction responses can be ephemeral.
    draft.flags = draft.flags.map(|f| f & !FLAG_EPHEMERAL);
    // A reference of type 1 is a forward, not a reply.
    let reply = draft
        .reference
        .as_ref()
        .is_some_and(|r| r.get("type").and_then(Value::as_u64).unwrap_or(0) == 0);
    let origin = Origin {
        channel,
        guild: Some(guild),
        author: user_json(&shared.world.bot),
        kind: if reply { 19 } else { 0 },
        webhook: None,
    };
    let m = {
        let mut store = shared.rest.store();
        create(shared, &mut store, &origin, &draft, &body.files, 0)
    };
    Ok(Reply::json(m.clone()).dispatch(Some(guild), "MESSAGE_CREATE", with_member(shared, m)))
}

/// `PATCH /channels/{channel_id}/messages/{message_id}`.
fn edit_message(req: &Request<'_>, channel: &str, message: &str) -> Result<Reply, RestError> {
    let shared = req.shared;
    let (channel, guild) = channel_of(shared, channel)?;
    let id = snowflake("message_id", message)?;
    let body = req.body()?;
    let draft = Draft::parse(&body.json)?;
    let mut store = shared.rest.store();
    let (mut json, ephemeral) = match store.lookup(channel, id) {
        Lookup::Own(m) => (m.json.clone(), m.ephemeral),
        Lookup::Other => return Err(RestError::NotAuthor),
        Lookup::Unknown => return Err(RestError::Unknown(Unknown::Message)),
    };
    let new_files = store_files(shared, &mut store, channel, &draft, &body.files);
    apply_edit(&mut json, &draft, new_files, 0)?;
    if let Some(m) = store.message_mut(id) {
        m.json = json.clone();
    }
    let view = message_view(&store, id, json);
    drop(store);
    let mut reply = Reply::json(view.clone());
    if !ephemeral {
        reply = reply.dispatch(Some(guild), "MESSAGE_UPDATE", with_member(shared, view));
    }
    Ok(reply)
}

/// Whether `emoji` (from a reaction path) is a unicode emoji or `name:id`.
fn valid_emoji(emoji: &str) -> bool {
    match emoji.split_once(':') {
        Some((name, id)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && id.parse::<u64>().is_ok()
        }
        None => !emoji.is_empty() && emoji.chars().count() <= 16 && !emoji.is_ascii(),
    }
}

/// The `emoji` object of a reaction.
fn emoji_json(emoji: &str) -> Value {
    match emoji.split_once(':') {
        Some((name, id)) => json!({ "id": id, "name": name }),
        None => json!({ "id": Value::Null, "name": emoji }),
    }
}

/// `PUT` or `DELETE` `/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me`.
fn reaction(
    shared: &Shared,
    add: bool,
    channel: &str,
    message: &str,
    emoji: &str,
) -> Result<Reply, RestError> {
    let (channel, guild) = channel_of(shared, channel)?;
    let id = snowflake("message_id", message)?;
    if !valid_emoji(emoji) {
        return Err(RestError::Unknown(Unknown::Emoji));
    }
    let changed = {
        let mut store = shared.rest.store();
        if matches!(store.lookup(channel, id), Lookup::Unknown) {
            return Err(RestError::Unknown(Unknown::Message));
        }
        store.set_reaction(id, emoji, add)
    };
    let mut reply = Reply::status(StatusCode::NO_CONTENT);
    if changed {
        let bot = &shared.world.bot;
        let mut d = json!({
            "user_id": bot.id.to_string(),
            "channel_id": channel.to_string(),
            "message_id": id.to_string(),
            "guild_id": guild.0.to_string(),
            "emoji": emoji_json(emoji),
            "burst": false,
            "type": 0,
        });
        let event = if add {
            d["member"] = member_json(bot, true);
            "MESSAGE_REACTION_ADD"
        } else {
            "MESSAGE_REACTION_REMOVE"
        };
        reply = reply.dispatch(Some(guild), event, d);
    }
    Ok(reply)
}

/// `GET` or `PUT` `/applications/{application_id}[/guilds/{guild_id}]/commands`.
fn commands(
    req: &Request<'_>,
    overwrite: bool,
    application: &str,
    guild: Option<&str>,
) -> Result<Reply, RestError> {
    let shared = req.shared;
    let app = snowflake("application_id", application)?;
    if app != shared.world.bot.id {
        return Err(RestError::MissingAccess);
    }
    let guild = match guild {
        Some(g) => {
            let id = snowflake("guild_id", g)?;
            shared
                .world
                .guild(GuildId(id))
                .ok_or(RestError::Unknown(Unknown::Guild))?;
            Some(id)
        }
        None => None,
    };
    if !overwrite {
        let store = shared.rest.store();
        let list: Vec<Value> = store
            .commands
            .get(&guild)
            .map(|l| l.iter().map(|c| c.json.clone()).collect())
            .unwrap_or_default();
        return Ok(Reply::json(Value::Array(list)));
    }
    let body = req.body()?;
    let Value::Array(input) = body.json else {
        return Err(RestError::field(
            "",
            "LIST_TYPE_CONVERT",
            "Only iterables may be used in a ListType",
        ));
    };
    check_commands(&input)?;
    let mut store = shared.rest.store();
    let old = store.commands.remove(&guild).unwrap_or_default();
    let mut out = Vec::with_capacity(input.len());
    for c in input {
        let kind = c["type"].as_u64().unwrap_or(1);
        let same = old
            .iter()
            .find(|o| o.json["name"] == c["name"] && o.json["type"].as_u64() == Some(kind));
        if let Some(o) = same.filter(|o| o.input == c) {
            out.push(o.clone());
            continue;
        }
        let id = match same.and_then(|o| o.json["id"].as_str()) {
            Some(id) => id.to_owned(),
            None => store.next_id().to_string(),
        };
        let mut json = c.clone();
        json["id"] = json!(id);
        json["application_id"] = json!(app.to_string());
        json["version"] = json!(store.next_id().to_string());
        json["type"] = json!(kind);
        if json.get("description").is_none_or(Value::is_null) {
            json["description"] = json!("");
        }
        if json.get("default_member_permissions").is_none() {
            json["default_member_permissions"] = Value::Null;
        }
        if json.get("nsfw").is_none() {
            json["nsfw"] = json!(false);
        }
        match guild {
            Some(g) => json["guild_id"] = json!(g.to_string()),
            None => {
                if json.get("integration_types").is_none() {
                    json["integration_types"] = json!([0]);
                }
            }
        }
        out.push(StoredCommand { input: c, json });
    }
    let list: Vec<Value> = out.iter().map(|c| c.json.clone()).collect();
    store.commands.insert(guild, out);
    Ok(Reply::json(Value::Array(list)))
}

/// Check a bulk overwrite as Discord does: at most 100 chat-input and 15
/// user and message commands, names of 1–32 characters (lowercase without
/// spaces for chat input), descriptions of 1–100 for chat input and empty
/// otherwise, at most 25 options, and no name twice per type.
fn check_commands(list: &[Value]) -> Result<(), RestError> {
    let mut seen: Vec<(u64, &str)> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let Some(o) = c.as_object() else {
            return Err(RestError::field(
                &i.to_string(),
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            ));
        };
        let kind = match o.get("type") {
            None | Some(Value::Null) => 1,
            Some(t) => match t.as_u64() {
                Some(t @ 1..=4) => t,
                _ => {
                    return Err(RestError::field(
                        &format!("{i}.type"),
                        "BASE_TYPE_CHOICES",
                        "Value must be one of {1, 2, 3, 4}.",
                    ));
                }
            },
        };
        let Some(name) = o.get("name").and_then(Value::as_str) else {
            return Err(RestError::field(
                &format!("{i}.name"),
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ));
        };
        let len = name.chars().count();
        if !(1..=32).contains(&len) {
            return Err(RestError::field(
                &format!("{i}.name"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 32 in length.",
            ));
        }
        if kind == 1 && name.chars().any(|c| c.is_whitespace() || c.is_uppercase()) {
            return Err(RestError::field(
                &format!("{i}.name"),
                "APPLICATION_COMMAND_INVALID_NAME",
                "Command name is invalid",
            ));
        }
        let description = o.get("description").and_then(Value::as_str).unwrap_or("");
        let dlen = description.chars().count();
        if kind == 1 && !(1..=100).contains(&dlen) {
            return Err(RestError::field(
                &format!("{i}.description"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 100 in length.",
            ));
        }
        if kind != 1 && dlen != 0 {
            return Err(RestError::field(
                &format!("{i}.description"),
                "APPLICATION_COMMAND_INVALID_DESCRIPTION",
                "Only chat input commands have a description",
            ));
        }
        if o.get("options")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 25)
        {
            return Err(too_long(&format!("{i}.options"), 25));
        }
        if seen.contains(&(kind, name)) {
            return Err(RestError::field(
                "",
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
                "Application command names must be unique",
            ));
        }
        seen.push((kind, name));
    }
    for (kind, max) in [(1, 100), (2, 15), (3, 15)] {
        if seen.iter().filter(|(k, _)| *k == kind).count() > max {
            return Err(too_long("", max));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn emojis() {
        assert!(valid_emoji("\u{1f44d}"));
        assert!(valid_emoji("1\u{fe0f}\u{20e3}"));
        assert!(valid_emoji("blob:123"));
        assert!(!valid_emoji("thumbsup"));
        assert!(!valid_emoji("blob:x"));
        assert!(!valid_emoji(""));
        assert_eq!(emoji_json("blob:12"), json!({ "id": "12", "name": "blob" }));
    }

    #[test]
    fn command_lists_are_checked() {
        let ok = json!([
            { "name": "ping", "description": "Pong" },
            { "name": "Ping", "type": 2 },
        ]);
        assert!(check_commands(ok.as_array().unwrap_or(&Vec::new())).is_ok());
        let cases = [
            (json!([{ "description": "x" }]), "BASE_TYPE_REQUIRED"),
            (
                json!([{ "name": "Big Name", "description": "x" }]),
                "APPLICATION_COMMAND_INVALID_NAME",
            ),
            (json!([{ "name": "a" }]), "BASE_TYPE_BAD_LENGTH"),
            (
                json!([{ "name": "a", "description": "x" }, { "name": "a", "description": "y" }]),
                "APPLICATION_COMMANDS_DUPLICATE_NAME",
            ),
            (
                json!([{ "name": "a", "description": "x", "type": 9 }]),
                "BASE_TYPE_CHOICES",
            ),
        ];
        for (list, code) in cases {
            let e = check_commands(list.as_array().unwrap_or(&Vec::new())).unwrap_err();
            assert!(e.body().to_string().contains(code), "{list}: {}", e.body());
        }
    }
}
