//! Percent-decoding (`%2F` → `/`), for storage location URLs' query values and gRPC's
//! `grpc-message` header. One function, panic-free on any input: a `%` not followed by
//! two hex digits is kept as it is, and bytes that do not form UTF-8 become U+FFFD.

/// Decodes `%XX` escapes in `s`.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| hex(*c)),
                b.get(i + 2).and_then(|c| hex(*c)),
            )
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::percent_decode;
    use proptest::prelude::*;
    use rstest::rstest;

    #[rstest]
    #[case::plain("abc", "abc")]
    #[case::slash("a%2Fb", "a/b")]
    #[case::lower_hex("a%2fb", "a/b")]
    #[case::utf8_sequence("%C3%A9t%C3%A9", "été")]
    #[case::trailing_percent("50%", "50%")]
    #[case::one_digit_at_the_end("a%2", "a%2")]
    #[case::not_hex("%zz", "%zz")]
    // The copy this replaced sliced by byte index and panicked here.
    #[case::percent_before_multibyte("%é", "%é")]
    #[case::percent_digit_multibyte("%2é", "%2é")]
    #[case::invalid_utf8("%FF", "\u{FFFD}")]
    #[case::plus_is_not_space("a+b", "a+b")]
    fn decodes(#[case] input: &str, #[case] want: &str) {
        assert_eq!(percent_decode(input), want);
    }

    fn encode(s: &str) -> String {
        s.bytes().map(|b| format!("%{b:02X}")).collect()
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = percent_decode(&s);
        }

        #[test]
        fn round_trips_an_encoded_string(s in any::<String>()) {
            prop_assert_eq!(percent_decode(&encode(&s)), s);
        }

        #[test]
        fn text_without_percent_is_unchanged(s in "[^%]*") {
            prop_assert_eq!(percent_decode(&s), s);
        }
    }
}
