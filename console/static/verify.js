// Checks a ledger record's inclusion proof and its checkpoint's signature in this browser, with
// nothing but Web Crypto: SHA-256 for the RFC 6962 hashes, Ed25519 for the signed note (C2SP
// signed-note / Go sumdb note format). The page says "verified" only when every check passed.
"use strict";

(function () {
  const enc = new TextEncoder();

  function hexToBytes(hex) {
    if (typeof hex !== "string" || hex.length % 2 !== 0 || /[^0-9a-f]/i.test(hex)) {
      throw new Error("not a hex string: " + String(hex).slice(0, 80));
    }
    const out = new Uint8Array(hex.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }
  function bytesToHex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function b64ToBytes(s) {
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function concat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }
  const LEAF = new Uint8Array([0]);
  const NODE = new Uint8Array([1]);

  // RFC 9162 §2.1.3.2: the root an audit path leads to from leaf `index` of a tree of `size`.
  async function rootFromPath(leafHash, index, size, path) {
    if (index >= size) throw new Error("leaf index " + index + " is outside a tree of " + size);
    let fn = index, sn = size - 1, r = leafHash;
    for (const p of path) {
      if (sn === 0) throw new Error("the audit path is longer than the tree allows");
      if (fn % 2 === 1 || fn === sn) {
        r = await sha256(concat(NODE, p, r));
        if (fn % 2 === 0) {
          while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
        }
      } else {
        r = await sha256(concat(NODE, r, p));
      }
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) throw new Error("the audit path is shorter than the tree needs");
    return r;
  }

  // A verifier key `name+hex8+base64(0x01 || 32-byte Ed25519 key)`; its id must be the first
  // four bytes of SHA-256(name "\n" 0x01 key).
  async function parseVerifierKey(vkey) {
    // The key's base64 may itself hold "+": only the first two separate the fields.
    const first = vkey.indexOf("+");
    const second = first < 0 ? -1 : vkey.indexOf("+", first + 1);
    if (first <= 0 || second < 0) throw new Error("the verifier key is not name+id+key");
    const name = vkey.slice(0, first), idHex = vkey.slice(first + 1, second), b64 = vkey.slice(second + 1);
    const raw = b64ToBytes(b64);
    if (raw.length !== 33 || raw[0] !== 1) throw new Error("the verifier key is not an Ed25519 key");
    const id = hexToBytes(idHex);
    const expect = (await sha256(concat(enc.encode(name + "\n"), raw))).slice(0, 4);
    if (!equal(id, expect)) throw new Error("the verifier key's id does not match its name and key");
    return { name, id, key: raw.slice(1) };
  }

  // A signed note: text (ending in "\n"), a blank line, signature lines "— name base64".
  function parseNote(note) {
    const split = note.indexOf("\n\n");
    if (split < 0) throw new Error("the checkpoint is not a signed note");
    const text = note.slice(0, split + 1);
    const sigs = note.slice(split + 2).split("\n").filter((l) => l.length > 0).map((line) => {
      if (!line.startsWith("\u2014 ")) throw new Error("malformed signature line: " + line);
      const rest = line.slice(2);
      const sp = rest.lastIndexOf(" ");
      return { name: rest.slice(0, sp), blob: b64ToBytes(rest.slice(sp + 1)) };
    });
    const lines = text.split("\n");
    if (lines.length < 4) throw new Error("the checkpoint has fewer than three lines");
    if (!/^[0-9]+$/.test(lines[1])) throw new Error("the checkpoint's size is not a number");
    return { text, origin: lines[0], size: Number(lines[1]), root: b64ToBytes(lines[2]), sigs };
  }

  async function verify(data, report) {
    if (!window.crypto || !crypto.subtle) {
      throw new Error("this browser offers no Web Crypto here (it needs https or localhost)");
    }
    const canonical = enc.encode(data.canonical);
    const leaf = await sha256(concat(LEAF, canonical));
    if (!equal(leaf, hexToBytes(data.leaf_hash))) {
      throw new Error("the record's bytes do not hash to the leaf the server named");
    }
    report("the record's bytes hash to leaf " + bytesToHex(leaf).slice(0, 16) + "…");
    const path = data.audit_path.map(hexToBytes);
    const root = await rootFromPath(leaf, data.ledger_index, data.tree_size, path);
    report("the audit path (" + path.length + " hashes) leads to root " + bytesToHex(root).slice(0, 16) + "…");
    const cp = parseNote(data.checkpoint);
    if (cp.size !== data.tree_size) {
      throw new Error("the checkpoint is for " + cp.size + " records, the proof for " + data.tree_size);
    }
    if (!equal(cp.root, root)) throw new Error("the checkpoint's root is not the root the proof leads to");
    report("the checkpoint (" + cp.origin + ", " + cp.size + " records) commits to that root");
    const vk = await parseVerifierKey(data.verifier_key);
    const sig = cp.sigs.find((s) => s.name === vk.name && s.blob.length === 68 && equal(s.blob.slice(0, 4), vk.id));
    if (!sig) throw new Error("the checkpoint carries no signature by " + vk.name);
    const key = await crypto.subtle.importKey("raw", vk.key, { name: "Ed25519" }, false, ["verify"]);
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, key, sig.blob.slice(4), enc.encode(cp.text));
    if (!ok) throw new Error("the checkpoint's Ed25519 signature does not verify");
    report("the checkpoint's Ed25519 signature by " + vk.name + " verifies");
  }

  async function run() {
    const holder = document.getElementById("proof-data");
    const verdict = document.getElementById("verdict");
    const checks = document.getElementById("checks");
    if (!holder || !verdict || !checks) return;
    const report = (text, failed) => {
      const li = document.createElement("li");
      li.textContent = text;
      li.className = failed ? "failed" : "passed";
      checks.appendChild(li);
    };
    try {
      const data = JSON.parse(holder.textContent);
      // Show the record as the bytes that were checked say it is.
      const prefix = "meshos.ledger.v1\n";
      if (data.canonical.startsWith(prefix)) {
        const shown = document.getElementById("record-text");
        if (shown) shown.textContent = JSON.stringify(JSON.parse(data.canonical.slice(prefix.length)), null, 2);
      }
      await verify(data, (t) => report(t, false));
      verdict.textContent = "Verified in this browser: the record is in the ledger the signed checkpoint commits to.";
      verdict.className = "verdict ok";
      verdict.dataset.state = "verified";
    } catch (e) {
      report(String(e && e.message ? e.message : e), true);
      verdict.textContent = "NOT verified: " + (e && e.message ? e.message : e);
      verdict.className = "verdict bad";
      verdict.dataset.state = "failed";
    }
  }

  // For checking a bundle by hand from the browser's console (and for the tests).
  window.meshosVerify = { verify };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
