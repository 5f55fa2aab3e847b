"""The small runtime every service uses: database unit of work, outbox relay, idempotent and
dead-lettering event handlers, bounded RPC, health, metrics and JSON logs."""
