// The model console's only script (served by the plugin; the page's CSP allows no inline script).
// A button sends its action as JSON with the console's header, same-origin, with Airflow's login cookie; the answer
// names the triggered run of <name>_serving, shown in #action-result with a link to it in Airflow.
"use strict";

function showResult(answer) {
  const old = document.getElementById("action-result");
  if (old) old.remove();
  const box = document.createElement("div");
  box.id = "action-result";
  box.className = "verdict info";
  box.dataset.dagRunId = answer.dag_run_id;
  box.append(`${answer.action} triggered as ${answer.user}: `);
  const link = document.createElement("a");
  link.href = answer.url;
  link.textContent = `${answer.dag_id} run ${answer.dag_run_id}`;
  box.append(link);
  document.getElementById("action-status").after(box);
}

async function act(button) {
  const root = document.getElementById("console");
  const status = document.getElementById("action-status");
  const version = button.dataset.version ? Number(button.dataset.version) : null;
  const what = button.dataset.action === "promote" ? `promote version ${version} to stable` : "roll back";
  status.textContent = `${what}: triggering…`;
  const response = await fetch(root.dataset.actionsUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", [root.dataset.header]: "1" },
    body: JSON.stringify({ action: button.dataset.action, version: version }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    status.textContent = `${what}: refused (${response.status}): ${answer.detail || response.statusText}`;
    return;
  }
  status.textContent = "";
  showResult(answer);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => act(button));
  }
});
