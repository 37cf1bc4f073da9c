//! What the REST API remembers: the messages the bot created (bounded), their
//! files (bounded by bytes), application commands, and injected
//! interactions with their tokens.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use crate::ids::GuildId;
use crate::template::{DISCORD_EPOCH_MS, snowflake, unix_ms};

/// The most messages kept; older ones are forgotten (and then unknown).
const MAX_MESSAGES: usize = 65_536;

/// The most deleted ids remembered, so a deleted message stays unknown.
const MAX_DELETED: usize = 65_536;

/// The most file bytes kept for `/attachments/…`.
const MAX_FILE_BYTES: usize = 64 << 20;

/// The low 22 bits of the sim's REST snowflakes (worker 2, so they differ
/// from the generator's).
const REST_WORKER: u64 = 2 << 17;

/// A message the bot created.
#[derive(Clone, Debug)]
pub(crate) struct StoredMessage {
    /// Its channel.
    pub channel: u64,
    /// The Message object as the API returns it.
    pub json: Value,
    /// An ephemeral interaction response: never dispatched.
    pub ephemeral: bool,
}

/// An uploaded file.
#[derive(Clone, Debug)]
pub(crate) struct StoredFile {
    /// Its (sanitized) name.
    pub filename: String,
    /// The content type the client gave.
    pub content_type: Option<String>,
    /// Its bytes.
    pub data: Bytes,
}

/// A registered application command.
#[derive(Clone, Debug)]
pub(crate) struct StoredCommand {
    /// The object the client sent (to tell whether a later overwrite changed it).
    pub input: Value,
    /// The object as the API returns it.
    pub json: Value,
}

/// An injected interaction.
#[derive(Clone, Debug)]
pub(crate) struct InteractionState {
    /// Its token.
    pub token: String,
    /// Its type (2–5).
    pub kind: u8,
    /// Its guild.
    pub guild: GuildId,
    /// Its channel.
    pub channel: u64,
    /// When INTERACTION_CREATE was queued (since the sim started).
    pub dispatched_at: Duration,
    /// The type of the accepted callback.
    pub acked: Option<u8>,
    /// The response message (`@original`), once there is one.
    pub original: Option<u64>,
    /// The message a component interaction came from.
    pub target: Option<u64>,
    /// Follow-up message ids.
    pub followups: Vec<u64>,
    /// `interaction_metadata` for its messages.
    pub metadata: Value,
}

/// What a message id names in a channel.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    /// A message the bot created.
    Own(&'a mut StoredMessage),
    /// A message of someone else the sim may have sent (the generator's, a
    /// scripted dispatch's): its id's time is within the sim's lifetime.
    Other,
    /// Nothing.
    Unknown,
}

/// The REST API's memory.
#[derive(Debug)]
pub(crate) struct Store {
    /// When the sim started (Unix ms), for [`Lookup::Other`].
    started_unix_ms: u64,
    /// The last snowflake handed out.
    last_id: u64,
    /// Messages by id.
    messages: HashMap<u64, StoredMessage>,
    /// Their ids, oldest first.
    message_order: VecDeque<u64>,
    /// Deleted ids.
    deleted: HashSet<u64>,
    /// Deleted ids, oldest first.
    deleted_order: VecDeque<u64>,
    /// Files by attachment id.
    files: HashMap<u64, StoredFile>,
    /// Their ids, oldest first.
    file_order: VecDeque<u64>,
    /// The bytes in `files`.
    file_bytes: usize,
    /// The bot's reactions per message (own or not), as in the path
    /// (`👍` or `name:id`).
    reactions: HashMap<u64, Vec<String>>,
    /// Commands: `None` for global ones, `Some(guild)` for a guild's.
    pub commands: HashMap<Option<u64>, Vec<StoredCommand>>,
    /// Interactions by id.
    pub interactions: HashMap<u64, InteractionState>,
    /// Interaction ids by token.
    pub tokens: HashMap<String, u64>,
}

impl Store {
    /// An empty store for a sim starting now.
    pub(crate) fn new() -> Self {
        Self {
            started_unix_ms: unix_ms(),
            last_id: 0,
            messages: HashMap::new(),
            message_order: VecDeque::new(),
            deleted: HashSet::new(),
            deleted_order: VecDeque::new(),
            files: HashMap::new(),
            file_order: VecDeque::new(),
            file_bytes: 0,
            reactions: HashMap::new(),
            commands: HashMap::new(),
            interactions: HashMap::new(),
            tokens: HashMap::new(),
        }
    }

    /// A new snowflake for now, greater than every earlier one.
    pub(crate) fn next_id(&mut self) -> u64 {
        let id = snowflake(unix_ms(), REST_WORKER).max(self.last_id + 1);
        self.last_id = id;
        id
    }

    /// Keep `message` under `id`.
    pub(crate) fn insert_message(&mut self, id: u64, message: StoredMessage) {
        if self.messages.insert(id, message).is_none() {
            self.message_order.push_back(id);
        }
        while self.message_order.len() > MAX_MESSAGES {
            if let Some(old) = self.message_order.pop_front() {
                self.messages.remove(&old);
            }
        }
    }

    /// What `id` names in `channel`.
    pub(crate) fn lookup(&mut self, channel: u64, id: u64) -> Lookup<'_> {
        if self.deleted.contains(&id) {
            return Lookup::Unknown;
        }
        match self.messages.get_mut(&id) {
            Some(m) if m.channel == channel => Lookup::Own(m),
            Some(_) => Lookup::Unknown,
            None => {
                let at = (id >> 22) + DISCORD_EPOCH_MS;
                // A minute of slack for clocks and the generator's batching.
                let from = self.started_unix_ms.saturating_sub(60_000);
                if (from..=unix_ms() + 60_000).contains(&at) {
                    Lookup::Other
                } else {
                    Lookup::Unknown
                }
            }
        }
    }

    /// A stored message by id, in any channel.
    pub(crate) fn message(&self, id: u64) -> Option<&StoredMessage> {
        self.messages.get(&id)
    }

    /// A stored message by id, mutably.
    pub(crate) fn message_mut(&mut self, id: u64) -> Option<&mut StoredMessage> {
        self.messages.get_mut(&id)
    }

    /// The newest stored message in `channel`.
    pub(crate) fn latest_in(&self, channel: u64) -> Option<&StoredMessage> {
        self.message_order
            .iter()
            .rev()
            .filter_map(|id| self.messages.get(id))
            .find(|m| m.channel == channel && !m.ephemeral)
    }

    /// Forget message `id` (stored or not) and remember that it is gone.
    pub(crate) fn delete_message(&mut self, id: u64) -> Option<StoredMessage> {
        if self.deleted.insert(id) {
            self.deleted_order.push_back(id);
            while self.deleted_order.len() > MAX_DELETED {
                if let Some(old) = self.deleted_order.pop_front() {
                    self.deleted.remove(&old);
                }
            }
        }
        self.reactions.remove(&id);
        let m = self.messages.remove(&id);
        if m.is_some() {
            self.message_order.retain(|x| *x != id);
        }
        m
    }

    /// Keep an uploaded file under its attachment id.
    pub(crate) fn insert_file(&mut self, id: u64, file: StoredFile) {
        self.file_bytes += file.data.len();
        self.files.insert(id, file);
        self.file_order.push_back(id);
        while self.file_bytes > MAX_FILE_BYTES && self.file_order.len() > 1 {
            if let Some(old) = self.file_order.pop_front()
                && let Some(f) = self.files.remove(&old)
            {
                self.file_bytes -= f.data.len();
            }
        }
    }

    /// Add (`add`) or remove the bot's reaction `emoji` on message `id`;
    /// returns whether that changed anything.
    pub(crate) fn set_reaction(&mut self, id: u64, emoji: &str, add: bool) -> bool {
        if self.reactions.len() > MAX_MESSAGES && !self.reactions.contains_key(&id) {
            self.reactions.clear();
        }
        let list = self.reactions.entry(id).or_default();
        let at = list.iter().position(|e| e == emoji);
        let changed = match (at, add) {
            (None, true) => {
                list.push(emoji.to_owned());
                true
            }
            (Some(i), false) => {
                list.remove(i);
                true
            }
            _ => false,
        };
        if list.is_empty() {
            self.reactions.remove(&id);
        }
        changed
    }

    /// The bot's reactions on message `id`.
    pub(crate) fn reactions_of(&self, id: u64) -> &[String] {
        self.reactions.get(&id).map_or(&[], Vec::as_slice)
    }

    /// An uploaded file.
    pub(crate) fn file(&self, id: u64) -> Option<&StoredFile> {
        self.files.get(&id)
    }

    /// Drop interactions whose token expired `lifetime` ago (`now` is the
    /// time since the sim started).
    pub(crate) fn expire_interactions(&mut self, now: Duration, lifetime: Duration) {
        let tokens = &mut self.tokens;
        self.interactions.retain(|_, i| {
            let keep = now.saturating_sub(i.dispatched_at) < lifetime;
            if !keep {
                tokens.remove(&i.token);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn message(channel: u64) -> StoredMessage {
        StoredMessage {
            channel,
            json: json!({}),
            ephemeral: false,
        }
    }

    #[test]
    fn ids_increase_and_lookups_tell_own_other_and_unknown() {
        let mut s = Store::new();
        let a = s.next_id();
        let b = s.next_id();
        assert!(b > a);
        s.insert_message(a, message(7));
        assert!(matches!(s.lookup(7, a), Lookup::Own(_)));
        assert!(matches!(s.lookup(8, a), Lookup::Unknown));
        // A recent id the REST API did not create: someone else's message.
        assert!(matches!(s.lookup(7, b), Lookup::Other));
        assert!(matches!(s.lookup(7, 42), Lookup::Unknown));
        assert!(s.delete_message(a).is_some());
        assert!(s.delete_message(b).is_none());
        assert!(matches!(s.lookup(7, a), Lookup::Unknown));
        assert!(matches!(s.lookup(7, b), Lookup::Unknown));
    }

    #[test]
    fn reactions_change_once() {
        let mut s = Store::new();
        assert!(s.set_reaction(1, "x", true));
        assert!(!s.set_reaction(1, "x", true));
        assert_eq!(s.reactions_of(1), ["x".to_owned()]);
        assert!(s.set_reaction(1, "x", false));
        assert!(!s.set_reaction(1, "x", false));
        assert!(s.reactions_of(1).is_empty());
    }

    #[test]
    fn files_are_bounded_by_bytes() {
        let mut s = Store::new();
        let file = |n: usize| StoredFile {
            filename: "f".into(),
            content_type: None,
            data: Bytes::from(vec![0; n]),
        };
        s.insert_file(1, file(MAX_FILE_BYTES - 10));
        s.insert_file(2, file(20));
        assert!(s.file(1).is_none());
        assert!(s.file(2).is_some());
    }
}
