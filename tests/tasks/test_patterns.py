"""Each pattern that /openapi.json gives for a hand-written check (tasks/patterns.py) accepts
what that check accepts, read alike by Python's re and by the Rust engine that validates JSON
Schema for Schemathesis."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from starlette.datastructures import Headers

from imagegate.errors import InvalidRequest
from imagegate.tasks import idempotency, patterns
from imagegate.tasks.live import _PREFER_WAIT, preferred_wait
from imagegate.tasks.schemas import CreateTaskRequest, GenerationInput

SETTINGS = settings(
    max_examples=400, derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)  # fmt: skip
SPACES = "".join(c for c in map(chr, range(0x3001)) if c.isspace())
# Header values as the server reads them: Latin-1, without SP or HTAB at either end.
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
)


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern``, asserting both engines agree."""
    python = re.search(pattern, value) is not None
    assert jsonschema_rs.validator_for({"pattern": pattern}).is_valid(value) == python, value
    return python


def prompt_ok(prompt: str) -> bool:
    try:
        GenerationInput.model_validate({"prompt": prompt})
    except ValidationError:
        return False
    return True


@SETTINGS
@given(st.text(st.one_of(st.sampled_from(SPACES + "\x00"), st.characters()), max_size=8))
def test_prompt_pattern_is_the_prompt_check(prompt: str) -> None:
    assert matches(patterns.PROMPT, prompt) == prompt_ok(prompt)


def callback_ok(url: str) -> bool:
    body = {"model": "ideogram-v4", "input": {"prompt": "p"}, "callback_url": url}
    try:
        CreateTaskRequest.model_validate(body)
    except ValidationError:
        return False
    return True


URL_PARTS = st.tuples(
    st.sampled_from(["http", "https", "HTTPS", "ftp", "http:", ""]),
    st.sampled_from(["://", ":/", ":", "//"]),
    st.text(st.characters(min_codepoint=0x00, max_codepoint=0x7F), max_size=6),
    st.sampled_from(["", ":", ":0", ":080", ":65535", ":65536", ":99999", ":x", ":1:2"]),
    st.sampled_from(["", "/", "/a b", "?q=1", "#f", "/é", "/\x7f", "x"]),
)


@SETTINGS
@given(URL_PARTS)
def test_callback_url_pattern_is_the_callback_check_for_ascii_hosts(
    parts: tuple[str, ...],
) -> None:
    url = "".join(parts)
    authority = re.split("[/?#]", url.partition("://")[2], maxsplit=1)[0]
    if authority.isascii() and "[" not in authority:
        assert matches(patterns.CALLBACK_URL, url) == callback_ok(url), url


@pytest.mark.parametrize("url", ["http://é.example/", "http://[::1]/"])
def test_unicode_and_ipv6_hosts_are_taken_beyond_the_pattern(url: str) -> None:
    assert callback_ok(url)
    assert not matches(patterns.CALLBACK_URL, url)


@SETTINGS
@given(st.from_regex(patterns.CALLBACK_URL, fullmatch=True).filter(lambda u: len(u) <= 2048))
def test_every_url_the_pattern_makes_is_taken(url: str) -> None:
    assert callback_ok(url), url


def key_ok(key: str) -> bool:
    body = CreateTaskRequest.model_validate({"model": "m", "input": {"prompt": "p"}})
    try:
        idempotency.requested(Headers({idempotency.HEADER: key}), body)
    except InvalidRequest:
        return False
    return True


@SETTINGS
@given(HEADER_TEXT.map(lambda value: value.strip(" \t")).filter(bool))
def test_idempotency_key_pattern_is_the_key_check(key: str) -> None:
    assert matches(patterns.IDEMPOTENCY_KEY, key) == key_ok(key)


def wait_ok(prefer: str) -> bool:
    try:
        preferred_wait(Headers({"prefer": prefer}))
    except InvalidRequest:
        return False
    return True


def _joined(*choices: list[str]) -> st.SearchStrategy[str]:
    return st.tuples(*(st.sampled_from(choice) for choice in choices)).map("".join)


# Preferences: wait ones (spelling, spaces, quotes, good and bad values) and others.
WAIT = _joined(
    ["", " ", "\t"], ["wait", "WAIT", "Wait", "waits"], ["", " "], ["=", ""], ["", " ", "\t"],
    ["", '"'], ["", "0", "00", "1", "5", "007", "60", "060", "61", "99", "100", "x", "5x", "\xb2",
                "1.5", "-1", "\xa0"],
    ["", '"'], ["", " ", "\xa0"],
)  # fmt: skip
OTHER = st.one_of(st.sampled_from(["respond-async", "return=minimal", "", "a=wait"]), HEADER_TEXT)
PREFER = st.builds(
    str.join, st.sampled_from([",", ";", ", ", " ;"]),
    st.lists(st.one_of(WAIT, OTHER), min_size=1, max_size=3),
)  # fmt: skip


@pytest.mark.parametrize(
    ("prefer", "ok"),
    [("wait=1", True), ("wait=60", True), ("WAIT = 007", True), ('wait="5"', True),
     ("respond-async, wait=5", True), ("respond-async", True), ("a=wait=0", True), ("", True),
     ("wait=0", False), ("wait=61", False), ("wait=99", False), ("wait=100", False),
     ("wait=", False), ('wait=""', False), ("wait=5x", False), ("wait=-1", False),
     ("wait=\xb2", False), ("x; wait=0", False), ("wait = ", False)],
)  # fmt: skip
def test_prefer_pattern_on_examples(prefer: str, ok: bool) -> None:
    assert wait_ok(prefer) == ok
    assert matches(patterns.PREFER_WAIT_INVALID, prefer) != ok


@settings(SETTINGS, max_examples=1000)
@given(st.one_of(PREFER, HEADER_TEXT))
def test_prefer_pattern_finds_every_wait_the_server_refuses(prefer: str) -> None:
    prefer = prefer.strip(" \t")
    invalid = matches(patterns.PREFER_WAIT_INVALID, prefer)
    if not invalid:
        assert wait_ok(prefer), prefer
    elif wait_ok(prefer):  # the server reads the first wait only; the pattern refuses any
        assert len(_PREFER_WAIT.findall(prefer)) > 1, prefer
