//! Decoding of the tcp tracer's records and connection-map values
//! (bpf/tcplife.h), and how addresses and states are shown.

use std::net::{Ipv4Addr, Ipv6Addr};
use tracer_plugin_kit::{c_str, need, u16_at, u32_at, u64_at};

pub const NSTATES: usize = 14;
pub const CONN_SIZE: usize = 216;
pub const TRANSITION_SIZE: usize = 80;
pub const CLOSE_SIZE: usize = 32 + CONN_SIZE;

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;

pub const FLAG_ACTIVE: u8 = 1;

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
    match e {
        0 => "fin",
        1 => "rst_received",
        2 => "rst_sent",
        3 => "refused",
        4 => "timeout",
        5 => "abort",
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
        need(b, CONN_SIZE, "tcp connection")?;
        let family = u16_at(b, 156);
        let (fam, saddr) = addr(family, &b[164..180]);
        let (_, daddr) = addr(family, &b[180..196]);
        let mut state_ns = [0u64; NSTATES];
        for (i, s) in state_ns.iter_mut().enumerate() {
            *s = u64_at(b, 40 + i * 8);
        }
        Ok(Conn {
            first_ns: u64_at(b, 0),
            last_ns: u64_at(b, 8),
            established_ns: u64_at(b, 24),
            connect_ns: u64_at(b, 32),
            state_ns,
            pid: u32_at(b, 152),
            family: fam,
            sport: u16_at(b, 158),
            dport: u16_at(b, 160),
            state: b[162],
            flags: b[163],
            saddr,
            daddr,
            comm: c_str(&b[196..212]),
        })
    }

    pub fn active(&self) -> bool {
        self.flags & FLAG_ACTIVE != 0
    }

    /// `ESTABLISHED 1.2ms, FIN_WAIT1 40µs` for the states it spent time in.
    pub fn state_times(&self) -> String {
        self.state_ns
            .iter()
            .enumerate()
            .filter(|(_, ns)| **ns > 0)
            .map(|(i, ns)| format!("{} {}", state_name(i as u8), fmt_ns(*ns)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn fmt_ns(ns: u64) -> String {
    match ns {
        0..=9_999 => format!("{ns}ns"),
        10_000..=9_999_999 => format!("{}µs", ns / 1000),
        _ => format!("{}ms", ns / 1_000_000),
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
        need(b, TRANSITION_SIZE, "tcp transition")?;
        let family = u16_at(b, 20);
        let (fam, saddr) = addr(family, &b[28..44]);
        let (_, daddr) = addr(family, &b[44..60]);
        Ok(Transition {
            ts_ns: u64_at(b, 0),
            in_old_ns: u64_at(b, 8),
            pid: u32_at(b, 16),
            family: fam,
            sport: u16_at(b, 22),
            dport: u16_at(b, 24),
            oldstate: b[26],
            newstate: b[27],
            saddr,
            daddr,
            comm: c_str(&b[60..76]),
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
        need(b, CLOSE_SIZE, "tcp close")?;
        Ok(Close {
            ts_ns: u64_at(b, 0),
            bytes_acked: u64_at(b, 8),
            bytes_received: u64_at(b, 16),
            end: b[24],
            conn: Conn::decode(&b[32..])?,
        })
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

    /// A tcp_conn as the kernel lays it out.
    pub fn conn_bytes(pid: u32, family: u16, saddr: &[u8], daddr: &[u8], sport: u16, dport: u16, state: u8, flags: u8) -> Vec<u8> {
        let mut b = vec![0u8; CONN_SIZE];
        b[0..8].copy_from_slice(&100u64.to_ne_bytes());
        b[24..32].copy_from_slice(&1_000u64.to_ne_bytes()); // established_ns
        b[32..40].copy_from_slice(&250u64.to_ne_bytes()); // connect_ns
        b[40 + 8..48 + 8].copy_from_slice(&5_000u64.to_ne_bytes()); // ESTABLISHED
        b[152..156].copy_from_slice(&pid.to_ne_bytes());
        b[156..158].copy_from_slice(&family.to_ne_bytes());
        b[158..160].copy_from_slice(&sport.to_ne_bytes());
        b[160..162].copy_from_slice(&dport.to_ne_bytes());
        b[162] = state;
        b[163] = flags;
        b[164..164 + saddr.len()].copy_from_slice(saddr);
        b[180..180 + daddr.len()].copy_from_slice(daddr);
        b[196..200].copy_from_slice(b"curl");
        b
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
        let mut b = vec![0u8; 32];
        b[0..8].copy_from_slice(&9_000u64.to_ne_bytes());
        b[8..16].copy_from_slice(&1000u64.to_ne_bytes());
        b[16..24].copy_from_slice(&500u64.to_ne_bytes());
        b[24] = 0;
        b.extend(conn_bytes(42, AF_INET, &[127, 0, 0, 1], &[127, 0, 0, 1], 5555, 80, 7, FLAG_ACTIVE | 2));
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
        assert_eq!(c.conn.state_times(), "ESTABLISHED 5000ns");
        assert!(Close::decode(&b[..100]).is_err());
    }

    #[test]
    fn transitions_decode() {
        let mut b = vec![0u8; TRANSITION_SIZE];
        b[16..20].copy_from_slice(&7u32.to_ne_bytes());
        b[20..22].copy_from_slice(&AF_INET.to_ne_bytes());
        b[22..24].copy_from_slice(&1234u16.to_ne_bytes());
        b[26] = 2;
        b[27] = 1;
        b[28..32].copy_from_slice(&[127, 0, 0, 1]);
        let t = Transition::decode(&b).unwrap();
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
