//! The real `maictl backup` against real trackers (in-process) on the OpenRouter
//! simulator: a backup is streamed, verified and described by its manifest (month totals
//! = the simulator's truth), retention keeps `keep`, a restore goes onto a new tracker
//! only, and the restored tracker's month equals the truth exactly.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use mai_sim::openrouter::{OpenRouterSim, SimConfig};
use mai_wire::backup::{BackupManifest, BackupOutcome, ClientBackups, RestoreResult};
use mai_wire::tracker::Month;

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000b7";
const PROXY: &str = "proxy-token-0123456789";
const READ: &str = "read-token-0123456789";
const ADMIN: &str = "admin-token-0123456789";

async fn tracker(sim: &str, dir: &Path) -> mai_tracker::Tracker {
    let db = dir.join("tracker.sqlite").display().to_string();
    let m: HashMap<&str, String> = HashMap::from([
        ("OPENROUTER_API_KEY", KEY.to_owned()),
        ("OPENROUTER_BASE_URL", sim.to_owned()),
        ("MAI_ORG_ID", "acme".to_owned()),
        ("MAI_TRACKER_LISTEN", "127.0.0.1:0".to_owned()),
        ("MAI_TRACKER_DB", db),
        ("MAI_TRACKER_PROXY_TOKEN", PROXY.to_owned()),
        ("MAI_TRACKER_READ_TOKEN", READ.to_owned()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| m.get(k).cloned()).unwrap();
    mai_tracker::start(cfg).await.unwrap()
}

fn fleet(dir: &Path, tracker_url: &str, backup: bool) -> std::path::PathBuf {
    let f = dir.join("fleet.toml");
    let mut s = format!(
        r#"[console]
data_dir = "console"

[[hosts]]
name = "h1"
docker = "unix:///nonexistent/docker.sock"

[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta 1"
host = "h1"
markup = "1.3"
tracker_url = "{tracker_url}"
tracker_admin_token = "env:ACME_ADMIN"
tracker_read_token = "env:ACME_READ"
"#
    );
    if backup {
        s.push_str("\n[backup]\ndir = \"backups\"\nkeep = 2\n");
    }
    std::fs::write(&f, s).unwrap();
    f
}

async fn maictl(fleet: &Path, args: &[&str]) -> Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_maictl"));
    c.arg("--fleet")
        .arg(fleet)
        .arg("--no-docker")
        .args(args)
        .env_remove("MAI_FLEET")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env("ACME_ADMIN", ADMIN)
        .env("ACME_READ", READ);
    c.output().await.unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

async fn month(base: &str) -> Month {
    let m = chrono::Utc::now().format("%Y-%m").to_string();
    reqwest::Client::new()
        .get(format!("{base}/api/v1/usage/month?month={m}"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maictl_backs_up_keeps_n_and_restores_onto_a_new_tracker_only() {
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let a_dir = dir.path().join("a");
    let a = tracker(&sim.base_url(), &a_dir).await;
    let http = reqwest::Client::new();
    for i in 0..5 {
        let r = http
            .post(format!("{}/v1/chat/completions", a.base_url()))
            .bearer_auth(PROXY)
            .json(&serde_json::json!({
                "model": "openai/gpt-4o-mini", "stream": i % 2 == 0, "user": "alice@acme.pl",
                "messages": [{"role": "user", "content": "Hello"}]
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    a.state.writer.flush().await.unwrap();
    let truth = sim.key_totals(KEY);

    // No folder anywhere: a usage error naming the fix.
    let f = fleet(dir.path(), &a.base_url(), false);
    let o = maictl(&f, &["backup", "run", "--client", "acme"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("[backup]"), "{}", text(&o.stderr));

    let f = fleet(dir.path(), &a.base_url(), true);
    let o = maictl(&f, &["backup", "run", "--client", "acme", "--json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out: Vec<BackupOutcome> = serde_json::from_slice(&o.stdout).unwrap();
    let m: &BackupManifest = out[0].manifest.as_ref().unwrap();
    assert_eq!(m.events, 5);
    assert_eq!(m.cost_usd, truth.cost.normalize());
    assert_eq!(m.months.len(), 1);
    assert_eq!(m.months[0].cost_usd, truth.cost.normalize());
    assert_eq!(m.org_id, "acme");
    assert!(Path::new(&m.path).starts_with(dir.path().join("backups/acme")));
    let (sha, _) = mai_core::ledger::sha256_file(Path::new(&m.path)).unwrap();
    assert_eq!(sha, m.sha256);
    // Two more runs: `keep = 2` deletes the oldest.
    for _ in 0..2 {
        let o = maictl(&f, &["backup", "run"]).await;
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        assert!(text(&o.stdout).contains("5 events"), "{}", text(&o.stdout));
    }
    let o = maictl(&f, &["backup", "list", "--client", "acme", "--json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let l: Vec<ClientBackups> = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(l[0].backups.len(), 2, "{:?}", l[0].backups);
    assert!(!Path::new(&m.path).exists(), "the oldest was pruned");

    // The tracker's volume is lost: a new, empty tracker; restore the newest backup.
    a.shutdown().await.unwrap();
    std::fs::remove_dir_all(&a_dir).unwrap();
    let b = tracker(&sim.base_url(), &dir.path().join("b")).await;
    let f = fleet(dir.path(), &b.base_url(), true);
    let o = maictl(&f, &["backup", "restore", "--client", "acme", "--json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let r: RestoreResult = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r.events, 5);
    let mb = month(&b.base_url()).await;
    assert_eq!(mb.requests, truth.generations);
    assert_eq!(mb.raw_cost_usd, truth.cost.normalize());
    // Never over a ledger in use.
    let o = maictl(&f, &["backup", "restore", "--client", "acme"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("already holds 5 events"),
        "{}",
        text(&o.stderr)
    );
    // A damaged backup file is refused before anything is sent.
    let o = maictl(&f, &["backup", "list", "--client", "acme", "--json"]).await;
    let l: Vec<ClientBackups> = serde_json::from_slice(&o.stdout).unwrap();
    let newest = &l[0].backups[0];
    let mut bytes = std::fs::read(&newest.path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&newest.path, bytes).unwrap();
    let c = tracker(&sim.base_url(), &dir.path().join("c")).await;
    let f = fleet(dir.path(), &c.base_url(), true);
    let o = maictl(&f, &["backup", "restore", "--client", "acme"]).await;
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("its manifest says"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(month(&c.base_url()).await.requests, 0);
    b.shutdown().await.unwrap();
    c.shutdown().await.unwrap();
}
