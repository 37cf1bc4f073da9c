//! The REST client against the simulator's REST side: each endpoint,
//! bucket discovery, the per-route and global limits under a burst, 429s by
//! scope, the invalid-request budget, order within a bucket, independent
//! buckets, multipart, interactions in time and deferred, the `Http`
//! extractor, and a token that appears nowhere.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::gateway::{LIMIT, sim, test_config};
use shardbus::BoxError;
use shardbus::gateway::{GatewayConfig, Intents};
use shardbus::http::commands::{CommandContext, Commands};
use shardbus::http::{Client, Http, HttpError, InteractionMessage, LimitConfig};
use shardbus::model::{
    ApplicationCommand, ApplicationId, ChannelId, CommandOption, CommandOptionType, GuildId,
    MessageCreate, MessageId, UserId,
};
use shardbus::shard::Manager;
use shardbus_sim::{NewInteraction, RestLimits, RouteLimit, Sim, SimConfig};
use tokio::time::timeout;

/// A client for `sim` with `limits`.
fn client(sim: &Sim, limits: LimitConfig) -> Client {
    Client::new(sim.token())
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()))
        .limits(limits)
}

/// A sim with REST limits `rest` and global limit `global`.
async fn rest_sim(rest: RestLimits, global: u32) -> Sim {
    sim(SimConfig {
        rest_limits: rest,
        global_limit: global,
        ..test_config()
    })
    .await
}

/// The first text channel of each of the sim's guilds, then the second...
fn channels(sim: &Sim) -> Vec<ChannelId> {
    let guilds = sim.guild_ids();
    let per: Vec<Vec<u64>> = guilds.iter().map(|g| sim.text_channel_ids(*g)).collect();
    let most = per.iter().map(Vec::len).max().unwrap_or(0);
    (0..most)
        .flat_map(|i| per.iter().filter_map(move |c| c.get(i).copied()))
        .map(ChannelId)
        .collect()
}

fn unpredicted_429s(sim: &Sim) -> usize {
    sim.log().responses_429().count()
}

#[tokio::test]
async fn every_endpoint_answers_with_the_models() {
    let sim = rest_sim(RestLimits::default(), 50).await;
    let http = client(&sim, LimitConfig::default());
    let me = http.current_user().await.unwrap();
    assert!(me.bot);
    let guild = sim.guild_ids()[0];
    let channel = ChannelId(sim.text_channel_ids(guild)[0]);
    assert_eq!(http.channel(channel).await.unwrap().id, channel);
    assert_eq!(
        http.guild(GuildId(guild.0)).await.unwrap().id,
        GuildId(guild.0)
    );
    assert!(http.gateway_bot().await.unwrap().shards >= 1);

    let sent = http.create_message(channel).content("hello").await.unwrap();
    assert_eq!((sent.content.as_str(), sent.author.id), ("hello", me.id));
    let reply = http
        .create_message(channel)
        .content("a reply")
        .reply_to(&sent)
        .await
        .unwrap();
    assert_eq!(
        reply.message_reference.and_then(|r| r.message_id),
        Some(sent.id)
    );
    let edited = http
        .edit_message(channel, sent.id)
        .content("edited")
        .await
        .unwrap();
    assert_eq!(edited.content, "edited");
    http.create_reaction(channel, sent.id, "👍").await.unwrap();
    http.delete_own_reaction(channel, sent.id, "👍")
        .await
        .unwrap();
    http.delete_message(channel, reply.id).await.unwrap();

    let app = ApplicationId(me.id.0);
    let ping = ApplicationCommand::slash("ping", "Pong");
    let global = http
        .set_global_commands(app, std::slice::from_ref(&ping))
        .await
        .unwrap();
    assert!(global[0].id.is_some());
    let local = http
        .set_guild_commands(app, GuildId(guild.0), &[ping])
        .await
        .unwrap();
    assert_eq!(local[0].guild_id, Some(GuildId(guild.0)));

    // Typed errors: Discord's code and the route.
    let unknown = http
        .edit_message(channel, MessageId(1))
        .content("x")
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404));
    assert_eq!(unknown.code(), Some(10008));
    assert_eq!(
        unknown.route(),
        Some("PATCH /channels/{channel_id}/messages/{message_id}")
    );
    let long = http
        .create_message(channel)
        .content("x".repeat(2001))
        .await
        .unwrap_err();
    assert_eq!(long.code(), Some(50035));
    assert_eq!(long.field_errors()[0].0, "content", "{long}");
    let missing = http.member(GuildId(guild.0), UserId(1)).await.unwrap_err();
    assert_eq!(missing.code(), Some(10007));
    assert_eq!(unpredicted_429s(&sim), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn files_go_as_multipart_attachments() {
    let sim = rest_sim(RestLimits::default(), 50).await;
    let http = client(&sim, LimitConfig::default());
    let channel = channels(&sim)[0];
    let sent = http
        .create_message(channel)
        .content("with files")
        .file("notes.txt", b"hello file".to_vec())
        .file("data.bin", vec![0u8, 1, 2, 3])
        .await
        .unwrap();
    let files: Vec<(&str, u64)> = sent
        .attachments
        .iter()
        .map(|a| (a.filename.as_str(), a.size))
        .collect();
    assert_eq!(files, [("notes.txt", 10), ("data.bin", 4)]);
    // A file alone is a message too.
    let only = http
        .create_message(channel)
        .file("a.txt", b"x".to_vec())
        .await
        .unwrap();
    assert_eq!(only.attachments.len(), 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bucket_is_learned_from_its_headers_and_waited_out_not_overrun() {
    let rest = RestLimits {
        create_message: RouteLimit::new(2, Duration::from_millis(400)),
        ..RestLimits::default()
    };
    let sim = rest_sim(rest, 50).await;
    let http = client(&sim, LimitConfig::default());
    let channel = channels(&sim)[0];
    let start = tokio::time::Instant::now();
    for i in 0..6 {
        http.create_message(channel)
            .content(format!("m{i}"))
            .await
            .unwrap();
    }
    // Three windows of two: at least two resets waited for.
    assert!(start.elapsed() >= Duration::from_millis(800));
    let log = sim.log();
    let sent: Vec<_> = log
        .requests_to("POST /channels/{channel_id}/messages")
        .collect();
    assert_eq!(sent.len(), 6);
    assert!(sent.iter().all(|r| r.status == 200));
    assert_eq!(unpredicted_429s(&sim), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_burst_of_1000_over_10_channels_keeps_every_limit_and_each_channels_order() {
    let rest = RestLimits {
        create_message: RouteLimit::new(20, Duration::from_millis(500)),
        ..RestLimits::default()
    };
    let sim = sim(SimConfig {
        rest_limits: rest,
        global_limit: 250,
        guilds: 5,
        ..test_config()
    })
    .await;
    let http = client(&sim, LimitConfig::default().global_limit(250));
    let chans: Vec<ChannelId> = channels(&sim).into_iter().take(10).collect();
    assert_eq!(chans.len(), 10, "the sim has 10 text channels");
    let mut sends = Vec::new();
    for i in 0..1000usize {
        let channel = chans[i % 10];
        let http = http.clone();
        // Spawned in order: each channel's requests queue in this order.
        sends.push(tokio::spawn(async move {
            http.create_message(channel)
                .content(format!("{i}"))
                .await
                .map(|m| (channel, i, m.id))
        }));
        tokio::task::yield_now().await;
    }
    let mut results = Vec::new();
    for send in sends {
        results.push(
            timeout(Duration::from_secs(60), send)
                .await
                .unwrap()
                .unwrap()
                .unwrap(),
        );
    }
    assert_eq!(unpredicted_429s(&sim), 0, "a limit was overrun");
    assert_eq!(http.responses_429(), 0);
    for channel in &chans {
        let ids: Vec<(usize, MessageId)> = results
            .iter()
            .filter(|(c, ..)| c == channel)
            .map(|(_, i, id)| (*i, *id))
            .collect();
        assert_eq!(ids.len(), 100);
        assert!(
            ids.windows(2).all(|w| w[0].1 < w[1].1),
            "channel {channel}: sent out of order"
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn interaction_callbacks_are_not_held_by_the_global_limit() {
    use shardbus::http::InteractionResponse;
    use shardbus::model::{InteractionId, InteractionToken};
    // One request a second for everything else: five callbacks held by it
    // would take over five seconds.
    let sim = rest_sim(RestLimits::default(), 50).await;
    let http = client(&sim, LimitConfig::default().global_limit(1));
    http.current_user().await.unwrap();
    let guild = sim.guild_ids()[0];
    let start = std::time::Instant::now();
    for _ in 0..5 {
        let i = sim
            .inject_interaction(NewInteraction::command(guild, "ping"))
            .unwrap();
        http.interaction_callback(
            InteractionId(i.id),
            &InteractionToken::new(i.token),
            &InteractionResponse::Message(InteractionMessage::text("pong")),
        )
        .await
        .unwrap();
    }
    // Generous for a loaded machine, and still half of what the limit
    // would force.
    assert!(
        start.elapsed() < Duration::from_millis(2500),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(unpredicted_429s(&sim), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_request_without_an_answer_times_out() {
    // A server that takes connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let http = Client::new("a.silent.token")
        .unwrap()
        .api_base(format!("http://{addr}/api/v10"))
        .timeout(Duration::from_millis(200));
    let error = timeout(LIMIT, http.current_user())
        .await
        .expect("the client gave up by itself")
        .unwrap_err();
    assert!(
        matches!(
            error,
            HttpError::Timeout {
                route: "GET /users/@me",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.to_string().contains("a.silent.token"));
    server.abort();
}

#[tokio::test]
async fn a_slow_bucket_never_delays_another() {
    let rest = RestLimits {
        create_message: RouteLimit::new(1, Duration::from_secs(4)),
        ..RestLimits::default()
    };
    let sim = rest_sim(rest, 50).await;
    let http = client(&sim, LimitConfig::default());
    let (a, b) = (channels(&sim)[0], channels(&sim)[1]);
    http.create_message(a).content("first").await.unwrap();
    // The second message to `a` waits for its bucket's reset...
    let held = {
        let http = http.clone();
        tokio::spawn(async move { http.create_message(a).content("second").await })
    };
    tokio::task::yield_now().await;
    // ...while channel `b` goes straight through.
    http.create_message(b).content("other").await.unwrap();
    assert!(!held.is_finished(), "channel a's bucket did not hold");
    timeout(LIMIT, held).await.unwrap().unwrap().unwrap();
    assert_eq!(unpredicted_429s(&sim), 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn shared_and_global_429s_are_waited_out_and_shared_ones_are_not_invalid() {
    // Two processes with one token: neither knows the other's requests, so
    // their 429s are real, and each must wait them out.
    let rest = RestLimits {
        reactions: RouteLimit::new(1, Duration::from_millis(100)).shared(),
        ..RestLimits::default()
    };
    let sim = rest_sim(rest, 50).await;
    let (one, two) = (
        client(&sim, LimitConfig::default()),
        client(&sim, LimitConfig::default()),
    );
    let channel = channels(&sim)[0];
    let msg = one.create_message(channel).content("react").await.unwrap();
    let react = |http: Client, emoji: &'static str| {
        tokio::spawn(async move {
            for _ in 0..4 {
                http.create_reaction(channel, msg.id, emoji).await?;
            }
            Ok::<_, HttpError>(())
        })
    };
    let (a, b) = (react(one.clone(), "👍"), react(two.clone(), "🎉"));
    timeout(LIMIT, a).await.unwrap().unwrap().unwrap();
    timeout(LIMIT, b).await.unwrap().unwrap().unwrap();
    let shared = sim
        .log()
        .responses_429()
        .filter(|r| r.scope.is_some_and(|s| s.as_str() == "shared"))
        .count();
    assert!(shared > 0, "the two clients never collided");
    assert_eq!(
        one.responses_429() + two.responses_429(),
        shared as u64,
        "each 429 counted by the client that got it"
    );
    assert_eq!(one.invalid_requests() + two.invalid_requests(), 0);
    sim.shutdown().await;

    // The global limit, 10 per second, shared by two clients that each
    // believe they have it to themselves.
    let sim = rest_sim(RestLimits::default(), 10).await;
    let limits = LimitConfig::default().global_limit(10);
    let clients = [client(&sim, limits), client(&sim, limits)];
    let guilds = sim.guild_ids();
    let mut tasks = Vec::new();
    for (n, http) in clients.iter().enumerate() {
        let http = http.clone();
        let guilds = guilds.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..12 {
                let guild = guilds[(i + n) % guilds.len()];
                http.guild(GuildId(guild.0)).await?;
            }
            Ok::<_, HttpError>(())
        }));
    }
    for task in tasks {
        timeout(LIMIT, task).await.unwrap().unwrap().unwrap();
    }
    let global = sim.log().responses_429().filter(|r| r.global).count();
    assert!(
        global > 0,
        "the clients never hit the global limit together"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_invalid_request_budget_stops_before_the_ban() {
    let sim = sim(SimConfig {
        invalid_request_limit: 8,
        ..test_config()
    })
    .await;
    let wrong = Client::new("not the token")
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()))
        .limits(LimitConfig::default().invalid_budget(5));
    for _ in 0..5 {
        let e = wrong.current_user().await.unwrap_err();
        assert_eq!(e.status(), Some(401));
    }
    let refused = wrong.current_user().await.unwrap_err();
    assert!(
        matches!(refused, HttpError::InvalidRequestBudget { count: 5, .. }),
        "{refused}"
    );
    assert_eq!(wrong.invalid_requests(), 5);
    // The sim saw 5 requests and banned no one.
    assert_eq!(sim.log().requests.len(), 5);
    assert!(sim.log().bans.is_empty());
    sim.shutdown().await;
}

/// A manager on `sim` whose bus has `http` for handlers.
async fn manager(sim: &Sim, http: Client) -> Manager {
    let identify = GatewayConfig::new(sim.token(), Intents::GUILDS | Intents::GUILD_MESSAGES)
        .gateway_url(sim.gateway_url())
        .reconnect_backoff_max(Duration::from_millis(200));
    let manager = Manager::builder(identify)
        .http(http)
        .identify_window(Duration::from_millis(100))
        .fetch()
        .await
        .unwrap();
    manager.open().await.unwrap();
    manager
}

/// Someone's `!ping` (message 900) in `channel` of `guild`.
fn ping_message(channel: u64, guild: shardbus_sim::GuildId) -> serde_json::Value {
    serde_json::json!({
        "id": "900", "channel_id": channel.to_string(), "guild_id": guild.0.to_string(),
        "author": {"id": "77", "username": "someone", "discriminator": "0", "avatar": null},
        "content": "!ping", "timestamp": "2026-12-04T00:00:00.000000+00:00",
        "tts": false, "mention_everyone": false, "mentions": [], "mention_roles": [],
        "attachments": [], "embeds": [], "pinned": false, "type": 0
    })
}

#[tokio::test]
async fn a_handler_replies_through_the_http_extractor_and_ignores_its_own_messages() {
    async fn ping(msg: Arc<MessageCreate>, http: Http) -> Result<(), HttpError> {
        if msg.author.bot || msg.content != "!ping" {
            return Ok(());
        }
        http.create_message(msg.channel_id)
            .content("pong")
            .reply_to(&msg)
            .await?;
        Ok(())
    }
    let sim = rest_sim(RestLimits::default(), 50).await;
    let http = client(&sim, LimitConfig::default());
    let manager = manager(&sim, http).await;
    let mut seen = manager.bus().subscribe::<MessageCreate>();
    let _handler = manager.bus().add_handler(ping);
    let guild = sim.guild_ids()[0];
    let channel = sim.text_channel_ids(guild)[0];
    sim.dispatch(guild, "MESSAGE_CREATE", ping_message(channel, guild));
    // The ping, then the bot's pong (a real MESSAGE_CREATE from the sim).
    let pong = timeout(LIMIT, async {
        loop {
            let msg = seen.recv().await.unwrap();
            if msg.author.bot {
                return msg;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(pong.content, "pong");
    assert_eq!(
        pong.message_reference.and_then(|r| r.message_id),
        Some(MessageId(900))
    );
    // Its own pong got no answer. The handler takes events in order, so
    // once a second ping is answered, an answer to the pong would have
    // been sent before it: exactly two messages were created.
    let mut again = ping_message(channel, guild);
    again["id"] = "901".into();
    sim.dispatch(guild, "MESSAGE_CREATE", again);
    timeout(LIMIT, async {
        loop {
            let msg = seen.recv().await.unwrap();
            if msg.author.bot
                && msg.message_reference.as_ref().and_then(|r| r.message_id) == Some(MessageId(901))
            {
                return;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        sim.log()
            .requests_to("POST /channels/{channel_id}/messages")
            .count(),
        2
    );
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn interactions_are_answered_in_time_deferred_and_auto_deferred() {
    async fn echo(ctx: CommandContext) -> Result<(), BoxError> {
        let text = ctx.string("text").unwrap_or("nothing").to_owned();
        ctx.reply(InteractionMessage::text(text)).await?;
        Ok(())
    }
    async fn slow(ctx: CommandContext) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(300)).await;
        ctx.reply(InteractionMessage::text("done")).await?;
        ctx.followup(InteractionMessage::text("and more")).await?;
        Ok(())
    }
    async fn sluggish(ctx: CommandContext) -> Result<(), BoxError> {
        // Slow and forgetful: it answers only once the registry has
        // deferred for it.
        while !ctx.answered().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ctx.reply(InteractionMessage::text("late but fine")).await?;
        Ok(())
    }
    let sim = rest_sim(RestLimits::default(), 50).await;
    let http = client(&sim, LimitConfig::default());
    let manager = manager(&sim, http.clone()).await;
    let me = http.current_user().await.unwrap();
    // The automatic defer comes early, so a loaded machine still answers
    // well within Discord's 3 s.
    let commands = Commands::new()
        .auto_defer(Some(Duration::from_millis(500)))
        .command(
            ApplicationCommand::slash("echo", "Says it back")
                .option(CommandOption::new(CommandOptionType::String, "text", "What").required()),
            echo,
        )
        .deferred(ApplicationCommand::slash("slow", "Takes a while"), slow)
        .command(
            ApplicationCommand::slash("sluggish", "Forgets to defer"),
            sluggish,
        );
    let registered = commands
        .register(&http, ApplicationId(me.id.0), None)
        .await
        .unwrap();
    assert_eq!(registered.len(), 3);
    let _routing = commands.attach(manager.bus(), http.clone());

    let guild = sim.guild_ids()[0];
    let mut echo_call = NewInteraction::command(guild, "echo");
    echo_call.options = vec![serde_json::json!({"name": "text", "type": 3, "value": "hi"})];
    let ids = [
        sim.inject_interaction(echo_call).unwrap().id,
        sim.inject_interaction(NewInteraction::command(guild, "slow"))
            .unwrap()
            .id,
        sim.inject_interaction(NewInteraction::command(guild, "sluggish"))
            .unwrap()
            .id,
    ];
    let answered = |id: u64, edits: u32| {
        sim.log()
            .interaction(id)
            .is_some_and(|i| i.answered_at.is_some() && i.edits >= edits)
    };
    timeout(Duration::from_secs(15), async {
        while !(answered(ids[0], 0) && answered(ids[1], 1) && answered(ids[2], 1)) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every interaction answered");
    let log = sim.log();
    let record = |id| log.interaction(id).unwrap();
    // echo: a reply (type 4) with the option's text, in time.
    assert_eq!(record(ids[0]).callback_type, Some(4));
    assert_eq!(
        record(ids[0]).data["content"],
        "hi",
        "{:?}",
        record(ids[0]).data
    );
    // slow: deferred first (type 5), then the reply edits it, then a
    // follow-up.
    assert_eq!(record(ids[1]).callback_type, Some(5));
    assert_eq!(record(ids[1]).edits, 1);
    timeout(LIMIT, async {
        while sim.log().interaction(ids[1]).unwrap().followups < 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .unwrap();
    // sluggish: deferred for it before 3 s, then edited.
    assert_eq!(record(ids[2]).callback_type, Some(5));
    assert_eq!(record(ids[2]).edits, 1);
    for id in ids {
        assert!(record(id).within_3s, "interaction {id} answered late");
    }
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn components_modals_and_autocomplete_reach_their_handlers() {
    use serde_json::{Value, json};
    use shardbus_sim::InteractionType;
    async fn vote(ctx: CommandContext) -> Result<(), BoxError> {
        let choice = ctx.custom_id_arg().unwrap_or("none").to_owned();
        ctx.update(InteractionMessage::text(format!("voted {choice}")))
            .await?;
        Ok(())
    }
    async fn pick(ctx: CommandContext) -> Result<(), BoxError> {
        // Deferred for it: the update edits the component's message.
        let values = ctx.values().join(",");
        ctx.update(InteractionMessage::text(format!("picked {values}")))
            .await?;
        Ok(())
    }
    async fn broken(_: CommandContext) -> Result<(), BoxError> {
        Err("no such thing".into())
    }
    async fn feedback(ctx: CommandContext) -> Result<(), BoxError> {
        let reason = ctx.field("reason").unwrap_or("nothing").to_owned();
        ctx.reply(InteractionMessage::text(format!("thanks: {reason}")))
            .await?;
        Ok(())
    }
    async fn complete(ctx: CommandContext) -> Result<(), BoxError> {
        let (name, typed) = ctx.focused().ok_or("nothing focused")?;
        let typed = typed.as_str().unwrap_or_default();
        let choices = (1..=30)
            .map(|i| (format!("{name} {typed}{i}"), json!(format!("{typed}{i}"))))
            .collect();
        ctx.suggest(choices).await?;
        Ok(())
    }
    let sim = rest_sim(RestLimits::default(), 50).await;
    let http = client(&sim, LimitConfig::default());
    let manager = manager(&sim, http.clone()).await;
    let commands = Commands::new()
        .component("vote", false, vote)
        .component("pick", true, pick)
        .component("broken", false, broken)
        .modal("feedback", false, feedback)
        .autocomplete("echo", complete);
    let _routing = commands.attach(manager.bus(), http.clone());

    let guild = sim.guild_ids()[0];
    let new = |kind, name: &str, options: Vec<Value>| NewInteraction {
        kind,
        options,
        ..NewInteraction::command(guild, name)
    };
    let component = InteractionType::MessageComponent;
    let inject = |n| sim.inject_interaction(n).unwrap().id;
    // Injected first, so it is routed (nowhere) before the others.
    let unrouted = inject(new(component, "nobody:1", vec![]));
    let ids = [
        inject(new(component, "vote:42", vec![])),
        inject(new(component, "pick", vec![json!("a"), json!("b")])),
        inject(new(component, "broken", vec![])),
        inject(new(
            InteractionType::ModalSubmit,
            "feedback:7",
            vec![json!({"type": 1, "components": [
                {"type": 4, "custom_id": "reason", "value": "fast"}
            ]})],
        )),
        inject(new(
            InteractionType::ApplicationCommandAutocomplete,
            "echo",
            vec![json!({"name": "text", "type": 3, "value": "he", "focused": true})],
        )),
    ];
    let done = |id: u64, edits: u32| {
        sim.log()
            .interaction(id)
            .is_some_and(|i| i.answered_at.is_some() && i.edits >= edits)
    };
    timeout(LIMIT, async {
        while !ids
            .iter()
            .enumerate()
            .all(|(n, id)| done(*id, u32::from(n == 1)))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every routed interaction answered");
    let log = sim.log();
    let record = |id| log.interaction(id).unwrap();
    // A button: the message it is on updated (type 7), its argument read.
    assert_eq!(record(ids[0]).callback_type, Some(7));
    assert_eq!(record(ids[0]).data["content"], "voted 42");
    // A deferred select: acknowledged (type 6), then its message edited.
    assert_eq!(record(ids[1]).callback_type, Some(6));
    assert_eq!(record(ids[1]).edits, 1);
    // A failing handler: an ephemeral apology.
    assert_eq!(record(ids[2]).callback_type, Some(4));
    assert_eq!(record(ids[2]).data["flags"], 64);
    // A modal: its field read, a reply.
    assert_eq!(record(ids[3]).callback_type, Some(4));
    assert_eq!(record(ids[3]).data["content"], "thanks: fast");
    // Autocomplete: 25 choices at most, for the focused option.
    assert_eq!(record(ids[4]).callback_type, Some(8));
    let choices = record(ids[4]).data["choices"].as_array().unwrap().clone();
    assert_eq!(choices.len(), 25);
    assert_eq!(choices[0], json!({"name": "text he1", "value": "he1"}));
    for id in ids {
        assert!(record(id).within_3s, "interaction {id} answered late");
    }
    assert_eq!(record(unrouted).answered_at, None);
    manager.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn the_token_is_in_no_log_debug_or_error() {
    let sim = rest_sim(
        RestLimits {
            create_message: RouteLimit::new(1, Duration::from_millis(200)),
            ..RestLimits::default()
        },
        50,
    )
    .await;
    let captured = common::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let token = sim.token().to_owned();
    let http = client(&sim, LimitConfig::default());
    let channel = channels(&sim)[0];
    // Successes, a waited-out bucket, and errors of every kind.
    for _ in 0..3 {
        http.create_message(channel).content("x").await.unwrap();
    }
    let mut texts = vec![format!("{http:?}")];
    let bad = Client::new(token.clone())
        .unwrap()
        .api_base("http://127.0.0.1:1/api/v10");
    texts.push(format!("{:?}", bad.current_user().await.unwrap_err()));
    let e = http
        .edit_message(channel, MessageId(1))
        .content("x")
        .await
        .unwrap_err();
    texts.push(format!("{e} {e:?}"));
    let with_newline = Client::new(format!("{token}\n"))
        .unwrap()
        .api_base(format!("{}/api/v10", sim.http_url()));
    let e = with_newline.current_user().await.unwrap_err();
    texts.push(format!("{e} {e:?}"));
    texts.push(captured.text());
    assert!(
        texts.last().is_some_and(|log| !log.is_empty()),
        "nothing was logged"
    );
    for text in texts {
        assert!(!text.contains(&token), "the token leaked: {text}");
    }
    sim.shutdown().await;
}
