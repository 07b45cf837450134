"""Make the tissue mesh the limb tests share (tests/data/tissue): run it when the sample limb, its bones
or the meshing change, and commit the new file (the tests name the one they expect).

    .venv/bin/python tests/data/make_tissue_mesh.py

fTetWild's meshes differ from run to run, so the limb tests read this one file rather than make their
own: their figures are then the same on every machine and every run."""

from pathlib import Path

from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.biomech.mesh import tissue_key, tissue_mesh

FOLDER = Path(__file__).parent / "tissue"
SAMPLE = "sample:openlimb-tt-mean"

if __name__ == "__main__":
    limb = locate_landmarks(load_limb(SAMPLE, CaptureOptions()))
    for stale in FOLDER.glob("tissue-*.npz"):
        stale.unlink()
    mesh = tissue_mesh(limb, cache=FOLDER)
    print(f"{FOLDER / f'tissue-{tissue_key(limb, mesh.edge_mm)}.npz'}: {mesh.notes[0]}")
