//! The `Event` trait every gateway event implements, and the
//! `DispatchEvent` trait of dispatch types the registry can decode.

use serde::de::DeserializeOwned;

use super::opcode::{EventType, OpCode};

/// Re-exported from [`crate::model`], where it lives as plain data on model
/// ids; `shardbus::gateway::DispatchMeta` stays a valid path.
pub use crate::model::DispatchMeta;

/// Anything a shard posts on the bus: dispatches, and lifecycle events.
///
/// The trait is what lets users add their own gateway events without string
/// maps: see [`DispatchEvent`].
pub trait Event: Send + Sync + 'static {
    /// The opcode of the payload this event came in.
    fn op(&self) -> OpCode;
    /// The dispatch type (`t`), or the empty type for non-dispatch events.
    fn event_type(&self) -> EventType;
}

/// A dispatch (op 0) payload type the event registry can decode.
///
/// Implemented by every model in [`crate::model`]; implement it for your own
/// type and register it (`register_event::<MyEvent>()`) to decode a dispatch
/// this library does not know, or to replace a built-in model.
///
/// # Examples
///
/// ```
/// use serde::Deserialize;
/// use shardbus::gateway::{DispatchEvent, DispatchMeta, Event, EventType, OpCode};
///
/// #[derive(Debug, Deserialize)]
/// struct AutoModerationActionExecution {
///     guild_id: shardbus::model::GuildId,
///     rule_id: String,
///     #[serde(skip)]
///     meta: DispatchMeta,
/// }
///
/// impl Event for AutoModerationActionExecution {
///     fn op(&self) -> OpCode { OpCode::Dispatch }
///     fn event_type(&self) -> EventType { Self::EVENT_TYPE }
/// }
///
/// impl DispatchEvent for AutoModerationActionExecution {
///     const EVENT_TYPE: EventType = EventType::from_static("AUTO_MODERATION_ACTION_EXECUTION");
///     fn set_meta(&mut self, meta: DispatchMeta) { self.meta = meta; }
/// }
/// ```
pub trait DispatchEvent: Event + DeserializeOwned {
    /// The dispatch name (`t`) this type decodes.
    const EVENT_TYPE: EventType;

    /// Receives the shard and sequence number of the dispatch after decoding.
    /// The default ignores them.
    fn set_meta(&mut self, meta: DispatchMeta) {
        let _ = meta;
    }
}
