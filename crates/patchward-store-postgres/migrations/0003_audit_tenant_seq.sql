-- Each tenant's audit entries are also numbered 1, 2, 3, ... of their own: a tenant reading
-- its log sees no gaps that would count another tenant's activity. The global `seq` and the
-- hash chain are unchanged (the chain is verified by provider-wide administrators).
ALTER TABLE audit_log ADD COLUMN tenant_seq BIGINT;
UPDATE audit_log SET tenant_seq = numbered.n
FROM (SELECT seq, ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY seq) AS n FROM audit_log) AS numbered
WHERE audit_log.seq = numbered.seq;
CREATE INDEX audit_log_tenant_seq ON audit_log (tenant_id, tenant_seq);
