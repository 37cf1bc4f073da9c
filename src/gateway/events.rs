//! The built-in dispatch events: [`Event`] and [`DispatchEvent`] for every
//! dispatch type of [`crate::model`], and the table that registers them.
//!
//! The types themselves are plain data in `model`; this file is the one
//! place the dispatch name ↔ type table lives, beside the
//! [`EventRegistry`] that uses it. Keeping it here is what lets `model`
//! import nothing from the gateway (arikawa keeps its events in
//! `gateway/events.go` the same way).

use super::event::{DispatchEvent, DispatchMeta, Event};
use super::opcode::{EventType, OpCode};
use super::registry::EventRegistry;
use crate::model::{
    ChannelCreate, ChannelDelete, ChannelUpdate, GuildCreate, GuildDelete, GuildMemberAdd,
    GuildMemberRemove, GuildMemberUpdate, GuildMembersChunk, GuildRoleCreate, GuildRoleDelete,
    GuildRoleUpdate, GuildUpdate, InteractionCreate, MessageCreate, MessageDelete,
    MessageDeleteBulk, MessageReactionAdd, MessageReactionRemove, MessageUpdate, PresenceUpdate,
    RateLimited, Ready, Resumed, ThreadCreate, ThreadDelete, ThreadUpdate, TypingStart,
    VoiceServerUpdate, VoiceStateUpdate,
};

/// Implements [`Event`] and [`DispatchEvent`] for dispatch types with a
/// `meta: DispatchMeta` field, and writes [`register_builtin`] for them.
macro_rules! dispatch_events {
    ($($ty:ident => $name:ident,)*) => {
        /// Registers every built-in dispatch type.
        pub(crate) fn register_builtin(registry: &mut EventRegistry) {
            $(registry.register::<$ty>();)*
        }

        $(dispatch_event!($ty => $name);)*
    };
}

/// [`Event`] and [`DispatchEvent`] for one dispatch type.
macro_rules! dispatch_event {
    ($ty:ident => $name:ident) => {
        impl Event for $ty {
            fn op(&self) -> OpCode {
                OpCode::Dispatch
            }

            fn event_type(&self) -> EventType {
                <Self as DispatchEvent>::EVENT_TYPE
            }
        }

        impl DispatchEvent for $ty {
            // From the name, so a type registered here needs no constant
            // in `opcode.rs` (the role, thread and bulk-delete events).
            const EVENT_TYPE: EventType = EventType::from_static(stringify!($name));

            fn set_meta(&mut self, meta: DispatchMeta) {
                self.meta = meta;
            }
        }
    };
}

dispatch_events! {
    Ready => READY,
    Resumed => RESUMED,
    GuildCreate => GUILD_CREATE,
    GuildUpdate => GUILD_UPDATE,
    GuildDelete => GUILD_DELETE,
    ChannelCreate => CHANNEL_CREATE,
    ChannelUpdate => CHANNEL_UPDATE,
    ChannelDelete => CHANNEL_DELETE,
    GuildMemberAdd => GUILD_MEMBER_ADD,
    GuildMemberUpdate => GUILD_MEMBER_UPDATE,
    GuildMemberRemove => GUILD_MEMBER_REMOVE,
    GuildMembersChunk => GUILD_MEMBERS_CHUNK,
    GuildRoleCreate => GUILD_ROLE_CREATE,
    GuildRoleUpdate => GUILD_ROLE_UPDATE,
    GuildRoleDelete => GUILD_ROLE_DELETE,
    ThreadCreate => THREAD_CREATE,
    ThreadUpdate => THREAD_UPDATE,
    ThreadDelete => THREAD_DELETE,
    MessageCreate => MESSAGE_CREATE,
    MessageUpdate => MESSAGE_UPDATE,
    MessageDelete => MESSAGE_DELETE,
    MessageDeleteBulk => MESSAGE_DELETE_BULK,
    MessageReactionAdd => MESSAGE_REACTION_ADD,
    MessageReactionRemove => MESSAGE_REACTION_REMOVE,
    PresenceUpdate => PRESENCE_UPDATE,
    TypingStart => TYPING_START,
    InteractionCreate => INTERACTION_CREATE,
    VoiceStateUpdate => VOICE_STATE_UPDATE,
    VoiceServerUpdate => VOICE_SERVER_UPDATE,
    RateLimited => RATE_LIMITED,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_register_every_built_in_dispatch_type() {
        let registry = EventRegistry::with_defaults();
        for name in [
            EventType::READY,
            EventType::GUILD_MEMBERS_CHUNK,
            EventType::MESSAGE_CREATE,
            EventType::RATE_LIMITED,
            EventType::from_static("GUILD_ROLE_DELETE"),
            EventType::from_static("MESSAGE_DELETE_BULK"),
            EventType::from_static("THREAD_UPDATE"),
        ] {
            assert!(registry.contains(name.as_str()), "{name} is registered");
        }
        assert!(!registry.contains("AUTO_MODERATION_ACTION_EXECUTION"));
    }
}
