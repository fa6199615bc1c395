//! [`TurnIce`]: the ICE servers for one join when TURN credentials are
//! minted here. Each join gets its own credential
//! (`<expiry>:<participant>`), valid for the configured TTL, for the
//! built-in server's URLs and any external server sharing the secret.

use std::time::{Duration, SystemTime};

use webcall_core::protocol::{IceServer, IceTransportPolicy};
use webcall_core::room::{ConnectionId, IceConfig};
use webcall_core::token::RoomToken;

use super::credentials::{TurnSecret, mint};
use crate::ice::IceProvider;

/// Mints a TURN credential per join.
#[derive(Debug, Clone)]
pub struct TurnIce {
    secret: TurnSecret,
    ttl: Duration,
    /// `stun:` URLs of the built-in server: no credential needed.
    stun: Vec<String>,
    /// `turn:`/`turns:` URLs that get the minted credential.
    turn: Vec<String>,
    /// Servers from the configuration, handed out as they are.
    others: Vec<IceServer>,
    policy: IceTransportPolicy,
}

impl TurnIce {
    /// Hands out `urls` (the built-in server's and external ones) with a
    /// credential minted from `secret` for `ttl`, plus `others` unchanged.
    pub fn new(
        secret: TurnSecret,
        ttl: Duration,
        urls: impl IntoIterator<Item = String>,
        others: Vec<IceServer>,
        policy: IceTransportPolicy,
    ) -> Self {
        let (stun, turn): (Vec<String>, Vec<String>) =
            urls.into_iter().partition(|u| u.starts_with("stun:"));
        Self {
            secret,
            ttl,
            stun,
            turn,
            others,
            policy,
        }
    }
}

impl IceProvider for TurnIce {
    fn ice_config(&self, _room: &RoomToken, conn: ConnectionId) -> IceConfig {
        let mut servers = Vec::new();
        if !self.stun.is_empty() {
            servers.push(IceServer {
                urls: self.stun.clone(),
                username: None,
                credential: None,
            });
        }
        if !self.turn.is_empty() {
            let credential = mint(
                &self.secret,
                &conn.0.to_string(),
                self.ttl,
                SystemTime::now(),
            );
            servers.push(IceServer {
                urls: self.turn.clone(),
                username: Some(credential.username),
                credential: Some(credential.password),
            });
        }
        servers.extend(self.others.iter().cloned());
        IceConfig {
            servers,
            policy: self.policy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::turn::credentials::RestAuth;

    #[test]
    fn each_join_gets_its_own_working_credential() {
        let secret = TurnSecret::new("a secret for the ice test").unwrap();
        let ice = TurnIce::new(
            secret.clone(),
            Duration::from_secs(600),
            [
                "stun:192.0.2.1:3478".to_owned(),
                "turn:192.0.2.1:3478?transport=udp".to_owned(),
                "turns:turn.example.org:5349?transport=tcp".to_owned(),
            ],
            vec![IceServer::new("stun:stun.example.org")],
            IceTransportPolicy::Relay,
        );
        let room = RoomToken::generate().unwrap();
        let a = ice.ice_config(&room, ConnectionId(1));
        let b = ice.ice_config(&room, ConnectionId(2));
        assert_eq!(a.policy, IceTransportPolicy::Relay);
        assert_eq!(a.servers.len(), 3);
        assert_eq!(a.servers[0].urls, vec!["stun:192.0.2.1:3478".to_owned()]);
        assert_eq!(a.servers[0].username, None);
        assert_eq!(a.servers[1].urls.len(), 2);
        assert_eq!(a.servers[2], IceServer::new("stun:stun.example.org"));
        let user_a = a.servers[1].username.clone().unwrap();
        let user_b = b.servers[1].username.clone().unwrap();
        assert!(user_a.ends_with(":1") && user_b.ends_with(":2"));
        assert_ne!(a.servers[1].credential, b.servers[1].credential);
        let auth = RestAuth::new(secret, "webcall");
        auth.key(&user_a, SystemTime::now()).unwrap();
        assert!(
            auth.key(&user_a, SystemTime::now() + Duration::from_secs(700))
                .is_err(),
            "expired after the TTL"
        );
    }
}
