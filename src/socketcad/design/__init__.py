"""The prosthetist's decisions as data (plans, templates) and their geometry (rectification)."""
