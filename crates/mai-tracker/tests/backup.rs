//! `GET /api/v1/admin/backup` and `POST /api/v1/admin/restore` on real trackers and a
//! real simulator: a backup taken while the writer writes is a consistent, checksummed
//! ledger; it restores only onto a new tracker of the same org, and the restored tracker
//! reports exactly the simulator's truth and keeps metering.

mod common;
use common::*;
use mai_sim::openrouter::SimConfig;
use mai_wire::tracker::{
    ErrorBody, EventPage, Month, RestoreReport, BACKUP_EVENTS_HEADER, BACKUP_SHA256_HEADER,
};
use sha2::{Digest, Sha256};

async fn chats(env: &Env, n: usize) {
    for i in 0..n {
        let r = env
            .chat(body(i % 2 == 0, Some("alice@acme.pl")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
}

async fn backup(env: &Env, token: &str) -> reqwest::Response {
    env.http
        .get(format!("{}/api/v1/admin/backup", env.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn restore(base: &str, file: Vec<u8>, sha: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/admin/restore"))
        .bearer_auth(ADMIN)
        .header(BACKUP_SHA256_HEADER, sha)
        .body(file)
        .send()
        .await
        .unwrap()
}

async fn month(http: &reqwest::Client, base: &str) -> Month {
    let m = chrono::Utc::now().format("%Y-%m").to_string();
    http.get(format!("{base}/api/v1/usage/month?month={m}"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_onto_a_new_tracker_with_the_simulators_totals() {
    let env = start(SimConfig::fast()).await;
    chats(&env, 6).await;
    env.flush().await;
    // A backup while chats keep the writer busy is one consistent snapshot.
    let (r, ()) = tokio::join!(backup(&env, ADMIN), chats(&env, 4));
    assert_eq!(r.status(), 200);
    assert_eq!(
        backup(&env, READ).await.status(),
        401,
        "the read token may not take a backup"
    );
    let sha = r.headers()[BACKUP_SHA256_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let events: u64 = r.headers()[BACKUP_EVENTS_HEADER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let len = r.content_length().unwrap();
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(bytes.len() as u64, len);
    assert_eq!(hex::encode(Sha256::digest(&bytes)), sha);
    assert!((6..=10).contains(&events), "{events}");
    // Nothing is left beside the ledger.
    let left: Vec<_> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The file is a ledger with exactly the announced events.
    let f = env.dir.path().join("copy.db");
    std::fs::write(&f, &bytes).unwrap();
    let facts = mai_core::ledger::inspect_file(&f).unwrap();
    assert_eq!(facts.events, events);
    assert_eq!(facts.orgs, vec!["acme".to_string()]);

    // The full backup after the traffic, restored onto a new tracker.
    env.flush().await;
    let r = backup(&env, ADMIN).await;
    let sha = r.headers()[BACKUP_SHA256_HEADER]
        .to_str()
        .unwrap()
        .to_owned();
    let bytes = r.bytes().await.unwrap().to_vec();
    // Never onto a ledger in use.
    let r = restore(&env.base, bytes.clone(), &sha).await;
    assert_eq!(r.status(), 409);
    let e: ErrorBody = r.json().await.unwrap();
    assert!(
        e.error.message.contains("already holds 10 events"),
        "{}",
        e.error.message
    );

    let dir2 = tempfile::tempdir().unwrap();
    let t2 = start_tracker(&env.sim.base_url(), dir2.path(), &[]).await;
    let base2 = t2.base_url();
    // A damaged upload is refused and changes nothing.
    let mut bad = bytes.clone();
    bad[200] ^= 1;
    let r = restore(&base2, bad, &sha).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("damaged"));
    // Not a ledger: refused after the checksum.
    let junk = b"not a ledger at all".repeat(100);
    let r = restore(&base2, junk.clone(), &hex::encode(Sha256::digest(&junk))).await;
    assert_eq!(r.status(), 422);
    let r = restore(&base2, bytes.clone(), &sha).await;
    assert_eq!(r.status(), 200);
    let rep: RestoreReport = r.json().await.unwrap();
    assert_eq!(rep.events, 10);
    assert_eq!(rep.sha256, sha);
    let http = reqwest::Client::new();
    let m1 = month(&http, &env.base).await;
    let m2 = month(&http, &base2).await;
    let truth = env.sim.key_totals(KEY);
    assert_eq!(m2.requests, 10);
    assert_eq!(m2.raw_cost_usd, truth.cost.normalize());
    assert_eq!(m2.raw_cost_usd, m1.raw_cost_usd);
    // The restored tracker keeps metering into the restored ledger.
    let r = http
        .post(format!("{base2}/v1/chat/completions"))
        .bearer_auth(PROXY)
        .json(&body(false, Some("bob@acme.pl")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
    t2.state.writer.flush().await.unwrap();
    let page: EventPage = http
        .get(format!("{base2}/api/v1/events?after=0&limit=100"))
        .bearer_auth(READ)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.events.len(), 11);
    // A second restore is refused: the ledger is in use now.
    assert_eq!(restore(&base2, bytes.clone(), &sha).await.status(), 409);
    t2.shutdown().await.unwrap();

    // Another org's tracker refuses it.
    let dir3 = tempfile::tempdir().unwrap();
    let t3 = start_tracker(&env.sim.base_url(), dir3.path(), &[("MAI_ORG_ID", "other")]).await;
    let r = restore(&t3.base_url(), bytes, &sha).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("org `acme`"));
    t3.shutdown().await.unwrap();
}
