"""Reading order import files, before anything is written."""

from __future__ import annotations

from datetime import UTC, datetime

from helpdesk.shop.imports import blocking, read_orders_csv
from tests.helpdesk.care.conftest import SHOP_TZ, local


def test_import_reader_reports_every_bad_line_and_reads_shop_time():
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    text = ("code,phone,status,delivered_at,items,serials\n"
            "dh1,0901234567,,2026-03-01 15:00,RC-18:2;BL-600:1,SN1;SN2;SN3\n"
            "DH2,0901234567,delivered,yesterday,,\n"
            "DH1,0901234567,pending,,,\n"
            "DH3,0901234567,pending,,RC-18:1,SN4;SN5\n"
            "DH4,0901234567\n")
    rows, errors = read_orders_csv(text.encode(), timezone=SHOP_TZ, now=now)

    assert [(error.line, error.error.split(" ")[0]) for error in errors] == [
        (3, "delivered_at"), (4, "order"), (5, "2"), (6, "expected")]
    (row,) = rows
    assert (row.code, row.status, row.delivered_at) == ("DH1", "delivered", local("2026-03-01 15:00"))
    assert row.items == [{"sku": "RC-18", "qty": 2, "serials": ["SN1", "SN2"]},
                         {"sku": "BL-600", "qty": 1, "serials": ["SN3"], "serial": "SN3"}]


def test_a_malformed_phone_or_email_is_a_contact_error_of_its_line_and_other_faults_still_block():
    now = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    text = ("code,phone,email,status\n"
            "DH1,0901234567,An@Example.COM,pending\n"
            "DH2,12345,,pending\n"
            "DH3,0901234567,an at example.com,pending\n"
            "DH4,0901234567,,nonsense\n"
            "DH5,0901234567,,pending\n")
    rows, errors = read_orders_csv(text.encode(), timezone=SHOP_TZ, now=now)

    assert [(row.code, row.email) for row in rows] == [("DH1", "An@example.com"), ("DH5", None)]
    assert [(error.line, error.contact) for error in errors] == [(3, True), (4, True), (5, False)]
    assert "12345" in errors[0].error and "is not a Vietnamese mobile number" in errors[0].error
    assert errors[1].error.startswith("email:") and "not an email address" in errors[1].error
    assert [error.line for error in blocking(errors)] == [5]
