//! Decoding every built-in dispatch type from realistic payloads (written
//! after the Discord docs' examples), and the leniency rules: string or
//! integer snowflakes, unknown fields ignored, unknown enum values kept,
//! `null` versus missing, secrets redacted in `Debug`.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use serde::de::DeserializeOwned;
use shardbus::gateway::{DispatchEvent, DispatchMeta, EventType, OpCode};
use shardbus::model::*;

/// Decodes a dispatch the way the gateway does: deserialize, then set meta.
fn decode<T: DispatchEvent>(d: &str) -> T {
    let mut event: T =
        serde_json::from_str(d).unwrap_or_else(|e| panic!("{}: {e}", std::any::type_name::<T>()));
    event.set_meta(DispatchMeta {
        shard: ShardId(3),
        seq: Seq(42),
        attempt: 0,
    });
    assert_eq!(event.op(), OpCode::Dispatch);
    assert_eq!(event.event_type(), T::EVENT_TYPE);
    event
}

fn fails<T: DeserializeOwned>(d: &str) -> bool {
    serde_json::from_str::<T>(d).is_err()
}

const MESSAGE_SMALL: &str = include_str!("../benches/fixtures/message_create_small.json");
const MESSAGE_LARGE: &str = include_str!("../benches/fixtures/message_create_large.json");
const GUILD_CREATE: &str = include_str!("../benches/fixtures/guild_create.json");

#[test]
fn ready() {
    let ready: Ready = decode(
        r#"{
            "v": 10,
            "user_settings": {},
            "user": {"verified": true, "username": "shardbus-test", "mfa_enabled": true,
                     "id": "1098765432109876543", "global_name": null, "flags": 0, "email": null,
                     "discriminator": "0", "bot": true, "avatar": null},
            "session_type": "normal",
            "session_id": "9a4d2b7c6e1f0a3b5c8d7e6f5a4b3c2d",
            "resume_gateway_url": "wss://gateway-us-east1-b.discord.gg",
            "relationships": [], "private_channels": [], "presences": [],
            "guilds": [{"unavailable": true, "id": "81384788765712384"},
                       {"unavailable": true, "id": 41771983423143937}],
            "guild_join_requests": [], "geo_ordered_rtc_regions": ["us-east", "us-central"],
            "shard": [2, 16],
            "application": {"id": "1098765432109876543", "flags": 8953856},
            "_trace": ["[\"gateway-prd-us-east1-b-1234\",{\"micros\":12345}]"]
        }"#,
    );
    assert_eq!(ready.v, 10);
    assert!(ready.user.bot);
    assert_eq!(
        ready.session_id.as_str(),
        "9a4d2b7c6e1f0a3b5c8d7e6f5a4b3c2d"
    );
    assert_eq!(
        ready.resume_gateway_url,
        "wss://gateway-us-east1-b.discord.gg"
    );
    assert_eq!(ready.shard, Some([2, 16]));
    assert_eq!(ready.application.id, ApplicationId(1098765432109876543));
    assert_eq!(
        ready.guilds,
        [
            UnavailableGuild {
                id: GuildId(81384788765712384),
                unavailable: true
            },
            UnavailableGuild {
                id: GuildId(41771983423143937),
                unavailable: true
            },
        ]
    );
    assert_eq!(
        ready.meta,
        DispatchMeta {
            shard: ShardId(3),
            seq: Seq(42),
            attempt: 0,
        }
    );
    assert_eq!(Ready::EVENT_TYPE, EventType::READY);
}

#[test]
fn resumed_accepts_trace_null_or_empty() {
    for d in [r#"{"_trace":["gateway-prd-1"]}"#, "null", "{}"] {
        let resumed: Resumed = decode(d);
        assert_eq!(resumed.meta.seq, Seq(42));
    }
}

#[test]
fn guild_create_fixture() {
    let guild: GuildCreate = decode(GUILD_CREATE);
    assert!(guild.is_available());
    assert_eq!(guild.name, "Rust Gateway Enthusiasts");
    assert_eq!(guild.member_count, Some(1234));
    assert_eq!(guild.members.len(), 36);
    assert!(
        guild
            .members
            .iter()
            .all(|m| m.user.is_some() && m.joined_at.is_some())
    );
    assert_eq!(guild.roles.len(), 16);
    assert_eq!(
        guild.roles[0].id.get(),
        guild.id.get(),
        "@everyone has the guild's id"
    );
    assert_eq!(guild.channels.len(), 22);
    assert!(
        guild
            .channels
            .iter()
            .any(|c| c.kind == ChannelType::GuildCategory)
    );
    assert_eq!(guild.threads.len(), 3);
    assert!(guild.threads.iter().all(|t| t.kind.is_thread()));
    assert_eq!(guild.presences.len(), 24);
    assert!(guild.presences.iter().all(|p| p.guild_id.is_none()));
    assert_eq!(guild.voice_states.len(), 5);
    assert_eq!(guild.verification_level, VerificationLevel::Medium);
    assert_eq!(guild.premium_tier, PremiumTier::Tier2);
    assert!(guild.joined_at.is_some());
    assert_eq!(guild.owner_id, guild.members[0].user_id().unwrap());
}

#[test]
fn guild_create_unavailable_and_update() {
    let outage: GuildCreate = decode(r#"{"id":"41771983423143937","unavailable":true}"#);
    assert!(!outage.is_available());
    assert_eq!(outage.id, GuildId(41771983423143937));
    assert!(outage.members.is_empty());

    let update: GuildUpdate = decode(
        r#"{"id":"41771983423143937","name":"Renamed","icon":null,"owner_id":"80351110224678912",
            "afk_timeout":900,"verification_level":1,"default_message_notifications":0,
            "explicit_content_filter":0,"roles":[],"emojis":[],"features":["NEWS"],"mfa_level":0,
            "system_channel_flags":5,"premium_tier":0,"preferred_locale":"de","nsfw_level":3}"#,
    );
    assert_eq!(update.name, "Renamed");
    assert_eq!(update.nsfw_level, NsfwLevel::AgeRestricted);
    assert_eq!(update.afk_timeout, 900);
    assert_eq!(update.into_inner().preferred_locale, "de");
}

#[test]
fn guild_delete_unavailable_or_removed() {
    let outage: GuildDelete = decode(r#"{"id":"41771983423143937","unavailable":true}"#);
    assert!(outage.unavailable);
    let left: GuildDelete = decode(r#"{"id":"41771983423143937"}"#);
    assert!(!left.unavailable);
}

#[test]
fn channel_create_update_delete() {
    let d = r#"{"id":"399942396007890945","type":2,"guild_id":"41771983423143937","name":"General",
                "position":5,"permission_overwrites":[],"nsfw":false,"bitrate":64000,"user_limit":0,
                "rtc_region":null,"parent_id":null,"rate_limit_per_user":0,"flags":0,
                "voice_background_display":null}"#;
    let created: ChannelCreate = decode(d);
    assert_eq!(created.kind, ChannelType::GuildVoice);
    assert_eq!(created.bitrate, Some(64000));
    assert_eq!(created.parent_id, None);
    let updated: ChannelUpdate = decode(d);
    assert_eq!(updated.channel, created.channel);
    let deleted: ChannelDelete = decode(d);
    assert_eq!(deleted.name.as_deref(), Some("General"));
    assert_eq!(ChannelDelete::EVENT_TYPE, EventType::CHANNEL_DELETE);
}

#[test]
fn guild_member_add_update_remove() {
    let add: GuildMemberAdd = decode(
        r#"{"user":{"username":"ferris","public_flags":0,"id":"80351110224678912","global_name":"Ferris",
                    "discriminator":"0","avatar":"8342729096ea3675442027381ff50dfe"},
            "roles":[],"premium_since":null,"pending":true,"nick":null,"mute":false,
            "joined_at":"2024-06-01T12:34:56.789000+00:00","guild_id":"41771983423143937",
            "flags":1,"deaf":false,"communication_disabled_until":null,"avatar":null}"#,
    );
    assert_eq!(add.guild_id, GuildId(41771983423143937));
    assert_eq!(add.display_name(), Some("Ferris")); // derefs to Member
    assert!(add.pending);
    assert!(fails::<GuildMemberAdd>(
        r#"{"user":{"id":"1","username":"x"},"roles":[]}"#
    ));

    let update: GuildMemberUpdate = decode(
        r#"{"user":{"username":"ferris","id":"80351110224678912","discriminator":"0","avatar":null},
            "roles":["41771983423143936","41771983423143938"],"premium_since":null,"pending":false,
            "nick":"crab","mute":false,"joined_at":"2024-06-01T12:34:56.789000+00:00",
            "guild_id":"41771983423143937","flags":0,"deaf":false,
            "communication_disabled_until":"2024-07-01T00:00:00+00:00","avatar":null,"banner":null}"#,
    );
    assert_eq!(update.nick.as_deref(), Some("crab"));
    assert_eq!(update.roles.len(), 2);
    assert!(update.communication_disabled_until.is_some());

    let remove: GuildMemberRemove = decode(
        r#"{"user":{"username":"ferris","id":"80351110224678912","discriminator":"0","avatar":null},
            "guild_id":"41771983423143937"}"#,
    );
    assert_eq!(remove.user.id, UserId(80351110224678912));
}

#[test]
fn guild_members_chunk() {
    let chunk: GuildMembersChunk = decode(
        r#"{"guild_id":"41771983423143937","chunk_index":1,"chunk_count":3,"nonce":"req-7",
            "not_found":["12345678901234567"],
            "members":[{"user":{"id":"80351110224678912","username":"a","discriminator":"0","avatar":null},
                        "roles":[],"joined_at":"2020-01-01T00:00:00+00:00","deaf":false,"mute":false,"flags":0}],
            "presences":[{"user":{"id":"80351110224678912"},"status":"online","activities":[],
                          "client_status":{"web":"online"}}]}"#,
    );
    assert_eq!((chunk.chunk_index, chunk.chunk_count), (1, 3));
    assert_eq!(chunk.not_found, [UserId(12345678901234567)]);
    assert_eq!(chunk.presences[0].status, Status::Online);
    assert_eq!(chunk.nonce.as_deref(), Some("req-7"));
}

#[test]
fn rate_limited_request_guild_members() {
    let limited: RateLimited = decode(
        r#"{"opcode":8,"retry_after":29.5,
            "meta":{"guild_id":"123","nonce":"abc","brand_new_field":true}}"#,
    );
    assert_eq!(limited.opcode, 8);
    assert_eq!(
        OpCode::from_code(limited.opcode),
        OpCode::RequestGuildMembers
    );
    assert_eq!(limited.retry_after, 29.5);
    assert_eq!(
        limited.retry_after_duration(),
        Duration::from_millis(29_500)
    );
    assert_eq!(
        limited.request,
        RateLimitMeta::RequestGuildMembers {
            guild_id: GuildId(123),
            nonce: Some("abc".into()),
        }
    );
    assert_eq!(
        limited.meta,
        DispatchMeta {
            shard: ShardId(3),
            seq: Seq(42),
            attempt: 0,
        }
    );

    // The nonce is optional, and an integer `retry_after` is read too.
    let limited: RateLimited =
        decode(r#"{"opcode":8,"retry_after":30,"meta":{"guild_id":41771983423143937}}"#);
    assert_eq!(limited.retry_after_duration(), Duration::from_secs(30));
    assert_eq!(
        limited.request,
        RateLimitMeta::RequestGuildMembers {
            guild_id: GuildId(41771983423143937),
            nonce: None,
        }
    );
}

#[test]
fn rate_limited_unknown_opcode_keeps_its_meta_raw() {
    let raw = r#"{"channel_id": "7", "sounds": [1, 2]}"#;
    let limited: RateLimited = decode(&format!(
        r#"{{"opcode":31,"retry_after":0.25,"meta":{raw}}}"#
    ));
    assert_eq!(limited.opcode, 31);
    assert_eq!(limited.retry_after_duration(), Duration::from_millis(250));
    assert_eq!(limited.request, RateLimitMeta::Unknown(raw.to_owned()));
}

#[test]
fn rate_limited_required_fields_and_odd_retry_after() {
    assert!(fails::<RateLimited>(
        r#"{"retry_after":1.0,"meta":{"guild_id":"1"}}"#
    ));
    assert!(fails::<RateLimited>(
        r#"{"opcode":8,"meta":{"guild_id":"1"}}"#
    ));
    assert!(fails::<RateLimited>(r#"{"opcode":8,"retry_after":1.0}"#));
    // Op 8's meta must name the guild.
    assert!(fails::<RateLimited>(
        r#"{"opcode":8,"retry_after":1.0,"meta":{"nonce":"abc"}}"#
    ));

    let mut limited: RateLimited =
        decode(r#"{"opcode":8,"retry_after":-1.0,"meta":{"guild_id":"1"}}"#);
    assert_eq!(limited.retry_after_duration(), Duration::ZERO);
    limited.retry_after = 1e300;
    assert_eq!(limited.retry_after_duration(), Duration::MAX);
}

#[test]
fn message_create_fixtures() {
    let small: MessageCreate = decode(MESSAGE_SMALL);
    assert!(small.guild_id.is_some());
    assert!(
        small.member.as_ref().unwrap().user.is_none(),
        "message members are partial"
    );
    assert_eq!(small.mentions.len(), 1);
    assert!(small.mentions[0].member.is_some());
    assert_eq!(small.embeds.len(), 1);
    assert_eq!(small.embeds[0].color, Some(5763719));
    assert!(matches!(small.nonce, Some(Nonce::String(_))));
    assert_eq!(small.edited_timestamp, None);

    let large: MessageCreate = decode(MESSAGE_LARGE);
    assert_eq!(large.kind, MessageType::Reply);
    assert_eq!(large.mentions.len(), 30);
    assert_eq!(large.embeds.len(), 9);
    assert!(
        large.embeds[..8]
            .iter()
            .all(|e| e.footer.is_some() && !e.fields.is_empty())
    );
    assert_eq!(large.attachments.len(), 8);
    assert_eq!(large.reactions.len(), 8);
    assert!(large.author.bot);
    let reference = large.message_reference.unwrap();
    let replied = large.referenced_message.clone().unwrap().unwrap();
    assert_eq!(reference.message_id, Some(replied.id));
    assert_eq!(large.meta.shard, ShardId(3));
}

#[test]
fn message_update_and_delete() {
    let update: MessageUpdate = decode(
        r#"{"type":0,"tts":false,"timestamp":"2024-05-05T10:00:00.000000+00:00","pinned":false,
            "mentions":[],"mention_roles":[],"mention_everyone":false,"id":"1237000000000000000",
            "flags":0,"embeds":[],"edited_timestamp":"2024-05-05T10:01:30.123000+00:00",
            "content":"fixed typo","components":[],"channel_id":"290926798999357250",
            "author":{"id":"53908099506183680","username":"mason","discriminator":"0","avatar":null},
            "attachments":[],"guild_id":"41771983423143937"}"#,
    );
    assert_eq!(update.content, "fixed typo");
    assert!(update.edited_timestamp.unwrap() > update.timestamp);

    let delete: MessageDelete = decode(
        r#"{"id":"1237000000000000000","channel_id":"290926798999357250","guild_id":"41771983423143937"}"#,
    );
    assert_eq!(delete.id, MessageId(1237000000000000000));
    let dm_delete: MessageDelete = decode(r#"{"id":"1","channel_id":"2"}"#);
    assert_eq!(dm_delete.guild_id, None);
}

#[test]
fn reactions_add_and_remove() {
    let add: MessageReactionAdd = decode(
        r#"{"user_id":"80351110224678912","type":0,"message_id":"1237000000000000000",
            "message_author_id":"53908099506183680",
            "member":{"user":{"id":"80351110224678912","username":"a","discriminator":"0","avatar":null},
                      "roles":[],"joined_at":"2020-01-01T00:00:00+00:00","deaf":false,"mute":false,"flags":0},
            "emoji":{"name":"🔥","id":null},"channel_id":"290926798999357250","burst":false,
            "guild_id":"41771983423143937","burst_colors":[]}"#,
    );
    assert_eq!(add.emoji.name.as_deref(), Some("🔥"));
    assert_eq!(add.kind, ReactionType::Normal);
    assert_eq!(add.message_author_id, Some(UserId(53908099506183680)));

    let remove: MessageReactionRemove = decode(
        r#"{"user_id":"80351110224678912","type":1,"message_id":"1237000000000000000",
            "emoji":{"name":"ferris","id":"41771983429993937","animated":true},
            "channel_id":"290926798999357250","burst":true,"guild_id":"41771983423143937"}"#,
    );
    assert_eq!(remove.kind, ReactionType::Burst);
    assert_eq!(remove.emoji.id, Some(EmojiId(41771983429993937)));
    assert!(remove.emoji.animated);
}

#[test]
fn presence_update_with_partial_user() {
    let p: PresenceUpdate = decode(
        r#"{"user":{"id":"80351110224678912","username":"ferris","avatar":null},
            "status":"idle","guild_id":"41771983423143937",
            "client_status":{"mobile":"idle"},
            "activities":[{"type":2,"name":"Spotify","id":"spotify:1","created_at":1717000000000,
                           "details":"Crab Rave","state":"Noisestorm","flags":48,
                           "timestamps":{"start":1717000000000,"end":1717000180000}}]}"#,
    );
    assert_eq!(p.user.username.as_deref(), Some("ferris"));
    assert_eq!(p.user.discriminator, None);
    assert_eq!(p.status, Status::Idle);
    assert_eq!(p.activities[0].kind, ActivityType::Listening);
    assert_eq!(p.activities[0].timestamps.unwrap().end, Some(1717000180000));
}

#[test]
fn typing_start() {
    let t: TypingStart = decode(
        r#"{"user_id":"80351110224678912","timestamp":1717171717,"channel_id":"290926798999357250",
            "guild_id":"41771983423143937",
            "member":{"user":{"id":"80351110224678912","username":"a","discriminator":"0","avatar":null},
                      "roles":[],"joined_at":"2020-01-01T00:00:00+00:00","deaf":false,"mute":false,"flags":0}}"#,
    );
    assert_eq!(t.timestamp, 1717171717);
    assert!(t.member.is_some());
    let dm: TypingStart = decode(r#"{"user_id":1,"timestamp":1,"channel_id":2}"#);
    assert_eq!(dm.guild_id, None);
}

const INTERACTION: &str = r#"{
    "type": 2,
    "token": "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQtdG9rZW4",
    "member": {
        "user": {"id": "53908099506183680", "username": "mason", "avatar": "a_d5efa99b3eeaa7dd43acca82f5692432",
                 "discriminator": "0", "public_flags": 131141},
        "roles": ["539082325061763072"], "premium_since": null, "permissions": "2147483647",
        "pending": false, "nick": null, "mute": false, "joined_at": "2017-03-13T19:19:14.040000+00:00",
        "is_pending": false, "deaf": false, "flags": 0
    },
    "id": "786008729715212338",
    "guild_id": "290926798626357999",
    "app_permissions": "442368",
    "guild_locale": "en-US",
    "locale": "en-US",
    "context": 0,
    "authorizing_integration_owners": {"0": "290926798626357999"},
    "entitlements": [],
    "data": {
        "options": [{"type": 3, "name": "cardname", "value": "The Gitrog Monster"}],
        "type": 1, "name": "cardsearch", "id": "771825006014889984"
    },
    "channel_id": "645027906669510667",
    "channel": {"id": "645027906669510667", "type": 0, "name": "bots", "guild_id": "290926798626357999"},
    "application_id": "775799577604522054",
    "version": 1
}"#;

#[test]
fn interaction_create() {
    let i: InteractionCreate = decode(INTERACTION);
    assert_eq!(i.kind, InteractionType::ApplicationCommand);
    assert_eq!(i.command_name(), Some("cardsearch"));
    assert_eq!(i.custom_id(), None);
    assert_eq!(i.author_id(), Some(UserId(53908099506183680)));
    assert!(
        i.member
            .as_ref()
            .unwrap()
            .permissions
            .unwrap()
            .contains(Permissions::ADMINISTRATOR)
    );
    assert_eq!(i.context, Some(InteractionContextType::Guild));
    assert_eq!(
        i.token.expose(),
        "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXQtdG9rZW4"
    );
    assert_eq!(i.channel.as_ref().unwrap().kind, ChannelType::GuildText);
}

/// An interaction of `kind` with `data`.
fn interaction(kind: u8, data: serde_json::Value) -> Interaction {
    serde_json::from_value(serde_json::json!({
        "id": "1", "application_id": "2", "type": kind, "token": "t", "version": 1, "data": data
    }))
    .unwrap()
}

#[test]
fn interaction_data_is_typed_by_kind() {
    let command = decode::<InteractionCreate>(INTERACTION);
    let data = command.command_data().unwrap();
    assert_eq!(data.name, "cardsearch");
    assert_eq!(data.kind, CommandType::ChatInput);

    // Autocomplete: the option being typed, inside a sub-command.
    let auto = interaction(
        4,
        serde_json::json!({"id": "3", "name": "card", "type": 1, "options": [
            {"name": "find", "type": 1, "options": [
                {"name": "set", "type": 3, "value": "alpha"},
                {"name": "name", "type": 3, "value": "bla", "focused": true}
            ]}
        ]}),
    );
    let data = auto.command_data().unwrap();
    assert_eq!(data.focused().map(|o| o.name.as_str()), Some("name"));
    assert_eq!(data.option("set").and_then(|v| v.as_str()), Some("alpha"));

    // A user command's target.
    let user = interaction(
        2,
        serde_json::json!({"id": "3", "name": "High five", "type": 2, "target_id": "80351110224678912"}),
    );
    let data = user.command_data().unwrap();
    assert_eq!(data.target_user(), Some(UserId(80351110224678912)));
    assert_eq!(data.target_message(), None);

    // A select menu and a modal.
    let select = interaction(
        3,
        serde_json::json!({"custom_id": "class", "component_type": 3, "values": ["mage"]}),
    );
    let data = select.component_data().unwrap();
    assert_eq!(
        (data.custom_id.as_str(), data.values.as_slice()),
        ("class", &["mage".to_owned()][..])
    );
    assert!(select.command_data().is_none());
    let modal = interaction(
        5,
        serde_json::json!({"custom_id": "feedback", "components": [{"type": 1, "components": []}]}),
    );
    assert_eq!(modal.modal_data().unwrap().components.len(), 1);
    assert!(modal.component_data().is_none());
}

#[test]
fn interaction_and_voice_server_tokens_are_redacted_in_debug() {
    let i: InteractionCreate = decode(INTERACTION);
    for text in [
        format!("{i:?}"),
        format!("{i:#?}"),
        format!("{:?}", i.interaction),
    ] {
        assert!(!text.contains("aW50ZXJhY3Rpb24"), "{text}");
        assert!(text.contains("<redacted>"));
        assert!(text.contains("cardsearch"), "other fields are still shown");
    }

    let v: VoiceServerUpdate = decode(
        r#"{"token":"my_voice_token_e4f1","guild_id":"41771983423143937",
            "endpoint":"sweetwater-12345.discord.media:2048"}"#,
    );
    assert_eq!(v.token.expose(), "my_voice_token_e4f1");
    assert_eq!(
        v.endpoint.as_deref(),
        Some("sweetwater-12345.discord.media:2048")
    );
    let text = format!("{v:?}");
    assert!(!text.contains("my_voice_token"), "{text}");
    assert!(text.contains("sweetwater"));

    let reallocating: VoiceServerUpdate =
        decode(r#"{"token":"t","guild_id":"41771983423143937","endpoint":null}"#);
    assert_eq!(reallocating.endpoint, None);
}

#[test]
fn voice_state_update() {
    let v: VoiceStateUpdate = decode(
        r#"{"member":{"user":{"id":"80351110224678912","username":"a","discriminator":"0","avatar":null},
                      "roles":[],"joined_at":"2020-01-01T00:00:00+00:00","deaf":false,"mute":false,"flags":0},
            "user_id":"80351110224678912","suppress":false,"session_id":"90326bd25d71d39b9ef95b299e3872ff",
            "self_video":false,"self_mute":true,"self_deaf":false,"request_to_speak_timestamp":null,
            "mute":false,"guild_id":"41771983423143937","deaf":false,"channel_id":"157733188964188161"}"#,
    );
    assert!(v.self_mute);
    assert_eq!(v.channel_id, Some(ChannelId(157733188964188161)));
    let left: VoiceStateUpdate = decode(
        r#"{"user_id":"80351110224678912","session_id":"x","guild_id":"1","channel_id":null,
            "deaf":false,"mute":false,"self_deaf":false,"self_mute":false,"self_video":false,"suppress":false}"#,
    );
    assert_eq!(left.channel_id, None);
}

#[test]
fn snowflakes_as_strings_or_integers() {
    let s: MessageDelete =
        decode(r#"{"id":"1237000000000000000","channel_id":"2","guild_id":"3"}"#);
    let i: MessageDelete = decode(r#"{"id":1237000000000000000,"channel_id":2,"guild_id":3}"#);
    assert_eq!(
        (s.id, s.channel_id, s.guild_id),
        (i.id, i.channel_id, i.guild_id)
    );
    assert!(fails::<MessageDelete>(r#"{"id":"12abc","channel_id":"2"}"#));
    assert!(fails::<MessageDelete>(r#"{"id":-5,"channel_id":"2"}"#));
}

#[test]
fn unknown_fields_are_ignored_everywhere() {
    let d = r#"{"id":"1","channel_id":"2","brand_new":{"deeply":[{"nested":null}]},
                "guild_id":"3","another":12.5e3,"and_a_string":"\u00e9\n"}"#;
    let e: MessageDelete = decode(d);
    assert_eq!(e.guild_id, Some(GuildId(3)));
    let r: Resumed = decode(d);
    assert_eq!(r.meta.shard, ShardId(3));
}

#[test]
fn unknown_enum_values_are_kept() {
    let c: ChannelCreate = decode(r#"{"id":"1","type":77}"#);
    assert_eq!(c.kind, ChannelType::Unknown(77));
    assert_eq!(c.kind.value(), 77);
    let r: MessageReactionRemove =
        decode(r#"{"user_id":1,"channel_id":2,"message_id":3,"emoji":{"name":"x"},"type":9}"#);
    assert_eq!(r.kind, ReactionType::Unknown(9));
    let g: GuildUpdate =
        decode(r#"{"id":"1","verification_level":9,"premium_tier":200,"mfa_level":5}"#);
    assert_eq!(g.verification_level, VerificationLevel::Unknown(9));
    assert_eq!(g.premium_tier, PremiumTier::Unknown(200));
    let i: InteractionCreate =
        decode(r#"{"id":"1","application_id":"2","type":42,"token":"t","version":1}"#);
    assert_eq!(i.kind, InteractionType::Unknown(42));
    let p: PresenceUpdate =
        decode(r#"{"user":{"id":"1"},"status":"streaming-soon","activities":[]}"#);
    assert_eq!(p.status, Status::Unknown("streaming-soon".into()));
}

#[test]
fn null_and_missing_optional_fields() {
    let base = r#""id":"1","channel_id":"2","author":{"id":"3","username":"u"},
                  "timestamp":"2024-01-01T00:00:00+00:00""#;
    // Missing and null both give None for ordinary optional fields.
    let missing: MessageCreate = decode(&format!("{{{base}}}"));
    let null: MessageCreate = decode(&format!(
        r#"{{{base},"guild_id":null,"member":null,"edited_timestamp":null,"webhook_id":null,"nonce":null}}"#
    ));
    assert_eq!(missing.message, null.message);
    assert_eq!(missing.guild_id, None);
    assert!(missing.content.is_empty() && missing.mentions.is_empty());
    // ...except referenced_message, where null means "deleted".
    assert_eq!(missing.referenced_message, None);
    let deleted: MessageCreate = decode(&format!(
        r#"{{{base},"type":19,"referenced_message":null}}"#
    ));
    assert_eq!(deleted.referenced_message, Some(None));
    // Required fields stay required.
    assert!(fails::<MessageCreate>(r#"{"id":"1","channel_id":"2"}"#));
    assert!(fails::<VoiceServerUpdate>(r#"{"guild_id":"1"}"#));
}

#[test]
fn every_event_type_constant_matches_its_type() {
    let pairs: [(EventType, &str); 23] = [
        (Ready::EVENT_TYPE, "READY"),
        (Resumed::EVENT_TYPE, "RESUMED"),
        (GuildCreate::EVENT_TYPE, "GUILD_CREATE"),
        (GuildUpdate::EVENT_TYPE, "GUILD_UPDATE"),
        (GuildDelete::EVENT_TYPE, "GUILD_DELETE"),
        (ChannelCreate::EVENT_TYPE, "CHANNEL_CREATE"),
        (ChannelUpdate::EVENT_TYPE, "CHANNEL_UPDATE"),
        (ChannelDelete::EVENT_TYPE, "CHANNEL_DELETE"),
        (GuildMemberAdd::EVENT_TYPE, "GUILD_MEMBER_ADD"),
        (GuildMemberUpdate::EVENT_TYPE, "GUILD_MEMBER_UPDATE"),
        (GuildMemberRemove::EVENT_TYPE, "GUILD_MEMBER_REMOVE"),
        (GuildMembersChunk::EVENT_TYPE, "GUILD_MEMBERS_CHUNK"),
        (MessageCreate::EVENT_TYPE, "MESSAGE_CREATE"),
        (MessageUpdate::EVENT_TYPE, "MESSAGE_UPDATE"),
        (MessageDelete::EVENT_TYPE, "MESSAGE_DELETE"),
        (MessageReactionAdd::EVENT_TYPE, "MESSAGE_REACTION_ADD"),
        (MessageReactionRemove::EVENT_TYPE, "MESSAGE_REACTION_REMOVE"),
        (PresenceUpdate::EVENT_TYPE, "PRESENCE_UPDATE"),
        (TypingStart::EVENT_TYPE, "TYPING_START"),
        (InteractionCreate::EVENT_TYPE, "INTERACTION_CREATE"),
        (VoiceStateUpdate::EVENT_TYPE, "VOICE_STATE_UPDATE"),
        (VoiceServerUpdate::EVENT_TYPE, "VOICE_SERVER_UPDATE"),
        (RateLimited::EVENT_TYPE, "RATE_LIMITED"),
    ];
    for (ty, name) in pairs {
        assert_eq!(ty.as_str(), name);
    }
}

#[test]
fn wrapper_events_are_built_from_and_round_trip_their_data() {
    let msg: MessageCreate = decode(MESSAGE_LARGE);
    let json = serde_json::to_string(&msg.message).unwrap();
    let again: MessageCreate = serde_json::from_str(&json).unwrap();
    assert_eq!(again.message, msg.message);
    assert_eq!(
        again.meta,
        DispatchMeta::default(),
        "meta is not part of the payload"
    );

    let guild: GuildCreate = decode(GUILD_CREATE);
    let json = serde_json::to_string(&guild.guild).unwrap();
    assert_eq!(serde_json::from_str::<Guild>(&json).unwrap(), guild.guild);

    let built = MessageCreate::from(Message {
        content: "hi".into(),
        ..Message::default()
    });
    assert_eq!(built.content, "hi");
}

static_assertions::assert_impl_all!(MessageCreate: Send, Sync, Clone, std::fmt::Debug);
static_assertions::assert_impl_all!(GuildCreate: Send, Sync, Clone, std::fmt::Debug);
static_assertions::assert_impl_all!(RateLimited: Send, Sync, Clone, std::fmt::Debug);
