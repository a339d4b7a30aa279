#!/usr/bin/env python3
"""Deterministic labelled synthetic texts for the detector benchmark.

Writes JSONL lines {"id", "genre", "text", "entities": [{"entity", "start", "end", "variant"}]}
with UTF-8 *byte* offsets (the same convention as `meshos policy scan`). `variant` says which
surface form was generated (e.g. PHONE/national_GB, PASSWORD/cli_flag) so misses can be grouped.

Genres: support e-mails, chat messages, log lines, config snippets. Every text mixes 0-3
labelled entities with unlabelled look-alikes (order numbers, dates, invalid-Luhn numbers,
bad-checksum IBANs, version strings, hashes, UUIDs, masked passwords...), which are the
negatives: any finding on them is a false positive.

Gold-span conventions (stated in README.md):
  * EMAIL, PHONE (incl. leading "+" and brackets), CREDIT_CARD / IBAN (incl. inner separators),
    SSN, IP_ADDRESS (address only, no port or /prefix), AWS_ACCESS_KEY, GITHUB_TOKEN: the value.
  * PRIVATE_KEY: the "-----BEGIN ... PRIVATE KEY-----" header line.
  * PASSWORD: the password value only (not the key name, quotes or separator).

Usage: python generate.py [--n 1000] [--seed 20240601] [--out texts.jsonl]
"""
from __future__ import annotations

import argparse
import json
import random
import string
from datetime import datetime
from pathlib import Path

import phonenumbers
from faker import Faker

# --------------------------------------------------------------------------- value generators


class Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)
        Faker.seed(seed)
        self.f = Faker(["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"])
        self.f.seed_instance(seed)
        self.f_en = Faker("en_US")
        self.f_en.seed_instance(seed + 1)

    # ---- helpers
    def digits(self, n: int) -> str:
        return "".join(self.r.choice(string.digits) for _ in range(n))

    def alnum(self, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    # Faker's date helpers default to ranges ending "now": pin them so output is reproducible.
    def dt(self):
        return self.f.date_time_between(start_date=datetime(2023, 1, 1), end_date=datetime(2025, 6, 30))

    def date(self, pattern: str = "%Y-%m-%d") -> str:
        return self.dt().strftime(pattern)

    # ---- PERSON (faker's per-locale name lists; our gazetteer is the US Census, not faker)
    NAME_LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"]

    def person(self, full: bool = True):
        loc = self.r.choice(self.NAME_LOCALES)
        fk = self.f[loc]
        first = fk.first_name()
        if not full:
            return first, loc[:2]
        return f"{first} {fk.last_name()}", loc[:2]

    def last_name(self):
        loc = self.r.choice(self.NAME_LOCALES)
        return self.f[loc].last_name(), loc[:2]

    # ---- LOCATION: English country names, US states, and real towns from the faker locales
    # whose city lists are real places (de_DE, es_ES, it_IT, nl_NL; en_US/en_GB/fr_FR invent
    # names such as "New Melanie").
    def street_address(self):
        loc = self.r.choice(["en_US", "en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL"])
        while True:
            a = self.f[loc].street_address().strip()
            if "\n" not in a:
                return a, f"address_{loc[:2]}"

    def place(self):
        r = self.r.random()
        if r < 0.3:
            return self.f_en.country(), "country"
        if r < 0.45:
            return self.f_en.state(), "us_state"
        loc = self.r.choice(["de_DE", "es_ES", "it_IT", "nl_NL"])
        return self.f[loc].city(), f"city_{loc[:2]}"

    # ---- DATE_OF_BIRTH: a real date (1935-2007) in one of many written forms and languages.
    MONTHS = {
        "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September",
               "October", "November", "December"],
        "de": ["Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September",
               "Oktober", "November", "Dezember"],
        "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
               "octobre", "novembre", "décembre"],
        "es": ["enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre",
               "octubre", "noviembre", "diciembre"],
        "it": ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
               "settembre", "ottobre", "novembre", "dicembre"],
    }

    def birth_date(self, lang: str):
        d = self.f.date_between(start_date=datetime(1935, 1, 1), end_date=datetime(2007, 12, 31))
        r = self.r.random()
        if r < 0.25:
            return d.strftime("%Y-%m-%d"), "iso"
        if r < 0.45:
            return d.strftime("%d/%m/%Y" if lang != "en" else "%m/%d/%Y"), "slashed"
        if r < 0.6:
            return d.strftime("%d.%m.%Y"), "dotted"
        m = self.MONTHS.get(lang, self.MONTHS["en"])[d.month - 1]
        if lang == "en":
            return (f"{m} {d.day}, {d.year}" if self.r.random() < 0.5 else f"{d.day} {m} {d.year}"), "month_name"
        if lang in ("es",):
            return f"{d.day} de {m} de {d.year}", "month_name"
        return (f"{d.day}. {m} {d.year}" if lang == "de" else f"{d.day} {m} {d.year}"), "month_name"

    # ---- EMAIL
    def email(self):
        r = self.r.random()
        if r < 0.35:
            return self.f.email(), "plain"
        if r < 0.55:
            return self.f.company_email(), "company"
        if r < 0.7:
            return self.f.free_email(), "free"
        if r < 0.82:
            u = self.f_en.user_name()
            tag = self.r.choice(["billing", "newsletter", "support", "2024", "github"])
            return f"{u}+{tag}@{self.f_en.free_email_domain()}", "plus_tag"
        if r < 0.92:
            fn = self.f_en.first_name().lower()
            ln = self.f_en.last_name().lower()
            dom = self.r.choice(["mail.corp.example.co.uk", "eu.acme-group.de", "it.uni-example.edu",
                                 "dept.example.gov.au", "ops.example.io"])
            return f"{fn}.{ln}@{dom}", "subdomain"
        fn = self.f_en.first_name()
        ln = self.f_en.last_name()
        return f"{fn}.{ln}@{self.f_en.domain_name()}", "mixed_case"

    # ---- PHONE (valid numbers per libphonenumber metadata)
    INTL_REGIONS = ["US", "GB", "DE", "FR", "IN", "AU", "JP", "BR", "ES", "IT", "NL", "CH", "CA",
                    "MX", "SG", "ZA", "SE", "PL", "IE", "BE"]
    NATIONAL_REGIONS = ["US", "GB", "DE", "FR"]

    def _valid_number(self, region: str):
        ex = None
        for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
            if self.r.random() < 0.5:
                ex = phonenumbers.example_number_for_type(region, kind)
                if ex:
                    break
        if ex is None:
            ex = phonenumbers.example_number(region)
        nsn = str(ex.national_number)
        for _ in range(200):
            # keep the leading 2-3 digits (area/mobile prefix), randomise the rest
            keep = 3 if len(nsn) > 8 else 2
            cand = nsn[:keep] + self.digits(len(nsn) - keep)
            num = phonenumbers.parse("+" + str(ex.country_code) + cand)
            if phonenumbers.is_valid_number(num):
                return num
        return ex

    def phone(self):
        PNF = phonenumbers.PhoneNumberFormat
        if self.r.random() < 0.75:
            region = self.r.choice(self.INTL_REGIONS)
            num = self._valid_number(region)
            s = phonenumbers.format_number(num, PNF.INTERNATIONAL)
            style = self.r.random()
            if style < 0.2:
                s = phonenumbers.format_number(num, PNF.E164)
                return s, f"e164_{region}"
            if style < 0.3 and region in ("US", "CA"):
                nsn = str(num.national_number)
                s = f"+1 ({nsn[:3]}) {nsn[3:6]}-{nsn[6:]}"
                return s, f"intl_paren_{region}"
            if style < 0.4:
                sep = "-" if ("-" in s or self.r.random() < 0.5) else "."
                s = s.replace(" ", sep)
                return s, f"intl_sep_{region}"
            return s, f"intl_{region}"
        region = self.r.choice(self.NATIONAL_REGIONS)
        num = self._valid_number(region)
        return phonenumbers.format_number(num, PNF.NATIONAL), f"national_{region}"

    # ---- CREDIT_CARD (valid Luhn)
    @staticmethod
    def luhn_check_digit(body: str) -> str:
        total = 0
        for i, ch in enumerate(reversed(body)):
            d = int(ch)
            if i % 2 == 0:
                d *= 2
                if d > 9:
                    d -= 9
            total += d
        return str((10 - total % 10) % 10)

    def card_digits(self, valid: bool = True):
        brand = self.r.choice(["visa", "visa", "mastercard", "mastercard", "amex", "discover"])
        if brand == "visa":
            prefix, length = "4", 16
        elif brand == "mastercard":
            prefix, length = self.r.choice(["51", "52", "53", "54", "55", "2221", "2720"]), 16
        elif brand == "amex":
            prefix, length = self.r.choice(["34", "37"]), 15
        else:
            prefix, length = "6011", 16
        body = prefix + self.digits(length - len(prefix) - 1)
        check = self.luhn_check_digit(body)
        if not valid:
            check = str((int(check) + self.r.randint(1, 9)) % 10)
        return body + check, brand

    def format_card(self, num: str) -> tuple[str, str]:
        style = self.r.choice(["spaces", "spaces", "dashes", "compact"])
        if len(num) == 15:
            groups = [num[:4], num[4:10], num[10:]]
        else:
            groups = [num[i:i + 4] for i in range(0, len(num), 4)]
        if style == "spaces":
            return " ".join(groups), style
        if style == "dashes":
            return "-".join(groups), style
        return num, style

    def credit_card(self):
        num, brand = self.card_digits(True)
        s, style = self.format_card(num)
        return s, f"{brand}_{style}"

    # ---- IBAN (valid mod-97)
    IBAN_SPECS = {  # country: BBAN structure (n digit, a upper letter, c alnum -> mostly digits)
        "DE": "n" * 18, "GB": "aaaa" + "n" * 14, "FR": "n" * 10 + "c" * 11 + "nn",
        "ES": "n" * 20, "NL": "aaaa" + "n" * 10, "IT": "a" + "n" * 10 + "c" * 12,
        "CH": "n" * 5 + "c" * 12, "BE": "n" * 12, "PL": "n" * 24, "AT": "n" * 16,
        "IE": "aaaa" + "n" * 14, "PT": "n" * 21,
    }

    def _bban(self, spec: str) -> str:
        out = []
        for k in spec:
            if k == "n":
                out.append(self.r.choice(string.digits))
            elif k == "a":
                out.append(self.r.choice(string.ascii_uppercase))
            else:
                out.append(self.r.choice(string.digits * 4 + string.ascii_uppercase))
        return "".join(out)

    @staticmethod
    def iban_check(country: str, bban: str) -> str:
        s = bban + country + "00"
        n = int("".join(str(int(ch, 36)) for ch in s))
        return f"{98 - n % 97:02d}"

    def iban_raw(self, valid: bool = True):
        country = self.r.choice(list(self.IBAN_SPECS))
        bban = self._bban(self.IBAN_SPECS[country])
        check = self.iban_check(country, bban)
        if not valid:
            check = f"{(int(check) + self.r.randint(1, 50)) % 97 + 2:02d}"
            if check == self.iban_check(country, bban):
                check = f"{(int(check) + 1) % 97 + 2:02d}"
        return country + check + bban, country

    def iban(self):
        raw, country = self.iban_raw(True)
        if self.r.random() < 0.6:
            return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4)), f"{country}_grouped"
        return raw, f"{country}_compact"

    # ---- SSN
    def ssn(self):
        while True:
            area = self.r.randint(1, 899)
            if area != 666:
                break
        group = self.r.randint(1, 99)
        serial = self.r.randint(1, 9999)
        if self.r.random() < 0.85:
            return f"{area:03d}-{group:02d}-{serial:04d}", "dashed"
        return f"{area:03d} {group:02d} {serial:04d}", "spaced"

    # ---- IP_ADDRESS
    def ip(self):
        r = self.r.random()
        if r < 0.45:
            return self.f.ipv4_public(), "ipv4_public"
        if r < 0.85:
            return self.f.ipv4_private(), "ipv4_private"
        if r < 0.93:
            return self.f.ipv6(), "ipv6_full"
        # compressed IPv6, as most tools print it
        return f"2001:db8:{self.r.randint(1, 0xffff):x}::{self.r.randint(1, 0xffff):x}", "ipv6_compressed"

    # ---- secrets
    def aws_key(self):
        alphabet = string.ascii_uppercase + "234567"
        prefix = "AKIA" if self.r.random() < 0.8 else "ASIA"
        return prefix + self.alnum(16, alphabet), prefix

    def github_token(self):
        r = self.r.random()
        if r < 0.65:
            return "ghp_" + self.alnum(36), "ghp"
        if r < 0.8:
            p = self.r.choice(["gho_", "ghs_", "ghu_", "ghr_"])
            return p + self.alnum(36), p.rstrip("_")
        return "github_pat_" + self.alnum(22) + "_" + self.alnum(59), "fine_grained"

    def private_key_header(self):
        kind = self.r.choice(["RSA ", "OPENSSH ", "EC ", "", "ENCRYPTED ", "DSA "])
        return f"-----BEGIN {kind}PRIVATE KEY-----", (kind.strip() or "PKCS8")

    def key_body(self, kind_header: str, sep: str = "\n") -> str:
        lines = [self.alnum(64, string.ascii_letters + string.digits + "+/") for _ in range(self.r.randint(2, 4))]
        lines.append(self.alnum(self.r.randint(10, 60), string.ascii_letters + string.digits + "+/") + "==")
        end = kind_header.replace("BEGIN", "END")
        return sep.join(lines) + sep + end

    def password_value(self) -> str:
        r = self.r.random()
        if r < 0.6:
            return self.f.password(length=self.r.randint(10, 18), special_chars=True)
        if r < 0.85:
            return self.f.password(length=self.r.randint(8, 14), special_chars=False)
        # passphrase-ish
        words = [self.f_en.word().capitalize() for _ in range(3)]
        return "".join(words) + str(self.r.randint(10, 99)) + self.r.choice("!?#.")

    # ---- negatives (never labelled)
    def negative(self) -> str:
        r = self.r.randint(0, 17)
        if r == 0:
            return f"order #{self.digits(self.r.randint(8, 10))}"
        if r == 1:
            return f"PO-{self.r.randint(2019, 2025)}-{self.digits(6)}"
        if r == 2:
            return self.date(self.r.choice(["%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y"]))
        if r == 3:
            return self.dt().strftime("%Y-%m-%dT%H:%M:%S") + "Z"
        if r == 4:
            num, _ = self.card_digits(valid=False)
            return self.format_card(num)[0]
        if r == 5:
            return f"v{self.r.randint(0, 12)}.{self.r.randint(0, 40)}.{self.r.randint(0, 30)}"
        if r == 6:
            return (f"{self.r.randint(90, 131)}.0.{self.r.randint(4000, 6999)}."
                    f"{self.r.randint(1, 250)}")  # browser build: 4 parts, not an IP
        if r == 7:
            return f"10.0.{self.r.randint(17000, 22631)}.{self.r.randint(100, 4000)}"  # Windows build
        if r == 8:
            return self.f.sha256()
        if r == 9:
            return self.f.sha1()
        if r == 10:
            return self.f.md5()
        if r == 11:
            return str(self.f.uuid4())
        if r == 12:
            return "1Z" + self.alnum(6, string.ascii_uppercase + string.digits) + self.digits(10)
        if r == 13:
            raw, _ = self.iban_raw(valid=False)
            return " ".join(raw[i:i + 4] for i in range(0, len(raw), 4))
        if r == 14:
            return f"INC{self.digits(7)}"
        if r == 15:
            return f"${self.r.randint(1, 99)},{self.digits(3)}.{self.digits(2)}"
        if r == 16:
            return f"978-{self.r.randint(0, 1)}-{self.digits(3)}-{self.digits(5)}-{self.r.randint(0, 9)}"
        return f"build {self.r.randint(2019, 2025)}{self.r.randint(1, 12):02d}{self.r.randint(1, 28):02d}.{self.r.randint(1, 9)}"


# --------------------------------------------------------------------------- text assembly


class Text:
    """Accumulates text pieces; labelled pieces become gold spans in UTF-8 bytes."""

    def __init__(self):
        self.parts: list[tuple[str, str | None, str | None]] = []

    def add(self, s: str, entity: str | None = None, variant: str | None = None):
        self.parts.append((s, entity, variant))
        return self

    def build(self):
        text, spans, pos = [], [], 0
        for s, ent, var in self.parts:
            b = len(s.encode("utf-8"))
            if ent:
                spans.append({"entity": ent, "start": pos, "end": pos + b, "variant": var})
            text.append(s)
            pos += b
        return "".join(text), spans


ENTITIES = ["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "SSN", "IP_ADDRESS",
            "AWS_ACCESS_KEY", "GITHUB_TOKEN", "PRIVATE_KEY", "PASSWORD", "PERSON", "LOCATION",
            "DATE_OF_BIRTH"]
GENRES = ["support_email", "chat", "log", "config"]


def clause(g: Gen, genre: str, ent: str, t: Text):
    """Append one sentence/line carrying entity `ent`, phrased for `genre`."""
    r = g.r
    if ent == "EMAIL":
        v, var = g.email()
        pre, post = {
            "support_email": r.choice([("Please update my contact address to ", "."),
                                       ("You can reach our accountant at ", " for the invoice."),
                                       ("The account is registered under ", ", not my old one."),
                                       ("Kindly cc ", " on any reply.")]),
            "chat": r.choice([("pls send it to ", " thx"), ("my email is ", ""),
                              ("ping ", " about the deploy 🙏"), ("cc ", " pls")]),
            "log": r.choice([("user login ok user=", f" session={g.alnum(12)}"),
                             ("password reset requested for <", ">"),
                             ("smtp: delivered to ", f" status=250 queue={g.alnum(10)}")]),
            "config": r.choice([("smtp_user: ", ""), ("ADMIN_EMAIL=", ""), ('"notify": "', '",'),
                                ("reply_to = ", "")]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "PHONE":
        v, var = g.phone()
        pre, post = {
            "support_email": r.choice([("Call me back on ", " any time after 3pm."),
                                       ("My new mobile number is ", "."),
                                       ("Our office line (", ") is staffed weekdays."),
                                       ("Please text ", " when the courier is close.")]),
            "chat": r.choice([("call me at ", ""), ("his number: ", ""), ("whatsapp ", " 👍"),
                              ("new # is ", " fyi")]),
            "log": r.choice([("sms sent to=", f" provider=twilio id={g.alnum(10)}"),
                             ("otp delivered phone=", " attempts=1"),
                             ("callback scheduled tel=\"", "\"")]),
            "config": r.choice([("support_phone: \"", "\""), ("ONCALL_PHONE=", ""),
                                ('"phone": "', '",')]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "CREDIT_CARD":
        v, var = g.credit_card()
        pre, post = {
            "support_email": r.choice([("I was charged twice on card ", "."),
                                       ("The card number is ", ", expiry " + f"{r.randint(1, 12):02d}/{r.randint(25, 30)}."),
                                       ("Please refund to ", " as discussed.")]),
            "chat": r.choice([("use the company card ", ""), ("card: ", " exp " + f"{r.randint(1, 12):02d}/{r.randint(25, 30)}"),
                              ("it's ", " cvv in dm")]),
            "log": r.choice([("payment declined pan=", " reason=insufficient_funds"),
                             ("charge ok card=", f" amount={r.randint(5, 900)}.{g.digits(2)} EUR"),
                             ("WARN tokenizer fallback, raw card ", " logged")]),
            "config": r.choice([("test_card: \"", "\""), ("CARD_NUMBER=", ""),
                                ('"pan": "', '",')]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "IBAN":
        v, var = g.iban()
        pre, post = {
            "support_email": r.choice([("Please pay the refund into IBAN ", "."),
                                       ("Our bank details: ", " (BIC on the invoice)."),
                                       ("The transfer went to ", " by mistake.")]),
            "chat": r.choice([("iban is ", ""), ("send to ", " pls"), ("acct: ", "")]),
            "log": r.choice([("sepa payout iban=", f" amount={r.randint(10, 5000)}.00"),
                             ("mandate created debtor_iban=", " status=active")]),
            "config": r.choice([("payout_iban: ", ""), ("IBAN=", ""), ('"iban": "', '",')]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "SSN":
        v, var = g.ssn()
        pre, post = {
            "support_email": r.choice([("My social security number is ", " for the tax form."),
                                       ("SSN: ", ". Let me know if you need anything else."),
                                       ("For verification, my SSN is ", ".")]),
            "chat": r.choice([("ssn ", ""), ("her social is ", ""), ("ss# ", " dont share")]),
            "log": r.choice([("kyc check subject_ssn=", " result=pass"),
                             ("DEBUG payload ssn=", " dob=")]),
            "config": r.choice([("ssn: \"", "\""), ('"ssn": "', '",'), ("TEST_SSN=", "")]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
        if post == " dob=":
            # A date after `dob=` is a date of birth, and labelled as one.
            d = g.f.date_between(start_date=datetime(1935, 1, 1), end_date=datetime(2007, 12, 31))
            t.add(d.strftime("%Y-%m-%d"), "DATE_OF_BIRTH", "iso_log")
    elif ent == "IP_ADDRESS":
        v, var = g.ip()
        port = f":{r.choice([22, 443, 5432, 8080, 6379])}" if (var.startswith("ipv4") and r.random() < 0.25) else ""
        pre, post = {
            "support_email": r.choice([("The login came from ", port + ", which isn't me."),
                                       ("Our VPN exit address is ", port + "."),
                                       ("Please whitelist ", port + " for the API.")]),
            "chat": r.choice([("ssh into ", port), ("box is at ", port + " now"),
                              ("blocked ", port + " on the fw")]),
            "log": r.choice([("accepted connection from ", port),
                             ("client=", port + f" method=GET path=/api/v1/{g.f_en.word()} status=200"),
                             ("Failed password for root from ", port + " port 22 ssh2")]),
            "config": r.choice([("host: ", port), ("DB_HOST=", ""), ("bind_address = ", ""),
                                ('"upstream": "', port + '",')]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "AWS_ACCESS_KEY":
        v, var = g.aws_key()
        pre, post = {
            "support_email": r.choice([("We rotated the key ", " yesterday, please confirm."),
                                       ("The access key id is ", ".")]),
            "chat": r.choice([("aws key ", " (secret in vault)"), ("use ", " for the bucket")]),
            "log": r.choice([("AccessDenied for access key ", f" on s3://{g.f_en.word()}-logs"),
                             ("assumed role, AccessKeyId=", "")]),
            "config": r.choice([("aws_access_key_id = ", ""), ("AWS_ACCESS_KEY_ID=", ""),
                                ('"accessKeyId": "', '",')]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "GITHUB_TOKEN":
        v, var = g.github_token()
        pre, post = {
            "support_email": r.choice([("The CI uses the token ", "; please revoke it."),
                                       ("I accidentally pasted ", " into the ticket.")]),
            "chat": r.choice([("token: ", ""), ("here's the PAT ", " expires friday")]),
            "log": r.choice([("git clone https://x-access-token:", f"@github.com/{g.f_en.word()}/{g.f_en.word()}.git"),
                             ("auth failed token=", " status=401")]),
            "config": r.choice([("GITHUB_TOKEN=", ""), ("github_token: ", ""),
                                ('"token": "', '",')]),
        }[genre]
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "PRIVATE_KEY":
        h, var = g.private_key_header()
        if genre == "config" and r.random() < 0.4:
            # service-account JSON: the key is one JSON string with escaped newlines
            t.add('"private_key": "').add(h, ent, var + "_json").add("\\n" + g.key_body(h, "\\n") + '\\n",')
        else:
            pre = {
                "support_email": "Here is the deploy key you asked for:\n",
                "chat": "```\n",
                "log": "loaded identity file:\n",
                "config": r.choice(["ssh_key: |\n  ", "TLS_KEY=\"", ""]),
            }[genre]
            body = g.key_body(h)
            t.add(pre).add(h, ent, var).add("\n" + body + ("\n```" if genre == "chat" else ""))
    elif ent == "PASSWORD":
        v = g.password_value()
        user = g.f_en.user_name()
        host = r.choice(["db.internal", "mysql-0.mysql", "postgres.prod.svc", "localhost"])  # hostnames only: an IP here would be an unlabelled entity
        forms = {
            "support_email": [("assign_prose", "My temporary password is ", "."),
                              ("assign", "Login: " + user + " / password: ", "")],
            "chat": [("assign_prose", "pw is ", ""), ("assign", "password=", ""),
                     ("cli_flag", "mysql -u root --password ", " -h " + host)],
            "log": [("assign", "retrying login with password=", " (attempt 2)"),
                    ("url", f"connecting to postgres://{user}:", f"@{host}:5432/app"),
                    ("assign", "DEBUG request body: {\"username\": \"" + user + "\", \"password\": \"", "\"}")],
            "config": [("assign", "DB_PASSWORD=", ""), ("assign", "password: \"", "\""),
                       ("assign", '"password": "', '",'), ("assign", "passwd = ", ""),
                       ("conn_string", f"Server={host};Database=app;User Id={user};Password=", ";"),
                       ("url", f"DATABASE_URL=mysql://{user}:", f"@{host}/app")],
        }[genre]
        var, pre, post = r.choice(forms)
        if var in ("url",):
            v = v.replace("@", "").replace(":", "").replace("/", "")  # URL-safe
        t.add(pre).add(v, ent, var).add(post)
    elif ent == "PERSON":
        # Forms: "running" = a name in running text with no cue around it, "intro" = my name
        # is, "title" = Mr./Dr. + surname, "field" = a structured key/value.
        name, lang = g.person()
        last, llang = g.last_name()
        title = r.choice(["Mr.", "Ms.", "Dr.", "Mrs."])
        forms = {
            "support_email": [("running", "Please forward this to ", ".", name, lang),
                              ("running", "I spoke with ", " on the phone yesterday.", name, lang),
                              ("intro", "My name is ", " and I am writing about my order.", name, lang),
                              ("title", f"Our account manager {title} ", " will call you back.", last, llang)],
            "chat": [("running", "ask ", " about it", name, lang), ("running", "", " is out today", name, lang),
                     ("running", "talked to ", " yesterday", name, lang)],
            "log": [("field", "profile updated display_name=\"", "\"", name, lang),
                    ("running", "ticket assigned to ", f" queue={g.alnum(6)}", name, lang),
                    ("running", "refund approved by ", " role=manager", name, lang)],
            "config": [("field", "owner: ", "", name, lang), ("field", '"contact_name": "', '",', name, lang),
                       ("field", "MAINTAINER=", "", name, lang)],
        }[genre]
        form, pre, post, v, vl = r.choice(forms)
        t.add(pre).add(v, ent, f"{form}_{vl}").add(post)
    elif ent == "LOCATION":
        # Context: "personal" ties the place to a person ("I moved to X"), "impersonal" does not
        # ("our X office"). Presidio (spaCy) labels every place; meshos reports places only in a
        # personal context, so its recall on "impersonal" is zero by design.
        if r.random() < 0.25:
            # A street address: personal data wherever it stands, no cue needed.
            v, kind = g.street_address()
            pre, post = {
                "support_email": r.choice([("Please send the replacement to ", "."),
                                           ("Our new office is at ", ", second floor."),
                                           ("The parcel was left at ", " by mistake.")]),
                "chat": r.choice([("meet at ", " at 6?"), ("address is ", ""), ("im at ", " now")]),
                "log": r.choice([("shipment created dest=\"", "\""), ("geocode ok input=\"", "\"")]),
                "config": r.choice([("address: ", ""), ('"street": "', '",'), ("BILLING_ADDRESS=", "")]),
            }[genre]
            t.add(pre).add(v, ent, kind).add(post)
            return
        v, kind = g.place()
        forms = {
            "support_email": [("personal", "I recently moved to ", ", please update my address."),
                              ("personal", "Please ship the replacement to ", "."),
                              ("personal", "I was born in ", ", if that helps with verification."),
                              ("impersonal", "Our ", " office is closed on Friday."),
                              ("impersonal", "The conference in ", " was very useful.")],
            "chat": [("personal", "just landed in ", " ✈️"), ("personal", "she lives in ", " now"),
                     ("personal", "greetings from ", "!"), ("impersonal", "weather in ", " is awful")],
            "log": [("personal", "geoip lookup ok country=", ""),
                    ("personal", "new device login location=\"", "\""),
                    ("impersonal", "replicating snapshot to ", " region")],
            "config": [("personal", "city: ", ""), ("personal", '"country": "', '",'),
                       ("impersonal", "datacenter: ", "")],
        }[genre]
        ctx, pre, post = r.choice(forms)
        t.add(pre).add(v, ent, f"{ctx}_{kind}").add(post)
    elif ent == "DATE_OF_BIRTH":
        lang = r.choice(["en", "en", "en", "de", "fr", "es", "it"])
        v, form = g.birth_date(lang)
        cues = {
            "en": ["My date of birth is ", "DOB: ", "born on ", "Date of birth: ", "birthday: ",
                   "d.o.b. ", "birth date ", "The patient was born "],
            "de": ["Geburtsdatum: ", "geboren am ", "Mein Geburtsdatum ist der "],
            "fr": ["Date de naissance : ", "né le ", "née le "],
            "es": ["Fecha de nacimiento: ", "nacido el ", "nacida el "],
            "it": ["Data di nascita: ", "nato il ", "nata il "],
        }[lang]
        cue = r.choice(cues)
        pre, post = {
            "support_email": (f"For verification: {cue}", "."),
            "chat": (cue, ""),
            "log": (f"kyc check subject {cue.strip().rstrip(':')}=", ""),
            "config": (cue.strip().rstrip(":").lower().replace(" ", "_") + ": ", ""),
        }[genre]
        t.add(pre).add(v, ent, f"{form}_{lang}").add(post)
    else:
        raise ValueError(ent)


def negative_clause(g: Gen, genre: str, t: Text):
    r = g.r
    n = g.negative()
    if r.random() < 0.12:
        n = r.choice(["password: ********", "password=<redacted>", "pwd: [hidden]",
                      "Reset your password at the link below", "api_key: ${API_KEY}"])
    if r.random() < 0.15:
        # A date that is not a birthday: an appointment, a delivery, an invoice.
        d = g.date(r.choice(["%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%d/%m/%Y", "%B %d, %Y"]))
        n = r.choice([f"appointment on {d}", f"delivered {d}", f"invoice date {d}", f"valid until {d}",
                      f"Lieferdatum {d}", f"date de livraison {d}"])
    t.add({
        "support_email": r.choice(["Regarding ", "Reference: ", "This is about ", "See "]) + n + ".",
        "chat": r.choice(["re ", "also ", "fwiw ", ""]) + n,
        "log": r.choice(["ref=", "version=", "trace_id=", "ticket="]) + n,
        "config": r.choice(["# ref ", "version: ", "checksum = ", "build_id: "]) + n,
    }[genre])


def make_text(g: Gen, ents: list[str], n_neg: int, genre: str) -> Text:
    t = Text()
    r = g.r
    items = [("E", e) for e in ents] + [("N", None)] * n_neg
    r.shuffle(items)
    if genre == "support_email":
        first, lang = g.person(full=False)
        t.add(f"Subject: {g.f_en.catch_phrase()}\n\nHi ").add(first, "PERSON", f"greeting_{lang}").add(",\n\n")
        for i, (k, e) in enumerate(items):
            if i:
                t.add(" " if r.random() < 0.6 else "\n\n")
            clause(g, genre, e, t) if k == "E" else negative_clause(g, genre, t)
        if not items:
            t.add(g.f_en.paragraph())
        name, lang = g.person()
        t.add("\n\nBest regards,\n").add(name, "PERSON", f"signature_{lang}").add(f"\n{g.f.company()}")
    elif genre == "chat":
        people = [g.person(full=False) for _ in range(2)]
        hh, mm = r.randint(8, 18), r.randint(0, 59)
        if not items:
            items = [("X", None)]
        for i, (k, e) in enumerate(items):
            mm = (mm + r.randint(0, 3)) % 60
            who, lang = people[i % 2]
            t.add(f"[{hh:02d}:{mm:02d}] ").add(who, "PERSON", f"chat_speaker_{lang}").add(": ")
            if k == "E":
                clause(g, genre, e, t)
            elif k == "N":
                negative_clause(g, genre, t)
            else:
                t.add(g.f_en.sentence())
            t.add("\n")
    elif genre == "log":
        base = g.dt()
        if not items:
            items = [("X", None)]
        for i, (k, e) in enumerate(items):
            lvl = r.choice(["INFO ", "WARN ", "DEBUG", "ERROR"])
            svc = r.choice(["auth", "billing", "api-gw", "worker", "mailer", "sshd"])
            t.add(f"{base.strftime('%Y-%m-%dT%H:%M:%S')}.{r.randint(0, 999):03d}Z {lvl} {svc}[{r.randint(100, 65000)}]: ")
            if k == "E":
                clause(g, genre, e, t)
            elif k == "N":
                negative_clause(g, genre, t)
            else:
                t.add(f"healthcheck ok latency_ms={r.randint(1, 400)}")
            t.add("\n")
    else:  # config
        style = r.choice(["# settings.yaml\n", "# .env\n", "[default]\n", "# app config\n"])
        t.add(style)
        if not items:
            items = [("X", None)]
        for k, e in items:
            if k == "E":
                clause(g, genre, e, t)
            elif k == "N":
                negative_clause(g, genre, t)
            else:
                t.add(f"log_level: {r.choice(['info', 'debug', 'warn'])}")
            t.add("\n")
        t.add(f"timeout: {r.randint(1, 120)}\n")
    return t


def generate(n: int, seed: int):
    g = Gen(seed)
    r = g.r
    counts = {e: 0 for e in ENTITIES}
    rows = []
    for i in range(n):
        genre = GENRES[i % len(GENRES)]
        k = r.choices([0, 1, 2, 3], weights=[12, 40, 33, 15])[0]
        # balance: draw from the least-used entity kinds
        ents = []
        for _ in range(k):
            pool = sorted(ENTITIES, key=lambda e: (counts[e], r.random()))[:4]
            e = r.choice(pool)
            ents.append(e)
            counts[e] += 1
        n_neg = r.choices([0, 1, 2], weights=[35, 45, 20])[0] if k else r.choice([1, 2, 3])
        text, spans = make_text(g, ents, n_neg, genre).build()
        rows.append({"id": f"t{i:04d}", "genre": genre, "text": text, "entities": spans})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "texts.jsonl"))
    a = ap.parse_args()
    rows = generate(a.n, a.seed)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            # sanity: spans must slice back to the labelled value
            b = row["text"].encode("utf-8")
            for s in row["entities"]:
                b[s["start"]:s["end"]].decode("utf-8")
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    from collections import Counter
    c = Counter(s["entity"] for r in rows for s in r["entities"])
    print(f"wrote {len(rows)} texts, {sum(c.values())} gold spans to {out}")
    print("  " + ", ".join(f"{k}={v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    main()
