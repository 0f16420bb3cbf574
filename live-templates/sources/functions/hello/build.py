"""Build the deployment package: dist/package.zip with every .py file of this folder.

`refarch artifacts build` runs it in this folder (see artifacts.hcl). The zip is
reproducible (fixed timestamps and order), so the same source gives the same bytes.
"""

import pathlib
import zipfile

here = pathlib.Path(__file__).resolve().parent
dist = here / "dist"
dist.mkdir(exist_ok=True)
with zipfile.ZipFile(dist / "package.zip", "w", zipfile.ZIP_DEFLATED) as archive:
    for path in sorted(here.glob("*.py")):
        if path.name != "build.py":
            info = zipfile.ZipInfo(path.name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes())
