//! Go-style durations (`metav1.Duration`), as Velero writes them: `720h0m0s`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration parsed from and printed in Go's `time.Duration` notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GoDuration(pub std::time::Duration);

/// Why a duration string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DurationError {
    /// The string was empty.
    #[error("empty duration; use a value like 720h, 30m or 1h30m")]
    Empty,
    /// A part of the string is not `<number><unit>`.
    #[error(
        "invalid duration {0:?}: expected a sequence like 720h, 1h30m or 90s (units ns, us, ms, s, m, h)"
    )]
    Invalid(String),
    /// Negative durations make no sense for a TTL or a timeout.
    #[error("invalid duration {0:?}: must not be negative")]
    Negative(String),
}

impl FromStr for GoDuration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        if s.starts_with('-') && s != "-0" {
            return Err(DurationError::Negative(s.to_owned()));
        }
        let body = s.trim_start_matches(['+', '-']);
        if body == "0" {
            return Ok(GoDuration(std::time::Duration::ZERO));
        }
        let invalid = || DurationError::Invalid(s.to_owned());
        let mut nanos: u128 = 0;
        let mut rest = body;
        if rest.is_empty() {
            return Err(invalid());
        }
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(invalid)?;
            if num_end == 0 {
                return Err(invalid());
            }
            let (num, tail) = rest.split_at(num_end);
            let unit_end = tail
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(tail.len());
            let (unit, tail) = tail.split_at(unit_end);
            let scale: u128 = match unit {
                "ns" => 1,
                "us" | "µs" | "μs" => 1_000,
                "ms" => 1_000_000,
                "s" => 1_000_000_000,
                "m" => 60 * 1_000_000_000,
                "h" => 3600 * 1_000_000_000,
                _ => return Err(invalid()),
            };
            let (int, frac) = num.split_once('.').unwrap_or((num, ""));
            if int.is_empty() && frac.is_empty() {
                return Err(invalid());
            }
            let int: u128 = if int.is_empty() {
                0
            } else {
                int.parse().map_err(|_| invalid())?
            };
            let mut add = int.checked_mul(scale).ok_or_else(invalid)?;
            if !frac.is_empty() {
                let digits = frac.len().min(18) as u32;
                let f: u128 = frac[..digits as usize].parse().map_err(|_| invalid())?;
                add += f * scale / 10u128.pow(digits);
            }
            nanos = nanos.checked_add(add).ok_or_else(invalid)?;
            rest = tail;
        }
        let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| invalid())?;
        Ok(GoDuration(std::time::Duration::new(
            secs,
            (nanos % 1_000_000_000) as u32,
        )))
    }
}

impl fmt::Display for GoDuration {
    /// Prints like Go's `time.Duration.String()`: `720h0m0s`, `1m30s`, `1.5s`, `0s`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.is_zero() {
            return f.write_str("0s");
        }
        let total = d.as_nanos();
        if total < 1_000_000_000 {
            return if total < 1_000 {
                write!(f, "{total}ns")
            } else if total < 1_000_000 {
                write!(f, "{}µs", trim_frac(total, 1_000))
            } else {
                write!(f, "{}ms", trim_frac(total, 1_000_000))
            };
        }
        let secs = d.as_secs();
        let (h, m, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
        let sub = d.subsec_nanos() as u128;
        let sec_str = if sub == 0 {
            s.to_string()
        } else {
            trim_frac(s as u128 * 1_000_000_000 + sub, 1_000_000_000)
        };
        if h > 0 {
            write!(f, "{h}h{m}m{sec_str}s")
        } else if m > 0 {
            write!(f, "{m}m{sec_str}s")
        } else {
            write!(f, "{sec_str}s")
        }
    }
}

fn trim_frac(value: u128, unit: u128) -> String {
    let int = value / unit;
    let frac = value % unit;
    if frac == 0 {
        return int.to_string();
    }
    let width = unit.ilog10() as usize;
    let s = format!("{int}.{frac:0width$}");
    s.trim_end_matches('0').to_owned()
}

impl Serialize for GoDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl schemars::JsonSchema for GoDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "GoDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A Go duration: 720h, 1h30m, 90s."
        })
    }
}

impl<'de> Deserialize<'de> for GoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl GoDuration {
    /// Builds a duration of whole hours.
    pub const fn hours(h: u64) -> Self {
        GoDuration(std::time::Duration::from_secs(h * 3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("720h", "720h0m0s")]
    #[case("720h0m0s", "720h0m0s")]
    #[case("1h30m", "1h30m0s")]
    #[case("90s", "1m30s")]
    #[case("1.5s", "1.5s")]
    #[case("10m", "10m0s")]
    #[case("0", "0s")]
    #[case("0s", "0s")]
    #[case("500ms", "500ms")]
    #[case("4h", "4h0m0s")]
    fn parses_and_prints_like_go(#[case] input: &str, #[case] printed: &str) {
        let d: GoDuration = input.parse().unwrap();
        assert_eq!(d.to_string(), printed);
    }

    #[rstest]
    #[case("", DurationError::Empty)]
    #[case("720", DurationError::Invalid("720".into()))]
    #[case("h", DurationError::Invalid("h".into()))]
    #[case("3d", DurationError::Invalid("3d".into()))]
    #[case("1h-30m", DurationError::Invalid("1h-30m".into()))]
    #[case("-5m", DurationError::Negative("-5m".into()))]
    #[case("1x", DurationError::Invalid("1x".into()))]
    fn rejects_bad_durations(#[case] input: &str, #[case] want: DurationError) {
        assert_eq!(input.parse::<GoDuration>(), Err(want), "{input:?}");
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(secs in 0u64..10_000_000, nanos in 0u32..1_000_000_000) {
            let d = GoDuration(std::time::Duration::new(secs, nanos));
            let back: GoDuration = d.to_string().parse().unwrap();
            proptest::prop_assert_eq!(back, d);
        }
    }
}
