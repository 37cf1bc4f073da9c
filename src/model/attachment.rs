//! Files attached to messages.

use serde::{Deserialize, Serialize};

use super::AttachmentId;

/// A file attached to a message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// The attachment's id.
    pub id: AttachmentId,
    /// File name.
    #[serde(default)]
    pub filename: String,
    /// Title of the file.
    #[serde(default)]
    pub title: Option<String>,
    /// Description (alt text).
    #[serde(default)]
    pub description: Option<String>,
    /// MIME type.
    #[serde(default)]
    pub content_type: Option<String>,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Source URL.
    #[serde(default)]
    pub url: String,
    /// Proxied URL.
    #[serde(default)]
    pub proxy_url: String,
    /// Image height in pixels.
    #[serde(default)]
    pub height: Option<u32>,
    /// Image width in pixels.
    #[serde(default)]
    pub width: Option<u32>,
    /// Whether the attachment is ephemeral.
    #[serde(default)]
    pub ephemeral: bool,
    /// Duration of a voice message, in seconds.
    #[serde(default)]
    pub duration_secs: Option<f64>,
    /// Base64 sampled waveform of a voice message.
    #[serde(default)]
    pub waveform: Option<String>,
    /// [Attachment flags](https://discord.com/developers/docs/resources/message#attachment-object-attachment-flags).
    #[serde(default)]
    pub flags: u64,
}
