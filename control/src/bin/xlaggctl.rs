//! `xlaggctl`: ifconfig for xlagg laggs, talking to `xlaggd` over its Unix socket.
//! See `xlaggctl --help` (the text lives in `xlagg_control::mgmt::cli`).

use std::process::ExitCode;

use clap::Parser;
use xlagg_control::config::rcconf;
use xlagg_control::config::{is_lagg_name, ConfigDoc};
use xlagg_control::mgmt::api::{self, Request, Response};
use xlagg_control::mgmt::cli::{self, Cli};
use xlagg_control::runtime::status::{self, LaggStatus};

/// sysexits' EX_UNAVAILABLE: the daemon does not answer.
const UNAVAILABLE: u8 = 69;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(what) = cli.generate {
        return match cli::generate(what, &mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("xlaggctl: {e}");
                ExitCode::FAILURE
            }
        };
    }
    match cli.target.as_deref() {
        None => show(&cli, None),
        Some("dump") => print_data(&cli, &Request::Dump, true),
        Some("config") => match call(&cli, &Request::Config) {
            Ok(data) => {
                print!("{}", data["toml"].as_str().unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Some("import") => import(&cli),
        Some("web") => web(&cli),
        Some("brief") => brief(&cli),
        Some(name) if !is_lagg_name(name) => {
            eprintln!(
                "xlaggctl: '{name}' is not a lagg name (laggN) nor one of dump, config, import, web, brief; see xlaggctl --help"
            );
            ExitCode::from(2)
        }
        Some(name) if cli.words.is_empty() => show(&cli, Some(name)),
        Some(name) if cli.words.first().is_some_and(|w| w == "explain") => {
            explain(&cli, name, &cli.words[1..])
        }
        Some(name) => {
            let request = Request::Ifconfig {
                name: name.to_string(),
                args: cli.words.clone(),
                dry_run: cli.dry_run,
            };
            change(&cli, &request)
        }
    }
}

/// Sends a request; prints the daemon's refusal. `Err` carries the exit status.
fn call(cli: &Cli, request: &Request) -> Result<serde_json::Value, ExitCode> {
    match api::call(&cli.socket, request) {
        Ok(Response { ok: true, data, .. }) => Ok(data),
        Ok(Response { errors, .. }) => {
            for e in errors {
                eprintln!("xlaggctl: {e}");
            }
            Err(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!(
                "xlaggctl: cannot reach xlaggd at {}: {e} (is it running? start it with systemctl start xlaggd, \
                 or point --socket at its daemon.socket)",
                cli.socket.display()
            );
            Err(ExitCode::from(UNAVAILABLE))
        }
    }
}

fn print_data(cli: &Cli, request: &Request, _always_json: bool) -> ExitCode {
    match call(cli, request) {
        Ok(data) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&data).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// `xlaggctl laggN explain FIELD=VALUE...`: which member the flow leaves on, and why.
fn explain(cli: &Cli, name: &str, words: &[String]) -> ExitCode {
    let mut flow = Vec::new();
    for w in words {
        let Some((k, v)) = w.split_once('=') else {
            eprintln!(
                "xlaggctl: explain takes FIELD=VALUE words, got '{w}': e.g. xlaggctl {name} explain \
                 src_ip=10.0.0.1 dst_ip=10.0.0.2 proto=tcp src_port=40000 dst_port=2049 \
                 (fields: {})",
                xlagg_dataplane::explain::FIELDS.join(", ")
            );
            return ExitCode::from(2);
        };
        flow.push((k.to_string(), v.to_string()));
    }
    let request = Request::Explain {
        name: name.to_string(),
        flow,
    };
    if cli.json {
        return print_data(cli, &request, true);
    }
    let data = match call(cli, &request) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let fields: Vec<String> = data["flow"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    format!(
                        "{k}={}",
                        v.as_str().map_or_else(|| v.to_string(), String::from)
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let list = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    };
    println!(
        "{name}: {}",
        if fields.is_empty() {
            "a flow with no field given".to_string()
        } else {
            fields.join(" ")
        }
    );
    match data["member"].as_str() {
        Some(m) => println!("\tleaves on {m}"),
        None if list(&data["members"]).is_empty() => println!("\tleaves on no member"),
        None => println!("\tleaves on {}", list(&data["members"])),
    }
    for line in data["why"].as_array().into_iter().flatten() {
        println!("\t{}", line.as_str().unwrap_or_default());
    }
    ExitCode::SUCCESS
}

fn show(cli: &Cli, name: Option<&str>) -> ExitCode {
    let request = Request::Status {
        name: name.map(String::from),
    };
    if cli.json {
        return print_data(cli, &request, true);
    }
    let data = match call(cli, &request) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let laggs: Vec<LaggStatus> = match serde_json::from_value(data) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("xlaggctl: the daemon's status is not understood: {e}");
            return ExitCode::FAILURE;
        }
    };
    for l in &laggs {
        print!("{}", status::render(l, cli.verbose));
    }
    ExitCode::SUCCESS
}

/// One line per lagg (the appliance's console status).
fn brief(cli: &Cli) -> ExitCode {
    let data = match call(cli, &Request::Status { name: None }) {
        Ok(d) => d,
        Err(code) => return code,
    };
    match serde_json::from_value::<Vec<LaggStatus>>(data) {
        Ok(laggs) if laggs.is_empty() => println!("xlagg: no laggs configured"),
        Ok(laggs) => {
            for l in &laggs {
                println!("xlagg: {}", status::brief(l));
            }
        }
        Err(e) => {
            eprintln!("xlaggctl: the daemon's status is not understood: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn change(cli: &Cli, request: &Request) -> ExitCode {
    match call(cli, request) {
        Ok(data) => {
            if cli.json {
                println!("{data}");
            } else if cli.dry_run {
                println!("valid; would change: {}", list(&data["changed"]));
            }
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

fn list(v: &serde_json::Value) -> String {
    let names: Vec<&str> = v
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str()).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// Prints the web UI's address with the token in it (the token file is root's).
fn web(cli: &Cli) -> ExitCode {
    let dump = match call(cli, &Request::Dump) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let Some(addr) = dump["http"].as_str() else {
        eprintln!("xlaggctl: the daemon has no HTTP listener (daemon.http is \"\")");
        return ExitCode::FAILURE;
    };
    let file = dump["token_file"].as_str().unwrap_or_default();
    match std::fs::read_to_string(file) {
        Ok(token) => {
            println!("http://{addr}/#token={}", token.trim());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "xlaggctl: cannot read the token in {file}: {e} (it is readable by root only)"
            );
            eprintln!("http://{addr}/");
            ExitCode::FAILURE
        }
    }
}

fn import(cli: &Cli) -> ExitCode {
    // Options after the file end up among the words (they may be ifconfig words elsewhere).
    let apply = cli.apply || cli.words.iter().any(|w| w == "--apply");
    let dry_run = cli.dry_run || cli.words.iter().any(|w| w == "-n" || w == "--dry-run");
    let files: Vec<&String> = cli
        .words
        .iter()
        .filter(|w| !matches!(w.as_str(), "--apply" | "-n" | "--dry-run"))
        .collect();
    let [file] = files.as_slice() else {
        eprintln!("xlaggctl: import needs one file, e.g. xlaggctl import /etc/rc.conf");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("xlaggctl: cannot read {file}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let imported = match rcconf::import(&text) {
        Ok(i) => i,
        Err(errors) => {
            for e in errors {
                eprintln!("xlaggctl: {file}: {e}");
            }
            return ExitCode::FAILURE;
        }
    };
    for note in &imported.notes {
        eprintln!("xlaggctl: {file}: {note}");
    }
    if !apply && !dry_run {
        print!("{}", imported.doc.to_toml());
        return ExitCode::SUCCESS;
    }
    // Merge into the daemon's configuration: imported laggs replace those of the same name.
    let current = match call(cli, &Request::Config) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let mut doc = match ConfigDoc::from_toml(current["toml"].as_str().unwrap_or_default()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xlaggctl: the daemon's configuration is not understood: {e}");
            return ExitCode::FAILURE;
        }
    };
    for lagg in imported.doc.laggs {
        match doc.lagg_mut(&lagg.name) {
            Some(existing) => *existing = lagg,
            None => doc.laggs.push(lagg),
        }
    }
    change(
        cli,
        &Request::Replace {
            toml: doc.to_toml(),
            dry_run,
        },
    )
}
