"""Build the Forge Custom UI from static/panel: `python -m connector.customui [--if-stale] [OUT]`.

Into the folder the manifest's `panel` resource names (manifest/build/panel):
- `index.html`: connector/templates/panel.html rendered once with `forge=True` (no token; relative files);
- `panel.js`: static/panel/forge.js (panel.js over @forge/bridge) bundled by esbuild from npm, one IIFE;
- `panel.css` (copied) and `tokens.css`: Atlassian's design tokens (light, dark, spacing, typography,
  shape) taken from @atlaskit/tokens, which @forge/bridge brings; the host picks the theme with
  `data-color-mode` on <html>.
Nothing the page loads comes from anywhere but this folder.

The built folder is committed, with `manifest/build/panel.sha256`: the digest of everything it is built from
(the sources above and the versions of esbuild, @forge/bridge and @atlaskit/tokens in package-lock.json).
So `make run` on a fresh clone needs no npm at all: `--if-stale` builds only when that digest no longer
matches (a source was edited), and a test rebuilds the folder and compares it byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "manifest" / "build" / "panel"
PANEL = ROOT / "static" / "panel"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
THEMES = ROOT / "node_modules" / "@atlaskit" / "tokens" / "dist" / "esm" / "artifacts" / "themes"
THEME_FILES = (
    "atlassian-light",
    "atlassian-dark",
    "atlassian-spacing",
    "atlassian-typography-refreshed",
    "atlassian-shape",
)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
STAMP = OUT.with_name(OUT.name + ".sha256")
SOURCES = (
    "static/panel/panel.js",
    "static/panel/forge.js",
    "static/panel/panel.css",
    "connector/templates/panel.html",
    "connector/customui.py",
)
BUILD_PACKAGES = ("esbuild", "@forge/bridge", "@atlaskit/tokens")


class BuildError(RuntimeError):
    pass


def _theme_css(name: str) -> str:
    """The CSS text of one @atlaskit/tokens theme module (`export default "<css>";`)."""
    text = (THEMES / f"{name}.js").read_text()
    match = re.search(r"export default (\".*\");?\s*$", text, re.S)
    if not match:
        raise BuildError(f"unexpected shape of @atlaskit/tokens theme {name}")
    return json.loads(match.group(1))


def render_index() -> str:
    env = Environment(
        loader=FileSystemLoader(ROOT / "connector" / "templates"), autoescape=select_autoescape()
    )
    page = env.get_template("panel.html")
    return page.render(forge=True, context_token="", site_url="your Jira site", days=DAYS)


def source_digest() -> str:
    """SHA-256 over the sources and the locked versions of the npm packages the build uses."""
    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update(name.encode() + b"\0" + (ROOT / name).read_bytes() + b"\0")
    locked = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    for package in BUILD_PACKAGES:
        digest.update(f"{package}@{locked[f'node_modules/{package}']['version']}\0".encode())
    return digest.hexdigest()


def is_stale(out: Path = OUT) -> bool:
    """Whether the folder is missing or was built from other sources than today's."""
    stamp = out.with_name(out.name + ".sha256")
    if not (out / "index.html").exists() or not stamp.exists():
        return True
    return stamp.read_text().split()[0] != source_digest()


def build(out: Path = OUT) -> list[Path]:
    """Build the Custom UI into `out`; return the files written."""
    if not ESBUILD.exists() or not THEMES.exists():
        raise BuildError("esbuild or @forge/bridge is missing: run `make install` (npm ci) first")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    (tmp / "index.html").write_text(render_index())
    shutil.copy(PANEL / "panel.css", tmp / "panel.css")
    tokens = "\n".join(_theme_css(name) for name in THEME_FILES)
    if re.search(r"url\(|@import|https?://", tokens):
        raise BuildError("the design tokens would load something from elsewhere")
    (tmp / "tokens.css").write_text("/* Atlassian design tokens (@atlaskit/tokens, Apache-2.0) */\n" + tokens)
    cmd = [
        str(ESBUILD),
        str(PANEL / "forge.js"),
        "--bundle",
        "--minify",
        "--format=iife",
        "--platform=browser",
        "--target=es2020",
        "--legal-comments=eof",
        "--log-level=warning",
        f"--outfile={tmp / 'panel.js'}",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"esbuild failed: {done.stderr.strip()[:2000]}")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    out.with_name(out.name + ".sha256").write_text(f"{source_digest()}  sources of {out.name}/\n")
    return sorted(out.iterdir())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if_stale = "--if-stale" in args
    args = [a for a in args if a != "--if-stale"]
    out = Path(args[0]).resolve() if args else OUT
    if if_stale and not is_stale(out):
        return 0
    if if_stale and not ESBUILD.exists() and (out / "index.html").exists():
        print("Custom UI sources changed but npm packages are missing: serving the committed build "
              "(run `make install` to rebuild)", file=sys.stderr)  # fmt: skip
        return 0
    try:
        files = build(out)
    except BuildError as e:
        print(f"Custom UI not built: {e}", file=sys.stderr)
        return 1
    size = sum(f.stat().st_size for f in files)
    print(f"Forge Custom UI built: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} "
          f"({len(files)} files, {size // 1024} KiB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
