"""Request bodies. Amounts are yuan strings ("12.50"), parsed exactly by the domain, which names
the field in its error; unknown fields are refused."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Yuan = Field(description="yuan as a decimal string with at most 2 places, e.g. \"12.50\"", examples=["12.50"], max_length=20)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CredentialIn(Strict):
    credential_type: Literal["id_number", "card", "ecard"] = Field(description="id_number 身份证, card 社保卡号, ecard 电子社保卡号")
    credential_no: str = Field(min_length=1, max_length=64)


class VisitIn(Strict):
    psn_no: str = Field(min_length=1, max_length=24, description="the person's number from /his/persons/lookup")
    kind: Literal["outpatient", "emergency", "inpatient", "pharmacy"]
    visit_date: date | None = Field(None, description="defaults to today")


class FeeLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    feedetl_sn: str = Field(min_length=1, max_length=30, description="the line's serial number, unique within the visit")
    code: str = Field(min_length=1, max_length=50)
    name: str | None = Field(None, max_length=200)
    line_class: Literal["A", "B", "C", "unlisted"] = Field(alias="class", description="A 甲 | B 乙 | C 丙 | unlisted 目录外")
    unit_price: str = Yuan
    quantity: str = Field(description="decimal string > 0, at most 4 places", examples=["2"], max_length=20)
    price_cap: str | None = Field(None, description="yuan; the catalogue's price cap (限价)", max_length=20)
    self_pay_ratio: str | None = Field(None, description="B lines: the pre-self-pay ratio, e.g. \"0.10\"", max_length=20)
    prescription: bool = False
    prescriber: str | None = Field(None, max_length=60, description="required on prescription lines")


class FeeLinesIn(Strict):
    lines: list[FeeLineIn] = Field(min_length=1, max_length=500)


class AccountIn(Strict):
    use: bool = Field(False, description="pay from a personal account")
    payer: Literal["self", "guardian", "family"] = "self"
    payer_person_id: str | None = Field(None, max_length=24, description="for guardian or family: whose account pays")


class SettleIn(Strict):
    account: AccountIn = AccountIn()
    msgid: str | None = Field(None, min_length=1, max_length=40, description="the message id (default: the Idempotency-Key); reversals name it")


class PresettleIn(Strict):
    account: AccountIn = AccountIn()


class ReversalIn(Strict):
    omsgid: str = Field(min_length=1, max_length=40, description="the message id of the settlement to reverse")
    oinfno: Literal["2207"] = "2207"
