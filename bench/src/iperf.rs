//! TCP and UDP through a lagg with iperf3 (Debian's, the tool users run), and the receiving
//! stack's own verdict on every segment: the checksum error counters of `/proc/net/snmp` in
//! the receiver's namespace.
//!
//! A run starts a one-off server (`iperf3 -s -1`) in one namespace, waits until it listens,
//! runs the client in another with a connect timeout and a hard time limit, and returns the
//! client's JSON summary. A connection that never completes (a SYN with a bad checksum is
//! dropped by the receiver) fails within seconds with iperf3's own message.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// One iperf3 run: who talks to whom and what is sent.
#[derive(Clone, Debug)]
pub struct IperfRun<'a> {
    /// Namespace of the server.
    pub server_ns: &'a str,
    /// Address the server listens on.
    pub server_addr: &'a str,
    /// Namespace of the client.
    pub client_ns: &'a str,
    /// Address the client binds to.
    pub client_addr: &'a str,
    /// Bytes to send (`-n`), unless `seconds` is given.
    pub bytes: u64,
    /// Send for this long (`-t`) instead of a number of bytes.
    pub seconds: Option<u32>,
    /// Parallel streams (`-P`); 0 and 1 are one.
    pub streams: u32,
    /// Server to client instead of client to server (`-R`).
    pub reverse: bool,
    /// UDP at this rate in bit/s instead of TCP.
    pub udp_rate: Option<u64>,
    /// TCP port.
    pub port: u16,
}

/// What the client reported.
#[derive(Clone, Debug, PartialEq)]
pub struct IperfReport {
    /// Bytes the sender sent.
    pub sent: u64,
    /// Bytes the receiver got (iperf3 may stop counting a little before the last segment).
    pub bytes: u64,
    /// Receiver-side throughput in bit/s.
    pub bits_per_second: f64,
    /// TCP retransmissions of the sender (0 for UDP).
    pub retransmits: u64,
    /// UDP datagrams lost (0 for TCP).
    pub lost: u64,
    /// UDP datagrams sent (0 for TCP).
    pub packets: u64,
}

struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn ns_command(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

/// Whether iperf3 is installed (scripts/setup.sh installs it).
///
/// # Errors
/// When it is not, saying where it comes from.
pub fn require() -> Result<()> {
    let ok = Command::new("iperf3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!("iperf3 is missing: install Debian's iperf3 (scripts/setup.sh does)");
    }
    Ok(())
}

impl IperfRun<'_> {
    /// Runs it; at most `limit` for the whole transfer.
    ///
    /// # Errors
    /// iperf3 could not start, the server never listened, or the client failed (its error
    /// message is in the error).
    pub fn run(&self, limit: Duration) -> Result<IperfReport> {
        require()?;
        let port = self.port.to_string();
        let mut server = ns_command(self.server_ns, "iperf3")
            .args([
                "-s",
                "-1",
                "--forceflush",
                "-B",
                self.server_addr,
                "-p",
                &port,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting the iperf3 server")?;
        let out = server.stdout.take().context("iperf3 stdout")?;
        let server = Server(Some(server));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.contains("Server listening") => break,
                Ok(_) => {}
                Err(_) if Instant::now() < deadline => {}
                Err(_) => bail!(
                    "the iperf3 server in {} did not listen on {}:{port}",
                    self.server_ns,
                    self.server_addr
                ),
            }
        }
        let mut client = ns_command(self.client_ns, "timeout");
        client.args([
            &limit.as_secs().max(1).to_string(),
            "iperf3",
            "-c",
            self.server_addr,
            "-B",
            self.client_addr,
            "-p",
            &port,
            "--connect-timeout",
            "3000",
            "--json",
        ]);
        match self.seconds {
            Some(s) => client.args(["-t", &s.to_string()]),
            None => client.args(["-n", &self.bytes.to_string()]),
        };
        if self.streams > 1 {
            client.args(["-P", &self.streams.to_string()]);
        }
        if self.reverse {
            client.arg("-R");
        }
        if let Some(rate) = self.udp_rate {
            client.args(["-u", "-b", &rate.to_string(), "-l", "1400"]);
        }
        let out = client.output().context("running the iperf3 client")?;
        drop(server);
        let text = String::from_utf8_lossy(&out.stdout);
        let json: serde_json::Value = serde_json::from_str(&text).with_context(|| {
            format!(
                "iperf3 client printed no JSON (exit {:?}): {text}{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        if let Some(e) = json.get("error").and_then(|e| e.as_str()) {
            bail!("iperf3: {e}");
        }
        if !out.status.success() {
            bail!(
                "iperf3 client exited with {:?} (124: the {limit:?} limit ran out)",
                out.status.code()
            );
        }
        let end = &json["end"];
        let report = if self.udp_rate.is_some() {
            let sum = &end["sum"];
            IperfReport {
                sent: sum["bytes"].as_u64().unwrap_or(0),
                bytes: sum["bytes"].as_u64().unwrap_or(0),
                bits_per_second: sum["bits_per_second"].as_f64().unwrap_or(0.0),
                retransmits: 0,
                lost: sum["lost_packets"].as_u64().unwrap_or(0),
                packets: sum["packets"].as_u64().unwrap_or(0),
            }
        } else {
            IperfReport {
                sent: end["sum_sent"]["bytes"].as_u64().unwrap_or(0),
                bytes: end["sum_received"]["bytes"].as_u64().unwrap_or(0),
                bits_per_second: end["sum_received"]["bits_per_second"]
                    .as_f64()
                    .unwrap_or(0.0),
                retransmits: end["sum_sent"]["retransmits"].as_u64().unwrap_or(0),
                lost: 0,
                packets: 0,
            }
        };
        Ok(report)
    }
}

/// The counters of `/proc/net/snmp` and `/proc/net/netstat` in namespace `ns`, as
/// `"Tcp.InCsumErrors" -> value`, `"IpExt.InOctets" -> value`.
///
/// # Errors
/// A file cannot be read there.
pub fn snmp(ns: &str) -> Result<BTreeMap<String, u64>> {
    let mut all = BTreeMap::new();
    // The extended counters (`IpExt.InOctets`, `TcpExt...`) come in the same format.
    for file in ["/proc/net/snmp", "/proc/net/netstat"] {
        let out = ns_command(ns, "cat")
            .arg(file)
            .output()
            .with_context(|| format!("reading {file}"))?;
        if !out.status.success() {
            bail!(
                "reading {file} in {ns}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        all.extend(parse_snmp(&String::from_utf8_lossy(&out.stdout)));
    }
    Ok(all)
}

/// Parses `/proc/net/snmp`: pairs of lines, names then values, under one prefix.
pub fn parse_snmp(text: &str) -> BTreeMap<String, u64> {
    let mut map = BTreeMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((prefix, names)), Some((_, values))) =
            (names.split_once(':'), values.split_once(':'))
        else {
            continue;
        };
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse::<i64>() {
                map.insert(format!("{prefix}.{n}"), v.max(0) as u64);
            }
        }
    }
    map
}

/// Checksum errors counted by the receiving stack: TCP and UDP (UDP-Lite included).
pub fn checksum_errors(snmp: &BTreeMap<String, u64>) -> u64 {
    [
        "Tcp.InCsumErrors",
        "Udp.InCsumErrors",
        "UdpLite.InCsumErrors",
    ]
    .iter()
    .map(|k| snmp.get(*k).copied().unwrap_or(0))
    .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snmp_pairs_are_read_by_name() {
        let text =
            "Ip: Forwarding DefaultTTL\nIp: 2 64\nTcp: RtoAlgorithm InCsumErrors\nTcp: 1 7\n\
                    Udp: InDatagrams InCsumErrors\nUdp: 10 3\n";
        let m = parse_snmp(text);
        assert_eq!(m["Ip.DefaultTTL"], 64);
        assert_eq!(m["Tcp.InCsumErrors"], 7);
        assert_eq!(checksum_errors(&m), 10);
    }
}
