"""What services share: event names and payload schemas, the envelope, error types. Data only."""
