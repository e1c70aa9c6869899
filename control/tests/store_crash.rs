//! A writer killed with SIGKILL in the middle of `write_atomic` leaves the configuration file
//! either old or new, never torn. The writer is this test binary run again with
//! `XLAGG_STORE_WRITER` set (see `writer_process`), killed at varying moments.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use xlagg_control::config::store::{backup_path, write_atomic};

/// Two versions large enough that a write takes a while (several pages each).
fn version(which: u8) -> String {
    let line = format!("# version {which} {}\n", "x".repeat(100));
    line.repeat(4000)
}

/// Run by the parent as a child process: writes the two versions in turn until killed.
#[test]
#[ignore = "the writer process of a_write_killed_at_any_moment_leaves_old_or_new, which runs it"]
fn writer_process() {
    let path = std::env::var("XLAGG_STORE_WRITER")
        .expect("XLAGG_STORE_WRITER names the file to write (set by the parent test)");
    let path = Path::new(&path);
    let mut which = 0u8;
    loop {
        which ^= 1;
        let _ = write_atomic(path, &version(which)).expect("write");
    }
}

#[test]
fn a_write_killed_at_any_moment_leaves_old_or_new() {
    let dir = std::env::temp_dir().join(format!("xlagg-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("xlagg.toml");
    let _ = write_atomic(&path, &version(0)).unwrap();
    let (a, b) = (version(0), version(1));
    let exe = std::env::current_exe().unwrap();
    let mut saw_new = 0;
    for round in 0..40u64 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "writer_process",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("XLAGG_STORE_WRITER", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Vary the moment of death: from during start-up to well into the write loop.
        std::thread::sleep(Duration::from_micros(2_000 + round * 1_300));
        child.kill().unwrap();
        child.wait().unwrap();
        let now = std::fs::read_to_string(&path).unwrap();
        if now == b {
            saw_new += 1;
        }
        assert!(
            now == a || now == b,
            "round {round}: the file is torn ({} bytes)",
            now.len()
        );
        if let Ok(bak) = std::fs::read_to_string(backup_path(&path)) {
            assert!(bak == a || bak == b, "round {round}: the backup is torn");
        }
    }
    assert!(
        saw_new > 0,
        "the writer never got a new version out: it did not run, and this test proved nothing"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
