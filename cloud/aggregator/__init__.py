"""The aggregator: MQTT ingest into the store, exactly once per (device_id, seq, ts): a device resends a
prediction with its capture time."""
