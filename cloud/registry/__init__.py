"""The model registry: versions, the promotion gate, rollout."""
