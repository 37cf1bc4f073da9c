//! Commands back to shards over NATS request/reply: a worker asks, the
//! host that runs the shard sends it and answers.

use std::time::Duration;

use async_nats::Client;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::DEFAULT_PREFIX;
use crate::bus::BoxError;
use crate::gateway::{RequestGuildMembers, UpdatePresence, UpdateVoiceState};

/// A command for a shard to send on its gateway connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", content = "d", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ShardCommand {
    /// Op 3.
    UpdatePresence(UpdatePresence),
    /// Op 8.
    RequestGuildMembers(RequestGuildMembers),
    /// Op 4.
    UpdateVoiceState(UpdateVoiceState),
}

/// A host's answer.
#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    /// Why the command was not sent, if it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Why a command did not reach its shard.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandSendError {
    /// No host runs the shard (no responder on its subject).
    #[error("no host runs shard {0}")]
    NoHost(u32),
    /// No answer in time.
    #[error("shard {0}'s host did not answer in time")]
    Timeout(u32),
    /// The host refused it (the shard is not connected, the command is
    /// invalid or over the gateway's rate limit).
    #[error("shard {shard}'s host refused the command: {reason}")]
    Refused {
        /// The shard.
        shard: u32,
        /// What the host said.
        reason: String,
    },
    /// The request could not be made or its answer read.
    #[error("command to shard {shard}: {source}")]
    Transport {
        /// The shard.
        shard: u32,
        /// Why.
        source: BoxError,
    },
}

/// The subject of `shard`'s commands: `<prefix>.cmd.<shard>`.
pub fn command_subject(prefix: &str, shard: u32) -> String {
    format!("{prefix}.cmd.{shard}")
}

/// Sends commands to shards, wherever they run (a worker's side).
///
/// Cheap to clone; put it in the worker bus's state for handlers
/// (`State<ShardCommands>`).
#[derive(Debug, Clone)]
pub struct ShardCommands {
    client: Client,
    prefix: String,
    timeout: Duration,
}

impl ShardCommands {
    /// Commands over `client` under [`DEFAULT_PREFIX`], answered within
    /// 5 s.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            prefix: DEFAULT_PREFIX.to_owned(),
            timeout: Duration::from_secs(5),
        }
    }

    /// The same under another prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The same with another answer timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends `command` on `shard`, through the host that runs it.
    ///
    /// # Errors
    ///
    /// A [`CommandSendError`] saying why it was not sent.
    pub async fn send(&self, shard: u32, command: &ShardCommand) -> Result<(), CommandSendError> {
        let transport = |e: BoxError| CommandSendError::Transport { shard, source: e };
        let payload = serde_json::to_vec(command).map_err(|e| transport(Box::new(e)))?;
        let request = self
            .client
            .request(command_subject(&self.prefix, shard), Bytes::from(payload));
        let reply = match tokio::time::timeout(self.timeout, request).await {
            Err(_) => return Err(CommandSendError::Timeout(shard)),
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return Err(CommandSendError::NoHost(shard));
            }
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::TimedOut => {
                return Err(CommandSendError::Timeout(shard));
            }
            Ok(Err(e)) => return Err(transport(Box::new(e))),
            Ok(Ok(reply)) => reply,
        };
        let answer: Answer =
            serde_json::from_slice(&reply.payload).map_err(|e| transport(Box::new(e)))?;
        match answer.error {
            None => Ok(()),
            Some(reason) => Err(CommandSendError::Refused { shard, reason }),
        }
    }
}

/// The host's side, with the shard manager (feature `gateway`).
#[cfg(feature = "gateway")]
mod server {
    use std::time::Duration;

    use async_nats::Client;
    use bytes::Bytes;
    use futures_util::StreamExt;
    use tokio::task::JoinHandle;

    use crate::bus::BoxError;

    use super::{Answer, ShardCommand, command_subject};
    use crate::bridge::{NatsError, check_prefix};
    use crate::shard::Manager;

    /// Answers commands for the shards a host runs (`<prefix>.cmd.<shard>`
    /// for each shard of the manager's range); stops when dropped or closed.
    #[derive(Debug)]
    pub struct CommandServer {
        tasks: Vec<JoinHandle<()>>,
    }

    impl CommandServer {
        /// Serves commands for `manager`'s shards under `prefix`; the
        /// subscriptions are in place at the server when it returns.
        ///
        /// # Errors
        ///
        /// [`NatsError::Prefix`] for a bad prefix; [`NatsError::Subscribe`] if
        /// a subject cannot be subscribed to, or the server does not
        /// confirm the subscriptions.
        pub async fn serve(
            client: Client,
            prefix: &str,
            manager: &Manager,
        ) -> Result<Self, NatsError> {
            check_prefix(prefix)?;
            let mut tasks = Vec::new();
            for shard in manager.range() {
                let subject = command_subject(prefix, shard);
                let mut requests =
                    client
                        .subscribe(subject.clone())
                        .await
                        .map_err(|e| NatsError::Subscribe {
                            subject,
                            source: Box::new(e),
                        })?;
                let (client, manager) = (client.clone(), manager.clone());
                tasks.push(tokio::spawn(async move {
                    while let Some(request) = requests.next().await {
                        let Some(reply) = request.reply else {
                            continue;
                        };
                        let error = run(&manager, shard, &request.payload).await.err();
                        let answer = serde_json::to_vec(&Answer { error }).unwrap_or_default();
                        if let Err(e) = client.publish(reply, Bytes::from(answer)).await {
                            tracing::debug!(shard, error = %e, "could not answer a command");
                        }
                    }
                }));
            }
            // Live before this returns: a command sent right after must
            // not find "no host runs shard".
            live(&client).await?;
            Ok(Self { tasks })
        }

        /// Stops answering.
        pub fn close(self) {}
    }

    impl Drop for CommandServer {
        fn drop(&mut self) {
            for task in &self.tasks {
                task.abort();
            }
        }
    }

    /// Returns once the server has taken every subscription `client` made
    /// so far: it handles one connection's operations in order, so once a
    /// message `client` publishes to itself comes back, they are all in
    /// place. (`flush` only writes them to the socket.)
    async fn live(client: &Client) -> Result<(), NatsError> {
        let probe = client.new_inbox();
        let failed = |source: BoxError| NatsError::Subscribe {
            subject: probe.clone(),
            source,
        };
        let mut echo = client
            .subscribe(probe.clone())
            .await
            .map_err(|e| failed(Box::new(e)))?;
        client
            .publish(probe.clone(), Bytes::new())
            .await
            .map_err(|e| failed(Box::new(e)))?;
        client.flush().await.map_err(|e| failed(Box::new(e)))?;
        match tokio::time::timeout(Duration::from_secs(10), echo.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(failed("the connection closed".into())),
            Err(_) => Err(failed("the server did not answer within 10 s".into())),
        }
    }

    /// Sends the command in `payload` on `shard`; why not, if it was not.
    async fn run(manager: &Manager, shard: u32, payload: &[u8]) -> Result<(), String> {
        let command: ShardCommand =
            serde_json::from_slice(payload).map_err(|e| format!("not a shard command: {e}"))?;
        let handle = manager
            .shard(shard)
            .ok_or_else(|| format!("shard {shard} is not running here"))?;
        let sent = match &command {
            ShardCommand::UpdatePresence(p) => handle.update_presence(p).await,
            ShardCommand::RequestGuildMembers(r) => handle.request_guild_members(r).await,
            ShardCommand::UpdateVoiceState(v) => handle.update_voice_state(v).await,
        };
        sent.map_err(|e| e.to_string())
    }
}

#[cfg(feature = "gateway")]
pub use server::CommandServer;
