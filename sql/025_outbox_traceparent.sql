-- Traces across the outbox (issue 23): the W3C traceparent of the request that enqueued a
-- message, kept with the row because the relay sends it after that request has ended; the
-- relay passes it on as the SQS message attribute `traceparent`, which the consumer continues.
ALTER TABLE outbox_message ADD COLUMN IF NOT EXISTS traceparent TEXT;
