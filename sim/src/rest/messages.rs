//! Message bodies: reading a create or edit request ([`Draft`]), checking it
//! as Discord does (2000 characters, 10 embeds, not empty), and building the
//! Message object the API returns and MESSAGE_CREATE carries.

use serde_json::{Map, Value, json};

use super::error::RestError;
use crate::ids::GuildId;
use crate::template::{DISCORD_EPOCH_MS, iso8601, unix_ms};

/// The most characters of `content`.
const MAX_CONTENT: usize = 2000;

/// The most embeds per message.
const MAX_EMBEDS: usize = 10;

/// `EPHEMERAL`.
pub(crate) const FLAG_EPHEMERAL: u64 = 1 << 6;

/// `LOADING`: a deferred interaction response not yet edited.
pub(crate) const FLAG_LOADING: u64 = 1 << 7;

/// The flags a client may set when it creates a message: `SUPPRESS_EMBEDS`,
/// `EPHEMERAL` (interaction responses), `SUPPRESS_NOTIFICATIONS`,
/// `IS_COMPONENTS_V2`.
const CREATE_FLAGS: u64 = (1 << 2) | FLAG_EPHEMERAL | (1 << 12) | (1 << 15);

/// The flags a client may change when it edits one: `SUPPRESS_EMBEDS`.
const EDIT_FLAGS: u64 = 1 << 2;

/// A file of a multipart request.
#[derive(Clone, Debug)]
pub(crate) struct Upload {
    /// `n` of its part name `files[n]` (its position for other names).
    pub index: usize,
    /// Its part's `filename`.
    pub filename: Option<String>,
    /// Its part's `Content-Type`.
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: bytes::Bytes,
}

/// The message fields of a create or edit request. `None` means absent
/// (an edit keeps the old value); JSON `null` reads as empty.
#[derive(Clone, Debug, Default)]
pub(crate) struct Draft {
    /// `content`.
    pub content: Option<String>,
    /// `embeds`, each with `type` (`rich` unless given).
    pub embeds: Option<Vec<Value>>,
    /// `components`.
    pub components: Option<Vec<Value>>,
    /// `attachments`: metadata for new files, or which old ones an edit keeps.
    pub attachments: Option<Vec<Value>>,
    /// `flags`.
    pub flags: Option<u64>,
    /// `tts`.
    pub tts: bool,
    /// `nonce`.
    pub nonce: Option<Value>,
    /// `message_reference`.
    pub reference: Option<Value>,
    /// Whether `sticker_ids` or `poll` is given (they make a message non-empty).
    pub stickers_or_poll: bool,
    /// `allowed_mentions`.
    pub allowed_mentions: Option<Value>,
}

/// `Could not interpret …` for a value of the wrong type at `path`.
fn wrong_type(path: &str, code: &str, message: &str) -> RestError {
    RestError::field(path, code, message)
}

/// A string field (`null` reads as empty).
fn string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, RestError> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(String::new())),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(wrong_type(
            key,
            "BASE_TYPE_STRING",
            &format!("Could not interpret \"{v}\" as string."),
        )),
    }
}

/// An array field (`null` reads as empty).
fn array(body: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, RestError> {
    match body.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(Vec::new())),
        Some(Value::Array(a)) => Ok(Some(a.clone())),
        Some(_) => Err(wrong_type(
            key,
            "LIST_TYPE_CONVERT",
            "Only iterables may be used in a ListType",
        )),
    }
}

/// `Must be N or fewer in length.` at `path`.
pub(crate) fn too_long(path: &str, max: usize) -> RestError {
    RestError::field(
        path,
        "BASE_TYPE_MAX_LENGTH",
        format!("Must be {max} or fewer in length."),
    )
}

impl Draft {
    /// Read and check the message fields of `body` (a JSON object, or
    /// `null` for an empty body).
    pub(crate) fn parse(body: &Value) -> Result<Self, RestError> {
        let empty = Map::new();
        let body = match body {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => {
                return Err(RestError::field(
                    "",
                    "DICT_TYPE_CONVERT",
                    "Only dictionaries may be used in a DictType",
                ));
            }
        };
        let content = string(body, "content")?;
        if content
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_CONTENT)
        {
            return Err(too_long("content", MAX_CONTENT));
        }
        let embeds = match array(body, "embeds")? {
            Some(e) => Some(embeds(e)?),
            None => None,
        };
        let flags = match body.get("flags") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                wrong_type(
                    "flags",
                    "NUMBER_TYPE_COERCE",
                    &format!("Value \"{v}\" is not int."),
                )
            })?),
        };
        let tts = match body.get("tts") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(wrong_type(
                    "tts",
                    "BASE_TYPE_BOOLEAN",
                    "Must be either true or false.",
                ));
            }
        };
        let nonce = match body.get("nonce") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.chars().count() > 25 => return Err(too_long("nonce", 25)),
            Some(v @ (Value::String(_) | Value::Number(_))) => Some(v.clone()),
            Some(_) => {
                return Err(wrong_type(
                    "nonce",
                    "BASE_TYPE_STRING",
                    "Could not interpret nonce as string or integer.",
                ));
            }
        };
        let reference = match body.get("message_reference") {
            None | Some(Value::Null) => None,
            Some(r @ Value::Object(o)) if o.contains_key("message_id") => Some(r.clone()),
            Some(_) => {
                return Err(RestError::field(
                    "message_reference.message_id",
                    "BASE_TYPE_REQUIRED",
                    "This field is required",
                ));
            }
        };
        let non_empty = |k: &str| {
            body.get(k)
                .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        };
        Ok(Self {
            content,
            embeds,
            components: array(body, "components")?,
            attachments: array(body, "attachments")?,
            flags,
            tts,
            nonce,
            reference,
            stickers_or_poll: non_empty("sticker_ids") || non_empty("poll"),
            allowed_mentions: body.get("allowed_mentions").cloned(),
        })
    }

    /// Whether a new message from this draft with `files` files would be
    /// empty (no content, embeds, files, components, stickers or poll).
    pub(crate) fn is_empty(&self, files: usize) -> bool {
        self.content.as_deref().is_none_or(str::is_empty)
            && self.embeds.as_ref().is_none_or(Vec::is_empty)
            && self.components.as_ref().is_none_or(Vec::is_empty)
            && files == 0
            && !self.stickers_or_poll
    }

    /// The `attachments` metadata entry for file `index` (`{"id": index, …}`).
    pub(crate) fn attachment_meta(&self, index: usize) -> Option<&Value> {
        self.attachments.as_ref()?.iter().find(|a| {
            let id = &a["id"];
            id.as_u64() == Some(index as u64) || id.as_str() == Some(index.to_string().as_str())
        })
    }
}

/// Check embeds and give each its `type`.
fn embeds(list: Vec<Value>) -> Result<Vec<Value>, RestError> {
    if list.len() > MAX_EMBEDS {
        return Err(too_long("embeds", MAX_EMBEDS));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, e)| {
            let Value::Object(mut e) = e else {
                return Err(RestError::field(
                    &format!("embeds.{i}"),
                    "DICT_TYPE_CONVERT",
                    "Only dictionaries may be used in a DictType",
                ));
            };
            for (key, max) in [("title", 256), ("description", 4096)] {
                if e.get(key)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.chars().count() > max)
                {
                    return Err(too_long(&format!("embeds.{i}.{key}"), max));
                }
            }
            e.entry("type").or_insert_with(|| json!("rich"));
            Ok(Value::Object(e))
        })
        .collect()
}

/// Where a new message comes from.
#[derive(Clone, Debug)]
pub(crate) struct Origin {
    /// Its channel.
    pub channel: u64,
    /// The channel's guild.
    pub guild: Option<GuildId>,
    /// The author (the bot user).
    pub author: Value,
    /// The message type: 0, 19 (reply) or 20 (a command's response).
    pub kind: u8,
    /// For interaction responses: the application id and `interaction_metadata`.
    pub webhook: Option<(u64, Value)>,
}

/// The ISO 8601 time of a snowflake.
pub(crate) fn timestamp_of(id: u64) -> String {
    iso8601((id >> 22) + DISCORD_EPOCH_MS)
}

/// Replace what a URL path or a file name should not hold with `_`.
pub(crate) fn sanitize_filename(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        "unknown".to_owned()
    } else {
        s
    }
}

/// The Attachment object of an upload.
pub(crate) fn attachment_json(
    id: u64,
    filename: &str,
    upload: &Upload,
    meta: Option<&Value>,
    url: &str,
) -> Value {
    let mut a = json!({
        "id": id.to_string(),
        "filename": filename,
        "size": upload.data.len(),
        "url": url,
        "proxy_url": url,
    });
    if let Some(t) = &upload.content_type {
        a["content_type"] = json!(t);
    }
    if let Some(d) = meta
        .and_then(|m| m.get("description"))
        .and_then(Value::as_str)
    {
        a["description"] = json!(d);
    }
    if meta
        .and_then(|m| m.get("ephemeral"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        a["ephemeral"] = json!(true);
    }
    a
}

/// Whether `draft`'s content mentions everyone and `allowed_mentions` lets it.
fn mentions_everyone(draft: &Draft) -> bool {
    let content = draft.content.as_deref().unwrap_or_default();
    if !(content.contains("@everyone") || content.contains("@here")) {
        return false;
    }
    match &draft.allowed_mentions {
        None | Some(Value::Null) => true,
        Some(a) => a["parse"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x == "everyone")),
    }
}

/// The Message object of a new message `id`.
pub(crate) fn new_message(
    id: u64,
    origin: &Origin,
    draft: &Draft,
    attachments: Vec<Value>,
    referenced: Option<Value>,
    extra_flags: u64,
) -> Value {
    let mut m = json!({
        "id": id.to_string(),
        "type": origin.kind,
        "channel_id": origin.channel.to_string(),
        "author": origin.author,
        "content": draft.content.clone().unwrap_or_default(),
        "timestamp": timestamp_of(id),
        "edited_timestamp": Value::Null,
        "tts": draft.tts,
        "mention_everyone": mentions_everyone(draft),
        "mentions": [],
        "mention_roles": [],
        "attachments": attachments,
        "embeds": draft.embeds.clone().unwrap_or_default(),
        "pinned": false,
        "flags": (draft.flags.unwrap_or(0) & CREATE_FLAGS) | extra_flags,
        "components": draft.components.clone().unwrap_or_default(),
    });
    if let Some(g) = origin.guild {
        m["guild_id"] = json!(g.0.to_string());
    }
    if let Some(n) = &draft.nonce {
        m["nonce"] = n.clone();
    }
    if let Some(r) = &draft.reference {
        let as_id = |v: &Value| match v {
            Value::Number(n) => Value::String(n.to_string()),
            other => other.clone(),
        };
        let mut reference = json!({
            "type": r.get("type").and_then(Value::as_u64).unwrap_or(0),
            "message_id": as_id(&r["message_id"]),
            "channel_id": r.get("channel_id").map_or_else(|| json!(origin.channel.to_string()), as_id),
        });
        if let Some(g) = origin.guild {
            reference["guild_id"] = json!(g.0.to_string());
        }
        m["message_reference"] = reference;
        m["referenced_message"] = referenced.unwrap_or(Value::Null);
    }
    if let Some((app, metadata)) = &origin.webhook {
        m["webhook_id"] = json!(app.to_string());
        m["application_id"] = json!(app.to_string());
        m["interaction_metadata"] = metadata.clone();
    }
    m
}

/// Apply an edit to a stored Message object: content, embeds, components,
/// which attachments stay (`attachments`), new files, and `SUPPRESS_EMBEDS`.
/// `clear_flags` are removed (`LOADING` when a deferred response is edited).
///
/// # Errors
///
/// [`RestError::EmptyMessage`] if the result would be empty.
pub(crate) fn apply_edit(
    m: &mut Value,
    draft: &Draft,
    new_attachments: Vec<Value>,
    clear_flags: u64,
) -> Result<(), RestError> {
    let mut next = m.clone();
    if let Some(c) = &draft.content {
        next["content"] = json!(c);
    }
    if let Some(e) = &draft.embeds {
        next["embeds"] = json!(e);
    }
    if let Some(c) = &draft.components {
        next["components"] = json!(c);
    }
    let mut attachments: Vec<Value> = next["attachments"].as_array().cloned().unwrap_or_default();
    if let Some(keep) = &draft.attachments {
        let kept: Vec<String> = keep
            .iter()
            .filter_map(|a| match &a["id"] {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect();
        attachments.retain(|a| {
            a["id"]
                .as_str()
                .is_some_and(|id| kept.iter().any(|k| k == id))
        });
    }
    attachments.extend(new_attachments);
    next["attachments"] = json!(attachments);
    let old_flags = next["flags"].as_u64().unwrap_or(0);
    let mut flags = old_flags & !clear_flags;
    if let Some(f) = draft.flags {
        flags = (flags & !EDIT_FLAGS) | (f & EDIT_FLAGS);
    }
    next["flags"] = json!(flags);
    let is_empty = |key: &str| next[key].as_array().is_none_or(Vec::is_empty);
    if next["content"].as_str().is_none_or(str::is_empty)
        && is_empty("embeds")
        && is_empty("attachments")
        && is_empty("components")
        && flags & FLAG_LOADING == 0
    {
        return Err(RestError::EmptyMessage);
    }
    next["edited_timestamp"] = json!(iso8601(unix_ms()));
    *m = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn origin() -> Origin {
        Origin {
            channel: 5,
            guild: Some(GuildId(9)),
            author: json!({ "id": "1" }),
            kind: 0,
            webhook: None,
        }
    }

    #[test]
    fn drafts_are_checked_like_discord() {
        assert!(Draft::parse(&Value::Null).unwrap().is_empty(0));
        assert!(!Draft::parse(&Value::Null).unwrap().is_empty(1));
        assert!(Draft::parse(&json!({ "content": "" })).unwrap().is_empty(0));
        let long = "é".repeat(2001);
        let e = Draft::parse(&json!({ "content": long })).unwrap_err();
        assert_eq!(
            e.body()["errors"]["content"]["_errors"][0]["code"],
            "BASE_TYPE_MAX_LENGTH"
        );
        assert!(Draft::parse(&json!({ "content": "é".repeat(2000) })).is_ok());
        assert!(Draft::parse(&json!({ "content": 5 })).is_err());
        assert!(Draft::parse(&json!({ "embeds": vec![json!({}); 11] })).is_err());
        assert!(Draft::parse(&json!([])).is_err());
        let d = Draft::parse(&json!({ "embeds": [{ "title": "t" }] })).unwrap();
        assert_eq!(d.embeds.unwrap()[0]["type"], "rich");
    }

    #[test]
    fn a_reply_has_a_reference() {
        let d = Draft::parse(&json!({
            "content": "re", "message_reference": { "message_id": 77 }, "flags": 4 | 2
        }))
        .unwrap();
        let o = Origin {
            kind: 19,
            ..origin()
        };
        let m = new_message(1 << 22, &o, &d, vec![], None, 0);
        assert_eq!(m["type"], 19);
        assert_eq!(m["flags"], 4, "only settable flags");
        assert_eq!(
            m["message_reference"],
            json!({ "type": 0, "message_id": "77", "channel_id": "5", "guild_id": "9" })
        );
        assert_eq!(m["referenced_message"], Value::Null);
        assert_eq!(m["timestamp"], "2015-01-01T00:00:00.001000+00:00");
    }

    #[test]
    fn edits_replace_fields_and_keep_chosen_attachments() {
        let d = Draft::parse(&json!({ "content": "a" })).unwrap();
        let att = vec![json!({ "id": "10" }), json!({ "id": "11" })];
        let mut m = new_message(1 << 22, &origin(), &d, att, None, FLAG_LOADING);
        let edit =
            Draft::parse(&json!({ "content": "b", "attachments": [{ "id": "11" }] })).unwrap();
        apply_edit(&mut m, &edit, vec![json!({ "id": "12" })], FLAG_LOADING).unwrap();
        assert_eq!(m["content"], "b");
        assert_eq!(m["attachments"], json!([{ "id": "11" }, { "id": "12" }]));
        assert_eq!(m["flags"], 0);
        assert!(m["edited_timestamp"].is_string());
        let clear = Draft::parse(&json!({ "content": null, "attachments": [] })).unwrap();
        assert!(matches!(
            apply_edit(&mut m, &clear, vec![], 0),
            Err(RestError::EmptyMessage)
        ));
        assert_eq!(m["content"], "b", "a failed edit changes nothing");
    }

    #[test]
    fn everyone_mentions_follow_allowed_mentions() {
        let d = Draft::parse(&json!({ "content": "hi @everyone" })).unwrap();
        assert!(mentions_everyone(&d));
        let d =
            Draft::parse(&json!({ "content": "hi @here", "allowed_mentions": { "parse": [] } }))
                .unwrap();
        assert!(!mentions_everyone(&d));
    }
}
