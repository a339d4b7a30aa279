-- Witness cosignatures of checkpoints (C2SP tlog-cosignature v1, issue 16).
--
-- `serve` submits each tenant's newest checkpoint to the configured witnesses (C2SP
-- tlog-witness) and keeps what each returns: one signature line per (checkpoint, witness),
-- `witness` being the line's `<key name>+<hex key id>`. The line is the evidence (the witness's
-- Ed25519 signature over its timestamp and the checkpoint body); `meshos audit verify
-- --witness-key` checks it against the stored note. A cosignature only exists for a stored
-- checkpoint, and like checkpoints it is never updated or deleted.
CREATE TABLE checkpoint_cosignatures (
    tenant TEXT NOT NULL,
    size INTEGER NOT NULL,
    witness TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (tenant, size, witness),
    FOREIGN KEY (tenant, size) REFERENCES checkpoints (tenant, size)
);

-- The newest cosigned size per witness is what the next submission proves consistency from.
CREATE INDEX checkpoint_cosignatures_by_witness
    ON checkpoint_cosignatures (tenant, witness, size);

CREATE TRIGGER checkpoint_cosignatures_no_update BEFORE UPDATE ON checkpoint_cosignatures
BEGIN SELECT RAISE(ABORT, 'checkpoint_cosignatures are append-only evidence'); END;
CREATE TRIGGER checkpoint_cosignatures_no_delete BEFORE DELETE ON checkpoint_cosignatures
BEGIN SELECT RAISE(ABORT, 'checkpoint_cosignatures are append-only evidence'); END;
