"""edgeloop's cloud side: aggregator, API and dashboard, retrainer, registry, triggers, rollout."""

import logging

logging.getLogger(__name__).addHandler(logging.NullHandler())
