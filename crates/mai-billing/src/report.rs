//! A month's billing across clients, and issuing its invoices (sync: ledger + store).
//!
//! Open month → provisional numbers. Closed month → a client with an issued invoice shows
//! the frozen invoice; usage that reached the ledger later is reported as `late_usage_usd`
//! and billed as a carry-over line on the client's next invoice.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Days, NaiveDate};
use mai_core::ledger::Ledger;
use mai_core::money::Currency;
use mai_core::nbp::InvoiceRate;
use mai_core::pricing::MarkupSchedule;
use mai_core::time::YearMonth;
use mai_core::usage::Totals;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::compute::{price, CarryOver, ModelUsage, PriceInput, SegmentUsage, Statement};
use crate::config::{BillingConfig, ClientBilling};
use crate::fees::{byok_share, client_profit, margin_percent, ClientProfit};
use crate::numbering::NumberFormat;
use crate::store::{BillingStore, IssuedInvoice, NewInvoice};
use crate::BillingError;

/// The NBP rates a month is converted at (both of the invoice kind: table A).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceRates {
    pub usd: InvoiceRate,
    pub eur: Option<InvoiceRate>,
}

/// A row's status is shown by the console as it is, so it is the IPC enum (defined once
/// in mai-wire as `BillingStatus`).
pub use mai_wire::console::BillingStatus as RowStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRow {
    pub org_id: String,
    pub name: Option<String>,
    pub configured: bool,
    pub currency: Currency,
    pub status: RowStatus,
    pub invoice_number: Option<String>,
    /// The month's usage as the ledger has it now.
    pub usage: Totals,
    /// The invoice (frozen if issued), or `None` when no NBP rate is available.
    pub statement: Option<Statement>,
    /// Ledger now minus what the issued invoices billed for this month (USD, exact).
    /// Positive: goes onto the next invoice. Negative: needs a correction invoice.
    #[serde(with = "rust_decimal::serde::str")]
    pub late_usage_usd: Decimal,
    /// What an invoice still lacks.
    pub missing: Vec<String>,
    /// Fees, profit after fees and margins (with the statement; `None` without one).
    #[serde(default)]
    pub profit: Option<ClientProfit>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotals {
    pub currency: Option<Currency>,
    #[serde(with = "rust_decimal::serde::str")]
    pub net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub gross: Decimal,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportTotals {
    pub clients: usize,
    pub requests: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub client_net_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub net_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub gross_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub hosting_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub late_usage_usd: Decimal,
    pub by_currency: Vec<CurrencyTotals>,
    /// OpenRouter fees of the rows (see [`crate::fees`]); `profit_usd` / `profit_pln`
    /// above are before them.
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub fees_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_after_fees_usd: Decimal,
    /// What the month earned once OpenRouter's fees are paid (what reaches the bank,
    /// bar the card's FX spread).
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_after_fees_pln: Decimal,
    /// profit_pln / net_pln × 100 (0.01); `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub margin_before_fees_percent: Option<Decimal>,
    /// profit_after_fees_pln / net_pln × 100 (0.01); `None` for a zero net.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub effective_margin_percent: Option<Decimal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthReport {
    pub month: YearMonth,
    pub today: NaiveDate,
    /// The month has not ended (Warsaw): everything is provisional.
    pub provisional: bool,
    pub rates: Option<InvoiceRates>,
    /// Why there are no PLN figures for rows that are not frozen.
    pub rate_error: Option<String>,
    pub clients: Vec<ClientRow>,
    /// Sums over rows that have a statement.
    pub totals: ReportTotals,
    /// How the month's OpenRouter fees were computed (which purchases, which rate).
    pub fees_basis: String,
    /// The last day to issue this month's invoices (VAT Act art. 106i ust. 1).
    pub issue_deadline: NaiveDate,
    /// Set when invoices are still to be issued and the deadline is near or past.
    pub deadline_warning: Option<String>,
}

/// The console's view of the report (what its Billing view shows), made here so that a
/// change of the report meets its one IPC shape at compile time.
impl From<&MonthReport> for mai_wire::console::BillingReport {
    fn from(r: &MonthReport) -> Self {
        use mai_wire::console::{BillingReport, BillingRow, BillingTotals, TableARate};
        let t = &r.totals;
        BillingReport {
            month: r.month.to_string(),
            today: r.today,
            provisional: r.provisional,
            usd_rate: r.rates.as_ref().map(|rates| TableARate {
                mid: rates.usd.mid,
                table_no: rates.usd.table_no.clone(),
                effective_date: rates.usd.effective_date,
            }),
            rate_error: r.rate_error.clone(),
            clients: r
                .clients
                .iter()
                .map(|c| BillingRow {
                    org_id: c.org_id.clone(),
                    name: c.name.clone(),
                    status: c.status,
                    invoice_number: c.invoice_number.clone(),
                    requests: c.usage.requests,
                    raw_cost_usd: c.usage.cost_usd,
                    late_usage_usd: c.late_usage_usd,
                    missing: c.missing.clone(),
                })
                .collect(),
            totals: BillingTotals {
                requests: t.requests,
                raw_cost_usd: t.raw_cost_usd,
                client_net_usd: t.client_net_usd,
                profit_usd: t.profit_usd,
                net_pln: t.net_pln,
                vat_pln: t.vat_pln,
                gross_pln: t.gross_pln,
                profit_pln: t.profit_pln,
                late_usage_usd: t.late_usage_usd,
            },
        }
    }
}

/// The date the invoice rate is taken for when looking at `month` on `today`: the
/// month's last day, or today while the month is still running (provisional).
pub fn rate_reference_for_report(month: YearMonth, today: NaiveDate) -> NaiveDate {
    month.last_day().min(today)
}

/// Reads one org's month from the ledger, split by markup segment (of `schedule`, the
/// fleet file's) and model.
pub fn read_month(
    ledger: &Ledger,
    org: &str,
    month: YearMonth,
    schedule: &MarkupSchedule,
) -> Result<Vec<SegmentUsage>, BillingError> {
    let daily = ledger.daily(org, month.first_day(), month.last_day())?;
    let mut out = Vec::new();
    let segments = mai_core::pricing::price_days(schedule, &daily)
        .map_err(mai_core::ledger::LedgerError::from)?;
    for seg in segments {
        let models = ledger
            .by_model(org, seg.from, seg.to)?
            .into_iter()
            .map(|m| ModelUsage {
                model: m.model,
                totals: m.totals,
            })
            .collect();
        out.push(SegmentUsage {
            from: seg.from,
            to: seg.to,
            markup: seg.rate,
            models,
        });
    }
    Ok(out)
}

/// What the org's issued invoices billed per usage month: (raw USD, requests, numbers).
fn billed_by_month(invoices: &[IssuedInvoice]) -> BTreeMap<YearMonth, (Decimal, u64, Vec<String>)> {
    let mut out: BTreeMap<YearMonth, (Decimal, u64, Vec<String>)> = BTreeMap::new();
    for inv in invoices {
        // A month is "invoiced" once its own invoice exists, even if it had no lines.
        out.entry(inv.statement.month)
            .or_insert_with(|| (Decimal::ZERO, 0, Vec::new()));
        for l in &inv.statement.lines {
            let e = out
                .entry(l.usage_month)
                .or_insert_with(|| (Decimal::ZERO, 0, Vec::new()));
            e.0 += l.raw_cost_usd;
            e.1 += l.requests;
            if !e.2.contains(&inv.number) {
                e.2.push(inv.number.clone());
            }
        }
    }
    out
}

/// Late usage of invoiced months before `before`, to bill on the next invoice.
pub fn carry_overs(
    ledger: &Ledger,
    org: &str,
    invoices: &[IssuedInvoice],
    before: YearMonth,
    schedule: &MarkupSchedule,
) -> Result<Vec<CarryOver>, BillingError> {
    let mut out = Vec::new();
    for (m, (billed, billed_req, numbers)) in billed_by_month(invoices) {
        if m >= before {
            continue;
        }
        let now = ledger.range(org, m.first_day(), m.last_day())?;
        let delta = now.cost_usd - billed;
        if delta > Decimal::ZERO {
            out.push(CarryOver {
                month: m,
                raw_cost_usd: delta.normalize(),
                markup: schedule.rate_on(m.last_day()),
                requests: now.requests.saturating_sub(billed_req),
                after_invoices: numbers,
            });
        }
    }
    Ok(out)
}

fn hosting_for<'a>(
    cfg: &BillingConfig,
    client: &ClientBilling,
    rates: &'a InvoiceRates,
) -> Option<(Decimal, &'a InvoiceRate)> {
    let eur = client.hosting_eur.or(cfg.default_hosting_eur)?;
    rates.eur.as_ref().map(|r| (eur, r))
}

/// All orgs of the month: configured clients and orgs seen in the ledger.
fn all_orgs(cfg: &BillingConfig, ledger: &Ledger) -> Result<Vec<String>, BillingError> {
    let mut set: BTreeSet<String> = ledger.orgs()?.into_iter().collect();
    set.extend(cfg.clients.iter().map(|c| c.org_id.clone()));
    Ok(set.into_iter().collect())
}

/// Builds the month's report. `rates` may be `None` (NBP down): rows that are not
/// frozen then have no statement, and `rate_error` says why.
pub fn build_report(
    cfg: &BillingConfig,
    ledger: &Ledger,
    store: &BillingStore,
    month: YearMonth,
    today: NaiveDate,
    rates: Result<&InvoiceRates, String>,
    only: Option<&str>,
) -> Result<MonthReport, BillingError> {
    let provisional = today <= month.last_day();
    let issued_this_month = store.invoices_for_month(month)?;
    let mut rows = Vec::new();
    for org in all_orgs(cfg, ledger)? {
        if only.is_some_and(|o| o != org) {
            continue;
        }
        let client = cfg
            .client(&org)
            .cloned()
            .unwrap_or_else(|| ClientBilling::unconfigured(&org));
        let configured = cfg.client(&org).is_some();
        let mut missing = client.missing_invoice_data();
        if !configured {
            missing.insert(0, "an entry in the fleet file ([[clients]] id = …)".into());
        }
        let usage = ledger.range(&org, month.first_day(), month.last_day())?;
        let org_invoices = store.invoices_for_org(&org)?;
        let issued = issued_this_month
            .iter()
            .find(|i| i.statement.org_id == org && i.kind == "VAT");
        let (statement, status, number, late) = if let Some(inv) = issued {
            let billed = billed_by_month(&org_invoices)
                .get(&month)
                .map(|b| b.0)
                .unwrap_or_default();
            let late = (usage.cost_usd - billed).normalize();
            (
                Some(inv.statement.clone()),
                RowStatus::Issued,
                Some(inv.number.clone()),
                late,
            )
        } else {
            let st = match &rates {
                Ok(r) => {
                    let segments = read_month(ledger, &org, month, &client.markup)?;
                    let carry = carry_overs(ledger, &org, &org_invoices, month, &client.markup)?;
                    Some(price(&PriceInput {
                        org_id: &org,
                        month,
                        segments,
                        carry_over: carry,
                        currency: client.currency,
                        vat: client.vat,
                        line_mode: client.lines,
                        usd_rate: &r.usd,
                        hosting: hosting_for(cfg, &client, r),
                    })?)
                }
                Err(_) => None,
            };
            let nothing = st
                .as_ref()
                .map(|s| s.lines.is_empty())
                .unwrap_or(usage.requests == 0 && usage.cost_usd.is_zero());
            let status = if provisional {
                RowStatus::Provisional
            } else if nothing {
                RowStatus::NoUsage
            } else if !missing.is_empty() {
                RowStatus::MissingData
            } else {
                RowStatus::ReadyToIssue
            };
            (st, status, None, Decimal::ZERO)
        };
        // An org that is only in the ledger and idle this month is noise, not a client row.
        if !configured && usage.requests == 0 && usage.cost_usd.is_zero() && number.is_none() {
            continue;
        }
        rows.push(ClientRow {
            org_id: org.clone(),
            name: client.name.clone(),
            configured,
            currency: statement
                .as_ref()
                .map(|s| s.amounts.currency)
                .unwrap_or(client.currency),
            status,
            invoice_number: number,
            usage,
            statement,
            late_usage_usd: late,
            missing,
            profit: None,
        });
    }
    let fees_basis = apply_fees(cfg, ledger, month, &mut rows)?;
    let totals = totals(&rows)?;
    let pending: Vec<&str> = rows
        .iter()
        // Orgs missing from the fleet file are never invoiced: not pending.
        .filter(|r| {
            r.configured && matches!(r.status, RowStatus::ReadyToIssue | RowStatus::MissingData)
        })
        .map(|r| r.org_id.as_str())
        .collect();
    let deadline_warning = crate::validate::deadline_warning(month, today, &pending);
    Ok(MonthReport {
        month,
        today,
        provisional,
        rates: rates.as_ref().ok().map(|r| (*r).clone()),
        rate_error: rates.err(),
        clients: rows,
        totals,
        fees_basis,
        issue_deadline: crate::validate::issue_deadline(month),
        deadline_warning,
    })
}

/// Fills each row's [`ClientProfit`] from its statement; returns how the fees were found.
/// BYOK's free allowance is account-wide, so its request count is read for every BYOK
/// client, also when the report is for one client only.
fn apply_fees(
    cfg: &BillingConfig,
    ledger: &Ledger,
    month: YearMonth,
    rows: &mut [ClientRow],
) -> Result<String, BillingError> {
    let fees = &cfg.fees;
    let rate = fees
        .month_rate(month)
        .map_err(|e| BillingError::InvalidData(e.to_string()))?;
    let mut byok_requests: u64 = 0;
    for org in &fees.byok_clients {
        let t = ledger.range(org, month.first_day(), month.last_day())?;
        byok_requests = byok_requests
            .checked_add(t.requests)
            .ok_or(BillingError::Overflow(mai_core::usage::Overflow {
                what: "BYOK requests of the month",
            }))?;
    }
    let share = byok_share(byok_requests, fees.byok_free_requests_per_month);
    for row in rows.iter_mut() {
        let Some(s) = &row.statement else { continue };
        let f = fees
            .client_fees(&row.org_id, s.raw_cost_usd, &rate, share)
            .and_then(|f| client_profit(s, f))
            .map_err(|e| BillingError::InvalidData(e.to_string()))?;
        row.profit = Some(f);
    }
    Ok(rate.describe(fees))
}

fn totals(rows: &[ClientRow]) -> Result<ReportTotals, BillingError> {
    let mut t = ReportTotals::default();
    let overflow = |what| BillingError::Overflow(mai_core::usage::Overflow { what });
    let mut by: BTreeMap<Currency, CurrencyTotals> = BTreeMap::new();
    for r in rows {
        t.late_usage_usd += r.late_usage_usd;
        let Some(s) = &r.statement else { continue };
        t.clients += 1;
        t.requests += s.usage.requests;
        t.raw_cost_usd += s.raw_cost_usd;
        t.client_net_usd += s.client_net_usd;
        t.profit_usd += s.profit_usd;
        t.net_pln += s.amounts.net_pln;
        t.vat_pln += s.amounts.vat_pln;
        t.gross_pln += s.amounts.gross_pln;
        t.hosting_pln += s.hosting_pln;
        t.profit_pln += s.profit_pln;
        let c = by
            .entry(s.amounts.currency)
            .or_insert_with(|| CurrencyTotals {
                currency: Some(s.amounts.currency),
                ..CurrencyTotals::default()
            });
        c.net += s.amounts.net;
        c.vat += s.amounts.vat;
        c.gross += s.amounts.gross;
        if let Some(p) = &r.profit {
            t.fees_usd = t
                .fees_usd
                .checked_add(p.fees.total_usd)
                .ok_or_else(|| overflow("the month's fees (USD)"))?;
            t.fees_pln = t
                .fees_pln
                .checked_add(p.fees_pln)
                .ok_or_else(|| overflow("the month's fees (PLN)"))?;
            t.profit_after_fees_usd = t
                .profit_after_fees_usd
                .checked_add(p.profit_after_fees_usd)
                .ok_or_else(|| overflow("the month's profit after fees (USD)"))?;
            t.profit_after_fees_pln = t
                .profit_after_fees_pln
                .checked_add(p.profit_after_fees_pln)
                .ok_or_else(|| overflow("the month's profit after fees (PLN)"))?;
        }
    }
    t.raw_cost_usd = t.raw_cost_usd.normalize();
    t.client_net_usd = t.client_net_usd.normalize();
    t.profit_usd = t.profit_usd.normalize();
    t.late_usage_usd = t.late_usage_usd.normalize();
    t.fees_usd = t.fees_usd.normalize();
    t.profit_after_fees_usd = t.profit_after_fees_usd.normalize();
    t.margin_before_fees_percent = margin_percent(t.profit_pln, t.net_pln);
    t.effective_margin_percent = margin_percent(t.profit_after_fees_pln, t.net_pln);
    t.by_currency = by.into_values().collect();
    Ok(t)
}

/// A client that was not invoiced, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub org_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueOutcome {
    /// Issued by this call.
    pub issued: Vec<IssuedInvoice>,
    /// Issued earlier (unchanged).
    pub existing: Vec<IssuedInvoice>,
    pub skipped: Vec<Skipped>,
}

/// The provisional events of `month` per client of `orgs` (clients without any left out).
pub fn unconfirmed_events(
    ledger: &Ledger,
    month: YearMonth,
    orgs: &[&str],
) -> Result<BTreeMap<String, Vec<crate::compute::UnconfirmedEvent>>, BillingError> {
    let mut out = BTreeMap::new();
    for org in orgs {
        let evs = ledger.provisional_between(org, month.first_day(), month.last_day())?;
        if evs.is_empty() {
            continue;
        }
        let list = evs
            .into_iter()
            .map(|s| crate::compute::UnconfirmedEvent {
                day: mai_core::time::warsaw_day(s.event.created_at),
                generation_id: s.event.generation_id,
                model: s.event.model,
                cost_usd: s.event.cost_usd.normalize(),
            })
            .collect();
        out.insert((*org).to_owned(), list);
    }
    Ok(out)
}

/// How many ids the refusal names per client (the rest are counted).
const IDS_SHOWN: usize = 10;

/// Refuses to invoice over unconfirmed events unless `allow`; the error lists them.
pub fn check_unconfirmed(
    month: YearMonth,
    unconfirmed: &BTreeMap<String, Vec<crate::compute::UnconfirmedEvent>>,
    allow: bool,
) -> Result<(), BillingError> {
    let count: usize = unconfirmed.values().map(Vec::len).sum();
    if allow || count == 0 {
        return Ok(());
    }
    let detail = unconfirmed
        .iter()
        .map(|(org, evs)| {
            let ids: Vec<&str> = evs
                .iter()
                .take(IDS_SHOWN)
                .map(|e| e.generation_id.as_str())
                .collect();
            let more = evs.len().saturating_sub(IDS_SHOWN);
            format!(
                "client {org}: {} event(s): {}{}",
                evs.len(),
                ids.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Err(BillingError::Unconfirmed {
        month,
        count,
        detail,
    })
}

/// Issues the month's invoices that are not issued yet (all clients, or `only`).
/// Clients with missing data are skipped with the reason; the rest are issued. A month
/// with unconfirmed events for a client to invoice is refused unless `allow_unconfirmed`
/// (see [`check_unconfirmed`]); then each invoice lists its own.
#[allow(clippy::too_many_arguments)]
pub fn issue_month(
    cfg: &BillingConfig,
    ledger: &Ledger,
    store: &mut BillingStore,
    month: YearMonth,
    issue_date: NaiveDate,
    today: NaiveDate,
    rates: &InvoiceRates,
    only: Option<&str>,
    allow_unconfirmed: bool,
) -> Result<IssueOutcome, BillingError> {
    if today <= month.last_day() {
        return Err(BillingError::MonthOpen {
            month,
            last_day: month.last_day(),
            today,
        });
    }
    if issue_date < month.last_day() || issue_date > today {
        return Err(BillingError::InvalidData(format!(
            "issue date {issue_date} for {month}: it must be between the month's last day ({}) and today ({today})",
            month.last_day()
        )));
    }
    let expected_ref = mai_core::nbp::invoice_reference_date(month.last_day(), issue_date);
    if rates.usd.reference_date != expected_ref || rates.usd.code != "USD" {
        return Err(BillingError::InvalidData(format!(
            "the USD rate given is for reference date {} but invoices for {month} issued on {issue_date} need {expected_ref}",
            rates.usd.reference_date
        )));
    }
    let format = NumberFormat::parse(&cfg.invoice_number_format)
        .map_err(|e| BillingError::InvalidData(format!("invoice_number_format: {e}")))?;
    let report = build_report(cfg, ledger, store, month, today, Ok(rates), only)?;
    let to_issue: Vec<&str> = report
        .clients
        .iter()
        .filter(|r| r.status == RowStatus::ReadyToIssue)
        .map(|r| r.org_id.as_str())
        .collect();
    let mut unconfirmed = unconfirmed_events(ledger, month, &to_issue)?;
    check_unconfirmed(month, &unconfirmed, allow_unconfirmed)?;
    let mut out = IssueOutcome::default();
    for row in report.clients {
        match row.status {
            RowStatus::Issued => {
                if let Some(n) = &row.invoice_number {
                    if let Some(inv) = store.get(n)? {
                        out.existing.push(inv);
                    }
                }
            }
            RowStatus::NoUsage => out.skipped.push(Skipped {
                org_id: row.org_id,
                reason: "no usage to bill this month".into(),
            }),
            RowStatus::MissingData => out.skipped.push(Skipped {
                org_id: row.org_id,
                reason: format!("missing invoice data: {}", row.missing.join("; ")),
            }),
            // Cannot happen for a closed month (checked above); never issue from it.
            RowStatus::Provisional => out.skipped.push(Skipped {
                org_id: row.org_id,
                reason: format!("{month} is still open"),
            }),
            RowStatus::ReadyToIssue => {
                let Some(mut statement) = row.statement else {
                    continue;
                };
                statement.unconfirmed = unconfirmed.remove(&row.org_id).unwrap_or_default();
                let buyer = cfg.client(&row.org_id).cloned().ok_or_else(|| {
                    BillingError::InvalidData(format!(
                        "client {} vanished from the config",
                        row.org_id
                    ))
                })?;
                let issued = store.issue(
                    &format,
                    NewInvoice {
                        issue_date,
                        due_date: issue_date + Days::new(u64::from(cfg.payment_days)),
                        seller: cfg.seller.clone(),
                        buyer,
                        statement,
                    },
                );
                match issued {
                    Ok(inv) => out.issued.push(inv),
                    // Another export issued it in the meantime: keep theirs, unchanged.
                    Err(BillingError::AlreadyIssued { number, .. }) => {
                        if let Some(inv) = store.get(&number)? {
                            out.existing.push(inv);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}
