"""The catalog each corpus entry is judged in; the same rule as toolscan/examples/scan.rs, so
both scanners see the same tools.

An entry's catalog is the tools its `targets` name (the tools it shadows or imitates, listed
first: a gateway lists the tools it pinned first), then the tools of its own server, leaving
out other versions of the same tool (a rug pull's v2 is judged on its own content, not as a
change from v1). Standard library only: imported by compare.py and by agt_scan.py, which runs
in the AGT virtual environment.
"""

import json


def load(path):
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    # A plain array of tool definitions is one server's catalog.
    return [e if "tool" in e else {"server": "default", "tool": e} for e in entries]


def catalog_of(entries, index):
    """[(server, tool, is_the_entry)] for entries[index]."""
    me = entries[index]
    name = me["tool"].get("name")
    by_id = {e.get("id"): e for e in entries}
    catalog = []
    for target in me.get("targets", []):
        t = by_id.get(target)
        if t is not None:
            catalog.append((t["server"], t["tool"], False))
    for i, e in enumerate(entries):
        if e["server"] != me["server"]:
            continue
        if i != index and e["tool"].get("name") == name:
            continue
        catalog.append((e["server"], e["tool"], i == index))
    return catalog
