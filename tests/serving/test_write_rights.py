"""Nobody unloads the model or rewrites labels without the right: tokens, roles, bounds and a rate limit.

Each case is one the hardening review reproduced on the server as it was: an anonymous unload, spoofed operators,
a 7 MB note, a dict as operator, a path field, a flood of feedback, and the store's path in the answer.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from shopfloor.common.errors import ConfigError
from shopfloor.contracts.feedback import read_feedback
from shopfloor.serving.auth import Authorizer
from shopfloor.serving.server import build_app

NAME = "vi"
TOKENS = {"olga": "olga-station-7", "ivan": "ivan-shift-2", "root": "plant-admin-key"}


@pytest.fixture(scope="module")
def served(vision_trained):
    from shopfloor.serving.server import load_window_model

    return load_window_model(str(vision_trained.model_dir), NAME)


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokens.yaml"
    entries = [
        {"identity": "olga", "role": "operator", "token": TOKENS["olga"]},
        {"identity": "ivan", "role": "operator", "token_sha256": hashlib.sha256(TOKENS["ivan"].encode()).hexdigest()},
        {"identity": "root", "role": "admin", "token": TOKENS["root"]},
    ]
    path.write_text(yaml.safe_dump({"tokens": entries}))
    return path


def _client(served, tokens_file: Path, **options) -> TestClient:
    return TestClient(build_app(served, authorizer=Authorizer.from_file(tokens_file), **options))


def _as(who: str) -> dict[str, str]:
    return {"authorization": f"Bearer {TOKENS[who]}"}


@pytest.fixture
def image(vision_trained) -> str:
    first = sorted((vision_trained.root / "images").rglob("*.png"))[0]
    return base64.b64encode(first.read_bytes()).decode()


def test_no_token_no_write_and_the_model_stays(served, tokens_file: Path, tmp_path: Path, image: str) -> None:
    served.feedback_uri = str(tmp_path / "store")
    client = _client(served, tokens_file)
    body = {"image_bytes": {"b64": image}, "verdict": "right"}
    anonymous = client.post(f"/v1/models/{NAME}/feedback", json=body)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"] == "Bearer"
    forged = client.post(f"/v1/models/{NAME}/feedback", json=body, headers={"authorization": "Bearer guessed"})
    assert forged.status_code == 401
    assert client.post(f"/v2/repository/models/{NAME}/unload").status_code == 404, "not mounted unless enabled"
    assert client.post(f"/v2/repository/models/{NAME}/unload", headers=_as("root")).status_code == 404
    assert client.get(f"/v2/models/{NAME}/ready").status_code == 200
    assert read_feedback(str(tmp_path / "store"), NAME) == []


def test_only_an_admin_unloads_when_the_repository_is_enabled(served, tokens_file: Path) -> None:
    client = _client(served, tokens_file, enable_repository=True)
    assert client.post(f"/v2/repository/models/{NAME}/unload").status_code == 401
    assert client.post(f"/v2/repository/models/{NAME}/unload", headers=_as("olga")).status_code == 403
    assert client.get(f"/v2/models/{NAME}/ready").status_code == 200
    assert client.post(f"/v2/repository/models/{NAME}/unload", headers=_as("root")).json()["unload"] is True
    assert client.get("/v2/health/ready").status_code == 503, "readiness tells the truth after an unload"
    assert client.post(f"/v2/repository/models/{NAME}/load", headers=_as("root")).json()["load"] is True
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get(f"/v2/models/{NAME}/ready").status_code == 200


def test_without_a_tokens_file_every_write_is_refused(served, tmp_path: Path, image: str) -> None:
    served.feedback_uri = str(tmp_path / "store")
    client = TestClient(build_app(served))
    response = client.post(f"/v1/models/{NAME}/feedback", json={"image_bytes": {"b64": image}, "verdict": "right"})
    assert response.status_code == 403 and "no tokens configured" in response.json()["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"operator": "mallory"}, "operator"),  # the operator is the token's, never the body's
        ({"operator": {"name": "x"}}, "operator"),
        ({"path": "../../../../etc/passwd"}, "path"),
        ({"note": "x" * 7_000_000}, "note"),
        ({"note": "x" * 2049}, "note"),
        ({"request_id": "../x"}, "request_id"),
        ({"verdict": "wrong-label", "corrected_label": "ok" * 40}, "corrected_label"),
    ],
)
def test_feedback_is_typed_and_bounded(
    served, tokens_file: Path, tmp_path: Path, image: str, change: dict, field: str
) -> None:
    served.feedback_uri = str(tmp_path / "store")
    client = _client(served, tokens_file, max_body_bytes=16_000_000)
    response = client.post(
        f"/v1/models/{NAME}/feedback",
        json={"image_bytes": {"b64": image}, "verdict": "right", **change},
        headers=_as("olga"),
    )
    assert response.status_code == 400 and response.json()["error"].startswith(field)
    assert read_feedback(str(tmp_path / "store"), NAME) == []


def test_the_recorded_operator_is_the_tokens_and_the_answer_has_no_path(
    served, tokens_file: Path, tmp_path: Path, image: str
) -> None:
    served.feedback_uri = str(tmp_path / "store")
    client = _client(served, tokens_file)
    response = client.post(
        f"/v1/models/{NAME}/feedback", json={"image_bytes": {"b64": image}, "verdict": "right"}, headers=_as("ivan")
    )
    assert response.status_code == 201 and response.json()["operator"] == "ivan"
    assert str(tmp_path) not in response.text
    (stored,) = read_feedback(str(tmp_path / "store"), NAME)
    assert stored.operator == "ivan" and stored.path == ""


def test_a_flood_of_feedback_is_cut_at_the_rate_limit_per_identity(
    served, tokens_file: Path, tmp_path: Path, image: str
) -> None:
    served.feedback_uri = str(tmp_path / "store")
    client = _client(served, tokens_file, writes_per_minute=5)
    body = {"image_bytes": {"b64": image}, "verdict": "right"}
    answers = [client.post(f"/v1/models/{NAME}/feedback", json=body, headers=_as("olga")) for _ in range(8)]
    assert [a.status_code for a in answers] == [201] * 5 + [429] * 3
    assert int(answers[-1].headers["retry-after"]) >= 1
    assert client.post(f"/v1/models/{NAME}/feedback", json=body, headers=_as("ivan")).status_code == 201
    assert len(read_feedback(str(tmp_path / "store"), NAME)) == 6


def test_a_bad_tokens_file_is_one_line_naming_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yaml"
    path.write_text(yaml.safe_dump({"tokens": [{"identity": "olga", "role": "superuser", "token": "t"}]}))
    with pytest.raises(ConfigError, match=r"tokens\[0\]\.role") as raised:
        Authorizer.from_file(path)
    assert "\n" not in str(raised.value) and "t'" not in str(raised.value)


def test_openapi_is_not_served(served) -> None:
    assert TestClient(build_app(served)).get("/openapi.json").status_code == 404
