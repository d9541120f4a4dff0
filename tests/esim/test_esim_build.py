"""simcore.esim_build (the use case behind `esim build` / `build-batch`) and simcore.mnc_length
(the one MNC-length rule) against a real store and soft HSM."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from esim.saip import ProfilePackage
from hsm_sim.soft import SoftHsm
from simcore import esim_build, ranges
from simcore.errors import InvalidInput, NotFound
from simcore.mnc_length import MncLengths, mnc_length_of
from tests.wiring.conftest import hsm, seed  # noqa: F401  (hsm: fixture)


def test_mnc_length_is_the_ranges(engine: Engine) -> None:
    ranges.add_range(engine, "imsi", "310150000000000", "310150000000999", name="three",
                     mnc_length=3, actor="t")
    ranges.add_range(engine, "imsi", "001010000000000", "001010000000999", name="two",
                     mnc_length=2, actor="t")
    rule = MncLengths.load(engine)
    assert rule.of("310150000000500") == 3
    assert rule.of("001010000000500") == 2
    assert rule.of("001010000001000") is None  # in no range: the consumer's default stands
    assert rule.of("31015000000050") is None  # another length is another range
    assert mnc_length_of(engine, "310150000000999") == 3


def test_options_checked_and_named() -> None:
    opts = esim_build.profile_options(ehplmn=["00101, 00102", "310410"], impu=["tel:+4477"])
    assert opts.ehplmn == ("00101", "00102", "310410") and opts.impu == ("tel:+4477",)
    with pytest.raises(InvalidInput) as e:
        esim_build.profile_options(ims_domain="-bad-")
    assert e.value.field == "ims_domain" and "must be a domain name" in e.value.reason
    with pytest.raises(InvalidInput, match="exclude each other"):
        esim_build.profile_options(msisdn="+4477", with_msisdn=True)
    with pytest.raises(InvalidInput) as e:
        esim_build.compiled_template("nope")
    assert e.value.field == "template"


def test_build_for_sim_and_batch(engine: Engine, hsm: SoftHsm) -> None:  # noqa: F811
    iccids = seed(engine, hsm, 3, batch="e1", kind="esim")
    compiled = esim_build.compiled_template("usim-isim-milenage")
    built = esim_build.build_for_sim(engine, hsm, compiled, iccids[0])
    package = ProfilePackage.from_der(built.der)
    assert package.iccid == built.iccid == iccids[0]
    assert "der" not in repr(built) and built.template == "usim-isim-milenage"
    got = list(esim_build.build_batch(engine, hsm, compiled, "e1", verify_every=1))
    assert [p.iccid for p, _ in got] == iccids
    assert all(p.mnc_length == 2 for p, _ in got)  # the IMSI range's
    assert got[0][1][:100] == built.der[:100]
    assert esim_build.batch_size(engine, "e1") == 3
    with pytest.raises(NotFound):
        esim_build.batch_size(engine, "nope")


def test_batch_error_names_the_sim(engine: Engine, hsm: SoftHsm) -> None:  # noqa: F811
    iccids = seed(engine, hsm, 2, batch="e1", kind="esim")
    compiled = esim_build.compiled_template("usim-isim-milenage")
    options = esim_build.profile_options(impi="u" * 90 + "@ims.example.net")
    with pytest.raises(esim_build.PackageBuildError) as e:
        list(esim_build.build_batch(engine, hsm, compiled, "e1", options))
    assert e.value.iccid == iccids[0] and "impi: needs 108 bytes" in str(e.value)


def test_profiles_carry_the_suci_key_registry(engine: Engine, hsm: SoftHsm,  # noqa: F811
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 item 4: `esim build` fills EF.SUCI_Calc_Info (and DF.SAIP's copy) from the
    active home-network keys and EF.Routing_Indicator from the settings."""
    from cards.fs.ts_31_102_5gs import EF_Routing_Indicator, EF_SUCI_Calc_Info
    from simcore import suci_keys

    monkeypatch.setenv("SIMSMITH_SUCI_ROUTING_INDICATOR", "678")
    iccids = seed(engine, hsm, 2, batch="e1", kind="esim")
    compiled = esim_build.compiled_template("usim-isim-milenage")

    def files(der: bytes) -> tuple[list[dict[str, object]], str | None, bytes]:
        els = ProfilePackage.from_der(der).elements
        five = next(e for e in els if e.kind == "df-5gs")
        saip = next(e for e in els if e.kind == "df-saip")

        def get(e: object, f: str) -> bytes:
            return next(i for c, i in e.file(f) if c == "fillFileContent")  # type: ignore[attr-defined]
        calc = get(five, "ef-suci-calc-info")
        assert get(saip, "ef-suci-calc-info-usim") == calc
        return (EF_SUCI_Calc_Info.decode(calc),
                EF_Routing_Indicator.decode(get(five, "ef-routing-indicator")), calc)

    before, ri, _ = files(esim_build.build_for_sim(engine, hsm, compiled, iccids[0]).der)
    assert before == [{"scheme": 0, "key_id": None, "public_key": None}] and ri == "678"
    key = suci_keys.generate_key(engine, hsm, 9, "A", actor="t")
    after, _, calc = files(esim_build.build_for_sim(engine, hsm, compiled, iccids[0]).der)
    assert after[0] == {"scheme": 1, "key_id": 9, "public_key": key.public_key.hex().upper()}
    assert after[1]["scheme"] == 0
    for _, der in esim_build.build_batch(engine, hsm, compiled, "e1"):
        assert files(der)[2] == calc
    with pytest.raises(InvalidInput) as e:
        esim_build.build_for_sim(engine, hsm, esim_build.compiled_template("usim-isim-milenage"),
                                 iccids[0], esim_build.ProfileOptions(routing_indicator="12345"))
    assert e.value.field == "routing_indicator"
