//! As root: the tcp tracer sees IPv4 and IPv6 loopback connections on a chosen
//! port with known bytes, both ends, with the owning pid and comm.
//!
//! The ports chosen are below the kernel's ephemeral range (32768-60999): a
//! port in it can be held by another test's client connection in TIME_WAIT
//! (curl's, which sets no SO_REUSEADDR), and a listener on it then fails
//! (seen in CI: 47314).

mod common;
use common::*;
use serde_json::Value;

fn closes<'a>(run: &'a JsonRun, family: u64, port: u64) -> Vec<&'a Value> {
    run.records("tcp")
        .into_iter()
        .filter(|r| r.get("dir").is_some() && r["family"] == family && (r["lport"] == port || r["rport"] == port))
        .collect()
}

#[test]
fn loopback_connections_are_reported_with_bytes_pids_and_how_they_ended() {
    let _g = serial();
    let (p4, p6, n, bytes) = (27311u64, 27312u64, 3u64, 10000u64);
    let (run, w) = run_with_workloads(
        "tcp",
        &format!("ports = [{p4}, {p6}]"),
        &[
            &["--comm", "tcpfour", "tcp4", &p4.to_string(), &n.to_string(), &bytes.to_string()],
            &["--comm", "tcpsix", "tcp6", &p6.to_string(), &n.to_string(), &bytes.to_string()],
        ],
    );
    for (family, port, (pid, _), comm, addr) in [(4, p4, &w[0], "tcpfour", "127.0.0.1"), (6, p6, &w[1], "tcpsix", "::1")] {
        let c = closes(&run, family, port);
        let active: Vec<_> = c.iter().filter(|r| r["dir"] == "active").collect();
        let passive: Vec<_> = c.iter().filter(|r| r["dir"] == "passive").collect();
        assert_eq!(active.len() as u64, n, "IPv{family} client ends: {c:#?}\n{}", run.stderr);
        assert_eq!(passive.len() as u64, n, "IPv{family} server ends");
        for r in &active {
            assert_eq!(r["pid"], *pid, "{r}");
            assert_eq!(r["comm"], comm, "the connecting thread");
            assert_eq!((r["laddr"].as_str(), r["raddr"].as_str()), (Some(addr), Some(addr)));
            assert_eq!(r["rport"], port);
            // bytes_acked / bytes_received count SYN and FIN sequence numbers too.
            let (tx, rx) = (r["tx_bytes"].as_u64().unwrap(), r["rx_bytes"].as_u64().unwrap());
            assert!((bytes..=bytes + 2).contains(&tx), "client sent {bytes}: {r}");
            assert!((bytes / 2..=bytes / 2 + 2).contains(&rx), "client received {}: {r}", bytes / 2);
            assert!(r["connect_ns"].as_u64().unwrap() > 0 && r["lifetime_ns"].as_u64().unwrap() > 0, "{r}");
            assert_eq!(r["end"], "fin");
            assert!(r["states"].as_array().unwrap().iter().any(|s| s["name"] == "ESTABLISHED" && s["ns"].as_u64() > Some(0)), "{r}");
        }
        for r in &passive {
            // The server thread closes first, in the same process.
            assert_eq!(r["pid"], *pid, "{r}");
            assert_eq!(r["lport"], port);
            let (tx, rx) = (r["tx_bytes"].as_u64().unwrap(), r["rx_bytes"].as_u64().unwrap());
            assert!((bytes / 2..=bytes / 2 + 2).contains(&tx) && (bytes..=bytes + 2).contains(&rx), "{r}");
            assert_eq!(r["end"], "fin");
        }
        // Transitions: the client's SYN_SENT -> ESTABLISHED, once per connection.
        let est = run
            .records("tcp")
            .into_iter()
            .filter(|r| r.get("new").is_some() && r["family"] == family && r["rport"] == port)
            .filter(|r| r["old"] == "SYN_SENT" && r["new"] == "ESTABLISHED")
            .count() as u64;
        assert_eq!(est, n);
    }
    // Every active connect is in the latency histogram (the filter kept only ours).
    let h = run.panel("tcp", "connect_latency");
    let count: u64 = h["buckets"].as_array().unwrap().iter().map(|b| b["count"].as_u64().unwrap()).sum();
    assert_eq!(count, 2 * n);
    let closed = run.panel("tcp", "closed")["rows"].as_array().unwrap().len() as u64;
    assert_eq!(closed, 4 * n);
}

#[test]
fn port_and_family_filters_apply_in_the_kernel() {
    let _g = serial();
    let (run, _) = run_with_workloads(
        "tcp",
        "ports = [27321]\nfamily = \"ipv6\"",
        &[&["tcp4", "27321", "2", "100"], &["tcp6", "27321", "2", "100"], &["tcp6", "27322", "2", "100"]],
    );
    assert!(closes(&run, 4, 27321).is_empty(), "ipv4 filtered out");
    assert_eq!(closes(&run, 6, 27321).len(), 4);
    assert!(closes(&run, 6, 27322).is_empty(), "other port filtered out");
}

#[test]
fn the_comm_filter_keeps_the_connections_a_process_of_that_name_owns() {
    let _g = serial();
    // Two clients on one port under made-up names; the filter names one. Its
    // connections are attributed in process context (connect, accept), and
    // transitions in softirq still count as the owner's.
    let port = 27341u64;
    let (run, w) = run_with_workloads(
        "tcp",
        &format!("ports = [{port}]\ncomm = \"tcpkept\""),
        &[&["--comm", "tcpkept", "tcp4", &port.to_string(), "2", "100"], &["--comm", "tcpdropped", "tcp4", &port.to_string(), "3", "100"]],
    );
    // The server ends belong to each workload's accepting thread, named
    // tcpserver: not this comm either.
    let c = closes(&run, 4, port);
    assert_eq!(c.len(), 2, "the 2 client ends of tcpkept only: {c:#?}\n{}", run.stderr);
    for r in &c {
        assert_eq!((&r["pid"], &r["comm"], &r["dir"]), (&serde_json::json!(w[0].0), &serde_json::json!("tcpkept"), &serde_json::json!("active")), "{r}");
    }
    let foreign: Vec<_> = run.records("tcp").into_iter().filter(|r| r["comm"] != "tcpkept").collect();
    assert!(foreign.is_empty(), "other owners' records are filtered in the kernel: {foreign:?}");
}

#[test]
fn passive_connections_are_owned_from_accept_on() {
    let _g = serial();
    // The client closes first: the server's ESTABLISHED -> CLOSE_WAIT runs in
    // softirq (on loopback, in the client thread's context), so only capture at
    // accept() can name the server thread there.
    let port = 27331u64;
    let (run, w) = run_with_workloads(
        "tcp",
        &format!("ports = [{port}]"),
        &[&["--comm", "tcpclient", "tcp4c", &port.to_string(), "3", "1000"]],
    );
    let server_side: Vec<_> = run
        .records("tcp")
        .into_iter()
        .filter(|r| r.get("new").is_some() && r["lport"] == port && r["new"] == "CLOSE_WAIT")
        .collect();
    assert_eq!(server_side.len(), 3, "{server_side:?}");
    for r in server_side {
        assert_eq!(r["pid"], w[0].0, "{r}");
        assert_eq!(r["comm"], "tcpserver", "captured when accept returned: {r}");
    }
}

#[test]
fn refused_and_reset_connections_keep_their_ends_and_say_who_reset() {
    let _g = serial();
    let (closed, port) = (27313u64, 27314u64);
    let (run, w) = run_with_workloads(
        "tcp",
        &format!("ports = [{closed}, {port}]"),
        &[&["--comm", "tcpresets", "tcpresets", &closed.to_string(), &port.to_string()]],
    );
    let pid = w[0].0;
    // The refused connect: family, both ends (the local port as bound for the
    // SYN), and no connect latency (it never connected).
    let refused = closes(&run, 4, closed);
    assert_eq!(refused.len(), 1, "{refused:#?}\n{}", run.stderr);
    let r = refused[0];
    assert_eq!((r["end"].as_str(), r["dir"].as_str()), (Some("refused"), Some("active")), "{r}");
    assert_eq!((r["laddr"].as_str(), r["raddr"].as_str(), r["rport"].as_u64()), (Some("127.0.0.1"), Some("127.0.0.1"), Some(closed)), "{r}");
    assert!(r["lport"].as_u64().unwrap() > 0, "{r}");
    assert!(r["connect_ns"].is_null() && r["lifetime_ns"].is_null(), "never connected, never established: {r}");
    assert_eq!(r["pid"], pid);
    // SO_LINGER 0, then a close with data unread: each time the client sent
    // the reset and the server received it.
    let c = closes(&run, 4, port);
    let ends = |dir: &str| c.iter().filter(|r| r["dir"] == dir).map(|r| (r["end"].clone(), r["connect_ns"].clone())).collect::<Vec<_>>();
    let (client, server) = (ends("active"), ends("passive"));
    assert_eq!((client.len(), server.len()), (2, 2), "{c:#?}");
    for (end, connect) in client {
        assert_eq!(end, "rst_sent", "{c:#?}");
        assert!(connect.as_u64().unwrap() > 0);
    }
    for (end, connect) in server {
        assert_eq!(end, "rst_received", "{c:#?}");
        assert!(connect.is_null(), "a passive end did not connect: {c:#?}");
    }
}
