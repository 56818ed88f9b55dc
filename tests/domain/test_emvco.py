"""EMVCo merchant-presented payloads: ID-length-value objects, CRC-16/CCITT-FALSE, checked against
published examples (the EMVCo specification's own, and two vendors' documented ones)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.codes import emvco
from domain.codes.merchant import fen, yuan

# EMV QRCPS Merchant-Presented Mode, the specification's example (CRC A13A): a Beijing merchant
# with its Chinese name in the alternate-language template 64, lengths counted in characters.
SPEC_EXAMPLE = (
    "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678"
    "520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京"
    "540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708"
    "123456786304A13A"
)
# The decode example of the emv-qr-code library's README (phannaly/emv-qr-code), CRC A0BA.
LIBRARY_EXAMPLE = (
    "00020101021252044131153137210116372101160123456789ABCDE6010Phnom Penh5913Merchant Shop"
    "5802KH540510.005303840622501081234567802090124444446304A0BA"
)
# Mastercard's developer documentation, a Secure Card on File QR (CRC 6F6D).
MASTERCARD_EXAMPLE = (
    "000201010211057704736a2f41a3-c54c-fce8-32d2-0324e1c32e22*3440e5bf-81ca-4c5f-a1b2-"
    "cf989f09a03952045024530384054031005802US5913Test Merchant6008New York62080304123463046F6D"
)


def test_crc16_ccitt_false_check_value():
    assert emvco.crc16_ccitt_false(b"123456789") == 0x29B1
    assert emvco.crc16_ccitt_false(b"") == 0xFFFF


@pytest.mark.parametrize(
    ("payload", "crc"),
    [(SPEC_EXAMPLE, "A13A"), (LIBRARY_EXAMPLE, "A0BA"), (MASTERCARD_EXAMPLE, "6F6D")],
)
def test_published_examples_carry_the_crc_we_compute(payload, crc):
    assert payload.endswith("6304" + crc)
    assert f"{emvco.crc16_ccitt_false(payload[:-4].encode('utf-8')):04X}" == crc
    assert emvco.with_crc(payload[:-8]) == payload
    assert emvco.decode(payload)["63"] == crc


def test_the_spec_example_decodes_field_by_field():
    fields = emvco.decode(SPEC_EXAMPLE)
    assert fields["01"] == "12" and fields["53"] == "156" and fields["54"] == "23.72"
    assert (fields["58"], fields["59"], fields["60"]) == ("CN", "BEST TRANSPORT", "BEIJING")
    language = emvco.template(fields["64"])
    assert language == {"00": "ZH", "01": "最佳运输", "02": "北京"}  # lengths in characters
    assert emvco.template(fields["62"]) == {"03": "1234", "06": "***", "07": "A6008667", "09": "ME"}
    assert emvco.template(fields["29"])["00"] == "D15600000000"
    # Re-encoding the objects in their order gives the payload back, CRC included.
    objects = emvco.parse_objects(SPEC_EXAMPLE)[:-1]
    assert emvco.encode(objects) == SPEC_EXAMPLE


@pytest.mark.parametrize(
    "bad",
    [
        SPEC_EXAMPLE[:-1] + "B",  # wrong CRC
        SPEC_EXAMPLE[:-4] + SPEC_EXAMPLE[-4:].lower(),  # CRC in lower case
        SPEC_EXAMPLE.replace("23.72", "93.72"),  # amount edited, CRC not
        SPEC_EXAMPLE.replace("最佳运输", "最差运输"),  # a Chinese character edited
        SPEC_EXAMPLE[6:],  # no 000201
        SPEC_EXAMPLE[:-8],  # no CRC
        "000201" + "5303156" + "63",  # cut short
        "000201" + "0102XX" + "6304ABCD",  # not a number
        "0002010000" + "6304",  # zero length
        "1" * 513,
    ],
)
def test_malformed_or_edited_payloads_are_refused(bad):
    with pytest.raises(emvco.EmvError):
        emvco.decode(bad)


def test_duplicate_objects_are_refused():
    with pytest.raises(emvco.EmvError, match="twice"):
        emvco.decode(emvco.encode([("00", "01"), ("53", "156"), ("53", "840")]))


def test_values_are_1_to_99_characters():
    assert emvco.tlv("59", "最佳运输") == "5904最佳运输"
    for bad in ("", "x" * 100):
        with pytest.raises(ValueError):
            emvco.tlv("59", bad)
    with pytest.raises(ValueError):
        emvco.tlv("5", "x")


_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("一卡通北京"),
    min_size=1,
    max_size=30,
)


@given(st.lists(st.tuples(st.sampled_from(["52", "59", "60", "62", "64"]), _VALUE), max_size=5))
def test_encode_then_decode_round_trips(objects):
    objects = list(dict([("00", "01"), *objects]).items())
    assert emvco.decode(emvco.encode(objects)) == {
        **dict(objects),
        "63": emvco.encode(objects)[-4:],
    }


@given(
    st.integers(min_value=0, max_value=len(LIBRARY_EXAMPLE) - 1),
    st.characters(min_codepoint=0x30, max_codepoint=0x7A),
)
def test_any_one_character_edit_is_caught(position, replacement):
    original = LIBRARY_EXAMPLE[position]
    if replacement == original:
        return
    edited = LIBRARY_EXAMPLE[:position] + replacement + LIBRARY_EXAMPLE[position + 1 :]
    with pytest.raises(emvco.EmvError):
        emvco.decode(edited)


def test_yuan_and_fen():
    assert [yuan(f) for f in (1, 100, 2372, 999_999_999_999)] == [
        "0.01",
        "1.00",
        "23.72",
        "9999999999.99",
    ]
    assert [fen(y) for y in ("0.01", "1", "1.5", "23.72", "9999999999.99")] == [
        1,
        100,
        150,
        2372,
        999_999_999_999,
    ]
    for bad in ("", "1.", ".5", "1.234", "-1", "1,00", "12345678901"):
        with pytest.raises(emvco.EmvError):
            fen(bad)
