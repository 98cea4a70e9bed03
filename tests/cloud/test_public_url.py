"""The URL announcements send devices to: --public-url, else where `serve` listens, never a port nobody listens on."""

import socket

import pytest

from cloud.options import DEFAULT_PUBLIC_URL, CloudOptions, ServeConfig
from common.options import build


@pytest.mark.parametrize(
    ("flags", "url"),
    [
        ({"http_port": 9123}, "http://127.0.0.1:9123"),
        ({"http_host": "10.1.2.3", "http_port": 80}, "http://10.1.2.3:80"),
        ({"http_host": "::1", "http_port": 9000}, "http://[::1]:9000"),
        ({"http_host": "0.0.0.0", "http_port": 9000, "insecure_open_api": True}, f"http://{socket.getfqdn()}:9000"),
        ({"http_port": 9000, "public_url": "https://edgeloop.example.org"}, "https://edgeloop.example.org"),
    ],
)
def test_serve_announces_where_it_listens_unless_told(flags: dict, url: str) -> None:
    assert build(ServeConfig, flags).download_url == url


def test_commands_without_an_http_port_use_serve_s_default() -> None:
    assert build(CloudOptions, {}).download_url == DEFAULT_PUBLIC_URL
