"""What the device and the cloud share, and nothing else: the wire protocol, the MQTT URL and client,
the options machinery, the model bundle's format, images, signing. It imports neither edge nor cloud."""

import logging

__version__ = "0.1.0"  # pyproject.toml reads it from here

logging.getLogger(__name__).addHandler(logging.NullHandler())
