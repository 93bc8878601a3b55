"""The record contract: good records become v2 bodies, bad ones fail one by one with reasons."""

from __future__ import annotations

import hashlib

import pytest

from step_lambdas.pipedrive.records import DealRecord, FieldCatalog, InvalidRecord, RecordValidator


def key(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


DEAL_FIELDS = [
    {"id": 1, "key": "title", "name": "Title", "field_type": "varchar"},
    {"id": 2, "key": "value", "name": "Value", "field_type": "monetary"},
    {"id": 3, "key": key("External ID"), "name": "External ID", "field_type": "varchar"},
    {"id": 4, "key": key("Lead source"), "name": "Lead source", "field_type": "varchar"},
    {"id": 5, "key": key("Score"), "name": "Score", "field_type": "double"},
]


@pytest.fixture
def validator() -> RecordValidator:
    return RecordValidator(FieldCatalog.from_deal_fields(DEAL_FIELDS), "External ID")


def test_custom_fields_by_name_or_key_become_keys(validator):
    record = validator.validate({"external_id": "A-1", "title": "Deal A", "value": 12.5, "currency": "EUR",
                                 "status": "open", "expected_close_date": "2026-03-01",
                                 "custom_fields": {"Lead source": "web", key("Score"): 7}}, 0)
    assert isinstance(record, DealRecord)
    assert record.body["custom_fields"] == {key("External ID"): "A-1", key("Lead source"): "web", key("Score"): 7}
    assert record.body["value"] == 12.5 and record.deal_id is None


def test_hash_is_stable_and_tracks_content(validator):
    a = validator.validate({"external_id": "A", "title": "t", "custom_fields": {"Score": 1, "Lead source": "x"}}, 0)
    b = validator.validate({"custom_fields": {"Lead source": "x", "Score": 1}, "title": "t", "external_id": "A"}, 5)
    c = validator.validate({"external_id": "A", "title": "t2", "custom_fields": {"Score": 1, "Lead source": "x"}}, 0)
    assert a.content_hash == b.content_hash != c.content_hash


@pytest.mark.parametrize("raw, field, expected_fragment", [
    ({"external_id": "A"}, "title", "missing"),
    ({"title": "t"}, "external_id", "null"),
    ({"external_id": 42, "title": "t"}, "external_id", "int 42"),
    ({"external_id": "A", "title": "t", "value": "12"}, "value", 'str "12"'),
    ({"external_id": "A", "title": "t", "value": True}, "value", "bool"),
    ({"external_id": "A", "title": "t", "status": "closed"}, "status", "closed"),
    ({"external_id": "A", "title": "t", "stage_id": 1.5}, "stage_id", "float"),
    ({"external_id": "A", "title": "t", "currency": "euro"}, "currency", "euro"),
    ({"external_id": "A", "title": "t", "expected_close_date": "2026-02-30"}, "expected_close_date", "2026-02-30"),
    ({"external_id": "A", "title": "t", "custom_fields": {"Colour": "red"}}, "custom_fields.Colour", "unknown"),
    ({"external_id": "A", "title": "t", "custom_fields": {"Score": "high"}}, "custom_fields.Score", "high"),
    ({"external_id": "A", "title": "t", "nickname": "x"}, "nickname", "unknown field"),
    ({"external_id": "A", "title": "t", "deal_id": "7"}, "deal_id", '"7"'),
])
def test_contract_breaks_say_field_expected_and_got(validator, raw, field, expected_fragment):
    result = validator.validate(raw, 3)
    assert isinstance(result, InvalidRecord) and result.index == 3
    reasons = [r for r in result.reasons if r.startswith(field + ":")]
    assert reasons, result.reasons
    assert "expected" in reasons[0] and expected_fragment in reasons[0]


def test_every_reason_is_reported_at_once(validator):
    result = validator.validate({"external_id": "A", "value": "x", "status": "?"}, 0)
    assert {r.split(":")[0] for r in result.reasons} == {"title", "value", "status"}


def test_non_object_record_is_refused(validator):
    result = validator.validate(["not", "an", "object"], 9)
    assert isinstance(result, InvalidRecord) and "JSON object" in result.reasons[0]


def test_unknown_external_id_field_is_a_clear_setup_error():
    with pytest.raises(ValueError, match="'Customer key' is not a custom deal field.*External ID"):
        RecordValidator(FieldCatalog.from_deal_fields(DEAL_FIELDS), "Customer key")


def test_external_id_field_may_be_given_by_key(validator):
    by_key = RecordValidator(FieldCatalog.from_deal_fields(DEAL_FIELDS), key("External ID"))
    assert by_key.external_id_key == validator.external_id_key


# -- Pipedrive's text limits and text UTF-8 cannot carry ----------------------------------

def test_title_and_short_text_fields_hold_at_most_255_characters(validator):
    fits = validator.validate({"external_id": "A", "title": "t" * 255,
                               "custom_fields": {"Lead source": "s" * 255}}, 0)
    assert isinstance(fits, DealRecord)
    over = validator.validate({"external_id": "A", "title": "t" * 256,
                               "custom_fields": {"Lead source": "s" * 300}}, 4)
    assert isinstance(over, InvalidRecord) and over.external_id == "A"
    assert [r.split(' "')[0] for r in over.reasons] == [
        "title: expected at most 255 characters, got str of 256 characters",
        "custom_fields.Lead source: expected at most 255 characters (varchar field), got str of 300 characters",
    ]


def test_a_lone_surrogate_is_refused_by_field_and_the_reasons_stay_encodable(validator):
    # json.loads('"Caf\\ud83d"') (half an emoji, as a JSON escape) gives such a string
    broken = "Caf\ud83d"
    result = validator.validate({"external_id": "A-\ud800", "title": broken,
                                 "custom_fields": {"Lead source": broken}}, 2)
    assert isinstance(result, InvalidRecord)
    assert result.external_id == "A-\\ud800"
    assert {r.split(":")[0] for r in result.reasons} == {"external_id", "title", "custom_fields.Lead source"}
    assert all("expected text encodable as UTF-8" in r and "lone surrogate U+" in r for r in result.reasons)
    "\n".join(result.reasons).encode("utf-8")  # written to failures.jsonl as is


def test_an_emoji_parsed_from_a_surrogate_pair_escape_is_ordinary_text(validator):
    import json

    title = json.loads('"Caf\\ud83d\\ude00"')
    result = validator.validate({"external_id": "A", "title": title}, 0)
    assert isinstance(result, DealRecord) and result.body["title"] == "Caf\U0001F600"
