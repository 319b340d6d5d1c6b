//! KSeF numbers (`docs/numer-ksef.md`): `{seller NIP}-{YYYYMMDD}-{12 upper hex}-{CRC-8}`,
//! 35 characters. The checksum lets a number typed from a printout or read from a QR
//! label be checked before it is used to look anything up.

/// CRC-8, polynomial 0x07, initial value 0x00, no reflection, no final XOR.
pub(crate) fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 {
                (crc << 1) ^ 0x07
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Whether `number` is a well-formed KSeF 2.0 number: a NIP the way KSeF writes it (ten
/// digits, not starting with 0, digits 2–3 not both 0), a calendar date, twelve upper-case
/// hex digits, and the CRC-8 of the first 32 characters as two upper-case hex digits.
/// The 36-character KSeF 1.0 form is not accepted: KSeF 2.0 only issues 35.
pub fn ksef_number_is_valid(number: &str) -> bool {
    let b = number.as_bytes();
    if b.len() != 35 || b[10] != b'-' || b[19] != b'-' || b[32] != b'-' {
        return false;
    }
    let nip = &b[..10];
    let date = &b[11..19];
    let technical = &b[20..32];
    let checksum = &b[33..35];
    let upper_hex = |c: &u8| c.is_ascii_digit() || (b'A'..=b'F').contains(c);
    if !nip.iter().all(u8::is_ascii_digit)
        || nip[0] == b'0'
        || (nip[1] == b'0' && nip[2] == b'0')
        || !date.iter().all(u8::is_ascii_digit)
        || !technical.iter().all(upper_hex)
        || !checksum.iter().all(upper_hex)
    {
        return false;
    }
    // All ASCII from here on, so slicing the str is safe.
    if chrono::NaiveDate::parse_from_str(&number[11..19], "%Y%m%d").is_err() {
        return false;
    }
    format!("{:02X}", crc8(&b[..32])) == number[33..35]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc8_of_the_documented_example() {
        // docs/numer-ksef.md: 5265877635-20250826-0100001AF629-AF
        assert_eq!(crc8(b"5265877635-20250826-0100001AF629"), 0xAF);
        // CRC-8/SMBUS check value (poly 0x07, init 0): "123456789" -> 0xF4.
        assert_eq!(crc8(b"123456789"), 0xF4);
        assert_eq!(crc8(b""), 0);
    }

    #[test]
    fn accepts_the_numbers_in_the_contract() {
        for n in [
            "5265877635-20250826-0100001AF629-AF", // docs/numer-ksef.md
            "5265877635-20250626-010080DD2B5E-26", // open-api.json, session invoice list
            "5265877635-20250916-0200A0D6723E-C2", // upo/upo-faktura-kontekst-id-nip.xml
        ] {
            assert!(ksef_number_is_valid(n), "{n}");
        }
    }

    #[test]
    fn rejects_damaged_numbers() {
        for n in [
            "",
            "5265877635-20250826-0100001AF629-AE", // wrong checksum
            "5265877635-20250826-0100001AF629-af", // lower-case checksum
            "5265877635-20250826-0100001af629-AF", // lower-case technical part
            "5265877636-20250826-0100001AF629-AF", // one NIP digit changed
            "5265877635-20250826-0100001AF6290-AF", // 36 characters
            "5265877635-20250826-0100001AF62-AF",  // 34 characters
            "5265877635 20250826-0100001AF629-AF", // separator
            "0265877635-20250826-0100001AF629-AF", // NIP starting with 0
            "5265877635-20251326-0100001AF629-AF", // month 13
            "5265877635-2025082G-0100001AF629-AF", // not a date
            "5265877635-20250826-0100001AF629-ĄF", // not ASCII
        ] {
            assert!(!ksef_number_is_valid(n), "{n}");
        }
    }

    #[test]
    fn a_correct_checksum_on_a_bad_shape_is_still_rejected() {
        // Month 13 with its own (correct) CRC: the checksum alone does not make a number.
        let data = "5265877635-20251326-0100001AF629";
        let n = format!("{data}-{:02X}", crc8(data.as_bytes()));
        assert!(!ksef_number_is_valid(&n), "{n}");
    }
}
