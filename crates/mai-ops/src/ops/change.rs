//! Changing a client: a markup rate from a day on, the monthly limit, invoice data. Each
//! change is validated field by field ([`plan_change`], pure), then applied where it
//! takes effect without restarting anything, in an order that never leaves it half done:
//!
//! 1. the audit log gets a `started` record (an unwritable log stops the change);
//! 2. the OpenRouter key's cap, when the limit (or today's markup) changes: the key cap
//!    is what enforces the limit, so it goes first; refused → nothing else is changed;
//! 3. the fleet file, the owner of the facts (in place, comments kept,
//!    [`crate::fleet_edit`]); if it cannot be written the key's cap is put back;
//! 4. the tracker's copy of the terms (`PUT /api/v1/admin/terms`), which only prices its
//!    own reports: if it is unreachable the change stands and the report says so (the
//!    console pushes the terms again at its next refresh or sync);
//! 5. the audit log's final record: who, when, old → new.
//!
//! Markup changes are appended to `markup_changes`, never rewriting a day that has
//! been invoiced: a day inside (or before) a month with an issued invoice is refused
//! (the billing store is asked).

use std::str::FromStr;

use chrono::{Datelike, NaiveDate, Utc};
use mai_core::openrouter::{key_hash, OpenRouterClient, SecretKey, UpdateKeyRequest};
use mai_core::pricing::{key_limit_usd, validate_markup, CommercialTerms};
use mai_core::time::YearMonth;
use rust_decimal::Decimal;

use super::{blocking, Ops, OpsError};
use crate::audit::{AuditLog, AuditRecord};
use crate::fleet::{Client, Fleet, FleetError};
use crate::fleet_edit::FleetDoc;
use crate::keys::SecretKind;

pub use mai_wire::change::{
    ApplyState, AuditAction, AuditOutcome, ChangeCheck, ChangeReport, ClientChange, ClientFacts,
    ClientField, FieldChange, FieldError, FieldValue, HistoryEntry, MarkupChange,
};

/// The audit log's name of this action.
pub const ACTION: &str = "client_change";

/// The latest month with an issued invoice of a client, and that invoice's number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoiced {
    pub month: YearMonth,
    pub number: String,
}

/// One edit of the fleet file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    Markup {
        from: NaiveDate,
        rate: Decimal,
    },
    Limit(Option<Decimal>),
    /// An invoice field's new text (`None` removes it).
    Field {
        field: ClientField,
        value: Option<String>,
    },
}

/// A validated change: what to write and what it changes.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangePlan {
    pub edits: Vec<Edit>,
    pub changes: Vec<FieldChange>,
    /// The client's terms after the change (what the tracker gets).
    pub terms: CommercialTerms,
    pub warnings: Vec<String>,
}

impl ChangePlan {
    pub fn terms_changed(&self, before: &CommercialTerms) -> bool {
        &self.terms != before
    }
}

fn err(field: ClientField, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// A decimal as typed (`1,4` is refused: the fleet file writes `1.4`).
fn decimal(field: ClientField, s: &str, example: &str) -> Result<Decimal, FieldError> {
    Decimal::from_str(s.trim()).map_err(|_| {
        err(
            field,
            format!("{s:?} is not a decimal number; write e.g. {example}"),
        )
    })
}

/// Validates `change` against the client as the fleet file has it now. `old` reads a
/// value of the client's entry as the file writes it (for the audit's old → new);
/// `invoiced` is the client's latest invoiced month. Every field is checked, so the
/// errors name each wrong field at once.
pub fn plan_change(
    c: &Client,
    old: &dyn Fn(ClientField) -> Option<String>,
    change: &ClientChange,
    today: NaiveDate,
    invoiced: Option<&Invoiced>,
) -> Result<ChangePlan, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut plan = ChangePlan {
        edits: Vec::new(),
        changes: Vec::new(),
        terms: c.terms.clone(),
        warnings: Vec::new(),
    };
    if let Some(m) = &change.markup {
        let rate = decimal(ClientField::Markup, &m.rate, "\"1.4\" (+40%)").and_then(|r| {
            if r < Decimal::ONE {
                return Err(err(
                    ClientField::Markup,
                    format!(
                        "markup {r} is below 1, which would sell under cost; use e.g. 1.3 (+30%)"
                    ),
                ));
            }
            validate_markup(r).map_err(|_| {
                err(
                    ClientField::Markup,
                    format!("markup {r} is too high; a rate is at most 100 (1.3 is +30%)"),
                )
            })
        });
        let from = NaiveDate::parse_from_str(m.from.trim(), "%Y-%m-%d")
            .map_err(|_| {
                err(
                    ClientField::MarkupFrom,
                    format!("{:?} is not a day; write it as YYYY-MM-DD, e.g. {}", m.from, YearMonth::of(today).next().first_day()),
                )
            })
            .and_then(|d| {
                if !(2000..=2100).contains(&d.year()) {
                    return Err(err(ClientField::MarkupFrom, format!("{d} is not a plausible day")));
                }
                match invoiced {
                    Some(inv) if d <= inv.month.last_day() => Err(err(
                        ClientField::MarkupFrom,
                        format!(
                            "{d} is in or before {}, which is invoiced ({}): an issued invoice is never repriced; choose a day from {} on",
                            inv.month,
                            inv.number,
                            inv.month.next().first_day()
                        ),
                    )),
                    _ => Ok(d),
                }
            });
        match (rate, from) {
            (Ok(rate), Ok(from)) => {
                let before = c.terms.markup.rate_on(from);
                let same_day = c
                    .terms
                    .markup
                    .entries
                    .iter()
                    .any(|e| e.effective_from == from);
                if before == rate && !same_day {
                    errors.push(err(
                        ClientField::Markup,
                        format!("the markup on {from} is already {rate}; nothing to change"),
                    ));
                } else {
                    if from < today {
                        plan.warnings.push(format!(
                            "the new markup applies from {from}, before today: the days {from} to {} (not invoiced yet) are repriced in every view",
                            today.pred_opt().unwrap_or(today)
                        ));
                    }
                    plan.terms.markup.set(from, rate);
                    plan.edits.push(Edit::Markup { from, rate });
                    plan.changes.push(FieldChange {
                        field: ClientField::Markup,
                        old: Some(before.normalize().to_string()),
                        new: Some(format!("{} from {from}", rate.normalize())),
                    });
                }
            }
            (r, f) => {
                errors.extend(r.err());
                errors.extend(f.err());
            }
        }
    }
    if let Some(l) = &change.monthly_limit_usd {
        let t = l.trim();
        let limit = if t.is_empty() || t.eq_ignore_ascii_case("none") {
            Ok(None)
        } else {
            decimal(ClientField::MonthlyLimitUsd, t, "\"200\" or \"none\"").and_then(|v| {
                if v <= Decimal::ZERO {
                    Err(err(
                        ClientField::MonthlyLimitUsd,
                        format!("{v} is not a limit; write a positive amount in USD, or \"none\" for no limit"),
                    ))
                } else if v.normalize().scale() > 2 {
                    Err(err(
                        ClientField::MonthlyLimitUsd,
                        format!("{v} has fractions of a cent; write at most 2 decimals"),
                    ))
                } else if v > Decimal::from(10_000_000) {
                    Err(err(
                        ClientField::MonthlyLimitUsd,
                        format!("{v} USD a month is beyond any plausible limit; check the number"),
                    ))
                } else {
                    Ok(Some(v.normalize()))
                }
            })
        };
        match limit {
            Ok(v) if v == c.terms.monthly_limit_usd => errors.push(err(
                ClientField::MonthlyLimitUsd,
                match v {
                    Some(v) => format!("the monthly limit is already {v} USD; nothing to change"),
                    None => "the client has no monthly limit already; nothing to change".into(),
                },
            )),
            Ok(v) => {
                plan.terms.monthly_limit_usd = v;
                plan.edits.push(Edit::Limit(v));
                plan.changes.push(FieldChange {
                    field: ClientField::MonthlyLimitUsd,
                    old: c.terms.monthly_limit_usd.map(|l| l.normalize().to_string()),
                    new: v.map(|l| l.to_string()),
                });
            }
            Err(e) => errors.push(e),
        }
    }
    let country_after = change
        .invoice
        .iter()
        .find(|f| f.field == ClientField::Country)
        .map(|f| f.value.trim().to_ascii_uppercase())
        .unwrap_or_else(|| c.invoice.country.clone());
    let mut seen = std::collections::HashSet::new();
    for fv in &change.invoice {
        if !seen.insert(fv.field) {
            errors.push(err(
                fv.field,
                format!("{} is given twice; give it once", fv.field),
            ));
            continue;
        }
        match check_invoice_field(fv.field, &fv.value, &country_after) {
            Ok(value) => {
                let before = old(fv.field);
                let same = match (&before, &value) {
                    (Some(a), Some(b)) => a.trim() == b,
                    (None, None) => true,
                    _ => false,
                };
                if !same {
                    plan.edits.push(Edit::Field {
                        field: fv.field,
                        value: value.clone(),
                    });
                    plan.changes.push(FieldChange {
                        field: fv.field,
                        old: before,
                        new: value,
                    });
                }
            }
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    // The key's cap follows today's markup; a rate from a later day changes it then.
    if let (Some(Edit::Markup { from, .. }), Some(limit)) = (
        plan.edits.iter().find(|e| matches!(e, Edit::Markup { .. })),
        plan.terms.monthly_limit_usd,
    ) {
        if *from > today {
            plan.warnings.push(format!(
                "the OpenRouter key's cap is the limit divided by today's markup; from {from} the new markup makes it {}: set the limit again on {from} (`maictl clients set {} --monthly-limit {limit}`) so the cap follows",
                key_limit_usd(&plan.terms, *from).map_or("none".into(), |c| format!("{c} USD")),
                c.id,
            ));
        }
    }
    Ok(plan)
}

/// One invoice field's new value as the fleet file will hold it (`None`: removed), with
/// the fleet file's rules (fleet.example.toml documents each).
fn check_invoice_field(
    field: ClientField,
    value: &str,
    country: &str,
) -> Result<Option<String>, FieldError> {
    let v = value.trim();
    let required = |what: &str| err(field, format!("{what} cannot be empty: invoices need it"));
    let optional = |v: &str| (!v.is_empty()).then(|| v.to_string());
    match field {
        ClientField::LegalName => {
            if v.is_empty() {
                return Err(required("the legal name"));
            }
            if v.chars().count() > 256 {
                return Err(err(field, "the legal name is longer than 256 characters"));
            }
            Ok(Some(v.into()))
        }
        ClientField::Address => {
            if v.is_empty() {
                return Err(required("the address"));
            }
            Ok(Some(v.into()))
        }
        ClientField::AddressLine2 | ClientField::VatId => Ok(optional(v)),
        ClientField::Nip => {
            if v.is_empty() {
                if country == "PL" {
                    return Err(err(
                        field,
                        "a Polish client needs its NIP; a foreign one sets country and vat_id instead",
                    ));
                }
                return Ok(None);
            }
            mai_billing::nip::normalise_nip(v).map_err(|e| {
                err(field, format!("{v:?} is not a valid Polish NIP ({e}); check the digits against the client's documents"))
            })?;
            Ok(Some(v.into()))
        }
        ClientField::Country => {
            let t = v.to_ascii_uppercase();
            if t.len() != 2 || !t.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(err(
                    field,
                    format!("{v:?} is not a 2-letter country code such as PL or DE"),
                ));
            }
            Ok(Some(t))
        }
        ClientField::InvoiceCurrency => match v.to_ascii_uppercase().as_str() {
            "" => Ok(None),
            c @ ("PLN" | "USD") => Ok(Some(c.into())),
            _ => Err(err(
                field,
                format!("{v:?} is not an invoice currency; invoices are issued in PLN or USD"),
            )),
        },
        ClientField::Vat => {
            if v.is_empty() {
                return Ok(None);
            }
            let t = mai_billing::config::VatTreatment::try_from(v.to_string())
                .map_err(|e| err(field, e))?;
            if t == mai_billing::config::VatTreatment::ReverseCharge && country == "PL" {
                return Err(err(
                    field,
                    "reverse charge (np) is for foreign business clients; a Polish client pays 23, 8 or 5",
                ));
            }
            Ok(Some(String::from(t)))
        }
        ClientField::InvoiceLines => match v {
            "" => Ok(None),
            "by_model" | "summary" => Ok(Some(v.into())),
            _ => Err(err(
                field,
                format!("{v:?} is not known; use by_model (one line per model) or summary"),
            )),
        },
        ClientField::HostingEur => {
            if v.is_empty() {
                return Ok(None);
            }
            let d = decimal(field, v, "\"25.00\"")?;
            if d.is_sign_negative() {
                return Err(err(field, "hosting cost cannot be negative"));
            }
            Ok(Some(d.normalize().to_string()))
        }
        ClientField::InvoiceEmail => {
            if v.is_empty() {
                return Ok(None);
            }
            let ok = v.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }) && !v.chars().any(char::is_whitespace);
            if !ok {
                return Err(err(field, format!("{v:?} is not an e-mail address")));
            }
            Ok(Some(v.into()))
        }
        other => Err(err(
            other,
            format!("{other} is not invoice data; change it with its own control"),
        )),
    }
}

/// Which field a fleet-file error after the edit is about: the edited field whose key
/// its message names, else the first edited field.
fn field_of_error(message: &str, plan: &ChangePlan) -> ClientField {
    let named = |f: ClientField| match f {
        ClientField::Markup | ClientField::MarkupFrom => message.contains("markup"),
        ClientField::Nip => message.contains("NIP") || message.contains("nip"),
        ClientField::Vat => message.contains("vat of") || message.contains("VAT"),
        other => message.contains(other.as_str()),
    };
    plan.changes
        .iter()
        .map(|c| c.field)
        .find(|f| named(*f))
        .or_else(|| plan.changes.first().map(|c| c.field))
        .unwrap_or(ClientField::LegalName)
}

/// A value of the client's entry read for the audit (the file's text).
fn fleet_key(f: ClientField) -> &'static str {
    f.as_str()
}

/// The history of one client from the audit log, newest first: one entry per action
/// (its last record: the outcome), a `started` record alone meaning it never finished.
pub fn history_of(records: &[AuditRecord], client: &str) -> Vec<HistoryEntry> {
    let mut out: Vec<HistoryEntry> = Vec::new();
    let mut ops: std::collections::HashMap<String, usize> = Default::default();
    for r in records.iter().filter(|r| r.client == client) {
        let entry = HistoryEntry {
            at: r.at,
            actor: r.actor.clone(),
            action: AuditAction::parse(&r.action),
            outcome: AuditOutcome::parse(&r.outcome).unwrap_or(AuditOutcome::Failed),
            changes: r
                .detail
                .get("changes")
                .and_then(|c| serde_json::from_value(c.clone()).ok())
                .unwrap_or_default(),
            error: r.error.clone(),
        };
        match r.detail.get("op").and_then(|o| o.as_str()) {
            Some(op) => match ops.get(op) {
                Some(&i) => {
                    // The outcome replaces the start, keeping the start's time.
                    let at = out[i].at;
                    out[i] = HistoryEntry { at, ..entry };
                }
                None => {
                    ops.insert(op.to_string(), out.len());
                    out.push(entry);
                }
            },
            None => out.push(entry),
        }
    }
    out.reverse();
    out
}

/// An id tying an action's `started` record to its outcome.
pub(crate) fn op_id() -> String {
    format!(
        "{}-{}-{:08x}",
        Utc::now().format("%Y%m%dT%H%M%S%.6f"),
        std::process::id(),
        rand_u32()
    )
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64);
    h.finish() as u32
}

pub(crate) fn audit_record(
    who: &str,
    action: &str,
    client: &str,
    outcome: AuditOutcome,
    detail: serde_json::Value,
    error: Option<String>,
) -> AuditRecord {
    AuditRecord {
        at: Utc::now(),
        actor: who.to_string(),
        action: action.into(),
        client: client.into(),
        subject_hash: None,
        outcome: outcome.as_str().into(),
        detail,
        error,
    }
}

impl Ops {
    /// The client's latest invoiced month, from the billing store the fleet file names
    /// (none when there is no store yet).
    async fn last_invoiced(&self, fleet: &Fleet, id: &str) -> Result<Option<Invoiced>, OpsError> {
        let store = self
            .billing_overrides
            .store
            .clone()
            .or_else(|| fleet.billing.as_ref().map(|b| b.store.clone()))
            .unwrap_or_else(|| fleet.console.data_dir.join("billing-store.sqlite"));
        if !store.exists() {
            return Ok(None);
        }
        let id = id.to_string();
        let invoices = tokio::task::spawn_blocking(move || {
            mai_billing::store::BillingStore::open(&store)?.invoices_for_org(&id)
        })
        .await
        .map_err(|e| OpsError::Change {
            client: String::new(),
            message: e.to_string(),
        })??;
        Ok(invoices
            .into_iter()
            .max_by_key(|i| i.statement.month)
            .map(|i| Invoiced {
                month: i.statement.month,
                number: i.number,
            }))
    }

    /// Checks a change without applying it: the field errors, or what it would change.
    /// Other failures (the fleet file unreadable, the billing store) are errors.
    pub async fn check_client_change(
        &self,
        id: &str,
        change: &ClientChange,
    ) -> Result<ChangeCheck, OpsError> {
        match self.prepare_change(id, change).await {
            Ok((_, _, plan)) => Ok(ChangeCheck {
                errors: Vec::new(),
                changes: plan.changes,
                warnings: plan.warnings,
            }),
            Err(OpsError::InvalidChange { errors, .. }) => Ok(ChangeCheck {
                errors,
                changes: Vec::new(),
                warnings: Vec::new(),
            }),
            Err(e) => Err(e),
        }
    }

    /// A client's changeable facts as the fleet file has them now (not as this process
    /// loaded it), for the change dialog.
    pub async fn client_facts(&self, id: &str) -> Result<ClientFacts, OpsError> {
        let mut doc = FleetDoc::load(&self.fleet.path)?;
        let fleet =
            Fleet::parse(doc.original(), &self.fleet.path).map_err(|e| OpsError::Change {
                client: id.to_string(),
                message: format!("the fleet file does not parse as it is now: {e}"),
            })?;
        let c = fleet
            .client(id)
            .ok_or_else(|| OpsError::UnknownClient(id.to_string()))?;
        let mut invoice = Vec::new();
        for f in ClientField::INVOICE {
            invoice.push(FieldValue {
                field: f,
                value: doc.value_text(id, fleet_key(f))?.unwrap_or_default(),
            });
        }
        Ok(ClientFacts {
            client_id: id.to_string(),
            terms: c.terms.clone(),
            invoice,
            last_invoiced_month: self
                .last_invoiced(&fleet, id)
                .await?
                .map(|i| i.month.to_string()),
        })
    }

    /// Reads the fleet file as it is now (not as this process loaded it: another console
    /// or maictl may have changed it since), validates, and makes the edited document.
    async fn prepare_change(
        &self,
        id: &str,
        change: &ClientChange,
    ) -> Result<(FleetDoc, Client, ChangePlan), OpsError> {
        if change.is_empty() {
            return Err(OpsError::NothingToChange(id.to_string()));
        }
        let mut doc = FleetDoc::load(&self.fleet.path)?;
        let fleet =
            Fleet::parse(doc.original(), &self.fleet.path).map_err(|e| OpsError::Change {
                client: id.to_string(),
                message: format!(
                    "the fleet file does not parse as it is now, so nothing was changed: {e}"
                ),
            })?;
        let c = fleet
            .client(id)
            .ok_or_else(|| OpsError::UnknownClient(id.to_string()))?
            .clone();
        let invoiced = if change.markup.is_some() {
            self.last_invoiced(&fleet, id).await?
        } else {
            None
        };
        let mut olds = std::collections::HashMap::new();
        for f in ClientField::INVOICE {
            olds.insert(f, doc.value_text(id, fleet_key(f))?);
        }
        let old = |f: ClientField| olds.get(&f).cloned().flatten();
        let plan =
            plan_change(&c, &old, change, self.today(), invoiced.as_ref()).map_err(|errors| {
                OpsError::InvalidChange {
                    client: id.to_string(),
                    errors,
                }
            })?;
        if plan.changes.is_empty() {
            return Err(OpsError::NothingToChange(id.to_string()));
        }
        for e in &plan.edits {
            match e {
                Edit::Markup { from, rate } => {
                    doc.add_markup_change(id, *from, *rate)?;
                }
                Edit::Limit(l) => doc.set_monthly_limit(id, *l)?,
                Edit::Field { field, value } => {
                    doc.set_string(id, fleet_key(*field), value.as_deref())?
                }
            }
        }
        // The edited file must still be a fleet file, with exactly the planned terms.
        let after = Fleet::parse(&doc.text(), &self.fleet.path).map_err(|e| {
            let message = match &e {
                FleetError::Invalid { message, .. } => message.clone(),
                other => other.to_string(),
            };
            OpsError::InvalidChange {
                client: id.to_string(),
                errors: vec![FieldError {
                    field: field_of_error(&message, &plan),
                    message,
                }],
            }
        })?;
        let new_terms = &after.client(id).expect("the id is kept").terms;
        if new_terms != &plan.terms {
            return Err(OpsError::Change {
                client: id.to_string(),
                message: format!(
                    "the edited fleet file would give other terms than planned ({new_terms:?} instead of {:?}); nothing was changed, please report this",
                    plan.terms
                ),
            });
        }
        Ok((doc, c, plan))
    }

    /// Applies a change to a client (module documentation): validated, audited, each
    /// part where it takes effect, nothing half-applied. `who` is recorded as the actor.
    pub async fn change_client(
        &self,
        id: &str,
        change: &ClientChange,
        who: &str,
    ) -> Result<ChangeReport, OpsError> {
        let (doc, before, plan) = self.prepare_change(id, change).await?;
        let log = self.audit_log();
        let op = op_id();
        let detail = |extra: serde_json::Value| {
            let mut d = serde_json::json!({ "op": op, "changes": plan.changes });
            if let (Some(d), Some(e)) = (d.as_object_mut(), extra.as_object()) {
                d.extend(e.clone());
            }
            d
        };
        log.append(&audit_record(
            who,
            ACTION,
            id,
            AuditOutcome::Started,
            detail(serde_json::Value::Null),
            None,
        ))?;
        let fail = |message: String, log: &AuditLog| -> OpsError {
            let _ = log.append(&audit_record(
                who,
                ACTION,
                id,
                AuditOutcome::Failed,
                detail(serde_json::Value::Null),
                Some(message.clone()),
            ));
            OpsError::Change {
                client: id.to_string(),
                message,
            }
        };
        let today = self.today();
        let mut warnings = plan.warnings.clone();
        // 2. The key's cap, the limit's enforcer.
        let cap_before = key_limit_usd(&before.terms, today);
        let cap_after = key_limit_usd(&plan.terms, today);
        let mut openrouter = ApplyState::NotNeeded;
        let mut key = None;
        if cap_before != cap_after {
            let k = match self.client_key_for_cap(id).await {
                Ok(k) => k,
                Err(e) => return Err(fail(e, &log)),
            };
            let patch = UpdateKeyRequest {
                limit: Some(cap_after),
                limit_reset: cap_after.map(|_| "monthly".to_string()),
                ..Default::default()
            };
            if let Err(e) = k.0.keys_update(&k.1, &patch).await {
                return Err(fail(
                    format!(
                        "OpenRouter refused the key's new cap ({}): {e}; nothing was changed (fleet file, tracker and key as they were). Check the management key (`maictl keys set-management`) and retry",
                        cap_after.map_or("none".into(), |c| format!("{c} USD"))
                    ),
                    &log,
                ));
            }
            openrouter = ApplyState::Done;
            key = Some(k);
        }
        // 3. The fleet file.
        if let Err(e) = doc.save() {
            let mut message = format!("{e}");
            if let Some((or, hash)) = &key {
                let undo = UpdateKeyRequest {
                    limit: Some(cap_before),
                    limit_reset: cap_before.map(|_| "monthly".to_string()),
                    ..Default::default()
                };
                match or.keys_update(hash, &undo).await {
                    Ok(_) => message.push_str("; the OpenRouter key's cap was put back"),
                    Err(e2) => message.push_str(&format!(
                        "; putting the OpenRouter key's cap back to {} failed too ({e2}): set it on openrouter.ai",
                        cap_before.map_or("none".into(), |c| format!("{c} USD"))
                    )),
                }
            }
            return Err(fail(message, &log));
        }
        // 4. The tracker's copy of the terms.
        let mut tracker = ApplyState::NotNeeded;
        if plan.terms_changed(&before.terms) {
            let pushed = match self.tracker(id).await {
                Ok(t) => t.put_terms(&plan.terms).await.map_err(OpsError::from),
                Err(e) => Err(e),
            };
            tracker = match pushed {
                Ok(_) => ApplyState::Done,
                Err(e) => {
                    warnings.push(format!(
                        "the tracker did not take the new terms ({e}); the fleet file has them{}, and the console pushes them to the tracker at its next refresh, or now with `maictl sync --client {id}` once it answers. Until then the tracker's own reports use the old terms",
                        if openrouter == ApplyState::Done {
                            " and the OpenRouter key's cap, which enforces the limit, is already set"
                        } else {
                            ""
                        }
                    ));
                    ApplyState::Failed
                }
            };
        }
        let outcome = if tracker == ApplyState::Failed {
            AuditOutcome::Partial
        } else {
            AuditOutcome::Ok
        };
        log.append(&audit_record(
            who,
            ACTION,
            id,
            outcome,
            detail(serde_json::json!({
                "openrouter_key": openrouter,
                "key_limit_usd": cap_after.map(|c| c.to_string()),
                "tracker": tracker,
            })),
            (tracker == ApplyState::Failed).then(|| warnings.last().cloned().unwrap_or_default()),
        ))?;
        tracing::info!(client = %id, who, changes = plan.changes.len(), "client changed");
        Ok(ChangeReport {
            client_id: id.to_string(),
            changes: plan.changes,
            openrouter_key: openrouter,
            key_limit_usd: if openrouter == ApplyState::Done {
                cap_after
            } else {
                None
            },
            fleet_file: ApplyState::Done,
            tracker,
            warnings,
            audit_log: log.path().display().to_string(),
        })
    }

    /// The management API client and the hash of the client's key: the key in the
    /// keychain, else the one the tracker reports using. The error says what to set.
    async fn client_key_for_cap(&self, id: &str) -> Result<(OpenRouterClient, String), String> {
        let kc = self
            .keychain("changing the key's cap")
            .map_err(|e| e.to_string())?
            .clone();
        let kc2 = kc.clone();
        let mgmt = blocking(move || kc2.management_key())
            .await
            .map_err(|e| format!("{e}; nothing was changed"))?;
        let cid = id.to_string();
        let hash = match blocking(move || kc.get(SecretKind::OpenRouter, &cid)).await {
            Ok(k) => key_hash(&k),
            Err(_) => match self.tracker(id).await {
                Ok(t) => match t.status().await {
                    Ok(s) => s.key.hash,
                    Err(e) => {
                        return Err(format!(
                            "the client's OpenRouter key is not in the keychain and its tracker could not say which key it uses ({e}); store the key with `maictl keys set {id}` and retry. Nothing was changed"
                        ))
                    }
                },
                Err(e) => return Err(format!("{e}; nothing was changed")),
            },
        };
        let or = OpenRouterClient::with_http(
            self.http.clone(),
            self.fleet.openrouter.base_url.as_str(),
            SecretKey::new(mgmt),
        )
        .map_err(|e| format!("OpenRouter client setup failed: {e}"))?;
        Ok((or, hash))
    }

    /// This console with the fleet file read again (after a change was written to it):
    /// the same keychain, cache and settings. The console swaps its `Ops` for it.
    pub fn reloaded(&self) -> Result<Ops, OpsError> {
        let fleet = Fleet::load(&self.fleet.path).map_err(|e| OpsError::Change {
            client: String::new(),
            message: format!("the fleet file was changed but cannot be read again: {e}"),
        })?;
        let keychain = match &self.keychain {
            Some(k) => Ok(k.clone()),
            None => Err(crate::keys::KeyError::Unavailable(
                self.keychain_error.clone().unwrap_or_default(),
            )),
        };
        let mut o = Ops::with_cache(fleet, keychain, self.cache.clone());
        o.docker_enabled = self.docker_enabled;
        o.billing_overrides = self.billing_overrides.clone();
        o.today = self.today;
        if let Some(sink) = self.alert_sink() {
            o.set_alert_sink(sink);
        }
        Ok(o)
    }

    /// One client's audit history (changes, image updates, privacy actions), newest first.
    pub fn client_history(&self, id: &str) -> Result<Vec<HistoryEntry>, OpsError> {
        self.client(id)?;
        Ok(history_of(&self.audit_log().read()?, id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const FLEET: &str = r#"
[[hosts]]
name = "local"
docker = "unix:///var/run/docker.sock"

[[clients]]
id = "acme"
legal_name = "ACME Sp. z o.o."
nip = "526-104-08-28"
address = "ul. Prosta 1"
host = "local"
markup = "1.3"
markup_changes = [{ from = 2026-11-16, rate = "1.35" }]
monthly_limit_usd = "500"
tracker_url = "http://127.0.0.1:9001"
tracker_admin_token = "env:X"
"#;

    fn client() -> Client {
        Fleet::parse(FLEET, Path::new("f.toml")).unwrap().clients[0].clone()
    }

    fn day(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn no_old(_: ClientField) -> Option<String> {
        None
    }

    fn fields(e: &[FieldError]) -> Vec<ClientField> {
        e.iter().map(|e| e.field).collect()
    }

    fn markup(rate: &str, from: &str) -> ClientChange {
        ClientChange {
            markup: Some(MarkupChange {
                rate: rate.into(),
                from: from.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_markup_from_a_day_is_appended_and_an_invoiced_month_is_refused() {
        let c = client();
        let p = plan_change(
            &c,
            &no_old,
            &markup("1.4", "2026-12-01"),
            day("2026-11-20"),
            None,
        )
        .unwrap();
        assert_eq!(
            p.terms.markup.rate_on(day("2026-11-30")),
            "1.35".parse().unwrap()
        );
        assert_eq!(
            p.terms.markup.rate_on(day("2026-12-01")),
            "1.4".parse().unwrap()
        );
        assert_eq!(p.changes[0].old.as_deref(), Some("1.35"));
        assert_eq!(p.changes[0].new.as_deref(), Some("1.4 from 2026-12-01"));
        let inv = Invoiced {
            month: YearMonth::new(2026, 11).unwrap(),
            number: "FV/2026/12/0001".into(),
        };
        for d in ["2026-11-30", "2026-10-01"] {
            let e = plan_change(
                &c,
                &no_old,
                &markup("1.4", d),
                day("2026-12-05"),
                Some(&inv),
            )
            .unwrap_err();
            assert_eq!(fields(&e), [ClientField::MarkupFrom]);
            assert!(
                e[0].message.contains("2026-11")
                    && e[0].message.contains("FV/2026/12/0001")
                    && e[0].message.contains("2026-12-01"),
                "{}",
                e[0].message
            );
        }
        // After the invoiced month (even before today): accepted, with a warning.
        let p = plan_change(
            &c,
            &no_old,
            &markup("1.4", "2026-12-01"),
            day("2026-12-05"),
            Some(&inv),
        )
        .unwrap();
        assert!(p.warnings[0].contains("repriced"), "{:?}", p.warnings);
    }

    #[test]
    fn every_wrong_field_is_named_at_once() {
        let c = client();
        let change = ClientChange {
            markup: Some(MarkupChange {
                rate: "0.9".into(),
                from: "2026-13-01".into(),
            }),
            monthly_limit_usd: Some("12.345".into()),
            invoice: vec![
                FieldValue {
                    field: ClientField::Nip,
                    value: "526-104-08-29".into(),
                },
                FieldValue {
                    field: ClientField::InvoiceCurrency,
                    value: "EUR".into(),
                },
                FieldValue {
                    field: ClientField::Vat,
                    value: "np".into(),
                },
                FieldValue {
                    field: ClientField::InvoiceEmail,
                    value: "faktury at acme".into(),
                },
                FieldValue {
                    field: ClientField::LegalName,
                    value: " ".into(),
                },
            ],
        };
        let e = plan_change(&c, &no_old, &change, day("2026-11-20"), None).unwrap_err();
        assert_eq!(
            fields(&e),
            [
                ClientField::Markup,
                ClientField::MarkupFrom,
                ClientField::MonthlyLimitUsd,
                ClientField::Nip,
                ClientField::InvoiceCurrency,
                ClientField::Vat,
                ClientField::InvoiceEmail,
                ClientField::LegalName,
            ],
            "{e:#?}"
        );
        let e2 = plan_change(
            &c,
            &no_old,
            &ClientChange {
                invoice: vec![FieldValue {
                    field: ClientField::Country,
                    value: "Polska".into(),
                }],
                ..Default::default()
            },
            day("2026-11-20"),
            None,
        )
        .unwrap_err();
        assert!(e2[0].message.contains("2-letter"), "{e2:?}");
        assert!(e[0].message.contains("below 1"));
        assert!(e[3].message.contains("NIP"));
        assert!(e[5].message.contains("reverse charge"));
    }

    #[test]
    fn limits_are_exact_and_unchanged_values_are_not_changes() {
        let c = client();
        let lim = |s: &str| ClientChange {
            monthly_limit_usd: Some(s.into()),
            ..Default::default()
        };
        let p = plan_change(&c, &no_old, &lim("200.50"), day("2026-11-20"), None).unwrap();
        assert_eq!(p.terms.monthly_limit_usd, Some("200.5".parse().unwrap()));
        assert_eq!(p.changes[0].old.as_deref(), Some("500"));
        assert_eq!(p.changes[0].new.as_deref(), Some("200.5"));
        let p = plan_change(&c, &no_old, &lim("none"), day("2026-11-20"), None).unwrap();
        assert_eq!(p.terms.monthly_limit_usd, None);
        for bad in ["0", "-5", "1,5", "500"] {
            let e = plan_change(&c, &no_old, &lim(bad), day("2026-11-20"), None).unwrap_err();
            assert_eq!(fields(&e), [ClientField::MonthlyLimitUsd], "{bad}");
        }
        // A foreign client: country, VAT id and reverse charge together, NIP removed.
        let old = |f: ClientField| (f == ClientField::Nip).then(|| "526-104-08-28".to_string());
        let p = plan_change(
            &c,
            &old,
            &ClientChange {
                invoice: vec![
                    FieldValue {
                        field: ClientField::Country,
                        value: "de".into(),
                    },
                    FieldValue {
                        field: ClientField::VatId,
                        value: "DE123456789".into(),
                    },
                    FieldValue {
                        field: ClientField::Vat,
                        value: "np".into(),
                    },
                    FieldValue {
                        field: ClientField::Nip,
                        value: "".into(),
                    },
                    FieldValue {
                        field: ClientField::AddressLine2,
                        value: "".into(),
                    },
                ],
                ..Default::default()
            },
            day("2026-11-20"),
            None,
        )
        .unwrap();
        // address_line2 was absent and stays absent: not a change.
        assert_eq!(p.changes.len(), 4, "{:?}", p.changes);
        assert_eq!(p.changes[0].new.as_deref(), Some("DE"));
        assert_eq!(
            p.changes[3],
            FieldChange {
                field: ClientField::Nip,
                old: Some("526-104-08-28".into()),
                new: None
            }
        );
    }

    #[test]
    fn history_pairs_each_start_with_its_outcome_newest_first() {
        let rec = |op: Option<&str>, outcome: AuditOutcome, action: &str| {
            let mut r = audit_record(
                "anna",
                action,
                "acme",
                outcome,
                match op {
                    Some(op) => {
                        serde_json::json!({"op": op, "changes": [{"field": "markup", "old": "1.3", "new": "1.4 from 2026-12-01"}]})
                    }
                    None => serde_json::json!({"events": 3}),
                },
                None,
            );
            r.at = "2026-11-20T10:00:00Z".parse().unwrap();
            r
        };
        let mut other = rec(Some("x"), AuditOutcome::Ok, ACTION);
        other.client = "other".into();
        let h = history_of(
            &[
                rec(Some("a"), AuditOutcome::Started, ACTION),
                rec(Some("a"), AuditOutcome::Ok, ACTION),
                rec(None, AuditOutcome::Ok, "privacy_erase"),
                rec(Some("b"), AuditOutcome::Started, ACTION),
                other,
            ],
            "acme",
        );
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].outcome, AuditOutcome::Started, "never finished");
        assert_eq!(h[1].action, AuditAction::PrivacyErase);
        assert_eq!(h[2].outcome, AuditOutcome::Ok);
        assert_eq!(h[2].changes[0].field, ClientField::Markup);
    }
}
