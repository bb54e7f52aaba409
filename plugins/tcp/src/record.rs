//! Decoding of the tcp tracer's records and connection-map values
//! (bpf/tcplife.h), and how addresses and states are shown.

use std::net::{Ipv4Addr, Ipv6Addr};
use crate::types::{tcp_close, tcp_conn, tcp_transition, TCP_FLAG_ACTIVE, TCP_NSTATES};
use tracer_plugin_kit::{c_str, read};

pub const NSTATES: usize = TCP_NSTATES as usize;
pub const TRANSITION_SIZE: usize = std::mem::size_of::<tcp_transition>();

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

pub const FLAG_ACTIVE: u8 = TCP_FLAG_ACTIVE as u8;

fn short(b: &[u8], what: &str, size: usize) -> String {
    format!("{what} too short: {} bytes, expected {size}", b.len())
}

pub fn state_name(s: u8) -> &'static str {
    const NAMES: [&str; NSTATES] = [
        "UNKNOWN",
        "ESTABLISHED",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "TIME_WAIT",
        "CLOSE",
        "CLOSE_WAIT",
        "LAST_ACK",
        "LISTEN",
        "CLOSING",
        "NEW_SYN_RECV",
        "BOUND_INACTIVE",
    ];
    NAMES.get(s as usize).copied().unwrap_or("?")
}

pub fn end_name(e: u8) -> &'static str {
    use crate::types::*;
    match e as u32 {
        TCP_END_FIN => "fin",
        TCP_END_RST_RECEIVED => "rst_received",
        TCP_END_RST_SENT => "rst_sent",
        TCP_END_REFUSED => "refused",
        TCP_END_TIMEOUT => "timeout",
        TCP_END_ABORT => "abort",
        _ => "?",
    }
}

/// An address as text, and the family it really is: IPv4-mapped IPv6
/// (`::ffff:a.b.c.d`) is shown as IPv4.
pub fn addr(family: u16, b: &[u8]) -> (u8, String) {
    if family == AF_INET {
        return (4, Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string());
    }
    let a = Ipv6Addr::from(<[u8; 16]>::try_from(&b[..16]).unwrap());
    match a.to_ipv4_mapped() {
        Some(v4) => (4, v4.to_string()),
        None => (6, a.to_string()),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Conn {
    pub first_ns: u64,
    pub last_ns: u64,
    pub established_ns: u64,
    pub connect_ns: u64,
    pub state_ns: [u64; NSTATES],
    pub pid: u32,
    pub family: u8,
    pub sport: u16,
    pub dport: u16,
    pub state: u8,
    pub flags: u8,
    pub saddr: String,
    pub daddr: String,
    pub comm: String,
}

impl Conn {
    /// Connect latency, or missing where it does not apply: a passive end
    /// (it did not connect) or a connect that never completed (refused,
    /// timed out). A completed connect always took some nanoseconds.
    pub fn connect_value(&self) -> tracer_plugin_api::FieldValue {
        if self.connect_ns == 0 {
            tracer_plugin_api::Value::missing()
        } else {
            tracer_plugin_api::Value::u64(self.connect_ns)
        }
    }

    pub fn decode(b: &[u8]) -> Result<Conn, String> {
        let c: tcp_conn = read(b).ok_or_else(|| short(b, "tcp connection", std::mem::size_of::<tcp_conn>()))?;
        Ok(Conn::from_raw(&c))
    }

    fn from_raw(c: &tcp_conn) -> Conn {
        let (fam, saddr) = addr(c.family, &c.saddr);
        let (_, daddr) = addr(c.family, &c.daddr);
        Conn {
            first_ns: c.first_ns,
            last_ns: c.last_ns,
            established_ns: c.established_ns,
            connect_ns: c.connect_ns,
            state_ns: c.state_ns,
            pid: c.pid,
            family: fam,
            sport: c.sport,
            dport: c.dport,
            state: c.state,
            flags: c.flags,
            saddr,
            daddr,
            comm: c_str(&c.comm),
        }
    }

    pub fn active(&self) -> bool {
        self.flags & FLAG_ACTIVE != 0
    }

    /// The states it spent time in, in the kernel's state order, with the
    /// time spent in each (the host shows `ESTABLISHED 1.2ms, FIN_WAIT1 40µs`).
    pub fn state_times(&self) -> Vec<(&'static str, u64)> {
        self.state_ns.iter().enumerate().filter(|(_, ns)| **ns > 0).map(|(i, ns)| (state_name(i as u8), *ns)).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub ts_ns: u64,
    pub in_old_ns: u64,
    pub pid: u32,
    pub family: u8,
    pub sport: u16,
    pub dport: u16,
    pub oldstate: u8,
    pub newstate: u8,
    pub saddr: String,
    pub daddr: String,
    pub comm: String,
}

impl Transition {
    pub fn decode(b: &[u8]) -> Result<Transition, String> {
        let t: tcp_transition = read(b).ok_or_else(|| short(b, "tcp transition", TRANSITION_SIZE))?;
        let (fam, saddr) = addr(t.family, &t.saddr);
        let (_, daddr) = addr(t.family, &t.daddr);
        Ok(Transition {
            ts_ns: t.ts_ns,
            in_old_ns: t.in_old_ns,
            pid: t.pid,
            family: fam,
            sport: t.sport,
            dport: t.dport,
            oldstate: t.oldstate,
            newstate: t.newstate,
            saddr,
            daddr,
            comm: c_str(&t.comm),
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Close {
    pub ts_ns: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    pub end: u8,
    pub conn: Conn,
}

impl Close {
    pub fn decode(b: &[u8]) -> Result<Close, String> {
        let c: tcp_close = read(b).ok_or_else(|| short(b, "tcp close", std::mem::size_of::<tcp_close>()))?;
        Ok(Close { ts_ns: c.ts_ns, bytes_acked: c.bytes_acked, bytes_received: c.bytes_received, end: c.end, conn: Conn::from_raw(&c.conn) })
    }

    /// From ESTABLISHED to close; 0 if never established.
    /// Established to close; missing for a connection that was never
    /// established (refused, timed out).
    pub fn lifetime_value(&self) -> tracer_plugin_api::FieldValue {
        if self.conn.established_ns == 0 {
            tracer_plugin_api::Value::missing()
        } else {
            tracer_plugin_api::Value::u64(self.ts_ns.saturating_sub(self.conn.established_ns))
        }
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A tcp_conn of a `curl` connection, established for 5 µs.
    pub fn conn(pid: u32, family: u16, saddr: &[u8], daddr: &[u8], sport: u16, dport: u16, state: u8, flags: u8) -> tcp_conn {
        let mut c = tcp_conn { first_ns: 100, established_ns: 1_000, connect_ns: 250, pid, family, sport, dport, state, flags, ..Default::default() };
        c.state_ns[1] = 5_000; // ESTABLISHED
        c.saddr[..saddr.len()].copy_from_slice(saddr);
        c.daddr[..daddr.len()].copy_from_slice(daddr);
        c.comm[..4].copy_from_slice(b"curl");
        c
    }

    pub fn close_bytes(end: u8, bytes_acked: u64, bytes_received: u64, conn: tcp_conn) -> Vec<u8> {
        tracer_plugin_kit::bytes_of(&tcp_close { ts_ns: 9_000, bytes_acked, bytes_received, end, conn, ..Default::default() }).to_vec()
    }

    #[test]
    fn v4_v6_and_v4_mapped_addresses() {
        assert_eq!(addr(AF_INET, &[127, 0, 0, 1, 0, 0]), (4, "127.0.0.1".into()));
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 1, 2, 3]);
        assert_eq!(addr(AF_INET6, &mapped), (4, "10.1.2.3".into()));
        let mut lo6 = [0u8; 16];
        lo6[15] = 1;
        assert_eq!(addr(AF_INET6, &lo6), (6, "::1".into()));
    }

    #[test]
    fn close_records_decode() {
        let b = close_bytes(0, 1000, 500, conn(42, AF_INET, &[127, 0, 0, 1], &[127, 0, 0, 1], 5555, 80, 7, FLAG_ACTIVE | 2));
        let c = Close::decode(&b).unwrap();
        assert_eq!((c.bytes_acked, c.bytes_received, end_name(c.end)), (1000, 500, "fin"));
        assert_eq!(c.conn.pid, 42);
        assert_eq!(c.conn.comm, "curl");
        assert_eq!((c.conn.sport, c.conn.dport), (5555, 80));
        assert!(c.conn.active());
        assert_eq!(c.lifetime_value(), tracer_plugin_api::Value::u64(8_000));
        assert_eq!(c.conn.connect_value(), tracer_plugin_api::Value::u64(250));
        let mut never = c.clone();
        never.conn.established_ns = 0;
        never.conn.connect_ns = 0;
        assert_eq!((never.lifetime_value(), never.conn.connect_value()), (tracer_plugin_api::Value::missing(), tracer_plugin_api::Value::missing()));
        assert_eq!(c.conn.state_times(), vec![("ESTABLISHED", 5000)]);
        assert!(Close::decode(&b[..100]).is_err());
    }

    #[test]
    fn transitions_decode() {
        let mut raw = tcp_transition { pid: 7, family: AF_INET, sport: 1234, oldstate: 2, newstate: 1, ..Default::default() };
        raw.saddr[..4].copy_from_slice(&[127, 0, 0, 1]);
        let t = Transition::decode(tracer_plugin_kit::bytes_of(&raw)).unwrap();
        assert_eq!((t.pid, t.sport, state_name(t.oldstate), state_name(t.newstate)), (7, 1234, "SYN_SENT", "ESTABLISHED"));
        assert_eq!(t.saddr, "127.0.0.1");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes from the rings or the connection map: a value or an error.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600), fam in any::<u16>()) {
            let _ = Close::decode(&b);
            let _ = Transition::decode(&b);
            if let Ok(c) = Conn::decode(&b) {
                let _ = c.state_times();
            }
            if b.len() >= 16 {
                let _ = addr(fam, &b[..16]);
            }
            let _ = (state_name(b.first().copied().unwrap_or(0)), end_name(b.last().copied().unwrap_or(0)));
        }
    }
}
