"""Which unlabelled pictures a person should label next: selection strategies over the base network's
embeddings (bottlenecks) and the model's probabilities, and near-duplicate collapse."""
