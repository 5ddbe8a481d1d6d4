"""The one CSV writer every export uses (workshops.exports.stream_csv / csv_row / csv_cell)."""

import csv
import io
from decimal import Decimal

import pytest

from workshops.exports import csv_cell, csv_row, stream_csv


@pytest.mark.parametrize("text", ["=1+1", "+44 20", "-1", "-Avoids taking sides", "@SUM(A1)", "\tx", "\rx",
                                  '=HYPERLINK("http://x")'])
def test_text_that_a_spreadsheet_would_run_is_neutralised(text):
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("number", [-5, 0, 7, -0.5, 3.25, Decimal("-1.50")])
def test_numbers_stay_numbers_even_negative(number):
    assert csv_cell(number) is number
    line = csv_row([number])
    assert line == f'"{number}"\r\n' and "'" not in line


def test_other_values():
    assert csv_cell(None) == ""
    assert csv_cell(True) == "True"  # a bool is not written as a number
    assert csv_cell("plain text, with = inside") == "plain text, with = inside"
    assert csv_cell("") == ""


def test_stream_csv_quotes_every_field_and_starts_with_a_bom():
    lines = list(stream_csv(["a", "b", "c"], [[1, "=x", None], ["नमस्ते | x", -2, 'say "hi"\nthen']]))
    assert lines[0] == '\ufeff"a","b","c"\r\n'
    rows = list(csv.reader(io.StringIO("".join(lines).removeprefix("\ufeff"))))
    assert rows == [["a", "b", "c"], ["1", "'=x", ""], ["नमस्ते | x", "-2", 'say "hi"\nthen']]
    assert lines[1] == '"1","\'=x",""\r\n'
    assert not list(stream_csv(["a"], [], bom=False))[0].startswith("\ufeff")
