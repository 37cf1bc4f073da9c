//! A small command registry: declare slash commands with their options,
//! register them with one bulk overwrite at startup, and route each
//! `INTERACTION_CREATE` to its handler by name, with typed option access.
//!
//! Every kind of interaction is routed:
//! - application commands by the command's name ([`Commands::command`]);
//! - autocomplete by the command's name ([`Commands::autocomplete`]),
//!   answered with [`CommandContext::suggest`];
//! - components (buttons, selects) and modal submits by `custom_id`
//!   ([`Commands::component`], [`Commands::modal`]): a `custom_id` of
//!   `vote:42` goes to the handler of `vote`, which reads `42` with
//!   [`CommandContext::custom_id_arg`], so one handler serves every
//!   button of its kind.
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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::error::HttpError;
use super::interaction::{InteractionMessage, InteractionResponse};
use crate::bus::{BoxError, BoxFuture, Subscription, TypeMux};
use crate::model::{
    ApplicationCommand, ApplicationId, ChannelId, GuildId, InteractionCreate, InteractionId,
    InteractionType, Message, RoleId, UserId,
};

/// How long a handler may take before the registry defers for it: a
/// margin inside Discord's 3 seconds for the callback's own round trip.
/// It counts from the interaction's creation (its id's time), so time spent
/// waiting in a busy bus counts too.
pub const AUTO_DEFER: Duration = Duration::from_millis(2200);

/// Discord's limit for an interaction's first answer.
const INTERACTION_DEADLINE: Duration = Duration::from_secs(3);

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

/// A component or modal handler.
struct Route {
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
    /// Autocomplete handlers, by command name.
    autocompletes: HashMap<String, Arc<CommandFn>>,
    /// Component handlers, by `custom_id` (before any `:`).
    components: HashMap<String, Route>,
    /// Modal submit handlers, by `custom_id` (before any `:`).
    modals: HashMap<String, Route>,
    /// Declaration order, for registration.
    order: Vec<String>,
    /// When to defer for a handler that has not answered.
    auto_defer: Option<Duration>,
}

impl fmt::Debug for Commands {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Commands")
            .field("commands", &self.order)
            .field("autocompletes", &self.autocompletes.keys())
            .field("components", &self.components.keys())
            .field("modals", &self.modals.keys())
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

    /// Answers autocomplete for command `name`'s options with `handler`,
    /// which reads [`CommandContext::focused`] and answers with
    /// [`CommandContext::suggest`]. Autocomplete cannot be deferred.
    #[must_use]
    pub fn autocomplete<F, Fut>(mut self, name: impl Into<String>, handler: F) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        self.autocompletes.insert(name.into(), boxed(handler));
        self
    }

    /// Routes components whose `custom_id` is `id`, or starts with `id:`,
    /// to `handler`; with `deferred`, the interaction is acknowledged
    /// first (type 6: the component's message is edited later with
    /// [`CommandContext::update`]).
    #[must_use]
    pub fn component<F, Fut>(mut self, id: impl Into<String>, deferred: bool, handler: F) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let handler = boxed(handler);
        self.components
            .insert(id.into(), Route { handler, deferred });
        self
    }

    /// Routes modal submits whose `custom_id` is `id`, or starts with
    /// `id:`, to `handler`, which reads the fields with
    /// [`CommandContext::field`]; with `deferred`, it is deferred first.
    #[must_use]
    pub fn modal<F, Fut>(mut self, id: impl Into<String>, deferred: bool, handler: F) -> Self
    where
        F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
    {
        let handler = boxed(handler);
        self.modals.insert(id.into(), Route { handler, deferred });
        self
    }

    /// When to defer for a handler that has not answered, counted from the
    /// interaction's creation (`None`: never; [`AUTO_DEFER`] by default).
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
        let handler = boxed(handler);
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

    /// Routes every interaction posted on `bus` to its handler,
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

    /// The handler of `event`, whether to defer before it runs, and when
    /// to defer for it.
    fn route(
        &self,
        event: &InteractionCreate,
    ) -> Option<(&Arc<CommandFn>, bool, Option<Duration>)> {
        let by_id = |routes| by_custom_id(routes, event);
        match event.kind {
            InteractionType::ApplicationCommand => {
                let entry = self.entries.get(event.command_name()?)?;
                Some((&entry.handler, entry.deferred, self.auto_defer))
            }
            InteractionType::ApplicationCommandAutocomplete => {
                let handler = self.autocompletes.get(event.command_name()?)?;
                Some((handler, false, None))
            }
            InteractionType::MessageComponent => by_id(&self.components)
                .map(|route| (&route.handler, route.deferred, self.auto_defer)),
            InteractionType::ModalSubmit => {
                by_id(&self.modals).map(|route| (&route.handler, route.deferred, self.auto_defer))
            }
            _ => None,
        }
    }

    /// Starts the handler of `event`, if it has one.
    fn dispatch(&self, event: Arc<InteractionCreate>, http: Client) {
        let Some((handler, deferred, auto)) = self.route(&event) else {
            tracing::debug!(
                kind = ?event.kind,
                command = ?event.command_name(),
                custom_id = ?custom_id(&event),
                "interaction with no handler"
            );
            return;
        };
        let ctx = CommandContext {
            inner: Arc::new(Inner {
                interaction: event,
                http,
                state: tokio::sync::Mutex::new(Answer::None),
            }),
        };
        let handler = Arc::clone(handler);
        tokio::spawn(async move {
            if deferred && let Err(e) = ctx.defer().await {
                tracing::warn!(error = %e, "could not defer the interaction");
            }
            // The automatic defer runs beside the handler, never instead
            // of polling it: a handler may hold the answer's lock across a
            // callback when the time comes.
            let finished = CancellationToken::new();
            if let Some(after) = auto {
                let delay = defer_delay(ctx.interaction().id, after, SystemTime::now());
                tokio::spawn(auto_defer(ctx.clone(), delay, finished.clone()));
            }
            let result = handler(ctx.clone()).await;
            finished.cancel();
            if let Err(error) = result {
                let i = ctx.interaction();
                tracing::warn!(
                    kind = ?i.kind,
                    command = ?i.command_name(),
                    custom_id = ?custom_id(i),
                    %error,
                    "interaction handler failed"
                );
                ctx.report_failure().await;
            }
        });
    }
}

/// How long from `now` until `after` has passed since interaction `id` was
/// created (its snowflake's time): an interaction that waited in a busy
/// bus has less of Discord's 3 seconds left. An age beyond those 3 seconds
/// says the clocks disagree (or the token is spent already), and `after`
/// counts from now, as it does when the id's time is in the future.
fn defer_delay(id: InteractionId, after: Duration, now: SystemTime) -> Duration {
    let created = UNIX_EPOCH + Duration::from_millis(id.timestamp_ms());
    match now.duration_since(created) {
        Ok(age) if age <= INTERACTION_DEADLINE => after.saturating_sub(age),
        _ => after,
    }
}

/// Defers `ctx`'s interaction once `after` has passed, unless its handler
/// has finished (`finished`) or answered by then.
async fn auto_defer(ctx: CommandContext, after: Duration, finished: CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(after) => {}
        () = finished.cancelled() => return,
    }
    let mut state = ctx.inner.state.lock().await;
    // Looked at under the lock: a handler that finished meanwhile is
    // answered, or has failed and gets the error message instead.
    if finished.is_cancelled() {
        return;
    }
    if let Err(e) = ctx.defer_locked(&mut state).await {
        tracing::warn!(error = %e, "could not defer the interaction");
    }
}

/// `handler`, boxed.
fn boxed<F, Fut>(handler: F) -> Arc<CommandFn>
where
    F: Fn(CommandContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    Arc::new(move |ctx| Box::pin(handler(ctx)))
}

/// The route of `event`'s `custom_id` in `routes`: its own, else that of
/// what precedes its first `:`.
fn by_custom_id<'a>(
    routes: &'a HashMap<String, Route>,
    event: &InteractionCreate,
) -> Option<&'a Route> {
    let id = custom_id(event)?;
    let key = id.split_once(':').map_or(id, |(key, _)| key);
    routes.get(id).or_else(|| routes.get(key))
}

/// A component's or modal's `custom_id`.
fn custom_id(event: &InteractionCreate) -> Option<&str> {
    match event.kind {
        InteractionType::MessageComponent | InteractionType::ModalSubmit => {
            event.data.as_ref()?.get("custom_id")?.as_str()
        }
        _ => None,
    }
}

/// How far the interaction has been answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Not yet.
    None,
    /// Deferred with "thinking…": the reply edits the original response.
    Deferred,
    /// A component acknowledged (type 6): its message is edited later,
    /// and a reply is a follow-up.
    DeferredUpdate,
    /// Replied (or suggested, or a modal shown).
    Replied,
    /// The component's message updated (type 7).
    Updated,
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

/// A handler's view of its interaction: typed options, the component's or
/// modal's values, and the answers that respect the 3-second rule.
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

    /// The component's or modal's `custom_id`.
    pub fn custom_id(&self) -> Option<&str> {
        custom_id(&self.inner.interaction)
    }

    /// What follows the first `:` of the `custom_id` (`42` in `vote:42`).
    pub fn custom_id_arg(&self) -> Option<&str> {
        Some(self.custom_id()?.split_once(':')?.1)
    }

    /// A select menu's chosen values (empty for a button).
    pub fn values(&self) -> Vec<&str> {
        self.data_field("values")
            .and_then(Value::as_array)
            .map_or_else(Vec::new, |v| v.iter().filter_map(Value::as_str).collect())
    }

    /// The value a modal's text input `custom_id` was given.
    pub fn field(&self, custom_id: &str) -> Option<&str> {
        let rows = self.data_field("components")?.as_array()?;
        rows.iter()
            .flat_map(|row| {
                // Action rows hold the inputs; a label (type 18) holds one.
                let inner = row.get("components").and_then(Value::as_array);
                let single = row.get("component");
                inner.into_iter().flatten().chain(single)
            })
            .find(|input| input.get("custom_id").and_then(Value::as_str) == Some(custom_id))?
            .get("value")?
            .as_str()
    }

    /// The option being typed in, for autocomplete: its name and what has
    /// been typed so far.
    pub fn focused(&self) -> Option<(&str, &Value)> {
        let option = self
            .options()
            .iter()
            .find(|o| o.get("focused").and_then(Value::as_bool) == Some(true))?;
        Some((option.get("name")?.as_str()?, option.get("value")?))
    }

    /// `data.<name>`.
    fn data_field(&self, name: &str) -> Option<&Value> {
        self.inner.interaction.data.as_ref()?.get(name)
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

    /// Defers the response, unless already answered: "thinking…" (type 5)
    /// for a command or a modal, an acknowledgement (type 6) for a
    /// component, whose message [`update`](Self::update) then edits.
    /// Autocomplete cannot be deferred: this does nothing for it.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the callback.
    pub async fn defer(&self) -> Result<(), HttpError> {
        let mut state = self.inner.state.lock().await;
        self.defer_locked(&mut state).await
    }

    /// [`defer`](Self::defer), with the answer's lock held.
    async fn defer_locked(&self, state: &mut Answer) -> Result<(), HttpError> {
        let i = &self.inner.interaction;
        if *state != Answer::None || i.kind == InteractionType::ApplicationCommandAutocomplete {
            return Ok(());
        }
        let (response, next) = if i.kind == InteractionType::MessageComponent {
            (InteractionResponse::DeferUpdate, Answer::DeferredUpdate)
        } else {
            (
                InteractionResponse::Defer { ephemeral: false },
                Answer::Deferred,
            )
        };
        self.callback(&response).await?;
        *state = next;
        Ok(())
    }

    /// After a handler failed: tells the user, unless the interaction has
    /// its answer already. A deferred "thinking…" becomes the message;
    /// autocomplete gets no choices.
    async fn report_failure(&self) {
        let state = *self.inner.state.lock().await;
        let i = self.interaction();
        let sent = match state {
            Answer::None if i.kind == InteractionType::ApplicationCommandAutocomplete => {
                self.suggest(Vec::new()).await
            }
            Answer::None | Answer::Deferred => {
                let failed = InteractionMessage::text("Something went wrong.").ephemeral();
                self.reply(failed).await
            }
            Answer::DeferredUpdate | Answer::Replied | Answer::Updated => return,
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "could not tell the user the handler failed");
        }
    }

    /// Replies with a message: the initial response, or, once deferred
    /// (or replied), an edit of the original response; after a
    /// component's acknowledgement or update, a follow-up.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the callback, the edit or the follow-up.
    pub async fn reply(&self, message: InteractionMessage) -> Result<(), HttpError> {
        let mut state = self.inner.state.lock().await;
        let i = &self.inner.interaction;
        match *state {
            Answer::None => {
                self.callback(&InteractionResponse::Message(message))
                    .await?;
                *state = Answer::Replied;
            }
            Answer::Deferred | Answer::Replied => {
                self.inner
                    .http
                    .edit_original_response(i.application_id, &i.token, &message)
                    .await?;
                *state = Answer::Replied;
            }
            Answer::DeferredUpdate | Answer::Updated => {
                self.followup(message).await?;
            }
        }
        Ok(())
    }

    /// Edits the message the component is on: the initial response
    /// (type 7), or, once acknowledged, an edit of that message. For a
    /// command, an edit of the reply.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the callback or the edit.
    pub async fn update(&self, message: InteractionMessage) -> Result<(), HttpError> {
        let mut state = self.inner.state.lock().await;
        let i = &self.inner.interaction;
        if *state == Answer::None && i.kind == InteractionType::MessageComponent {
            self.callback(&InteractionResponse::Update(message)).await?;
        } else {
            self.inner
                .http
                .edit_original_response(i.application_id, &i.token, &message)
                .await?;
        }
        *state = Answer::Updated;
        Ok(())
    }

    /// Answers autocomplete with up to 25 `(name, value)` choices (the
    /// rest are dropped, as Discord allows 25); does nothing once
    /// answered.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the callback.
    pub async fn suggest(&self, mut choices: Vec<(String, Value)>) -> Result<(), HttpError> {
        let mut state = self.inner.state.lock().await;
        if *state != Answer::None {
            return Ok(());
        }
        choices.truncate(25);
        self.callback(&InteractionResponse::Autocomplete(choices))
            .await?;
        *state = Answer::Replied;
        Ok(())
    }

    /// Shows a modal (for a command or a component, before any other
    /// answer): its `custom_id`, `title`, and `components` as Discord's
    /// JSON; does nothing once answered.
    ///
    /// # Errors
    ///
    /// An [`HttpError`] from the callback.
    pub async fn modal(
        &self,
        custom_id: impl Into<String>,
        title: impl Into<String>,
        components: Value,
    ) -> Result<(), HttpError> {
        let mut state = self.inner.state.lock().await;
        if *state != Answer::None {
            return Ok(());
        }
        let response = InteractionResponse::Modal {
            custom_id: custom_id.into(),
            title: title.into(),
            components,
        };
        self.callback(&response).await?;
        *state = Answer::Replied;
        Ok(())
    }

    /// The initial callback with `response`.
    async fn callback(&self, response: &InteractionResponse) -> Result<(), HttpError> {
        let i = &self.inner.interaction;
        self.inner
            .http
            .interaction_callback(i.id, &i.token, response)
            .await
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

    /// A stand-in for Discord's API at the returned base: it reports each
    /// request (its line and body) and answers 204, holding the first
    /// interaction callback back for `hold`.
    async fn fake_api(
        hold: Duration,
    ) -> (
        String,
        tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    ) {
        use std::sync::atomic::{AtomicBool, Ordering};
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api/v10", listener.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let held = Arc::new(AtomicBool::new(false));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (tx, held) = (tx.clone(), Arc::clone(&held));
                tokio::spawn(async move {
                    let mut reader = tokio::io::BufReader::new(socket);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let mut length = 0;
                        loop {
                            let mut header = String::new();
                            reader.read_line(&mut header).await.unwrap();
                            if header == "\r\n" {
                                break;
                            }
                            if let Some((name, value)) = header.split_once(':')
                                && name.eq_ignore_ascii_case("content-length")
                            {
                                length = value.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).await.unwrap();
                        let line = line.trim_end().to_owned();
                        if line.contains("/callback") && !held.swap(true, Ordering::SeqCst) {
                            tokio::time::sleep(hold).await;
                        }
                        let _ = tx.send((line, String::from_utf8(body).unwrap()));
                        let answer = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                        reader.get_mut().write_all(answer).await.unwrap();
                    }
                });
            }
        });
        (base, rx)
    }

    /// A slash command `name`'s interaction.
    fn command(name: &str) -> Arc<InteractionCreate> {
        Arc::new(
            serde_json::from_value(json!({
                "id": "1", "application_id": "2", "type": 2, "token": "t", "version": 1,
                "data": {"id": "3", "name": name, "type": 1}
            }))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn the_automatic_defer_waits_beside_a_reply_in_flight() {
        // The reply's callback is still out when the automatic defer is
        // due: the defer must wait for it without stopping the handler.
        let (base, mut requests) = fake_api(Duration::from_millis(300)).await;
        let http = Client::new("token").unwrap().api_base(base);
        let (done, mut finished) = tokio::sync::mpsc::unbounded_channel();
        let commands = Commands::new()
            .auto_defer(Some(Duration::from_millis(20)))
            .command(
                ApplicationCommand::slash("hold", "Replies slowly"),
                move |ctx| {
                    let done = done.clone();
                    async move {
                        ctx.reply(InteractionMessage::text("here")).await?;
                        let _ = done.send(());
                        Ok(())
                    }
                },
            );
        commands.dispatch(command("hold"), http);
        tokio::time::timeout(Duration::from_secs(30), finished.recv())
            .await
            .expect("the reply finished")
            .unwrap();
        let (line, body) = requests.recv().await.unwrap();
        assert!(
            line.starts_with("POST /api/v10/interactions/1/t/callback"),
            "{line}"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["type"], 4, "the reply, not a defer, answered: {body}");
    }

    #[tokio::test]
    async fn a_failed_deferred_handler_turns_thinking_into_the_error() {
        let (base, mut requests) = fake_api(Duration::ZERO).await;
        let http = Client::new("token").unwrap().api_base(base);
        let commands = Commands::new()
            .deferred(ApplicationCommand::slash("broken", "Fails"), |_| async {
                Err::<(), BoxError>("no such thing".into())
            });
        commands.dispatch(command("broken"), http);
        let (line, body) = requests.recv().await.unwrap();
        assert!(
            line.starts_with("POST /api/v10/interactions/1/t/callback"),
            "{line}"
        );
        assert!(body.contains("\"type\":5"), "{body}");
        let (line, body) = requests.recv().await.unwrap();
        assert!(
            line.starts_with("PATCH /api/v10/webhooks/2/t/messages/@original"),
            "{line}"
        );
        assert!(body.contains("Something went wrong."), "{body}");
    }

    #[test]
    fn the_automatic_defer_counts_from_the_interactions_creation() {
        let after = Duration::from_millis(2200);
        // Whole milliseconds, as snowflakes hold them.
        let now = UNIX_EPOCH + Duration::from_millis(1_796_000_000_000);
        let made = |ago: Duration| {
            let ms = (now - ago).duration_since(UNIX_EPOCH).unwrap().as_millis();
            InteractionId((u64::try_from(ms).unwrap() - 1_420_070_400_000) << 22)
        };
        let ms = Duration::from_millis;
        assert_eq!(defer_delay(made(ms(0)), after, now), after);
        // Waited 2 s in a busy bus: 200 ms are left.
        assert_eq!(defer_delay(made(ms(2000)), after, now), ms(200));
        assert_eq!(defer_delay(made(ms(2900)), after, now), Duration::ZERO);
        // Older than Discord's 3 s, or made in the future: the clocks
        // disagree, and the delay counts from now.
        assert_eq!(defer_delay(made(ms(60_000)), after, now), after);
        assert_eq!(defer_delay(made(ms(0)), after, now - ms(5000)), after);
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
