//! Which peers the relay may talk to. A TURN server that relays to any
//! address lets anyone on the internet reach the server's own loopback,
//! its private network and cloud metadata endpoints (coturn
//! CVE-2020-26262), so every address outside the public internet is
//! refused, also when written in an IPv6 form that embeds IPv4
//! (IPv4-mapped, NAT64, 6to4). `--turn-allow-peer` ranges are exceptions.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::IpNet;

/// The relay's peer policy: the built-in deny list minus the allowed ranges.
#[derive(Debug, Clone, Default)]
pub struct PeerPolicy {
    allow: Vec<IpNet>,
}

impl PeerPolicy {
    /// The deny list with `allow` ranges exempt.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self { allow }
    }

    /// True when the relay may send to and receive from `ip`.
    pub fn allows(&self, ip: IpAddr) -> bool {
        if self.allow.iter().any(|net| net.contains(ip)) {
            return true;
        }
        if let Some(v4) = embedded_ipv4(ip)
            && self.allow.iter().any(|net| net.contains(IpAddr::V4(v4)))
        {
            return true;
        }
        !is_denied(ip)
    }
}

/// The IPv4 address an IPv6 address carries: IPv4-mapped `::ffff:a.b.c.d`,
/// NAT64 `64:ff9b::a.b.c.d` and 6to4 `2002:aabb:ccdd::/48`.
fn embedded_ipv4(ip: IpAddr) -> Option<Ipv4Addr> {
    let IpAddr::V6(v6) = ip else { return None };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])));
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2])));
    }
    None
}

/// True for every address the relay refuses by default.
pub fn is_denied(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_denied_v4(v4),
        IpAddr::V6(v6) => match embedded_ipv4(ip) {
            Some(v4) => is_denied_v4(v4),
            None => is_denied_v6(v6),
        },
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn is_denied_v4(ip: Ipv4Addr) -> bool {
    const DENIED: &[([u8; 4], u32)] = &[
        ([0, 0, 0, 0], 8),       // "this network", unspecified
        ([10, 0, 0, 0], 8),      // RFC 1918
        ([100, 64, 0, 0], 10),   // carrier-grade NAT
        ([127, 0, 0, 0], 8),     // loopback
        ([169, 254, 0, 0], 16),  // link-local, cloud metadata
        ([172, 16, 0, 0], 12),   // RFC 1918
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // documentation
        ([192, 88, 99, 0], 24),  // 6to4 relay anycast
        ([192, 168, 0, 0], 16),  // RFC 1918
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // documentation
        ([203, 0, 113, 0], 24),  // documentation
        ([224, 0, 0, 0], 4),     // multicast
        ([240, 0, 0, 0], 4),     // reserved, broadcast
    ];
    DENIED.iter().any(|(net, prefix)| in_v4(ip, *net, *prefix))
}

fn is_denied_v6(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    let in_net = |net: u128, prefix: u32| {
        let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
        bits & mask == net & mask
    };
    ip.is_unspecified()
        || ip.is_loopback()
        || in_net(0xfc00 << 112, 7) // unique local
        || in_net(0xfe80 << 112, 10) // link-local
        || in_net(0xfec0 << 112, 10) // site-local (deprecated)
        || in_net(0xff00 << 112, 8) // multicast
        || in_net(0x2001_0db8 << 96, 32) // documentation
        || in_net(0x0100 << 112, 64) // discard-only
        || in_net(0, 96) // IPv4-compatible (deprecated)
        || in_net(0x0064_ff9b_0001 << 80, 48) // local-use NAT64
        || in_net(0x2001_0000 << 96, 32) // Teredo
        || in_net(0x2001_0002 << 96, 48) // benchmarking
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn dangerous_peers_are_denied_in_every_form() {
        let policy = PeerPolicy::default();
        for denied in [
            "127.0.0.1",
            "127.255.0.9",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.251",
            "239.255.255.250",
            "255.255.255.255",
            "192.0.2.7",
            "198.51.100.7",
            "203.0.113.7",
            "198.18.0.1",
            "198.19.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            // IPv4-mapped, NAT64 and 6to4 forms of denied IPv4 addresses.
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::192.168.0.1",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101::",
            "::127.0.0.1",
        ] {
            assert!(!policy.allows(ip(denied)), "{denied} must be denied");
        }
        for allowed in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(policy.allows(ip(allowed)), "{allowed} must be allowed");
        }
    }

    #[test]
    fn allowed_ranges_are_exceptions() {
        let policy = PeerPolicy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(policy.allows(ip("127.0.0.1")));
        assert!(policy.allows(ip("::ffff:127.0.0.1")));
        assert!(policy.allows(ip("64:ff9b::7f00:1")));
        assert!(!policy.allows(ip("10.0.0.1")));
        assert!(!policy.allows(ip("169.254.169.254")));
        assert!(!policy.allows(ip("::1")));
    }
}
