"""Training jobs: the queue, the trainer, the triggers, and the manual trigger over MQTT and from a shell."""
