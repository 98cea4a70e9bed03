"""edgeloop's device runtime: sources, backends, bundle loading, the wire protocol and the CLI."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
