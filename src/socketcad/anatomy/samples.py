"""Sample limbs shipped inside the package, addressed as ``sample:NAME``.

Attribution (also in README.md and the licence files beside the data):
- OpenLimbTT (version 2025-04), Sunderland et al. 2024, medRxiv 10.1101/2024.11.27.24317622,
  github.com/abel-research/OpenLimb; OpenLimbTF (version 2025-05), Pasternak et al. 2025,
  github.com/abel-research/OpenLimbTF. Data licence CC-BY-SA-4.0 (OPENLIMB-DATA-LICENSE).
- AmpScan transtibial scan and Example.AOP, github.com/abel-research/ampscan, MIT (AMPSCAN-LICENSE).
  ampscan-tt-tape.yaml holds tape measures that socketcad.anatomy.tape.tape_from_limb took
  from that scan (derived from the MIT AmpScan data).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from socketcad.errors import InputError

SAMPLE_PREFIX = "sample:"
OPENLIMB = "OpenLimb, CC-BY-SA-4.0"
AMPSCAN = "AmpScan, MIT"


@dataclass(frozen=True)
class Sample:
    """A shipped file: its name, file, units, level, what it is, and its kind.

    kind: ``limb`` (a surface or AOP shape, read by load_limb) or ``tape`` (tape
    measures, read by socketcad.anatomy.tape.read_tape).
    """

    name: str
    filename: str
    units: str  # as for `units`: mm, or tibia/femur for OpenLimb's normalised shapes
    level: str  # transtibial or transfemoral
    description: str
    licence: str
    kind: str = "limb"
    # the anterior direction in file coordinates and how it was established, for a limb without bones
    anterior: tuple[tuple[float, float, float], str] | None = None

    @property
    def path(self) -> Path:
        return Path(str(resources.files("socketcad.anatomy").joinpath("samples", self.filename)))


SAMPLES = {
    sample.name: sample
    for sample in (
        Sample("openlimb-tt-mean", "openlimb-tt-mean.stl", "mm", "transtibial",
               "OpenLimbTT mean transtibial limb, full size: skin + tibia, fibula, patella, distal femur", OPENLIMB),
        Sample("openlimb-tt-mean-skin", "openlimb-tt-mean-skin.stl", "mm", "transtibial",
               "OpenLimbTT mean skin alone, full size, as published (no bones; 19 brim faces wound against "
               "their neighbours)", OPENLIMB),
        Sample("openlimb-tt-102m", "openlimb-tt-102m.stl", "tibia", "transtibial",
               "OpenLimbTT mode 1 at -2 SD (limb length), normalised to tibia length", OPENLIMB),
        Sample("openlimb-tt-102p", "openlimb-tt-102p.stl", "tibia", "transtibial",
               "OpenLimbTT mode 1 at +2 SD (limb length), normalised to tibia length", OPENLIMB),
        Sample("openlimb-tt-1m20", "openlimb-tt-1m20.stl", "tibia", "transtibial",
               "OpenLimbTT mode 2 at -2 SD (bulbous vs conical), normalised to tibia length", OPENLIMB),
        Sample("openlimb-tt-1p20", "openlimb-tt-1p20.stl", "tibia", "transtibial",
               "OpenLimbTT mode 2 at +2 SD (bulbous vs conical), normalised to tibia length", OPENLIMB),
        Sample("openlimb-tf-mean", "openlimb-tf-mean.stl", "femur", "transfemoral",
               "OpenLimbTF mean transfemoral limb: skin + femur + hemipelvis, normalised to femur length",
               OPENLIMB),
        Sample("ampscan-tt-scan", "ampscan-tt-scan.stl", "mm", "transtibial",
               "AmpScan real transtibial surface scan (7,530 vertices, open brim)", AMPSCAN,
               anterior=((0.0, -1.0, 0.0), "the sample's record: the file's -y (the popliteal crease lies at +y, "
                                            "the front of the knee at -y, seen on renders)")),
        Sample("ampscan-example-aop", "ampscan-example.aop", "mm", "transtibial",
               "AmpScan Example.AOP: transtibial shape in the AAOP cylindrical format (TIB, MPT, TE)", AMPSCAN),
        Sample("ampscan-tt-tape", "ampscan-tt-tape.yaml", "mm", "transtibial",
               "Tape measures taken from the AmpScan scan: 25 circumferences every 10 mm, AP/ML widths "
               "(a limb shape is built from them)", AMPSCAN, kind="tape"),
    )
}


def is_sample(source: str | Path) -> bool:
    return str(source).startswith(SAMPLE_PREFIX)


def sample_path(source: str | Path, kind: str = "limb") -> Path:
    """The file a ``sample:NAME`` names, or ``source`` itself as a path."""
    return get_sample(str(source), kind).path if is_sample(source) else Path(source)


def get_sample(source: str, kind: str | None = "limb") -> Sample:
    """The sample named by ``sample:NAME``; InputError listing the names if unknown or not of ``kind``
    (None: any kind)."""
    name = str(source)[len(SAMPLE_PREFIX):]
    if name not in SAMPLES:
        raise InputError(f"unknown sample '{name}'; list the samples (known: {', '.join(SAMPLES)})")
    sample = SAMPLES[name]
    if kind is not None and sample.kind != kind:
        if sample.kind == "tape":
            raise InputError(
                f"sample:{name} holds tape measures, not a limb shape; build a limb from its tape measures "
                "first"
            )
        raise InputError(f"sample:{name} is a limb shape, not tape measures; give a YAML or JSON tape file")
    return sample
