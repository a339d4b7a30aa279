#!/usr/bin/env python3
"""AGT's PromptInjectionDetector (agent-governance-toolkit-core 5.0.0, `agent_os.prompt_injection`)
over JSON lines {"id", "text"} on stdin, at its default ("balanced") sensitivity; writes
{"id", "flagged", "confidence"} per line. Run with the AGT venv's Python:
    ~/.cache/meshos-agt-venv/bin/python policy/train/agt_injection.py < texts.jsonl
"""
import json
import logging
import sys
import warnings

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
from agent_os.prompt_injection import PromptInjectionDetector  # noqa: E402

detector = PromptInjectionDetector()
for line in sys.stdin:
    if not line.strip():
        continue
    row = json.loads(line)
    r = detector.detect(row["text"], source="bench")
    print(json.dumps({"id": row["id"], "flagged": bool(r.is_injection), "confidence": float(r.confidence)}))
