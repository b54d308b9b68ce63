//! The address table: which networks outbound connections may not reach, and as what.
//!
//! Kept as data (network, prefix length, class) so it can be audited against the IANA special-purpose
//! registries line by line. The most specific matching row wins, so row order does not matter.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Blocked {
    /// `0.0.0.0/8`, `::`: Linux connects these to the local host.
    Unspecified,
    Loopback,
    /// RFC 1918.
    Private,
    /// Includes the cloud metadata service at 169.254.169.254.
    LinkLocal,
    /// Shared address space `100.64.0.0/10`; includes Alibaba Cloud's metadata service.
    Cgnat,
    /// `192.0.0.0/24` and `2001::/23`; includes Oracle Cloud's metadata service at 192.0.0.192.
    IetfProtocol,
    Documentation,
    /// The 6to4 relay anycast prefix `192.88.99.0/24`.
    Relay6to4,
    Benchmarking,
    Multicast,
    /// `240.0.0.0/4`, and IPv6 outside the global unicast `2000::/3`.
    Reserved,
    Broadcast,
    /// Deprecated `::a.b.c.d`, which some stacks still route as IPv4.
    Ipv4Compatible,
    /// `64:ff9b:1::/48`: translates to whatever IPv4 network the local operator chose.
    Nat64Local,
    /// `100::/64`.
    Discard,
    /// `2001::/32`: the tunnel endpoint is not something we can vet.
    Teredo,
    /// `fc00::/7`; includes the AWS metadata service at fd00:ec2::254.
    UniqueLocal,
    SiteLocal,
}

impl Blocked {
    pub fn as_str(self) -> &'static str {
        match self {
            Blocked::Unspecified => "unspecified",
            Blocked::Loopback => "loopback",
            Blocked::Private => "private",
            Blocked::LinkLocal => "link-local",
            Blocked::Cgnat => "cgnat",
            Blocked::IetfProtocol => "ietf-protocol",
            Blocked::Documentation => "documentation",
            Blocked::Relay6to4 => "6to4-relay",
            Blocked::Benchmarking => "benchmarking",
            Blocked::Multicast => "multicast",
            Blocked::Reserved => "reserved",
            Blocked::Broadcast => "broadcast",
            Blocked::Ipv4Compatible => "ipv4-compatible",
            Blocked::Nat64Local => "nat64-local",
            Blocked::Discard => "discard",
            Blocked::Teredo => "teredo",
            Blocked::UniqueLocal => "unique-local",
            Blocked::SiteLocal => "site-local",
        }
    }
}

impl fmt::Display for Blocked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

use Blocked as B;

const fn v4(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// Everything not listed is allowed.
pub(crate) const V4_RULES: &[(Ipv4Addr, u8, Blocked)] = &[
    (v4(0, 0, 0, 0), 8, B::Unspecified),
    (v4(10, 0, 0, 0), 8, B::Private),
    (v4(100, 64, 0, 0), 10, B::Cgnat),
    (v4(127, 0, 0, 0), 8, B::Loopback),
    (v4(169, 254, 0, 0), 16, B::LinkLocal),
    (v4(172, 16, 0, 0), 12, B::Private),
    (v4(192, 0, 0, 0), 24, B::IetfProtocol),
    (v4(192, 0, 2, 0), 24, B::Documentation),
    (v4(192, 88, 99, 0), 24, B::Relay6to4),
    (v4(192, 168, 0, 0), 16, B::Private),
    (v4(198, 18, 0, 0), 15, B::Benchmarking),
    (v4(198, 51, 100, 0), 24, B::Documentation),
    (v4(203, 0, 113, 0), 24, B::Documentation),
    (v4(224, 0, 0, 0), 4, B::Multicast),
    (v4(240, 0, 0, 0), 4, B::Reserved),
    (v4(255, 255, 255, 255), 32, B::Broadcast),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum V6Rule {
    Block(Blocked),
    Allow,
    /// The address carries an IPv4 address at this byte offset, and packets end up there: judge that one.
    Embeds4(usize),
}

const fn v6(a: u16, b: u16, c: u16) -> Ipv6Addr {
    Ipv6Addr::new(a, b, c, 0, 0, 0, 0, 0)
}

/// Fail closed: only `2000::/3` is handed out as global unicast, so everything else is refused
/// unless a more specific row says otherwise.
pub(crate) const V6_RULES: &[(Ipv6Addr, u8, V6Rule)] = &[
    (Ipv6Addr::UNSPECIFIED, 0, V6Rule::Block(B::Reserved)),
    (v6(0x2000, 0, 0), 3, V6Rule::Allow),
    (Ipv6Addr::UNSPECIFIED, 128, V6Rule::Block(B::Unspecified)),
    (Ipv6Addr::LOCALHOST, 128, V6Rule::Block(B::Loopback)),
    (Ipv6Addr::UNSPECIFIED, 96, V6Rule::Block(B::Ipv4Compatible)),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96, V6Rule::Embeds4(12)),
    (v6(0x64, 0xff9b, 0), 96, V6Rule::Embeds4(12)),
    (v6(0x64, 0xff9b, 1), 48, V6Rule::Block(B::Nat64Local)),
    (v6(0x100, 0, 0), 64, V6Rule::Block(B::Discard)),
    (v6(0x2001, 0, 0), 23, V6Rule::Block(B::IetfProtocol)),
    (v6(0x2001, 0, 0), 32, V6Rule::Block(B::Teredo)),
    (v6(0x2001, 0xdb8, 0), 32, V6Rule::Block(B::Documentation)),
    (v6(0x2002, 0, 0), 16, V6Rule::Embeds4(2)),
    (v6(0x3fff, 0, 0), 20, V6Rule::Block(B::Documentation)),
    (v6(0xfc00, 0, 0), 7, V6Rule::Block(B::UniqueLocal)),
    (v6(0xfe80, 0, 0), 10, V6Rule::Block(B::LinkLocal)),
    (v6(0xfec0, 0, 0), 10, V6Rule::Block(B::SiteLocal)),
    (v6(0xff00, 0, 0), 8, V6Rule::Block(B::Multicast)),
];

/// The class that refuses `ip`, or `None` when it is a public address.
pub(crate) fn classify(ip: IpAddr) -> Option<Blocked> {
    match ip {
        IpAddr::V4(ip) => classify_v4(ip),
        IpAddr::V6(ip) => classify_v6(ip),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Blocked> {
    let bits = u32::from(ip);
    V4_RULES
        .iter()
        .filter(|(net, len, _)| bits & mask32(*len) == u32::from(*net))
        .max_by_key(|row| row.1)
        .map(|row| row.2)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Blocked> {
    let bits = u128::from(ip);
    let rule = V6_RULES
        .iter()
        .filter(|(net, len, _)| bits & mask128(*len) == u128::from(*net))
        .max_by_key(|row| row.1)
        .map_or(V6Rule::Block(B::Reserved), |row| row.2);
    match rule {
        V6Rule::Block(class) => Some(class),
        V6Rule::Allow => None,
        V6Rule::Embeds4(at) => {
            let o = ip.octets();
            classify_v4(Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]))
        }
    }
}

pub(crate) fn mask32(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

pub(crate) fn mask128(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}
