"""The main job's report opens with the bundle's held-out samples, each with its true label and the file's answer."""

from pathlib import Path

from deepsquare.export.demo_samples import sample_answers, samples_markdown


def test_the_table_links_each_image_relative_to_the_report_and_counts_the_right_answers(tmp_path: Path):
    bundle = tmp_path / "sp+ss+sex" / "export"
    answers = {
        "bundle": str(bundle),
        "runtime": "onnxruntime",
        "rows": [
            {"file": "samples/0.png", "label": "0", "top1": "0", "probability": 0.91},
            {"file": "samples/1.png", "label": "1", "top1": "7", "probability": 0.55},
        ],
    }
    lines = samples_markdown(answers, tmp_path)
    assert "1 of 2 right" in lines[0]
    assert "| ![0](sp+ss+sex/export/samples/0.png) | 0 | 0 (0.91) |" in lines
    assert "| ![1](sp+ss+sex/export/samples/1.png) | 1 | 7 (0.55) (wrong) |" in lines


def test_a_folder_that_is_not_a_bundle_is_said_not_hidden(tmp_path: Path):
    answers = sample_answers(tmp_path / "export")
    assert "model.json is missing" in answers["error"]
    assert "not shown" in samples_markdown(answers, tmp_path)[0]
