//! Ops against real HTTP fakes: refresh, last-good data, cache pulls, sync, rotation.

mod common;

use std::str::FromStr;
use std::time::Duration;

use common::*;
use mai_ops::keys::SecretKind;
use mai_ops::{Fleet, Keychain, Ops};
use rust_decimal::Decimal;

const TOKEN: &str = "t0ken-for-tests";

fn setup_env() {
    // Same value in every test, so parallel tests do not race on it.
    unsafe { std::env::set_var("FAKE_TRACKER_TOKEN", TOKEN) };
    unsafe { std::env::set_var("FAKE_TRACKER_READ_TOKEN", common::read_token_of(TOKEN)) };
}

fn mock_keychain() -> Keychain {
    Keychain::with_store(keyring_core::mock::Store::new().unwrap())
}

fn ops(dir: &std::path::Path, text: &str, keychain: Keychain) -> Ops {
    let fleet = Fleet::parse(text, &dir.join("fleet.toml")).unwrap();
    let mut o = Ops::new(fleet, Ok(keychain)).unwrap();
    o.docker_enabled = false;
    o
}

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

#[tokio::test]
async fn refresh_rows_costs_and_unreachable_tracker() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    let (b, sb) = fake_tracker("beta", TOKEN, Duration::ZERO).await;
    sa.lock().unwrap().add(
        "gen-1",
        "anna",
        "openai/gpt-4o-mini",
        "0.00066",
        "provisional",
    );
    sa.lock().unwrap().add(
        "gen-2",
        "jan",
        "anthropic/claude-3.5-haiku",
        "4.25e-6",
        "provisional",
    );
    sb.lock()
        .unwrap()
        .add("gen-3", "ola", "openai/gpt-4o-mini", "9", "confirmed");
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text = fleet_text(
        dir.path(),
        &[
            ("acme".into(), a, "1.3"),
            ("beta".into(), b, "1.25"),
            ("gone".into(), dead, "1.3"),
        ],
        None,
    );
    let o = ops(dir.path(), &text, mock_keychain());
    let rows = o.refresh().await;
    assert_eq!(rows.len(), 3);
    let acme = &rows[0];
    assert!(acme.tracker_reachable, "{:?}", acme.tracker_error);
    // (0.00066 + 0.00000425) x 1.3, exact
    assert_eq!(acme.today_raw_cost_usd, Some(d("0.00066425")));
    assert_eq!(acme.today_client_cost_usd, Some(d("0.000863525")));
    assert_eq!(acme.key_state, Some(mai_wire::tracker::KeyState::Ok));
    assert_eq!(acme.last_sync_state, mai_ops::refresh::SyncView::Ok);
    let beta = &rows[1];
    assert_eq!(beta.today_client_cost_usd, Some(d("11.25")));
    // The month too is priced with the fleet file's 1.25 (never a tracker's own
    // markup): 9 x 1.25 = 11.25 of a 10 limit -> reached.
    assert_eq!(beta.month_client_cost_usd, Some(d("11.25")));
    let lim = beta.limit.as_ref().unwrap();
    assert_eq!(lim.level, mai_core::pricing::LimitLevel::Reached);
    // The refresh handed the fleet file's terms to each tracker, once.
    let pushed = sb.lock().unwrap().terms.clone().unwrap();
    assert_eq!(
        pushed.markup,
        mai_core::pricing::MarkupSchedule::flat(d("1.25"))
    );
    assert_eq!(pushed.monthly_limit_usd, Some(d("10")));
    o.refresh().await;
    assert_eq!(
        sb.lock().unwrap().terms_pushes,
        1,
        "unchanged terms are not pushed again"
    );
    assert!(
        beta.alerts
            .iter()
            .any(|a| a.message.contains("monthly limit")),
        "{:?}",
        beta.alerts
    );
    let gone = &rows[2];
    assert!(!gone.tracker_reachable);
    assert!(
        gone.tracker_error.as_ref().unwrap().contains("unreachable"),
        "{:?}",
        gone.tracker_error
    );
    assert_eq!(gone.today_client_cost_usd, None);
    // The row says "unreachable" at once; the alert waits for the debounce (three
    // refreshes in a row), and then the row carries the alert's own message.
    assert!(!gone
        .alerts
        .iter()
        .any(|a| a.message.contains("tracker unreachable")));
    o.refresh().await;
    let rows = o.refresh().await;
    assert!(
        rows[2].alerts.iter().any(|a| a
            .message
            .starts_with("tracker unreachable for 4 refreshes in a row")),
        "{:?}",
        rows[2].alerts
    );
    // Docker disabled: reported per row, never fatal.
    assert!(acme.docker_error.is_some());
}

#[tokio::test]
async fn last_good_data_survives_a_dead_tracker_and_a_restart() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    sa.lock()
        .unwrap()
        .add("gen-1", "anna", "openai/gpt-4o-mini", "1", "provisional");
    let text = fleet_text(dir.path(), &[("acme".into(), a, "1.3")], None);
    {
        let o = ops(dir.path(), &text, mock_keychain());
        let rows = o.refresh().await;
        assert!(rows[0].tracker_reachable);
    }
    // The tracker "moves away": same fleet but a dead port; a new console process.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let text2 = text.replace(&a.to_string(), &dead.to_string());
    let o = ops(dir.path(), &text2, mock_keychain());
    let rows = o.refresh().await;
    let r = &rows[0];
    assert!(!r.tracker_reachable);
    assert_eq!(
        r.today_client_cost_usd,
        Some(d("1.3")),
        "last good numbers are shown"
    );
    assert!(r.data_age_seconds.is_some() && r.data_fetched_at.is_some());
}

#[tokio::test]
async fn pull_upserts_by_generation_and_resumes_from_cursor() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    for i in 0..7000 {
        sa.lock().unwrap().add(
            &format!("gen-{i}"),
            "anna",
            "openai/gpt-4o-mini",
            "0.001",
            "provisional",
        );
    }
    let text = fleet_text(dir.path(), &[("acme".into(), a, "1.3")], None);
    let o = ops(dir.path(), &text, mock_keychain());
    let p = o.pull("acme").await.unwrap();
    assert_eq!((p.pulled, p.inserted, p.cursor), (7000, 7000, 7000));
    // A reconciliation corrects one event: it comes again with a higher seq.
    sa.lock()
        .unwrap()
        .add("gen-5", "anna", "openai/gpt-4o-mini", "0.002", "confirmed");
    let p = o.pull("acme").await.unwrap();
    assert_eq!((p.pulled, p.corrected, p.cursor), (1, 1, 7001));
    let dash = o.dashboard("acme").await.unwrap();
    assert!(dash.live);
    assert_eq!(dash.today.requests, 7000);
    assert_eq!(dash.today.raw_cost_usd, d("7.001"));
    assert_eq!(dash.today.client_cost_usd, d("9.1013"));
    assert_eq!(dash.by_user.len(), 1);
    assert_eq!(dash.by_model[0].label, "openai/gpt-4o-mini");
    assert_eq!(dash.days.len(), 30);
    // PLN: the NBP base points at a closed port -> unavailable, with a reason.
    assert!(!dash.pln.available && dash.pln.error.is_some());
}

#[tokio::test]
async fn a_replaced_tracker_ledger_is_pulled_again_from_the_start() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    for i in 0..3 {
        sa.lock()
            .unwrap()
            .add(&format!("gen-old-{i}"), "anna", "m", "0.01", "provisional");
    }
    let text = fleet_text(dir.path(), &[("acme".into(), a, "1.3")], None);
    let o = ops(dir.path(), &text, mock_keychain());
    assert_eq!(o.pull("acme").await.unwrap().cursor, 3);
    // The tracker's ledger is replaced: 8 events numbered 1..8; cursor 3 would skip 3 of them.
    {
        let mut g = sa.lock().unwrap();
        g.events.clear();
        g.next_seq = 0;
    }
    for i in 0..8 {
        sa.lock()
            .unwrap()
            .add(&format!("gen-new-{i}"), "jan", "m", "0.02", "provisional");
    }
    let p = o.pull("acme").await.unwrap();
    assert_eq!((p.pulled, p.cursor), (8, 8), "pulled again from the start");
    let dash = o.dashboard("acme").await.unwrap();
    assert_eq!(dash.today.requests, 11, "old and new events, each once");
    assert_eq!(dash.today.raw_cost_usd, d("0.19"));
    // Steady state: nothing new, no re-pull.
    assert_eq!(o.pull("acme").await.unwrap().pulled, 0);
}

#[tokio::test]
async fn sync_all_reports_progress_and_per_client_results() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    let (b, _) = fake_tracker("beta", "other-token", Duration::ZERO).await;
    sa.lock()
        .unwrap()
        .add("gen-1", "anna", "m", "0.5", "confirmed");
    let text = fleet_text(
        dir.path(),
        &[("acme".into(), a, "1.3"), ("beta".into(), b, "1.3")],
        None,
    );
    let o = ops(dir.path(), &text, mock_keychain());
    let mut seen = vec![];
    let ids = vec!["acme".to_string(), "beta".to_string()];
    let out = o.sync_many(&ids, |p| seen.push((p.done, p.total))).await;
    assert_eq!(seen.len(), 2);
    assert!(seen.contains(&(2, 2)));
    assert!(out[0].ok && out[0].pulled == Some(1), "{:?}", out[0]);
    assert!(!out[1].ok);
    assert!(
        out[1].error.as_ref().unwrap().contains("401"),
        "{:?}",
        out[1]
    );
    assert_eq!(sa.lock().unwrap().syncs, 1);
}

/// A rotation against the OpenRouter simulator: the old key is addressed by its hash
/// (SHA-256 of the key), wherever it is.
async fn rotate_on_the_simulator(workspace: Option<&str>) {
    use mai_sim::openrouter::{KeySpec, OpenRouterSim, SimConfig};
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let mgmt = "sk-or-v1-1111111111111111111111111111111111111111111111111111111111111111";
    let sim = OpenRouterSim::spawn(SimConfig {
        management_key: Some(mgmt.into()),
        accept_any_key: false,
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    let text = fleet_text(dir.path(), &[("acme".into(), a, "1.3")], None).replace(
        "[nbp]",
        &format!("[openrouter]\nbase_url = \"{}\"\n\n[nbp]", sim.base_url()),
    );
    let kc = mock_keychain();
    // The current key exists on the account, named like another key (labels and names
    // may repeat: only the hash identifies it).
    let old = format!("sk-or-v1-{:064x}", 0x5eed);
    let old_hash = sim.register_key(KeySpec {
        name: "client-acme".into(),
        workspace_id: workspace.map(str::to_owned),
        ..KeySpec::new(old.clone())
    });
    sim.register_key(KeySpec {
        name: "client-acme".into(),
        ..KeySpec::new(format!("sk-or-v1-{:064x}", 0xbeef))
    });
    kc.set(SecretKind::OpenRouter, "acme", &old).unwrap();
    kc.set_management_key(mgmt).unwrap();
    let o = ops(dir.path(), &text, kc.clone());
    let r = o.rotate("acme").await.unwrap();
    assert_eq!(r.old_hash.as_deref(), Some(old_hash.as_str()));
    assert!(r.old_disabled, "{r:?}");
    assert!(r.warning.is_none(), "{r:?}");
    assert!(r.follow_up[0].contains("Broadcast"), "{r:?}");
    let new = kc.get(SecretKind::OpenRouter, "acme").unwrap();
    assert_ne!(new, old);
    assert_eq!(r.new_hash, mai_core::openrouter::key_hash(&new));
    {
        let g = sa.lock().unwrap();
        assert_eq!(g.received_keys, vec![new.clone()]);
        assert!(g.received_names[0]
            .as_deref()
            .is_some_and(|n| n.starts_with("mai-acme-")));
    }
    let http = reqwest::Client::new();
    let get = |hash: String| {
        let http = http.clone();
        let url = format!("{}/keys/{hash}", sim.base_url());
        async move {
            http.get(url)
                .bearer_auth(mgmt)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let old_obj = get(old_hash.clone()).await;
    assert_eq!(
        old_obj["data"]["disabled"], true,
        "old key disabled: {old_obj}"
    );
    let new_obj = get(r.new_hash.clone()).await;
    assert_eq!(new_obj["data"]["disabled"], false);
    // The new key lives where the old one did.
    assert_eq!(
        new_obj["data"]["workspace_id"],
        old_obj["data"]["workspace_id"]
    );
    // limit: 10 USD client cost / 1.3 markup = 7.69 USD of OpenRouter spend
    assert_eq!(new_obj["data"]["limit"], serde_json::json!(7.69));
    // The other key with the same name is untouched.
    let other = get(mai_core::openrouter::key_hash(&format!(
        "sk-or-v1-{:064x}",
        0xbeef
    )))
    .await;
    assert_eq!(other["data"]["disabled"], false);
    let recs = o.rotations("acme").await.unwrap();
    assert_eq!(recs.len(), 1);
    let json = serde_json::to_string(&recs).unwrap();
    assert!(
        !json.contains(&new[20..]) && !json.contains(&old[20..]),
        "rotation record leaks a key"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn rotation_creates_delivers_stores_disables_and_records() {
    rotate_on_the_simulator(None).await;
}

#[tokio::test]
async fn a_key_outside_the_default_workspace_rotates_by_its_hash() {
    rotate_on_the_simulator(Some("7d3c1f0e-2b4a-4c5d-8e9f-0a1b2c3d4e5f")).await;
}

#[tokio::test]
async fn key_actions_without_keychain_fail_clearly() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, _) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    let text = fleet_text(dir.path(), &[("acme".into(), a, "1.3")], None);
    let fleet = Fleet::parse(&text, &dir.path().join("fleet.toml")).unwrap();
    let o = Ops::new(
        fleet,
        Err(mai_ops::keys::KeyError::Unavailable(
            "no D-Bus session".into(),
        )),
    )
    .unwrap();
    let e = o
        .key_set("acme", SecretKind::OpenRouter, "sk-or-v1-abc".into())
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("keychain") && msg.contains("no D-Bus session"),
        "{msg}"
    );
    // status still works with env tokens
    assert_eq!(o.refresh().await.len(), 1);
}

#[tokio::test]
async fn dashboard_by_task_group_and_chat_from_pulled_events() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    {
        let mut g = sa.lock().unwrap();
        let z = Some("Księgowość, Zarząd");
        g.add_in_chat("g1", "zofia", "0.003", Some("c1"), Some("chat"), z);
        g.add_in_chat(
            "g2",
            "zofia",
            "0.0005",
            Some("c1"),
            Some("title_generation"),
            z,
        );
        g.add_in_chat(
            "g3",
            "zofia",
            "0.0005",
            Some("c1"),
            Some("tags_generation"),
            z,
        );
        g.add_in_chat("g4", "jan", "0.001", Some("c2"), Some("chat"), None);
        // Recorded before Open WebUI sent the task header.
        g.add_in_chat("g5", "jan", "0.0002", None, None, None);
    }
    let text = fleet_text(dir.path(), &[("acme".into(), a, "1.3")], None);
    let o = ops(dir.path(), &text, mock_keychain());
    let dash = o.dashboard("acme").await.unwrap();
    assert_eq!(dash.month_client_cost_usd, d("0.00676"));
    for (what, rows) in [
        ("task", &dash.by_task),
        ("group", &dash.by_group),
        ("chat", &dash.top_chats),
    ] {
        let sum: Decimal = rows.iter().map(|b| b.client_cost_usd).sum();
        assert_eq!(sum, dash.month_client_cost_usd, "{what}");
        assert_eq!(rows.iter().map(|b| b.requests).sum::<u64>(), 5, "{what}");
    }
    let keys: Vec<_> = dash.by_task.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(
        keys,
        ["chat", "tags_generation", "title_generation", "(unknown)"]
    );
    // (0.0005 + 0.0005) / (0.003 + 0.0005 + 0.0005 + 0.001) = 0.2
    assert_eq!(dash.background_share, Some(d("0.2")));
    let groups: Vec<_> = dash.by_group.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(groups, ["Księgowość, Zarząd", "(no group)"]);
    let chats: Vec<_> = dash.top_chats.iter().map(|b| b.key.as_str()).collect();
    assert_eq!(chats, ["c1", "c2", "(no chat)"]);
    assert_eq!(dash.chat_count, 3);
}

/// Issue #12: a rotation against a real tracker while OpenRouter's `GET /key` takes
/// 14.9 s (just under the tracker's 15 s timeout for its check of the new key). Whether
/// the check makes it or not, the key the tracker ends up using is enabled, the old key
/// is disabled only if the tracker took the new one, nothing half-created is left, and
/// the client's chats work throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_key_check_never_disables_the_key_in_use() {
    use mai_sim::openrouter::{FaultEndpoint, FaultRule, KeySpec, OpenRouterSim, SimConfig};
    use std::collections::HashMap;
    const ADMIN: &str = "admin-token-rotation-0123";
    unsafe { std::env::set_var("MAI_ROTATION_ADMIN_TOKEN", ADMIN) };
    unsafe { std::env::set_var("MAI_ROTATION_READ_TOKEN", "read-token-rotation-01234") };
    let mgmt = "sk-or-v1-2222222222222222222222222222222222222222222222222222222222222222";
    let sim = OpenRouterSim::spawn(SimConfig {
        management_key: Some(mgmt.into()),
        accept_any_key: false,
        ..SimConfig::fast()
    })
    .await
    .unwrap();
    let old = format!("sk-or-v1-{:064x}", 0x01d5eed_u64);
    let old_hash = sim.register_key(KeySpec {
        name: "client-acme".into(),
        ..KeySpec::new(old.clone())
    });
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OPENROUTER_API_KEY", old.clone()),
        ("OPENROUTER_BASE_URL", sim.base_url()),
        ("MAI_ORG_ID", "acme".into()),
        ("MAI_TRACKER_LISTEN", "127.0.0.1:0".into()),
        (
            "MAI_TRACKER_DB",
            dir.path().join("t.sqlite").display().to_string(),
        ),
        (
            "MAI_TRACKER_PROXY_TOKEN",
            "proxy-token-rotation-0123".into(),
        ),
        ("MAI_TRACKER_READ_TOKEN", "read-token-rotation-01234".into()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.into()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".into()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let tracker = mai_tracker::start(cfg).await.unwrap();
    let text = fleet_text(dir.path(), &[("acme".into(), tracker.addr, "1.3")], None)
        .replace("env:FAKE_TRACKER_TOKEN", "env:MAI_ROTATION_ADMIN_TOKEN")
        .replace("env:FAKE_TRACKER_READ_TOKEN", "env:MAI_ROTATION_READ_TOKEN")
        .replace(
            "[nbp]",
            &format!("[openrouter]\nbase_url = \"{}\"\n\n[nbp]", sim.base_url()),
        );
    let kc = mock_keychain();
    kc.set(SecretKind::OpenRouter, "acme", &old).unwrap();
    kc.set_management_key(mgmt).unwrap();
    let o = ops(dir.path(), &text, kc.clone());
    sim.set_fault(FaultRule {
        endpoint: FaultEndpoint::Key,
        ..FaultRule::parse("latency=14900").unwrap()
    });
    // Chats through the tracker all along the rotation.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let chats = {
        let stop = stop.clone();
        let url = format!("{}/v1/chat/completions", tracker.base_url());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut codes = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = http
                    .post(&url)
                    .bearer_auth("proxy-token-rotation-0123")
                    .json(&serde_json::json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
                    .send()
                    .await
                    .unwrap();
                codes.push(r.status().as_u16());
                r.text().await.unwrap();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            codes
        })
    };
    let outcome = o.rotate("acme").await;
    sim.clear_faults();
    let st = tracker.state.key_status.lock().unwrap().clone();
    let http = reqwest::Client::new();
    let disabled = |hash: String| {
        let http = http.clone();
        let url = format!("{}/keys/{hash}", sim.base_url());
        async move {
            let r = http.get(url).bearer_auth(mgmt).send().await.unwrap();
            if r.status() == 404 {
                return None;
            }
            let v: serde_json::Value = r.json().await.unwrap();
            Some(v["data"]["disabled"].as_bool().unwrap())
        }
    };
    match &outcome {
        Ok(r) => {
            // The tracker took the new key within its check: old disabled, new in use.
            assert_eq!(st.hash, r.new_hash, "{r:?}");
            assert!(r.old_disabled, "{r:?}");
            assert_eq!(disabled(r.new_hash.clone()).await, Some(false));
            assert_eq!(disabled(old_hash.clone()).await, Some(true));
            assert_eq!(
                mai_core::openrouter::key_hash(&kc.get(SecretKind::OpenRouter, "acme").unwrap()),
                r.new_hash
            );
        }
        Err(e) => {
            // The check timed out: the tracker kept the old key, which stays enabled;
            // the new key is gone.
            let msg = e.to_string();
            assert!(msg.contains("stays enabled"), "{msg}");
            assert_eq!(st.hash, old_hash, "{msg}");
            assert_eq!(disabled(old_hash.clone()).await, Some(false), "{msg}");
            assert_eq!(kc.get(SecretKind::OpenRouter, "acme").unwrap(), old);
            assert_eq!(o.rotations("acme").await.unwrap().len(), 0);
        }
    }
    // Whatever happened, the key in use is enabled and a chat works.
    assert_eq!(disabled(st.hash.clone()).await, Some(false));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let codes = chats.await.unwrap();
    assert!(!codes.is_empty());
    assert!(codes.iter().all(|c| *c == 200), "{codes:?}");
    let r = http
        .post(format!("{}/v1/chat/completions", tracker.base_url()))
        .bearer_auth("proxy-token-rotation-0123")
        .json(&serde_json::json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tracker.shutdown().await.unwrap();
    sim.shutdown().await;
}

/// Routine polling (refresh, pulls) carries the read token; the admin token goes only
/// with the calls that change the tracker (sync, terms push).
#[tokio::test]
async fn polling_uses_the_read_token_and_only_admin_actions_the_admin_token() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    sa.lock()
        .unwrap()
        .add("gen-1", "anna", "openai/gpt-4o-mini", "0.5", "confirmed");
    let text = fleet_text(dir.path(), &[("acme".into(), a, "1.3")], None);
    let o = ops(dir.path(), &text, mock_keychain());
    let rows = o.refresh().await;
    assert!(rows[0].tracker_reachable, "{:?}", rows[0].tracker_error);
    assert!(rows[0]
        .alerts
        .iter()
        .all(|al| !al.message.contains("token")));
    o.pull("acme").await.unwrap();
    let out = o.sync_one("acme").await;
    assert!(out.ok, "{out:?}");
    let log = sa.lock().unwrap().auth_log.clone();
    assert!(log.iter().any(|(r, _)| r.starts_with("PUT")), "{log:?}");
    assert!(log.iter().any(|(r, _)| r.starts_with("POST")), "{log:?}");
    for (route, kind) in &log {
        let want = if route.starts_with("GET") {
            "read"
        } else {
            "admin"
        };
        assert_eq!(*kind, want, "{route} carried the {kind} token: {log:?}");
    }
}

/// Two clients' trackers that send the same generation id: the console cache keeps
/// both events and both clients' totals (it is keyed by client and generation id).
#[tokio::test]
async fn same_generation_id_from_two_trackers_keeps_both_clients_events() {
    setup_env();
    let dir = tempfile::tempdir().unwrap();
    let (a, sa) = fake_tracker("acme", TOKEN, Duration::ZERO).await;
    let (b, sb) = fake_tracker("beta", TOKEN, Duration::ZERO).await;
    sa.lock()
        .unwrap()
        .add("gen-same", "anna", "m", "0.5", "confirmed");
    sb.lock()
        .unwrap()
        .add("gen-same", "jan", "m", "2", "confirmed");
    let text = fleet_text(
        dir.path(),
        &[("acme".into(), a, "1.3"), ("beta".into(), b, "1.3")],
        None,
    );
    let o = ops(dir.path(), &text, mock_keychain());
    assert_eq!(o.pull("acme").await.unwrap().inserted, 1);
    assert_eq!(o.pull("beta").await.unwrap().inserted, 1);
    let today = o.today();
    let (ta, tb, ea, eb) = o
        .cache
        .with(move |l| {
            Ok((
                l.day("acme", today)?,
                l.day("beta", today)?,
                l.get("acme", "gen-same")?,
                l.get("beta", "gen-same")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!((ta.requests, ta.cost_usd), (1, d("0.5")));
    assert_eq!((tb.requests, tb.cost_usd), (1, d("2")));
    assert_eq!(ea.unwrap().event.user.id.as_deref(), Some("anna"));
    assert_eq!(eb.unwrap().event.user.id.as_deref(), Some("jan"));
}

/// The display rate is asked of NBP once for callers at the same moment and reused while
/// fresh: the fleet view's refresh (totals and alerts) every 30 s is not two NBP requests.
#[tokio::test]
async fn the_display_rate_is_one_nbp_request_while_fresh() {
    use mai_sim::nbp::{NbpConfig, NbpSim};
    setup_env();
    let nbp = NbpSim::spawn(NbpConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = fleet_text(dir.path(), &[], None).replace(
        "base_url = \"http://127.0.0.1:9\"",
        &format!("base_url = \"{}\"", nbp.base_url()),
    );
    let o = ops(dir.path(), &text, mock_keychain());
    let (a, b) = tokio::join!(o.pln_rate(), o.pln_rate());
    assert!(a.available && !a.stale, "{a:?}");
    assert_eq!(a, b);
    let served = nbp.requests_served();
    assert_eq!(served, 1, "one request for both: {:?}", nbp.requests());
    // NBP down now: the fresh answer is still the one shown, without a request.
    nbp.set_fault(mai_sim::nbp::Fault::status(503));
    assert_eq!(o.pln_rate().await, a);
    assert_eq!(nbp.requests_served(), served, "{:?}", nbp.requests());
}

/// The console's fleet view does not hold its rows back for NBP (issue 14, the first
/// paint): the overview says the rate is pending while NBP is slow, the request goes on
/// by itself, and its answer is the next overview's, from the one request.
#[tokio::test]
async fn the_fleet_overview_shows_rows_before_a_slow_nbp_answers() {
    use mai_ops::ops::overview::OutsideAnswers;
    use mai_sim::nbp::{Fault, NbpConfig, NbpSim};
    setup_env();
    let nbp = NbpSim::spawn(NbpConfig::default()).await.unwrap();
    nbp.set_fault(Fault::latency(Duration::from_secs(2)).times(1));
    let dir = tempfile::tempdir().unwrap();
    let text = fleet_text(dir.path(), &[], None).replace(
        "base_url = \"http://127.0.0.1:9\"",
        &format!("base_url = \"{}\"", nbp.base_url()),
    );
    let o = ops(dir.path(), &text, mock_keychain());
    let first = o.fleet_overview(OutsideAnswers::IfReady).await;
    assert!(
        first.totals.pln.pending && !first.totals.pln.available,
        "{:?}",
        first.totals.pln
    );
    assert_eq!(first.totals.today_client_cost.pln, None);
    // Waiting for the rate waits for the request already on its way, not a new one.
    let rate = o.pln_rate().await;
    assert!(rate.available && !rate.pending, "{rate:?}");
    assert_eq!(nbp.requests_served(), 1, "{:?}", nbp.requests());
    let next = o.fleet_overview(OutsideAnswers::IfReady).await;
    assert_eq!(next.totals.pln, rate);
    assert_eq!(next.totals.today_client_cost.pln, Some(Decimal::ZERO));
    // maictl's overview waits for the answers: never pending.
    let full = o.fleet_overview(OutsideAnswers::Await).await;
    assert!(!full.totals.pln.pending && !full.totals.credits.pending);
    assert_eq!(nbp.requests_served(), 1);
}
