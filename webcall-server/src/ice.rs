//! The ICE servers each participant is handed in `joined`. They are asked
//! for per join through [`IceProvider`], so that a provider issuing
//! short-lived TURN credentials per participant can replace the static list.

use webcall_core::protocol::{IceServer, IceTransportPolicy};
use webcall_core::room::{ConnectionId, IceConfig};
use webcall_core::token::RoomToken;

/// Computes the ICE configuration for one join.
pub trait IceProvider: Send + Sync + std::fmt::Debug + 'static {
    /// The servers and policy for connection `conn` joining room `room`.
    fn ice_config(&self, room: &RoomToken, conn: ConnectionId) -> IceConfig;
}

/// The same servers for everyone, from the configuration.
#[derive(Debug, Clone, Default)]
pub struct StaticIce {
    servers: Vec<IceServer>,
    policy: IceTransportPolicy,
}

impl StaticIce {
    /// Hands out `servers` with `policy` to every participant.
    pub fn new(servers: Vec<IceServer>, policy: IceTransportPolicy) -> Self {
        Self { servers, policy }
    }
}

impl IceProvider for StaticIce {
    fn ice_config(&self, _room: &RoomToken, _conn: ConnectionId) -> IceConfig {
        IceConfig {
            servers: self.servers.clone(),
            policy: self.policy,
        }
    }
}
