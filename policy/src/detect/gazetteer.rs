//! PERSON and LOCATION without a model: one pass over the capitalised words of the text, looked
//! up in gazetteers (US Census given names and surnames, GeoNames places; see the headers of
//! `policy/rules/person_names.txt` and `places.txt`), combined with cues around them.
//!
//! * PERSON: a known given name that is not also an English word ("Paul", "Hans-Georg" when
//!   both parts are known), extended over the surname that follows; an ambiguous given name
//!   ("Will", "Mark") only with a known surname after it; and any capitalised name after a
//!   strong cue: a title (`Mr.`, `Dr.`, `Frau`), a greeting (`Hi …,`), a sign-off line
//!   (`Best regards,⏎Name`), a chat speaker (`[10:42] Name:`) or an introduction
//!   (`my name is …`).
//! * LOCATION: places are reported only where the text ties them to a person (`lives in`,
//!   `born in`, `moved to`, `ship to`, `from`, `city:` …). A place alone ("the weather in
//!   Paris") is not personal data, and redacting every city would break ordinary prompts.
//!
//! This is honest about its limits: names missing from the US-centric Census lists, lowercase
//! names and places mentioned without a cue are missed; capitalised common words that are
//! names produce false positives. Tokens are hashed (lowercased, Latin accents folded) and
//! looked up in one hash map; nothing allocates per token.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::OnceLock;

const PERSON_FILE: &str = include_str!("../../rules/person_names.txt");
const PLACE_FILE: &str = include_str!("../../rules/places.txt");

const GIVEN: u8 = 1;
const GIVEN_AMBIGUOUS: u8 = 2;
const SURNAME: u8 = 4;
const SURNAME_AMBIGUOUS: u8 = 8;
const PLACE: u8 = 16;
const PLACE_AMBIGUOUS: u8 = 32;
/// The words so far are the start of a longer place name ("New" of "New York").
const PLACE_PREFIX: u8 = 64;
/// A capitalised word that is not a name after a cue ("Hi Team", "born in March").
const NOT_NAME: u8 = 128;
/// Longest place name looked up, in words.
const MAX_PLACE_WORDS: usize = 5;
/// Longest name taken after a cue, in words.
const MAX_NAME_WORDS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entity {
    Person,
    Location,
}

/// Keys are already FNV hashes; hashing them again would only cost time.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(FNV_PRIME);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

struct Gazetteer {
    flags: HashMap<u64, u8, BuildHasherDefault<Prehashed>>,
    titles: CueSet,
    greetings: CueSet,
    introductions: CueSet,
    sign_offs: CueSet,
    strong_place_cues: CueSet,
    place_cues: CueSet,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

fn feed(h: u64, b: u8) -> u64 {
    (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
}

/// Lowercases one character and folds Latin accents, so "Müller" finds the Census
/// "MULLER" and "São Paulo" finds "Sao Paulo"; other letters hash as their lowercase.
fn feed_char(mut h: u64, c: char) -> u64 {
    if c.is_ascii() {
        return feed(h, c.to_ascii_lowercase() as u8);
    }
    let folded: &str = match c {
        'À'..='Å' | 'à'..='å' | 'Ā' | 'ā' | 'Ă' | 'ă' | 'Ą' | 'ą' => "a",
        'Æ' | 'æ' => "ae",
        'Ç' | 'ç' | 'Ć' | 'ć' | 'Č' | 'č' => "c",
        'È'..='Ë' | 'è'..='ë' | 'Ē' | 'ē' | 'Ė' | 'ė' | 'Ę' | 'ę' | 'Ě' | 'ě' => "e",
        'Ì'..='Ï' | 'ì'..='ï' | 'Ī' | 'ī' | 'İ' | 'ı' => "i",
        'Ð' | 'ð' | 'Đ' | 'đ' | 'Ď' | 'ď' => "d",
        'Ñ' | 'ñ' | 'Ń' | 'ń' | 'Ň' | 'ň' => "n",
        'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' | 'Ō' | 'ō' | 'Ő' | 'ő' => "o",
        'Œ' | 'œ' => "oe",
        'Ù'..='Ü' | 'ù'..='ü' | 'Ū' | 'ū' | 'Ů' | 'ů' | 'Ű' | 'ű' => "u",
        'Ý' | 'ý' | 'ÿ' | 'Ÿ' => "y",
        'ß' => "ss",
        'Ł' | 'ł' | 'Ľ' | 'ľ' => "l",
        'Ś' | 'ś' | 'Š' | 'š' | 'Ş' | 'ş' | 'Ș' | 'ș' => "s",
        'Ź' | 'ź' | 'Ż' | 'ż' | 'Ž' | 'ž' => "z",
        'Ř' | 'ř' => "r",
        'Ť' | 'ť' | 'Ţ' | 'ţ' | 'Ț' | 'ț' => "t",
        'Ğ' | 'ğ' => "g",
        '’' => "'",
        _ => {
            for l in c.to_lowercase() {
                let mut buf = [0u8; 4];
                for &b in l.encode_utf8(&mut buf).as_bytes() {
                    h = feed(h, b);
                }
            }
            return h;
        }
    };
    for b in folded.bytes() {
        h = feed(h, b);
    }
    h
}

fn is_letter(c: char) -> bool {
    c.is_ascii_alphabetic() || (!c.is_ascii() && c.is_alphabetic())
}

/// A word: letters, with `-` or an apostrophe between letters ("Hans-Georg", "O'Brien").
#[derive(Clone, Copy)]
struct Word {
    start: usize,
    end: usize,
    /// Upper-case first letter and a lower-case letter after it: "Paul", not "PAUL"/"paul".
    capitalised: bool,
}

fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..).and_then(|s| s.chars().next())
}

fn char_before(text: &str, i: usize) -> Option<char> {
    text.get(..i).and_then(|s| s.chars().next_back())
}

fn word_at(text: &str, start: usize) -> Option<Word> {
    let first = char_at(text, start).filter(|&c| is_letter(c))?;
    let mut end = start + first.len_utf8();
    let mut lower_after_first = false;
    while let Some(c) = char_at(text, end) {
        if is_letter(c) {
            lower_after_first |= c.is_lowercase();
            end += c.len_utf8();
        } else if matches!(c, '-' | '\'' | '’')
            && char_at(text, end + c.len_utf8()).is_some_and(is_letter)
        {
            end += c.len_utf8();
        } else {
            break;
        }
    }
    Some(Word {
        start,
        end,
        capitalised: first.is_uppercase() && lower_after_first,
    })
}

fn hash_word(h: u64, text: &str, w: Word) -> u64 {
    text[w.start..w.end].chars().fold(h, feed_char)
}

/// The next word after `w` on the same line, with one space between (or ". " inside a
/// place name such as "St. Gallen").
fn next_word(text: &str, w: Word) -> Option<Word> {
    let rest = text.get(w.end..)?;
    let skip = if rest.starts_with(' ') {
        1
    } else if rest.starts_with(". ") {
        2
    } else {
        return None;
    };
    word_at(text, w.end + skip)
}

impl Gazetteer {
    fn load() -> Gazetteer {
        let mut flags: HashMap<u64, u8, BuildHasherDefault<Prehashed>> =
            HashMap::with_capacity_and_hasher(100_000, BuildHasherDefault::default());
        for line in PERSON_FILE.lines().chain(PLACE_FILE.lines()) {
            let Some((tag, name)) = line.split_once(' ') else {
                continue;
            };
            let flag = match tag {
                "g" => GIVEN,
                "g?" => GIVEN_AMBIGUOUS,
                "s" => SURNAME,
                "s?" => SURNAME_AMBIGUOUS,
                "p" => PLACE,
                "p?" => PLACE | PLACE_AMBIGUOUS,
                _ => continue,
            };
            // Hash the name word by word exactly as the scanner will read it.
            let mut h = FNV_OFFSET;
            let mut w = word_at(name, 0);
            if w.is_none() {
                continue;
            }
            let mut words = 0;
            while let Some(word) = w {
                if words > 0 {
                    *flags.entry(h).or_default() |= PLACE_PREFIX;
                    h = feed(h, b' ');
                }
                h = hash_word(h, name, word);
                words += 1;
                w = next_word(name, word);
                if words == MAX_PLACE_WORDS {
                    break;
                }
            }
            if w.is_none() {
                *flags.entry(h).or_default() |= flag;
            }
        }
        for n in NOT_NAMES {
            *flags
                .entry(n.chars().fold(FNV_OFFSET, feed_char))
                .or_default() |= NOT_NAME;
        }
        Gazetteer {
            flags,
            titles: CueSet::new(TITLES),
            greetings: CueSet::new(GREETINGS),
            introductions: CueSet::new(INTRODUCTIONS),
            sign_offs: CueSet::new(SIGN_OFFS),
            strong_place_cues: CueSet::new(STRONG_PLACE_CUES),
            place_cues: CueSet::new(PLACE_CUES),
        }
    }

    fn get(&self, h: u64) -> u8 {
        self.flags.get(&h).copied().unwrap_or(0)
    }
}

fn gazetteer() -> &'static Gazetteer {
    static G: OnceLock<Gazetteer> = OnceLock::new();
    G.get_or_init(Gazetteer::load)
}

/// Case-insensitive ASCII `ends_with` that also needs a word boundary before the cue.
fn ends_with_word(hay: &str, cue: &str) -> bool {
    let (h, c) = (hay.as_bytes(), cue.as_bytes());
    h.len() >= c.len()
        && h[h.len() - c.len()..].eq_ignore_ascii_case(c)
        && (h.len() == c.len() || !h[h.len() - c.len() - 1].is_ascii_alphanumeric())
}

/// Cue phrases grouped by their last byte, so testing the text before a word costs one
/// table look-up for most words rather than one comparison per cue.
struct CueSet {
    by_last: Vec<Vec<&'static str>>,
}

impl CueSet {
    fn new(cues: &[&'static str]) -> CueSet {
        let mut by_last = vec![Vec::new(); 256];
        for c in cues {
            if let Some(&l) = c.as_bytes().last() {
                by_last[usize::from(l.to_ascii_lowercase())].push(*c);
            }
        }
        CueSet { by_last }
    }

    /// Whether `before` (text up to the word, spaces trimmed) ends with one of the cues.
    fn ends(&self, before: &str) -> bool {
        let Some(&l) = before.as_bytes().last() else {
            return false;
        };
        self.by_last[usize::from(l.to_ascii_lowercase())]
            .iter()
            .any(|c| ends_with_word(before, c))
    }
}

/// Up to this many bytes before a word are read for cues (all cues are shorter), so a long
/// line costs nothing extra per word.
const CUE_WINDOW: usize = 48;

/// The text just before a word on its line (at most `CUE_WINDOW` bytes), spaces trimmed,
/// and whether that reaches back to the start of the line.
fn before_on_line(text: &str, start: usize) -> (&str, bool) {
    let mut from = start.saturating_sub(CUE_WINDOW);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    let window = &text[from..start];
    let (window, line_start) = match window.rfind('\n') {
        Some(i) => (&window[i + 1..], true),
        None => (window, from == 0),
    };
    (window.trim_end_matches([' ', '\t']), line_start)
}

const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "mx", "miss", "dr", "prof", "sir", "dame", "herr", "frau", "mme", "mlle",
    "monsieur", "madame", "señor", "señora", "senor", "senora", "sr", "sra", "signor", "signora",
    "sig", "dott", "mevrouw", "meneer", "dhr", "mevr",
];
const GREETINGS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "dear",
    "hallo",
    "liebe",
    "lieber",
    "bonjour",
    "ciao",
    "hola",
    "good morning",
    "morning",
    "thanks",
    "thank you",
    "beste",
    "caro",
    "cara",
    "querido",
    "querida",
];
/// Introductions vouch for any capitalised name, not only a known given name.
const INTRODUCTIONS: &[&str] = &[
    "my name is",
    "name is",
    "full name:",
    "contact person:",
    "signed by",
    "attn:",
    "attention:",
    "c/o",
];
const SIGN_OFFS: &[&str] = &[
    "regards",
    "best",
    "thanks",
    "thank you",
    "cheers",
    "sincerely",
    "yours",
    "best wishes",
    "viele grüße",
    "grüße",
    "mit freundlichen grüßen",
    "cordialement",
    "saludos",
    "cordiali saluti",
    "un saluto",
    "groeten",
    "met vriendelijke groet",
    "bien à vous",
];
/// Capitalised words after a greeting or cue that are not names.
const NOT_NAMES: &[&str] = &[
    "team",
    "all",
    "everyone",
    "everybody",
    "there",
    "folks",
    "guys",
    "support",
    "sir",
    "madam",
    "again",
    "world",
    "both",
    "colleagues",
    "friends",
    "customer",
    "user",
    "admin",
    "service",
    "sales",
    "billing",
    "the",
    "this",
    "that",
    "please",
    "thanks",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "subject",
    "re",
    "fwd",
    "note",
    "error",
    "warning",
    "info",
    "debug",
    "yes",
    "no",
    "ok",
    "okay",
    "i",
    "we",
    "you",
    "it",
    "my",
    "our",
    "your",
];
/// Cues that tie a place to a person; with these, an unknown capitalised name counts too.
const STRONG_PLACE_CUES: &[&str] = &[
    "live in",
    "lives in",
    "living in",
    "lived in",
    "born in",
    "grew up in",
    "reside in",
    "resides in",
    "residing in",
    "resident of",
    "hometown is",
    "wohne in",
    "wohnt in",
    "j'habite à",
    "vivo en",
    "vivo a",
    "abito a",
    "woon in",
    "woont in",
];
/// Keys of structured fields whose value is a place tied to a record's person
/// (`city: Berlin`, `"billing_country": "France"`, `location="Lyon"`); the key or its last
/// `_`/`.`/`-` segment.
const PLACE_KEYS: &[&str] = &[
    "city",
    "town",
    "country",
    "location",
    "hometown",
    "birthplace",
    "residence",
    "village",
    "municipality",
    "ville",
    "stadt",
    "ort",
    "wohnort",
    "ciudad",
    "citta",
    "pais",
    "land",
];
/// Keys of structured fields whose value is a person's name (the whole key: `host_name`
/// and `username` are not people).
const PERSON_KEYS: &[&str] = &[
    "name",
    "full_name",
    "fullname",
    "display_name",
    "displayname",
    "contact_name",
    "contact_person",
    "first_name",
    "firstname",
    "last_name",
    "lastname",
    "surname",
    "given_name",
    "customer_name",
    "patient_name",
    "employee_name",
    "recipient_name",
    "sender_name",
    "account_holder",
    "cardholder",
    "cardholder_name",
];

/// The key of a `key: value` / `key = value` / `"key": "value"` field whose value starts
/// right after `before`.
fn field_key(before: &str) -> Option<&str> {
    let s = before.trim_end_matches(['"', '\'']).trim_end();
    let s = s.strip_suffix([':', '='])?;
    let s = s.trim_end().trim_end_matches(['"', '\'']);
    // The key is the run of key characters before the separator; what precedes it may be
    // any character, so step past it by its UTF-8 length.
    let start = s
        .char_indices()
        .rev()
        .find(|&(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let key = &s[start..];
    (!key.is_empty()).then_some(key)
}

fn is_place_key(key: &str) -> bool {
    let last = key.rsplit(['_', '.', '-']).next().unwrap_or(key);
    PLACE_KEYS
        .iter()
        .any(|k| key.eq_ignore_ascii_case(k) || last.eq_ignore_ascii_case(k))
}

fn is_person_key(key: &str) -> bool {
    PERSON_KEYS.iter().any(|k| key.eq_ignore_ascii_case(k))
}
/// Cues that tie a known, unambiguous place to a person.
const PLACE_CUES: &[&str] = &[
    "from",
    "moved to",
    "moving to",
    "move to",
    "relocated to",
    "relocating to",
    "based in",
    "ship to",
    "shipped to",
    "shipping to",
    "ships to",
    "deliver to",
    "delivered to",
    "delivery to",
    "flight to",
    "flying to",
    "fly to",
    "trip to",
    "travel to",
    "travelling to",
    "traveling to",
    "visiting",
    "staying in",
    "stay in",
    "holiday in",
    "vacation in",
    "work in",
    "working in",
    "studied in",
    "study in",
    "currently in",
    "home in",
    "house in",
    "apartment in",
    "flat in",
    "aus",
    "nach",
];

/// A word may start an entity only after a space, punctuation or quotes, not inside a
/// path, an address, an identifier or a number.
fn starts_cleanly(text: &str, start: usize) -> bool {
    match char_before(text, start) {
        None => true,
        Some(c) => {
            c.is_whitespace()
                || matches!(
                    c,
                    '(' | '"' | '\'' | '[' | '<' | '«' | '“' | '‘' | ',' | ';' | ':' | '='
                )
        }
    }
}

/// ... and end before a space or punctuation, not before `@`, `_`, `/`, digits or `.x`.
fn ends_cleanly(text: &str, end: usize) -> bool {
    match char_at(text, end) {
        None => true,
        Some(c) if c.is_alphanumeric() || matches!(c, '@' | '_' | '/' | '\\') => false,
        Some('.') => !char_at(text, end + 1).is_some_and(char::is_alphanumeric),
        Some(_) => true,
    }
}

const PARTICLES: &[&str] = &[
    "van", "von", "de", "da", "di", "del", "della", "der", "den", "du", "le", "la", "dos", "das",
    "ten", "ter", "zu", "y", "bin", "al",
];

/// Extends a name over the capitalised words that follow on the line (and particles such
/// as "van der" before one). `surnames_only`: only over known surnames and unknown words,
/// not over places or words the gazetteer knows as something else.
fn extend_name(text: &str, g: &Gazetteer, first: Word, surnames_only: bool) -> Word {
    let mut last = first;
    let mut cursor = first;
    let mut words = 1;
    while words < MAX_NAME_WORDS {
        // A full stop ends the name ("… Paul. Then …"), so does anything but one space.
        if text.as_bytes().get(cursor.end) != Some(&b' ') {
            break;
        }
        let Some(next) = next_word(text, cursor) else {
            break;
        };
        if !next.capitalised {
            let s = &text[next.start..next.end];
            if PARTICLES.contains(&s) {
                cursor = next;
                continue;
            }
            break;
        }
        let f = g.get(hash_word(FNV_OFFSET, text, next));
        if f & NOT_NAME != 0 {
            break;
        }
        // After a known given name, a capitalised surname counts even if it is also a
        // word ("Paul Baron"); a word known only as something else (a place, another
        // given name) ends the name.
        if surnames_only && f & (SURNAME | SURNAME_AMBIGUOUS) == 0 && f != 0 {
            break;
        }
        last = next;
        cursor = next;
        words += 1;
    }
    Word {
        start: first.start,
        end: last.end,
        capitalised: true,
    }
}

/// The longest place name starting at `w` (whose hash is `h`): its last word and flags.
fn place_at(text: &str, g: &Gazetteer, w: Word, mut h: u64) -> Option<(Word, u8)> {
    let mut best = None;
    let mut cur = w;
    for _ in 0..MAX_PLACE_WORDS {
        let f = g.get(h);
        if f & PLACE != 0 {
            best = Some((cur, f));
        }
        if f & PLACE_PREFIX == 0 {
            break;
        }
        let Some(next) = next_word(text, cur) else {
            break;
        };
        h = hash_word(feed(h, b' '), text, next);
        cur = next;
    }
    best
}

/// A cue before a word that makes it a person's name whatever the gazetteer says.
fn person_cue(text: &str, g: &Gazetteer, w: Word, before: &str, line_start: bool) -> bool {
    // Title: "Dr. Sarah Connor", "Herr Müller".
    if g.titles.ends(before.strip_suffix('.').unwrap_or(before)) {
        return true;
    }
    if g.greetings.ends(before)
        || g.introductions.ends(before)
        || field_key(before).is_some_and(is_person_key)
    {
        return true;
    }
    // Chat transcript: "[10:42] Name:" at the start of a line.
    if line_start
        && before.len() > 2
        && before.starts_with('[')
        && before.ends_with(']')
        && before[1..before.len() - 1]
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b':')
    {
        let name = extend_name(text, g, w, false);
        return text.as_bytes().get(name.end) == Some(&b':');
    }
    // Sign-off: the name alone at the start of the line after "Best regards,".
    if line_start && before.is_empty() {
        let line = text[..w.start].trim_end_matches([' ', '\t']);
        if let Some(prev) = line.strip_suffix('\n') {
            let prev = prev.trim_end_matches(['\n', '\r', ' ']);
            let prev = prev.trim_end_matches([',', '!', '.']);
            let tail_from = prev.len().saturating_sub(CUE_WINDOW);
            let tail = prev.get(tail_from..).unwrap_or(prev);
            let tail = &tail[tail.rfind('\n').map_or(0, |i| i + 1)..];
            return g.sign_offs.ends(tail);
        }
    }
    false
}

/// Candidate starts: ASCII upper-case letters, and lead bytes of two-byte UTF-8 sequences
/// (Latin-1 and Latin Extended-A capitals live there). Eight bytes at a time: most of a
/// prompt is lower-case ASCII and is skipped without looking at each byte.
fn next_candidate(b: &[u8], mut i: usize) -> Option<usize> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let candidate = |c: u8| c.is_ascii_uppercase() || (0xC3..0xE0).contains(&c);
    while i + 8 <= b.len() {
        let mut chunk = [0u8; 8];
        chunk.copy_from_slice(&b[i..i + 8]);
        let x = u64::from_le_bytes(chunk);
        let ascii = x & !HIGH;
        // For bytes below 0x80: +0x3F sets the high bit from 'A' (0x41) up, +0x25 from
        // '[' (0x5B) up; no carry crosses a byte.
        let ge_a = ascii.wrapping_add(0x3F3F_3F3F_3F3F_3F3F);
        let ge_after_z = ascii.wrapping_add(0x2525_2525_2525_2525);
        let upper = ge_a & !ge_after_z & !x & HIGH;
        if (x & HIGH) | upper != 0
            && let Some(j) = (i..i + 8).find(|&j| candidate(b[j]))
        {
            return Some(j);
        }
        i += 8;
    }
    (i..b.len()).find(|&j| candidate(b[j]))
}

/// Calls `emit(entity, start, end)` for every PERSON and LOCATION found, in text order.
pub(super) fn scan(text: &str, mut emit: impl FnMut(Entity, usize, usize)) {
    let g = gazetteer();
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(at) = next_candidate(b, i) {
        i = at + 1;
        let Some(w) = word_at(text, at) else {
            continue;
        };
        i = w.end;
        if !w.capitalised || !starts_cleanly(text, w.start) {
            continue;
        }
        let h = hash_word(FNV_OFFSET, text, w);
        let flags = g.get(h);
        // "The", "Please", months: never an entity, and the commonest capitalised words.
        if flags & NOT_NAME != 0 {
            continue;
        }
        let (before, line_start) = before_on_line(text, w.start);
        // LOCATION first: a cue decides whether a place is personal data. Months and the
        // like are never places ("born in March", though March is a town).
        let place = if flags & NOT_NAME == 0 {
            place_at(text, g, w, h)
        } else {
            None
        };
        let strong_cue =
            || g.strong_place_cues.ends(before) || field_key(before).is_some_and(is_place_key);
        if let Some((last, place_flags)) = place {
            let ambiguous = place_flags & PLACE_AMBIGUOUS != 0;
            let cued = strong_cue() || (!ambiguous && g.place_cues.ends(before));
            if cued && ends_cleanly(text, last.end) {
                emit(Entity::Location, w.start, last.end);
                i = chain_places(text, g, last, &mut emit);
                continue;
            }
        } else if flags & (GIVEN | GIVEN_AMBIGUOUS | NOT_NAME) == 0 && strong_cue() {
            // "I live in Kleinblittersdorf": the cue vouches for a place we do not know.
            let name = extend_name(text, g, w, false);
            if ends_cleanly(text, name.end) {
                emit(Entity::Location, name.start, name.end);
                i = name.end;
                continue;
            }
        }
        if flags & NOT_NAME != 0 {
            continue;
        }
        let next_is_surname = || {
            text.as_bytes().get(w.end) == Some(&b' ')
                && next_word(text, w).is_some_and(|n| {
                    n.capitalised && g.get(hash_word(FNV_OFFSET, text, n)) & SURNAME != 0
                })
        };
        let is_place = flags & PLACE != 0;
        let person = if person_cue(text, g, w, before, line_start) {
            Some(extend_name(text, g, w, false))
        } else if ((flags & GIVEN != 0 || given_parts(text, g, w))
            && (!is_place || next_is_surname()))
            // An ambiguous given name ("Will") only with a known surname after it.
            || (flags & GIVEN_AMBIGUOUS != 0 && next_is_surname())
        {
            Some(extend_name(text, g, w, true))
        } else {
            None
        };
        if let Some(p) = person
            && ends_cleanly(text, p.end)
        {
            emit(Entity::Person, p.start, p.end);
            i = p.end;
        }
    }
}

/// "Anna-Maria": every part a known given name (a hyphenated pair of capitalised given
/// names is a name even if one part is also a word).
fn given_parts(text: &str, g: &Gazetteer, w: Word) -> bool {
    let s = &text[w.start..w.end];
    s.contains('-')
        && s.split('-').all(|part| {
            !part.is_empty()
                && g.get(part.chars().fold(FNV_OFFSET, feed_char)) & (GIVEN | GIVEN_AMBIGUOUS) != 0
        })
}

/// "Lyon, France": places listed after a cued place belong to it.
fn chain_places(
    text: &str,
    g: &Gazetteer,
    mut last: Word,
    emit: &mut impl FnMut(Entity, usize, usize),
) -> usize {
    loop {
        if !text[last.end..].starts_with(", ") {
            return last.end;
        }
        let Some(w) = word_at(text, last.end + 2) else {
            return last.end;
        };
        if !w.capitalised {
            return last.end;
        }
        match place_at(text, g, w, hash_word(FNV_OFFSET, text, w)) {
            Some((end_word, _)) if ends_cleanly(text, end_word.end) => {
                emit(Entity::Location, w.start, end_word.end);
                last = end_word;
            }
            _ => return last.end,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::detect::{Detectors, EntityClass};
    use crate::test_support::{assert_found, assert_no, entities, shared};

    #[test]
    fn person_names_from_gazetteer_and_cues() {
        assert_found("Grüße — Herr Müller ruft an", "PERSON", "Müller");
        assert_found(
            "Subject: x\n\nHi Paul-Heinz,\n\nthanks",
            "PERSON",
            "Paul-Heinz",
        );
        assert_found("Ça va? Dr. Sarah Connor called.", "PERSON", "Sarah Connor");
        assert_found(
            "Best regards,\nGiulia Tonisto\nRodgers LLC",
            "PERSON",
            "Giulia Tonisto",
        );
        assert_found("[11:20] Friedhold: pw is up", "PERSON", "Friedhold");
        assert_found(
            "können Sie Jennifer Lopez fragen?",
            "PERSON",
            "Jennifer Lopez",
        );
        assert_found("please forward to Anna-Maria", "PERSON", "Anna-Maria");
        assert_found("My name is Ngozi Okonjo.", "PERSON", "Ngozi Okonjo");
        assert_found(
            "{\"contact_name\": \"Ngozi Okonjo\"}",
            "PERSON",
            "Ngozi Okonjo",
        );
        assert_found(
            "profile display_name=\"Tycho Ångström\"",
            "PERSON",
            "Tycho Ångström",
        );
    }

    #[test]
    fn person_near_misses_are_rejected() {
        for text in [
            "Will you send the report by Friday?",
            "Hi team, the build is green.",
            "Summarise the quarterly report in three bullet points.",
            "see https://github.com/Paul/repo and jennifer.lopez@example.com",
            "PAUL SMITH in capitals is not read",
            "[10:42] Deploy finished",
            "host_name: Frankfurt-Edge",
        ] {
            assert_no(text, "PERSON");
        }
    }

    #[test]
    fn locations_tied_to_a_person() {
        assert_found("Grüße! I live in Lyon, France.", "LOCATION", "Lyon");
        assert_found("Grüße! I live in Lyon, France.", "LOCATION", "France");
        assert_found(
            "Paket für Jürgen: ship to München please",
            "LOCATION",
            "München",
        );
        assert_found(
            "she was born in Kleinblittersdorf in 1990",
            "LOCATION",
            "Kleinblittersdorf",
        );
        assert_found("geoip country=Germany city=Berlin", "LOCATION", "Berlin");
        assert_found(
            "{\"billing_city\": \"Hamburg\", \"x\": 1}",
            "LOCATION",
            "Hamburg",
        );
        assert_found(
            "new login location=\"Northern Mariana Islands\"",
            "LOCATION",
            "Northern Mariana Islands",
        );
        assert_found(
            "we moved to New York City last year",
            "LOCATION",
            "New York City",
        );
        assert_found("login from São Paulo failed", "LOCATION", "São Paulo");
    }

    #[test]
    fn places_without_a_personal_cue_are_not_reported() {
        for text in [
            "What's the weather in Paris tomorrow?",
            "Write a poem about Germany.",
            "she was born in March",
            "the Reading festival",
            "from Reading the logs we know",
        ] {
            assert_no(text, "LOCATION");
        }
    }

    #[test]
    fn gazetteers_load_and_name_their_sources() {
        for (file, source) in [
            (
                include_str!("../../rules/person_names.txt"),
                "US Census Bureau",
            ),
            (include_str!("../../rules/places.txt"), "CC BY 4.0"),
        ] {
            assert!(
                file.lines().take(10).any(|l| l.contains(source)),
                "{source}"
            );
        }
        let d = Detectors::new();
        assert_eq!(d.class_of("PERSON"), Some(EntityClass::Pii));
        assert_eq!(d.class_of("LOCATION"), Some(EntityClass::Pii));
    }

    #[test]
    fn field_keys_after_non_ascii_characters_do_not_panic() {
        // A multi-byte character right before a `key: value` field once made the key lookup
        // slice inside that character and panic the whole scan.
        for text in [
            "ë: Berlin",
            "Σcity: Paris",
            "“name”: Anna Schmidt",
            "İstanbul= Ankara",
            "日本語city = Tokyo, 名前: Sato",
        ] {
            for f in shared().scan(text) {
                assert!(
                    text.is_char_boundary(f.start) && text.is_char_boundary(f.end),
                    "{text}: {f:?}"
                );
            }
        }
        assert_eq!(
            entities("Kundin: Anna Schmidt — ë city: Berlin"),
            entities("Kundin: Anna Schmidt — e city: Berlin"),
            "a non-ASCII character before a field changes nothing"
        );
    }
}
