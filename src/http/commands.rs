//! A small command registry: declare slash commands with their options,
//! register them with one bulk overwrite at startup, and route each
//! `INTERACTION_CREATE` to its handler by name, with typed option access.
//!
//! **The 3-second rule.** Discord drops an interaction that is not
//! answered within 3 seconds. A handler declared
//! [`deferred`](Commands::deferred) is deferred before it runs; any other
//! is deferred for it if it has not answered after [`AUTO_DEFER`]. Either
//! way [`CommandContext::reply`] then edits the deferred response, so the
//! handler's code is the same whether it was fast or slow.
//!
//! ```
//! use shardbus::http::commands::{CommandContext, Commands};
//! use shardbus::http::InteractionMessage;
//! use shardbus::model::{ApplicationCommand, CommandOption, CommandOptionType};
//!
//! async fn echo(ctx: CommandContext) -> Result<(), shardbus::BoxError> {
//!     let text = ctx.string("text").unwrap_or("nothing");
//!     ctx.reply(InteractionMessage::text(text)).await?;
//!     Ok(())
//! }
//!
//! let commands = Commands::new().command(
//!     ApplicationCommand::slash("echo", "Says it back").option(
//!         CommandOption::new(CommandOptionType::String, "text", "What to say").required(),
//!     ),
//!     echo,
//! );
//! assert_eq!(commands.definitions()[0].name, "echo");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::client::Client;
use super::error::HttpError;
use super::interaction::{InteractionMessage, InteractionResponse};
use crate::bus::{BoxError, BoxFuture, Subscription, TypeMux};
use crate::model::{
    ApplicationCommand, ApplicationId, ChannelId, GuildId, InteractionCreate, InteractionType,
    Message, RoleId, UserId,
};

/// How long a handler may take before the registry defers for it: a
/// margin inside Discord's 3 seconds for the callback's own round trip.
pub const AUTO_DEFER: Duration = Duration::from_millis(2200);

/// A command handler.
type CommandFn = dyn Fn(CommandContext) -> BoxFuture<'static, Result<(), BoxError>> + Send + Sync;

/// One declared command.
struct Entry {
    /// What is registered.
    definition: ApplicationCommand,
    /// What runs it.
    handler: Arc<CommandFn>,
    /// Whether it is deferred before it runs.
    deferred: bool,
}

/// Declared commands and their handlers; see the module docs.
#[derive(Default)]
pub struct Commands {
    /// By name.
    entries: HashMap<String, Entry>,
    /// Declaration order, for registration.
    order: Vec<String>,
    /// When to defer for a handler that has not answered.
    auto_defer: Option<Duration>,
}

impl fmt::Debug for Commands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Commands")
            .field("commands", &self.order)
            .finish_non_exhaustive()
    }
}

impl Commands {
    /// No commands; handlers are deferred for after [`AUTO_DEFER`].
    pub fn new() -> Self {
        Self {
            auto_defer: Some(AUTO_DEFER),
            ..Self::default()
        }
    }

    /// Declares `definition`, run by `handler`.
    #[must_use]
    pub fn command<F, Fut>(self, definition: ApplicationCommand, handler: F) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.add(definition, handler, false)
    }

    /// Declares a command that may be slow: it is deferred ("thinking…")
    /// before `handler` runs, and its reply edits that response.
    #[must_use]
    pub fn deferred<F, Fut>(self, definition: ApplicationCommand, handler: F) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.add(definition, handler, true)
    }

    /// When to defer for a handler that has not answered (`None`: never).
    #[must_use]
    pub fn auto_defer(mut self, after: Option<Duration>) -> Self {
        self.auto_defer = after;
        self
    }

    fn add<F, Fut>(mut self, definition: ApplicationCommand, handler: F, deferred: bool) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let name = definition.name.clone();
        let handler: Arc<CommandFn> = Arc::new(move |ctx| Box::pin(handler(ctx)));
        if self
            .entries
            .insert(
                name.clone(),
                Entry {
                    definition,
                    handler,
                    deferred,
                },
            )
            .is_none()
        {
            self.order.push(name);
        }
        self
    }

    /// The declared commands, in declaration order.
    pub fn definitions(&self) -> Vec<ApplicationCommand> {
        self.order
            .iter()
            .filter_map(|name| self.entries.get(name))
            .map(|entry| entry.definition.clone())
            .collect()
    }

    /// Registers every declared command with one bulk overwrite: globally,
    /// or in `guild` (which takes effect at once; global commands can take
    /// a while to show).
    ///
    /// # Errors
    ///
    /// An [`HttpError`], with field errors for an invalid command.
    pub async fn register(
        &self,
        http: &Client,
        application: ApplicationId,
        guild: Option<GuildId>,
    ) -> Result<Vec<ApplicationCommand>, HttpError> {
        let definitions = self.definitions();
        match guild {
            Some(guild) => {
                http.set_guild_commands(application, guild, &definitions)
                    .await
            }
            None => http.set_global_commands(application, &definitions).await,
        }
    }

    /// Routes every command interaction posted on `bus` to its handler,
    /// each in a task of its own; returns the subscription (dropping it
    /// stops the routing). A handler's error is logged and, if the
    /// interaction was not answered, answered with an ephemeral message
    /// saying it failed.
    pub fn attach(self, bus: &TypeMux, http: Client) -> Subscription {
        let commands = Arc::new(self);
        bus.add_handler(move |event: Arc<InteractionCreate>| {
            let (commands, http) = (Arc::clone(&commands), http.clone());
            async move {
                commands.dispatch(event, http);
            }
        })
    }

    /// Starts the handler of `event`'s command, if it is one of ours.
    fn dispatch(&self, event: Arc<InteractionCreate>, http: Client) {
        if event.kind != InteractionType::ApplicationCommand {
            return;
        }
        let Some(entry) = event.command_name().and_then(|name| self.entries.get(name)) else {
            tracing::debug!(command = ?event.command_name(), "interaction for no declared command");
            return;
        };
        let ctx = CommandContext {
            inner: Arc::new(Inner {
                interaction: event,
                http,
                state: tokio::sync::Mutex::new(Answer::None),
            }),
        };
        let handler = Arc::clone(&entry.handler);
        let (deferred, auto) = (entry.deferred, self.auto_defer);
        tokio::spawn(async move {
            if deferred && let Err(e) = ctx.defer().await {
                tracing::warn!(error = %e, "could not defer the interaction");
            }
            let run = handler(ctx.clone());
            tokio::pin!(run);
            let result = match auto {
                Some(after) => {
                    tokio::select! {
                        result = &mut run => result,
                        () = tokio::time::sleep(after) => {
                            if let Err(e) = ctx.defer().await {
                                tracing::warn!(error = %e, "could not defer the interaction");
                            }
                            run.await
                        }
                    }
                }
                None => run.await,
            };
            if let Err(error) = result {
                tracing::warn!(command = ?ctx.name(), %error, "command handler failed");
                let failed = InteractionMessage::text("Something went wrong.").ephemeral();
                if !ctx.answered().await {
                    let _ = ctx.reply(failed).await;
                }
            }
        });
    }
}

/// How far the interaction has been answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Not yet.
    None,
    /// Deferred: the reply edits the original response.
    Deferred,
    /// Replied.
    Replied,
}

/// What a handler's context holds.
#[derive(Debug)]
struct Inner {
    /// The interaction.
    interaction: Arc<InteractionCreate>,
    /// The client.
    http: Client,
    /// How far it has been answered; held while a callback is sent, so a
    /// reply and an automatic defer never both send one.
    state: tokio::sync::Mutex<Answer>,
}

/// A command handler's view of its interaction: typed options, and the
/// reply that respects the 3-second rule.
#[derive(Debug, Clone)]
pub struct CommandContext {
    /// Shared with the registry's automatic defer.
    inner: Arc<Inner>,
}

impl CommandContext {
    /// The interaction.
    pub fn interaction(&self) -> &InteractionCreate {
        &self.inner.interaction
    }

    /// The client.
    pub fn http(&self) -> &Client {
        &self.inner.http
    }

    /// The command's data, typed (options, resolved objects, target).
    pub fn data(&self) -> Option<crate::model::CommandData> {
        self.inner.interaction.command_data()
    }

    /// The command's name.
    pub fn name(&self) -> Option<&str> {
        self.inner.interaction.command_name()
    }

    /// The sub-command invoked, if any.
    pub fn subcommand(&self) -> Option<&str> {
        self.top_options()
            .iter()
            .find(|o| matches!(o.get("type").and_then(Value::as_u64), Some(1 | 2)))
            .and_then(|o| o.get("name")?.as_str())
    }

    /// The options given: the command's, or the invoked sub-command's.
    fn options(&self) -> &[Value] {
        let top = self.top_options();
        // One level of sub-command (type 1) or group (type 2, holding one
        // sub-command).
        let mut options = top;
        for _ in 0..2 {
            match options.first() {
                Some(o) if matches!(o.get("type").and_then(Value::as_u64), Some(1 | 2)) => {
                    options = o
                        .get("options")
                        .and_then(Value::as_array)
                        .map_or(&[][..], Vec::as_slice);
                }
                _ => break,
            }
        }
        options
    }

    /// `data.options`.
    fn top_options(&self) -> &[Value] {
        self.inner
            .interaction
            .data
            .as_ref()
            .and_then(|d| d.get("options"))
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    }

    /// The raw value of option `name`.
    pub fn option(&self, name: &str) -> Option<&Value> {
        self.options()
            .iter()
            .find(|o| o.get("name").and_then(Value::as_str) == Some(name))?
            .get("value")
    }

    /// A string option.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.option(name)?.as_str()
    }

    /// An integer option.
    pub fn integer(&self, name: &str) -> Option<i64> {
        self.option(name)?.as_i64()
    }

    /// A number option.
    pub fn number(&self, name: &str) -> Option<f64> {
        self.option(name)?.as_f64()
    }

    /// A boolean option.
    pub fn boolean(&self, name: &str) -> Option<bool> {
        self.option(name)?.as_bool()
    }

    /// A user option's id.
    pub fn user(&self, name: &str) -> Option<UserId> {
        self.snowflake(name).map(UserId)
    }

    /// A channel option's id.
    pub fn channel(&self, name: &str) -> Option<ChannelId> {
        self.snowflake(name).map(ChannelId)
    }

    /// A role option's id.
    pub fn role(&self, name: &str) -> Option<RoleId> {
        self.snowflake(name).map(RoleId)
    }

    /// An id option (sent as a string).
    fn snowflake(&self, name: &str) -> Option<u64> {
        self.string(name)?.parse().ok()
    }

    /// Whether the interaction has been answered or deferred.
    pub async fn answered(&self) -> bool {
        *self.inner.state.lock().await != Answer::None
    }

    /// Defers the response ("thinking…"), unless already answered.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the callback.
    pub async fn defer(&self) -> Result<(), HttpError> {
        let mut state = self.inner.state.lock().await;
        if *state != Answer::None {
            return Ok(());
        }
        let i = &self.inner.interaction;
        self.inner
            .http
            .interaction_callback(
                i.id,
                &i.token,
                &InteractionResponse::Defer { ephemeral: false },
            )
            .await?;
        *state = Answer::Deferred;
        Ok(())
    }

    /// Replies: the initial response, or, once deferred (or replied), an
    /// edit of the original response.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the callback or the edit.
    pub async fn reply(&self, message: InteractionMessage) -> Result<(), HttpError> {
        let mut state = self.inner.state.lock().await;
        let i = &self.inner.interaction;
        match *state {
            Answer::None => {
                self.inner
                    .http
                    .interaction_callback(i.id, &i.token, &InteractionResponse::Message(message))
                    .await?;
            }
            Answer::Deferred | Answer::Replied => {
                self.inner
                    .http
                    .edit_original_response(i.application_id, &i.token, &message)
                    .await?;
            }
        }
        *state = Answer::Replied;
        Ok(())
    }

    /// A follow-up message (after the reply).
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the request.
    pub async fn followup(&self, message: InteractionMessage) -> Result<Message, HttpError> {
        let i = &self.inner.interaction;
        self.inner
            .http
            .followup(i.application_id, &i.token, &message, Vec::new())
            .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn context(data: Value) -> CommandContext {
        let interaction: InteractionCreate = serde_json::from_value(json!({
            "id": "1", "application_id": "2", "type": 2, "token": "t", "version": 1,
            "data": data
        }))
        .unwrap();
        CommandContext {
            inner: Arc::new(Inner {
                interaction: Arc::new(interaction),
                http: Client::new("token").unwrap(),
                state: tokio::sync::Mutex::new(Answer::None),
            }),
        }
    }

    #[test]
    fn options_are_read_by_name_and_type() {
        let ctx = context(json!({"id": "3", "name": "echo", "type": 1, "options": [
            {"name": "text", "type": 3, "value": "hi"},
            {"name": "times", "type": 4, "value": 3},
            {"name": "loud", "type": 5, "value": true},
            {"name": "ratio", "type": 10, "value": 0.5},
            {"name": "who", "type": 6, "value": "80351110224678912"}
        ]}));
        assert_eq!(ctx.name(), Some("echo"));
        assert_eq!(ctx.string("text"), Some("hi"));
        assert_eq!(ctx.integer("times"), Some(3));
        assert_eq!(ctx.boolean("loud"), Some(true));
        assert_eq!(ctx.number("ratio"), Some(0.5));
        assert_eq!(ctx.user("who"), Some(UserId(80351110224678912)));
        assert_eq!(ctx.string("missing"), None);
        assert_eq!(ctx.integer("text"), None, "a string is not an integer");
        assert_eq!(ctx.subcommand(), None);
    }

    #[test]
    fn a_subcommands_options_are_its_own() {
        let ctx = context(json!({"id": "3", "name": "config", "type": 1, "options": [
            {"name": "set", "type": 1, "options": [{"name": "key", "type": 3, "value": "k"}]}
        ]}));
        assert_eq!(ctx.subcommand(), Some("set"));
        assert_eq!(ctx.string("key"), Some("k"));
        let grouped = context(json!({"id": "3", "name": "admin", "type": 1, "options": [
            {"name": "roles", "type": 2, "options": [
                {"name": "add", "type": 1, "options": [{"name": "role", "type": 8, "value": "42"}]}
            ]}
        ]}));
        assert_eq!(grouped.role("role"), Some(RoleId(42)));
    }

    #[test]
    fn a_redeclared_command_replaces_the_first_and_keeps_its_place() {
        async fn nothing(_: CommandContext) -> Result<(), BoxError> {
            Ok(())
        }
        let commands = Commands::new()
            .command(ApplicationCommand::slash("a", "first"), nothing)
            .command(ApplicationCommand::slash("b", "b"), nothing)
            .deferred(ApplicationCommand::slash("a", "second"), nothing);
        let defs = commands.definitions();
        let names: Vec<(&str, &str)> = defs
            .iter()
            .map(|d| (d.name.as_str(), d.description.as_str()))
            .collect();
        assert_eq!(names, [("a", "second"), ("b", "b")]);
    }
}
