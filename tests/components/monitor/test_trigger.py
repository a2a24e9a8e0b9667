"""The retraining trigger through the real kfp.Client against a local stand-in of the KFP API server."""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from shopfloor.common.errors import ShopfloorError
from shopfloor.components.monitor.trigger import start_retraining_run


class KfpApi(BaseHTTPRequestHandler):
    """Answers the v2beta1 routes kfp.Client uses to find a pipeline, an experiment and create a run."""

    registered = {"predictive-maintenance": ("pipe-1", ["ver-old", "ver-new"])}
    experiments: dict[str, str] = {}
    runs: list[dict] = []

    def log_message(self, *args) -> None:
        pass

    def _answer(self, body: dict, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _filter_value(self, query: dict) -> str | None:
        raw = query.get("filter", [None])[0]
        if not raw:
            return None
        predicate = json.loads(raw)["predicates"][0]
        return predicate.get("string_value") or predicate.get("stringValue")

    def do_GET(self) -> None:
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.endswith("/healthz"):
            return self._answer({"multi_user": False})
        if url.path == "/apis/v2beta1/pipelines":
            name = self._filter_value(query)
            found = [{"pipeline_id": pid, "display_name": n} for n, (pid, _) in self.registered.items() if n == name]
            return self._answer({"pipelines": found, "total_size": len(found)})
        if url.path.startswith("/apis/v2beta1/pipelines/") and url.path.endswith("/versions"):
            pipeline_id = url.path.split("/")[4]
            versions = next(v for pid, v in self.registered.values() if pid == pipeline_id)
            newest_first = [{"pipeline_version_id": v, "pipeline_id": pipeline_id} for v in reversed(versions)]
            return self._answer({"pipeline_versions": newest_first[: int(query.get("page_size", ["10"])[0])]})
        if url.path == "/apis/v2beta1/experiments":
            name = self._filter_value(query)
            found = [{"experiment_id": eid, "display_name": n} for n, eid in self.experiments.items() if n == name]
            return self._answer({"experiments": found, "total_size": len(found)})
        return self._answer({"error": f"no route {url.path}"}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])) or b"{}")
        if self.path.startswith("/apis/v2beta1/experiments"):
            self.experiments[body["display_name"]] = f"exp-{len(self.experiments) + 1}"
            return self._answer({"experiment_id": self.experiments[body["display_name"]], **body})
        if self.path.startswith("/apis/v2beta1/runs"):
            self.runs.append(body)
            return self._answer({"run_id": f"run-{len(self.runs)}", **body})
        return self._answer({"error": f"no route {self.path}"}, 404)


@pytest.fixture
def kfp_api():
    KfpApi.experiments, KfpApi.runs = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), KfpApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_retrain_starts_the_newest_version_of_the_registered_pipeline(kfp_api: str) -> None:
    import kfp

    client = kfp.Client(host=kfp_api)
    arguments = {"sensors_uri": "s3://plant/sensors.csv", "events_uri": "s3://plant/events.csv"}
    run_id = start_retraining_run(
        "predictive-maintenance", "shopfloor-retraining", arguments, "pm-retrain", client=client
    )
    assert run_id == "run-1"
    (run,) = KfpApi.runs
    assert run["pipeline_version_reference"] == {"pipeline_id": "pipe-1", "pipeline_version_id": "ver-new"}
    assert run["display_name"] == "pm-retrain"
    assert run["runtime_config"]["parameters"] == arguments
    assert run["experiment_id"] == KfpApi.experiments["shopfloor-retraining"]


def test_an_unregistered_pipeline_is_a_clear_error(kfp_api: str) -> None:
    import kfp

    with pytest.raises(ShopfloorError, match="no registered pipeline named 'anomaly-detection'"):
        start_retraining_run("anomaly-detection", "x", {}, "r", client=kfp.Client(host=kfp_api))
    assert KfpApi.runs == []
