"""ISO 10328 static proof test loads, mapped onto a socket as a force and a bending moment.

ISO 10328 (structural testing of lower-limb prostheses) loads a prosthesis with one test force along a
load line set by offsets from the component's axis. Condition I is the heel-strike instant, condition
II the forefoot (push-off) instant; test loading levels scale with the user's body mass: P3 <= 60 kg,
P4 <= 80 kg, P5 <= 100 kg, P6 <= 125 kg. This module keeps the static *proof* test force F_sp, the load a
component must carry without losing function (the ultimate strength test is 2 x F_sp where checked).

Forces used (N), and where they come from (the standard itself is paywalled; values were taken from
publications that reproduce its tables, found through public repositories' literature notes):

| level | I (heel strike) | II (push-off) | source |
|---|---|---|---|
| P3 | 1540 | 1351 | assumption: I from an unverified secondary table; II = I x 1811 / 2065 (P4's ratio) |
| P4 | 2065 | 1811 | ISO 10328:2006 Table 1, reproduced by Lapapong et al. 2014, J Assist Rehabil Ther Technol 2 |
| P5 | 2240 | 2013 | I: ISO 10328:2016 Table 2, reproduced by Bader et al. 2023, Bioengineering 10:614 (ultimate |
|    |      |      | 4480 N); II: assumption (commonly quoted value, not checked against the standard) |
| P6 | 2800 | 2516 | assumption: P5 x 125 / 100 by body mass (conservative: P4 -> P5 rose 8 % for 25 % more mass) |

Load line on the socket (assumption, not from the standard's offset tables, which could not be checked):
the test force acts along the socket's long axis (-z, pushing the socket distally) on a line offset from
the distal adapter's centre, which gives the bending moment M = r x F at the adapter. The offsets are
indicative lever arms of the sagittal and frontal moments at a transtibial socket's distal end in gait
(moment / ground reaction): heel strike 40 mm posterior, push-off 80 mm anterior, both 35 mm medial.
Replace them with the ISO 10328 offsets (f, o at the socket's level) when the standard is at hand.
Frame: z up from the distal end, y anterior, x to the patient's right (as socketcad.anatomy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from socketcad.errors import InputError

LEVELS = ("P3", "P4", "P5", "P6")
CONDITIONS = ("heel_strike", "push_off")
SIDES = ("right", "left")

# level -> (heel strike N, push-off N, source)
_PROOF_FORCE_N = {
    "P3": (1540.0, 1351.0, "assumption: unverified secondary value; push-off scaled by P4's II/I ratio"),
    "P4": (2065.0, 1811.0, "ISO 10328:2006 via Lapapong et al. 2014"),
    "P5": (2240.0, 2013.0, "heel strike ISO 10328:2016 via Bader et al. 2023; push-off assumption"),
    "P6": (2800.0, 2516.0, "assumption: P5 scaled by body mass 125/100"),
}
# condition -> (anterior, medial) offset of the load line from the adapter centre, mm (assumption)
_OFFSET_MM = {"heel_strike": (-40.0, 35.0), "push_off": (80.0, 35.0)}


@dataclass(frozen=True)
class LoadCase:
    """One ISO 10328 static proof load on a socket: force along -z on a line offset from the adapter."""

    level: str
    condition: str
    force_n: float
    anterior_offset_mm: float
    medial_offset_mm: float
    source: str

    def force_vector_n(self) -> np.ndarray:
        """(3,) N: the limb's push on the socket, along the socket axis towards the distal end."""
        return np.array([0.0, 0.0, -self.force_n])

    def moment_nmm(self, side: str = "right") -> np.ndarray:
        """(3,) N mm about the adapter centre: offset x force, medial = -x on a right leg."""
        if side not in SIDES:
            raise InputError(f"side '{side}' is not one of: {', '.join(SIDES)}")
        medial_x = -1.0 if side == "right" else 1.0
        offset = np.array([medial_x * self.medial_offset_mm, self.anterior_offset_mm, 0.0])
        return np.cross(offset, self.force_vector_n())


def iso10328_load_case(level: str, condition: str) -> LoadCase:
    """The static proof load of ``level`` (P3..P6) at ``condition`` (heel_strike, push_off)."""
    if level not in LEVELS:
        raise InputError(f"ISO 10328 level '{level}' is not one of: {', '.join(LEVELS)}")
    if condition not in CONDITIONS:
        raise InputError(f"ISO 10328 condition '{condition}' is not one of: {', '.join(CONDITIONS)}")
    heel_n, push_n, source = _PROOF_FORCE_N[level]
    anterior_mm, medial_mm = _OFFSET_MM[condition]
    force_n = heel_n if condition == "heel_strike" else push_n
    return LoadCase(level, condition, force_n, anterior_mm, medial_mm, source)
