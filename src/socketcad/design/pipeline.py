"""The design pipeline, written once: limb (landmarks located) -> plan -> rectified model -> socket.

``socket = build(rectify(limb, plan), spec)``: the command line, the clinic's revisions and the demo all
build through ``design_socket``; a spec that names no adapter gets the selection rule's
(``components.default_adapter``); a template's inputs come from the spec's liner (``template_inputs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import Limb
from socketcad.design import components
from socketcad.design.plan import RectificationPlan
from socketcad.design.rectify import Rectification, rectify, with_plan_facts
from socketcad.design.socket import Socket, SocketSpec, build_socket, spec_from_dict
from socketcad.design.templates import TemplateInputs, template_plan

__all__ = ["Designed", "complete_spec", "design_socket", "prepared_limb", "template_inputs"]


@dataclass(frozen=True)
class Designed:
    """What a design produced: the plan applied (None: the limb as it is), its rectification, the socket."""

    plan: RectificationPlan | None
    rectification: Rectification | None
    socket: Socket


def complete_spec(fields: Mapping[str, object], level: str | None, source: str = "socket spec") -> SocketSpec:
    """A validated spec from plain fields; a closure given without an adapter gets the selection rule's
    adapter for the limb's ``level``. InputError naming the field otherwise."""
    fields = dict(fields)
    if fields.get("adapter") is None and isinstance(fields.get("closure"), str):
        catalogue = components.load_catalogue()
        closure = catalogue.closure(fields["closure"])
        fields["adapter"] = components.default_adapter(closure, level or "transtibial", catalogue).id
    return spec_from_dict({key: value for key, value in fields.items() if value is not None}, source)


def template_inputs(spec: SocketSpec, sensitive_areas: Sequence[str] = (), bar_depth_mm: float | None = None,
                    liner_thickness_mm: float | None = None) -> TemplateInputs:
    """A template's inputs: the liner's thickness from the spec's liner (it sets the TSB reduction) unless
    given, the evaluation's sensitive areas, the bar depth (default the template's)."""
    liner_mm = liner_thickness_mm if liner_thickness_mm is not None else \
        components.load_catalogue().liner(spec.liner).thickness_mm
    extra = {} if bar_depth_mm is None else {"bar_depth_mm": bar_depth_mm}
    return TemplateInputs(liner_thickness_mm=liner_mm, sensitive_areas=tuple(sensitive_areas), **extra)


def prepared_limb(limb: Limb, plan: RectificationPlan | None = None,
                  overrides: Mapping[str, Sequence[float]] | None = None, use_bones: bool = True) -> Limb:
    """The limb ready to design on: the plan's level and side where the limb's are unknown, landmarks
    located, the plan's hand-placed landmarks and then ``overrides`` (name -> point in the frame, mm) over them."""
    placed = {**(plan.landmarks if plan is not None else {}), **(overrides or {})}
    return locate_landmarks(with_plan_facts(limb, plan), placed or None, use_bones=use_bones)


def design_socket(limb: Limb, spec: SocketSpec, plan: RectificationPlan | None = None, template: str | None = None,
                  inputs: TemplateInputs | None = None) -> Designed:
    """Rectify ``limb`` (landmarks located) by ``plan`` or by ``template``'s plan for it, then build the socket."""
    if template is not None:
        plan = template_plan(template, limb, inputs or template_inputs(spec))
    rectification = rectify(limb, plan) if plan is not None else None
    model = rectification.rectified_limb() if rectification is not None else limb
    return Designed(plan, rectification, build_socket(model, spec))
