//! The websocket under a shard: opening it (TLS with rustls and the webpki
//! roots for `wss://`) and closing it.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::close::CloseCode;
use crate::bus::BoxError;

/// The websocket.
pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens the websocket, refusing messages over `max_payload` bytes and
/// reading up to `read_buffer` bytes per call.
pub(crate) async fn connect(
    url: &str,
    max_payload: usize,
    read_buffer: usize,
) -> Result<Socket, BoxError> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(max_payload))
        .max_frame_size(Some(max_payload))
        .read_buffer_size(read_buffer);
    let connector = Connector::Rustls(crate::tls::client_config()?);
    let (socket, _response) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, Some(connector))
            .await?;
    Ok(socket)
}

/// Sends a close frame, without waiting long for the handshake.
pub(crate) async fn close(socket: &mut Socket, code: CloseCode) {
    let frame = CloseFrame {
        code: WsCloseCode::from(code.0),
        reason: "".into(),
    };
    let _ = timeout(Duration::from_secs(1), socket.close(Some(frame))).await;
}
