"""`shopfloor run visual-inspection` as a new user tries it: run, send a real photo, read its heatmap, give feedback."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.app.cli.helpers import gate_values, post_json, printed_path, shopfloor


@pytest.mark.slow
def test_run_visual_inspection_then_predict_explain_and_give_feedback(
    tmp_path: Path,
    work_dirs: list[Path],
) -> None:
    work_dirs.append(tmp_path)
    result = shopfloor("run", "visual-inspection", "--work-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr[-3000:]
    steps = ("ingest-images", "label-images", "hpo-setup", "hpo-worker", "hpo-select", "train")
    for step in ("fingerprint-sources", *steps, "evaluate", "explain"):
        assert f"< {step}: ok" in result.stderr
    assert re.search(r"trial [1-6]/6: validation balanced accuracy 0\.\d+", result.stderr)
    assert "validation balanced accuracy" in printed_path(result.stdout, "search report").read_text()
    assert re.search(r"edge int8: [\d,]+ bytes, test accuracy", result.stderr)
    gate = gate_values(result.stdout)
    assert gate["accuracy"] >= 0.8 and gate["defect_recall"] >= 0.9
    card = printed_path(result.stdout, "model card").read_text()
    assert "## Edge variants" in card and "| int8 |" in card
    assert "Grad-CAM" in printed_path(result.stdout, "explanations").read_text()

    # a real photo from the plant's folder, as a camera station would send it
    found = dict(re.findall(r"^\s+(V1|V2|explain): curl .* -d @(\S+) \S+$", result.stdout, re.MULTILINE))
    urls = dict(re.findall(r"^\s+(V1|V2|explain): curl .* (\S+)$", result.stdout, re.MULTILINE))
    status, answer = post_json(urls["V1"], Path(found["V1"]).read_bytes())
    assert status == 200, answer
    defective, good = answer["predictions"]
    assert defective["defect_score"] > good["defect_score"] and good["label"] in ("ok", "scratch", "dent", "crack")
    status, answer = post_json(urls["V2"], Path(found["V2"]).read_bytes())
    assert status == 200 and {o["name"] for o in answer["outputs"]} >= {"label", "defective", "defect_score"}
    status, answer = post_json(urls["explain"], Path(found["explain"]).read_bytes())
    assert status == 200 and len(answer["explanations"][0]["heatmap"]) == 64

    # the operator disagrees with the first explanation: over HTTP, and from the CLI with the image file
    image = base64.b64decode(json.loads(Path(found["V1"]).read_text())["instances"][0]["image_bytes"]["b64"])
    feedback_url = urls["V1"].replace(":predict", "/feedback")
    body = {"image_bytes": {"b64": base64.b64encode(image).decode()}, "verdict": "wrong-region"}
    status, answer = post_json(feedback_url, json.dumps(body).encode())
    assert status == 401, "a write needs the operator's token"
    token_file = re.search(r"^\s+feedback: curl .*\$\(cat (\S+)\)", result.stdout, re.MULTILINE)[1]
    status, answer = post_json(feedback_url, json.dumps(body).encode(), token=Path(token_file).read_text().strip())
    assert status == 201 and answer["operator"], answer
    (tmp_path / "part.png").write_bytes(image)
    cli = shopfloor(
        "feedback", str(tmp_path / "part.png"), "--verdict", "wrong-label", "--label", "crack", "--by", "olga",
        "--work-dir", str(tmp_path),
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    stored = sorted((tmp_path / "model-store" / "visual-inspection" / "feedback").glob("fb-*.json"))
    assert len(stored) == 2
    assert {json.loads(p.read_text())["verdict"] for p in stored} == {"wrong-region", "wrong-label"}


@pytest.mark.slow
def test_run_visual_inspection_on_a_real_image_set_through_data_and_config_alone(
    tmp_path: Path,
    work_dirs: list[Path],
) -> None:
    """scikit-learn's scanned digits (1,797 real 8x8 images, class folders): it never saw them, nothing but config."""
    from shopfloor.demo.real_images import write_digits_layout

    work_dirs.append(tmp_path / "work")
    paths = write_digits_layout(tmp_path / "digits")
    result = shopfloor(
        "run", "visual-inspection", "--data", str(tmp_path / "digits"), "--config", str(paths["config"]),
        "--work-dir", str(tmp_path / "work"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1797 images" in result.stderr.replace(",", "")
    gate = gate_values(result.stdout)
    assert gate["accuracy"] >= 0.9 and gate["roc_auc"] >= 0.95
    assert "digits-inspection" in str(printed_path(result.stdout, "published"))
    found = dict(re.findall(r"^\s+(V1|V2|explain): curl .* -d @(\S+) \S+$", result.stdout, re.MULTILINE))
    urls = dict(re.findall(r"^\s+(V1|V2|explain): curl .* (\S+)$", result.stdout, re.MULTILINE))
    status, answer = post_json(urls["V1"], Path(found["V1"]).read_bytes())
    assert status == 200 and answer["predictions"][1]["label"] == "0", answer
