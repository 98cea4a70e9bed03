"""edgeloop's device runtime: sources, backends, the pipeline, the MQTT publisher
and its outbox, model updates and the CLI. It never imports cloud."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
