"""``mpp``: the mall's command line. It talks to the gateway's HTTP API only (``MALL_URL`` and a
key from ``MPP_KEY`` or a profile file); the operator commands ``dlq`` and ``outbox`` wrap the
chassis' own tools, as ``make dlq`` does."""
