"""The Open Inference Protocol (V2) over gRPC (``--grpc-port``), as a client sees it: the REST answers, refusals
in one line, the same model path (site models, thresholds, payload logs, metrics), bound where told.

The fast tests run the app in this process (its lifespan starts the gRPC server, as in the real server); the slow
ones start ``python -m shopfloor.serving.server`` and talk to it over the network.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as pb_grpc

from shopfloor.components.deploy.local_target import free_port
from shopfloor.contracts.payload_log import read_payload_logs
from shopfloor.serving.auth import Authorizer
from shopfloor.serving.server import build_app, load_window_model
from tests.serving.test_http import post
from tests.serving.test_metrics import parse, value
from tests.serving.test_server import v2_body

NAME = "pm-grpc"  # a name of its own: the request metrics live in the process's default registry
THRESHOLDS = {"site-a": 0.3, "site-b": 0.01}  # the global model at each site's threshold: site-b alarms on anything
MAX_BYTES = 200_000
_OUTPUT_DTYPES = {"FP32": np.float32, "BOOL": np.bool_}


@pytest.fixture(scope="module")
def fleet_version(published_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The published model as a fleet's, so the server also answers ``NAME-site-a`` and ``NAME-site-b``."""
    version = tmp_path_factory.mktemp("grpc-store") / "pm" / published_model.name
    shutil.copytree(published_model, version)
    info_path = version / "model" / "shopfloor_model.json"
    info = json.loads(info_path.read_text())
    models = {"global": {site: {"threshold": {"value": threshold}} for site, threshold in THRESHOLDS.items()}}
    info["fleet"] = {"strategy": "global", "sites": list(THRESHOLDS), "strategies": ["global"], "models": models}
    info_path.write_text(json.dumps(info))
    return version


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("grpc-payload-logs")


@pytest.fixture(scope="module")
def served(fleet_version: Path, logs: Path):
    model = load_window_model(str(fleet_version), NAME, payload_log_uri=str(logs), payload_spool=logs / "spool")
    model.max_batch = model.spec.max_batch = 64
    return model


@pytest.fixture(scope="module")
def app(served) -> Iterator[tuple[TestClient, int]]:
    """The app with its gRPC server (started by its lifespan, as in the real server); the client and gRPC port."""
    port = free_port()
    application = build_app(served, payload_logger=served.payload_logger, max_body_bytes=MAX_BYTES, grpc_port=port)
    with TestClient(application) as client:
        yield client, port


@pytest.fixture(scope="module")
def client(app) -> TestClient:
    return app[0]


@pytest.fixture(scope="module")
def stub(app) -> Iterator:
    with grpc.insecure_channel(f"127.0.0.1:{app[1]}") as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


@pytest.fixture(scope="module")
def windows(trained_windows) -> np.ndarray:
    batch = trained_windows.part("test").x[:4].astype(np.float32)
    batch[1, 5, 2] = np.nan  # a missing reading: NaN over gRPC, null in REST JSON
    return batch


def infer_request(model: str, windows: np.ndarray, *, raw: bool = False, **tensor) -> pb.ModelInferRequest:
    """A ModelInfer of ``windows``: FP32 contents, or raw little-endian bytes."""
    spec = {"name": "window", "datatype": "FP32", "shape": list(windows.shape), **tensor}
    if raw:
        return pb.ModelInferRequest(
            model_name=model,
            inputs=[pb.ModelInferRequest.InferInputTensor(**spec)],
            raw_input_contents=[windows.astype("<f4").tobytes()],
        )
    contents = pb.InferTensorContents(fp32_contents=windows.ravel().tolist())
    return pb.ModelInferRequest(
        model_name=model, inputs=[pb.ModelInferRequest.InferInputTensor(**spec, contents=contents)]
    )


def grpc_outputs(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Each output as an array, from typed contents or raw output contents."""
    arrays = {}
    for index, output in enumerate(response.outputs):
        if response.raw_output_contents:
            values = np.frombuffer(response.raw_output_contents[index], dtype=_OUTPUT_DTYPES[output.datatype])
        elif output.datatype == "BOOL":
            values = np.array(output.contents.bool_contents)
        else:
            values = np.array(output.contents.fp32_contents, dtype=np.float32)
        arrays[output.name] = values.reshape(list(output.shape))
    return arrays


def rest_outputs(answer: dict) -> dict[str, np.ndarray]:
    return {o["name"]: np.array(o["data"], dtype=_OUTPUT_DTYPES[o["datatype"]]) for o in answer["outputs"]}


def refusal(call, *args, **kwargs) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        call(*args, timeout=30, **kwargs)
    return error.value.code(), error.value.details()


def test_health_and_metadata(stub, served) -> None:
    assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
    assert "model_repository_extension" in stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10).extensions
    for name in (NAME, f"{NAME}-site-a", f"{NAME}-site-b"):
        assert stub.ModelReady(pb.ModelReadyRequest(name=name), timeout=10).ready
        metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=name), timeout=10)
        assert metadata.name == name
        assert [(i.name, i.datatype, list(i.shape)) for i in metadata.inputs] == [("window", "FP32", [-1, 24, 7])]
        assert [o.name for o in metadata.outputs] == ["failure_probability", "fails_within_horizon", "rul_hours"]


@pytest.mark.parametrize("model", [NAME, f"{NAME}-site-a", f"{NAME}-site-b"])
def test_contents_and_raw_answer_as_rest_v2(stub, client: TestClient, windows: np.ndarray, model: str) -> None:
    response = client.post(f"/v2/models/{model}/infer", json=v2_body(windows))  # null for the missing reading
    assert response.status_code == 200, response.text
    rest = rest_outputs(response.json())
    typed = stub.ModelInfer(infer_request(model, windows), timeout=30)
    raw = stub.ModelInfer(infer_request(model, windows, raw=True), timeout=30)
    assert typed.model_name == model and typed.model_version == "v-test0000001" and not typed.raw_output_contents
    assert len(raw.raw_output_contents) == 3, "raw inputs get raw outputs"
    for answer in (grpc_outputs(typed), grpc_outputs(raw)):
        assert answer.keys() == rest.keys()
        for name, values in rest.items():
            np.testing.assert_allclose(answer[name], values, rtol=0, atol=1e-6, err_msg=name)
        assert np.isfinite(answer["rul_hours"]).all(), "a missing reading must not poison the output"
    threshold = THRESHOLDS.get(model.removeprefix(f"{NAME}-"), 0.3)
    alarms = grpc_outputs(typed)["fails_within_horizon"]
    assert (alarms == (grpc_outputs(typed)["failure_probability"] >= threshold)).all(), "the site's own threshold"


def _tensor(values: list | None = None, field: str = "fp32_contents", raw: bytes | None = None, **spec):
    """A ModelInfer of one tensor (``window`` FP32 [1, 24, 7] unless told) with ``values`` in ``field``, or raw."""
    spec = {"name": "window", "datatype": "FP32", "shape": [1, 24, 7], **spec}
    if raw is not None:
        tensor = pb.ModelInferRequest.InferInputTensor(**spec)
        return pb.ModelInferRequest(model_name=NAME, inputs=[tensor], raw_input_contents=[raw])
    contents = pb.InferTensorContents(**{field: [0.5] * 168 if values is None else values})
    return pb.ModelInferRequest(
        model_name=NAME, inputs=[pb.ModelInferRequest.InferInputTensor(**spec, contents=contents)]
    )


BAD = {  # request, message (a REST V2 400 says the same, where REST can send it)
    "wrong dtype": (_tensor([1] * 168, "int64_contents", datatype="INT64"), "datatype INT64, expected FP32 or FP64"),
    "wrong shape": (_tensor([0.5] * 144, shape=[1, 24, 6]), "shape [1, 24, 6], expected"),
    "count mismatch": (_tensor([0.5] * 100), "100 values for shape [1, 24, 7]"),
    "values in the wrong field": (_tensor(field="fp64_contents"), "0 values for shape [1, 24, 7]"),
    "beyond float32": (
        _tensor([0.5] * 20 + [-1e39] + [0.5] * 147, "fp64_contents", datatype="FP64"),
        "data[20]: -1e+39 is beyond float32",
    ),
    "not a datatype": (_tensor(datatype="FLOAT\n32"), "datatype FLOAT\\n32, expected one of BOOL"),
    "ragged raw bytes": (_tensor(raw=b"\0" * 671), "raw_input_contents[0] (window): 671 bytes, not a whole number"),
    "raw bytes for another shape": (_tensor(raw=np.zeros(100, "<f4").tobytes()), "100 values for shape [1, 24, 7]"),
    "contents beside raw": (
        pb.ModelInferRequest(model_name=NAME, inputs=_tensor().inputs, raw_input_contents=[b"\0" * 672]),
        "contents field must not be specified when using raw_input_contents",
    ),
    "two inputs": (
        pb.ModelInferRequest(model_name=NAME, inputs=list(_tensor().inputs) * 2),
        "expected one input 'window'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_requests_are_invalid_argument_in_one_line(stub, case: str) -> None:
    request, message = BAD[case]
    code, details = refusal(stub.ModelInfer, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT, details
    assert message in details and "\n" not in details and "Traceback" not in details


def test_a_refusal_says_what_rest_says(stub, client: TestClient) -> None:
    for tensor in ({"datatype": "INT64"}, {"shape": [1, 24, 6]}, {"shape": [1, 2, 24, 7]}):
        body = {"inputs": [{"name": "window", "datatype": "FP32", "shape": [1, 24, 7], "data": [0.5] * 168, **tensor}]}
        rest = client.post(f"/v2/models/{NAME}/infer", json=body)
        assert rest.status_code == 400
        assert refusal(stub.ModelInfer, _tensor(**tensor))[1] == rest.json()["error"]


def test_more_windows_than_max_batch_are_resource_exhausted(stub) -> None:
    code, details = refusal(stub.ModelInfer, infer_request(NAME, np.zeros((65, 24, 7), np.float32)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "65 windows in one request, the limit is 64" in details
    answer = stub.ModelInfer(infer_request(NAME, np.zeros((64, 24, 7), np.float32), raw=True), timeout=30)
    assert grpc_outputs(answer)["failure_probability"].shape == (64,)


def test_a_message_over_the_body_limit_is_refused_by_grpc(stub) -> None:
    code, details = refusal(stub.ModelInfer, _tensor(raw=b"\0" * (MAX_BYTES + 1)))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and str(MAX_BYTES) in details


def test_an_unknown_model_is_not_found(stub, windows: np.ndarray) -> None:
    for call, request in [
        (stub.ModelInfer, infer_request("no-such-model", windows)),
        (stub.ModelReady, pb.ModelReadyRequest(name="no-such-model")),
        (stub.ModelMetadata, pb.ModelMetadataRequest(name="no-such-model")),
    ]:
        code, details = refusal(call, request)
        assert code == grpc.StatusCode.NOT_FOUND and "no-such-model" in details


def test_the_repository_rpcs_are_refused_unless_enabled(stub) -> None:
    admin = (("authorization", "Bearer anything"),)
    for call, request in [
        (stub.RepositoryModelUnload, pb.RepositoryModelUnloadRequest(model_name=NAME)),
        (stub.RepositoryModelLoad, pb.RepositoryModelLoadRequest(model_name="other")),
    ]:
        code, details = refusal(call, request, metadata=admin)
        assert code == grpc.StatusCode.UNIMPLEMENTED and "--enable-repository" in details
    assert stub.ModelReady(pb.ModelReadyRequest(name=NAME), timeout=10).ready


def test_with_the_repository_enabled_only_an_admin_unloads(published_model: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.yaml"
    entries = [
        {"identity": "olga", "role": "operator", "token": "olga-7"},
        {"identity": "root", "role": "admin", "token": "root-key"},
    ]
    tokens.write_text(yaml.safe_dump({"tokens": entries}))
    model = load_window_model(str(published_model), f"{NAME}-admin")
    port = free_port()
    application = build_app(model, authorizer=Authorizer.from_file(tokens), enable_repository=True, grpc_port=port)
    unload = pb.RepositoryModelUnloadRequest(model_name=model.name)
    with TestClient(application), grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert refusal(stub.RepositoryModelUnload, unload)[0] == grpc.StatusCode.UNAUTHENTICATED
        forged = refusal(stub.RepositoryModelUnload, unload, metadata=(("authorization", "Bearer guessed"),))
        assert forged[0] == grpc.StatusCode.UNAUTHENTICATED
        code, details = refusal(stub.RepositoryModelUnload, unload, metadata=(("authorization", "Bearer olga-7"),))
        assert code == grpc.StatusCode.PERMISSION_DENIED and "needs the admin role" in details
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        root = (("authorization", "Bearer root-key"),)
        assert stub.RepositoryModelUnload(unload, metadata=root, timeout=30).isUnloaded
        assert not stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready, "as REST /v2/health/ready: 503"
        load = pb.RepositoryModelLoadRequest(model_name=model.name)
        assert stub.RepositoryModelLoad(load, metadata=root, timeout=60).isLoaded
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready


def test_a_grpc_infer_is_payload_logged(stub, served, logs: Path, windows: np.ndarray) -> None:
    sent = {}
    for model, raw in [(NAME, False), (NAME, True), (f"{NAME}-site-b", False)]:
        request_id = f"grpc-{model}-{'raw' if raw else 'typed'}"
        response = stub.ModelInfer(
            infer_request(model, windows[:2], raw=raw), metadata=(("x-request-id", request_id),), timeout=30
        )
        sent[request_id] = (model, grpc_outputs(response))
    for logger in (served.payload_logger, *(site.payload_logger for site in served.site_models)):
        logger.flush()
    records = {r.id: r for name in (NAME, f"{NAME}-site-b") for r in read_payload_logs(str(logs), name)}
    for request_id, (model, outputs) in sent.items():
        record = records[request_id]
        assert record.model_name == model and record.protocol == "grpc" and record.model_version == "v-test0000001"
        assert np.array(record.inputs, dtype=np.float64).shape == (2, 24, 7)
        assert record.inputs[1][5][2] is None, "the missing reading is logged as missing"
        np.testing.assert_allclose(record.outputs["failure_probability"], outputs["failure_probability"], atol=1e-6)
        assert record.outputs["fails_within_horizon"] == outputs["fails_within_horizon"].tolist()


def test_metrics_count_grpc_requests(stub, client: TestClient, windows: np.ndarray) -> None:
    def scrape() -> dict:
        return parse(client.get("/metrics").text)

    def requests(samples: dict, **labels: str) -> float:
        return value(samples, "shopfloor_requests_total", protocol="grpc", **labels) or 0.0

    before = scrape()
    for _ in range(2):
        stub.ModelInfer(infer_request(NAME, windows), timeout=30)
    refusal(stub.ModelInfer, _tensor(datatype="INT64"))
    refusal(stub.ModelInfer, infer_request("no-such-model", windows))
    stub.ModelReady(pb.ModelReadyRequest(name=f"{NAME}-site-a"), timeout=10)
    after = scrape()
    for labels, added in [
        ({"model_name": NAME, "route": "predict", "code": "OK"}, 2),
        ({"model_name": NAME, "route": "predict", "code": "INVALID_ARGUMENT"}, 1),
        ({"model_name": "unknown", "route": "predict", "code": "NOT_FOUND"}, 1),
        ({"model_name": f"{NAME}-site-a", "route": "ready", "code": "OK"}, 1),
    ]:
        assert requests(after, **labels) - requests(before, **labels) == added, labels
    errors = "shopfloor_request_errors_total"
    assert (value(after, errors, model_name=NAME, protocol="grpc", code="INVALID_ARGUMENT") or 0) >= 1
    assert value(after, errors, model_name=NAME, protocol="grpc", code="OK") is None
    latency = "shopfloor_request_duration_seconds_count"
    grown = value(after, latency, model_name=NAME, protocol="grpc", route="predict") - (
        value(before, latency, model_name=NAME, protocol="grpc", route="predict") or 0
    )
    assert grown == 3
    assert value(after, "shopfloor_predictions_total", model_name=NAME) >= 8, "gRPC predictions count as REST's"


def _another_address() -> str | None:
    """An address of this machine that is not loopback (where a server bound to 127.0.0.1 must not answer)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_grpc_listens_only_on_the_host(app) -> None:
    port = app[1]
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    other = _another_address()
    if other is None:
        pytest.skip("no address of this machine other than loopback")
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((other, port), timeout=5).close()


def test_raw_bytes_elements_are_decoded() -> None:
    from shopfloor.serving._kserve import InvalidInput
    from shopfloor.serving.grpc_server import infer_request_of

    encoded = b"".join(struct.pack("<I", len(item)) + item for item in (b"\x89PNG...", b"second"))
    tensor = pb.ModelInferRequest.InferInputTensor(name="image", datatype="BYTES", shape=[2])
    request = infer_request_of(pb.ModelInferRequest(model_name="vi", inputs=[tensor], raw_input_contents=[encoded]))
    assert request.inputs[0].data == [b"\x89PNG...", b"second"]
    broken = pb.ModelInferRequest(model_name="vi", inputs=[tensor], raw_input_contents=[encoded[:-3] + b"\xff" * 9])
    with pytest.raises(InvalidInput, match=r"raw_input_contents\[0\] \(image\): not BYTES elements"):
        infer_request_of(broken)


# ---- the real server process -------------------------------------------------------------------------------------


def _start(command: list[str], output: Path, url: str) -> subprocess.Popen:
    with output.open("ab") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=2):
                return server
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"server did not start: {output.read_text()[-2000:]}")
            time.sleep(0.3)


@pytest.mark.slow  # starts a server process (~10 s): runs with the whole suite
def test_the_server_process_answers_grpc_on_its_host_and_logs_it(
    published_model: Path, windows: np.ndarray, tmp_path: Path
) -> None:
    http_port, grpc_port = free_port(), free_port()
    logs, output = tmp_path / "logs", tmp_path / "server.log"
    command = [sys.executable, "-m", "shopfloor.serving.server", "--model-uri", str(published_model)]
    command += ["--model-name", "pm", "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    command += ["--payload-log-uri", str(logs), "--payload-spool", str(tmp_path / "spool")]
    url = f"http://127.0.0.1:{http_port}"
    server = _start(command, output, url)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
            assert stub.ModelReady(pb.ModelReadyRequest(name="pm"), timeout=10).ready
            status, answer = post(f"{url}/v2/models/pm/infer", v2_body(windows))
            assert status == 200
            for raw in (False, True):
                response = stub.ModelInfer(
                    infer_request("pm", windows, raw=raw), metadata=(("x-request-id", f"grpc-{raw}"),), timeout=30
                )
                for name, values in rest_outputs(answer).items():
                    np.testing.assert_allclose(grpc_outputs(response)[name], values, rtol=0, atol=1e-6)
            code, details = refusal(stub.ModelInfer, infer_request("pm", windows[:, :, :6]))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("inputs[0] (window): shape")
            unload = pb.RepositoryModelUnloadRequest(model_name="pm")
            assert refusal(stub.RepositoryModelUnload, unload)[0] == grpc.StatusCode.UNIMPLEMENTED
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
            samples = parse(response.read().decode())
        ok = value(samples, "shopfloor_requests_total", model_name="pm", protocol="grpc", route="predict", code="OK")
        assert ok == 2
        listening = subprocess.run(["ss", "-ltnH", f"sport = :{grpc_port}"], capture_output=True, text=True).stdout
        if listening:  # ss is part of iproute2; where it exists, check the bound (local) address
            assert [line.split()[3] for line in listening.splitlines()] in (
                [f"127.0.0.1:{grpc_port}"],
                [f"[::ffff:127.0.0.1]:{grpc_port}"],  # gRPC's IPv6 socket, bound to the IPv4 loopback only
            ), listening
        other = _another_address()
        if other is not None:
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((other, grpc_port), timeout=5).close()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    text = output.read_text()
    assert f"on http://127.0.0.1:{http_port}, gRPC (Open Inference Protocol) on 127.0.0.1:{grpc_port}" in text
    assert "Traceback" not in text, text[-3000:]
    records = read_payload_logs(str(logs), "pm")  # flushed at SIGTERM, after the gRPC server stopped
    assert {r.id for r in records} >= {"grpc-False", "grpc-True"}
    assert len(records) == 3 and {r.id: r.protocol for r in records if r.id.startswith("grpc-")} == {
        "grpc-False": "grpc",
        "grpc-True": "grpc",
    }
    assert [r.protocol for r in records if not r.id.startswith("grpc-")] == ["v2"], "the REST V2 infer beside them"


def test_a_grpc_port_in_use_is_a_one_line_error(published_model: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        command = [sys.executable, "-m", "shopfloor.serving.server", "--model-uri", str(published_model)]
        command += ["--model-name", "pm", "--http-port", str(free_port()), "--grpc-port", str(port)]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 2
    assert finished.stderr.strip().splitlines()[-1] == (
        f"error: --grpc-port {port}: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
    same = subprocess.run([*command[:-3], "8080", "--grpc-port", "8080"], capture_output=True, text=True, timeout=120)
    assert same.returncode == 2 and "--grpc-port 8080: the same port as --http-port" in same.stderr
    bad = subprocess.run([*command[:-2], "--grpc-port", "70000"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "70000 is not a port number (0-65535)" in bad.stderr
