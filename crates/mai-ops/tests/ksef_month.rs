//! The month through KSeF, end to end, from a fleet file and a billing file only: the
//! console cache's usage → `Ops::ksef_send` (mai-billing prepares, mai-ksef sends) → the
//! in-process KSeF simulator over HTTPS (its CA in `[ksef] ca_cert`) → KSeF numbers and
//! UPOs in the billing store → a late event's correction (KOR) → a schema rejection, a
//! client with missing data and a lost answer (440), each readable, fixed and sent again,
//! numbers gap-free → every accepted XML valid against the vendored FA(3) XSD → the
//! receipt file and the PDF with its KSeF number.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use mai_billing::{BillingStore, ExportFormat, InvoiceKind};
use mai_core::ledger::Ledger;
use mai_core::time::YearMonth;
use mai_core::usage::{EventState, Source, Tokens, UsageEvent, UserRef};
use mai_ops::ops::InvoiceExportRequest;
use mai_ops::{Fleet, Keychain, Ops};
use mai_sim::ksef::{FaultRule, KsefConfig, KsefSim, TokenSpec};
use mai_sim::nbp::{self as nbp_sim, NbpSim};
use mai_wire::ksef::{KsefInvoiceKind, KsefSendPhase, KsefSendSummary, KsefState};
use rust_decimal::Decimal;

const SELLER_NIP: &str = "1234563218";
const TOKEN: &str =
    "20251010-EC-1B5A8A2000-9D0F7C3E21-5A|nip-1234563218|6f1c0e7b9a2d4c3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e";

const BILLING: &str = r#"
invoice_number_format = "FV/{yyyy}/{mm}/{seq:04}"
payment_days = 14

[seller]
name = "mAI Odsprzedaż Sp. z o.o."
nip = "1234563218"
address_line1 = "ul. Świętokrzyska 12"
address_line2 = "00-916 Warszawa"
bank_account = "PL61 1090 1014 0000 0712 1981 2874"
"#;

/// The month before today's (Warsaw): closed, so it can be invoiced today, and KSeF's
/// clock (the simulator's is the real one) accepts today's issue date.
fn last_month() -> YearMonth {
    let today = mai_core::time::warsaw_today();
    let first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).unwrap();
    let prev = first.pred_opt().unwrap();
    format!("{:04}-{:02}", prev.year(), prev.month())
        .parse()
        .unwrap()
}

fn event(org: &str, id: &str, month: YearMonth, day: u32, cost: &str) -> UsageEvent {
    let date = NaiveDate::from_ymd_opt(month.year, month.month, day).unwrap();
    UsageEvent {
        generation_id: id.to_string(),
        org_id: org.to_string(),
        user: UserRef {
            id: Some("u1".into()),
            email: None,
            name: Some("Jan".into()),
        },
        model: "openai/gpt-4o".into(),
        provider: None,
        tokens: Tokens {
            prompt: 100,
            completion: 50,
            reasoning: 0,
            cached: 0,
        },
        cost_usd: Decimal::from_str(cost).unwrap(),
        source: Source::Proxy,
        state: EventState::Confirmed,
        created_at: Utc.from_utc_datetime(&date.and_hms_opt(12, 0, 0).unwrap()),
        context: Default::default(),
    }
}

const HOST: &str = "[[hosts]]\nname = \"h1\"\ndocker = \"unix:///nonexistent/docker.sock\"\n\n";
const TRACKER: &str =
    "host = \"h1\"\ntracker_url = \"http://127.0.0.1:9\"\ntracker_token = \"env:UNUSED_TOKEN\"\n\n";

/// Five clients: PLN and USD, a Polish buyer, an EU one (reverse charge), a US one; `broken`
/// has usage in the ledger but no invoice data until `fixed` adds it to the fleet file.
fn fleet_text(data: &Path, nbp: &str, ksef: &str, fixed: bool) -> String {
    let clients = [
        "id = \"acme\"\nlegal_name = \"ACME Sp. z o.o.\"\nnip = \"5261040828\"\naddress = \"ul. Prosta 1\"\naddress_line2 = \"00-001 Warszawa\"\ninvoice_lines = \"summary\"\n".to_string(),
        "id = \"dollar\"\nlegal_name = \"Beta Analytics S.A.\"\nnip = \"526-000-12-46\"\naddress = \"ul. Długa 7\"\naddress_line2 = \"80-001 Gdańsk\"\ninvoice_currency = \"USD\"\n".to_string(),
        "id = \"gmbh\"\nlegal_name = \"Muster GmbH\"\ncountry = \"DE\"\nvat_id = \"DE123456789\"\nvat = \"np\"\naddress = \"Hauptstraße 1\"\naddress_line2 = \"10115 Berlin\"\ninvoice_currency = \"USD\"\n".to_string(),
        "id = \"usco\"\nlegal_name = \"US Corp Inc.\"\ncountry = \"US\"\nvat_id = \"12-3456789\"\nvat = \"np\"\naddress = \"1 Main St\"\naddress_line2 = \"Springfield, IL 62701\"\ninvoice_currency = \"USD\"\n".to_string(),
    ];
    let mut s = format!(
        "[console]\ndata_dir = {data:?}\n\n[nbp]\nbase_url = \"{nbp}\"\n\n[billing]\nconfig = \"billing.toml\"\n\n[ksef]\n{ksef}\n\n{HOST}"
    );
    let mut clients = clients.to_vec();
    if fixed {
        clients.push("id = \"broken\"\nlegal_name = \"Broken Sp. z o.o.\"\nnip = \"7010002139\"\naddress = \"ul. Naprawiona 3\"\naddress_line2 = \"00-590 Warszawa\"\n".to_string());
    }
    for c in clients {
        s.push_str("[[clients]]\n");
        s.push_str(&c);
        s.push_str(TRACKER);
    }
    s
}

struct World {
    dir: tempfile::TempDir,
    nbp: nbp_sim::NbpHandle,
    ksef: KsefSim,
    keychain: Keychain,
    month: YearMonth,
}

impl World {
    async fn new() -> World {
        let nbp = NbpSim::spawn(nbp_sim::NbpConfig::default()).await.unwrap();
        let ksef = KsefSim::start(
            "127.0.0.1:0".parse().unwrap(),
            KsefConfig {
                tokens: vec![TokenSpec::new(SELLER_NIP, TOKEN)],
                ..KsefConfig::default()
            },
            true,
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ksef-ca.pem"), ksef.ca_pem().unwrap()).unwrap();
        std::fs::write(dir.path().join("billing.toml"), BILLING).unwrap();
        let data = dir.path().join("console");
        std::fs::create_dir_all(&data).unwrap();
        let month = last_month();
        let mut ledger = Ledger::open(&data.join("console-cache.sqlite")).unwrap();
        let mut events = Vec::new();
        for (i, org) in ["acme", "dollar", "gmbh", "usco", "broken"]
            .iter()
            .enumerate()
        {
            events.push(event(org, &format!("g{i}a"), month, 3, "12.345678901"));
            events.push(event(org, &format!("g{i}b"), month, 20, "4.2"));
        }
        ledger.record_batch(&events).unwrap();
        World {
            dir,
            nbp,
            ksef,
            // One keychain for every Ops of the test, as the OS keychain would be.
            keychain: Keychain::with_store(keyring_core::mock::Store::new().unwrap()),
            month,
        }
    }

    fn ops(&self, fixed: bool) -> Ops {
        let ksef = format!(
            "base_url = \"{}\"\nca_cert = \"ksef-ca.pem\"",
            self.ksef.base_url()
        );
        let text = fleet_text(
            &self.dir.path().join("console"),
            &self.nbp.base_url(),
            &ksef,
            fixed,
        );
        let path = self.dir.path().join("fleet.toml");
        std::fs::write(&path, &text).unwrap();
        let fleet = Fleet::parse(&text, &path).unwrap();
        let mut o = Ops::new(fleet, Ok(self.keychain.clone())).unwrap();
        o.docker_enabled = false;
        o
    }

    fn store(&self) -> BillingStore {
        BillingStore::open(&self.dir.path().join("console").join("billing-store.sqlite")).unwrap()
    }

    async fn send(&self, o: &Ops) -> KsefSendSummary {
        let mut phases = Vec::new();
        let s = o
            .ksef_send(&self.month.to_string(), None, &mut |p| phases.push(p))
            .await
            .unwrap();
        assert_eq!(
            phases.first().map(|p| p.phase),
            Some(KsefSendPhase::Connecting)
        );
        assert_eq!(phases.last().map(|p| p.phase), Some(KsefSendPhase::Done));
        s
    }
}

fn row<'a>(
    s: &'a KsefSendSummary,
    org: &str,
    kind: KsefInvoiceKind,
) -> &'a mai_wire::ksef::KsefInvoiceRow {
    s.rows
        .iter()
        .find(|r| r.org_id == org && r.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} row of {org}: {:#?}", s.rows))
}

fn xmllint(path: &Path) {
    let xsd =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../mai-billing/schemas/ksef-fa3/schemat.xsd");
    let o = std::process::Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(&xsd)
        .arg(path)
        .output()
        .expect("xmllint (libxml2-utils) is installed by scripts/setup.sh");
    assert!(
        o.status.success(),
        "{}: {}",
        path.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_through_ksef_with_a_correction_a_rejection_and_a_lost_answer() {
    let w = World::new().await;
    let o = w.ops(false);
    o.ksef_token_set(TOKEN.into()).await.unwrap();
    let m = w.month.to_string();

    // 1. The first send: KSeF refuses one invoice (schema check, forced); `broken` cannot
    //    be prepared (no address) and takes no number.
    w.ksef.add_fault(FaultRule::reject_invoices(430, 1));
    let s1 = w.send(&o).await;
    assert_eq!(
        (s1.accepted, s1.rejected, s1.failed, s1.pending, s1.skipped),
        (3, 1, 0, 0, 1),
        "{:#?}",
        s1.rows
    );
    let rejected = s1
        .rows
        .iter()
        .find(|r| r.state == KsefState::Rejected)
        .unwrap()
        .clone();
    let rej = rejected.rejection.clone().unwrap();
    assert_eq!(rej.code, 430);
    assert!(
        rej.fix.contains("schema") && !rej.details.is_empty(),
        "{rej:?}"
    );
    let broken = row(&s1, "broken", KsefInvoiceKind::Vat);
    assert!(broken.number.is_none());
    match &broken.state {
        KsefState::NotIssued { reason } => {
            assert!(reason.contains("address"), "{reason}")
        }
        s => panic!("{s:?}"),
    }
    for r in s1.rows.iter().filter(|r| r.state == KsefState::Accepted) {
        let n = r.ksef_number.as_deref().unwrap();
        assert!(mai_ksef::ksef_number_is_valid(n), "{n}");
        assert!(n.starts_with(&format!("{SELLER_NIP}-")));
        assert!(r.upo_available && r.acquisition_date.is_some());
    }
    assert_eq!(row(&s1, "usco", KsefInvoiceKind::Vat).currency, "USD");
    assert_eq!(row(&s1, "acme", KsefInvoiceKind::Vat).currency, "PLN");

    // 2. A lost answer: the rejected invoice reaches KSeF from an earlier attempt whose
    //    answer never came back (as after a crash between sending and recording).
    let number = rejected.number.clone().unwrap();
    let xml = w.store().xml(&number).unwrap().unwrap();
    let conn = o.ksef_connection().await.unwrap();
    let direct = o.ksef_client(&conn).unwrap();
    let lost = direct
        .send_batch(
            vec![mai_ksef::OutgoingInvoice {
                id: number.clone(),
                xml,
            }],
            |_| {},
        )
        .await
        .unwrap();
    let original = lost[0].1.as_ref().unwrap().ksef_number.clone();

    // 3. The fixed fleet file, sent again: the rejected invoice gets KSeF's 440 naming the
    //    original and is recorded as accepted under it; `broken` is numbered next.
    let o = w.ops(true);
    let s2 = w.send(&o).await;
    assert!(s2.all_accepted(), "{:#?}", s2.rows);
    let again = s2
        .rows
        .iter()
        .find(|r| r.number.as_deref() == Some(number.as_str()))
        .unwrap();
    assert_eq!(again.ksef_number.as_deref(), Some(original.as_str()));
    let history = w.store().history(&number).unwrap();
    assert!(
        history
            .iter()
            .any(|e| e.event == "duplicate" && e.code == Some(440)),
        "{history:#?}"
    );
    assert_eq!(
        row(&s2, "broken", KsefInvoiceKind::Vat).state,
        KsefState::Accepted
    );
    // Gap-free: five VAT numbers, 1..=5, each issued once in KSeF.
    let seq = w
        .store()
        .issued_sequence(
            SELLER_NIP,
            InvoiceKind::Vat,
            mai_core::time::warsaw_today().year(),
        )
        .unwrap();
    assert_eq!(seq, vec![1, 2, 3, 4, 5]);
    let accepted = w.ksef.accepted();
    let mut p2: Vec<&str> = accepted.iter().map(|a| a.invoice_number.as_str()).collect();
    p2.sort();
    p2.dedup();
    assert_eq!(p2.len(), 5, "{p2:?}");
    assert_eq!(accepted.len(), 5);

    // 4. Late usage for acme: the next send of the month is a correction of the original.
    let acme = row(&s2, "acme", KsefInvoiceKind::Vat).clone();
    {
        let mut l = Ledger::open(&w.dir.path().join("console/console-cache.sqlite")).unwrap();
        l.record(&event("acme", "late-1", w.month, 28, "7.5"))
            .unwrap();
    }
    let s3 = w.send(&o).await;
    assert!(s3.all_accepted(), "{:#?}", s3.rows);
    let kor = row(&s3, "acme", KsefInvoiceKind::Kor);
    assert_eq!(kor.state, KsefState::Accepted);
    assert_eq!(kor.corrects_ksef_number, acme.ksef_number);
    assert_eq!(kor.corrects_number, acme.number);
    assert!(kor.gross > Decimal::ZERO);
    let kor_in_ksef: Vec<_> = w
        .ksef
        .accepted()
        .into_iter()
        .filter(|a| a.kind == "KOR")
        .collect();
    assert_eq!(kor_in_ksef.len(), 1);
    assert!(kor_in_ksef[0].xml.contains(&format!(
        "<NrKSeFFaKorygowanej>{}</NrKSeFFaKorygowanej>",
        acme.ksef_number.as_deref().unwrap()
    )));

    // 5. Every accepted XML, as KSeF received it, validates against the FA(3) XSD.
    let xml_dir = w.dir.path().join("accepted");
    std::fs::create_dir_all(&xml_dir).unwrap();
    for (i, a) in w.ksef.accepted().iter().enumerate() {
        let p = xml_dir.join(format!("{i}.xml"));
        std::fs::write(&p, &a.xml).unwrap();
        xmllint(&p);
    }

    // 6. Status agrees; the receipt is written; the PDF prints the KSeF number.
    let status = o.ksef_status(&m).await.unwrap();
    assert_eq!(
        status
            .iter()
            .filter(|r| r.state == KsefState::Accepted)
            .count(),
        6
    );
    let out: PathBuf = w.dir.path().join("out");
    let acme_ksef = acme.ksef_number.clone().unwrap();
    // The receipt of an invoice KSeF accepted on this send (the one accepted through the
    // 440 has its receipt with the earlier send: the message says so).
    let with_upo = status
        .iter()
        .find(|r| r.upo_available && r.kind == KsefInvoiceKind::Vat)
        .unwrap();
    let k = with_upo.ksef_number.clone().unwrap();
    let upo = o.ksef_upo(&m, &k, Some(out.clone())).await.unwrap();
    assert_eq!(upo, out.join(format!("UPO_{k}.xml")));
    let upo_text = std::fs::read_to_string(&upo).unwrap();
    assert!(upo_text.contains(&k), "{upo_text}");
    let e = o
        .ksef_upo(&m, &original, Some(out.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("440") && e.contains("earlier send"), "{e}");
    let e = o
        .ksef_upo(&m, "1234563218-20250826-0100001AF629-AF", Some(out.clone()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no invoice of") && e.contains("invoices status"),
        "{e}"
    );

    let r = o
        .billing_export(
            &InvoiceExportRequest {
                month: m.clone(),
                format: ExportFormat::Pdf,
                client: Some("acme".into()),
                out_dir: Some(out.clone()),
                dialect: Default::default(),
                issue_date: None,
                allow_unconfirmed: None,
            },
            &mut |_| {},
        )
        .await
        .unwrap();
    let pdf = r
        .files
        .iter()
        .find(|f| f.extension().is_some_and(|e| e == "pdf"))
        .unwrap();
    let text = std::process::Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains(&acme_ksef), "{text}");
}
