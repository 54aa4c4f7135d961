//! Network family: TCP connect, accept and listen with kernel-resolved addresses
//! (`exporter-ebpf/src/net.rs`).
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use tripline_common::{NetEvent, AF_INET6};

use super::{checked, DecodeError};
use crate::model::record::{errno_name, Attrs};
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

pub(super) fn attributes(ev: &Event, n: &Net, a: &mut Attrs) {
    a.push(("network.transport", n.transport.as_str().into()));
    a.push((
        "network.type",
        if n.local.is_ipv6() { "ipv6" } else { "ipv4" }.into(),
    ));
    a.push(("network.local.address", n.local.ip().to_string().into()));
    a.push(("network.local.port", n.local.port().into()));
    if ev.kind != EventKind::Listen {
        a.push(("network.peer.address", n.peer.ip().to_string().into()));
        a.push(("network.peer.port", n.peer.port().into()));
    }
    a.push(("tripline.network.result", n.result.into()));
    if n.result < 0 {
        a.push(("error.type", errno_name(-n.result).into()));
    }
}

pub(super) fn summary(ev: &Event, n: &Net, out: &mut String) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = match ev.kind {
        EventKind::Listen => write!(out, " listens on {}", n.local),
        EventKind::Accept => write!(out, " accepted {} on {}", n.peer, n.local),
        _ if n.result < 0 => write!(
            out,
            " failed to connect to {} ({})",
            n.peer,
            errno_name(-n.result)
        ),
        _ => write!(out, " connected to {}", n.peer),
    };
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
