"""socketcad: custom prosthetic socket design, from the clinic to the printer."""

__version__ = "0.1.0"
