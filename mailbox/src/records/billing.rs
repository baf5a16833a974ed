//! Billing: 6,500 JPY per facility per month, no daily proration. A facility
//! active on any day of the month pays the whole month; one inactive all month
//! pays nothing (and is not on the statement).

use chrono::{Datelike, NaiveDate};

use crate::error::{Error, Result};
use crate::facility::Facility;
use crate::records::csv;

/// The monthly fee per facility, in yen.
pub const MONTHLY_FEE_JPY: i64 = 6_500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementLine {
    pub code: String,
    pub name: String,
    pub active_from: NaiveDate,
    pub active_until: Option<NaiveDate>,
    pub amount_jpy: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// `YYYY-MM`.
    pub month: String,
    pub first_day: NaiveDate,
    pub last_day: NaiveDate,
    pub lines: Vec<StatementLine>,
}

impl Statement {
    pub fn total_jpy(&self) -> i64 {
        self.lines.iter().map(|l| l.amount_jpy).sum()
    }

    pub fn to_csv(&self) -> String {
        let mut out = String::from(csv::BOM);
        out.push_str(&csv::line(&[
            "請求月 / month",
            "医療機関コード / facility code",
            "施設名 / facility",
            "利用開始日 / active from",
            "利用終了日 / active until",
            "金額（円） / amount (JPY)",
        ]));
        for l in &self.lines {
            out.push_str(&csv::line(&[
                self.month.clone(),
                l.code.clone(),
                l.name.clone(),
                l.active_from.to_string(),
                l.active_until.map(|d| d.to_string()).unwrap_or_default(),
                l.amount_jpy.to_string(),
            ]));
        }
        out.push_str(&csv::line(&[
            self.month.clone(),
            String::new(),
            format!("合計 / total ({} facilities)", self.lines.len()),
            String::new(),
            String::new(),
            self.total_jpy().to_string(),
        ]));
        out
    }
}

/// `YYYY-MM` → its first and last day.
pub fn month_bounds(month: &str) -> Result<(NaiveDate, NaiveDate)> {
    let bad = || {
        Error::invalid(
            "month",
            format!("month must look like 2026-11, got {month:?}"),
            "請求月は 2026-11 の形式で指定してください。",
        )
    };
    let first = NaiveDate::parse_from_str(&format!("{}-01", month.trim()), "%Y-%m-%d")
        .map_err(|_| bad())?;
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
    }
    .ok_or_else(bad)?;
    let last = next.pred_opt().ok_or_else(bad)?;
    Ok((first, last))
}

/// The statement for `month` over every registered facility.
pub fn statement(facilities: &[Facility], month: &str) -> Result<Statement> {
    let (first, last) = month_bounds(month)?;
    let lines = facilities
        .iter()
        .filter(|f| f.active_from <= last && f.active_until.is_none_or(|u| u >= first))
        .map(|f| StatementLine {
            code: f.code.to_string(),
            name: f.name.clone(),
            active_from: f.active_from,
            active_until: f.active_until,
            amount_jpy: MONTHLY_FEE_JPY,
        })
        .collect();
    Ok(Statement {
        month: first.format("%Y-%m").to_string(),
        first_day: first,
        last_day: last,
        lines,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::facility::FacilityCode;

    fn facility(code: &str, from: &str, until: Option<&str>) -> Facility {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        Facility {
            code: FacilityCode::parse(code).unwrap(),
            name: format!("施設{code}"),
            address: String::new(),
            phone: String::new(),
            departments: vec![],
            publish_details: false,
            city: String::new(),
            public_note: String::new(),
            active_from: d(from),
            active_until: until.map(d),
            approval_ref: None,
        }
    }

    #[test]
    fn any_day_of_the_month_is_the_whole_month() {
        let all = [
            facility("3710123450", "2026-10-31", None),
            facility("3710300017", "2025-04-01", Some("2026-10-01")),
            facility("3710400015", "2025-04-01", Some("2026-09-30")),
            facility("3710500012", "2026-11-01", None),
        ];
        let s = statement(&all, "2026-10").unwrap();
        let codes: Vec<&str> = s.lines.iter().map(|l| l.code.as_str()).collect();
        assert_eq!(codes, ["3710123450", "3710300017"]);
        assert_eq!(s.total_jpy(), 13_000);
        assert!(s.lines.iter().all(|l| l.amount_jpy == 6_500));
        assert_eq!(s.last_day.to_string(), "2026-10-31");
        assert!(statement(&all, "2026-13").is_err());
        assert_eq!(statement(&all, "2026-12").unwrap().lines.len(), 2);
    }
}
