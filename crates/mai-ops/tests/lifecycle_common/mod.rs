//! What the onboarding/offboarding tests share: the Docker gate, the images, the
//! OpenRouter simulator where the tracker containers reach it, a fleet file, and ways to
//! see what is left on the host, on the account and in the fleet file.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use mai_ops::docker::{self, ClientObjects};
use mai_ops::fleet::Host;
use mai_ops::ops::lifecycle::{Deployment, LifecycleProgress, NewClient, OnboardRequest};
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::openrouter::{OpenRouterSim, SimConfig, SimHandle};

/// The images' tag: these tests' own, so other checkouts building their images on the
/// same engine (`e2e`, `dev`) never swap them under a running test.
pub const TAG: &str = "lifecycle";
pub const MGMT: &str = "sk-or-v1-6d676d746d676d746d676d746d676d746d676d746d676d746d676d746d676d74";

/// Like fleet_e2e's gate: runs when the script that starts Docker says so, and otherwise
/// says on the terminal that it did not run.
pub fn docker_tests_enabled(test: &str) -> bool {
    if std::env::var("MAI_TEST_DOCKER").is_ok_and(|v| v == "1") {
        return true;
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs a Docker engine; set MAI_TEST_DOCKER=1 to run it \
         (./test.sh does, after starting dockerd)"
    );
    false
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The tracker and chat stand-in images from this checkout, built once per test binary.
/// With `MAI_TEST_REUSE_IMAGES=1` images already on the engine under this tag are used
/// as they are (a quicker rerun; the tag is the tests' own).
pub fn build_images() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let present = |i: &str| {
            Command::new("docker")
                .args(["image", "inspect", i])
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if std::env::var("MAI_TEST_REUSE_IMAGES").is_ok_and(|v| v == "1")
            && present(&tracker_image())
            && present(&chat_image())
        {
            eprintln!(
                "reusing {} and {} (MAI_TEST_REUSE_IMAGES=1)",
                tracker_image(),
                chat_image()
            );
            return;
        }
        let out = Command::new(repo_root().join("deploy/build-images.sh"))
            .arg(TAG)
            .output()
            .expect("running deploy/build-images.sh");
        assert!(
            out.status.success(),
            "deploy/build-images.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// `mai-tracker:<TAG>-next` (passes its gate) and `-broken` (exits at once), on top of
/// [`tracker_image`] (deploy/build-update-test-images.sh --tracker-only).
pub fn build_tracker_variants() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        build_images();
        let out = Command::new(repo_root().join("deploy/build-update-test-images.sh"))
            .args(["--tracker-only", TAG])
            .output()
            .expect("running deploy/build-update-test-images.sh");
        assert!(
            out.status.success(),
            "deploy/build-update-test-images.sh failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
}

/// Makes the local engine a one-node swarm (`docker swarm init --advertise-addr
/// 127.0.0.1`) unless it is one, and leaves it so (other tests share the engine).
/// Idempotent and safe against a concurrent init: "already part of a swarm" is success,
/// and it waits until the node is an active manager.
pub fn ensure_swarm() {
    let state = || {
        Command::new("docker")
            .args([
                "info",
                "--format",
                "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    if state() == "active true" {
        return;
    }
    let out = Command::new("docker")
        .args(["swarm", "init", "--advertise-addr", "127.0.0.1"])
        .output()
        .expect("running docker swarm init");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("already part of a swarm"),
        "docker swarm init failed: {err}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while state() != "active true" {
        assert!(
            std::time::Instant::now() < deadline,
            "the engine is not an active swarm manager: {}",
            state()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

pub fn tracker_image() -> String {
    format!("mai-tracker:{TAG}")
}

pub fn chat_image() -> String {
    format!("mai-chat-standin:{TAG}")
}

/// A free TCP port on 127.0.0.1 (the OS picks it; released at once).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A short id unique to this run, so concurrent runs never share containers.
pub fn client_id(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "t{}-{what}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub sim: SimHandle,
    pub fleet_path: PathBuf,
    pub keychain: Keychain,
    pub docker_socket: String,
}

impl Env {
    /// The simulator listens on every address, so tracker containers reach it on the
    /// host (`host.docker.internal`, Docker's host gateway); the console on loopback.
    pub async fn new(docker_socket: &str) -> Env {
        Env::with_mode(docker_socket, "plain").await
    }

    /// A fleet whose host `local` has `mode` (`plain` or `swarm`).
    pub async fn with_mode(docker_socket: &str, mode: &str) -> Env {
        let sim = OpenRouterSim::spawn_on(
            std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            SimConfig {
                management_key: Some(MGMT.into()),
                accept_any_key: false,
                ..SimConfig::fast()
            },
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let fleet_path = dir.path().join("fleet.toml");
        std::fs::write(
            &fleet_path,
            format!(
                r#"# A fleet for the onboarding tests. This comment must survive every edit.
[console]
data_dir = "data"

[openrouter]
base_url = "{}"

[[hosts]]
name = "local"
# the test's engine
docker = "unix://{docker_socket}"
timeout_ms = 5000
mode = "{mode}"
"#,
                console_url(&sim)
            ),
        )
        .unwrap();
        let keychain = Keychain::with_store(keyring_core::mock::Store::new().unwrap());
        keychain.set_management_key(MGMT).unwrap();
        Env {
            dir,
            sim,
            fleet_path,
            keychain,
            docker_socket: docker_socket.to_string(),
        }
    }

    /// The console as maictl starts it: the fleet file as it is now.
    pub fn ops(&self) -> Ops {
        let fleet = Fleet::load(&self.fleet_path).unwrap();
        Ops::new(fleet, Ok(self.keychain.clone())).unwrap()
    }

    pub fn fleet_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.fleet_path).unwrap()
    }

    pub fn host(&self) -> Host {
        Fleet::load(&self.fleet_path).unwrap().hosts[0].clone()
    }

    /// A request for `id` on the local host with the test images.
    pub fn request(&self, id: &str) -> OnboardRequest {
        OnboardRequest {
            client: NewClient {
                id: id.into(),
                legal_name: format!("Test {id} Sp. z o.o."),
                nip: Some("526-104-08-28".into()),
                address: "ul. Prosta 1".into(),
                address_line2: Some("00-001 Warszawa".into()),
                markup: Some("1.3".into()),
                monthly_limit_usd: Some("130".into()),
                invoice_email: Some("faktury@example.invalid".into()),
                ..Default::default()
            },
            deploy: Deployment {
                host: "local".into(),
                tracker_port: free_port(),
                chat_port: free_port(),
                chat_image: Some(chat_image()),
                tracker_image: Some(tracker_image()),
                signed_identity: true,
                tracker_openrouter_url: Some(format!(
                    "http://host.docker.internal:{}/api/v1",
                    self.sim.addr().port()
                )),
                ..Default::default()
            },
        }
    }

    /// Every key on the simulated account but the management key, disabled ones too.
    pub async fn keys(&self) -> Vec<serde_json::Value> {
        let r: serde_json::Value = reqwest::Client::new()
            .get(format!(
                "{}/keys?include_disabled=true",
                console_url(&self.sim)
            ))
            .bearer_auth(MGMT)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mgmt = mai_core::openrouter::key_hash(MGMT);
        r["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["hash"] != mgmt.as_str())
            .cloned()
            .collect()
    }

    /// What carries `mai.client=<id>` on the engine.
    pub async fn objects(&self, id: &str) -> ClientObjects {
        let h = self.host();
        let d = docker::connect(&h).await.unwrap();
        docker::list_client_objects(&d, &h.name, id).await.unwrap()
    }

    pub fn audit(&self) -> Vec<mai_ops::audit::AuditRecord> {
        mai_ops::audit::AuditLog::in_dir(&self.dir.path().join("data"))
            .read()
            .unwrap()
    }
}

/// The simulator as the console reaches it (loopback).
pub fn console_url(sim: &SimHandle) -> String {
    format!("http://127.0.0.1:{}/api/v1", sim.addr().port())
}

/// Collects the progress events of one action.
#[derive(Clone, Default)]
pub struct Progress(pub Arc<Mutex<Vec<LifecycleProgress>>>);

impl Progress {
    pub fn sink(&self) -> impl Fn(LifecycleProgress) + Send + Sync + 'static {
        let v = self.0.clone();
        move |p| {
            eprintln!(
                "  [{:>6} ms] {:?} {:?} {}",
                p.elapsed_ms,
                p.step,
                p.state,
                p.detail.as_deref().unwrap_or("")
            );
            v.lock().unwrap().push(p)
        }
    }

    pub fn events(&self) -> Vec<LifecycleProgress> {
        self.0.lock().unwrap().clone()
    }
}

/// Removes whatever a failed test left with `mai.client=<id>` (containers, networks,
/// volumes), so one failure does not leave garbage on the shared engine.
pub struct Cleanup(pub String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let label = format!("label=mai.client={}", self.0);
        let list = |args: &[&str]| -> Vec<String> {
            Command::new("docker")
                .args(args)
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .split_whitespace()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        for c in list(&["ps", "-aq", "--filter", &label]) {
            let _ = Command::new("docker").args(["rm", "-f", &c]).output();
        }
        for n in list(&["network", "ls", "-q", "--filter", &label]) {
            let _ = Command::new("docker").args(["network", "rm", &n]).output();
        }
        for s in list(&["service", "ls", "-q", "--filter", &label]) {
            let _ = Command::new("docker").args(["service", "rm", &s]).output();
        }
        // Service tasks stop asynchronously.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !list(&["ps", "-aq", "--filter", &label]).is_empty()
            && std::time::Instant::now() < deadline
        {
            for c in list(&["ps", "-aq", "--filter", &label]) {
                let _ = Command::new("docker").args(["rm", "-f", &c]).output();
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        for s in list(&["secret", "ls", "-q", "--filter", &label]) {
            let _ = Command::new("docker").args(["secret", "rm", &s]).output();
        }
        for n in list(&["network", "ls", "-q", "--filter", &label]) {
            let _ = Command::new("docker").args(["network", "rm", &n]).output();
        }
        for v in list(&["volume", "ls", "-q", "--filter", &label]) {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f", &v])
                .output();
        }
    }
}
