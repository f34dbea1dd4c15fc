"""The topic schemes and the identifier rule, table-driven: build, parse, refuse, render the ACL."""

from __future__ import annotations

import random
import re

import pytest
from pydantic import BaseModel, ValidationError

from smartfarm.errors import ContractError, RejectReason
from smartfarm.identifiers import ID_PATTERN, Identifier, is_identifier, valves_user
from smartfarm.topics import (
    FARM_ROLES,
    DeviceAddress,
    DeviceTopic,
    KafkaTopic,
    MqttRole,
    MqttTopics,
    MqttUser,
    topic_specs,
    zone_key,
)

TOPICS = MqttTopics("smartfarm")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        (
            "smartfarm/v1/valley-farm/devices/soil-1/telemetry",
            DeviceAddress("valley-farm", "soil-1", DeviceTopic.TELEMETRY),
        ),
        ("smartfarm/v1/valley-farm/devices/soil-1/status", DeviceAddress("valley-farm", "soil-1", DeviceTopic.STATUS)),
        ("smartfarm/v1/f/devices/" + "d" * 63 + "/telemetry", DeviceAddress("f", "d" * 63, DeviceTopic.TELEMETRY)),
        ("smartfarm/v1/valley-farm/devices/soil-1/config", None),
        ("smartfarm/v2/valley-farm/devices/soil-1/telemetry", None),
        ("other/v1/valley-farm/devices/soil-1/telemetry", None),
        ("smartfarm/v1/valley-farm/devices/Soil_1/telemetry", None),
        ("smartfarm/v1/F_1/devices/d-1/telemetry", None),
        ("smartfarm/v1/f-1/devices/-d/telemetry", None),
        ("smartfarm/v1/f-1/devices//telemetry", None),
        ("smartfarm/v1/valley-farm/devices/soil-1/telemetry/extra", None),
        ("smartfarm/v1/valley-farm/zones/tomato/recommendations", None),
        ("smartfarm/v1/valley-farm/zones/tomato/telemetry", None),
        ("smartfarm/v1/f-1/devices/" + "d" * 64 + "/telemetry", None),
        ("smartfarm/v1/f-1/devices/d-1/telemetry ", None),
        ("smartfarm/v1/f-1/devices/dé/telemetry", None),
        ("", None),
    ],
)
def test_device_topics_parse_or_are_refused(topic: str, expected: DeviceAddress | None) -> None:
    if expected is None:
        with pytest.raises(ContractError) as caught:
            TOPICS.parse_device(topic)
        assert caught.value.reason is RejectReason.UNKNOWN_TOPIC
    else:
        assert TOPICS.parse_device(topic) == expected


def reference_match(root: str, topic: str) -> tuple[str, str, str] | None:
    """The scheme as one regular expression: what the hand-written parser must agree with."""
    pattern = rf"{re.escape(root)}/v1/({ID_PATTERN})/devices/({ID_PATTERN})/(telemetry|status)"
    match = re.fullmatch(pattern, topic)
    return None if match is None else (match[1], match[2], match[3])


def test_the_fast_parser_is_exactly_as_strict_as_the_regex() -> None:
    rng = random.Random(7)
    alphabet = "ab-Z_9/é +#"
    levels = ["smartfarm", "v1", "v2", "devices", "zones", "telemetry", "status", "f-1", "d-1", "-x", "", "a" * 63]
    checked = 0
    for _ in range(20_000):
        parts = [rng.choice(levels) for _ in range(rng.randint(1, 7))]
        if rng.random() < 0.5:
            parts = ["smartfarm", "v1", parts[0], "devices", parts[-1], rng.choice(["telemetry", "status", "x"])]
        if rng.random() < 0.3:
            i = rng.randrange(len(parts))
            parts[i] = parts[i] + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3)))
        topic = "/".join(parts)
        expected = reference_match("smartfarm", topic)
        try:
            got = TOPICS.parse_device(topic)
        except ContractError:
            assert expected is None, topic
        else:
            assert expected == (got.farm, got.device, got.kind.value), topic
            checked += 1
    assert checked > 1000, "the generator reaches valid topics too"


@pytest.mark.parametrize(
    "text", ["a", "0", "soil-1", "a" * 63, "-a", "A", "a_b", "a" * 64, "", "é", "a b", "a/b", "a+", "a-"]
)
def test_one_identifier_rule_in_both_encodings(text: str) -> None:
    class Model(BaseModel):
        id: Identifier

    try:
        Model(id=text)
        valid = True
    except ValidationError:
        valid = False
    assert is_identifier(text) is valid is bool(re.fullmatch(ID_PATTERN, text))


def test_builders_and_filters_agree_with_the_parser() -> None:
    topics = MqttTopics("farmroot")
    for kind in DeviceTopic:
        topic = topics.device("f-1", "d-1", kind)
        assert topics.parse_device(topic) == DeviceAddress("f-1", "d-1", kind)
    assert topics.telemetry("f-1", "d-1") == "farmroot/v1/f-1/devices/d-1/telemetry"
    assert topics.status("f-1", "d-1") == "farmroot/v1/f-1/devices/d-1/status"
    assert topics.device_filter(DeviceTopic.TELEMETRY) == "farmroot/v1/+/devices/+/telemetry"
    assert topics.device_filter(DeviceTopic.STATUS, farm="f-1") == "farmroot/v1/f-1/devices/+/status"
    assert topics.recommendations("f-1", "z-1") == "farmroot/v1/f-1/zones/z-1/recommendations"
    assert MqttTopics.device_named("farmroot/v1/F_1/devices/d-1/telemetry") == "d-1"
    assert MqttTopics.device_named("farmroot/v1/f-1/zones/d-1/telemetry") is None
    assert MqttTopics.device_named("random/topic") is None


def test_the_acl_gives_each_user_its_role_and_nothing_else() -> None:
    users = [
        MqttUser.device("soil-1", "farm-a", "north"),
        MqttUser.valves("valves-0-of-1", [("farm-a", "north"), ("farm-b", "east")]),
        MqttUser.bridge("smartfarm-bridge"),
        MqttUser.farm_service("farm-a", MqttRole.DASHBOARD),
        MqttUser.farm_service("farm-b", MqttRole.ADVICE),
    ]
    assert MqttTopics("farmroot").acl(users).splitlines() == [
        "user soil-1",
        "topic write farmroot/v1/farm-a/devices/soil-1/telemetry",
        "topic write farmroot/v1/farm-a/devices/soil-1/status",
        "topic read farmroot/v1/farm-a/zones/north/recommendations",
        "topic read farmroot/v1/farm-a/zones/north/commands",
        "",
        "user valves-0-of-1",
        "topic read farmroot/v1/farm-a/zones/north/recommendations",
        "topic read farmroot/v1/farm-a/zones/north/commands",
        "topic read farmroot/v1/farm-b/zones/east/recommendations",
        "topic read farmroot/v1/farm-b/zones/east/commands",
        "",
        "user smartfarm-bridge",
        "topic read farmroot/v1/+/devices/+/telemetry",
        "topic read farmroot/v1/+/devices/+/status",
        "topic write farmroot/v1/+/zones/+/recommendations",
        "topic write farmroot/v1/+/zones/+/commands",
        "",
        "user farm-a.dashboard",
        "topic read farmroot/v1/farm-a/#",
        "",
        "user farm-b.advice",
        "topic read farmroot/v1/farm-b/zones/+/recommendations",
        "topic read farmroot/v1/farm-b/zones/+/commands",
    ]


def test_farm_service_users_cannot_be_named_like_a_device() -> None:
    for role in FARM_ROLES:
        assert not is_identifier(MqttUser.farm_service("farm-a", role).name)


def test_service_user_names_are_identifiers() -> None:
    assert valves_user((0, 1)) == "valves-0-of-1"
    assert is_identifier(valves_user((12, 40)))


def test_kafka_topic_specs_name_every_topic_under_the_prefix() -> None:
    specs = topic_specs("acme", 12)
    assert set(specs) == set(KafkaTopic)
    assert {s.name for s in specs.values()} == {f"acme.{t.value}" for t in KafkaTopic}
    assert all(s.partitions == 12 for t, s in specs.items() if t is not KafkaTopic.LAYOUT)
    assert specs[KafkaTopic.LAYOUT].partitions == 1  # a follower reads every farm in publishing order
    assert specs[KafkaTopic.DEVICE_STATUS].compacted and not specs[KafkaTopic.TELEMETRY_RAW].compacted
    assert specs[KafkaTopic.LAYOUT].compacted
    assert zone_key("f", "z") == b"f/z"
