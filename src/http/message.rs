//! Messages: create (with replies, embeds, allowed mentions and files),
//! edit, delete, reactions; and the reads bots use most.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use bytes::Bytes;
use serde::Serialize;

use super::client::{Client, Request, segment};
use super::error::HttpError;
use crate::model::{
    Channel, ChannelId, Embed, Guild, GuildId, Member, Message, MessageId, MessageReference,
    RoleId, User, UserId,
};

/// Which mentions in a message notify (Discord's `allowed_mentions`).
///
/// The default notifies nobody: a bot echoing user text cannot be made to
/// ping `@everyone`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AllowedMentions {
    /// Mention kinds parsed from the content: `"roles"`, `"users"`,
    /// `"everyone"`.
    pub parse: Vec<String>,
    /// Roles that may be notified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleId>,
    /// Users that may be notified.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<UserId>,
    /// Whether the author of the message replied to is notified.
    pub replied_user: bool,
}

/// A file sent with a message, as an attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    /// The file name Discord shows.
    pub filename: String,
    /// Its content type, if known (`image/png`).
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Bytes,
}

/// The JSON part of a message sent or edited.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct MessageBody {
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) content: Option<String>,
    /// Embeds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) embeds: Option<Vec<Embed>>,
    /// Which mentions notify.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) allowed_mentions: Option<AllowedMentions>,
    /// What it replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) message_reference: Option<MessageReference>,
    /// Text to speech.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub(crate) tts: bool,
    /// Message flags (ephemeral for interaction replies: 64).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) flags: Option<u64>,
    /// The attachments' metadata, one per file, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) attachments: Vec<AttachmentSlot>,
}

/// One attachment's entry in `payload_json`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct AttachmentSlot {
    /// Its index among the files.
    pub(crate) id: usize,
    /// Its file name.
    pub(crate) filename: String,
}

impl MessageBody {
    /// A request for this body (multipart if `files` is not empty).
    pub(crate) fn into_request(
        mut self,
        request: Request,
        files: Vec<FileUpload>,
    ) -> Result<Request, HttpError> {
        // Unset means Discord parses every mention: the default here
        // notifies nobody.
        self.allowed_mentions
            .get_or_insert_with(AllowedMentions::default);
        if files.is_empty() {
            return request.json(&self);
        }
        self.attachments = files
            .iter()
            .enumerate()
            .map(|(id, file)| AttachmentSlot {
                id,
                filename: file.filename.clone(),
            })
            .collect();
        let payload = serde_json::to_vec(&self).map_err(|e| HttpError::Build {
            route: request.route,
            source: Box::new(e),
        })?;
        let (body, content_type) = multipart(&payload, &files);
        Ok(request.body(body, content_type))
    }
}

/// A `multipart/form-data` body: `payload_json`, then `files[n]`.
pub(crate) fn multipart(payload_json: &[u8], files: &[FileUpload]) -> (Bytes, String) {
    // A boundary found in no part.
    let boundary = loop {
        let candidate = format!(
            "shardbus-{:016x}{:016x}",
            fastrand::u64(..),
            fastrand::u64(..)
        );
        let needle = candidate.as_bytes();
        let clashes = std::iter::once(payload_json)
            .chain(files.iter().map(|f| &f.data[..]))
            .any(|part| part.windows(needle.len()).any(|w| w == needle));
        if !clashes {
            break candidate;
        }
    };
    let mut out = Vec::with_capacity(
        payload_json.len() + files.iter().map(|f| f.data.len() + 200).sum::<usize>() + 200,
    );
    let mut part = |headers: &str, data: &[u8]| {
        out.extend_from_slice(format!("--{boundary}\r\n{headers}\r\n\r\n").as_bytes());
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    };
    part(
        "Content-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json",
        payload_json,
    );
    for (i, file) in files.iter().enumerate() {
        // Quotes and line breaks cannot end the header early.
        let name: String = file
            .filename
            .chars()
            .map(|c| {
                if matches!(c, '"' | '\r' | '\n' | '\\') {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let content_type = file
            .content_type
            .as_deref()
            .unwrap_or("application/octet-stream");
        part(
            &format!(
                "Content-Disposition: form-data; name=\"files[{i}]\"; filename=\"{name}\"\r\nContent-Type: {content_type}"
            ),
            &file.data,
        );
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        Bytes::from(out),
        format!("multipart/form-data; boundary={boundary}"),
    )
}

/// A boxed endpoint future.
type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, HttpError>> + Send + 'a>>;

/// `POST /channels/{channel_id}/messages`, built up and then awaited.
///
/// ```no_run
/// # async fn run(http: shardbus::http::Client, msg: std::sync::Arc<shardbus::model::MessageCreate>) -> Result<(), shardbus::http::HttpError> {
/// http.create_message(msg.channel_id).content("pong").reply_to(&msg).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
#[must_use = "a message is sent when awaited"]
pub struct CreateMessage<'a> {
    /// The client.
    client: &'a Client,
    /// The channel.
    channel: ChannelId,
    /// The JSON part.
    body: MessageBody,
    /// Files to attach.
    files: Vec<FileUpload>,
}

impl<'a> CreateMessage<'a> {
    /// The text (up to 2,000 characters).
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.body.content = Some(content.into());
        self
    }

    /// Adds an embed (up to 10).
    pub fn embed(mut self, embed: Embed) -> Self {
        self.body.embeds.get_or_insert_with(Vec::new).push(embed);
        self
    }

    /// Which mentions notify (by default, none).
    pub fn allowed_mentions(mut self, mentions: AllowedMentions) -> Self {
        self.body.allowed_mentions = Some(mentions);
        self
    }

    /// A reply to `message` (which need not exist any more).
    pub fn reply_to(mut self, message: &Message) -> Self {
        self.body.message_reference = Some(MessageReference {
            message_id: Some(message.id),
            channel_id: Some(message.channel_id),
            guild_id: message.guild_id,
            fail_if_not_exists: Some(false),
            ..MessageReference::default()
        });
        self
    }

    /// Text to speech.
    pub fn tts(mut self, tts: bool) -> Self {
        self.body.tts = tts;
        self
    }

    /// Attaches a file (sent as multipart).
    pub fn file(mut self, filename: impl Into<String>, data: impl Into<Bytes>) -> Self {
        self.files.push(FileUpload {
            filename: filename.into(),
            content_type: None,
            data: data.into(),
        });
        self
    }

    /// Attaches a prepared file.
    pub fn upload(mut self, file: FileUpload) -> Self {
        self.files.push(file);
        self
    }
}

impl<'a> IntoFuture for CreateMessage<'a> {
    type Output = Result<Message, HttpError>;
    type IntoFuture = Pending<'a, Message>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = Request::new(
                http::Method::POST,
                "POST /channels/{channel_id}/messages",
                format!("/channels/{}/messages", self.channel),
                self.channel.to_string(),
            );
            let request = self.body.into_request(request, self.files)?;
            self.client.send_json(request).await
        })
    }
}

/// `PATCH /channels/{channel_id}/messages/{message_id}`.
#[derive(Debug)]
#[must_use = "a message is edited when awaited"]
pub struct EditMessage<'a> {
    /// The client.
    client: &'a Client,
    /// The channel.
    channel: ChannelId,
    /// The message.
    message: MessageId,
    /// The new content and embeds.
    body: MessageBody,
}

impl EditMessage<'_> {
    /// New text.
    pub fn content(mut self, content: impl Into<String>) -> Self {
        self.body.content = Some(content.into());
        self
    }

    /// New embeds (replacing the old ones).
    pub fn embeds(mut self, embeds: Vec<Embed>) -> Self {
        self.body.embeds = Some(embeds);
        self
    }

    /// Which mentions in the new text notify (by default, none).
    pub fn allowed_mentions(mut self, mentions: AllowedMentions) -> Self {
        self.body.allowed_mentions = Some(mentions);
        self
    }
}

impl<'a> IntoFuture for EditMessage<'a> {
    type Output = Result<Message, HttpError>;
    type IntoFuture = Pending<'a, Message>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(async move {
            let request = Request::new(
                http::Method::PATCH,
                "PATCH /channels/{channel_id}/messages/{message_id}",
                format!("/channels/{}/messages/{}", self.channel, self.message),
                self.channel.to_string(),
            );
            let request = self.body.into_request(request, Vec::new())?;
            self.client.send_json(request).await
        })
    }
}

impl Client {
    /// Starts a message to `channel`; await it to send.
    pub fn create_message(&self, channel: ChannelId) -> CreateMessage<'_> {
        CreateMessage {
            client: self,
            channel,
            body: MessageBody::default(),
            files: Vec::new(),
        }
    }

    /// Starts an edit of `message`; await it to send.
    pub fn edit_message(&self, channel: ChannelId, message: MessageId) -> EditMessage<'_> {
        EditMessage {
            client: self,
            channel,
            message,
            body: MessageBody::default(),
        }
    }

    /// `DELETE /channels/{channel_id}/messages/{message_id}`.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn delete_message(
        &self,
        channel: ChannelId,
        message: MessageId,
    ) -> Result<(), HttpError> {
        let request = Request::new(
            http::Method::DELETE,
            "DELETE /channels/{channel_id}/messages/{message_id}",
            format!("/channels/{channel}/messages/{message}"),
            channel.to_string(),
        );
        self.send_empty(request).await
    }

    /// `PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me`:
    /// reacts with `emoji` (a unicode emoji, or `name:id` for a custom one).
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn create_reaction(
        &self,
        channel: ChannelId,
        message: MessageId,
        emoji: &str,
    ) -> Result<(), HttpError> {
        let route = "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me";
        self.own_reaction(http::Method::PUT, route, (channel, message), emoji)
            .await
    }

    /// `DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me`.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn delete_own_reaction(
        &self,
        channel: ChannelId,
        message: MessageId,
        emoji: &str,
    ) -> Result<(), HttpError> {
        let route = "DELETE /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me";
        self.own_reaction(http::Method::DELETE, route, (channel, message), emoji)
            .await
    }

    /// `GET /channels/{channel_id}`.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn channel(&self, channel: ChannelId) -> Result<Channel, HttpError> {
        let path = format!("/channels/{channel}");
        self.get("GET /channels/{channel_id}", path, channel.to_string())
            .await
    }

    /// `GET /guilds/{guild_id}`.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn guild(&self, guild: GuildId) -> Result<Guild, HttpError> {
        let path = format!("/guilds/{guild}");
        self.get("GET /guilds/{guild_id}", path, guild.to_string())
            .await
    }

    /// `GET /guilds/{guild_id}/members/{user_id}`.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn member(&self, guild: GuildId, user: UserId) -> Result<Member, HttpError> {
        let path = format!("/guilds/{guild}/members/{user}");
        self.get(
            "GET /guilds/{guild_id}/members/{user_id}",
            path,
            guild.to_string(),
        )
        .await
    }

    /// `GET /users/@me`: the bot's own user.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn current_user(&self) -> Result<User, HttpError> {
        self.get("GET /users/@me", "/users/@me".to_owned(), String::new())
            .await
    }

    /// A GET of `path` on `route`, decoded.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        route: &'static str,
        path: String,
        major: String,
    ) -> Result<T, HttpError> {
        self.send_json(Request::new(http::Method::GET, route, path, major))
            .await
    }

    /// A reaction of the bot's own, put or taken away.
    async fn own_reaction(
        &self,
        method: http::Method,
        route: &'static str,
        (channel, message): (ChannelId, MessageId),
        emoji: &str,
    ) -> Result<(), HttpError> {
        let path = format!(
            "/channels/{channel}/messages/{message}/reactions/{}/@me",
            segment(emoji)
        );
        // Putting and taking away share one bucket, and one queue: a
        // reaction added and then removed goes in that order.
        let request = Request::new(method, route, path, channel.to_string()).family(
            "own reactions /channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
        );
        self.send_empty(request).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn multipart_holds_the_payload_then_each_file_and_a_closing_boundary() {
        let files = vec![
            FileUpload {
                filename: "a\"b.txt".into(),
                content_type: Some("text/plain".into()),
                data: Bytes::from_static(b"hello"),
            },
            FileUpload {
                filename: "x.bin".into(),
                content_type: None,
                data: Bytes::from_static(&[0, 1, 2]),
            },
        ];
        let (body, content_type) = multipart(b"{\"content\":\"hi\"}", &files);
        let boundary = content_type
            .strip_prefix("multipart/form-data; boundary=")
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        let parts: Vec<&str> = text.split(&format!("--{boundary}")).collect();
        // Preamble, three parts, the closing "--\r\n".
        assert_eq!(parts.len(), 5, "{text}");
        assert!(parts[1].contains("name=\"payload_json\""));
        assert!(parts[1].ends_with("{\"content\":\"hi\"}\r\n"));
        assert!(parts[2].contains("name=\"files[0]\"; filename=\"a_b.txt\""));
        assert!(parts[2].contains("Content-Type: text/plain"));
        assert!(parts[2].ends_with("\r\n\r\nhello\r\n"));
        assert!(parts[3].contains("application/octet-stream"));
        assert_eq!(parts[4], "--\r\n");
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(segment("👍"), "%F0%9F%91%8D");
        assert_eq!(segment("blob:123"), "blob:123");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn a_message_notifies_nobody_unless_told() {
        let request = |body: MessageBody| {
            let request = Request::new(http::Method::POST, "POST /x", "/x".into(), "");
            let request = body.into_request(request, Vec::new()).unwrap();
            let (json, _) = request.body.unwrap();
            serde_json::from_slice::<serde_json::Value>(&json).unwrap()
        };
        let plain = request(MessageBody {
            content: Some("@everyone".into()),
            ..MessageBody::default()
        });
        assert_eq!(
            plain["allowed_mentions"],
            serde_json::json!({"parse": [], "replied_user": false})
        );
        let chosen = request(MessageBody {
            allowed_mentions: Some(AllowedMentions {
                parse: vec!["users".into()],
                ..AllowedMentions::default()
            }),
            ..MessageBody::default()
        });
        assert_eq!(
            chosen["allowed_mentions"]["parse"],
            serde_json::json!(["users"])
        );
    }

    #[test]
    fn the_json_part_leaves_out_what_was_not_set() {
        let body = MessageBody {
            content: Some("pong".into()),
            ..MessageBody::default()
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"content":"pong"}"#
        );
    }
}
