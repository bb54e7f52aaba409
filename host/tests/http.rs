//! The http tracer against real software on loopback: python's http.server
//! (HTTP/1.1, keep-alive) answering curl (several URLs on one connection)
//! and bash's /dev/tcp (a request written in four pieces). Truth: the
//! server's own log lines (one per request, with its status), curl's own
//! `-w` report of each transfer's status and time, and what the test
//! itself sent.

mod common;
use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// python's http.server: files from a directory, `/items/N` answered by
/// the handler, `/old` redirected; its comm set to a made-up name (the
/// process's main thread serves); it prints the port it bound.
const SERVER: &str = r#"
import ctypes, http.server, sys, os
ctypes.CDLL(None).prctl(15, b"trc-httpd", 0, 0, 0)
os.chdir(sys.argv[1])
class H(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/items/"):
            body = ('{"id": "%s"}' % self.path[7:]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path == "/old":
            self.send_response(301)
            self.send_header("Location", "/hello.txt")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            super().do_GET()
s = http.server.HTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The host running the http plugin alone, headless JSON, with `settings`
/// under `[plugins.http]`; returns once it runs.
fn http_host(settings: &str) -> (Host, tempfile::TempDir, tempfile::TempDir) {
    host_with(&["http"], settings)
}

/// The host running `plugins` (http among them), as http_host does.
fn host_with(plugins: &[&str], settings: &str) -> (Host, tempfile::TempDir, tempfile::TempDir) {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("http.toml");
    let enabled: Vec<String> = plugins.iter().map(|p| format!("{p:?}")).collect();
    std::fs::write(&cfg, format!("plugins_dir = \"unused\"\nenabled = [{}]\n[plugins.http]\n{settings}\n", enabled.join(", "))).unwrap();
    let staged: Vec<_> = plugins.iter().map(|p| staged_plugin(p)).collect();
    let dir = plugin_dir(&staged);
    let mut host = Host::spawn(&["--config", cfg.to_str().unwrap(), "--plugins-dir", dir.path().to_str().unwrap(), "--headless", "--format", "json"], &[]);
    for p in plugins {
        host.wait_for_stderr(&format!("tracer-host: {p} running"));
    }
    (host, cfg_dir, dir)
}

/// Stop the host; its output lines (records and final panels) and stderr.
fn stop(host: Host) -> (Vec<Value>, String) {
    std::thread::sleep(Duration::from_millis(600));
    host.signal(libc::SIGTERM);
    let (code, out, err) = host.finish();
    assert_eq!(code, Some(0), "{err}");
    (out.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), err)
}

/// The http records (one per request) among the output lines.
fn records(lines: &[Value]) -> Vec<&Value> {
    lines.iter().filter(|v| v["plugin"] == "http" && v.get("panel").is_none()).collect()
}

/// What curl reports of each transfer: status, its own total time in
/// seconds, new connections made for it.
#[derive(Debug)]
struct CurlReport {
    status: u16,
    secs: f64,
    connects: u32,
}

/// curl with `args`, each URL written to /dev/null, `-w` reporting each.
fn curl(args: &[&str], urls: &[String]) -> Vec<CurlReport> {
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code} %{time_total} %{num_connects}\\n"])
        .args(args)
        .args(urls.iter().flat_map(|u| ["-o".to_string(), "/dev/null".to_string(), u.clone()]))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let reports: Vec<CurlReport> = said
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let r = (f.len() == 3).then(|| Some(CurlReport { status: f[0].parse().ok()?, secs: f[1].parse().ok()?, connects: f[2].parse().ok()? })).flatten();
            r.unwrap_or_else(|| panic!("curl said {said:?}"))
        })
        .collect();
    assert_eq!(reports.len(), urls.len(), "curl said {said:?}");
    reports
}

/// A server's log lines `... "METHOD /path HTTP/1.1" STATUS BYTES ...` as
/// (path, status, body bytes where logged): nginx's combined format and
/// python's http.server both write them so.
fn logged_requests(log: &str) -> Vec<(String, u16, Option<u64>)> {
    log.lines()
        .filter_map(|l| {
            let mut rest = l.split('"').nth(2)?.split_whitespace();
            Some((l.split('"').nth(1)?.split_whitespace().nth(1)?.to_string(), rest.next()?.parse().ok()?, rest.next().and_then(|b| b.parse().ok())))
        })
        .collect()
}

/// The client's exchanges must be what curl reported, in order, each
/// latency within curl's own time for that transfer.
fn assert_as_curl_says(rows: &[&Value], urls: &[&str], reports: &[CurlReport]) {
    let got: Vec<(String, u16)> = rows.iter().map(|r| (r["path"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap() as u16)).collect();
    let want: Vec<(String, u16)> = urls.iter().zip(reports).map(|(u, r)| (u.to_string(), r.status)).collect();
    assert_eq!(got, want, "the client's exchanges as curl reports them");
    for (r, rep) in rows.iter().zip(reports) {
        let ns = r["latency_ns"].as_u64().unwrap();
        assert!(r["side"] == "client" && ns > 0 && ns as f64 <= rep.secs * 1e9, "latency {ns} ns within curl's {} s: {r}", rep.secs);
    }
}

/// python's http.server on a port the kernel picks (it prints it); killed
/// when dropped, so a test that fails leaves no server behind.
struct PythonServer(std::process::Child);

impl Drop for PythonServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python_server(www: &std::path::Path, stderr: Stdio) -> (PythonServer, u16) {
    let mut server = Command::new(python()).args(["-c", SERVER, www.to_str().unwrap()]).stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
    let mut port = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let server = PythonServer(server);
    let port: u16 = port.trim().parse().unwrap_or_else(|_| panic!("the server said {port:?}"));
    (server, port)
}

fn python() -> String {
    ["/usr/bin/python3", "/usr/local/bin/python3"].iter().find(|p| std::path::Path::new(p).exists()).map(|p| p.to_string()).unwrap_or_else(|| "python3".into())
}

#[test]
fn requests_of_curl_and_bash_to_python_http_server_are_counted_as_the_server_logs_them() {
    let _g = serial();
    assert_root();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("hello.txt"), "hello, tracer\n".repeat(300)).unwrap();
    let (mut server, port) = python_server(www.path(), Stdio::piped());
    let (host, _cfg, _plugins) = http_host(&format!("ports = [{port}]"));

    // curl: several URLs, one connection (keep-alive); -w reports each.
    let urls = ["/hello.txt", "/items/1234", "/items/98765", "/missing", "/old", "/hello.txt"];
    let reports = curl(&[], &urls.map(|u| format!("http://127.0.0.1:{port}{u}")));
    // One connection for the first four; python's server closes it after
    // an error (its send_error says `Connection: close`): a second for the rest.
    assert_eq!(reports.iter().map(|r| r.connects).collect::<Vec<_>>(), vec![1, 0, 0, 0, 1, 0], "curl's connections: {reports:?}");
    // bash: a request in four writes (printf each), read to the end.
    let bash = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET /items/77 HTTP/1.1\\r\\n' >&3; printf 'Host: split\\r\\n' >&3; printf 'Connection: close\\r\\n' >&3; printf '\\r\\n' >&3; cat <&3 >/dev/null"
    );
    let st = Command::new("bash").args(["-c", &bash]).status().unwrap();
    assert!(st.success());
    let (lines, _) = stop(host);
    let _ = server.0.kill();
    let mut log = String::new();
    let _ = std::io::Read::read_to_string(&mut server.0.stderr.take().unwrap(), &mut log);

    // The server's own log: `"GET /path HTTP/1.1" STATUS -` per request.
    let mut logged: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for (path, status, _) in logged_requests(&log) {
        *logged.entry((path, status)).or_default() += 1;
    }
    assert_eq!(logged.values().sum::<u64>(), 7, "the server logged every request: {log}");
    let records = records(&lines);
    let by = |comm: &str, side: &str| -> BTreeMap<(String, u16), u64> {
        let mut m = BTreeMap::new();
        for r in records.iter().filter(|r| r["comm"] == comm && r["side"] == side) {
            *m.entry((r["path"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap() as u16)).or_default() += 1;
        }
        m
    };
    // The server side: exactly what the server logged.
    assert_eq!(by("trc-httpd", "server"), logged, "server side against the server's log; records: {records:#?}");
    let curl_rows: Vec<&Value> = records.iter().copied().filter(|r| r["comm"] == "curl").collect();
    assert_as_curl_says(&curl_rows, &urls, &reports);
    // bash's four writes: one request, its Host seen.
    let bash_rows: Vec<&&Value> = records.iter().filter(|r| r["comm"] == "bash").collect();
    assert_eq!(bash_rows.len(), 1, "{records:#?}");
    assert_eq!((bash_rows[0]["path"].as_str(), bash_rows[0]["status"].as_u64(), bash_rows[0]["host"].as_str()), (Some("/items/77"), Some(200), Some("split")));
    // The server's hello.txt: its size on the wire.
    let hello = records.iter().find(|r| r["comm"] == "trc-httpd" && r["path"] == "/hello.txt").unwrap();
    assert!(hello["response_bytes"].as_u64().unwrap() > 4200, "{hello}");
    // Routes: ids collapsed; counts on both sides.
    let routes = &lines.iter().find(|v| v["plugin"] == "http" && v["panel"] == "routes").unwrap()["rows"];
    let items = routes.as_array().unwrap().iter().find(|r| r["route"] == "/items/{id}").unwrap_or_else(|| panic!("{routes:#}"));
    assert_eq!(items["requests"].as_u64(), Some(2 * 2 + 2), "curl's two and bash's one, each seen by client and server: {items}");
}

/// A server that forks a child per connection (as busybox httpd and inetd
/// do), its comm made up: the child reads the request; only then does the
/// parent close its copy of the connection, and only after that does the
/// child answer (ordered by pipes) and exit without closing. It logs each
/// request as http.server does and serves `argv[1]` connections.
const FORKING_SERVER: &str = r#"
import ctypes, os, socket, sys
ctypes.CDLL(None).prctl(15, b"trc-forkd", 0, 0, 0)
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(8)
print(ls.getsockname()[1], flush=True)
for _ in range(int(sys.argv[1])):
    c, _ = ls.accept()
    read_r, read_w = os.pipe()
    closed_r, closed_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        ls.close()
        req = b""
        while b"\r\n\r\n" not in req:
            chunk = c.recv(4096)
            if not chunk:
                os._exit(1)
            req += chunk
        os.write(read_w, b"r")
        os.read(closed_r, 1)
        body = b"answered by the child\n"
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
        sys.stderr.write('- - [-] "GET %s HTTP/1.1" 200 %d\n' % (req.split(b" ")[1].decode(), len(body)))
        sys.stderr.flush()
        os._exit(0)
    os.read(read_r, 1)
    c.close()
    os.write(closed_w, b"c")
    os.waitpid(pid, 0)
    for fd in (read_r, read_w, closed_r, closed_w):
        os.close(fd)
"#;

/// The parent's close of its copy is not the connection's end: the child
/// answers after it, and the server side must still show every request as
/// the server logged it (this raced in the guest's busybox httpd check: a
/// request unanswered, its response unmatched).
#[test]
fn a_forking_server_whose_parent_closes_its_copy_first_is_still_seen_answering() {
    let _g = serial();
    assert_root();
    let mut server = Command::new(python()).args(["-c", FORKING_SERVER, "3"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut port = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut port).unwrap();
    let mut server = PythonServer(server);
    let port: u16 = port.trim().parse().unwrap_or_else(|_| panic!("the server said {port:?}"));
    let (host, _cfg, _plugins) = http_host(&format!("ports = [{port}]"));
    let urls = ["/forked/1", "/forked/2", "/forked/3"];
    let reports = curl(&[], &urls.map(|u| format!("http://127.0.0.1:{port}{u}")));
    assert_eq!(reports.iter().map(|r| (r.status, r.connects)).collect::<Vec<_>>(), vec![(200, 1); 3], "a connection each: {reports:?}");
    let (lines, _) = stop(host);
    assert!(server.0.wait().unwrap().success(), "the server served its three connections");
    let mut log = String::new();
    let _ = std::io::Read::read_to_string(&mut server.0.stderr.take().unwrap(), &mut log);
    let logged: Vec<(String, u16)> = logged_requests(&log).into_iter().map(|(p, s, _)| (p, s)).collect();
    assert_eq!(logged.len(), 3, "{log}");
    let records = records(&lines);
    let server_rows: Vec<&Value> = records.iter().copied().filter(|r| r["comm"] == "trc-forkd" && r["side"] == "server").collect();
    let summary = lines.iter().find(|v| v["plugin"] == "http" && v["panel"] == "summary").cloned().unwrap_or_default();
    assert_eq!(paths_and_statuses(&server_rows), logged, "the children's answers as they logged them; {summary}");
    let curl_rows: Vec<&Value> = records.iter().copied().filter(|r| r["comm"] == "curl").collect();
    assert_as_curl_says(&curl_rows, &urls, &reports);
}

/// nginx's own configuration for a test: one worker, everything under
/// `dir`, the access log in its default (combined) format.
fn nginx_conf(dir: &std::path::Path, port: u16) -> String {
    let d = dir.display();
    format!(
        "daemon off;\nuser root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  sendfile on;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  types {{ text/plain txt; application/octet-stream bin; }}\n\
         server {{\n    listen 127.0.0.1:{port};\n    root {d}/www;\n    location = /redirect {{ return 301 /hello.txt; }}\n    location /gz/ {{ gzip on; gzip_types text/plain; gzip_min_length 0; }}\n  }}\n}}\n"
    )
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// nginx with the configuration `conf`, once it listens on `port`;
/// stopped (SIGQUIT) when dropped. Its access log is `dir/access.log`.
struct Nginx(std::process::Child);

impl Nginx {
    fn start(dir: &std::path::Path, conf: &str, port: u16) -> Nginx {
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let n = Nginx(Command::new("nginx").args(["-c", path.to_str().unwrap(), "-p", dir.to_str().unwrap()]).stderr(Stdio::null()).spawn().unwrap());
        let up = std::time::Instant::now();
        // (A connection that sends nothing: no request.)
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(up.elapsed() < Duration::from_secs(10), "nginx did not listen: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        n
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0.id() as i32, libc::SIGQUIT) };
        let _ = self.0.wait();
    }
}

/// (path, status) of the rows.
fn paths_and_statuses(rows: &[&Value]) -> Vec<(String, u16)> {
    rows.iter().map(|r| (r["path"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap() as u16)).collect()
}

/// nginx (one worker) answering curl over keep-alive: a small file, a 404,
/// a 301, a 5 MiB file (sent with sendfile: its bytes never pass through
/// user memory) and a gzip-compressed file (a chunked response). The server
/// side must equal nginx's own access log, path and status, and each
/// response's bytes on the wire must be the body bytes the log says plus a
/// head; curl's side what curl reports.
#[test]
fn nginx_over_keep_alive_with_sendfile_and_chunked_is_counted_as_its_access_log_says() {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("gz")).unwrap();
    std::fs::write(www.join("hello.txt"), "hello, nginx\n".repeat(100)).unwrap();
    std::fs::write(www.join("big.bin"), vec![7u8; 5 << 20]).unwrap();
    std::fs::write(www.join("gz/text.txt"), "compress me, please\n".repeat(2000)).unwrap();
    let port = free_port();
    let (host, _cfg, _plugins) = http_host(&format!("ports = [{port}]"));
    let nginx = Nginx::start(dir.path(), &nginx_conf(dir.path(), port), port);
    let urls = ["/hello.txt", "/missing", "/redirect", "/big.bin", "/gz/text.txt", "/hello.txt"];
    let reports = curl(&["--compressed"], &urls.map(|u| format!("http://127.0.0.1:{port}{u}")));
    assert_eq!(reports.iter().map(|r| r.status).collect::<Vec<_>>(), vec![200, 404, 301, 200, 200, 200], "{reports:?}");
    assert_eq!(reports.iter().map(|r| r.connects).sum::<u32>(), 1, "one connection for all six: {reports:?}");
    let (lines, err) = stop(host);
    drop(nginx);

    // nginx's access log: `"GET /path HTTP/1.1" STATUS BODY_BYTES`.
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let logged = logged_requests(&log);
    assert_eq!(logged.len(), 6, "{log}");
    let records = records(&lines);
    let server: Vec<&Value> = records.iter().copied().filter(|r| r["comm"] == "nginx" && r["side"] == "server").collect();
    let want: Vec<(String, u16)> = logged.iter().map(|(p, s, _)| (p.clone(), *s)).collect();
    let summary = lines.iter().find(|v| v["plugin"] == "http" && v["panel"] == "summary").cloned().unwrap_or_default();
    assert_eq!(paths_and_statuses(&server), want, "the server side as nginx logged it; records: {}; {summary}; {err}", records.len());
    for (r, (path, _, body)) in server.iter().zip(&logged) {
        let (wire, body) = (r["response_bytes"].as_u64().unwrap(), body.unwrap_or_else(|| panic!("no body bytes logged for {path}")));
        // A head of a few hundred bytes before the body nginx counted.
        assert!(wire > body && wire - body < 1024, "{path}: {wire} bytes on the wire, {body} of body in the log");
    }
    let curl_rows: Vec<&Value> = records.iter().copied().filter(|r| r["comm"] == "curl").collect();
    assert_as_curl_says(&curl_rows, &urls, &reports);
    // The same requests seen from both ends: the server's time inside the client's.
    for (s, c) in server.iter().zip(&curl_rows) {
        assert!(s["latency_ns"].as_u64() <= c["latency_ns"].as_u64(), "server {s} client {c}");
    }
}

/// TLS: nginx with a certificate the test makes, curl over https (both link
/// OpenSSL): the plaintext requests seen through the uprobes on libssl, on
/// both ends, as nginx's access log and curl say.
#[test]
fn https_between_curl_and_nginx_is_read_in_plaintext_through_openssl() {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("secret.txt"), "plaintext inside TLS\n".repeat(50)).unwrap();
    let (cert, key) = certificate(dir.path());
    let port = free_port();
    let conf = nginx_conf(dir.path(), port)
        .replace(&format!("listen 127.0.0.1:{port};"), &format!("listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};", cert.display(), key.display()));
    // No port filter: TLS calls have no socket known; the records of the
    // made-up pair of processes are picked below by name.
    let (host, _cfg, _plugins) = http_host("");
    assert!(host.stderr().contains("uprobe"), "the tls probe attached: {}", host.stderr());
    let nginx = Nginx::start(dir.path(), &conf, port);
    let urls = ["/secret.txt", "/nope", "/secret.txt"];
    let reports = curl(&["-k"], &urls.map(|u| format!("https://127.0.0.1:{port}{u}")));
    assert_eq!(reports.iter().map(|r| r.status).collect::<Vec<_>>(), vec![200, 404, 200], "{reports:?}");
    let (lines, _) = stop(host);
    drop(nginx);
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let logged: Vec<(String, u16)> = logged_requests(&log).into_iter().map(|(p, s, _)| (p, s)).collect();
    let records: Vec<&Value> = records(&lines).into_iter().filter(|v| v["comm"] == "nginx" || v["comm"] == "curl").collect();
    let of = |comm: &str| -> Vec<&Value> { records.iter().copied().filter(|r| r["comm"] == comm).collect() };
    assert_eq!(paths_and_statuses(&of("nginx")), logged, "nginx's side as its log says: {records:#?}");
    assert_as_curl_says(&of("curl"), &urls, &reports);
    for r in &records {
        assert_eq!(r["tls"], "yes", "{r}");
    }
}

/// Sampling and filters: python's http.server answers 40 curl processes, a
/// connection each, half for a missing path. With sample_percent = 50 the
/// kernel picks connections by a hash: the connections it followed and
/// those it left out must add up to the 80 ends of those connections, the
/// requests seen must be the followed connections (one request each), and
/// the summary must scale them back by 2. With status = ["404"], only the
/// 404s are shown and the rest counted as left out.
#[test]
fn sampling_scales_counts_back_and_filters_keep_what_they_say() {
    let _g = serial();
    assert_root();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("hello.txt"), "hi\n").unwrap();
    let (server, port) = python_server(www.path(), Stdio::null());
    let run = |settings: &str| -> (Vec<Value>, String) {
        let (host, _cfg, _plugins) = http_host(&format!("ports = [{port}]\n{settings}"));
        for i in 0..40 {
            let path = if i % 2 == 0 { "/hello.txt" } else { "/missing" };
            let st = Command::new("curl").args(["-s", "-o", "/dev/null", &format!("http://127.0.0.1:{port}{path}")]).status().unwrap();
            assert!(st.success());
        }
        stop(host)
    };
    let counter = |err: &str, name: &str| -> u64 {
        err.split(&format!("{name} ")).nth(1).and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no {name} in {err}"))
    };
    let summary = |lines: &[Value], name: &str| -> u64 {
        let p = lines.iter().find(|v| v["plugin"] == "http" && v["panel"] == "summary").unwrap();
        p["counters"].as_array().unwrap().iter().find(|c| c["name"] == name).and_then(|c| c["value"].as_u64()).unwrap_or_else(|| panic!("no {name}: {p}"))
    };

    let (lines, err) = run("sample_percent = 50");
    let (followed, left) = (counter(&err, "HTTP connections found"), counter(&err, "HTTP connections not sampled"));
    let seen = records(&lines).len() as u64;
    eprintln!("followed {followed}, not sampled {left}, requests seen {seen}");
    assert_eq!(followed + left, 80, "both ends of 40 connections: {err}");
    assert!(followed > 0 && left > 0, "a hash picks some and leaves some: {err}");
    assert_eq!(seen, followed, "one request a followed connection");
    assert_eq!(summary(&lines, "requests seen (unscaled)"), followed);
    assert_eq!(summary(&lines, "requests"), 2 * followed, "scaled back by 100/50");

    let (lines, _) = run("status = [\"404\"]");
    let statuses: Vec<u64> = records(&lines).iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, vec![404; 40], "the 20 misses, from both ends");
    assert_eq!(summary(&lines, "requests left out by the filters"), 40);
    drop(server);
}

/// A self-signed certificate and key for localhost in `dir`.
fn certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let st = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl made no certificate");
    (cert, key)
}

/// HTTP/2: nginx answering curl over TLS (ALPN picks h2; several URLs on
/// one connection, seen through the uprobes) and in cleartext (h2c with
/// prior knowledge, a curl process per URL, seen in the socket calls).
/// Method and path come out of HPACK-compressed header blocks; the server
/// side must be nginx's access log (`HTTP/2.0` requests), the client side
/// what curl says, every exchange labelled HTTP/2.
#[test]
fn http2_between_curl_and_nginx_is_decoded_with_tls_and_without() {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(www.join("gz")).unwrap();
    std::fs::create_dir_all(www.join("nosf")).unwrap();
    std::fs::write(www.join("hello.txt"), "hello, h2\n".repeat(100)).unwrap();
    std::fs::write(www.join("gz/text.txt"), "compress me, please\n".repeat(2000)).unwrap();
    // Its DATA frames' headers fall past any capture: the kernel's walk of
    // the frames finds them.
    std::fs::write(www.join("big.bin"), vec![7u8; 3 << 20]).unwrap();
    // Without sendfile (nginx's default) nginx writes many DATA frames a
    // writev: the headers past the first are found by the walk of the
    // write at its entry.
    std::fs::write(www.join("nosf/big.bin"), vec![9u8; 3 << 20]).unwrap();
    let (cert, key) = certificate(dir.path());
    let (tls_port, h2c_port) = (free_port(), free_port());
    let conf = nginx_conf(dir.path(), tls_port).replace(
        &format!("listen 127.0.0.1:{tls_port};"),
        &format!(
            "listen 127.0.0.1:{tls_port} ssl http2;\n    listen 127.0.0.1:{h2c_port} http2;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    location /nosf/ {{ sendfile off; }}",
            cert.display(),
            key.display()
        ),
    );
    let (host, _cfg, _plugins) = http_host("");
    let nginx = Nginx::start(dir.path(), &conf, tls_port);
    let tls_urls = ["/hello.txt", "/missing", "/redirect", "/big.bin", "/gz/text.txt", "/hello.txt"];
    let tls_reports = curl(&["-k", "--http2", "--compressed"], &tls_urls.map(|u| format!("https://127.0.0.1:{tls_port}{u}")));
    assert_eq!(tls_reports.iter().map(|r| r.status).collect::<Vec<_>>(), vec![200, 404, 301, 200, 200, 200], "{tls_reports:?}");
    assert_eq!(tls_reports.iter().map(|r| r.connects).sum::<u32>(), 1, "one connection: {tls_reports:?}");
    // curl 7.88 sends only the first of several URLs on an h2c connection
    // made with prior knowledge: a process each.
    let h2c_urls = ["/hello.txt", "/missing", "/big.bin", "/nosf/big.bin"];
    let mut h2c_reports = Vec::new();
    for u in h2c_urls {
        h2c_reports.extend(curl(&["--http2-prior-knowledge"], &[format!("http://127.0.0.1:{h2c_port}{u}")]));
    }
    let (lines, err) = stop(host);
    drop(nginx);
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    assert_eq!(log.matches("HTTP/2.0\"").count(), 10, "nginx spoke HTTP/2 each time: {log}");
    let logged: Vec<(String, u16)> = logged_requests(&log).into_iter().map(|(p, s, _)| (p, s)).collect();
    let records: Vec<&Value> = records(&lines).into_iter().filter(|v| v["comm"] == "nginx" || v["comm"] == "curl").collect();
    let summary = lines.iter().find(|v| v["plugin"] == "http" && v["panel"] == "summary").cloned().unwrap_or_default();
    let of = |comm: &str| -> Vec<&Value> { records.iter().copied().filter(|r| r["comm"] == comm).collect() };
    // nginx's side, in the order it answered (its log's order).
    assert_eq!(paths_and_statuses(&of("nginx")), logged, "nginx's side as its log says; {summary}; {err}");
    let curl_rows = of("curl");
    let (tls_rows, h2c_rows): (Vec<&Value>, Vec<&Value>) = curl_rows.iter().partition(|r| r["tls"] == "yes");
    assert_as_curl_says(&tls_rows, &tls_urls, &tls_reports);
    assert_as_curl_says(&h2c_rows, &h2c_urls, &h2c_reports);
    // The 3 MiB file: its DATA frames followed to the end on both sides
    // and both ways of transport (the frames past the capture found by
    // the kernel's walk).
    let big: Vec<&&Value> = records.iter().filter(|r| r["path"].as_str().is_some_and(|p| p.ends_with("/big.bin"))).collect();
    assert_eq!(big.len(), 6, "nginx and curl, TLS and cleartext, cleartext without sendfile: {summary}");
    // The body and a 9-byte header per DATA frame: nginx sends frames of
    // its http2_chunk_size (8 KiB unless set), never more than the
    // protocol's 16 KiB default; the HEADERS frame is under 1 KiB.
    let body = 3u64 << 20;
    for r in big {
        let bytes = r["response_bytes"].as_u64().unwrap();
        assert!(bytes >= body + 9 * body / 16384 && bytes <= body + 9 * body / 8192 + 1024, "frames of 3 MiB: {r}");
    }
    for r in &records {
        assert_eq!(r["protocol"], "HTTP/2", "{r}");
        assert_eq!(r["host"].as_str(), Some(format!("127.0.0.1:{}", if r["tls"] == "yes" { tls_port } else { h2c_port }).as_str()), "{r}");
    }
}

/// An HTTP/2 client in cleartext (prior knowledge) that fetches one path
/// and reads so that every DATA frame's header after the first is cut
/// between two of its reads: once the first DATA frame's header is in,
/// each recvfrom (MSG_WAITALL) takes the rest of a frame and the first 5
/// bytes of the next header (its length, type and flags: whether it ends
/// the stream), ~8 KiB a call, far past any capture. Its comm is made up;
/// it prints the body bytes, the bytes of stream 1's frames (headers and
/// payloads) it received, and the headers it cut.
const CUTTING_H2_CLIENT: &str = r#"
import ctypes, socket, struct, sys
ctypes.CDLL(None).prctl(15, b"trc-h2cut", 0, 0, 0)
port, path = int(sys.argv[1]), sys.argv[2].encode()
auth = b"127.0.0.1:%d" % port
def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload
# HPACK: GET, http, then :path and :authority literal without indexing
# (static names 4 and 1), no Huffman coding.
block = b"\x82\x86\x04" + bytes([len(path)]) + path + b"\x01" + bytes([len(auth)]) + auth
big = 2**31 - 1
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, struct.pack(">HI", 4, big))
          + frame(8, 0, 0, struct.pack(">I", big - 65535)) + frame(1, 5, 1, block))
buf = bytearray()
def need(n):
    while len(buf) < n:
        got = s.recv(n - len(buf), socket.MSG_WAITALL)
        if not got:
            sys.exit("the server closed")
        buf.extend(got)
pos, body, stream_bytes, cuts, cutting = 0, 0, 0, 0, False
need(9)
while True:
    # The header at pos: all of it, or (cutting) its first 5 bytes.
    n = int.from_bytes(buf[pos:pos + 3], "big")
    kind, flags = buf[pos + 3], buf[pos + 4]
    nxt = pos + 9 + n
    last = kind in (0, 1) and flags & 1
    if last:
        need(nxt)
    elif cutting or kind == 0:
        need(nxt + 5)
        cutting = True
        cuts += 1
    else:
        need(nxt + 9)
    sid = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7fffffff
    if sid == 1:
        stream_bytes += 9 + n
        if kind == 0:
            body += n
    if kind == 4 and not flags & 1:
        s.sendall(frame(4, 1, 0, b""))
    if last and sid == 1:
        break
    pos = nxt
print(body, stream_bytes, cuts, flush=True)
s.close()
"#;

/// A reader's buffer ends anywhere: HTTP/2 frame headers cut between two
/// reads, past the capture, are put together by the kernel (the first
/// bytes from one transfer's tail, the rest from the next one's start).
/// The client above cuts every DATA frame header of a 3 MiB response from
/// nginx (sendfile off: many frames a writev). Both ends must be followed
/// to the end: nginx's as its log says (path, status, body bytes), the
/// client's with the bytes of the stream's frames the client counted.
#[test]
fn http2_frame_headers_cut_between_a_readers_calls_are_followed() {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("www/nosf")).unwrap();
    std::fs::write(dir.path().join("www/nosf/big.bin"), vec![5u8; 3 << 20]).unwrap();
    let port = free_port();
    let conf = nginx_conf(dir.path(), port).replace(&format!("listen 127.0.0.1:{port};"), &format!("listen 127.0.0.1:{port} http2;\n    location /nosf/ {{ sendfile off; }}"));
    let (host, _cfg, _plugins) = http_host("");
    let nginx = Nginx::start(dir.path(), &conf, port);
    let out = Command::new(python()).args(["-c", CUTTING_H2_CLIENT, &port.to_string(), "/nosf/big.bin"]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "the client: {said} {}", String::from_utf8_lossy(&out.stderr));
    let nums: Vec<u64> = said.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let (body, stream_bytes, cuts) = (nums[0], nums[1], nums[2]);
    let (lines, err) = stop(host);
    drop(nginx);
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    assert_eq!(logged_requests(&log), vec![("/nosf/big.bin".to_string(), 200, Some(3 << 20))], "{log}");
    assert_eq!(body, 3 << 20, "the client read the whole body");
    // nginx's 8 KiB frames: about 384 DATA frames, each header after the
    // first cut.
    assert!(cuts >= 300, "headers cut: {cuts}");
    let summary = lines.iter().find(|v| v["plugin"] == "http" && v["panel"] == "summary").cloned().unwrap_or_default();
    let rows: Vec<&Value> = records(&lines).into_iter().filter(|r| r["path"] == "/nosf/big.bin").collect();
    let sides: Vec<(&str, &str, u64, u64)> =
        rows.iter().map(|r| (r["comm"].as_str().unwrap(), r["side"].as_str().unwrap(), r["status"].as_u64().unwrap(), r["response_bytes"].as_u64().unwrap())).collect();
    assert_eq!(sides.len(), 2, "both ends: {sides:?}; {summary}; {err}");
    assert!(sides.contains(&("nginx", "server", 200, stream_bytes)), "{sides:?}; {summary}");
    assert!(sides.contains(&("trc-h2cut", "client", 200, stream_bytes)), "{sides:?}; {summary}");
}

/// wrk's Lua script: three requests written together each time (HTTP/1.1
/// pipelining: the second and third sent before the first is answered),
/// a connection waiting 5 ms between batches; at the end wrk says how many
/// responses it read and how many were not 2xx or 3xx.
const PIPELINE_LUA: &str = r#"
init = function(args)
  req = wrk.format(nil, "/hello.txt") .. wrk.format(nil, "/missing") .. wrk.format(nil, "/hello.txt")
end
request = function() return req end
delay = function() return 5 end
done = function(summary, latency, requests)
  io.write(string.format("responses %d non2xx3xx %d\n", summary.requests, summary.errors.status))
end
"#;

/// Pipelining: wrk sends three requests in one write on four keep-alive
/// connections to nginx for two seconds. The server side must be nginx's
/// access log exactly (each path and status counted), the client side the
/// responses wrk read and the errors it counted, and no message given up.
/// wrk reads the three answers (1.3 KB) in one read: capture_bytes is 4096
/// so that all three heads are in the bytes captured (at the default 1024,
/// the third head is past them and that response is given up, counted).
#[test]
fn pipelined_requests_of_wrk_pair_as_nginx_logs_them_and_wrk_counts_them() {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "pipelined\n".repeat(30)).unwrap();
    let script = dir.path().join("pipeline.lua");
    std::fs::write(&script, PIPELINE_LUA).unwrap();
    let port = free_port();
    let (host, _cfg, _plugins) = http_host(&format!("ports = [{port}]\ncapture_bytes = 4096"));
    let nginx = Nginx::start(dir.path(), &nginx_conf(dir.path(), port), port);
    let out = Command::new("wrk").args(["-t1", "-c4", "-d2s", "-s"]).arg(&script).arg(format!("http://127.0.0.1:{port}/")).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    let (responses, errors): (u64, u64) = said
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4 && f[0] == "responses").then(|| (f[1].parse().unwrap(), f[3].parse().unwrap()))
        })
        .unwrap_or_else(|| panic!("wrk said {said}"));
    assert!(responses > 100, "wrk said {said}");
    // nginx has written its log lines once wrk's connections are closed.
    drop(nginx);
    let (lines, err) = stop(host);
    let log = std::fs::read_to_string(dir.path().join("access.log")).unwrap();
    let mut logged: BTreeMap<(String, u16), u64> = BTreeMap::new();
    for (path, status, _) in logged_requests(&log) {
        *logged.entry((path, status)).or_default() += 1;
    }
    let records = records(&lines);
    let count = |comm: &str| -> BTreeMap<(String, u16), u64> {
        let mut m = BTreeMap::new();
        for r in records.iter().filter(|r| r["comm"] == comm) {
            *m.entry((r["path"].as_str().unwrap().to_string(), r["status"].as_u64().unwrap() as u16)).or_default() += 1;
        }
        m
    };
    let summary = lines.iter().find(|v| v["plugin"] == "http" && v["panel"] == "summary").cloned().unwrap_or_default();
    assert_eq!(count("nginx"), logged, "nginx's side as its log says; {summary}; {err}");
    let wrk = count("wrk");
    assert_eq!(wrk.values().sum::<u64>(), responses, "wrk's side: the responses wrk read; {summary}");
    assert_eq!(wrk.get(&("/missing".to_string(), 404)).copied().unwrap_or(0), errors, "the 404s wrk counted");
    let given_up = summary["counters"].as_array().unwrap().iter().find(|c| c["name"].as_str().unwrap().starts_with("messages given up")).unwrap();
    assert_eq!(given_up["value"], 0, "{summary}");
}

/// The link to the tcp tracer: with both running, each of curl's requests
/// (over plain HTTP, and over TLS, whose socket is found from the socket
/// calls made inside OpenSSL's calls) names the local and remote address of
/// a connection the tcp tracer saw curl open and close, and nginx's side
/// names the same pair the other way round.
#[test]
fn each_request_names_the_connection_the_tcp_tracer_shows() {
    let _g = serial();
    assert_root();
    let dir = tempfile::tempdir().unwrap();
    let www = dir.path().join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("a.txt"), "linked\n".repeat(20)).unwrap();
    let (cert, key) = certificate(dir.path());
    let (port, tls_port) = (free_port(), free_port());
    let conf = nginx_conf(dir.path(), port).replace(
        &format!("listen 127.0.0.1:{port};"),
        &format!("listen 127.0.0.1:{port};\n    listen 127.0.0.1:{tls_port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};", cert.display(), key.display()),
    );
    let (host, _cfg, _plugins) = host_with(&["http", "tcp"], "");
    let nginx = Nginx::start(dir.path(), &conf, port);
    let plain = curl(&[], &[format!("http://127.0.0.1:{port}/a.txt")]);
    let tls = curl(&["-k"], &[format!("https://127.0.0.1:{tls_port}/a.txt")]);
    assert_eq!((plain[0].status, tls[0].status), (200, 200));
    drop(nginx);
    let (lines, err) = stop(host);
    // The tcp tracer's closed connections: (comm, local, remote).
    let endpoint = |a: &Value, p: &Value| -> String {
        let a = a.as_str().unwrap();
        if a.contains(':') {
            format!("[{a}]:{p}")
        } else {
            format!("{a}:{p}")
        }
    };
    let tcp: Vec<(String, String, String)> =
        lines.iter().filter(|v| v["type"] == "tcp_closed").map(|v| (v["comm"].as_str().unwrap().to_string(), endpoint(&v["laddr"], &v["lport"]), endpoint(&v["raddr"], &v["rport"]))).collect();
    let http: Vec<&Value> = records(&lines).into_iter().filter(|r| r["comm"] == "curl" || r["comm"] == "nginx").collect();
    assert_eq!(http.len(), 4, "two requests, both ends: {err}");
    for r in &http {
        let (local, remote) = (r["local"].as_str(), r["remote"].as_str());
        let (Some(local), Some(remote)) = (local, remote) else { panic!("no addresses: {r}") };
        let served = if r["tls"] == "yes" { tls_port } else { port };
        let server_end = format!("127.0.0.1:{served}");
        // curl's connection as the tcp tracer saw it (it names the client
        // end: the connecting process).
        let (client, server) = if r["side"] == "server" { (remote, local) } else { (local, remote) };
        assert_eq!(server, server_end, "{r}");
        assert!(tcp.iter().any(|(comm, l, rm)| comm == "curl" && l == client && rm == server), "{r} among the tcp tracer's connections {tcp:?}");
    }
}
