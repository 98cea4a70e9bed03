"""Training jobs: the queue, the runner, the triggers."""
