//! Open vSwitch (Debian's openvswitch-switch, userspace datapath) as an LACP partner that we
//! did not write: its own ovsdb and vswitchd in the partner namespace, a bond over every
//! partner port with LACP, and the partner's address on the bridge.

use std::path::PathBuf;
use std::process::Command;

use super::{run, Bed};

/// The partner ports of the bond.
const PTR: [&str; 4] = ["xlp0", "xlp1", "xlp2", "xlp3"];

/// Open vSwitch with its own ovsdb and vswitchd in the partner namespace, private paths,
/// stopped on drop.
pub struct Ovs {
    dir: PathBuf,
    ns: String,
}

impl Ovs {
    pub fn ctl(&self, args: &[&str]) -> String {
        let db = format!("--db=unix:{}/db.sock", self.dir.display());
        let out = run(Command::new("ip")
            .args(["netns", "exec", &self.ns, "ovs-vsctl", &db])
            .args(args));
        assert!(
            out.status.success(),
            "ovs-vsctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn appctl(&self, args: &[&str]) -> String {
        let target = format!("{}/vswitchd.ctl", self.dir.display());
        let out = run(Command::new("ovs-appctl").args(["-t", &target]).args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn start(bed: &Bed) -> Ovs {
        for tool in [
            "ovsdb-tool",
            "ovsdb-server",
            "ovs-vswitchd",
            "ovs-vsctl",
            "ovs-appctl",
        ] {
            assert!(
                run(Command::new("sh").args(["-c", &format!("command -v {tool}")]))
                    .status
                    .success(),
                "{tool} is missing: install openvswitch-switch (scripts/setup.sh does)"
            );
        }
        let dir = std::env::temp_dir().join(format!("xlagg-ovs-{}", bed.id));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("ovs dir");
        let ovs = Ovs {
            dir,
            ns: bed.ns("ptr"),
        };
        let d = ovs.dir.display().to_string();
        let sh = |cmd: String| {
            let out = run(Command::new("ip").args(["netns", "exec", &ovs.ns, "sh", "-c", &cmd]));
            assert!(
                out.status.success(),
                "{cmd}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh(format!(
            "ovsdb-tool create {d}/conf.db /usr/share/openvswitch/vswitch.ovsschema"
        ));
        sh(format!(
            "ovsdb-server {d}/conf.db --remote=punix:{d}/db.sock --pidfile={d}/ovsdb.pid --unixctl={d}/ovsdb.ctl \
             --log-file={d}/ovsdb.log --detach"
        ));
        ovs.ctl(&["--no-wait", "init"]);
        sh(format!(
            "ovs-vswitchd unix:{d}/db.sock --pidfile={d}/vswitchd.pid --unixctl={d}/vswitchd.ctl \
             --log-file={d}/vswitchd.log --detach"
        ));
        ovs.ctl(&[
            "add-br",
            "br0",
            "--",
            "set",
            "bridge",
            "br0",
            "datapath_type=netdev",
        ]);
        let mut bond = vec!["add-bond", "br0", "bond0"];
        bond.extend(&PTR[..bed.members]);
        bond.extend([
            "lacp=active",
            "bond_mode=balance-tcp",
            "other_config:lacp-time=fast",
        ]);
        ovs.ctl(&bond);
        // The bond members are ordinary kernel interfaces too, and Linux answers ARP for any
        // local address on any interface: the partner's kernel would answer for br0's
        // address on a member with the member's MAC, which no switch does. Answer only on
        // the interface that has the address.
        sh("sysctl -qw net.ipv4.conf.all.arp_ignore=1".into());
        bed.ip("ptr", &["addr", "add", "10.77.0.2/24", "dev", "br0"]);
        bed.ip("ptr", &["link", "set", "br0", "up"]);
        ovs
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        let _ = self.appctl(&["exit"]);
        let target = format!("{}/ovsdb.ctl", self.dir.display());
        let _ = Command::new("ovs-appctl")
            .args(["-t", &target, "exit"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
