from __future__ import annotations

import pytest

from services.accounts.service import (
    check_password,
    normalize_email,
    normalize_username,
    validate_profile_changes,
)
from services.common.errors import InvalidArgument


@pytest.mark.parametrize("raw, expected", [("alice", "alice"), ("Alice.B_1", "alice.b_1"), ("a", "a"),
                                           ("x" * 30, "x" * 30)])
def test_valid_usernames_are_lower_cased(raw, expected):
    assert normalize_username(raw) == expected


@pytest.mark.parametrize("raw", ["", "x" * 31, "has space", "dash-name", "émile", "semi;colon"])
def test_invalid_usernames_name_the_field(raw):
    with pytest.raises(InvalidArgument) as error:
        normalize_username(raw)
    assert error.value.field == "username"


@pytest.mark.parametrize("raw", ["plain", "a@b", "@example.com", "a b@example.com", "a@@example.com"])
def test_invalid_emails_are_rejected(raw):
    with pytest.raises(InvalidArgument):
        normalize_email(raw)


def test_email_is_lower_cased():
    assert normalize_email(" Bob@Example.COM ") == "bob@example.com"


def test_password_length_bounds():
    check_password("8 chars!")
    for bad in ("short", "x" * 1025):
        with pytest.raises(InvalidArgument):
            check_password(bad)


def test_profile_changes_reject_fields_that_are_not_editable():
    with pytest.raises(InvalidArgument) as error:
        validate_profile_changes({"username": "new", "bio": "x"})
    assert "username" in error.value.message


def test_profile_changes_reject_control_characters():
    with pytest.raises(InvalidArgument):
        validate_profile_changes({"display_name": "bad\x00name"})
