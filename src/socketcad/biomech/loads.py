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


# Interface load cases (socketcad.biomech.interface): loads on the limb's bones inside a fixed socket.
GRAVITY_M_S2 = 9.81
# Heel-strike vertical load, x body weight: 1.0-1.2 in walking (DOMAIN.md); K1 at the low end, K3 at the
# top; K4 1.5 for running steps and uneven ground: assumption (DOMAIN: "more on stairs and uneven ground").
HEEL_STRIKE_BW = {0: 1.0, 1: 1.0, 2: 1.1, 3: 1.2, 4: 1.5}
STANCE_TORQUE_NM_PER_KG = 0.15  # transverse-plane peak in gait (Neumann et al., DOMAIN.md)
STANDING_SHARE = 0.5  # two-legged standing: half the body weight on the prosthesis (assumption)
PROSTHESIS_MASS_KG = 1.5  # below-knee prosthesis below the socket: assumption (typical)
SWING_ANGULAR_SPEED_RAD_S = {0: 3.0, 1: 3.0, 2: 4.0, 3: 5.5, 4: 7.0}  # shank in late swing: assumption by K-level
SWING_RADIUS_M = 0.35  # knee to the prosthesis's centre of mass: assumption


@dataclass(frozen=True)
class InterfaceCase:
    """A static load on the limb's bones (socket held): force (3,) N and moment (3,) N mm about the knee."""

    name: str
    force_n: tuple[float, float, float]
    moment_nmm: tuple[float, float, float]
    how: str


BODY_MASS_KG = (20.0, 200.0)  # a child's prosthesis to a heavy adult's; outside it a load is a typing error


def check_body_mass(body_mass_kg: float) -> float:
    """The body mass (kg) if it is a person's (BODY_MASS_KG); InputError otherwise. The one rule for it."""
    low, high = BODY_MASS_KG
    if not np.isfinite(body_mass_kg) or not low <= body_mass_kg <= high:
        raise InputError(f"body mass {body_mass_kg:g} kg: give `body_mass_kg` {low:g}-{high:g} kg")
    return float(body_mass_kg)


def interface_cases(body_mass_kg: float, k_level: int) -> tuple[InterfaceCase, ...]:
    """Standing, heel strike, stance rotation and swing pull-off for a user of ``body_mass_kg`` and K-level.

    z is up the limb: weight pushes the limb down (-z) into the socket; swing pulls it out (+z)."""
    check_body_mass(body_mass_kg)
    if k_level not in HEEL_STRIKE_BW:
        raise InputError(f"K-level must be 0-4, got {k_level}")
    weight = body_mass_kg * GRAVITY_M_S2
    torque = STANCE_TORQUE_NM_PER_KG * body_mass_kg * 1e3
    omega = SWING_ANGULAR_SPEED_RAD_S[k_level]
    pull = PROSTHESIS_MASS_KG * (GRAVITY_M_S2 + omega ** 2 * SWING_RADIUS_M)
    return (
        InterfaceCase("standing", (0.0, 0.0, -STANDING_SHARE * weight), (0.0, 0.0, 0.0),
                      f"two-legged standing: {STANDING_SHARE:g} x body weight (assumption)"),
        InterfaceCase("heel_strike", (0.0, 0.0, -HEEL_STRIKE_BW[k_level] * weight), (0.0, 0.0, 0.0),
                      f"{HEEL_STRIKE_BW[k_level]:g} x body weight along the axis (DOMAIN.md 1.0-1.2 walking; K4: assumption)"),
        InterfaceCase("stance_rotation", (0.0, 0.0, -weight), (0.0, 0.0, torque),
                      f"body weight with a {STANCE_TORQUE_NM_PER_KG:g} N m/kg torque about the axis (Neumann et al.)"),
        InterfaceCase("swing_pull_off", (0.0, 0.0, pull), (0.0, 0.0, 0.0),
                      f"prosthesis {PROSTHESIS_MASS_KG:g} kg under gravity and swing ({omega:g} rad/s at "
                      f"{SWING_RADIUS_M:g} m): {pull:.0f} N pulling out (estimate)"),
    )
