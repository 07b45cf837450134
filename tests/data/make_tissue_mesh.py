"""Make the tissue meshes the limb tests share (tests/data/tissue): run it when a sample limb, its bones,
the bone fit or the meshing change, and commit the new files (the tests name the ones they expect).

    .venv/bin/python tests/data/make_tissue_mesh.py      (makes the missing ones; delete a file to make it anew)

fTetWild's meshes differ from run to run, so the limb tests read these files rather than make their
own: their figures are then the same on every machine and every run. The OpenLimbTT mean carries its
bones (test_interface_limb.py, at the default and the quick preview's resolution); the AmpScan scan has
none and gets the mean's fitted (test_realscan.py)."""

from pathlib import Path

from socketcad.anatomy.bone_fit import with_mean_bones
from socketcad.anatomy.landmarks import locate_landmarks
from socketcad.anatomy.limb import CaptureOptions, load_limb
from socketcad.biomech.mesh import DEFAULT_EDGE_MM, ENVELOPE, QUICK_EDGE_MM, QUICK_ENVELOPE, tissue_key, tissue_mesh

FOLDER = Path(__file__).parent / "tissue"
DEFAULT, QUICK = (DEFAULT_EDGE_MM, ENVELOPE), (QUICK_EDGE_MM, QUICK_ENVELOPE)
LIMBS = {"sample:openlimb-tt-mean": (CaptureOptions(), (DEFAULT, QUICK)),
         "sample:ampscan-tt-scan": (CaptureOptions(side="right"), (DEFAULT,))}

if __name__ == "__main__":
    meshes = [(locate_landmarks(load_limb(source, options)), settings) for source, (options, settings) in LIMBS.items()]
    wanted = {FOLDER / f"tissue-{tissue_key(limb if limb.bones else with_mean_bones(limb), edge, envelope)}.npz"
              for limb, settings in meshes for edge, envelope in settings}
    for stale in set(FOLDER.glob("tissue-*.npz")) - wanted:  # kept meshes stay: their tests' figures with them
        stale.unlink()
    for limb, settings in meshes:
        for edge, envelope in settings:
            mesh = tissue_mesh(limb, edge, cache=FOLDER, envelope=envelope)  # read if kept, else made and written
            print(f"{limb.source}: {mesh.notes[0]}")
