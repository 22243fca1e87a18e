-- How many PII spans (e-mail addresses, phone and card numbers, IBANs, IPs, URLs with
-- credentials, names) were replaced in an event's stored text and subject, so the
-- dashboards can show how much was removed (README "PII redaction"). 0 for rows
-- written before redaction existed, or with MOODPIPE_PII_REDACTION=off.
ALTER TABLE {database}.scored_events ADD COLUMN IF NOT EXISTS pii_redacted UInt16 DEFAULT 0 AFTER text;
