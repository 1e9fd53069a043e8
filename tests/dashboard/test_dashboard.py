"""The dashboard in a real headless browser (Debian's chromium driven by selenium): it renders the
tasks, submissions, earnings and the accuracy chart of a federated job that ran in this test, and
updates by itself when a new result lands on chain.

Screenshots go to ``.artifacts/dashboard/`` (git-ignored) and their paths are printed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from decentralml.chain.client import Client
from decentralml.chain.types import SubmissionStatus, ValidationStrategy
from decentralml.roles.contributor import ModelContributor
from decentralml.roles.creator import ModelCreator
from decentralml.roles.federated_job import run_federated_job
from decentralml.roles.job_store import JobSpec, JobStore
from decentralml.storage import open_store

pytestmark = [pytest.mark.tf, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / ".artifacts" / "dashboard"
BUNDLE = REPO / "examples" / "federated_mnist" / "bundle"
LINES = REPO / "tests" / "roles" / "data" / "line_counter"
UNIT = 10**12
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,1800")


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.fail("chromium and chromedriver are needed: run scripts/install_chromium.sh "
                    "(make test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    monkeypatch.setenv("SE_OFFLINE", "true")  # never let selenium look for a driver online
    drv = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def _shot(drv: object, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    drv.save_screenshot(str(path))  # type: ignore[attr-defined]
    print(f"screenshot: {path}")
    return path


def _run_job(url: str, tmp: Path, digits, jobs: Path) -> None:  # type: ignore[no-untyped-def]
    """A real two-round job (one slot, //Bob training in the runner each round)."""
    import keras

    from decentralml.fl import partition_iid, save_model

    (x, y), (xt, yt) = digits
    xs, ys = partition_iid(x, y, 2, seed=0)[0]
    data = tmp / "data-bob"
    data.mkdir()
    np.savez(data / "data.npz", x=xs, y=ys)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    spec_store = f"local:{tmp / 'store'}"
    alice = Client(url, account="//Alice", home=tmp / "alice")
    bob = Client(url, account="//Bob", home=tmp / "bob")
    creator = ModelCreator(alice, open_store(spec_store), workdir=tmp / "creator")
    spec = JobSpec(name="digits", question="Train the digits model", rounds=2, slots=1,
                   reward=2 * UNIT, creator=str(alice.address), genesis_hash=alice.genesis_hash)
    job = JobStore(jobs).create(spec)
    save_model(model, job.model_path(0))
    worker = ModelContributor(bob, open_store(spec_store), home=tmp / "bob")
    run_federated_job(creator, model, BUNDLE, rounds=2, slots=1, reward=2 * UNIT, x_test=xt,
                      y_test=yt, question=spec.question, job=job, round_timeout=300,
                      on_round_published=lambda r, t: worker.work(t.task_id, data))
    alice.close()
    bob.close()


def test_dashboard_renders_the_market_and_follows_new_results(
        fresh_devnode, tmp_path: Path, digits, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.expected_conditions import staleness_of
    from selenium.webdriver.support.ui import WebDriverWait

    url = fresh_devnode.url
    jobs = tmp_path / "jobs"
    _run_job(url, tmp_path, digits, jobs)
    store = open_store(f"local:{tmp_path / 'store'}")
    charlie = Client(url, account="//Charlie", home=tmp_path / "charlie")
    task = ModelCreator(charlie, store, workdir=tmp_path / "c-creator").publish(
        LINES, question="count the lines of your samples", reward=3 * UNIT, max_assignments=2,
        validation_strategy=ValidationStrategy.ManualAccept)

    env = {**os.environ, "DECENTRALML_HOME": str(tmp_path / "viewer")}
    server = subprocess.Popen([sys.executable, "-m", "decentralml.cli.main", "--node", url,
                               "--json", "dashboard", "--port", "0", "--workdir", str(jobs)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert server.stdout is not None
        lines = []
        while not lines or lines[-1] != "}":
            line = server.stdout.readline()
            assert line, server.stderr.read() if server.stderr else "dashboard exited"
            lines.append(line.rstrip("\n"))
        page = json.loads("\n".join(lines))["url"]
        assert page.startswith("http://127.0.0.1:")

        browser.get(page)  # type: ignore[attr-defined]
        wait = WebDriverWait(browser, 60)
        wait.until(lambda d: d.find_element(By.ID, "live").text == "live")
        open_rows = browser.find_elements(By.CSS_SELECTOR, "#open-tasks tr[data-task]")
        assert [r.get_attribute("data-task") for r in open_rows] == [str(task.task_id)]
        assert "Charlie" in open_rows[0].text and "3 UNIT" in open_rows[0].text
        assert "0/0/2 of 2" in open_rows[0].text
        closed = browser.find_elements(By.CSS_SELECTOR, "#closed-tasks tr[data-task]")
        assert len(closed) == 2 and all("Alice" in r.text for r in closed)
        subs = browser.find_elements(By.CSS_SELECTOR, "#submissions tr[data-submission]")
        assert len(subs) == 2 and all("Accepted" in r.text and "Bob" in r.text for r in subs)
        bob_row = browser.find_element(By.CSS_SELECTOR, '#earnings tr[data-account="Bob"]')
        assert "4 UNIT" in bob_row.text  # two rounds at 2 UNIT
        card = browser.find_element(By.CSS_SELECTOR, '#jobs figure[data-job="digits"]')
        assert "2/2 rounds" in card.text
        points = card.find_element(By.CSS_SELECTOR, "polyline.federated").get_attribute("points")
        assert len(points.split()) == 3  # the initial model and two rounds
        assert len(card.find_elements(By.CSS_SELECTOR, "circle.update")) == 2
        _shot(browser, "1-after-job")

        # A new result lands: Dave works Charlie's task; the page follows without a reload.
        marker = browser.find_element(By.ID, "meta")
        dave = Client(url, account="//Dave", home=tmp_path / "dave")
        data = tmp_path / "data-dave"
        data.mkdir()
        (data / "samples.txt").write_text("a\nb\nc\n")
        report = ModelContributor(dave, store, home=tmp_path / "dave").work(task.task_id, data)
        assert report.status is SubmissionStatus.PendingValidation
        row = f'#submissions tr[data-submission="{report.submission_id}"]'
        wait.until(lambda d: any("PendingValidation" in r.text
                                 for r in d.find_elements(By.CSS_SELECTOR, row)))
        assert "Dave" in browser.find_element(By.CSS_SELECTOR, row).text
        assert "ResultSubmitted" in browser.find_element(By.ID, "last-event").text
        slots = browser.find_element(By.CSS_SELECTOR, f'#open-tasks tr[data-task="{task.task_id}"]')
        assert "0/1/1 of 2" in slots.text  # one result pending, one slot still free
        assert staleness_of(marker)(browser)  # the body was swapped in place ...
        assert browser.execute_script(
            "return performance.getEntriesByType('navigation').length") == 1  # ... no reload
        _shot(browser, "2-after-new-result")
        dave.close()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        charlie.close()
    assert server.returncode == 0
