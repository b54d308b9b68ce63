//! The return date an out-of-office reply gives ("I'm back on 12 May", "returning Monday, June 3rd",
//! "out until 2026-05-20"), so a campaign's follow-up waits until the person is back.
//!
//! Only dates that follow a word saying when the person is back or away until are taken, and only
//! dates after the day the reply arrived (within a year): a signature's date or a quoted message's
//! date does not move a follow-up. English month names and ISO dates; nothing else is guessed.

use chrono::{Datelike, NaiveDate};

const CUES: [&str; 9] = ["back", "return", "returning", "until", "till", "through", "thru", "from", "after"];

const MONTHS: [(&str, u32); 24] = [
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("sept", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];

fn month(word: &str) -> Option<u32> {
    MONTHS.iter().find(|(n, _)| *n == word).map(|(_, m)| *m)
}

fn day(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

fn iso(word: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(word, "%Y-%m-%d").ok()
}

/// The date `(month, day, year?)` starting at `words[i]`, in "12 May [2026]" or "May 12[, 2026]".
fn date_at(words: &[String], i: usize) -> Option<(u32, u32, Option<i32>)> {
    let w = |k: usize| words.get(i + k).map(String::as_str);
    let year = |k: usize| w(k).and_then(|y| y.parse::<i32>().ok()).filter(|y| (2000..=2100).contains(y));
    if let (Some(m), Some(d)) = (w(0).and_then(month), w(1).and_then(day)) {
        return Some((m, d, year(2)));
    }
    if let (Some(d), Some(m)) = (w(0).and_then(day), w(1).and_then(month)) {
        return Some((m, d, year(2)));
    }
    None
}

/// The first date after a back-or-until cue that falls after `received` (and within a year of it).
pub fn return_date(text: &str, received: NaiveDate) -> Option<NaiveDate> {
    let words: Vec<String> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | ';' | ':' | '(' | ')' | '!'))
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let latest = received + chrono::Duration::days(366);
    for (i, w) in words.iter().enumerate() {
        if !CUES.iter().any(|c| w.starts_with(c)) {
            continue;
        }
        // The date may follow the cue after a few words ("back in the office on Monday 12 May").
        for j in i + 1..(i + 8).min(words.len()) {
            if let Some(d) = iso(&words[j]) {
                if d > received && d <= latest {
                    return Some(d);
                }
            }
            if let Some((m, d, y)) = date_at(&words, j) {
                // Without a year: this year's date if it is still ahead, else next year's when that
                // is near (a leave over new year), not a stale notice's date a year on.
                let (candidates, horizon) = match y {
                    Some(y) => (vec![y], latest),
                    None => (vec![received.year(), received.year() + 1], received + chrono::Duration::days(120)),
                };
                for y in candidates {
                    if let Some(date) = NaiveDate::from_ymd_opt(y, m, d).filter(|x| *x > received && *x <= horizon) {
                        return Some(date);
                    }
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn reads_the_usual_phrasings() {
        let got = |t: &str| return_date(t, d("2026-05-04"));
        assert_eq!(got("I'm out of office and back on 12 May."), Some(d("2026-05-12")));
        assert_eq!(got("Returning Monday, May 18th, 2026; limited email."), Some(d("2026-05-18")));
        assert_eq!(got("Out until 2026-05-20. For urgent matters call Ana."), Some(d("2026-05-20")));
        assert_eq!(got("I will be back in the office on June 3rd"), Some(d("2026-06-03")));
        assert_eq!(return_date("On leave till 2 Jan", d("2026-12-20")), Some(d("2027-01-02")), "over new year");
    }

    #[test]
    fn no_cue_or_a_past_date_gives_nothing() {
        let got = |t: &str| return_date(t, d("2026-05-04"));
        assert_eq!(got("Thanks for your message of 12 May."), None);
        assert_eq!(got("I am travelling with limited access."), None);
        assert_eq!(got("Back on 1 May"), None, "before the reply arrived");
        assert_eq!(got("back 31 February"), None);
    }
}
