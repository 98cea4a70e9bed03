"""The manual trigger over MQTT: `{"model": name, "reason": …}` on `edgeloop/commands/retrain`
queues a training (or joins the one under way). A malformed command is logged and counted."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from cloud.datasets import dataset_dir
from cloud.training.jobs import Jobs
from common import protocol
from common.mqtt.client import connect_properties, make_client
from common.mqtt.url import BrokerAddress

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 86400


class RetrainCommands:
    def __init__(
        self, jobs: Jobs, data_dir: Path, address: BrokerAddress, topics: protocol.Topics, client_id: str, group=None
    ) -> None:
        self.jobs, self.data_dir, self.address = jobs, data_dir, address
        self.topic = (f"$share/{group}/" if group else "") + topics.retrain()
        self.counts: Counter[str] = Counter()
        self._client = make_client(address, client_id)
        self._client.on_connect = lambda client, *_: client.subscribe(self.topic, qos=protocol.RETRAIN.qos)
        self._client.on_message = self._on_message

    def start(self) -> None:
        props = connect_properties(SESSION_EXPIRY_S)
        self._client.connect_async(self.address.host, self.address.port, 30, clean_start=False, properties=props)
        self._client.loop_start()

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def _on_message(self, client, userdata, message) -> None:
        try:
            request = protocol.RETRAIN.decode(message.payload)
            protocol.check_id(request.model, "model name")
        except protocol.ProtocolError as exc:
            self.counts["rejected"] += 1
            log.warning("ignoring a malformed retrain command: %s", exc)
            return
        if not dataset_dir(self.data_dir, request.model).is_dir():
            self.counts["unknown_model"] += 1
            log.warning("retrain command for %r, which has no dataset here", request.model)
            return
        try:
            self.jobs.request(request.model, f"manual (mqtt): {request.reason}")
            self.counts["accepted"] += 1
        except Exception as exc:  # the database away: the command is lost, say so
            self.counts["failed"] += 1
            log.error("cannot queue the retrain command for %s: %r", request.model, exc)
