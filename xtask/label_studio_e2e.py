#!/usr/bin/env python3
"""The Label Studio side of `cargo xtask e2e-label-studio`.

The xtask starts `baal serve` and a fresh Label Studio, then runs this script with the
Label Studio venv's python. It drives Label Studio through its REST API (standard library
only: urllib) and checks that what it does reaches baal serve:

1. the first model of baal serve (trained on the seed labels) is ready;
2. a project with the Fashion-MNIST classes as `<Choices>`, and tasks whose data is an image
   URL of baal serve and the item's index;
3. baal serve connected as the project's ML backend, with the webhook Label Studio makes;
4. predictions (class, score, model version) retrieved through the data manager, and the data
   manager's order by prediction score (most informative first);
5. annotations created through Label Studio reach baal serve's labels and journal; a skipped
   task labels nothing, an updated annotation changes the label, a deleted one takes it back,
   a second annotator's skip, annotation or deleted annotation on a labelled task counts only
   for the annotation that gave the label, predictions accepted in bulk in the data manager
   label their items;
6. the labels start a retrain, so does Label Studio's train call (START_TRAINING), and
   predictions retrieved then carry the new model version.

Each check prints `ok` or `FAIL`; the exit status is non-zero when one failed.
"""

import argparse
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


class CheckFailed(Exception):
    pass


def http(method, url, body=None, headers=None, timeout=300):
    """Sends a request; returns (status, parsed JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    text = raw.decode("utf-8", "replace")
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, text


class Run:
    def __init__(self, args):
        self.ls = args.ls_url.rstrip("/")
        self.ls_headers = {"Authorization": f"Token {args.ls_token}"}
        self.baal = args.baal_url.rstrip("/")
        self.baal_token = args.baal_token
        self.state = args.state
        self.n_tasks = args.tasks
        self.n_annotate = args.annotate
        self.timeout = args.timeout
        self.checks = 0

    # --- helpers -------------------------------------------------------------------------

    def ok(self, what):
        self.checks += 1
        print(f"  ok    {what}", flush=True)

    def check(self, condition, what, detail=""):
        if not condition:
            raise CheckFailed(f"{what}{': ' + detail if detail else ''}")
        self.ok(what)

    def step(self, title):
        print(f"\n== {title}", flush=True)

    def ls_call(self, method, path, body=None, expect=(200, 201, 204)):
        status, answer = http(method, self.ls + path, body, self.ls_headers)
        if status not in expect:
            raise CheckFailed(f"Label Studio {method} {path}: HTTP {status}: {str(answer)[:600]}")
        return answer

    def baal_status(self):
        status, answer = http("GET", f"{self.baal}/api/status?token={self.baal_token}")
        if status != 200:
            raise CheckFailed(f"baal serve GET /api/status: HTTP {status}: {answer}")
        return answer

    def journal(self):
        """The events of baal serve's label journal (`<crc> <json>` lines)."""
        events = []
        with open(f"{self.state}/labels.journal", encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line:
                    events.append(json.loads(line.split(" ", 1)[1]))
        return events

    def wait(self, what, condition, timeout=None, every=2.0):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise CheckFailed(f"timed out waiting for {what}")
            time.sleep(every)

    def predictions(self, project):
        answer = self.ls_call("GET", f"/api/predictions/?project={project}")
        return answer if isinstance(answer, list) else answer.get("results", [])

    def retrieve_predictions(self, project):
        return self.ls_call(
            "POST",
            f"/api/dm/actions/?id=retrieve_tasks_predictions&project={project}",
            {"selectedItems": {"all": True, "excluded": []}},
        )

    # --- the run -------------------------------------------------------------------------

    def run(self):
        self.step("baal serve: the first model")
        status = self.wait(
            "baal serve's first model (trained on the seed labels)",
            lambda: (s := self.baal_status())["model_version"] >= 1 and s,
        )
        labelled_at_start = status["n_labelled"]
        round1 = status["history"][-1]
        self.ok(
            f"model v{status['model_version']} on {round1['n_labelled']} seed labels "
            f"(test accuracy {round1['accuracy']}), {status['n_items']} items, "
            f"{labelled_at_start} labelled"
        )
        self.check(status["classes"] == CLASSES, "baal serve's classes are Fashion-MNIST's")

        self.step("Label Studio: project and tasks")
        version = self.ls_call("GET", "/api/version")
        self.ok(f"Label Studio {version.get('release')} answers with the legacy API token")
        choices = "\n".join(f'    <Choice value="{c}"/>' for c in CLASSES)
        label_config = (
            "<View>\n"
            '  <Image name="image" value="$image"/>\n'
            '  <Choices name="choice" toName="image" choice="single" showInLine="true">\n'
            f"{choices}\n"
            "  </Choices>\n"
            "</View>"
        )
        project = self.ls_call(
            "POST",
            "/api/projects/",
            {"title": "baal serve e2e", "label_config": label_config},
        )["id"]
        self.ok(f'project {project} with <Choices name="choice" toName="image"> of 10 classes')
        items = list(range(self.n_tasks))
        tasks = [
            {
                "image": f"{self.baal}/api/items/{i}/image?token={self.baal_token}",
                "item": i,
            }
            for i in items
        ]
        imported = self.ls_call("POST", f"/api/projects/{project}/import", tasks)
        self.check(
            imported.get("task_count") == len(tasks),
            f"{len(tasks)} tasks imported (data: image URL of baal serve, item)",
            str(imported),
        )
        task_list = self.ls_call("GET", f"/api/tasks/?project={project}&page_size=1000")
        task_list = task_list["tasks"] if isinstance(task_list, dict) else task_list
        task_of_item = {t["data"]["item"]: t["id"] for t in task_list}
        item_of_task = {v: k for k, v in task_of_item.items()}
        self.check(len(task_of_item) == len(tasks), "every item has its task")
        status, _ = http("GET", tasks[0]["image"])
        self.check(status == 200, "a task's image URL answers")

        self.step("Label Studio: connect baal serve as the ML backend")
        backend_url = f"{self.baal}/ls/{self.baal_token}"
        backend = self.ls_call(
            "POST",
            "/api/ml",
            {"url": backend_url, "project": project, "title": "baal serve"},
        )
        ml = backend["id"]
        backend = self.ls_call("GET", f"/api/ml/{ml}")
        self.check(
            backend.get("state") == "CO",
            f"ML backend {ml} connected (state {backend.get('state')}, "
            f"model_version {backend.get('model_version')})",
            str(backend),
        )
        hooks = self.ls_call("GET", f"/api/webhooks/?project={project}")
        hook_urls = [h["url"] for h in hooks]
        self.check(
            f"{backend_url}/webhook" in hook_urls,
            "Label Studio made the webhook <backend URL>/webhook",
            str(hook_urls),
        )

        self.step("predictions")
        self.retrieve_predictions(project)
        predictions = self.predictions(project)
        self.check(
            len({p["task"] for p in predictions}) == len(tasks),
            f"every task has a prediction ({len(predictions)} predictions)",
        )
        by_task = {p["task"]: p for p in predictions}
        for p in predictions:
            choice = p["result"][0]["value"]["choices"][0] if p["result"] else None
            if choice not in CLASSES or not p["model_version"].startswith("baal-v"):
                raise CheckFailed(f"a prediction that is not a class of baal's model: {p}")
        scored = [p for p in predictions if p["score"] is not None]
        self.check(
            len(scored) >= self.n_annotate,
            f"{len(scored)} predictions have a score (unlabelled items; "
            f"{len(predictions) - len(scored)} are seed labels, without score)",
        )
        scored.sort(key=lambda p: -p["score"])
        print("    task  item  predicted      score     model_version")
        for p in scored[:5]:
            print(
                f"    {p['task']:>4}  {item_of_task[p['task']]:>4}  "
                f"{p['result'][0]['value']['choices'][0]:<13}  {p['score']:.5f}  "
                f"{p['model_version']}"
            )
        # The data manager's "Prediction score" is the score of the project's model version,
        # which Label Studio sets to the backend's title on connect: select baal's version.
        current = scored[0]["model_version"]
        self.ls_call("PATCH", f"/api/projects/{project}/", {"model_version": current})
        query = urllib.parse.quote(json.dumps({"ordering": ["-tasks:predictions_score"]}))
        ordered = self.ls_call(
            "GET", f"/api/tasks/?project={project}&fields=all&page_size=5&query={query}"
        )
        ordered = ordered["tasks"] if isinstance(ordered, dict) else ordered
        self.check(
            [t["id"] for t in ordered] == [p["task"] for p in scored[:5]],
            f"the data manager sorts tasks by score, most informative first (project "
            f"model_version {current}): tasks {[t['id'] for t in ordered]}, scores "
            f"{[round(t['predictions_score'], 5) for t in ordered]}",
            str([(t["id"], t.get("predictions_score")) for t in ordered]),
        )

        self.step(f"annotations: {self.n_annotate} through Label Studio's API")
        model_before = self.baal_status()["model_version"]
        chosen = scored[: self.n_annotate]
        annotations = {}
        for p in chosen:
            choice = p["result"][0]["value"]["choices"][0]
            annotation = self.ls_call(
                "POST",
                f"/api/tasks/{p['task']}/annotations/",
                {
                    "result": [
                        {
                            "from_name": "choice",
                            "to_name": "image",
                            "type": "choices",
                            "value": {"choices": [choice]},
                        }
                    ],
                    "lead_time": 1.5,
                },
            )
            annotations[p["task"]] = (annotation["id"], choice)
        status = self.baal_status()
        self.check(
            status["n_labelled"] == labelled_at_start + self.n_annotate,
            f"baal serve holds {status['n_labelled']} labels "
            f"({labelled_at_start} + {self.n_annotate} from Label Studio)",
            f"expected {labelled_at_start + self.n_annotate}",
        )
        ls_events = [
            e for e in self.journal() if e.get("source") == "label-studio" and e["event"] == "label"
        ]
        annotated = {item_of_task[t]: a for t, a in annotations.items()}
        journal_items = {e["item"]: e for e in ls_events}
        self.check(
            all(
                item in journal_items
                and journal_items[item]["annotation"] == aid
                and CLASSES[journal_items[item]["class"]] == choice
                for item, (aid, choice) in annotated.items()
            ),
            f"labels.journal holds the {len(annotated)} label-studio events "
            f"(item, class, annotation id, annotator {ls_events[0]['annotator'] if ls_events else '?'})",
            json.dumps(ls_events)[:800],
        )

        self.step("task skipped (a cancelled annotation)")
        skipped = scored[self.n_annotate]
        events = len(self.journal())
        self.ls_call(
            "POST",
            f"/api/tasks/{skipped['task']}/annotations/",
            {"result": [], "was_cancelled": True},
        )
        status = self.baal_status()
        self.check(
            status["n_labelled"] == labelled_at_start + self.n_annotate
            and len(self.journal()) == events,
            f"a skip (task {skipped['task']}) labels nothing",
        )

        self.step("annotation updated (ANNOTATION_UPDATED)")
        task, (aid, old) = next(iter(annotations.items()))
        item = item_of_task[task]
        new = next(c for c in CLASSES if c != old)
        self.ls_call(
            "PATCH",
            f"/api/annotations/{aid}/",
            {
                "result": [
                    {
                        "from_name": "choice",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": [new]},
                    }
                ]
            },
        )
        last = [e for e in self.journal() if e["item"] == item][-1]
        self.check(
            last["event"] == "label" and CLASSES[last["class"]] == new,
            f"item {item} (task {task}, annotation {aid}): {old} -> {new} in the journal",
            json.dumps(last),
        )
        status = self.baal_status()
        self.check(
            status["n_labelled"] == labelled_at_start + self.n_annotate,
            "a changed label is not a new one (n_labelled unchanged)",
        )

        self.step("annotation deleted (ANNOTATIONS_DELETED)")
        task, (aid, _) = list(annotations.items())[1]
        item = item_of_task[task]
        self.ls_call("DELETE", f"/api/annotations/{aid}/")
        deleted_task, deleted_item = task, item
        last = [e for e in self.journal() if e["item"] == item][-1]
        self.check(
            last["event"] == "unlabel",
            f"item {item} (task {task}, annotation {aid}) unlabelled in the journal",
            json.dumps(last),
        )
        status = self.baal_status()
        self.check(
            status["n_labelled"] == labelled_at_start + self.n_annotate - 1,
            f"baal serve holds {status['n_labelled']} labels after the delete",
        )

        self.step("a second annotation on a labelled task (another annotator)")
        task, (first, old) = list(annotations.items())[2]
        item = item_of_task[task]
        labelled = status["n_labelled"]

        def last_event():
            return [e for e in self.journal() if e["item"] == item][-1]

        self.ls_call(
            "POST", f"/api/tasks/{task}/annotations/", {"result": [], "was_cancelled": True}
        )
        last = last_event()
        self.check(
            last["event"] == "label"
            and last["annotation"] == first
            and self.baal_status()["n_labelled"] == labelled,
            f"another annotator's skip of task {task} leaves item {item} labelled {old}",
            json.dumps(last),
        )
        new = next(c for c in CLASSES if c not in (old, CLASSES[0]))
        second = self.ls_call(
            "POST",
            f"/api/tasks/{task}/annotations/",
            {
                "result": [
                    {
                        "from_name": "choice",
                        "to_name": "image",
                        "type": "choices",
                        "value": {"choices": [new]},
                    }
                ]
            },
        )["id"]
        last = last_event()
        self.check(
            last["event"] == "label"
            and last["annotation"] == second
            and CLASSES[last["class"]] == new,
            f"the latest annotation ({second}) labels item {item}: {old} -> {new}",
            json.dumps(last),
        )
        self.ls_call("DELETE", f"/api/annotations/{first}/")
        last = last_event()
        self.check(
            last["event"] == "label"
            and last["annotation"] == second
            and self.baal_status()["n_labelled"] == labelled,
            f"deleting the older annotation ({first}) leaves item {item} labelled {new}",
            json.dumps(last),
        )

        self.step("predictions accepted as annotations (ANNOTATIONS_CREATED)")
        accepted = scored[self.n_annotate + 1 : self.n_annotate + 3]
        self.ls_call(
            "POST",
            f"/api/dm/actions/?id=predictions_to_annotations&project={project}",
            {
                "selectedItems": {"all": False, "included": [p["task"] for p in accepted]},
                "model_version": current,
            },
        )
        status = self.baal_status()
        journal = self.journal()
        self.check(
            status["n_labelled"] == labelled_at_start + self.n_annotate - 1 + len(accepted)
            and all(
                any(
                    e["event"] == "label"
                    and e["item"] == item_of_task[p["task"]]
                    and CLASSES[e["class"]] == p["result"][0]["value"]["choices"][0]
                    for e in journal
                )
                for p in accepted
            ),
            f'the data manager\'s "create annotations from predictions" on tasks '
            f"{[p['task'] for p in accepted]} labels their items with the predicted classes "
            f"({status['n_labelled']} labels)",
        )

        self.step("retrain and new predictions")
        status = self.wait(
            "the retrains started by the Label Studio labels",
            lambda: (s := self.baal_status())["model_version"] > model_before
            and not s["training"]
            and s,
        )
        last_round = status["history"][-1]
        self.ok(
            f"the labels started retrains (one per 5 new labels): model v{status['model_version']} on "
            f"{last_round['n_labelled']} labels (test accuracy {last_round['accuracy']}, "
            f"{last_round['seconds']:.1f} s)"
        )
        # Label Studio's "Start training" (START_TRAINING webhook) trains on the labels as they
        # are now, the deleted annotation's item back in the pool.
        self.ls_call("POST", f"/api/ml/{ml}/train", {})
        before = status["model_version"]
        status = self.wait(
            "the retrain asked for by Label Studio (START_TRAINING)",
            lambda: (s := self.baal_status())["model_version"] > before and not s["training"] and s,
        )
        last_round = status["history"][-1]
        self.ok(
            f"Label Studio's train call started a retrain: model v{status['model_version']} on "
            f"{last_round['n_labelled']} labels (test accuracy {last_round['accuracy']})"
        )
        self.retrieve_predictions(project)
        current = f"baal-v{status['model_version']}"
        latest = [p for p in self.predictions(project) if p["model_version"] == current]
        self.check(
            len({p["task"] for p in latest}) == len(tasks),
            f"retrieved predictions of {current} for every task",
        )
        back = [p for p in latest if p["task"] == deleted_task]
        self.check(
            bool(back) and back[0]["score"] is not None,
            f"the item of the deleted annotation ({deleted_item}) is scored again "
            f"(score {back[0]['score'] if back else float('nan'):.5f})",
            str(back),
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ls-url", required=True)
    parser.add_argument("--ls-token", required=True)
    parser.add_argument("--baal-url", required=True)
    parser.add_argument("--baal-token", required=True)
    parser.add_argument("--state", required=True, help="baal serve's state folder")
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--annotate", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for a model")
    run = Run(parser.parse_args())
    try:
        run.run()
    except CheckFailed as failure:
        print(f"  FAIL  {failure}", flush=True)
        print(f"\nFAIL after {run.checks} checks")
        return 1
    print(f"\nPASS: {run.checks} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
