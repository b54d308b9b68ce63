use super::*;
use crate::ranges::{mask128, mask32, V4_RULES, V6_RULES};
use std::net::{Ipv4Addr, Ipv6Addr};
use tokio::net::TcpListener;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn strict(s: &str) -> Option<Blocked> {
    Guard::strict().check_ip(ip(s))
}

#[test]
fn every_class_is_refused() {
    let cases = [
        ("0.0.0.0", Blocked::Unspecified),
        ("0.1.2.3", Blocked::Unspecified),
        ("10.0.0.1", Blocked::Private),
        ("10.255.255.255", Blocked::Private),
        ("100.64.0.1", Blocked::Cgnat),
        ("100.100.100.200", Blocked::Cgnat),
        ("100.127.255.255", Blocked::Cgnat),
        ("127.0.0.1", Blocked::Loopback),
        ("127.255.0.9", Blocked::Loopback),
        ("169.254.169.254", Blocked::LinkLocal),
        ("172.16.0.1", Blocked::Private),
        ("172.31.255.254", Blocked::Private),
        ("192.0.0.192", Blocked::IetfProtocol),
        ("192.0.2.10", Blocked::Documentation),
        ("198.51.100.7", Blocked::Documentation),
        ("203.0.113.99", Blocked::Documentation),
        ("192.88.99.1", Blocked::Relay6to4),
        ("192.168.1.1", Blocked::Private),
        ("198.18.0.1", Blocked::Benchmarking),
        ("198.19.255.255", Blocked::Benchmarking),
        ("224.0.0.1", Blocked::Multicast),
        ("239.255.255.250", Blocked::Multicast),
        ("240.0.0.1", Blocked::Reserved),
        ("255.255.255.254", Blocked::Reserved),
        ("255.255.255.255", Blocked::Broadcast),
        ("::", Blocked::Unspecified),
        ("::1", Blocked::Loopback),
        ("::ffff:127.0.0.1", Blocked::Loopback),
        ("::ffff:7f00:1", Blocked::Loopback),
        ("::ffff:169.254.169.254", Blocked::LinkLocal),
        ("::ffff:10.1.2.3", Blocked::Private),
        ("::8.8.8.8", Blocked::Ipv4Compatible),
        ("::127.0.0.1", Blocked::Ipv4Compatible),
        ("64:ff9b::7f00:1", Blocked::Loopback),
        ("64:ff9b::a9fe:a9fe", Blocked::LinkLocal),
        ("64:ff9b:1::808:808", Blocked::Nat64Local),
        ("100::1", Blocked::Discard),
        ("2001::1", Blocked::Teredo),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Blocked::Teredo),
        ("2001:2::1", Blocked::IetfProtocol),
        ("2001:1ff::1", Blocked::IetfProtocol),
        ("2001:db8::1", Blocked::Documentation),
        ("3fff::1", Blocked::Documentation),
        ("3fff:fff::1", Blocked::Documentation),
        ("2002:7f00:1::1", Blocked::Loopback),
        ("2002:a9fe:a9fe::", Blocked::LinkLocal),
        ("2002:c0a8:101::1", Blocked::Private),
        ("fc00::1", Blocked::UniqueLocal),
        ("fd00:ec2::254", Blocked::UniqueLocal),
        ("fe80::1", Blocked::LinkLocal),
        ("febf:ffff::1", Blocked::LinkLocal),
        ("fec0::1", Blocked::SiteLocal),
        ("ff02::1", Blocked::Multicast),
        ("ff0e::101", Blocked::Multicast),
        ("4000::1", Blocked::Reserved),
        ("::2:1:1:1", Blocked::Reserved),
        ("1234::1", Blocked::Reserved),
    ];
    for (addr, class) in cases {
        assert_eq!(strict(addr), Some(class), "{addr}");
    }
}

#[test]
fn public_addresses_are_allowed() {
    for addr in [
        "8.8.8.8",
        "1.1.1.1",
        "100.63.255.255",
        "100.128.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.1",
        "192.0.3.1",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "2606:4700:4700::1111",
        "2001:4860:4860::8888",
        "2001:200::1",
        "2a00:1450:4001:80b::200e",
        "3ffe::1",
        "3fff:1000::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ] {
        assert_eq!(strict(addr), None, "{addr}");
    }
}

#[test]
fn table_rows_are_well_formed() {
    for (net, len, class) in V4_RULES {
        assert!(*len <= 32 && u32::from(*net) & !mask32(*len) == 0, "{net}/{len} ({class}) has host bits");
    }
    for (net, len, rule) in V6_RULES {
        assert!(*len <= 128 && u128::from(*net) & !mask128(*len) == 0, "{net}/{len} ({rule:?}) has host bits");
    }
    let v4: Vec<_> = V4_RULES.iter().map(|r| (r.0, r.1)).collect();
    let v6: Vec<_> = V6_RULES.iter().map(|r| (r.0, r.1)).collect();
    for (i, row) in v4.iter().enumerate() {
        assert!(!v4[i + 1..].contains(row), "{row:?} twice");
    }
    for (i, row) in v6.iter().enumerate() {
        assert!(!v6[i + 1..].contains(row), "{row:?} twice");
    }
}

#[test]
fn allowing_private_lets_everything_through() {
    let guard = Guard::allowing_private();
    assert!(guard.allows_private());
    assert!(!Guard::strict().allows_private());
    for addr in ["127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "fd00:ec2::254", "8.8.8.8"] {
        assert_eq!(guard.check_ip(ip(addr)), None, "{addr}");
    }
}

#[test]
fn env_value_enables_private_only_when_clearly_set() {
    for yes in ["true", "TRUE", "True", "1", "yes", "YES", " true "] {
        assert!(Guard::from_env_value(Some(yes)).allows_private(), "{yes:?}");
    }
    for no in [None, Some(""), Some("false"), Some("0"), Some("no"), Some("on"), Some("truee"), Some("y")] {
        assert!(!Guard::from_env_value(no).allows_private(), "{no:?}");
    }
}

fn blocked_class(result: Result<Vec<SocketAddr>, GuardError>) -> Blocked {
    match result {
        Err(GuardError::Blocked { what, .. }) => what,
        other => panic!("expected Blocked, got {other:?}"),
    }
}

#[tokio::test]
async fn literals_are_judged_without_lookup() {
    let guard = Guard::strict();
    assert_eq!(guard.resolve("8.8.8.8", 25).await.unwrap(), vec![SocketAddr::from(([8, 8, 8, 8], 25))]);
    let v6: SocketAddr = "[2606:4700:4700::1111]:587".parse().unwrap();
    assert_eq!(guard.resolve("[2606:4700:4700::1111]", 587).await.unwrap(), vec![v6]);
    assert_eq!(guard.resolve("2606:4700:4700::1111", 587).await.unwrap(), vec![v6]);

    assert_eq!(blocked_class(guard.resolve("127.0.0.1", 25).await), Blocked::Loopback);
    assert_eq!(blocked_class(guard.resolve("[::1]", 25).await), Blocked::Loopback);
    assert_eq!(blocked_class(guard.resolve("::ffff:127.0.0.1", 25).await), Blocked::Loopback);
    assert_eq!(blocked_class(guard.resolve("[::ffff:7f00:1]", 25).await), Blocked::Loopback);
    assert_eq!(blocked_class(guard.resolve("169.254.169.254", 80).await), Blocked::LinkLocal);
    assert_eq!(blocked_class(guard.resolve("[fd00:ec2::254]", 80).await), Blocked::UniqueLocal);

    let local = Guard::allowing_private().resolve("127.0.0.1", 25).await.unwrap();
    assert_eq!(local, vec![SocketAddr::from(([127, 0, 0, 1], 25))]);
}

#[tokio::test]
async fn localhost_by_name_is_blocked() {
    assert_eq!(blocked_class(Guard::strict().resolve("localhost", 25).await), Blocked::Loopback);
    assert_eq!(blocked_class(Guard::strict().resolve("LOCALHOST", 25).await), Blocked::Loopback);
    let found = Guard::allowing_private().resolve("localhost", 25).await.unwrap();
    assert!(found.iter().all(|a| a.ip().is_loopback() && a.port() == 25), "{found:?}");
}

#[tokio::test]
async fn legacy_ipv4_spellings_never_reach_the_resolver() {
    // Each is loopback (or 0.0.0.0) to inet_aton; none may be treated as a name.
    for host in [
        "127.1",
        "127.0.1",
        "0x7f.1",
        "0x7f.0.0.1",
        "0x7f000001",
        "0X7F000001",
        "2130706433",
        "017700000001",
        "0177.0.0.1",
        "127.000.000.001",
        "127.0.0.1.",
        "0",
        "0x",
        "1.2.3.4.5",
    ] {
        for guard in [Guard::strict(), Guard::allowing_private()] {
            match guard.resolve(host, 25).await {
                Err(GuardError::Invalid { .. }) => {}
                other => panic!("{host:?} under {guard:?}: expected Invalid, got {other:?}"),
            }
        }
    }
}

#[tokio::test]
async fn invalid_hosts_are_refused_without_lookup() {
    let long_label = format!("{}.com", "a".repeat(64));
    let long_name = format!("{}.com", vec!["a".repeat(60); 5].join("."));
    assert!(long_name.len() > 253);
    let ok_label = format!("{}.invalid", "a".repeat(63));
    for host in [
        "",
        " ",
        " example.com",
        "example.com ",
        "exa mple.com",
        "example.com\n",
        "exam\0ple.com",
        "example\t.com",
        "a..b",
        ".example.com",
        "example.com..",
        ".",
        long_label.as_str(),
        long_name.as_str(),
        "exämple.com",
        "example.com:25",
        "fe80::1%eth0",
        "[fe80::1%eth0]",
        "[::1",
        "::1]",
        "[127.0.0.1]",
        "[example.com]",
        "user@example.com",
        "example.com/path",
        "http://example.com",
        "1:2:3",
    ] {
        match Guard::allowing_private().resolve(host, 25).await {
            Err(e @ GuardError::Invalid { .. }) => {
                assert_eq!(e.tenant_message(), "the server name is not a valid host name or IP address")
            }
            other => panic!("{host:?}: expected Invalid, got {other:?}"),
        }
    }
    // At the limits, and so looked up (and not found).
    for host in [ok_label.as_str(), "mail-1.no_such_host.invalid", "no-such-host.invalid."] {
        match Guard::strict().resolve(host, 25).await {
            Err(GuardError::Unresolvable { .. }) => {}
            other => panic!("{host:?}: expected Unresolvable, got {other:?}"),
        }
    }
}

#[test]
fn one_blocked_record_refuses_the_whole_name() {
    let public = SocketAddr::from(([93, 184, 215, 14], 25));
    let private = SocketAddr::from(([10, 0, 0, 7], 25));
    for found in [vec![public, private], vec![private, public]] {
        match Guard::strict().vet("mixed.example", found) {
            Err(GuardError::Blocked { addr, what: Blocked::Private, .. }) => assert_eq!(addr, private.ip()),
            other => panic!("expected Blocked, got {other:?}"),
        }
    }
    assert_eq!(Guard::strict().vet("twice.example", [public, public]).unwrap(), vec![public]);
    assert!(matches!(Guard::strict().vet("none.example", []), Err(GuardError::Unresolvable { .. })));
}

#[tokio::test]
async fn tenant_messages_carry_no_network_detail() {
    let errors = [
        Guard::strict().resolve("10.0.0.5", 6379).await.unwrap_err(),
        Guard::strict().resolve("localhost", 6379).await.unwrap_err(),
        Guard::strict().resolve("no-such-host.invalid", 25).await.unwrap_err(),
        GuardError::Connect { host: "mail.example".into(), detail: "10.0.0.5:6379: connection refused".into() },
    ];
    for e in &errors {
        let text = e.tenant_message();
        assert!(!text.bytes().any(|b| b.is_ascii_digit()), "{text}");
        for word in ["refused", "timed", "resolve", "10.0", "6379", "localhost", "private", "loopback"] {
            assert!(!text.contains(word), "{text:?} contains {word:?}");
        }
        assert!(e.to_string().len() > text.len() / 2, "the log text keeps the detail: {e}");
    }
    // A name that resolves to a private address reads like any unreachable server.
    assert_eq!(errors[1].tenant_message(), errors[2].tenant_message());
    assert_eq!(errors[1].tenant_message(), errors[3].tenant_message());
    // A literal the tenant typed is named as not allowed.
    assert_ne!(errors[0].tenant_message(), errors[2].tenant_message());
    assert!(errors[0].to_string().contains("10.0.0.5") && errors[0].to_string().contains("private"));
}

/// Whether the listener has a connection waiting. The handshake on loopback completes in the
/// kernel before `connect` returns, so anything that connected is already queued.
async fn accepted_any(listener: &TcpListener) -> bool {
    tokio::time::timeout(Duration::from_millis(200), listener.accept()).await.is_ok()
}

#[tokio::test]
async fn connect_tcp_reaches_a_local_listener_only_when_allowed() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let timeout = Duration::from_secs(5);

    for host in ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "127.1", "2130706433"] {
        let err = Guard::strict().connect_tcp(host, port, timeout).await.unwrap_err();
        assert!(matches!(err, GuardError::Blocked { .. } | GuardError::Invalid { .. }), "{host}: {err:?}");
        assert!(!accepted_any(&listener).await, "{host}: strict guard connected");
    }

    let (stream, addr) = Guard::allowing_private().connect_tcp("127.0.0.1", port, timeout).await.unwrap();
    assert_eq!(addr, SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    assert_eq!(stream.peer_addr().unwrap(), addr);
    assert!(accepted_any(&listener).await);

    let (_stream, addr) = Guard::allowing_private().connect_tcp("localhost", port, timeout).await.unwrap();
    assert!(addr.ip().is_loopback());
    assert!(accepted_any(&listener).await);
}

#[tokio::test]
async fn connect_tcp_failure_is_generic_for_the_tenant() {
    let closed = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let err = Guard::allowing_private().connect_tcp("127.0.0.1", port, Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(err, GuardError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&port.to_string()), "the log keeps the detail: {err}");
    assert_eq!(err.tenant_message(), "could not connect to the server");
}

#[test]
fn blocked_names_are_stable() {
    assert_eq!(Blocked::LinkLocal.to_string(), "link-local");
    assert_eq!(Blocked::Relay6to4.to_string(), "6to4-relay");
    assert_eq!(Ipv6Addr::LOCALHOST, ip("::1"));
}
