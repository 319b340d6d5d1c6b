//! Half-up rounding to the grosz, checked against exact integer arithmetic on many
//! random amounts: the library's rounding and the invoice pricing built on it.

use chrono::NaiveDate;
use mai_billing::compute::{price, ModelUsage, PriceInput, SegmentUsage};
use mai_billing::{LineMode, VatTreatment};
use mai_core::money::{round_minor, Currency};
use mai_core::nbp::InvoiceRate;
use mai_core::usage::Totals;
use proptest::prelude::*;
use rust_decimal::Decimal;

/// `num / den` rounded half-up (away from zero for positives) to 0.01, as an integer
/// number of hundredths. Exact: u128 arithmetic, no decimals involved.
fn exact_hundredths(num: u128, den: u128) -> u128 {
    let scaled = num * 100;
    let q = scaled / den;
    let r = scaled % den;
    if 2 * r >= den {
        q + 1
    } else {
        q
    }
}

fn hundredths(v: u128) -> Decimal {
    Decimal::from_i128_with_scale(v as i128, 2)
}

fn pow10(n: u32) -> u128 {
    10u128.pow(n)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// round_minor on any amount with up to 12 decimals.
    #[test]
    fn round_minor_is_half_up(mantissa in 0u64..=999_999_999_999_999, scale in 0u32..=12) {
        let d = Decimal::from_i128_with_scale(mantissa as i128, scale);
        let want = hundredths(exact_hundredths(mantissa as u128, pow10(scale)));
        prop_assert_eq!(round_minor(d), want);
        prop_assert_eq!(round_minor(d).scale(), 2);
        // Negative amounts (corrections) round symmetrically.
        prop_assert_eq!(round_minor(-d), -want);
    }

    /// Exact ties always go up: x.xx5 → x.xx + 0.01.
    #[test]
    fn ties_round_up(cents in 0u64..=10_000_000_000) {
        let tie = Decimal::from_i128_with_scale(cents as i128 * 10 + 5, 3);
        prop_assert_eq!(round_minor(tie), Decimal::from_i128_with_scale(cents as i128 + 1, 2));
    }

    /// A PLN invoice line = round(raw × markup × mid) exactly, and VAT = round(net × 23%).
    #[test]
    fn pln_invoice_line_matches_exact_arithmetic(
        raw_nano in 1u64..=50_000_000_000_000, // up to 50,000 USD in nano-dollars
        markup_pct in 100u64..=400,            // 1.00 .. 4.00
        mid_bp in 30_000u64..=60_000,          // 3.0000 .. 6.0000 PLN per USD
    ) {
        let raw = Decimal::from_i128_with_scale(raw_nano as i128, 9);
        let markup = Decimal::from_i128_with_scale(markup_pct as i128, 2);
        let mid = Decimal::from_i128_with_scale(mid_bp as i128, 4);
        let rate = InvoiceRate {
            code: "USD".into(),
            mid,
            table_no: "250/A/NBP/2025".into(),
            effective_date: NaiveDate::from_ymd_opt(2025, 12, 30).unwrap(),
            reference_date: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        };
        let month = "2025-12".parse().unwrap();
        let s = price(&PriceInput {
            org_id: "p",
            month,
            segments: vec![SegmentUsage {
                from: NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
                markup,
                models: vec![ModelUsage { model: "m".into(), totals: Totals { requests: 1, cost_usd: raw, ..Totals::default() } }],
            }],
            carry_over: vec![],
            currency: Currency::Pln,
            vat: VatTreatment::Rate(23),
            line_mode: LineMode::ByModel,
            usd_rate: &rate,
            hosting: None,
        }).unwrap();
        let num = raw_nano as u128 * markup_pct as u128 * mid_bp as u128;
        let den = pow10(9 + 2 + 4);
        let net = exact_hundredths(num, den);
        prop_assert_eq!(s.amounts.net, hundredths(net));
        let vat = exact_hundredths(net * 23, 100 * 100);
        prop_assert_eq!(s.amounts.vat, hundredths(vat));
        prop_assert_eq!(s.amounts.gross, hundredths(net + vat));
        // raw cost in PLN for the profit figure
        let raw_pln = exact_hundredths(raw_nano as u128 * mid_bp as u128, pow10(13));
        prop_assert_eq!(s.raw_cost_pln, hundredths(raw_pln));
    }

    /// A USD invoice: VAT in PLN = round(round(net × 23%) × mid).
    #[test]
    fn usd_invoice_vat_in_pln_matches_exact_arithmetic(
        raw_nano in 1u64..=50_000_000_000_000,
        mid_bp in 30_000u64..=60_000,
    ) {
        let raw = Decimal::from_i128_with_scale(raw_nano as i128, 9);
        let mid = Decimal::from_i128_with_scale(mid_bp as i128, 4);
        let rate = InvoiceRate {
            code: "USD".into(),
            mid,
            table_no: "250/A/NBP/2025".into(),
            effective_date: NaiveDate::from_ymd_opt(2025, 12, 30).unwrap(),
            reference_date: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        };
        let s = price(&PriceInput {
            org_id: "p",
            month: "2025-12".parse().unwrap(),
            segments: vec![SegmentUsage {
                from: NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(),
                to: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
                markup: Decimal::new(13, 1),
                models: vec![ModelUsage { model: "m".into(), totals: Totals { requests: 1, cost_usd: raw, ..Totals::default() } }],
            }],
            carry_over: vec![],
            currency: Currency::Usd,
            vat: VatTreatment::Rate(23),
            line_mode: LineMode::Summary,
            usd_rate: &rate,
            hosting: None,
        }).unwrap();
        let net = exact_hundredths(raw_nano as u128 * 13, pow10(10));
        let vat = exact_hundredths(net * 23, pow10(4));
        let vat_pln = exact_hundredths(vat * mid_bp as u128, pow10(6));
        prop_assert_eq!(s.amounts.net, hundredths(net));
        prop_assert_eq!(s.amounts.vat, hundredths(vat));
        prop_assert_eq!(s.amounts.vat_pln, hundredths(vat_pln));
    }
}
