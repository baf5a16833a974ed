//! Bookable resources: reading their opening hours, and which times are still
//! free. A booking holds its time (`threads.booked_slot`) while it is
//! requested, proposed or confirmed; a cancelled one frees it.
//!
//! Opening hours are written the way Japanese facilities write them, one rule
//! per line or `;`: days, then one or more time spans, optionally the length
//! of one booking (30 minutes unless given):
//! `平日 9:00-12:00、13:00-16:00; 土 9:00-12:00 (60分)`,
//! `月〜金 9:00-16:00`, `月・水・金 13:00-17:00`, `Mon-Fri 09:00-16:00 30min`.
//! Text in no such form (`要相談`) is kept as it is: the requester then writes
//! the times they would like and the facility answers with one.
//!
//! Free times are slots after now, in Japan time, not held by another booking.
//! The held time is written `YYYY-MM-DD HH:MM`: a request may name a free time,
//! a proposal or a confirmation moves the hold, a cancellation frees it. A time
//! another live booking holds is refused with the time named, and the unique
//! partial index `threads_booked_slot_held` settles two requests at once.
//! National holidays are not known: the facility declines or proposes another
//! time.

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};

use crate::Role;
use crate::auth::CurrentSession;
use crate::error::{Error, Result};
use crate::facility::FacilityCode;
use crate::store::thread::ResourceRow;
use crate::threads::Threads;

/// The one written form of a booked time.
pub const SLOT_FORMAT: &str = "%Y-%m-%d %H:%M";
/// Minutes one booking takes when the opening hours do not say.
pub const DEFAULT_SLOT_MINUTES: u32 = 30;
/// The longest stretch of days one look at free times covers.
pub const MAX_DAYS: u32 = 31;

/// Weekly opening hours that could be read; see the module comment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpeningHours {
    /// Index 0 is Monday.
    days: [Vec<(NaiveTime, NaiveTime)>; 7],
    slot_minutes: u32,
}

/// The free times of one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeDay {
    pub date: NaiveDate,
    pub slots: Vec<NaiveDateTime>,
}

/// Something a facility takes bookings for: a listed, active resource with
/// its opening hours as the liaison office wrote them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub facility_code: String,
    pub name: String,
    pub opening_hours: String,
    /// Unix milliseconds it was listed.
    pub created_at: i64,
}

impl From<ResourceRow> for Resource {
    fn from(r: ResourceRow) -> Self {
        Self {
            id: r.id,
            facility_code: r.facility_code,
            name: r.name,
            opening_hours: r.opening_hours,
            created_at: r.created_at,
        }
    }
}

/// A resource with its free times over a stretch of days.
#[derive(Debug, Clone)]
pub struct FreeTimes {
    pub resource: Resource,
    /// `None` when the opening hours are free text: no times can be offered.
    pub hours: Option<OpeningHours>,
    pub days: Vec<FreeDay>,
}

impl OpeningHours {
    /// The hours, or `None` if the text is not in a form this reads.
    pub fn parse(text: &str) -> Option<Self> {
        let text = normalize(text);
        let mut days: [Vec<(NaiveTime, NaiveTime)>; 7] = Default::default();
        let mut slot_minutes = None;
        let mut any = false;
        for rule in text.split([';', '\n', '/']) {
            let rule = rule.trim();
            if rule.is_empty() {
                continue;
            }
            let (rule, minutes) = take_slot_length(rule)?;
            if minutes.is_some() {
                slot_minutes = minutes;
            }
            if rule.trim().is_empty() {
                continue;
            }
            // Days come before the first digit, the time spans after it.
            let split = rule
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rule.len());
            let (day_part, time_part) = rule.split_at(split);
            let weekdays = parse_days(day_part)?;
            let spans = parse_spans(time_part)?;
            for (i, open) in weekdays.iter().enumerate() {
                if *open {
                    days[i].extend(spans.iter().copied());
                }
            }
            any = true;
        }
        if !any {
            return None;
        }
        for d in &mut days {
            d.sort();
        }
        Some(Self {
            days,
            slot_minutes: slot_minutes.unwrap_or(DEFAULT_SLOT_MINUTES),
        })
    }

    pub fn slot_minutes(&self) -> u32 {
        self.slot_minutes
    }

    /// The start of every booking that fits in the day's spans.
    pub fn slots_on(&self, date: NaiveDate) -> Vec<NaiveDateTime> {
        let step = Duration::minutes(i64::from(self.slot_minutes));
        let mut out = Vec::new();
        for (start, end) in &self.days[date.weekday().num_days_from_monday() as usize] {
            let mut t = date.and_time(*start);
            let end = date.and_time(*end);
            while t + step <= end {
                if !out.contains(&t) {
                    out.push(t);
                }
                t += step;
            }
        }
        out.sort();
        out
    }

    /// Free times from `first` for `days` days: the slots of the opening hours
    /// that start after `now` and are not `held` by another booking.
    pub fn free_times(
        &self,
        first: NaiveDate,
        days: u32,
        now: NaiveDateTime,
        held: &HashSet<NaiveDateTime>,
    ) -> Vec<FreeDay> {
        (0..days.min(MAX_DAYS))
            .filter_map(|i| first.checked_add_signed(Duration::days(i64::from(i))))
            .map(|date| FreeDay {
                date,
                slots: self
                    .slots_on(date)
                    .into_iter()
                    .filter(|t| *t > now && !held.contains(t))
                    .collect(),
            })
            .collect()
    }
}

/// Full-width digits and punctuation to ASCII, the many dashes to `-`.
fn normalize(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '０'..='９' => char::from(b'0' + (c as u32 - '０' as u32) as u8),
            '：' => ':',
            '〜' | '～' | '－' | '‐' | '−' | '–' | '—' | 'ー' => '-',
            '、' | '，' | '､' => ',',
            '；' => ';',
            '（' => '(',
            '）' => ')',
            '　' => ' ',
            '／' => '/',
            _ => c,
        })
        .collect()
}

/// Removes a booking length such as `(30分)`, `60分枠` or `30min` from a rule.
fn take_slot_length(rule: &str) -> Option<(String, Option<u32>)> {
    // ASCII-only lowering keeps byte offsets the same as in `rule`.
    let lower = rule.to_ascii_lowercase();
    for unit in ["分枠", "分", "minutes", "mins", "min"] {
        if let Some(at) = lower.find(unit) {
            let digits_start = lower[..at]
                .trim_end()
                .rfind(|c: char| !c.is_ascii_digit())
                .map_or(0, |i| i + 1);
            let number = lower[digits_start..at].trim();
            let minutes: u32 = number.parse().ok()?;
            if !(5..=480).contains(&minutes) {
                return None;
            }
            let mut rest = String::new();
            rest.push_str(&rule[..digits_start]);
            rest.push_str(&rule[at + unit.len()..]);
            let rest = rest.replace("()", "").replace("枠", "");
            return Some((rest, Some(minutes)));
        }
    }
    Some((rule.to_string(), None))
}

const JA_DAYS: [char; 7] = ['月', '火', '水', '木', '金', '土', '日'];
const EN_DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

fn day_index(word: &str) -> Option<usize> {
    let w = word.trim().trim_end_matches("曜日").trim_end_matches('曜');
    let mut chars = w.chars();
    if let (Some(c), None) = (chars.next(), chars.next())
        && let Some(i) = JA_DAYS.iter().position(|d| *d == c)
    {
        return Some(i);
    }
    let lower = w.to_ascii_lowercase();
    // Mon, Tue, Tues, Monday…
    EN_DAYS
        .iter()
        .position(|d| lower.len() >= 3 && d.starts_with(&lower))
}

fn parse_days(part: &str) -> Option<[bool; 7]> {
    let part = part.trim();
    let mut days = [false; 7];
    if part.is_empty() {
        return Some([true; 7]);
    }
    for piece in part.split([',', '・', ' ', '&']) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        match piece.to_ascii_lowercase().as_str() {
            "平日" | "weekdays" | "weekday" => days[..5].fill(true),
            "毎日" | "全日" | "daily" | "everyday" => days.fill(true),
            "土日" | "週末" | "weekend" | "weekends" => days[5..].fill(true),
            _ => {
                if let Some((from, to)) = piece.split_once('-') {
                    let (from, to) = (day_index(from)?, day_index(to)?);
                    if from > to {
                        return None;
                    }
                    days[from..=to].fill(true);
                } else if let Some(i) = day_index(piece) {
                    days[i] = true;
                } else {
                    // 月水金: one day per character.
                    for c in piece.chars() {
                        days[JA_DAYS.iter().position(|d| *d == c)?] = true;
                    }
                }
            }
        }
    }
    days.contains(&true).then_some(days)
}

fn parse_spans(part: &str) -> Option<Vec<(NaiveTime, NaiveTime)>> {
    let mut spans = Vec::new();
    for piece in part.split([',', ' ']) {
        let piece = piece.trim();
        if piece.is_empty() {
            continue;
        }
        let (from, to) = piece.split_once('-')?;
        let from = NaiveTime::parse_from_str(from.trim(), "%H:%M").ok()?;
        let to = NaiveTime::parse_from_str(to.trim(), "%H:%M").ok()?;
        if from >= to {
            return None;
        }
        spans.push((from, to));
    }
    (!spans.is_empty()).then_some(spans)
}

/// A booked time as the person wrote it: `2026-12-05 10:00` (also with `T`,
/// slashes or a one-digit hour).
pub fn parse_slot(text: &str) -> Result<NaiveDateTime> {
    let t = normalize(text).trim().replace('/', "-").replace('T', " ");
    NaiveDateTime::parse_from_str(&t, SLOT_FORMAT).map_err(|_| {
        Error::invalid(
            "slot",
            format!("a time must look like 2026-12-05 10:00, got {text:?}"),
            "日時は 2026-12-05 10:00 の形式で指定してください。",
        )
    })
}

pub fn slot_text(t: NaiveDateTime) -> String {
    t.format(SLOT_FORMAT).to_string()
}

impl Threads {
    /// A liaison office lists something its facility takes bookings for.
    pub async fn add_resource(
        &self,
        session: &CurrentSession,
        name: &str,
        opening_hours: &str,
    ) -> Result<Resource> {
        let actor = session.require_ready()?;
        crate::roles::require(actor, crate::roles::Action::ManageResources)?;
        let (Role::Liaison, Some(code)) = (actor.role, actor.facility.as_ref()) else {
            return Err(Error::Forbidden);
        };
        if name.trim().is_empty() || name.chars().count() > 100 {
            return Err(Error::invalid(
                "name",
                "a resource needs a name of at most 100 characters",
                "名称を100文字以内で入力してください。",
            ));
        }
        if opening_hours.trim().is_empty() || opening_hours.chars().count() > 500 {
            return Err(Error::invalid(
                "opening_hours",
                "give the opening hours (at most 500 characters)",
                "受付時間を500文字以内で入力してください。",
            ));
        }
        let row = ResourceRow {
            id: crate::ids::new_id(),
            facility_code: code.to_string(),
            name: name.trim().into(),
            opening_hours: opening_hours.trim().into(),
            active: true,
            created_at: self.clock.now_millis(),
        };
        self.store.insert_resource(&row).await?;
        Ok(row.into())
    }

    pub async fn resources(
        &self,
        session: &CurrentSession,
        code: &FacilityCode,
    ) -> Result<Vec<Resource>> {
        session.require_ready()?;
        Ok(self
            .store
            .resources_of(&code.to_string())
            .await?
            .into_iter()
            .filter(|r| r.active)
            .map(Resource::from)
            .collect())
    }

    /// A resource's free times from `first` (today in Japan if `None`) for
    /// `days` days.
    pub async fn free_times(
        &self,
        session: &CurrentSession,
        resource_id: &str,
        first: Option<NaiveDate>,
        days: u32,
    ) -> Result<FreeTimes> {
        session.require_ready()?;
        let resource = self
            .store()
            .resource(resource_id)
            .await?
            .filter(|r| r.active)
            .ok_or(Error::NotFound("resource"))?;
        let hours = OpeningHours::parse(&resource.opening_hours);
        let now = self.clock.now_jst();
        let days = match &hours {
            Some(h) => {
                let held = self.held_slots(resource_id, None).await?;
                h.free_times(first.unwrap_or(now.date()), days, now, &held)
            }
            None => Vec::new(),
        };
        Ok(FreeTimes {
            resource: resource.into(),
            hours,
            days,
        })
    }

    /// Times held by live bookings of a resource, other than `except` (the
    /// booking being changed).
    async fn held_slots(
        &self,
        resource_id: &str,
        except: Option<&str>,
    ) -> Result<HashSet<NaiveDateTime>> {
        Ok(self
            .store()
            .held_slots(resource_id)
            .await?
            .into_iter()
            .filter(|(thread, _)| Some(thread.as_str()) != except)
            .filter_map(|(_, slot)| parse_slot(&slot).ok())
            .collect())
    }

    /// The written form of `slot` for a booking of `resource_id`, refused if
    /// another live booking holds that time.
    pub(crate) async fn bookable_slot(
        &self,
        resource_id: Option<&str>,
        booking: Option<&str>,
        slot: &str,
    ) -> Result<String> {
        let t = parse_slot(slot)?;
        if let Some(resource_id) = resource_id
            && self.held_slots(resource_id, booking).await?.contains(&t)
        {
            return Err(Error::invalid(
                "slot",
                format!("{} is already booked; choose another time", slot_text(t)),
                format!(
                    "{} はすでに予約されています。別の日時を選んでください。",
                    slot_text(t)
                ),
            ));
        }
        Ok(slot_text(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn at(s: &str) -> NaiveDateTime {
        parse_slot(s).unwrap()
    }

    fn times(h: &OpeningHours, date: &str) -> Vec<String> {
        h.slots_on(d(date))
            .into_iter()
            .map(|t| t.format("%H:%M").to_string())
            .collect()
    }

    #[test]
    fn weekday_hours_give_half_hour_slots_on_weekdays_only() {
        let h = OpeningHours::parse("平日 9:00-11:00").unwrap();
        assert_eq!(h.slot_minutes(), 30);
        // 2026-12-04 is a Friday, 12-05 a Saturday, 12-06 a Sunday.
        assert_eq!(
            times(&h, "2026-12-04"),
            ["09:00", "09:30", "10:00", "10:30"]
        );
        assert!(times(&h, "2026-12-05").is_empty());
        assert!(times(&h, "2026-12-06").is_empty());
    }

    #[test]
    fn several_rules_spans_and_a_booking_length() {
        let h = OpeningHours::parse(
            "月〜金 ９：００〜１２：００、13:00-14:00；土 9:00-10:00（６０分）",
        )
        .unwrap();
        assert_eq!(h.slot_minutes(), 60);
        assert_eq!(
            times(&h, "2026-12-04"),
            ["09:00", "10:00", "11:00", "13:00"]
        );
        assert_eq!(times(&h, "2026-12-05"), ["09:00"]);
        let h = OpeningHours::parse("月・水・金 13:00-14:00\n火曜 9:00-9:30").unwrap();
        assert_eq!(times(&h, "2026-11-30"), ["13:00", "13:30"]); // Monday
        assert_eq!(times(&h, "2026-12-01"), ["09:00"]); // Tuesday
        assert!(times(&h, "2026-12-03").is_empty()); // Thursday
        let h = OpeningHours::parse("Mon-Fri 09:00-10:00 20min; Sat 9:00-9:20").unwrap();
        assert_eq!(times(&h, "2026-12-04"), ["09:00", "09:20", "09:40"]);
        assert_eq!(times(&h, "2026-12-05"), ["09:00"]);
        let h = OpeningHours::parse("月水金 9:00-10:00 / 土日 10:00-11:00 (30分枠)").unwrap();
        assert_eq!(times(&h, "2026-12-02"), ["09:00", "09:30"]); // Wednesday
        assert_eq!(times(&h, "2026-12-06"), ["10:00", "10:30"]); // Sunday
        assert!(times(&h, "2026-12-01").is_empty());
        // A span shorter than one booking offers nothing.
        let h = OpeningHours::parse("毎日 9:00-9:20").unwrap();
        assert!(times(&h, "2026-12-02").is_empty());
    }

    #[test]
    fn free_text_hours_are_not_read() {
        for text in [
            "平日",
            "要相談",
            "",
            "平日 9:00",
            "平日 12:00-9:00",
            "金-月 9:00-10:00",
            "平日 9:00-16:00 (1分)",
            "祝日 9:00-12:00",
        ] {
            assert_eq!(OpeningHours::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn free_times_leave_out_held_and_past_slots() {
        let h = OpeningHours::parse("平日 9:00-10:30").unwrap();
        let held: HashSet<_> = [at("2026-12-04 09:30")].into();
        let free = h.free_times(d("2026-12-03"), 3, at("2026-12-03 09:10"), &held);
        let text: Vec<(String, Vec<String>)> = free
            .iter()
            .map(|f| {
                (
                    f.date.to_string(),
                    f.slots.iter().map(|t| slot_text(*t)).collect(),
                )
            })
            .collect();
        assert_eq!(
            text,
            [
                (
                    "2026-12-03".to_string(),
                    vec!["2026-12-03 09:30".to_string(), "2026-12-03 10:00".into()]
                ),
                (
                    "2026-12-04".to_string(),
                    vec!["2026-12-04 09:00".to_string(), "2026-12-04 10:00".into()]
                ),
                ("2026-12-05".to_string(), vec![]),
            ]
        );
        assert_eq!(
            h.free_times(d("2026-12-03"), 400, at("2026-12-01 00:00"), &held)
                .len(),
            MAX_DAYS as usize
        );
    }

    #[test]
    fn booked_times_have_one_written_form() {
        for s in [
            "2026-12-05 10:00",
            "2026-12-05T10:00",
            "2026/12/05 10:00",
            "2026-12-05 １０：００",
        ] {
            assert_eq!(slot_text(parse_slot(s).unwrap()), "2026-12-05 10:00", "{s}");
        }
        assert_eq!(slot_text(at("2026-12-05 9:05")), "2026-12-05 09:05");
        for s in ["12/5 午前", "2026-12-05", "2026-13-05 10:00", ""] {
            assert!(parse_slot(s).is_err(), "{s}");
        }
    }
}
