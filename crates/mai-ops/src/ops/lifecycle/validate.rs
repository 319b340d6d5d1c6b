//! The onboarding form, checked field by field before anything is created: each
//! problem is a [`FieldError`] naming the field (`client.nip`) and what to write, so the
//! console shows it next to the field and maictl next to its flag. The rules are the
//! fleet file's own (NIP checksum from mai-billing, currencies, VAT treatments, markup),
//! and the finished entry is parsed again by [`crate::fleet::Fleet::parse`] before it is
//! written.

use std::net::IpAddr;
use std::str::FromStr;

use mai_billing::config::VatTreatment;
use mai_core::money::Currency;
use mai_core::pricing::{validate_markup, CommercialTerms, MarkupSchedule, DEFAULT_MARKUP};
use rust_decimal::Decimal;

use super::{FieldError, OnboardRequest, DEFAULT_CHAT_IMAGE, DEFAULT_TRACKER_IMAGE};
use crate::fleet::{DockerEndpoint, Fleet, Host};

/// An onboarding request that passed every check, in the forms the steps use.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub id: String,
    pub legal_name: String,
    pub terms: CommercialTerms,
    /// The `[[clients]]` entry's invoice keys, normalised (`nip` without dashes,
    /// `country` in capitals), in the order they are written.
    pub invoice_fields: Vec<(&'static str, String)>,
    pub host: Host,
    pub tracker_port: u16,
    pub chat_port: u16,
    pub publish_address: IpAddr,
    pub chat_image: String,
    pub tracker_image: String,
    pub signed_identity: bool,
    pub tracker_openrouter_url: url::Url,
    /// How the console will reach the tracker (the fleet entry's `tracker_url`):
    /// `https://` when [`Self::tracker_tls`].
    pub tracker_url: url::Url,
    /// The tracker serves HTTPS with a certificate onboarding makes and pins: its port
    /// is reachable off this machine (a remote host, a non-loopback address, a swarm).
    pub tracker_tls: bool,
    /// Where the chat app is published.
    pub chat_url: url::Url,
    /// Swarm placement constraints (a swarm host only), trimmed.
    pub placement: Vec<String>,
}

fn trimmed(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn http_url(addr: IpAddr, port: u16) -> url::Url {
    url_of("http", addr, port)
}

fn url_of(scheme: &str, addr: IpAddr, port: u16) -> url::Url {
    let host = match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    };
    url::Url::parse(&format!("{scheme}://{host}:{port}")).expect("an address and a port")
}

/// Checks `req` against the fleet it will join. Every problem is reported, not only the
/// first.
pub fn validate(req: &OnboardRequest, fleet: &Fleet) -> Result<ValidRequest, Vec<FieldError>> {
    let mut errs = Vec::new();
    let mut bad = |field: &str, message: String| {
        errs.push(FieldError {
            field: field.to_string(),
            message,
        })
    };
    let c = &req.client;
    let d = &req.deploy;

    let id = c.id.trim().to_string();
    if id.is_empty() {
        bad(
            "client.id",
            "required: a short id such as \"acme\" (letters, digits, '-' or '_')".into(),
        );
    } else if !id
        .chars()
        .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
        || id.len() > 40
    {
        bad(
            "client.id",
            format!("{id:?} must be at most 40 ASCII letters, digits, '-' or '_' (it names the client's containers, keychain entries and invoices)"),
        );
    } else if let Some(existing) = fleet.client(&id) {
        bad(
            "client.id",
            match existing.offboarded {
                Some(day) => format!("{id:?} belonged to a client offboarded on {day}, kept for its invoices; choose another id"),
                None => format!("{id:?} is already a client in {}; choose another id", fleet.path.display()),
            },
        );
    }
    let legal_name = c.legal_name.trim().to_string();
    if legal_name.is_empty() {
        bad(
            "client.legal_name",
            "required: the buyer's name as invoices show it".into(),
        );
    }
    let country = match trimmed(&c.country) {
        None => "PL".to_string(),
        Some(t) => {
            let t = t.to_ascii_uppercase();
            if t.len() != 2 || !t.bytes().all(|b| b.is_ascii_alphabetic()) {
                bad(
                    "client.country",
                    format!("{t:?} is not a two-letter country code such as PL or DE"),
                );
            }
            t
        }
    };
    let nip = match trimmed(&c.nip) {
        Some(n) => match mai_billing::nip::normalise_nip(n) {
            Ok(n) => Some(n),
            Err(e) => {
                bad("client.nip", e.to_string());
                None
            }
        },
        None => {
            if country == "PL" {
                bad("client.nip", "required for a Polish client: its NIP, 10 digits with a check digit (dashes allowed)".into());
            }
            None
        }
    };
    let vat_id = trimmed(&c.vat_id).map(str::to_string);
    if country != "PL" && vat_id.is_none() && nip.is_none() {
        bad(
            "client.vat_id",
            format!("required for a client in {country}: its VAT id, e.g. DE123456789"),
        );
    }
    let address = c.address.trim().to_string();
    if address.is_empty() {
        bad(
            "client.address",
            "required: street and number (the postal code and city go in the second line)".into(),
        );
    }
    let currency = match trimmed(&c.invoice_currency).map(str::to_ascii_uppercase) {
        None => Currency::Pln,
        Some(t) => match Currency::from_str(&t) {
            Ok(cur @ (Currency::Pln | Currency::Usd)) => cur,
            _ => {
                bad(
                    "client.invoice_currency",
                    format!("{t:?} is not an invoice currency; use PLN or USD"),
                );
                Currency::Pln
            }
        },
    };
    let vat = match trimmed(&c.vat) {
        None => VatTreatment::default(),
        Some(v) => match VatTreatment::try_from(v.to_string()) {
            Ok(VatTreatment::ReverseCharge) if country == "PL" => {
                bad("client.vat", "np (reverse charge) is for foreign business clients; a Polish client pays 23, 8 or 5".into());
                VatTreatment::default()
            }
            Ok(t) => t,
            Err(e) => {
                bad("client.vat", e);
                VatTreatment::default()
            }
        },
    };
    let email = trimmed(&c.invoice_email).map(str::to_string);
    if let Some(e) = &email {
        let ok = e.split_once('@').is_some_and(|(a, b)| {
            !a.is_empty() && b.contains('.') && !e.contains(char::is_whitespace)
        });
        if !ok {
            bad(
                "client.invoice_email",
                format!("{e:?} is not an e-mail address"),
            );
        }
    }
    let decimal = |s: &str| Decimal::from_str(s.trim()).ok();
    let markup = match trimmed(&c.markup) {
        None => DEFAULT_MARKUP,
        Some(m) => match decimal(m) {
            Some(r) if r < Decimal::ONE => {
                bad(
                    "client.markup",
                    format!("{r} is below 1, which would sell under cost; e.g. 1.3"),
                );
                DEFAULT_MARKUP
            }
            Some(r) => match validate_markup(r) {
                Ok(r) => r,
                Err(e) => {
                    bad("client.markup", e.to_string());
                    DEFAULT_MARKUP
                }
            },
            None => {
                bad(
                    "client.markup",
                    format!("{m:?} is not a decimal number; write e.g. 1.3"),
                );
                DEFAULT_MARKUP
            }
        },
    };
    let limit = match trimmed(&c.monthly_limit_usd) {
        None => None,
        Some(l) => match decimal(l) {
            Some(v) if v > Decimal::ZERO => Some(v),
            Some(_) => {
                bad(
                    "client.monthly_limit_usd",
                    "must be positive; leave it empty for no limit".into(),
                );
                None
            }
            None => {
                bad(
                    "client.monthly_limit_usd",
                    format!("{l:?} is not an amount in USD; write e.g. 500"),
                );
                None
            }
        },
    };

    let host = match fleet.host(d.host.trim()) {
        Some(h) => Some(h.clone()),
        None => {
            let names: Vec<&str> = fleet.hosts.iter().map(|h| h.name.as_str()).collect();
            bad(
                "deploy.host",
                if d.host.trim().is_empty() {
                    format!(
                        "required: one of the fleet file's hosts ({})",
                        names.join(", ")
                    )
                } else {
                    format!(
                        "{:?} is not a host of the fleet file; use one of: {}",
                        d.host,
                        names.join(", ")
                    )
                },
            );
            None
        }
    };
    for (field, port) in [
        ("deploy.tracker_port", d.tracker_port),
        ("deploy.chat_port", d.chat_port),
    ] {
        if port == 0 {
            bad(field, "required: a free port on the host (1-65535)".into());
        }
    }
    if d.tracker_port != 0 && d.tracker_port == d.chat_port {
        bad(
            "deploy.chat_port",
            format!(
                "{} is also the tracker's port; each needs its own",
                d.chat_port
            ),
        );
    }
    let publish_address = match trimmed(&d.publish_address) {
        None => IpAddr::from([127, 0, 0, 1]),
        Some(a) => match a.trim_matches(['[', ']']).parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => {
                bad(
                    "deploy.publish_address",
                    format!("{a:?} is not an IP address; e.g. 127.0.0.1"),
                );
                IpAddr::from([127, 0, 0, 1])
            }
        },
    };
    // A tracker the console reaches on this machine's loopback (the local engine, a
    // loopback address, a plain host) serves plain HTTP as before; any other is reached
    // only over HTTPS with the certificate onboarding makes and pins (invariant 27).
    let mut tracker_tls = false;
    if let Some(h) = &host {
        let local = matches!(h.docker, DockerEndpoint::Unix { .. });
        if !local && trimmed(&d.publish_address).is_none() {
            bad(
                "deploy.publish_address",
                format!(
                    "required for host {:?} (reached over {}): the host's IP address where the console reaches the tracker (over HTTPS) and users the chat app, e.g. 10.0.0.5",
                    h.name, h.docker
                ),
            );
        }
        if publish_address.is_unspecified() {
            bad(
                "deploy.publish_address",
                format!("{publish_address} is every address of the host, not one the console can reach; give the host's own address, e.g. 10.0.0.5 (or 127.0.0.1 for this machine only)"),
            );
        }
        tracker_tls =
            !local || !publish_address.is_loopback() || h.mode == crate::fleet::HostMode::Swarm;
    }
    // Placement applies to Swarm services only; each constraint as the fleet file checks it.
    let placement: Vec<String> = d
        .placement
        .iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    if let Some(h) = &host {
        if !placement.is_empty() && h.mode != crate::fleet::HostMode::Swarm {
            bad(
                "deploy.placement",
                format!(
                    "host {:?} is not a Swarm manager (mode = \"plain\"); placement constraints apply only to a host with mode = \"swarm\": leave placement empty or choose a swarm host",
                    h.name
                ),
            );
        }
    }
    for p in &placement {
        if let Err(e) = crate::fleet::check_placement(p) {
            bad("deploy.placement", e);
        }
    }
    let image =
        |field: &str, v: &Option<String>, default: &str, bad: &mut dyn FnMut(&str, String)| {
            let i = trimmed(v).unwrap_or(default).to_string();
            if i.contains(char::is_whitespace) {
                bad(
                    field,
                    format!("{i:?} is not an image reference (no spaces); e.g. {default}"),
                );
            }
            i
        };
    let chat_image = image(
        "deploy.chat_image",
        &d.chat_image,
        DEFAULT_CHAT_IMAGE,
        &mut bad,
    );
    let tracker_image = image(
        "deploy.tracker_image",
        &d.tracker_image,
        DEFAULT_TRACKER_IMAGE,
        &mut bad,
    );
    let tracker_openrouter_url = match trimmed(&d.tracker_openrouter_url) {
        None => fleet.openrouter.base_url.clone(),
        Some(u) => match url::Url::parse(u) {
            Ok(u) if u.scheme() == "http" || u.scheme() == "https" => u,
            _ => {
                bad(
                    "deploy.tracker_openrouter_url",
                    format!("{u:?} is not an http(s) URL; e.g. https://openrouter.ai/api/v1"),
                );
                fleet.openrouter.base_url.clone()
            }
        },
    };

    if !errs.is_empty() {
        return Err(errs);
    }
    let mut invoice_fields = Vec::new();
    if let Some(n) = nip {
        invoice_fields.push(("nip", n));
    }
    if let Some(v) = vat_id {
        invoice_fields.push(("vat_id", v));
    }
    invoice_fields.push(("address", address));
    if let Some(a) = trimmed(&c.address_line2) {
        invoice_fields.push(("address_line2", a.to_string()));
    }
    invoice_fields.push(("country", country));
    invoice_fields.push(("invoice_currency", currency.code().to_string()));
    invoice_fields.push(("vat", String::from(vat)));
    if let Some(e) = email {
        invoice_fields.push(("invoice_email", e));
    }
    Ok(ValidRequest {
        id,
        legal_name,
        terms: CommercialTerms {
            markup: MarkupSchedule::flat(markup),
            monthly_limit_usd: limit,
        },
        invoice_fields,
        host: host.expect("checked above"),
        tracker_port: d.tracker_port,
        chat_port: d.chat_port,
        publish_address,
        chat_image,
        tracker_image,
        signed_identity: d.signed_identity,
        tracker_openrouter_url,
        tracker_url: url_of(
            if tracker_tls { "https" } else { "http" },
            publish_address,
            d.tracker_port,
        ),
        tracker_tls,
        chat_url: http_url(publish_address, d.chat_port),
        placement,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mai_wire::lifecycle::{Deployment, NewClient};
    use std::path::Path;

    fn fleet() -> Fleet {
        Fleet::parse(
            r#"
[[hosts]]
name = "local"
docker = "unix:///var/run/docker.sock"

[[hosts]]
name = "hel1"
docker = "ssh://deploy@hel1"

[[clients]]
id = "acme"
legal_name = "ACME"
nip = "5261040828"
address = "ul. Prosta 1"
host = "local"
tracker_url = "http://127.0.0.1:9001"
tracker_admin_token = "env:A"
tracker_read_token = "env:R"
offboarded = "2026-10-31"
"#,
            Path::new("/etc/mai/fleet.toml"),
        )
        .unwrap()
    }

    fn good() -> OnboardRequest {
        OnboardRequest {
            client: NewClient {
                id: "kowalski".into(),
                legal_name: "Kancelaria Kowalski sp.k.".into(),
                nip: Some("701-000-21-39".into()),
                address: "ul. Marszałkowska 10".into(),
                address_line2: Some("00-590 Warszawa".into()),
                markup: Some("1.25".into()),
                monthly_limit_usd: Some("300".into()),
                ..Default::default()
            },
            deploy: Deployment {
                host: "local".into(),
                tracker_port: 18100,
                chat_port: 18101,
                ..Default::default()
            },
        }
    }

    fn fields(r: Result<ValidRequest, Vec<FieldError>>) -> Vec<(String, String)> {
        r.unwrap_err()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    #[test]
    fn a_good_request_is_normalised() {
        let v = validate(&good(), &fleet()).unwrap();
        assert_eq!(v.invoice_fields[0], ("nip", "7010002139".to_string()));
        assert!(v.invoice_fields.contains(&("country", "PL".to_string())));
        assert!(v.invoice_fields.contains(&("vat", "23".to_string())));
        assert_eq!(v.terms.monthly_limit_usd, Some(Decimal::from(300)));
        assert_eq!(v.tracker_url.as_str(), "http://127.0.0.1:18100/");
        assert_eq!(v.chat_image, DEFAULT_CHAT_IMAGE);
        assert!(v.signed_identity);
    }

    #[test]
    fn every_bad_field_is_named_with_what_to_write() {
        let mut r = good();
        r.client.id = "acme".into();
        r.client.nip = Some("701-000-21-38".into());
        r.client.markup = Some("0.9".into());
        r.client.monthly_limit_usd = Some("lots".into());
        r.client.invoice_currency = Some("EUR".into());
        r.client.vat = Some("np".into());
        r.client.address = " ".into();
        r.deploy.chat_port = 18100;
        let e = fields(validate(&r, &fleet()));
        let names: Vec<&str> = e.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            names,
            [
                "client.id",
                "client.nip",
                "client.address",
                "client.invoice_currency",
                "client.vat",
                "client.markup",
                "client.monthly_limit_usd",
                "deploy.chat_port"
            ]
        );
        assert!(e[0].1.contains("offboarded on 2026-10-31"), "{}", e[0].1);
        assert!(e[1].1.contains("check digit"), "{}", e[1].1);
        assert!(e[5].1.contains("below 1"), "{}", e[5].1);
    }

    #[test]
    fn a_tracker_off_loopback_is_reached_over_https() {
        // Loopback on the local engine: plain HTTP as before.
        let v = validate(&good(), &fleet()).unwrap();
        assert!(!v.tracker_tls);
        assert_eq!(v.tracker_url.scheme(), "http");
        // A remote host needs the address the console reaches it on.
        let mut r = good();
        r.deploy.host = "hel1".into();
        r.deploy.publish_address = None;
        let e = fields(validate(&r, &fleet()));
        assert_eq!(e[0].0, "deploy.publish_address");
        assert!(e[0].1.contains("required for host \"hel1\""), "{}", e[0].1);
        assert!(e[0].1.contains("ssh://deploy@hel1"), "{}", e[0].1);
        r.deploy.publish_address = Some("10.0.0.5".into());
        let v = validate(&r, &fleet()).unwrap();
        assert!(v.tracker_tls);
        assert_eq!(
            v.tracker_url.as_str(),
            format!("https://10.0.0.5:{}/", r.deploy.tracker_port)
        );
        assert_eq!(v.chat_url.scheme(), "http");
        // A non-loopback address on the local engine: HTTPS too.
        let mut r = good();
        r.deploy.publish_address = Some("172.17.0.1".into());
        assert!(validate(&r, &fleet()).unwrap().tracker_tls);
        // Every address is none the console can use.
        let mut r = good();
        r.deploy.publish_address = Some("0.0.0.0".into());
        let e = fields(validate(&r, &fleet()));
        assert_eq!(e[0].0, "deploy.publish_address");
        assert!(e[0].1.contains("every address"), "{}", e[0].1);
        let mut r = good();
        r.deploy.host = "nowhere".into();
        assert!(fields(validate(&r, &fleet()))[0].1.contains("local, hel1"));
    }

    #[test]
    fn a_foreign_client_needs_a_vat_id_and_may_use_reverse_charge() {
        let mut r = good();
        r.client.nip = None;
        r.client.country = Some("de".into());
        r.client.vat = Some("np".into());
        r.client.invoice_currency = Some("usd".into());
        let e = fields(validate(&r, &fleet()));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "client.vat_id");
        r.client.vat_id = Some("DE123456789".into());
        let v = validate(&r, &fleet()).unwrap();
        assert!(v.invoice_fields.contains(&("country", "DE".to_string())));
        assert!(v.invoice_fields.contains(&("vat", "np".to_string())));
        assert!(v
            .invoice_fields
            .contains(&("invoice_currency", "USD".to_string())));
    }
}
