"""The local queue dispatcher: SQS event source mappings, schedules and the outbox relay."""
