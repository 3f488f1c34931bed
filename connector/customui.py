"""Build the Forge Custom UI from static/panel: `python -m connector.customui [OUT]` (run by `make install`).

Into the folder the manifest's `panel` resource names (manifest/build/panel):
- `index.html`: connector/templates/panel.html rendered once with `forge=True` (no token; relative files);
- `panel.js`: static/panel/forge.js (panel.js over @forge/bridge) bundled by esbuild from npm, one IIFE;
- `panel.css` (copied) and `tokens.css`: Atlassian's design tokens (light, dark, spacing, typography,
  shape) taken from @atlaskit/tokens, which @forge/bridge brings; the host picks the theme with
  `data-color-mode` on <html>.
Nothing the page loads comes from anywhere but this folder.
"""

from __future__ import annotations

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
    return sorted(out.iterdir())


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]).resolve() if args else OUT
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
