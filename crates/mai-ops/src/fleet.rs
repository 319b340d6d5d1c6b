//! The fleet file (`fleet.toml`): hosts (Docker endpoints), clients, and the console's
//! billing and KSeF settings.
//!
//! Parsing is pure: it turns text into a validated [`Fleet`] or a [`FleetError`] that
//! names the line and column, so an operator can fix a typo without guessing.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::NaiveDate;
use mai_billing::config::{ClientBilling, LineMode, VatTreatment};
use mai_core::money::Currency;
use mai_core::pricing::{validate_markup, CommercialTerms, MarkupSchedule, DEFAULT_MARKUP};
pub use mai_wire::ksef::KsefEnvironment;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use toml::Spanned;

impl Client {
    /// The markup rate on a Warsaw day.
    pub fn markup_on(&self, day: NaiveDate) -> Decimal {
        self.terms.markup.rate_on(day)
    }

    pub fn monthly_limit_usd(&self) -> Option<Decimal> {
        self.terms.monthly_limit_usd
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("cannot read fleet file {path}: {source}; check the path given with --fleet")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// How the console authenticates to one tracker. The token itself never sits in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum SecretRef {
    /// OS keychain entry `tracker-token:<client id>` (set with `maictl keys set-token`).
    Keychain,
    /// Environment variable holding the token (CI, demo).
    Env(String),
    /// A file holding the token (mode 0600, e.g. a mounted secret).
    File(PathBuf),
}

impl FromStr for SecretRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "keychain" {
            Ok(SecretRef::Keychain)
        } else if let Some(v) = s.strip_prefix("env:") {
            if v.is_empty() {
                return Err("`env:` needs a variable name, e.g. \"env:ACME_TRACKER_TOKEN\"".into());
            }
            Ok(SecretRef::Env(v.to_string()))
        } else if let Some(p) = s.strip_prefix("file:") {
            Ok(SecretRef::File(PathBuf::from(p)))
        } else {
            // The value is not echoed: it may be a pasted token.
            Err("unknown token reference; use \"keychain\", \"env:VAR\" or \"file:/path\" (never the token itself)".into())
        }
    }
}

/// A Docker endpoint in DOCKER_HOST form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DockerEndpoint {
    Unix {
        path: String,
    },
    /// `ssh://user@host`; non-default ports belong in ~/.ssh/config (bollard keeps
    /// `host:port` as a host name).
    Ssh {
        url: String,
    },
    Tcp {
        url: String,
        tls: Option<TlsPaths>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsPaths {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub docker: DockerEndpoint,
    /// Per-host Docker call timeout.
    pub timeout_ms: u64,
    /// How clients run on this host: plain containers, or services of the Docker Swarm
    /// this engine manages (`mode = "swarm"`; see `crate::swarm`).
    pub mode: HostMode,
}

/// `[[hosts]] mode`: plain containers or Swarm services (the IPC type; parsed here).
pub use mai_wire::console::HostMode;

/// Reads `[[hosts]] mode`.
pub fn parse_host_mode(s: &str) -> Result<HostMode, String> {
    match s.trim() {
        "plain" => Ok(HostMode::Plain),
        "swarm" => Ok(HostMode::Swarm),
        other => Err(format!(
            "mode {other:?} is not a host mode; write mode = \"plain\" (standalone engine, the default) or mode = \"swarm\" (the engine is a Docker Swarm manager)"
        )),
    }
}

/// Checks one Swarm placement constraint (`node.hostname==x`, `node.labels.zone!=b`,
/// `node.role==manager`, …): a key, `==` or `!=`, a value, as `docker service create
/// --constraint` takes it. The message says what is wrong and the form to write.
pub fn check_placement(c: &str) -> Result<(), String> {
    let (k, v) = c
        .split_once("==")
        .or_else(|| c.split_once("!="))
        .ok_or_else(|| {
            format!(
                "placement {c:?} is not a constraint: write KEY==VALUE or KEY!=VALUE, e.g. \"node.hostname==worker-1\" or \"node.labels.zone==a\""
            )
        })?;
    let (k, v) = (k.trim(), v.trim());
    let known = [
        "node.id",
        "node.hostname",
        "node.role",
        "node.platform.os",
        "node.platform.arch",
    ];
    let key_ok = known.contains(&k)
        || k.strip_prefix("node.labels.")
            .or_else(|| k.strip_prefix("engine.labels."))
            .is_some_and(|l| !l.is_empty());
    if !key_ok {
        return Err(format!(
            "placement {c:?}: {k:?} is not a Swarm node attribute; use node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<label> or engine.labels.<label>"
        ));
    }
    if v.is_empty() || v.contains("==") || v.contains("!=") {
        return Err(format!(
            "placement {c:?} has no single value after the operator; write e.g. \"{k}==value\""
        ));
    }
    Ok(())
}

/// A tracker certificate's SHA-256 fingerprint (of its DER encoding), as the tracker
/// logs it and `/healthz` shows it: the console accepts only that certificate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CertFingerprint(pub [u8; 32]);

impl CertFingerprint {
    /// Accepts 64 hex digits, with or without `:` between bytes (the form
    /// `openssl x509 -fingerprint -sha256` prints), any case.
    pub fn parse(s: &str) -> Result<CertFingerprint, String> {
        let hex: String = s
            .trim()
            .trim_start_matches("sha256:")
            .chars()
            .filter(|c| *c != ':')
            .collect();
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "tracker_cert_sha256 {s:?} is not a SHA-256 fingerprint: write the 64 hex digits \
                 the tracker logs at start and shows at /healthz (e.g. \"AB:CD:...\")"
            ));
        }
        let mut out = [0u8; 32];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
        }
        Ok(CertFingerprint(out))
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

impl Serialize for CertFingerprint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Whether a URL's host is this machine: the only place plain HTTP may go without the
/// operator saying so (nothing crosses a network).
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// One client company. The fleet file is the one owner of its commercial facts: the
/// markup schedule and monthly limit ([`Client::terms`], pushed to its tracker) and its
/// invoice data ([`Client::invoice`], handed to mai-billing). See ARCHITECTURE.md.
#[derive(Debug, Clone, Serialize)]
pub struct Client {
    pub id: String,
    pub legal_name: String,
    pub host: String,
    pub terms: CommercialTerms,
    /// Buyer identity, invoice currency, VAT treatment, invoice lines, hosting; its
    /// `markup` equals `terms.markup`.
    pub invoice: ClientBilling,
    #[serde(serialize_with = "ser_url")]
    pub tracker_url: url::Url,
    /// The tracker's admin token (`tracker_admin_token`, formerly `tracker_token`): used
    /// only for admin actions (sync, key hand-over, terms push).
    pub tracker_admin_token: SecretRef,
    /// The tracker's read token (`tracker_read_token`): routine polling (status, usage,
    /// events). `None` in fleet files written before it existed: polling then falls back
    /// to the admin token, with a warning ([`Client::warnings`]).
    pub tracker_read_token: Option<SecretRef>,
    /// Pinned certificate of an `https://` tracker (`tracker_cert_sha256`); without it an
    /// https tracker must present a certificate of a public CA.
    pub tracker_cert_sha256: Option<CertFingerprint>,
    /// `insecure_http = true`: plain HTTP to a tracker that is not on this machine, which
    /// the operator accepted (shown as a warning on every refresh).
    pub insecure_http: bool,
    pub tracker_timeout_ms: u64,
    /// What about this entry is allowed but weak (plain HTTP, no read token): the fleet
    /// table shows them as warnings and `maictl` prints them.
    pub warnings: Vec<String>,
    /// `offboarded = "YYYY-MM-DD"`: the Warsaw day the client left. The entry stays so
    /// past months still bill and report; discovery, the fleet table and sync skip it.
    pub offboarded: Option<NaiveDate>,
    /// `placement = ["node.hostname==x", …]`: Swarm placement constraints of the client's
    /// services (only on a `mode = "swarm"` host; empty: anywhere in the swarm).
    pub placement: Vec<String>,
}

impl Client {
    /// The token of routine polling: the read token, else (old fleet files) the admin one.
    pub fn read_token(&self) -> &SecretRef {
        self.tracker_read_token
            .as_ref()
            .unwrap_or(&self.tracker_admin_token)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ConsoleSettings {
    /// Where the console cache (SQLite) lives.
    pub data_dir: PathBuf,
    /// Most trackers/hosts contacted at once during a refresh.
    pub concurrency: usize,
    pub tracker_timeout_ms: u64,
    pub docker_timeout_ms: u64,
}

/// When the console raises alerts and where it sends them (`[alerts]`; every key optional).
#[derive(Debug, Clone, Serialize)]
pub struct AlertSettings {
    /// A client's month at this share of its monthly limit (percent) raises a warning.
    pub limit_warning_percent: Decimal,
    /// ... and at this share, "limit reached".
    pub limit_reached_percent: Decimal,
    /// OpenRouter's month minus the ledger's (absolute, USD) above this raises a drift alert.
    pub drift_usd: Decimal,
    /// Slack-compatible incoming webhook (`{"text": ...}`), told when an alert is raised
    /// or cleared. Never logged (such URLs hold a token).
    #[serde(skip)]
    pub webhook_url: Option<url::Url>,
    /// How often the console refreshes the fleet for alerts when no view does (seconds).
    pub refresh_seconds: u64,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            limit_warning_percent: Decimal::from(80),
            limit_reached_percent: Decimal::from(100),
            drift_usd: Decimal::ONE,
            webhook_url: None,
            refresh_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OpenRouterSettings {
    #[serde(serialize_with = "ser_url")]
    pub base_url: url::Url,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdaterSettings {
    pub endpoint: String,
    pub pubkey: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BillingSettings {
    /// mai-billing config (seller, numbering, clients).
    pub config: PathBuf,
    /// Issued invoices and their numbers.
    pub store: PathBuf,
}

/// Backups of the clients' ledgers (`[backup]`; `mai_ops::ops::backup`).
#[derive(Debug, Clone, Serialize)]
pub struct BackupSettings {
    /// The folder; each client's backups go to `<dir>/<client>/`.
    pub dir: PathBuf,
    /// How often the console backs every active client up; `None`: only on demand.
    pub every: Option<std::time::Duration>,
    /// Backups kept per client (older ones are deleted after a new one is verified).
    pub keep: u32,
}

/// The default of `[backup] keep`.
pub const DEFAULT_BACKUP_KEEP: u32 = 14;

/// A duration as the fleet file writes it: a whole number and a unit, `s`, `m`, `h` or `d`
/// (`"30m"`, `"24h"`, `"7d"`), at least one minute.
pub fn parse_every(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration; write e.g. \"24h\", \"30m\" or \"7d\""))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(|| {
        format!("{s:?} is not a duration; write e.g. \"24h\", \"30m\" or \"7d\" (units s, m, h, d)")
    })?;
    if secs < 60 {
        return Err(format!(
            "{s:?} is shorter than a minute; back up at most once a minute"
        ));
    }
    Ok(std::time::Duration::from_secs(secs))
}

/// Where and how invoices are sent to KSeF (`[ksef]`). The seller, i.e. the KSeF context
/// and the NIP the token is for, is the billing file's seller: one owner, not repeated here.
#[derive(Debug, Clone, Serialize)]
pub struct KsefSettings {
    /// `environment = "test" | "demo" | "prd"`, or `custom` for a `base_url` that is none
    /// of the Ministry's.
    pub environment: KsefEnvironment,
    /// The API base: the environment's, or `base_url`. `KSEF_BASE_URL` overrides it when
    /// the console or maictl runs ([`KsefSettings::endpoint`]).
    #[serde(serialize_with = "ser_url")]
    pub base_url: url::Url,
    /// An extra CA certificate (PEM) to trust for KSeF's TLS: a test simulator's.
    pub ca_cert: Option<PathBuf>,
    /// Most invoices in flight at once; `None`: the KSeF client's default.
    pub concurrency: Option<usize>,
}

/// The KSeF a run actually talks to: the fleet file's, or `KSEF_BASE_URL`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KsefEndpoint {
    pub environment: KsefEnvironment,
    #[serde(serialize_with = "ser_url")]
    pub base_url: url::Url,
    pub ca_cert: Option<PathBuf>,
    pub concurrency: Option<usize>,
}

/// Most invoices in flight the fleet file may ask for: KSeF limits requests per context
/// and IP (`docs/limity-api.md`), so more would mostly buy 429s.
pub const KSEF_MAX_CONCURRENCY: usize = 32;

impl KsefSettings {
    /// The KSeF of this run: `env_override` (the value of `KSEF_BASE_URL`, when set and
    /// not empty) replaces the file's URL, and the environment follows the URL, so a token
    /// stored for one KSeF is never sent to another.
    pub fn endpoint(&self, env_override: Option<&str>) -> Result<KsefEndpoint, String> {
        let (environment, base_url) = match env_override.map(str::trim).filter(|s| !s.is_empty()) {
            Some(u) => {
                let url = parse_ksef_url(u).map_err(|m| format!("KSEF_BASE_URL: {m}"))?;
                (ksef_environment_of(url.as_str()), url)
            }
            None => (self.environment, self.base_url.clone()),
        };
        Ok(KsefEndpoint {
            environment,
            base_url,
            ca_cert: self.ca_cert.clone(),
            concurrency: self.concurrency,
        })
    }
}

/// The Ministry's KSeF a named environment is, `None` for `Custom`. mai-ksef owns the
/// Ministry's URLs; the fleet file only names the environment.
pub fn ministry_ksef(env: KsefEnvironment) -> Option<mai_ksef::Environment> {
    match env {
        KsefEnvironment::Test => Some(mai_ksef::Environment::Test),
        KsefEnvironment::Demo => Some(mai_ksef::Environment::Demo),
        KsefEnvironment::Prd => Some(mai_ksef::Environment::Prd),
        KsefEnvironment::Custom => None,
    }
}

/// The named environment a KSeF base URL is (trailing `/` ignored), else `Custom`: the
/// Ministry's URL written out as `base_url` is that environment, so its token is the one
/// stored for it.
pub fn ksef_environment_of(url: &str) -> KsefEnvironment {
    let url = url.trim_end_matches('/');
    KsefEnvironment::NAMED
        .into_iter()
        .find(|e| ministry_ksef(*e).is_some_and(|m| m.api_base_url() == url))
        .unwrap_or(KsefEnvironment::Custom)
}

/// A KSeF base URL: https, or plain http only to this machine (a simulator), since the
/// access token crosses with every request.
fn parse_ksef_url(s: &str) -> Result<url::Url, String> {
    let u = parse_url(s)?;
    if u.scheme() == "http" && !is_loopback(&u) {
        return Err(format!(
            "{s:?} is plain http:// to another machine, so the KSeF access token would cross the network in clear text; use https://"
        ));
    }
    Ok(u)
}

#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub path: PathBuf,
    pub console: ConsoleSettings,
    pub openrouter: OpenRouterSettings,
    pub updater: Option<UpdaterSettings>,
    /// NBP API base (a simulator in tests); `None` uses NBP_BASE_URL or api.nbp.pl.
    pub nbp_base_url: Option<String>,
    /// mai-billing files, when this console also does billing.
    pub billing: Option<BillingSettings>,
    /// Sending invoices to KSeF, when billing does that too (needs `billing`).
    pub ksef: Option<KsefSettings>,
    /// Alert thresholds and the outgoing webhook (`[alerts]`; defaults when absent).
    pub alerts: AlertSettings,
    /// Ledger backups (`[backup]`): where, how often, how many kept.
    pub backup: Option<BackupSettings>,
    pub hosts: Vec<Host>,
    pub clients: Vec<Client>,
}

impl Fleet {
    pub fn load(path: &Path) -> Result<Fleet, FleetError> {
        let text = std::fs::read_to_string(path).map_err(|source| FleetError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Fleet::parse(&text, path)
    }

    pub fn client(&self, id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.id == id)
    }

    /// The clients still served (not offboarded): what the fleet table, sync and
    /// discovery look at. Billing and reports take every client.
    pub fn active_clients(&self) -> impl Iterator<Item = &Client> {
        self.clients.iter().filter(|c| c.offboarded.is_none())
    }

    /// This fleet with only its [active](Fleet::active_clients) clients.
    pub fn without_offboarded(&self) -> Fleet {
        let mut f = self.clone();
        f.clients.retain(|c| c.offboarded.is_none());
        f
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Parses and validates; `path` only labels errors and resolves relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Fleet, FleetError> {
        let err_at = |span: std::ops::Range<usize>, message: String| {
            let (line, column) = line_col(text, span.start);
            FleetError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message,
            }
        };
        let raw: RawFleet = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            err_at(span, e.message().to_string())
        })?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let rc = raw.console.unwrap_or_default();
        let console = ConsoleSettings {
            data_dir: rc
                .data_dir
                .map(|p| resolve(&base, &p))
                .unwrap_or_else(default_data_dir),
            concurrency: rc.concurrency.unwrap_or(32).max(1),
            tracker_timeout_ms: rc.tracker_timeout_ms.unwrap_or(3000),
            docker_timeout_ms: rc.docker_timeout_ms.unwrap_or(3000),
        };
        let openrouter = match raw.openrouter {
            Some(o) => OpenRouterSettings {
                base_url: parse_url(o.base_url.get_ref())
                    .map_err(|m| err_at(o.base_url.span(), m))?,
            },
            None => OpenRouterSettings {
                base_url: url::Url::parse("https://openrouter.ai/api/v1").expect("static URL"),
            },
        };
        let updater = raw.updater.map(|u| UpdaterSettings {
            endpoint: u.endpoint,
            pubkey: u.pubkey,
        });

        let mut hosts = Vec::new();
        let mut names = HashSet::new();
        for h in raw.hosts {
            if !names.insert(h.name.get_ref().clone()) {
                return Err(err_at(
                    h.name.span(),
                    format!(
                        "host {:?} is defined twice; host names must be unique",
                        h.name.get_ref()
                    ),
                ));
            }
            let docker = parse_docker(h.docker.get_ref(), h.tls.clone(), &base)
                .map_err(|m| err_at(h.docker.span(), m))?;
            // The Docker API over plain TCP is unauthenticated root on that host: anyone
            // who can reach the port can start a privileged container. Like Docker itself
            // (which warns, and since v27 refuses, a -H tcp:// without --tls unless told),
            // it must be asked for by name.
            if let DockerEndpoint::Tcp { tls: None, url } = &docker {
                if !h.docker_insecure_tcp.unwrap_or(false) {
                    return Err(err_at(
                        h.docker.span(),
                        format!(
                            "host {:?}: {url} is the Docker API over plain TCP without TLS, which gives anyone who can reach that port root on the host; \
                             add tls = {{ ca = \"ca.pem\", cert = \"cert.pem\", key = \"key.pem\" }} (dockerd --tlsverify), use ssh://user@host, \
                             or, only on a network you fully trust, add docker_insecure_tcp = true to this [[hosts]] entry",
                            h.name.get_ref()
                        ),
                    ));
                }
            }
            let mode = match &h.mode {
                None => HostMode::Plain,
                Some(m) => parse_host_mode(m.get_ref())
                    .map_err(|e| err_at(m.span(), format!("host {:?}: {e}", h.name.get_ref())))?,
            };
            hosts.push(Host {
                name: h.name.into_inner(),
                docker,
                timeout_ms: h.timeout_ms.unwrap_or(console.docker_timeout_ms),
                mode,
            });
        }

        let mut clients = Vec::new();
        let mut ids = HashSet::new();
        for c in raw.clients {
            let id = c.id.get_ref();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
            {
                return Err(err_at(
                    c.id.span(),
                    format!("client id {id:?} must be non-empty ASCII letters, digits, '-' or '_' (it is used in Docker labels and keychain names)"),
                ));
            }
            if !ids.insert(id.clone()) {
                return Err(err_at(
                    c.id.span(),
                    format!("client {id:?} is defined twice; ids must be unique"),
                ));
            }
            if !names.contains(c.host.get_ref()) {
                return Err(err_at(
                    c.host.span(),
                    format!(
                        "client {id:?} names host {:?}, which no [[hosts]] entry defines; add it or fix the name",
                        c.host.get_ref()
                    ),
                ));
            }
            let placement = match &c.placement {
                None => Vec::new(),
                Some(p) => {
                    let swarm = hosts
                        .iter()
                        .any(|h| &h.name == c.host.get_ref() && h.mode == HostMode::Swarm);
                    if !swarm {
                        return Err(err_at(
                            p.span(),
                            format!(
                                "client {id:?} has a placement, but its host {:?} is not a Swarm manager; placement constraints apply only on a host with mode = \"swarm\": remove placement or set the host's mode",
                                c.host.get_ref()
                            ),
                        ));
                    }
                    for x in p.get_ref() {
                        check_placement(x)
                            .map_err(|e| err_at(p.span(), format!("client {id:?}: {e}")))?;
                    }
                    p.get_ref().iter().map(|x| x.trim().to_string()).collect()
                }
            };
            let terms = parse_terms(&c, id).map_err(|(span, m)| err_at(span, m))?;
            let offboarded = match &c.offboarded {
                Some(v) => Some(parse_day(v.get_ref()).ok_or_else(|| {
                    err_at(
                        v.span(),
                        format!("offboarded of client {id:?} is not a day; write offboarded = \"2026-11-30\""),
                    )
                })?),
                None => None,
            };
            let invoice = parse_invoice(&c, id, &terms).map_err(|(span, m)| err_at(span, m))?;
            let tracker_url =
                parse_url(c.tracker_url.get_ref()).map_err(|m| err_at(c.tracker_url.span(), m))?;
            let mut warnings = Vec::new();
            let insecure_http = c.insecure_http.as_ref().is_some_and(|v| *v.get_ref());
            let tracker_cert_sha256 = match &c.tracker_cert_sha256 {
                Some(v) => {
                    Some(CertFingerprint::parse(v.get_ref()).map_err(|m| err_at(v.span(), m))?)
                }
                None => None,
            };
            match tracker_url.scheme() {
                "http" => {
                    if let Some(v) = &c.tracker_cert_sha256 {
                        return Err(err_at(
                            v.span(),
                            format!("client {id:?}: tracker_cert_sha256 pins the certificate of an https:// tracker, but tracker_url is http://; use https:// (MAI_TRACKER_TLS=on on the tracker)"),
                        ));
                    }
                    if !is_loopback(&tracker_url) {
                        if !insecure_http {
                            return Err(err_at(
                                c.tracker_url.span(),
                                format!(
                                    "client {id:?}: tracker_url {} is plain http:// to another machine, so its tokens and usage data would cross the network in clear text; \
                                     use https:// with tracker_cert_sha256 = \"<the fingerprint the tracker logs at start and shows at /healthz>\" (MAI_TRACKER_TLS=on on the tracker), \
                                     or, only on a network you trust, add insecure_http = true to this client",
                                    tracker_url.as_str()
                                ),
                            ));
                        }
                        warnings.push(format!(
                            "tracker {} is reached over plain HTTP (insecure_http = true): tokens and usage data cross the network unencrypted; switch to https:// with tracker_cert_sha256",
                            tracker_url.as_str()
                        ));
                    }
                }
                _ => {
                    if let Some(v) = &c.insecure_http {
                        if *v.get_ref() {
                            return Err(err_at(
                                v.span(),
                                format!("client {id:?}: insecure_http applies only to http:// tracker URLs; remove it"),
                            ));
                        }
                    }
                }
            }
            let secret = |v: &Spanned<String>| -> Result<SecretRef, FleetError> {
                match SecretRef::from_str(v.get_ref()).map_err(|m| err_at(v.span(), m))? {
                    SecretRef::File(p) => Ok(SecretRef::File(resolve(&base, &p))),
                    other => Ok(other),
                }
            };
            // `tracker_token` is the name fleet files used before the read token existed;
            // it was (and is) the admin token.
            let tracker_admin_token = match (&c.tracker_admin_token, &c.tracker_token) {
                (Some(_), Some(old)) => {
                    return Err(err_at(
                        old.span(),
                        format!("client {id:?} has both tracker_token and tracker_admin_token; tracker_token is the old name of tracker_admin_token, keep only tracker_admin_token"),
                    ));
                }
                (Some(v), None) | (None, Some(v)) => secret(v)?,
                (None, None) => {
                    return Err(err_at(
                        c.id.span(),
                        format!("client {id:?} has no tracker_admin_token; add tracker_admin_token = \"keychain\" (or \"env:VAR\", \"file:/path\") and tracker_read_token likewise"),
                    ));
                }
            };
            let tracker_read_token = match &c.tracker_read_token {
                Some(v) => Some(secret(v)?),
                None => {
                    warnings.push(format!(
                        "no tracker_read_token for {id}: routine polling uses the admin token; add tracker_read_token (the tracker's MAI_TRACKER_READ_TOKEN) so the admin token is sent only for admin actions{}",
                        if c.tracker_token.is_some() { ", and rename tracker_token to tracker_admin_token" } else { "" }
                    ));
                    None
                }
            };
            clients.push(Client {
                id: c.id.into_inner(),
                legal_name: c.legal_name,
                host: c.host.into_inner(),
                terms,
                invoice,
                tracker_url,
                tracker_admin_token,
                tracker_read_token,
                tracker_cert_sha256,
                insecure_http,
                tracker_timeout_ms: c.tracker_timeout_ms.unwrap_or(console.tracker_timeout_ms),
                warnings,
                offboarded,
                placement,
            });
        }
        let billing = raw.billing.map(|b| BillingSettings {
            store: b
                .store
                .map(|p| resolve(&base, &p))
                .unwrap_or_else(|| console.data_dir.join("billing-store.sqlite")),
            config: resolve(&base, &b.config),
        });
        let ksef = match raw.ksef {
            Some(k) => {
                if billing.is_none() {
                    return Err(err_at(
                        k.span(),
                        "[ksef] sends the invoices billing issues, and the KSeF token is for the billing file's seller NIP: add a [billing] section with config = \"billing.toml\"".into(),
                    ));
                }
                let span = k.span();
                Some(parse_ksef(k.into_inner(), span, &base).map_err(|(span, m)| err_at(span, m))?)
            }
            None => None,
        };
        let alerts = match raw.alerts {
            Some(a) => parse_alerts(a).map_err(|(span, m)| err_at(span, m))?,
            None => AlertSettings::default(),
        };
        let backup = match raw.backup {
            Some(b) => {
                let every = match &b.every {
                    Some(e) => Some(
                        parse_every(e.get_ref())
                            .map_err(|m| err_at(e.span(), format!("[backup] every: {m}")))?,
                    ),
                    None => None,
                };
                let keep = match &b.keep {
                    Some(k) if !(1..=10_000).contains(k.get_ref()) => {
                        return Err(err_at(
                            k.span(),
                            format!("[backup] keep = {} is out of range; keep 1 to 10000 backups per client", k.get_ref()),
                        ))
                    }
                    Some(k) => *k.get_ref() as u32,
                    None => DEFAULT_BACKUP_KEEP,
                };
                Some(BackupSettings {
                    dir: resolve(&base, &b.dir),
                    every,
                    keep,
                })
            }
            None => None,
        };
        Ok(Fleet {
            billing,
            ksef,
            alerts,
            backup,
            path: path.to_path_buf(),
            console,
            openrouter,
            updater,
            nbp_base_url: raw.nbp.map(|n| n.base_url),
            hosts,
            clients,
        })
    }
}

fn ser_url<S: serde::Serializer>(u: &url::Url, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(u.as_str())
}

fn resolve(base: &Path, p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    if let Some(rest) = s.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(x).join("mai-console");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/mai-console"),
        None => PathBuf::from(".mai-console"),
    }
}

fn parse_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s)
        .map_err(|e| format!("{s:?} is not a URL ({e}); write e.g. \"http://10.0.0.5:8080\""))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("{s:?} must be an http:// or https:// URL"));
    }
    Ok(u)
}

fn parse_docker(s: &str, tls: Option<TlsPaths>, base: &Path) -> Result<DockerEndpoint, String> {
    if let Some(path) = s.strip_prefix("unix://") {
        if tls.is_some() {
            return Err("tls paths only apply to tcp:// endpoints".into());
        }
        return Ok(DockerEndpoint::Unix {
            path: path.to_string(),
        });
    }
    if let Some(rest) = s.strip_prefix("ssh://") {
        let hostpart = rest.rsplit('@').next().unwrap_or(rest);
        if hostpart.contains(':') {
            return Err(format!(
                "{s:?}: a port in an ssh:// URL is not supported; put `Port` in a ~/.ssh/config Host entry and use ssh://user@alias"
            ));
        }
        if hostpart.is_empty() {
            return Err(format!("{s:?} has no host; write ssh://user@host"));
        }
        return Ok(DockerEndpoint::Ssh { url: s.to_string() });
    }
    if s.starts_with("tcp://") {
        let tls = tls.map(|t| TlsPaths {
            ca: resolve(base, &t.ca),
            cert: resolve(base, &t.cert),
            key: resolve(base, &t.key),
        });
        return Ok(DockerEndpoint::Tcp {
            url: s.to_string(),
            tls,
        });
    }
    Err(format!(
        "unsupported Docker endpoint {s:?}; use unix:///var/run/docker.sock, ssh://user@host or tcp://host:2376 (with tls = {{ ca, cert, key }})"
    ))
}

/// The `[ksef]` section: a named environment or a base URL, not both.
fn parse_ksef(k: RawKsef, section: std::ops::Range<usize>, base: &Path) -> Spanned2<KsefSettings> {
    let (environment, base_url) = match (&k.environment, &k.base_url) {
        (Some(_), Some(u)) => {
            return Err((
                u.span(),
                "[ksef] has both environment and base_url; keep environment for the Ministry's KSeF (test, demo, prd) or base_url for another one (a simulator)".into(),
            ));
        }
        (Some(e), None) => {
            let env: KsefEnvironment = e
                .get_ref()
                .trim()
                .parse()
                .map_err(|v: mai_wire::UnknownVariant| (e.span(), format!("[ksef] {v}")))?;
            let ministry = ministry_ksef(env).expect("a parsed environment is a named one");
            let url = url::Url::parse(ministry.api_base_url()).expect("mai-ksef's URL parses");
            (env, url)
        }
        (None, Some(u)) => {
            let url = parse_ksef_url(u.get_ref())
                .map_err(|m| (u.span(), format!("[ksef] base_url: {m}")))?;
            (ksef_environment_of(url.as_str()), url)
        }
        (None, None) => {
            return Err((
                section,
                "[ksef] names no KSeF: add environment = \"test\" (or \"demo\", \"prd\"), or base_url = \"https://...\" for a simulator".into(),
            ));
        }
    };
    let ca_cert = match &k.ca_cert {
        Some(p) if environment == KsefEnvironment::Prd => {
            return Err((
                p.span(),
                "[ksef] ca_cert is for a test simulator's CA; production KSeF presents a public CA's certificate, and an extra CA there would let its holder read the session: remove ca_cert".into(),
            ));
        }
        Some(p) => Some(resolve(base, Path::new(p.get_ref()))),
        None => None,
    };
    let concurrency = match &k.concurrency {
        Some(c) => {
            let n = *c.get_ref();
            if n < 1 || n > KSEF_MAX_CONCURRENCY as i64 {
                return Err((
                    c.span(),
                    format!("[ksef] concurrency {n} is out of range; use 1 to {KSEF_MAX_CONCURRENCY} (or omit it for the default)"),
                ));
            }
            Some(n as usize)
        }
        None => None,
    };
    Ok(KsefSettings {
        environment,
        base_url,
        ca_cert,
        concurrency,
    })
}

/// TOML floats go through f64, so money must be a string (or an integer).
fn decimal_value(v: &toml::Value) -> Result<Decimal, String> {
    match v {
        toml::Value::String(s) => Decimal::from_str(s.trim())
            .map_err(|_| format!("{s:?} is not a decimal number; write e.g. \"1.3\"")),
        toml::Value::Integer(i) => Ok(Decimal::from(*i)),
        toml::Value::Float(f) => Err(format!(
            "write decimals as strings to keep them exact, e.g. \"{f}\" instead of {f}"
        )),
        other => Err(format!(
            "expected a decimal string such as \"1.3\", found {}",
            other.type_str()
        )),
    }
}

type Spanned2<T> = Result<T, (std::ops::Range<usize>, String)>;

/// The `[alerts]` section: percentages and the drift threshold as exact decimals.
fn parse_alerts(a: RawAlerts) -> Spanned2<AlertSettings> {
    let d = AlertSettings::default();
    let dec =
        |v: &Option<Spanned<toml::Value>>, what: &str, default: Decimal| -> Spanned2<Decimal> {
            match v {
                None => Ok(default),
                Some(v) => {
                    let x = decimal_value(v.get_ref())
                        .map_err(|e| (v.span(), format!("[alerts] {what}: {e}")))?;
                    if x <= Decimal::ZERO {
                        return Err((
                            v.span(),
                            format!("[alerts] {what} must be positive, got {x}"),
                        ));
                    }
                    Ok(x)
                }
            }
        };
    let warn = dec(
        &a.limit_warning_percent,
        "limit_warning_percent",
        d.limit_warning_percent,
    )?;
    let reached = dec(
        &a.limit_reached_percent,
        "limit_reached_percent",
        d.limit_reached_percent,
    )?;
    if warn >= reached {
        let span = a
            .limit_warning_percent
            .as_ref()
            .or(a.limit_reached_percent.as_ref())
            .map(|v| v.span())
            .unwrap_or(0..0);
        return Err((span, format!("[alerts] limit_warning_percent ({warn}) must be below limit_reached_percent ({reached}); e.g. 80 and 100")));
    }
    let drift_usd = dec(&a.drift_usd, "drift_usd", d.drift_usd)?;
    let webhook_url = match &a.webhook_url {
        Some(u) => Some(parse_url(u.get_ref()).map_err(|_| {
            // The URL may hold a token: the message names the key, not the value.
            (
                u.span(),
                "[alerts] webhook_url is not an http:// or https:// URL; write the incoming webhook's URL, e.g. \"https://hooks.slack.com/services/...\"".to_string(),
            )
        })?),
        None => None,
    };
    let refresh_seconds = match a.refresh_seconds {
        Some(v) if !(1..=3600).contains(v.get_ref()) => {
            return Err((
                v.span(),
                format!(
                    "[alerts] refresh_seconds {} is out of range; use 1 to 3600",
                    v.get_ref()
                ),
            ))
        }
        Some(v) => *v.get_ref() as u64,
        None => d.refresh_seconds,
    };
    Ok(AlertSettings {
        limit_warning_percent: warn,
        limit_reached_percent: reached,
        drift_usd,
        webhook_url,
        refresh_seconds,
    })
}

/// The markup schedule and monthly limit of one `[[clients]]` entry.
fn parse_terms(c: &RawClient, id: &str) -> Spanned2<CommercialTerms> {
    let rate = |v: &Spanned<toml::Value>, what: &str| -> Spanned2<Decimal> {
        let r = decimal_value(v.get_ref()).map_err(|e| (v.span(), format!("{what}: {e}")))?;
        if r < Decimal::ONE {
            return Err((v.span(), format!("{what} {r} of client {id:?} is below 1, which would sell under cost; use e.g. \"1.3\"")));
        }
        validate_markup(r).map_err(|e| (v.span(), format!("{what}: {e}")))
    };
    let mut markup = MarkupSchedule::flat(match &c.markup {
        Some(m) => rate(m, "markup")?,
        None => DEFAULT_MARKUP,
    });
    for ch in c.markup_changes.iter().flatten() {
        let from = match ch.from.get_ref() {
            toml::Value::Datetime(d) => d.to_string(),
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let from = NaiveDate::parse_from_str(&from, "%Y-%m-%d").map_err(|_| {
            (
                ch.from.span(),
                format!(
                    "markup_changes: from = {from} of client {id:?} is not a day; use 2026-11-16"
                ),
            )
        })?;
        if markup.entries.iter().any(|e| e.effective_from == from) {
            return Err((
                ch.from.span(),
                format!("markup_changes: client {id:?} has two rates from {from}; keep one"),
            ));
        }
        markup.set(from, rate(&ch.rate, "markup_changes: rate")?);
    }
    let monthly_limit_usd = match &c.monthly_limit_usd {
        Some(m) => {
            let v = decimal_value(m.get_ref())
                .map_err(|e| (m.span(), format!("monthly_limit_usd: {e}")))?;
            if v <= Decimal::ZERO {
                return Err((
                    m.span(),
                    "monthly_limit_usd must be positive; omit it for no limit".into(),
                ));
            }
            Some(v)
        }
        None => None,
    };
    Ok(CommercialTerms {
        markup,
        monthly_limit_usd,
    })
}

/// The invoice data of one `[[clients]]` entry, checked field by field.
fn parse_invoice(c: &RawClient, id: &str, terms: &CommercialTerms) -> Spanned2<ClientBilling> {
    let country = match &c.country {
        Some(v) => {
            let t = v.get_ref().trim().to_ascii_uppercase();
            if t.len() != 2 || !t.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err((v.span(), format!("country {:?} of client {id:?} is not a 2-letter code such as \"PL\" or \"DE\"", v.get_ref())));
            }
            t
        }
        None => "PL".to_string(),
    };
    let nip = match &c.nip {
        Some(n) => Some(mai_billing::nip::normalise_nip(n.get_ref()).map_err(|e| {
            (
                n.span(),
                format!(
                    "NIP {:?} of client {id:?} is not a valid Polish NIP ({e})",
                    n.get_ref()
                ),
            )
        })?),
        None if country == "PL" => {
            return Err((c.id.span(), format!("client {id:?} has no `nip`; a Polish client needs its NIP (10 digits with a check digit), a foreign one `country` and `vat_id`")));
        }
        None => None,
    };
    let currency = match &c.invoice_currency {
        Some(v) => match v.get_ref().trim().to_ascii_uppercase().parse::<Currency>() {
            Ok(Currency::Eur) | Err(_) => {
                return Err((v.span(), format!("invoice_currency {:?} of client {id:?} is not supported; invoices are issued in \"PLN\" or \"USD\"", v.get_ref())));
            }
            Ok(cur) => cur,
        },
        None => Currency::Pln,
    };
    let vat = match &c.vat {
        Some(v) => VatTreatment::try_from(v.get_ref().clone())
            .map_err(|e| (v.span(), format!("vat of client {id:?}: {e}")))?,
        None => VatTreatment::default(),
    };
    let lines = match &c.invoice_lines {
        Some(v) => match v.get_ref().as_str() {
            "by_model" => LineMode::ByModel,
            "summary" => LineMode::Summary,
            other => {
                return Err((v.span(), format!("invoice_lines {other:?} of client {id:?} is not known; use \"by_model\" or \"summary\"")));
            }
        },
        None => LineMode::default(),
    };
    let hosting_eur = match &c.hosting_eur {
        Some(v) => {
            Some(decimal_value(v.get_ref()).map_err(|e| (v.span(), format!("hosting_eur: {e}")))?)
        }
        None => None,
    };
    let non_empty = |s: &Option<String>| s.clone().filter(|s| !s.trim().is_empty());
    Ok(ClientBilling {
        org_id: id.to_string(),
        name: Some(c.legal_name.clone()),
        nip,
        vat_id: non_empty(&c.vat_id),
        address_line1: Some(c.address.clone()),
        address_line2: non_empty(&c.address_line2),
        country,
        currency,
        vat,
        lines,
        hosting_eur,
        email: non_empty(&c.invoice_email),
        markup: terms.markup.clone(),
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // An offset inside a multi-byte character (a span past escapes before a Polish
    // letter, found by fuzz/fuzz_targets/fleet_file.rs) points at that character.
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl fmt::Display for DockerEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DockerEndpoint::Unix { path } => write!(f, "unix://{path}"),
            DockerEndpoint::Ssh { url } => f.write_str(url),
            DockerEndpoint::Tcp { url, tls } => {
                write!(f, "{url}{}", if tls.is_some() { " (TLS)" } else { "" })
            }
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConsole {
    data_dir: Option<PathBuf>,
    concurrency: Option<usize>,
    tracker_timeout_ms: Option<u64>,
    docker_timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOpenRouter {
    base_url: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBilling {
    config: PathBuf,
    store: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackup {
    dir: PathBuf,
    every: Option<Spanned<String>>,
    keep: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKsef {
    environment: Option<Spanned<String>>,
    base_url: Option<Spanned<String>>,
    ca_cert: Option<Spanned<String>>,
    concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    limit_warning_percent: Option<Spanned<toml::Value>>,
    limit_reached_percent: Option<Spanned<toml::Value>>,
    drift_usd: Option<Spanned<toml::Value>>,
    webhook_url: Option<Spanned<String>>,
    refresh_seconds: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNbp {
    base_url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpdater {
    endpoint: String,
    pubkey: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    name: Spanned<String>,
    docker: Spanned<String>,
    tls: Option<TlsPaths>,
    timeout_ms: Option<u64>,
    /// `tcp://` without `tls`, accepted knowingly (see the check in `Fleet::parse`).
    docker_insecure_tcp: Option<bool>,
    /// `plain` (default) or `swarm`.
    mode: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    id: Spanned<String>,
    legal_name: String,
    nip: Option<Spanned<String>>,
    address: String,
    address_line2: Option<String>,
    country: Option<Spanned<String>>,
    vat_id: Option<String>,
    vat: Option<Spanned<String>>,
    invoice_lines: Option<Spanned<String>>,
    hosting_eur: Option<Spanned<toml::Value>>,
    invoice_email: Option<String>,
    host: Spanned<String>,
    markup: Option<Spanned<toml::Value>>,
    markup_changes: Option<Vec<RawMarkupChange>>,
    monthly_limit_usd: Option<Spanned<toml::Value>>,
    invoice_currency: Option<Spanned<String>>,
    tracker_url: Spanned<String>,
    /// Swarm placement constraints (only on a `mode = "swarm"` host).
    placement: Option<Spanned<Vec<String>>>,
    /// The old name of `tracker_admin_token` (still read).
    tracker_token: Option<Spanned<String>>,
    tracker_admin_token: Option<Spanned<String>>,
    tracker_read_token: Option<Spanned<String>>,
    tracker_cert_sha256: Option<Spanned<String>>,
    insecure_http: Option<Spanned<bool>>,
    tracker_timeout_ms: Option<u64>,
    /// A TOML date or a string holding one (maictl clients remove writes a string).
    offboarded: Option<Spanned<toml::Value>>,
}

/// A day written as a TOML date (`2026-11-16`) or a string holding one.
fn parse_day(v: &toml::Value) -> Option<NaiveDate> {
    let text = match v {
        toml::Value::Datetime(d) => d.to_string(),
        toml::Value::String(s) => s.trim().to_string(),
        _ => return None,
    };
    NaiveDate::parse_from_str(&text, "%Y-%m-%d").ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMarkupChange {
    /// A TOML date (`2026-11-16`) or a string holding one.
    from: Spanned<toml::Value>,
    rate: Spanned<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    console: Option<RawConsole>,
    openrouter: Option<RawOpenRouter>,
    updater: Option<RawUpdater>,
    nbp: Option<RawNbp>,
    billing: Option<RawBilling>,
    ksef: Option<Spanned<RawKsef>>,
    alerts: Option<RawAlerts>,
    backup: Option<RawBackup>,
    #[serde(default)]
    hosts: Vec<RawHost>,
    #[serde(default)]
    clients: Vec<RawClient>,
}

#[cfg(test)]
mod tests {

    /// Found by fuzz/fuzz_targets/fleet_file.rs: an error position inside "ż" (after a
    /// run of escaped backslashes) panicked while the line and column were computed.
    #[test]
    fn an_error_position_inside_a_multibyte_letter_does_not_panic() {
        let text = include_str!("../tests/data/fleet_fuzz_crash_1.toml");
        match Fleet::parse(text, Path::new("/etc/mai/fleet.toml")) {
            Err(FleetError::Invalid { line, column, .. }) => {
                assert!(line >= 1 && line <= text.lines().count() + 1, "line {line}");
                assert!(column >= 1);
            }
            other => panic!("expected a fleet file error, got {other:?}"),
        }
    }

    use super::*;

    const GOOD: &str = r#"
[console]
data_dir = "cache"
concurrency = 8

[[hosts]]
name = "hel1"
docker = "unix:///var/run/docker.sock"

[[hosts]]
name = "fsn1"
docker = "ssh://deploy@fsn1"

[[hosts]]
name = "nbg1"
docker = "tcp://nbg1:2376"
tls = { ca = "certs/ca.pem", cert = "certs/cert.pem", key = "/abs/key.pem" }

[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta 1, 00-001 Warszawa"
host = "hel1"
markup = "1.25"
monthly_limit_usd = "500"
tracker_url = "http://127.0.0.1:9001"
tracker_token = "env:ACME_TOKEN"
"#;

    #[test]
    fn parses_every_kind_of_host_and_a_client() {
        let f = Fleet::parse(GOOD, Path::new("/etc/mai/fleet.toml")).unwrap();
        assert_eq!(f.hosts.len(), 3);
        assert_eq!(f.console.data_dir, PathBuf::from("/etc/mai/cache"));
        assert_eq!(f.console.concurrency, 8);
        match &f.hosts[2].docker {
            DockerEndpoint::Tcp { tls: Some(t), .. } => {
                assert_eq!(t.ca, PathBuf::from("/etc/mai/certs/ca.pem"));
                assert_eq!(t.key, PathBuf::from("/abs/key.pem"));
            }
            other => panic!("{other:?}"),
        }
        let c = f.client("acme").unwrap();
        assert_eq!(c.invoice.nip.as_deref(), Some("5261040828"));
        assert_eq!(
            c.terms.markup,
            MarkupSchedule::flat(Decimal::from_str("1.25").unwrap())
        );
        assert_eq!(c.invoice.markup, c.terms.markup);
        assert_eq!(c.monthly_limit_usd(), Some(Decimal::from(500)));
        assert_eq!(c.invoice.currency, Currency::Pln);
        assert_eq!(c.invoice.vat, VatTreatment::Rate(23));
        assert_eq!(c.invoice.name.as_deref(), Some("ACME Sp. z o.o."));
        assert!(c.invoice.missing_invoice_data().is_empty());
        assert_eq!(c.tracker_admin_token, SecretRef::Env("ACME_TOKEN".into()));
    }

    #[test]
    fn markup_changes_make_a_dated_schedule() {
        let text = GOOD.replace(
            "markup = \"1.25\"\n",
            "markup = \"1.25\"\nmarkup_changes = [{ from = 2026-11-16, rate = \"1.5\" }, { from = \"2026-12-01\", rate = \"1.4\" }]\n",
        );
        let f = Fleet::parse(&text, Path::new("f.toml")).unwrap();
        let c = f.client("acme").unwrap();
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(
            c.markup_on(day("2026-11-15")),
            Decimal::from_str("1.25").unwrap()
        );
        assert_eq!(
            c.markup_on(day("2026-11-16")),
            Decimal::from_str("1.5").unwrap()
        );
        assert_eq!(
            c.markup_on(day("2026-12-24")),
            Decimal::from_str("1.4").unwrap()
        );
        let (line, _, msg) = err(&text.replace("2026-11-16", "2026-11-31"));
        assert_eq!(line, 26);
        assert!(
            msg.contains("2026-11-31") && msg.contains("not a day"),
            "{msg}"
        );
        let (_, _, msg) = err(&text.replace("rate = \"1.5\"", "rate = \"0.9\""));
        assert!(msg.contains("below 1"), "{msg}");
    }

    #[test]
    fn invoice_data_is_checked_field_by_field() {
        let (_, _, msg) =
            err(&GOOD.replace("tracker_url", "invoice_currency = \"EUR\"\ntracker_url"));
        assert!(msg.contains("EUR") && msg.contains("PLN"), "{msg}");
        let (_, _, msg) = err(&GOOD.replace("tracker_url", "vat = \"17\"\ntracker_url"));
        assert!(msg.contains("unsupported VAT"), "{msg}");
        let (_, _, msg) = err(&GOOD.replace("nip = \"526-104-08-28\"\n", ""));
        assert!(msg.contains("no `nip`"), "{msg}");
        let foreign = GOOD.replace(
            "nip = \"526-104-08-28\"\n",
            "country = \"de\"\nvat_id = \"DE123456789\"\nvat = \"np\"\ninvoice_currency = \"USD\"\ninvoice_lines = \"summary\"\nhosting_eur = \"25\"\n",
        );
        let f = Fleet::parse(&foreign, Path::new("f.toml")).unwrap();
        let inv = &f.clients[0].invoice;
        assert_eq!(inv.country, "DE");
        assert_eq!(inv.vat, VatTreatment::ReverseCharge);
        assert_eq!(inv.currency, Currency::Usd);
        assert_eq!(inv.lines, LineMode::Summary);
        assert_eq!(inv.hosting_eur, Some(Decimal::from(25)));
        assert!(
            inv.missing_invoice_data().is_empty(),
            "{:?}",
            inv.missing_invoice_data()
        );
    }

    fn err(text: &str) -> (usize, usize, String) {
        match Fleet::parse(text, Path::new("f.toml")).unwrap_err() {
            FleetError::Invalid {
                line,
                column,
                message,
                ..
            } => (line, column, message),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn alerts_section_defaults_values_and_errors() {
        let f = Fleet::parse(GOOD, Path::new("f.toml")).unwrap();
        assert_eq!(f.alerts.limit_warning_percent, Decimal::from(80));
        assert_eq!(f.alerts.limit_reached_percent, Decimal::from(100));
        let f = Fleet::parse(
            &format!("[alerts]\nlimit_warning_percent = \"75.5\"\ndrift_usd = \"0.25\"\nwebhook_url = \"https://hooks.example/T/B/x\"\nrefresh_seconds = 10\n{GOOD}"),
            Path::new("f.toml"),
        )
        .unwrap();
        assert_eq!(
            f.alerts.limit_warning_percent,
            "75.5".parse::<Decimal>().unwrap()
        );
        assert_eq!(f.alerts.drift_usd, "0.25".parse::<Decimal>().unwrap());
        assert_eq!(
            f.alerts.webhook_url.as_ref().unwrap().host_str(),
            Some("hooks.example")
        );
        assert_eq!(f.alerts.refresh_seconds, 10);
        let (line, _, msg) = err(&format!(
            "[alerts]\nlimit_warning_percent = \"100\"\n{GOOD}"
        ));
        assert_eq!(line, 2);
        assert!(
            msg.contains("must be below limit_reached_percent (100)"),
            "{msg}"
        );
        let (_, _, msg) = err(&format!("[alerts]\ndrift_usd = \"-1\"\n{GOOD}"));
        assert!(msg.contains("drift_usd must be positive"), "{msg}");
        // A webhook URL may hold a token: the error names the key, never the value.
        let (_, _, msg) = err(&format!(
            "[alerts]\nwebhook_url = \"hooks/T0/B0/s3cr3t\"\n{GOOD}"
        ));
        assert!(
            msg.contains("webhook_url") && !msg.contains("s3cr3t"),
            "{msg}"
        );
        let (_, _, msg) = err(&format!("[alerts]\nrefresh_seconds = 0\n{GOOD}"));
        assert!(msg.contains("use 1 to 3600"), "{msg}");
        let (_, _, msg) = err(&format!("[alerts]\nlimits = 1\n{GOOD}"));
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn float_markup_is_rejected_with_position() {
        let text = GOOD.replace("markup = \"1.25\"", "markup = 1.25");
        let (line, col, msg) = err(&text);
        assert_eq!(line, 25);
        assert_eq!(col, 10);
        assert!(msg.contains("\"1.25\""), "{msg}");
    }

    #[test]
    fn unknown_host_and_bad_nip_and_typo_key() {
        let (line, _, msg) = err(&GOOD.replace("host = \"hel1\"", "host = \"hel2\""));
        assert_eq!(line, 24);
        assert!(msg.contains("hel2") && msg.contains("[[hosts]]"), "{msg}");
        let (_, _, msg) = err(&GOOD.replace("526-104-08-28", "5261040829"));
        assert!(msg.contains("NIP"), "{msg}");
        let (line, col, msg) = err(&GOOD.replace("legal_name", "legal_nam"));
        assert_eq!((line, col), (21, 1));
        assert!(msg.contains("legal_nam"), "{msg}");
    }

    #[test]
    fn ssh_port_and_plain_token_are_refused() {
        let (_, _, msg) = err(&GOOD.replace("ssh://deploy@fsn1", "ssh://deploy@fsn1:2222"));
        assert!(msg.contains("~/.ssh/config"), "{msg}");
        let (_, _, msg) = err(&GOOD.replace("env:ACME_TOKEN", "s3cr3t"));
        assert!(msg.contains("never the token itself"), "{msg}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[test]
    fn plain_http_to_another_machine_is_refused_naming_the_line_and_the_fix() {
        let text = GOOD.replace("http://127.0.0.1:9001", "http://10.0.1.10:8080");
        let (line, _, msg) = err(&text);
        assert_eq!(line, 27);
        assert!(
            msg.contains("clear text")
                && msg.contains("tracker_cert_sha256")
                && msg.contains("insecure_http = true"),
            "{msg}"
        );
        // Accepted knowingly: a warning on the client, shown by the console and maictl.
        let ok = text.replace(
            "tracker_token = ",
            "insecure_http = true\ntracker_read_token = \"env:R\"\ntracker_admin_token = ",
        );
        let f = Fleet::parse(&ok, Path::new("f.toml")).unwrap();
        let c = &f.clients[0];
        assert!(c.insecure_http);
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("plain HTTP"), "{:?}", c.warnings);
        // Loopback needs no flag; localhost and [::1] are loopback too.
        for u in [
            "http://localhost:9001",
            "http://[::1]:9001",
            "http://127.0.0.2:1",
        ] {
            let f = Fleet::parse(&GOOD.replace("http://127.0.0.1:9001", u), Path::new("f"));
            assert!(f.is_ok(), "{u}: {:?}", f.err());
        }
        // A pin on an http:// URL, insecure_http on https://: both mistakes named.
        let (_, _, msg) = err(&GOOD.replace(
            "tracker_token = ",
            "tracker_cert_sha256 = \"00000000000000000000000000000000000000000000000000000000000000ff\"\ntracker_token = ",
        ));
        assert!(msg.contains("https://"), "{msg}");
        let (_, _, msg) = err(&GOOD
            .replace("http://127.0.0.1:9001", "https://t.example")
            .replace("tracker_token = ", "insecure_http = true\ntracker_token = "));
        assert!(msg.contains("only to http://"), "{msg}");
    }

    #[test]
    fn certificate_pins_parse_with_or_without_colons() {
        let hex = "5c1e070d3a9b4218c49f6eaa012b77e390dd4c6518f23ba76ec01194582de60f";
        let a = CertFingerprint::parse(hex).unwrap();
        let b = CertFingerprint::parse(&a.to_string()).unwrap();
        assert_eq!(a, b);
        assert!(a.to_string().starts_with("5C:1E:07"));
        let text = GOOD
            .replace("http://127.0.0.1:9001", "https://10.0.1.10:8443")
            .replace(
                "tracker_token = ",
                &format!("tracker_cert_sha256 = \"{a}\"\ntracker_token = "),
            );
        let f = Fleet::parse(&text, Path::new("f.toml")).unwrap();
        assert_eq!(f.clients[0].tracker_cert_sha256, Some(a));
        let (_, _, msg) = err(&text.replace(&a.to_string(), "AB:CD"));
        assert!(msg.contains("64 hex digits"), "{msg}");
    }

    #[test]
    fn read_and_admin_tokens_and_the_old_field_name() {
        // Old files: `tracker_token` is the admin token; polling falls back to it, with
        // a warning saying what to add.
        let f = Fleet::parse(GOOD, Path::new("f.toml")).unwrap();
        let c = &f.clients[0];
        assert_eq!(c.tracker_read_token, None);
        assert_eq!(c.read_token(), &SecretRef::Env("ACME_TOKEN".into()));
        assert!(
            c.warnings.iter().any(|w| w.contains("tracker_read_token")
                && w.contains("rename tracker_token to tracker_admin_token")),
            "{:?}",
            c.warnings
        );
        let new = GOOD.replace(
            "tracker_token = \"env:ACME_TOKEN\"",
            "tracker_read_token = \"env:ACME_READ\"\ntracker_admin_token = \"file:admin-token\"",
        );
        let f = Fleet::parse(&new, Path::new("/etc/mai/fleet.toml")).unwrap();
        let c = &f.clients[0];
        assert_eq!(c.read_token(), &SecretRef::Env("ACME_READ".into()));
        assert_eq!(
            c.tracker_admin_token,
            SecretRef::File(PathBuf::from("/etc/mai/admin-token"))
        );
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let (_, _, msg) = err(&new.replace(
            "tracker_admin_token",
            "tracker_token = \"env:X\"\ntracker_admin_token",
        ));
        assert!(msg.contains("old name"), "{msg}");
        let (_, _, msg) = err(&GOOD.replace("tracker_token = \"env:ACME_TOKEN\"\n", ""));
        assert!(msg.contains("no tracker_admin_token"), "{msg}");
    }

    #[test]
    fn docker_over_plain_tcp_needs_the_explicit_flag() {
        let plain = GOOD.replace(
            "tls = { ca = \"certs/ca.pem\", cert = \"certs/cert.pem\", key = \"/abs/key.pem\" }\n",
            "",
        );
        let (line, _, msg) = err(&plain);
        assert_eq!(line, 16);
        assert!(
            msg.contains("nbg1")
                && msg.contains("root")
                && msg.contains("docker_insecure_tcp = true"),
            "{msg}"
        );
        let ok = plain.replace(
            "docker = \"tcp://nbg1:2376\"\n",
            "docker = \"tcp://nbg1:2376\"\ndocker_insecure_tcp = true\n",
        );
        let f = Fleet::parse(&ok, Path::new("f.toml")).unwrap();
        assert!(matches!(
            f.hosts[2].docker,
            DockerEndpoint::Tcp { tls: None, .. }
        ));
    }

    /// GOOD with a billing section and `ksef` as the `[ksef]` section's body.
    fn with_ksef(ksef: &str) -> String {
        format!("[billing]\nconfig = \"billing.toml\"\n\n[ksef]\n{ksef}\n{GOOD}")
    }

    #[test]
    fn ksef_by_environment_or_base_url() {
        let f = Fleet::parse(
            &with_ksef("environment = \"test\"\nconcurrency = 4"),
            Path::new("/etc/mai/fleet.toml"),
        )
        .unwrap();
        let k = f.ksef.as_ref().unwrap();
        assert_eq!(k.environment, KsefEnvironment::Test);
        assert_eq!(k.base_url.as_str(), "https://api-test.ksef.mf.gov.pl/v2");
        assert_eq!(k.concurrency, Some(4));
        assert_eq!(k.ca_cert, None);
        assert!(Fleet::parse(GOOD, Path::new("f.toml"))
            .unwrap()
            .ksef
            .is_none());

        let f = Fleet::parse(
            &with_ksef(
                "base_url = \"https://127.0.0.1:18443/v2\"\nca_cert = \"certs/ksef-sim-ca.pem\"",
            ),
            Path::new("/etc/mai/fleet.toml"),
        )
        .unwrap();
        let k = f.ksef.as_ref().unwrap();
        assert_eq!(k.environment, KsefEnvironment::Custom);
        assert_eq!(
            k.ca_cert,
            Some(PathBuf::from("/etc/mai/certs/ksef-sim-ca.pem"))
        );
        // The Ministry's URL written out is that environment, not a custom one.
        let f = Fleet::parse(
            &with_ksef("base_url = \"https://api-demo.ksef.mf.gov.pl/v2/\""),
            Path::new("f"),
        )
        .unwrap();
        assert_eq!(f.ksef.unwrap().environment, KsefEnvironment::Demo);
    }

    #[test]
    fn ksef_environments_are_mai_ksefs_urls() {
        for env in KsefEnvironment::NAMED {
            let url = ministry_ksef(env).unwrap().api_base_url();
            assert_eq!(ksef_environment_of(url), env);
            assert_eq!(ksef_environment_of(&format!("{url}/")), env);
        }
        assert_eq!(ministry_ksef(KsefEnvironment::Custom), None);
        assert_eq!(
            ksef_environment_of("https://127.0.0.1:18443/v2"),
            KsefEnvironment::Custom
        );
    }

    #[test]
    fn ksef_base_url_from_the_environment_overrides_the_file_and_names_the_environment() {
        let f = Fleet::parse(&with_ksef("environment = \"prd\""), Path::new("f")).unwrap();
        let k = f.ksef.unwrap();
        let e = k.endpoint(None).unwrap();
        assert_eq!(
            (e.environment, e.base_url.as_str()),
            (KsefEnvironment::Prd, "https://api.ksef.mf.gov.pl/v2")
        );
        assert_eq!(k.endpoint(Some("  ")).unwrap(), e);
        let sim = k.endpoint(Some("http://127.0.0.1:18200/v2")).unwrap();
        assert_eq!(sim.environment, KsefEnvironment::Custom);
        assert_eq!(sim.base_url.as_str(), "http://127.0.0.1:18200/v2");
        let test = k
            .endpoint(Some("https://api-test.ksef.mf.gov.pl/v2"))
            .unwrap();
        assert_eq!(test.environment, KsefEnvironment::Test);
        let msg = k.endpoint(Some("http://ksef.example:80/v2")).unwrap_err();
        assert!(
            msg.contains("KSEF_BASE_URL") && msg.contains("https://"),
            "{msg}"
        );
    }

    #[test]
    fn ksef_mistakes_name_their_line_and_the_fix() {
        // [billing] is on lines 1-2, [ksef] on line 4, its first key on line 5.
        let (line, col, msg) = err(&with_ksef("environment = \"prod\""));
        assert_eq!((line, col), (5, 15));
        assert!(
            msg.contains("`prod`") && msg.contains("test, demo or prd"),
            "{msg}"
        );
        let (line, _, msg) = err(&with_ksef(
            "environment = \"test\"\nbase_url = \"https://x.example/v2\"",
        ));
        assert_eq!(line, 6);
        assert!(msg.contains("both environment and base_url"), "{msg}");
        let (line, _, msg) = err(&with_ksef("concurrency = 1"));
        assert_eq!(line, 4);
        assert!(
            msg.contains("names no KSeF") && msg.contains("environment = \"test\""),
            "{msg}"
        );
        let (line, _, msg) = err(&with_ksef("environment = \"test\"\nconcurrency = 0"));
        assert_eq!(line, 6);
        assert!(msg.contains("1 to 32"), "{msg}");
        let (_, _, msg) = err(&with_ksef("base_url = \"http://10.0.0.5:8080/v2\""));
        assert!(
            msg.contains("clear text") && msg.contains("https://"),
            "{msg}"
        );
        let (_, _, msg) = err(&with_ksef("environment = \"prd\"\nca_cert = \"ca.pem\""));
        assert!(msg.contains("remove ca_cert"), "{msg}");
        let (_, _, msg) = err(&with_ksef("environment = \"test\"\nnip = \"1234563218\""));
        assert!(msg.contains("nip"), "{msg}");
        // Without [billing] there is no seller to send as.
        let (line, _, msg) = err(&format!("[ksef]\nenvironment = \"test\"\n{GOOD}"));
        assert_eq!(line, 1);
        assert!(
            msg.contains("[billing]") && msg.contains("seller NIP"),
            "{msg}"
        );
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let (line, col, _) = err("[[hosts]]\nname = \"a\"\ndocker = \n");
        assert_eq!(line, 3);
        assert!(col >= 9, "{col}");
    }
}

#[cfg(test)]
mod swarm_keys {
    use super::*;

    fn fleet(host_mode: &str, placement: &str) -> Result<Fleet, FleetError> {
        Fleet::parse(
            &format!(
                "[[hosts]]\nname = \"s\"\ndocker = \"unix:///var/run/docker.sock\"\n{host_mode}\n\n\
                 [[clients]]\nid = \"acme\"\nlegal_name = \"ACME\"\nnip = \"526-104-08-28\"\n\
                 address = \"ul. Prosta 1\"\nhost = \"s\"\n{placement}\n\
                 tracker_url = \"http://127.0.0.1:9001\"\ntracker_read_token = \"env:R\"\n\
                 tracker_admin_token = \"env:A\"\n"
            ),
            Path::new("f.toml"),
        )
    }

    #[test]
    fn a_swarm_host_and_its_clients_placement() {
        let f = fleet(
            "mode = \"swarm\"",
            "placement = [\"node.hostname==w1\", \" node.labels.zone!=b \"]",
        )
        .unwrap();
        assert_eq!(f.hosts[0].mode, HostMode::Swarm);
        assert_eq!(
            f.clients[0].placement,
            ["node.hostname==w1", "node.labels.zone!=b"]
        );
        let f = fleet("", "").unwrap();
        assert_eq!(f.hosts[0].mode, HostMode::Plain);
        assert!(f.clients[0].placement.is_empty());
    }

    #[test]
    fn bad_modes_and_placements_say_what_to_write() {
        let e = fleet("mode = \"kubernetes\"", "").unwrap_err().to_string();
        assert!(
            e.contains("mode = \"swarm\"") && e.contains("f.toml:4:"),
            "{e}"
        );
        let e = fleet("", "placement = [\"node.hostname==w1\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a Swarm manager"), "{e}");
        let e = fleet("mode = \"swarm\"", "placement = [\"hostname=w1\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("KEY==VALUE"), "{e}");
        let e = fleet("mode = \"swarm\"", "placement = [\"node.name==w1\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a Swarm node attribute"), "{e}");
        assert!(check_placement("node.labels.zone==a").is_ok());
        assert!(check_placement("engine.labels.ssd==true").is_ok());
        assert!(check_placement("node.labels.==a").is_err());
        assert!(check_placement("node.role==").is_err());
    }
}

#[cfg(test)]
mod example_file {
    #[test]
    fn fleet_example_toml_parses() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fleet.example.toml");
        let f = super::Fleet::load(&path).unwrap();
        assert_eq!(f.hosts.len(), 4);
        assert_eq!(f.hosts[0].mode, super::HostMode::Plain);
        assert_eq!(f.hosts[3].mode, super::HostMode::Swarm);
        assert_eq!(f.clients.len(), 2);
        assert!(f.updater.is_some());
        assert!(f.billing.as_ref().unwrap().config.ends_with("billing.toml"));
        assert_eq!(f.nbp_base_url.as_deref(), Some("https://api.nbp.pl/api"));
        let k = f.ksef.as_ref().unwrap();
        assert_eq!(k.environment, super::KsefEnvironment::Prd);
        assert_eq!(k.concurrency, Some(4));
        // [alerts] lists the defaults.
        let d = super::AlertSettings::default();
        assert_eq!(f.alerts.limit_warning_percent, d.limit_warning_percent);
        assert_eq!(f.alerts.limit_reached_percent, d.limit_reached_percent);
        assert_eq!(f.alerts.drift_usd, d.drift_usd);
        assert_eq!(f.alerts.refresh_seconds, d.refresh_seconds);
        assert!(f.alerts.webhook_url.is_none());
    }
}
