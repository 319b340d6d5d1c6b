//! The KSeF simulator driven over HTTP as a client would, with this test's own crypto
//! (RSA-OAEP-SHA256, AES-256-CBC written here against RustCrypto, not the simulator's),
//! every JSON answer checked against the response schema of the Ministry's
//! `open-api.json` (required properties, types, lengths, enums), receipts against
//! `upo-v4-3.xsd`.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aes::cipher::{block_padding::Pkcs7, BlockModeEncrypt, KeyIvInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use chrono_tz::Europe::Warsaw;
use mai_sim::ksef::{
    crc8, ksef_number_is_valid, FaultEndpoint, FaultRule, KsefConfig, KsefSim, Permission,
    TokenSpec,
};
use rsa::pkcs8::DecodePublicKey;
use rsa::{Oaep, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use x509_cert::der::{Decode, Encode};

const NIP: &str = "5265877635";
const TOKEN: &str = "20250625-EC-2F5F3D4000-0D9A2B1C3E-11|nip-5265877635|0123456789abcdef";
const EXAMPLE: &str =
    include_str!("../../mai-billing/schemas/ksef-fa3/examples/FA_3_Przyklad_1.xml");

// ------------------------------------------------------------ the contract

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_str(include_str!("fixtures/ksef-api/open-api.json"))
            .expect("open-api.json parses")
    })
}

fn resolve(s: &Value) -> &Value {
    match s.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.trim_start_matches("#/components/schemas/");
            resolve(&spec()["components"]["schemas"][name])
        }
        None => s,
    }
}

/// Checks `v` against `schema`: required properties, types, string lengths, enums;
/// every problem is reported with its JSON path.
fn conform(schema: &Value, v: &Value, path: &str, errs: &mut Vec<String>) {
    let s = resolve(schema);
    if v.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        for sub in all {
            conform(sub, v, path, errs);
        }
    }
    if v.is_null() {
        if s.get("nullable") != Some(&Value::Bool(true)) && s.get("type").is_some() {
            errs.push(format!("{path}: null but not nullable"));
        }
        return;
    }
    if let Some(req) = s.get("required").and_then(Value::as_array) {
        for r in req.iter().filter_map(Value::as_str) {
            if v.get(r).is_none() {
                errs.push(format!("{path}: missing required `{r}`"));
            }
        }
    }
    let ty = s.get("type").and_then(Value::as_str);
    let ok = match ty {
        Some("object") => v.is_object(),
        Some("array") => v.is_array(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        errs.push(format!("{path}: expected {ty:?}, got {v}"));
        return;
    }
    if let Some(t) = v.as_str() {
        let n = t.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n < m)
        {
            errs.push(format!("{path}: `{t}` shorter than minLength"));
        }
        if s.get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| n > m)
        {
            errs.push(format!("{path}: `{t}` longer than maxLength"));
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array) {
            if !e.iter().any(|x| x.as_str() == Some(t)) {
                errs.push(format!("{path}: `{t}` not in enum {e:?}"));
            }
        }
        if s.get("format").and_then(Value::as_str) == Some("date-time")
            && DateTime::parse_from_rfc3339(t).is_err()
        {
            errs.push(format!("{path}: `{t}` is not an RFC 3339 date-time"));
        }
    }
    if let (Some(props), Some(obj)) = (s.get("properties"), v.as_object()) {
        for (k, val) in obj {
            if let Some(ps) = props.get(k) {
                conform(ps, val, &format!("{path}.{k}"), errs);
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, val) in arr.iter().enumerate() {
            conform(items, val, &format!("{path}[{i}]"), errs);
        }
    }
}

/// Asserts that `body`, the answer `status` of `method path`, fits the contract's schema.
fn assert_contract(method: &str, path: &str, status: u16, content_type: &str, body: &Value) {
    let op = &spec()["paths"][path][method];
    assert!(op.is_object(), "{method} {path} is not in open-api.json");
    let resp = &op["responses"][status.to_string()];
    assert!(
        resp.is_object(),
        "{method} {path}: status {status} is not in the contract"
    );
    let schema = &resp["content"][content_type]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {status}: no {content_type} schema in the contract"
    );
    let mut errs = Vec::new();
    conform(schema, body, "$", &mut errs);
    assert!(
        errs.is_empty(),
        "{method} {path} {status}: {errs:#?}\n{body:#}"
    );
}

// ------------------------------------------------------------ a client, written here

struct Client {
    http: reqwest::Client,
    base: String,
}

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
    text: String,
}

impl Reply {
    fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The first `exceptionCode` of a 400 in the default (`ExceptionResponse`) format.
    fn exception_code(&self) -> i64 {
        self.body["exception"]["exceptionDetailList"][0]["exceptionCode"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an ExceptionResponse: {}", self.text))
    }
}

impl Client {
    fn new(sim: &KsefSim) -> Self {
        Client {
            http: reqwest::Client::new(),
            base: sim.base_url(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut rb = match method {
            "get" => self.http.get(&url),
            _ => self.http.post(&url),
        };
        if let Some(t) = bearer {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("the simulator answers");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    /// `call`, and the answer checked against the contract (`template` is the
    /// open-api.json path the request matched).
    async fn checked(
        &self,
        method: &str,
        template: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let r = self.call(method, path, bearer, body).await;
        if !r.text.is_empty() && r.content_type().contains("json") {
            let ct = if r.content_type().contains("problem") {
                "application/problem+json"
            } else {
                "application/json"
            };
            assert_contract(method, template, r.status, ct, &r.body);
        }
        r
    }

    async fn keys(&self) -> (RsaPublicKey, RsaPublicKey) {
        let r = self
            .checked(
                "get",
                "/security/public-key-certificates",
                "/security/public-key-certificates",
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        let mut token = None;
        let mut symmetric = None;
        for c in r.body.as_array().unwrap() {
            let der = B64.decode(c["certificate"].as_str().unwrap()).unwrap();
            assert_eq!(c["certificateId"], B64.encode(Sha256::digest(&der)));
            let cert = x509_cert::Certificate::from_der(&der).expect("an X.509 certificate in DER");
            let spki = cert
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .unwrap();
            assert_eq!(c["publicKeyId"], B64.encode(Sha256::digest(&spki)));
            let key = RsaPublicKey::from_public_key_der(&spki).expect("an RSA key");
            match c["usage"][0].as_str().unwrap() {
                "KsefTokenEncryption" => token = Some(key),
                "SymmetricKeyEncryption" => symmetric = Some(key),
                other => panic!("usage {other}"),
            }
        }
        (
            token.expect("a token key"),
            symmetric.expect("a symmetric key"),
        )
    }

    /// Challenge → encrypted token → status polled to its end; the authentication
    /// token and the final status.
    async fn start_auth(&self, nip: &str, token: &str) -> (String, String, Value) {
        let (token_key, _) = self.keys().await;
        let c = self
            .checked("post", "/auth/challenge", "/auth/challenge", None, None)
            .await;
        assert_eq!(c.status, 200, "{}", c.text);
        let ts = c.body["timestampMs"].as_i64().unwrap();
        let plain = format!("{token}|{ts}");
        let enc = token_key
            .encrypt(
                &mut rand::thread_rng(),
                Oaep::new::<Sha256>(),
                plain.as_bytes(),
            )
            .unwrap();
        let r = self
            .checked(
                "post",
                "/auth/ksef-token",
                "/auth/ksef-token",
                None,
                Some(json!({
                    "challenge": c.body["challenge"],
                    "contextIdentifier": {"type": "Nip", "value": nip},
                    "encryptedToken": B64.encode(enc),
                })),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text);
        let reference = r.body["referenceNumber"].as_str().unwrap().to_string();
        let auth_token = r.body["authenticationToken"]["token"]
            .as_str()
            .unwrap()
            .to_string();
        let status = poll(|| async {
            let s = self
                .checked(
                    "get",
                    "/auth/{referenceNumber}",
                    &format!("/auth/{reference}"),
                    Some(&auth_token),
                    None,
                )
                .await;
            assert_eq!(s.status, 200, "{}", s.text);
            (s.body["status"]["code"] != 100).then_some(s.body)
        })
        .await;
        (reference, auth_token, status)
    }

    /// A full login; (access token, refresh token).
    async fn login(&self, nip: &str, token: &str) -> (String, String) {
        let (_, auth_token, status) = self.start_auth(nip, token).await;
        assert_eq!(status["status"]["code"], 200, "{status}");
        let r = self
            .checked(
                "post",
                "/auth/token/redeem",
                "/auth/token/redeem",
                Some(&auth_token),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        (
            r.body["accessToken"]["token"].as_str().unwrap().to_string(),
            r.body["refreshToken"]["token"]
                .as_str()
                .unwrap()
                .to_string(),
        )
    }

    async fn open_session(&self, access: &str, key: &[u8; 32], iv: &[u8; 16]) -> String {
        let (_, sym) = self.keys().await;
        let wrapped = sym
            .encrypt(&mut rand::thread_rng(), Oaep::new::<Sha256>(), key)
            .unwrap();
        let r = self
            .checked(
                "post",
                "/sessions/online",
                "/sessions/online",
                Some(access),
                Some(json!({
                    "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
                    "encryption": {"encryptedSymmetricKey": B64.encode(wrapped), "initializationVector": B64.encode(iv)},
                })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        r.body["referenceNumber"].as_str().unwrap().to_string()
    }

    async fn send_raw(&self, access: &str, session: &str, body: Value) -> Reply {
        self.checked(
            "post",
            "/sessions/online/{referenceNumber}/invoices",
            &format!("/sessions/online/{session}/invoices"),
            Some(access),
            Some(body),
        )
        .await
    }

    async fn invoice(&self, access: &str, session: &str, invoice: &str) -> Value {
        let r = self
            .checked(
                "get",
                "/sessions/{referenceNumber}/invoices/{invoiceReferenceNumber}",
                &format!("/sessions/{session}/invoices/{invoice}"),
                Some(access),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body
    }

    /// Polls the invoice's status until it is final; also returns every code seen.
    async fn settle(&self, access: &str, session: &str, invoice: &str) -> (Value, Vec<i64>) {
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = self.invoice(access, session, invoice).await;
            let code = v["status"]["code"].as_i64().unwrap();
            if seen.last() != Some(&code) {
                seen.push(code);
            }
            if code != 100 && code != 150 {
                return (v, seen);
            }
            assert!(Instant::now() < deadline, "invoice still {code} after 10 s");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn encrypt(key: &[u8; 32], iv: &[u8; 16], plain: &[u8]) -> Vec<u8> {
    cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
        .unwrap()
        .encrypt_padded_vec::<Pkcs7>(plain)
}

fn b64_sha(b: &[u8]) -> String {
    B64.encode(Sha256::digest(b))
}

/// The body of `POST .../invoices` for `xml`, ciphertext alone (the C# client's form).
fn send_body(key: &[u8; 32], iv: &[u8; 16], xml: &[u8]) -> Value {
    let enc = encrypt(key, iv, xml);
    json!({
        "invoiceHash": b64_sha(xml),
        "invoiceSize": xml.len(),
        "encryptedInvoiceHash": b64_sha(&enc),
        "encryptedInvoiceSize": enc.len(),
        "encryptedInvoiceContent": B64.encode(&enc),
    })
}

/// Polls `f` (every 10 ms, 10 s at most) until it yields a value.
async fn poll<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "no final state within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The Ministry's example 1 as issued by `nip`, numbered `number`, dated `day`.
fn invoice(nip: &str, number: &str, day: &str) -> String {
    EXAMPLE
        .replacen("<NIP>9999999999</NIP>", &format!("<NIP>{nip}</NIP>"), 1)
        .replace("<P_2>FV2026/02/150</P_2>", &format!("<P_2>{number}</P_2>"))
        .replace("<P_1>2026-02-15</P_1>", &format!("<P_1>{day}</P_1>"))
}

fn today(sim: &KsefSim) -> String {
    sim.now()
        .with_timezone(&Warsaw)
        .format("%Y-%m-%d")
        .to_string()
}

async fn sim() -> KsefSim {
    KsefSim::spawn(KsefConfig {
        seed: 7,
        tokens: vec![TokenSpec::new(NIP, TOKEN)],
        ..KsefConfig::default()
    })
    .await
    .expect("the simulator starts")
}

/// Validates a receipt against `upo-v4-3.xsd` with xmllint.
fn assert_valid_upo(xml: &str) {
    use std::io::Write;
    let xsd = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/ksef-api/upo-v4-3.xsd"
    );
    let mut child = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema", xsd, "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("xmllint (libxml2-utils) is installed");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(xml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "UPO not valid against upo-v4-3.xsd: {}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ------------------------------------------------------------ the tests

#[test]
fn ksef_numbers_use_crc8_as_the_docs_example() {
    assert_eq!(crc8(b"5265877635-20250826-0100001AF629"), 0xAF);
    assert!(ksef_number_is_valid("5265877635-20250826-0100001AF629-AF"));
}

#[tokio::test]
async fn full_flow_issues_an_invoice_with_a_checked_ksef_number_and_receipts() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([0x11u8; 32], [0x22u8; 16]);
    let session = c.open_session(&access, &key, &iv).await;
    let xml = invoice(NIP, "FV/2026/SIM/1", &today(&sim));
    let r = c
        .send_raw(&access, &session, send_body(&key, &iv, xml.as_bytes()))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let inv_ref = r.body["referenceNumber"].as_str().unwrap().to_string();

    let (v, seen) = c.settle(&access, &session, &inv_ref).await;
    assert_eq!(v["status"]["code"], 200, "{v:#}");
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]) && seen.iter().all(|c| [100, 150, 200].contains(c)),
        "status went {seen:?}"
    );
    assert!(
        seen.len() >= 2,
        "polling every 10 ms sees 100 or 150 first: {seen:?}"
    );
    let ksef = v["ksefNumber"].as_str().unwrap().to_string();
    assert!(ksef_number_is_valid(&ksef), "{ksef}");
    let acquired: DateTime<Utc> = v["acquisitionDate"].as_str().unwrap().parse().unwrap();
    let day = acquired.with_timezone(&Warsaw).format("%Y%m%d").to_string();
    assert!(ksef.starts_with(&format!("{NIP}-{day}-")), "{ksef}");
    assert_eq!(v["invoiceNumber"], "FV/2026/SIM/1");
    assert_eq!(v["invoiceHash"], b64_sha(xml.as_bytes()));

    // Ground truth, in process and over the control endpoint.
    let accepted = sim.accepted();
    assert_eq!(accepted.len(), 1);
    let a = &accepted[0];
    assert_eq!(
        (
            a.seller_nip.as_str(),
            a.invoice_number.as_str(),
            a.kind.as_str()
        ),
        (NIP, "FV/2026/SIM/1", "VAT")
    );
    assert_eq!(a.ksef_number, ksef);
    assert_eq!(a.xml, xml);
    let truth: Value = reqwest::get(format!("{}/accepted", sim.control_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(truth[0]["ksef_number"], ksef.as_str());

    // The invoice's receipt, by reference and by KSeF number.
    for path in [
        format!("/sessions/{session}/invoices/{inv_ref}/upo"),
        format!("/sessions/{session}/invoices/ksef/{ksef}/upo"),
    ] {
        let u = c.call("get", &path, Some(&access), None).await;
        assert_eq!(u.status, 200, "{path}: {}", u.text);
        assert_eq!(u.content_type(), "application/xml");
        assert_eq!(
            u.headers["x-ms-meta-hash"].to_str().unwrap(),
            b64_sha(u.text.as_bytes())
        );
        assert!(u
            .text
            .contains(&format!("<NumerKSeFDokumentu>{ksef}</NumerKSeFDokumentu>")));
        assert!(u
            .text
            .contains("<NumerFaktury>FV/2026/SIM/1</NumerFaktury>"));
        assert!(u.text.contains(&format!(
            "<SkrotDokumentu>{}</SkrotDokumentu>",
            b64_sha(xml.as_bytes())
        )));
        assert_valid_upo(&u.text);
    }
    // The storage link needs no bearer.
    let link = v["upoDownloadUrl"].as_str().unwrap();
    let u = reqwest::get(link).await.unwrap();
    assert_eq!(u.status(), 200);

    // Lists, close, the session's receipt.
    let l = c
        .checked(
            "get",
            "/sessions/{referenceNumber}/invoices",
            &format!("/sessions/{session}/invoices"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(l.body["invoices"].as_array().unwrap().len(), 1);
    let f = c
        .checked(
            "get",
            "/sessions/{referenceNumber}/invoices/failed",
            &format!("/sessions/{session}/invoices/failed"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(f.body["invoices"].as_array().unwrap().len(), 0);
    let s = c
        .checked(
            "get",
            "/sessions/{referenceNumber}",
            &format!("/sessions/{session}"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(s.body["status"]["code"], 100);
    let close = c
        .call(
            "post",
            &format!("/sessions/online/{session}/close"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(close.status, 204, "{}", close.text);
    let again = c
        .checked(
            "post",
            "/sessions/online/{referenceNumber}/close",
            &format!("/sessions/online/{session}/close"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!((again.status, again.exception_code()), (400, 21180));
    let s = poll(|| async {
        let s = c
            .checked(
                "get",
                "/sessions/{referenceNumber}",
                &format!("/sessions/{session}"),
                Some(&access),
                None,
            )
            .await;
        (s.body["status"]["code"] != 170).then_some(s.body)
    })
    .await;
    assert_eq!(s["status"]["code"], 200, "{s:#}");
    assert_eq!(
        (
            s["invoiceCount"].as_i64(),
            s["successfulInvoiceCount"].as_i64()
        ),
        (Some(1), Some(1))
    );
    let page = &s["upo"]["pages"][0];
    let upo = c
        .call(
            "get",
            &format!(
                "/sessions/{session}/upo/{}",
                page["referenceNumber"].as_str().unwrap()
            ),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(upo.status, 200, "{}", upo.text);
    assert!(upo
        .text
        .contains("<CalkowitaLiczbaDokumentow>1</CalkowitaLiczbaDokumentow>"));
    assert_valid_upo(&upo.text);
    sim.shutdown().await;
}

#[tokio::test]
async fn iv_prefixed_ciphertext_is_accepted_as_well() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([3u8; 32], [4u8; 16]);
    let session = c.open_session(&access, &key, &iv).await;
    let xml = invoice(NIP, "FV/IV/1", &today(&sim));
    let mut prefixed = iv.to_vec();
    prefixed.extend(encrypt(&key, &iv, xml.as_bytes()));
    let body = json!({
        "invoiceHash": b64_sha(xml.as_bytes()),
        "invoiceSize": xml.len(),
        "encryptedInvoiceHash": b64_sha(&prefixed),
        "encryptedInvoiceSize": prefixed.len(),
        "encryptedInvoiceContent": B64.encode(&prefixed),
    });
    let r = c.send_raw(&access, &session, body).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let (v, _) = c
        .settle(
            &access,
            &session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(v["status"]["code"], 200, "{v:#}");
    assert_eq!(sim.accepted()[0].xml, xml);
}

#[tokio::test]
async fn schema_invalid_invoice_is_430_with_the_validators_message() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([5u8; 32], [6u8; 16]);
    let session = c.open_session(&access, &key, &iv).await;
    let xml = invoice(NIP, "FV/BAD/1", &today(&sim))
        .replace("<KodWaluty>PLN</KodWaluty>", "<KodWaluty>ZZZ</KodWaluty>");
    let r = c
        .send_raw(&access, &session, send_body(&key, &iv, xml.as_bytes()))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let (v, _) = c
        .settle(
            &access,
            &session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(v["status"]["code"], 430, "{v:#}");
    assert_eq!(v["status"]["description"], "Błąd weryfikacji pliku faktury");
    let details = v["status"]["details"].to_string();
    assert!(
        details.contains("KodWaluty") && details.contains("ZZZ"),
        "{details}"
    );
    let failed = c
        .checked(
            "get",
            "/sessions/{referenceNumber}/invoices/failed",
            &format!("/sessions/{session}/invoices/failed"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(failed.body["invoices"][0]["status"]["code"], 430);
    assert!(sim.accepted().is_empty());

    // A byte-order mark and forbidden characters fail the same way, with their reasons.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(invoice(NIP, "FV/BOM/1", &today(&sim)).as_bytes());
    let r = c
        .send_raw(&access, &session, send_body(&key, &iv, &bom))
        .await;
    let (v, _) = c
        .settle(
            &access,
            &session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(v["status"]["code"], 430);
    assert!(
        v["status"]["details"][0].as_str().unwrap().contains("BOM"),
        "{v:#}"
    );
}

#[tokio::test]
async fn duplicate_is_440_naming_the_original() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([7u8; 32], [8u8; 16]);
    let first_session = c.open_session(&access, &key, &iv).await;
    let xml = invoice(NIP, "FV/DUP/1", &today(&sim));
    let r = c
        .send_raw(
            &access,
            &first_session,
            send_body(&key, &iv, xml.as_bytes()),
        )
        .await;
    let (first, _) = c
        .settle(
            &access,
            &first_session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(first["status"]["code"], 200);
    let second_session = c.open_session(&access, &key, &iv).await;
    let r = c
        .send_raw(
            &access,
            &second_session,
            send_body(&key, &iv, xml.as_bytes()),
        )
        .await;
    let (dup, _) = c
        .settle(
            &access,
            &second_session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(dup["status"]["code"], 440, "{dup:#}");
    assert_eq!(
        dup["status"]["extensions"]["originalKsefNumber"],
        first["ksefNumber"]
    );
    assert_eq!(
        dup["status"]["extensions"]["originalSessionReferenceNumber"],
        first_session.as_str()
    );
    assert_eq!(sim.accepted().len(), 1);
}

#[tokio::test]
async fn hash_and_size_mismatches_are_rejected_at_once() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([9u8; 32], [1u8; 16]);
    let session = c.open_session(&access, &key, &iv).await;
    let xml = invoice(NIP, "FV/HASH/1", &today(&sim));
    let mut body = send_body(&key, &iv, xml.as_bytes());
    body["invoiceHash"] = json!(b64_sha(b"another invoice"));
    let r = c.send_raw(&access, &session, body).await;
    assert_eq!((r.status, r.exception_code()), (400, 21403), "{}", r.text);
    let mut body = send_body(&key, &iv, xml.as_bytes());
    body["encryptedInvoiceHash"] = json!(b64_sha(b"x"));
    let r = c.send_raw(&access, &session, body).await;
    assert_eq!(r.exception_code(), 21403);
    let mut body = send_body(&key, &iv, xml.as_bytes());
    body["encryptedInvoiceSize"] = json!(17);
    let r = c.send_raw(&access, &session, body).await;
    assert_eq!(r.exception_code(), 21402);
    let mut body = send_body(&key, &iv, xml.as_bytes());
    body["invoiceSize"] = json!(xml.len() + 1);
    let r = c.send_raw(&access, &session, body).await;
    assert_eq!(r.exception_code(), 21402);
    // The same error in the problem-details format, on request.
    let mut body = send_body(&key, &iv, xml.as_bytes());
    body["invoiceHash"] = json!(b64_sha(b"y"));
    let r = c
        .http
        .post(format!("{}/sessions/online/{session}/invoices", c.base))
        .bearer_auth(&access)
        .header("X-Error-Format", "problem-details")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_contract(
        "post",
        "/sessions/online/{referenceNumber}/invoices",
        400,
        "application/problem+json",
        &v,
    );
    assert_eq!(v["errors"][0]["code"], 21403);
    assert!(
        sim.invoices().is_empty(),
        "nothing rejected at send time is kept"
    );
}

#[tokio::test]
async fn too_many_requests_carries_retry_after_then_lapses() {
    let sim = sim().await;
    let c = Client::new(&sim);
    sim.add_fault(FaultRule::too_many_requests(FaultEndpoint::Challenge, 7, 2));
    for _ in 0..2 {
        let r = c
            .checked("post", "/auth/challenge", "/auth/challenge", None, None)
            .await;
        assert_eq!(r.status, 429);
        assert_eq!(r.headers["retry-after"], "7");
        assert_eq!(r.body["status"]["code"], 429);
    }
    let r = c
        .checked("post", "/auth/challenge", "/auth/challenge", None, None)
        .await;
    assert_eq!(r.status, 200, "the rule lapsed after 2");
    // 5xx, over the control endpoint.
    let http = reqwest::Client::new();
    let ok = http
        .post(format!("{}/faults", sim.control_url()))
        .json(&json!({"fault": "status=503;retry_after=2", "endpoint": "public_keys", "count": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let r = c
        .call("get", "/security/public-key-certificates", None, None)
        .await;
    assert_eq!(
        (r.status, r.headers["retry-after"].to_str().unwrap()),
        (503, "2")
    );
    assert_eq!(
        c.call("get", "/security/public-key-certificates", None, None)
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn redeeming_twice_is_400_and_bearers_are_checked() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (_, auth_token, status) = c.start_auth(NIP, TOKEN).await;
    assert_eq!(status["status"]["code"], 200);
    let first = c
        .checked(
            "post",
            "/auth/token/redeem",
            "/auth/token/redeem",
            Some(&auth_token),
            None,
        )
        .await;
    assert_eq!(first.status, 200);
    let second = c
        .checked(
            "post",
            "/auth/token/redeem",
            "/auth/token/redeem",
            Some(&auth_token),
            None,
        )
        .await;
    assert_eq!(
        (second.status, second.exception_code()),
        (400, 21301),
        "{}",
        second.text
    );
    let access = first.body["accessToken"]["token"].as_str().unwrap();
    let refresh = first.body["refreshToken"]["token"].as_str().unwrap();

    // No bearer, a wrong one, and an expired one: 401 in the problem-details shape.
    for bearer in [None, Some("eyJ.not.ours"), Some(refresh)] {
        let r = c
            .checked(
                "post",
                "/sessions/online",
                "/sessions/online",
                bearer,
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 401, "{bearer:?}: {}", r.text);
    }
    sim.advance(Duration::from_secs(16 * 60));
    let r = c
        .checked(
            "get",
            "/sessions/{referenceNumber}",
            "/sessions/20260101-SO-0000000000-0000000000-00",
            Some(access),
            None,
        )
        .await;
    assert_eq!(
        r.status, 401,
        "the access token lives 15 minutes: {}",
        r.text
    );
    let fresh = c
        .checked(
            "post",
            "/auth/token/refresh",
            "/auth/token/refresh",
            Some(refresh),
            None,
        )
        .await;
    assert_eq!(fresh.status, 200, "{}", fresh.text);
    let new_access = fresh.body["accessToken"]["token"].as_str().unwrap();
    let (key, iv) = ([2u8; 32], [2u8; 16]);
    c.open_session(new_access, &key, &iv).await;
}

#[tokio::test]
async fn authentication_failures_are_statuses() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (_, _, status) = c.start_auth(NIP, "not-a-registered-token").await;
    assert_eq!(status["status"]["code"], 450, "{status}");
    assert_eq!(status["status"]["details"][0], "Nieprawidłowy token");
    // Registered over the control endpoint, without InvoiceWrite: authenticates,
    // but may not open a session.
    let r = reqwest::Client::new()
        .post(format!("{}/tokens", sim.control_url()))
        .json(&json!({"nip": "1111111111", "token": "read-only-token", "permissions": ["InvoiceRead"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (access, _) = c.login("1111111111", "read-only-token").await;
    let r = c
        .checked(
            "post",
            "/sessions/online",
            "/sessions/online",
            Some(&access),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["reasonCode"], "missing-permissions");
    // A challenge is good once.
    let ch = c.call("post", "/auth/challenge", None, None).await;
    let body = json!({"challenge": ch.body["challenge"], "contextIdentifier": {"type": "Nip", "value": NIP}, "encryptedToken": B64.encode([0u8; 256])});
    assert_eq!(
        c.call("post", "/auth/ksef-token", None, Some(body.clone()))
            .await
            .status,
        202
    );
    let again = c
        .checked(
            "post",
            "/auth/ksef-token",
            "/auth/ksef-token",
            None,
            Some(body),
        )
        .await;
    assert_eq!(again.exception_code(), 21111);
    let _ = Permission::InvoiceWrite;
}

#[tokio::test]
async fn issue_date_after_acquisition_is_450_and_forced_outcomes_apply() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([12u8; 32], [13u8; 16]);
    let session = c.open_session(&access, &key, &iv).await;
    let tomorrow =
        (sim.now().with_timezone(&Warsaw).date_naive() + chrono::Days::new(2)).to_string();
    let r = c
        .send_raw(
            &access,
            &session,
            send_body(&key, &iv, invoice(NIP, "FV/P1/1", &tomorrow).as_bytes()),
        )
        .await;
    let (v, _) = c
        .settle(
            &access,
            &session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(v["status"]["code"], 450, "{v:#}");
    assert!(v["status"]["details"][0].as_str().unwrap().contains("P_1"));

    sim.add_fault(FaultRule::reject_invoices(440, 1));
    let r = c
        .send_raw(
            &access,
            &session,
            send_body(
                &key,
                &iv,
                invoice(NIP, "FV/FORCED/1", &today(&sim)).as_bytes(),
            ),
        )
        .await;
    let (v, _) = c
        .settle(
            &access,
            &session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(v["status"]["code"], 440, "{v:#}");
    assert!(ksef_number_is_valid(
        v["status"]["extensions"]["originalKsefNumber"]
            .as_str()
            .unwrap()
    ));
    // The rule was used up: the same invoice now goes through.
    let r = c
        .send_raw(
            &access,
            &session,
            send_body(
                &key,
                &iv,
                invoice(NIP, "FV/FORCED/1", &today(&sim)).as_bytes(),
            ),
        )
        .await;
    let (v, _) = c
        .settle(
            &access,
            &session,
            r.body["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(v["status"]["code"], 200, "{v:#}");
}

#[tokio::test]
async fn slow_processing_holds_150_until_the_clock_moves() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([14u8; 32], [15u8; 16]);
    let session = c.open_session(&access, &key, &iv).await;
    sim.add_fault(FaultRule::slow_processing(Duration::from_secs(3600), 1));
    let r = c
        .send_raw(
            &access,
            &session,
            send_body(
                &key,
                &iv,
                invoice(NIP, "FV/SLOW/1", &today(&sim)).as_bytes(),
            ),
        )
        .await;
    let inv = r.body["referenceNumber"].as_str().unwrap().to_string();
    let v = poll(|| async {
        let v = c.invoice(&access, &session, &inv).await;
        (v["status"]["code"] == 150).then_some(v)
    })
    .await;
    assert!(v.get("ksefNumber").is_none());
    assert!(sim.accepted().is_empty(), "not accepted while processing");
    // An hour on, the access token has expired too: read the outcome from the truth.
    sim.advance(Duration::from_secs(3601));
    assert_eq!(sim.invoices()[0].status, 200);
    assert_eq!(sim.accepted().len(), 1);
}

#[tokio::test]
async fn an_expired_session_takes_no_more_invoices() {
    let sim = sim().await;
    let c = Client::new(&sim);
    let (access, _) = c.login(NIP, TOKEN).await;
    let (key, iv) = ([16u8; 32], [17u8; 16]);
    let session = c.open_session(&access, &key, &iv).await;
    assert!(sim.expire_session(&session));
    let r = c
        .send_raw(
            &access,
            &session,
            send_body(&key, &iv, invoice(NIP, "FV/EXP/1", &today(&sim)).as_bytes()),
        )
        .await;
    assert_eq!((r.status, r.exception_code()), (400, 21180), "{}", r.text);
    let s = c
        .checked(
            "get",
            "/sessions/{referenceNumber}",
            &format!("/sessions/{session}"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(
        s.body["status"]["code"], 440,
        "closed without invoices: {}",
        s.text
    );
}

#[tokio::test]
async fn serves_https_with_its_test_ca() {
    let sim = KsefSim::start(
        "127.0.0.1:0".parse().unwrap(),
        KsefConfig {
            seed: 7,
            ..KsefConfig::default()
        },
        true,
    )
    .await
    .unwrap();
    assert!(sim.base_url().starts_with("https://") && sim.base_url().ends_with("/v2"));
    let ca = reqwest::Certificate::from_pem(sim.ca_pem().unwrap().as_bytes()).unwrap();
    let http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let url = format!("{}/security/public-key-certificates", sim.base_url())
        .replace("127.0.0.1", "localhost");
    let r = http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_contract(
        "get",
        "/security/public-key-certificates",
        200,
        "application/json",
        &v,
    );
}

#[tokio::test]
async fn latency_applies_to_every_call() {
    let sim = sim().await;
    sim.add_fault(FaultRule::latency(Duration::from_millis(100)));
    let c = Client::new(&sim);
    for _ in 0..2 {
        let t = Instant::now();
        assert_eq!(
            c.call("post", "/auth/challenge", None, None).await.status,
            200
        );
        assert!(
            t.elapsed() >= Duration::from_millis(100),
            "{:?}",
            t.elapsed()
        );
    }
}
