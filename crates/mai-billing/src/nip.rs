//! Polish NIP (tax id) validation (spec §5). The FA(3) XSD checks only the shape, so
//! the checksum is ours to enforce before an invoice goes out.

const WEIGHTS: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];

/// Why a NIP was rejected, in words an operator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NipError {
    #[error("NIP `{0}` must have exactly 10 digits (spaces, dashes and a leading PL are ignored)")]
    Length(String),
    #[error("NIP `{0}` has an invalid structure: the first digit cannot be 0 and digits 2-3 cannot both be 0")]
    Structure(String),
    #[error("NIP `{0}` has a wrong check digit: re-type it from the client's documents")]
    Checksum(String),
}

/// Strips separators and a leading `PL`, returning the 10 digits if the NIP is valid.
pub fn normalise_nip(input: &str) -> Result<String, NipError> {
    let mut s: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    // `get`, not indexing: the first two bytes may split a character (`1Β…`, fuzzing).
    if s.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("PL")) {
        s = s[2..].to_string();
    }
    if s.len() != 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NipError::Length(input.to_string()));
    }
    let d: Vec<u32> = s.bytes().map(|b| u32::from(b - b'0')).collect();
    // Same rule as the XSD pattern [1-9]((\d[1-9])|([1-9]\d))\d{7}.
    if d[0] == 0 || (d[1] == 0 && d[2] == 0) {
        return Err(NipError::Structure(input.to_string()));
    }
    let sum: u32 = WEIGHTS.iter().zip(&d).map(|(w, x)| w * x).sum();
    let check = sum % 11;
    if check == 10 || check != d[9] {
        return Err(NipError::Checksum(input.to_string()));
    }
    Ok(s)
}

pub fn is_valid_nip(input: &str) -> bool {
    normalise_nip(input).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_across_the_first_two_bytes_is_an_error_not_a_panic() {
        // Found by the fleet_file fuzz target: a Greek capital beta in second place.
        assert!(matches!(
            normalise_nip("1\u{392}4563218"),
            Err(NipError::Length(_))
        ));
        assert!(matches!(normalise_nip("\u{f3}"), Err(NipError::Length(_))));
    }

    #[test]
    fn spec_test_vectors() {
        assert_eq!(normalise_nip("1234563218").unwrap(), "1234563218");
        assert_eq!(normalise_nip("9876543210").unwrap(), "9876543210");
        assert!(matches!(
            normalise_nip("1234563219"),
            Err(NipError::Checksum(_))
        ));
        // remainder 10: never issued
        assert!(matches!(
            normalise_nip("1234567890"),
            Err(NipError::Checksum(_))
        ));
        assert!(matches!(
            normalise_nip("0000000000"),
            Err(NipError::Structure(_))
        ));
    }

    #[test]
    fn separators_and_prefix() {
        assert_eq!(normalise_nip("PL 123-456-32-18").unwrap(), "1234563218");
        assert_eq!(normalise_nip("pl9876543210").unwrap(), "9876543210");
        assert!(matches!(normalise_nip("12345"), Err(NipError::Length(_))));
        assert!(matches!(
            normalise_nip("12345632a8"),
            Err(NipError::Length(_))
        ));
    }
}
