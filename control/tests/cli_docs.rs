//! The man page and shell completions in dist/ are what the command-line definition
//! generates; after changing control/src/mgmt/cli.rs, run scripts/gen-docs.sh.

use xlagg_control::mgmt::cli::{generate, Generate};

fn generated(what: Generate) -> String {
    let mut out = Vec::new();
    generate(what, &mut out).expect("generate");
    String::from_utf8(out).expect("utf-8")
}

#[test]
fn committed_man_page_and_completions_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (what, file) in [
        (Generate::Man, "dist/man/xlaggctl.1"),
        (Generate::Bash, "dist/completions/xlaggctl.bash"),
        (Generate::Zsh, "dist/completions/xlaggctl.zsh"),
        (Generate::Fish, "dist/completions/xlaggctl.fish"),
    ] {
        let committed = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}; run scripts/gen-docs.sh"));
        assert!(
            committed == generated(what),
            "{file} is out of date: run scripts/gen-docs.sh and commit the result"
        );
    }
    let man = generated(Generate::Man);
    for word in ["laggproto", "-laggport", "import", "Exit status"] {
        assert!(man.contains(word), "the man page explains {word}");
    }
}
