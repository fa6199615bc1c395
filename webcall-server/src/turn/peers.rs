//! Which peers the relay may talk to. A TURN server that relays to any
//! address lets anyone on the internet reach the server's own loopback,
//! its private network and cloud metadata endpoints (coturn
//! CVE-2020-26262), so every address outside the public internet is
//! refused, also when written in an IPv6 form that embeds IPv4
//! (IPv4-mapped, NAT64, 6to4). `--turn-allow-peer` ranges are exceptions.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

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

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)
}

const fn v6(first: u16, second: u16, third: u16, prefix: u8) -> Ipv6Net {
    Ipv6Net::new_assert(Ipv6Addr::new(first, second, third, 0, 0, 0, 0, 0), prefix)
}

const DENIED_V4: [Ipv4Net; 15] = [
    v4(0, 0, 0, 0, 8),       // "this network", unspecified
    v4(10, 0, 0, 0, 8),      // RFC 1918
    v4(100, 64, 0, 0, 10),   // carrier-grade NAT
    v4(127, 0, 0, 0, 8),     // loopback
    v4(169, 254, 0, 0, 16),  // link-local, cloud metadata
    v4(172, 16, 0, 0, 12),   // RFC 1918
    v4(192, 0, 0, 0, 24),    // IETF protocol assignments
    v4(192, 0, 2, 0, 24),    // documentation
    v4(192, 88, 99, 0, 24),  // 6to4 relay anycast
    v4(192, 168, 0, 0, 16),  // RFC 1918
    v4(198, 18, 0, 0, 15),   // benchmarking
    v4(198, 51, 100, 0, 24), // documentation
    v4(203, 0, 113, 0, 24),  // documentation
    v4(224, 0, 0, 0, 4),     // multicast
    v4(240, 0, 0, 0, 4),     // reserved, broadcast
];

const DENIED_V6: [Ipv6Net; 11] = [
    v6(0, 0, 0, 96),           // IPv4-compatible (deprecated), unspecified, loopback
    v6(0xfc00, 0, 0, 7),       // unique local
    v6(0xfe80, 0, 0, 10),      // link-local
    v6(0xfec0, 0, 0, 10),      // site-local (deprecated)
    v6(0xff00, 0, 0, 8),       // multicast
    v6(0x2001, 0x0db8, 0, 32), // documentation
    v6(0x3fff, 0, 0, 20),      // documentation (RFC 9637)
    v6(0x0100, 0, 0, 64),      // discard-only
    v6(0x0064, 0xff9b, 1, 48), // local-use NAT64
    v6(0x2001, 0, 0, 32),      // Teredo
    v6(0x2001, 0x0002, 0, 48), // benchmarking
];

fn is_denied_v4(ip: Ipv4Addr) -> bool {
    DENIED_V4.iter().any(|net| net.contains(&ip))
}

fn is_denied_v6(ip: Ipv6Addr) -> bool {
    DENIED_V6.iter().any(|net| net.contains(&ip))
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
            "3fff::1",
            "3fff:fff:ffff::1",
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
            "3fff:1000::1",
            "3ffe:ffff::1",
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
