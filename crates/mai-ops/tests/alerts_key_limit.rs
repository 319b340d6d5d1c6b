//! The OpenRouter key's cap on real parts: the OpenRouter simulator refuses chats with 403
//! "Key limit exceeded", a real tracker (in process) notes it in its status, and the
//! console's next refresh raises `key_limit:acme` (told to the alert sink once); when
//! chats go through again the tracker says so and the alert clears by itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mai_ops::alerts::AlertChange;
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::openrouter::{FaultEndpoint, FaultRule, OpenRouterSim, SimConfig};

const KEY: &str = "sk-or-v1-00000000000000000000000000000000000000000000000000000000000000c7";
const PROXY: &str = "proxy-token-key-limit-0123";
const READ: &str = "read-token-key-limit-01234";
const ADMIN: &str = "admin-token-key-limit-0123";

#[tokio::test(flavor = "multi_thread")]
async fn a_key_cap_refusal_raises_an_alert_that_clears_when_chats_work_again() {
    let dir = tempfile::tempdir().unwrap();
    let sim = OpenRouterSim::spawn(SimConfig::default()).await.unwrap();
    let env: HashMap<&str, String> = HashMap::from([
        ("OPENROUTER_API_KEY", KEY.to_owned()),
        ("OPENROUTER_BASE_URL", sim.base_url()),
        ("MAI_ORG_ID", "acme".to_owned()),
        ("MAI_TRACKER_LISTEN", "127.0.0.1:0".to_owned()),
        (
            "MAI_TRACKER_DB",
            dir.path().join("t.sqlite").display().to_string(),
        ),
        ("MAI_TRACKER_PROXY_TOKEN", PROXY.to_owned()),
        ("MAI_TRACKER_READ_TOKEN", READ.to_owned()),
        ("MAI_TRACKER_ADMIN_TOKEN", ADMIN.to_owned()),
        ("OPENROUTER_USAGE_SYNC_INTERVAL", "0".to_owned()),
    ]);
    let cfg = mai_tracker::config::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let tracker = mai_tracker::start(cfg).await.unwrap();
    // SAFETY: set before any thread of this test reads the environment.
    unsafe {
        std::env::set_var("KEY_LIMIT_ADMIN_TOKEN", ADMIN);
        std::env::set_var("KEY_LIMIT_READ_TOKEN", READ);
    }
    let text = format!(
        "[console]\ndata_dir = \"console\"\n\n[[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n\
         [[clients]]\nid = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"5261040828\"\naddress = \"ul. Testowa 1\"\n\
         host = \"h1\"\nmarkup = \"1.3\"\ntracker_url = \"{}\"\n\
         tracker_admin_token = \"env:KEY_LIMIT_ADMIN_TOKEN\"\ntracker_read_token = \"env:KEY_LIMIT_READ_TOKEN\"\n",
        tracker.base_url()
    );
    let fleet = Fleet::parse(&text, &dir.path().join("fleet.toml")).unwrap();
    let kc = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
    let mut ops = Ops::new(fleet, Ok(kc)).unwrap();
    ops.docker_enabled = false;
    let told: Arc<Mutex<Vec<String>>> = Default::default();
    let sink_told = told.clone();
    ops.set_alert_sink(Arc::new(move |changes: &[AlertChange]| {
        let mut t = sink_told.lock().unwrap();
        for c in changes {
            t.push(match c {
                AlertChange::Raised(a) => format!("raised {}", a.id),
                AlertChange::Cleared(a) => format!("cleared {}", a.id),
            });
        }
    }));

    let chat = || async {
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", tracker.base_url()))
            .bearer_auth(PROXY)
            .json(&serde_json::json!({"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(chat().await, 200);
    ops.refresh().await;
    assert!(ops.alerts().await.unwrap().active.is_empty());

    // The key's cap is spent: OpenRouter answers 403 "Key limit exceeded".
    sim.set_fault(FaultRule {
        endpoint: FaultEndpoint::Chat,
        ..FaultRule::parse("status=403").unwrap()
    });
    assert_eq!(chat().await, 403);
    let rows = ops.refresh().await;
    assert_eq!(
        rows[0].key_state,
        Some(mai_wire::tracker::KeyState::LimitReached)
    );
    let v = ops.alerts().await.unwrap();
    let ids: Vec<&str> = v.active.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["key_limit:acme"]);
    assert!(
        v.active[0].message.contains("Key limit exceeded"),
        "{}",
        v.active[0].message
    );
    // Still refused at the next refresh: the same alert, told once.
    ops.refresh().await;
    assert_eq!(*told.lock().unwrap(), ["raised key_limit:acme"]);

    // The cap was raised: a chat goes through, the tracker says so, the alert clears.
    sim.clear_faults();
    assert_eq!(chat().await, 200);
    ops.refresh().await;
    let v = ops.alerts().await.unwrap();
    assert!(v.active.is_empty(), "{:?}", v.active);
    assert_eq!(v.cleared[0].id, "key_limit:acme");
    assert_eq!(
        *told.lock().unwrap(),
        ["raised key_limit:acme", "cleared key_limit:acme"]
    );
    tracker.shutdown().await.unwrap();
    sim.shutdown().await;
}
