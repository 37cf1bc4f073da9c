//! One channel's bounded message history.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::model::{GuildId, Message, MessageId};

/// The last messages of one channel, oldest first, at most a bound.
#[derive(Debug, Default)]
pub(super) struct History {
    /// The channel's guild, from its messages (`None` for DMs); lets a
    /// removed guild take its histories along.
    pub(super) guild: Option<GuildId>,
    /// The messages, oldest first.
    messages: VecDeque<Arc<Message>>,
}

impl History {
    /// An empty history of a channel in `guild`.
    pub(super) fn new(guild: Option<GuildId>) -> Self {
        Self {
            guild,
            messages: VecDeque::new(),
        }
    }

    /// Appends `message`, evicting the oldest beyond `bound`. A message
    /// already kept (a replay after a resume) is replaced where it is.
    pub(super) fn push(&mut self, message: Message, bound: usize) {
        if let Some(kept) = self.find_mut(message.id) {
            *kept = Arc::new(message);
            return;
        }
        self.messages.push_back(Arc::new(message));
        while self.messages.len() > bound {
            self.messages.pop_front();
        }
    }

    /// Applies an edit to the kept message of the same id, if any (an edit
    /// of an older message is not added: it would break the order). The
    /// edit carries the whole message; what it leaves out (the author's
    /// member, the replied-to message) is kept from before.
    pub(super) fn edit(&mut self, edit: &Message) {
        let Some(kept) = self.find_mut(edit.id) else {
            return;
        };
        let mut merged = edit.clone();
        if merged.member.is_none() {
            merged.member.clone_from(&kept.member);
        }
        if merged.referenced_message.is_none() {
            merged
                .referenced_message
                .clone_from(&kept.referenced_message);
        }
        if merged.guild_id.is_none() {
            merged.guild_id = kept.guild_id;
        }
        *kept = Arc::new(merged);
    }

    /// Drops the messages whose ids are in `ids`.
    pub(super) fn remove(&mut self, ids: &[MessageId]) {
        self.messages.retain(|m| !ids.contains(&m.id));
    }

    /// The kept message `id`.
    pub(super) fn get(&self, id: MessageId) -> Option<Arc<Message>> {
        self.messages.iter().find(|m| m.id == id).cloned()
    }

    /// The kept messages, oldest first.
    pub(super) fn to_vec(&self) -> Vec<Arc<Message>> {
        self.messages.iter().cloned().collect()
    }

    /// How many messages are kept.
    pub(super) fn len(&self) -> usize {
        self.messages.len()
    }

    /// The kept message `id`, to replace.
    fn find_mut(&mut self, id: MessageId) -> Option<&mut Arc<Message>> {
        // Newest first: edits and replays are of recent messages.
        self.messages.iter_mut().rev().find(|m| m.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ChannelId;

    fn message(id: u64, content: &str) -> Message {
        Message {
            id: MessageId(id),
            channel_id: ChannelId(1),
            content: content.to_owned(),
            ..Message::default()
        }
    }

    fn ids(history: &History) -> Vec<u64> {
        history.to_vec().iter().map(|m| m.id.0).collect()
    }

    #[test]
    fn the_bound_evicts_the_oldest_and_a_replay_replaces_in_place() {
        let mut history = History::new(None);
        for id in 1..=5 {
            history.push(message(id, "a"), 3);
        }
        assert_eq!(ids(&history), [3, 4, 5]);
        history.push(message(4, "replayed"), 3);
        assert_eq!(ids(&history), [3, 4, 5]);
        assert_eq!(
            history.get(MessageId(4)).map(|m| m.content.clone()),
            Some("replayed".to_owned())
        );
    }

    #[test]
    fn an_edit_keeps_what_it_leaves_out_and_skips_unknown_messages() {
        let mut history = History::new(None);
        let mut first = message(1, "before");
        first.member = Some(crate::model::Member {
            nick: Some("n".to_owned()),
            ..Default::default()
        });
        history.push(first, 10);
        history.edit(&message(1, "after"));
        history.edit(&message(2, "never kept"));
        let kept = history.get(MessageId(1));
        assert_eq!(kept.as_ref().map(|m| m.content.as_str()), Some("after"));
        assert!(kept.is_some_and(|m| m.member.is_some()));
        assert_eq!(ids(&history), [1]);
        history.remove(&[MessageId(1)]);
        assert!(history.len() == 0);
    }
}
