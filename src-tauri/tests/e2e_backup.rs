//! End to end, backups (issue 14): the real console under Xvfb over WebDriver on the demo
//! fleet's real tracker containers. A client's ledger is backed up from its Backups
//! panel (the file and its checksum checked on disk); more usage follows and reaches the
//! console cache; then the tracker's container is removed and its Docker volume deleted,
//! and a new tracker container on a new empty volume comes up (demo-fleet.sh, the path
//! that made the first). The panel shows the empty ledger against the cache; a restore
//! through the confirmation puts the backup plus the cache's later events back, and the
//! month on the tracker and in the window equals the OpenRouter simulator's truth x
//! markup. Backup and restore are in the audit log. Screenshots at 1280x800 and 700x800.
//! Run last by tests/run-e2e.sh (it replaces a tracker); skipped, saying so, under a
//! plain `cargo test`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::time::Duration;

use fantoccini::{Client, Locator};
use rust_decimal::Decimal;

mod e2e_support;
use e2e_support::{
    docker, env, key_hash, run, shots_wide_and_narrow, text_of, tracker_container,
    truth_by_key_hash, usd,
};

/// The repository's root (src-tauri's parent).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

async fn wait<F, Fut, T>(c: &Client, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    e2e_support::wait_on_page(c, what, Duration::from_secs(120), f).await
}

/// Clicks `sel` once it is there, scrolled to the middle of the window first (the
/// toolbar sticks to the top and would take a click at the edge).
async fn click(c: &Client, sel: &str) {
    let e = wait(c, sel, || async { c.find(Locator::Css(sel)).await.ok() }).await;
    let arg = serde_json::to_value(&e).unwrap();
    c.execute("arguments[0].scrollIntoView({block: 'center'})", vec![arg])
        .await
        .unwrap();
    e.click().await.unwrap();
}

/// Screenshots of the panel (or dialog) `sel` once the view's refresh has finished.
async fn shots(c: &Client, out: &Path, name: &str, sel: &str) {
    wait(c, "the view's refresh to finish", || async {
        text_of(c, "[data-testid='dash-refresh']")
            .await
            .filter(|t| t == "Refresh")
    })
    .await;
    shots_wide_and_narrow(c, out, name, sel).await;
}

/// The tracker's month (its own API, read with the demo's admin token).
async fn tracker_month(url: &str, token: &str, month: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!("{url}/api/v1/usage/month?month={month}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `requests` chats of client `id` through its real chat app and tracker
/// (crates/mai-ops/scripts/traffic.py, seeded), then the simulator's truth for its key:
/// requests served and their raw cost.
async fn traffic(
    id: &str,
    requests: u32,
    seed: u32,
    openrouter: &str,
    hash: &str,
) -> (u64, Decimal) {
    run(Command::new("python3")
        .arg(root().join("crates/mai-ops/scripts/traffic.py"))
        .arg(env("E2E_STATE"))
        .args(["--client", id, "--requests", &requests.to_string()])
        .args(["--rate", "0", "--seed", &seed.to_string()]));
    truth_by_key_hash(openrouter)
        .await
        .get(hash)
        .copied()
        .unwrap_or_default()
}

fn dec(v: &serde_json::Value) -> Decimal {
    Decimal::from_str(v.as_str().unwrap()).unwrap().normalize()
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_volume_lost_restore_on_a_real_fleet() {
    if !e2e_support::enabled("backup_volume_lost_restore_on_a_real_fleet") {
        return;
    }
    let state = e2e_support::state();
    let out = PathBuf::from(env("E2E_OUT"));
    std::fs::create_dir_all(&out).unwrap();
    let cl = &state["clients"][0];
    let id = cl["id"].as_str().unwrap().to_string();
    let tracker_url = cl["tracker_url"].as_str().unwrap().to_string();
    let markup = Decimal::from_str(cl["markup"].as_str().unwrap()).unwrap();
    let hash = key_hash(cl["key"].as_str().unwrap());
    let openrouter = state["openrouter"].as_str().unwrap().to_string();
    let admin = state["admin_token"].as_str().unwrap().to_string();
    let month = mai_core::time::warsaw_today().format("%Y-%m").to_string();

    // The demo fleet with its own console data (cache and audit log) and a backup folder.
    let backups = PathBuf::from(env("E2E_FLEET"))
        .parent()
        .unwrap()
        .join("backups");
    let _ = std::fs::remove_dir_all(&backups);
    let (fleet, data) = e2e_support::fleet_copy(
        "fleet-backup.toml",
        "console-backup",
        &format!(
            "[backup]\ndir = {:?}\nkeep = 5\n",
            backups.to_string_lossy()
        ),
    );

    let c = e2e_support::open_console(&fleet.to_string_lossy()).await;

    // The client's view: the dashboard pulls the tracker's events into the new cache.
    click(&c, "[data-testid='nav-client']").await;
    let select = wait(&c, "the client select", || async {
        c.find(Locator::Css("[data-testid='client-select']"))
            .await
            .ok()
    })
    .await;
    select.select_by_value(&id).await.unwrap();
    let (n0, raw0) = truth_by_key_hash(&openrouter)
        .await
        .get(&hash)
        .copied()
        .unwrap_or_default();
    assert!(n0 > 0, "no traffic of {id} in the simulator");
    let want0 = usd(raw0 * markup);
    wait(&c, "the month from the tracker's events", || async {
        click(&c, "[data-testid='dash-refresh']").await;
        text_of(&c, "[data-testid='card-month']")
            .await
            .filter(|t| t.starts_with(&want0))
    })
    .await;

    // 1. Back up now: the backup appears with its size and checksum, and is on disk.
    click(&c, "[data-testid='backup-now']").await;
    let msg = wait(&c, "the backup's message", || async {
        match text_of(&c, "[data-testid='backup-message']").await {
            Some(m) => Some(m),
            None => text_of(&c, "[data-testid='backup-error']")
                .await
                .map(|e| panic!("backup failed: {e}")),
        }
    })
    .await;
    assert!(
        msg.contains(&format!("Backed up: {n0} events")) && msg.contains("checksum verified"),
        "{msg}"
    );
    let row = wait(&c, "the backup in the list", || {
        text_of(&c, "[data-testid='backup-0']")
    })
    .await;
    let dir = backups.join(&id);
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "db"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let (sha, size) = mai_core::ledger::sha256_file(&files[0]).unwrap();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{}.json", files[0].display())).unwrap())
            .unwrap();
    assert_eq!(manifest["sha256"].as_str(), Some(sha.as_str()));
    assert_eq!(manifest["size_bytes"].as_u64(), Some(size));
    assert_eq!(manifest["events"].as_u64(), Some(n0));
    assert!(
        row.contains(&sha[..12]),
        "checksum {sha} not in the row {row:?}"
    );
    assert!(
        row.contains(&format!("{n0}")) && row.contains("KiB"),
        "{row}"
    );
    println!("e2e-backup: {id}: backed up {n0} events, {size} bytes, sha256 {sha}");
    shots(
        &c,
        &out,
        "backup-01-backed-up",
        "[data-testid='backups-panel']",
    )
    .await;

    // 2. More usage after the backup (mid-month), pulled into the console cache: the
    // backup alone is no longer the month's truth.
    let (n1, raw1) = traffic(&id, 9, 14, &openrouter, &hash).await;
    assert_eq!(n1, n0 + 9, "the simulator served the 9 requests");
    let want1 = usd(raw1 * markup);
    wait(&c, "the later usage in the cache", || async {
        click(&c, "[data-testid='dash-refresh']").await;
        text_of(&c, "[data-testid='backup-ledger-cache']")
            .await
            .filter(|t| t.starts_with(&format!("{n1} events")))
    })
    .await;

    // 3. The tracker's volume is lost: container removed, its volume deleted.
    let old = tracker_container(&id);
    let volume = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/data\"}}{{.Name}}{{end}}{{end}}",
        &old,
    ]);
    assert!(!volume.is_empty(), "the tracker of {id} has no data volume");
    docker(&["stop", "-t", "2", &old]);
    docker(&["rm", &old]);
    docker(&["volume", "rm", &volume]);
    assert!(
        !Command::new("docker")
            .args(["volume", "inspect", &volume])
            .output()
            .unwrap()
            .status
            .success(),
        "the volume {volume} is still there"
    );
    // ... and a new tracker on a new, empty volume, made as the fleet's first was.
    run(Command::new(root().join("crates/mai-ops/scripts/demo-fleet.sh")).args(["tracker", &id]));
    let new = tracker_container(&id);
    assert_ne!(new, old);
    let m = tracker_month(&tracker_url, &admin, &month).await;
    assert_eq!(m["requests"].as_u64(), Some(0), "{m}");
    println!("e2e-backup: {id}: volume {volume} deleted, new tracker {new} is empty");

    // 4. The panel shows the empty ledger against the cache.
    let behind = wait(&c, "the empty tracker in the panel", || async {
        click(&c, "[data-testid='dash-refresh']").await;
        text_of(&c, "[data-testid='backup-ledger-behind']").await
    })
    .await;
    assert!(behind.contains("ledger is empty"), "{behind}");
    let ledger = text_of(&c, "[data-testid='backup-ledger']").await.unwrap();
    assert!(
        ledger.contains("on the tracker: 0 events, $0.00")
            && ledger.contains(&format!("cache: {n1} events")),
        "{ledger}"
    );
    shots(
        &c,
        &out,
        "backup-02-tracker-lost",
        "[data-testid='backups-panel']",
    )
    .await;

    // 5. Restore, through the confirmation, with the cache's later events.
    click(&c, "[data-testid='restore-0']").await;
    let dialog = wait(&c, "the confirmation", || {
        text_of(&c, "[data-testid='restore-dialog']")
    })
    .await;
    assert!(dialog.contains(&format!("{n0} events")), "{dialog}");
    let check = c
        .find(Locator::Css("[data-testid='restore-with-cache']"))
        .await
        .unwrap();
    assert_eq!(
        check.prop("checked").await.unwrap().as_deref(),
        Some("true")
    );
    shots(
        &c,
        &out,
        "backup-03-restore-confirm",
        "[data-testid='restore-dialog']",
    )
    .await;
    click(&c, "[data-testid='restore-confirm']").await;
    let msg = wait(&c, "the restore's message", || async {
        match text_of(&c, "[data-testid='backup-message']").await {
            Some(m) if m.starts_with("Restored") => Some(m),
            _ => text_of(&c, "[data-testid='backup-error']")
                .await
                .map(|e| panic!("restore failed: {e}")),
        }
    })
    .await;
    assert_eq!(
        msg,
        format!(
            "Restored {n1} events onto the tracker of {id} ({n0} from the backup, 9 from the console's cache)"
        )
    );

    // 6. The month equals the simulator's truth x markup: on the tracker and in the window.
    let m = tracker_month(&tracker_url, &admin, &month).await;
    assert_eq!(m["requests"].as_u64(), Some(n1), "{m}");
    assert_eq!(dec(&m["raw_cost_usd"]), raw1.normalize(), "{m}");
    assert_eq!(
        dec(&m["client_cost_usd"]),
        (raw1 * markup).normalize(),
        "{m}"
    );
    wait(&c, "the restored ledger in the panel", || async {
        let l = text_of(&c, "[data-testid='backup-ledger']").await?;
        (l.contains(&format!("on the tracker: {n1} events, {}", usd(raw1)))
            && text_of(&c, "[data-testid='backup-ledger-behind']")
                .await
                .is_none())
        .then_some(())
    })
    .await;
    wait(&c, "the month card", || async {
        click(&c, "[data-testid='dash-refresh']").await;
        text_of(&c, "[data-testid='card-month']")
            .await
            .filter(|t| t.starts_with(&want1))
    })
    .await;
    println!("e2e-backup: {id}: restored {n1} events; month {want1} = truth {raw1} x {markup}");
    // The history lists both actions (the audit log).
    let hist = wait(&c, "backup and restore in the history", || async {
        text_of(&c, "[data-testid='client-history']")
            .await
            .filter(|h| h.contains("Backup restored") && h.contains("Backed up"))
    })
    .await;
    assert!(!hist.contains("never finished"), "{hist}");
    shots(
        &c,
        &out,
        "backup-04-restored",
        "[data-testid='backups-panel']",
    )
    .await;
    let audit: Vec<serde_json::Value> = std::fs::read_to_string(data.join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(&str, &str)> = audit
        .iter()
        .filter(|r| r["client"] == id.as_str())
        .map(|r| {
            (
                r["action"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("backup", "ok"),
            ("backup_restore", "started"),
            ("backup_restore", "ok")
        ]
    );

    // 7. The restored tracker goes on counting: usage after the restore reaches the
    // tracker, the console cache and the window.
    let (n2, raw2) = traffic(&id, 3, 15, &openrouter, &hash).await;
    assert_eq!(n2, n1 + 3);
    let want2 = usd(raw2 * markup);
    wait(&c, "the usage after the restore in the window", || async {
        click(&c, "[data-testid='dash-refresh']").await;
        let month = text_of(&c, "[data-testid='card-month']").await?;
        let cache = text_of(&c, "[data-testid='backup-ledger-cache']").await?;
        (month.starts_with(&want2) && cache.starts_with(&format!("{n2} events"))).then_some(())
    })
    .await;
    let m = tracker_month(&tracker_url, &admin, &month).await;
    assert_eq!(m["requests"].as_u64(), Some(n2), "{m}");
    assert_eq!(dec(&m["raw_cost_usd"]), raw2.normalize(), "{m}");
    println!(
        "e2e-backup: {id}: after the restore {n2} events; month {want2} = truth {raw2} x {markup}"
    );
    c.close().await.unwrap();
}
