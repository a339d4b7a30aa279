#!/usr/bin/env python3
"""Runs AGT's MCPSecurityScanner (agent-governance-toolkit-core, `agent_os.mcp_security`) over
the corpus and prints one JSON line per entry: {"id", "threats": [{"type", "severity",
"message"}]}.

Run with the AGT virtual environment's Python (see README.md):

    ~/.cache/meshos-agt-venv/bin/python bench/toolscan/agt_scan.py bench/toolscan/corpus.json

How it is called, from reading agent_os/mcp_security.py (5.0.0): `scan_tool(tool_name,
description, schema, server_name)` checks the description (hidden instructions, invisible
Unicode, comments, encoded payloads, its prompt-injection detector, role-override,
exfiltration and privilege-escalation patterns), the input schema (top-level properties only:
suspicious required field names, instructions in defaults and property descriptions), and
cross-server impersonation and typosquatting against the tools registered with
`register_tool` before. So for each entry a fresh scanner registers the other tools of the
entry's catalog (corpus_catalog.py, the same one our scanner sees), then scans the entry.
Registering the entry itself first would make `check_rug_pull` compare it with itself, so it
is not registered. Its rug-pull check (a changed fingerprint) is not used: a rug pull's v2 is
judged on its own content by both scanners, because the gateway's pin already detects that a
definition changed; the question is whether the change is malicious.
"""

import json
import logging
import sys
import warnings

# The package warns on import (a deprecated alias) and on every scanner built without a YAML
# config (the built-in sample rules are what is measured here).
warnings.simplefilter("ignore")

from agent_os.mcp_security import MCPSecurityScanner  # noqa: E402

from corpus_catalog import catalog_of, load  # noqa: E402


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "bench/toolscan/corpus.json"
    logging.disable(logging.CRITICAL)
    entries = load(path)
    for index, entry in enumerate(entries):
        scanner = MCPSecurityScanner()
        for server, tool, is_entry in catalog_of(entries, index):
            if is_entry:
                continue
            scanner.register_tool(
                tool.get("name", ""), tool.get("description", "") or "", tool.get("inputSchema"), server
            )
        tool = entry["tool"]
        threats = scanner.scan_tool(
            tool.get("name", ""),
            tool.get("description", "") or "",
            tool.get("inputSchema"),
            entry["server"],
        )
        print(
            json.dumps(
                {
                    "id": entry.get("id"),
                    "threats": [
                        {"type": t.threat_type.value, "severity": t.severity.value, "message": t.message}
                        for t in threats
                    ],
                }
            )
        )


if __name__ == "__main__":
    main()
