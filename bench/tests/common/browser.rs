//! Headless Chromium (Debian's package) driven over the DevTools protocol, inside a test-bed
//! namespace so it reaches the daemon's localhost listener there. The protocol runs over two
//! named pipes (`--remote-debugging-pipe`: commands on fd 3, answers on fd 4, each message
//! ended by NUL), so no WebSocket client and no extra port are needed.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::Bed;

pub struct Browser {
    child: Child,
    to: File,
    from: BufReader<File>,
    next: u64,
    session: String,
    dir: PathBuf,
}

impl Browser {
    /// Starts Chromium in namespace `role` of the bed and opens one page.
    pub fn open(bed: &Bed, role: &str) -> Browser {
        let chromium = ["chromium", "chromium-browser"]
            .into_iter()
            .find(|b| {
                Command::new("sh")
                    .args(["-c", &format!("command -v {b}")])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .expect(
                "chromium is not installed: run scripts/setup.sh (it installs Debian's chromium)",
            );
        let dir = std::env::temp_dir().join(format!("xlagg-{}-browser", bed.id));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("browser dir");
        for fifo in ["in", "out"] {
            let ok = Command::new("mkfifo")
                .arg(dir.join(fifo))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mkfifo failed");
        }
        let d = dir.display();
        let script = format!(
            "exec {chromium} --headless=new --no-sandbox --disable-gpu --no-first-run \
             --disable-dev-shm-usage --disable-extensions --window-size=1400,1000 \
             --remote-debugging-pipe --user-data-dir={d}/profile about:blank \
             3<{d}/in 4>{d}/out 2>{d}/stderr"
        );
        let child = bed
            .exec(role, &["bash", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start chromium");
        // Opening the pipes pairs with the shell's redirections, in the same order.
        let to = File::options()
            .write(true)
            .open(dir.join("in"))
            .expect("open the command pipe");
        let from = BufReader::new(File::open(dir.join("out")).expect("open the answer pipe"));
        let mut b = Browser {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            dir,
        };
        let target = b.call_browser("Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = b.call_browser(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        b.session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        b.call("Page.enable", json!({}));
        b
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if session {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = serde_json::to_vec(&msg).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        loop {
            let mut buf = Vec::new();
            let n = self
                .from
                .read_until(0, &mut buf)
                .expect("read from chromium");
            assert!(
                n > 0,
                "chromium closed the pipe; see {}",
                self.dir.join("stderr").display()
            );
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).expect("chromium sent JSON");
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    panic!("{method} failed: {e}");
                }
                return v["result"].clone();
            }
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, false)
    }

    /// A DevTools command on the page.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, true)
    }

    /// Loads `url` and waits until the document is complete.
    pub fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("document.readyState === 'complete'", 20, "the page to load");
    }

    /// Evaluates JavaScript in the page (promises awaited) and returns its value.
    pub fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
        );
        if let Some(e) = r.get("exceptionDetails") {
            panic!("{js} threw: {e}");
        }
        r["result"]["value"].clone()
    }

    /// Waits until `cond` (JavaScript) is true; panics naming `what` after `secs`.
    pub fn wait_for(&mut self, cond: &str, secs: u64, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if self.eval(&format!("!!({cond})")) == json!(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let body = self.eval("document.body ? document.body.innerText : ''");
        panic!(
            "timed out waiting for {what}; the page shows:\n{}",
            body.as_str().unwrap_or("")
        );
    }

    /// What is wrong with the page's layout as a person would see it: the page scrolling
    /// sideways, an element running past the window's right edge, two boxes that carry text or
    /// a control drawn over each other. Empty when the page looks right.
    pub fn layout_problems(&mut self) -> Vec<String> {
        let v = self.eval(LAYOUT_CHECK);
        v.as_array()
            .expect("the layout check returns a list")
            .iter()
            .map(|p| p.as_str().unwrap_or("?").to_string())
            .collect()
    }

    /// Saves a PNG of the page.
    pub fn screenshot(&mut self, path: &Path) {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}));
        let data = r["data"].as_str().expect("screenshot data");
        let bytes = base64_decode(data);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).expect("artifact dir");
        }
        std::fs::write(path, bytes).expect("write screenshot");
    }
}

/// The layout check, run in the page. Boxes with text of their own (or a control, or a
/// canvas) are compared pairwise, leaving out an element and what it contains; touching edges
/// (a table's cells) are not an overlap. With a dialog open, the dialog is checked: it is
/// drawn over the page on purpose.
const LAYOUT_CHECK: &str = r##"(() => {
  const vw = document.documentElement.clientWidth;
  const problems = [];
  const sw = document.documentElement.scrollWidth;
  if (sw > vw + 1) problems.push(`the page scrolls sideways: ${sw} px wide in a ${vw} px window`);
  const shown = (e) => {
    const r = e.getBoundingClientRect();
    return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== "hidden" && !e.closest("dialog:not([open])");
  };
  const name = (e) => {
    const cls = typeof e.className === "string" && e.className.trim() ? "." + e.className.trim().split(/\s+/).join(".") : "";
    return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + cls + ' "' + (e.textContent || "").trim().slice(0, 40) + '"';
  };
  const root = document.querySelector("dialog[open]") || document.body;
  const all = [...root.querySelectorAll("*")].filter(shown);
  for (const e of all) {
    const r = e.getBoundingClientRect();
    if (r.right > vw + 1) problems.push(`${name(e)} ends at ${Math.round(r.right)} px, past the ${vw} px window`);
  }
  const marks = all.filter(
    (e) => ["BUTTON", "INPUT", "SELECT", "CANVAS"].includes(e.tagName) || [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())
  );
  for (let i = 0; i < marks.length; i++) {
    const a = marks[i].getBoundingClientRect();
    for (let j = i + 1; j < marks.length; j++) {
      if (marks[i].contains(marks[j]) || marks[j].contains(marks[i])) continue;
      const b = marks[j].getBoundingClientRect();
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) problems.push(`${name(marks[i])} and ${name(marks[j])} overlap by ${Math.round(w)}x${Math.round(h)} px`);
    }
  }
  return problems.slice(0, 20);
})()"##;

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium's helper processes carry the profile directory on their command line.
        let _ = Command::new("pkill")
            .args([
                "-KILL",
                "-f",
                &self.dir.join("profile").display().to_string(),
            ])
            .status();
        // Helper processes may still be writing the profile for a moment.
        for _ in 0..50 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Standard base64 (the screenshot), without a dependency.
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter_map(val) {
        acc = (acc << 6) | c;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
