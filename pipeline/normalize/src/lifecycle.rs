//! Lifecycle events (`ControlEvent.CONNECTED|DISCONNECTED|ERROR`) that ingest emits about its own
//! connection, not about TikTok users.
//!
//! They carry the system user. CONNECTED names its provider only when it is one the contract
//! allows (`direct`, `euler`): mock and replay sessions leave it out.

use ttlc_schemas::event::{ConnectedPayload, ConnectedProvider, DisconnectedPayload, ErrorPayload};
use ttlc_schemas::{EventType, Payload, Provider, User};

use crate::json::{Invalid, Obj};
use crate::kind::Kind;
use crate::mapping::Mapped;

/// Maps a lifecycle event. `provider` is the envelope's, used when `data` does not say.
pub(crate) fn map(kind: Kind, o: Obj<'_>, provider: Provider) -> Result<Mapped, Invalid> {
    let user = User::system();
    Ok(match kind {
        Kind::Connected => {
            let provider = match o.str(&["provider"])? {
                Some("direct") => Some(ConnectedProvider::Direct),
                Some("euler") => Some(ConnectedProvider::Euler),
                Some(_) => None,
                None => match provider {
                    Provider::Direct => Some(ConnectedProvider::Direct),
                    Provider::Euler => Some(ConnectedProvider::Euler),
                    Provider::Mock | Provider::Replay => None,
                },
            };
            let payload = ConnectedPayload {
                room_id: o.id_text(&["roomId", "room_id"])?,
                is_connected: Some(true),
                provider,
            };
            Mapped::of(user, Payload::Connected(payload))
        }
        Kind::Disconnected => {
            let payload = DisconnectedPayload {
                code: o.i64(&["code"])?,
                reason: o.str(&["reason"])?.map(str::to_owned),
                will_reconnect: o.bool(&["willReconnect", "will_reconnect"])?,
            };
            if payload == DisconnectedPayload::default() {
                Mapped::bare(EventType::Disconnected, user)
            } else {
                Mapped::of(user, Payload::Disconnected(payload))
            }
        }
        Kind::Error => {
            let Some(message) = o.str(&["message", "error"])? else {
                return Err(Invalid("ControlEvent.ERROR without `message`".into()));
            };
            let payload = ErrorPayload {
                message: message.to_owned(),
                code: o.id_text(&["code"])?,
                stack: o.str(&["stack"])?.map(str::to_owned),
            };
            Mapped::of(user, Payload::Error(payload))
        }
        _ => return Err(Invalid("not a lifecycle event".into())),
    })
}
