//! The label file that [`export_labels`](crate::export_labels) writes and
//! [`read_label_file`](crate::read_label_file) reads: one [`LabelRecord`] per label, as a
//! JSON list or as CSV (a header line, RFC 4180 quoting); its times are RFC 3339 UTC.

use std::path::{Component, Path};

use serde::Serialize;

use crate::error::ServeError;
use crate::items::Items;
use crate::journal::Source;

/// The CSV columns, in order: the fields of [`LabelRecord`].
pub const LABEL_COLUMNS: [&str; 7] = [
    "item",
    "file",
    "class",
    "class_index",
    "annotator",
    "at",
    "source",
];

/// One label as a label file holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LabelRecord {
    /// The item: its position in the served pool.
    pub item: usize,
    /// Its file relative to the data folder, `/`-separated, for an image-folder pool.
    pub file: Option<String>,
    /// The class name.
    pub class: String,
    /// The class's position in the state's class list.
    pub class_index: usize,
    /// Who gave it (`seed` for the labels the data came with).
    pub annotator: String,
    /// When it was given, RFC 3339 UTC to the millisecond (`None` for the seed labels).
    pub at: Option<String>,
    /// Where it came from: `web`, `label-studio`, `import` or `seed`.
    pub source: String,
}

impl LabelRecord {
    /// The record's CSV fields, in [`LABEL_COLUMNS`] order (`None` as an empty field).
    fn fields(&self) -> [String; 7] {
        [
            self.item.to_string(),
            self.file.clone().unwrap_or_default(),
            self.class.clone(),
            self.class_index.to_string(),
            self.annotator.clone(),
            self.at.clone().unwrap_or_default(),
            self.source.clone(),
        ]
    }
}

/// The name of a label's source in a label file: `seed` for the labels the data came with.
pub fn source_name(source: Option<Source>) -> &'static str {
    match source {
        None => "seed",
        Some(Source::Web) => "web",
        Some(Source::LabelStudio) => "label-studio",
        Some(Source::Import) => "import",
    }
}

/// The pool a state labels, as label files name its items.
#[derive(Clone, Copy, Debug)]
pub struct ServedPool<'a> {
    /// Its items (pixels, the files of a folder pool, classes, seed labels).
    pub items: &'a Items,
    /// The data `baal serve` was given (`settings.json`'s `data`): for a folder pool, the
    /// folder its file names are relative to.
    pub data: &'a Path,
}

impl ServedPool<'_> {
    /// The file of `item` relative to the data folder, `/`-separated; `None` when the pool is
    /// not an image folder.
    ///
    /// # Errors
    /// The item's file is not inside the data folder (items of other data).
    pub fn file_name(&self, item: usize) -> Result<Option<String>, ServeError> {
        let Some(path) = self.items.files.as_ref().and_then(|files| files.get(item)) else {
            return Ok(None);
        };
        let relative = path.strip_prefix(self.data).map_err(|_| {
            ServeError::Config(format!(
                "{} is not inside the data folder {}",
                path.display(),
                self.data.display()
            ))
        })?;
        let parts: Vec<String> = relative
            .components()
            .filter_map(|c| match c {
                Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect();
        Ok(Some(parts.join("/")))
    }
}

/// `records` as CSV: the [`LABEL_COLUMNS`] header, then a line per record, CRLF line ends.
pub fn to_csv(records: &[LabelRecord]) -> String {
    let mut text = LABEL_COLUMNS.join(",");
    text.push_str("\r\n");
    for record in records {
        let fields: Vec<String> = record.fields().iter().map(|f| csv_field(f)).collect();
        text.push_str(&fields.join(","));
        text.push_str("\r\n");
    }
    text
}

/// A CSV field, quoted (quotes doubled) when it holds a comma, a quote or a line break.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// One record of a CSV text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CsvRecord {
    /// The line it starts on, from 1.
    pub line: usize,
    /// Its fields, unquoted.
    pub fields: Vec<String>,
}

/// The records of an RFC 4180 CSV text (LF or CRLF line ends; empty lines are skipped).
///
/// # Errors
/// The line and what is wrong: a quote inside an unquoted field, text after a closing quote,
/// a quoted field never closed.
pub(crate) fn parse_csv(text: &str) -> Result<Vec<CsvRecord>, (usize, String)> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line = 1;
    while chars.peek().is_some() {
        let start = line;
        let mut fields = Vec::new();
        loop {
            let mut field = String::new();
            let quoted = chars.peek() == Some(&'"');
            if quoted {
                chars.next();
                read_quoted(&mut chars, &mut field, &mut line, start)?;
            }
            // After a field: a comma, a line end or the end of the text.
            let mut end_of_record = true;
            while let Some(c) = chars.next() {
                match c {
                    ',' => {
                        end_of_record = false;
                        break;
                    }
                    '\n' => break,
                    '\r' if chars.peek() == Some(&'\n') => {}
                    '"' => return Err((line, "a quote inside an unquoted field".into())),
                    _ if quoted => {
                        return Err((line, format!("{c:?} after a closing quote")));
                    }
                    _ => field.push(c),
                }
            }
            if end_of_record && !quoted && fields.is_empty() && field.is_empty() {
                break; // An empty line.
            }
            fields.push(field);
            if end_of_record {
                break;
            }
        }
        line += 1;
        if !fields.is_empty() {
            records.push(CsvRecord {
                line: start,
                fields,
            });
        }
    }
    Ok(records)
}

/// Reads a quoted field after its opening quote, through its closing quote.
fn read_quoted(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    field: &mut String,
    line: &mut usize,
    start: usize,
) -> Result<(), (usize, String)> {
    loop {
        match chars.next() {
            None => {
                return Err((
                    start,
                    format!("a quoted field opened on line {start} is never closed"),
                ));
            }
            Some('"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            Some('"') => return Ok(()),
            Some(c) => {
                if c == '\n' {
                    *line += 1;
                }
                field.push(c);
            }
        }
    }
}

/// `ms` milliseconds since the Unix epoch as RFC 3339 UTC: `2026-03-04T05:06:07.089Z`.
pub fn rfc3339(ms: u64) -> String {
    let (days, in_day) = (ms / 86_400_000, ms % 86_400_000);
    let (year, month, day) = civil_from_days(days);
    let (seconds, millis) = (in_day / 1000, in_day % 1000);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// The milliseconds since the Unix epoch of an RFC 3339 time
/// (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, from 1970 on); the fraction is cut to
/// milliseconds. `None` for anything else.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let number = |range| number_in(text, range);
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if bytes.len() < 20
        || separators.iter().any(|&(i, c)| bytes[i] != c)
        || !matches!(bytes[10], b'T' | b't' | b' ')
    {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
        || year < 1970
    {
        return None;
    }
    let mut rest = &text[19..];
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", &fraction[..digits.min(3)]);
        millis = padded.parse::<u64>().ok()?;
        rest = &fraction[digits..];
    }
    let offset_minutes: i64 = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let (h, m) = (number_in(rest, 1..3)?, number_in(rest, 4..6)?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * i64::try_from(h * 60 + m).ok()?
        }
        _ => return None,
    };
    let days = i64::try_from(days_from_civil(year, month, day)).ok()?;
    let seconds = days * 86_400 + i64::try_from(hour * 3600 + minute * 60 + second).ok()?
        - offset_minutes * 60;
    let ms = u64::try_from(seconds).ok()? * 1000 + millis;
    Some(ms)
}

/// The decimal number in `text[range]`, digits only.
fn number_in(text: &str, range: std::ops::Range<usize>) -> Option<u64> {
    let digits = text.get(range)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

fn days_in_month(year: u64, month: u64) -> u64 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date from 1970 on (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let (era, year_of_era) = (year / 400, year % 400);
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date (year, month, day) `days` days after 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let days = days + 719_468;
    let (era, day_of_era) = (days / 146_097, days % 146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_and_read_back() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        // 2000-02-29 (a leap day of a century leap year), 12:34:56.789.
        let leap_day = 951_827_696_789;
        assert_eq!(rfc3339(leap_day), "2000-02-29T12:34:56.789Z");
        assert_eq!(rfc3339(1_767_225_599_999), "2025-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(1_767_225_600_000), "2026-01-01T00:00:00.000Z");
        for ms in [
            0,
            leap_day,
            1_767_225_600_000,
            4_102_444_800_000 + 86_399_999,
        ] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms), "{}", rfc3339(ms));
        }
        assert_eq!(
            parse_rfc3339("2000-02-29T14:34:56.7891+02:00"),
            Some(leap_day)
        );
        assert_eq!(parse_rfc3339("2000-02-29t12:34:56.789z"), Some(leap_day));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        for bad in [
            "2000-02-30T00:00:00Z",
            "2001-02-29T00:00:00Z",
            "2000-13-01T00:00:00Z",
            "2000-01-01T24:00:00Z",
            "2000-01-01T00:00:00",
            "2000-01-01T00:00:00.Z",
            "1969-12-31T23:59:59Z",
            "2000-01-01T00:00:00+2:00",
            "yesterday at noon, roughly",
            "",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_it_and_parses_back() {
        let record = LabelRecord {
            item: 3,
            file: None,
            class: "cat, \"big\"".into(),
            class_index: 1,
            annotator: "ann\nsecond line".into(),
            at: Some(rfc3339(0)),
            source: "web".into(),
        };
        let text = to_csv(std::slice::from_ref(&record));
        assert_eq!(
            text,
            "item,file,class,class_index,annotator,at,source\r\n\
             3,,\"cat, \"\"big\"\"\",1,\"ann\nsecond line\",1970-01-01T00:00:00.000Z,web\r\n"
        );
        let records = parse_csv(&format!("{text}\n3,x,y,,,,\n")).expect("parses");
        assert_eq!(records.len(), 3);
        assert_eq!(records[1].line, 2);
        assert_eq!(records[1].fields, record.fields());
        assert_eq!(
            records[2].line, 5,
            "the quoted line break and the empty line count"
        );
        assert_eq!(records[2].fields, ["3", "x", "y", "", "", "", ""]);
    }

    #[test]
    fn malformed_csv_names_the_line() {
        let err = |text: &str| parse_csv(text).expect_err(text);
        assert_eq!(
            err("a,b\n1,x\"y\n"),
            (2, "a quote inside an unquoted field".into())
        );
        assert_eq!(
            err("a,b\n\"1\"x,2\n"),
            (2, "'x' after a closing quote".into())
        );
        assert_eq!(
            err("a,b\n1,2\n\"3,4\n5\n"),
            (3, "a quoted field opened on line 3 is never closed".into())
        );
        assert_eq!(
            parse_csv("a,b")
                .expect("no final line end")
                .first()
                .map(|r| r.fields.clone()),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            parse_csv("a,\"\"\r\n").expect("an empty quoted field")[0].fields,
            ["a", ""]
        );
    }
}
