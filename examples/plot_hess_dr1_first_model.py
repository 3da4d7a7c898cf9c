"""A first background model from the H.E.S.S. DL3 DR1 runs
=========================================================

**Needs the H.E.S.S. DL3 DR1 data** (found through ``$BGCUBE_DATA``, see
`bgcube.datasets`): on the documentation site it is executed only where the
data are present.

``make_models(..., model="groups")`` reads the obs- and hdu-index of the
data set, groups the runs in zenith and builds one model per group (the
original algorithm), exactly as
``bgcube make-models INDIR OUTDIR --model groups --test`` does (without
``--model groups`` the command fits the joint model instead). ``test=True``
keeps the first 10 runs, so this takes a few seconds. The outputs go to a temporary
folder, removed at the end.

This work made use of data from the H.E.S.S. DL3 public test data release 1
(HESS DL3 DR1, H.E.S.S. collaboration, 2018).
"""

# sphinx_gallery_bgcube = "run, needs-data"
import tempfile
from pathlib import Path

from bgcube.datasets import get_path
from bgcube.make import make_models

indir = get_path("hess-dl3-dr1")
workdir = tempfile.TemporaryDirectory(prefix="bgcube-gallery-")
outdir = Path(workdir.name) / "models"
result = make_models(indir, outdir, test=True, progress=False, model="groups")
print(result.summary_table())

# %%
# Look at the model of the group with the most runs
# -------------------------------------------------
# ``peek`` shows images at three energies, the spectrum at the centre and
# radial profiles.
group = max((g for g in result.groups if g.model is not None), key=lambda g: len(g.obs_ids))
fig = group.model.peek()

# %%
# The files written
# -----------------
for path in result.files:
    print(path.relative_to(outdir))

# %%
# Clean up
# --------
# The temporary folder and the files in it go away.
workdir.cleanup()
