"""Component catalogue: data, lookups, selection rules and the compatibility check."""

import itertools
import math

import pytest
import yaml
from importlib import resources

from socketcad.design.components import (
    SHORT_TRANSTIBIAL_MM,
    SelectionInputs,
    catalogue_from_dict,
    check_compatibility,
    load_catalogue,
    propose_system,
    selection_from_dict,
    wall_thickness_mm,
)
from socketcad.errors import InputError

LEVELS = ("transtibial", "transfemoral")
SKINS = ("intact", "fragile", "scarred", "grafted", "adherent_scar")
VOLUMES = ("stable", "fluctuating", "maturing")


@pytest.fixture(scope="module")
def cat():
    return load_catalogue()


def raw_catalogue() -> dict:
    return yaml.safe_load(resources.files("socketcad.design").joinpath("catalogue.yaml").read_text())


def patient(**changes) -> SelectionInputs:
    base = dict(level="transtibial", k_level=3, residual_length_mm=150, skin_condition="intact",
                volume_stability="stable", hand_dexterity="good")
    return SelectionInputs(**{**base, **changes})


def test_catalogue_loads_once_with_unique_ids_and_the_full_range(cat):
    assert load_catalogue() is cat
    ids = [part.id for part in (*cat.liners, *cat.closures, *cat.adapters, *cat.materials)]
    assert len(ids) == len(set(ids))
    liners = {(liner.material, liner.kind, liner.thickness_mm) for liner in cat.liners}
    for mm in (3, 6, 9):
        assert ("silicone", "locking", mm) in liners
        assert ("tpe", "cushion", mm) in liners
    assert ("silicone", "seal_in", 6) in liners
    assert ("polyurethane", "locking", 6) in liners
    assert {c.kind for c in cat.closures} == {"pin_lock", "lanyard", "suction_seal_in", "suction_sleeve",
                                              "elevated_vacuum", "supracondylar"}
    assert {a.kind for a in cat.adapters} == {"four_hole", "pyramid", "pin_lock_housing"}
    assert {m.id for m in cat.materials} == {"petg", "pla", "pp_copolymer", "pa12", "carbon_laminate"}
    assert all(part.source.strip() for part in (*cat.liners, *cat.closures, *cat.adapters, *cat.materials))


@pytest.mark.parametrize("what", ["liner", "closure", "adapter", "material"])
def test_unknown_id_lists_the_known_ids_on_one_line(cat, what):
    with pytest.raises(InputError) as caught:
        getattr(cat, what)("no_such_part")
    message = str(caught.value)
    assert "\n" not in message
    assert f"unknown {what} 'no_such_part'" in message
    for part in getattr(cat, f"{what}s"):
        assert part.id in message
    first = getattr(cat, f"{what}s")[0]
    assert getattr(cat, what)(first.id) is first


def test_bad_catalogue_data_is_refused_naming_the_problem():
    data = raw_catalogue()
    data["liners"].append(dict(data["liners"][0]))
    with pytest.raises(InputError, match="id 'silicone_locking_3' is used twice"):
        catalogue_from_dict(data)
    data = raw_catalogue()
    data["adapters"][0]["bolt_pattern_mm"][0] = [25.0, 0.0]
    with pytest.raises(InputError, match=r"adapters\[0\]: bolt_pattern_mm: hole \(25, 0\) is off the 43 mm"):
        catalogue_from_dict(data)
    data = raw_catalogue()
    data["liners"][0]["distal_pin"] = False
    with pytest.raises(InputError, match=r"liners\[0\]: distal_pin"):
        catalogue_from_dict(data)
    data = raw_catalogue()
    del data["materials"][0]["thickness_mm_by_k_level"][4]
    with pytest.raises(InputError, match=r"materials\[0\]\.thickness_mm_by_k_level: give a thickness for each K-level"):
        catalogue_from_dict(data)
    with pytest.raises(InputError, match="a catalogue is a mapping"):
        catalogue_from_dict([1, 2])


def test_active_transtibial_with_sound_skin_gets_seal_in_suction(cat):
    proposal = propose_system(patient())
    assert (proposal.liner.id, proposal.closure.id, proposal.adapter.id) == (
        "silicone_seal_in_6", "seal_in_suction", "pyramid_plate_m6")
    text = " | ".join(proposal.reasons)
    assert "seal-in suction" in text and "K3: silicone liner" in text and "pyramid plate" in text
    assert len(proposal.reasons) == 3  # closure, liner, adapter rules


def test_k2_limited_dexterity_fluctuating_gets_a_pin_lock(cat):
    proposal = propose_system(patient(k_level=2, hand_dexterity="limited", volume_stability="fluctuating"))
    assert proposal.closure.kind == "pin_lock"
    assert proposal.liner.kind == "locking" and proposal.liner.distal_pin
    assert proposal.liner.material in ("tpe", "silicone_gel")  # K2 intact: gel for comfort
    assert proposal.adapter.kind == "pin_lock_housing"
    assert proposal.reasons[0].startswith("limited hand dexterity: a pin lock is easier to don")


def test_fragile_skin_gets_a_thick_gel_liner_without_pin_or_vacuum(cat):
    proposal = propose_system(patient(k_level=2, skin_condition="fragile"))
    assert proposal.closure.id == "sleeve_suction"
    assert proposal.liner.id == "tpe_cushion_9"
    text = " | ".join(proposal.reasons)
    assert "fragile skin: suction spreads suspension" in text and "no elevated vacuum" in text
    assert "soft gel liner" in text
    for volume in VOLUMES:  # not even an active user with fluctuating volume gets vacuum on grafted skin
        chosen = propose_system(patient(k_level=4, skin_condition="grafted", volume_stability=volume))
        assert chosen.closure.kind != "elevated_vacuum" and chosen.liner.material in ("tpe", "silicone_gel")


def test_transfemoral_proposals(cat):
    lanyard = propose_system(patient(level="transfemoral", residual_length_mm=250, hand_dexterity="limited"))
    assert lanyard.closure.kind == "lanyard" and lanyard.liner.distal_pin
    assert lanyard.adapter.id == "four_hole_43" and "4R118" in lanyard.reasons[-1]
    grafted = propose_system(patient(level="transfemoral", residual_length_mm=250, skin_condition="grafted"))
    assert grafted.closure.kind == "suction_seal_in" and grafted.liner.id == "silicone_seal_in_6"
    assert any("no tpe or silicone_gel seal_in liner in the catalogue" in r for r in grafted.reasons)


def test_short_limb_and_volume_rules(cat):
    short = SHORT_TRANSTIBIAL_MM - 20
    assert propose_system(patient(k_level=2, residual_length_mm=short)).closure.kind == "supracondylar"
    active_short = propose_system(patient(k_level=3, residual_length_mm=short))
    assert active_short.closure.kind == "elevated_vacuum"
    assert any(r.startswith(f"short residual limb (< {SHORT_TRANSTIBIAL_MM:g} mm") for r in active_short.reasons)
    assert propose_system(patient(k_level=3, residual_length_mm=short, skin_condition="adherent_scar")
                          ).closure.kind == "supracondylar"  # no vacuum on an adherent scar
    assert propose_system(patient(volume_stability="fluctuating")).closure.kind == "elevated_vacuum"
    maturing = propose_system(patient(volume_stability="maturing"))
    assert maturing.closure.kind == "pin_lock" and "sock changes" in maturing.reasons[0]
    scar = propose_system(patient(k_level=2, skin_condition="adherent_scar"))
    assert scar.liner.material == "silicone" and "scar is not sheared" in scar.reasons[1]


def test_every_proposal_over_a_grid_is_compatible_and_deterministic(cat):
    grid = itertools.product(LEVELS, range(5), (60.0, 150.0, 300.0), SKINS, VOLUMES, ("good", "limited"))
    seen = set()
    for level, k, length, skin, volume, dexterity in grid:
        inputs = SelectionInputs(level=level, k_level=k, residual_length_mm=length, skin_condition=skin,
                                 volume_stability=volume, hand_dexterity=dexterity)
        proposal = propose_system(inputs)
        check_compatibility(proposal.liner, proposal.closure, proposal.adapter, level)
        assert level in proposal.closure.levels
        assert proposal.liner.kind in proposal.closure.liner_kinds
        assert proposal.reasons and all(r and "\n" not in r for r in proposal.reasons)
        assert propose_system(inputs) == proposal
        seen.add(proposal.closure.kind)
    assert seen == {c.kind for c in cat.closures}  # every closure is somebody's best choice


@pytest.mark.parametrize("liner, closure, adapter, level, expected", [
    ("tpe_cushion_6", "pin_lock_icelock", "lock_housing_4h", "transtibial",
     "closure 'pin_lock_icelock' needs a locking liner with a distal pin; liner 'tpe_cushion_6' is a cushion liner "
     "without one: choose a locking liner or a suction sleeve, elevated vacuum or supracondylar closure"),
    ("silicone_cushion_6", "lanyard_strap", "four_hole_43", "transfemoral", "is a cushion liner without one"),
    ("silicone_locking_6", "seal_in_suction", "pyramid_plate_m6", "transtibial",
     "closure 'seal_in_suction' needs a seal-in liner; liner 'silicone_locking_6' is a locking liner: choose a "
     "seal-in liner or a pin lock or lanyard closure"),
    ("silicone_seal_in_6", "sleeve_suction", "pyramid_plate_m6", "transtibial", "needs a cushion liner"),
    ("tpe_cushion_6", "supracondylar_kbm", "four_hole_43", "transfemoral",
     "closure 'supracondylar_kbm' serves transtibial limbs; this limb is transfemoral"),
    ("tpe_cushion_6", "sleeve_suction", "four_hole_43", "transfemoral", "this limb is transfemoral"),
    ("silicone_locking_6", "pin_lock_icelock", "pyramid_plate_m6", "transtibial",
     "closure 'pin_lock_icelock' needs a lock housing under the socket floor; adapter 'pyramid_plate_m6' is a "
     "pyramid adapter that cannot hold a lock"),
    ("silicone_seal_in_6", "seal_in_suction", "lock_housing_4h", "transtibial",
     "adapter 'lock_housing_4h' is a pin-lock housing; closure 'seal_in_suction' has no pin to lock"),
])
def test_incompatible_pairings_are_refused_naming_both_parts(cat, liner, closure, adapter, level, expected):
    with pytest.raises(InputError) as caught:
        check_compatibility(cat.liner(liner), cat.closure(closure), cat.adapter(adapter), level)
    message = str(caught.value)
    assert expected in message and "\n" not in message


def test_every_refusal_in_the_catalogue_names_the_closure_and_the_other_part(cat):
    refused = 0
    for liner, closure, adapter, level in itertools.product(cat.liners, cat.closures, cat.adapters, LEVELS):
        try:
            check_compatibility(liner, closure, adapter, level)
        except InputError as exc:
            refused += 1
            message = str(exc)
            assert "\n" not in message and f"'{closure.id}'" in message
            assert f"'{liner.id}'" in message or f"'{adapter.id}'" in message or level in message
        else:
            assert level in closure.levels and liner.kind in closure.liner_kinds
            assert (closure.kind == "pin_lock") == (adapter.kind == "pin_lock_housing")
    assert 0 < refused < len(cat.liners) * len(cat.closures) * len(cat.adapters) * len(LEVELS)


def test_adapter_bolt_patterns_are_symmetric_about_the_axis_at_the_stated_spacing(cat):
    for adapter in cat.adapters:
        holes = adapter.bolt_pattern_mm
        assert len(holes) == 4
        radius = adapter.bolt_circle_diameter_mm / 2
        for x, y in holes:
            assert math.hypot(x, y) == pytest.approx(radius, abs=0.01)
            assert any(math.hypot(x + u, y + v) < 0.2 for u, v in holes), f"{adapter.id}: ({x}, {y}) unpaired"
        assert sum(x for x, _ in holes) == pytest.approx(0, abs=1e-6)
        assert sum(y for _, y in holes) == pytest.approx(0, abs=1e-6)
        angles = sorted(math.degrees(math.atan2(y, x)) % 360 for x, y in holes)
        gaps = [(b - a) % 360 for a, b in zip(angles, angles[1:] + angles[:1])]
        assert gaps == pytest.approx([90.0] * 4, abs=0.01)  # a square pattern
        side = math.dist(holes[0], holes[1])
        assert side == pytest.approx(adapter.bolt_circle_diameter_mm / math.sqrt(2), abs=0.01)
        assert adapter.plate_diameter_mm > adapter.bolt_circle_diameter_mm + adapter.bolt_hole_diameter_mm
    assert cat.adapter("four_hole_43").bolt_circle_diameter_mm == 43  # gsBodyModelAppCore: 21.5 mm radius
    assert cat.adapter("pyramid_plate_m6").bolt_hole_diameter_mm == 6.4  # ISO 273 medium clearance for M6


def test_material_values_are_inside_the_domain_ranges(cat):
    youngs_gpa = {"pla": (3.0, 3.5), "petg": (1.8, 2.2), "pp_copolymer": (1.0, 1.5), "pa12": (1.6, 1.9),
                  "carbon_laminate": (20.0, 60.0)}
    for material in cat.materials:
        low, high = youngs_gpa[material.id]
        assert low <= material.youngs_modulus_mpa / 1000 <= high, material.id
        assert 0.25 <= material.poisson < 0.5
        thickness = list(material.thickness_mm_by_k_level.values())
        assert thickness == sorted(thickness), f"{material.id}: thicker walls for higher K-levels"
        if material.id in ("pla", "petg", "pa12"):  # printed: about 3-5 mm (Kim et al.; uFit 4.2 mm)
            assert all(3.0 <= mm <= 5.0 for mm in thickness)
            assert "printed" in material.strength_basis
    assert cat.material("pa12").strength_mpa == 48 and cat.material("pa12").density_g_cm3 == 1.01  # HP sheet
    assert cat.material("petg").test_socket and not cat.material("carbon_laminate").test_socket
    assert wall_thickness_mm("pla", 2) == 4.2  # uFit default
    assert wall_thickness_mm(cat.material("petg"), 4) == 5.0
    with pytest.raises(InputError, match="k_level 5 is not a K-level"):
        wall_thickness_mm("petg", 5)
    with pytest.raises(InputError, match="unknown material 'abs'"):
        wall_thickness_mm("abs", 2)


def test_liner_values_follow_the_domain(cat):
    for liner in cat.liners:
        assert liner.thickness_mm in (3, 6, 9)
        assert 200 <= liner.elastic_modulus_kpa <= 1000  # indicative 0.2-1 MPa
        assert liner.distal_pin == (liner.kind == "locking")
        if liner.material == "silicone":
            assert liner.friction_skin == 0.61  # Zhang & Mak 1999
    modulus = {liner.material: liner.elastic_modulus_kpa for liner in cat.liners}
    assert modulus["tpe"] < modulus["silicone"] < modulus["polyurethane"]  # PU and silicone stiffer than TPE


def test_selection_inputs_are_checked_field_by_field():
    assert selection_from_dict(dict(level="transfemoral", k_level=2, residual_length_mm=200,
                                     skin_condition="intact", volume_stability="stable",
                                     hand_dexterity="good")).k_level == 2
    with pytest.raises(InputError, match=r"^evaluation: k_level: Input should be less than or equal to 4$"):
        selection_from_dict(dict(level="transtibial", k_level=5, residual_length_mm=120, skin_condition="intact",
                                 volume_stability="stable", hand_dexterity="good"), "evaluation")
    with pytest.raises(InputError, match="skin_condition"):
        selection_from_dict(dict(level="transtibial", k_level=2, residual_length_mm=120, skin_condition="dry",
                                 volume_stability="stable", hand_dexterity="good"))
