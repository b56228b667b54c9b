"""The tenant disk helper's protocol: the `usage` action's request and answer lines."""

from __future__ import annotations

import json

import pytest

from fta.tenantdisk.protocol import (
    DiskUsage,
    HelperRefused,
    ProtocolError,
    UsageAnswer,
    UsageRequest,
    decode_request,
)


def test_a_usage_request_is_the_action_alone() -> None:
    assert decode_request(UsageRequest().encode()) == UsageRequest()
    for extra in ({"tenant": "abc"}, {"path": "/"}, {"all": True}):
        with pytest.raises(ProtocolError, match="expected"):
            decode_request(json.dumps({"action": "usage", **extra}).encode())


def test_a_usage_answer_round_trips() -> None:
    disks = (DiskUsage("abc", 32 << 20, 1 << 20), DiskUsage("xyz7", 1 << 30, 0))
    assert UsageAnswer.decode(UsageAnswer(disks).encode()) == UsageAnswer(disks)
    assert UsageAnswer.decode(UsageAnswer(()).encode()).disks == ()


@pytest.mark.parametrize(
    "disk",
    [
        {"tenant": "../etc", "size_bytes": 1, "used_bytes": 0},
        {"tenant": "abc", "size_bytes": -1, "used_bytes": 0},
        {"tenant": "abc", "size_bytes": 1, "used_bytes": True},
        {"tenant": "abc", "size_bytes": "1", "used_bytes": 0},
        {"tenant": "abc", "size_bytes": 1},
        {"tenant": "abc", "size_bytes": 1, "used_bytes": 0, "path": "/"},
        ["abc", 1, 0],
    ],
)
def test_a_malformed_disk_in_an_answer_is_refused(disk: object) -> None:
    line = json.dumps({"ok": True, "disks": [disk]}).encode()
    with pytest.raises(ProtocolError):
        UsageAnswer.decode(line)


def test_a_refusal_carries_the_helpers_reason() -> None:
    with pytest.raises(HelperRefused, match="not allowed"):
        UsageAnswer.decode(b'{"ok": false, "error": "not allowed"}')
