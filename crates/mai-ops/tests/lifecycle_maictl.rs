//! The real `maictl clients` binary without a Docker engine: bad input is a usage error
//! (exit 2) naming each field, on stderr with its progress line; a typo in a snippet is
//! refused; offboarding asks for confirmation and, without a terminal, refuses without
//! `--yes`; the fleet file is never touched by any of it.

use std::path::Path;
use std::process::{Command, Output};

const FLEET: &str = r#"# maictl clients test fleet
[console]
data_dir = "data"

[[hosts]]
name = "local"
docker = "unix:///nonexistent/docker.sock"

[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta 1"
host = "local"
tracker_url = "http://127.0.0.1:9"
tracker_admin_token = "env:UNUSED_A"
tracker_read_token = "env:UNUSED_R"
"#;

fn maictl(fleet: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maictl"))
        .arg("--fleet")
        .arg(fleet)
        .args(args)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn clients_add_and_remove_refuse_bad_input_with_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let fleet = dir.path().join("fleet.toml");
    std::fs::write(&fleet, FLEET).unwrap();

    // Every bad field, each named, and the progress line on stderr.
    let o = maictl(
        &fleet,
        &[
            "clients",
            "add",
            "--id",
            "acme",
            "--legal-name",
            "X",
            "--nip",
            "526-104-08-29",
            "--address",
            "ul. Y 1",
            "--markup",
            "1,3",
            "--host",
            "local",
            "--tracker-port",
            "18100",
            "--chat-port",
            "18100",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("validate") && e.contains("FAILED"), "{e}");
    for want in [
        "client.id: \"acme\" is already a client",
        "client.nip: NIP `526-104-08-29` has a wrong check digit",
        "client.markup: \"1,3\" is not a decimal number",
        "deploy.chat_port: 18100 is also the tracker's port",
    ] {
        assert!(e.contains(want), "missing {want:?} in {e}");
    }

    // A snippet with a typo.
    let snippet = dir.path().join("k.toml");
    std::fs::write(
        &snippet,
        "id = \"kowalski\"\nlegal_nam = \"K\"\n[deploy]\nhost = \"local\"\n",
    )
    .unwrap();
    let o = maictl(
        &fleet,
        &["clients", "add", "--from", snippet.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("unknown key `legal_nam`"),
        "{}",
        stderr(&o)
    );

    // Offboarding shows what it would do, then refuses to go on without a terminal.
    let o = maictl(&fleet, &["clients", "remove", "acme"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("acme (ACME Sp. z o.o.) on host local"),
        "{out}"
    );
    assert!(stderr(&o).contains("pass --yes"), "{}", stderr(&o));
    let o = maictl(&fleet, &["clients", "check", "nobody"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));

    assert_eq!(std::fs::read_to_string(&fleet).unwrap(), FLEET);
}
