//! The sim's REST side, read with a plain HTTP/1.1 request (the tests need
//! one endpoint, not an HTTP client).

use shardbus::model::GatewayBot;
use shardbus_sim::Sim;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET /api/v10/gateway/bot` on `sim`, with its token: where to connect,
/// the shard count and the `session_start_limit`.
pub async fn gateway_bot(sim: &Sim) -> GatewayBot {
    let mut stream = TcpStream::connect(sim.addr()).await.unwrap();
    let request = format!(
        "GET /api/v10/gateway/bot HTTP/1.1\r\nHost: {}\r\nAuthorization: Bot {}\r\n\
         Connection: close\r\n\r\n",
        sim.addr(),
        sim.token()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8(response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap()
}
