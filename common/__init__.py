"""What the device and the cloud share, and nothing else: the wire protocol, the MQTT URL and client,
the options machinery, the model bundle's format, images, signing. It imports neither edge nor cloud."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
