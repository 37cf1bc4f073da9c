//! The generator's MESSAGE_CREATE template and the time helpers it needs
//! (snowflakes, ISO 8601 timestamps). Frames are written straight into a
//! buffer from pre-serialized pieces, so generating an event allocates
//! nothing per session.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut as _, BytesMut};
use serde_json::{Value, json};

use crate::frame::put_u64;
use crate::ids::Seq;
use crate::payloads::user_json;
use crate::world::World;

/// Milliseconds from the Unix epoch to the Discord epoch (2015-01-01).
pub(crate) const DISCORD_EPOCH_MS: u64 = 1_420_070_400_000;

/// What generated messages say.
const CONTENTS: &[&str] = &[
    "hello world",
    "has anyone tried the new build? it is *much* faster",
    "brb",
    "gg wp \u{1f389}",
    "Can someone review my PR? https://example.com/pull/42",
    "the deploy finished at 14:02, all shards reconnected cleanly",
    "`cargo test` passes locally but CI is red, any idea?",
    "\"quoted\" text with a \\ backslash and a\nnewline",
];

/// What one generated message is, independent of the session it goes to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct GeneratedMessage {
    /// Index into [`World::guilds`].
    pub guild: u32,
    /// Which non-bot member writes it.
    pub author: u32,
    /// Which content.
    pub content: u32,
    /// Whether it carries an embed.
    pub embed: bool,
    /// The message snowflake.
    pub id: u64,
}

/// The shared pieces of the generator's MESSAGE_CREATE frames.
#[derive(Debug)]
pub(crate) struct MessageTemplate {
    /// Pre-serialized contents (JSON strings with quotes).
    contents: Vec<String>,
    /// The pre-serialized embeds array used by every fourth message.
    embeds: String,
}

impl MessageTemplate {
    /// Build the template.
    pub(crate) fn new() -> Self {
        let contents = CONTENTS
            .iter()
            .map(|c| Value::String((*c).to_owned()).to_string())
            .collect();
        let embeds = json!([{
            "type": "rich",
            "title": "Build #1234 passed",
            "description": "All 312 tests passed in 41.2 s.",
            "url": "https://example.com/builds/1234",
            "color": 5_814_783,
            "fields": [
                { "name": "Branch", "value": "main", "inline": true },
                { "name": "Duration", "value": "41.2 s", "inline": true },
            ],
            "footer": { "text": "shardbus-sim CI" },
        }])
        .to_string();
        Self { contents, embeds }
    }

    /// How many distinct contents there are.
    pub(crate) fn content_count(&self) -> u32 {
        self.contents.len() as u32
    }

    /// Append the MESSAGE_CREATE frame of `m` with `seq` to `out`.
    /// `timestamp` is the pre-formatted ISO 8601 time; without
    /// `message_content` the content and embeds are empty, as for a bot
    /// without the MESSAGE_CONTENT intent.
    pub(crate) fn write(
        &self,
        out: &mut BytesMut,
        world: &World,
        m: &GeneratedMessage,
        seq: Seq,
        timestamp: &str,
        message_content: bool,
    ) {
        let Some(g) = world.guilds.get(m.guild as usize) else {
            return;
        };
        let authors = &g.author_fragments;
        let author = if authors.is_empty() {
            None
        } else {
            authors.get(m.author as usize % authors.len())
        };
        out.reserve(1200);
        out.put_slice(b"{\"op\":0,\"s\":");
        put_u64(out, seq);
        out.put_slice(
            b",\"t\":\"MESSAGE_CREATE\",\"d\":{\"type\":0,\"tts\":false,\"timestamp\":\"",
        );
        out.put_slice(timestamp.as_bytes());
        out.put_slice(b"\",\"pinned\":false,\"mentions\":[],\"mention_roles\":[],\"mention_everyone\":false,\"id\":\"");
        put_u64(out, m.id);
        out.put_slice(b"\",");
        out.put_slice(g.location_fragment.as_bytes());
        out.put_u8(b',');
        match author {
            Some(a) => out.put_slice(a.as_bytes()),
            None => {
                let bot = user_json(&world.bot).to_string();
                out.put_slice(b"\"author\":");
                out.put_slice(bot.as_bytes());
            }
        }
        out.put_slice(b",\"flags\":0,\"embeds\":");
        if m.embed && message_content {
            out.put_slice(self.embeds.as_bytes());
        } else {
            out.put_slice(b"[]");
        }
        out.put_slice(b",\"edited_timestamp\":null,\"content\":");
        if message_content {
            let c = &self.contents[m.content as usize % self.contents.len()];
            out.put_slice(c.as_bytes());
        } else {
            out.put_slice(b"\"\"");
        }
        out.put_slice(b",\"components\":[],\"attachments\":[],\"nonce\":\"");
        put_u64(out, m.id);
        out.put_slice(b"\"}}");
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A snowflake for `unix_ms` with `low` in its low 22 bits.
pub(crate) fn snowflake(unix_ms: u64, low: u64) -> u64 {
    (unix_ms.saturating_sub(DISCORD_EPOCH_MS) << 22) | (low & 0x3f_ffff)
}

/// ISO 8601 with microseconds and `+00:00`, as Discord formats timestamps.
pub(crate) fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let millis = unix_ms % 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}000+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), after Howard Hinnant's
/// `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::SimConfig;

    #[test]
    fn iso8601_known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso8601(DISCORD_EPOCH_MS),
            "2015-01-01T00:00:00.000000+00:00"
        );
        assert_eq!(
            iso8601(1_709_251_199_123),
            "2024-02-29T23:59:59.123000+00:00"
        );
    }

    #[test]
    fn generated_message_is_valid_json() {
        let config = SimConfig::default();
        let world = World::new(&config);
        let t = MessageTemplate::new();
        for (i, mc) in [(0u32, true), (3, true), (7, false)] {
            let mut out = BytesMut::new();
            let m = GeneratedMessage {
                guild: i,
                author: i,
                content: i,
                embed: i == 3,
                id: snowflake(unix_ms(), u64::from(i)),
            };
            t.write(&mut out, &world, &m, 9, &iso8601(unix_ms()), mc);
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["s"], 9);
            assert_eq!(v["t"], "MESSAGE_CREATE");
            assert_eq!(
                v["d"]["guild_id"],
                world.guilds[i as usize].id.0.to_string()
            );
            assert!(v["d"]["author"]["id"].is_string());
            assert_eq!(
                v["d"]["embeds"].as_array().unwrap().len(),
                usize::from(i == 3)
            );
            assert_eq!(v["d"]["content"].as_str().unwrap().is_empty(), !mc);
        }
    }
}
