//! Validators: what a regex candidate must also pass to be a finding. Checksums (Luhn, IBAN
//! mod-97), issuer prefixes and printed groupings of cards, the SSA's rules for SSNs,
//! libphonenumber metadata for phone numbers, the shape of a password, real IPv6 addresses,
//! IPv4 addresses that are not version numbers, real calendar dates for dates of birth; and
//! that a number stands alone rather than inside a longer run of digits.

/// A validator sees the candidate inside its text: it may narrow the span (a password's value
/// without the sentence's full stop) or reject the candidate (`None`).
pub(super) type Validator = fn(&str, usize, usize) -> Option<(usize, usize)>;

pub(super) const VALIDATORS: &str = "luhn, card, iban_mod97, digits_8_15, phone, ssn, not_placeholder, \
                          password_value, ipv4, ipv6 or birth_date";

pub(super) fn validator(name: &str) -> Option<Validator> {
    match name {
        "luhn" => Some(luhn_valid),
        "card" => Some(card_valid),
        "iban_mod97" => Some(iban_valid),
        "digits_8_15" => Some(phone_plausible),
        "phone" => Some(phone_valid),
        "ssn" => Some(ssn_valid),
        "not_placeholder" => Some(not_placeholder),
        "password_value" => Some(password_value),
        "ipv4" => Some(ipv4_in_context),
        "ipv6" => Some(ipv6_valid),
        "birth_date" => Some(birth_date),
        _ => None,
    }
}

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

/// A number must stand alone: a valid-looking group inside a longer run of digit groups (the
/// tail of an IBAN, a part of an ISBN, a card number's middle) is not an entity of its own.
fn standalone_number(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let sep = |c: u8| matches!(c, b' ' | b'-' | b'.' | b'/');
    if start > 0 {
        let p = b[start - 1];
        if p.is_ascii_alphanumeric() || p == b'_' {
            return false;
        }
        if sep(p) && start >= 2 && b[start - 2].is_ascii_digit() {
            return false;
        }
    }
    if end < b.len() {
        let n = b[end];
        if n.is_ascii_alphanumeric() || n == b'_' {
            return false;
        }
        if sep(n) && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
            return false;
        }
    }
    true
}

fn luhn_ok(candidate: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0usize;
    for d in candidate.bytes().rev().filter(u8::is_ascii_digit) {
        let d = u32::from(d - b'0');
        let x = if n % 2 == 1 { d * 2 } else { d };
        sum += if x > 9 { x - 9 } else { x };
        n += 1;
    }
    (13..=19).contains(&n) && sum.is_multiple_of(10)
}

fn luhn_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    luhn_ok(&text[start..end]).then_some((start, end))
}

/// A payment card: Luhn, an issuer prefix in use (2–6: Mastercard 2-series, Amex/Diners/JCB,
/// Visa, Mastercard/Maestro, Discover/UnionPay), groups as cards print them (none, fours, or
/// Amex 4-6-5), and not part of a longer number (an IBAN's digits, an ISBN).
fn card_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let c = &text[start..end];
    if !luhn_ok(c) || !matches!(c.as_bytes().first(), Some(b'2'..=b'6')) {
        return None;
    }
    let groups: Vec<usize> = c
        .split([' ', '-'])
        .filter(|g| !g.is_empty())
        .map(str::len)
        .collect();
    let printed = match groups.as_slice() {
        [_] => true,
        [4, 6, 5] | [4, 6, 4] => true,
        [first @ .., last] => first.iter().all(|&g| g == 4) && (1..=4).contains(last),
        [] => false,
    };
    (printed && standalone_number(text, start, end)).then_some((start, end))
}

fn iban_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let compact: Vec<u8> = text[start..end]
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if !(15..=34).contains(&compact.len()) {
        return None;
    }
    let (head, tail) = compact.split_at(4);
    let mut remainder: u32 = 0;
    for &c in tail.iter().chain(head) {
        let value = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return None,
        };
        // Letters expand to two digits (A=10 … Z=35).
        remainder = if value >= 10 {
            (remainder * 100 + value) % 97
        } else {
            (remainder * 10 + value) % 97
        };
    }
    (remainder == 1).then_some((start, end))
}

/// Words just before a dotted quad that make it a version, not an address.
const VERSION_CUES: &[&str] = &[
    "version",
    "ver",
    "release",
    "build",
    "firmware",
    "kernel",
    "revision",
    "rev",
    "patch",
    "update",
    "sdk",
    "package",
    "pkg",
    "library",
    "lib",
    "plugin",
    "driver",
    "bios",
    "chrome",
    "firefox",
    "python",
    "java",
    "ios",
    "android",
    "windows",
    "macos",
    "upgrade",
    "upgraded",
    "downgrade",
    "installed",
    "install",
    "changelog",
    "semver",
];

/// Words near a dotted quad that make it an address.
const NETWORK_CUES: &[&str] = &[
    "ip",
    "ips",
    "ipv4",
    "address",
    "addr",
    "host",
    "hostname",
    "server",
    "client",
    "connect",
    "connected",
    "connection",
    "ping",
    "ssh",
    "gateway",
    "dns",
    "subnet",
    "proxy",
    "port",
    "route",
    "router",
    "firewall",
    "nat",
    "vpn",
    "login",
    "logged",
    "origin",
    "remote",
    "peer",
    "src",
    "dst",
    "source",
    "destination",
    "inet",
    "lan",
    "wan",
    "endpoint",
    "listen",
    "listening",
    "bind",
    "request",
    "requests",
    "blocked",
    "allowlist",
    "whitelist",
    "blacklist",
    "denylist",
    "traffic",
    "packet",
    "packets",
    "node",
    "machine",
    "device",
    "network",
];

/// The lowercase ASCII words of `text`, as (start, word) pairs.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
}

/// A dotted quad is an IPv4 address unless it reads as a version number: written `v1.2.3.4`,
/// part of a longer dotted run (`1.2.3.4.5`), after a package name and `-`/`_`/`==`, or with a
/// version word just before it. With a network word near it, it is an address; with neither,
/// it is one unless every part is a single digit (`2.7.1.0` is more often a version).
fn ipv4_in_context(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let before = |i: usize| start.checked_sub(i).and_then(|j| b.get(j)).copied();
    // `v1.2.3.4`, `1.2.3.4.5`, `5.1.2.3.4`, `app-1.2.3.4`, `pkg==1.2.3.4` (but `user@1.2.3.4`
    // is a login to an address).
    if matches!(before(1), Some(b'v' | b'V'))
        && !before(2).is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    if matches!(before(1), Some(b'.')) && before(2).is_some_and(|c| c.is_ascii_digit()) {
        return None;
    }
    if b.get(end) == Some(&b'.') && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    // `pkg==1.2.3.4` is a pin; `app-1.2.3.4` and `lib_1.2.3.4` are names with versions. A
    // plain `key=1.2.3.4` is an assignment: the key's words decide below (`DB_HOST=`,
    // `client=` are addresses, `version=` is not).
    if before(1) == Some(b'=') && before(2) == Some(b'=') {
        return None;
    }
    if matches!(before(1), Some(b'-' | b'_'))
        && before(2).is_some_and(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    // The words right before: a version word among the last two is decisive.
    let window_start = text.floor_char_boundary(start.saturating_sub(40));
    let preceding: Vec<String> = words(&text[window_start..start]).collect();
    if preceding
        .iter()
        .rev()
        .take(2)
        .any(|w| VERSION_CUES.contains(&w.as_str()))
    {
        return None;
    }
    let after_end = text.ceil_char_boundary((end + 40).min(text.len()));
    let near_network = preceding
        .iter()
        .rev()
        .take(4)
        .chain(
            words(&text[end..after_end])
                .take(3)
                .collect::<Vec<_>>()
                .iter(),
        )
        .any(|w| NETWORK_CUES.contains(&w.as_str()))
        || matches!(b.get(end), Some(b':' | b'/'))
            && b.get(end + 1).is_some_and(u8::is_ascii_digit);
    if near_network {
        return Some((start, end));
    }
    let all_single_digits = text[start..end].split('.').all(|part| part.len() == 1);
    (!all_single_digits).then_some((start, end))
}

/// A date of birth must be a date someone alive could have been born on: a day of 1–31, a
/// month of 1–12 (numeric dates may be day-first or month-first), a year from 1900 to this
/// century (two-digit years too).
fn birth_date(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let c = &text[start..end];
    let numbers: Vec<u32> = c
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .filter_map(|n| n.parse().ok())
        .collect();
    let year_ok = |y: u32| (1900..=2099).contains(&y) || y < 100;
    let day_ok = |d: u32| (1..=31).contains(&d);
    let month_ok = |m: u32| (1..=12).contains(&m);
    let ok = match numbers.as_slice() {
        // A month written as a word: day and year.
        [d, y] => day_ok(*d) && (1900..=2099).contains(y),
        [a, b, c] if *a >= 1000 => year_ok(*a) && month_ok(*b) && day_ok(*c),
        [a, b, c] => year_ok(*c) && ((day_ok(*a) && month_ok(*b)) || (month_ok(*a) && day_ok(*b))),
        _ => false,
    };
    ok.then_some((start, end))
}

/// A real IPv6 address with at least three groups written out (so `a::b` in prose is not one).
fn ipv6_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let c = &text[start..end];
    (c.parse::<std::net::Ipv6Addr>().is_ok() && c.split(':').filter(|g| !g.is_empty()).count() >= 3)
        .then_some((start, end))
}

fn is_placeholder(v: &str) -> bool {
    let v = v.trim_matches(|c| matches!(c, ',' | ';' | ')' | '.'));
    let masked = !v.is_empty() && v.chars().all(|c| matches!(c, '*' | 'x' | 'X' | '•' | '.'));
    let templated = v.starts_with("${")
        || v.starts_with("{{")
        || v.starts_with('<')
        || v.starts_with('[')
        || v.starts_with('%')
        || v.starts_with("$(");
    // `$DB_PASSWORD`: a shell variable, not its value.
    let variable = v.len() > 1
        && v.starts_with('$')
        && v[1..]
            .bytes()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
    masked
        || templated
        || variable
        || v.eq_ignore_ascii_case("password")
        || v.eq_ignore_ascii_case("changeme")
}

/// Rejects template placeholders and masked values that look like assignments of secrets.
fn not_placeholder(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    (!is_placeholder(&text[start..end])).then_some((start, end))
}

/// A password value in prose or on a command line, where there is no `key = value` to vouch for
/// it: it must look like a password (6+ characters of at least two kinds: lower, upper, digit,
/// symbol), so "my password is wrong" is not one. A full stop or comma closing the sentence is
/// not part of the value.
fn password_value(text: &str, start: usize, mut end: usize) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let at_end = |e: usize| e >= b.len() || b[e].is_ascii_whitespace();
    if end - start > 6 && at_end(end) && matches!(b[end - 1], b'.' | b',' | b';' | b':' | b')') {
        end -= 1;
    }
    let v = &text[start..end];
    if v.len() < 6 || is_placeholder(v) {
        return None;
    }
    let kinds = [
        v.bytes().any(|c| c.is_ascii_lowercase()),
        v.bytes().any(|c| c.is_ascii_uppercase()),
        v.bytes().any(|c| c.is_ascii_digit()),
        v.bytes().any(|c| !c.is_ascii_alphanumeric()),
    ];
    (kinds.iter().filter(|&&k| k).count() >= 2).then_some((start, end))
}

fn phone_plausible(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    (8..=15)
        .contains(&digit_count(&text[start..end]))
        .then_some((start, end))
}

/// A US Social Security number: the regex enforces the SSA's rules (area not 000, 666 or 9xx,
/// group not 00, serial not 0000); here it must also stand alone, so `123 45 6789` inside a
/// longer digit sequence (an account number printed in groups) is not one.
fn ssn_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let digits: Vec<u8> = text[start..end]
        .bytes()
        .filter(u8::is_ascii_digit)
        .collect();
    // Numbers the SSA never issued and that appear in examples: one digit repeated.
    let repeated = digits.windows(2).all(|w| w[0] == w[1]);
    (digits.len() == 9 && !repeated && standalone_number(text, start, end)).then_some((start, end))
}

/// Digits after a four-character upper-case group ("IE05 QOAO 0173 9175 …") are the tail of an
/// IBAN (one whose checksum failed), not a phone number.
fn after_iban_group(text: &str, start: usize) -> bool {
    let b = text.as_bytes();
    start >= 6
        && b[start - 1] == b' '
        && b[start - 5..start - 1]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && !b[start - 6].is_ascii_alphanumeric()
}

/// Dates and times written with separators (`03.12.2024`, `2024-01-12`, `12/03/24`) are never
/// phone numbers, whatever the metadata says.
fn date_like(c: &str) -> bool {
    let groups: Vec<&str> = c.split(['.', '-', '/', ' ']).collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    matches!(lens.as_slice(), [1 | 2, 1 | 2, 2 | 4] | [4, 1 | 2, 1 | 2])
}

/// Regions tried for a national number with a trunk prefix `0` (or a bracketed area code),
/// most common first. Each try parses and checks the number against libphonenumber metadata.
const TRUNK_ZERO_REGIONS: &[phonenumber::country::Id] = {
    use phonenumber::country::Id::*;
    &[
        GB, DE, FR, IN, NL, AU, IT, BE, AT, CH, IE, SE, JP, BR, ZA, NZ, MX,
    ]
};
/// Regions whose national numbers have no trunk prefix: NANP first.
const NO_TRUNK_REGIONS: &[phonenumber::country::Id] = {
    use phonenumber::country::Id::*;
    &[US, IT, ES, PL, PT, DK, NO]
};

/// A phone number, validated against libphonenumber's metadata (through the `phonenumber`
/// crate): `+` numbers by their country code, national numbers by the regions whose format
/// they could be. Only candidates from the regex reach this, so texts without a number-like
/// run never pay for it.
fn phone_valid(text: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    // The crate compiles its metadata regexes lazily into a shared LRU cache of 100; checking
    // numbers of many regions needs more than that, and a thrashing cache recompiled regexes
    // on every candidate (half a millisecond per text). Enlarge it once; it only grows as
    // regions are used.
    static CACHE: std::sync::Once = std::sync::Once::new();
    CACHE.call_once(|| {
        if let Ok(mut cache) = phonenumber::metadata::DATABASE.cache().lock() {
            cache.set_capacity(4096);
        }
    });
    let c = &text[start..end];
    let n = digit_count(c);
    if !(7..=15).contains(&n)
        || !standalone_number(text, start, end)
        || after_iban_group(text, start)
    {
        return None;
    }
    let valid_in = |region: Option<phonenumber::country::Id>| {
        phonenumber::parse(region, c).is_ok_and(|num| phonenumber::is_valid(&num))
    };
    if c.starts_with('+') {
        return valid_in(None).then_some((start, end));
    }
    if date_like(c) {
        return None;
    }
    let national = c.trim_start_matches('(');
    let regions = if national.starts_with('0') {
        TRUNK_ZERO_REGIONS
    } else {
        NO_TRUNK_REGIONS
    };
    regions
        .iter()
        .any(|&r| valid_in(Some(r)))
        .then_some((start, end))
}

#[cfg(test)]
mod tests {
    use crate::test_support::{assert_found, assert_no, entities};

    #[test]
    fn finds_ipv6_but_not_times_or_mac_like_text() {
        for (text, addr) in [
            ("from 2001:db8:aa19::c6cb failed", "2001:db8:aa19::c6cb"),
            (
                "peer fe80:0000:0000:0000:0202:b3ff:fe1e:8329 up",
                "fe80:0000:0000:0000:0202:b3ff:fe1e:8329",
            ),
        ] {
            assert!(
                entities(text).contains(&("IP_ADDRESS".into(), addr.into())),
                "{text}: {:?}",
                entities(text)
            );
        }
        assert!(entities("meeting at 12:30:45 today").is_empty());
        assert!(entities("use std::io::Read;").is_empty());
    }

    #[test]
    fn ipv4_addresses_are_found_and_version_numbers_are_not() {
        let found = |text: &str, addr: &str| {
            assert!(
                entities(text).contains(&("IP_ADDRESS".into(), addr.into())),
                "{text}: {:?}",
                entities(text)
            );
        };
        let no_ip = |text: &str| {
            assert!(
                !entities(text).iter().any(|(e, _)| e == "IP_ADDRESS"),
                "{text}: {:?}",
                entities(text)
            );
        };
        found("ssh admin@10.20.30.40 -p 2222", "10.20.30.40");
        found("Failed login from 203.0.113.77 at 09:14", "203.0.113.77");
        found("the DNS server is 8.8.8.8", "8.8.8.8");
        found("curl http://192.168.1.20:8080/health", "192.168.1.20");
        found("subnet 172.16.0.0/12 is internal", "172.16.0.0");
        found("Her laptop had 192.168.0.14 yesterday.", "192.168.0.14");
        // Assignments: the key's words decide (these two were missed: a `key=` before an
        // address read as a name with a version).
        found(
            "INFO api[42]: client=10.221.16.240 method=GET",
            "10.221.16.240",
        );
        found("DB_HOST=192.168.161.111", "192.168.161.111");
        no_ip("kernel_version=4.18.0.305");
        no_ip("Upgraded to version 4.18.0.305 last week");
        no_ip("running v1.2.3.4 in staging");
        no_ip("pip install foo==2.31.0.1");
        no_ip("release 10.2.1.7 fixes the crash");
        no_ip("firmware 3.10.2.44 is out");
        no_ip("see section 1.2.3.4.5 of the spec");
        no_ip("build 2.7.1.0 passed");
        no_ip("Chrome 120.0.6099.109 on Windows");
        no_ip("requires node-18.19.0.1 or later");
    }

    #[test]
    fn street_addresses_are_locations_without_a_cue() {
        for (text, addr) in [
            (
                "Ship it to 1600 Pennsylvania Avenue, Washington",
                "1600 Pennsylvania Avenue",
            ),
            (
                "office: 17066 Heather Grove Apt. 915",
                "17066 Heather Grove Apt. 915",
            ),
            ("221B Baker Street is closed", "221B Baker Street"),
            (
                "Lieferung an Rose-Krebs-Straße 7, 80636 München",
                "Rose-Krebs-Straße 7",
            ),
            ("Bezoekadres: Thomstraat 12a", "Thomstraat 12a"),
            (
                "Envoyer au 8, rue Jeanne Henry à Lyon",
                "8, rue Jeanne Henry",
            ),
            (
                "Dirección: Calle de Alcalá 45, Madrid",
                "Calle de Alcalá 45",
            ),
            ("Consegna in Piazza Pellico, 59", "Piazza Pellico, 59"),
            ("Viale Vanessa, 8 Piano 7", "Viale Vanessa, 8 Piano 7"),
            ("Urs-Seip-Ring 6/4", "Urs-Seip-Ring 6/4"),
        ] {
            assert!(
                entities(text).contains(&("LOCATION".into(), addr.into())),
                "{text}: {:?}",
                entities(text)
            );
        }
        for text in [
            "We shipped 3 Big Updates this week.",
            "Send it via HTTP 2 please",
            "Section 4 Road Safety rules apply",
            "There are 12 Main Reasons to upgrade",
        ] {
            assert!(
                !entities(text).iter().any(|(e, _)| e == "LOCATION"),
                "{text}: {:?}",
                entities(text)
            );
        }
    }

    #[test]
    fn dates_of_birth_after_a_cue_in_several_languages() {
        for (text, date) in [
            ("Patient DOB: 1985-03-12, admitted today", "1985-03-12"),
            ("date of birth 12/03/1985", "12/03/1985"),
            ("D.O.B. 03.12.85", "03.12.85"),
            ("She was born on 7 March 1990 in Leeds.", "7 March 1990"),
            ("born on March 7th, 1990", "March 7th, 1990"),
            ("Birthday: 12th of August 1979", "12th of August 1979"),
            ("Marie, née le 3 février 1988 à Lyon", "3 février 1988"),
            ("geboren am 14. März 1975 in Köln", "14. März 1975"),
            ("Geburtsdatum: 01.02.1960", "01.02.1960"),
            (
                "fecha de nacimiento: 5 de mayo de 1992",
                "5 de mayo de 1992",
            ),
            ("nato il 21/06/1983 a Roma", "21/06/1983"),
            ("data de nascimento 30/11/1970", "30/11/1970"),
            ("geboortedatum 9 mei 1999", "9 mei 1999"),
            // Keys in configuration files and logs.
            ("date_of_birth: 21 September 2004", "21 September 2004"),
            (
                "fecha_de_nacimiento: 7 de agosto de 1997",
                "7 de agosto de 1997",
            ),
            ("Date de naissance : 27 juin 1995", "27 juin 1995"),
            ("payload ssn=256-69-8692 dob=1962-09-21", "1962-09-21"),
        ] {
            assert!(
                entities(text).contains(&("DATE_OF_BIRTH".into(), date.into())),
                "{text}: {:?}",
                entities(text)
            );
        }
        for text in [
            "The meeting is on 2024-03-12.",
            "Invoice date 12/03/2024",
            "born on 45/13/1985",
            "date of birth: unknown, see form 12",
            "Version 1.2 was born out of necessity in 2019",
        ] {
            assert!(
                !entities(text).iter().any(|(e, _)| e == "DATE_OF_BIRTH"),
                "{text}: {:?}",
                entities(text)
            );
        }
    }

    #[test]
    fn checksums_reject_lookalikes() {
        assert!(
            entities("order 4111 1111 1111 1112")
                .iter()
                .all(|(e, _)| e != "CREDIT_CARD")
        );
        assert!(
            entities("DE89 3704 0044 0532 0130 00")
                .iter()
                .any(|(e, _)| e == "IBAN")
        );
        assert!(
            entities("DE88 3704 0044 0532 0130 00")
                .iter()
                .all(|(e, _)| e != "IBAN")
        );
    }

    #[test]
    fn ssn_dashed_spaced_and_labelled_with_byte_offsets() {
        assert_found(
            "Sozialversicherung für Jürgen: 123-45-6789",
            "SSN",
            "123-45-6789",
        );
        assert_found("her social is 326 63 2441 — ok", "SSN", "326 63 2441");
        assert_found("Grüße, SSN: 296 82 9858.", "SSN", "296 82 9858");
        assert_found("Größe ok. SSN: 296829858", "SSN", "296829858");
        // Also a valid Irish national number: the SSN shape wins the tie.
        assert_found(
            "order #17810053\nssn: \"087-25-5365\"",
            "SSN",
            "087-25-5365",
        );
        assert_found(
            "social security number 078051121 on file",
            "SSN",
            "078051121",
        );
    }

    #[test]
    fn ssn_near_misses_are_rejected() {
        for text in [
            "ssn 000 12 3456",
            "ssn 666 12 3456",
            "ssn 912 12 3456",
            "ssn 123 00 4567",
            "ssn 123 45 0000",
            "ssn 111 11 1111",
            // Groups inside a longer run of digit groups (an account number, an IBAN tail).
            "acct 12 123 45 6789 00",
            "IBAN DE12 3456 123 45 6789",
            // Nine digits without an SSN label are an order number.
            "order #969544456 shipped",
            "ref 123-45-67890",
        ] {
            assert_no(text, "SSN");
        }
    }

    #[test]
    fn national_phone_formats_are_validated_with_libphonenumber() {
        assert_found("ONCALL_PHONE=(201) 290-3471", "PHONE", "(201) 290-3471");
        assert_found("Rückruf: 201-290-3471 bitte", "PHONE", "201-290-3471");
        assert_found("his number: 07402 574754", "PHONE", "07402 574754");
        assert_found("Büro (030 897795) ist besetzt", "PHONE", "030 897795");
        assert_found("whatsapp 01517 3101092 👍", "PHONE", "01517 3101092");
        assert_found("Appelez le 06 12 95 00 49 svp", "PHONE", "06 12 95 00 49");
        assert_found("London office 020 7946 0958.", "PHONE", "020 7946 0958");
        assert_found("mobile (IN): 081234 56789", "PHONE", "081234 56789");
        assert_found("tel: 07402574754", "PHONE", "07402574754");
        assert_found("Grüße — call +44 20 7946 0958", "PHONE", "+44 20 7946 0958");
    }

    #[test]
    fn number_like_text_is_not_a_phone() {
        for text in [
            "ref=order #7187358055",
            "build_id: PO-2024-315018",
            "due 03.12.2024 or 2024-01-12 or 12/03/2024",
            "isbn 978-0-236-72107-0",
            "version 10.0.22241.3508",
            "card 4111 1111 1111 1111",
            "iban PL33 3937 6584 6590 8462 0192 8075",
            "amount $39,041.32",
            "ts 2023-03-06T11:17:36.969Z",
            "call 0123 456789 123456",
            "version=IE05 QOAO 0173 9175 7678 87",
            // A valid-looking shape that no region's metadata accepts.
            "call (999) 999-9999",
        ] {
            assert_no(text, "PHONE");
        }
    }

    #[test]
    fn cards_need_issuer_prefix_grouping_and_to_stand_alone() {
        assert_found(
            "Karte 3782 822463 10005 (Amex)",
            "CREDIT_CARD",
            "3782 822463 10005",
        );
        assert_found("pan=5555555555554444", "CREDIT_CARD", "5555555555554444");
        // ISBN-13 with a passing Luhn digit, a card-shaped run inside an IBAN.
        assert_no("version=978-1-339-44795-1", "CREDIT_CARD");
        assert_no("version: PL33 3937 6584 6590 8462 0192 8075", "CREDIT_CARD");
        assert_no("id 8111 1111 1111 1113", "CREDIT_CARD");
    }

    #[test]
    fn passwords_in_prose_and_on_command_lines() {
        assert_found(
            "Schöne Grüße! My temporary password is ZWH%Z9EhB@44.",
            "PASSWORD",
            "ZWH%Z9EhB@44",
        );
        assert_found(
            "[11:20] Friedhold: pw is uX+Z0SVS&adK5ofk*t",
            "PASSWORD",
            "uX+Z0SVS&adK5ofk*t",
        );
        assert_found(
            "the password for the VPN was Kx9#mPq2",
            "PASSWORD",
            "Kx9#mPq2",
        );
        assert_found(
            "Bärbel: mysql -u root --password 4bP3dEh6 -h localhost",
            "PASSWORD",
            "4bP3dEh6",
        );
        assert_found(
            "deploy --db-password=Zq8!rT5w --yes",
            "PASSWORD",
            "Zq8!rT5w",
        );
        assert_found("mysqldump -uroot -pS3cr3tPw app", "PASSWORD", "S3cr3tPw");
        assert_found(
            "sshpass -p 'Tr0ub4dor&3' ssh ops@host",
            "PASSWORD",
            "Tr0ub4dor&3",
        );
        assert_found(
            "curl -u admin:Hunt3r2go https://api",
            "PASSWORD",
            "Hunt3r2go",
        );
        assert_found("PGPASSWORD=s3cr3t-Pass psql", "PASSWORD", "s3cr3t-Pass");
    }

    #[test]
    fn password_near_misses_are_rejected() {
        for text in [
            "my password is incorrect",
            "the password is expired, please reset it",
            "password is 12345678",
            "Reset your password at the link below",
            "run with --password-file /etc/app/pw",
            "mysql --password $DB_PASS -h db",
            "mkdir -p /tmp/build && ssh -p 2222 host",
            "docker run -p 8080:80 nginx",
        ] {
            assert_no(text, "PASSWORD");
        }
    }
}
