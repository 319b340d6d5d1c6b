//! A tracker lost without a backup: its ledger rebuilt from the console cache (pulled
//! before the loss, missing the last requests) plus OpenRouter's `/activity` (the
//! simulator's, per UTC day and model), restored onto a new tracker: the month's total
//! equals the simulator's truth exactly; the report says which days came from where and
//! which could not be recovered. And a lost tracker with a backup: the backup plus the
//! cache's events after it, restored onto a new tracker, equal the truth too.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Duration, Utc};
use mai_ops::keys::SecretKind;
use mai_ops::ops::backup::{DaySource, REBUILT_USER};
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::openrouter::{KeySpec, OpenRouterSim, SimConfig};
use mai_wire::tracker::Month;

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000d4";
const MGMT: &str = "sk-or-v1-2222222222222222222222222222222222222222222222222222222222222222";
const PROXY: &str = "proxy-token-rebuild-test";
const READ: &str = "read-token-rebuild-test";
const ADMIN: &str = "admin-token-rebuild-test";

async fn tracker(sim: &str, dir: &Path) -> mai_tracker::Tracker {
    let m: HashMap<&str, String> = HashMap::from([
        ("OPENROUTER_API_KEY", KEY.to_owned()),
        ("OPENROUTER_BASE_URL", sim.to_owned()),
        ("MAI_ORG_ID", "acme".to_owned()),
        ("MAI_TRACKER_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "MAI_TRACKER_DB",
            dir.join("tracker.sqlite").display().to_string(),
        ),
        ("MAI_TRACKER_PROXY_TOKEN", PROXY.to_owned()),
        ("MAI_TRACKER_READ_TOKEN", READ.to_owned()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| m.get(k).cloned()).unwrap();
    mai_tracker::start(cfg).await.unwrap()
}

fn ops(dir: &Path, sim: &str, tracker_url: &str, kc: &Keychain) -> Ops {
    let f = dir.join("fleet.toml");
    std::fs::write(
        &f,
        format!(
            r#"[console]
data_dir = "console"

[openrouter]
base_url = "{sim}"

[backup]
dir = "backups"

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
tracker_admin_token = "env:REBUILD_TEST_ADMIN"
tracker_read_token = "env:REBUILD_TEST_READ"
"#
        ),
    )
    .unwrap();
    let mut o = Ops::new(Fleet::load(&f).unwrap(), Ok(kc.clone())).unwrap();
    o.docker_enabled = false;
    o
}

async fn chat(base: &str, user: &str, model: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(PROXY)
        .json(&serde_json::json!({
            "model": model, "user": user, "messages": [{"role": "user", "content": "Hello"}]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_ledger_rebuilt_from_cache_and_activity_restores_to_the_truth() {
    // SAFETY: set before any thread reads them; only this test uses these names.
    unsafe {
        std::env::set_var("REBUILD_TEST_READ", READ);
        std::env::set_var("REBUILD_TEST_ADMIN", ADMIN);
    }
    let dir = tempfile::tempdir().unwrap();
    let sim = OpenRouterSim::spawn(SimConfig {
        management_key: Some(MGMT.into()),
        accept_any_key: false,
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    sim.register_key(KeySpec {
        name: "mai-acme".into(),
        ..KeySpec::new(KEY)
    });
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    kc.set(SecretKind::OpenRouter, "acme", KEY).unwrap();
    kc.set_management_key(MGMT).unwrap();

    let a_dir = dir.path().join("a");
    let a = tracker(&sim.base_url(), &a_dir).await;
    let o = ops(dir.path(), &sim.base_url(), &a.base_url(), &kc);
    for _ in 0..3 {
        chat(&a.base_url(), "alice@acme.pl", "openai/gpt-4o-mini").await;
    }
    a.state.writer.flush().await.unwrap();
    // The console pulls what the tracker has so far ...
    let t = o.tracker("acme").await.unwrap();
    assert_eq!(o.cache.pull("acme", &t).await.unwrap().pulled, 3);
    // ... then more usage arrives, and the tracker's volume is lost before the next pull.
    chat(&a.base_url(), "bob@acme.pl", "openai/gpt-4o-mini").await;
    chat(&a.base_url(), "bob@acme.pl", "google/gemini-2.5-flash").await;
    a.shutdown().await.unwrap();
    std::fs::remove_dir_all(&a_dir).unwrap();
    let truth = sim.key_totals(KEY);
    assert_eq!(truth.generations, 5);

    // A day later /activity covers today's usage (it lists completed UTC days only).
    let today = Utc::now().date_naive();
    sim.set_now(Utc::now() + Duration::days(1));
    let month: mai_core::time::YearMonth = today.format("%Y-%m").to_string().parse().unwrap();
    let r = o
        .backup_rebuild_on("acme", Some(month), None, today + Duration::days(1))
        .await
        .unwrap();
    assert_eq!(r.activity_error, None);
    let d = r.days.iter().find(|d| d.date == today).unwrap();
    assert_eq!(d.source, DaySource::Activity);
    assert_eq!(d.cached_events, 3);
    assert_eq!(d.activity_requests, 2);
    assert_eq!(
        r.manifest.cost_usd,
        truth.cost.normalize(),
        "money is exact"
    );
    // Only the current day (of the rebuild): not cached, and /activity lists completed
    // days only; every earlier day of the month is checked against /activity.
    // (On a month's last day the month ends before it.)
    assert!(
        r.unrecoverable
            .iter()
            .all(|d| *d == today + Duration::days(1)),
        "{:?}",
        r.unrecoverable
    );
    assert!(r
        .days
        .iter()
        .filter(|d| d.date < today)
        .all(|d| d.source == DaySource::Cache && d.cached_events == 0));

    // Restored onto a new tracker: the month's total is the simulator's truth.
    let b = tracker(&sim.base_url(), &dir.path().join("b")).await;
    let o = ops(dir.path(), &sim.base_url(), &b.base_url(), &kc);
    let res = o
        .backup_restore("acme", Some(Path::new(&r.manifest.path)), None, false)
        .await
        .unwrap();
    assert_eq!(res.events, r.manifest.events);
    let m: Month = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/usage/month?month={}",
            b.base_url(),
            today.format("%Y-%m")
        ))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m.raw_cost_usd, truth.cost.normalize());
    // The aggregates carry no user: they say where they came from.
    let ev: mai_wire::tracker::EventPage = reqwest::Client::new()
        .get(format!("{}/api/v1/events?after=0&limit=100", b.base_url()))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ev
        .events
        .iter()
        .any(|e| e.user.id.as_deref() == Some(REBUILT_USER)));

    // A month older than /activity's window and not cached: every day unrecoverable.
    let old = (today - Duration::days(90)).format("%Y-%m").to_string();
    let r = o
        .backup_rebuild_on(
            "acme",
            Some(old.parse().unwrap()),
            None,
            today + Duration::days(1),
        )
        .await
        .unwrap();
    assert!(!r.unrecoverable.is_empty());
    assert!(r.days.iter().all(|d| d.source == DaySource::Unrecoverable));
    assert_eq!(r.manifest.events, 0);
    b.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restored_with_the_caches_later_events_gives_the_truth() {
    // SAFETY: set before any thread reads them; the other test sets the same values.
    unsafe {
        std::env::set_var("REBUILD_TEST_READ", READ);
        std::env::set_var("REBUILD_TEST_ADMIN", ADMIN);
    }
    let dir = tempfile::tempdir().unwrap();
    let sim = OpenRouterSim::spawn(SimConfig::fast()).await.unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let a_dir = dir.path().join("a");
    let a = tracker(&sim.base_url(), &a_dir).await;
    let o = ops(dir.path(), &sim.base_url(), &a.base_url(), &kc);
    for _ in 0..3 {
        chat(&a.base_url(), "alice@acme.pl", "openai/gpt-4o-mini").await;
    }
    a.state.writer.flush().await.unwrap();
    let (m, _) = o.backup_client("acme", None, |_, _| {}).await.unwrap();
    assert_eq!(m.events, 3);
    // Usage after the backup, pulled into the cache; then the volume is lost.
    chat(&a.base_url(), "bob@acme.pl", "openai/gpt-4o-mini").await;
    chat(&a.base_url(), "bob@acme.pl", "google/gemini-2.5-flash").await;
    a.state.writer.flush().await.unwrap();
    assert_eq!(o.pull("acme").await.unwrap().pulled, 5);
    a.shutdown().await.unwrap();
    std::fs::remove_dir_all(&a_dir).unwrap();
    let truth = sim.key_totals(KEY);
    assert_eq!(truth.generations, 5);

    let b = tracker(&sim.base_url(), &dir.path().join("b")).await;
    let o = ops(dir.path(), &sim.base_url(), &b.base_url(), &kc);
    // The new tracker's empty ledger shows against the cache.
    let lc = o.ledger_check("acme").await.unwrap();
    assert_eq!((lc.tracker_events, lc.cache_events), (Some(0), 5));
    assert_eq!(lc.cache_cost_usd, truth.cost.normalize());
    let r = o
        .backup_restore("acme", Some(Path::new(&m.path)), None, true)
        .await
        .unwrap();
    assert_eq!((r.events, r.from_cache), (5, 2));
    let lc = o.ledger_check("acme").await.unwrap();
    assert_eq!(lc.tracker_events, Some(5));
    assert_eq!(lc.tracker_cost_usd, Some(truth.cost.normalize()));
    // The staged copy is gone; the backup itself is unchanged (still its manifest's).
    let left: Vec<_> = std::fs::read_dir(Path::new(&m.path).parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    mai_ops::ops::backup::verify(&m, Path::new(&m.path)).unwrap();
    // Both are in the audit log.
    let audit: Vec<(String, String)> = o
        .audit_log()
        .read()
        .unwrap()
        .into_iter()
        .map(|r| (r.action, r.outcome))
        .collect();
    let want = [
        ("backup", "ok"),
        ("backup_restore", "started"),
        ("backup_restore", "ok"),
    ]
    .map(|(a, b)| (a.to_string(), b.to_string()));
    assert_eq!(audit, want);
    b.shutdown().await.unwrap();
}
