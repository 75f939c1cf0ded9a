"""Copy Swagger UI's browser bundle into the package once, so the API docs at /docs load no
script from a CDN: offline sites get working docs, and no third-party script ever runs on the
origin whose local storage holds the UI's trusted checkpoint.

    cd tools/swagger-ui && npm ci && ../../.venv/bin/python copy.py

Swagger UI is Apache-2.0; its LICENSE and NOTICE travel with the copy.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "node_modules" / "swagger-ui-dist"
TARGET = HERE.parents[1] / "src" / "deconfliction" / "web" / "static" / "vendor" / "swagger-ui"
FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE")
# The maps are not shipped, so no file may name one (the browser would ask for it).
SOURCE_MAP = re.compile(r"\n?/[*/]# sourceMappingURL=\S+?(?: ?\*/)?\s*$")


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(SOURCE / name, TARGET / name)
        if name.endswith((".js", ".css")):
            copied = TARGET / name
            copied.write_text(SOURCE_MAP.sub("\n", copied.read_text()))
    print(f"copied {', '.join(FILES)} to {TARGET}")


if __name__ == "__main__":
    main()
