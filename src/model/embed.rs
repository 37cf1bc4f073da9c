//! Rich embeds in messages. Every part is optional, as Discord sends them.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Rich content in a message: a link preview or a bot's card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Embed {
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Embed type (`rich`, `image`, `video`, `gifv`, `article`, `link`, ...).
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// URL of the title.
    #[serde(default)]
    pub url: Option<String>,
    /// Timestamp shown in the footer.
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    /// Colour as `0xRRGGBB`.
    #[serde(default)]
    pub color: Option<u32>,
    /// Footer.
    #[serde(default)]
    pub footer: Option<EmbedFooter>,
    /// Large image.
    #[serde(default)]
    pub image: Option<EmbedMedia>,
    /// Thumbnail.
    #[serde(default)]
    pub thumbnail: Option<EmbedMedia>,
    /// Video.
    #[serde(default)]
    pub video: Option<EmbedMedia>,
    /// Provider (site) of a link preview.
    #[serde(default)]
    pub provider: Option<EmbedProvider>,
    /// Author.
    #[serde(default)]
    pub author: Option<EmbedAuthor>,
    /// Fields.
    #[serde(default)]
    pub fields: Vec<EmbedField>,
}

/// An embed's footer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedFooter {
    /// Footer text.
    #[serde(default)]
    pub text: String,
    /// Icon URL.
    #[serde(default)]
    pub icon_url: Option<String>,
    /// Proxied icon URL.
    #[serde(default)]
    pub proxy_icon_url: Option<String>,
}

/// An embed's image, thumbnail or video.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedMedia {
    /// Source URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Proxied URL.
    #[serde(default)]
    pub proxy_url: Option<String>,
    /// Height in pixels.
    #[serde(default)]
    pub height: Option<u32>,
    /// Width in pixels.
    #[serde(default)]
    pub width: Option<u32>,
}

/// The site an embed comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedProvider {
    /// Site name.
    #[serde(default)]
    pub name: Option<String>,
    /// Site URL.
    #[serde(default)]
    pub url: Option<String>,
}

/// An embed's author line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedAuthor {
    /// Author name.
    #[serde(default)]
    pub name: String,
    /// URL of the name.
    #[serde(default)]
    pub url: Option<String>,
    /// Icon URL.
    #[serde(default)]
    pub icon_url: Option<String>,
    /// Proxied icon URL.
    #[serde(default)]
    pub proxy_icon_url: Option<String>,
}

/// A name/value field of an embed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedField {
    /// Field name.
    #[serde(default)]
    pub name: String,
    /// Field value.
    #[serde(default)]
    pub value: String,
    /// Whether it is shown inline.
    #[serde(default)]
    pub inline: bool,
}
