"""Request bodies. Amounts are yuan strings ("12.50"), parsed exactly by the domain, which names
the field in its error; unknown fields are refused."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from yibao.domain.files import decode_upload
from yibao.formats.bill_json import CHINA
from yibao.services.agency.pilots import Document

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?)?")


def _iso_day(value: Any) -> date:
    """Only "YYYY-MM-DD": pydantic's lax date takes a number as a Unix time (2.2e-16 became 1970-01-01)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DAY.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("date_parsing", "must be a date YYYY-MM-DD")


def _iso_time(value: Any) -> datetime:
    """Only an ISO 8601 string (a number is not a Unix time here); without an offset it is Beijing time, as in the
    national interface; years outside 1900–2100 are refused (the year 1 cannot even be turned to UTC)."""
    if isinstance(value, datetime):
        at = value
    elif isinstance(value, str) and _ISO_TIME.fullmatch(value):
        try:
            at = datetime.fromisoformat(value)
        except ValueError:
            raise PydanticCustomError("invalid_time", "must be an ISO 8601 time such as 2026-11-01T08:00:00+08:00") from None
    else:
        raise PydanticCustomError("invalid_time", "must be an ISO 8601 time such as 2026-11-01T08:00:00+08:00")
    if at.tzinfo is None:
        at = at.replace(tzinfo=CHINA)
    if not 1900 <= at.year <= 2100:
        raise PydanticCustomError("time_out_of_range", "must be a time in 1900–2100")
    return at


# The one date and the one time of the REST API, for every query and body field (the hand-parsed ones are gone).
IsoDate = Annotated[date, BeforeValidator(_iso_day)]
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_time)]

Yuan = Field(description="yuan as a decimal string with at most 2 places, e.g. \"12.50\"", examples=["12.50"], max_length=20)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CredentialIn(Strict):
    credential_type: Literal["id_number", "card", "ecard"] = Field(description="id_number 身份证, card 社保卡号, ecard 电子社保卡号")
    credential_no: str = Field(min_length=1, max_length=64)


class VisitIn(Strict):
    psn_no: str = Field(min_length=1, max_length=24, description="the person's number from /his/persons/lookup")
    kind: Literal["outpatient", "emergency", "inpatient", "pharmacy"]
    visit_date: IsoDate | None = Field(None, description="defaults to today")


def _decided(what: str) -> Any:
    return Field(None, deprecated=True, description=f"REFUSED (422 decided_by_platform): the {what} is decided by the platform from the "
                 "catalogue, never taken from the institution")


class FeeLineIn(BaseModel):
    """A fee line as the institution uploads it (2204 feedetail): codes, price and quantity. The class, price cap and
    self-pay ratio are the platform's decision from the catalogue (docs/catalogue.md); sending one is refused."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    feedetl_sn: str = Field(min_length=1, max_length=30, description="the line's serial number, unique within the visit")
    med_list_codg: str | None = Field(None, min_length=1, max_length=30, description="the national catalogue code (hilist_code)",
                                      examples=["001102000010000"])
    medins_list_codg: str | None = Field(None, min_length=1, max_length=50,
                                         description="your own item code, resolved through your mapping (POST /his/item-mappings)")
    name: str | None = Field(None, max_length=200)
    unit_price: str = Field(description="pric: yuan as a decimal string with at most 2 places", examples=["12.50"], max_length=20)
    quantity: str = Field(description="cnt: decimal string > 0, at most 4 places", examples=["2"], max_length=20)
    fee_ocur_time: str | None = Field(None, max_length=40, description="when the fee arose: yyyy-MM-dd HH:mm:ss (Beijing time) or ISO 8601; "
                                      "default now. The catalogue in force on its date decides")
    prescription: bool = False
    prescriber: str | None = Field(None, max_length=60, description="required on prescription lines")
    hosp_appr_flag: bool = Field(False, description="the hospital approved a limited use that needs its approval")
    line_class: Any = Field(None, alias="class", deprecated=True, description="REFUSED (422 decided_by_platform): the class is decided by "
                            "the platform from the catalogue, never taken from the institution")
    price_cap: Any = _decided("price cap")
    self_pay_ratio: Any = _decided("self-pay ratio")
    categories: Any = _decided("item category (implant, imported, …)")
    item_category: Any = _decided("item category (implant, imported, …)")


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


# ---- identity, cards, payment institutions, families ------------------------------------------

def _capture() -> Any:
    return Field(min_length=1, max_length=350_000, description="the terminal's capture: a JPEG or PNG image (at most 1024 pixels a side), base64")


class LivenessIn(Strict):
    """The terminal's own liveness result. Accepted for compatibility and NOT trusted: whether the capture is
    live is the face verifier's finding from the capture itself (its signed answer). Only ``method`` is passed
    on, as the sensor the terminal used; ``score`` decides nothing."""

    method: Literal["structured_light", "tof", "action"] = Field(description="3D structured light | 3D time of flight | action prompts")
    score: float = Field(ge=0, le=1, allow_inf_nan=False, description="the terminal's liveness score, 0–1 (ignored: the verifier decides)")


def _liveness() -> Any:
    return Field(None, description="optional, not trusted: the terminal's claim; the face verifier decides liveness from the capture")


class FaceAuthorizationIn(Strict):
    psn_no: str = Field(min_length=1, max_length=24, description="the patient (read from the card, the ID card or chosen at the terminal)")
    payer_psn_no: str | None = Field(None, min_length=1, max_length=24,
                                     description="whose face is captured when not the patient's: a guardian paying for a linked child")
    capture: str = _capture()
    liveness: LivenessIn | None = _liveness()
    terminal_id: str | None = Field(None, min_length=1, max_length=40, description="the face terminal")


class FaceEnrolIn(Strict):
    capture: str = _capture()


class RealNameIn(Strict):
    name: str = Field(min_length=1, max_length=50)
    id_number: str = Field(min_length=1, max_length=18)


class RealPersonIn(Strict):
    capture: str = _capture()
    liveness: LivenessIn | None = _liveness()


class CardIn(Strict):
    financial: bool = Field(True, description="a financial social-security card (with a bank account)")
    card_no: str | None = Field(None, min_length=8, max_length=20, description="the card number if the card bank assigned one; else generated")


class ProductionIn(Strict):
    stage: Literal["printing", "mailed", "ready"] = Field(description="the next production stage, in order")


class PhotoIn(Strict):
    photo: str = Field(min_length=1, max_length=280_000, description="PNG or JPEG, base64, at most 200 KB")


class PaymentInstitutionIn(Strict):
    id: str = Field(min_length=2, max_length=40, description="the institution's identifier, e.g. \"wechat-pay\"")
    region: str = Field(min_length=1, max_length=6)
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["wallet", "bank"]
    admission_ref: str = Field(min_length=1, max_length=80, description="the agency's admission decision (准入文号)")


class SuspensionIn(Strict):
    reason: str | None = Field(None, max_length=200)


class BindingIn(Strict):
    payment_institution_id: str = Field(min_length=1, max_length=40)
    password_free_limit: str = Field("0.00", max_length=20, description="yuan, 0.00–2000.00: cash up to it is paid without asking again")
    default: bool = Field(False, description="make it the default institution (the first binding always is)")


class LimitIn(Strict):
    password_free_limit: str = Field(max_length=20, description="yuan, 0.00–2000.00", examples=["200.00"])


class ChildCardIn(Strict):
    card_no: str = Field(min_length=1, max_length=20, description="the child's social-security card number")
    child_name: str = Field(min_length=1, max_length=50)


class MutualAidIn(Strict):
    relation: Literal["spouse", "parent", "child"] = Field(description="what the relative is to you")
    id_number: str = Field(min_length=1, max_length=18)
    name: str = Field(min_length=1, max_length=50)


class PilotDocumentIn(Strict):
    filename: str = Field(min_length=1, max_length=200, examples=["实施方案.pdf"])
    content: str = Field(min_length=1, max_length=7_000_000, description="the file's bytes, base64 (at most 5 MB decoded)")


class PilotApplicationIn(Strict):
    modes: list[Literal["onecode", "face", "mobile", "credit"]] = Field(min_length=1, max_length=4,
                                                                       description="一码付 / 刷脸 / 移动支付 / 信用支付")
    assessed_by: str = Field(min_length=1, max_length=100, description="who made the security risk assessment")
    plan: PilotDocumentIn = Field(description="实施方案 the implementation plan")
    risk_report: PilotDocumentIn = Field(description="安全风险评估报告 the security risk-assessment report")

    def documents(self) -> tuple[Document, Document]:
        """The two files decoded (a bad base64 or an oversized file is refused naming `plan.content` / `risk_report.content`)."""
        return (Document("plan", self.plan.filename, decode_upload(self.plan.content, "plan.content")),
                Document("risk_report", self.risk_report.filename, decode_upload(self.risk_report.content, "risk_report.content")))
