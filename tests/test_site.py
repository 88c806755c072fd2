"""make site (python -m fmnist.tools.site): the static report site, built from the tiny pipeline's reports and from
the committed ones, and opened page by page in a real headless Chromium (Debian's chromium and chromium-driver)
with the network off: no console error, no failed request, no request leaving the machine, every image and chart
drawn, every variant in the curves chart, the summary's link reaching the model card."""
from __future__ import annotations

import json
import re
import shutil
import sys
import time

import pytest
import yaml

from tests.conftest import REPO_ROOT, TINY_VARIANTS, copy_pipeline, unavailable
from tests.helpers import run, stage_env

# Debian's Chromium, or the Chrome that GitHub's Ubuntu runners come with: either drives the same way.
CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)),
                None)
DRIVER = shutil.which("chromedriver")
ARTIFACTS = REPO_ROOT / ".test-artifacts"  # git-ignored: what a run leaves to look at


@pytest.fixture(scope="module")
def chromium() -> None:
    """Chromium and its driver on PATH, or skip (fail in CI)."""
    if CHROMIUM is None or DRIVER is None:
        unavailable("no Chromium here: needs `chromium` and `chromedriver` on PATH (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")


def build_site(repo, env, out) -> list[str]:
    result = run([sys.executable, "-m", "fmnist.tools.site", "--out", str(out)], repo, env)
    assert result.stdout.startswith("site: ") and result.stderr == "", result.stderr
    return sorted(p.name for p in out.glob("*.html"))


@pytest.fixture(scope="module")
def sites(tiny_pipelines, tmp_path_factory):
    """{'tiny': the tiny pipeline's site, 'committed': the committed reports' site}: (folder, its variants)."""
    root = tmp_path_factory.mktemp("site")
    tiny = copy_pipeline(tiny_pipelines("tensorflow"), root / "repo")
    build_site(tiny.repo, tiny.env, root / "tiny")
    build_site(REPO_ROOT, stage_env(), root / "committed")
    committed = list(yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["variants"])
    return {"tiny": (root / "tiny", list(TINY_VARIANTS)), "committed": (root / "committed", committed)}


def test_the_site_has_every_page_its_reports_call_for_and_no_cdn(sites):
    tiny, committed = sites["tiny"][0], sites["committed"][0]
    assert sorted(p.name for p in tiny.glob("*.html")) == [
        "accuracy.html", "curves.html", "index.html", "model_card.html"]  # no study, no sweep in the tiny one
    assert sorted(p.name for p in committed.glob("*.html")) == [
        "accuracy.html", "chapter7.html", "curves.html", "index.html", "model_card.html", "sweeps.html", "tuning.html"]
    for page in [*tiny.glob("*.html"), *committed.glob("*.html")]:
        text = page.read_text()
        assert "cdn." not in text and "https://" not in text.split("<body>")[0], page  # nothing fetched from afar
    assert (tiny / "plotly.min.js").stat().st_size > 1_000_000


def test_the_chapter_page_shows_its_figures_from_the_site_and_links_nowhere_outside_it(sites):
    """docs/chapter7.md in the site: first in the navigation, every figure it shows is a file of the site, and its
    links to code and docs (which the site does not hold) are text, not links that lead nowhere."""
    site = sites["committed"][0]
    text = (site / "chapter7.html").read_text()
    images = re.findall(r'<img src="([^"]+)"', text)
    assert len(images) >= 8 and all((site / image).is_file() for image in images), images
    targets = re.findall(r'<a href="([^"]+)"', text.split("</nav>", 1)[1])
    assert targets and all(target in ("index.html",) for target in targets), targets
    assert "models.py#L" not in text and "<code>keras.callbacks.EarlyStopping(</code>" in text
    assert re.findall(r'<nav><a href="([^"]+)"', (site / "index.html").read_text()) == ["chapter7.html"]


def test_a_report_that_is_not_there_gets_one_line(tmp_path):
    result = run([sys.executable, "-m", "fmnist.tools.site", "--out", str(tmp_path / "site")], tmp_path,
                 stage_env(PYTHONPATH=str(REPO_ROOT)), check=False)
    assert result.returncode == 1 and result.stderr.startswith("error: reports/summary.md: not found; run `make repro`")
    assert result.stderr.count("\n") == 1 and not (tmp_path / "site").exists()


def test_out_must_be_absent_or_a_site_built_before(tmp_path):
    """--out is replaced whole: a folder that is not a site (`--out docs`) or a symlink is refused and left as it
    was; a site built before is replaced."""
    env = stage_env(PYTHONPATH=str(REPO_ROOT))
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("mine\n")
    (tmp_path / "link").symlink_to(docs)
    for out in (docs, tmp_path / "link"):
        result = run([sys.executable, "-m", "fmnist.tools.site", "--out", str(out)], REPO_ROOT, env, check=False)
        assert result.returncode == 1
        assert result.stderr == (f"error: {out}: exists and is not a site this command built (no .fmnist-site in it); "
                                 "--out must name a new folder or a site made before, which it replaces whole\n")
    assert [p.name for p in docs.iterdir()] == ["guide.md"] and (docs / "guide.md").read_text() == "mine\n"
    site = tmp_path / "site"
    for _ in range(2):  # a new folder, then the site it became
        assert run([sys.executable, "-m", "fmnist.tools.site", "--out", str(site)], REPO_ROOT, env).returncode == 0
    assert (site / ".fmnist-site").is_file() and (site / "index.html").is_file()


def test_the_pages_fetch_nothing_from_elsewhere_and_escape_what_reports_hold(tmp_path):
    """Reports with a remote image (a variant's description is Markdown), markup in the tuning study's best trial
    and in a sweep's file name, and a symlink among the figures: the image is shown as its text, the markup as
    text, the symlink not copied; every page carries a Content-Security-Policy that allows only the site's own."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(REPO_ROOT / "params.yaml", project / "params.yaml")
    shutil.copytree(REPO_ROOT / "reports", project / "reports")
    summary = project / "reports/summary.md"
    summary.write_text(summary.read_text() + "\n![a tracking pixel](https://example.com/pixel.png)\n")
    best = project / "reports/tuning/best.json"
    best.write_text(json.dumps({**json.loads(best.read_text()), "trial": "<script>alert(1)</script>"}))
    (project / "reports/sweeps").mkdir(exist_ok=True)
    (project / 'reports/sweeps/a"onmouseover="alert(2).md').write_text("# a sweep\n")
    (project / "reports/figures/secret.png").symlink_to("/etc/hostname")
    out = tmp_path / "site"
    run([sys.executable, "-m", "fmnist.tools.site", "--out", str(out)], project, stage_env(PYTHONPATH=str(REPO_ROOT)))
    pages = {page.name: page.read_text() for page in out.glob("*.html")}
    assert "[image not shown: a tracking pixel]" in pages["index.html"] and "example.com" not in pages["index.html"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["tuning.html"]
    assert "<script>alert(1)" not in pages["tuning.html"]
    assert 'id="a&quot;onmouseover=&quot;alert(2)"' in pages["sweeps.html"]
    assert not (out / "figures/secret.png").exists() and (out / "figures").is_dir()
    for name, text in pages.items():
        head = text.split("<body>")[0]
        assert "<meta http-equiv=Content-Security-Policy content=\"default-src 'self';" in head, name


# --- in a real browser ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(chromium):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000",
                     "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"):  # nowhere to go
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                "downloadThroughput": -1, "uploadThroughput": -1})
    yield driver
    driver.quit()


DRAWN = """
const images = [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth,
                                             i.getBoundingClientRect().width, i.getBoundingClientRect().height]);
const charts = [...document.querySelectorAll('.js-plotly-plot')].map(c => [c.id, c.getBoundingClientRect().width,
                                             c.getBoundingClientRect().height, c.querySelectorAll('.main-svg').length]);
return {images, charts, ready: document.readyState, title: document.title};
"""


def open_page(driver, path) -> dict:
    """Load one page; what it drew, and every console message and network request it caused."""
    driver.get_log("browser"), driver.get_log("performance")  # what earlier pages left
    driver.get(path.as_uri())
    deadline = time.monotonic() + 30
    while True:
        drawn = driver.execute_script(DRAWN)
        if drawn["ready"] == "complete" and all(chart[3] for chart in drawn["charts"]):
            break
        assert time.monotonic() < deadline, drawn
        time.sleep(0.2)
    events = [json.loads(entry["message"])["message"] for entry in driver.get_log("performance")]
    drawn["requests"] = [e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"]
    drawn["failed"] = [e["params"] for e in events if e["method"] == "Network.loadingFailed"]
    drawn["console"] = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    return drawn


@pytest.mark.parametrize("which", ["tiny", "committed"])
def test_every_page_loads_offline_with_no_error_and_draws_every_image_and_chart(sites, browser, which):
    folder, variants = sites[which]
    for path in sorted(folder.glob("*.html")):
        drawn = open_page(browser, path)
        where = f"{which}/{path.name}"
        assert drawn["console"] == [] and drawn["failed"] == [], (where, drawn["console"], drawn["failed"])
        assert drawn["requests"] and all(url.startswith(("file://", "data:")) for url in drawn["requests"]), where
        assert all(natural > 0 and width > 0 and height > 0 for _, natural, width, height in drawn["images"]), (
            where, drawn["images"])
        assert all(width > 0 and height > 0 for _, width, height, _ in drawn["charts"]), (where, drawn["charts"])
        if path.name == "index.html":
            assert drawn["images"], where  # the figures the summary shows
        if path.name in ("curves.html", "accuracy.html", "tuning.html"):
            assert drawn["charts"], where
    # The curves chart offers every variant (one legend entry each).
    open_page(browser, folder / "curves.html")
    names = browser.execute_script("return document.getElementById('curves').data"
                                   ".filter(t => t.showlegend !== false).map(t => t.name)")
    assert names == variants
    if which == "committed":  # the study's history shows its pruned trials
        open_page(browser, folder / "tuning.html")
        traces = browser.execute_script("return document.getElementById('history').data.map(t => t.name)")
        assert any(name.startswith("pruned (") for name in traces) and "best so far" in traces, traces


def test_the_summary_links_to_the_model_card_and_a_screenshot_is_kept(sites, browser, tmp_path):
    folder, _ = sites["committed"]
    open_page(browser, folder / "index.html")
    link = browser.find_element("css selector", 'a[href="model_card.html"]')
    link.click()
    assert browser.current_url.endswith("/model_card.html")
    assert browser.find_element("tag name", "h1").text.startswith("Model card:")
    open_page(browser, folder / "index.html")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "site-index.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    print(f"screenshot of the site's main page: {shot}")
