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
    size BIGINT NOT NULL,
    witness TEXT NOT NULL,
    signature TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant, size, witness),
    FOREIGN KEY (tenant, size) REFERENCES checkpoints (tenant, size)
);

-- The newest cosigned size per witness is what the next submission proves consistency from.
CREATE INDEX checkpoint_cosignatures_by_witness
    ON checkpoint_cosignatures (tenant, witness, size);

-- meshos_append_only() is migration 0007's.
CREATE TRIGGER checkpoint_cosignatures_append_only BEFORE UPDATE OR DELETE ON checkpoint_cosignatures
    FOR EACH ROW EXECUTE FUNCTION meshos_append_only();
CREATE TRIGGER checkpoint_cosignatures_no_truncate BEFORE TRUNCATE ON checkpoint_cosignatures
    FOR EACH STATEMENT EXECUTE FUNCTION meshos_append_only();
