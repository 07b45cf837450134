"""socketcad's jobs, one function each: typed requests in, typed results out (pydantic, units in the field
names), progress through an optional callback, InputError naming the field on bad input; nothing printed.

The command line and the web application are shells over these functions; reports and studies call them too.
A result's JSON schema is published by ``result_schemas`` (``socketcad schema``).

>>> from socketcad import operations
>>> result = operations.landmarks(operations.LandmarksRequest(source="sample:openlimb-tt-mean"))
>>> sorted(row.name for row in result.landmarks)[:3]
['distal_end', 'distal_tibia', 'fibular_head']
"""

from __future__ import annotations

from socketcad.operations._common import Capture, LimbInfo, Progress, Request, Result, Source, Upload, silent
from socketcad.operations._analysis import AnalyseRequest, Analysis, analyse
from socketcad.operations._capture import (ConvertRequest, Converted, InspectRequest, Inspection, LandmarkRow, Landmarks,
                                          LandmarksRequest, SampleInfo, SampleList, SectionRow, TapeLimb, TapeRequest, catalogue,
                                          convert, inspect, landmarks, samples, tape)
from socketcad.operations._clinic import (AddScanRequest, AnalyseRevisionRequest, CaseExported, CaseImported, CaseList,
                                         CaseOpened, DeliverRequest, DeliverySaved, DesignRequest, DiffRequest,
                                         EvaluateRequest, EvaluationSaved, FabricateRequest, FabricationSaved, FitRequest,
                                         FittingSaved, FollowUpRequest, FollowUpSaved, NewCaseRequest, Rebuilt,
                                         RevisionAnalysed, RevisionDiff, RevisionSaved, ScanKept, StoredAnalysis,
                                         add_scan, analyse_revision, case_history, cases, deliver, diff, evaluate,
                                         export_case, fabricate, fit, follow_up, import_case, new_case, open_store,
                                         rebuild, save_design, stored_analysis)
from socketcad.operations._design import (BuildRequest, DemoRequest, DemoResult, ModificationRow, RectifyRequest,
                                         Rectified, SocketBuilt, SpecFields, build, demo, rectify, wall_strength)
from socketcad.operations._access import (Account, AddUserRequest, DemoClinic, SignInRequest, SignedIn, UserAdded, add_user,
                                         case_access, demo_clinic, end_session, session_account, sign_in)
from socketcad.operations._views import (AnalysisView, DiffView, Download, FollowUpView, diff_view, followup_view, LandmarkMoved, LandmarkPoint, MoveLandmarkRequest,
                                        Preview, PreviewRequest, ProposalView, ProposeRequest, RegionRow, Scale,
                                        ScanView, SectionView, SocketView, Surface, analysis_view, download, download_name,
                                        move_landmark, preview, propose, scan_view, section, socket_view)
from socketcad.operations._report import (CaseReportRequest, DesignReportRequest, ReportWritten, report_case,
                                         report_design)

__all__ = [
    "Capture", "LimbInfo", "Progress", "Request", "Result", "Source", "Upload", "result_schemas", "silent",
    "ConvertRequest", "Converted", "InspectRequest", "Inspection", "LandmarkRow", "Landmarks", "LandmarksRequest",
    "SampleInfo", "SampleList", "SectionRow", "TapeLimb", "TapeRequest", "catalogue", "convert", "inspect",
    "landmarks", "samples", "tape",
    "BuildRequest", "DemoRequest", "DemoResult", "ModificationRow", "RectifyRequest", "Rectified", "SocketBuilt",
    "SpecFields", "build", "demo", "rectify", "wall_strength",
    "AnalyseRequest", "Analysis", "analyse",
    "CaseReportRequest", "DesignReportRequest", "ReportWritten", "report_case", "report_design",
    "AddScanRequest", "AnalyseRevisionRequest", "CaseExported", "CaseImported", "CaseList", "CaseOpened",
    "DeliverRequest", "DeliverySaved", "DesignRequest", "DiffRequest", "EvaluateRequest", "EvaluationSaved",
    "FabricateRequest", "FabricationSaved", "FitRequest", "FittingSaved", "FollowUpRequest", "FollowUpSaved",
    "NewCaseRequest", "Rebuilt", "RevisionAnalysed", "RevisionDiff", "RevisionSaved", "ScanKept", "StoredAnalysis",
    "add_scan", "analyse_revision", "case_history", "cases", "deliver", "diff", "evaluate", "export_case", "fabricate",
    "fit", "follow_up", "import_case", "new_case", "open_store", "rebuild", "save_design", "stored_analysis",
    "Account", "AddUserRequest", "DemoClinic", "demo_clinic", "SignInRequest", "SignedIn", "UserAdded", "add_user", "case_access", "end_session",
    "session_account", "sign_in",
    "AnalysisView", "DiffView", "Download", "FollowUpView", "diff_view", "followup_view", "LandmarkMoved", "LandmarkPoint", "MoveLandmarkRequest", "Preview", "PreviewRequest",
    "ProposalView", "ProposeRequest", "RegionRow", "Scale", "ScanView", "SectionView", "SocketView", "Surface",
    "analysis_view", "download", "download_name", "move_landmark", "preview", "propose", "scan_view", "section", "socket_view",
]  # the one list of public names: socketcad re-exports it


def result_schemas() -> dict[str, dict]:
    """The JSON schema of every operation's result, by the result's name."""
    from socketcad.clinic.cases import CaseHistory
    from socketcad.design.components import Catalogue
    from socketcad.design.fabrication import WallStrength

    models = (Analysis, CaseExported, CaseHistory, CaseImported, CaseList, CaseOpened, Catalogue, Converted,
              DeliverySaved, DemoResult, EvaluationSaved, FabricationSaved, FittingSaved, FollowUpSaved, Inspection,
              Landmarks, Rebuilt, Rectified, ReportWritten, RevisionAnalysed, RevisionDiff, RevisionSaved, SampleList, ScanKept,
              SocketBuilt, TapeLimb, WallStrength, UserAdded, LandmarkMoved, Preview, ProposalView, ScanView,
              SectionView, SocketView, AnalysisView, DiffView, FollowUpView)
    return {model.__name__: model.model_json_schema() for model in models}
