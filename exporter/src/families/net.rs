//! Network family: TCP connect, accept and listen with kernel-resolved addresses
//! (`exporter-ebpf/src/net.rs`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tripline_common::{NetEvent, AF_INET6};

use super::{checked, DecodeError};
use crate::model::record::{errno_name, AttrSink};
use crate::model::{Event, EventData, EventKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Net {
    pub transport: Transport,
    pub local: SocketAddr,
    /// Unspecified address and port 0 for `listen`.
    pub peer: SocketAddr,
    /// 0 (or the accepted fd) on success, `-errno` on failure.
    pub result: i64,
}

impl Net {
    pub fn succeeded(&self) -> bool {
        self.result >= 0
    }

    pub fn peer_ip(&self) -> IpAddr {
        self.peer.ip()
    }
}

pub(super) fn decode(bytes: &[u8], kind: EventKind) -> Result<EventData, DecodeError> {
    let e: NetEvent = checked(bytes, kind)?;
    let ip = |a: [u8; 16]| -> IpAddr {
        if e.family == AF_INET6 {
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(a[0], a[1], a[2], a[3]))
        }
    };
    Ok(EventData::Net(Net {
        transport: Transport::Tcp,
        local: SocketAddr::new(ip(e.local_addr), e.local_port),
        peer: SocketAddr::new(ip(e.peer_addr), e.peer_port),
        result: e.result,
    }))
}

pub(super) fn attributes<'a>(ev: &'a Event, n: &'a Net, a: &mut impl AttrSink<'a>) {
    a.push(("network.transport", n.transport.as_str().into()));
    a.push((
        "network.type",
        if n.local.is_ipv6() { "ipv6" } else { "ipv4" }.into(),
    ));
    a.push(("network.local.address", ip_text(n.local.ip()).into()));
    a.push(("network.local.port", n.local.port().into()));
    if ev.kind != EventKind::Listen {
        a.push(("network.peer.address", ip_text(n.peer.ip()).into()));
        a.push(("network.peer.port", n.peer.port().into()));
    }
    a.push(("tripline.network.result", n.result.into()));
    if n.result < 0 {
        a.push(("error.type", errno_name(-n.result).into()));
    }
}

pub(super) fn summary(ev: &Event, n: &Net, out: &mut String) {
    match ev.kind {
        EventKind::Listen => {
            out.push_str(" listens on ");
            push_addr(out, n.local);
        }
        EventKind::Accept => {
            out.push_str(" accepted ");
            push_addr(out, n.peer);
            out.push_str(" on ");
            push_addr(out, n.local);
        }
        _ if n.result < 0 => {
            out.push_str(" failed to connect to ");
            push_addr(out, n.peer);
            out.push_str(" (");
            out.push_str(&errno_name(-n.result));
            out.push(')');
        }
        _ => {
            out.push_str(" connected to ");
            push_addr(out, n.peer);
        }
    }
}

/// `ip` as `Display` writes it; IPv4 by hand (the formatter's padding machinery cost more than all
/// of an event's other attributes).
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                out.push_str(itoa::Buffer::new().format(*o));
            }
        }
        IpAddr::V6(v6) => {
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

fn ip_text(ip: IpAddr) -> String {
    let mut s = String::with_capacity(15);
    push_ip(&mut s, ip);
    s
}

/// `addr` as `Display` writes it (`10.0.0.1:443`, `[::1]:443`).
fn push_addr(out: &mut String, addr: SocketAddr) {
    match addr {
        SocketAddr::V4(_) => push_ip(out, addr.ip()),
        SocketAddr::V6(v6) if v6.scope_id() == 0 => {
            out.push('[');
            push_ip(out, addr.ip());
            out.push(']');
        }
        SocketAddr::V6(_) => {
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(out, "{addr}");
            return;
        }
    }
    out.push(':');
    out.push_str(itoa::Buffer::new().format(addr.port()));
}

pub fn encode(
    mut h: tripline_common::Header,
    local: SocketAddr,
    peer: SocketAddr,
    result: i64,
) -> Vec<u8> {
    h.len = std::mem::size_of::<NetEvent>() as u32;
    let addr = |a: IpAddr| -> [u8; 16] {
        match a {
            IpAddr::V4(v4) => {
                let mut b = [0u8; 16];
                b[..4].copy_from_slice(&v4.octets());
                b
            }
            IpAddr::V6(v6) => v6.octets(),
        }
    };
    super::encode::bytes_of(&NetEvent {
        header: h,
        family: if local.is_ipv6() {
            AF_INET6
        } else {
            tripline_common::AF_INET
        },
        protocol: tripline_common::IPPROTO_TCP,
        local_port: local.port(),
        peer_port: peer.port(),
        local_addr: addr(local.ip()),
        peer_addr: addr(peer.ip()),
        result,
    })
}

#[cfg(test)]
mod tests {
    /// Addresses read as `Display` writes them.
    #[test]
    fn addresses_as_display_writes_them() {
        use std::net::{IpAddr, SocketAddr, SocketAddrV6};
        for a in [
            "0.0.0.0:0",
            "10.0.0.2:40000",
            "255.255.255.255:65535",
            "[::1]:443",
            "[::ffff:10.0.0.1]:80",
            "[fe80::1]:22",
            "[2001:db8::8a2e:370:7334]:8080",
        ] {
            let addr: SocketAddr = a.parse().unwrap();
            let mut s = String::new();
            super::push_addr(&mut s, addr);
            assert_eq!(s, addr.to_string());
            let ip: IpAddr = addr.ip();
            assert_eq!(super::ip_text(ip), ip.to_string());
        }
        let scoped = SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 22, 0, 3));
        let mut s = String::new();
        super::push_addr(&mut s, scoped);
        assert_eq!(s, scoped.to_string());
    }

    use std::mem::size_of;

    use tripline_common::kind;

    use super::super::decode;
    use super::super::encode::header;
    use super::*;

    #[test]
    fn net_round_trip_v4_v6() {
        for (k, local, peer, res) in [
            (kind::CONNECT, "127.0.0.1:40000", "127.0.0.1:80", -111i64),
            (kind::ACCEPT, "[::1]:8080", "[::1]:50000", 5),
            (kind::LISTEN, "0.0.0.0:22", "0.0.0.0:0", 0),
        ] {
            let (l, p): (SocketAddr, SocketAddr) = (local.parse().unwrap(), peer.parse().unwrap());
            let d = decode(&encode(header(k, size_of::<NetEvent>(), 3), l, p, res)).unwrap();
            let EventData::Net(n) = d.data else {
                panic!("not net")
            };
            assert_eq!((n.local, n.peer, n.result), (l, p, res));
        }
    }
}
