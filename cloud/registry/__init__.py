"""The model registry: versions, the promotion gate, rollout and canary widening, and its signing keys."""
