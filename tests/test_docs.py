"""The documentation stays true: every ```python block of README.md and docs/*.md runs on its own
(a fresh namespace each; a first line `# needs: torch` skips it where that package is missing),
README.md stays short and starts with the set-up commands, and every relative link in the
repository's markdown points at a file inside it."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKDOWN = PAGES + [ROOT / "benchmarks" / "README.md"]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def python_blocks():
    for page in PAGES:
        text = page.read_text()
        for number, match in enumerate(BLOCK.finditer(text), 1):
            line = text.count("\n", 0, match.start()) + 1
            yield pytest.param(match.group(1), id=f"{page.relative_to(ROOT)}:{line}")


@pytest.mark.parametrize("code", list(python_blocks()))
def test_code_block_runs(code):
    for needed in re.findall(r"^# needs: (.+)$", code, re.M):
        for module in needed.replace(",", " ").split():
            pytest.importorskip(module)
    namespace = {"__name__": "__doc_block__"}
    exec(compile(code + "\n__ran_to_the_end__ = True\n", "<doc block>", "exec"), namespace)
    assert namespace["__ran_to_the_end__"]  # an exception or an early exit fails the block


def test_every_page_has_blocks_found():
    found = {p.id.split(":")[0] for p in python_blocks()}
    assert "README.md" in found and len(found) >= 4


def test_readme_is_short_and_starts_with_setup():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160
    head = "\n".join(lines[:15])
    assert "pip install . && python -m inception_native bench" in head
    assert "pip install pytest hypothesis && pytest -q tests" in head


def test_links_stay_inside_the_repository():
    for page in MARKDOWN:
        text = page.read_text()
        assert "../" not in text, f"{page.relative_to(ROOT)} points outside its folder"
        for target in LINK.findall(text):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the same page
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{page.relative_to(ROOT)}: {target} leaves the repository"
            assert path.exists(), f"{page.relative_to(ROOT)}: {target} does not exist"
