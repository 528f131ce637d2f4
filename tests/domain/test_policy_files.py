"""Policy files: the shipped ones load; a broken one is refused naming the file and the field."""

from pathlib import Path

import pytest
import yaml

from yibao.domain.errors import PolicyError
from yibao.policies.loader import BUILTIN_DIR, builtin_policies, builtin_policy, load_policy_file


def test_builtin_policies_load_with_version_and_digest():
    versions = {p.version for p in builtin_policies()}
    assert versions == {"440300-2026.1", "370200-2026.1", "330200-2026.2"}
    for p in builtin_policies():
        assert len(p.digest) == 12 and set(p.schemes) == {"employee", "resident", "child"}
        assert p.paycode_ttl_seconds == 180  # every demo region states it: Qingdao's 3 minutes (seed 003)
        assert "paycode_ttl_seconds" in (BUILTIN_DIR / f"{p.region}-{p.year}.yaml").read_text(encoding="utf-8")


def test_shenzhen_wage_and_guardian_threshold():
    sz = builtin_policy("440300", 2026)
    assert sz.avg_onpost_wage == 10017600
    assert sz.guardian_min_balance == 500880  # 5008.80 yuan
    assert sz.schemes["employee"].annual_cap == 6 * 10017600
    assert sz.schemes["employee"].tiers == (1, 2)
    assert sz.schemes["employee"].account_for(1) and not sz.schemes["employee"].account_for(2)
    assert sz.paycode_ttl_seconds == 180


def _write(tmp_path: Path, mutate) -> Path:
    data = yaml.safe_load((BUILTIN_DIR / "440300-2026.yaml").read_text(encoding="utf-8"))
    mutate(data)
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("year"), "year"),
    (lambda d: d.update(region="4403"), "region"),
    (lambda d: d.update(region="٤٤٠٣٠٠"), "region"),
    (lambda d: d["catalogue"].update(b_self_pay_ratio="1.5"), "catalogue.b_self_pay_ratio"),
    (lambda d: d["catalogue"].update(b_self_pay_ratio=0.1), "catalogue.b_self_pay_ratio"),
    (lambda d: d["schemes"]["employee"].update(annual_cap="12.345"), "schemes.employee.annual_cap"),
    (lambda d: d["schemes"]["employee"]["inpatient"][1]["ratio"].update(level9="0.9"), "schemes.employee.inpatient[1].ratio.level9"),
    (lambda d: d["schemes"]["employee"]["inpatient"][1].update(when={"retired": False}), "schemes.employee.inpatient"),
    (lambda d: d["schemes"]["resident"].update(second_layer="nonsense"), "schemes.resident.second_layer"),
    (lambda d: d["serious_illness"].update(bands=[{"upto": "5000", "ratio": "0.6"}, {"upto": "1000", "ratio": "0.7"}]), "serious_illness.bands[1].upto"),
    (lambda d: d["schemes"]["child"].update(ratio_typo="0.9"), "schemes.child.ratio_typo"),
    (lambda d: d["cross_region"].pop("unfiled"), "cross_region.unfiled"),
    (lambda d: d["assistance"]["statuses"]["tekun"].update(ratio="abc"), "assistance.statuses.tekun.ratio"),
    # found by a new user: empty required values and wrong shapes
    (lambda d: d["schemes"]["employee"].update(annual_cap=None), "schemes.employee.annual_cap"),
    (lambda d: d.update(avg_onpost_wage_prev_year=None), "avg_onpost_wage_prev_year"),
    (lambda d: d["serious_illness"].update(threshold=None), "serious_illness.threshold"),
    (lambda d: d["schemes"]["employee"]["inpatient"][0]["deductible"].update(level3=None), "schemes.employee.inpatient[0].deductible.level3"),
    (lambda d: d["assistance"]["statuses"]["tekun"].update(threshold=None), "assistance.statuses.tekun.threshold"),
    (lambda d: d["serious_illness"]["hardship"].update(statuses=5), "serious_illness.hardship.statuses"),
    (lambda d: d["serious_illness"]["hardship"].update(statuses="tekun"), "serious_illness.hardship.statuses"),
    (lambda d: d["serious_illness"]["hardship"].update(statuses=[["tekun"]]), "serious_illness.hardship.statuses"),
    (lambda d: d.update(revision=10**50), "revision"),
    (lambda d: d.update(paycode_ttl_seconds=5), "paycode_ttl_seconds"),  # a code nobody could scan in time
    (lambda d: d.update(paycode_ttl_seconds=3601), "paycode_ttl_seconds"),
    (lambda d: d.update(paycode_ttl_seconds="180"), "paycode_ttl_seconds"),
    (lambda d: d["schemes"]["employee"]["inpatient"][1].update(repeat_admission_factor=["1", "2"]), "schemes.employee.inpatient[1].repeat_admission_factor[1]"),
    (lambda d: d.update(clearing={"quality_deposit_ratio": "0.06"}), "clearing.quality_deposit_ratio"),  # 质量保证金 ≤ 5 %
    (lambda d: d.update(clearing={"deposit": "0.05"}), "clearing.deposit"),
])
def test_invalid_policy_names_file_and_field(tmp_path, mutate, field):
    with pytest.raises(PolicyError) as err:
        load_policy_file(_write(tmp_path, mutate))
    assert err.value.field == f"broken.yaml: {field}"
    assert err.value.message_en and err.value.message_zh


@pytest.mark.parametrize("text, where", [
    ("region: '440300'\nregion: '440301'\n", "dup.yaml:2"),  # a duplicate key never silently wins
    ("revision: " + "9" * 5000 + "\n", "dup.yaml"),
    ("a: " + "[" * 5000 + "\n", "dup.yaml"),
    ("- 1\n", "dup.yaml"),
])
def test_odd_yaml_is_refused_in_one_line(tmp_path, text, where):
    path = tmp_path / "dup.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert err.value.field.startswith(where) and "\n" not in err.value.describe()
    assert ": :" not in err.value.describe()


def test_non_utf8_policy(tmp_path):
    path = tmp_path / "gbk.yaml"
    path.write_bytes("region_name: 深圳市\n".encode("gbk"))
    with pytest.raises(PolicyError, match="UTF-8") as err:
        load_policy_file(path)
    assert "\n" not in err.value.describe()


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("region: \"440300\"\nschemes: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_policy_file(path)
    assert err.value.field.startswith("bad.yaml:")


def test_missing_file(tmp_path):
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy_file(tmp_path / "none.yaml")


@pytest.mark.parametrize("mutate, field", [
    # review findings: values that load but can never apply, or silently mean "nothing"
    (lambda d: d["schemes"]["employee"]["inpatient"][1]["deductible"].pop("level3"), "schemes.employee.inpatient[1].deductible"),
    (lambda d: d["schemes"]["employee"]["inpatient"][0].update(when={"tier": 3}), "schemes.employee.inpatient[0].when.tier"),
    (lambda d: d["schemes"]["employee"]["inpatient"][0].update(when={"age_min": 70, "age_max": 60}), "schemes.employee.inpatient[0].when.age_min"),
    (lambda d: d["schemes"]["employee"].update(personal_account=[3]), "schemes.employee.personal_account"),
    (lambda d: d["schemes"]["employee"].update(personal_account=[]), "schemes.employee.personal_account"),
    (lambda d: d["schemes"]["employee"].update(tiers=[0, -1]), "schemes.employee.tiers"),
    (lambda d: d["schemes"]["employee"]["outpatient"][2].update(ratio={}), "schemes.employee.outpatient[2].ratio"),
    (lambda d: d["schemes"]["resident"].update(second_layer=False), "schemes.resident.second_layer"),
    (lambda d: d.update(region="٤٤٠٣٠٠"), "region"),  # Arabic-Indic digits are not an admdvs code
])
def test_policy_values_that_could_never_apply_are_refused(tmp_path, mutate, field):
    with pytest.raises(PolicyError) as err:
        load_policy_file(_write(tmp_path, lambda d: (d["schemes"]["employee"]["inpatient"][1].__setitem__(
            "deductible", dict(d["schemes"]["employee"]["inpatient"][1]["deductible"])), mutate(d))))
    assert err.value.field == f"broken.yaml: {field}"


def test_a_region_sets_its_clearing_deposit_and_defaults_to_five_percent(tmp_path):
    assert builtin_policy("440300", 2026).clearing.quality_deposit_ratio == 50_000  # none in the file: 5 %
    assert load_policy_file(_write(tmp_path, lambda d: d.update(clearing={"quality_deposit_ratio": "0.03"}))).clearing.quality_deposit_ratio == 30_000


def test_the_region_names_table_agrees_with_the_policy_files_and_labels_read_as_names():
    """domain/regions.py is the one table of region names the pages read; each policy file names its region the same."""
    from yibao.domain import regions
    from yibao.domain.explain import render

    for p in builtin_policies():
        zh, _, en = p.region_name.partition(" ")
        assert regions.NAMES[p.region] == (zh, en)
    assert regions.label("330200") == "宁波市（330200）" and regions.label("330200", "en") == "Ningbo (330200)"
    assert regions.label("999999") == "999999"  # outside the table: the code as it is
    assert render("按参保地{a:rzh}政策、就医地{b:rzh}目录", {"a": "330200", "b": "440300"}) == "按参保地宁波市（330200）政策、就医地深圳市（440300）目录"
