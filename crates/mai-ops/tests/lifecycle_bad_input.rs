//! Onboarding with bad input (issue 13): an invalid NIP, a host that does not answer, a
//! port clash, an image that is not on the host, a key creation refused by OpenRouter
//! (403 and 402), a remote host without its address or not answering. Each is a clear error, and nothing is left half-created: no container,
//! network or volume labelled with the client, no new enabled key on the account (a key
//! created before the failure is disabled), no keychain entry, the fleet file unchanged
//! to the byte. The first two need no Docker engine; the others run when
//! `MAI_TEST_DOCKER=1` (test.sh sets it).

mod lifecycle_common;

use lifecycle_common::*;
use mai_ops::ops::lifecycle::{LifecycleError, LifecycleStep as S, StepState};
use mai_ops::{OpsError, SecretKind};
use mai_sim::openrouter::{FaultEndpoint, FaultRule};

fn lifecycle(e: OpsError) -> LifecycleError {
    match e {
        OpsError::Lifecycle(l) => *l,
        other => panic!("expected a lifecycle error, got {other}"),
    }
}

/// Nothing of `id` anywhere: keychain, account (no enabled key beyond `enabled_before`),
/// fleet file bytes; and, with Docker, nothing labelled on the host.
async fn nothing_left(
    env: &Env,
    id: &str,
    fleet_before: &[u8],
    enabled_before: usize,
    docker: bool,
) {
    assert_eq!(env.fleet_bytes(), fleet_before, "the fleet file changed");
    for kind in [
        SecretKind::OpenRouter,
        SecretKind::TrackerToken,
        SecretKind::TrackerReadToken,
    ] {
        assert!(
            env.keychain.get(kind, id).is_err(),
            "{kind:?} of {id} left in the keychain"
        );
    }
    let enabled = env
        .keys()
        .await
        .iter()
        .filter(|k| k["disabled"] == false)
        .count();
    assert_eq!(
        enabled, enabled_before,
        "an enabled key was left on the account"
    );
    if docker {
        let o = env.objects(id).await;
        assert!(o.is_empty(), "left on the host: {o:?}");
    }
}

#[tokio::test]
async fn an_invalid_nip_is_a_field_error_and_nothing_is_created() {
    let env = Env::new("/var/run/docker.sock").await;
    let id = client_id("nip");
    let mut req = env.request(&id);
    req.client.nip = Some("526-104-08-29".into());
    let before = env.fleet_bytes();
    let ops = env.ops();
    // The console's form check, before submitting.
    let fields = ops.onboard_validate(&req);
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0].field, "client.nip");
    assert!(
        fields[0].message.contains("check digit"),
        "{}",
        fields[0].message
    );
    let progress = Progress::default();
    let e = lifecycle(ops.onboard(&req, &progress.sink()).await.unwrap_err());
    assert_eq!(e.field_errors().len(), 1);
    assert!(e.to_string().contains("client.nip"), "{e}");
    println!("{e}");
    let ev = progress.events();
    assert_eq!(ev.last().unwrap().step, S::Validate);
    assert_eq!(ev.last().unwrap().state, StepState::Failed);
    nothing_left(&env, &id, &before, 0, false).await;
}

#[tokio::test]
async fn a_host_that_does_not_answer_stops_before_anything_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-engine-here.sock");
    let env = Env::new(socket.to_str().unwrap()).await;
    let id = client_id("host");
    let req = env.request(&id);
    let before = env.fleet_bytes();
    let progress = Progress::default();
    let e = lifecycle(env.ops().onboard(&req, &progress.sink()).await.unwrap_err());
    let msg = e.to_string();
    println!("{msg}");
    assert!(matches!(e, LifecycleError::NotStarted { .. }), "{msg}");
    assert!(
        msg.contains("Docker host local does not answer") && msg.contains("nothing was created"),
        "{msg}"
    );
    assert_eq!(progress.events().last().unwrap().step, S::Preflight);
    nothing_left(&env, &id, &before, 0, false).await;
    assert!(env.keys().await.is_empty(), "no key may be created");
}

/// A remote host: its address for the console is required (a field error), and one that
/// does not answer stops before anything is created.
#[tokio::test]
async fn a_remote_host_needs_its_address_and_one_that_does_not_answer_leaves_nothing() {
    let env = Env::new("/var/run/docker.sock").await;
    // A TCP endpoint where nothing listens (plain TCP allowed for the test only).
    let dead = free_port();
    let mut f = String::from_utf8(env.fleet_bytes()).unwrap();
    f.push_str(&format!(
        "\n[[hosts]]\nname = \"far\"\ndocker = \"tcp://127.0.0.1:{dead}\"\ndocker_insecure_tcp = true\ntimeout_ms = 2000\n"
    ));
    std::fs::write(&env.fleet_path, &f).unwrap();
    let id = client_id("far");
    let mut req = env.request(&id);
    req.deploy.host = "far".into();
    let before = env.fleet_bytes();
    let ops = env.ops();
    let fields = ops.onboard_validate(&req);
    assert_eq!(fields.len(), 1, "{fields:?}");
    assert_eq!(fields[0].field, "deploy.publish_address");
    assert!(
        fields[0].message.contains("required for host \"far\""),
        "{}",
        fields[0].message
    );
    req.deploy.publish_address = Some("192.0.2.10".into());
    assert!(ops.onboard_validate(&req).is_empty());
    let progress = Progress::default();
    let e = lifecycle(ops.onboard(&req, &progress.sink()).await.unwrap_err());
    let msg = e.to_string();
    println!("{msg}");
    assert!(matches!(e, LifecycleError::NotStarted { .. }), "{msg}");
    assert!(
        msg.contains("Docker host far does not answer") && msg.contains("nothing was created"),
        "{msg}"
    );
    assert_eq!(progress.events().last().unwrap().step, S::Preflight);
    nothing_left(&env, &id, &before, 0, false).await;
    assert!(env.keys().await.is_empty(), "no key may be created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_not_on_the_host_is_named_and_nothing_is_created() {
    if !docker_tests_enabled("an_image_not_on_the_host_is_named_and_nothing_is_created") {
        return;
    }
    build_images();
    let env = Env::new("/var/run/docker.sock").await;
    let id = client_id("img");
    let _c = Cleanup(id.clone());
    let mut req = env.request(&id);
    req.deploy.chat_image = Some("mai-no-such-chat-app:0.0.0".into());
    let before = env.fleet_bytes();
    let e = lifecycle(
        env.ops()
            .onboard(&req, &Progress::default().sink())
            .await
            .unwrap_err(),
    );
    let msg = e.to_string();
    println!("{msg}");
    assert!(matches!(e, LifecycleError::NotStarted { .. }), "{msg}");
    assert!(
        msg.contains("mai-no-such-chat-app:0.0.0 is not on host local")
            && msg.contains("never pulls"),
        "{msg}"
    );
    nothing_left(&env, &id, &before, 0, true).await;
    assert!(env.keys().await.is_empty());
}

/// The port is held by a program Docker knows nothing of, so the clash shows only when
/// the tracker starts: after the key, the secrets, the network and the volumes exist.
/// All of it is undone and the key disabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_clash_undoes_everything_and_disables_the_new_key() {
    if !docker_tests_enabled("a_port_clash_undoes_everything_and_disables_the_new_key") {
        return;
    }
    build_images();
    let env = Env::new("/var/run/docker.sock").await;
    let id = client_id("port");
    let _c = Cleanup(id.clone());
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let mut req = env.request(&id);
    req.deploy.tracker_port = port;
    let before = env.fleet_bytes();
    let progress = Progress::default();
    let e = lifecycle(env.ops().onboard(&req, &progress.sink()).await.unwrap_err());
    let msg = e.to_string();
    println!("{msg}");
    assert!(matches!(e, LifecycleError::Failed { .. }), "{msg}");
    assert!(
        msg.contains(&format!("port 127.0.0.1:{port} is already in use"))
            && msg.contains("choose another tracker port"),
        "{msg}"
    );
    assert!(
        msg.contains("OpenRouter key mai-")
            && msg.contains("disabled")
            && msg.contains("the fleet file was not changed"),
        "{msg}"
    );
    assert!(!msg.contains("NOT undone"), "{msg}");
    let undone: Vec<S> = progress
        .events()
        .iter()
        .filter(|p| p.state == StepState::Done)
        .map(|p| p.step)
        .filter(|s| {
            matches!(
                s,
                S::UndoContainers | S::UndoNetwork | S::UndoVolumes | S::UndoKey | S::UndoSecrets
            )
        })
        .collect();
    assert_eq!(
        undone,
        [
            S::UndoContainers,
            S::UndoNetwork,
            S::UndoVolumes,
            S::UndoKey,
            S::UndoSecrets
        ]
    );
    nothing_left(&env, &id, &before, 0, true).await;
    // The key was created, then disabled: it is on the account, not usable.
    let keys = env.keys().await;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["disabled"], true);
    let audit = env.audit();
    assert_eq!(audit.len(), 1);
    assert_eq!(
        (audit[0].action.as_str(), audit[0].outcome.as_str()),
        ("onboard", "failed")
    );
    drop(held);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_by_openrouter_is_explained_and_nothing_is_created() {
    if !docker_tests_enabled("a_key_refused_by_openrouter_is_explained_and_nothing_is_created") {
        return;
    }
    build_images();
    let env = Env::new("/var/run/docker.sock").await;
    for (status, message, advice) in [
        (
            403,
            "Only management keys can perform this operation",
            "maictl keys set-management",
        ),
        (
            402,
            "Insufficient credits. Add more using https://openrouter.ai/credits",
            "add credits",
        ),
    ] {
        let id = client_id(&format!("key{status}"));
        let _c = Cleanup(id.clone());
        // The management key's next call (the key creation) is refused.
        env.sim.set_fault(FaultRule {
            endpoint: FaultEndpoint::Any,
            key: Some(MGMT.into()),
            count: Some(1),
            ..FaultRule::parse(&format!("status={status};message={message}")).unwrap()
        });
        let req = env.request(&id);
        let before = env.fleet_bytes();
        let progress = Progress::default();
        let e = lifecycle(env.ops().onboard(&req, &progress.sink()).await.unwrap_err());
        env.sim.clear_faults();
        let msg = e.to_string();
        println!("{msg}");
        assert!(
            msg.contains(&format!(
                "OpenRouter refused to create the key (HTTP {status}"
            )) && msg.contains(advice),
            "{msg}"
        );
        assert!(msg.contains("Nothing had been created"), "{msg}");
        let failed = progress
            .events()
            .into_iter()
            .find(|p| p.state == StepState::Failed)
            .unwrap();
        assert_eq!(failed.step, S::CreateKey);
        nothing_left(&env, &id, &before, 0, true).await;
        assert!(env.keys().await.is_empty());
    }
}
