//! Byte sizes as people write them on a command line: `1MB`, `512KiB`, `1.5G`, `4096`.
//!
//! Decimal units are powers of 1000 (`K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB`), binary units
//! powers of 1024 (`Ki`/`KiB`, `Mi`/`MiB`, `Gi`/`GiB`, `Ti`/`TiB`), as `df -H`/`df -h` and
//! Kubernetes quantities mean them; a bare number (or `B`) is bytes. Units are read
//! case-insensitively (`1mb` is `1MB`). A fraction is allowed (`1.5GB`), rounded down to
//! whole bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A number of bytes parsed from `1MB`, `512KiB`, `4096`; printed back in the largest
/// unit that divides it exactly (`1MB`, `1MiB`, `1500B`), so printing round-trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ByteSize(pub u64);

/// Why a size string was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    /// Not `<number>[unit]`.
    #[error(
        "invalid size {0:?}: expected a number and an optional unit, like 1MB, 512KiB, 1.5G or 4096 (units B, K/KB, M/MB, G/GB, T/TB in powers of 1000; KiB, MiB, GiB, TiB in powers of 1024)"
    )]
    Invalid(String),
    /// More bytes than a u64 holds.
    #[error("invalid size {0:?}: too large")]
    TooLarge(String),
}

/// (unit as printed, bytes), largest first within each family.
const UNITS: [(&str, u64); 8] = [
    ("TiB", 1 << 40),
    ("TB", 1_000_000_000_000),
    ("GiB", 1 << 30),
    ("GB", 1_000_000_000),
    ("MiB", 1 << 20),
    ("MB", 1_000_000),
    ("KiB", 1 << 10),
    ("KB", 1_000),
];

fn unit_bytes(unit: &str) -> Option<u64> {
    Some(match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => return None,
    })
}

impl FromStr for ByteSize {
    type Err = SizeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || SizeError::Invalid(s.to_owned());
        let t = s.trim();
        let num_end = t
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(t.len());
        let (num, unit) = t.split_at(num_end);
        let scale = unit_bytes(unit.trim_start()).ok_or_else(invalid)?;
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() || frac.contains('.') || (num.contains('.') && frac.is_empty()) {
            return Err(invalid());
        }
        let int: u128 = int.parse().map_err(|_| SizeError::TooLarge(s.to_owned()))?;
        let mut bytes = int
            .checked_mul(u128::from(scale))
            .ok_or_else(|| SizeError::TooLarge(s.to_owned()))?;
        if !frac.is_empty() {
            // At most 12 fraction digits matter (a TB is 10^12 bytes).
            let digits = frac.len().min(12);
            let f: u128 = frac[..digits].parse().map_err(|_| invalid())?;
            bytes += f * u128::from(scale) / 10u128.pow(digits as u32);
        }
        u64::try_from(bytes)
            .map(ByteSize)
            .map_err(|_| SizeError::TooLarge(s.to_owned()))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match UNITS
            .iter()
            .find(|(_, n)| self.0 != 0 && self.0.is_multiple_of(*n))
        {
            Some((unit, n)) => write!(f, "{}{unit}", self.0 / n),
            None => write!(f, "{}B", self.0),
        }
    }
}

impl Serialize for ByteSize {
    /// As its number of bytes.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("1MB", 1_000_000)]
    #[case("1M", 1_000_000)]
    #[case("1mb", 1_000_000)]
    #[case("1MiB", 1_048_576)]
    #[case("1Mi", 1_048_576)]
    #[case("512KiB", 524_288)]
    #[case("2K", 2_000)]
    #[case("2kB", 2_000)]
    #[case("1GB", 1_000_000_000)]
    #[case("1GiB", 1_073_741_824)]
    #[case("1TiB", 1_099_511_627_776)]
    #[case("4096", 4096)]
    #[case("4096B", 4096)]
    #[case("0", 0)]
    #[case("1.5GB", 1_500_000_000)]
    #[case("1.5KiB", 1536)]
    #[case("0.5K", 500)]
    #[case(" 10 MB ", 10_000_000)]
    #[case("1.0000000000001KB", 1000)]
    fn parses(#[case] input: &str, #[case] bytes: u64) {
        assert_eq!(input.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{input:?}");
    }

    #[rstest]
    #[case("")]
    #[case("MB")]
    #[case("1XB")]
    #[case("1 M B")]
    #[case("-1MB")]
    #[case("1.MB")]
    #[case(".5MB")]
    #[case("1.2.3MB")]
    #[case("1e6")]
    #[case("24h")]
    fn rejects(#[case] input: &str) {
        assert_eq!(
            input.parse::<ByteSize>(),
            Err(SizeError::Invalid(input.to_owned()))
        );
    }

    #[rstest]
    #[case("18446744073709551616")]
    #[case("20000000TB")]
    #[case("99999999999999999999999999999999999999999")]
    fn refuses_what_a_u64_cannot_hold(#[case] input: &str) {
        assert_eq!(
            input.parse::<ByteSize>(),
            Err(SizeError::TooLarge(input.to_owned()))
        );
    }

    #[rstest]
    #[case(1_000_000, "1MB")]
    #[case(1_048_576, "1MiB")]
    #[case(1_500, "1500B")]
    #[case(1_536, "1536B")]
    #[case(3_072, "3KiB")]
    #[case(1_536_000, "1500KiB")]
    #[case(3_000_000_000, "3GB")]
    #[case(0, "0B")]
    #[case(7, "7B")]
    fn prints_in_the_largest_exact_unit(#[case] bytes: u64, #[case] printed: &str) {
        assert_eq!(ByteSize(bytes).to_string(), printed);
    }

    proptest::proptest! {
        #[test]
        fn display_round_trips(n: u64) {
            proptest::prop_assert_eq!(ByteSize(n).to_string().parse::<ByteSize>(), Ok(ByteSize(n)));
        }
    }
}
