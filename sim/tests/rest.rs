//! The REST API (`/api/v10`) over real HTTP/1.1: token check, messages
//! (JSON and multipart) and the dispatches they cause, rate-limit headers
//! and 429s, the global limit and its interaction exemption, stable bucket
//! ids, the invalid-request ban, interactions and command overwrites.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Client, INTENTS, WAIT, config, start};
use serde_json::{Value, json};
use shardbus_sim::{
    GuildId, InteractionType, NewInteraction, RateLimitScope, RestLimits, RouteLimit, Sim,
    SimConfig,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// `GUILD_MESSAGE_REACTIONS`.
const REACTIONS: u64 = 1 << 10;

/// An HTTP answer.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Value,
    raw: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn num(&self, name: &str) -> f64 {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", self.headers))
            .parse()
            .unwrap()
    }
}

/// One HTTP/1.1 request on a fresh connection.
async fn call(
    sim: &Sim,
    method: &str,
    path: &str,
    auth: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Resp {
    let mut s = TcpStream::connect(sim.addr()).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        sim.addr(),
        body.len()
    );
    if let Some(a) = auth {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    if let Some(t) = content_type {
        head.push_str(&format!("Content-Type: {t}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(body).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut resp))
        .await
        .expect("no answer in time")
        .unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(resp[..split].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut raw = resp[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        raw = dechunk(&raw);
    }
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    Resp {
        status,
        headers,
        body,
        raw,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(nl) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(std::str::from_utf8(&b[..nl]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[nl + 2 + n + 2..];
    }
}

/// An authorized REST request with an optional JSON body.
async fn rest(sim: &Sim, method: &str, path: &str, body: Option<Value>) -> Resp {
    let auth = format!("Bot {}", sim.token());
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let ct = (!body.is_empty()).then_some("application/json");
    call(
        sim,
        method,
        &format!("/api/v10{path}"),
        Some(&auth),
        ct,
        body.as_bytes(),
    )
    .await
}

/// A multipart request: `payload_json`, then `files[i]` (name, type, bytes).
async fn rest_multipart(
    sim: &Sim,
    method: &str,
    path: &str,
    payload: &Value,
    files: &[(&str, &str, &[u8])],
) -> Resp {
    let boundary = "sim-test-boundary-7MA4YWxk";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n{payload}\r\n"
        )
        .as_bytes(),
    );
    for (i, (name, ty, data)) in files.iter().enumerate() {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files[{i}]\"; filename=\"{name}\"\r\nContent-Type: {ty}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let auth = format!("Bot {}", sim.token());
    call(
        sim,
        method,
        &format!("/api/v10{path}"),
        Some(&auth),
        Some(&format!("multipart/form-data; boundary={boundary}")),
        &body,
    )
    .await
}

/// A ready client on shard [0, 1] with `intents`; GUILD_CREATEs are skipped
/// by the `dispatch` reads later.
async fn ready_client(sim: &Sim, intents: u64) -> (Client, Value) {
    let mut c = Client::gateway(sim, false).await;
    c.hello().await;
    c.identify(sim.token(), [0, 1], intents).await;
    let ready = c.dispatch("READY").await;
    (c, ready)
}

fn first_channel(sim: &Sim) -> (GuildId, u64) {
    let g = sim.guild_ids()[0];
    (g, sim.text_channel_ids(g)[0])
}

#[tokio::test]
async fn rest_routes_need_the_bot_token() {
    let sim = start(config()).await;
    let unauthorized = json!({ "message": "401: Unauthorized", "code": 0 });
    let r = call(&sim, "GET", "/api/v10/users/@me", None, None, b"").await;
    assert_eq!((r.status, &r.body), (401, &unauthorized));
    let r = call(
        &sim,
        "GET",
        "/api/v10/users/@me",
        Some("Bot nope"),
        None,
        b"",
    )
    .await;
    assert_eq!((r.status, &r.body), (401, &unauthorized));
    let (_, ch) = first_channel(&sim);
    let r = call(
        &sim,
        "POST",
        &format!("/api/v10/channels/{ch}/messages"),
        Some(sim.token()),
        Some("application/json"),
        b"{\"content\":\"no Bot prefix\"}",
    )
    .await;
    assert_eq!((r.status, &r.body), (401, &unauthorized));
    // GET /gateway needs none, as on Discord.
    let r = call(&sim, "GET", "/api/v10/gateway", None, None, b"").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["url"], sim.gateway_url());

    // With it: the bot user is READY's user.
    let (_c, ready) = ready_client(&sim, INTENTS).await;
    let me = rest(&sim, "GET", "/users/@me", None).await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body, ready["d"]["user"]);
    let bot = rest(&sim, "GET", "/gateway/bot", None).await;
    assert_eq!(bot.body["shards"], 1);
    let log = sim.log();
    let statuses: Vec<u16> = log.requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 200, 200, 200]);
    assert_eq!(log.requests[0].route, "GET /users/@me");
    assert_eq!(log.requests[0].bucket, None, "a 401 reaches no bucket");
    sim.shutdown().await;
}

#[tokio::test]
async fn messages_are_created_as_json_and_multipart_and_dispatched() {
    let sim = start(config()).await;
    let (mut c, ready) = ready_client(&sim, INTENTS).await;
    let (g, ch) = first_channel(&sim);

    let r = rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "hello from REST", "nonce": "n1", "embeds": [{ "title": "t" }] })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let m = &r.body;
    assert!(m["id"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    assert_eq!(m["channel_id"], ch.to_string());
    assert_eq!(m["guild_id"], g.to_string());
    assert_eq!(m["author"]["id"], ready["d"]["user"]["id"]);
    assert_eq!(m["author"]["bot"], true);
    assert_eq!(m["content"], "hello from REST");
    assert_eq!(m["embeds"], json!([{ "title": "t", "type": "rich" }]));
    assert_eq!(m["attachments"], json!([]));
    assert_eq!(m["mentions"], json!([]));
    assert_eq!(m["mention_roles"], json!([]));
    assert_eq!(m["mention_everyone"], false);
    assert_eq!(m["tts"], false);
    assert_eq!(m["pinned"], false);
    assert_eq!(m["type"], 0);
    assert_eq!(m["nonce"], "n1");
    let ts = m["timestamp"].as_str().unwrap();
    assert!(
        ts.len() == 32 && ts.ends_with("+00:00") && ts.as_bytes()[10] == b'T',
        "{ts}"
    );

    let d = c.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(d["id"], m["id"]);
    assert_eq!(d["content"], "hello from REST");
    assert_eq!(
        d["member"]["roles"],
        json!([]),
        "a guild message has the author's member"
    );
    let mut without_member = d.clone();
    without_member.as_object_mut().unwrap().remove("member");
    assert_eq!(&without_member, m, "the same message otherwise");

    // Multipart: payload_json and two files.
    let r = rest_multipart(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        &json!({
            "content": "files",
            "message_reference": { "message_id": m["id"] },
            "attachments": [{ "id": 1, "description": "second" }],
        }),
        &[
            ("notes one.txt", "text/plain", b"first file"),
            ("b.bin", "application/octet-stream", &[0, 1, 2, 255]),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let f = &r.body;
    assert_eq!(f["type"], 19, "a reply");
    assert_eq!(f["message_reference"]["message_id"], m["id"]);
    assert_eq!(f["referenced_message"]["id"], m["id"]);
    let att = f["attachments"].as_array().unwrap();
    assert_eq!(att.len(), 2);
    assert_eq!(att[0]["filename"], "notes_one.txt");
    assert_eq!(att[0]["size"], 10);
    assert_eq!(att[0]["content_type"], "text/plain");
    assert_eq!(att[1]["size"], 4);
    assert_eq!(att[1]["description"], "second");
    assert_ne!(att[0]["id"], att[1]["id"]);
    let d = c.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(d["attachments"], f["attachments"]);
    // The attachment URL serves the bytes.
    let url = att[1]["url"].as_str().unwrap();
    let path = url.split_once(&sim.addr().to_string()).unwrap().1;
    let file = call(&sim, "GET", path, None, None, b"").await;
    assert_eq!((file.status, &file.raw[..]), (200, &[0u8, 1, 2, 255][..]));

    // Discord's validation errors.
    let r = rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "" })),
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (
            400,
            &json!({ "code": 50006, "message": "Cannot send an empty message" })
        )
    );
    let r = rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "x".repeat(2001) })),
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (
            400,
            &json!({ "code": 50035, "message": "Invalid Form Body", "errors": { "content": { "_errors": [
                { "code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length." }
            ] } } })
        )
    );
    let r = rest(
        &sim,
        "POST",
        "/channels/123/messages",
        Some(json!({ "content": "x" })),
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({ "code": 10003, "message": "Unknown Channel" }))
    );
    let log = sim.log();
    let created: Vec<u16> = log
        .requests_to("POST /channels/{channel_id}/messages")
        .map(|r| r.status)
        .collect();
    assert_eq!(created, [200, 200, 400, 400, 404]);
    sim.shutdown().await;
}

#[tokio::test]
async fn edits_reactions_and_deletes_are_dispatched() {
    let sim = start(config()).await;
    let (mut c, _) = ready_client(&sim, INTENTS | REACTIONS).await;
    let (_, ch) = first_channel(&sim);
    let m = rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "v1" })),
    )
    .await;
    let id = m.body["id"].as_str().unwrap().to_owned();
    c.dispatch("MESSAGE_CREATE").await;

    let r = rest(
        &sim,
        "PATCH",
        &format!("/channels/{ch}/messages/{id}"),
        Some(json!({ "content": "v2" })),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["content"], "v2");
    assert!(r.body["edited_timestamp"].is_string());
    assert_eq!(c.dispatch("MESSAGE_UPDATE").await["d"]["content"], "v2");

    let emoji = "%F0%9F%91%8D";
    let path = format!("/channels/{ch}/messages/{id}/reactions/{emoji}/@me");
    let r = rest(&sim, "PUT", &path, None).await;
    assert_eq!((r.status, &r.raw[..]), (204, &b""[..]));
    let add = c.dispatch("MESSAGE_REACTION_ADD").await["d"].clone();
    assert_eq!(add["emoji"], json!({ "id": null, "name": "\u{1f44d}" }));
    assert_eq!(add["message_id"], id);
    let got = rest(&sim, "GET", &format!("/channels/{ch}/messages/{id}"), None).await;
    assert_eq!(got.body["reactions"][0]["me"], true);
    let r = rest(
        &sim,
        "GET",
        &format!("/channels/{ch}/messages/{id}/reactions/x/@me"),
        None,
    )
    .await;
    assert_eq!(r.status, 404, "no such route");
    // Reactions are 1 per 250 ms per channel by default.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = rest(&sim, "DELETE", &path, None).await;
    assert_eq!(r.status, 204);
    assert_eq!(
        c.dispatch("MESSAGE_REACTION_REMOVE").await["d"]["emoji"]["name"],
        "\u{1f44d}"
    );
    let r = rest(
        &sim,
        "DELETE",
        &format!("/channels/{ch}/messages/{id}"),
        None,
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(c.dispatch("MESSAGE_DELETE").await["d"]["id"], id);
    let r = rest(
        &sim,
        "PATCH",
        &format!("/channels/{ch}/messages/{id}"),
        Some(json!({ "content": "v3" })),
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({ "code": 10008, "message": "Unknown Message" }))
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn channels_guilds_and_members() {
    let sim = start(config()).await;
    let (g, ch) = first_channel(&sim);
    let r = rest(&sim, "GET", &format!("/channels/{ch}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], ch.to_string());
    assert_eq!(r.body["guild_id"], g.to_string());
    assert_eq!(r.body["type"], 0);
    let r = rest(&sim, "GET", &format!("/guilds/{g}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], g.to_string());
    assert!(r.body.get("members").is_none() && r.body.get("channels").is_none());
    let bot = rest(&sim, "GET", "/users/@me", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = rest(&sim, "GET", &format!("/guilds/{g}/members/{bot}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["user"]["id"], bot);
    let r = rest(&sim, "GET", &format!("/guilds/{g}/members/12345"), None).await;
    assert_eq!(
        (r.status, &r.body),
        (404, &json!({ "code": 10007, "message": "Unknown Member" }))
    );
    let r = rest(&sim, "GET", "/guilds/999", None).await;
    assert_eq!(r.body["code"], 10004);
    let r = rest(&sim, "GET", "/channels/abc", None).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errors"]["channel_id"]["_errors"][0]["code"],
        "NUMBER_TYPE_COERCE"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn headers_count_down_and_an_exhausted_bucket_answers_429() {
    let sim = start(SimConfig {
        rest_limits: RestLimits {
            create_message: RouteLimit::new(3, Duration::from_secs(60)),
            ..RestLimits::default()
        },
        ..config()
    })
    .await;
    let g = sim.guild_ids()[0];
    let (a, b) = (sim.text_channel_ids(g)[0], sim.text_channel_ids(g)[1]);
    let post = |ch: u64| {
        let sim = sim.clone();
        async move {
            rest(
                &sim,
                "POST",
                &format!("/channels/{ch}/messages"),
                Some(json!({ "content": "x" })),
            )
            .await
        }
    };
    let mut bucket = None;
    for want in [2.0, 1.0, 0.0] {
        let r = post(a).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.num("x-ratelimit-limit"), 3.0);
        assert_eq!(r.num("x-ratelimit-remaining"), want);
        let after = r.num("x-ratelimit-reset-after");
        assert!(after > 50.0 && after <= 60.0, "{after}");
        let reset = r.num("x-ratelimit-reset");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            (reset - (now + after)).abs() < 2.0,
            "{reset} vs {now} + {after}"
        );
        let reset_text = r.header("x-ratelimit-reset").unwrap();
        assert_eq!(
            reset_text.split_once('.').unwrap().1.len(),
            3,
            "{reset_text}"
        );
        let id = r.header("x-ratelimit-bucket").unwrap().to_owned();
        assert_eq!(*bucket.get_or_insert(id.clone()), id);
        assert!(r.header("x-ratelimit-scope").is_none());
    }
    let r = post(a).await;
    assert_eq!(r.status, 429);
    let retry = r.body["retry_after"].as_f64().unwrap();
    assert!(retry > 50.0 && retry <= 60.0, "{retry}");
    assert_eq!(r.body["message"], "You are being rate limited.");
    assert_eq!(r.body["global"], false);
    assert_eq!(r.num("retry-after"), retry.ceil());
    assert_eq!(r.header("x-ratelimit-scope"), Some("user"));
    assert_eq!(r.num("x-ratelimit-remaining"), 0.0);
    assert!(r.header("x-ratelimit-global").is_none());
    // Another channel is another counter of the same bucket.
    let r = post(b).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.num("x-ratelimit-remaining"), 2.0);
    assert_eq!(r.header("x-ratelimit-bucket"), bucket.as_deref());

    let log = sim.log();
    let limited: Vec<_> = log.responses_429().collect();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].scope, Some(RateLimitScope::User));
    assert_eq!(limited[0].remaining, Some(0));
    assert_eq!(limited[0].major, Some(a.to_string()));
    let remaining: Vec<_> = log
        .requests_to("POST /channels/{channel_id}/messages")
        .map(|r| r.remaining)
        .collect();
    assert_eq!(remaining, [Some(2), Some(1), Some(0), Some(0), Some(2)]);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_bucket_resets_when_its_window_ends_and_shared_scope_is_reported() {
    let sim = start(SimConfig {
        rest_limits: RestLimits {
            edit_message: RouteLimit::new(1, Duration::from_secs(2)),
            reactions: RouteLimit::new(1, Duration::from_secs(60)).shared(),
            ..RestLimits::default()
        },
        ..config()
    })
    .await;
    let (_, ch) = first_channel(&sim);
    let m = rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "a" })),
    )
    .await;
    let id = m.body["id"].as_str().unwrap().to_owned();
    let edit = format!("/channels/{ch}/messages/{id}");
    let r = rest(&sim, "PATCH", &edit, Some(json!({ "content": "b" }))).await;
    assert_eq!(r.status, 200);
    let r = rest(&sim, "PATCH", &edit, Some(json!({ "content": "c" }))).await;
    assert_eq!(r.status, 429, "two edits well within 2 s");
    let retry = r.body["retry_after"].as_f64().unwrap();
    assert!(retry > 0.0 && retry <= 2.0, "{retry}");
    tokio::time::sleep(Duration::from_secs_f64(retry) + Duration::from_millis(20)).await;
    let r = rest(&sim, "PATCH", &edit, Some(json!({ "content": "c" }))).await;
    assert_eq!(r.status, 200, "a new window");
    assert_eq!(r.num("x-ratelimit-remaining"), 0.0);

    let react = format!("/channels/{ch}/messages/{id}/reactions/%E2%9C%85/@me");
    assert_eq!(rest(&sim, "PUT", &react, None).await.status, 204);
    let r = rest(&sim, "PUT", &react, None).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("x-ratelimit-scope"), Some("shared"));
    assert_eq!(
        sim.log().responses_429().last().unwrap().scope,
        Some(RateLimitScope::Shared)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn bucket_ids_are_stable_per_route() {
    let a = start(config()).await;
    let b = start(config()).await;
    let ids = |sim: Sim| async move {
        let g = sim.guild_ids()[0];
        let ch = sim.text_channel_ids(g)[0];
        let m = rest(
            &sim,
            "POST",
            &format!("/channels/{ch}/messages"),
            Some(json!({ "content": "a" })),
        )
        .await;
        let id = m.body["id"].as_str().unwrap().to_owned();
        let edit = rest(
            &sim,
            "PATCH",
            &format!("/channels/{ch}/messages/{id}"),
            Some(json!({ "content": "b" })),
        )
        .await;
        let channel = rest(&sim, "GET", &format!("/channels/{ch}"), None).await;
        let guild = rest(&sim, "GET", &format!("/guilds/{g}"), None).await;
        let delete = rest(
            &sim,
            "DELETE",
            &format!("/channels/{ch}/messages/{id}"),
            None,
        )
        .await;
        [m, edit, channel, guild, delete]
            .map(|r| r.header("x-ratelimit-bucket").unwrap().to_owned())
    };
    let x = ids(a.clone()).await;
    let y = ids(b.clone()).await;
    assert_eq!(x, y, "the same in every sim");
    assert!(
        x.iter()
            .all(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()))
    );
    let [create, edit, channel, guild, delete] = &x;
    assert_ne!(create, edit);
    assert_ne!(edit, delete, "deletes have their own limit");
    assert_eq!(channel, guild, "GETs share one limit");
    assert_eq!(
        a.log()
            .requests_to("GET /channels/{channel_id}")
            .next()
            .unwrap()
            .bucket
            .as_deref(),
        Some(channel.as_str())
    );
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn the_global_limit_spares_interaction_endpoints() {
    let sim = start(SimConfig {
        global_limit: 5,
        ..config()
    })
    .await;
    let g = sim.guild_ids()[0];
    // Interactions answered while the global limit is exhausted.
    let mut pending = Vec::new();
    for _ in 0..10 {
        pending.push(
            sim.inject_interaction(NewInteraction::command(g, "ping"))
                .unwrap(),
        );
    }
    // Both sets are spawned before either is awaited, so they overlap.
    let gets: Vec<_> = (0..40)
        .map(|_| {
            let sim = sim.clone();
            tokio::spawn(async move { rest(&sim, "GET", "/users/@me", None).await })
        })
        .collect();
    let callbacks: Vec<_> = pending
        .iter()
        .map(|i| {
            let sim = sim.clone();
            let path = format!("/interactions/{}/{}/callback", i.id, i.token);
            tokio::spawn(async move {
                rest(
                    &sim,
                    "POST",
                    &path,
                    Some(json!({ "type": 4, "data": { "content": "pong" } })),
                )
                .await
            })
        })
        .collect();
    let gets: Vec<Resp> = futures_util::future::join_all(gets)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let callbacks: Vec<Resp> = futures_util::future::join_all(callbacks)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let global: Vec<&Resp> = gets.iter().filter(|r| r.status == 429).collect();
    assert!(!global.is_empty(), "40 GETs at once exceed 5 per second");
    for r in &global {
        assert_eq!(r.body["global"], true);
        assert_eq!(r.body["message"], "You are being rate limited.");
        assert!(r.body["retry_after"].as_f64().unwrap() <= 1.0);
        assert_eq!(r.header("x-ratelimit-global"), Some("true"));
        assert_eq!(r.header("x-ratelimit-scope"), Some("global"));
        assert!(r.header("retry-after").is_some());
    }
    assert!(
        callbacks.iter().all(|r| r.status == 204),
        "{:?}",
        callbacks.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let log = sim.log();
    assert!(
        log.responses_429()
            .all(|r| r.global && r.scope == Some(RateLimitScope::Global))
    );
    assert!(log.responses_429().all(|r| r.route == "GET /users/@me"));
    assert_eq!(
        log.interactions
            .iter()
            .filter(|i| i.callback_type == Some(4))
            .count(),
        10
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn too_many_invalid_requests_ban_the_client() {
    let sim = start(SimConfig {
        invalid_request_limit: 3,
        rest_limits: RestLimits {
            reactions: RouteLimit::new(1, Duration::from_secs(60)).shared(),
            ..RestLimits::default()
        },
        ..config()
    })
    .await;
    let (_, ch) = first_channel(&sim);
    // Shared-scope 429s do not count.
    let m = rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "a" })),
    )
    .await;
    let id = m.body["id"].as_str().unwrap().to_owned();
    let react = format!("/channels/{ch}/messages/{id}/reactions/%E2%9C%85/@me");
    for want in [204, 429, 429, 429, 429, 429] {
        assert_eq!(rest(&sim, "PUT", &react, None).await.status, want);
    }
    assert!(sim.log().bans.is_empty());
    // 401s do: the fourth goes past the limit of 3.
    for _ in 0..4 {
        let r = call(&sim, "GET", "/api/v10/users/@me", None, None, b"").await;
        assert_eq!(r.status, 401);
    }
    let banned = json!({ "message": "banned (simulated Cloudflare)", "code": 0 });
    let r = rest(&sim, "GET", "/users/@me", None).await;
    assert_eq!((r.status, &r.body), (403, &banned));
    let r = rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "b" })),
    )
    .await;
    assert_eq!((r.status, &r.body), (403, &banned));
    let log = sim.log();
    assert_eq!(log.bans.len(), 1);
    assert_eq!(log.bans[0].invalid_requests, 4);
    let window = sim.config().invalid_request_window;
    assert!(log.bans[0].until > log.bans[0].at && log.bans[0].until - log.bans[0].at <= window);
    assert_eq!(log.responses_with_status(403).count(), 2);
    sim.shutdown().await;
}

#[tokio::test]
async fn an_interaction_is_dispatched_answered_and_logged() {
    let sim = start(config()).await;
    let (mut c, ready) = ready_client(&sim, INTENTS).await;
    let (g, ch) = first_channel(&sim);

    // Over the control API.
    let r = call(
        &sim,
        "POST",
        "/sim/interaction",
        None,
        None,
        json!({ "guild_id": g.to_string(), "name": "echo", "options": [{ "name": "text", "type": 3, "value": "hi" }] })
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["sessions"], 1);
    let (id, token) = (
        r.body["id"].as_str().unwrap().to_owned(),
        r.body["token"].as_str().unwrap().to_owned(),
    );
    let i = c.dispatch("INTERACTION_CREATE").await["d"].clone();
    assert_eq!(i["id"], id);
    assert_eq!(i["token"], token);
    assert_eq!(i["type"], 2);
    assert_eq!(i["application_id"], ready["d"]["application"]["id"]);
    assert_eq!(i["guild_id"], g.to_string());
    assert_eq!(i["channel_id"], ch.to_string());
    assert_eq!(i["data"]["name"], "echo");
    assert_eq!(i["data"]["type"], 1);
    assert_eq!(i["data"]["options"][0]["value"], "hi");
    assert!(i["data"]["id"].is_string());
    assert!(i["member"]["user"]["id"].is_string());
    assert_eq!(
        i["member"]["user"]["bot"],
        Value::Null,
        "a person invoked it"
    );
    assert_eq!(i["version"], 1);
    assert_eq!(i["locale"], "en-US");
    assert!(i["app_permissions"].is_string());

    let callback = format!("/interactions/{id}/{token}/callback");
    // Without a bot token: the interaction token authenticates.
    let r = call(
        &sim,
        "POST",
        &format!("/api/v10{callback}"),
        None,
        Some("application/json"),
        json!({ "type": 4, "data": { "content": "hi" } })
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!((r.status, &r.raw[..]), (204, &b""[..]));
    let response = c.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(response["content"], "hi");
    assert_eq!(response["type"], 20);
    assert_eq!(response["interaction_metadata"]["id"], id);
    assert_eq!(response["webhook_id"], i["application_id"]);

    let r = rest(
        &sim,
        "POST",
        &callback,
        Some(json!({ "type": 4, "data": { "content": "again" } })),
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (
            400,
            &json!({ "code": 40060, "message": "Interaction has already been acknowledged" })
        )
    );
    let r = rest(
        &sim,
        "POST",
        &format!("/interactions/{id}/wrong/callback"),
        Some(json!({ "type": 4 })),
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (
            404,
            &json!({ "code": 10062, "message": "Unknown interaction" })
        )
    );

    // Follow-up and an edit of the original.
    let app = i["application_id"].as_str().unwrap();
    let r = rest(
        &sim,
        "POST",
        &format!("/webhooks/{app}/{token}"),
        Some(json!({ "content": "more" })),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["content"], "more");
    assert_eq!(c.dispatch("MESSAGE_CREATE").await["d"]["id"], r.body["id"]);
    let r = rest(
        &sim,
        "PATCH",
        &format!("/webhooks/{app}/{token}/messages/@original"),
        Some(json!({ "content": "edited" })),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["id"], response["id"]);
    assert_eq!(c.dispatch("MESSAGE_UPDATE").await["d"]["content"], "edited");

    let log = sim.log();
    let rec = log.interaction(id.parse().unwrap()).unwrap();
    assert_eq!(rec.name, "echo");
    assert_eq!(rec.sessions, 1);
    assert_eq!(rec.callback_type, Some(4));
    assert!(rec.within_3s);
    assert!(rec.answered_at.unwrap() >= rec.dispatched_at);
    assert_eq!(rec.data, json!({ "content": "hi" }));
    assert_eq!(
        (rec.followups, rec.edits, rec.rejected_callbacks),
        (1, 1, 1)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn a_deferred_response_is_loading_until_edited() {
    let sim = start(config()).await;
    let (mut c, _) = ready_client(&sim, INTENTS).await;
    let g = sim.guild_ids()[0];
    let i = sim
        .inject_interaction(NewInteraction::command(g, "slow"))
        .unwrap();
    c.dispatch("INTERACTION_CREATE").await;
    let app = rest(&sim, "GET", "/users/@me", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Follow-ups need an acknowledged interaction.
    let r = rest(
        &sim,
        "POST",
        &format!("/webhooks/{app}/{}", i.token),
        Some(json!({ "content": "early" })),
    )
    .await;
    assert_eq!(r.body["code"], 10015);
    let r = rest(
        &sim,
        "POST",
        &format!(
            "/interactions/{}/{}/callback?with_response=true",
            i.id, i.token
        ),
        Some(json!({ "type": 5 })),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["interaction"]["response_message_loading"], true);
    let loading = c.dispatch("MESSAGE_CREATE").await["d"].clone();
    assert_eq!(loading["flags"], 128);
    let r = rest(
        &sim,
        "PATCH",
        &format!("/webhooks/{app}/{}/messages/@original", i.token),
        Some(json!({ "content": "done" })),
    )
    .await;
    assert_eq!(r.status, 200);
    let done = c.dispatch("MESSAGE_UPDATE").await["d"].clone();
    assert_eq!(
        (
            done["id"].clone(),
            done["flags"].clone(),
            done["content"].clone()
        ),
        (loading["id"].clone(), json!(0), json!("done"))
    );
    let r = rest(
        &sim,
        "GET",
        &format!("/webhooks/{app}/nope/messages/@original"),
        None,
    )
    .await;
    assert_eq!(
        (r.status, &r.body),
        (
            401,
            &json!({ "code": 50027, "message": "Invalid Webhook Token" })
        )
    );
    // Autocomplete takes only type 8.
    let auto = sim
        .inject_interaction(NewInteraction {
            kind: InteractionType::ApplicationCommandAutocomplete,
            ..NewInteraction::command(g, "slow")
        })
        .unwrap();
    let r = rest(
        &sim,
        "POST",
        &format!("/interactions/{}/{}/callback", auto.id, auto.token),
        Some(json!({ "type": 4, "data": { "content": "no" } })),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["errors"]["type"]["_errors"][0]["code"],
        "BASE_TYPE_CHOICES"
    );
    let r = rest(
        &sim,
        "POST",
        &format!("/interactions/{}/{}/callback", auto.id, auto.token),
        Some(json!({ "type": 8, "data": { "choices": [] } })),
    )
    .await;
    assert_eq!(r.status, 204);
    let log = sim.log();
    assert_eq!(log.interaction(auto.id).unwrap().rejected_callbacks, 1);
    assert_eq!(log.interaction(auto.id).unwrap().callback_type, Some(8));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_late_callback_is_logged_or_rejected() {
    let sim = start(SimConfig {
        interaction_deadline: Duration::from_millis(100),
        ..config()
    })
    .await;
    let g = sim.guild_ids()[0];
    let i = sim
        .inject_interaction(NewInteraction::command(g, "late"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = rest(
        &sim,
        "POST",
        &format!("/interactions/{}/{}/callback", i.id, i.token),
        Some(json!({ "type": 5 })),
    )
    .await;
    assert_eq!(r.status, 204, "accepted by default");
    let rec = sim.log().interaction(i.id).cloned().unwrap();
    assert!(!rec.within_3s);
    assert_eq!(rec.callback_type, Some(5));
    sim.shutdown().await;

    let sim = start(SimConfig {
        interaction_deadline: Duration::from_millis(100),
        reject_late_interactions: true,
        ..config()
    })
    .await;
    let i = sim
        .inject_interaction(NewInteraction::command(g, "late"))
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let r = rest(
        &sim,
        "POST",
        &format!("/interactions/{}/{}/callback", i.id, i.token),
        Some(json!({ "type": 5 })),
    )
    .await;
    assert_eq!((r.status, r.body["code"].clone()), (404, json!(10062)));
    let rec = sim.log().interaction(i.id).cloned().unwrap();
    assert_eq!((rec.answered_at, rec.rejected_callbacks), (None, 1));
    sim.shutdown().await;
}

#[tokio::test]
async fn bulk_overwrites_return_registered_commands() {
    let sim = start(SimConfig {
        rest_limits: RestLimits {
            commands: RouteLimit::new(10, Duration::from_secs(10)),
            ..RestLimits::default()
        },
        ..config()
    })
    .await;
    let app = rest(&sim, "GET", "/users/@me", None).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let g = sim.guild_ids()[0];
    let first = json!([
        { "name": "ping", "description": "Replies pong" },
        { "name": "echo", "description": "Says it back", "options": [{ "type": 3, "name": "text", "description": "What", "required": true }] },
    ]);
    let r = rest(
        &sim,
        "PUT",
        &format!("/applications/{app}/commands"),
        Some(first),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let list = r.body.as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    for c in &list {
        assert!(c["id"].as_str().unwrap().parse::<u64>().is_ok());
        assert_eq!(c["application_id"], app);
        assert!(c["version"].is_string());
        assert_eq!(c["type"], 1);
        assert!(c.get("guild_id").is_none());
    }
    assert_eq!(list[1]["options"][0]["name"], "text");
    // A later overwrite replaces: ping keeps its id, echo is gone.
    let second = json!([
        { "name": "ping", "description": "Replies pong, faster" },
        { "name": "Info", "type": 2 },
    ]);
    let r = rest(
        &sim,
        "PUT",
        &format!("/applications/{app}/commands"),
        Some(second),
    )
    .await;
    let now = r.body.as_array().unwrap().clone();
    assert_eq!(now[0]["id"], list[0]["id"]);
    assert_ne!(now[0]["version"], list[0]["version"]);
    assert_eq!(now[1]["type"], 2);
    let got = rest(&sim, "GET", &format!("/applications/{app}/commands"), None).await;
    assert_eq!(got.body, Value::Array(now.clone()));
    // Guild commands carry guild_id; an interaction uses the command's id.
    let r = rest(
        &sim,
        "PUT",
        &format!("/applications/{app}/guilds/{g}/commands"),
        Some(json!([{ "name": "local", "description": "Guild only" }])),
    )
    .await;
    assert_eq!(r.body[0]["guild_id"], g.to_string());
    let (mut c, _) = ready_client(&sim, INTENTS).await;
    sim.inject_interaction(NewInteraction::command(g, "local"))
        .unwrap();
    let d = c.dispatch("INTERACTION_CREATE").await["d"].clone();
    assert_eq!(d["data"]["id"], r.body[0]["id"]);
    assert_eq!(d["data"]["guild_id"], g.to_string());
    // Invalid lists.
    let r = rest(
        &sim,
        "PUT",
        &format!("/applications/{app}/commands"),
        Some(json!([{ "name": "a", "description": "x" }, { "name": "a", "description": "y" }])),
    )
    .await;
    assert_eq!((r.status, r.body["code"].clone()), (400, json!(50035)));
    let r = rest(&sim, "PUT", "/applications/1/commands", Some(json!([]))).await;
    assert_eq!((r.status, r.body["code"].clone()), (403, json!(50001)));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_log_lists_requests_and_interactions_over_http() {
    let sim = start(config()).await;
    let (g, ch) = first_channel(&sim);
    rest(
        &sim,
        "POST",
        &format!("/channels/{ch}/messages"),
        Some(json!({ "content": "a" })),
    )
    .await;
    let i = sim
        .inject_interaction(NewInteraction::command(g, "ping"))
        .unwrap();
    rest(
        &sim,
        "POST",
        &format!("/interactions/{}/{}/callback", i.id, i.token),
        Some(json!({ "type": 4, "data": { "content": "pong" } })),
    )
    .await;
    let log = call(&sim, "GET", "/sim/log", None, None, b"").await.body;
    let req = &log["requests"][0];
    let mut keys: Vec<&str> = req
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "at_ms",
            "bucket",
            "global",
            "limit",
            "major",
            "method",
            "path",
            "remaining",
            "route",
            "scope",
            "status"
        ]
    );
    assert_eq!(req["route"], "POST /channels/{channel_id}/messages");
    assert_eq!(req["path"], format!("/channels/{ch}/messages"));
    assert_eq!(req["major"], ch.to_string());
    assert_eq!(
        (
            req["status"].clone(),
            req["remaining"].clone(),
            req["limit"].clone()
        ),
        (json!(200), json!(4), json!(5))
    );
    assert_eq!(req["scope"], Value::Null);
    assert!(req["at_ms"].as_f64().unwrap() > 0.0);
    let cb = &log["requests"][1];
    assert_eq!(cb["major"], format!("{}/{}", i.id, i.token));
    let rec = &log["interactions"][0];
    assert_eq!(rec["id"], i.id.to_string());
    assert_eq!(rec["guild_id"], g.to_string());
    assert_eq!(rec["within_3s"], true);
    assert_eq!(rec["callback_type"], 4);
    assert_eq!(rec["data"]["content"], "pong");
    assert!(rec["answered_at_ms"].as_f64().unwrap() >= rec["dispatched_at_ms"].as_f64().unwrap());
    assert_eq!(log["bans"], json!([]));
    sim.shutdown().await;
}
