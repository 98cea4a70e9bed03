"""The aggregator: MQTT ingest into the store, exactly once per (device_id, seq)."""
