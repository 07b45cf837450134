"""Interface mechanics on the OpenLimbTT mean limb (80 kg, K3, default mesh): every load case converges
with a pin lock and with suction, the designs compare as a prosthetist expects, walking peaks fall in
DOMAIN.md's published range, and the quick preview keeps to its stated error. Each assertion message
states the numbers the run got; the notes of issues 5 and 21 record them.

The tests run on tissue meshes kept in tests/data/tissue (tests/data/make_tissue_mesh.py makes them):
fTetWild's meshes differ from run to run, and so would the figures."""

from pathlib import Path

import pytest

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.biomech.analysis import analyse_socket
from socketcad.biomech.fem import NEWTON_RTOL
from socketcad.biomech.interface import QUICK_ERROR_PCT, QUICK_NOTE, QUICK_RTOL, Materials, analyse_interface, quick_error
from socketcad.biomech.mesh import DEFAULT_EDGE_MM, ENVELOPE, QUICK_EDGE_MM, QUICK_ENVELOPE, read_tissue, tissue_key
from socketcad.design.fabrication import read_sheet
from socketcad.design import components
from socketcad.design.plan import plan_from_dict
from socketcad.design.rectify import rectify
from socketcad.design.socket import SocketSpec, build_socket
from socketcad.design.templates import TemplateInputs, template_plan

QUICK_ERROR_SLACK_PCT = 2.0
STANDING_KPA = (20.0, 100.0)  # DOMAIN.md: indicative transtibial peaks standing
WALKING_KPA = (50.0, 250.0)  # ... and walking (heel strike here)


@pytest.fixture(scope="module")
def limb():
    return locate_landmarks(load_limb("sample:openlimb-tt-mean", CaptureOptions()))


TISSUE_FOLDER = Path(__file__).parent / "data" / "tissue"


def kept_tissue(limb, edge_mm, envelope):
    path = TISSUE_FOLDER / f"tissue-{tissue_key(limb, edge_mm, envelope)}.npz"
    mesh = read_tissue(path)
    if mesh is None:
        pytest.fail(f"{path} is missing: the sample limb or the meshing changed; run tests/data/make_tissue_mesh.py "
                    "and commit its file")
    return mesh


@pytest.fixture(scope="module")
def tissue(limb):
    return kept_tissue(limb, DEFAULT_EDGE_MM, ENVELOPE)


@pytest.fixture(scope="module")
def quick_tissue(limb):
    return kept_tissue(limb, QUICK_EDGE_MM, QUICK_ENVELOPE)


PIN_LOCK = ("pin_lock", "silicone_locking_{mm}", "pin_lock_icelock", "lock_housing_4h")  # kind, liner, closure, adapter
SUCTION = ("suction_seal_in", "silicone_seal_in_{mm}", "seal_in_suction", "four_hole_43")


def analysed(limb, tissue, template, liner_mm=6, fibular_relief_mm=None, cases=("standing",), materials=Materials(),
             step=lambda name: None, closure=PIN_LOCK, rtol=NEWTON_RTOL):
    """Donning and ``cases`` (None: all) for a socket built from ``template`` (default: pin lock, locking liner)."""
    socket = built(limb, template, liner_mm, fibular_relief_mm, closure)
    return analyse_interface(limb, socket.inner, liner_mm, closure[0], 80, 3, tissue=tissue, cases=cases,
                             materials=materials, step=step, rtol=rtol)


def built(limb, template, liner_mm=6, fibular_relief_mm=None, closure=PIN_LOCK):
    """The socket of ``template`` (its fibular relief deepened to ``fibular_relief_mm``) with ``closure``."""
    plan = template_plan(template, limb, TemplateInputs(liner_thickness_mm=liner_mm))
    if fibular_relief_mm is not None:
        data = plan.model_dump(mode="json")
        for modification in data["modifications"]:
            if modification["region"]["landmark"] == "fibular_head":
                modification["depth_mm"] = fibular_relief_mm
                modification["region"]["falloff_mm"] = max(modification["region"]["falloff_mm"], 2.0 * fibular_relief_mm)
        plan = plan_from_dict(data, "deeper fibular relief")
    _, liner, suspension, adapter = closure
    spec = SocketSpec(socket_type=template, liner=liner.format(mm=liner_mm), closure=suspension, adapter=adapter)
    return build_socket(rectify(limb, plan).rectified_limb(), spec)


PTB_STEPS: list[str] = []  # the progress the PTB analysis reported


@pytest.fixture(scope="module")
def ptb(limb, tissue):
    return analysed(limb, tissue, "ptb", cases=None, step=PTB_STEPS.append)


@pytest.fixture(scope="module")
def tsb(limb, tissue):
    return analysed(limb, tissue, "tsb", cases=None)


@pytest.fixture(scope="module", params=["ptb", "tsb"])
def suction(request, limb, tissue):
    """Swing pull-off of a suction socket (seal-in liner): what touched in standing may not separate."""
    return request.param, analysed(limb, tissue, request.param, cases=("swing_pull_off",), closure=SUCTION)


def regions(result, case):
    return {row.region: row.model_dump() for row in result.region_table(case)}


def test_progress_is_reported_per_load_case(ptb):
    assert PTB_STEPS == ["donning", "standing (1 of 4 load cases)", "heel strike (2 of 4 load cases)",
                         "stance rotation (3 of 4 load cases)", "swing pull off (4 of 4 load cases)"]


def converged(result, design):
    for name, case in result.cases.items():
        assert case.converged, (f"{design} {name}: residual {case.residual_ratio:.1e} after "
                                f"{case.newton_iterations} iterations")


def test_every_load_case_converges_with_a_pin_lock(ptb, tsb):
    assert set(ptb.cases) == set(tsb.cases) == {"donning", "standing", "heel_strike", "stance_rotation", "swing_pull_off"}
    converged(ptb, "PTB")
    converged(tsb, "TSB")


def test_every_load_case_converges_with_suction(suction):
    design, result = suction
    converged(result, f"{design.upper()} suction")


def test_pistoning_is_reported_with_its_convergence(ptb, tsb, suction):
    """Swing pull-off moves the bones out of the socket by millimetres (the pull is 31 N, the liner's hold
    elastic): a few mm, more with a pin (the liner stretches below the limb) than with suction (held all over)."""
    design, held = suction
    pinned = {"ptb": ptb, "tsb": tsb}[design]
    got = {closure: (result.summary().pistoning_mm, result.cases["swing_pull_off"].converged)
           for closure, result in (("pin lock", pinned), ("suction", held))}
    print(f"{design.upper()} pistoning mm (converged): {got}")
    for pistoning, done in got.values():
        assert done and 0.5 < pistoning < 10.0, f"{design.upper()} pistoning mm (converged): {got}"
    assert got["suction"][0] < got["pin lock"][0], f"{design.upper()} pistoning mm (converged): {got}"


def test_stance_rotation_peaks_are_walking_peaks(ptb, tsb):
    """Body weight and a 0.15 N m/kg torque about the axis: the sensel peak falls in the published walking
    range, as heel strike's does. (A convergence test that weighed the moment in N mm against forces in N
    once stopped this case after 2 iterations, far from equilibrium, at a 316 kPa sensel peak: issue 21.)"""
    got = {design: result.summary().cases["stance_rotation"] for design, result in (("PTB", ptb), ("TSB", tsb))}
    numbers = {design: (case.sensel_peak_kpa, case.peak_pressure_kpa, case.newton_iterations) for design, case in got.items()}
    print(f"stance rotation sensel / nodal peak kPa, Newton iterations: {numbers}")
    for case in got.values():
        assert WALKING_KPA[0] <= case.sensel_peak_kpa <= WALKING_KPA[1], numbers


def test_ptb_loads_the_patellar_tendon_and_popliteal_area(ptb):
    table = regions(ptb, "standing")
    elsewhere = table["elsewhere"]["mean_kpa"]
    got = {name: (table[name]["peak_kpa"], table[name]["mean_kpa"]) for name in table}
    print(f"PTB standing (peak, mean) kPa by region: {got}")
    for name in ("patellar tendon", "popliteal"):
        assert table[name]["mean_kpa"] > 2.0 * elsewhere, f"PTB standing (peak, mean) kPa by region: {got}"
    tolerant_peak = max(table[name]["peak_kpa"] for name in ("patellar tendon", "popliteal", "medial tibial flare"))
    sensitive_peak = max(table[name]["peak_kpa"] for name in ("fibular head", "tibial crest", "distal tibia"))
    assert tolerant_peak > 2.0 * sensitive_peak, f"PTB standing (peak, mean) kPa by region: {got}"


def test_tsb_spreads_the_load(ptb, tsb):
    ptb_ratio = ptb.summary().model_dump()["cases"]["standing"]["peak_to_mean"]
    tsb_ratio = tsb.summary().model_dump()["cases"]["standing"]["peak_to_mean"]
    print(f"standing peak-to-mean: PTB {ptb_ratio}, TSB {tsb_ratio}")
    assert tsb_ratio < ptb_ratio, f"standing peak-to-mean: PTB {ptb_ratio}, TSB {tsb_ratio}"


@pytest.mark.parametrize("design", ["ptb", "tsb"])
def test_peaks_in_published_ranges(design, request):
    """Standing and heel-strike peaks fall in DOMAIN.md's ranges, which were measured with pressure-mapping
    sensors: so the peak compared is the sensel peak (the highest mean over one sensel). The nodal peak,
    the field's highest value, is printed beside it; PTB's lies above 100 kPa standing (the note of issue 5)."""
    cases = request.getfixturevalue(design).summary().model_dump()["cases"]
    standing, walking = cases["standing"], cases["heel_strike"]
    numbers = (f"{design.upper()} peaks, sensel / nodal kPa: standing {standing['sensel_peak_kpa']} / "
               f"{standing['peak_pressure_kpa']}, heel strike {walking['sensel_peak_kpa']} / {walking['peak_pressure_kpa']}")
    print(numbers)
    assert STANDING_KPA[0] <= standing["sensel_peak_kpa"] <= STANDING_KPA[1], numbers
    assert WALKING_KPA[0] <= walking["sensel_peak_kpa"] <= WALKING_KPA[1], numbers
    assert standing["sensel_peak_kpa"] < walking["sensel_peak_kpa"], numbers


def test_deeper_fibular_relief_lowers_the_fibular_head_peak(limb, tissue, ptb):
    deeper = analysed(limb, tissue, "ptb", fibular_relief_mm=8.0)
    before = regions(ptb, "standing")["fibular head"]["peak_kpa"]
    after = regions(deeper, "standing")["fibular head"]["peak_kpa"]
    print(f"fibular head peak standing: 4 mm relief {before} kPa, 8 mm {after} kPa")
    assert after < before, f"fibular head peak standing: 4 mm relief {before} kPa, 8 mm {after} kPa"


def test_thicker_gel_liner_lowers_the_peaks_over_bone(limb, tissue):
    """Boutwell et al. 2012 (JRRD 49:227): a 6 mm gel liner against a 3 mm one lowered the fibular-head
    peak (by 26 +/- 21 %) and changed no other site significantly. Here, with the catalogue's TPE gel
    modulus, the catalogue's thinnest and thickest (3 and 9 mm): the peaks over the pressure-sensitive
    bony regions and the mean fall. (At 3 against 6 mm the fibular head fell 13 % on one tissue mesh
    and not at all on another: fTetWild's meshes differ from run to run.) The peak over the patellar
    tendon, where the bar loads on purpose, rises (a thicker layer, stiffer than the tissue, spreads the
    bar's imposed depth less): it is reported, not asserted."""
    gel = Materials(liner_youngs_kpa=components.load_catalogue().liner("tpe_locking_6").elastic_modulus_kpa)
    thin, thick = (analysed(limb, tissue, "ptb", liner_mm=mm, materials=gel) for mm in (3, 9))
    sensitive = ("fibular head", "tibial crest", "distal tibia")
    got = {mm: {name: regions(result, "standing")[name]["peak_kpa"] for name in sensitive + ("patellar tendon",)}
           | {"mean": result.summary().model_dump()["cases"]["standing"]["mean_pressure_kpa"]}
           for mm, result in ((3, thin), (9, thick))}
    print(f"standing peaks (kPa) by liner thickness (mm): {got}")
    for name in sensitive + ("mean",):
        assert got[9][name] < got[3][name], f"standing peaks (kPa) by liner thickness (mm): {got}"


def test_analyze_prints_its_result_and_its_json_follows_the_published_schema(limb, ptb, cli, tmp_path, monkeypatch):
    """The command line's part of an analysis (the sheet beside the STL, the summary, --json), on the PTB result
    this module computed (the solve itself is the library's, tested above)."""
    import json

    import jsonschema

    import shutil

    import trimesh

    from socketcad.operations import _analysis, result_schemas

    # A PTB sheet a build wrote (tests/data/analysis; read_sheet validates it, so a changed sheet model fails
    # here) beside a stand-in STL: the solve is stubbed, so no socket needs building on this long-pole file.
    shutil.copy(Path(__file__).parent / "data" / "analysis" / "ptb-sheet.json", tmp_path / "s-sheet.json")
    trimesh.creation.cylinder(radius=60.0, height=200.0).export(tmp_path / "s.stl")
    monkeypatch.setattr(_analysis, "analyse_socket", lambda *args, **kwargs: ptb)
    run = cli("analyze", "sample:openlimb-tt-mean", tmp_path / "s.stl", "-o", tmp_path / "out", "--json")
    assert run.code == 0, run.stderr
    summary = json.loads(run.stdout)
    jsonschema.validate(summary, result_schemas()["Analysis"])
    assert summary["cases"]["standing"] == json.loads((tmp_path / "out" / "interface-summary.json").read_text())["cases"]["standing"]
    shown = cli("analyze", "sample:openlimb-tt-mean", tmp_path / "s.stl", "-o", tmp_path / "out")
    assert shown.code == 0 and "Interface pressure and shear (kPa)" in shown.stdout and "validated:" in shown.stdout


def test_quick_preview_is_within_its_stated_error(limb, quick_tissue, ptb, tsb):
    """The preview (analyse_socket's ``quick``): donning and standing on the coarse mesh, read from the cache,
    its note saying what it is; its standing sensel peak and mean off the full analysis by what the note
    states (within 2 points), for both designs. (Its seconds are the benchmark's.)"""
    sheet = read_sheet(Path(__file__).parent / "data" / "analysis" / "ptb-sheet.json")  # silicone locking 6, pin lock
    quick_ptb = analyse_socket(limb, built(limb, "ptb").solid, sheet, 80, 3, cache=TISSUE_FOLDER, quick=True)
    assert quick_ptb.quick and set(quick_ptb.cases) == {"donning", "standing"}
    assert QUICK_NOTE in quick_ptb.notes and any("read from the cache" in note for note in quick_ptb.notes)
    assert quick_ptb.dofs < 0.3 * ptb.dofs, (quick_ptb.dofs, ptb.dofs)
    quick_tsb = analysed(limb, quick_tissue, "tsb", rtol=QUICK_RTOL)
    errors = {design: {name: round(value, 1) for name, value in quick_error(quick, full).items()}
              for design, quick, full in (("PTB", quick_ptb, ptb), ("TSB", quick_tsb, tsb))}
    print(f"quick against full, standing, %: {errors}")
    for design, stated in QUICK_ERROR_PCT.items():
        for name, pct in stated.items():
            assert abs(errors[design][name] - pct) <= QUICK_ERROR_SLACK_PCT, f"quick against full, standing, %: {errors}"
