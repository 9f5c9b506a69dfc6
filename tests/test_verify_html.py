"""The HTML verify report: its contents (fake runners, fast), its size, and that a real headless
Chromium renders it from disk with no network (skipped only where Chromium is absent)."""

from __future__ import annotations

import base64
import dataclasses
import io
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from omzconv.verify import evaluate_model, make_report, select_images, write_report
from omzconv.verify.render_html import MAX_DISAGREEMENTS
from test_verify import SIZE, fake_artefacts, fake_factory, make_caffe

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def small_model(registry):
    model = registry.model("inception_v4")
    return dataclasses.replace(model, preprocessing=dataclasses.replace(model.preprocessing, size=SIZE))


def _report(tmp_path, model, registry, n: int, calibrated: int = 5, **noise):
    selection = select_images(registry.dataset("imagenet-val"), make_caffe(tmp_path / "val", n=n, corrupt=False))
    calibration = frozenset(r.path.name for r in selection.records[:calibrated])
    art = fake_artefacts(tmp_path, precisions=("FP32", "FP16", "INT8"), calibration=calibration)
    factory = fake_factory(**{run: {"noise": v} for run, v in noise.items()})
    model_report = evaluate_model(model, art, selection, registry.tolerances, runner_factory=factory)
    return make_report(selection, [model_report], synthetic=True), calibration


def _cards(html: str, run: str) -> list[str]:
    """The disagreement cards of one IR (the section after its heading line)."""
    section = html.split(f"<p><strong>{run}</strong>:", 1)[1]
    section = re.split(r"<p><strong>(?:FP32|FP16|INT8)</strong>:|<p class=\"muted small\">Margin", section)[0]
    return section.split('<div class="card">')[1:]


def test_html_report_contents(tmp_path, small_model, registry):
    report, calibration = _report(tmp_path, small_model, registry, n=40, FP16=6.0, INT8=20.0)
    written = write_report(report, tmp_path / "r.json")
    assert [p.name for p in written] == ["r.json", "r.md", "r.html"]
    html = (tmp_path / "r.html").read_text()
    m = report.models[0]
    # the verdict first (these fakes are far off: FAILED), what decided it, and why the published
    # reference and the accuracy checks do not apply
    decided = html.index("Decided by 6 checks, 4 failed; 3 checks not applicable")
    assert html.index('id="verdict">FAILED<') < decided < html.index("<svg")
    assert "SYNTHETIC" in html and "not applied: subset of 40 images" in html
    assert "INT8 vs original: |Δ top-1|: not applicable (synthetic weights" in html and "not enforced" not in html
    assert html.count("<svg") == 2  # accuracy with Wilson intervals, |Δp| histogram
    # every disagreement of FP16 with the original, each with a decodable thumbnail and both top-3
    data = m.per_image
    fp16_diff = int((data.top["FP16"][:, 0] != data.top["original"][:, 0]).sum())
    top1 = next(c for c in m.checks if c.subject == "FP16 vs original" and c.metric.startswith("top-1"))
    assert f"{top1.value:.0f} of them decisive (margin &gt; 0.05; {top1.near_ties} near-ties excluded)" in html
    cards = _cards(html, "FP16")
    assert 0 < fp16_diff == len(cards) < MAX_DISAGREEMENTS
    for card in cards:
        uri = re.search(r'src="data:image/jpeg;base64,([^"]+)"', card).group(1)
        assert Image.open(io.BytesIO(base64.b64decode(uri))).size[0] > 0
        assert card.count("<li") == 6  # top-3 of the original and of FP16
    # INT8: capped, worst first, never a calibration image
    int8 = _cards(html, "INT8")
    int8_diff = int((data.measured["INT8"] & (data.top["INT8"][:, 0] != data.top["original"][:, 0])).sum())
    assert int8_diff > MAX_DISAGREEMENTS and len(int8) == MAX_DISAGREEMENTS
    assert f"{int8_diff} of 35 images; the {MAX_DISAGREEMENTS} with the largest |Δp| shown" in html
    shown = [re.search(r'<div class="mono">([^<]+)</div>', c).group(1) for c in int8]
    assert not set(shown) & calibration
    deltas = [float(re.search(r"\|Δp\| ([0-9.e+-]+)</span>", c).group(1)) for c in int8]
    assert deltas == sorted(deltas, reverse=True)
    # INT8 against FP32, and provenance
    assert re.search(r"<td class=\"l\">INT8</td><td class=\"l\">FP32</td><td>35</td>", html)
    assert "(5 excluded)" in html and "openvino" in html and "tensorflow" in html and m.runs[1].sha256[7:19] in html
    # 4 classes of 10 images: per-class agreement is shown (classes of fewer images are not)
    assert "The 4 classes (of 4 with at least 10 images)" in html
    # self-contained: nothing to fetch
    assert not re.search(r'(?:src|href)="(?!data:|#)', html) and "@import" not in html and not re.search(r"url\((?!#)", html)


def test_html_per_class_says_when_the_dataset_is_too_small(tmp_path, small_model, registry):
    report, _ = _report(tmp_path, small_model, registry, n=12)
    html = write_report(report, tmp_path / "r.html")[0].read_text()
    assert "largest class has 3 images here; per-class agreement needs at least 10" in html
    assert not (tmp_path / "r.json").exists()  # .html: the HTML alone


def test_html_report_stays_small_for_1000_images(tmp_path, small_model, registry):
    report, _ = _report(tmp_path, small_model, registry, n=1000, calibrated=100, FP16=6.0, INT8=20.0)
    path = write_report(report, tmp_path / "r.html", thumbnails=True)[0]
    size = path.stat().st_size
    assert size < 2_000_000, size
    assert path.read_text().count('class="card"') == 2 * MAX_DISAGREEMENTS  # FP16 and INT8, capped


# --- a real browser ------------------------------------------------------------------------------


def render_in_chromium(html: Path, screenshot: Path, full_page: bool = False) -> dict:
    """Open `html` from disk in headless Chromium with the network refused: every request is
    recorded, any but file:/data: aborted. Returns what the page showed."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--host-resolver-rules=MAP * ~NOTFOUND"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1300})
            page.on("request", lambda r: requests.append(r.url))
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:"))
                       else route.abort())
            page.goto(html.resolve().as_uri(), wait_until="load")
            result = {
                "verdict": page.inner_text("#verdict"),
                "images": page.eval_on_selector_all("img", "els => els.map(e => e.complete ? e.naturalWidth : 0)"),
                "svgs": page.eval_on_selector_all("svg", "els => els.map(e => e.getBoundingClientRect().width)"),
            }
            page.screenshot(path=str(screenshot), full_page=full_page)
        finally:
            browser.close()
    result["requests"] = requests
    return result


def assert_rendered(shown: dict, screenshot: Path, verdict: str) -> None:
    assert shown["verdict"] == verdict
    assert shown["images"] and all(w > 0 for w in shown["images"])  # every thumbnail decoded
    assert shown["svgs"] and all(w > 100 for w in shown["svgs"])  # every figure laid out
    assert [u for u in shown["requests"] if not u.startswith(("file:", "data:"))] == []
    pixels = np.asarray(Image.open(screenshot).convert("L"), np.float64)
    assert pixels.std() > 10 and len(np.unique(pixels)) > 50  # not blank


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_html_report_renders_offline_in_chromium(tmp_path, small_model, registry):
    pytest.importorskip("playwright")
    report, _ = _report(tmp_path, small_model, registry, n=40, FP16=6.0, INT8=20.0)
    html = write_report(report, tmp_path / "r.html")[0]
    # a page that asks for the network must be caught by the same harness
    leaky = tmp_path / "leaky.html"
    leaky.write_text(html.read_text().replace("</main>", '<img src="http://example.com/x.png"></main>'))
    leaked = render_in_chromium(leaky, tmp_path / "leaky.png")
    assert "http://example.com/x.png" in leaked["requests"] and 0 in leaked["images"]
    shown = render_in_chromium(html, tmp_path / "shot.png")
    assert_rendered(shown, tmp_path / "shot.png", "FAILED")


# --- the README's screenshot: a real report, procedural pictures (no ImageNet pixels) ------------

SCREENSHOT = Path(__file__).parent / "screenshots" / "verify-report.png"


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("OMZCONV_UPDATE_SCREENSHOT") != "1" or CHROMIUM is None,
                    reason="regenerates tests/screenshots/verify-report.png: OMZCONV_UPDATE_SCREENSHOT=1 and Chromium")
def test_update_the_readme_screenshot(synthetic_workspace, tmp_path):
    from click.testing import CliRunner

    from omzconv.cli import main
    from omzconv.procedural import natural_images

    root = tmp_path / "procedural"
    (root / "ILSVRC2012_img_val").mkdir(parents=True)
    lines = []
    for i, pixels in enumerate(natural_images(120, 299, seed=11)):
        name = f"procedural_{i:04d}.JPEG"
        Image.fromarray(pixels).save(root / "ILSVRC2012_img_val" / name, quality=90)
        lines.append(f"{name} {(i * 37) % 1000}")
    (root / "val.txt").write_text("\n".join(lines) + "\n")
    html = tmp_path / "verify.html"
    # the session's checkpoints, but IRs of its own: INT8 calibrated on these pictures, so the
    # screenshot shows its calibration images left out
    result = CliRunner().invoke(main, [
        "--cache-dir", str(synthetic_workspace.cache_dir), "-o", str(tmp_path / "out"), "-q",
        "verify", "inception_v4", "--data-dir", str(root), "--synthetic-weights", "-p", "FP32,FP16,INT8",
        "--calibration-size", "20", "--report", str(html)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    SCREENSHOT.parent.mkdir(exist_ok=True)
    shown = render_in_chromium(html, tmp_path / "shot.png", full_page=True)
    assert_rendered(shown, tmp_path / "shot.png", "PASSED")
    shot = Image.open(tmp_path / "shot.png")
    top = shot.convert("RGB").crop((0, 0, shot.width, min(shot.height, 2200)))
    top.quantize(256, method=Image.Quantize.MEDIANCUT).save(SCREENSHOT, optimize=True)  # a small PNG


# --- issue 17 §3, issue 16 §4: what the pages got wrong ---------------------------------------------

EVIL = "<img src=x onerror=alert(1)>.JPEG"


def _folder_dataset(root: Path, n: int = 8, evil: bool = True, long_name: str | None = None) -> Path:
    """Class folders (file names may hold spaces): `n` images, a corrupt one named like a live tag."""
    from test_verify import _jpeg

    folder = root / "n01440764"
    folder.mkdir(parents=True)
    for i in range(n):
        _jpeg(folder / (long_name if long_name and i == 0 else f"img_{i:03d}.JPEG"), i)
    if evil:
        (folder / EVIL).write_bytes(b"not a jpeg")
    return root


def test_file_names_stay_text_in_markdown_and_html(tmp_path, small_model, registry):
    from markdown_it import MarkdownIt

    from omzconv.verify import render_markdown

    selection = select_images(registry.dataset("imagenet-val"), _folder_dataset(tmp_path / "val"))
    model_report = evaluate_model(small_model, fake_artefacts(tmp_path), selection, registry.tolerances,
                                  runner_factory=fake_factory())
    assert model_report.skipped.first[0].path.endswith(EVIL)
    report = make_report(selection, [model_report], synthetic=True)
    md = render_markdown(report)
    assert EVIL in md  # shown, in a code span
    rendered = MarkdownIt("commonmark").render(md)
    assert "<img" not in rendered and "&lt;img src=x onerror=alert(1)&gt;" in rendered
    html = write_report(report, tmp_path / "r.html")[0].read_text()
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;.JPEG" in html


def test_md_text_escapes_what_markdown_or_html_would_act_on():
    from markdown_it import MarkdownIt

    from omzconv.verify import md_code, md_text

    for text in ("[x](javascript:alert(1))", "<script>alert(1)</script>", "a | b", "**bold** _it_", "`tick`",
                 "line\n<script>x</script>", "\x1b]0;title\x07"):
        html = MarkdownIt("commonmark").render(f"- {md_text(text)} and {md_code(text)}")
        assert "<script" not in html and "<a " not in html and "<strong>" not in html and "<em>" not in html
        assert "\x1b" not in html and "\n<script" not in html


def test_two_models_on_one_page_unique_ids_no_empty_alias_full_hashes(tmp_path, small_model, registry):
    report, _ = _report(tmp_path, small_model, registry, n=12)
    m = report.models[0]
    vgg = dataclasses.replace(m, model="vgg_19", alias="")
    report = dataclasses.replace(report, models=[m, vgg])
    html = write_report(report, tmp_path / "r.html")[0].read_text()
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) > 50 and len(ids) == len(set(ids))  # the SVGs' ids, scoped per figure
    for ref in set(re.findall(r'(?:href="#|url\(#)([^")]+)', html)):
        assert ref in ids  # every reference still points at its element
    assert "vgg_19 <span" in html and "()" not in re.sub(r"\w\([^)]*\)", "", html.split("<style>")[0])
    assert '<span class="muted">()</span>' not in html
    for r in m.runs:  # the full hash: as a tooltip and in the details
        assert f'title="{r.sha256}"' in html and f"<code>{r.sha256}</code>" in html
    assert re.search(r"Model verified in [0-9.]+ s in this process, at [0-9.]+ images/s on 12 images\.", html)
    assert "by in-process at local" not in html


@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (apt-get install chromium)")
def test_disagreement_cards_hold_long_names_in_chromium(tmp_path, small_model, registry, monkeypatch):
    pytest.importorskip("playwright")
    from playwright.sync_api import sync_playwright

    from omzconv.verify import render_html as module

    long_name = "ILSVRC2012_val_" + "0123456789" * 12 + ".JPEG"
    long_label = "a very_long_label_without_any_break_" * 4
    monkeypatch.setattr(module, "_class_names", lambda n, offset: [f"{long_label}{i}" for i in range(n)])
    root = _folder_dataset(tmp_path / "val", n=20, evil=False, long_name=long_name)
    selection = select_images(registry.dataset("imagenet-val"), root)
    model_report = evaluate_model(small_model, fake_artefacts(tmp_path), selection, registry.tolerances,
                                  runner_factory=fake_factory(FP16={"noise": 30.0}))  # nearly every image differs
    html = write_report(make_report(selection, [model_report], synthetic=True), tmp_path / "r.html")[0]
    assert long_name in html.read_text()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 1300})
            page.goto(html.resolve().as_uri(), wait_until="load")
            found = page.evaluate("""() => {
                const bad = [], cards = [...document.querySelectorAll('.card')];
                for (const card of cards) {
                    const box = card.getBoundingClientRect();
                    for (const el of card.querySelectorAll('*')) {
                        const r = el.getBoundingClientRect();
                        if (r.right > box.right + 0.5 || r.left < box.left - 0.5 || el.scrollWidth > el.clientWidth + 1
                            && getComputedStyle(el).display !== 'inline')
                            bad.push(el.tagName + ' ' + el.textContent.slice(0, 40));
                    }
                }
                const spans = [...document.querySelectorAll('.card .nw')].map(s => s.getClientRects().length);
                const names = cards.filter(c => c.textContent.includes('ILSVRC2012_val_0123')).length;
                return {cards: cards.length, bad, spans, names};
            }""")
        finally:
            browser.close()
    assert found["cards"] > 0 and found["names"] == 1, found
    assert found["bad"] == [], found["bad"][:5]
    assert found["spans"] and set(found["spans"]) == {1}  # margin and |Δp| never break across lines
