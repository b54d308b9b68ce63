//! `send`: outreach sends through the job queue, end to end, against a running `linkcrm`.
//!
//! Starts a minimal SMTP sink on loopback in this process, sets up a fresh workspace (credits,
//! `outreach_send: auto`, `--mailboxes` mailboxes pointing at the sink, N relationships on distinct
//! domains with one contact each), then:
//! - enqueue: N `POST .../send-email` at concurrency C (requests/s, latency p50/p99);
//! - end to end: from the first POST until the sink holds all N messages (messages/s), and each
//!   message's latency from its POST's 202 to its arrival at the sink (waiting stops early when
//!   nothing arrived for `--stall-secs`: given-up sends never arrive);
//! - verification: every invocation SUCCEEDED (all of them, through the paginated list), exactly N
//!   messages arrived, no invocation arrived twice.
//!
//! With `--drain-marker PATH` the server is expected to run without its worker
//! (`LINKCRM_JOB_WORKER=off`): after the enqueue phase this writes PATH and waits, and the driver
//! restarts the server with its worker on the same data, so the queue is drained with no HTTP
//! load beside it; the figure that counts is then the drain rate (arrivals over first to last
//! arrival).
//!
//! The row is printed even when the verification fails; the exit status is then 1.
//!
//! `infra/bench/send.sh` drives it; the figures are in BENCHMARKS.md.

use anyhow::{bail, ensure, Context};
use futures::StreamExt;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

const REL: &str = "/v1/link-building/crm/relationship";

#[derive(clap::Args)]
pub struct Args {
    /// The running server, e.g. http://127.0.0.1:3918.
    #[arg(long)]
    base: String,
    /// An agency key (the server's LINKCRM_ADMIN_KEY).
    #[arg(long)]
    key: String,
    /// Messages to send (one relationship, contact and send each).
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Concurrent requests in the enqueue phase (and the setup).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Mailboxes (all pointing at the sink), the sends spread over them in turn. Each mailbox has one
    /// daily counter that every send from it updates conditionally, so sends from one mailbox contend.
    #[arg(long, default_value_t = 1)]
    mailboxes: usize,
    /// Give up waiting for the sink after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout_secs: u64,
    /// Stop waiting for the sink when nothing arrived for this many seconds (invocations given up).
    #[arg(long, default_value_t = 20)]
    stall_secs: u64,
    /// The sink's port on 127.0.0.1 (0: any free one).
    #[arg(long, default_value_t = 0)]
    sink_port: u16,
    /// The sink waits this long before its greeting, as a distant mail server's connection set-up
    /// and greeting would take (0: a loopback server, as fast as it gets).
    #[arg(long, default_value_t = 0)]
    smtp_delay_ms: u64,
    /// Drain mode (see the module docs): write this file after the enqueue phase.
    #[arg(long)]
    drain_marker: Option<PathBuf>,
    /// The server's pid, to report its CPU share over the measured phase (from /proc).
    #[arg(long)]
    server_pid: Option<u32>,
}

// ---------------------------------------------------------------------------------------------
// The SMTP sink

#[derive(Default)]
struct Received {
    /// (arrival, X-Linkcrm-Invocation) per message, in arrival order.
    messages: Vec<(Instant, Option<String>)>,
}

struct Sink {
    port: u16,
    received: Arc<Mutex<Received>>,
    arrived: Arc<Notify>,
}

impl Sink {
    async fn start(port: u16, delay: Duration) -> anyhow::Result<Sink> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.context("binding the SMTP sink")?;
        let port = listener.local_addr()?.port();
        let received = Arc::new(Mutex::new(Received::default()));
        let arrived = Arc::new(Notify::new());
        let (r, a) = (received.clone(), arrived.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let _ = stream.set_nodelay(true);
                let (r, a) = (r.clone(), a.clone());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = session(stream, &r, &a).await {
                        eprintln!("sink: session ended: {e}");
                    }
                });
            }
        });
        Ok(Sink { port, received, arrived })
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().messages.len()
    }

    /// Waits until `n` messages arrived, `deadline` passed or nothing arrived for `stall`; returns
    /// the count and the CPU counters read when the count last changed (so a stall's idle wait does
    /// not dilute the CPU shares).
    async fn wait_for(&self, n: usize, deadline: Instant, stall: Duration, pid: Option<u32>) -> (usize, CpuMark) {
        let (mut last_count, mut last_change, mut mark) = (self.count(), Instant::now(), cpu_mark(pid));
        loop {
            let notified = self.arrived.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let got = self.count();
            if got != last_count {
                (last_count, last_change, mark) = (got, Instant::now(), cpu_mark(pid));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if got >= n || left.is_zero() || last_change.elapsed() >= stall {
                return (got, mark);
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }
}

/// One SMTP session: just enough of RFC 5321 for lettre; every message is accepted.
async fn session(stream: tokio::net::TcpStream, received: &Mutex<Received>, arrived: &Notify) -> anyhow::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    wr.write_all(b"220 linkcrm-bench sink ESMTP\r\n").await?;
    let mut line = Vec::with_capacity(256);
    loop {
        line.clear();
        if rd.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.iter().take(4).map(|b| b.to_ascii_uppercase()).collect::<Vec<_>>();
        let reply: &[u8] = match verb.as_slice() {
            b"EHLO" => b"250-linkcrm-bench sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            b"HELO" => b"250 linkcrm-bench sink\r\n",
            b"MAIL" | b"RCPT" | b"RSET" | b"NOOP" => b"250 OK\r\n",
            b"QUIT" => {
                wr.write_all(b"221 Bye\r\n").await?;
                return Ok(());
            }
            b"DATA" => {
                wr.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n").await?;
                let mut invocation = None;
                let mut in_headers = true;
                loop {
                    line.clear();
                    if rd.read_until(b'\n', &mut line).await? == 0 {
                        bail!("connection closed inside DATA");
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    if in_headers {
                        if line == b"\r\n" || line == b"\n" {
                            in_headers = false;
                        } else if let Some(v) = header_value(&line, b"x-linkcrm-invocation:") {
                            invocation = Some(v);
                        }
                    }
                }
                let now = Instant::now();
                received.lock().unwrap().messages.push((now, invocation));
                arrived.notify_waiters();
                b"250 OK queued\r\n"
            }
            _ => b"502 5.5.2 Command not implemented\r\n",
        };
        wr.write_all(reply).await?;
    }
}

fn header_value(line: &[u8], name: &[u8]) -> Option<String> {
    if line.len() < name.len() || !line[..name.len()].eq_ignore_ascii_case(name) {
        return None;
    }
    Some(String::from_utf8_lossy(&line[name.len()..]).trim().to_owned())
}

// ---------------------------------------------------------------------------------------------
// HTTP

#[derive(Clone)]
struct Api {
    client: reqwest::Client,
    base: String,
    key: String,
    workspace: Option<String>,
}

impl Api {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> anyhow::Result<(u16, Value)> {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(ws) = &self.workspace {
            req = req.header("X-Workspace-Id", ws);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let r = req.send().await.with_context(|| format!("{method} {path}"))?;
        let status = r.status().as_u16();
        let text = r.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::String(text))))
    }

    /// The call, which must answer `want`; its body.
    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        want: u16,
    ) -> anyhow::Result<Value> {
        let (status, v) = self.call(method.clone(), path, body.as_ref()).await?;
        ensure!(status == want, "{method} {path}: {status} (wanted {want}): {v}");
        Ok(v)
    }

    async fn post(&self, path: &str, body: Value, want: u16) -> anyhow::Result<Value> {
        self.expect(reqwest::Method::POST, path, Some(body), want).await
    }
}

fn str_field(v: &Value, k: &str) -> anyhow::Result<String> {
    v[k].as_str().map(str::to_owned).with_context(|| format!("no {k} in {v}"))
}

/// (relationship, contact) per message.
async fn setup(
    agency: &Api,
    n: usize,
    c: usize,
    mailboxes: usize,
    sink_port: u16,
    tag: &str,
) -> anyhow::Result<(Api, Vec<String>, Vec<(String, String)>)> {
    let ws =
        str_field(&agency.post("/v1/workspaces", json!({ "name": format!("Send bench {tag}") }), 201).await?, "id")?;
    let credits = 2 * n as u64 + 100;
    agency.post(&format!("/v1/workspaces/{ws}/credits"), json!({ "credits": credits }), 201).await?;
    let patch = json!({ "settings": { "approvalPolicy": { "outreach_send": "auto" } } });
    agency.expect(reqwest::Method::PATCH, &format!("/v1/workspaces/{ws}"), Some(patch), 200).await?;
    let api = Api { workspace: Some(ws), ..agency.clone() };
    let mut mbx = Vec::new();
    for m in 0..mailboxes {
        let mailbox = json!({ "fromName": "Dana", "fromAddress": format!("dana{m}@outreach-{tag}.example.com"),
                              "smtpHost": "127.0.0.1", "smtpPort": sink_port, "security": "none", "dailyCap": 10000 });
        mbx.push(str_field(&api.post("/v1/mailboxes", mailbox, 201).await?, "id")?);
    }
    let targets = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let domain = format!("site{i}-{tag}.example.org");
            async move {
                let r = api.post(REL, json!({ "domain": domain }), 201).await?;
                let (rel, acct) = (str_field(&r, "id")?, str_field(&r, "accountId")?);
                let contact = json!({ "accountId": acct, "firstName": "Pat", "email": format!("pat@{domain}") });
                let c = api.post("/v1/link-building/crm/contact", contact, 201).await?;
                anyhow::Ok((rel, str_field(&c, "id")?))
            }
        })
        .buffered(c)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((api, mbx, targets))
}

/// Every invocation of the workspace, through the list's cursor: id → status (`FAILED:<code>` for
/// a failed one).
async fn all_invocations(api: &Api) -> anyhow::Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = "/v1/agent/invocations?limit=200".to_owned();
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = api.expect(reqwest::Method::GET, &path, None, 200).await?;
        for inv in page["data"].as_array().context("no data")? {
            let mut status = str_field(inv, "status")?;
            if let Some(code) = inv["error"]["code"].as_str() {
                status = format!("{status}:{code}");
            }
            out.insert(str_field(inv, "invocationId")?, status);
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Ok(out),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CPU from /proc (Linux)

fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Busy jiffies of the whole machine.
fn machine_busy() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let f: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system (idle) iowait irq softirq steal: busy = all but idle and iowait.
    Some(f[0] + f[1] + f[2] + f[5] + f[6] + f.get(7).copied().unwrap_or(0))
}

/// utime + stime jiffies of a process.
fn process_cpu(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

struct CpuMark {
    at: Instant,
    machine: Option<u64>,
    server: Option<u64>,
    own: Option<u64>,
}

fn cpu_mark(server: Option<u32>) -> CpuMark {
    CpuMark {
        at: Instant::now(),
        machine: machine_busy(),
        server: server.and_then(|p| process_cpu(&p.to_string())),
        own: process_cpu("self"),
    }
}

/// "server / bench / other" in percent of one core between two marks.
fn cpu_share(a: &CpuMark, b: &CpuMark) -> String {
    let (hz, secs) = (clk_tck(), b.at.duration_since(a.at).as_secs_f64());
    let pct = |x: Option<u64>, y: Option<u64>| x.zip(y).map(|(x, y)| 100.0 * (y.saturating_sub(x)) as f64 / hz / secs);
    let (m, s, o) = (pct(a.machine, b.machine), pct(a.server, b.server), pct(a.own, b.own));
    let show = |v: Option<f64>| v.map_or("?".to_owned(), |v| format!("{v:.0}"));
    let other = m.map(|m| (m - s.unwrap_or(0.0) - o.unwrap_or(0.0)).max(0.0));
    format!("{} / {} / {}", show(s), show(o), show(other))
}

// ---------------------------------------------------------------------------------------------

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let (n, c) = (args.messages, args.concurrency.max(1));
    ensure!(n >= 1, "--messages must be at least 1");
    let sink = Sink::start(args.sink_port, Duration::from_millis(args.smtp_delay_ms)).await?;
    let client = reqwest::Client::builder().pool_max_idle_per_host(c.max(16)).build()?;
    let agency =
        Api { client, base: args.base.trim_end_matches('/').to_owned(), key: args.key.clone(), workspace: None };
    let tag = format!("{:x}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis());

    let t = Instant::now();
    let (api, mailboxes, targets) = setup(&agency, n, c, args.mailboxes.max(1), sink.port, &tag).await?;
    eprintln!(
        "setup: workspace, {} mailbox(es) on sink port {}, {n} relationships and contacts in {:.1?}",
        mailboxes.len(),
        sink.port,
        t.elapsed()
    );

    // Enqueue.
    let cpu0 = cpu_mark(args.server_pid);
    let start = Instant::now();
    let sends = futures::stream::iter(targets.iter().enumerate())
        .map(|(i, (rel, contact))| {
            let (api, mailbox) = (api.clone(), mailboxes[i % mailboxes.len()].clone());
            async move {
                let body = json!({ "contactId": contact, "mailboxId": mailbox, "subject": format!("Guest post idea {i}"),
                                   "body": "Hi,\n\nA guest post idea for your readers.\n\nDana" });
                let t0 = Instant::now();
                let r = api.post(&format!("{REL}/{rel}/send-email"), body, 202).await?;
                let accepted = Instant::now();
                ensure!(r["status"] == "PENDING", "send-email answered {r}");
                anyhow::Ok((str_field(&r, "invocationId")?, t0, accepted))
            }
        })
        .buffer_unordered(c)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<Vec<_>>>()?;
    let enqueue_secs = sends.iter().map(|s| s.2).max().unwrap().duration_since(start).as_secs_f64();
    let mut req_lat: Vec<Duration> = sends.iter().map(|(_, t0, t1)| t1.duration_since(*t0)).collect();
    req_lat.sort();
    let arrived_by_enqueue_end = sink.count();
    eprintln!("enqueue: {n} sends in {enqueue_secs:.2} s; {arrived_by_enqueue_end} already at the sink");

    let mode = if args.drain_marker.is_some() { "drain" } else { "live" };
    if let Some(marker) = &args.drain_marker {
        std::fs::write(marker, "enqueued\n")?;
        eprintln!("drain mode: wrote {}; waiting for the server to restart with its worker", marker.display());
    }
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    let (got, cpu1) = sink.wait_for(n, deadline, Duration::from_secs(args.stall_secs), args.server_pid).await;
    if got < n {
        eprintln!("only {got} of {n} messages arrived (stalled or timed out)");
    }
    // Anything late (a duplicate) would arrive just after; give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let received = sink.received.lock().unwrap().messages.clone();
    let accepted_at: HashMap<&str, Instant> = sends.iter().map(|(id, _, t1)| (id.as_str(), *t1)).collect();
    let mut seen = HashSet::new();
    let (mut duplicates, mut unknown, mut no_header) = (0, 0, 0);
    let mut e2e_lat = Vec::with_capacity(n);
    for (at, inv) in &received {
        match inv {
            None => no_header += 1,
            Some(id) if !seen.insert(id.clone()) => duplicates += 1,
            Some(id) => match accepted_at.get(id.as_str()) {
                Some(t1) => e2e_lat.push(at.saturating_duration_since(*t1)),
                None => unknown += 1,
            },
        }
    }
    e2e_lat.sort();
    let arrived = received.len();
    let first_arrival = received.iter().map(|m| m.0).min().unwrap_or(start);
    let last_arrival = received.iter().map(|m| m.0).max().unwrap_or(start);
    let e2e_secs = last_arrival.duration_since(start).as_secs_f64();
    let drain_secs = last_arrival.duration_since(first_arrival).as_secs_f64();

    // Verification: every invocation has finished SUCCEEDED (the finish commits just after the send).
    let ids: HashSet<&str> = sends.iter().map(|s| s.0.as_str()).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (by_status, listed) = loop {
        let all = all_invocations(&api).await?;
        let mine: Vec<&String> = ids.iter().filter_map(|id| all.get(*id)).collect();
        let done = mine.iter().all(|s| !["PENDING", "RUNNING"].contains(&s.as_str()));
        if (mine.len() == ids.len() && done) || Instant::now() > deadline {
            let mut by: HashMap<String, usize> = HashMap::new();
            for s in &mine {
                *by.entry((*s).clone()).or_default() += 1;
            }
            break (by, mine.len());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let succeeded = by_status.get("SUCCEEDED").copied().unwrap_or(0);
    let mut others: Vec<String> =
        by_status.iter().filter(|(k, _)| k.as_str() != "SUCCEEDED").map(|(k, v)| format!("{v} {k}")).collect();
    others.sort();
    let others = if others.is_empty() { "0".to_owned() } else { others.join(", ") };

    // Messages/s: live, arrivals over first POST → last arrival; drain, over first → last arrival.
    let rate = if mode == "drain" { arrived as f64 / drain_secs } else { arrived as f64 / e2e_secs };
    println!();
    println!(
        "Invocations listed: {listed} of {n}; SUCCEEDED {succeeded}, others: {others}; messages at the sink: \
         {arrived} (without the header: {no_header}, not ours: {unknown}, duplicates: {duplicates}); first arrival \
         {:.2} s after the first POST, last {e2e_secs:.2} s",
        first_arrival.duration_since(start).as_secs_f64(),
    );
    println!();
    println!("{TABLE_HEADER}");
    let lat = if mode == "drain" {
        "n/a (restart in between)".to_owned()
    } else {
        format!(
            "{:.0} / {:.0} / {:.0} / {:.0}",
            pct(&e2e_lat, 50.0),
            pct(&e2e_lat, 90.0),
            pct(&e2e_lat, 99.0),
            pct(&e2e_lat, 100.0)
        )
    };
    println!(
        "| {mode} | {c} | {} | {n} | {:.0} | {:.1} / {:.1} | {e2e_secs:.2} | {rate:.1} | {lat} | {succeeded} | {others} \
         | {arrived} | {duplicates} | {} |",
        mailboxes.len(),
        n as f64 / enqueue_secs,
        pct(&req_lat, 50.0),
        pct(&req_lat, 99.0),
        cpu_share(&cpu0, &cpu1),
    );
    ensure!(succeeded == n, "only {succeeded} of {n} invocations SUCCEEDED; others: {others}");
    ensure!(
        arrived == n && duplicates == 0 && unknown == 0 && no_header == 0,
        "the sink did not get exactly the N messages once each"
    );
    Ok(())
}

/// The Markdown table's header (send.sh prints it once above the rows of several runs).
pub const TABLE_HEADER: &str = "| Mode | C | Mailboxes | N | Enqueue req/s | Enqueue p50 / p99 (ms) \
| First POST → last arrival (s) | Messages/s | 202 → sink p50 / p90 / p99 / max (ms) | SUCCEEDED | Not SUCCEEDED \
| Arrived | Duplicates | CPU server / bench / other (% of a core) |
|---|---:|---:|---:|---:|---|---:|---:|---|---:|---|---:|---:|---|";
