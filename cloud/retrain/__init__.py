"""The retrainer: TF for Poets (a frozen ImageNet base, cached bottlenecks, a new softmax layer) on Keras 3."""
