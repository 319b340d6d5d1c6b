//! Pricing a client's month into invoice amounts (pure: no I/O).
//!
//! Rounding method (one method, always; spec §2.4 — for accounting sign-off):
//! - each line's net is rounded once, half-up to 0.01 of the invoice currency, from the
//!   exact value: USD invoice `round(raw × markup)`, PLN invoice `round(raw × markup × mid)`;
//! - the net total is the sum of the rounded line nets;
//! - VAT per rate bucket: `round(net total × rate)` in the invoice currency;
//! - USD invoice: VAT in PLN (`P_14_1W`) = `round(VAT_USD × mid)`, net in PLN =
//!   `round(net_USD × mid)`; gross = net + VAT in each currency;
//! - profit (PLN) = net PLN − round(raw × mid) − round(hosting EUR × EUR mid).
//!
//! All rounding goes through `mai_core::money::round_minor`.

use chrono::NaiveDate;
use mai_core::money::{round_minor, Currency};
use mai_core::nbp::InvoiceRate;
use mai_core::time::YearMonth;
use mai_core::usage::Totals;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::config::{LineMode, VatTreatment};

/// One model's usage within a markup segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelUsage {
    pub model: String,
    pub totals: Totals,
}

/// Days of the month priced at one markup rate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentUsage {
    pub from: NaiveDate,
    pub to: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    pub markup: Decimal,
    pub models: Vec<ModelUsage>,
}

/// What becomes of usage that reaches the ledger after KSeF accepted its month's invoice
/// (billing file `late_usage`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LateUsage {
    /// A correction invoice (KOR) of that month's invoice: what art. 106j asks for.
    #[default]
    Correction,
    /// A carry-over line on the client's next invoice. The usage is then taxed in the
    /// period of that invoice, not in the month it belongs to.
    Carry,
}

/// What becomes of a month whose amounts round to 0.00 (billing file `zero_month`): no
/// invoice is issued for it either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroMonth {
    /// Its usage goes onto the client's next invoice as a carry-over line.
    #[default]
    Carry,
    /// Its usage is never billed.
    Waive,
}

/// Usage of an earlier month billed on a later invoice: a zero month's usage, or (with
/// `late_usage = "carry"`) usage that reached the ledger after its month's invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CarryOver {
    pub month: YearMonth,
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_usd: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub markup: Decimal,
    pub requests: u64,
    /// The invoice(s) that billed the rest of that month.
    pub after_invoices: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub no: u32,
    pub description: String,
    pub model: Option<String>,
    /// The month whose usage this line bills (differs from the invoice's for carry-over).
    pub usage_month: YearMonth,
    pub period_from: NaiveDate,
    pub period_to: NaiveDate,
    #[serde(with = "rust_decimal::serde::str")]
    pub markup: Decimal,
    pub requests: u64,
    /// Raw OpenRouter cost, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_usd: Decimal,
    /// raw × markup, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub client_net_usd: Decimal,
    /// Net in the invoice currency, rounded to 0.01.
    #[serde(with = "rust_decimal::serde::str")]
    pub net: Decimal,
}

/// Amounts of an invoice, rounded to 0.01.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amounts {
    pub currency: Currency,
    #[serde(with = "rust_decimal::serde::str")]
    pub net: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub gross: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub net_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub vat_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub gross_pln: Decimal,
}

/// A client's month, priced: the content of its invoice and its profit figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    pub org_id: String,
    pub month: YearMonth,
    pub vat: VatTreatment,
    pub line_mode: LineMode,
    pub lines: Vec<InvoiceLine>,
    /// Usage of this month (carry-over lines excluded).
    pub usage: Totals,
    /// Markup segments of this month.
    pub segments: Vec<SegmentUsage>,
    pub carry_over: Vec<CarryOver>,
    /// Raw cost of everything billed here (this month + carry-over), exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_usd: Decimal,
    /// Raw cost of this month's usage only, exact (what the ledger says for the month).
    #[serde(with = "rust_decimal::serde::str")]
    pub month_raw_cost_usd: Decimal,
    /// Σ raw × markup, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub client_net_usd: Decimal,
    /// client_net_usd − raw_cost_usd, exact.
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_usd: Decimal,
    pub amounts: Amounts,
    pub usd_rate: InvoiceRate,
    #[serde(with = "rust_decimal::serde::str")]
    pub raw_cost_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub hosting_eur: Option<Decimal>,
    pub eur_rate: Option<InvoiceRate>,
    #[serde(with = "rust_decimal::serde::str")]
    pub hosting_pln: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub profit_pln: Decimal,
    /// Events of the month OpenRouter had not confirmed when the invoice was issued
    /// (billed at what the tracker recorded, possibly $0), listed because the issuer
    /// overrode the refusal to invoice over them. Empty on a normal invoice.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unconfirmed: Vec<UnconfirmedEvent>,
}

/// A provisional ledger event on an invoice issued with `allow_unconfirmed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnconfirmedEvent {
    pub generation_id: String,
    pub day: NaiveDate,
    pub model: String,
    /// What the ledger holds for it now (often 0: the cost was never seen).
    #[serde(with = "rust_decimal::serde::str")]
    pub cost_usd: Decimal,
}

/// Everything [`price`] needs.
#[derive(Debug, Clone)]
pub struct PriceInput<'a> {
    pub org_id: &'a str,
    pub month: YearMonth,
    pub segments: Vec<SegmentUsage>,
    pub carry_over: Vec<CarryOver>,
    pub currency: Currency,
    pub vat: VatTreatment,
    pub line_mode: LineMode,
    pub usd_rate: &'a InvoiceRate,
    /// Hosting cost and the EUR invoice-type rate to convert it.
    pub hosting: Option<(Decimal, &'a InvoiceRate)>,
}

const MONTHS_PL: [&str; 12] = [
    "styczeń",
    "luty",
    "marzec",
    "kwiecień",
    "maj",
    "czerwiec",
    "lipiec",
    "sierpień",
    "wrzesień",
    "październik",
    "listopad",
    "grudzień",
];

/// "listopad 2026".
pub fn month_name_pl(m: YearMonth) -> String {
    format!("{} {}", MONTHS_PL[(m.month - 1) as usize], m.year)
}

fn period_text(month: YearMonth, from: NaiveDate, to: NaiveDate) -> String {
    if from == month.first_day() && to == month.last_day() {
        month_name_pl(month)
    } else {
        format!("{}–{}", from.format("%d.%m.%Y"), to.format("%d.%m.%Y"))
    }
}

/// Prices one client's month. Lines with neither cost nor requests are left out. Usage
/// sums are checked: one that does not fit exactly is an error, not an invoice.
pub fn price(input: &PriceInput<'_>) -> Result<Statement, mai_core::usage::Overflow> {
    let mid = input.usd_rate.mid;
    let to_invoice_ccy = |exact_usd: Decimal| match input.currency {
        Currency::Pln => round_minor(exact_usd * mid),
        _ => round_minor(exact_usd),
    };

    let mut lines: Vec<InvoiceLine> = Vec::new();
    let mut usage = Totals::default();
    let mut month_raw = Decimal::ZERO;
    for seg in &input.segments {
        let mut seg_tot = Totals::default();
        for m in &seg.models {
            usage.add(&m.totals)?;
            seg_tot.add(&m.totals)?;
            month_raw += m.totals.cost_usd;
        }
        let period = period_text(input.month, seg.from, seg.to);
        match input.line_mode {
            LineMode::ByModel => {
                for m in &seg.models {
                    if m.totals.cost_usd.is_zero() && m.totals.requests == 0 {
                        continue;
                    }
                    let exact = m.totals.cost_usd * seg.markup;
                    lines.push(InvoiceLine {
                        no: 0,
                        description: format!("Dostęp do modelu AI {} — {period}", m.model),
                        model: Some(m.model.clone()),
                        usage_month: input.month,
                        period_from: seg.from,
                        period_to: seg.to,
                        markup: seg.markup,
                        requests: m.totals.requests,
                        raw_cost_usd: m.totals.cost_usd.normalize(),
                        client_net_usd: exact.normalize(),
                        net: to_invoice_ccy(exact),
                    });
                }
            }
            LineMode::Summary => {
                if seg_tot.cost_usd.is_zero() && seg_tot.requests == 0 {
                    continue;
                }
                let exact = seg_tot.cost_usd * seg.markup;
                lines.push(InvoiceLine {
                    no: 0,
                    description: format!("Usługi dostępu do modeli AI — {period}"),
                    model: None,
                    usage_month: input.month,
                    period_from: seg.from,
                    period_to: seg.to,
                    markup: seg.markup,
                    requests: seg_tot.requests,
                    raw_cost_usd: seg_tot.cost_usd.normalize(),
                    client_net_usd: exact.normalize(),
                    net: to_invoice_ccy(exact),
                });
            }
        }
    }
    for c in &input.carry_over {
        let exact = c.raw_cost_usd * c.markup;
        lines.push(InvoiceLine {
            no: 0,
            description: if c.after_invoices.is_empty() {
                // A zero month: no invoice of its own to name.
                format!(
                    "Usługi dostępu do modeli AI — {}: zużycie miesiąca o wartości poniżej 0,01, niefakturowane osobno",
                    month_name_pl(c.month)
                )
            } else {
                format!(
                    "Usługi dostępu do modeli AI — {}: użycie zaksięgowane po wystawieniu faktury {}",
                    month_name_pl(c.month),
                    c.after_invoices.join(", ")
                )
            },
            model: None,
            usage_month: c.month,
            period_from: c.month.first_day(),
            period_to: c.month.last_day(),
            markup: c.markup,
            requests: c.requests,
            raw_cost_usd: c.raw_cost_usd.normalize(),
            client_net_usd: exact.normalize(),
            net: to_invoice_ccy(exact),
        });
    }
    for (i, l) in lines.iter_mut().enumerate() {
        l.no = (i + 1) as u32;
    }

    let raw: Decimal = lines.iter().map(|l| l.raw_cost_usd).sum();
    let client_net_usd: Decimal = lines.iter().map(|l| l.client_net_usd).sum();
    let net: Decimal = lines.iter().map(|l| l.net).sum();
    let vat = round_minor(net * input.vat.fraction());
    let gross = net + vat;
    let amounts = match input.currency {
        Currency::Pln => Amounts {
            currency: Currency::Pln,
            net,
            vat,
            gross,
            net_pln: net,
            vat_pln: vat,
            gross_pln: gross,
        },
        other => {
            let net_pln = round_minor(net * mid);
            let vat_pln = round_minor(vat * mid);
            Amounts {
                currency: other,
                net,
                vat,
                gross,
                net_pln,
                vat_pln,
                gross_pln: net_pln + vat_pln,
            }
        }
    };
    let raw_cost_pln = round_minor(raw * mid);
    let (hosting_eur, eur_rate, hosting_pln) = match input.hosting {
        Some((eur, rate)) => (Some(eur), Some(rate.clone()), round_minor(eur * rate.mid)),
        None => (None, None, Decimal::ZERO),
    };
    let profit_pln = amounts.net_pln - raw_cost_pln - hosting_pln;
    usage.cost_usd = usage.cost_usd.normalize();
    Ok(Statement {
        org_id: input.org_id.to_string(),
        month: input.month,
        vat: input.vat,
        line_mode: input.line_mode,
        lines,
        usage,
        segments: input.segments.clone(),
        carry_over: input.carry_over.clone(),
        raw_cost_usd: raw.normalize(),
        month_raw_cost_usd: month_raw.normalize(),
        client_net_usd: client_net_usd.normalize(),
        profit_usd: (client_net_usd - raw).normalize(),
        amounts,
        usd_rate: input.usd_rate.clone(),
        raw_cost_pln,
        hosting_eur,
        eur_rate,
        hosting_pln,
        profit_pln,
        unconfirmed: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rate(code: &str, mid: Decimal) -> InvoiceRate {
        InvoiceRate {
            code: code.into(),
            mid,
            table_no: "229/A/NBP/2026".into(),
            effective_date: d("2026-11-27"),
            reference_date: d("2026-11-30"),
        }
    }

    fn tot(requests: u64, cost: Decimal) -> Totals {
        Totals {
            requests,
            cost_usd: cost,
            ..Totals::default()
        }
    }

    fn month() -> YearMonth {
        "2026-11".parse().unwrap()
    }

    #[test]
    fn usd_invoice_states_vat_in_pln_and_splits_segments() {
        let usd = rate("USD", dec!(4.0000));
        let input = PriceInput {
            org_id: "acme",
            month: month(),
            segments: vec![
                SegmentUsage {
                    from: d("2026-11-01"),
                    to: d("2026-11-14"),
                    markup: dec!(1.3),
                    models: vec![ModelUsage {
                        model: "openai/gpt-4o".into(),
                        totals: tot(10, dec!(500)),
                    }],
                },
                SegmentUsage {
                    from: d("2026-11-15"),
                    to: d("2026-11-30"),
                    markup: dec!(1.5),
                    models: vec![ModelUsage {
                        model: "openai/gpt-4o".into(),
                        totals: tot(5, dec!(100)),
                    }],
                },
            ],
            carry_over: vec![],
            currency: Currency::Usd,
            vat: VatTreatment::Rate(23),
            line_mode: LineMode::ByModel,
            usd_rate: &usd,
            hosting: None,
        };
        let s = price(&input).unwrap();
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.amounts.net, dec!(800.00)); // 650 + 150
        assert_eq!(s.amounts.vat, dec!(184.00));
        assert_eq!(s.amounts.gross, dec!(984.00));
        assert_eq!(s.amounts.vat_pln, dec!(736.00));
        assert_eq!(s.amounts.net_pln, dec!(3200.00));
        assert_eq!(s.raw_cost_usd, dec!(600));
        assert_eq!(s.profit_usd, dec!(200));
        assert_eq!(s.profit_pln, dec!(800.00));
        assert_eq!(s.usage.requests, 15);
    }

    #[test]
    fn pln_invoice_rounds_each_line_once_and_subtracts_hosting() {
        let usd = rate("USD", dec!(3.6543));
        let eur = rate("EUR", dec!(4.2500));
        let input = PriceInput {
            org_id: "acme",
            month: month(),
            segments: vec![SegmentUsage {
                from: d("2026-11-01"),
                to: d("2026-11-30"),
                markup: dec!(1.3),
                models: vec![
                    ModelUsage {
                        model: "a".into(),
                        totals: tot(1, dec!(0.000123456)),
                    },
                    ModelUsage {
                        model: "b".into(),
                        totals: tot(2, dec!(12.3456789)),
                    },
                    ModelUsage {
                        model: "zero".into(),
                        totals: tot(0, dec!(0)),
                    },
                ],
            }],
            carry_over: vec![],
            currency: Currency::Pln,
            vat: VatTreatment::Rate(23),
            line_mode: LineMode::ByModel,
            usd_rate: &usd,
            hosting: Some((dec!(10), &eur)),
        };
        let s = price(&input).unwrap();
        assert_eq!(s.lines.len(), 2);
        // 0.000123456 × 1.3 × 3.6543 = 0.000586... → 0.00
        assert_eq!(s.lines[0].net, dec!(0.00));
        // 12.3456789 × 1.3 × 3.6543 = 58.649... → 58.65
        assert_eq!(s.lines[1].net, dec!(58.65));
        assert_eq!(s.amounts.net, dec!(58.65));
        assert_eq!(s.amounts.vat, dec!(13.49)); // 13.4895
        assert_eq!(s.hosting_pln, dec!(42.50));
        // raw 12.345802356 × 3.6543 = 45.11... → 45.11
        assert_eq!(s.raw_cost_pln, dec!(45.12));
        assert_eq!(s.profit_pln, dec!(58.65) - dec!(45.12) - dec!(42.50));
    }

    #[test]
    fn reverse_charge_has_no_vat() {
        let usd = rate("USD", dec!(4));
        let input = PriceInput {
            org_id: "x",
            month: month(),
            segments: vec![SegmentUsage {
                from: d("2026-11-01"),
                to: d("2026-11-30"),
                markup: dec!(1.3),
                models: vec![ModelUsage {
                    model: "m".into(),
                    totals: tot(1, dec!(10)),
                }],
            }],
            carry_over: vec![CarryOver {
                month: "2026-10".parse().unwrap(),
                raw_cost_usd: dec!(1),
                markup: dec!(1.3),
                requests: 1,
                after_invoices: vec!["FV/2026/11/0001".into()],
            }],
            currency: Currency::Usd,
            vat: VatTreatment::ReverseCharge,
            line_mode: LineMode::Summary,
            usd_rate: &usd,
            hosting: None,
        };
        let s = price(&input).unwrap();
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.amounts.vat, dec!(0.00));
        assert_eq!(s.amounts.net, dec!(14.30));
        assert_eq!(s.amounts.gross, dec!(14.30));
        assert_eq!(s.month_raw_cost_usd, dec!(10));
        assert_eq!(s.raw_cost_usd, dec!(11));
    }
}
