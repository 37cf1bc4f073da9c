//! Interactions and application commands: the initial response (reply,
//! defer, modal, ...), the original response's edit, follow-ups, and bulk
//! overwrites of the command list.
//!
//! Interaction endpoints are exempt from the global limit (Discord's rule);
//! the callback must come within 3 seconds of the interaction, so a handler
//! that may be slow defers first ([`InteractionResponse::Defer`]) and edits
//! the original response later.

use serde::Serialize;
use serde_json::{Value, json};

use super::client::{Client, Request, segment};
use super::error::HttpError;
use super::message::{AllowedMentions, FileUpload, MessageBody};
use crate::model::{
    ApplicationCommand, ApplicationId, Embed, GuildId, Interaction, InteractionId,
    InteractionToken, Message,
};

/// The `EPHEMERAL` message flag: only the invoking user sees the message.
pub const EPHEMERAL: u64 = 1 << 6;

/// The initial response to an interaction
/// (`POST /interactions/{id}/{token}/callback`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum InteractionResponse {
    /// Type 4: a message in reply.
    Message(InteractionMessage),
    /// Type 5: "thinking…"; the reply comes later as an edit of the
    /// original response.
    Defer {
        /// Whether the later reply is ephemeral.
        ephemeral: bool,
    },
    /// Type 6: for components, acknowledge now and edit the message later.
    DeferUpdate,
    /// Type 7: for components, edit the message the component is on.
    Update(InteractionMessage),
    /// Type 8: autocomplete choices (`name`, `value` pairs).
    Autocomplete(Vec<(String, Value)>),
    /// Type 9: a modal (its `custom_id`, `title` and `components` as
    /// Discord's JSON).
    Modal {
        /// The modal's id, sent back on submit.
        custom_id: String,
        /// Its title.
        title: String,
        /// Its components (action rows of text inputs).
        components: Value,
    },
}

/// A message sent as an interaction response or follow-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InteractionMessage {
    /// The text.
    pub content: Option<String>,
    /// Embeds.
    pub embeds: Vec<Embed>,
    /// Only the invoking user sees it.
    pub ephemeral: bool,
    /// Which mentions notify (by default, none).
    pub allowed_mentions: Option<AllowedMentions>,
}

impl InteractionMessage {
    /// A message with `content`.
    pub fn text(content: impl Into<String>) -> Self {
        Self {
            content: Some(content.into()),
            ..Self::default()
        }
    }

    /// The same, ephemeral.
    #[must_use]
    pub fn ephemeral(mut self) -> Self {
        self.ephemeral = true;
        self
    }

    /// As the JSON body of a message.
    fn body(&self) -> MessageBody {
        MessageBody {
            content: self.content.clone(),
            embeds: (!self.embeds.is_empty()).then(|| self.embeds.clone()),
            allowed_mentions: Some(self.allowed_mentions.clone().unwrap_or_default()),
            flags: self.ephemeral.then_some(EPHEMERAL),
            ..MessageBody::default()
        }
    }
}

/// The callback's JSON.
#[derive(Serialize)]
struct Callback {
    /// The response type.
    #[serde(rename = "type")]
    kind: u8,
    /// Its data, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Value>,
}

impl InteractionResponse {
    /// The callback body.
    fn callback(&self) -> Result<Callback, serde_json::Error> {
        let message = |m: &InteractionMessage| serde_json::to_value(m.body());
        Ok(match self {
            Self::Message(m) => Callback {
                kind: 4,
                data: Some(message(m)?),
            },
            Self::Defer { ephemeral } => Callback {
                kind: 5,
                data: ephemeral.then(|| json!({ "flags": EPHEMERAL })),
            },
            Self::DeferUpdate => Callback {
                kind: 6,
                data: None,
            },
            Self::Update(m) => Callback {
                kind: 7,
                data: Some(message(m)?),
            },
            Self::Autocomplete(choices) => Callback {
                kind: 8,
                data: Some(json!({
                    "choices": choices
                        .iter()
                        .map(|(name, value)| json!({ "name": name, "value": value }))
                        .collect::<Vec<_>>()
                })),
            },
            Self::Modal {
                custom_id,
                title,
                components,
            } => Callback {
                kind: 9,
                data: Some(json!({
                    "custom_id": custom_id, "title": title, "components": components
                })),
            },
        })
    }
}

impl Client {
    /// Responds to `interaction` (within 3 seconds of it).
    ///
    /// # Errors
    ///
    /// An [`HttpError`]: 404 (code 10062) if the interaction expired,
    /// 400 (code 40060) if it was already answered.
    pub async fn respond(
        &self,
        interaction: &Interaction,
        response: &InteractionResponse,
    ) -> Result<(), HttpError> {
        self.interaction_callback(interaction.id, &interaction.token, response)
            .await
    }

    /// `POST /interactions/{interaction_id}/{token}/callback`.
    ///
    /// # Errors
    ///
    /// As [`respond`](Self::respond).
    pub async fn interaction_callback(
        &self,
        id: InteractionId,
        token: &InteractionToken,
        response: &InteractionResponse,
    ) -> Result<(), HttpError> {
        const ROUTE: &str = "POST /interactions/{interaction_id}/{token}/callback";
        let body = response.callback().map_err(|e| HttpError::Build {
            route: ROUTE,
            source: Box::new(e),
        })?;
        let request = Request::new(
            http::Method::POST,
            ROUTE,
            format!("/interactions/{id}/{}/callback", segment(token.expose())),
            format!("{id}"),
        )
        .exempt()
        .json(&body)?;
        self.send_empty(request).await
    }

    /// `PATCH /webhooks/{application_id}/{token}/messages/@original`: the
    /// reply to a deferred (or answered) interaction.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn edit_original_response(
        &self,
        application: ApplicationId,
        token: &InteractionToken,
        message: &InteractionMessage,
    ) -> Result<Message, HttpError> {
        let request = Request::new(
            http::Method::PATCH,
            "PATCH /webhooks/{application_id}/{token}/messages/@original",
            format!(
                "/webhooks/{application}/{}/messages/@original",
                segment(token.expose())
            ),
            webhook_major(application, token),
        )
        .exempt()
        .json(&message.body())?;
        self.send_json(request).await
    }

    /// `POST /webhooks/{application_id}/{token}`: a follow-up message.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route.
    pub async fn followup(
        &self,
        application: ApplicationId,
        token: &InteractionToken,
        message: &InteractionMessage,
        files: Vec<FileUpload>,
    ) -> Result<Message, HttpError> {
        let request = Request::new(
            http::Method::POST,
            "POST /webhooks/{application_id}/{token}",
            format!("/webhooks/{application}/{}", segment(token.expose())),
            webhook_major(application, token),
        )
        .exempt();
        let request = message.body().into_request(request, files)?;
        self.send_json(request).await
    }

    /// `PUT /applications/{application_id}/commands`: replaces every global
    /// command with `commands`; returns them as registered.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the route (field errors for invalid
    /// commands).
    pub async fn set_global_commands(
        &self,
        application: ApplicationId,
        commands: &[ApplicationCommand],
    ) -> Result<Vec<ApplicationCommand>, HttpError> {
        let request = Request::new(
            http::Method::PUT,
            "PUT /applications/{application_id}/commands",
            format!("/applications/{application}/commands"),
            application.to_string(),
        )
        .json(&commands)?;
        self.send_json(request).await
    }

    /// `PUT /applications/{application_id}/guilds/{guild_id}/commands`:
    /// replaces `guild`'s commands with `commands`.
    ///
    /// # Errors
    ///
    /// As [`set_global_commands`](Self::set_global_commands).
    pub async fn set_guild_commands(
        &self,
        application: ApplicationId,
        guild: GuildId,
        commands: &[ApplicationCommand],
    ) -> Result<Vec<ApplicationCommand>, HttpError> {
        let request = Request::new(
            http::Method::PUT,
            "PUT /applications/{application_id}/guilds/{guild_id}/commands",
            format!("/applications/{application}/guilds/{guild}/commands"),
            guild.to_string(),
        )
        .json(&commands)?;
        self.send_json(request).await
    }
}

/// A webhook route's major parameter: its id and token. Only a hash of the
/// token is kept, so the limiter's keys hold no secret.
fn webhook_major(application: ApplicationId, token: &InteractionToken) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    token.expose().hash(&mut hasher);
    format!("{application}:{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn callbacks_have_discords_types_and_shapes() {
        let body = |r: InteractionResponse| serde_json::to_value(r.callback().unwrap()).unwrap();
        let reply = body(InteractionResponse::Message(
            InteractionMessage::text("pong").ephemeral(),
        ));
        assert_eq!(reply["type"], 4);
        assert_eq!(reply["data"]["content"], "pong");
        assert_eq!(reply["data"]["flags"], 64);
        assert_eq!(reply["data"]["allowed_mentions"]["parse"], json!([]));
        assert_eq!(
            body(InteractionResponse::Defer { ephemeral: false }),
            json!({"type": 5})
        );
        assert_eq!(
            body(InteractionResponse::Defer { ephemeral: true })["data"]["flags"],
            64
        );
        let choices = body(InteractionResponse::Autocomplete(vec![(
            "a".into(),
            json!(1),
        )]));
        assert_eq!(
            choices["data"]["choices"][0],
            json!({"name": "a", "value": 1})
        );
        let modal = body(InteractionResponse::Modal {
            custom_id: "m".into(),
            title: "T".into(),
            components: json!([]),
        });
        assert_eq!(
            (modal["type"].clone(), modal["data"]["title"].clone()),
            (json!(9), json!("T"))
        );
    }

    #[test]
    fn a_webhook_major_holds_no_token() {
        let token = InteractionToken::new("secret-token-text");
        let major = webhook_major(ApplicationId(1), &token);
        assert!(!major.contains("secret"), "{major}");
        assert_eq!(major, webhook_major(ApplicationId(1), &token));
    }
}
