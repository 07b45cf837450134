"""Pictures and reports: off-screen renders of the limb, the rectification, the socket and the interface
maps (render, pictures), flat plots (plots, unrolled), and the HTML/PDF report built from them (sections,
reports, document)."""

__all__ = ["document", "pictures", "plots", "render", "reports", "sections", "unrolled"]
