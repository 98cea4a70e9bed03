"""The retrainer: TF for Poets on Keras 3 (a frozen ImageNet base, cached bottlenecks, a new layer)."""
