//! Fault injection on one connection: what each [`Fault`] does to it.

use bytes::Bytes;
use tokio::time::Instant;
use tracing::debug;

use crate::fault::Fault;
use crate::frame;
use crate::protocol::op;
use crate::shared::Shared;

use super::{Conn, End};

impl Conn {
    /// Inject a fault.
    pub(super) fn on_fault(&mut self, fault: Fault) -> Result<(), End> {
        debug!(?fault, "fault");
        match fault {
            Fault::Reconnect => {
                self.outbox.push_back(frame::op(op::RECONNECT, "null"));
                self.reconnect_deadline = Some(Instant::now() + self.shared.config.reconnect_grace);
            }
            Fault::InvalidSession { resumable } => {
                // Either way the session leaves this connection: no more
                // dispatches are written here, and the connection accepts a
                // Resume (of a resumable session) or an Identify next.
                if let Some(s) = self.session.take() {
                    self.more = false;
                    if resumable {
                        s.lock().detach(self.id, true);
                        self.left = Some(s);
                    } else {
                        s.lock().invalidate();
                        let state = self.shared.state();
                        self.shared.rebuild_routes(&state);
                    }
                }
                self.outbox.push_back(frame::op(
                    op::INVALID_SESSION,
                    if resumable { "true" } else { "false" },
                ));
            }
            Fault::Drop => return Err(End::Drop),
            Fault::Zombie => self.zombie = true,
            Fault::Close(code) => return Err(End::Close(code, "closed by fault injection".into())),
            Fault::Malformed => self.outbox.push_back(Bytes::from_static(
                b"{\"op\":0,\"s\":,\"t\":\"MESSAGE_CREATE\",\"d\":{\"id\":",
            )),
            Fault::UnknownOpcode => self.outbox.push_back(Bytes::from_static(
                b"{\"op\":99,\"d\":{\"shardbus_sim\":\"unknown opcode\"},\"s\":null,\"t\":null}",
            )),
            Fault::UnknownDispatch => {
                if let Some(s) = &self.session {
                    Shared::dispatch_on(
                        s,
                        "SHARDBUS_SIM_UNKNOWN",
                        br#"{"detail":"an event type the protocol does not define"}"#,
                    );
                }
            }
            Fault::Stall(d) => self.stalled_until = Some(Instant::now() + d),
            Fault::HeartbeatRequest => self.outbox.push_back(frame::op(op::HEARTBEAT, "null")),
        }
        Ok(())
    }
}
