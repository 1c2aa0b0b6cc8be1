"""The operator's day in Airflow's UI, in Debian's Chromium: every step asserts what the page shows.

Sign in; trigger the penguins pipeline from its form with two parameters changed; watch the run in the grid until it
succeeds; open the Evaluator's "Report" link; see the new version ``stable`` on every instance in the model console;
with ``serving.approval: required``, approve the next candidate under "Required actions" and see the label move;
roll back from the console; sign in as a viewer and find no action buttons.

The tests run in file order and build on each other's runs (one Airflow and one fleet per module, as an operator's
session would). ``RUNWAY_SCREENSHOTS=1`` saves the main screens to ``docs/screenshots/`` (docs/operations.md).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator

import pytest
from selenium.webdriver.common.by import By

from pipeline_components.settings import Settings
from tests.airflow_stack import Api, wait
from tests.browser.browser import Browser, chromium
from tests.browser.conftest import PIPELINE, OperatorUi
from tests.helpers import model_store_versions

pytestmark = pytest.mark.e2e

DAG_ID = f"{PIPELINE}_pipeline"
SERVING_DAG_ID = f"{PIPELINE}_serving"
MODEL = "penguins_species"
CHANGED = {"train_steps": "70", "eval_lower_bound": "0.25"}  # two parameters, in two sections of the form


def pushed_versions(settings: Settings) -> list[int]:
    return [int(path.name) for path in model_store_versions(settings, MODEL)]


def console_labels(
    ui: OperatorUi, browser: Browser, what: str, done: Callable[[dict[str, list[str]]], bool]
) -> dict[str, list[str]]:
    """Reload the model console until ``done(labels)``: instance -> the labels it serves, as ``label=version``.

    The console asks the instances live, so a label that moved shows on the next load.
    """

    def labels() -> dict[str, list[str]] | None:
        browser.get(ui.airflow.base + f"/runway/console/{PIPELINE}")
        browser.find("#fleet")
        found = {
            row.get_attribute("data-instance") or "": [
                f"{span.get_attribute('data-label')}={span.get_attribute('data-version')}"
                for span in row.find_elements(By.CSS_SELECTOR, "span.label[data-label]")
            ]
            for row in browser.all("#fleet tr[data-instance]")
        }
        return found if found and done(found) else None

    return wait(f"the console to show {what}", labels, timeout=120, every=3)


def stable_everywhere(ui: OperatorUi, browser: Browser, version: int) -> dict[str, list[str]]:
    return console_labels(
        ui,
        browser,
        f"version {version} stable on both instances",
        lambda found: len(found) == 2 and all(f"stable={version}" in served for served in found.values()),
    )


def test_the_login_page_refuses_a_wrong_password_and_signs_the_operator_in(ui: OperatorUi) -> None:
    with chromium(shots=ui.shots) as browser:
        browser.get(ui.airflow.base + f"/dags/{DAG_ID}")
        browser.until("the login page", lambda d: "/auth/login" in d.current_url)
        browser.find("input[name=username]").send_keys("operator")
        browser.find("input[name=password]").send_keys("not-the-password")
        browser.shot("login")
        browser.find("button[type=submit]").click()
        browser.wait_text("Invalid credentials")
        assert "/auth/login" in browser.driver.current_url
        browser.login(ui.airflow.base, "operator", ui.airflow.passwords["operator"])
        assert "Dags" in browser.find("[data-testid=nav-dags-link]").text


@pytest.fixture(scope="module")
def triggered(ui: OperatorUi, operator: Browser) -> str:
    """The operator triggers the pipeline from its form, two parameters changed; the run id (from the URL)."""
    operator.get(ui.airflow.base + f"/dags/{DAG_ID}")
    operator.find("[data-testid=trigger-dag-button]").click()
    for section, parameter in (("Training", "train_steps"), ("Evaluation", "eval_lower_bound")):
        operator.find(f"button[data-part=item-trigger][id$=':trigger:{section}']").click()
        operator.fill(f"input[name=element_{parameter}]", CHANGED[parameter])
    operator.shot("trigger-form")
    operator.find("[data-testid=trigger-dag-submit]").click()
    # The UI goes to the new run's page: /dags/<dag>/runs/<run id>.
    url = operator.until(
        "the new run's page", lambda d: d.current_url if f"/dags/{DAG_ID}/runs/" in d.current_url else None
    )
    return urllib.parse.unquote(url.split("/runs/", 1)[1].split("/")[0])


def test_the_trigger_form_starts_a_run_with_the_parameters_changed_in_it(ui: OperatorUi, triggered: str) -> None:
    status, run = ui.airflow.api("operator").call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{triggered}")
    assert status == 200, run
    assert run["conf"]["train_steps"] == int(CHANGED["train_steps"])
    assert run["conf"]["eval_lower_bound"] == float(CHANGED["eval_lower_bound"])
    assert (run["triggered_by"], run["triggering_user_name"]) == ("ui", "operator"), run


@pytest.fixture(scope="module")
def succeeded(ui: OperatorUi, operator: Browser, triggered: str) -> str:
    """Watch the run's details (the grid beside them) until its state reads Success (reloaded as a user would)."""
    details = ui.airflow.base + f"/dags/{DAG_ID}/runs/{urllib.parse.quote(triggered)}/details"

    def finished() -> str | None:
        operator.get(details)
        state = operator.find("[data-testid=dag-run-state]", timeout=30).text.strip()
        return state if state in ("Success", "Failed") else None

    assert wait(f"run {triggered} to finish", finished, timeout=1200, every=5) == "Success"
    return triggered


def test_the_grid_shows_every_task_of_the_run_done(ui: OperatorUi, operator: Browser, succeeded: str) -> None:
    cells = {
        (cell.get_attribute("id") or "").removeprefix(f"grid-{succeeded}-")
        for cell in operator.all(f"a[id^='grid-{succeeded}-']")
    }
    assert {"check_params", "Trainer", "Evaluator", "Pusher"} <= cells, cells
    operator.shot("grid")


def test_the_evaluators_report_link_opens_its_verdict(ui: OperatorUi, operator: Browser, succeeded: str) -> None:
    operator.get(ui.airflow.base + f"/dags/{DAG_ID}/runs/{urllib.parse.quote(succeeded)}/tasks/Evaluator/details")
    link = operator.until("the Report link", lambda d: next(iter(d.find_elements(By.LINK_TEXT, "Report")), None))
    assert "/runway/reports/penguins/" in (link.get_attribute("href") or "")
    link.click()
    operator.until("the report page", lambda d: "/runway/reports/" in d.current_url)
    verdict = operator.find(".verdict").text
    assert "PASSED" in verdict.upper() and "blessed" in verdict, verdict
    page = operator.text()
    assert "sparse_categorical_accuracy" in page
    # The bound typed into the form is the one the Evaluator applied.
    assert f"'lower_bound': {CHANGED['eval_lower_bound']}" in page, page
    operator.shot("report")


def test_the_console_shows_the_new_version_stable_on_every_instance(
    ui: OperatorUi, operator: Browser, succeeded: str
) -> None:
    (version,) = pushed_versions(ui.settings)
    served = stable_everywhere(ui, operator, version)
    assert set(served) == {"serving-0", "serving-1"}
    assert operator.all(f"#versions tr[data-version='{version}'] span.label[data-label=stable]")
    run_row = operator.find(f"#runs tr[data-run-id='{succeeded}']")
    verdicts = {
        cell.get_attribute("data-gate"): cell.get_attribute("data-verdict")
        for cell in run_row.find_elements(By.CSS_SELECTOR, "td[data-gate]")
    }
    assert verdicts["evaluation"] == "passed" and verdicts["push"] == "passed", verdicts
    assert operator.all("#trend img, #trend svg"), "no chart in the trend section"
    operator.shot("console")


@pytest.fixture(scope="module")
def awaiting_approval(ui: OperatorUi, succeeded: str) -> Iterator[tuple[str, int]]:
    """A second run, compiled with ``serving.approval=required``: its candidate waits as canary for a person."""
    api = ui.airflow.api("operator")
    ui.compile(**{"serving.approval": "required"})
    wait(
        "the DAG processor to add rollout.approve",
        lambda: api.call("GET", f"/api/v2/dags/{DAG_ID}/tasks/rollout.approve")[0] == 200,
        timeout=180,
    )
    # The same span again: repush asks for the retrained model to be pushed (else "already served").
    run_id = api.trigger(DAG_ID, {"train_steps": 80, "repush": True})
    asking = f"run {run_id} to ask for an approval"
    wait(asking, lambda: _approve_state(api, run_id) == "awaiting_input", timeout=1200, every=3)
    handled = f"the scheduler to handle run {run_id}'s pause (Airflow 3.3's approval race)"
    wait(handled, lambda: ui.airflow.paused_task_handled(DAG_ID, "rollout.approve", run_id), timeout=120, every=1)
    (_, candidate) = pushed_versions(ui.settings)
    yield run_id, candidate


def _approve_state(api: Api, run_id: str) -> str | None:
    status, task = api.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/rollout.approve")
    assert status in (200, 404), task
    if api.run_state(DAG_ID, run_id) is not None:
        raise AssertionError(f"run {run_id} ended before asking for an approval: {json.dumps(task)}")
    return task.get("state") if status == 200 else None


def test_a_pending_promotion_is_approved_under_required_actions_and_the_label_moves(
    ui: OperatorUi, operator: Browser, awaiting_approval: tuple[str, int]
) -> None:
    run_id, candidate = awaiting_approval
    previous = pushed_versions(ui.settings)[0]
    console_labels(
        ui,
        operator,
        f"version {candidate} canary beside stable {previous} on both instances",
        lambda found: (
            len(found) == 2
            and all({f"stable={previous}", f"canary={candidate}"} <= set(served) for served in found.values())
        ),
    )
    operator.get(ui.airflow.base + "/required_actions?response_received=false")
    request = operator.find(f"a[href*='/runs/{run_id}/tasks/rollout.approve/required_actions']")
    operator.wait_text(f"Promote version {candidate}")
    operator.shot("required-actions")
    request.click()
    approve = operator.find("[data-testid='hitl-option-Approve']")
    operator.find("[data-testid='hitl-option-Reject']")
    for version in (candidate, previous):  # the request names the candidate and the stable it would replace
        operator.wait_text(str(version))
    operator.shot("approval")
    approve.click()
    api = ui.airflow.api("operator")
    assert wait(f"run {run_id}", lambda: api.run_state(DAG_ID, run_id), timeout=600, every=3) == "success"
    served = stable_everywhere(ui, operator, candidate)
    assert not any("canary" in label for labels in served.values() for label in labels), served


def test_the_console_rolls_back_to_the_previous_stable(
    ui: OperatorUi, operator: Browser, awaiting_approval: tuple[str, int]
) -> None:
    previous = pushed_versions(ui.settings)[0]
    # Back to the shipped configuration (approval: none): a rollback goes through without a person's decision.
    api = ui.airflow.api("operator")
    ui.compile()
    wait(
        "the DAG processor to drop rollout.approve",
        lambda: api.call("GET", f"/api/v2/dags/{SERVING_DAG_ID}/tasks/rollout.approve")[0] == 404,
        timeout=180,
    )
    operator.get(ui.airflow.base + f"/runway/console/{PIPELINE}")
    operator.find("button[data-action=rollback]").click()
    result = operator.find("#action-result[data-dag-run-id]")
    run_id = result.get_attribute("data-dag-run-id") or ""
    assert wait(f"{SERVING_DAG_ID} run {run_id}", lambda: api.run_state(SERVING_DAG_ID, run_id), 600, 3) == "success"
    status, run = api.call("GET", f"/api/v2/dags/{SERVING_DAG_ID}/dagRuns/{run_id}")
    assert status == 200 and run["conf"] == {"action": "rollback", "version": None}, run
    stable_everywhere(ui, operator, previous)


def test_a_viewer_sees_the_console_without_any_action_button(ui: OperatorUi, succeeded: str) -> None:
    with ui.browser("watcher") as browser:
        browser.get(ui.airflow.base + f"/runway/console/{PIPELINE}")
        assert browser.find("#versions tr[data-version]")
        assert browser.find("#fleet tr[data-instance]")
        assert browser.all("button[data-action]") == []
        browser.shot("console-viewer")
